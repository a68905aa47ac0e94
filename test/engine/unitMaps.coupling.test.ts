import { describe, expect, it } from 'vitest';
import { CouplingEngine, type CouplingEngineOptions } from '../../server/engine/coupling.ts';
import { UnitMaps } from '../../server/engine/unitMaps.ts';
import { batchUnitMaps } from '../../server/engine/unitMapsBatch.ts';
import { annotateUnitsFrom, nullBestScoresFrom, temporalNullP } from '../../server/engine/annotation.ts';
import { makeUnitMapsData, worstRelative, type UnitMapsData } from './unitMapsTestData.ts';

// The coupling engine with unit maps for some of its units: the maps are each unit's own
// GLM on the engine's extras (the drift row, constant last), whatever the joint GLM holds.
const d: UnitMapsData = makeUnitMapsData(31, 90, 6, 48);
const mapped = [4, 0, 2];

const options = (unitMaps: CouplingEngineOptions['unitMaps']): CouplingEngineOptions => ({
  voxels: d.V,
  units: d.U,
  glmUnits: [0, 1],
  extras: d.E,
  glm: { workers: 0 },
  atlas: { labelOfVoxel: Int32Array.from({ length: d.V }, (_, v) => v % 4), regions: 4 },
  sliding: { window: 10 },
  unitMaps,
});

function feed(e: CouplingEngine, from: number, to: number): void {
  for (let k = from; k < to; k++) {
    e.update({
      units: d.units.slice(k * d.U, (k + 1) * d.U),
      extras: d.extras.slice(k * d.E, (k + 1) * d.E),
      volume: d.volumes.slice(k * d.V, (k + 1) * d.V),
    });
  }
}

