import { describe, it, expect } from 'vitest';
import { CouplingEngine, type CouplingEngineOptions } from '../../server/engine/coupling.ts';
import { VoxelwiseGlm } from '../../server/engine/glm.ts';
import { BrainFeatures } from '../../server/engine/brainFeatures.ts';
import { SlidingCorrelation } from '../../server/engine/slidingCorrelation.ts';
import { batchLinearCka } from '../../server/engine/cka.ts';
import { legendreDriftRow } from '../../server/engine/drift.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

// A small seeded session: V voxels in R regions, U smooth unit series, 3 of which drive
// the voxels of regions 0–2, plus AR(1) noise and a slow drift; TRs enough for the
// window, the nulls and the dictionary to all be active before the snapshot.
const V = 600;
const U = 8;
const R = 6;
const T = 90;
const EXTRAS = 4; // Legendre drift of order 3 + constant
const labelOfVoxel = Int32Array.from({ length: V }, (_, v) => (v % 10 === 9 ? -1 : v % R));

function makeData(seed: number) {
  const rng = createRng(seed);
  const units: Float64Array[] = [];
  const volumes: Float32Array[] = [];
  const u = new Float64Array(U);
  const noise = new Float64Array(V);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < U; i++) u[i] = 0.8 * u[i] + rng.normal();
    units.push(u.slice());
    const y = new Float32Array(V);
    for (let v = 0; v < V; v++) {
      noise[v] = 0.4 * noise[v] + rng.normal();
      const l = labelOfVoxel[v];
      const drive = l >= 0 && l < 3 ? 2 * u[l] : 0;
      y[v] = 1000 + 0.05 * t + drive + noise[v];
    }
    volumes.push(y);
  }
  return { units, volumes };
}

const extrasAt = (t: number) => legendreDriftRow(t, { order: 3, scale: 120 });

const options = (): CouplingEngineOptions => ({
  voxels: V,
  units: U,
  glmUnits: [0, 1, 2, 5],
  extras: EXTRAS,
  glm: { workers: 0 },
  atlas: { labelOfVoxel, regions: R },
  sliding: { window: 12, nulls: { shifts: 6, seed: 4, pool: 'unit' } },
  dictionary: { atoms: 4, alpha: 0.5, updateEvery: 2, couple: true },
  layers: [
    { name: 'early', units: [0, 1, 2, 3] },
    { name: 'late', units: [4, 5, 6, 7] },
  ],
});

function feed(e: CouplingEngine, d: ReturnType<typeof makeData>, from: number, to: number): void {
  for (let t = from; t < to; t++) e.update({ units: d.units[t], extras: extrasAt(t), volume: d.volumes[t] });
}

/** Every read-out of the engine, for bitwise comparison. */
function readouts(e: CouplingEngine) {
  const c = e.coupling();
  return {
    count: e.count,
    t0: e.tmap(0),
    t5: e.tmap(5),
    b2: e.betas(2),
    df: e.degreesOfFreedom(),
    r: c.r,
    p: c.p,
    q: c.q,
    significant: c.significant,
    cka: e.cka(),
    features: e.lastFeatures(),
    codes: e.lastCodes(),
    atoms: [0, 1, 2, 3].map((j) => e.atom(j)),
  };
}

