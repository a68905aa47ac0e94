/**
 * The readers a session is opened with (session.ts): masked BOLD volumes (smoothed first
 * when the session sets smoothing_fwhm) from a 4D NIfTI or a live folder, movie frames for the CNN stage at the model's input size, and the
 * per-TR thumbnails the dashboard shows. Each adapts a source of the data layer
 * (server/io, sources.ts) to what the pipeline asks: random access by TR or frame index,
 * fastest in increasing order.
 */
import { stat } from 'node:fs/promises';
import { SyncactError } from '../errors.ts';
import type { FeatureExtractor } from '../engine/cnn/extractor.ts';
import type { SpatialSmoother } from '../engine/spatialSmoothing.ts';
import type { FrameSource } from '../engine/cnn/unitSeries.ts';
import { movieFileHash } from '../io/featureCache.ts';
import type { LiveFolder } from '../io/liveVolumes.ts';
import type { NiftiImage } from '../io/nifti/read.ts';
import type { SyntheticSession } from '../synth/session.ts';
import type { FrameProvider } from './frameStage.ts';
import { frameRange, type LockstepPlan } from './lockstep.ts';
import type { VolumeSource } from './replayInputs.ts';
import { openMovieSource } from './sources.ts';

/** Thumbnails are at most this many pixels on their long side. */
export const THUMBNAIL = 64;

/**
 * The session's movie (a video file, or a folder of images at `fps`) as a FrameSource at
 * the extractor's input size (rounded up to even, as the decoder needs). Frames are asked
 * for in increasing order by the CNN stage; the decoder streams forward and restarts only
 * when an earlier frame is asked for. Closing stops the decoder where it is (frames the
 * CNN does not need, e.g. after the run's last TR, are never decoded).
 */
export async function movieFrames(path: string, extractor: FeatureExtractor, fps: number | undefined): Promise<{ source: FrameSource; hash: string; close: () => Promise<void> }> {
  const { width, height } = extractor.preprocessing;
  const movie = await openMovieSource(path, { width: width + (width % 2), height: height + (height % 2), fps });
  const frames = sequentialReader(
    (start) => movie.frames(start, movie.frameCount),
    (i) => new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `frame ${i} is past the end of the movie (${movie.frameCount} frames)`, path),
  );
  const source: FrameSource = {
    width: movie.width,
    height: movie.height,
    fps: movie.fps,
    frameCount: movie.frameCount,
    frame: async (i) => (await frames.read(i)).rgb,
  };
  const hash = (await isFolder(path)) ? `images:${path}:${movie.frameCount}` : await movieFileHash(path);
  return { source, hash, close: frames.close };
}

/**
 * Items of an indexed stream read in increasing order from one iterator; an index before
 * the last one read, or more than `reopenAfter` items past it, restarts the stream there
 * (its iterator's `return` stops the old one: decoders are killed, files closed). Reads
 * are served one at a time in call order; a read that fails leaves no iterator behind,
 * so the next read starts afresh.
 *
 * @param reopenAfter items that may be read and dropped to reach a later index before a
 *   restart is cheaper (default: never restart forwards)
 */
export function sequentialReader<T extends { index: number }>(open: (start: number) => AsyncIterable<T>, past: (i: number) => Error, reopenAfter = Infinity) {
  let it: AsyncIterator<T> | null = null;
  let next = 0;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <R>(f: () => Promise<R>): Promise<R> => {
    const run = queue.then(f);
    queue = run.catch(() => undefined);
    return run;
  };
  const leave = async () => {
    const old = it;
    it = null;
    await old?.return?.();
  };
  return {
    read: (i: number): Promise<T> =>
      serial(async () => {
        if (it === null || i < next || i - next > reopenAfter) {
          await leave();
          it = open(i)[Symbol.asyncIterator]();
          next = i;
        }
        for (;;) {
          let r: IteratorResult<T>;
          try {
            r = await it.next();
          } catch (e) {
            it = null;
            throw e;
          }
          if (r.done) {
            it = null;
            throw past(i);
          }
          next = r.value.index + 1;
          if (r.value.index === i) return r.value;
        }
      }),
    close: (): Promise<void> => serial(leave),
  };
}

/**
 * What a volume on the grid becomes for the engine: smoothed over the whole grid when the
 * session asks for it (nilearn's maskers smooth, then mask), then its masked voxels. The
 * smoother writes into one buffer, reused: each result is gathered before the next read.
 */
export function maskVolume(indices: Uint32Array, smoother: SpatialSmoother | null = null): (grid: Float32Array) => Float32Array {
  if (!smoother) return (grid) => gather(grid, indices);
  const smoothed = new Float32Array(smoother.length);
  return (grid) => gather(smoother.smooth(grid, smoothed), indices);
}

