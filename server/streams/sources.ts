/**
 * The two inputs of a replay behind one shape each, so that the lockstep join and the
 * pipeline do not care where frames and volumes come from:
 *
 * - a MovieSource gives frames [start, end) as an async iterable: a video file (ffmpeg),
 *   a folder of images (ffmpeg), or the synthetic movie (in-process);
 * - a VolumeSource gives volumes start.. in order: a 4D NIfTI file (streamed by the data
 *   layer, never read whole), a live folder (one 3D file per TR), or a synthetic session.
 *
 * Async iterables pull, so whoever consumes sets the pace and nothing piles up in between;
 * `fromAsyncIterable` turns one into an Observable that stops the iterator (and with it an
 * ffmpeg process or a file handle) when unsubscribed.
 */
import { stat } from 'node:fs/promises';
import { Observable } from 'rxjs';
import { SyncactError } from '../errors.ts';
import { decodeImageFrames, probeImageFolder } from '../io/imageFolder.ts';
import { openLiveFolder, type LiveVolumeOptions } from '../io/liveVolumes.ts';
import { decodeFrames, probeMovie, type MovieFrame } from '../io/movieDecoder.ts';
import { openNifti } from '../io/nifti/read.ts';
import type { Grid } from '../io/nifti/types.ts';
import type { ProceduralMovie } from '../synth/movie.ts';
import type { SyntheticSession } from '../synth/session.ts';

export interface MovieSource {
  /** The file or folder, for messages. */
  name: string;
  fps: number;
  frameCount: number;
  /** Size of the frames it gives. */
  width: number;
  height: number;
  /** Frames start..end-1 in order (an empty range at the end is allowed). */
  frames(start: number, end: number): AsyncIterable<MovieFrame>;
}

export interface VolumeSource {
  /** The file or folder, for messages. */
  name: string;
  grid: Grid;
  voxelsPerVolume: number;
  /** TR from the header (s); null when it has none. */
  headerTr: number | null;
  /** Volumes in the run; null for an open-ended live run. */
  volumeCount: number | null;
  /** Volumes start..end-1 in order (end defaults to volumeCount; open-ended when that is null). */
  volumes(start: number, end?: number): AsyncIterable<{ index: number; data: Float32Array }>;
  close(): Promise<void>;
}

export interface FrameSize {
  /** Output frame size, e.g. the model's input; default the movie's own. */
  width?: number;
  height?: number;
}

/** A video file decoded by ffmpeg. */
export async function movieFileSource(path: string, options: FrameSize & { ffmpegPath?: string; ffprobePath?: string } = {}): Promise<MovieSource> {
  const info = await probeMovie(path, { ffprobePath: options.ffprobePath });
  const width = options.width ?? info.width;
  const height = options.height ?? info.height;
  return {
    name: path,
    fps: info.fps,
    frameCount: info.frameCount,
    width,
    height,
    frames: (start, end) => decodeFrames(info, { start, end, width, height, ffmpegPath: options.ffmpegPath }),
  };
}

/** A folder of PNG or JPEG frames at the session's frame rate. */
export async function imageFolderSource(dir: string, options: FrameSize & { fps: number; ffmpegPath?: string; ffprobePath?: string }): Promise<MovieSource> {
  const info = await probeImageFolder(dir, { fps: options.fps, ffprobePath: options.ffprobePath });
  const width = options.width ?? info.width + (info.width % 2);
  const height = options.height ?? info.height + (info.height % 2);
  return {
    name: dir,
    fps: info.fps,
    frameCount: info.frameCount,
    width,
    height,
    frames: (start, end) => decodeImageFrames(info, { start, end, width, height, ffmpegPath: options.ffmpegPath }),
  };
}

/**
 * The synthetic movie, in-process. Frames are its own size: a synthetic session is made at
 * the size it is analysed at, and resampling here would only blur what the truth describes.
 */
