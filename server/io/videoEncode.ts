/**
 * Encoding raw RGB frames into an MP4 with a real ffmpeg (frames piped to its stdin).
 *
 * Reproducible on purpose: one encoder thread, `+bitexact` for the container and codec
 * (no version strings or timestamps in the file) and no metadata, so the same frames give
 * the same bytes on the same ffmpeg build, and a fixture's sha256 means something.
 * Written to `PATH.partial` and renamed at the end, like every other syncact output.
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { rename, rm } from 'node:fs/promises';
import { SyncactError } from '../errors.ts';
import { locateFfmpeg } from './ffmpeg.ts';

export interface EncodeVideoOptions {
  width: number;
  height: number;
  fps: number;
  frameCount: number;
  /** Frame i as RGB bytes (width·height·3), row-major from the top-left. */
  frame(i: number): Uint8Array;
  /** H.264 (libx264, default) or MPEG-4 part 2 for ffmpeg builds without x264. */
  codec?: 'libx264' | 'mpeg4';
  /** An ffmpeg executable; default locateFfmpeg(). */
  ffmpegPath?: string;
}

/** The ffmpeg arguments for encoding rgb24 frames from stdin into `output` (an MP4). */
export function encodeArgs(o: EncodeVideoOptions, output: string): string[] {
  const codec = o.codec ?? 'libx264';
  const quality = codec === 'libx264' ? ['-preset', 'medium', '-crf', '18'] : ['-q:v', '3'];
  return [
    '-hide_banner',
    '-loglevel', 'error',
    '-y',
    '-f', 'rawvideo',
    '-pix_fmt', 'rgb24',
    '-s', `${o.width}x${o.height}`,
    '-framerate', String(o.fps),
    '-i', 'pipe:0',
    '-an',
    '-c:v', codec,
    ...quality,
    '-pix_fmt', 'yuv420p',
    '-threads', '1',
    '-fflags', '+bitexact',
    '-flags:v', '+bitexact',
    '-map_metadata', '-1',
    '-f', 'mp4',
    output,
  ];
}

/** Encodes the frames into an MP4 at `path`; FFMPEG_FAILED (with ffmpeg's stderr) on failure. */
export async function encodeVideo(path: string, o: EncodeVideoOptions): Promise<void> {
  if (!(o.width > 0 && o.height > 0 && o.width % 2 === 0 && o.height % 2 === 0)) {
    throw new SyncactError('FFMPEG_FAILED', `frame size ${o.width}×${o.height} must be positive and even (yuv420p)`, path);
  }
  if (!(o.fps > 0) || !Number.isInteger(o.frameCount) || o.frameCount < 1) {
    throw new SyncactError('FFMPEG_FAILED', `need fps > 0 and at least one frame (fps ${o.fps}, ${o.frameCount} frames)`, path);
  }
  const ffmpeg = o.ffmpegPath ?? locateFfmpeg();
  const partial = path + '.partial';
  const child = spawn(ffmpeg, encodeArgs(o, partial), { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  // Resolves (never rejects) when ffmpeg is gone: exit code, or null with spawnError set
  // when it could not be started at all.
  let spawnError: Error | null = null;
  let gone = false;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      spawnError = e;
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  }).finally(() => {
    gone = true;
  });
  // ffmpeg closing stdin early (bad option, full disk) shows up as EPIPE here; its exit code
  // and stderr then say why, so the write error itself is only a signal to stop feeding.
  child.stdin.on('error', () => undefined);
  const frameBytes = o.width * o.height * 3;
  try {
    for (let i = 0; i < o.frameCount && !gone && !child.stdin.destroyed; i++) {
      const frame = o.frame(i);
      if (frame.length !== frameBytes) {
        throw new SyncactError('FFMPEG_FAILED', `frame ${i} has ${frame.length} bytes, expected ${frameBytes}`, path);
      }
      if (!child.stdin.write(frame)) await drainOrExit(child.stdin, exited);
    }
    child.stdin.end();
    const code = await exited;
    if (spawnError) {
      throw new SyncactError('FFMPEG_FAILED', `cannot run ${ffmpeg}: ${(spawnError as Error).message}`, path);
    }
    if (code !== 0) {
      throw new SyncactError('FFMPEG_FAILED', `ffmpeg exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`, path);
    }
    await rename(partial, path);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    await rm(partial, { force: true });
    if (e instanceof SyncactError) throw e;
    throw new SyncactError('FFMPEG_FAILED', `cannot encode with ${ffmpeg}: ${(e as Error).message}`, path);
  }
}

/** Resolves when the stream can take more, is gone, or ffmpeg exited; removes its listeners. */
function drainOrExit(stream: Writable, exited: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    void exited.then(done);
  });
}
