import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { filterBank, gaborKernel, serreGabor } from '../../../server/engine/cnn/gabor.ts';
import { createHmaxFilters, S2_PATCH } from '../../../server/engine/cnn/hmax.ts';
import { imprintPrototypes, prototypeStimulus, STIMULUS_KINDS } from '../../../server/engine/cnn/s2Prototypes.ts';
import { initTfBackend } from '../../../server/engine/cnn/tfBackend.ts';
import { createRng } from '../../../server/engine/random.ts';

const rad = (d: number) => (d * Math.PI) / 180;

describe('Gabor kernels (S1)', () => {
  it("follow Serre et al.'s size → σ, λ table", () => {
    // Their Table 1 gives (to 0.1) size 7 → σ 2.8, λ 3.5 and size 11 → σ 4.5, λ 5.6.
    for (const [size, sigma, lambda] of [[7, 2.8, 3.5], [11, 4.5, 5.6]]) {
      const g = serreGabor(size, 0);
      expect(Math.abs(g.sigma - sigma)).toBeLessThan(0.1);
      expect(Math.abs(g.wavelength - lambda)).toBeLessThan(0.1);
      expect(g.wavelength).toBeCloseTo(g.sigma / 0.8, 12);
      expect(g.gamma).toBe(0.3);
    }
  });

  it('are zero-mean and unit-norm at every size, orientation and phase', () => {
    for (const size of [7, 11, 15]) {
      for (const o of [0, 45, 90, 135]) {
        for (const phase of [0, -Math.PI / 2]) {
          const k = gaborKernel(serreGabor(size, rad(o), phase));
          let s = 0;
          let s2 = 0;
          for (const v of k) {
            s += v;
            s2 += v * v;
          }
          expect(Math.abs(s)).toBeLessThan(1e-5);
          expect(s2).toBeCloseTo(1, 5);
        }
      }
    }
  });

  it('rotate with θ (90° is the transpose of 0°), even ones are symmetric, odd ones antisymmetric, corners cut', () => {
    const n = 11;
    const k0 = gaborKernel(serreGabor(n, 0));
    const k90 = gaborKernel(serreGabor(n, rad(90)));
    const k45 = gaborKernel(serreGabor(n, rad(45)));
    const k135 = gaborKernel(serreGabor(n, rad(135)));
    const odd = gaborKernel(serreGabor(n, 0, -Math.PI / 2));
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        expect(k90[y * n + x]).toBeCloseTo(k0[x * n + y], 6);
        // 135° is 45° mirrored left–right.
        expect(k135[y * n + x]).toBeCloseTo(k45[y * n + (n - 1 - x)], 6);
        expect(k0[y * n + x]).toBeCloseTo(k0[(n - 1 - y) * n + (n - 1 - x)], 6);
        expect(odd[y * n + x]).toBeCloseTo(-odd[(n - 1 - y) * n + (n - 1 - x)], 6);
      }
    }
    // θ = 0 is a vertical bar: along the centre column (along the bar) the sign does not change.
    expect(Math.sign(k0[5 * n + 5])).toBe(Math.sign(k0[3 * n + 5]));
    expect(k0[0]).toBe(0);
    expect(() => gaborKernel(serreGabor(8, 0))).toThrow(RangeError);
  });

  it('stack into an HWIO bank with smaller kernels centred', () => {
    const a = { size: 3, values: Float32Array.from({ length: 9 }, (_, i) => i + 1) };
    const b = { size: 5, values: Float32Array.from({ length: 25 }, (_, i) => -(i + 1)) };
    const bank = filterBank([a, b], 5);
    expect(bank).toHaveLength(50);
    // Filter 0 at (y=1, x=1) is a's (0, 0); its border is zero; filter 1 is b verbatim.
    expect(bank[(1 * 5 + 1) * 2 + 0]).toBe(1);
    expect(bank[(3 * 5 + 3) * 2 + 0]).toBe(9);
    expect(bank[0]).toBe(0);
    for (let i = 0; i < 25; i++) expect(bank[i * 2 + 1]).toBe(-(i + 1));
    expect(() => filterBank([b], 4)).toThrow(RangeError);
  });
});

describe('S2 prototypes', () => {
  it('are drawn from procedural stimuli: one of each kind per level, pixels in [0, 1]', () => {
    const rng = createRng(3);
    const stimuli = Array.from({ length: 16 }, (_, k) => prototypeStimulus(k, rng));
    expect(stimuli.map((s) => s.kind)).toEqual(Array.from({ length: 16 }, (_, k) => STIMULUS_KINDS[k % 4]));
    expect(stimuli.map((s) => s.level)).toEqual(Array.from({ length: 16 }, (_, k) => Math.floor(k / 4)));
    for (const s of stimuli) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of s.pixels) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
      expect(hi - lo).toBeGreaterThan(0.2);
    }
  });

  it('are unit-norm, non-negative, the same for the same seed and different for another', async () => {
    await initTfBackend('wasm');
    const before = tf.memory().numTensors;
    const filters = createHmaxFilters();
    const a = imprintPrototypes(filters, 16, 1);
    const b = imprintPrototypes(filters, 16, 1);
    const c = imprintPrototypes(filters, 16, 2);
    expect(a.shape).toEqual([S2_PATCH, S2_PATCH, 4, 16]);
    const av = a.dataSync();
    expect(b.dataSync()).toEqual(av);
    expect(c.dataSync()).not.toEqual(av);
    for (let k = 0; k < 16; k++) {
      let s2 = 0;
      for (let i = 0; i < S2_PATCH * S2_PATCH * 4; i++) {
        const v = av[i * 16 + k];
        expect(v).toBeGreaterThanOrEqual(0);
        s2 += v * v;
      }
      expect(s2).toBeCloseTo(1, 5);
    }
    tf.dispose([a, b, c, ...filters.s1, filters.even, filters.odd]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