export function syntheticMovieSource(movie: ProceduralMovie, name = 'synthetic movie'): MovieSource {
  return {
    name,
    fps: movie.fps,
    frameCount: movie.frameCount,
    width: movie.width,
    height: movie.height,
    frames(start, end) {
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > movie.frameCount || start > end) {
        throw new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `frames ${start}..${end} are not within 0..${movie.frameCount}`, name);
      }
      return (async function* () {
        for (let i = start; i < end; i++) yield { index: i, time: i / movie.fps, rgb: movie.frame(i) };
      })();
    },
  };
}

/** A 4D NIfTI run, streamed volume by volume (bounded memory, gzip inflated in one pass). */
export async function niftiVolumeSource(path: string): Promise<VolumeSource> {
  const image = await openNifti(path);
  return {
    name: path,
    grid: image.grid,
    voxelsPerVolume: image.voxelsPerVolume,
    headerTr: image.header.tr,
    volumeCount: image.volumeCount,
    volumes: (start, end) => image.volumes({ start, end: end ?? image.volumeCount }),
    close: () => image.close(),
  };
}

/** Live mode: waits for volume 0 (see openLiveFolder), then gives volumes as they arrive. */
export async function liveVolumeSource(dir: string, options: LiveVolumeOptions = {}): Promise<VolumeSource> {
  const live = await openLiveFolder(dir, options);
  return {
    name: dir,
    grid: live.grid,
    voxelsPerVolume: live.voxelsPerVolume,
    headerTr: live.headerTr,
    volumeCount: live.count,
    volumes: (start, end) => live.volumes(start, end),
    close: async () => undefined,
  };
}

/** The BOLD run of a synthetic session, computed volume by volume (never stored). */
export function syntheticVolumeSource(session: SyntheticSession, name = `synthetic ${session.preset} session`): VolumeSource {
  const [nx, ny, nz] = session.grid.dims;
  return {
    name,
    grid: session.grid,
    voxelsPerVolume: nx * ny * nz,
    headerTr: session.tr,
    volumeCount: session.nVolumes,
    volumes(start, end = session.nVolumes) {
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > session.nVolumes || start > end) {
        throw new SyncactError('NIFTI_VOLUME_OUT_OF_RANGE', `volume range ${start}..${end} is not within 0..${session.nVolumes}`, name);
      }
      return (async function* () {
        for (let k = start; k < end; k++) yield { index: k, data: session.volume(k) };
      })();
    },
    close: async () => undefined,
  };
}

/**
 * The movie named by a session or a `--movie` flag: a video file, or a folder of images
 * (which needs the frame rate, since images carry none).
 */
export async function openMovieSource(path: string, options: FrameSize & { fps?: number; ffmpegPath?: string; ffprobePath?: string } = {}): Promise<MovieSource> {
  if (await isFolder(path)) {
    if (options.fps === undefined) throw new SyncactError('REPLAY_BAD_OPTIONS', 'a folder of images needs the movie frame rate (fps)', path);
    return imageFolderSource(path, { ...options, fps: options.fps });
  }
  return movieFileSource(path, options);
}

/** The BOLD run named by a session or an `--fmri` flag: a 4D NIfTI file, or a live folder. */
export async function openVolumeSource(path: string, live: LiveVolumeOptions = {}): Promise<VolumeSource> {
  return (await isFolder(path)) ? liveVolumeSource(path, live) : niftiVolumeSource(path);
}

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read (${code})`, path);
  }
}

/**
 * An Observable of an async iterable's values. Unlike `from(iterable)`, unsubscribing calls
 * the iterator's `return()`, which is what kills a decoder or closes a file.
 *
 * ```
 * iterable:  a--b--c|        (pulled one at a time)
 * result:    a--b--c|
 * unsubscribe after b: iterator.return() runs; c is never read
 * ```
 */
export function fromAsyncIterable<T>(iterable: AsyncIterable<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const it = iterable[Symbol.asyncIterator]();
    let active = true;
    void (async () => {
      try {
        while (active) {
          const r = await it.next();
          if (!active) return;
          if (r.done) {
            subscriber.complete();
            return;
          }
          subscriber.next(r.value);
        }
      } catch (e) {
        if (active) subscriber.error(e);
      }
    })();
    return () => {
      active = false;
      // A pending next() finishes first (generators queue return); errors on the way out are moot.
      void Promise.resolve(it.return?.()).catch(() => undefined);
    };
  });
}
