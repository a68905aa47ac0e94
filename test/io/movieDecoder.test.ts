import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFrames, openMovie, parseRate, probeMovie, type MovieFrame, type MovieInfo } from '../../server/io/movieDecoder.ts';
import { encodeVideo } from '../../server/io/videoEncode.ts';
import { locateFfmpeg } from '../../server/io/ffmpeg.ts';

const W = 64;
const H = 48;
const FPS = 24;
const N = 72;

/**
 * Frame i: grey 16 + 3i with a ±8 checkerboard on top (mean zero), so the frame's mean
 * grey value says which frame it is, even after lossy coding and scaling.
 */
function frame(i: number): Uint8Array {
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = 16 + 3 * i + ((Math.floor(x / 8) + Math.floor(y / 8)) % 2 === 0 ? 8 : -8);
      rgb.fill(v, (y * W + x) * 3, (y * W + x) * 3 + 3);
    }
  }
  return rgb;
}

function identity(f: MovieFrame): number {
  let sum = 0;
  for (const v of f.rgb) sum += v;
  return Math.round((sum / f.rgb.length - 16) / 3);
}

async function collect(it: AsyncIterable<MovieFrame>): Promise<MovieFrame[]> {
  const out: MovieFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

let dir: string;
let movie: string;
let info: MovieInfo;

async function fakeFfmpeg(name: string, script: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-movie-'));
  movie = join(dir, 'index.mp4');
  await encodeVideo(movie, { width: W, height: H, fps: FPS, frameCount: N, frame });
  info = await probeMovie(movie);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('probeMovie', () => {
  it('reports size, rate, frame count and duration', () => {
    expect(info).toMatchObject({ path: movie, width: W, height: H, fps: FPS, frameCount: N, codec: 'h264', variableFrameRate: false });
    expect(info.duration).toBeCloseTo(N / FPS, 9);
  });

  it('parses ffprobe rates', () => {
    expect(parseRate('30000/1001')).toBeCloseTo(29.97002997, 6);
    expect(parseRate('25')).toBe(25);
    expect(parseRate('0/0')).toBe(0);
    expect(parseRate(undefined)).toBe(0);
  });

  it('MOVIE_UNREADABLE for a file that is not a video, FILE_NOT_FOUND for none', async () => {
    const text = join(dir, 'notes.mp4');
    await writeFile(text, 'not a movie at all\n'.repeat(50));
    await expect(probeMovie(text)).rejects.toMatchObject({ code: 'MOVIE_UNREADABLE', file: text, message: expect.stringContaining('ffprobe cannot read it as a video') });
    await expect(probeMovie(join(dir, 'absent.mp4'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    // An MP4 cut in half loses its index (the moov atom is written last): unreadable, not a hang.
    const bytes = await readFile(movie);
    const cut = join(dir, 'cut.mp4');
    await writeFile(cut, bytes.subarray(0, bytes.length >> 1));
    await expect(probeMovie(cut)).rejects.toMatchObject({ code: 'MOVIE_UNREADABLE', file: cut });
  });
});

describe('decodeFrames', () => {
  it('gives every frame once, in order, with its time', async () => {
    const frames = await collect(decodeFrames(info));
    expect(frames.map((f) => f.index)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(frames.map(identity)).toEqual(frames.map((f) => f.index));
    for (const f of frames) {
      expect(f.rgb.length).toBe(W * H * 3);
      expect(f.time).toBeCloseTo(f.index / FPS, 12);
    }
    // Each frame owns its bytes (not a view of a reused buffer).
    expect(frames[0].rgb.buffer).not.toBe(frames[1].rgb.buffer);
  });

  it('seeks frame-accurately: from frame 37 the first frame is 37, identical to decoding from 0 and skipping', async () => {
    const seeked = await collect(decodeFrames(info, { start: 37, end: 42 }));
    const skipped = await collect(decodeFrames(info, { start: 37, end: 42, seek: 'decode' }));
    expect(seeked.map((f) => f.index)).toEqual([37, 38, 39, 40, 41]);
    expect(seeked.map(identity)).toEqual([37, 38, 39, 40, 41]);
    expect(skipped.map(identity)).toEqual([37, 38, 39, 40, 41]);
    for (let i = 0; i < 5; i++) expect(Buffer.compare(seeked[i].rgb, skipped[i].rgb)).toBe(0);
    // Every start position, including the first and last frames.
    for (const start of [1, 23, 24, 25, 47, 71]) {
      const [first] = await collect(decodeFrames(info, { start, end: start + 1 }));
      expect([first.index, identity(first)]).toEqual([start, start]);
    }
  });

  it('scales to the requested size', async () => {
    const [f] = await collect(decodeFrames(info, { start: 10, end: 11, width: 32, height: 24 }));
    expect(f.rgb.length).toBe(32 * 24 * 3);
    expect(identity(f)).toBe(10);
  });

  it('an empty range decodes nothing; a range outside the movie is MOVIE_FRAME_OUT_OF_RANGE', async () => {
    expect(await collect(decodeFrames(info, { start: 5, end: 5 }))).toEqual([]);
    expect(() => decodeFrames(info, { start: 70, end: 73 })).toThrow(expect.objectContaining({ code: 'MOVIE_FRAME_OUT_OF_RANGE', file: movie }) as unknown as Error);
    expect(() => decodeFrames(info, { width: 33 })).toThrow(/positive even/);
  });

  it('leaving the loop early kills ffmpeg', async () => {
    const pidFile = join(dir, 'ffmpeg.pid');
    const wrapper = await fakeFfmpeg('ffmpeg-pid', `echo $$ > ${pidFile}\nexec ${locateFfmpeg()} "$@"`);
    let n = 0;
    for await (const f of decodeFrames(info, { ffmpegPath: wrapper })) {
      expect(f.index).toBe(n);
      if (++n === 2) break;
    }
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }) as unknown as Error);
  });

  it('leaving the loop while frames wait in the pipe ends the loop and reaps ffmpeg (no hang)', async () => {
    // Frames large enough that ffmpeg fills the pipe and the stream's buffer while the
    // consumer holds frame 1: the stream is then paused with data and never sees the pipe
    // close on its own, which used to leave the loop waiting forever for ffmpeg's 'close'.
    const big = join(dir, 'big.mp4');
    const bw = 160;
    const bh = 120;
    await encodeVideo(big, { width: bw, height: bh, fps: FPS, frameCount: 48, frame: (i) => new Uint8Array(bw * bh * 3).fill(4 * i) });
    const bigInfo = await probeMovie(big);
    const pidFile = join(dir, 'ffmpeg-big.pid');
    const wrapper = await fakeFfmpeg('ffmpeg-pid-big', `echo $$ > ${pidFile}\nexec ${locateFfmpeg()} "$@"`);
    const seen: number[] = [];
    const loop = (async () => {
      for await (const f of decodeFrames(bigInfo, { ffmpegPath: wrapper })) {
        seen.push(f.index);
        if (seen.length === 2) {
          await new Promise((resolve) => setTimeout(resolve, 300)); // ffmpeg fills the pipe meanwhile
          break;
        }
      }
      return 'left';
    })();
    // A hang detector, not a timing threshold: a correct decoder returns in milliseconds.
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 15_000)));
    expect(await Promise.race([loop, hung])).toBe('left');
    clearTimeout(timer);
    expect(seen).toEqual([0, 1]);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }) as unknown as Error);
  });
});

