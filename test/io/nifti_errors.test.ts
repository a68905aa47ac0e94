/**
 * Damaged and wrong inputs to the NIfTI reader: each is made from a valid fixture by
 * patching or cutting bytes, and must fail with its stable code and a message naming the
 * file — never a plain Error, never zeros in place of missing data.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openNifti } from '../../server/io/nifti/read.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { SyncactError, type ErrorCode } from '../../server/errors.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const dir = mkdtempSync(join(tmpdir(), 'syncact-nifti-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fixture = (name: string) => new Uint8Array(readFileSync(join(fixtures, name)));
let counter = 0;
function file(bytes: Uint8Array, ext = '.nii'): string {
  const path = join(dir, `case${counter++}${ext}`);
  writeFileSync(path, bytes);
  return path;
}
function patched(name: string, edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const bytes = fixture(name);
  edit(new DataView(bytes.buffer), bytes);
  return bytes;
}

async function expectError(promise: Promise<unknown>, code: ErrorCode, ...fragments: string[]) {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(SyncactError);
  const e = err as SyncactError;
  expect(e.code, e.message).toBe(code);
  for (const f of fragments) expect(e.message).toContain(f);
  return e;
}

describe('openNifti on bad input', () => {
  it('FILE_NOT_FOUND and FILE_UNREADABLE', async () => {
    const missing = join(dir, 'nope.nii');
    await expectError(openNifti(missing), 'FILE_NOT_FOUND', missing);
    const folder = join(dir, 'folder.nii');
    mkdirSync(folder);
    await expectError(openNifti(folder), 'FILE_UNREADABLE', folder, 'not a regular file');
  });

  it('NIFTI_TRUNCATED_HEADER: empty file, header cut short (plain and gzip)', async () => {
    const empty = file(new Uint8Array(0));
    await expectError(openNifti(empty), 'NIFTI_TRUNCATED_HEADER', empty);
    const short = file(fixture('dt_int16.nii').subarray(0, 200));
    await expectError(openNifti(short), 'NIFTI_TRUNCATED_HEADER', short, '348 bytes', '200');
    const short2 = file(gzipSync(fixture('nifti2_float32.nii').subarray(0, 400)), '.nii.gz');
    await expectError(openNifti(short2), 'NIFTI_TRUNCATED_HEADER', short2, '540');
  });

  it('NIFTI_NOT_NIFTI: text, Analyze magic, damaged NIfTI-2 eol bytes, .img without .hdr', async () => {
    const text = file(new TextEncoder().encode('this is not an image, just some words '.repeat(20)));
    await expectError(openNifti(text), 'NIFTI_NOT_NIFTI', text, 'sizeof_hdr');
    const analyze = file(patched('dt_int16.nii', (_, b) => b.fill(0, 344, 348)));
    await expectError(openNifti(analyze), 'NIFTI_NOT_NIFTI', analyze, 'magic', 'Analyze');
    const eol = file(patched('nifti2_float32.nii', (_, b) => b.set([0x0a, 0x0a, 0x1a, 0x0a], 8)));
    await expectError(openNifti(eol), 'NIFTI_NOT_NIFTI', eol, 'eol');
    const lone = join(dir, 'lonely.img');
    writeFileSync(lone, new Uint8Array(64));
    await expectError(openNifti(lone), 'NIFTI_NOT_NIFTI', lone, '.hdr');
  });

  it('NIFTI_TRUNCATED_DATA at open for a short .nii, naming the complete volumes', async () => {
    const cut = file(fixture('dt_float32.nii').subarray(0, 352 + 24 * 4 + 10));
    await expectError(openNifti(cut), 'NIFTI_TRUNCATED_DATA', cut, '1 volumes are complete');
    const pairDir = join(dir, 'pair');
    mkdirSync(pairDir);
    copyFileSync(join(fixtures, 'pair_int16.hdr'), join(pairDir, 'p.hdr'));
    writeFileSync(join(pairDir, 'p.img'), fixture('pair_int16.img').subarray(0, 60));
    await expectError(openNifti(join(pairDir, 'p.hdr')), 'NIFTI_TRUNCATED_DATA', join(pairDir, 'p.img'));
  });

  it('NIFTI_TRUNCATED_DATA when a short .nii.gz reaches the missing volume (never zeros)', async () => {
    const raw = gunzipSync(fixture('scaled_int16.nii.gz'));
    const path = file(gzipSync(raw.subarray(0, raw.length - 5)), '.nii.gz');
    const img = await openNifti(path);
    expect((await img.readVolume(0)).length).toBe(24);
    await expectError(img.readVolume(1), 'NIFTI_TRUNCATED_DATA', path, 'volume 1');
    const seen: number[] = [];
    const streamed = (async () => {
      for await (const { index } of img.volumes()) seen.push(index);
    })();
    await expectError(streamed, 'NIFTI_TRUNCATED_DATA', 'volume 1');
    expect(seen).toEqual([0]);
    await img.close();
  });

  it('NIFTI_TRUNCATED_DATA at open when a gzip file could not hold what the header claims', async () => {
    const raw = gunzipSync(fixture('scaled_int16.nii.gz'));
    const view = new DataView(raw.buffer, raw.byteOffset);
    view.setInt16(48, 30000, true); // dim[4]: 30000 volumes of 48 bytes from a ~300-byte file
    const path = file(gzipSync(raw), '.nii.gz');
    await expectError(openNifti(path), 'NIFTI_TRUNCATED_DATA', path, 'cannot hold');
  });

  it('NIFTI_GZIP_CORRUPT: compressed stream cut short, or damaged', async () => {
    const gz = fixture('scaled_int16.nii.gz');
    const cut = file(gz.subarray(0, gz.length - 30), '.nii.gz');
    const img = await openNifti(cut).catch((e: unknown) => e);
    if (img instanceof SyncactError) expect(img.code).toBe('NIFTI_GZIP_CORRUPT');
    else {
      const opened = img as Awaited<ReturnType<typeof openNifti>>;
      await expectError(
        (async () => {
          for await (const _ of opened.volumes()) void _;
        })(),
        'NIFTI_GZIP_CORRUPT',
        cut,
      );
    }
    const damaged = gz.slice();
    for (let i = 40; i < damaged.length - 8; i += 7) damaged[i] ^= 0x5a;
    const bad = file(damaged, '.nii.gz');
    await expectError(
      (async () => {
        const opened = await openNifti(bad);
        for await (const _ of opened.volumes()) void _;
      })(),
      'NIFTI_GZIP_CORRUPT',
      bad,
    );
  });

  it('NIFTI_BAD_DIMS: dim[0] out of 1..7, non-positive sizes, overflow', async () => {
    for (const [at, value, fragment] of [
      [40, 0, 'dim[0] is 0'],
      [40, 8, 'dim[0] is 8'],
      [44, -3, 'dim[2] is -3'],
      [46, 0, 'dim[3] is 0'],
    ] as const) {
      const path = file(patched('dt_int16.nii', (v) => v.setInt16(at, value, true)));
      await expectError(openNifti(path), 'NIFTI_BAD_DIMS', path, fragment);
    }
    // NIfTI-2 has 64-bit dims: a 2^20 × 2^20 × 2^20 grid cannot be held.
    const huge = file(
      patched('nifti2_float32.nii', (v) => {
        for (const i of [1, 2, 3]) v.setBigInt64(16 + 8 * i, 1n << 20n, true);
      }),
    );
    await expectError(openNifti(huge), 'NIFTI_BAD_DIMS', huge);
    const overflow = file(patched('nifti2_float32.nii', (v) => v.setBigInt64(16 + 8 * 4, 1n << 62n, true)));
    await expectError(openNifti(overflow), 'NIFTI_BAD_DIMS', overflow);
  });

  it('NIFTI_BAD_VOX_OFFSET: inside the header, fractional, negative, past the end of the file', async () => {
    for (const value of [100, 352.5, -16]) {
      const path = file(patched('dt_int16.nii', (v) => v.setFloat32(108, value, true)));
      await expectError(openNifti(path), 'NIFTI_BAD_VOX_OFFSET', path, `vox_offset is ${value}`);
    }
    const past = file(patched('dt_int16.nii', (v, bytes) => v.setFloat32(108, bytes.length + 64, true)));
    await expectError(openNifti(past), 'NIFTI_BAD_VOX_OFFSET', past, 'past the end');
  });

  it('NIFTI_BAD_SCALING: a valid slope with a non-finite intercept', async () => {
    const path = file(
      patched('dt_int16.nii', (v) => {
        v.setFloat32(112, 2, true);
        v.setFloat32(116, NaN, true);
      }),
    );
    await expectError(openNifti(path), 'NIFTI_BAD_SCALING', path, 'scl_inter');
  });

  it('NIFTI_UNSUPPORTED_DATATYPE for a code the standard does not define', async () => {
    const path = file(patched('dt_int16.nii', (v) => v.setInt16(70, 9999, true)));
    await expectError(openNifti(path), 'NIFTI_UNSUPPORTED_DATATYPE', path, 'datatype 9999');
  });

  it('NIFTI_MISSING_IMG: a .hdr whose .img is not there', async () => {
    const path = join(dir, 'orphan.hdr');
    copyFileSync(join(fixtures, 'pair_int16.hdr'), path);
    await expectError(openNifti(path), 'NIFTI_MISSING_IMG', path, 'orphan.img');
  });

  it('NIFTI_VOLUME_OUT_OF_RANGE for readVolume and volumes()', async () => {
    const img = await openNifti(join(fixtures, 'dt_int16.nii'));
    for (const k of [-1, 2, 1.5, NaN]) await expectError(img.readVolume(k), 'NIFTI_VOLUME_OUT_OF_RANGE', 'dt_int16.nii', '2 volumes');
    expect(() => img.volumes({ start: 3 })).toThrow(SyncactError);
    expect(() => img.volumes({ start: 1, end: 3 })).toThrow(/NIFTI|volume range/);
    const empty: number[] = [];
    for await (const { index } of img.volumes({ start: 2 })) empty.push(index);
    expect(empty).toEqual([]);
    await img.close();
  });
});

describe('volumes() read-ahead on a truncated .nii.gz with a slow consumer', () => {
  // Volume k+1 is inflated while the consumer still works on k. When k+1 is the missing
  // one, its failure arrives while nobody awaits it: it must be held for the consumer,
  // never become an unhandled rejection (which ends the process).
  const unhandled = vi.fn();
  beforeEach(() => {
    unhandled.mockReset();
    process.on('unhandledRejection', unhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', unhandled);
  });

  const dims = [16, 16, 16, 6];
  const perVolume = 16 * 16 * 16;
  async function truncatedGz(): Promise<string> {
    const plain = join(dir, `readahead${counter++}.nii`);
    const data = Float32Array.from({ length: perVolume * 6 }, (_, i) => Math.floor(i / perVolume) + (i % perVolume) * 1e-3);
    await writeNifti(plain, data, { dims, affine: [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]] });
    const raw = readFileSync(plain);
    // Header + 3.5 volumes: a complete gzip stream of a file that ends inside volume 3.
    return file(gzipSync(raw.subarray(0, 352 + Math.floor(3.5 * perVolume * 4))), '.nii.gz');
  }

  it('yields the good volumes, then rejects with NIFTI_TRUNCATED_DATA at the missing one', async () => {
    const path = await truncatedGz();
    const img = await openNifti(path);
    const seen: number[] = [];
    const streamed = (async () => {
      for await (const { index, data } of img.volumes()) {
        expect(data[0]).toBe(index);
        seen.push(index);
        await sleep(30); // the read-ahead of the next volume fails meanwhile
      }
    })();
    await expectError(streamed, 'NIFTI_TRUNCATED_DATA', path, 'volume 3');
    expect(seen).toEqual([0, 1, 2]);
    await sleep(10);
    expect(unhandled).not.toHaveBeenCalled();
    await img.close();
  });

  it('a consumer that stops before the missing volume sees no error at all', async () => {
    const path = await truncatedGz();
    const img = await openNifti(path);
    const seen: number[] = [];
    for await (const { index } of img.volumes()) {
      seen.push(index);
      await sleep(30);
      if (index === 2) break; // the read-ahead of volume 3 has failed by now
    }
    expect(seen).toEqual([0, 1, 2]);
    await sleep(10);
    expect(unhandled).not.toHaveBeenCalled();
    await img.close();
  });
});
