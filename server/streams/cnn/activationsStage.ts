/**
 * `cnnActivations`: the movie's frames through the CNN, each batch as one activation matrix
 * (frames × units, units in layout order); from the feature cache when it holds this
 * (model, movie, layers, preprocessing, pooling, sampling, fps).
 *
 * Intuition: the CNN is the costliest stage per frame and its output depends only on the
 * movie and the model, so it is cached across runs (docs/feature-cache.md). The cache is
 * looked up when the stream is subscribed: on a hit the whole cached matrix is emitted as
 * one batch and the frame stream is never subscribed (no frame decoded, no CNN call); on a
 * miss every batch of frames is read, run through `extractor.extract` and emitted at once,
 * so binning and HRF go on while the CNN works on later frames, and the rows are collected
 * into the matrix written to the cache when the frames end. The cache key, the batches and
 * the matrix are those of `getOrComputeActivations` (server/io/featureCache.ts), so a run
 * through these operators and one through that function share cache files byte for byte.
 * Timed as `cnn` (reading frames, the CNN and the cache).
 *
 * ```
 * frames: -f0----f1----f2|
 * miss:   ---a0----a1----a2(|)     (written to the cache at the end)
 * hit:    -(A|)                    (frames not subscribed; A = the cached matrix)
 * ```
 *
 * @param o.extractor the CNN
 * @param o.movie where the pixels of the frames come from
 * @param o.parts the cache key parts (`cacheKeyParts` of this extractor and movie)
 * @param o.cache the feature cache (null: always computed, never written)
 * @param o.onProgress called after each batch with the frames done and the total
 * @param o.log where a failed cache write is reported (it does not fail the run)
 * @param run receives `cnn` time, `cacheHit`, `cacheMiss`, `frames`
 */
import { concat, concatMap, defer, ignoreElements, of, type Observable, type OperatorFunction } from 'rxjs';
import type { FeatureExtractor } from '../../engine/cnn/extractor.ts';
import { flattenActivations, UnitLayout, type ActivationMatrix, type FrameSource } from '../../engine/cnn/unitSeries.ts';
import type { CacheKeyParts, FeatureCache } from '../../io/featureCache.ts';
import { timedCnnAsync, type CnnRun } from './cnnRun.ts';
import type { FrameRefs } from './movieFrames.ts';

/** Consecutive frames' activations. */
export interface ActivationBatch {
  layout: UnitLayout;
  /** Movie time (s) of each frame. */
  times: Float64Array;
  /** frames × units, row-major, units in layout order. */
  values: Float32Array;
}

export interface ActivationsOptions {
  extractor: FeatureExtractor;
  movie: FrameSource;
  parts: CacheKeyParts;
  cache: FeatureCache | null;
  onProgress?: (done: number, total: number) => void;
  log?: (message: string) => void;
}

export function cnnActivations(o: ActivationsOptions, run: CnnRun): OperatorFunction<FrameRefs, ActivationBatch> {
  return (frames) =>
    defer(async () => {
      const cache = o.cache;
      return cache ? timedCnnAsync(run, 'cnn', () => cache.read(o.parts)) : { miss: undefined };
    }).pipe(
      concatMap((got): Observable<ActivationBatch> => {
        if ('miss' in got) return computed(frames, got.miss, o, run);
        run.cacheHit = true;
        run.frames = got.frameTimes.length;
        return of({ layout: new UnitLayout(got.layers), times: got.frameTimes, values: got.values });
      }),
    );
}

/** The frames through the CNN, batch by batch, then the whole matrix into the cache. */
function computed(frames: Observable<FrameRefs>, miss: string | undefined, o: ActivationsOptions, run: CnnRun): Observable<ActivationBatch> {
  return defer(() => {
    run.cacheMiss = miss;
    const layout = new UnitLayout(o.extractor.layers);
    const U = layout.units;
    const layers = () => layout.layers.map((l) => ({ ...l }));
    // The matrix for the cache, filled as the batches pass (sized by the first batch).
    let matrix: ActivationMatrix = { layers: layers(), frameIndices: new Int32Array(0), frameTimes: new Float64Array(0), values: new Float32Array(0) };
    const batches = frames.pipe(
      // concatMap: one batch at a time, and its frames are read only once the CNN is free.
      concatMap(async (b): Promise<ActivationBatch> => {
        const values = await timedCnnAsync(run, 'cnn', async () => {
          const rgb: Uint8Array[] = [];
          for (const i of b.indices) rgb.push(await o.movie.frame(i));
          return flattenActivations(layout, await o.extractor.extract({ width: o.movie.width, height: o.movie.height, frames: rgb }));
        });
        if (matrix.frameIndices.length !== b.total) {
          matrix = { layers: layers(), frameIndices: new Int32Array(b.total), frameTimes: new Float64Array(b.total), values: new Float32Array(b.total * U) };
        }
        matrix.frameIndices.set(b.indices, b.start);
        matrix.frameTimes.set(b.times, b.start);
        matrix.values.set(values, b.start * U);
        o.onProgress?.(b.start + b.indices.length, b.total);
        return { layout, times: b.times, values };
      }),
    );
    const store = defer(async () => {
      run.frames = matrix.frameTimes.length;
      const cache = o.cache;
      if (!cache) return;
      // A failed write only costs the next run its time: reported, not thrown.
      await timedCnnAsync(run, 'cnn', () => cache.write(o.parts, matrix)).catch((e: Error) => (o.log ?? (() => {}))(`feature cache: ${e.message}`));
    }).pipe(ignoreElements());
    return concat(batches, store);
  });
}
