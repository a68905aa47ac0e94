/**
 * The NIfTI reader against nibabel: every fixture written by
 * test/reference/make_nifti_fixtures.py is read and compared with nibabel's answers
 * (header fields, best affine, TR, every voxel value, per-volume statistics).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openNifti } from '../../server/io/nifti/read.ts';
import { volumeStats } from '../../server/io/nifti/stats.ts';
import { quaternionToRotation } from '../../server/io/nifti/affine.ts';
import { SyncactError } from '../../server/errors.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
type Num = number | string;
interface Ref {
  file: string;
  format: 'nifti1' | 'nifti2';
  littleEndian: boolean;
  dims: number[];
  pixdim: Num[];
  datatype: string;
  datatypeCode: number;
  voxOffset: number;
  sclSlope: Num;
  sclInter: Num;
  qformCode: number;
  sformCode: number;
  affine: number[][];
  tr: number | null;
  description: string;
  extensions: { code: number; hex: string }[];
  values: Num[];
  volumes: { min: Num | null; max: Num | null; mean: Num | null; sum: Num; nan: number }[];
}
const reference = JSON.parse(readFileSync(join(fixtures, 'nifti_reference.json'), 'utf8')) as {
  images: Ref[];
  unsupported: { file: string; code: number; name: string }[];
};

const num = (v: Num): number => (typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity);

/** Exact for values float32 can hold; relative 1e-6 otherwise (float32 output of wide ints). */
function expectClose(actual: number, expected: number, rel: number, what: string) {
  if (Number.isNaN(expected)) return expect(actual, what).toBeNaN();
  if (!Number.isFinite(expected)) return expect(actual, what).toBe(expected);
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(rel * Math.abs(expected));
}

