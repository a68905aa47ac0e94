import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { IncrementalCka, batchLinearCka } from '../../server/engine/cka.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

const ref = JSON.parse(readFileSync(new URL('../reference/cka_reference.json', import.meta.url), 'utf8')) as {
  T: number; p: number; q: number; X: number[]; Y: number[]; cka: (number | null)[]; lambda: number; cka_forgetting: (number | null)[];
};

function expectCka(got: number, want: number | null, tol: number): void {
  if (want === null || Number.isNaN(want)) expect(got).toBeNaN();
  else expect(Math.abs(got - want)).toBeLessThan(tol);
}

/** Seeded X (T×p) and Y (T×q) sharing two drives, with large offsets. */
function seeded(seed: number, T: number, p: number, q: number) {
  const rng = createRng(seed);
  const ax = Array.from({ length: 2 * p }, () => rng.normal());
  const ay = Array.from({ length: 2 * q }, () => rng.normal());
  const X = new Float64Array(T * p);
  const Y = new Float64Array(T * q);
  for (let t = 0; t < T; t++) {
    const s0 = rng.normal(), s1 = rng.normal();
    for (let i = 0; i < p; i++) X[t * p + i] = 500 + s0 * ax[2 * i] + s1 * ax[2 * i + 1] + rng.normal();
    for (let j = 0; j < q; j++) Y[t * q + j] = -2e4 + 30 * (s0 * ay[2 * j] + s1 * ay[2 * j + 1] + rng.normal());
  }
  return { X, Y };
}

describe('IncrementalCka', () => {
  it('equals the numpy HSIC/Gram reference at every TR to 1e-8', () => {
    const { T, p, q } = ref;
    const cka = new IncrementalCka({ p, q });
    for (let t = 0; t < T; t++) {
      cka.update(Float64Array.from(ref.X.slice(t * p, (t + 1) * p)), Float64Array.from(ref.Y.slice(t * q, (t + 1) * q)));
      expectCka(cka.value(), ref.cka[t], 1e-8);
    }
  });

  it('with forgetting equals the numpy weighted reference at every TR to 1e-8', () => {
    const { T, p, q } = ref;
    const cka = new IncrementalCka({ p, q, forgetting: ref.lambda });
    for (let t = 0; t < T; t++) {
      cka.update(Float64Array.from(ref.X.slice(t * p, (t + 1) * p)), Float64Array.from(ref.Y.slice(t * q, (t + 1) * q)));
      expectCka(cka.value(), ref.cka_forgetting[t], 1e-8);
    }
  });

  it('equals the two-pass batch twin on seeded data with large offsets, snapshot/restore mid-stream', () => {
    const T = 70, p = 24, q = 9;
    const { X, Y } = seeded(5, T, p, q);
    const row = (a: Float64Array, d: number, t: number) => a.subarray(t * d, (t + 1) * d);
    const a = new IncrementalCka({ p, q });
    let snap = a.snapshot();
    for (let t = 0; t < T; t++) {
      a.update(row(X, p, t), row(Y, q, t));
      if (t === 29) snap = a.snapshot();
      if (t % 5 === 4 || t === 1) {
        const want = batchLinearCka(X.subarray(0, (t + 1) * p), Y.subarray(0, (t + 1) * q), t + 1, p, q);
        expect(Math.abs(a.value() - want)).toBeLessThan(1e-8);
      }
    }
    const b = new IncrementalCka({ p, q });
    b.restore(snap);
    expect(b.count).toBe(30);
    for (let t = 30; t < T; t++) b.update(row(X, p, t), row(Y, q, t));
    expect(b.value()).toBe(a.value());
    expect(Array.from(b.crossProducts())).toEqual(Array.from(a.crossProducts()));
    expect(() => new IncrementalCka({ p, q, forgetting: 0.9 }).restore(snap)).toThrowError(SyncactError);
  });

  it('is invariant to scaling and offsets of either side, and is 1 for Y = X·orthogonal', () => {
    const T = 30, p = 4;
    const { X } = seeded(8, T, p, 1);
    const Y = new Float64Array(T * p);
    // a rotation in the (0, 1) plane and a sign flip on column 3, plus an offset
    const c = Math.cos(0.7), s = Math.sin(0.7);
    for (let t = 0; t < T; t++) {
      const x = X.subarray(t * p, (t + 1) * p);
      Y.set([c * x[0] - s * x[1], s * x[0] + c * x[1], x[2], -x[3]].map((v) => 3 * v + 17), t * p);
    }
    const cka = new IncrementalCka({ p, q: p });
    for (let t = 0; t < T; t++) cka.update(X.subarray(t * p, (t + 1) * p), Y.subarray(t * p, (t + 1) * p));
    expect(cka.value()).toBeCloseTo(1, 10);
  });

  it('gives NaN before two samples and for a constant side; skips TRs with NaN', () => {
    const cka = new IncrementalCka({ p: 2, q: 2 });
    expect(cka.value()).toBeNaN();
    cka.update(Float64Array.of(1, 2), Float64Array.of(3, 4));
    expect(cka.value()).toBeNaN();
    for (let t = 0; t < 5; t++) cka.update(Float64Array.of(t, -t), Float64Array.of(3, 4)); // Y constant
    expect(cka.value()).toBeNaN();
    cka.update(Float64Array.of(NaN, 1), Float64Array.of(1, 1));
    expect(cka.skipped).toBe(1);
    expect(cka.count).toBe(6);
    cka.update(Float64Array.of(2, 2), Float64Array.of(5, 0)); // now Y varies
    expect(Number.isFinite(cka.value())).toBe(true);
  });

  it('rejects bad sizes and forgetting factors with typed errors', () => {
    expect(() => new IncrementalCka({ p: 0, q: 1 })).toThrowError(SyncactError);
    expect(() => new IncrementalCka({ p: 1, q: 1, forgetting: 0 })).toThrowError(/forgetting/);
    expect(() => new IncrementalCka({ p: 2, q: 1 }).update(new Float64Array(1), new Float64Array(1))).toThrowError(/length 2/);
  });
});
