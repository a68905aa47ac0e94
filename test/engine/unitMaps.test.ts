import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UnitMaps } from '../../server/engine/unitMaps.ts';
import { batchUnitMaps } from '../../server/engine/unitMapsBatch.ts';
import { SyncactError } from '../../server/errors.ts';
import { head, makeUnitMapsData, worstRelative, type UnitMapsData } from './unitMapsTestData.ts';

function feed(m: UnitMaps, d: UnitMapsData, from: number, to: number): void {
  for (let k = from; k < to; k++) {
    m.update(d.units.slice(k * d.U, (k + 1) * d.U), d.extras.slice(k * d.E, (k + 1) * d.E), d.volumes.slice(k * d.V, (k + 1) * d.V));
  }
}

function batchAt(d: UnitMapsData, k: number, intercept: 'given' | 'added' = 'given') {
  return batchUnitMaps({
    units: head(d.units, k, d.U),
    extras: head(d.extras, k, d.E),
    volumes: head(d.volumes, k, d.V),
    trs: k,
    unitCount: d.U,
    extraCount: d.E,
    voxels: d.V,
    interceptColumn: intercept === 'given' ? d.interceptColumn : undefined,
  });
}

/** Worst relative error of every unit's β and t (float64 read-outs) against the batch twin. */
function worstAgainstBatch(m: UnitMaps, d: UnitMapsData, b: ReturnType<typeof batchAt>): { beta: number; t: number } {
  let beta = 0;
  let t = 0;
  for (let u = 0; u < d.U; u++) {
    const ref = (a: Float64Array) => a.subarray(u * d.V, (u + 1) * d.V);
    // Floors: β of order 1, t of order 1-10; relative below them, absolute near 0.
    beta = Math.max(beta, worstRelative(m.betas(u, new Float64Array(d.V)), ref(b.betas), 1e-2));
    t = Math.max(t, worstRelative(m.tmap(u, new Float64Array(d.V)), ref(b.t), 1));
  }
  return { beta, t };
}

