/**
 * Seeded inputs for the UnitMaps tests: DCT drift extras with the constant last (the
 * engine's layout), unit responses with large means, and BOLD-like float32 volumes with a
 * large offset (~1000), a strong drift, effects planted on some units, noise, plus the
 * degenerate cases (a constant unit, a constant voxel, a voxel that turns NaN mid-run).
 */
import { createRng } from '../../server/engine/random.ts';
import { dctRow, cosineDriftOrder } from '../../server/engine/drift.ts';

export interface UnitMapsData {
  T: number;
  U: number;
  E: number;
  V: number;
  /** Index of the constant among the extras (the drift row's last). */
  interceptColumn: number;
  units: Float64Array;
  extras: Float64Array;
  volumes: Float32Array;
  constantUnit: number;
  constantVoxel: number;
  nanVoxel: number;
  nanFrom: number;
}

export function makeUnitMapsData(seed: number, T: number, U: number, V: number, tr = 2): UnitMapsData {
  const rng = createRng(seed);
  const order = cosineDriftOrder(T, tr);
  const E = order + 1;
  const extras = new Float64Array(T * E);
  for (let t = 0; t < T; t++) extras.set(dctRow(t, T, tr), t * E);
  const units = new Float64Array(T * U);
  const walk = new Float64Array(U);
  const constantUnit = U - 1;
  for (let t = 0; t < T; t++) {
    for (let u = 0; u < U; u++) {
      walk[u] = 0.8 * walk[u] + rng.normal();
      // Large, unit-specific means (a mean-pooled ReLU activation is positive).
      units[t * U + u] = u === constantUnit ? 3.5 : 50 + 10 * u + walk[u];
    }
  }
  const offset = Float64Array.from({ length: V }, () => 1000 + 200 * rng.normal());
  const drift = Float64Array.from({ length: V }, () => 30 * rng.normal());
  const effect = Float64Array.from({ length: U * V }, (_, i) => (i % 3 === 0 ? 2 * rng.normal() : 0));
  const constantVoxel = 1;
  const nanVoxel = 2;
  const nanFrom = Math.floor(T / 2);
  const volumes = new Float32Array(T * V);
  for (let t = 0; t < T; t++) {
    const slow = t / T + 0.5 * Math.sin((2 * Math.PI * t) / T);
    for (let v = 0; v < V; v++) {
      let y = offset[v] + drift[v] * slow + 3 * rng.normal();
      for (let u = 0; u < U; u++) y += effect[u * V + v] * (units[t * U + u] - 50 - 10 * u);
      if (v === constantVoxel) y = 812.5;
      if (v === nanVoxel && t >= nanFrom) y = NaN;
      volumes[t * V + v] = y;
    }
  }
  return { T, U, E, V, interceptColumn: order, units, extras, volumes, constantUnit, constantVoxel, nanVoxel, nanFrom };
}

/** The first k TRs of a T×n row-major array. */
export function head<A extends Float64Array | Float32Array>(a: A, k: number, n: number): A {
  return a.subarray(0, k * n) as A;
}

/**
 * Largest |a − b| / (|b| + floor) over entries where both are finite; Infinity where
 * exactly one is NaN. `floor` keeps near-zero values from dominating a relative error.
 */
export function worstRelative(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
      continue;
    }
    worst = Math.max(worst, Math.abs(x - y) / (Math.abs(y) + floor));
  }
  return worst;
}
