/**
 * Frames per second of a MobileNetV2-sized model (width 1.0, 224×224, random seeded weights,
 * built in code: bench/models/) through syncact's model loaders, beside the machine's limit.
 *
 * - cnn.mobilenetv2_wasm_b{1,8}_fps: the TF.js layers model saved as model.json + shards and
 *   loaded with createExtractor on the WebAssembly backend (XNNPACK, SIMD; one thread in
 *   Node), tapping `block_16_out` and `features`;
 * - cnn.mobilenetv2_onnx_b{1,8}_fps: the same architecture as ONNX on onnxruntime-node,
 *   2 intra-op threads, same taps (added as graph outputs at load);
 * - cnn.mobilenetv2_onnx_raw_b8_fps: onnxruntime alone on the unedited graph with a
 *   ready-made input tensor (no preprocessing, no extra outputs, no pooling), same session
 *   options: what syncact's path costs on top;
 * - cnn.mobilenetv2_onnx_1t_b8_fps: the extractor with 1 intra-op thread (on a shared
 *   2-core machine a second thread often waits for a core more than it helps);
 * - cnn.mobilenetv2_{onnx,wasm}_b8_cpu_ms: process CPU time per frame at batch 8 (all
 *   threads): the work, which other processes on the machine do not inflate the way they
 *   inflate wall time (2 cores / this = the frame rate an idle machine would allow at best);
 * - cnn.mobilenetv2_gflop_per_frame: 2 × multiply-adds of Conv/Gemm, counted from the ONNX
 *   graph (bench/models/onnxFlops.ts; ≈ 0.6, the paper's 300 M mult-adds);
 * - cnn.mobilenetv2_onnx_limit_fps: machine matmul GFLOP/s from measureMatmulGflops
 *   (server/engine/cnn/matmulThroughput.ts: TF.js-wasm XNNPACK GEMM, 512³, ONE core, best
 *   call) / GFLOP per frame: the frame rate if every FLOP ran at one core's matmul speed;
 * - cnn.matmul_gflops_onnx_2t: onnxruntime's own GEMM (MLAS), 1024³ float32 on the 2 threads
 *   the ONNX path uses, best call; cnn.mobilenetv2_onnx_limit_2t_fps = that / GFLOP per
 *   frame, the bound that matches the 2-thread ONNX figures.
 * MobileNetV2 is dominated by 1×1 convs on small maps and depthwise convs, which reach a
 * fraction of GEMM speed (little reuse per byte loaded), so real runtimes stay well under
 * these bounds.
 * Frames are 224×224 (no resize). Times are medians of repeated calls after a warm-up.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { median, type BenchSuite } from './bench.ts';
import { buildMobileNetV2Onnx } from './models/mobilenetv2Onnx.ts';
import { buildMobileNetV2Tfjs } from './models/mobilenetv2Tfjs.ts';
import { onnxFlopsPerFrame } from './models/onnxFlops.ts';
import type { FeatureExtractor, FrameBatch } from '../server/engine/cnn/extractor.ts';
import { createExtractor } from '../server/engine/cnn/factory.ts';
import { measureMatmulGflops } from '../server/engine/cnn/matmulThroughput.ts';
import { loadOnnxExtractor, onnxSessionOptions } from '../server/engine/cnn/onnxModel.ts';
import { initTfBackend } from '../server/engine/cnn/tfBackend.ts';
import { createRng } from '../server/engine/random.ts';
import { writeTfjsModel, type TfjsArtifacts } from '../server/io/modelFiles.ts';

const TAPS = ['block_16_out', 'features'];
const SIZE = 224;

function randomFrames(n: number, seed: number): FrameBatch {
  const rng = createRng(seed);
  return {
    width: SIZE,
    height: SIZE,
    frames: Array.from({ length: n }, () => Uint8Array.from({ length: SIZE * SIZE * 3 }, () => (rng.uniform() * 256) | 0)),
  };
}

/** Median seconds per call: `warmup` calls, then calls until `minSeconds` and `minReps` are both reached (capped at `maxReps`). */
async function secondsPerCall(f: () => Promise<unknown>, o: { warmup: number; minReps: number; maxReps: number; minSeconds: number }): Promise<number> {
  for (let i = 0; i < o.warmup; i++) await f();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < o.maxReps && (times.length < o.minReps || performance.now() - start < o.minSeconds * 1000)) {
    const t0 = performance.now();
    await f();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** onnxruntime's float32 GEMM throughput on `threads` threads (n × n × n), best call (a limit is the fastest seen). */
async function onnxMatmulGflops(threads: number, n = 1024): Promise<number> {
  const { default: onnxProto } = await import('onnx-proto');
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const vi = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: n }, { dimValue: n }] } } } });
  const model = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'mm', node: [{ opType: 'MatMul', input: ['a', 'b'], output: ['c'] }], input: [vi('a'), vi('b')], output: [vi('c')] },
    }),
  ).finish();
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  try {
    const rng = createRng(5);
    const a = new ort.Tensor('float32', Float32Array.from({ length: n * n }, () => rng.normal()), [n, n]);
    const b = new ort.Tensor('float32', Float32Array.from({ length: n * n }, () => rng.normal()), [n, n]);
    await session.run({ a, b });
    let best = Infinity;
    const start = performance.now();
    for (let i = 0; i < 40 && (i < 5 || performance.now() - start < 1500); i++) {
      const t0 = performance.now();
      await session.run({ a, b });
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return (2 * n ** 3) / best / 1e9;
  } finally {
    await session.release();
  }
}

