import { describe, expect, it } from 'vitest';
import { GlmCommand, createGlmState, paramGain, paramMatrix, paramUpper, paramX, runGlmBlock } from '../../server/engine/glmBlock.ts';
import { glmWasmModule } from '../../server/engine/glmWasm.ts';
import { createRng } from '../../server/engine/random.ts';

/** A state with seeded betas, sums, volume and gain; a few voxels invalid or non-finite. */
function seededState(voxels: number, p: number, seed: number) {
  const s = createGlmState(voxels, p, false);
  const rng = createRng(seed);
  const { arrays, params } = s;
  for (let i = 0; i < arrays.betas.length; i++) arrays.betas[i] = 100 * rng.normal();
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
    params[paramX(p) + j] = rng.normal();
    params[paramGain(p) + j] = 1e-3 * rng.normal();
  }
  params[0] = 0.97; // λ
  params[1] = 0.8; // λ/(λ+q)
  return s;
}

describe('GLM per-voxel kernels', () => {
  it('has the WebAssembly SIMD kernel on this Node', () => {
    expect(glmWasmModule()).not.toBeNull();
    expect(createGlmState(10, 3, false).arrays.kernel).not.toBeNull();
  });

  for (const p of [1, 2, 7, 69]) {
    it(`WebAssembly and JavaScript warm-up steps are bitwise equal (P = ${p})`, () => {
      const voxels = 101;
      const wasm = seededState(voxels, p, 9 + p);
      const js = seededState(voxels, p, 9 + p);
      js.arrays.kernel = null;
      for (const s of [wasm, js]) {
        runGlmBlock(GlmCommand.Accumulate, s.arrays, s.params, p, 0, 51);
        runGlmBlock(GlmCommand.Accumulate, s.arrays, s.params, p, 51, voxels);
      }
      expect(wasm.arrays.betas).toEqual(js.arrays.betas);
      expect(wasm.arrays.syy).toEqual(js.arrays.syy);
      expect(wasm.arrays.rss).toEqual(js.arrays.rss);
      expect(Array.from(wasm.arrays.invalid)).toEqual(Array.from(js.arrays.invalid));
      expect([3, 7, voxels - 1].map((v) => wasm.arrays.invalid[v])).toEqual([1, 1, 1]);
      const before = seededState(voxels, p, 9 + p).arrays.betas;
      expect(wasm.arrays.betas[0]).not.toBe(before[0]);
      expect(wasm.arrays.betas.slice(3 * p, 4 * p)).toEqual(before.slice(3 * p, 4 * p));
    });

    it(`WebAssembly and JavaScript exact starts both solve L Lᵀ β = Xᵀy (P = ${p})`, () => {
      const voxels = 101;
      const make = () => {
        const s = seededState(voxels, p, 13 + p);
        // A well-conditioned lower factor, and its transpose.
        const rng = createRng(99 + p);
        const lo = paramMatrix(p);
        const uo = paramUpper(p);
        for (let i = 0; i < p; i++) {
          for (let k = 0; k <= i; k++) {
            const value = i === k ? 1 + rng.uniform() : 0.3 * rng.normal();
            s.params[lo + i * p + k] = value;
            s.params[uo + k * p + i] = value;
          }
        }
        return s;
      };
      const wasm = make();
      const js = make();
      js.arrays.kernel = null;
      const xty = wasm.arrays.betas.slice();
      for (const s of [wasm, js]) {
        runGlmBlock(GlmCommand.Init, s.arrays, s.params, p, 0, 51);
        runGlmBlock(GlmCommand.Init, s.arrays, s.params, p, 51, voxels);
      }
      const l = wasm.params.subarray(paramMatrix(p), paramMatrix(p) + p * p);
      for (let v = 0; v < voxels; v++) {
        if (v === 3) continue; // invalid: untouched
        const o = v * p;
        for (let i = 0; i < p; i++) {
          // (L Lᵀ β)_i = Xᵀy_i
          let s = 0;
          for (let m = 0; m < p; m++) {
            let lt = 0;
            for (let k = 0; k < p; k++) lt += l[k * p + m] * wasm.arrays.betas[o + k];
            s += l[i * p + m] * lt;
          }
          expect(Math.abs(s - xty[o + i])).toBeLessThan(1e-9 * (Math.abs(xty[o + i]) + 1));
          expect(Math.abs(wasm.arrays.betas[o + i] - js.arrays.betas[o + i])).toBeLessThanOrEqual(
            1e-12 * (Math.abs(js.arrays.betas[o + i]) + 1),
          );
        }
        // rss = max(syy − βᵀXᵀy, 0)
        let fit = 0;
        for (let i = 0; i < p; i++) fit += wasm.arrays.betas[o + i] * xty[o + i];
        const want = Math.max(wasm.arrays.syy[v] - fit, 0);
        expect(Math.abs(wasm.arrays.rss[v] - want)).toBeLessThan(1e-9 * (wasm.arrays.syy[v] + 1));
        expect(Math.abs(wasm.arrays.rss[v] - js.arrays.rss[v])).toBeLessThanOrEqual(1e-12 * (wasm.arrays.syy[v] + 1));
      }
      expect(wasm.arrays.betas.slice(3 * p, 4 * p)).toEqual(xty.slice(3 * p, 4 * p));
    });

    it(`WebAssembly and JavaScript RLS steps agree to rounding (P = ${p}), invalid and non-finite voxels included`, () => {
      const voxels = 101;
      const wasm = seededState(voxels, p, 5 + p);
      const js = seededState(voxels, p, 5 + p);
      js.arrays.kernel = null;
      // Two blocks, split at an odd voxel, as workers would.
      for (const s of [wasm, js]) {
        runGlmBlock(GlmCommand.Rls, s.arrays, s.params, p, 0, 51);
        runGlmBlock(GlmCommand.Rls, s.arrays, s.params, p, 51, voxels);
      }
      const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        for (let i = 0; i < b.length; i++) {
          if (Number.isNaN(b[i])) expect(a[i]).toBeNaN();
          else expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-12 * (Math.abs(b[i]) + 1));
        }
      };
      close(wasm.arrays.betas, js.arrays.betas);
      close(wasm.arrays.rss, js.arrays.rss);
      close(wasm.arrays.syy, js.arrays.syy);
      expect(Array.from(wasm.arrays.invalid)).toEqual(Array.from(js.arrays.invalid));
      expect([3, 7, voxels - 1].map((v) => wasm.arrays.invalid[v])).toEqual([1, 1, 1]);
      expect(wasm.arrays.rss[7]).toBeNaN();
      // The step really moved the betas (guards against a kernel that does nothing).
      const before = seededState(voxels, p, 5 + p).arrays.betas;
      expect(Math.abs(wasm.arrays.betas[0] - before[0])).toBeGreaterThan(0);
      // An invalid voxel's betas are frozen.
      expect(wasm.arrays.betas.slice(3 * p, 4 * p)).toEqual(before.slice(3 * p, 4 * p));
    });
  }
});
