/**
 * The built-in model's network, in TF.js ops: an HMAX hierarchy (Riesenhuber & Poggio 1999;
 * Serre et al. 2007) plus colour-opponent, luminance/contrast and motion-energy channels.
 * builtin.ts wraps it as a FeatureExtractor; s2Prototypes.ts makes its S2 prototypes.
 *
 * Input: RGB in [0, 1], [N, 128, 128, 3]. Grey = mean of R, G, B (equal weights, so a
 * red–green shift that keeps R + G fixed leaves grey unchanged and the colour and
 * luminance units stay separate). The form units (s1 … c2), contrast and motion see grey
 * minus the frame's mean grey: luminance is its own unit, not a hidden factor in the others
 * (and the zero padding of the 'same' convolutions is then no luminance edge).
 * Layers, each channel one unit:
 * - s1  |conv| of centred grey with even Gabors (gabor.ts) at 4 orientations × 2 sizes
 *       (7 and 11 px, λ 3.5 and 5.6 px) on a 4-level image pyramid (128, 64, 32, 16 px; 2×2
 *       box averaging), so 8 spatial-frequency bands with periods 3.5 … 45 px at input
 *       resolution. 32 channels, level-major then size then orientation.
 * - c1  max over the two sizes of a level (adjacent scales) and over 4×4 positions
 *       (stride 2): 16 channels, level-major then orientation.
 * - s2  per level, the similarity of every 3×3×4 C1 patch to each of 16 prototypes, as the
 *       normalised dot product X·P / (‖X‖‖P‖) (Kouh & Poggio 2008 show it is the
 *       contrast-invariant form of the Gaussian tuning exp(−β‖X − P‖²) of Serre et al.),
 *       with a semi-saturation constant so blank patches give 0:
 *       16 prototypes × 4 levels = 64 channels, level-major.
 * - c2  per prototype the max of its S2 over all positions and levels: 16 channels. C2 is a
 *       global max by definition, so the extractor's pooling does not change it.
 * - color  luminance (grey), local RMS contrast (std of grey in 16×16 windows, stride 8),
 *       red−green (R − G) and blue−yellow (B − (R + G)/2): 4 channels.
 * - motion  frame-difference energy (g_t − g_{t−1})² of centred grey g at 128 px (a global
 *       luminance change is not motion), then opponent motion
 *       energy per orientation at the 32 px level: with even/odd Gabor responses e, o of a
 *       quadrature pair (size 11), D = o_t·e_{t−1} − e_t·o_{t−1} = Im(z_t · conj z_{t−1}),
 *       which for a drifting pattern is |z|²·sin(k·shift): positive for motion along +θ
 *       (the filter's wave vector), negative against it (the two-frame form of Adelson &
 *       Bergen 1985 energy). Divided by the local energy of its orientation (Heeger 1992
 *       normalisation) so it codes direction and speed, not contrast², and rectified into
 *       two channels per orientation:
 *       energy, 0°+, 0°−, 45°+, 45°−, 90°+, 90°−, 135°+, 135°− (9 channels).
 *       Motion needs the previous frame; the first frame of a run (after creation or reset())
 *       is compared with itself (0).
 */
import * as tf from '@tensorflow/tfjs';
import type { Pooling } from './extractor.ts';
import { filterBank, gaborKernel, serreGabor } from './gabor.ts';

export const HMAX_INPUT = 128;
export const ORIENTATIONS_DEG = [0, 45, 90, 135] as const;
export const S1_SIZES = [7, 11] as const;
export const LEVELS = 4;
/** Size of the motion quadrature Gabors. */
const MOTION_SIZE = 11;
const C1_POOL = 4;
const C1_STRIDE = 2;
export const S2_PATCH = 3;
/** Pyramid level of the opponent motion energy (32 px: the movie's 2 px/frame drift is ½ px). */
const MOTION_LEVEL = 2;
/**
 * Semi-saturation constant of the motion normalisation, in squared quadrature-filter units:
 * the oriented energy of a grating of amplitude ≈ 0.007 (2 grey levels) at the motion scale.
 */
const MOTION_SIGMA2 = 1e-3;
const CONTRAST_WINDOW = 16;
const CONTRAST_STRIDE = 8;
/**
 * Semi-saturation of the S2 normalisation, in units of the C1 patch norm ‖X‖: S2 =
 * X·P / √(‖X‖² + ε²), the cosine for patches of clear contrast, falling to 0 on blank ones
 * instead of amplifying float noise. A grating of amplitude 0.01 (2.5 grey levels) gives
 * ‖X‖ ≈ 0.15; the synthetic movie's patterns (amplitude ≤ 0.1) up to ≈ 1.5.
 */