/** Masked volumes from a live folder, as they arrive (a jump back re-reads the files). */
export function liveVolumes(live: LiveFolder, indices: Uint32Array, smoother: SpatialSmoother | null = null): VolumeSource {
  const masked = maskVolume(indices, smoother);
  const reader = sequentialReader(
    (start) => live.volumes(start),
    (k) => new SyncactError('REPLAY_MISSING_VOLUME', `the live run ended before volume ${k}`, live.dir),
  );
  return {
    count: live.count ?? Infinity,
    voxels: indices.length,
    read: async (k) => masked((await reader.read(k)).data),
    close: reader.close,
  };
}

export async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read (${code})`, path);
  }
}

/**
 * Masked volumes from a 4D NIfTI, streamed by `volumes()`: it reads one volume ahead, so
 * inflating volume k+1 overlaps the engine's work on k, and a volume that cannot be read
 * (a truncated file) fails the TR that needs it. A jump back reopens the stream there (a
 * .nii.gz re-inflates from the start).
 */
export function niftiVolumes(image: NiftiImage, indices: Uint32Array, smoother: SpatialSmoother | null = null): VolumeSource {
  const masked = maskVolume(indices, smoother);
  const reader = sequentialReader(
    (start) => image.volumes({ start }),
    (k) => new SyncactError('REPLAY_MISSING_VOLUME', `volume ${k} is not in the run (${image.volumeCount} volumes)`, image.path),
  );
  return {
    count: image.volumeCount,
    voxels: indices.length,
    async read(k) {
      if (!Number.isInteger(k) || k < 0 || k >= image.volumeCount) {
        throw new SyncactError('REPLAY_MISSING_VOLUME', `volume ${k} is not in the run (${image.volumeCount} volumes)`, image.path);
      }
      return masked((await reader.read(k)).data);
    },
    async close() {
      await reader.close();
      await image.close();
    },
  };
}

/** The masked voxels of a grid volume (a plain loop: typed-array from() with a map function is several times slower). */
export function gather(grid: Float32Array, indices: Uint32Array): Float32Array {
  const out = new Float32Array(indices.length);
  for (let q = 0; q < indices.length; q++) out[q] = grid[indices[q]];
  return out;
}

export async function meanOfFirst(image: NiftiImage, n: number): Promise<Float32Array> {
  const out = new Float64Array(image.voxelsPerVolume);
  let count = 0;
  for await (const { data } of image.volumes({ end: Math.min(n, image.volumeCount) })) {
    for (let i = 0; i < out.length; i++) out[i] += data[i];
    count++;
  }
  return Float32Array.from(out, (v) => v / Math.max(1, count));
}

/** The last frame of TR k under the lockstep rules, or null when the TR has none. */
function lastFrameOf(plan: LockstepPlan, k: number): number | null {
  const { start, end } = frameRange(plan, k);
  return end > start ? end - 1 : null;
}

/**
 * Thumbnails from a second decoder at thumbnail size, streaming forward across TRs (the
 * frames between two TRs' last frames are decoded and dropped, at 64 px); a jump back, or
 * one more than two seconds of movie ahead, restarts it with ffmpeg's seek.
 */
export async function movieThumbnails(path: string, plan: LockstepPlan, fps: number | undefined): Promise<{ frame: FrameProvider; close: () => Promise<void> }> {
  const native = await openMovieSource(path, { fps });
  const width = Math.min(THUMBNAIL, native.width - (native.width % 2));
  const height = Math.max(2, 2 * Math.round((width * native.height) / native.width / 2));
  const small = await openMovieSource(path, { fps, width, height });
  const frames = sequentialReader(
    (start) => small.frames(start, small.frameCount),
    (i) => new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `frame ${i} is past the end of the movie (${small.frameCount} frames)`, path),
    Math.ceil(2 * small.fps),
  );
  return {
    async frame(k) {
      const i = lastFrameOf(plan, k);
      if (i === null) return null;
      return { width, height, rgb: (await frames.read(i)).rgb };
    },
    close: frames.close,
  };
}

/** The TR's last movie frame, box-downsampled to at most 64 px on its long side. */
export function syntheticThumbnails(s: SyntheticSession, plan: LockstepPlan): FrameProvider {
  const m = s.movie;
  const step = Math.max(1, Math.ceil(Math.max(m.width, m.height) / THUMBNAIL));
  const w = Math.floor(m.width / step);
  const h = Math.floor(m.height / step);
  return (k) => {
    const i = lastFrameOf(plan, k);
    if (i === null) return null;
    const src = m.frame(i);
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let dy = 0; dy < step; dy++) for (let dx = 0; dx < step; dx++) sum += src[((y * step + dy) * m.width + x * step + dx) * 3 + c];
          rgb[(y * w + x) * 3 + c] = Math.round(sum / (step * step));
        }
      }
    }
    return { width: w, height: h, rgb };
  };
}
