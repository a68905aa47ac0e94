/**
 * The unit annotation's temporal null (coupling.ts UnitMapNullOptions, annotation.ts
 * temporalNullP) on a seeded session whose BOLD is four strong network signals plus noise:
 * units that track a network's drive are labelled with it at q ≤ 0.05, and pure-noise units
 * (seeded random, HRF-convolved) get p about uniform, where the old spatial null (smooth
 * random fields) called most of them significant: their maps are network-like by chance,
 * because the noise response correlates a little with the strong network signals.
 */
import { describe, expect, it } from 'vitest';
import { CouplingEngine } from '../../server/engine/coupling.ts';
import { annotateUnitsFrom, temporalNullP, type AnnotationOptions } from '../../server/engine/annotation.ts';
import { createRng } from '../../server/engine/random.ts';
import { spmHrf } from '../../server/engine/hrf.ts';
import { cosineDriftOrder, dctRow } from '../../server/engine/drift.ts';

const TR = 2;
const T = 240;
const dims: [number, number, number] = [8, 8, 4];
const V = dims[0] * dims[1] * dims[2];
const NETWORKS = 4;
const NOISE_UNITS = 60;

function hrfConvolved(raw: Float64Array): Float64Array {
  const h = spmHrf(TR);
  return Float64Array.from(raw, (_, t) => {
    let acc = 0;
    for (let i = 0; i < h.length && i <= t; i++) acc += h[i] * raw[t - i];
    return acc;
  });
}

function standardized(x: Float64Array): Float64Array {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
  return x.map((v) => (v - mean) / sd);
}

function session() {
  const rng = createRng(2024);
  // Four smooth blob templates (weights), centred in the four quadrants of the slab.
  const centres = [[2, 2], [5, 2], [2, 5], [5, 5]];
  const templates = centres.map(([cx, cy]) =>
    Float32Array.from({ length: V }, (_, v) => {
      const x = v % dims[0], y = Math.floor(v / dims[0]) % dims[1];
      return Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.5 ** 2));
    }),
  );
  const drives = Array.from({ length: NETWORKS }, () => standardized(hrfConvolved(Float64Array.from({ length: T }, () => rng.normal()))));
  // Planted units: a drive plus a little noise; then pure-noise units.
  const units: Float64Array[] = [];
  for (let k = 0; k < NETWORKS; k++) units.push(drives[k].map((x) => 40 + 5 * (x + 0.3 * rng.normal())));
  for (let i = 0; i < NOISE_UNITS; i++) units.push(standardized(hrfConvolved(Float64Array.from({ length: T }, () => rng.normal()))).map((x) => 40 + 5 * x));
  const U = units.length;
  const series = new Float64Array(T * U);
  for (let t = 0; t < T; t++) for (let u = 0; u < U; u++) series[t * U + u] = units[u][t];
  const E = cosineDriftOrder(T, TR) + 1;
  const volumes: Float32Array[] = [];
  for (let t = 0; t < T; t++) {
    volumes.push(
      Float32Array.from({ length: V }, (_, v) => {
        let y = 1000 + 2 * rng.normal();
        for (let k = 0; k < NETWORKS; k++) y += 6 * templates[k][v] * drives[k][t];
        return y;
      }),
    );
  }
  return { templates, series, U, E, volumes };
}

