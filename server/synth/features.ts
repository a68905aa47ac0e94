/**
 * The movie's features over time: each one a slow, block-ish random course in [0, 1] (a
 * level held for a few seconds, edges softened over about a second), drawn independently
 * per feature so the courses are only weakly correlated and their HRF-convolved drives can
 * be told apart. The movie renders these values; the BOLD is built from them.
 */
import { createRng, type Rng } from '../engine/random.ts';
import { STREAM, subSeed } from './seed.ts';
import { driftRegressors, pickDecorrelated } from './decorrelate.ts';
import { featureDrive } from './drives.ts';

/**
 * The controlled features, in the order of truth.json:
 * - luminance: mean grey level of the frame;
 * - contrast: amplitude of a static checkerboard;
 * - grating_0: amplitude of a grating whose bars are vertical (luminance varies along x);
 * - grating_90: amplitude of a grating whose bars are horizontal (varies along y);
 * - colour_rg: red–green balance (0 green, 0.5 neutral, 1 red);
 * - motion: drift speed of both gratings (0 still, 1 the preset's top speed).
 */
export const FEATURE_NAMES = ['luminance', 'contrast', 'grating_0', 'grating_90', 'colour_rg', 'motion'] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Edges of the blocks are smoothed by a Gaussian of this σ (seconds). */
const SMOOTH_SECONDS = 0.5;

/**
 * A slow random course sampled every `dt` seconds: levels uniform in [0, 1], each held for
 * a duration uniform in `blockSeconds`, then smoothed (edge samples repeated), so it stays
 * in [0, 1].
 */
export function slowCourse(rng: Rng, n: number, dt: number, blockSeconds: [number, number]): Float64Array {
  const raw = new Float64Array(n);
  let i = 0;
  while (i < n) {
    const level = rng.uniform();
    const seconds = blockSeconds[0] + (blockSeconds[1] - blockSeconds[0]) * rng.uniform();
    const len = Math.max(1, Math.round(seconds / dt));
    for (let j = 0; j < len && i < n; j++) raw[i++] = level;
  }
  const sigma = SMOOTH_SECONDS / dt;
  const half = Math.ceil(3 * sigma);
  const kernel = new Float64Array(2 * half + 1);
  let ksum = 0;
  for (let j = -half; j <= half; j++) ksum += kernel[j + half] = Math.exp(-(j * j) / (2 * sigma * sigma));
  const out = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    let s = 0;
    for (let j = -half; j <= half; j++) s += kernel[j + half] * raw[Math.min(n - 1, Math.max(0, t + j))];
    out[t] = s / ksum;
  }
  return out;
}

export interface FeatureTimeline {
  /** Seconds between course samples (the microtime bin, TR / bins). */
  dt: number;
  /** Per feature, the course every dt seconds from 0 to the end of the run (inclusive). */
  courses: Float64Array[];
  /** Per feature, the value rendered in frame i (shown from i/fps until the next frame). */
  perFrame: Float64Array[];
  /** Per feature, the standardized HRF-convolved drive per TR (drives.ts). */
  drives: Float64Array[];
  /** Per feature, which draw of its seed stream was kept, and its worst |r| (decorrelate.ts). */
  attempts: number[];
  maxAbsR: number[];
}

export interface FeatureTimelineOptions {
  seed: number;
  tr: number;
  nVolumes: number;
  microtimeBins: number;
  fps: number;
  frameCount: number;
  blockSeconds: [number, number];
  /** Largest |r| allowed between drives, and with the drift shapes. */
  maxAbsR: number;
  maxAttempts: number;
}

/** Per-frame values of a course sampled every dt seconds (linear interpolation at i/fps). */
export function courseToFrames(course: Float64Array, dt: number, fps: number, frameCount: number): Float64Array {
  const n = course.length;
  const values = new Float64Array(frameCount);
  for (let i = 0; i < frameCount; i++) {
    const u = Math.min(n - 1, i / fps / dt);
    const j = Math.min(n - 2, Math.floor(u));
    const w = u - j;
    values[i] = (1 - w) * course[j] + w * course[j + 1];
  }
  return values;
}

/**
 * The feature courses of a session, their per-frame values and drives. Feature f's draw a
 * uses seed stream (features, f·65536 + a); draws are redrawn until the drive is weakly
 * correlated with the earlier features' drives and the drift shapes.
 */
export function featureTimeline(o: FeatureTimelineOptions): FeatureTimeline {
  const dt = o.tr / o.microtimeBins;
  const n = o.nVolumes * o.microtimeBins + 1;
  const timing = { tr: o.tr, nVolumes: o.nVolumes, microtimeBins: o.microtimeBins };
  const avoid = driftRegressors(o.nVolumes);
  const out: FeatureTimeline = { dt, courses: [], perFrame: [], drives: [], attempts: [], maxAbsR: [] };
  FEATURE_NAMES.forEach((_, f) => {
    const picked = pickDecorrelated(
      (attempt) => {
        const course = slowCourse(createRng(subSeed(o.seed, STREAM.features, f * 65536 + attempt)), n, dt, o.blockSeconds);
        const perFrame = courseToFrames(course, dt, o.fps, o.frameCount);
        return { value: { course, perFrame }, signal: featureDrive(perFrame, o.fps, timing) };
      },
      avoid,
      o.maxAbsR,
      o.maxAttempts,
    );
    out.courses.push(picked.value.course);
    out.perFrame.push(picked.value.perFrame);
    out.drives.push(picked.signal);
    out.attempts.push(picked.attempt);
    out.maxAbsR.push(picked.maxAbsR);
    avoid.push(picked.signal);
  });
  return out;
}
