/**
 * Movie files through a real ffmpeg: `probeMovie` asks ffprobe for the frame rate, size,
 * duration and frame count; `decodeFrames` streams RGB frames (rgb24, row-major from the
 * top-left) at a requested size, from any frame.
 *
 * Frame i is the i-th frame of the first video stream and its time is i / fps (constant
 * frame rate assumed, as for any movie shown in a scanner; `variableFrameRate` flags files
 * whose average and nominal rates differ).
 *
 * Seeking: `-ss` before `-i` makes ffmpeg jump to the keyframe before the target and
 * decode (and drop) up to it, which is fast and, since ffmpeg 2.1 ("accurate seek"),
 * exact: frames earlier than the seek time are discarded. The seek time is placed half a
 * frame before frame `start`, so that rounding of timestamps (time bases like 1/12800)
 * can neither keep frame start−1 nor drop frame start. The test decodes from frame 37 both
 * ways (seek, and decode-from-0-and-skip) and checks byte equality and the frame's
 * identity; `seek: 'decode'` stays available for files whose timestamps are unreliable.
 *
 * Failures name the file: a file ffprobe cannot read is MOVIE_UNREADABLE; an ffmpeg that
 * exits with an error, is killed, or ends before the requested frames is
 * MOVIE_DECODE_FAILED with the last frame decoded, never silently fewer frames; one that
 * stops producing output is stopped after `stallTimeoutMs` and reported the same way,
 * never a hang.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { SyncactError } from '../errors.ts';
import { locateFfmpeg, locateFfprobe } from './ffmpeg.ts';

export interface MovieInfo {
  path: string;
  /** Native frame size in pixels. */
  width: number;
  height: number;
  /** Frames per second (the stream's average rate; its nominal rate when absent). */
  fps: number;
  frameCount: number;
  /** Seconds: frameCount / fps. */
  duration: number;
  /** ffprobe's codec name (h264, mpeg4, png, …). */
  codec: string;
  /** The average and nominal frame rates differ: frame times i/fps may be approximate. */
  variableFrameRate: boolean;
}

export interface MovieFrame {
  /** Frame index from 0. */
  index: number;
  /** Movie time of the frame (s): index / fps. */
  time: number;
  /** width·height·3 bytes, rgb24, row-major from the top-left. */
  rgb: Uint8Array;
}

export interface ProbeOptions {
  /** Default locateFfprobe(). */
  ffprobePath?: string;
}

export interface DecodeOptions {
  /** First frame (default 0). */
  start?: number;
  /** One past the last frame (default frameCount). */
  end?: number;
  /** Output size (default the native size); must be even, as yuv decoders and the CNN expect. */
  width?: number;
  height?: number;
  /** 'input' (default): fast accurate seek with -ss before -i; 'decode': decode from frame 0 and skip. */
  seek?: 'input' | 'decode';
  /** Default locateFfmpeg(). */
  ffmpegPath?: string;
  /**
   * Milliseconds without a byte from ffmpeg, while a frame is awaited, after which the
   * decoder is taken as stuck (a stalled network share, a wedged process): killed and
   * reported as MOVIE_DECODE_FAILED. Default 60 000; a consumer's own pauses do not count.
   */
  stallTimeoutMs?: number;
}

/** How long ffprobe may take on one file before the file is called unreadable. */
const PROBE_TIMEOUT_MS = 60_000;

/** Runs a program to completion; never rejects (spawn errors come back as `error`). */
function runTool(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
    let error: Error | undefined;
    child.on('error', (e) => (error = e));
    child.on('close', (code) => resolve({ code, stdout, stderr, error }));
  });
}

function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').filter(Boolean).slice(-n).join(' | ');
}

/** "30000/1001" → 29.97…; 0 for "0/0" or garbage. */
export function parseRate(rate: unknown): number {
  if (typeof rate !== 'string') return 0;
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?$/.exec(rate.trim());
  if (!m) return 0;
  const den = m[2] === undefined ? 1 : Number(m[2]);
  const value = Number(m[1]) / den;
  return Number.isFinite(value) && value > 0 ? value : 0;
}

