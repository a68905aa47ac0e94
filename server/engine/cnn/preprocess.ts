/**
 * The shared preprocessing of every CNN (built-in, TF.js, ONNX): RGB bytes → resized,
 * colour-ordered, normalised float32 input in the model's layout, as its `Preprocessing`
 * declares. `preprocessToFloat32` gives a plain Float32Array (ONNX Runtime takes one);
 * `preprocessToTensor` gives the same values as a TF.js tensor (built-in and TF.js models).
 *
 * Conventions, chosen to match how models are trained:
 * - 'bilinear' is Pillow's BILINEAR (what torchvision's Resize does, on PIL images and, with
 *   its default antialias, on tensors): a triangle filter centred on the half-pixel
 *   position (i + 0.5)·in/out, stretched by the reduction factor when shrinking so that
 *   every input pixel contributes (antialiasing: a 1920-px frame shrunk to 128 px does not
 *   alias its fine detail into coarse, flickering patterns); enlarging it is plain
 *   half-pixel bilinear (TF2 `tf.image.resize`, PyTorch `align_corners=False`) with edges
 *   replicated. 'nearest' takes input pixel floor((i + 0.5)·in/out) (Pillow NEAREST, TF's
 *   `halfPixelCenters`, PyTorch 'nearest-exact');
 * - the frame is stretched to the input size (no crop), so the whole frame is seen;
 * - 'bgr' swaps the channel order; the ImageNet mean/std follow the colour, not the
 *   position (blue is normalised with blue's statistics in either order);
 * - normalisation: 'imagenet' (x/255 − mean)/std, 'unit' x/255, 'symmetric' x/127.5 − 1,
 *   'none' x (0…255).
 * The resize runs in JavaScript straight from the bytes, separably (rows, then columns),
 * never making a float copy of the full-size frame. TF.js has no antialiased resize; its
 * plain bilinear on uploaded frames was no faster (1920×1080 → 128, batch of 8, wasm:
 * ~125 ms vs ~105 ms here with antialiasing; 128 → 128: 6.7 vs 4.0 ms). Both outputs
 * therefore come from this one resampler and are identical by construction.
 * Tests hold the resize to Pillow's and scipy's.
 */
import * as tf from '@tensorflow/tfjs';
import { SyncactError } from '../../errors.ts';
import type { FrameBatch, Preprocessing } from './extractor.ts';

/** ImageNet statistics in RGB order, on the 0…1 scale (torchvision / Keras 'torch' mode). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * Per colour (R, G, B) the affine map v = x·scale + offset from bytes 0…255 to the model's
 * values, for a normalisation preset.
 */
export function normalizationAffine(normalization: Preprocessing['normalization']): { scale: number[]; offset: number[] } {
  switch (normalization) {
    case 'imagenet':
      return {
        scale: IMAGENET_STD.map((s) => 1 / (255 * s)),
        offset: IMAGENET_MEAN.map((m, c) => -m / IMAGENET_STD[c]),
      };
    case 'unit':
      return { scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] };
    case 'symmetric':
      return { scale: [1 / 127.5, 1 / 127.5, 1 / 127.5], offset: [-1, -1, -1] };
    case 'none':
      return { scale: [1, 1, 1], offset: [0, 0, 0] };
    default:
      throw new SyncactError('CNN_BAD_SPEC', `unknown normalization '${String(normalization)}': use imagenet, unit, symmetric or none`);
  }
}

/** Checks a batch before any work: sizes are positive integers and every frame has w·h·3 bytes. */
export function validateFrameBatch(batch: FrameBatch): void {
  const { width, height, frames } = batch;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new SyncactError('CNN_BAD_FRAMES', `frame size ${width}×${height} is not a positive integer size`);
  }
  const want = width * height * 3;
  frames.forEach((f, i) => {
    if (!(f instanceof Uint8Array) || f.length !== want) {
      const got = f instanceof Uint8Array ? `${f.length} bytes` : 'not a Uint8Array';
      throw new SyncactError('CNN_BAD_FRAMES', `frame ${i} has ${got}; a ${width}×${height} RGB frame has ${want}`);
    }
  });
}

function validatePreprocessing(p: Preprocessing): void {
  if (!Number.isInteger(p.width) || !Number.isInteger(p.height) || p.width < 1 || p.height < 1) {
    throw new SyncactError('CNN_BAD_SPEC', `input size ${p.width}×${p.height} is not a positive integer size`);
  }
  if (p.resize !== 'bilinear' && p.resize !== 'nearest') {
    throw new SyncactError('CNN_BAD_SPEC', `unknown resize '${String(p.resize)}': use bilinear or nearest`);
  }
  if (p.colorOrder !== 'rgb' && p.colorOrder !== 'bgr') {
    throw new SyncactError('CNN_BAD_SPEC', `unknown colour order '${String(p.colorOrder)}': use rgb or bgr`);
  }
  if (p.layout !== 'nhwc' && p.layout !== 'nchw') {
    throw new SyncactError('CNN_BAD_SPEC', `unknown layout '${String(p.layout)}': use nhwc or nchw`);
  }
}

