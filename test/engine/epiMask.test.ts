import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { computeEpiMask, epiMaskInput, epiThreshold, type EpiMaskOptions } from '../../server/engine/epiMask.ts';
import type { Dims3 } from '../../server/engine/morphology.ts';

// Made by test/reference/make_mask_atlas_reference.py: nilearn's compute_epi_mask
// re-implemented with numpy/scipy on a seeded phantom mean volume.
const refUrl = (name: string): URL => new URL(`../io/reference/${name}`, import.meta.url);
const ref = JSON.parse(readFileSync(fileURLToPath(refUrl('epi_mask.json')), 'utf8')) as {
  dims: Dims3;
  cases: { options: EpiMaskOptions; threshold: number; count: number; mask: string }[];
};
const bytes = readFileSync(fileURLToPath(refUrl('epi_mean.f32')));
const mean = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const n = ref.dims[0] * ref.dims[1] * ref.dims[2];

function unpack(b64: string): Uint8Array {
  const packed = Buffer.from(b64, 'base64');
  const out = new Uint8Array(n);
  for (let p = 0; p < n; p++) out[p] = (packed[p >> 3] >> (7 - (p & 7))) & 1;
  return out;
}

function dice(a: Uint8Array, b: Uint8Array): number {
  let both = 0;
  let sa = 0;
  let sb = 0;
  for (let p = 0; p < a.length; p++) {
    both += a[p] & b[p];
    sa += a[p];
    sb += b[p];
  }
  return (2 * both) / (sa + sb);
}

describe('computeEpiMask agrees with nilearn compute_epi_mask', () => {
  it('the phantom has NaNs, so the non-finite path is exercised', () => {
    expect(mean.length).toBe(n);
    expect(mean.some((v) => Number.isNaN(v))).toBe(true);
  });

  for (const c of ref.cases) {
    it(`options ${JSON.stringify(c.options)}: same threshold, identical mask`, () => {
      const opening = c.options.opening ?? 2;
      // nilearn smooths a float32 mean in float32; the threshold sits mid-gap, so only
      // its last digits may differ.
      expect(epiThreshold(epiMaskInput(mean, ref.dims, opening), c.options)).toBeCloseTo(c.threshold, 3);
      const mask = computeEpiMask(mean, ref.dims, c.options);
      const want = unpack(c.mask);
      expect(mask.reduce((a, b) => a + b, 0)).toBe(c.count);
      expect(dice(mask, want)).toBeGreaterThanOrEqual(0.99);
      expect(Array.from(mask)).toEqual(Array.from(want));
    });
  }

  it('the options matter: opening drops the bridged eye, connected drops the far blob', () => {
    const counts = ref.cases.map((c) => c.count);
    expect(new Set(counts).size).toBe(counts.length);
    const input = mean.slice();
    computeEpiMask(input, ref.dims);
    expect(Array.from(input)).toEqual(Array.from(mean));
  });
});

describe('computeEpiMask errors', () => {
  it('a lone bright voxel survives the threshold but not the erosion → MASK_EMPTY', () => {
    const dims: Dims3 = [8, 8, 8];
    const v = new Float64Array(512);
    for (let p = 0; p < 512; p++) v[p] = p % 7;
    v[300] = 1000;
    expect(() => computeEpiMask(v, dims, { lowerCutoff: 0.2, upperCutoff: 1 })).toThrow(
      expect.objectContaining({ code: 'MASK_EMPTY' }),
    );
  });

  it('wrong length and bad cutoffs are ENGINE_BAD_INPUT', () => {
    expect(() => computeEpiMask(new Float32Array(10), [2, 2, 2])).toThrow(expect.objectContaining({ code: 'ENGINE_BAD_INPUT' }));
    expect(() => computeEpiMask(new Float32Array(8), [2, 2, 2], { lowerCutoff: 0.9, upperCutoff: 0.5 })).toThrow(
      expect.objectContaining({ code: 'ENGINE_BAD_INPUT' }),
    );
  });
});
