/**
 * Per-TR cost of the sliding-window coupling at the whole-brain size DESIGN.md budgets
 * (U = 256 units, F = 400 features, W = 30 TRs, S = 100 lagged null shifts):
 * - engine.sliding_update_ms: one full TR with nulls — update, per-pair p-values and BH
 *   across the 102,400 pairs (what the coupling stage does every TR);
 * - engine.sliding_update_nonull_ms: one TR without nulls — update and correlations;
 * - engine.sliding_update_only_ms / engine.sliding_pvalues_ms: the with-nulls TR split
 *   into the state update (S × the main sums, plus one shift's exact re-sync) and the
 *   read-out (correlations, p-values, BH);
 * - engine.sliding_pooled_pvalues_ms: the read-out with per-unit pooled nulls.
 * Medians over timed TRs after a warm-up long enough for every null shift to be ready
 * (W − 1 + the largest lag TRs). Inputs are AR(1) noise made before timing.
 * numpy.sliding_update_ms / numpy.sliding_update_nonull_ms: the same per-TR work done as
 * batch linear algebra on the window by bench/reference/sliding_reference.py (run with
 * /usr/bin/python3; NaN without it).
 */
import { median, runNumpyReference, type BenchSuite } from './bench.ts';
import { SlidingCorrelation } from '../server/engine/slidingCorrelation.ts';
import { createRng } from '../server/engine/random.ts';

const U = 256;
const F = 400;
const W = 30;
const S = 100;
const TIMED = 25;

function makeInputs(count: number, seed: number): { units: Float64Array[]; features: Float64Array[] } {
  const rng = createRng(seed);
  const au = new Float64Array(U);
  const af = new Float64Array(F);
  const units: Float64Array[] = [];
  const features: Float64Array[] = [];
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < U; i++) au[i] = 0.6 * au[i] + rng.normal();
    for (let f = 0; f < F; f++) af[f] = 0.6 * af[f] + rng.normal() + 0.3 * au[f % U];
    units.push(au.slice());
    features.push(af.slice());
  }
  return { units, features };
}

const NUMPY_FIGURES = ['numpy.sliding_update_ms', 'numpy.sliding_update_nonull_ms'];
/** Runs the numpy twin; NaN for its figures when python or numpy is missing or fails. */
const numpyFigures = (log: (m: string) => void) => runNumpyReference('sliding_reference.py', NUMPY_FIGURES, log);

const FIGURES = [
  'engine.sliding_update_ms',
  'engine.sliding_update_nonull_ms',
  'engine.sliding_update_only_ms',
  'engine.sliding_pvalues_ms',
  'engine.sliding_pooled_pvalues_ms',
];

const suite: BenchSuite = {
  title: `sliding-window correlation (U = ${U}, F = ${F}, W = ${W}, S = ${S} null shifts)`,
  figures: [...FIGURES, ...NUMPY_FIGURES],
  async run(ctx) {
    const out: Record<string, number> = {};
    if (ctx.wants('engine.sliding_update_nonull_ms')) {
      const { units, features } = makeInputs(W + 10 + TIMED, 1);
      const est = new SlidingCorrelation({ units: U, features: F, window: W });
      const r = new Float64Array(U * F);
      const times: number[] = [];
      for (let k = 0; k < units.length; k++) {
        const t0 = performance.now();
        est.update(units[k], features[k]);
        est.correlations(r);
        if (k >= W + 10) times.push(performance.now() - t0);
      }
      out['engine.sliding_update_nonull_ms'] = median(times);
      ctx.log(`no nulls: ${out['engine.sliding_update_nonull_ms'].toFixed(2)} ms per TR`);
    }
    const withNulls = FIGURES.filter((f) => f !== 'engine.sliding_update_nonull_ms');
    if (withNulls.some((f) => ctx.wants(f))) {
      const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 7 } });
      const lags = est.shiftLags;
      const warmup = W - 1 + lags[lags.length - 1] + 1;
      const { units, features } = makeInputs(warmup + TIMED, 2);
      ctx.log(`warm-up: ${warmup} TRs until all ${S} shifts are ready (${((S * U * F * 8) / 2 ** 20).toFixed(0)} MiB of null sums)`);
      const t0 = performance.now();
      for (let k = 0; k < warmup; k++) est.update(units[k], features[k]);
      ctx.log(`warm-up took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const upd: number[] = [];
      const read: number[] = [];
      const full: number[] = [];
      for (let k = warmup; k < units.length; k++) {
        const a = performance.now();
        est.update(units[k], features[k]);
        const b = performance.now();
        est.significance(0.05);
        const c = performance.now();
        upd.push(b - a);
        read.push(c - b);
        full.push(c - a);
      }
      out['engine.sliding_update_ms'] = median(full);
      out['engine.sliding_update_only_ms'] = median(upd);
      out['engine.sliding_pvalues_ms'] = median(read);
      ctx.log(
        `with nulls: ${out['engine.sliding_update_ms'].toFixed(1)} ms per TR ` +
          `(update ${out['engine.sliding_update_only_ms'].toFixed(1)}, p-values + BH ${out['engine.sliding_pvalues_ms'].toFixed(1)})`,
      );
      if (ctx.wants('engine.sliding_pooled_pvalues_ms')) {
        // Same state, pooled read-out: restore the snapshot into a pooled estimator.
        const pooled = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 7, pool: 'unit' } });
        pooled.restore(est.snapshot());
        const times: number[] = [];
        for (let rep = 0; rep < 9; rep++) {
          const a = performance.now();
          pooled.significance(0.05);
          times.push(performance.now() - a);
        }
        out['engine.sliding_pooled_pvalues_ms'] = median(times);
        ctx.log(`pooled p-values + BH: ${out['engine.sliding_pooled_pvalues_ms'].toFixed(1)} ms`);
      }
    }
    if (NUMPY_FIGURES.some((f) => ctx.wants(f))) {
      Object.assign(out, numpyFigures(ctx.log));
      ctx.log(`numpy: ${out['numpy.sliding_update_ms']?.toFixed(1)} ms with nulls, ${out['numpy.sliding_update_nonull_ms']?.toFixed(2)} ms without`);
    }
    return out;
  },
};

export default suite;
