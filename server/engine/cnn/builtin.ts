/**
 * The built-in model: syncact's default CNN, needing no files. An HMAX-style hierarchy
 * (S1 Gabors → C1 local max → S2 prototype similarity → C2 global max) with colour-opponent,
 * luminance/contrast and motion-energy channels; the network is in hmax.ts, the prototypes
 * in s2Prototypes.ts, the Gabors in gabor.ts. Its units follow what the synthetic movie
 * varies: orientation (s1, c1), luminance and contrast (color[0..1]), red–green colour
 * (color[2]), drift speed (motion).
 *
 * State: motion compares each frame with the one before it, so the extractor keeps the last
 * frame of each batch (one 128×128 grey tensor). Batches must therefore come in movie order;
 * call `reset()` after a seek or at the start of another movie, so the next frame is
 * compared with itself (motion 0) instead of with an unrelated frame. `extract` calls are
 * queued, never interleaved.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { SyncactError } from '../../errors.ts';
import type { FeatureExtractor, FrameBatch, LayerActivations, LayerInfo, Pooling, Preprocessing } from './extractor.ts';
import { HMAX_INPUT, LAYER_NAMES, createHmaxFilters, hmaxChannelNames, hmaxForward, type FlopCounter, type HmaxFilters, type HmaxLayer } from './hmax.ts';
import { preprocessToTensor, validateFrameBatch } from './preprocess.ts';
import { imprintPrototypes } from './s2Prototypes.ts';
import { initTfBackend, type TfBackendChoice } from './tfBackend.ts';

/**
 * Name of the network. The extractor's `id` adds a fingerprint of its outputs on a fixed
 * probe (see probeFingerprint), so any change to what the network computes changes the id
 * and feature caches are rebuilt without anyone having to remember to bump a version.
 */
export const BUILTIN_ID = 'builtin:hmax-v1';
export const BUILTIN_DEFAULT_SEED = 1;
export const BUILTIN_PROTOTYPES = 16;

/** 128×128, RGB in [0, 1]: the network computes grey and colour opponents itself. */
export const BUILTIN_PREPROCESSING: Preprocessing = Object.freeze({
  width: HMAX_INPUT,
  height: HMAX_INPUT,
  resize: 'bilinear',
  colorOrder: 'rgb',
  normalization: 'unit',
  layout: 'nhwc',
});

export interface BuiltinOptions {
  /** Per-frame pooling of each feature map (default 'mean'). c2 is a global max either way. */
  pooling?: Pooling;
  /** Seed of the S2 prototypes (default 1); part of the id when not the default. */
  seed?: number;
  /** Layers to return, in this order (default all: s1, c1, s2, c2, color, motion). */
  layers?: string[];
  /** TF.js backend (default 'auto', see tfBackend.ts). */
  backend?: TfBackendChoice;
}

export interface BuiltinExtractor extends FeatureExtractor {
  /** Channel names per returned layer, e.g. color: luminance, contrast, red_green, blue_yellow. */
  readonly channelNames: Record<string, string[]>;
  /**
   * Floating-point operations per frame of the ops the network runs (multiply-add = 2),
   * counted from the op shapes of a batch of one (motion filters that frame and its
   * predecessor, so larger batches need slightly fewer per frame).
   */
  readonly flopsPerFrame: number;
  /**
   * Forget the previous frame (after a seek or before another movie): the next batch to
   * start compares its first frame with itself, so its motion is 0.
   */
  reset(): void;
}

