/**
 * Per-unit synchronized maps (server/engine/unitMaps.ts) at HCP 7T scale: every one of
 * U = 256 units gets its own GLM map over V = 370,000 voxels, with the 921-TR run's DCT
 * drift and constant (P = 15) as nuisance. Not part of engine.hcp7t_per_tr_ms (that
 * engine has no unit maps); the session's `unit_maps` decides whether a run pays this.
 * - engine.hcp7t_unit_maps_ms: mean update time per TR over 32 timed TRs (4 folds of the
 *   default 8 TRs, so the fold's cost is amortised as in a run), after 16 warm-up TRs;
 * - engine.hcp7t_unit_maps_fold1_ms: the same with foldEvery 1 (the cross-products
 *   updated every TR, memory-bound), to show what the fold buys;
 * - engine.hcp7t_unit_map_readout_ms: one unit's t-map read-out (median of 5);
 * - engine.hcp7t_unit_maps_state_mb: the estimator's arrays (U·V float64 cross-products
 *   dominate).
 * Inputs are seeded noise volumes around 1000 and AR(1) unit responses, made outside the
 * timed region.
 */
import { median, type BenchSuite } from './bench.ts';
import { UnitMaps } from '../server/engine/unitMaps.ts';
import { cosineDriftOrder, dctRow } from '../server/engine/drift.ts';
import { createRng } from '../server/engine/random.ts';

const V = 370_000;
const U = 256;
const RUN = 921;
const WARMUP = 16;
const TIMED = 32;

const FIGURES = ['engine.hcp7t_unit_maps_ms', 'engine.hcp7t_unit_maps_fold1_ms', 'engine.hcp7t_unit_map_readout_ms', 'engine.hcp7t_unit_maps_state_mb'];

function measure(foldEvery: number, readouts: boolean): { perTr: number; readout: number; stateMb: number } {
  const rng = createRng(5);
  const E = cosineDriftOrder(RUN, 1) + 1;
  const maps = new UnitMaps({ voxels: V, units: U, extras: E, interceptColumn: E - 1, foldEvery });
  const noise = Float32Array.from({ length: V + 4099 }, () => 10 * rng.normal());
  const y = new Float32Array(V);
  const x = new Float64Array(U);
  let timed = 0;
  for (let k = 0; k < WARMUP + TIMED; k++) {
    const shift = rng.int(4096);
    for (let v = 0; v < V; v++) y[v] = 1000 + noise[v + shift];
    for (let u = 0; u < U; u++) x[u] = 0.8 * x[u] + 0.6 * rng.normal();
    const extras = dctRow(k, RUN, 1);
    const t0 = performance.now();
    maps.update(x, extras, y);
    if (k >= WARMUP) timed += performance.now() - t0;
  }
  const times: number[] = [];
  if (readouts) {
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      maps.tmap(i);
      times.push(performance.now() - t0);
    }
  }
  // The arrays' bytes: the cross-products (U·V), the voxels' QR state (V·(P + 3)) and the pending TRs.
  const stateMb = (U * V * 8 + V * (E * 8 + 8 * 2 + 1 + 4 + 4) + foldEvery * (U * 8 + V * 4)) / 2 ** 20;
  return { perTr: timed / TIMED, readout: readouts ? median(times) : NaN, stateMb };
}

const suite: BenchSuite = {
  title: `unit maps at HCP 7T scale (U = ${U} units × V = ${V.toLocaleString('en')} voxels)`,
  figures: FIGURES,
  async run(ctx) {
    const out: Record<string, number> = {};
    if (['engine.hcp7t_unit_maps_ms', 'engine.hcp7t_unit_map_readout_ms', 'engine.hcp7t_unit_maps_state_mb'].some((f) => ctx.wants(f))) {
      const r = measure(8, true);
      out['engine.hcp7t_unit_maps_ms'] = r.perTr;
      out['engine.hcp7t_unit_map_readout_ms'] = r.readout;
      out['engine.hcp7t_unit_maps_state_mb'] = r.stateMb;
      ctx.log(`fold 8: ${r.perTr.toFixed(1)} ms per TR, one t-map ${r.readout.toFixed(1)} ms, state ${r.stateMb.toFixed(0)} MiB`);
    }
    if (ctx.wants('engine.hcp7t_unit_maps_fold1_ms')) {
      const r = measure(1, false);
      out['engine.hcp7t_unit_maps_fold1_ms'] = r.perTr;
      ctx.log(`fold 1: ${r.perTr.toFixed(1)} ms per TR`);
    }
    return out;
  },
};

export default suite;