describe('CouplingEngine snapshot/restore', () => {
  const data = makeData(1);

  for (const at of [5, 47]) {
    it(`a snapshot at TR ${at} restored into a new engine continues exactly as an uninterrupted run`, () => {
      const whole = new CouplingEngine(options());
      feed(whole, data, 0, T);
      const first = new CouplingEngine(options());
      feed(first, data, 0, at);
      const snap = first.snapshot();
      const second = new CouplingEngine(options());
      second.restore(snap);
      feed(second, data, at, T);
      expect(readouts(second)).toEqual(readouts(whole));
      expect(whole.fitted).toBe(true);
      expect(Number.isFinite(readouts(whole).p[0])).toBe(true);
    });
  }

  it('restoring an earlier snapshot into the same engine rewinds it (seek backwards)', () => {
    const e = new CouplingEngine(options());
    feed(e, data, 0, 40);
    const snap = e.snapshot();
    const at40 = readouts(e);
    feed(e, data, 40, 70);
    e.restore(snap);
    expect(readouts(e)).toEqual(at40);
    feed(e, data, 40, T);
    const whole = new CouplingEngine(options());
    feed(whole, data, 0, T);
    expect(readouts(e)).toEqual(readouts(whole));
  });

  it('rejects snapshots of other engines or other kinds with ENGINE_SNAPSHOT_MISMATCH', () => {
    const e = new CouplingEngine(options());
    feed(e, data, 0, 10);
    const snap = e.snapshot();
    const other = new CouplingEngine({ ...options(), glmUnits: [0, 1, 2, 6] });
    expect(() => other.restore(snap)).toThrowError(SyncactError);
    expect(() => other.restore(snap)).toThrowError(/other GLM units/);
    const noDictionary = new CouplingEngine({ ...options(), dictionary: undefined });
    expect(() => noDictionary.restore(snap)).toThrowError(/features/);
    const fewerLayers = new CouplingEngine({ ...options(), layers: [{ name: 'early', units: [0, 1, 2, 3] }] });
    try {
      fewerLayers.restore(snap);
      expect.unreachable();
    } catch (err) {
      expect((err as SyncactError).code).toBe('ENGINE_SNAPSHOT_MISMATCH');
      expect((err as SyncactError).message).toMatch(/parts/);
    }
    expect(fewerLayers.count).toBe(0);
    expect(() => e.restore({ ...snap, kind: 'glm' })).toThrowError(/cannot restore a 'glm' snapshot/);
  });
});

describe('CouplingEngine wiring equals its parts', () => {
  it('maps, coupling and CKA equal the estimators fed by hand', () => {
    const data = makeData(2);
    const o = { ...options(), dictionary: undefined };
    const e = new CouplingEngine(o);
    feed(e, data, 0, T);

    const glmUnits = [0, 1, 2, 5];
    const glm = new VoxelwiseGlm({ voxels: V, regressors: glmUnits.length + EXTRAS, workers: 0 });
    const atlas = new BrainFeatures({ labelOfVoxel, regions: R });
    const sliding = new SlidingCorrelation({ units: U, features: R, window: 12, nulls: { shifts: 6, seed: 4, pool: 'unit' } });
    const feats: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const x = new Float64Array(glmUnits.length + EXTRAS);
      glmUnits.forEach((u, c) => (x[c] = data.units[t][u]));
      x.set(extrasAt(t), glmUnits.length);
      glm.update(x, data.volumes[t]);
      const f = atlas.extract(data.volumes[t]);
      feats.push(f);
      sliding.update(data.units[t], f);
    }
    expect(e.tmap(5)).toEqual(glm.tmap(3));
    expect(e.betas(1)).toEqual(glm.betas(1));
    expect(e.correlations()).toEqual(sliding.correlations());
    expect(e.coupling().p).toEqual(sliding.pValues());
    expect(e.lastFeatures()).toEqual(feats[T - 1]);

    // CKA of each layer against its batch twin over all TRs.
    const layers = [[0, 1, 2, 3], [4, 5, 6, 7]];
    const cka = e.cka();
    layers.forEach((idx, l) => {
      const X = new Float64Array(T * idx.length);
      const Y = new Float64Array(T * R);
      for (let t = 0; t < T; t++) {
        idx.forEach((u, j) => (X[t * idx.length + j] = data.units[t][u]));
        Y.set(feats[t], t * R);
      }
      expect(cka[l]).toBeCloseTo(batchLinearCka(X, Y, T, idx.length, R), 8);
    });
    // Regions 0–2 are driven by units 0–2: the coupling matrix sees it.
    const r = e.correlations();
    for (let i = 0; i < 3; i++) expect(r[i * R + i]).toBeGreaterThan(0.5);
  });

  it('a unit outside glmUnits has no map; bad wiring throws ENGINE_BAD_INPUT before any state changes', () => {
    const data = makeData(3);
    const e = new CouplingEngine(options());
    feed(e, data, 0, 20);
    const before = readouts(e);
    expect(() => e.tmap(3)).toThrowError(/not in the GLM design/);
    const bad = (input: Parameters<CouplingEngine['update']>[0], message: RegExp) => {
      try {
        e.update(input);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(SyncactError);
        expect((err as SyncactError).code).toBe('ENGINE_BAD_INPUT');
        expect((err as SyncactError).message).toMatch(message);
      }
    };
    const units = data.units[20].slice();
    bad({ units: units.subarray(1), extras: extrasAt(20), volume: data.volumes[20] }, /7 unit responses, expected 8/);
    bad({ units, extras: extrasAt(20).subarray(1), volume: data.volumes[20] }, /3 design extras, expected 4/);
    bad({ units, extras: extrasAt(20), volume: data.volumes[20].subarray(1) }, /599 voxels, expected 600/);
    units[3] = NaN;
    bad({ units, extras: extrasAt(20), volume: data.volumes[20] }, /unit response 3 is NaN/);
    const extras = extrasAt(20);
    extras[1] = Infinity;
    bad({ units: data.units[20], extras, volume: data.volumes[20] }, /design extra 1 is Infinity/);
    expect(readouts(e)).toEqual(before);
    expect(() => new CouplingEngine({ ...options(), glmUnits: [0, 0] })).toThrowError(/twice/);
    expect(() => new CouplingEngine({ ...options(), layers: [{ name: 'x', units: [8] }] })).toThrowError(/not a unit index/);
    expect(() => new CouplingEngine({ ...options(), annotation: undefined }).annotate()).toThrowError(/no annotation templates/);
  });
});

