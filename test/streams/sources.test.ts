import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastValueFrom, take, toArray } from 'rxjs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSyntheticSession, type SyntheticSession } from '../../server/synth/session.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { encodeVideo } from '../../server/io/videoEncode.ts';
import {
  fromAsyncIterable,
  movieFileSource,
  niftiVolumeSource,
  openMovieSource,
  openVolumeSource,
  syntheticMovieSource,
  syntheticVolumeSource,
  type MovieSource,
  type VolumeSource,
} from '../../server/streams/sources.ts';
import { frameRange, LockstepReader, planLockstep, type LockstepTr } from '../../server/streams/lockstep.ts';

let dir: string;
let session: SyntheticSession;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-sources-'));
  session = createSyntheticSession({ preset: 'tiny' });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function bytes(a: Float32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('synthetic sources', () => {
  it('give the session movie frames and BOLD volumes, from any start', async () => {
    const movie = syntheticMovieSource(session.movie);
    expect(movie).toMatchObject({ fps: session.movie.fps, frameCount: session.movie.frameCount, width: session.movie.width, height: session.movie.height });
    const frames = await collect(movie.frames(100, 103));
    expect(frames.map((f) => [f.index, f.time])).toEqual([100, 101, 102].map((i) => [i, i / session.movie.fps]));
    for (const f of frames) expect(Buffer.compare(bytes(f.rgb), bytes(session.movie.frame(f.index)))).toBe(0);
    expect(() => movie.frames(0, session.movie.frameCount + 1)).toThrow(expect.objectContaining({ code: 'MOVIE_FRAME_OUT_OF_RANGE' }) as unknown as Error);

    const volumes = syntheticVolumeSource(session);
    expect(volumes).toMatchObject({ headerTr: session.tr, volumeCount: session.nVolumes, voxelsPerVolume: 12 * 14 * 12 });
    const vs = await collect(volumes.volumes(57));
    expect(vs.map((v) => v.index)).toEqual([57, 58, 59]);
    for (const v of vs) expect(Buffer.compare(bytes(v.data), bytes(session.volume(v.index)))).toBe(0);
  });

  it('a 4D NIfTI of the session streams the same volumes, and the lockstep join gives the same TRs', async () => {
    const path = join(dir, 'bold.nii');
    const all = new Float32Array(session.nVolumes * 12 * 14 * 12);
    for (let k = 0; k < session.nVolumes; k++) all.set(session.volume(k), k * 12 * 14 * 12);
    await writeNifti(path, all, { dims: [...session.grid.dims, session.nVolumes], affine: session.grid.affine, tr: session.tr });
    const file = await niftiVolumeSource(path);
    expect(file).toMatchObject({ name: path, headerTr: session.tr, volumeCount: session.nVolumes });
    expect(file.grid.dims).toEqual(session.grid.dims);

    const movie = syntheticMovieSource(session.movie);
    const run = async (volumes: VolumeSource, m: MovieSource): Promise<LockstepTr[]> => {
      const plan = planLockstep({ headerTr: volumes.headerTr, volumeCount: volumes.volumeCount, fps: m.fps, frameCount: m.frameCount, onset: session.onset });
      const reader = new LockstepReader(plan, m, volumes);
      const out = await collect(reader.trs());
      await reader.close();
      return out;
    };
    const a = await run(file, movie);
    const b = await run(syntheticVolumeSource(session), movie);
    expect(a).toHaveLength(session.nVolumes);
    for (let k = 0; k < a.length; k++) {
      expect(Buffer.compare(bytes(a[k].volume), bytes(b[k].volume))).toBe(0);
      expect(a[k].frames.map((f) => f.index)).toEqual(b[k].frames.map((f) => f.index));
      // The tiny preset: 8 fps, TR 1 s, onset 0: 8 frames per TR.
      expect(a[k].frames.map((f) => f.index)).toEqual(Array.from({ length: 8 }, (_, i) => 8 * k + i));
    }
    await file.close();
  });
});

describe('movieFileSource', () => {
  it('decodes at the requested size and joins like the synthetic movie', async () => {
    const path = join(dir, 'movie.mp4');
    const m = session.movie;
    const frameCount = 48;
    await encodeVideo(path, { width: m.width, height: m.height, fps: m.fps, frameCount, frame: (i) => m.frame(i) });
    const source = await movieFileSource(path, { width: 32, height: 32 });
    expect(source).toMatchObject({ name: path, fps: m.fps, frameCount, width: 32, height: 32 });
    const frames = await collect(source.frames(8, 16));
    expect(frames.map((f) => f.index)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    for (const f of frames) expect(f.rgb.length).toBe(32 * 32 * 3);
    // 48 frames = 6 s against a 60-TR run: TRs 6.. carry nothing, and the plan says so.
    const plan = planLockstep({ headerTr: 1, volumeCount: 60, fps: source.fps, frameCount, fmri: 'bold', movie: path });
    expect(plan.movieEndTr).toBe(6);
    expect(frameRange(plan, 5)).toEqual({ start: 40, end: 48 });
    const reader = new LockstepReader(plan, source, syntheticVolumeSource(session));
    const trs = await collect(reader.trs());
    expect(trs.map((t) => t.frames.length)).toEqual([...Array(6).fill(8), ...Array(54).fill(0)]);
    await reader.close();
  });
});

describe('openMovieSource / openVolumeSource', () => {
  it('a file is a movie or a 4D run, a folder is an image folder or a live folder', async () => {
    const path = join(dir, 'short.mp4');
    await encodeVideo(path, { width: 16, height: 16, fps: 4, frameCount: 3, frame: () => new Uint8Array(16 * 16 * 3).fill(90) });
    expect(await openMovieSource(path)).toMatchObject({ name: path, frameCount: 3, fps: 4 });
    // The temp folder has no images: the image-folder path is taken and says so.
    await expect(openMovieSource(dir, { fps: 4 })).rejects.toMatchObject({ code: 'MOVIE_UNREADABLE', file: dir });
    await expect(openMovieSource(dir)).rejects.toMatchObject({ code: 'REPLAY_BAD_OPTIONS', message: expect.stringContaining('needs the movie frame rate') });
    await expect(openMovieSource(join(dir, 'nope.mp4'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    const liveDir = join(dir, 'live');
    await mkdir(liveDir);
    const bold = join(liveDir, 'one.nii');
    await writeNifti(bold, new Float32Array(8), { dims: [2, 2, 2], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] });
    expect(await openVolumeSource(bold)).toMatchObject({ name: bold, volumeCount: 1 });
    // A folder is watched as a live export; here volume 0 is one.nii (a 3D file).
    expect(await openVolumeSource(liveDir, { pollMs: 10, timeoutMs: 500, count: 1 })).toMatchObject({ name: liveDir, volumeCount: 1, headerTr: null });
  });
});

describe('fromAsyncIterable', () => {
  it('emits the values and completes; errors travel downstream', async () => {
    async function* three() {
      yield 1;
      yield 2;
      yield 3;
    }
    expect(await lastValueFrom(fromAsyncIterable(three()).pipe(toArray()))).toEqual([1, 2, 3]);
    async function* failing() {
      yield 1;
      throw new Error('disk gone');
    }
    await expect(lastValueFrom(fromAsyncIterable(failing()).pipe(toArray()))).rejects.toThrow('disk gone');
  });

  it('unsubscribing ends the iterator (what stops a decoder)', async () => {
    let finalized = false;
    let pulled = 0;
    async function* endless() {
      try {
        for (let i = 0; ; i++) {
          pulled++;
          yield i;
        }
      } finally {
        finalized = true;
      }
    }
    expect(await lastValueFrom(fromAsyncIterable(endless()).pipe(take(3), toArray()))).toEqual([0, 1, 2]);
    await new Promise((r) => setTimeout(r, 10));
    expect(finalized).toBe(true);
    expect(pulled).toBeLessThanOrEqual(4);
  });
});
