/**
 * Per-TR cost of the small engine estimators at the sizes of a real session:
 * - engine.hrf_update_ms: one TR (16 microtime bins) of 4096 units through HrfConvolver with
 *   the 513-tap canonical kernel at TR 1 s (2.1 M multiply-adds);
 * - engine.hrf_deriv_update_ms: the same with the temporal derivative (two kernels);
 * - engine.cka_update_ms: one IncrementalCka update with p = 512 units and q = 400 features;
 * - engine.standardize_update_ms: Welford update + transform of 200 k voxels.
 * Medians over repeated TRs after a warm-up that fills the HRF ring. The numpy twins
 * (bench/reference/engine_small.py, run with the Debian python) give numpy.hrf_update_ms,
 * numpy.cka_update_ms and numpy.standardize_update_ms in the same run; NaN without python.
 */
import { median, runNumpyReference, type BenchSuite } from './bench.ts';
import { HrfConvolver } from '../server/engine/hrfConvolver.ts';
import { microtimeHrfKernels } from '../server/engine/hrf.ts';
import { IncrementalCka } from '../server/engine/cka.ts';
import { RunningStandardizer } from '../server/engine/standardize.ts';
import { normalArray } from '../server/engine/random.ts';

function timePerCall(warmup: number, reps: number, f: (i: number) => void): number {
  for (let i = 0; i < warmup; i++) f(i);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f(warmup + i);
    times.push(performance.now() - t0);
  }
  return median(times);
}

const NUMPY_FIGURES = ['numpy.hrf_update_ms', 'numpy.cka_update_ms', 'numpy.standardize_update_ms'];
/** Runs the numpy twins; NaN for every figure when python or numpy is missing or fails. */
const numpyFigures = (log: (m: string) => void) => runNumpyReference('engine_small.py', NUMPY_FIGURES, log);

const suite: BenchSuite = {
  title: 'engine estimators (HRF convolution, CKA, standardization)',
  figures: [
    'engine.hrf_update_ms',
    'engine.hrf_deriv_update_ms',
    'engine.cka_update_ms',
    'engine.standardize_update_ms',
    ...NUMPY_FIGURES,
  ],
  async run(ctx) {
    const out: Record<string, number> = {};
    const units = 4096;
    const T = 16;
    const bins = normalArray(1, 8 * T * units);
    const trBins = (i: number) => bins.subarray((i % 8) * T * units, ((i % 8) + 1) * T * units);
    for (const [name, derivative] of [['engine.hrf_update_ms', false], ['engine.hrf_deriv_update_ms', true]] as const) {
      if (!ctx.wants(name)) continue;
      const conv = new HrfConvolver({ channels: units, kernels: microtimeHrfKernels({ tr: 1, derivative }) });
      const res = new Float64Array(conv.kernelCount * units);
      out[name] = timePerCall(40, 40, (i) => conv.pushTr(trBins(i), res));
      ctx.log(`${name}: ${out[name].toFixed(2)} ms for ${units} units`);
    }
    if (ctx.wants('engine.cka_update_ms')) {
      const p = 512;
      const q = 400;
      const xs = normalArray(2, 16 * p);
      const ys = normalArray(3, 16 * q);
      const cka = new IncrementalCka({ p, q });
      out['engine.cka_update_ms'] = timePerCall(10, 60, (i) => {
        const k = i % 16;
        cka.update(xs.subarray(k * p, (k + 1) * p), ys.subarray(k * q, (k + 1) * q));
      });
      ctx.log(`engine.cka_update_ms: ${out['engine.cka_update_ms'].toFixed(3)} ms (p=${p}, q=${q}, CKA ${cka.value().toFixed(3)})`);
    }
    if (ctx.wants('engine.standardize_update_ms')) {
      const V = 200_000;
      const ys = [normalArray(4, V), normalArray(5, V)];
      const s = new RunningStandardizer({ size: V });
      const z = new Float64Array(V);
      out['engine.standardize_update_ms'] = timePerCall(5, 30, (i) => {
        s.update(ys[i % 2]);
        s.transform(ys[i % 2], z);
      });
    }
    if (NUMPY_FIGURES.some((f) => ctx.wants(f))) Object.assign(out, numpyFigures(ctx.log));
    return out;
  },
};

export default suite;