const S2_EPSILON = 0.05;

export const LAYER_NAMES = ['s1', 'c1', 's2', 'c2', 'color', 'motion'] as const;
export type HmaxLayer = (typeof LAYER_NAMES)[number];

/** Counts the floating-point operations of the ops run (multiply-adds count 2). */
export interface FlopCounter {
  flops: number;
}

/** The fixed filters: S1 even Gabors (sizes × orientations) and the motion quadrature pair. */
export interface HmaxFilters {
  /** Per S1 size (7, 11), [size, size, 1, 4]: the 4 orientations. */
  s1: tf.Tensor4D[];
  /** The motion quadrature pair, size 11, [11, 11, 1, 4] each: even (cosine) and odd (sine). */
  even: tf.Tensor4D;
  odd: tf.Tensor4D;
}

const rad = (deg: number) => (deg * Math.PI) / 180;

export function createHmaxFilters(): HmaxFilters {
  const s1 = S1_SIZES.map((size) => {
    const bank = ORIENTATIONS_DEG.map((o) => ({ size, values: gaborKernel(serreGabor(size, rad(o))) }));
    return tf.tensor4d(filterBank(bank, size), [size, size, 1, bank.length]);
  });
  const [even, odd] = [0, -Math.PI / 2].map((phase) => {
    const bank = ORIENTATIONS_DEG.map((o) => ({ size: MOTION_SIZE, values: gaborKernel(serreGabor(MOTION_SIZE, rad(o), phase)) }));
    return tf.tensor4d(filterBank(bank, MOTION_SIZE), [MOTION_SIZE, MOTION_SIZE, 1, bank.length]);
  });
  return { s1, even, odd };
}

/** Channel names per layer, in output order. */
export function hmaxChannelNames(prototypes: number): Record<HmaxLayer, string[]> {
  const levels = Array.from({ length: LEVELS }, (_, l) => `L${l}`);
  const deg = ORIENTATIONS_DEG.map((o) => `${o}deg`);
  return {
    s1: levels.flatMap((l) => S1_SIZES.flatMap((s) => deg.map((d) => `${l}/s${s}/${d}`))),
    c1: levels.flatMap((l) => deg.map((d) => `${l}/${d}`)),
    s2: levels.flatMap((l) => Array.from({ length: prototypes }, (_, k) => `${l}/p${k}`)),
    c2: Array.from({ length: prototypes }, (_, k) => `p${k}`),
    color: ['luminance', 'contrast', 'red_green', 'blue_yellow'],
    motion: ['energy', ...deg.flatMap((d) => [`${d}+`, `${d}-`])],
  };
}

// Op wrappers that also count FLOPs from the shapes they see.
function conv(x: tf.Tensor4D, w: tf.Tensor4D, pad: 'valid' | 'same', c?: FlopCounter): tf.Tensor4D {
  const y = tf.conv2d(x, w, 1, pad);
  if (c) c.flops += 2 * y.size * w.shape[0] * w.shape[1] * w.shape[2];
  return y;
}
function pool(kind: 'max' | 'avg', x: tf.Tensor4D, k: number, s: number, pad: 'valid' | 'same', c?: FlopCounter): tf.Tensor4D {
  const y = kind === 'max' ? tf.maxPool(x, k, s, pad) : tf.avgPool(x, k, s, pad);
  if (c) c.flops += y.size * k * k;
  return y;
}
function ew<T extends tf.Tensor>(y: T, opsPerElement: number, c?: FlopCounter): T {
  if (c) c.flops += y.size * opsPerElement;
  return y;
}

/** Spatial mean or max of each channel: [N, h, w, C] → [N, C]. */
function spatial(x: tf.Tensor4D, pooling: Pooling, c?: FlopCounter): tf.Tensor2D {
  if (c) c.flops += x.size;
  return pooling === 'max' ? tf.max(x, [1, 2]) : tf.mean(x, [1, 2]);
}

/** Grey (mean of R, G, B), [N, H, W, 1], as a 1×1 convolution (faster than a channel mean in wasm). */
export function toGrey(rgb: tf.Tensor4D, c?: FlopCounter): tf.Tensor4D {
  return conv(rgb, tf.tensor4d([1 / 3, 1 / 3, 1 / 3], [1, 1, 3, 1]), 'valid', c);
}