/** One TR through the stage methods, as server/streams calls them (one operator each). */
function feedByStages(e: CouplingEngine, d: ReturnType<typeof makeData>, from: number, to: number): void {
  for (let t = from; t < to; t++) {
    e.beginTr({ units: d.units[t], extras: extrasAt(t), volume: d.volumes[t] });
    e.updateGlm();
    e.updateUnitMaps();
    e.updateFeatures();
    e.preprocess();
    e.updateDictionary();
    e.updateSliding();
    e.updateCka();
    e.endTr();
  }
}

describe('CouplingEngine stages one by one', () => {
  const data = makeData(7);

  it('the stage methods in order equal update(), also across a snapshot/restore mid-stream', () => {
    const whole = new CouplingEngine(options());
    feed(whole, data, 0, T);
    const staged = new CouplingEngine(options());
    feedByStages(staged, data, 0, 33);
    const snap = staged.snapshot();
    const resumed = new CouplingEngine(options());
    resumed.restore(snap);
    feedByStages(resumed, data, 33, T);
    expect(readouts(resumed)).toEqual(readouts(whole));
    feedByStages(staged, data, 33, T);
    expect(readouts(staged)).toEqual(readouts(whole));
    // Without a dictionary, preprocess and updateDictionary are no-ops but still take their turn.
    const plainWhole = new CouplingEngine({ ...options(), dictionary: undefined });
    const plainStaged = new CouplingEngine({ ...options(), dictionary: undefined });
    feed(plainWhole, data, 0, 30);
    feedByStages(plainStaged, data, 0, 30);
    expect(plainStaged.coupling()).toEqual(plainWhole.coupling());
    expect(plainStaged.cka()).toEqual(plainWhole.cka());
  });

  it('rejects a stage out of order with ENGINE_BAD_INPUT, before it changes anything', () => {
    const e = new CouplingEngine(options());
    feed(e, data, 0, 20);
    const before = readouts(e);
    const outOfOrder = (f: () => void, message: RegExp) => {
      try {
        f();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(SyncactError);
        expect((err as SyncactError).code).toBe('ENGINE_BAD_INPUT');
        expect((err as SyncactError).message).toMatch(message);
      }
    };
    const input = { units: data.units[20], extras: extrasAt(20), volume: data.volumes[20] };
    outOfOrder(() => e.updateGlm(), /updateGlm called outside a TR; call beginTr for TR 20 first/);
    outOfOrder(() => e.endTr(), /endTr called outside a TR/);
    e.beginTr(input);
    e.updateGlm();
    // The windows would see the last TR's features.
    outOfOrder(() => e.updateSliding(), /updateSliding called after updateGlm of TR 20; the next stage is updateUnitMaps/);
    outOfOrder(() => e.beginTr(input), /beginTr called after updateGlm of TR 20/);
    outOfOrder(() => e.snapshot(), /snapshot in the middle of TR 20 \(after updateGlm\)/);
    e.updateUnitMaps();
    e.updateFeatures();
    outOfOrder(() => e.updateDictionary(), /the next stage is preprocess/);
    outOfOrder(() => e.updateGlm(), /updateGlm called after updateFeatures/);
    e.preprocess();
    e.updateDictionary();
    e.updateSliding();
    outOfOrder(() => e.endTr(), /endTr called after updateSliding of TR 20; the next stage is updateCka/);
    e.updateCka();
    e.endTr();
    expect(e.count).toBe(21);
    // The rejected calls changed nothing: the TR equals one update().
    const twin = new CouplingEngine(options());
    feed(twin, data, 0, 21);
    expect(readouts(e)).toEqual(readouts(twin));
    expect(readouts(e)).not.toEqual(before);
  });

  it('a TR abandoned halfway (a stage threw) is undone by restore', () => {
    const e = new CouplingEngine(options());
    feed(e, data, 0, 15);
    const snap = e.snapshot();
    e.beginTr({ units: data.units[15], extras: extrasAt(15), volume: data.volumes[15] });
    e.updateGlm();
    e.updateUnitMaps();
    e.updateFeatures();
    e.restore(snap);
    feed(e, data, 15, 30);
    const twin = new CouplingEngine(options());
    feed(twin, data, 0, 30);
    expect(readouts(e)).toEqual(readouts(twin));
  });
});