describe('decodeFrames: a decoder that dies mid-stream', () => {
  it('a truncated movie is MOVIE_DECODE_FAILED naming the file and the last frame decoded', async () => {
    // Index first (faststart), then cut the last fifth (the index takes about half of this
    // tiny file): ffprobe still reads it, decoding runs out of data part-way.
    const faststart = join(dir, 'faststart.mp4');
    const r = spawnSync(locateFfmpeg(), ['-hide_banner', '-loglevel', 'error', '-y', '-i', movie, '-c', 'copy', '-movflags', '+faststart', faststart]);
    expect(r.status).toBe(0);
    const bytes = await readFile(faststart);
    const truncated = join(dir, 'truncated.mp4');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.8)));
    const t = await probeMovie(truncated);
    expect(t.frameCount).toBe(N);
    const seen: number[] = [];
    const error = await (async () => {
      try {
        for await (const f of decodeFrames(t)) seen.push(f.index);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(N);
    expect(error).toMatchObject({
      code: 'MOVIE_DECODE_FAILED',
      file: truncated,
      message: expect.stringContaining(`last frame decoded: frame ${seen.length - 1}; the stream ended after ${seen.length} of ${N} frames`),
    });
  });

  it('an ffmpeg that exits with an error after 2.5 frames', async () => {
    const dying = await fakeFfmpeg('ffmpeg-dies', `head -c ${Math.floor(2.5 * W * H * 3)} /dev/zero\necho "decoder exploded" >&2\nexit 1`);
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const f of decodeFrames(info, { start: 10, ffmpegPath: dying })) seen.push(f.index);
      })(),
    ).rejects.toMatchObject({
      code: 'MOVIE_DECODE_FAILED',
      file: movie,
      message: `${movie}: decoding frames 10..71 failed, last frame decoded: frame 11; ffmpeg exited with 1: decoder exploded`,
    });
    expect(seen).toEqual([10, 11]);
  });

  it('an ffmpeg that is killed', async () => {
    const killed = await fakeFfmpeg('ffmpeg-killed', `head -c ${W * H * 3} /dev/zero\nkill -9 $$`);
    await expect(
      (async () => {
        for await (const _ of decodeFrames(info, { ffmpegPath: killed })) void _;
      })(),
    ).rejects.toMatchObject({ code: 'MOVIE_DECODE_FAILED', message: expect.stringContaining('last frame decoded: frame 0; ffmpeg was killed (SIGKILL)') });
  });

  it('an ffmpeg that stops producing output is stopped, not waited for forever', async () => {
    const stuck = await fakeFfmpeg('ffmpeg-stuck', `head -c ${W * H * 3} /dev/zero\nexec sleep 30`);
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const f of decodeFrames(info, { start: 3, ffmpegPath: stuck, stallTimeoutMs: 150 })) seen.push(f.index);
      })(),
    ).rejects.toMatchObject({
      code: 'MOVIE_DECODE_FAILED',
      message: expect.stringContaining('last frame decoded: frame 3; ffmpeg gave no output for 0.15 s and was stopped'),
    });
    expect(seen).toEqual([3]);
  });

  it('openMovie binds the probe and the decoder', async () => {
    const m = await openMovie(movie);
    expect(m.info.frameCount).toBe(N);
    const frames = await collect(m.frames({ start: 70 }));
    expect(frames.map(identity)).toEqual([70, 71]);
    expect((await stat(movie)).size).toBeGreaterThan(0);
  });
});
