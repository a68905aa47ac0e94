/**
 * Online dictionary learning at HCP 7T size: V = 370,000 masked voxels, K = 20 atoms,
 * dictionary updated every 5 TRs. `engine.dictionary_update_ms` is the amortised cost of
 * one `update` (code + statistics + a fifth of a dictionary pass), measured after a
 * warm-up long enough for every atom to be seeded and the maps to have become sparse.
 * The volumes are 12 sparse planted networks with Gaussian×Bernoulli time courses plus
 * noise, built before timing so that only the estimator is measured.
 * `numpy.dictionary_update_ms` is the same algorithm in plain vectorised numpy
 * (bench/reference/dictionary_update.py), timed the same way, run with /usr/bin/python3
 * and one BLAS thread (the engine uses one core); NaN without python.
 */
import { median, runNumpyReference, type BenchSuite } from './bench.ts';
import { OnlineDictionaryLearning } from '../server/engine/dictionaryLearning.ts';
import { createRng } from '../server/engine/random.ts';

const V = 370_000;
const K = 20;
const NETWORKS = 12;
const WARMUP = 60;
const TIMED = 60;
const M = 5;

function makeVolumes(count: number, seed: number): Float32Array[] {
  const rng = createRng(seed);
  // Each network covers a contiguous 3% of the voxels (a blob in mask order).
  const span = Math.floor(V * 0.03);
  const starts = Array.from({ length: NETWORKS }, () => rng.int(V - span));
  const noise = new Float32Array(V + 4099);
  for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
  const out: Float32Array[] = [];
  for (let t = 0; t < count; t++) {
    const x = new Float32Array(V);
    // Shifted windows of one noise buffer: fresh-looking noise without V normals per TR.
    const shift = rng.int(4096);
    for (let v = 0; v < V; v++) x[v] = noise[v + shift];
    for (let n = 0; n < NETWORKS; n++) {
      if (rng.uniform() >= 0.4) continue;
      const s = 3 * rng.normal();
      for (let v = starts[n]; v < starts[n] + span; v++) x[v] += s;
    }
    out.push(x);
  }
  return out;
}

/** numpy's figure with one BLAS thread, as the engine's update runs on one core. */
function numpyFigure(log: (m: string) => void): number {
  const threads = { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const out = runNumpyReference('dictionary_update.py', ['numpy.dictionary_update_ms'], log, threads)['numpy.dictionary_update_ms'];
  return typeof out === 'number' ? out : NaN;
}

const suite: BenchSuite = {
  title: 'online dictionary learning (V = 370,000, K = 20, m = 5)',
  figures: ['engine.dictionary_update_ms', 'numpy.dictionary_update_ms'],
  async run(ctx): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    if (ctx.wants('numpy.dictionary_update_ms')) out['numpy.dictionary_update_ms'] = numpyFigure(ctx.log);
    if (!ctx.wants('engine.dictionary_update_ms')) return out;
    ctx.log('building volumes');
    const volumes = makeVolumes(WARMUP + TIMED, 1);
    const est = new OnlineDictionaryLearning({ voxels: V, atoms: K, updateEvery: M });
    ctx.log('warm-up');
    for (let t = 0; t < WARMUP; t++) est.update(volumes[t]);
    // Median over whole update cycles (m TRs, one dictionary pass each): robust to other
    // processes on the machine, and still the amortised cost.
    const cycles: number[] = [];
    for (let t = WARMUP; t + M <= WARMUP + TIMED; t += M) {
      const t0 = performance.now();
      for (let i = t; i < t + M; i++) est.update(volumes[i]);
      cycles.push((performance.now() - t0) / M);
    }
    const perTr = median(cycles);
    ctx.log(`${perTr.toFixed(1)} ms per TR amortised (median of ${cycles.length} cycles of ${M} TRs; ${est.updates} dictionary updates in all)`);
    out['engine.dictionary_update_ms'] = perTr;
    return out;
  },
};

export default suite;
