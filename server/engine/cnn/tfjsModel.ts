/**
 * A FeatureExtractor for TensorFlow.js models: Keras-style layers models and TF graph
 * models, as tensorflowjs_converter or `model.save()` write them (model.json + shards).
 *
 * - Layers models: taps are layer names. The model is rebuilt as
 *   `tf.model({inputs: m.inputs, outputs: taps.map(n => m.getLayer(n).output)})`, so one
 *   forward pass gives every tapped layer (and nothing past the deepest tap is computed).
 *   Names are the model's top-level layers: a Keras application wrapped as one layer of an
 *   outer model exposes only its own output (save the inner model to tap inside it).
 * - Graph models: taps are node names (optionally "name:k" for a node's k-th output),
 *   fetched with `model.execute(input, names)`; models with control flow go through
 *   `executeAsync`.
 * Outputs are pooled per channel: 4D maps by spatial mean (or max), NHWC unless the model
 * input is channels-first; 3D (N, L, C) over L; 2D (dense layers) pass through, each unit
 * one channel.
 *
 * The weights come in memory (`tf.io.fromMemory`), read by server/io/modelFiles.ts with fs,
 * so no tfjs-node is needed. Every step runs inside `tf.tidy`, and only the pooled
 * (frames × channels) tensors leave it, to be read and disposed.
 */
import * as tf from '@tensorflow/tfjs';
import { SyncactError } from '../../errors.ts';
import type { FeatureExtractor, FrameBatch, LayerActivations, LayerInfo, Pooling, Preprocessing } from './extractor.ts';
import { resolvePreprocessing } from './modelSpec.ts';
import { preprocessToTensor } from './preprocess.ts';

/** The model as read from disk (server/io/modelFiles.ts's TfjsModelFiles fits). */
export interface TfjsModelArtifacts {
  format: 'layers' | 'graph';
  modelTopology: Record<string, unknown>;
  weightSpecs: unknown[];
  weightData: ArrayBuffer;
  /** Hex sha256 of model.json + shards: the extractor's id is `tfjs:<sha256>`. */
  sha256: string;
  /** Where it came from, for error messages. */
  path?: string;
  /** model.json's other fields (signature, userDefinedMetadata, …). */
  json?: Record<string, unknown>;
}

export interface TfjsExtractorOptions {
  model: TfjsModelArtifacts;
  /** Layer names (layers models) or node names (graph models). */
  layers: string[];
  /** Overrides of the defaults: the model's input size, 'unit' normalisation, NHWC. */
  preprocessing?: Partial<Preprocessing>;
  pooling?: Pooling;
  /**
   * The backend's reported name (from `initTfBackend`). The caller selects the backend
   * first: TF.js has one backend per process.
   */
  backend: string;
}

function summarize(names: string[], max = 40): string {
  const shown = names.slice(0, max).map((n) => JSON.stringify(n)).join(', ');
  return names.length > max ? `${shown}, … (${names.length - max} more)` : shown;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Per-channel pooling of one tapped output; `channelsFirst` for NCHW maps. */
export function poolOutput(x: tf.Tensor, pooling: Pooling, channelsFirst: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    if (x.rank === 2) return x as tf.Tensor2D;
    let axes: number[];
    if (x.rank === 4) axes = channelsFirst ? [2, 3] : [1, 2];
    else if (x.rank === 3) axes = channelsFirst ? [2] : [1];
    else throw new SyncactError('CNN_MODEL_FORMAT', `cannot pool a ${x.rank}D output [${x.shape.join(', ')}] into units; tap a 2D, 3D or 4D output`);
    const f = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
    return (pooling === 'max' ? tf.max(f, axes) : tf.mean(f, axes)) as tf.Tensor2D;
  });
}

/** How one forward pass is run: a function from the input batch to the tapped outputs. */
interface Runner {
  inputDims: (number | null)[];
  inputName: string;
  /** Synchronous forward pass (called inside tf.tidy), or null when only async works. */
  run(x: tf.Tensor4D): tf.Tensor[];
  /** Graph models with control flow. */
  runAsync?(x: tf.Tensor4D): Promise<tf.Tensor[]>;
  dispose(): void;
}

