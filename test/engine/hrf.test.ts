import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { gammaln, gammaPdf, microtimeHrfKernels, spmHrf } from '../../server/engine/hrf.ts';
import { SyncactError } from '../../server/errors.ts';

const ref = JSON.parse(readFileSync(new URL('../reference/hrf_reference.json', import.meta.url), 'utf8')) as Record<string, number[]>;

function expectClose(actual: ArrayLike<number>, expected: number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(tol);
}

describe('spmHrf (SPM12 spm_hrf, scipy reference)', () => {
  it('matches spm_hrf(1.0) and spm_hrf(2.0) to 1e-10', () => {
    expectClose(spmHrf(1.0), ref.spm_hrf_tr1, 1e-10);
    expectClose(spmHrf(2.0), ref.spm_hrf_tr2, 1e-10);
    expectClose(spmHrf(0.72), ref.spm_hrf_tr072, 1e-10);
  });

  it('honours the onset shift and non-default shapes (Lanczos path)', () => {
    expectClose(spmHrf(2.0, { onset: 1.5 }), ref.spm_hrf_tr2_onset15, 1e-10);
    expectClose(
      spmHrf(1.0, { peakDelay: 5.5, undershootDelay: 15, peakDispersion: 0.9, undershootDispersion: 1.1 }),
      ref.spm_hrf_tr1_shape,
      1e-10,
    );
  });

  it('sums to one and peaks near 5 s', () => {
    const h = spmHrf(0.5);
    expect(h.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    let arg = 0;
    for (let i = 1; i < h.length; i++) if (h[i] > h[arg]) arg = i;
    expect(arg * 0.5).toBe(5);
  });

  it('rejects a non-positive TR with a typed error', () => {
    expect(() => spmHrf(0)).toThrowError(SyncactError);
    expect(() => spmHrf(-1)).toThrow(expect.objectContaining({ code: 'ENGINE_BAD_INPUT', message: expect.stringMatching(/positive, got -1/) }));
  });
});

describe('microtime kernels (spm_get_bf)', () => {
  it('match spm_hrf(dt, [], 16) and the orthogonalised derivative to 1e-10', () => {
    const [h1, d1] = microtimeHrfKernels({ tr: 1, derivative: true });
    expectClose(h1, ref.micro_tr1_t16, 1e-10);
    expectClose(d1, ref.micro_tr1_t16_deriv, 1e-10);
    const [h2, d2] = microtimeHrfKernels({ tr: 2, binsPerTr: 16, derivative: true });
    expectClose(h2, ref.micro_tr2_t16, 1e-10);
    expectClose(d2, ref.micro_tr2_t16_deriv, 1e-10);
    expectClose(microtimeHrfKernels({ tr: 0.72, binsPerTr: 8 })[0], ref.micro_tr072_t8, 1e-10);
  });

  it('derivative is orthogonal to the HRF', () => {
    const [h, d] = microtimeHrfKernels({ tr: 1.5, derivative: true });
    let dot = 0;
    for (let i = 0; i < h.length; i++) dot += h[i] * d[i];
    expect(Math.abs(dot)).toBeLessThan(1e-15);
    expect(h.length).toBe(Math.floor(32 / (1.5 / 16)) + 1);
  });
});

describe('gamma helpers', () => {
  it('gammaln agrees between the exact integer path and Lanczos', () => {
    // Γ(6) = 120, Γ(0.5) = √π, Γ(16) = 15!
    expect(gammaln(6)).toBeCloseTo(Math.log(120), 13);
    expect(gammaln(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    expect(gammaln(16.000000001)).toBeCloseTo(gammaln(16), 6);
  });
  it('gammaPdf is zero for negative x and integrates to one', () => {
    expect(gammaPdf(-1, 6, 1)).toBe(0);
    let s = 0;
    for (let x = 0; x < 60; x += 0.001) s += gammaPdf(x, 6, 1) * 0.001;
    expect(s).toBeCloseTo(1, 6);
  });
});