describe('unit annotation: temporal null', () => {
  const s = session();
  const annotation: AnnotationOptions = {
    templates: s.templates,
    names: ['a', 'b', 'c', 'd'],
    nulls: 100,
    seed: 3,
    grid: { dims, voxelIndex: Int32Array.from({ length: V }, (_, v) => v) },
  };
  const mapped = Array.from({ length: s.U }, (_, u) => u);
  const engine = new CouplingEngine({
    voxels: V,
    units: s.U,
    glmUnits: [0],
    extras: s.E,
    glm: { workers: 0 },
    atlas: { labelOfVoxel: new Int32Array(V), regions: 1 },
    sliding: { window: 20 },
    unitMaps: { units: mapped, interceptColumn: s.E - 1, nulls: { count: 100, seed: 9, minShift: 20, series: s.series } },
    annotation,
  });
  for (let t = 0; t < T; t++) engine.update({ units: s.series.slice(t * s.U, (t + 1) * s.U), extras: dctRow(t, T, TR), volume: s.volumes[t] });
  const rows = engine.annotate(undefined, 'unit');
  const noise = rows.slice(NETWORKS);

  it("labels the units that track a planted drive with its network at q ≤ 0.05", () => {
    for (let k = 0; k < NETWORKS; k++) {
      expect(rows[k].label).toBe(annotation.names[k]);
      expect(rows[k].sign).toBe(1);
      expect(rows[k].q).toBeLessThanOrEqual(0.05);
    }
    // None of the pure-noise units is labelled at q ≤ 0.05 (the truth's annotation_false_labels).
    expect(noise.filter((a) => a.q <= 0.05).length).toBe(0);
  });

  it('gives pure-noise units about uniform p, where the spatial null called most of them significant', () => {
    const ps = noise.map((a) => a.p);
    const below = (x: number) => ps.filter((p) => p <= x).length / ps.length;
    // Uniform: P(p ≤ 0.05) ≈ 0.05 (≤ 0.15 with 60 units), P(p ≤ 0.5) ≈ 0.5.
    expect(below(0.05)).toBeLessThanOrEqual(0.15);
    expect(below(0.5)).toBeGreaterThan(0.3);
    expect(below(0.5)).toBeLessThan(0.7);
    // The old spatial null on the same maps: most noise units "significant".
    const spatial = annotateUnitsFrom(noise.length, (i) => engine.unitTmap(noise[i].unit), annotation);
    const spatialBelow = spatial.filter((a) => a.p <= 0.05).length / spatial.length;
    expect(spatialBelow).toBeGreaterThan(0.5);
  });
});

describe('temporalNullP', () => {
  const nulls = Float64Array.from({ length: 100 }, (_, j) => Math.tanh(0.1 + 0.002 * j)); // z 0.1 … 0.298

  it('is the exact rank inside the nulls, the normal tail only past the largest, never above the floor', () => {
    expect(temporalNullP(Math.tanh(0.25), nulls)).toBe((1 + 25) / 101); // z ≥ 0.25: j = 75 … 99
    expect(temporalNullP(0, nulls)).toBe(1);
    const atMax = temporalNullP(nulls[99], nulls);
    expect(atMax).toBe(2 / 101);
    const past = [0.3, 0.35, 0.45].map((z) => temporalNullP(Math.tanh(z), nulls));
    for (const p of past) expect(p).toBeLessThanOrEqual(1 / 101);
    expect(past[1]).toBeLessThan(past[0]);
    expect(past[2]).toBeLessThan(past[1]);
    // The tail: the upper tail of the normal fitted to the nulls' z (mean 0.199, sd 0.058) at z = 0.45.
    const mean = 0.199;
    const sd = Math.sqrt(Array.from(nulls, (r) => (Math.atanh(r) - mean) ** 2).reduce((a, b) => a + b) / 99);
    const zScore = (0.45 - mean) / sd;
    expect(past[2]).toBeGreaterThan(0);
    expect(Math.abs(Math.log(past[2]) - Math.log(upperNormalTail(zScore)))).toBeLessThan(1e-3);
  });

  it('is NaN without 2 defined nulls or for a NaN score; NaN nulls are left out', () => {
    expect(temporalNullP(0.5, new Float64Array(0))).toBeNaN();
    expect(temporalNullP(0.5, Float64Array.of(0.1, NaN))).toBeNaN();
    expect(temporalNullP(NaN, nulls)).toBeNaN();
    expect(temporalNullP(Math.tanh(0.25), Float64Array.from([...nulls, NaN]))).toBe(26 / 101);
  });
});

/** P(Z > z) for a standard normal by Simpson integration of the density: a reference independent of the erfc fit. */
function upperNormalTail(z: number): number {
  // Simpson integration of the density from z to z + 12: plenty for z in [0, 6].
  const n = 20000;
  const h = 12 / n;
  let acc = 0;
  for (let i = 0; i <= n; i++) {
    const x = z + i * h;
    const w = i === 0 || i === n ? 1 : i % 2 ? 4 : 2;
    acc += w * Math.exp(-0.5 * x * x);
  }
  return (acc * h) / 3 / Math.sqrt(2 * Math.PI);
}
