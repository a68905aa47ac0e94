/**
 * The shared preprocessing of every CNN (built-in, TF.js, ONNX): RGB bytes → resized,
 * colour-ordered, normalised float32 input in the model's layout, as its `Preprocessing`
 * declares. Two twins with the same semantics: `preprocessToTensor` (TF.js ops, for the
 * built-in and TF.js models) and `preprocessToFloat32` (plain typed arrays, for ONNX
 * Runtime, which takes a Float32Array). Tests hold them equal and equal to a scipy reference.
 *
 * Conventions, chosen to match what models are trained with:
 * - resize uses half-pixel centres without antialiasing (TF2 `tf.image.resize`, PyTorch
 *   `interpolate(align_corners=False)`, OpenCV `INTER_LINEAR`): output pixel i samples the
 *   input at (i + 0.5)·in/out − 0.5, clamped at the edges. 'nearest' takes the input pixel
 *   floor((i + 0.5)·in/out) (TF's `halfPixelCenters`, PyTorch 'nearest-exact');
 * - the frame is stretched to the input size (no crop), so the whole frame is seen;
 * - 'bgr' swaps the channel order; the ImageNet mean/std follow the colour, not the
 *   position (blue is normalised with blue's statistics in either order);
 * - normalisation: 'imagenet' (x/255 − mean)/std, 'unit' x/255, 'symmetric' x/127.5 − 1,
 *   'none' x (0…255).
 * Resizing and normalising are both linear per channel, so their order does not change the
 * result beyond float rounding; resizing first touches fewer values when shrinking.
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
 * The frames as a float32 tensor the model takes: [N, H, W, 3] ('nhwc') or [N, 3, H, W]
 * ('nchw'), H×W the declared input size. The caller owns (and disposes) the result; call
 * it inside `tf.tidy` to have the intermediates freed with it.
 * @param batch RGB bytes, any size; validated (`CNN_BAD_FRAMES`).
 * @param p the model's declared preprocessing.
 */
export function preprocessToTensor(batch: FrameBatch, p: Preprocessing): tf.Tensor4D {
  validateFrameBatch(batch);
  validatePreprocessing(p);
  const { width: w, height: h, frames } = batch;
  const { scale, offset } = normalizationAffine(p.normalization);
  const n = frames.length;
  // Zero-size tensors crash some wasm kernels (transpose): an empty batch is made directly.
  if (n === 0) return tf.zeros(p.layout === 'nhwc' ? [0, p.height, p.width, 3] : [0, 3, p.height, p.width]);
  return tf.tidy(() => {
    const bytes = new Float32Array(n * w * h * 3);
    for (let i = 0; i < n; i++) bytes.set(frames[i], i * w * h * 3);
    let x: tf.Tensor4D = tf.tensor4d(bytes, [n, h, w, 3]);
    if (w !== p.width || h !== p.height) {
      x =
        p.resize === 'bilinear'
          ? tf.image.resizeBilinear(x, [p.height, p.width], false, true)
          : tf.image.resizeNearestNeighbor(x, [p.height, p.width], false, true);
    }
    // Normalise per colour (RGB positions), then reorder: statistics follow the colour.
    x = tf.add(tf.mul(x, tf.tensor1d(scale)), tf.tensor1d(offset));
    if (p.colorOrder === 'bgr') x = tf.reverse(x, 3);
    if (p.layout === 'nchw') x = tf.transpose(x, [0, 3, 1, 2]);
    return x;
  });
}

/**
 * Source taps of a half-pixel-centred 1-D resize: for output index i, the two input indices
 * and the weight of the second. 'nearest' gives the same index twice.
 */
function resizeTaps(inSize: number, outSize: number, mode: Preprocessing['resize']): { lo: Int32Array; hi: Int32Array; frac: Float32Array } {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float32Array(outSize);
  const ratio = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    if (mode === 'nearest') {
      lo[i] = hi[i] = Math.min(inSize - 1, Math.floor((i + 0.5) * ratio));
      continue;
    }
    const s = (i + 0.5) * ratio - 0.5;
    const f = Math.floor(s);
    lo[i] = Math.max(0, f);
    hi[i] = Math.min(inSize - 1, f + 1);
    // Left of the first centre both taps are pixel 0, so the weight does not matter.
    frac[i] = s - f;
  }
  return { lo, hi, frac };
}

/**
 * The same values as `preprocessToTensor`, in a plain Float32Array laid out as the model
 * takes them (N·H·W·3 for 'nhwc', N·3·H·W for 'nchw'), for ONNX Runtime.
 */
export function preprocessToFloat32(batch: FrameBatch, p: Preprocessing): Float32Array {
  validateFrameBatch(batch);
  validatePreprocessing(p);
  const { width: w, height: h, frames } = batch;
  const { width: W, height: H } = p;
  const { scale, offset } = normalizationAffine(p.normalization);
  const rows = resizeTaps(h, H, p.resize);
  const cols = resizeTaps(w, W, p.resize);
  const plane = H * W;
  const out = new Float32Array(frames.length * plane * 3);
  // dst position of colour c (RGB) after reordering.
  const slot = p.colorOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const nchw = p.layout === 'nchw';
  for (let n = 0; n < frames.length; n++) {
    const src = frames[n];
    const base = n * plane * 3;
    for (let y = 0; y < H; y++) {
      const r0 = rows.lo[y] * w * 3;
      const r1 = rows.hi[y] * w * 3;
      const fy = rows.frac[y];
      for (let x = 0; x < W; x++) {
        const c0 = cols.lo[x] * 3;
        const c1 = cols.hi[x] * 3;
        const fx = cols.frac[x];
        for (let c = 0; c < 3; c++) {
          // Same order of operations as TF's kernel: interpolate along x, then along y.
          const tl = src[r0 + c0 + c];
          const tr = src[r0 + c1 + c];
          const bl = src[r1 + c0 + c];
          const br = src[r1 + c1 + c];
          const top = tl + (tr - tl) * fx;
          const bottom = bl + (br - bl) * fx;
          const v = (top + (bottom - top) * fy) * scale[c] + offset[c];
          const k = slot[c];
          out[nchw ? base + k * plane + y * W + x : base + (y * W + x) * 3 + k] = v;
        }
      }
    }
  }
  return out;
}