/**
 * Grey minus each frame's mean grey: what S1, contrast and motion see (luminance is not
 * structure). Two passes: the float32 running sum of a 128×128 mean is off by up to ~1e-4
 * of the grey level, a uniform residue that the zero padding turns into border edges and the
 * normalised S2 would amplify; the mean of the residue removes it.
 */
export function centreFrames(grey: tf.Tensor4D, c?: FlopCounter): tf.Tensor4D {
  const once = ew(tf.sub(grey, tf.mean(grey, [1, 2, 3], true)) as tf.Tensor4D, 2, c);
  return ew(tf.sub(once, tf.mean(once, [1, 2, 3], true)) as tf.Tensor4D, 2, c);
}

/** The grey image and its 2×2 box-averaged reductions, finest first. */
export function greyPyramid(grey: tf.Tensor4D, c?: FlopCounter): tf.Tensor4D[] {
  const levels = [grey];
  for (let l = 1; l < LEVELS; l++) levels.push(pool('avg', levels[l - 1], 2, 2, 'valid', c));
  return levels;
}

/**
 * S1 (|even Gabor|, per size a [N, h, w, 4] map) and C1 (4 orientations) at every level of
 * a pyramid of mean-centred grey. 'same' convolutions, so both sizes have the same centres;
 * the zero padding equals the frame's mean grey, so the border is no edge of luminance.
 */
export function s1c1(pyramid: tf.Tensor4D[], f: HmaxFilters, c?: FlopCounter): { s1: tf.Tensor4D[][]; c1: tf.Tensor4D[] } {
  const s1: tf.Tensor4D[][] = [];
  const c1: tf.Tensor4D[] = [];
  for (const g of pyramid) {
    const maps = f.s1.map((k) => ew(tf.abs(conv(g, k, 'same', c)), 1, c));
    // C1: max over the adjacent sizes, then over positions.
    const band = maps.slice(1).reduce((a, b) => ew(tf.maximum(a, b), 1, c), maps[0]);
    s1.push(maps);
    c1.push(pool('max', band, C1_POOL, C1_STRIDE, 'same', c));
  }
  return { s1, c1 };
}

/** S2 maps of one C1 level: normalised dot product with each unit-norm prototype (see S2_EPSILON). */
function s2Level(c1: tf.Tensor4D, prototypes: tf.Tensor4D, ones: tf.Tensor4D, c?: FlopCounter): tf.Tensor4D {
  const dot = conv(c1, prototypes, 'valid', c);
  const energy = conv(ew(tf.square(c1), 1, c), ones, 'valid', c);
  const norm = ew(tf.sqrt(tf.add(energy, S2_EPSILON * S2_EPSILON)), 2, c);
  return ew(tf.div(dot, norm), 1, c);
}

/** Colour-opponent and luminance/contrast maps pooled: [N, 4]. */
function colorChannels(rgb: tf.Tensor4D, grey: tf.Tensor4D, centred: tf.Tensor4D, pooling: Pooling, c?: FlopCounter): tf.Tensor2D {
  // Centred frames, so E[x²] − E[x]² does not cancel catastrophically in float32.
  const m = pool('avg', centred, CONTRAST_WINDOW, CONTRAST_STRIDE, 'valid', c);
  const m2 = pool('avg', ew(tf.square(centred) as tf.Tensor4D, 1, c), CONTRAST_WINDOW, CONTRAST_STRIDE, 'valid', c);
  const std = ew(tf.sqrt(tf.relu(tf.sub(m2, tf.square(m)))) as tf.Tensor4D, 4, c);
  const opponent = conv(rgb, tf.tensor4d([1, -0.5, -1, -0.5, 0, 1], [1, 1, 3, 2]), 'valid', c);
  return tf.concat([spatial(grey, pooling, c), spatial(std, pooling, c), spatial(opponent, pooling, c)], 1);
}

/**
 * Motion channels [N, 9] for frames grey[0..N−1], each compared with the one before it;
 * `previous` is the frame before grey[0] ([1, H, W, 1]), or null to compare grey[0] with itself.
 */
