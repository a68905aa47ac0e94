import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SyncactError } from '../../server/errors.ts';
import { gaussianSmooth } from '../../server/engine/morphology.ts';
import { createRng } from '../../server/engine/random.ts';
import {
  FWHM_OVER_SIGMA,
  SpatialSmoother,
  smoothVolume,
  smoothingSigmas,
  voxelSizes,
  type Fwhm,
} from '../../server/engine/spatialSmoothing.ts';

interface Case {
  name: string;
  dims: [number, number, number];
  affine: number[][];
  fwhm: number | [number, number, number];
  sigmas: number[];
  input: (number | string)[];
  output: (number | string)[];
}

// Made by test/reference/smoothing_reference.py: nilearn's _smooth_array with scipy.ndimage.
const ref = JSON.parse(readFileSync(fileURLToPath(new URL('../reference/smoothing_reference.json', import.meta.url)), 'utf8')) as { cases: Case[] };

const values = (xs: (number | string)[]) => Float32Array.from(xs, (v) => (typeof v === 'number' ? v : Number(v.replace('inf', 'Infinity'))));

/** Largest |got − want| / max |want| over the volume. */
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / scale;
}

describe('spatial smoothing equals nilearn (_smooth_array: scipy gaussian_filter1d per axis, reflect, truncate 4)', () => {
  for (const c of ref.cases) {
    it(c.name, () => {
      const input = values(c.input);
      const before = Float32Array.from(input);
      const want = values(c.output);
      const fwhm = c.fwhm as Fwhm;
      const sigmas = smoothingSigmas(fwhm, c.affine);
      sigmas.forEach((s, i) => expect(s).toBeCloseTo(c.sigmas[i], 12));
      const got = smoothVolume(input, { dims: c.dims, affine: c.affine }, fwhm);
      expect(got.every(Number.isFinite)).toBe(true);
      expect(relativeError(got, want)).toBeLessThanOrEqual(1e-6);
      // The input is left alone, NaN included (Object.is: NaN equals NaN, unlike ===).
      for (let i = 0; i < input.length; i++) expect(Object.is(input[i], before[i])).toBe(true);
    });
  }

  it('the reference cases change the values (so equality above is not equality of inputs)', () => {
    const c = ref.cases[0];
    expect(relativeError(values(c.input), values(c.output))).toBeGreaterThan(0.1);
  });
});

