/**
 * The session's readers: masked volumes from a 4D NIfTI (in any order, a truncated file
 * failing the TR that needs the missing volume), the shared sequential reader, and the
 * movie readers (CNN frames and thumbnails) leaving no ffmpeg behind.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncactError } from '../../server/errors.ts';
import { locateFfmpeg } from '../../server/io/ffmpeg.ts';
import { decodeFrames, probeMovie } from '../../server/io/movieDecoder.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { encodeVideo } from '../../server/io/videoEncode.ts';
import { planLockstep } from '../../server/streams/lockstep.ts';
import { gather, movieFrames, movieThumbnails, niftiVolumes, sequentialReader } from '../../server/streams/sessionReaders.ts';
import { fakeExtractor } from './pipelineFixtures.ts';

const dims = [6, 5, 4, 8];
const perVolume = 6 * 5 * 4;
const affine = [
  [2, 0, 0, 0],
  [0, 2, 0, 0],
  [0, 0, 2, 0],
  [0, 0, 0, 1],
];
/** Voxel i of volume k: k + i/1000, so every value names its volume. */
const data = Float32Array.from({ length: perVolume * 8 }, (_, i) => Math.floor(i / perVolume) + (i % perVolume) / 1000);
const indices = Uint32Array.from([0, 7, 19, 64, 65, 119]);

let tmp: string;
let plain: string;
let gz: string;
let truncated: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-readers-'));
  plain = join(tmp, 'bold.nii');
  gz = join(tmp, 'bold.nii.gz');
  await writeNifti(plain, data, { dims, affine });
  await writeNifti(gz, data, { dims, affine });
  // A complete gzip stream of a file cut inside volume 5.
  truncated = join(tmp, 'cut.nii.gz');
  writeFileSync(truncated, gzipSync(readFileSync(plain).subarray(0, 352 + Math.floor(5.5 * perVolume * 4))));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const expected = (k: number) => Array.from(gather(data.subarray(k * perVolume, (k + 1) * perVolume), indices));

describe('niftiVolumes', () => {
  it('gives the masked volume k in any order (forwards, a jump ahead, jumps back), .nii and .nii.gz', async () => {
    for (const path of [plain, gz]) {
      const volumes = niftiVolumes(await openNifti(path), indices);
      expect([volumes.count, volumes.voxels]).toEqual([8, indices.length]);
      for (const k of [0, 1, 2, 5, 3, 3, 0, 7, 6]) expect(Array.from(await volumes.read(k)), `${path} volume ${k}`).toEqual(expected(k));
      await expect(volumes.read(8)).rejects.toMatchObject({ code: 'REPLAY_MISSING_VOLUME', file: path });
      await expect(volumes.read(-1)).rejects.toMatchObject({ code: 'REPLAY_MISSING_VOLUME' });
      await volumes.close();
    }
  });

  describe('a truncated .nii.gz read by a busy engine', () => {
    const unhandled = vi.fn();
    beforeEach(() => {
      unhandled.mockReset();
      process.on('unhandledRejection', unhandled);
    });
    afterEach(() => {
      process.off('unhandledRejection', unhandled);
    });

    it('fails the TR of the missing volume with NIFTI_TRUNCATED_DATA, and that TR only', async () => {
      const volumes = niftiVolumes(await openNifti(truncated), indices);
      for (let k = 0; k < 5; k++) {
        expect(Array.from(await volumes.read(k))).toEqual(expected(k));
        await sleep(20); // the engine at work: the read-ahead of k+1 runs meanwhile
      }
      await expect(volumes.read(5)).rejects.toMatchObject({ code: 'NIFTI_TRUNCATED_DATA', file: truncated, message: expect.stringContaining('volume 5') });
      // Failing leaves nothing broken behind: earlier volumes read again, later ones fail the same way.
      expect(Array.from(await volumes.read(2))).toEqual(expected(2));
      await expect(volumes.read(6)).rejects.toMatchObject({ code: 'NIFTI_TRUNCATED_DATA' });
      await volumes.close();
      await sleep(10);
      expect(unhandled).not.toHaveBeenCalled();
    });
  });
});

