import { describe, expect, it } from 'vitest';
import { projectElasticNetBall } from '../../server/engine/elasticNetProjection.ts';
import { createRng, normalArray } from '../../server/engine/random.ts';

const norm1 = (d: Float64Array) => d.reduce((s, v) => s + Math.abs(v), 0);
const norm2sq = (d: Float64Array) => d.reduce((s, v) => s + v * v, 0);
const constraint = (d: Float64Array, r: number) => (1 - r) * norm2sq(d) + r * norm1(d);

function project(u: Float64Array, r: number, nonNegative = false): { d: Float64Array; nnz: number; support: Int32Array } {
  const d = new Float64Array(u);
  const buf = new Int32Array(u.length);
  const nnz = projectElasticNetBall(d, d.length, r, nonNegative, buf);
  return { d, nnz, support: buf.slice(0, nnz) };
}

/** Independent reference: bisection on the multiplier ν of the KKT form d = S(u, νr)/(1 + 2ν(1 − r)). */
function bisectionProjection(u: Float64Array, r: number): Float64Array {
  const at = (nu: number) => u.map((v) => (Math.sign(v) * Math.max(Math.abs(v) - nu * r, 0)) / (1 + 2 * nu * (1 - r)));
  if (constraint(u, r) <= 1) return new Float64Array(u);
  let lo = 0;
  let hi = 1;
  while (constraint(at(hi), r) > 1) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (constraint(at(mid), r) > 1) lo = mid;
    else hi = mid;
  }
  return at((lo + hi) / 2);
}

describe('projectElasticNetBall', () => {
  it('equals a bisection on the KKT multiplier, for r across [0, 1] and several scales', () => {
    for (const r of [0, 0.1, 0.5, 0.9, 1]) {
      for (const scale of [0.01, 0.3, 1, 5]) {
        const u = normalArray(Math.round(1000 * r + 10 * scale), 300).map((v) => v * scale);
        const { d } = project(u, r);
        const ref = bisectionProjection(u, r);
        for (let i = 0; i < u.length; i++) expect(Math.abs(d[i] - ref[i])).toBeLessThan(1e-10);
      }
    }
  });

  it('lands on the boundary from outside, leaves inside points alone, and reports the support', () => {
    const u = normalArray(3, 500);
    for (const r of [0.2, 0.7]) {
      const { d, nnz, support } = project(u, r);
      expect(constraint(d, r)).toBeCloseTo(1, 10);
      expect(nnz).toBe(d.filter((v) => v !== 0).length);
      expect(nnz).toBeLessThan(500); // the ℓ1 part zeroes coordinates
      for (let q = 1; q < nnz; q++) expect(support[q]).toBeGreaterThan(support[q - 1]);
      for (const i of support) expect(d[i]).not.toBe(0);
      // Projecting again changes nothing.
      const again = project(d, r).d;
      for (let i = 0; i < d.length; i++) expect(Math.abs(again[i] - d[i])).toBeLessThan(1e-14);
    }
    const small = u.map((v) => v * 1e-4);
    expect(Array.from(project(small, 0.5).d)).toEqual(Array.from(small));
  });

  it('is the closest point: (u − d)·(z − d) ≤ 0 for points z of the ball', () => {
    const rng = createRng(9);
    const u = normalArray(4, 60);
    for (const r of [0.3, 1]) {
      const { d } = project(u, r);
      for (let trial = 0; trial < 200; trial++) {
        const z = normalArray(100 + trial, 60);
        // Pull z inside the ball by scaling (the ball is star-shaped around 0).
        let s = 1;
        while (constraint(z.map((v) => v * s), r) > 1) s *= 0.5 + 0.4 * rng.uniform();
        let ip = 0;
        for (let i = 0; i < 60; i++) ip += (u[i] - d[i]) * (z[i] * s - d[i]);
        expect(ip).toBeLessThan(1e-12);
      }
    }
  });

  it('r = 0 is u/‖u‖₂ and r = 1 is the ℓ1-ball projection (sort-based, Duchi et al. 2008)', () => {
    const u = normalArray(5, 200);
    const n2 = Math.sqrt(norm2sq(u));
    const l2 = project(u, 0).d;
    for (let i = 0; i < u.length; i++) expect(l2[i]).toBeCloseTo(u[i] / n2, 14);
    const a = Array.from(u, Math.abs).sort((p, q) => q - p);
    let cum = 0;
    let theta = 0;
    for (let k = 0; k < a.length; k++) {
      cum += a[k];
      const t = (cum - 1) / (k + 1);
      if (a[k] > t) theta = t;
    }
    const l1 = project(u, 1).d;
    for (let i = 0; i < u.length; i++) expect(l1[i]).toBeCloseTo(Math.sign(u[i]) * Math.max(Math.abs(u[i]) - theta, 0), 12);
  });

  it('gives bit-identical results whatever the θ hint, too small, exact or too large, and reports θ', () => {
    for (const r of [0.3, 0.8]) {
      const u = normalArray(Math.round(r * 10), 2000).map((v, i) => v * 0.01 + (i > 500 && i < 700 ? 0.05 : 0));
      const plain = project(u, r).d;
      const found = { theta: 0 };
      const d0 = new Float64Array(u);
      projectElasticNetBall(d0, d0.length, r, false, new Int32Array(u.length), found);
      expect(d0).toEqual(plain);
      expect(found.theta).toBeGreaterThan(0);
      for (const guess of [found.theta * 0.5, found.theta, found.theta * 0.999, found.theta * 3, 1e9]) {
        const hint = { theta: guess };
        const d = new Float64Array(u);
        projectElasticNetBall(d, d.length, r, false, new Int32Array(u.length), hint);
        expect(d).toEqual(plain);
        expect(hint.theta).toBe(found.theta);
      }
    }
  });

  it('with nonNegative, equals the projection of max(u, 0) and has no negative entry', () => {
    const u = normalArray(6, 300);
    const pos = u.map((v) => Math.max(v, 0));
    const a = project(u, 0.5, true).d;
    const b = project(pos, 0.5).d;
    for (let i = 0; i < u.length; i++) {
      expect(a[i]).toBeGreaterThanOrEqual(0);
      expect(a[i]).toBe(b[i]);
    }
    expect(project(u.map((v) => -Math.abs(v)), 0.5, true).nnz).toBe(0);
  });
});
