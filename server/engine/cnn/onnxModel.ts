/**
 * A FeatureExtractor on onnxruntime-node (CPU): how PyTorch models (torchvision's AlexNet,
 * VGG, ResNet, … exported with `torch.onnx.export`) get into syncact.
 *
 * Tapping: onnxruntime returns only graph outputs. A tapped tensor that is already a graph
 * output is used as is; every other one is ADDED as a graph output when the model is
 * loaded (in memory, see server/io/onnxGraph.ts; the file is not changed). Layer names are
 * node output tensor names ("/layer3/layer3.1/relu_2/Relu_output_0" in recent torch
 * exports), or node names, each standing for its node's first output ("/layer3/layer3.1/relu_2/Relu").
 * Adding outputs can cost a little speed: onnxruntime cannot fuse a node whose output
 * must be kept (e.g. a Conv+Relu whose Conv output is tapped).
 *
 * Layout: the graph input says NCHW (PyTorch) or NHWC from where its 3 colour channels are.
 * Tapped 4D tensors are read in that same layout (per channel spatial mean or max), 3D ones
 * as (N, C, L) / (N, L, C) pooled over L, 2D ones (N, C) pass through (a dense layer: each
 * unit is one channel).
 *
 * This module takes the model's bytes, not a path: reading files is server/io's job
 * (modelFiles.ts), so the file never has to exist for tests or in-memory models.
 */
import * as ort from 'onnxruntime-node';
import { SyncactError } from '../../errors.ts';
import {
  graphInputs,
  parseOnnxModel,
  resolveTapNames,
  withGraphOutputs,
  type OnnxInputInfo,
} from '../../io/onnxGraph.ts';
import type { FeatureExtractor, FrameBatch, LayerActivations, LayerInfo, Pooling, Preprocessing } from './extractor.ts';
import { resolvePreprocessing } from './modelSpec.ts';
import { preprocessToFloat32 } from './preprocess.ts';

export interface OnnxExtractorOptions {
  /** The .onnx file's bytes. */
  bytes: Uint8Array;
  /** Content hash of the bytes (hex sha256): the extractor's id is `onnx:<sha256>`. */
  sha256: string;
  /** Where the bytes came from, for error messages. */
  file?: string;
  /** Tensor names or node names to tap (see the module comment). */
  layers: string[];
  /** Graph input to feed; the first one that is not an initializer by default. */
  input?: string;
  /** Overrides of what the graph input declares (size, layout); normalisation defaults to 'imagenet'. */
  preprocessing?: Partial<Preprocessing>;
  pooling?: Pooling;
  /** intraOpNumThreads; 2 by default. */
  threads?: number;
}

/** The preprocessing for an ONNX graph input: PyTorch's conventions unless told otherwise. */
export function onnxPreprocessing(input: OnnxInputInfo, over: Partial<Preprocessing>, file?: string): Preprocessing {
  return resolvePreprocessing(input.name, input.dims, over, { normalization: 'imagenet', layout: 'nchw' }, file);
}

/**
 * Per-channel pooling of one output tensor (row-major, dims[0] = frames) into a
 * frames × channels matrix. `layout` says where channels are in 3D/4D tensors.
 */
