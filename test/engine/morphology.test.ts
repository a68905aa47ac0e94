import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  binaryDilation,
  binaryErosion,
  connectedComponents,
  gaussianKernel,
  gaussianSmooth,
  largestConnectedComponent,
  type Dims3,
} from '../../server/engine/morphology.ts';
import { EPI_SMOOTH_SIGMA } from '../../server/engine/epiMask.ts';

// Made by test/reference/make_mask_atlas_reference.py with scipy.ndimage.
const ref = JSON.parse(
  readFileSync(fileURLToPath(new URL('../io/reference/morphology.json', import.meta.url)), 'utf8'),
) as Record<string, unknown> & { dims: Dims3; smoothDims: Dims3; components: number };

/** numpy.packbits (big bit order) of an x-fastest mask, base64 → 0/1 per voxel. */
function unpack(b64: string, n: number): Uint8Array {
  const bytes = Buffer.from(b64, 'base64');
  const out = new Uint8Array(n);
  for (let p = 0; p < n; p++) out[p] = (bytes[p >> 3] >> (7 - (p & 7))) & 1;
  return out;
}

const n = ref.dims[0] * ref.dims[1] * ref.dims[2];
const mask = unpack(ref.mask as string, n);
const expectMask = (got: Uint8Array, key: string): void => {
  expect(Array.from(got)).toEqual(Array.from(unpack(ref[key] as string, n)));
};

describe('binary morphology equals scipy.ndimage', () => {
  it('binary_erosion, 1 and 2 iterations (border counts as background)', () => {
    expectMask(binaryErosion(mask, ref.dims), 'erosion1');
    expectMask(binaryErosion(mask, ref.dims, 2), 'erosion2');
  });

  it('binary_dilation, 1 and 3 iterations', () => {
    expectMask(binaryDilation(mask, ref.dims), 'dilation1');
    expectMask(binaryDilation(mask, ref.dims, 3), 'dilation3');
  });

  it('label (6-connectivity) count and the largest component', () => {
    const { sizes } = connectedComponents(mask, ref.dims);
    expect(sizes.length - 1).toBe(ref.components);
    expect(sizes.slice(1).reduce((a, b) => a + b, 0)).toBe(mask.reduce((a, b) => a + b, 0));
    expectMask(largestConnectedComponent(mask, ref.dims), 'largest');
  });

  it('inputs are not modified', () => {
    const copy = mask.slice();
    binaryErosion(mask, ref.dims, 2);
    binaryDilation(mask, ref.dims, 2);
    largestConnectedComponent(mask, ref.dims);
    expect(mask).toEqual(copy);
  });
});

describe('connected components, by construction', () => {
  const dims: Dims3 = [6, 3, 3];
  const at = (i: number, j: number, k: number): number => i + 6 * (j + 3 * k);

  it('diagonal neighbours are separate components (6-connectivity)', () => {
    const m = new Uint8Array(54);
    m[at(0, 0, 0)] = 1;
    m[at(1, 1, 0)] = 1;
    m[at(1, 1, 1)] = 1;
    expect(connectedComponents(m, dims).sizes).toEqual([0, 1, 2]);
  });

  it('a tie goes to the component scipy numbers first (z fastest), not x fastest', () => {
    // A at x=5,y=0,z=0 (x-fastest index 5, C-order index 45) and B at x=0,y=0,z=2
    // (x-fastest index 36, C-order index 2): equal sizes; scipy labels B first.
    const m = new Uint8Array(54);
    m[at(5, 0, 0)] = 1;
    m[at(5, 1, 0)] = 1;
    m[at(0, 0, 2)] = 1;
    m[at(0, 1, 2)] = 1;
    const lcc = largestConnectedComponent(m, dims);
    expect(lcc[at(0, 0, 2)]).toBe(1);
    expect(lcc[at(5, 0, 0)]).toBe(0);
    expect(lcc.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('an empty mask stays empty', () => {
    expect(largestConnectedComponent(new Uint8Array(54), dims).some((v) => v)).toBe(false);
  });
});

describe('gaussian smoothing equals scipy gaussian_filter1d (reflect, truncate 4)', () => {
  const volume = Float64Array.from(ref.volume as number[]);

  it('FWHM 1 voxel on all axes, as nilearn smooths the mean', () => {
    const out = gaussianSmooth(volume, ref.smoothDims, [EPI_SMOOTH_SIGMA, EPI_SMOOTH_SIGMA, EPI_SMOOTH_SIGMA]);
    const want = ref.smoothed as number[];
    for (let p = 0; p < out.length; p++) expect(Math.abs(out[p] - want[p])).toBeLessThan(1e-12);
  });

  it('a kernel wider than the axis reflects more than once', () => {
    const out = gaussianSmooth(volume, ref.smoothDims, [0, 1.7, 0]);
    const want = ref.smoothedSigma1_7Axis1 as number[];
    for (let p = 0; p < out.length; p++) expect(Math.abs(out[p] - want[p])).toBeLessThan(1e-12);
  });

  it('kernel sums to 1 with radius int(4σ + 0.5)', () => {
    const w = gaussianKernel(EPI_SMOOTH_SIGMA);
    expect(w.length).toBe(5);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
  });
});
