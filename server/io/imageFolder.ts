/**
 * A movie given as a folder of still frames (PNG or JPEG, one format per folder), as
 * stimulus sets and frame-extraction tools leave them. Frame i is the i-th file in natural
 * name order (frame2 before frame10), shown at time i / fps; the rate is not in the files,
 * so it comes from the session.
 *
 * Decoding goes through a real ffmpeg, like movie files, so that sizes, colour conversion
 * and scaling are identical for both: the files are piped, in order, into ffmpeg's image2
 * pipe demuxer (`-f png_pipe` / `jpeg_pipe`), which splits the stream back into images;
 * rgb24 frames come out of its stdout. No extra npm package, no temporary file list, and
 * starting at any frame is exact (feeding simply starts at that file). Images of another
 * size than the first are scaled like the rest.
 */
import { spawn } from 'node:child_process';
import { open, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { SyncactError } from '../errors.ts';
import { locateFfmpeg, locateFfprobe } from './ffmpeg.ts';
import { naturalCompare } from './liveVolumes.ts';
import { probeMovie, type MovieFrame } from './movieDecoder.ts';

export interface ImageFolderInfo {
  dir: string;
  /** Absolute paths, in frame order. */
  files: string[];
  format: 'png' | 'jpeg';
  fps: number;
  frameCount: number;
  /** Seconds: frameCount / fps. */
  duration: number;
  /** Size of the first image. */
  width: number;
  height: number;
}

export interface ImageFolderDecodeOptions {
  start?: number;
  end?: number;
  /** Output size (default the first image's, rounded up to even); positive and even. */
  width?: number;
  height?: number;
  ffmpegPath?: string;
}

const FORMATS: Record<string, 'png' | 'jpeg'> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg' };

/** Lists and checks the frames of a folder; the first image is probed for the size. */
export async function probeImageFolder(dir: string, options: { fps: number; ffprobePath?: string }): Promise<ImageFolderInfo> {
  if (!(Number.isFinite(options.fps) && options.fps > 0)) {
    throw new SyncactError('REPLAY_BAD_OPTIONS', `an image folder needs the frame rate (fps > 0) from the session; got ${options.fps}`, dir);
  }
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new SyncactError('MOVIE_UNREADABLE', 'not a folder of images', dir);
    names = await readdir(dir);
  } catch (e) {
    if (e instanceof SyncactError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot list the image folder (${code})`, dir);
  }
  const images = names.filter((n) => !n.startsWith('.') && FORMATS[extname(n).toLowerCase()]).sort(naturalCompare);
  if (images.length === 0) throw new SyncactError('MOVIE_UNREADABLE', 'the folder has no .png, .jpg or .jpeg files', dir);
  const formats = new Set(images.map((n) => FORMATS[extname(n).toLowerCase()]));
  if (formats.size > 1) {
    throw new SyncactError('MOVIE_UNREADABLE', `the folder mixes PNG and JPEG frames (${images.slice(0, 3).join(', ')}, …): keep one format`, dir);
  }
  const files = images.map((n) => join(dir, n));
  const first = await probeMovie(files[0], { ffprobePath: options.ffprobePath ?? locateFfprobe() });
  return {
    dir,
    files,
    format: [...formats][0],
    fps: options.fps,
    frameCount: files.length,
    duration: files.length / options.fps,
    width: first.width,
    height: first.height,
  };
}

/** The ffmpeg arguments that turn piped images into rgb24 frames (exported for tests). */
export function imageDecodeArgs(info: ImageFolderInfo, width: number, height: number): string[] {
  return [
    '-hide_banner',
    '-loglevel', 'error',
    // Stop at the first image that does not decode: the parser could otherwise resync
    // on a later image and every frame after it would carry the wrong index.
    '-xerror',
    '-f', `${info.format === 'png' ? 'png' : 'jpeg'}_pipe`,
    '-framerate', String(info.fps),
    '-i', 'pipe:0',
    '-vf', `scale=${width}:${height}:flags=area`,
    '-vsync', 'passthrough',
    '-pix_fmt', 'rgb24',
    '-f', 'rawvideo',
    'pipe:1',
  ];
}

/**
 * Streams frames [start, end) of an image folder. Files are read and fed as ffmpeg asks
 * for them (pipe backpressure both ways); leaving early kills ffmpeg.
 */
export function decodeImageFrames(info: ImageFolderInfo, options: ImageFolderDecodeOptions = {}): AsyncIterable<MovieFrame> {
  const start = options.start ?? 0;
  const end = options.end ?? info.frameCount;
  const width = options.width ?? info.width + (info.width % 2);
  const height = options.height ?? info.height + (info.height % 2);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > info.frameCount || start > end) {
    throw new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `frames ${start}..${end} are not within 0..${info.frameCount} (the folder has ${info.frameCount} images)`, info.dir);
  }
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v <= 0 || v % 2 !== 0) {
      throw new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `output ${name} must be a positive even number of pixels; got ${v}`, info.dir);
    }
  }
  const ffmpeg = options.ffmpegPath ?? locateFfmpeg();
  return {
    async *[Symbol.asyncIterator]() {
      if (start === end) return;
      const frameBytes = width * height * 3;
      const child = spawn(ffmpeg, imageDecodeArgs(info, width, height), { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        let error: Error | undefined;
        child.on('error', (e) => {
          error = e;
          if (child.pid === undefined) resolve({ code: null, signal: null, error });
        });
        child.on('close', (code, signal) => resolve({ code, signal, error }));
      });
      // Feeding: one file at a time, waiting for the pipe to drain. A write error means
      // ffmpeg has gone; its exit status then says why.
      child.stdin.on('error', () => undefined);
      let feedError: SyncactError | null = null;
      let stop = false;
      const feeding = (async () => {
        for (let i = start; i < end && !stop; i++) {
          let bytes: Buffer;
          try {
            const handle = await open(info.files[i], 'r');
            try {
              bytes = await handle.readFile();
            } finally {
              await handle.close();
            }
          } catch (e) {
            feedError = new SyncactError('FILE_UNREADABLE', `frame ${i}: cannot read (${(e as NodeJS.ErrnoException).code})`, info.files[i]);
            child.kill('SIGKILL');
            return;
          }
          if (child.stdin.destroyed) return;
          if (!child.stdin.write(bytes)) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                child.stdin.off('drain', done);
                child.stdin.off('close', done);
                resolve();
              };
              child.stdin.on('drain', done);
              child.stdin.on('close', done);
            });
          }
        }
        child.stdin.end();
      })();
      let decoded = 0;
      let frame = new Uint8Array(frameBytes);
      let filled = 0;
      let finished = false;
      const failure = (why: string): SyncactError => {
        const next = start + decoded;
        return new SyncactError(
          'MOVIE_DECODE_FAILED',
          `decoding frames ${start}..${end - 1} failed, last frame decoded: ${decoded > 0 ? `frame ${next - 1}` : 'none'}` +
            `${next < end ? ` (next: ${info.files[next]})` : ''}; ${why}`,
          info.dir,
        );
      };
      try {
        for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
          let offset = 0;
          while (offset < chunk.length) {
            const n = Math.min(frameBytes - filled, chunk.length - offset);
            frame.set(chunk.subarray(offset, offset + n), filled);
            filled += n;
            offset += n;
            if (filled === frameBytes) {
              const index = start + decoded++;
              filled = 0;
              const rgb = frame;
              frame = new Uint8Array(frameBytes);
              yield { index, time: index / info.fps, rgb };
            }
          }
        }
        await feeding;
        const { code, signal, error } = await exited;
        finished = true;
        if (feedError) throw feedError;
        if (error) throw new SyncactError('FFMPEG_FAILED', `cannot run ${ffmpeg}: ${error.message}`, info.dir);
        const last = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
        if (code !== 0) throw failure(`ffmpeg ${signal ? `was killed (${signal})` : `exited with ${code}`}${last ? `: ${last}` : ''}`);
        if (decoded < end - start || filled > 0) {
          throw failure(`ffmpeg gave ${decoded} of ${end - start} frames (a damaged or non-image file?)${last ? `: ${last}` : ''}`);
        }
      } finally {
        stop = true;
        if (!finished) {
          child.kill('SIGKILL');
          await exited;
          await feeding;
        }
      }
    },
  };
}