describe('SpatialSmoother', () => {
  const grid = { dims: [11, 9, 7] as [number, number, number], affine: [[-3, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1]] };
  const n = 11 * 9 * 7;
  const rng = createRng(11);
  const volume = Float32Array.from({ length: n }, () => 100 + 10 * rng.normal());

  it('voxel sizes are the affine column norms; σ = FWHM / (√(8 ln 2) · size)', () => {
    const permuted = [[0, -2, 0, 5], [1.5, 0, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]];
    expect(voxelSizes(permuted)).toEqual([1.5, 2, 4]);
    const s = smoothingSigmas(6, permuted);
    expect(s[0] * FWHM_OVER_SIGMA * 1.5).toBeCloseTo(6, 12);
    expect(s[2] * FWHM_OVER_SIGMA * 4).toBeCloseTo(6, 12);
    expect(FWHM_OVER_SIGMA).toBeCloseTo(2.354820045, 9);
  });

  it('is the float64 separable filter of morphology.gaussianSmooth, to float32 rounding', () => {
    const smoother = new SpatialSmoother({ grid, fwhm: 7 });
    const got = smoother.smooth(volume);
    const want = gaussianSmooth(volume, [11, 9, 7], [...smoother.sigmas] as [number, number, number]);
    expect(relativeError(got, want)).toBeLessThan(1e-6);
  });

  it('reuses its buffers: the same volume twice gives the same values, and an out array is filled', () => {
    const smoother = new SpatialSmoother({ grid, fwhm: [5, 0, 8] });
    const first = smoother.smooth(volume);
    const other = Float32Array.from(volume, (v) => -v);
    smoother.smooth(other);
    const out = new Float32Array(n);
    expect(smoother.smooth(volume, out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(first));
  });

  it('keeps the mean of a volume far from its borders and flattens a constant to itself', () => {
    const constant = new Float32Array(n).fill(42.5);
    const flat = new SpatialSmoother({ grid, fwhm: 9 }).smooth(constant);
    for (const v of flat) expect(v).toBeCloseTo(42.5, 4);
    // Reflect keeps the sum along each line exactly when the kernel fits in the line.
    const spike = new Float32Array(n);
    spike[5 + 11 * (4 + 9 * 3)] = 1000;
    const smoothed = new SpatialSmoother({ grid, fwhm: 4 }).smooth(spike);
    expect(smoothed.reduce((a, b) => a + b, 0)).toBeCloseTo(1000, 2);
    expect(smoothed[5 + 11 * (4 + 9 * 3)]).toBeLessThan(1000);
  });

  it('with a mask, computes its bounding box exactly as the whole grid does, and 0 outside it', () => {
    // An off-centre blob: the box touches the grid's y = 0 face, so reflection there is exercised.
    const mask = new Uint8Array(n);
    for (let z = 2; z <= 4; z++) for (let y = 0; y <= 5; y++) for (let x = 3; x <= 8; x++) if ((x + y + z) % 3 !== 0) mask[x + 11 * (y + 9 * z)] = 1;
    const x = Float32Array.from(volume);
    x[0] = NaN; // outside the box, but within the kernel's reach of it
    for (const fwhm of [6, [0, 5, 9] as Fwhm, 30]) {
      const masked = new SpatialSmoother({ grid, fwhm, mask });
      expect(masked.box).toEqual([
        [3, 8],
        [0, 5],
        [2, 4],
      ]);
      const full = new SpatialSmoother({ grid, fwhm }).smooth(x);
      const out = new Float32Array(n).fill(7);
      masked.smooth(x, out);
      let inside = 0;
      for (let z = 0; z < 7; z++) {
        for (let y = 0; y < 9; y++) {
          for (let xx = 0; xx < 11; xx++) {
            const i = xx + 11 * (y + 9 * z);
            const inBox = xx >= 3 && xx <= 8 && y <= 5 && z >= 2 && z <= 4;
            if (inBox) inside++;
            expect(out[i]).toBe(inBox ? full[i] : 0);
          }
        }
      }
      expect(inside).toBe(6 * 6 * 3);
    }
    expect(Array.from(new SpatialSmoother({ grid, fwhm: 6, mask: new Uint8Array(n) }).smooth(x)).every((v) => v === 0)).toBe(true);
  });

  it('FWHM 0 changes nothing finite and sets NaN and ±inf to 0, as nilearn', () => {
    const x = Float32Array.from(volume);
    x[3] = NaN;
    x[7] = Infinity;
    const out = smoothVolume(x, grid, 0);
    expect(out[3]).toBe(0);
    expect(out[7]).toBe(0);
    for (let i = 0; i < n; i++) if (i !== 3 && i !== 7) expect(out[i]).toBe(x[i]);
  });

  it('bad settings and sizes are ENGINE_BAD_INPUT', () => {
    const bad = (f: () => unknown, text: RegExp) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(SyncactError);
        expect((e as SyncactError).code).toBe('ENGINE_BAD_INPUT');
        expect((e as Error).message).toMatch(text);
        return;
      }
      throw new Error('did not throw');
    };
    bad(() => new SpatialSmoother({ grid, fwhm: -1 }), /FWHM must be a finite number/);
    bad(() => new SpatialSmoother({ grid, fwhm: NaN }), /FWHM must be a finite number/);
    bad(() => new SpatialSmoother({ grid, fwhm: [1, 2] as unknown as Fwhm }), /three of them/);
    bad(() => new SpatialSmoother({ grid: { dims: [4, 4, 4], affine: [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }, fwhm: 4 }), /positive voxel size/);
    bad(() => new SpatialSmoother({ grid: { dims: [4, 0, 4], affine: grid.affine }, fwhm: 4 }), /positive integer dims/);
    const smoother = new SpatialSmoother({ grid, fwhm: 4 });
    bad(() => smoother.smooth(new Float32Array(n - 1)), /needs 693 values/);
    const same = Float32Array.from(volume);
    bad(() => smoother.smooth(same, same), /cannot write into its input/);
    bad(() => new SpatialSmoother({ grid, fwhm: 4, mask: new Uint8Array(n + 1) }), /mask has 694 values/);
  });
});