export async function createBuiltinExtractor(options: BuiltinOptions = {}): Promise<BuiltinExtractor> {
  const pooling = options.pooling ?? 'mean';
  if (pooling !== 'mean' && pooling !== 'max') {
    throw new SyncactError('CNN_BAD_SPEC', `unknown pooling '${String(pooling)}': use mean or max`);
  }
  const seed = options.seed ?? BUILTIN_DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new SyncactError('CNN_BAD_SPEC', `built-in model seed ${seed} is not an integer in 0…2³²−1`);
  }
  const tapped = (options.layers ?? [...LAYER_NAMES]) as HmaxLayer[];
  if (tapped.length === 0) throw new SyncactError('CNN_BAD_SPEC', 'the built-in model was asked for no layers');
  for (const name of tapped) {
    if (!LAYER_NAMES.includes(name)) {
      throw new SyncactError('CNN_LAYER_NOT_FOUND', `the built-in model has no layer '${name}'; its layers are ${LAYER_NAMES.join(', ')}`);
    }
  }
  if (new Set(tapped).size !== tapped.length) throw new SyncactError('CNN_BAD_SPEC', `a layer is named twice in ${tapped.join(', ')}`);
  const { backend } = await initTfBackend(options.backend ?? 'auto');

  const filters: HmaxFilters = createHmaxFilters();
  const prototypes = imprintPrototypes(filters, BUILTIN_PROTOTYPES, seed);
  const allNames = hmaxChannelNames(BUILTIN_PROTOTYPES);
  const channelNames = Object.fromEntries(tapped.map((l) => [l, allNames[l]]));
  const layers: LayerInfo[] = tapped.map((name) => ({ name, channels: allNames[name].length }));
  let previousGrey: tf.Tensor4D | null = null;
  let disposed = false;

  // FLOPs from one pass over a single blank frame (shapes, not values, decide them).
  const counter: FlopCounter = { flops: 0 };
  tf.tidy(() => {
    hmaxForward({ rgb: tf.zeros([1, HMAX_INPUT, HMAX_INPUT, 3]), previousGrey: null, filters, prototypes, pooling, flops: counter });
  });

  const run = async (batch: FrameBatch): Promise<LayerActivations[]> => {
    if (disposed) throw new SyncactError('ENGINE_NOT_FITTED', 'the built-in model was disposed; create a new one');
    validateFrameBatch(batch);
    const n = batch.frames.length;
    if (n === 0) return layers.map((l) => ({ layer: l.name, channels: l.channels, frames: 0, values: new Float32Array(0) }));
    const out = tf.tidy(() => {
      const rgb = preprocessToTensor(batch, BUILTIN_PREPROCESSING);
      const { layers: acts, lastGrey } = hmaxForward({ rgb, previousGrey, filters, prototypes, pooling });
      return { acts: tapped.map((l) => acts[l]), lastGrey };
    });
    previousGrey?.dispose();
    previousGrey = out.lastGrey;
    try {
      const values = await Promise.all(out.acts.map((t) => t.data() as Promise<Float32Array>));
      return layers.map((l, i) => ({ layer: l.name, channels: l.channels, frames: n, values: values[i] }));
    } finally {
      tf.dispose(out.acts);
    }
  };

  const forgetPreviousFrame = (): void => {
    previousGrey?.dispose();
    previousGrey = null;
  };
  const fingerprint = probeFingerprint(await run(probeBatch()));
  forgetPreviousFrame(); // the probe leaves no motion state behind

  let queue: Promise<unknown> = Promise.resolve();
  return {
    id: `${seed === BUILTIN_DEFAULT_SEED ? BUILTIN_ID : `${BUILTIN_ID}:seed=${seed}`}:${fingerprint}`,
    backend,
    preprocessing: BUILTIN_PREPROCESSING,
    layers,
    pooling,
    channelNames,
    flopsPerFrame: counter.flops,
    extract(batch: FrameBatch): Promise<LayerActivations[]> {
      const result = queue.then(() => run(batch));
      queue = result.catch(() => undefined);
      return result;
    },
    reset: forgetPreviousFrame,
    async dispose(): Promise<void> {
      await queue;
      if (disposed) return;
      disposed = true;
      previousGrey?.dispose();
      previousGrey = null;
      tf.dispose([...filters.s1, filters.even, filters.odd, prototypes]);
    },
  };
}

/** Two fixed frames (a coloured oblique grating, then the same shifted): every layer, motion included, responds. */
function probeBatch(): FrameBatch {
  const size = 64;
  const frame = (shift: number) => {
    const rgb = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const g = 0.5 + 0.5 * Math.sin(((x + shift) * 0.6 + y * 0.35));
        const i = (y * size + x) * 3;
        rgb[i] = Math.round(255 * g);
        rgb[i + 1] = Math.round(200 * (1 - g) + 30);
        rgb[i + 2] = Math.round(255 * (x / size));
      }
    }
    return rgb;
  };
  return { width: size, height: size, frames: [frame(0), frame(3)] };
}

/** First 12 hex digits of the sha256 of the probe's activations (all tapped layers, in order). */
function probeFingerprint(acts: LayerActivations[]): string {
  const hash = createHash('sha256');
  for (const a of acts) {
    hash.update(a.layer);
    hash.update(new Uint8Array(a.values.buffer, a.values.byteOffset, a.values.byteLength));
  }
  return hash.digest('hex').slice(0, 12);
}