describe('sequentialReader', () => {
  it('serves reads one at a time in call order, reopening for a jump back or a long jump ahead', async () => {
    const opened: number[] = [];
    const returned: number[] = [];
    const open = (start: number): AsyncIterable<{ index: number }> => ({
      [Symbol.asyncIterator]: async function* () {
        opened.push(start);
        try {
          for (let i = start; i < 100; i++) {
            await sleep(1);
            yield { index: i };
          }
        } finally {
          returned.push(start);
        }
      },
    });
    const reader = sequentialReader(open, (i) => new SyncactError('MOVIE_FRAME_OUT_OF_RANGE', `no ${i}`), 5);
    // Issued together: each still gets its own item, in order.
    const got = await Promise.all([3, 1, 4, 9, 20, 2].map((i) => reader.read(i)));
    expect(got.map((r) => r.index)).toEqual([3, 1, 4, 9, 20, 2]);
    // 3 opens; 1 is before 4: reopen; 4, then 9 (4 past: read on); 20 (10 past): reopen; 2: reopen.
    expect(opened).toEqual([3, 1, 20, 2]);
    expect(returned).toEqual([3, 1, 20]);
    await reader.close();
    expect(returned).toEqual([3, 1, 20, 2]);
    await expect(reader.read(100)).rejects.toThrow('no 100');
    expect(opened).toEqual([3, 1, 20, 2, 100]);
  });
});

describe('movie readers', () => {
  const W = 96;
  const H = 72;
  const FPS = 8;
  const N = 96;
  let movie: string;
  let pids: string;
  let savedPath: string | undefined;
  let realFfmpeg: string;

  beforeAll(async () => {
    movie = join(tmp, 'movie.mp4');
    await encodeVideo(movie, { width: W, height: H, fps: FPS, frameCount: N, frame: (i) => new Uint8Array(W * H * 3).fill(2 * i) });
    // Every ffmpeg the readers start goes through this wrapper, which records its pid.
    realFfmpeg = locateFfmpeg();
    pids = join(tmp, 'ffmpeg.pids');
    const wrapper = join(tmp, 'ffmpeg-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\necho $$ >> ${pids}\nexec ${realFfmpeg} "$@"\n`);
    chmodSync(wrapper, 0o755);
    savedPath = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = wrapper;
  });
  afterAll(() => {
    if (savedPath === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = savedPath;
  });
  beforeEach(() => writeFileSync(pids, ''));

  function running(): number[] {
    const all = readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number);
    return all.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
  }

  it('thumbnails are the TR\'s last frame, from one decoder streaming across TRs; a seek back restarts it; close reaps it', async () => {
    const plan = planLockstep({ headerTr: 1, volumeCount: 12, fps: FPS, frameCount: N });
    const thumbs = await movieThumbnails(movie, plan, undefined);
    const info = await probeMovie(movie);
    const reference = async (i: number) => {
      for await (const f of decodeFrames(info, { start: i, end: i + 1, width: 64, height: 48, ffmpegPath: realFfmpeg })) return Array.from(f.rgb);
      return null;
    };
    for (const k of [0, 1, 2, 3, 4, 1, 11]) {
      const t = await thumbs.frame(k);
      expect([t?.width, t?.height]).toEqual([64, 48]);
      expect(Array.from(t!.rgb), `TR ${k}`).toEqual(await reference(8 * k + 7));
    }
    const started = readFileSync(pids, 'utf8').split('\n').filter(Boolean).length;
    // TRs 0..4 from one decoder; TR 1 (back) and TR 11 (7 s ahead) restart it.
    expect(started).toBe(3);
    await thumbs.close();
    expect(running()).toEqual([]);
  });

  it('CNN frames: closing part-way through the movie stops the decoder there', async () => {
    const frames = await movieFrames(movie, fakeExtractor(), undefined);
    expect([frames.source.width, frames.source.height, frames.source.frameCount]).toEqual([64, 64, N]);
    for (const i of [0, 1, 2]) await frames.source.frame(i);
    expect((await frames.source.frame(10))[0]).toBeGreaterThan(0);
    expect(running().length).toBe(1);
    await frames.close();
    expect(running()).toEqual([]);
  });
});