describe('openNifti against nibabel', () => {
  it('has fixtures for every supported datatype, both byte orders, both versions, pairs and gzip', () => {
    const names = reference.images.map((r) => r.file);
    for (const dt of ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64']) {
      expect(reference.images.some((r) => r.datatype === dt)).toBe(true);
    }
    expect(reference.images.some((r) => !r.littleEndian && r.format === 'nifti1')).toBe(true);
    expect(reference.images.some((r) => !r.littleEndian && r.format === 'nifti2')).toBe(true);
    expect(names.some((n) => n.endsWith('.hdr'))).toBe(true);
    expect(names.some((n) => n.endsWith('.hdr.gz'))).toBe(true);
    expect(names.some((n) => n.endsWith('.nii.gz'))).toBe(true);
  });

  for (const ref of reference.images) {
    describe(ref.file, () => {
      it('header: format, byte order, dims, pixdim, datatype, scaling, codes, TR, extensions', async () => {
        const img = await openNifti(join(fixtures, ref.file));
        try {
          const h = img.header;
          expect(h.format).toBe(ref.format);
          expect(h.littleEndian).toBe(ref.littleEndian);
          expect(h.dims).toEqual(ref.dims);
          h.pixdim.forEach((p, i) => expectClose(p, num(ref.pixdim[i]), 1e-7, `pixdim[${i + 1}]`));
          expect(h.pixdim.length).toBe(ref.pixdim.length);
          expect(h.datatype).toBe(ref.datatype);
          expect(h.datatypeCode).toBe(ref.datatypeCode);
          expect(h.voxOffset).toBe(ref.voxOffset);
          expectClose(h.sclSlope, num(ref.sclSlope), 0, 'scl_slope');
          expectClose(h.sclInter, num(ref.sclInter), 0, 'scl_inter');
          expect(h.qformCode).toBe(ref.qformCode);
          expect(h.sformCode).toBe(ref.sformCode);
          expect(h.description).toBe(ref.description);
          if (ref.tr === null) expect(h.tr).toBeNull();
          else expectClose(h.tr as number, ref.tr, 1e-9, 'tr');
          // The reader keeps the esize-8 bytes as stored; nibabel strips the zero padding.
          const unpadded = (d: Uint8Array) => Buffer.from(d).toString('hex').replace(/(00)+$/, '');
          expect(h.extensions.map((e) => ({ code: e.code, hex: unpadded(e.data) }))).toEqual(ref.extensions);
          for (const e of h.extensions) expect((e.data.length + 8) % 16).toBe(0);
        } finally {
          await img.close();
        }
      });

      it('affine and grid equal nibabel (1e-4)', async () => {
        const img = await openNifti(join(fixtures, ref.file));
        for (let r = 0; r < 4; r++) {
          for (let c = 0; c < 4; c++) {
            expect(Math.abs(img.header.affine[r][c] - ref.affine[r][c]), `affine[${r}][${c}]`).toBeLessThan(1e-4);
          }
        }
        expect(img.grid.affine).toEqual(img.header.affine);
        expect(img.grid.dims).toEqual([ref.dims[0], ref.dims[1] ?? 1, ref.dims[2] ?? 1]);
        await img.close();
      });

      it('every voxel value, float64 exact and float32 to rounding; per-volume stats', async () => {
        const img = await openNifti(join(fixtures, ref.file));
        const n = img.voxelsPerVolume;
        expect(img.volumeCount * n).toBe(ref.values.length);
        expect(img.volumeCount).toBe(ref.volumes.length);
        for (let k = 0; k < img.volumeCount; k++) {
          const v64 = await img.readVolume(k, 'float64');
          const v32 = await img.readVolume(k);
          expect(v64).toBeInstanceOf(Float64Array);
          expect(v32).toBeInstanceOf(Float32Array);
          for (let i = 0; i < n; i++) {
            const expected = num(ref.values[k * n + i]);
            expectClose(v64[i], expected, 0, `volume ${k} voxel ${i} (float64)`);
            expectClose(v32[i], Math.fround(expected), 0, `volume ${k} voxel ${i} (float32)`);
          }
          const s = volumeStats(v64);
          const e = ref.volumes[k];
          expect(s.nan).toBe(e.nan);
          for (const key of ['min', 'max', 'mean', 'sum'] as const) {
            const want = e[key];
            if (want === null) expect(s[key]).toBeNull();
            else expectClose(s[key] as number, num(want), 1e-12, `volume ${k} ${key}`);
          }
        }
        await img.close();
      });

      it('volumes() streams the same data as readVolume, in order, over any range', async () => {
        const img = await openNifti(join(fixtures, ref.file));
        const seen: number[] = [];
        for await (const { index, data } of img.volumes({ as: 'float64' })) {
          seen.push(index);
          expect(Array.from(data)).toEqual(Array.from(await img.readVolume(index, 'float64')));
        }
        expect(seen).toEqual(Array.from({ length: img.volumeCount }, (_, i) => i));
        const tail: number[] = [];
        for await (const { index } of img.volumes({ start: img.volumeCount - 1 })) tail.push(index);
        expect(tail).toEqual([img.volumeCount - 1]);
        await img.close();
      });
    });
  }

  it('description stops at the first NUL, as in C', async () => {
    const bytes = readFileSync(join(fixtures, 'dt_int16.nii'));
    bytes.fill(0, 148, 228);
    bytes.write('first\0second', 148, 'latin1');
    const dir = mkdtempSync(join(tmpdir(), 'syncact-nifti-descrip-'));
    try {
      writeFileSync(join(dir, 'd.nii'), bytes);
      const img = await openNifti(join(dir, 'd.nii'));
      expect(img.header.description).toBe('first');
      await img.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads multi-member gzip (bgzip-style) split inside a volume, and ignores trailing zero padding', async () => {
    const raw = gunzipSync(readFileSync(join(fixtures, 'scaled_int16.nii.gz')));
    const dir = mkdtempSync(join(tmpdir(), 'syncact-nifti-members-'));
    try {
      const cut = 352 + 48 + 7;
      writeFileSync(join(dir, 'm.nii.gz'), Buffer.concat([gzipSync(raw.subarray(0, cut)), gzipSync(raw.subarray(cut)), Buffer.alloc(64)]));
      writeFileSync(join(dir, 'one.nii'), raw);
      const a = await openNifti(join(dir, 'm.nii.gz'));
      const b = await openNifti(join(dir, 'one.nii'));
      for (const k of [1, 0]) expect(Array.from(await a.readVolume(k))).toEqual(Array.from(await b.readVolume(k)));
      await a.close();
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a .hdr/.img pair when given the .img path', async () => {
    const a = await openNifti(join(fixtures, 'pair_int16.img'));
    const b = await openNifti(join(fixtures, 'pair_int16.hdr'));
    expect(Array.from(await a.readVolume(1))).toEqual(Array.from(await b.readVolume(1)));
    await a.close();
    await b.close();
  });

  it('gzip: reading backwards re-inflates and still returns the right volume', async () => {
    const img = await openNifti(join(fixtures, 'scaled_int16.nii.gz'));
    const v1 = await img.readVolume(1);
    const v0 = await img.readVolume(0);
    const again1 = await img.readVolume(1);
    expect(Array.from(again1)).toEqual(Array.from(v1));
    expect(Array.from(v0)).not.toEqual(Array.from(v1));
    // Concurrent reads share one cursor and must not interleave.
    const both = await Promise.all([img.readVolume(1), img.readVolume(0), img.readVolume(1)]);
    expect(Array.from(both[0])).toEqual(Array.from(v1));
    expect(Array.from(both[1])).toEqual(Array.from(v0));
    await img.close();
    // A closed image reopens on demand.
    expect(Array.from(await img.readVolume(0))).toEqual(Array.from(v0));
    await img.close();
  });

  it('an early break out of volumes() releases the stream', async () => {
    const img = await openNifti(join(fixtures, 'be_uint32.nii.gz'));
    for await (const { index } of img.volumes()) {
      expect(index).toBe(0);
      break;
    }
    expect((await img.readVolume(1)).length).toBe(img.voxelsPerVolume);
    await img.close();
  });

  it.each(reference.unsupported)('$file: NIFTI_UNSUPPORTED_DATATYPE naming datatype $code ($name)', async ({ file, code, name }) => {
    const err = await openNifti(join(fixtures, file)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect((err as SyncactError).code).toBe('NIFTI_UNSUPPORTED_DATATYPE');
    expect((err as SyncactError).message).toContain(`datatype ${code} (${name}) is not supported`);
    expect((err as SyncactError).message).toContain(file);
  });
});

describe('quaternionToRotation', () => {
  it('is a proper rotation for random quaternions, including |bcd| slightly above 1', () => {
    const cases = [
      [0, 0, 0],
      [1, 0, 0],
      [0.3, -0.2, 0.5],
      [0.6, 0.6, 0.6], // |bcd| > 1: normalised, a = 0
      [0.70710677, 0.70710677, 1e-8],
    ];
    for (const [b, c, d] of cases) {
      const R = quaternionToRotation(b, c, d);
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) {
          const dot = R[0][i] * R[0][j] + R[1][i] * R[1][j] + R[2][i] * R[2][j];
          expect(dot).toBeCloseTo(i === j ? 1 : 0, 6);
        }
      }
      const det =
        R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) -
        R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
        R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]);
      expect(det).toBeCloseTo(1, 6);
    }
  });
});
