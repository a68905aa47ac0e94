import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { affineToQuaternion, buildNiftiHeader, createNiftiWriter, writeNifti } from '../../server/io/nifti/write.ts';
import { SyncactError } from '../../server/errors.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import type { Affine } from '../../server/io/nifti/types.ts';

/** The fields this test checks, parsed independently of the writer (and of read.ts). */
function parse(input: Uint8Array) {
  const bytes = new Uint8Array(input); // a plain copy: Buffer#slice would be a view into a pool
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = (o: number) => v.getFloat32(o, true);
  const ndim = v.getInt16(40, true);
  const dims = Array.from({ length: ndim }, (_, i) => v.getInt16(42 + 2 * i, true));
  const voxOffset = f(108);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(bytes.slice(voxOffset, voxOffset + 4 * n).buffer);
  const srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f(280 + 16 * r + 4 * c)));
  return {
    sizeofHdr: v.getInt32(0, true),
    magic: String.fromCharCode(...bytes.slice(344, 347)),
    dims,
    datatype: v.getInt16(70, true),
    bitpix: v.getInt16(72, true),
    pixdim: Array.from({ length: 8 }, (_, i) => f(76 + 4 * i)),
    voxOffset,
    xyztUnits: bytes[123],
    qformCode: v.getInt16(252, true),
    sformCode: v.getInt16(254, true),
    quatern: [f(256), f(260), f(264)],
    qoffset: [f(268), f(272), f(276)],
    srow,
    intentCode: v.getInt16(68, true),
    description: new TextDecoder().decode(bytes.slice(148, 228)).replace(/\0.*$/s, ''),
    length: bytes.length,
    data,
  };
}

/** The qform matrix from quaternion parameters (NIfTI-1 method 2). */
function qformMatrix(b: number, c: number, d: number, qfac: number, pix: number[], off: number[]): number[][] {
  const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
  const r = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
  return r.map((row, i) => [row[0] * pix[0], row[1] * pix[1], row[2] * pix[2] * qfac, off[i]]);
}

function rotation(axis: 'x' | 'y' | 'z', deg: number): number[][] {
  const t = (deg * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t);
  if (axis === 'x') return [[1, 0, 0], [0, c, -s], [0, s, c]];
  if (axis === 'y') return [[c, 0, s], [0, 1, 0], [-s, 0, c]];
  return [[c, -s, 0], [s, c, 0], [0, 0, 1]];
}

function mul3(a: number[][], b: number[][]): number[][] {
  return a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
}

/** R·diag(zooms) with translation t: a rigid (possibly flipped) affine. */
function affineOf(r: number[][], zooms: number[], t: number[]): Affine {
  return [
    ...r.map((row, i) => [row[0] * zooms[0], row[1] * zooms[1], row[2] * zooms[2], t[i]]),
    [0, 0, 0, 1],
  ];
}