export function poolTensor(
  data: Float32Array,
  dims: readonly number[],
  layout: Preprocessing['layout'],
  pooling: Pooling,
): { channels: number; values: Float32Array } {
  const n = dims[0];
  if (dims.length === 2) return { channels: dims[1], values: Float32Array.from(data) };
  if (dims.length !== 3 && dims.length !== 4) {
    throw new SyncactError('CNN_MODEL_FORMAT', `cannot pool a ${dims.length}D tensor [${dims.join(', ')}] into units; tap a 2D, 3D or 4D tensor`);
  }
  const spatialDims = layout === 'nchw' ? dims.slice(2) : dims.slice(1, -1);
  const channels = layout === 'nchw' ? dims[1] : dims[dims.length - 1];
  const s = spatialDims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * channels);
  const isMax = pooling === 'max';
  for (let f = 0; f < n; f++) {
    const base = f * channels * s;
    if (layout === 'nchw') {
      for (let c = 0; c < channels; c++) {
        const o = base + c * s;
        let acc = isMax ? -Infinity : 0;
        for (let i = 0; i < s; i++) {
          const v = data[o + i];
          acc = isMax ? (v > acc ? v : acc) : acc + v;
        }
        out[f * channels + c] = isMax ? acc : acc / s;
      }
    } else {
      // Channels fastest: accumulate in float64 (sums over 56×56 maps lose digits in float32).
      const acc = new Float64Array(channels).fill(isMax ? -Infinity : 0);
      for (let i = 0; i < s; i++) {
        const o = base + i * channels;
        for (let c = 0; c < channels; c++) {
          const v = data[o + c];
          if (isMax) {
            if (v > acc[c]) acc[c] = v;
          } else acc[c] += v;
        }
      }
      for (let c = 0; c < channels; c++) out[f * channels + c] = isMax ? acc[c] : acc[c] / s;
    }
  }
  return { channels, values: out };
}

/**
 * The session options syncact runs ONNX models with. Intra-op threads do not spin while
 * waiting for work: the CNN stage shares the CPU with the rest of the engine (and on a
 * 2-core machine with everything else), where spinning threads burn the cycles the other
 * stages need; measured on the shared 2-core box, MobileNetV2 at batch 8 ran faster without
 * spinning. Logging is fatal-only: run failures come back as typed errors carrying
 * onnxruntime's message, so its own log line would print the same thing twice.
 */
export function onnxSessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 4,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** onnxruntime's shape errors → CNN_INPUT_SIZE; anything else → CNN_MODEL_FORMAT. */
function runError(e: unknown, prep: Preprocessing, file?: string): SyncactError {
  const msg = errorText(e);
  if (/dimension|shape|Invalid input|kernel|pad|Got invalid|size/i.test(msg)) {
    return new SyncactError(
      'CNN_INPUT_SIZE',
      `the model cannot run on ${prep.width}×${prep.height} inputs (onnxruntime: ${msg}); give the size it was trained at`,
      file,
    );
  }
  return new SyncactError('CNN_MODEL_FORMAT', `onnxruntime failed to run the model: ${msg}`, file);
}

class OnnxExtractor implements FeatureExtractor {
  readonly backend = 'onnxruntime-cpu';
  layers: LayerInfo[] = [];
  private disposed = false;

  constructor(
    readonly id: string,
    readonly preprocessing: Preprocessing,
    readonly pooling: Pooling,
    private session: ort.InferenceSession,
    private readonly inputName: string,
    /** Requested layer names and the tensors they resolved to, in order. */
    private readonly taps: { layer: string; tensor: string }[],
    /** A fixed batch size the graph declares (e.g. 1), or null when the batch dim is free. */
    private readonly fixedBatch: number | null,
    private readonly file?: string,
  ) {}

