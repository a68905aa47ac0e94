/**
 * The built-in model's speed beside the machine's limit (issue "The CNN stage"):
 * - cnn.builtin_b1_fps, cnn.builtin_b8_fps: frames per second through `extract` at batch 1
 *   and 8 on the TF.js WebAssembly backend, end to end (128×128 frames of the synthetic
 *   movie, demo geometry: preprocessing, the network, reading the activations back).
 *   Target: b8 > 24, so a 24 fps movie is processed faster than real time;
 * - cnn.builtin_gflop_per_frame: FLOPs of the ops the network runs per frame (counted from
 *   the shapes of every conv, pool and pointwise op; multiply-add = 2), in GFLOP;
 * - machine.matmul_gflops: best TF.js wasm matMul 512×512 float32 throughput, one thread
 *   (server/engine/cnn/matmulThroughput.ts);
 * - cnn.builtin_limit_fps: machine.matmul_gflops / cnn.builtin_gflop_per_frame, the frame
 *   rate if every FLOP ran at matmul speed. The model's convolutions have 1 input channel
 *   (S1) or few outputs, which GEMM kernels use poorly, so the gap to the limit is large.
 */
import type { BenchSuite } from './bench.ts';
import { median } from './bench.ts';
import { createBuiltinExtractor } from '../server/engine/cnn/builtin.ts';
import { measureMatmulGflops } from '../server/engine/cnn/matmulThroughput.ts';
import { FEATURE_NAMES } from '../server/synth/features.ts';
import { proceduralMovie } from '../server/synth/movie.ts';

const FIGURES = [
  'cnn.builtin_b1_fps',
  'cnn.builtin_b8_fps',
  'cnn.builtin_gflop_per_frame',
  'machine.matmul_gflops',
  'cnn.builtin_limit_fps',
];

/** 48 frames of a movie whose features all move, so every unit has work to do. */
function benchFrames(): Uint8Array[] {
  const count = 48;
  const perFrame = FEATURE_NAMES.map((_, f) => Float64Array.from({ length: count }, (_, i) => 0.5 + 0.4 * Math.sin(i / (5 + f))));
  const movie = proceduralMovie({ fps: 24, width: 128, height: 128, frameCount: count, perFrame });
  return Array.from({ length: count }, (_, i) => movie.frame(i));
}

/** Frames per second at one batch size: median over rounds of ≥ 1.5 s each. */
async function fps(extract: (frames: Uint8Array[]) => Promise<unknown>, frames: Uint8Array[], batchSize: number): Promise<number> {
  const batches: Uint8Array[][] = [];
  for (let i = 0; i + batchSize <= frames.length; i += batchSize) batches.push(frames.slice(i, i + batchSize));
  for (const b of batches.slice(0, 2)) await extract(b); // warm-up: kernels, wasm memory growth
  const rounds: number[] = [];
  for (let r = 0; r < 3; r++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1500) {
      await extract(batches[(n / batchSize) % batches.length]);
      n += batchSize;
    }
    rounds.push(n / ((performance.now() - t0) / 1000));
  }
  return median(rounds);
}

const suite: BenchSuite = {
  title: 'CNN stage: built-in HMAX model (TF.js wasm)',
  figures: FIGURES,
  async run(ctx) {
    const out: Record<string, number> = {};
    const ex = await createBuiltinExtractor({ backend: 'wasm' });
    ctx.log(`built-in model ${ex.id} on ${ex.backend}, ${(ex.flopsPerFrame / 1e6).toFixed(1)} MFLOP per frame`);
    try {
      const frames = benchFrames();
      const extract = (f: Uint8Array[]) => ex.extract({ width: 128, height: 128, frames: f });
      if (ctx.wants('cnn.builtin_b1_fps')) out['cnn.builtin_b1_fps'] = await fps(extract, frames, 1);
      if (ctx.wants('cnn.builtin_b8_fps')) out['cnn.builtin_b8_fps'] = await fps(extract, frames, 8);
      const gflop = ex.flopsPerFrame / 1e9;
      out['cnn.builtin_gflop_per_frame'] = gflop;
      if (ctx.wants('machine.matmul_gflops') || ctx.wants('cnn.builtin_limit_fps')) {
        const m = await measureMatmulGflops({ minSeconds: 2 });
        ctx.log(`machine matmul: ${m.method}: ${m.gflops.toFixed(1)} GFLOP/s`);
        out['machine.matmul_gflops'] = m.gflops;
        out['cnn.builtin_limit_fps'] = m.gflops / gflop;
      }
    } finally {
      await ex.dispose();
    }
    return out;
  },
};

export default suite;
