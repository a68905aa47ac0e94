/**
 * The one interface every CNN goes through (built-in, TF.js, ONNX): a batch of RGB frames
 * in, per tapped layer a (frames × channels) matrix of pooled activations out. Each
 * channel of a tapped layer is one "unit" of the Sync-ACT analysis.
 */

/** RGB frames, 8 bits per channel, interleaved (r,g,b), row-major, all the same size. */
export interface FrameBatch {
  width: number;
  height: number;
  /** One Uint8Array of width*height*3 per frame. */
  frames: Uint8Array[];
}

export type Pooling = 'mean' | 'max';

/** How a model wants its input: declared per model, applied by the shared preprocessing. */
export interface Preprocessing {
  /** Input size the network takes (frames are resized to it). */
  width: number;
  height: number;
  resize: 'bilinear' | 'nearest';
  colorOrder: 'rgb' | 'bgr';
  /** 'imagenet': (x/255 − mean)/std with the ImageNet mean/std; 'unit': x/255; 'symmetric': x/127.5 − 1. */
  normalization: 'imagenet' | 'unit' | 'symmetric' | 'none';
  /** Tensor layout the model takes. */
  layout: 'nhwc' | 'nchw';
}

export interface LayerInfo {
  name: string;
  channels: number;
}

export interface LayerActivations {
  layer: string;
  channels: number;
  frames: number;
  /** frames × channels, row-major (frame-major). */
  values: Float32Array;
}

export interface FeatureExtractor {
  /** Stable identity used in cache keys, e.g. "builtin:hmax-v1:<fingerprint>" or "onnx:<sha256>". */
  readonly id: string;
  /** Which backend runs it, e.g. "tfjs-wasm-simd", "tfjs-cpu", "tfjs-node", "onnxruntime-cpu". */
  readonly backend: string;
  readonly preprocessing: Preprocessing;
  readonly layers: LayerInfo[];
  readonly pooling: Pooling;
  extract(batch: FrameBatch): Promise<LayerActivations[]>;
  dispose(): Promise<void>;
}