/** Frames/s at batch 1 and 8, and CPU ms per frame over the batch-8 calls. */
async function timeExtractor(
  ex: FeatureExtractor,
  b1: FrameBatch | null,
  b8: FrameBatch,
  minSeconds: number,
): Promise<{ b1: number; b8: number; cpuMsPerFrame: number }> {
  const s1 = b1 ? await secondsPerCall(() => ex.extract(b1), { warmup: 2, minReps: 5, maxReps: 200, minSeconds }) : NaN;
  let calls = 0;
  const c0 = process.cpuUsage();
  const s8 = await secondsPerCall(
    () => {
      calls++;
      return ex.extract(b8);
    },
    { warmup: 1, minReps: 3, maxReps: 50, minSeconds },
  );
  const c = process.cpuUsage(c0);
  return { b1: 1 / s1, b8: 8 / s8, cpuMsPerFrame: (c.user + c.system) / 1000 / (calls * 8) };
}

const suite: BenchSuite = {
  title: 'CNN model loaders: MobileNetV2 on TF.js WebAssembly and onnxruntime-node',
  figures: [
    'cnn.mobilenetv2_gflop_per_frame',
    'cnn.mobilenetv2_onnx_b1_fps',
    'cnn.mobilenetv2_onnx_b8_fps',
    'cnn.mobilenetv2_onnx_raw_b8_fps',
    'cnn.mobilenetv2_onnx_1t_b8_fps',
    'cnn.mobilenetv2_onnx_b8_cpu_ms',
    'cnn.mobilenetv2_onnx_limit_fps',
    'cnn.matmul_gflops_onnx_2t',
    'cnn.mobilenetv2_onnx_limit_2t_fps',
    'cnn.mobilenetv2_wasm_b1_fps',
    'cnn.mobilenetv2_wasm_b8_fps',
    'cnn.mobilenetv2_wasm_b8_cpu_ms',
  ],
  async run(ctx) {
    const out: Record<string, number> = {};
    const b1 = randomFrames(1, 1);
    const b8 = randomFrames(8, 2);
    const bytes = buildMobileNetV2Onnx({ seed: 1, size: SIZE });
    const gflop = onnxFlopsPerFrame(bytes, SIZE) / 1e9;
    out['cnn.mobilenetv2_gflop_per_frame'] = gflop;

    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (['cnn.mobilenetv2_onnx_b1_fps', 'cnn.mobilenetv2_onnx_b8_fps', 'cnn.mobilenetv2_onnx_b8_cpu_ms'].some(ctx.wants)) {
      const ex = await loadOnnxExtractor({ bytes, sha256, layers: TAPS, threads: 2 });
      try {
        const r = await timeExtractor(ex, b1, b8, 4);
        out['cnn.mobilenetv2_onnx_b1_fps'] = r.b1;
        out['cnn.mobilenetv2_onnx_b8_fps'] = r.b8;
        out['cnn.mobilenetv2_onnx_b8_cpu_ms'] = r.cpuMsPerFrame;
        ctx.log(`onnx 2 threads (taps ${TAPS.join(', ')}): b1 ${r.b1.toFixed(1)} fps, b8 ${r.b8.toFixed(1)} fps, ${r.cpuMsPerFrame.toFixed(2)} CPU ms/frame`);
      } finally {
        await ex.dispose();
      }
    }

    if (ctx.wants('cnn.mobilenetv2_onnx_1t_b8_fps')) {
      const ex = await loadOnnxExtractor({ bytes, sha256, layers: TAPS, threads: 1 });
      try {
        const r = await timeExtractor(ex, null, b8, 3);
        out['cnn.mobilenetv2_onnx_1t_b8_fps'] = r.b8;
        ctx.log(`onnx 1 thread: b8 ${r.b8.toFixed(1)} fps, ${r.cpuMsPerFrame.toFixed(2)} CPU ms/frame`);
      } finally {
        await ex.dispose();
      }
    }

    if (ctx.wants('cnn.mobilenetv2_onnx_raw_b8_fps')) {
      const session = await ort.InferenceSession.create(bytes, onnxSessionOptions(2));
      try {
        const rng = createRng(3);
        const x = new ort.Tensor('float32', Float32Array.from({ length: 8 * 3 * SIZE * SIZE }, () => rng.normal()), [8, 3, SIZE, SIZE]);
        const s = await secondsPerCall(() => session.run({ input: x }), { warmup: 1, minReps: 3, maxReps: 50, minSeconds: 3 });
        out['cnn.mobilenetv2_onnx_raw_b8_fps'] = 8 / s;
      } finally {
        await session.release();
      }
    }

    if (['cnn.matmul_gflops_onnx_2t', 'cnn.mobilenetv2_onnx_limit_2t_fps'].some(ctx.wants)) {
      const g = await onnxMatmulGflops(2);
      out['cnn.matmul_gflops_onnx_2t'] = g;
      out['cnn.mobilenetv2_onnx_limit_2t_fps'] = g / gflop;
    }

    if (ctx.wants('cnn.mobilenetv2_onnx_limit_fps')) {
      const m = await measureMatmulGflops();
      out['cnn.mobilenetv2_onnx_limit_fps'] = m.gflops / gflop;
      ctx.log(`machine matmul (${m.method}) ${m.gflops.toFixed(1)} GFLOP/s / ${gflop.toFixed(3)} GFLOP per frame`);
    }

    if (['cnn.mobilenetv2_wasm_b1_fps', 'cnn.mobilenetv2_wasm_b8_fps', 'cnn.mobilenetv2_wasm_b8_cpu_ms'].some(ctx.wants)) {
      const info = await initTfBackend('wasm');
      ctx.log(`TF.js backend ${info.backend}: ${info.detail}`);
      const model = buildMobileNetV2Tfjs({ seed: 1, size: SIZE });
      let path = '';
      await model.save(
        tf.io.withSaveHandler(async (a) => {
          path = await writeTfjsModel(join(ctx.tmpDir, 'mobilenetv2_tfjs'), a as unknown as TfjsArtifacts);
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      model.dispose();
      const ex = await createExtractor({ kind: 'tfjs', path, layers: TAPS }, { backend: 'wasm' });
      try {
        const r = await timeExtractor(ex, b1, b8, 3);
        out['cnn.mobilenetv2_wasm_b1_fps'] = r.b1;
        out['cnn.mobilenetv2_wasm_b8_fps'] = r.b8;
        out['cnn.mobilenetv2_wasm_b8_cpu_ms'] = r.cpuMsPerFrame;
        ctx.log(`wasm (taps ${TAPS.join(', ')}): b1 ${r.b1.toFixed(1)} fps, b8 ${r.b8.toFixed(1)} fps, ${r.cpuMsPerFrame.toFixed(2)} CPU ms/frame`);
      } finally {
        await ex.dispose();
      }
    }
    return out;
  },
};

export default suite;