/**
 * One axis of a separable resize: output i is Σ_k weights[i·taps + k] · input[first[i] + k]
 * over k < count[i]. Follows Pillow's `precompute_coeffs` (Resample.c) for BILINEAR.
 */
interface AxisFilter {
  first: Int32Array;
  count: Int32Array;
  taps: number;
  weights: Float64Array;
}

function axisFilter(inSize: number, outSize: number, mode: Preprocessing['resize']): AxisFilter {
  const scale = inSize / outSize;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  if (mode === 'nearest') {
    for (let i = 0; i < outSize; i++) {
      first[i] = Math.min(inSize - 1, Math.floor((i + 0.5) * scale));
      count[i] = 1;
    }
    return { first, count, taps: 1, weights: new Float64Array(outSize).fill(1) };
  }
  // Triangle filter of support 1, stretched by the reduction factor when shrinking.
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const weights = new Float64Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + support + 0.5));
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const w = Math.max(0, 1 - Math.abs((x - centre + 0.5) / filterScale));
      weights[i * taps + (x - lo)] = w;
      sum += w;
    }
    for (let k = 0; k < hi - lo; k++) weights[i * taps + k] /= sum;
    first[i] = lo;
    count[i] = hi - lo;
  }
  return { first, count, taps, weights };
}

/**
 * The frames in a plain Float32Array laid out as the model takes them (N·H·W·3 for 'nhwc',
 * N·3·H·W for 'nchw'), H×W the declared input size.
 * @param batch RGB bytes, any size; validated (`CNN_BAD_FRAMES`).
 * @param p the model's declared preprocessing (`CNN_BAD_SPEC` when malformed).
 */
export function preprocessToFloat32(batch: FrameBatch, p: Preprocessing): Float32Array {
  validateFrameBatch(batch);
  validatePreprocessing(p);
  const { width: w, height: h, frames } = batch;
  const { width: W, height: H } = p;
  const { scale, offset } = normalizationAffine(p.normalization);
  const cols = axisFilter(w, W, p.resize);
  const rows = axisFilter(h, H, p.resize);
  const plane = H * W;
  const out = new Float32Array(frames.length * plane * 3);
  // Rows resized first (h × W × 3), as Pillow does; float32 in between, as Pillow's 'F' images.
  const tmp = new Float32Array(h * W * 3);
  // Where colour c (R, G, B) of a pixel goes, after reordering, in either layout.
  const slot = p.colorOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const nchw = p.layout === 'nchw';
  const pixelStride = nchw ? 1 : 3;
  const channelOffset = slot.map((s) => (nchw ? s * plane : s));
  for (let n = 0; n < frames.length; n++) {
    const src = frames[n];
    for (let y = 0; y < h; y++) {
      const row = y * w * 3;
      for (let x = 0; x < W; x++) {
        const f = cols.first[x] * 3;
        const k0 = x * cols.taps;
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = 0; k < cols.count[x]; k++) {
          const wk = cols.weights[k0 + k];
          const q = row + f + 3 * k;
          r += wk * src[q];
          g += wk * src[q + 1];
          b += wk * src[q + 2];
        }
        const t = (y * W + x) * 3;
        tmp[t] = r;
        tmp[t + 1] = g;
        tmp[t + 2] = b;
      }
    }
    const base = n * plane * 3;
    for (let y = 0; y < H; y++) {
      const f = rows.first[y];
      const k0 = y * rows.taps;
      for (let x = 0; x < W; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = 0; k < rows.count[y]; k++) {
          const wk = rows.weights[k0 + k];
          const q = ((f + k) * W + x) * 3;
          r += wk * tmp[q];
          g += wk * tmp[q + 1];
          b += wk * tmp[q + 2];
        }
        // Pillow stores the resized pixel as float32 before anything else touches it.
        const at = base + (y * W + x) * pixelStride;
        out[at + channelOffset[0]] = Math.fround(r) * scale[0] + offset[0];
        out[at + channelOffset[1]] = Math.fround(g) * scale[1] + offset[1];
        out[at + channelOffset[2]] = Math.fround(b) * scale[2] + offset[2];
      }
    }
  }
  return out;
}

/**
 * The same values as `preprocessToFloat32` as a float32 tensor: [N, H, W, 3] ('nhwc') or
 * [N, 3, H, W] ('nchw'). The caller owns (and disposes) it.
 */
export function preprocessToTensor(batch: FrameBatch, p: Preprocessing): tf.Tensor4D {
  const values = preprocessToFloat32(batch, p);
  const n = batch.frames.length;
  return tf.tensor4d(values, p.layout === 'nhwc' ? [n, p.height, p.width, 3] : [n, 3, p.height, p.width]);
}