async function layersRunner(a: TfjsModelArtifacts, taps: string[]): Promise<Runner> {
  let m: tf.LayersModel;
  try {
    m = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: a.modelTopology, weightSpecs: a.weightSpecs as tf.io.WeightsManifestEntry[], weightData: a.weightData }),
    );
  } catch (e) {
    throw new SyncactError('CNN_MODEL_FORMAT', `TF.js cannot build this layers model: ${errorText(e)}`, a.path);
  }
  const names = m.layers.map((l) => l.name);
  for (const t of taps) {
    if (!names.includes(t)) {
      m.dispose();
      throw new SyncactError('CNN_LAYER_NOT_FOUND', `no layer named "${t}" in the model; layers (${names.length}): ${summarize(names)}`, a.path);
    }
  }
  if (m.inputs.length !== 1) {
    m.dispose();
    throw new SyncactError('CNN_MODEL_FORMAT', `the model has ${m.inputs.length} inputs; syncact feeds one image input`, a.path);
  }
  let tapped: tf.LayersModel;
  try {
    tapped = tf.model({ inputs: m.inputs, outputs: taps.map((n) => m.getLayer(n).output as tf.SymbolicTensor) });
  } catch (e) {
    m.dispose();
    throw new SyncactError('CNN_MODEL_FORMAT', `cannot tap ${taps.join(', ')}: ${errorText(e)} (a layer shared by several calls has no single output)`, a.path);
  }
  return {
    inputDims: m.inputs[0].shape.map((d) => (d == null ? null : d)),
    inputName: m.inputs[0].name,
    run: (x) => {
      const out = tapped.predict(x);
      return Array.isArray(out) ? out : [out];
    },
    // The tapped model shares its layers (and weights) with m: disposing m frees them.
    dispose: () => m.dispose(),
  };
}

/** Node names of a graph model's topology ("name:k" addresses the k-th output). */
function graphNodeNames(topology: Record<string, unknown>): string[] {
  const nodes = topology.node;
  return Array.isArray(nodes) ? nodes.map((n) => String((n as { name?: unknown }).name ?? '')).filter((n) => n) : [];
}

async function graphRunner(a: TfjsModelArtifacts, taps: string[]): Promise<Runner> {
  const names = graphNodeNames(a.modelTopology);
  const known = new Set(names);
  for (const t of taps) {
    const base = t.replace(/:\d+$/, '');
    if (!known.has(base)) {
      throw new SyncactError('CNN_LAYER_NOT_FOUND', `no node named "${t}" in the graph; nodes (${names.length}): ${summarize(names)}`, a.path);
    }
  }
  let m: tf.GraphModel;
  try {
    m = await tf.loadGraphModel(
      tf.io.fromMemory({
        ...(a.json ?? {}),
        modelTopology: a.modelTopology,
        weightSpecs: a.weightSpecs as tf.io.WeightsManifestEntry[],
        weightData: a.weightData,
        format: 'graph-model',
      }),
    );
  } catch (e) {
    throw new SyncactError('CNN_MODEL_FORMAT', `TF.js cannot build this graph model: ${errorText(e)}`, a.path);
  }
  if (m.inputs.length !== 1) {
    m.dispose();
    throw new SyncactError('CNN_MODEL_FORMAT', `the graph has ${m.inputs.length} inputs (${m.inputs.map((i) => i.name).join(', ')}); syncact feeds one image input`, a.path);
  }
  const input = m.inputs[0];
  const feed = (x: tf.Tensor4D) => ({ [input.name]: x });
  return {
    inputDims: (input.shape ?? [-1, -1, -1, 3]).map((d) => (d == null || d < 0 ? null : d)),
    inputName: input.name,
    run: (x) => {
      const out = m.execute(feed(x), taps);
      return Array.isArray(out) ? out : [out];
    },
    runAsync: async (x) => {
      const out = await m.executeAsync(feed(x), taps);
      return Array.isArray(out) ? out : [out];
    },
    dispose: () => m.dispose(),
  };
}

class TfjsExtractor implements FeatureExtractor {
  layers: LayerInfo[] = [];
  private disposed = false;
  /** Set when execute() refused the graph (control flow): from then on executeAsync. */
  private useAsync = false;

