/**
 * The machine's measured matrix-multiply throughput, the denominator of the "physical limit"
 * figures (`cnn.*_limit_fps` = GFLOP/s ÷ GFLOP per frame): how fast a model could run if
 * every one of its FLOPs ran at dense-matmul speed on the same backend.
 *
 * What it runs: TF.js `matMul` of two n×n float32 matrices (n = 512 by default) on the
 * WebAssembly backend (XNNPACK GEMM, SIMD), the backend the built-in and TF.js models use
 * here. In Node the wasm backend is single-threaded, so this is one core's peak. Each timed
 * call includes reading the product back (1 MB at n = 512, small beside 2n³ FLOPs). The
 * best call is reported, not the median: a limit is the fastest the machine has been seen
 * to go. This reads the wall clock, unlike the rest of server/engine, because measuring
 * is its purpose; only benchmarks call it.
 */
import * as tf from '@tensorflow/tfjs';
import { initTfBackend, type TfBackendChoice } from './tfBackend.ts';

export interface MatmulThroughput {
  /** Best observed 2n³ / seconds, in GFLOP/s. */
  gflops: number;
  /** What was measured, e.g. "tfjs-wasm-simd matMul 512×512 float32, best of 37". */
  method: string;
  size: number;
  backend: string;
  calls: number;
}

export interface MatmulOptions {
  /** Matrix side n (default 512). */
  size?: number;
  /** Keep timing calls for at least this long (default 1 s), after 2 warm-up calls. */
  minSeconds?: number;
  /** Backend to measure (default 'wasm'); the previous backend is restored afterwards. */
  backend?: TfBackendChoice;
}

export async function measureMatmulGflops(o: MatmulOptions = {}): Promise<MatmulThroughput> {
  const n = o.size ?? 512;
  const minSeconds = o.minSeconds ?? 1;
  const previous = tf.engine().backendName;
  const info = await initTfBackend(o.backend ?? 'wasm');
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  let best = Infinity;
  let calls = 0;
  try {
    const once = async () => {
      const c = tf.matMul(a, b);
      try {
        await c.data();
      } finally {
        c.dispose();
      }
    };
    await once();
    await once();
    const start = performance.now();
    while (calls < 3 || performance.now() - start < minSeconds * 1000) {
      const t0 = performance.now();
      await once();
      best = Math.min(best, (performance.now() - t0) / 1000);
      calls++;
    }
  } finally {
    tf.dispose([a, b]);
    if (previous && previous !== tf.getBackend()) await tf.setBackend(previous);
  }
  return {
    gflops: (2 * n ** 3) / best / 1e9,
    method: `${info.backend} matMul ${n}×${n} float32, best of ${calls}`,
    size: n,
    backend: info.backend,
    calls,
  };
}