describe('CouplingEngine unit maps', () => {
  it("gives each mapped unit its own GLM map (= per-unit batch OLS), not its column of the joint GLM", () => {
    const e = new CouplingEngine(options({ units: mapped, interceptColumn: d.interceptColumn }));
    feed(e, 0, d.T);
    expect(e.mappedUnits).toEqual(mapped);
    const units = new Float64Array(d.T * mapped.length);
    for (let k = 0; k < d.T; k++) mapped.forEach((u, i) => (units[k * mapped.length + i] = d.units[k * d.U + u]));
    const b = batchUnitMaps({ ...d, units, trs: d.T, unitCount: mapped.length, extraCount: d.E, voxels: d.V });
    mapped.forEach((u, i) => {
      expect(worstRelative(e.unitTmap(u), b.t.subarray(i * d.V, (i + 1) * d.V), 1)).toBeLessThan(1e-6); // float32 read-out
      expect(worstRelative(e.unitBetas(u), b.betas.subarray(i * d.V, (i + 1) * d.V), 1e-2)).toBeLessThan(1e-6);
    });
    // Unit 0 is also in the joint GLM (with unit 1): a different model, a different map.
    expect(worstRelative(e.unitTmap(0), e.tmap(0), 1)).toBeGreaterThan(1e-3);
    expect(e.unitMapsDegreesOfFreedom()).toBe(d.T - d.E - 1);
    expect(e.hasUnitMap(2)).toBe(true);
    expect(e.hasUnitMap(1)).toBe(false);
    expect(() => e.unitTmap(1)).toThrowError(/unit 1 has no map of its own/);
  });

  it('equals a standalone UnitMaps, and survives snapshot/restore mid-stream bit for bit', () => {
    const opts = options({ units: mapped, interceptColumn: d.interceptColumn });
    const whole = new CouplingEngine(opts);
    feed(whole, 0, d.T);
    const alone = new UnitMaps({ voxels: d.V, units: mapped.length, extras: d.E, interceptColumn: d.interceptColumn });
    for (let k = 0; k < d.T; k++) {
      alone.update(
        Float64Array.from(mapped, (u) => d.units[k * d.U + u]),
        d.extras.slice(k * d.E, (k + 1) * d.E),
        d.volumes.slice(k * d.V, (k + 1) * d.V),
      );
    }
    const first = new CouplingEngine(opts);
    feed(first, 0, 41);
    const resumed = new CouplingEngine(opts);
    resumed.restore(first.snapshot());
    feed(resumed, 41, d.T);
    mapped.forEach((u, i) => {
      expect(Array.from(whole.unitTmap(u))).toEqual(Array.from(alone.tmap(i)));
      expect(Array.from(resumed.unitTmap(u))).toEqual(Array.from(whole.unitTmap(u)));
      expect(Array.from(resumed.unitBetas(u))).toEqual(Array.from(whole.unitBetas(u)));
    });
    // A snapshot with other mapped units is refused before anything changes.
    const other = new CouplingEngine(options({ units: [0, 2], interceptColumn: d.interceptColumn }));
    expect(() => other.restore(whole.snapshot())).toThrowError(/other mapped units/);
  });

  it("annotates each mapped unit's own map (maps made one at a time) with the temporal null of the shifted columns", () => {
    // 48 voxels on a 4×4×3 grid; templates: the first and the second half of the voxels.
    const templates = [0, 1].map((h) => Float32Array.from({ length: d.V }, (_, v) => (Math.floor(v / 24) === h ? 1 : 0)));
    const annotation = { templates, names: ['front', 'back'], nulls: 30, seed: 2, grid: { dims: [4, 4, 3] as [number, number, number], voxelIndex: Int32Array.from({ length: d.V }, (_, v) => v) } };
    const nulls = { count: 12, seed: 5, minShift: 20, series: d.units };
    const e = new CouplingEngine({ ...options({ units: mapped, interceptColumn: d.interceptColumn, nulls }), annotation });
    feed(e, 0, d.T);
    const got = e.annotate(undefined, 'unit');
    const nullScores = nullBestScoresFrom(12, (j) => e.nullUnitTmap(j), annotation);
    const want = annotateUnitsFrom(mapped.length, (i) => e.unitTmap(mapped[i]), annotation, nullScores);
    expect(got.map((a) => a.unit)).toEqual(mapped);
    expect(got.map(({ unit: _, ...rest }) => rest)).toEqual(want);
    expect(got.every((a) => a.p > 0 && a.p <= 1)).toBe(true);
    got.forEach((a) => expect(a.p).toBe(temporalNullP(a.score, nullScores)));
    // Without null columns the units' p is NaN (no spatial null for them), labels unchanged.
    const bare = new CouplingEngine({ ...options({ units: mapped, interceptColumn: d.interceptColumn }), annotation });
    feed(bare, 0, d.T);
    const plain = bare.annotate(undefined, 'unit');
    expect(plain.map((a) => a.label)).toEqual(got.map((a) => a.label));
    expect(plain.every((a) => Number.isNaN(a.p))).toBe(true);
  });

  it('temporal null maps equal the batch OLS of the shifted responses, also after snapshot/restore mid-stream', () => {
    const nulls = { count: 9, seed: 11, minShift: 20, series: d.units };
    const opts = options({ units: mapped, interceptColumn: d.interceptColumn, nulls });
    const first = new CouplingEngine(opts);
    feed(first, 0, 37);
    const resumed = new CouplingEngine(opts);
    resumed.restore(first.snapshot());
    feed(resumed, 37, d.T);
    const pairs = resumed.unitMapNulls;
    expect(pairs.length).toBe(9);
    // Distinct pairs, shifts in [m, T − m], units among the mapped ones.
    expect(new Set(pairs.map((p) => `${p.unit}:${p.shift}`)).size).toBe(9);
    for (const p of pairs) {
      expect(mapped).toContain(p.unit);
      expect(p.shift).toBeGreaterThanOrEqual(20);
      expect(p.shift).toBeLessThanOrEqual(d.T - 20);
    }
    // Batch twin: per null column, OLS of the raw volumes on [nuisance, x_u((k − s) mod T)].
    const S = pairs.length;
    const shifted = new Float64Array(d.T * S);
    for (let k = 0; k < d.T; k++) pairs.forEach((p, j) => (shifted[k * S + j] = d.units[(((k - p.shift) % d.T + d.T) % d.T) * d.U + p.unit]));
    const b = batchUnitMaps({ ...d, units: shifted, trs: d.T, unitCount: S, extraCount: d.E, voxels: d.V });
    pairs.forEach((_, j) => {
      expect(worstRelative(resumed.nullUnitTmap(j), b.t.subarray(j * d.V, (j + 1) * d.V), 1)).toBeLessThan(1e-6); // float32 read-out
    });
    // A shifted response is not the unit's own: its map differs from the unit's.
    expect(worstRelative(resumed.nullUnitTmap(0), resumed.unitTmap(pairs[0].unit), 1)).toBeGreaterThan(1e-2);
    // A snapshot with other null columns (another seed) is refused.
    const other = new CouplingEngine(options({ units: mapped, interceptColumn: d.interceptColumn, nulls: { ...nulls, seed: 12 } }));
    expect(() => other.restore(first.snapshot())).toThrowError(/other temporal null columns/);
    // Past the series' last TR the null columns have no value: refused.
    const short = new CouplingEngine(options({ units: mapped, interceptColumn: d.interceptColumn, nulls: { ...nulls, series: d.units.slice(0, 50 * d.U) } }));
    expect(() => feed(short, 0, 51)).toThrowError(/past the 50-TR response series/);
    // Shifts that do not fit the series are a wiring bug.
    expect(() => new CouplingEngine(options({ units: mapped, interceptColumn: d.interceptColumn, nulls: { ...nulls, minShift: 46 } }))).toThrowError(/minShift/);
  });

  it('without unit maps the stage is a no-op that keeps its turn, and the joint GLM is unchanged', () => {
    const without = new CouplingEngine(options(undefined));
    const withMaps = new CouplingEngine(options({ units: mapped, interceptColumn: d.interceptColumn }));
    feed(without, 0, 30);
    feed(withMaps, 0, 30);
    expect(without.mappedUnits).toEqual([]);
    expect(Array.from(withMaps.tmap(1))).toEqual(Array.from(without.tmap(1)));
    expect(() => without.unitTmap(0)).toThrowError(/no map of its own/);
    expect(() => without.annotate(undefined, 'unit')).toThrowError(/no annotation templates/);
  });
});