const MNI_2MM: Affine = [
  [-2, 0, 0, 90],
  [0, 2, 0, -126],
  [0, 0, 2, -72],
  [0, 0, 0, 1],
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeNifti', () => {
  const dims = [5, 4, 3, 2];
  const data = Float32Array.from({ length: 120 }, (_, i) => Math.sin(i) * 1000 + i / 7);
  data[3] = -0;
  data[17] = 3.4028234663852886e38;
  data[18] = 1e-42; // denormal: must survive the byte copy

  for (const ext of ['.nii', '.nii.gz']) {
    it(`round-trips float32 data and header fields exactly (${ext})`, async () => {
      const path = join(dir, `img${ext}`);
      await writeNifti(path, data, { dims, affine: MNI_2MM, tr: 0.72, description: 'round trip' });
      let bytes: Uint8Array = await readFile(path);
      if (ext === '.nii.gz') {
        expect(bytes[0]).toBe(0x1f);
        bytes = gunzipSync(bytes);
      }
      const h = parse(bytes);
      expect(h.sizeofHdr).toBe(348);
      expect(h.magic).toBe('n+1');
      expect(h.dims).toEqual(dims);
      expect(h.datatype).toBe(16);
      expect(h.bitpix).toBe(32);
      expect(h.voxOffset).toBe(352);
      expect(h.length).toBe(352 + 4 * 120);
      expect(h.xyztUnits).toBe(10);
      expect(h.pixdim.slice(1, 5)).toEqual([2, 2, 2, Math.fround(0.72)]);
      expect(h.pixdim[0]).toBe(-1); // x flipped: negative determinant
      expect(h.sformCode).toBe(2);
      expect(h.qformCode).toBe(2);
      expect(h.srow).toEqual(MNI_2MM.slice(0, 3));
      expect(h.description).toBe('round trip');
      expect(Array.from(h.data)).toEqual(Array.from(data));
      expect(Object.is(h.data[3], -0)).toBe(true);
      expect(await readdir(dir)).not.toContain(`img${ext}.partial`);
    });
  }

  it('writes a 3D image with pixdim[4] = 0 and honours codes and intent', async () => {
    const path = join(dir, 'mask.nii');
    const d3 = new Float32Array(60).fill(1);
    await writeNifti(path, d3, {
      dims: [5, 4, 3],
      affine: MNI_2MM,
      sformCode: 4,
      qformCode: 1,
      intent: { code: 1002, name: 'labels' },
    });
    const h = parse(await readFile(path));
    expect(h.dims).toEqual([5, 4, 3]);
    expect(h.pixdim[4]).toBe(0);
    expect(h.sformCode).toBe(4);
    expect(h.qformCode).toBe(1);
    expect(h.intentCode).toBe(1002);
  });

  it("writes a stack of maps (volumes: 'maps') without a time unit or a TR, as nibabel does", async () => {
    const path = join(dir, 'tmaps.nii.gz');
    await writeNifti(path, data, { dims, affine: MNI_2MM, volumes: 'maps', intent: { code: 3, name: 'ttest', p1: 40 } });
    const h = parse(gunzipSync(await readFile(path)));
    expect(h.dims).toEqual(dims); // still 4D: nilearn's image functions take 3D or 4D
    expect(h.xyztUnits).toBe(2); // NIFTI_UNITS_MM, no NIFTI_UNITS_SEC (8)
    expect(h.xyztUnits & 0x38).toBe(0); // the time-unit bits nibabel reads for get_xyzt_units()[1]
    expect(h.pixdim.slice(1, 5)).toEqual([2, 2, 2, 1]); // nibabel's Nifti1Image(stack, affine) default
    expect(h.intentCode).toBe(3);
    expect(Array.from(h.data)).toEqual(Array.from(data));
    // A run keeps its time unit: the option is what changes it.
    const run = buildNiftiHeader('run.nii', { dims, affine: MNI_2MM });
    expect(run[123]).toBe(10);
  });

  it("rejects a tr on a stack of maps (it has no time axis)", async () => {
    const err = await writeNifti(join(dir, 'bad-maps.nii'), data, { dims, affine: MNI_2MM, volumes: 'maps', tr: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect(err.code).toBe('NIFTI_WRITE_FAILED');
    expect(err.message).toMatch(/stack of maps has no tr/);
    expect(await readdir(dir)).not.toContain('bad-maps.nii');
  });

  it('rejects data whose length does not match dims, leaving nothing behind', async () => {
    const path = join(dir, 'bad.nii');
    await expect(writeNifti(path, new Float32Array(7), { dims: [2, 2, 2], affine: MNI_2MM })).rejects.toMatchObject({
      code: 'NIFTI_WRITE_FAILED',
      file: path,
    });
    expect((await readdir(dir)).filter((f) => f.startsWith('bad'))).toEqual([]);
  });

  it('rejects bad dims, singular affines and unwritable paths with NIFTI_WRITE_FAILED', async () => {
    const one = new Float32Array(8);
    await expect(writeNifti(join(dir, 'x.nii'), one, { dims: [8], affine: MNI_2MM })).rejects.toBeInstanceOf(SyncactError);
    await expect(writeNifti(join(dir, 'x.nii'), one, { dims: [2, 2, 2, 0.5], affine: MNI_2MM })).rejects.toMatchObject({
      code: 'NIFTI_WRITE_FAILED',
    });
    const singular: Affine = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
    await expect(writeNifti(join(dir, 'x.nii'), one, { dims: [2, 2, 2], affine: singular })).rejects.toThrow(/singular/);
    const inFile = join(dir, 'a-file');
    await writeFile(inFile, 'not a folder');
    await expect(writeNifti(join(inFile, 'x.nii'), one, { dims: [2, 2, 2], affine: MNI_2MM })).rejects.toMatchObject({
      code: 'NIFTI_WRITE_FAILED',
      message: expect.stringContaining('cannot write'),
    });
  });
});

describe('round trip through the reader (read.ts)', () => {
  const oblique = affineOf(mul3(rotation('z', 25), rotation('x', -12)), [2, 2.5, 3], [10, -20, 30]);
  for (const [name, affine] of [['MNI', MNI_2MM], ['oblique', oblique]] as [string, Affine][]) {
    for (const ext of ['.nii', '.nii.gz']) {
      it(`gives back dims, affine, TR and every value: ${name} ${ext}`, async () => {
        const dims = [3, 4, 5, 6];
        const data = Float32Array.from({ length: 360 }, (_, i) => Math.cos(i * 0.37) * 500 - i);
        const path = join(dir, `rt-${name}${ext}`);
        const w = await createNiftiWriter(path, { dims, affine, tr: 1.5 });
        for (let k = 0; k < 6; k++) await w.writeVolume(data.subarray(60 * k, 60 * (k + 1)));
        await w.close();
        const img = await openNifti(path);
        try {
          expect(img.header.dims).toEqual(dims);
          expect(img.header.datatype).toBe('float32');
          expect(img.header.tr).toBeCloseTo(1.5, 6);
          expect(img.grid.dims).toEqual([3, 4, 5]);
          for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(img.grid.affine[r][c]).toBeCloseTo(affine[r][c], 5);
          for (let k = 5; k >= 0; k--) {
            // Backwards, to exercise the reader's gzip cursor as well.
            expect(Array.from(await img.readVolume(k))).toEqual(Array.from(data.subarray(60 * k, 60 * (k + 1))));
          }
        } finally {
          await img.close();
        }
      });
    }
  }
});

describe('createNiftiWriter', () => {
  const dims = [4, 3, 2, 3];
  const vol = (k: number) => Float32Array.from({ length: 24 }, (_, i) => k * 100 + i + 0.25);

  it('streams volumes into the same bytes as the whole-image writer', async () => {
    const whole = new Float32Array(72);
    for (let k = 0; k < 3; k++) whole.set(vol(k), 24 * k);
    await writeNifti(join(dir, 'whole.nii.gz'), whole, { dims, affine: MNI_2MM, tr: 2 });
    const w = await createNiftiWriter(join(dir, 'stream.nii.gz'), { dims, affine: MNI_2MM, tr: 2 });
    const reused = new Float32Array(24);
    for (let k = 0; k < 3; k++) {
      reused.set(vol(k));
      await w.writeVolume(reused); // the caller reuses its buffer: the writer must have copied
      expect(await readdir(dir)).not.toContain('stream.nii.gz');
    }
    await w.close();
    expect(await readFile(join(dir, 'stream.nii.gz'))).toEqual(await readFile(join(dir, 'whole.nii.gz')));
  });

  it('refuses to close early, and leaves no file, partial or complete', async () => {
    const path = join(dir, 'short.nii.gz');
    const w = await createNiftiWriter(path, { dims, affine: MNI_2MM });
    await w.writeVolume(vol(0));
    expect(await readdir(dir)).toContain('short.nii.gz.partial');
    await expect(w.close()).rejects.toMatchObject({ code: 'NIFTI_WRITE_FAILED', message: expect.stringContaining('1 of 3') });
    expect((await readdir(dir)).filter((f) => f.startsWith('short'))).toEqual([]);
  });

  it('rejects a wrongly sized volume and one volume too many', async () => {
    const w = await createNiftiWriter(join(dir, 'size.nii'), { dims, affine: MNI_2MM });
    await expect(w.writeVolume(new Float32Array(23))).rejects.toMatchObject({ code: 'NIFTI_WRITE_FAILED' });
    await expect(w.writeVolume(vol(0))).rejects.toThrow(/aborted/);
    const w2 = await createNiftiWriter(join(dir, 'many.nii'), { dims: [4, 3, 2, 1], affine: MNI_2MM });
    await w2.writeVolume(vol(0));
    await expect(w2.writeVolume(vol(1))).rejects.toThrow(/more than the 1 volumes/);
    expect((await readdir(dir)).filter((f) => f.startsWith('size') || f.startsWith('many'))).toEqual([]);
  });

  it('abort discards the partial file', async () => {
    const w = await createNiftiWriter(join(dir, 'ab.nii.gz'), { dims, affine: MNI_2MM });
    await w.writeVolume(vol(0));
    await w.abort();
    expect((await readdir(dir)).filter((f) => f.startsWith('ab.'))).toEqual([]);
  });
});

describe('qform from the affine', () => {
  const cases: [string, number[][], number[]][] = [
    ['identity', rotation('x', 0), [1, 1, 1]],
    ['MNI LAS', [[-1, 0, 0], [0, 1, 0], [0, 0, 1]], [1.6, 1.6, 1.6]],
    ['oblique', mul3(rotation('z', 25), rotation('x', -12)), [2, 2.5, 3]],
    ['oblique flipped', mul3(mul3(rotation('y', 40), rotation('z', -70)), [[1, 0, 0], [0, -1, 0], [0, 0, 1]]), [1, 2, 3]],
    ['180° about x (trace −1 branch)', rotation('x', 180), [2, 2, 2]],
    ['180° about y', rotation('y', 180), [2, 2, 2]],
    ['180° about z, flipped', mul3(rotation('z', 180), [[-1, 0, 0], [0, 1, 0], [0, 0, 1]]), [3, 3, 3]],
    ['near-180° oblique', mul3(rotation('y', 179), rotation('x', 3)), [1, 1, 1]],
  ];
  for (const [name, r, zooms] of cases) {
    it(`reproduces a rigid affine through the quaternion: ${name}`, () => {
      const affine = affineOf(r, zooms, [10, -20, 30]);
      const q = affineToQuaternion(affine);
      for (let i = 0; i < 3; i++) expect(q.pixdim[i]).toBeCloseTo(zooms[i], 12);
      expect(q.b * q.b + q.c * q.c + q.d * q.d).toBeLessThanOrEqual(1 + 1e-12);
      const m = qformMatrix(q.b, q.c, q.d, q.qfac, q.pixdim, [10, -20, 30]);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(m[i][j]).toBeCloseTo(affine[i][j], 10);
    });
  }

  it('stores quaternion and offsets in the header as float32', () => {
    const affine = affineOf(mul3(rotation('z', 25), rotation('x', -12)), [2, 2.5, 3], [10, -20, 30]);
    const h = parse(buildNiftiHeader('x.nii', { dims: [2, 2, 2], affine }));
    const q = affineToQuaternion(affine);
    expect(h.quatern).toEqual([Math.fround(q.b), Math.fround(q.c), Math.fround(q.d)]);
    expect(h.qoffset).toEqual([10, -20, 30]);
    expect(h.pixdim[0]).toBe(q.qfac);
  });

  it('gives a sheared affine the nearest rotation (qform stays valid)', () => {
    const sheared: Affine = [[2, 0.3, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]];
    const q = affineToQuaternion(sheared);
    const m = qformMatrix(q.b, q.c, q.d, q.qfac, [1, 1, 1], [0, 0, 0]);
    // Orthonormal rotation part.
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const dot = m[0][i] * m[0][j] + m[1][i] * m[1][j] + m[2][i] * m[2][j];
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
    expect(q.qfac).toBe(1);
  });
});