function motionChannels(grey: tf.Tensor4D, previous: tf.Tensor4D | null, f: HmaxFilters, pooling: Pooling, c?: FlopCounter): tf.Tensor2D {
  const n = grey.shape[0];
  const all = tf.concat([previous ?? tf.slice(grey, 0, 1), grey], 0);
  const before = tf.slice(all, 0, n);
  const diff = ew(tf.square(tf.sub(grey, before)) as tf.Tensor4D, 2, c);
  // Level MOTION_LEVEL of the pyramid, for all N + 1 frames.
  let coarse = all;
  for (let l = 0; l < MOTION_LEVEL; l++) coarse = pool('avg', coarse, 2, 2, 'valid', c);
  const even = conv(coarse, f.even, 'valid', c);
  const odd = conv(coarse, f.odd, 'valid', c);
  const [, h, w, k] = even.shape;
  const eNow = tf.slice(even, 1, n);
  const oNow = tf.slice(odd, 1, n);
  const ePrev = tf.slice(even, 0, n);
  const oPrev = tf.slice(odd, 0, n);
  const d = ew(tf.sub(tf.mul(oNow, ePrev), tf.mul(eNow, oPrev)), 3, c);
  // Divisive normalisation (Heeger 1992) by the local energy of the same orientation in both
  // frames, so the units code direction and speed (≈ sin of the phase step) rather than
  // contrast². Pooling the normaliser over orientations would make each unit code its
  // orientation's share of the energy instead (cross-orientation suppression).
  const energy = ew(tf.add(tf.square(even), tf.square(odd)), 3, c);
  const norm = ew(tf.add(tf.mul(tf.add(tf.slice(energy, 1, n), tf.slice(energy, 0, n)), 0.5), MOTION_SIGMA2), 3, c);
  const dn = ew(tf.div(d, norm), 1, c);
  // [.., orientation, (+, −)] flattened: 0°+, 0°−, 45°+, …
  const split = ew(tf.reshape(tf.stack([tf.relu(dn), tf.relu(tf.neg(dn))], 4), [n, h, w, 2 * k]) as tf.Tensor4D, 2, c);
  return tf.concat([spatial(diff, pooling, c), spatial(split, pooling, c)], 1);
}

export interface HmaxInputs {
  /** RGB in [0, 1], [N, 128, 128, 3], N ≥ 1. */
  rgb: tf.Tensor4D;
  /** Centred grey of the frame before rgb[0], [1, 128, 128, 1] (the previous call's lastGrey), or null (first frame of a run). */
  previousGrey: tf.Tensor4D | null;
  filters: HmaxFilters;
  /** Unit-norm S2 prototypes, [3, 3, 4, K]. */
  prototypes: tf.Tensor4D;
  pooling: Pooling;
  /** When given, the FLOPs of the ops run are added to it. */
  flops?: FlopCounter;
}

/**
 * One pass over a batch: per layer the pooled [N, C] activations, and the centred grey of the
 * last frame (the next batch's `previousGrey`). Run it inside `tf.tidy`.
 */
export function hmaxForward(x: HmaxInputs): { layers: Record<HmaxLayer, tf.Tensor2D>; lastGrey: tf.Tensor4D } {
  const { rgb, filters, prototypes, pooling, flops: c } = x;
  const n = rgb.shape[0];
  const grey = toGrey(rgb, c);
  const centred = centreFrames(grey, c);
  const { s1, c1 } = s1c1(greyPyramid(centred, c), filters, c);
  const ones = tf.ones([S2_PATCH, S2_PATCH, ORIENTATIONS_DEG.length, 1]) as tf.Tensor4D;
  const s2 = c1.map((level) => s2Level(level, prototypes, ones, c));
  const s2Max = s2.map((m) => tf.max(m, [1, 2]) as tf.Tensor2D);
  const layers: Record<HmaxLayer, tf.Tensor2D> = {
    s1: tf.concat(s1.flatMap((sizes) => sizes.map((m) => spatial(m, pooling, c))), 1),
    c1: tf.concat(c1.map((m) => spatial(m, pooling, c)), 1),
    s2: tf.concat(s2.map((m) => spatial(m, pooling, c)), 1),
    c2: ew(tf.max(tf.stack(s2Max, 0), 0) as tf.Tensor2D, s2Max.length, c),
    color: colorChannels(rgb, grey, centred, pooling, c),
    motion: motionChannels(centred, x.previousGrey, filters, pooling, c),
  };
  return { layers, lastGrey: tf.slice(centred, n - 1, 1) };
}
