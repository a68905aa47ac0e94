import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImageFrames, probeImageFolder } from '../../server/io/imageFolder.ts';
import { locateFfmpeg } from '../../server/io/ffmpeg.ts';
import type { MovieFrame } from '../../server/io/movieDecoder.ts';
import { imageFolderSource } from '../../server/streams/sources.ts';

const W = 24;
const H = 16;
const N = 12;

/** Frame i: a gradient whose offset encodes i, different in each channel. */
function frame(i: number): Uint8Array {
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * 3;
      rgb[p] = (10 * i + x) & 255;
      rgb[p + 1] = (200 - 7 * i + y) & 255;
      rgb[p + 2] = (x * y + i) & 255;
    }
  }
  return rgb;
}

/** Writes frames 0..N-1 as PREFIX1.EXT … PREFIXN.EXT with ffmpeg's image2 muxer. */
function writeImages(dir: string, ext: 'png' | 'jpg'): void {
  const input = Buffer.concat(Array.from({ length: N }, (_, i) => frame(i)));
  const r = spawnSync(
    locateFfmpeg(),
    ['-hide_banner', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${W}x${H}`, '-i', 'pipe:0', '-start_number', '1', join(dir, `img%d.${ext}`)],
    { input },
  );
  if (r.status !== 0) throw new Error(`ffmpeg could not write test images: ${r.stderr}`);
}

async function collect(it: AsyncIterable<MovieFrame>): Promise<MovieFrame[]> {
  const out: MovieFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

let dir: string;
let png: string;
let jpg: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-images-'));
  png = join(dir, 'png');
  jpg = join(dir, 'jpg');
  await mkdir(png);
  await mkdir(jpg);
  writeImages(png, 'png');
  writeImages(jpg, 'jpg');
  // Not frames: ignored.
  await writeFile(join(png, 'README.txt'), 'frames of the movie');
  await writeFile(join(png, '.hidden.png'), 'editor swap file');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('image folder', () => {
  it('lists frames in natural order (img10 after img9) with the session frame rate', async () => {
    const info = await probeImageFolder(png, { fps: 12.5 });
    expect(info.files.map((f) => f.slice(png.length + 1))).toEqual(Array.from({ length: N }, (_, i) => `img${i + 1}.png`));
    expect(info).toMatchObject({ format: 'png', fps: 12.5, frameCount: N, width: W, height: H });
    expect(info.duration).toBeCloseTo(N / 12.5, 12);
  });

  it('decodes PNG frames losslessly, in order, from any start', async () => {
    const info = await probeImageFolder(png, { fps: 10 });
    const frames = await collect(decodeImageFrames(info));
    expect(frames.map((f) => f.index)).toEqual(Array.from({ length: N }, (_, i) => i));
    for (const f of frames) {
      expect(Buffer.compare(f.rgb, frame(f.index))).toBe(0);
      expect(f.time).toBeCloseTo(f.index / 10, 12);
    }
    const tail = await collect(decodeImageFrames(info, { start: 9, end: 11 }));
    expect(tail.map((f) => f.index)).toEqual([9, 10]);
    expect(Buffer.compare(tail[0].rgb, frame(9))).toBe(0);
  });

  it('JPEG frames come out close to the originals; scaling gives the asked size', async () => {
    const info = await probeImageFolder(jpg, { fps: 10 });
    expect(info.format).toBe('jpeg');
    const [f] = await collect(decodeImageFrames(info, { start: 4, end: 5 }));
    const ref = frame(4);
    let err = 0;
    for (let i = 0; i < ref.length; i++) err += Math.abs(f.rgb[i] - ref[i]);
    expect(err / ref.length).toBeLessThan(8);
    const [small] = await collect(decodeImageFrames(info, { start: 0, end: 1, width: 12, height: 8 }));
    expect(small.rgb.length).toBe(12 * 8 * 3);
  });

  it('as a movie source', async () => {
    const source = await imageFolderSource(png, { fps: 5 });
    expect(source).toMatchObject({ name: png, fps: 5, frameCount: N, width: W, height: H });
    expect((await collect(source.frames(3, 6))).map((f) => f.index)).toEqual([3, 4, 5]);
    expect(await collect(source.frames(N, N))).toEqual([]);
  });

  it('an image that is not an image stops decoding with MOVIE_DECODE_FAILED, not a hang or shifted frames', async () => {
    const broken = join(dir, 'broken');
    await mkdir(broken);
    for (let i = 1; i <= 4; i++) await copyFile(join(png, `img${i}.png`), join(broken, `f${i}.png`));
    // Frame 2 is text with a .png name: no image parser can find a frame in it.
    await writeFile(join(broken, 'f3.png'), 'this is not a png '.repeat(40));
    const info = await probeImageFolder(broken, { fps: 10 });
    const seen: number[] = [];
    const error = await (async () => {
      try {
        for await (const f of decodeImageFrames(info)) {
          expect(Buffer.compare(f.rgb, frame(f.index))).toBe(0);
          seen.push(f.index);
        }
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toMatchObject({
      code: 'MOVIE_DECODE_FAILED',
      file: broken,
      message: expect.stringContaining(`last frame decoded: frame 1 (next: ${join(broken, 'f3.png')})`),
    });
    expect(seen).toEqual([0, 1]);
  });

  it('empty, mixed, missing folders and a bad rate are clear errors', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(probeImageFolder(empty, { fps: 10 })).rejects.toMatchObject({ code: 'MOVIE_UNREADABLE', message: expect.stringContaining('no .png, .jpg or .jpeg') });
    const mixed = join(dir, 'mixed');
    await mkdir(mixed);
    await copyFile(join(png, 'img1.png'), join(mixed, 'a1.png'));
    await copyFile(join(jpg, 'img2.jpg'), join(mixed, 'a2.jpg'));
    await expect(probeImageFolder(mixed, { fps: 10 })).rejects.toMatchObject({ code: 'MOVIE_UNREADABLE', message: expect.stringContaining('mixes PNG and JPEG') });
    await expect(probeImageFolder(join(dir, 'absent'), { fps: 10 })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(probeImageFolder(png, { fps: 0 })).rejects.toMatchObject({ code: 'REPLAY_BAD_OPTIONS' });
    const info = await probeImageFolder(png, { fps: 10 });
    expect(() => decodeImageFrames(info, { start: 3, end: 13 })).toThrow(expect.objectContaining({ code: 'MOVIE_FRAME_OUT_OF_RANGE' }) as unknown as Error);
    expect((await readFile(info.files[0])).subarray(1, 4).toString()).toBe('PNG');
  });
});