  constructor(
    readonly id: string,
    readonly backend: string,
    readonly preprocessing: Preprocessing,
    readonly pooling: Pooling,
    private readonly runner: Runner,
    private readonly taps: string[],
    private readonly file?: string,
  ) {}

  /** The pooled (frames × channels) tensors; everything else is freed before returning. */
  private async pooled(batch: FrameBatch): Promise<tf.Tensor2D[]> {
    const p = this.preprocessing;
    const channelsFirst = p.layout === 'nchw';
    const pool = (outs: tf.Tensor[]) =>
      outs.map((o, k) => {
        // TF.js computes negative sizes without complaint when maps shrink below 1 pixel.
        if (o.shape.slice(1).some((d) => d < 1)) {
          throw new SyncactError(
            'CNN_INPUT_SIZE',
            `at ${p.width}×${p.height} inputs, "${this.taps[k]}" has shape [${o.shape.join(', ')}]: the frames are too small for the network; give larger input sizes`,
            this.file,
          );
        }
        return poolOutput(o, this.pooling, channelsFirst);
      });
    try {
      if (!this.useAsync) {
        try {
          return tf.tidy(() => pool(this.runner.run(preprocessToTensor(batch, p) as tf.Tensor4D)));
        } catch (e) {
          if (!(this.runner.runAsync && /executeAsync/.test(errorText(e)))) throw e;
          this.useAsync = true;
        }
      }
      const x = preprocessToTensor(batch, p);
      try {
        const outs = await this.runner.runAsync!(x);
        try {
          return tf.tidy(() => pool(outs));
        } finally {
          tf.dispose(outs);
        }
      } finally {
        x.dispose();
      }
    } catch (e) {
      if (e instanceof SyncactError) throw e;
      throw new SyncactError(
        'CNN_INPUT_SIZE',
        `the model cannot run on ${p.width}×${p.height} inputs (TF.js: ${errorText(e)}); give the size it was trained at, or larger frames`,
        this.file,
      );
    }
  }

  async extract(batch: FrameBatch): Promise<LayerActivations[]> {
    if (this.disposed) throw new SyncactError('ENGINE_NOT_FITTED', 'this TF.js extractor was disposed');
    const n = batch.frames.length;
    if (n === 0) return this.layers.map((l) => ({ layer: l.name, channels: l.channels, frames: 0, values: new Float32Array(0) }));
    const pooled = await this.pooled(batch);
    try {
      const data = await Promise.all(pooled.map((t) => t.data()));
      return this.layers.map((l, k) => ({ layer: l.name, channels: l.channels, frames: n, values: data[k] as Float32Array }));
    } finally {
      tf.dispose(pooled);
    }
  }

  /** One blank frame through the model: channel counts, and an early CNN_INPUT_SIZE. */
  async probe(): Promise<void> {
    const p = this.preprocessing;
    const pooled = await this.pooled({ width: p.width, height: p.height, frames: [new Uint8Array(p.width * p.height * 3)] });
    this.layers = pooled.map((t, k) => ({ name: this.taps[k], channels: t.shape[1] }));
    tf.dispose(pooled);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.runner.dispose();
  }
}

/**
 * Loads a TF.js layers or graph model from its artifacts and returns a FeatureExtractor
 * tapping `layers`. Throws CNN_LAYER_NOT_FOUND (listing the layer/node names),
 * CNN_MODEL_FORMAT (TF.js cannot build the model), CNN_INPUT_SIZE (the input does not fit).
 */
export async function loadTfjsExtractor(o: TfjsExtractorOptions): Promise<FeatureExtractor> {
  const a = o.model;
  const runner = a.format === 'layers' ? await layersRunner(a, o.layers) : await graphRunner(a, o.layers);
  let ex: TfjsExtractor;
  try {
    const prep = resolvePreprocessing(runner.inputName, runner.inputDims, o.preprocessing ?? {}, { normalization: 'unit', layout: 'nhwc' }, a.path);
    ex = new TfjsExtractor(`tfjs:${a.sha256}`, o.backend, prep, o.pooling ?? 'mean', runner, o.layers, a.path);
  } catch (e) {
    runner.dispose();
    throw e;
  }
  try {
    await ex.probe();
  } catch (e) {
    await ex.dispose();
    throw e;
  }
  return ex;
}
