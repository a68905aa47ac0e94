/**
 * `movieFrames`: the movie's frames the CNN sees (every frame, or `framesPerTr` per TR),
 * in time order, as batches of B frame references (movie index and time).
 *
 * Intuition: the source of the CNN run-ahead. A batch names its frames rather than holding
 * their pixels: the activations operator reads them when it is ready for them, so the
 * decoder never runs ahead of the CNN and at most one batch of pixels is in memory (a
 * decoded movie would not be: 7200 frames at 224² RGB are 1 GB). The batching is the
 * CNN's (`extractor.extract` takes B frames per call), the same as before the operators,
 * so the activations are the same bytes.
 *
 * ```
 * frames (B = 2, 5 frames): (b0 b1 b2|)     b0 = frames 0,1; b1 = 2,3; b2 = 4
 * ```
 *
 * @param movie the movie (only its frame count, rate and times are read here)
 * @param sampling which frames (`selectFrames`)
 * @param batchSize B, frames per CNN call (default 8)
 */
import { defer, from, type Observable } from 'rxjs';
import { SyncactError } from '../../errors.ts';
import { frameTime, selectFrames, type FrameSampling, type FrameSource } from '../../engine/cnn/unitSeries.ts';

/** B consecutive frames of the selection. */
export interface FrameRefs {
  /** Position of the first frame in the selection. */
  start: number;
  /** Frames in the whole selection (for progress and the activation matrix). */
  total: number;
  /** Movie frame indices. */
  indices: Int32Array;
  /** Movie times (s). */
  times: Float64Array;
}

export function movieFrames(movie: Pick<FrameSource, 'frameCount' | 'fps' | 'time'>, sampling: FrameSampling, batchSize = 8): Observable<FrameRefs> {
  return defer(() => {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new SyncactError('ENGINE_BAD_INPUT', `unit series: batchSize must be a positive integer, got ${batchSize}`);
    const frames = selectFrames(movie, sampling);
    const batches: FrameRefs[] = [];
    for (let start = 0; start < frames.length; start += batchSize) {
      const indices = frames.slice(start, Math.min(frames.length, start + batchSize));
      batches.push({ start, total: frames.length, indices, times: Float64Array.from(indices, (i) => frameTime(movie, i)) });
    }
    return from(batches);
  });
}