async function checkFile(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new SyncactError('MOVIE_UNREADABLE', 'not a regular file', path);
  } catch (e) {
    if (e instanceof SyncactError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read movie (${code})`, path);
  }
}

async function ffprobeJson(ffprobe: string, path: string, extra: string[]): Promise<Record<string, unknown>> {
  const r = await runTool(ffprobe, ['-v', 'error', '-select_streams', 'v:0', ...extra, '-of', 'json', path], PROBE_TIMEOUT_MS);
  if (r.error) throw new SyncactError('FFMPEG_FAILED', `cannot run ${ffprobe}: ${r.error.message}`, path);
  if (r.code !== 0) {
    throw new SyncactError('MOVIE_UNREADABLE', `ffprobe cannot read it as a video${r.code === null ? ' (timed out)' : ''}: ${lastLines(r.stderr) || `exit ${r.code}`}`, path);
  }
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new SyncactError('FFMPEG_FAILED', `ffprobe printed something that is not JSON: ${r.stdout.slice(0, 200)}`, path);
  }
}

/** Frame rate, size, frame count and duration of the first video stream. */
export async function probeMovie(path: string, options: ProbeOptions = {}): Promise<MovieInfo> {
  await checkFile(path);
  const ffprobe = options.ffprobePath ?? locateFfprobe();
  const json = await ffprobeJson(ffprobe, path, ['-show_entries', 'stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames']);
  const stream = (json.streams as Record<string, unknown>[] | undefined)?.[0];
  if (!stream) throw new SyncactError('MOVIE_UNREADABLE', 'the file has no video stream', path);
  const width = Number(stream.width);
  const height = Number(stream.height);
  const avg = parseRate(stream.avg_frame_rate);
  const nominal = parseRate(stream.r_frame_rate);
  const fps = avg || nominal;
  if (!(width > 0 && height > 0)) throw new SyncactError('MOVIE_UNREADABLE', `ffprobe reports no frame size (${stream.width}×${stream.height})`, path);
  if (!(fps > 0)) throw new SyncactError('MOVIE_UNREADABLE', `ffprobe reports no frame rate (avg ${String(stream.avg_frame_rate)}, nominal ${String(stream.r_frame_rate)})`, path);
  // nb_frames is in the MP4/MOV index; other containers (mkv, webm, ts) need the packets counted.
  let frameCount = Number(stream.nb_frames);
  if (!(Number.isInteger(frameCount) && frameCount > 0)) {
    const counted = await ffprobeJson(ffprobe, path, ['-count_packets', '-show_entries', 'stream=nb_read_packets']);
    frameCount = Number((counted.streams as Record<string, unknown>[] | undefined)?.[0]?.nb_read_packets);
  }
  if (!(Number.isInteger(frameCount) && frameCount > 0)) throw new SyncactError('MOVIE_UNREADABLE', 'the video stream has no frames', path);
  return {
    path,
    width,
    height,
    fps,
    frameCount,
    duration: frameCount / fps,
    codec: String(stream.codec_name ?? 'unknown'),
    variableFrameRate: avg > 0 && nominal > 0 && Math.abs(avg - nominal) > 1e-3 * nominal,
  };
}

/** The ffmpeg arguments that write frames [start, end) as rgb24 to stdout (exported for tests). */
export function decodeArgs(info: MovieInfo, o: Required<Pick<DecodeOptions, 'start' | 'end' | 'width' | 'height' | 'seek'>>): string[] {
  const seekInput = o.seek === 'input' && o.start > 0;
  const skipped = seekInput ? 0 : o.start;
  const scale = o.width === info.width && o.height === info.height ? [] : ['-vf', `scale=${o.width}:${o.height}:flags=area`];
  return [
    '-hide_banner',
    '-loglevel', 'error',
    '-nostdin',
    ...(seekInput ? ['-ss', ((o.start - 0.5) / info.fps).toFixed(6)] : []),
    '-i', info.path,
    '-map', '0:v:0',
    ...scale,
    // One output frame per decoded frame: no duplication or dropping to a nominal rate.
    '-vsync', 'passthrough',
    '-frames:v', String(skipped + (o.end - o.start)),
    '-pix_fmt', 'rgb24',
    '-f', 'rawvideo',
    'pipe:1',
  ];
}

function checkRange(info: MovieInfo, o: DecodeOptions): Required<Pick<DecodeOptions, 'start' | 'end' | 'width' | 'height' | 'seek' | 'stallTimeoutMs'>> {
  const start = o.start ?? 0;
  const end = o.end ?? info.frameCount;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > info.frameCount || start > end) {
    throw new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `frames ${start}..${end} are not within 0..${info.frameCount} (the movie has ${info.frameCount} frames)`, info.path);
  }
  const width = o.width ?? info.width;
  const height = o.height ?? info.height;
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v <= 0 || v % 2 !== 0) {
      throw new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `output ${name} must be a positive even number of pixels; got ${v}`, info.path);
    }
  }
  const stallTimeoutMs = o.stallTimeoutMs ?? 60_000;
  if (!(stallTimeoutMs > 0)) throw new SyncactError('REPLAY_BAD_OPTIONS', `stallTimeoutMs must be positive; got ${stallTimeoutMs}`, info.path);
  return { start, end, width, height, seek: o.seek ?? 'input', stallTimeoutMs };
}

/**
 * Streams frames [start, end) of a probed movie. The iterator pulls from ffmpeg's stdout,
 * so a slow consumer pauses the decoder (pipe backpressure); leaving the loop early kills
 * ffmpeg, drops what is left in its pipe and waits for the process to be reaped.
 */
export function decodeFrames(info: MovieInfo, options: DecodeOptions = {}): AsyncIterable<MovieFrame> {
  const o = checkRange(info, options);
  const ffmpeg = options.ffmpegPath ?? locateFfmpeg();
  return {
    [Symbol.asyncIterator]: () => frameIterator(info, o, ffmpeg),
  };
}

async function* frameIterator(info: MovieInfo, o: ReturnType<typeof checkRange>, ffmpeg: string): AsyncGenerator<MovieFrame> {
  if (o.start === o.end) return;
  const frameBytes = o.width * o.height * 3;
  const skip = o.seek === 'input' ? 0 : o.start;
  const child = spawn(ffmpeg, decodeArgs(info, o), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
  const exited = exitOf(child);
  let decoded = 0; // frames read from the pipe, skipped ones included
  let frame = new Uint8Array(frameBytes);
  let filled = 0;
  const lastFrame = (): string => (decoded > skip ? `frame ${o.start + decoded - skip - 1}` : 'none');
  const failure = (why: string): SyncactError =>
    new SyncactError('MOVIE_DECODE_FAILED', `decoding frames ${o.start}..${o.end - 1} failed, last frame decoded: ${lastFrame()}; ${why}`, info.path);
  let finished = false;
  try {
    const chunks = (child.stdout! as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (;;) {
      const next = await nextOrStall(chunks, o.stallTimeoutMs);
      if (next === 'stalled') {
        await stopChild(child, exited);
        finished = true;
        throw failure(`ffmpeg gave no output for ${o.stallTimeoutMs / 1000} s and was stopped`);
      }
      if (next.done) break;
      const chunk = next.value;
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(frameBytes - filled, chunk.length - offset);
        frame.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === frameBytes) {
          const index = o.start + decoded - skip;
          decoded++;
          filled = 0;
          if (index >= o.start) {
            const rgb = frame;
            frame = new Uint8Array(frameBytes);
            yield { index, time: index / info.fps, rgb };
          }
        }
      }
    }
    const { code, signal, error } = await exited;
    finished = true;
    if (error) throw new SyncactError('FFMPEG_FAILED', `cannot run ${ffmpeg}: ${error.message}`, info.path);
    const wanted = skip + (o.end - o.start);
    if (code !== 0) {
      throw failure(`ffmpeg ${signal ? `was killed (${signal})` : `exited with ${code}`}${stderr ? `: ${lastLines(stderr)}` : ''}`);
    }
    if (decoded < wanted || filled > 0) {
      throw failure(
        `the stream ended after ${decoded - skip} of ${o.end - o.start} frames${filled > 0 ? ` and ${filled} bytes of a partial frame` : ''}` +
          ` (the file may be truncated or damaged)${stderr ? `: ${lastLines(stderr)}` : ''}`,
      );
    }
  } finally {
    if (!finished) {
      // Left early (break, error downstream): stop the decoder and reap it.
      await stopChild(child, exited);
    }
  }
}

/**
 * Kills ffmpeg and waits for it to be reaped. Its stdout is destroyed first: 'close' (what
 * `exited` waits for) comes only once every stdio stream has closed, and a stdout paused
 * with unread frames in its buffer never sees the end of the pipe, so without this a
 * consumer that leaves early would wait forever.
 */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  child.kill('SIGKILL');
  child.stdout?.destroy();
  await exited;
}

/** The iterator's next result, or 'stalled' when none comes within `ms`; the timer never outlives the call. */
async function nextOrStall<T>(it: AsyncIterator<T>, ms: number): Promise<IteratorResult<T> | 'stalled'> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<'stalled'>((resolve) => {
    timer = setTimeout(() => resolve('stalled'), ms);
  });
  const next = it.next();
  // If the stall wins, the stream is killed and this read may reject later: not unhandled.
  next.catch(() => undefined);
  try {
    return await Promise.race([next, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    child.on('error', (e) => {
      error = e;
      // A spawn failure emits 'error' and possibly no 'close'.
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
    child.on('close', (code, signal) => resolve({ code, signal, error }));
  });
}

/** A probed movie with its decoder bound: what sources and the CLI hold on to. */
export interface MovieFile {
  info: MovieInfo;
  frames(options?: Omit<DecodeOptions, 'ffmpegPath'>): AsyncIterable<MovieFrame>;
}

export async function openMovie(path: string, options: ProbeOptions & { ffmpegPath?: string } = {}): Promise<MovieFile> {
  const info = await probeMovie(path, options);
  const ffmpegPath = options.ffmpegPath ?? locateFfmpeg();
  return { info, frames: (o = {}) => decodeFrames(info, { ...o, ffmpegPath }) };
}