describe('UnitMaps', () => {
  const d = makeUnitMapsData(20261126, 160, 5, 40);

  it('equals the per-unit batch OLS after every TR (float64 read-outs, 1e-8 relative), with offset ~1000 and drift', () => {
    expect(d.E).toBeGreaterThan(3); // several drift columns join as the run grows
    const m = new UnitMaps({ voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn });
    const ranks = new Set<number>();
    let definedFrom = -1;
    let joinedAt = 0;
    for (let k = 1; k <= d.T; k++) {
      feed(m, d, k - 1, k);
      const b = batchAt(d, k);
      expect(m.identifiableNuisance).toBe(b.nuisance);
      if (!ranks.has(b.nuisance)) joinedAt = k;
      ranks.add(b.nuisance);
      const w = worstAgainstBatch(m, d, b);
      // For a few TRs after a drift column joins, it is barely identifiable (sin² of its
      // angle to the others just above 1e-10) and both routes carry cond·ε: at TR 34 here
      // the two differ by 1.1e-7 on β, and against a 50-digit mpmath fit the incremental
      // β is off by 1.2e-8, the batch twin's by 4.2e-8. Elsewhere they agree to 1e-8.
      const tolerance = k - joinedAt < 10 ? 2e-7 : 1e-8;
      expect(w.beta, `β at TR ${k}`).toBeLessThan(tolerance);
      expect(w.t, `t at TR ${k}`).toBeLessThan(tolerance);
      if (definedFrom < 0 && Number.isFinite(m.tmap(0)[0])) definedFrom = k;
    }
    // The drift columns joined one by one, and maps were defined long before full rank.
    expect(ranks.size).toBeGreaterThan(3);
    expect(definedFrom).toBeGreaterThan(0);
    expect(definedFrom).toBeLessThan(10);
    expect(m.identifiableNuisance).toBe(d.E);
    expect(m.degreesOfFreedom()).toBe(d.T - d.E - 1);
  });

  it('adds its own intercept when none is named, with the same maps as when the constant is given', () => {
    const dropped: UnitMapsData = { ...d, E: d.E - 1, extras: d.extras.filter((_, i) => i % d.E !== d.interceptColumn) };
    const own = new UnitMaps({ voxels: d.V, units: d.U, extras: dropped.E });
    const given = new UnitMaps({ voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn });
    feed(own, dropped, 0, 90);
    feed(given, d, 0, 90);
    const w = worstAgainstBatch(own, dropped, batchAt(dropped, 90, 'added'));
    expect(w.t).toBeLessThan(1e-8);
    for (let u = 0; u < d.U - 1; u++) expect(worstRelative(own.tmap(u, new Float64Array(d.V)), given.tmap(u, new Float64Array(d.V)), 1)).toBeLessThan(1e-10);
  });

  it('continues identically after snapshot() and restore() into a new estimator mid-stream', () => {
    const options = { voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn };
    const whole = new UnitMaps(options);
    const first = new UnitMaps(options);
    feed(whole, d, 0, d.T);
    feed(first, d, 0, 57);
    const snap = first.snapshot();
    feed(first, d, 57, 70); // moves on after the snapshot: the snapshot must not share its arrays
    const resumed = new UnitMaps(options);
    resumed.restore(snap);
    expect(resumed.count).toBe(57);
    feed(resumed, d, 57, d.T);
    for (let u = 0; u < d.U; u++) {
      expect(Array.from(resumed.tmap(u))).toEqual(Array.from(whole.tmap(u)));
      expect(Array.from(resumed.betas(u))).toEqual(Array.from(whole.betas(u)));
    }
    const w = worstAgainstBatch(resumed, d, batchAt(d, d.T));
    expect(w.t).toBeLessThan(1e-8);
  });

  it('gives the same maps whatever the fold interval (TRs buffered before the cross-products take them)', () => {
    const make = (foldEvery: number) => new UnitMaps({ voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn, foldEvery });
    const every = make(1);
    const five = make(5);
    const eight = make(8);
    for (const k of [3, 13, 64, 101]) {
      for (const m of [every, five, eight]) feed(m, d, m.count, k);
      // k = 101: five has 1 TR pending, eight 5; the read-outs add them in.
      for (let u = 0; u < d.U; u++) {
        const ref = every.tmap(u, new Float64Array(d.V));
        expect(worstRelative(five.tmap(u, new Float64Array(d.V)), ref, 1)).toBeLessThan(1e-10);
        expect(worstRelative(eight.tmap(u, new Float64Array(d.V)), ref, 1)).toBeLessThan(1e-10);
        expect(worstRelative(eight.betas(u, new Float64Array(d.V)), every.betas(u, new Float64Array(d.V)), 1e-2)).toBeLessThan(1e-10);
      }
    }
    expect(() => make(8).restore(five.snapshot())).toThrow(/fold every 5/);
  });

  it('a snapshot before the first fold stores no cross-products, and restoring it over a used estimator starts clean', () => {
    const options = { voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn };
    const early = new UnitMaps(options);
    feed(early, d, 0, 5); // 5 TRs pending, none folded
    const snap = early.snapshot();
    expect(snap.arrays.cross.length).toBe(0);
    const used = new UnitMaps(options);
    feed(used, d, 0, 40);
    used.restore(snap);
    const fresh = new UnitMaps(options);
    feed(used, d, 5, 60);
    feed(fresh, d, 0, 60);
    for (let u = 0; u < d.U; u++) expect(Array.from(used.tmap(u))).toEqual(Array.from(fresh.tmap(u)));
    expect(new UnitMaps(options).snapshot().arrays.cross.length).toBe(0);
  });

  it('restore() rejects a snapshot of another shape or kind, and the engine stays usable', () => {
    const m = new UnitMaps({ voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn });
    const other = new UnitMaps({ voxels: d.V, units: d.U - 1, extras: d.E, interceptColumn: d.interceptColumn });
    const snap = other.snapshot();
    expect(() => m.restore(snap)).toThrow(/UnitMaps.restore: snapshot is for/);
    expect(() => m.restore({ ...snap, kind: 'glm' })).toThrow(SyncactError);
    feed(m, d, 0, 5);
    expect(m.count).toBe(5);
  });

  it('gives NaN maps, never a throw, for a constant unit, a constant voxel, a voxel that turns NaN and early TRs', () => {
    const m = new UnitMaps({ voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn });
    expect(Array.from(m.tmap(0)).every(Number.isNaN)).toBe(true); // no TR yet
    feed(m, d, 0, 1);
    expect(Array.from(m.betas(0)).every(Number.isNaN)).toBe(true); // one TR: x′ = 0
    feed(m, d, 1, d.nanFrom);
    expect(Number.isFinite(m.tmap(0)[d.nanVoxel])).toBe(true);
    feed(m, d, d.nanFrom, d.T);
    expect(Array.from(m.tmap(d.constantUnit)).every(Number.isNaN)).toBe(true);
    expect(Array.from(m.betas(d.constantUnit)).every(Number.isNaN)).toBe(true);
    for (let u = 0; u < d.U - 1; u++) {
      const t = m.tmap(u);
      expect(t[d.constantVoxel]).toBeNaN();
      expect(m.betas(u)[d.constantVoxel]).toBe(0);
      expect(t[d.nanVoxel]).toBeNaN();
      expect(m.betas(u)[d.nanVoxel]).toBeNaN();
      expect(t.filter(Number.isNaN).length).toBe(2); // no other voxel is touched
    }
  });

  it('keeps 1e-8 on data with a large offset (1e4) and drift (1e3), where raw cross-products would cancel', () => {
    const big = makeUnitMapsData(99, 140, 4, 30);
    for (let t = 0; t < big.T; t++) {
      for (let v = 0; v < big.V; v++) {
        const i = t * big.V + v;
        if (Number.isFinite(big.volumes[i]) && v !== big.constantVoxel) big.volumes[i] += 9000 + 1000 * Math.cos((t + v) / 40);
      }
    }
    const m = new UnitMaps({ voxels: big.V, units: big.U, extras: big.E, interceptColumn: big.interceptColumn });
    for (const k of [20, 70, 140]) {
      feed(m, big, m.count, k);
      const w = worstAgainstBatch(m, big, batchAt(big, k));
      expect(w.beta, `β at TR ${k}`).toBeLessThan(1e-8);
      expect(w.t, `t at TR ${k}`).toBeLessThan(1e-8);
    }
  });

  it("matches numpy's per-unit lstsq (test/reference/unit_maps_reference.py)", () => {
    const ref = JSON.parse(readFileSync(new URL('../reference/unit_maps_reference.json', import.meta.url), 'utf8'));
    const r: UnitMapsData = {
      T: ref.T,
      U: ref.U,
      V: ref.V,
      E: ref.E,
      interceptColumn: ref.intercept_column,
      units: Float64Array.from(ref.units),
      extras: Float64Array.from(ref.extras),
      volumes: Float32Array.from(ref.volumes),
      constantUnit: -1,
      constantVoxel: -1,
      nanVoxel: -1,
      nanFrom: -1,
    };
    const m = new UnitMaps({ voxels: r.V, units: r.U, extras: r.E, interceptColumn: r.interceptColumn });
    for (const fit of ref.fits as { trs: number; betas: number[]; t: number[] }[]) {
      feed(m, r, m.count, fit.trs);
      expect(m.identifiableNuisance).toBe(r.E); // numpy fits every drift column
      for (let u = 0; u < r.U; u++) {
        const at = (a: number[]) => a.slice(u * r.V, (u + 1) * r.V);
        expect(worstRelative(m.betas(u, new Float64Array(r.V)), at(fit.betas), 1e-2)).toBeLessThan(1e-8);
        expect(worstRelative(m.tmap(u, new Float64Array(r.V)), at(fit.t), 1)).toBeLessThan(1e-8);
      }
    }
  });

  it('rejects wiring bugs with ENGINE_BAD_INPUT before changing any state', () => {
    const m = new UnitMaps({ voxels: d.V, units: d.U, extras: d.E, interceptColumn: d.interceptColumn });
    feed(m, d, 0, 3);
    const x = d.units.slice(0, d.U);
    const e = d.extras.slice(0, d.E);
    const y = d.volumes.slice(0, d.V);
    const code = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return err instanceof SyncactError ? err.code : 'other';
      }
      return 'none';
    };
    expect(code(() => m.update(x.slice(1), e, y))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => m.update(Float64Array.from(x, (v, i) => (i === 2 ? NaN : v)), e, y))).toBe('ENGINE_BAD_INPUT');
    const notConstant = e.slice();
    notConstant[d.interceptColumn] = 2;
    expect(code(() => m.update(x, notConstant, y))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => new UnitMaps({ voxels: 3, units: 1, extras: 2, interceptColumn: 2 }))).toBe('ENGINE_BAD_INPUT');
    expect(m.count).toBe(3);
  });
});
