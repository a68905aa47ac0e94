/**
 * Per-TR cost of the voxelwise GLM (synchronized FBN maps) at HCP 7T size:
 * V = 200,000 masked voxels, P = 69 columns (K = 64 unit responses, then intercept + 4
 * cosine drifts of a 920-TR run, the coupling engine's order). After full rank and a few
 * more TRs, each figure is the median over the timed TRs of one `update` (QR-based RLS:
 * P Givens rotations per voxel, glm.ts):
 * - engine.glm_update_ms: with the default worker threads (min(2, cores));
 * - engine.glm_update_1thread_ms: everything in the calling thread (workers: 0);
 * - numpy.glm_update_plain_ms / numpy.glm_update_blas_ms: the same QR recursion in numpy
 *   (bench/reference/glm_update.py; plain vectorised, and with in-place BLAS drot calls),
 *   run with /usr/bin/python3 without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; NaN without it;
 * - numpy.glm_update_ms: the faster of those two, the reference the ratios use (comparing
 *   against a deliberately slow numpy would flatter the engine);
 * - numpy.glm_rls_update_ms: the textbook RLS step (B += e gᵀ) the engine used before QR;
 * - engine.glm_vs_numpy_ratio: numpy.glm_update_ms / engine.glm_update_ms (> 1: faster),
 *   and engine.glm_vs_numpy_1thread_ratio the same for the engine on one thread (numpy's
 *   BLAS rotations run on one thread too).
 * The volumes are cycled from 16 prepared ones so only the estimator is timed.
 */
import { availableParallelism } from 'node:os';
import { median, runNumpyReference, type BenchSuite } from './bench.ts';
import { VoxelwiseGlm } from '../server/engine/glm.ts';
import { createRng } from '../server/engine/random.ts';

const V = 200_000;
const K = 64;
const DRIFTS = 4;
const P = K + 1 + DRIFTS;
const RUN = 920;
const TIMED = 30;

function makeDesign(): Float64Array {
  const rng = createRng(1);
  const X = new Float64Array(RUN * P);
  const units = new Float64Array(K);
  for (let t = 0; t < RUN; t++) {
    const row = t * P;
    for (let k = 0; k < K; k++) {
      units[k] = 0.8 * units[k] + rng.normal();
      X[row + k] = units[k];
    }
    X[row + K] = 1;
    for (let d = 1; d <= DRIFTS; d++) X[row + K + d] = Math.cos((Math.PI * d * (t + 0.5)) / RUN);
  }
  return X;
}

function makeVolumes(): Float32Array[] {
  const rng = createRng(2);
  const noise = new Float32Array(V + 4099);
  for (let i = 0; i < noise.length; i++) noise[i] = rng.normal();
  return Array.from({ length: 16 }, () => {
    const shift = rng.int(4096);
    const y = new Float32Array(V);
    for (let v = 0; v < V; v++) y[v] = 1000 + noise[v + shift];
    return y;
  });
}

/** Median ms of `update` over TIMED TRs once the estimator is fitted and warm. */
function timeGlm(workers: number, X: Float64Array, volumes: Float32Array[], log: (m: string) => void): number {
  const glm = new VoxelwiseGlm({ voxels: V, regressors: P, workers });
  try {
    let t = 0;
    const step = () => {
      glm.update(X.subarray(t * P, (t + 1) * P), volumes[t % volumes.length]);
      t++;
    };
    const t0 = performance.now();
    while (!glm.fitted) step();
    log(`  workers ${workers}: full rank at TR ${t} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (let i = 0; i < 5; i++) step();
    const times: number[] = [];
    for (let i = 0; i < TIMED; i++) {
      const s = performance.now();
      step();
      times.push(performance.now() - s);
    }
    return median(times);
  } finally {
    glm.dispose();
  }
}

function numpyFigures(log: (m: string) => void): Record<string, number> {
  const figures = ['numpy.glm_update_plain_ms', 'numpy.glm_update_blas_ms', 'numpy.glm_rls_update_ms'];
  const measured = runNumpyReference('glm_update.py', figures, log, { OPENBLAS_CORETYPE: undefined, OPENBLAS_L2_SIZE: undefined });
  const paths = [measured['numpy.glm_update_plain_ms'], measured['numpy.glm_update_blas_ms']].filter(Number.isFinite);
  return { ...measured, 'numpy.glm_update_ms': paths.length ? Math.min(...paths) : NaN };
}

const suite: BenchSuite = {
  title: `voxelwise GLM by QR-based RLS (V = ${V.toLocaleString('en')}, P = ${P})`,
  figures: [
    'engine.glm_update_ms',
    'engine.glm_update_1thread_ms',
    'numpy.glm_update_ms',
    'numpy.glm_update_plain_ms',
    'numpy.glm_update_blas_ms',
    'numpy.glm_rls_update_ms',
    'engine.glm_vs_numpy_ratio',
    'engine.glm_vs_numpy_1thread_ratio',
  ],
  async run(ctx) {
    const out: Record<string, number> = {};
    const wantRatio = ctx.wants('engine.glm_vs_numpy_ratio');
    const want1Ratio = ctx.wants('engine.glm_vs_numpy_1thread_ratio');
    const X = makeDesign();
    const volumes = makeVolumes();
    if (ctx.wants('engine.glm_update_ms') || wantRatio) {
      out['engine.glm_update_ms'] = timeGlm(Math.min(2, availableParallelism()), X, volumes, ctx.log);
    }
    if (ctx.wants('engine.glm_update_1thread_ms') || want1Ratio) out['engine.glm_update_1thread_ms'] = timeGlm(0, X, volumes, ctx.log);
    if (['numpy.glm_update_ms', 'numpy.glm_update_plain_ms', 'numpy.glm_update_blas_ms', 'numpy.glm_rls_update_ms'].some((f) => ctx.wants(f)) || wantRatio || want1Ratio) {
      Object.assign(out, numpyFigures(ctx.log));
    }
    if (wantRatio) out['engine.glm_vs_numpy_ratio'] = out['numpy.glm_update_ms'] / out['engine.glm_update_ms'];
    if (want1Ratio) out['engine.glm_vs_numpy_1thread_ratio'] = out['numpy.glm_update_ms'] / out['engine.glm_update_1thread_ms'];
    return out;
  },
};

export default suite;