describe('CouplingEngine stage times', () => {
  it('reports each stage of the last update from the injected clock, and zeros without one', () => {
    const data = makeData(6);
    // A fake clock that advances 1 per reading, so each stage takes exactly 1 unit.
    let now = 0;
    const e = new CouplingEngine({ ...options(), clock: () => now++ });
    feed(e, data, 0, 3);
    // The dictionary's time is its preprocessing (1) plus its update (1); no unit maps here.
    expect(e.stageTimes()).toEqual({ glm: 1, unitMaps: 0, features: 1, dictionary: 2, sliding: 1, cka: 1 });
    const plain = new CouplingEngine(options());
    feed(plain, data, 0, 3);
    expect(plain.stageTimes()).toEqual({ glm: 0, unitMaps: 0, features: 0, dictionary: 0, sliding: 0, cka: 0 });
    // The clock changes nothing else.
    expect(readouts(e)).toEqual(readouts(plain));
  });
});

describe('CouplingEngine on degenerate volumes', () => {
  it('constant, NaN and emptied voxels never throw; they read NaN where undefined and leave the rest as a clean run', () => {
    const data = makeData(4);
    const constant = [3, 17];
    const alwaysNaN = [25];
    const laterNaN = 40; // NaN from TR 30 on
    const region5 = Array.from({ length: V }, (_, v) => v).filter((v) => labelOfVoxel[v] === 5);
    const dirty = data.volumes.map((y, t) => {
      const z = y.slice();
      for (const v of constant) z[v] = 1000;
      for (const v of alwaysNaN) z[v] = NaN;
      if (t >= 30) z[laterNaN] = NaN;
      if (t === 50) for (const v of region5) z[v] = NaN; // a dropped-out parcel for one TR
      if (t === 60) z.fill(NaN); // a whole volume lost
      return z;
    });
    const e = new CouplingEngine(options());
    const clean = new CouplingEngine({ ...options(), dictionary: undefined });
    for (let t = 0; t < T; t++) {
      expect(() => e.update({ units: data.units[t], extras: extrasAt(t), volume: dirty[t] })).not.toThrow();
      clean.update({ units: data.units[t], extras: extrasAt(t), volume: data.volumes[t] });
      if (t === 50) expect(e.lastFeatures()[5]).toBeNaN();
    }
    const t0 = e.tmap(0);
    for (const v of [...constant, ...alwaysNaN, laterNaN]) expect(t0[v]).toBeNaN();
    // Every voxel that was NaN at TR 60 is retired from the GLM from then on.
    expect(t0.every((x) => Number.isNaN(x))).toBe(true);
    // The other estimators recover: the windows have moved past TRs 50 and 60 (W = 12).
    expect(Array.from(e.lastFeatures()).every(Number.isFinite)).toBe(true);
    const r = e.correlations();
    expect(r.slice(0, R).every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(e.cka()[0])).toBe(true);
    expect(Array.from(e.lastCodes()).every(Number.isFinite)).toBe(true);

    // Before region 5 drops out (TR 50), the GLM maps of the clean voxels equal those of
    // the clean run: a bad voxel retires alone.
    const early = new CouplingEngine(options());
    const early2 = new CouplingEngine(options());
    for (let t = 0; t < 50; t++) {
      early.update({ units: data.units[t], extras: extrasAt(t), volume: dirty[t] });
      early2.update({ units: data.units[t], extras: extrasAt(t), volume: data.volumes[t] });
    }
    const a = early.tmap(1);
    const b = early2.tmap(1);
    for (let v = 0; v < V; v++) {
      if ([...constant, ...alwaysNaN, laterNaN].includes(v)) expect(a[v]).toBeNaN();
      else expect(a[v]).toBe(b[v]);
    }
  });

  it('an all-NaN volume at the very first TR does not poison any estimator', () => {
    const data = makeData(5);
    const e = new CouplingEngine(options());
    const nan = new Float32Array(V).fill(NaN);
    e.update({ units: data.units[0], extras: extrasAt(0), volume: nan });
    expect(Array.from(e.lastFeatures().subarray(0, R)).every(Number.isNaN)).toBe(true);
    // The GLM retires every voxel; the features, dictionary and windows carry on.
    feed(e, data, 1, T);
    expect(e.tmap(0).every(Number.isNaN)).toBe(true);
    expect(Array.from(e.correlations()).every(Number.isFinite)).toBe(true);
    expect(Array.from(e.lastCodes()).every(Number.isFinite)).toBe(true);
  });
});

describe('CouplingEngine mapsReady', () => {
  it('turns true once the unit columns are identifiable (before the slow drift ones) and the unit t-maps are defined from then on', () => {
    const data = makeData(2);
    const e = new CouplingEngine(options());
    let readyAt = -1;
    let fittedAt = -1;
    for (let t = 0; t < T; t++) {
      feed(e, data, t, t + 1);
      const t0 = e.tmap(0);
      const finite = t0.filter((x) => Number.isFinite(x)).length;
      if (e.mapsReady) {
        if (readyAt < 0) readyAt = t;
        expect(finite).toBeGreaterThan(V * 0.8);
      } else {
        expect(finite).toBe(0);
      }
      if (e.fitted && fittedAt < 0) fittedAt = t;
    }
    expect(readyAt).toBeGreaterThan(0);
    expect(fittedAt).toBeGreaterThanOrEqual(readyAt);
  });
});
