import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { naturalCompare, openLiveFolder, type LiveVolume } from '../../server/io/liveVolumes.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { createRng } from '../../server/engine/random.ts';
import { liveVolumeSource, niftiVolumeSource, type MovieSource } from '../../server/streams/sources.ts';
import { LockstepReader, planLockstep, type LockstepTr } from '../../server/streams/lockstep.ts';

const DIMS = [8, 8, 6] as const; // 1888-byte files: half of one ends inside the data, not the header
const NV = 7;
const V = DIMS[0] * DIMS[1] * DIMS[2];
const AFFINE = [
  [2, 0, 0, -4],
  [0, 2, 0, -3],
  [0, 0, 2, -2],
  [0, 0, 0, 1],
];
/** Volume k is written as vol_000k.nii, except these as .nii.gz. */
const GZ = new Set([4]);
const name = (k: number): string => `vol_${String(k).padStart(4, '0')}.nii${GZ.has(k) ? '.gz' : ''}`;

let dir: string;
let run4d: string;
/** The bytes of each 3D volume file, as a scanner export would write them. */
const files: Buffer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-live-'));
  const rng = createRng(7);
  const data = new Float32Array(V * NV);
  for (let i = 0; i < data.length; i++) data[i] = 1000 + 100 * rng.normal();
  run4d = join(dir, 'run.nii');
  await writeNifti(run4d, data, { dims: [...DIMS, NV], affine: AFFINE, tr: 2 });
  await mkdir(join(dir, 'staging'));
  for (let k = 0; k < NV; k++) {
    const path = join(dir, 'staging', name(k));
    await writeNifti(path, data.subarray(k * V, (k + 1) * V), { dims: [...DIMS], affine: AFFINE });
    files.push(await readFile(path));
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folder(sub: string): Promise<string> {
  const path = join(dir, sub);
  await mkdir(path);
  return path;
}

async function collect(it: AsyncIterable<LiveVolume>): Promise<LiveVolume[]> {
  const out: LiveVolume[] = [];
  for await (const v of it) out.push(v);
  return out;
}

function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('naturalCompare', () => {
  it('orders numbers by value, then padding, then text', () => {
    const names = ['vol10.nii', 'vol2.nii', 'vol1.nii', 'vol02.nii', 'a.nii', 'vol1b.nii', 'vol100.nii'];
    expect([...names].sort(naturalCompare)).toEqual(['a.nii', 'vol1.nii', 'vol1b.nii', 'vol2.nii', 'vol02.nii', 'vol10.nii', 'vol100.nii']);
  });
});

describe('live folder', () => {
  it('volumes copied in one by one, slowly, some half-written first, equal the 4D file', async () => {
    const live = await folder('live');
    // The export: starts after the replay is already waiting; volumes 1 and 4 (gzip) are
    // written in two halves with a pause longer than several polls; volume 5 appears
    // under a temporary name first and is renamed into place.
    const writer = (async () => {
      await sleep(30);
      for (let k = 0; k < NV; k++) {
        const target = join(live, name(k));
        if (k === 1 || k === 4) {
          const half = files[k].length >> 1;
          await writeFile(target, files[k].subarray(0, half));
          await sleep(100);
          await appendFile(target, files[k].subarray(half));
        } else if (k === 5) {
          await writeFile(target + '.partial', files[k]);
          await sleep(50);
          await rename(target + '.partial', target);
        } else {
          await writeFile(target, files[k]);
        }
        await sleep(20);
      }
    })();
    const source = await liveVolumeSource(live, { pollMs: 15, timeoutMs: 3000, count: NV });
    expect(source.grid.dims).toEqual([...DIMS]);
    expect(source.headerTr).toBeNull();
    expect(source.volumeCount).toBe(NV);
    const got: { index: number; data: Float32Array }[] = [];
    for await (const v of source.volumes(0)) got.push(v);
    await writer;
    const image = await openNifti(run4d);
    expect(got.map((v) => v.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (let k = 0; k < NV; k++) expect(Buffer.compare(bytes(got[k].data), bytes(await image.readVolume(k)))).toBe(0);
    await image.close();

    // The whole lockstep join gives the same TRs from the live folder as from the 4D file.
    const movie: MovieSource = {
      name: 'm',
      fps: 3,
      frameCount: 40,
      width: 1,
      height: 1,
      frames: (start, end) =>
        (async function* () {
          for (let i = start; i < end; i++) yield { index: i, time: i / 3, rgb: new Uint8Array([i]) };
        })(),
    };
    const fromFile = await niftiVolumeSource(run4d);
    const planFile = planLockstep({ headerTr: fromFile.headerTr, volumeCount: fromFile.volumeCount, fps: 3, frameCount: 40 });
    const planLive = planLockstep({ tr: 2, headerTr: source.headerTr, volumeCount: source.volumeCount, fps: 3, frameCount: 40 });
    expect(planLive).toEqual(planFile);
    const summary = (t: LockstepTr) => [t.tr, t.frames.map((f) => f.index), bytes(t.volume).toString('base64')];
    const a: unknown[] = [];
    const b: unknown[] = [];
    for await (const t of new LockstepReader(planFile, movie, fromFile).trs()) a.push(summary(t));
    for await (const t of new LockstepReader(planLive, movie, source).trs()) b.push(summary(t));
    expect(b).toEqual(a);
    await fromFile.close();
  });

  it('a gap in the numbering is waited for, then REPLAY_MISSING_VOLUME naming k, the folder and the later file', async () => {
    const live = await folder('gap');
    for (const k of [0, 1, 3]) await writeFile(join(live, name(k)), files[k]);
    const source = await openLiveFolder(live, { pollMs: 15, timeoutMs: 150 });
    const seen: number[] = [];
    const started = Date.now();
    await expect(
      (async () => {
        for await (const v of source.volumes()) seen.push(v.index);
      })(),
    ).rejects.toMatchObject({
      code: 'REPLAY_MISSING_VOLUME',
      file: live,
      message: `${live}: volume 2 did not arrive in ${live} within 0.15 s: the file numbered 2 is absent while vol_0003.nii is there`,
    });
    expect(seen).toEqual([0, 1]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('a late volume that arrives before the timeout is taken in its place', async () => {
    const live = await folder('late');
    for (const k of [0, 2]) await writeFile(join(live, name(k)), files[k]);
    const source = await openLiveFolder(live, { pollMs: 15, timeoutMs: 2000, count: 3 });
    setTimeout(() => void writeFile(join(live, name(1)), files[1]), 60);
    expect((await collect(source.volumes())).map((v) => v.file)).toEqual([0, 1, 2].map((k) => join(live, name(k))));
  });

  it('a file that stays half-written is reported as incomplete, never read', async () => {
    const live = await folder('stuck');
    await writeFile(join(live, name(0)), files[0]);
    await writeFile(join(live, name(1)), files[1].subarray(0, 500));
    const source = await openLiveFolder(live, { pollMs: 15, timeoutMs: 120 });
    const it = source.volumes()[Symbol.asyncIterator]();
    expect((await it.next()).value?.index).toBe(0);
    const error = await it.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'REPLAY_MISSING_VOLUME', file: live });
    expect((error as Error).message).toMatch(/volume 1 did not arrive in .* within 0\.12 s: vol_0001\.nii is incomplete \(500 bytes: .*file has 500 bytes but the header needs 1888/);
  });

  it('no first volume within firstTimeoutMs is REPLAY_MISSING_VOLUME for volume 0', async () => {
    const live = await folder('empty');
    await writeFile(join(live, 'notes.txt'), 'not a volume');
    await writeFile(join(live, '.vol_0000.nii'), files[0]);
    await expect(openLiveFolder(live, { pollMs: 15, firstTimeoutMs: 80 })).rejects.toMatchObject({
      code: 'REPLAY_MISSING_VOLUME',
      message: expect.stringContaining('volume 0 did not arrive'),
    });
    await expect(openLiveFolder(join(dir, 'absent'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(openLiveFolder(live, { pollMs: 0 })).rejects.toMatchObject({ code: 'REPLAY_BAD_OPTIONS' });
  });

  it('a volume on another grid is REPLAY_VOLUME_MISMATCH naming the file', async () => {
    const live = await folder('grid');
    await writeFile(join(live, name(0)), files[0]);
    const other = join(live, 'vol_0001.nii');
    await writeNifti(other, new Float32Array(4 * 4 * 3), { dims: [4, 4, 3], affine: AFFINE });
    const source = await openLiveFolder(live, { pollMs: 15, timeoutMs: 1000 });
    await expect(collect(source.volumes())).rejects.toMatchObject({ code: 'REPLAY_VOLUME_MISMATCH', file: other, message: expect.stringContaining('differs from the first volume') });
  });

  it('a folder exported earlier is read without waiting a poll per file', { timeout: 10_000 }, async () => {
    const live = await folder('earlier');
    for (let k = 0; k < NV; k++) await writeFile(join(live, name(k)), files[k]);
    // The last file has no later one: only its age says it is finished.
    const old = new Date(Date.now() - 5000);
    await utimes(join(live, name(NV - 1)), old, old);
    // A minute between polls: any wait for a second look would run past the test timeout.
    const source = await openLiveFolder(live, { pollMs: 60_000, timeoutMs: 120_000, count: NV });
    const got = await collect(source.volumes());
    expect(got.map((v) => v.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const image = await openNifti(run4d);
    for (let k = 0; k < NV; k++) expect(Buffer.compare(bytes(got[k].data), bytes(await image.readVolume(k)))).toBe(0);
    await image.close();
  });

  it('unnumbered names are taken in natural order', async () => {
    const live = await folder('named');
    await copyFile(join(dir, 'staging', name(0)), join(live, 'first.nii'));
    await copyFile(join(dir, 'staging', name(1)), join(live, 'second.nii'));
    await copyFile(join(dir, 'staging', name(2)), join(live, 'third.nii'));
    const source = await openLiveFolder(live, { pollMs: 15, timeoutMs: 1000, count: 3 });
    expect((await collect(source.volumes())).map((v) => v.file.slice(live.length + 1))).toEqual(['first.nii', 'second.nii', 'third.nii']);
  });
});
