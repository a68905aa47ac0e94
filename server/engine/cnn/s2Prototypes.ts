/**
 * The S2 prototypes of the built-in model, chosen deterministically from a seed without any
 * file: Serre et al. (2007) imprint prototypes by cutting C1 patches out of natural images;
 * here the images are procedural stimuli — a grating, a bar, a cross and a corner (two
 * rays meeting) per pyramid level, with orientation, width or period, polarity and phase
 * drawn from the seed, scaled by the level so each is seen at its own scale. Each
 * prototype is the central 3×3×4 patch of C1 of its stimulus at its level, scaled to unit
 * norm. The same seed gives the same prototypes (up to the backend's float rounding).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../random.ts';
import { HMAX_INPUT, LEVELS, ORIENTATIONS_DEG, S2_PATCH, centreFrames, greyPyramid, s1c1, type HmaxFilters } from './hmax.ts';

export const STIMULUS_KINDS = ['grating', 'bar', 'cross', 'corner'] as const;
export type StimulusKind = (typeof STIMULUS_KINDS)[number];

export interface Stimulus {
  kind: StimulusKind;
  /** Pyramid level the prototype is cut from (its scale). */
  level: number;
  /** Grey image, HMAX_INPUT² row-major, values in [0, 1]. */
  pixels: Float32Array;
}

/** Background grey and pattern amplitude of the stimuli (the S2 similarity is contrast-invariant). */
const BACKGROUND = 0.5;
const AMPLITUDE = 0.3;

/** Distance of (x, y) from a line through the centre whose normal points at angle θ. */
const across = (x: number, y: number, theta: number) => x * Math.cos(theta) + y * Math.sin(theta);
const along = (x: number, y: number, theta: number) => -x * Math.sin(theta) + y * Math.cos(theta);

/** The stimulus of prototype k: kind k mod 4, level ⌊k/4⌋ mod 4, parameters from rng. */
export function prototypeStimulus(k: number, rng: Rng): Stimulus {
  const kind = STIMULUS_KINDS[k % STIMULUS_KINDS.length];
  const level = Math.floor(k / STIMULUS_KINDS.length) % LEVELS;
  const scale = 2 ** level;
  const theta = rng.uniform() * Math.PI;
  const polarity = rng.uniform() < 0.5 ? -1 : 1;
  const width = scale * (1.5 + 2.5 * rng.uniform());
  const period = scale * (4 + 6 * rng.uniform());
  const phase = 2 * Math.PI * rng.uniform();
  // Second arm of crosses and corners: 45° to 135° away from the first.
  const theta2 = theta + (Math.PI / 4) * (1 + 2 * rng.uniform());
  const n = HMAX_INPUT;
  const centre = (n - 1) / 2;
  const pixels = new Float32Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const dx = x - centre;
      const dy = y - centre;
      let v: number;
      switch (kind) {
        case 'grating':
          v = Math.cos((2 * Math.PI * across(dx, dy, theta)) / period + phase);
          break;
        case 'bar':
          v = Math.abs(across(dx, dy, theta)) < width / 2 ? 1 : 0;
          break;
        case 'cross':
          v = Math.abs(across(dx, dy, theta)) < width / 2 || Math.abs(across(dx, dy, theta2)) < width / 2 ? 1 : 0;
          break;
        case 'corner':
          // Two rays from the centre, along the bars' length directions.
          v =
            (Math.abs(across(dx, dy, theta)) < width / 2 && along(dx, dy, theta) >= 0) ||
            (Math.abs(across(dx, dy, theta2)) < width / 2 && along(dx, dy, theta2) >= 0)
              ? 1
              : 0;
          break;
      }
      pixels[y * n + x] = BACKGROUND + polarity * AMPLITUDE * v;
    }
  }
  return { kind, level, pixels };
}

/**
 * K unit-norm prototypes as a conv2d weight [3, 3, 4, K] (HWIO), imprinted from the stimuli
 * of `seed`. The caller owns the tensor.
 */
export function imprintPrototypes(filters: HmaxFilters, count: number, seed: number): tf.Tensor4D {
  const rng = createRng(seed);
  const stimuli = Array.from({ length: count }, (_, k) => prototypeStimulus(k, rng));
  const n = HMAX_INPUT;
  const o = ORIENTATIONS_DEG.length;
  const size = S2_PATCH * S2_PATCH * o;
  const weights = new Float32Array(size * count);
  const images = new Float32Array(count * n * n);
  stimuli.forEach((s, k) => images.set(s.pixels, k * n * n));
  const c1 = tf.tidy(() => s1c1(greyPyramid(centreFrames(tf.tensor4d(images, [count, n, n, 1]))), filters).c1);
  try {
    stimuli.forEach((s, k) => {
      const level = c1[s.level];
      const [, h, w] = level.shape;
      const top = Math.floor((h - S2_PATCH) / 2);
      const left = Math.floor((w - S2_PATCH) / 2);
      const patch = tf.tidy(() => tf.slice(level, [k, top, left, 0], [1, S2_PATCH, S2_PATCH, o]).dataSync());
      let norm = 0;
      for (const v of patch) norm += v * v;
      norm = Math.sqrt(norm);
      if (!(norm > 1e-6)) throw new Error(`S2 prototype ${k} (${s.kind}) imprinted a blank C1 patch`);
      // HWIO: patch is [h, w, o] row-major, the prototype index is the fastest axis.
      for (let i = 0; i < size; i++) weights[i * count + k] = patch[i] / norm;
    });
  } finally {
    tf.dispose(c1);
  }
  return tf.tensor4d(weights, [S2_PATCH, S2_PATCH, o, count]);
}