  /** Runs the graph on `count` preprocessed frames; returns the tapped tensors. */
  private async run(input: Float32Array, count: number): Promise<{ data: Float32Array; dims: number[] }[]> {
    const p = this.preprocessing;
    const shape = p.layout === 'nchw' ? [count, 3, p.height, p.width] : [count, p.height, p.width, 3];
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(
        { [this.inputName]: new ort.Tensor('float32', input, shape) },
        this.taps.map((t) => t.tensor),
      );
    } catch (e) {
      throw runError(e, p, this.file);
    }
    return this.taps.map(({ layer, tensor }) => {
      const t = result[tensor] as ort.Tensor;
      if (t.type !== 'float32') {
        throw new SyncactError('CNN_MODEL_FORMAT', `tapped tensor "${layer}" is ${t.type}; syncact pools float32 tensors only`, this.file);
      }
      const dims = t.dims.map(Number);
      // Like TF.js, onnxruntime runs on maps that shrank to nothing and returns empty tensors.
      if (dims.slice(1).some((d) => d < 1)) {
        throw new SyncactError(
          'CNN_INPUT_SIZE',
          `the model cannot run on ${p.width}×${p.height} inputs: "${layer}" comes out with shape [${dims.join(', ')}]; give larger input sizes`,
          this.file,
        );
      }
      return { data: t.data as Float32Array, dims };
    });
  }

  async extract(batch: FrameBatch): Promise<LayerActivations[]> {
    if (this.disposed) throw new SyncactError('ENGINE_NOT_FITTED', 'this ONNX extractor was disposed');
    const n = batch.frames.length;
    const p = this.preprocessing;
    const perFrame = 3 * p.width * p.height;
    const input = preprocessToFloat32(batch, p);
    const step = this.fixedBatch ?? Math.max(1, n);
    const out = this.layers.map((l) => ({ layer: l.name, channels: l.channels, frames: n, values: new Float32Array(n * l.channels) }));
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      let chunk = input.subarray(start * perFrame, (start + count) * perFrame);
      if (this.fixedBatch !== null && count < this.fixedBatch) {
        // A graph with a fixed batch (often 1, sometimes 8) gets a zero-padded last chunk.
        const padded = new Float32Array(this.fixedBatch * perFrame);
        padded.set(chunk);
        chunk = padded;
      }
      const tensors = await this.run(chunk, this.fixedBatch ?? count);
      tensors.forEach((t, k) => {
        const pooled = poolTensor(t.data, t.dims, p.layout, this.pooling);
        out[k].values.set(pooled.values.subarray(0, count * out[k].channels), start * out[k].channels);
      });
    }
    return out;
  }

  /** Runs one blank frame to learn each tap's channel count (and to fail early on a size misfit). */
  async probe(): Promise<void> {
    const p = this.preprocessing;
    const count = this.fixedBatch ?? 1;
    const tensors = await this.run(new Float32Array(count * 3 * p.width * p.height), count);
    this.layers = tensors.map((t, k) => ({ name: this.taps[k].layer, channels: poolTensor(t.data, t.dims, p.layout, this.pooling).channels }));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}

/**
 * Loads an ONNX model from its bytes and returns a FeatureExtractor tapping `layers`.
 * Throws CNN_MODEL_FORMAT (not ONNX, non-float input, onnxruntime rejects it),
 * CNN_LAYER_NOT_FOUND (listing the tensor names), CNN_INPUT_SIZE (input shape misfit).
 */
export async function loadOnnxExtractor(o: OnnxExtractorOptions): Promise<FeatureExtractor> {
  const model = parseOnnxModel(o.bytes, o.file);
  const inputs = graphInputs(model);
  if (inputs.length === 0) throw new SyncactError('CNN_MODEL_FORMAT', 'the ONNX graph has no input to feed', o.file);
  const input = o.input === undefined ? inputs[0] : inputs.find((i) => i.name === o.input);
  if (!input) {
    throw new SyncactError(
      'CNN_LAYER_NOT_FOUND',
      `no graph input named "${o.input}"; inputs: ${inputs.map((i) => JSON.stringify(i.name)).join(', ')}`,
      o.file,
    );
  }
  if (input.elemType !== 0 && input.elemType !== 1) {
    throw new SyncactError('CNN_MODEL_FORMAT', `graph input "${input.name}" is not float32 (ONNX type ${input.elemType})`, o.file);
  }
  const prep = onnxPreprocessing(input, o.preprocessing ?? {}, o.file);
  const tensors = resolveTapNames(model, o.layers, o.file);
  const edited = withGraphOutputs(o.bytes, model, tensors);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(edited.bytes, onnxSessionOptions(o.threads ?? 2));
  } catch (e) {
    throw new SyncactError('CNN_MODEL_FORMAT', `onnxruntime cannot load the model: ${errorText(e)}`, o.file);
  }
  const b = input.dims[0];
  const ex = new OnnxExtractor(
    `onnx:${o.sha256}`,
    prep,
    o.pooling ?? 'mean',
    session,
    input.name,
    o.layers.map((layer, k) => ({ layer, tensor: tensors[k] })),
    typeof b === 'number' ? b : null,
    o.file,
  );
  try {
    await ex.probe();
  } catch (e) {
    await ex.dispose();
    throw e;
  }
  return ex;
}
