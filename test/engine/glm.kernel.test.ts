import { describe, expect, it } from 'vitest';
import { GlmCommand, createGlmState, runGlmBlock, setRotations } from '../../server/engine/glmBlock.ts';
import { glmWasmModule } from '../../server/engine/glmWasm.ts';
import { createRng } from '../../server/engine/random.ts';

/**
 * A state with seeded z, sums, volume and rotations; a few voxels invalid or non-finite.
 * `js`: without the WebAssembly kernel (the JavaScript loop).
 */
function seededState(voxels: number, p: number, seed: number, lambda: number, js = false) {
  const s = createGlmState(voxels, p, false);
  const rng = createRng(seed);
  const { arrays, params } = s;
  if (js) arrays.kernel = null;
  const cos = new Float64Array(p);
  const sin = new Float64Array(p);
  for (let i = 0; i < arrays.z.length; i++) arrays.z[i] = 100 * rng.normal();
  for (let v = 0; v < voxels; v++) {
    arrays.y[v] = 1000 + 50 * rng.normal();
    arrays.rss[v] = 10 * rng.uniform();
    arrays.syy[v] = 1e6 * rng.uniform();
  }
  arrays.invalid[3] = 1;
  arrays.rss[3] = NaN;
  arrays.y[7] = NaN;
  arrays.y[voxels - 1] = -Infinity;
  for (let j = 0; j < p; j++) {
    const angle = j === 1 ? 0 : 2 * Math.PI * rng.uniform(); // one identity rotation, as for a zero entry
    cos[j] = Math.cos(angle);
    sin[j] = j === 1 ? 0 : Math.sin(angle);
  }
  setRotations(params, p, lambda, cos, sin);
  return { ...s, cos, sin };
}

describe('GLM per-voxel rotation kernels', () => {
  it('has the WebAssembly SIMD kernel on this Node', () => {
    expect(glmWasmModule()).not.toBeNull();
    expect(createGlmState(10, 3, false).arrays.kernel).not.toBeNull();
  });

  for (const [p, js] of [1, 2, 7, 69].flatMap((p) => [[p, false], [p, true]] as const)) {
    it(`${js ? 'JavaScript' : 'WebAssembly'}: rotates each valid voxel's (√λ·z, y) pairs and adds the rotated-out residual to its RSS (P = ${p})`, () => {
      const voxels = 101;
      const lambda = 0.9;
      const s = seededState(voxels, p, 5 + p, lambda, js);
      const before = seededState(voxels, p, 5 + p, lambda).arrays;
      // Two blocks, split at an odd voxel, as workers would: pairs and singles both run.
      runGlmBlock(GlmCommand.Rotate, s.arrays, s.params, p, 0, 51);
      runGlmBlock(GlmCommand.Rotate, s.arrays, s.params, p, 51, voxels);
      const { z, rss, syy, invalid } = s.arrays;
      const { cos: c, sin: sn } = s;
      for (let v = 0; v < voxels; v++) {
        const o = v * p;
        if (v === 3 || v === 7 || v === voxels - 1) {
          // Invalid before, or retired now: frozen z, NaN sums.
          expect(invalid[v]).toBe(1);
          expect(rss[v]).toBeNaN();
          // Retired now: NaN; invalid before (3): untouched.
          if (v === 3) expect(syy[v]).toBe(before.syy[v]);
          else expect(syy[v]).toBeNaN();
          expect(z.slice(o, o + p)).toEqual(before.z.slice(o, o + p));
          continue;
        }
        expect(invalid[v]).toBe(0);
        // Reference: the rotations written out with √λ applied separately.
        let w = before.y[v];
        for (let i = 0; i < p; i++) {
          const zi = Math.sqrt(lambda) * before.z[o + i];
          const want = c[i] * zi + sn[i] * w;
          w = c[i] * w - sn[i] * zi;
          expect(Math.abs(z[o + i] - want)).toBeLessThanOrEqual(1e-12 * (Math.abs(want) + 1));
        }
        const wantRss = lambda * before.rss[v] + w * w;
        expect(Math.abs(rss[v] - wantRss)).toBeLessThanOrEqual(1e-12 * wantRss);
        expect(syy[v]).toBe(lambda * before.syy[v] + before.y[v] * before.y[v]);
        // Rotations are orthogonal: ‖z‖² + RSS moves like λ·(‖z‖² + RSS) + y².
        let n0 = 0;
        let n1 = 0;
        for (let i = 0; i < p; i++) {
          n0 += before.z[o + i] ** 2;
          n1 += z[o + i] ** 2;
        }
        const want = lambda * (n0 + before.rss[v]) + before.y[v] ** 2;
        expect(Math.abs(n1 + rss[v] - want)).toBeLessThan(1e-10 * want);
      }
    });

    it(`${js ? 'JavaScript' : 'WebAssembly'}: gives bitwise the same voxel whatever the block split, and as the other kernel (P = ${p})`, () => {
      const voxels = 101;
      const one = seededState(voxels, p, 11 + p, 0.95, js);
      const split = seededState(voxels, p, 11 + p, 0.95, js);
      const other = seededState(voxels, p, 11 + p, 0.95, !js);
      runGlmBlock(GlmCommand.Rotate, other.arrays, other.params, p, 0, voxels);
      runGlmBlock(GlmCommand.Rotate, one.arrays, one.params, p, 0, voxels);
      for (const [a, b] of [[0, 1], [1, 40], [40, 77], [77, voxels]]) runGlmBlock(GlmCommand.Rotate, split.arrays, split.params, p, a, b);
      expect(split.arrays.z).toEqual(one.arrays.z);
      expect(split.arrays.rss).toEqual(one.arrays.rss);
      expect(split.arrays.syy).toEqual(one.arrays.syy);
      expect(Array.from(split.arrays.invalid)).toEqual(Array.from(one.arrays.invalid));
      expect(other.arrays.z).toEqual(one.arrays.z);
      expect(other.arrays.rss).toEqual(one.arrays.rss);
      expect(other.arrays.syy).toEqual(one.arrays.syy);
      expect(Array.from(other.arrays.invalid)).toEqual(Array.from(one.arrays.invalid));
    });
  }

  it('rejects an unknown command', () => {
    const s = createGlmState(4, 2, false);
    expect(() => runGlmBlock(99 as GlmCommand, s.arrays, s.params, 2, 0, 4)).toThrow(/unknown GLM command 99/);
  });
});
