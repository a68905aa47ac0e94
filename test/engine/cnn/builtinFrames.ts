/**
 * Test frames for the built-in model: gratings drawn here, and frames of the synthetic
 * movie (server/synth/movie.ts) with chosen feature values, so the tests check the units
 * against exactly what the demo's movie varies.
 */
import { FEATURE_NAMES, type FeatureName } from '../../../server/synth/features.ts';
import { proceduralMovie } from '../../../server/synth/movie.ts';

export const SIZE = 128;

/**
 * A grey sinusoidal grating: luminance lum + amp·sin(2π·(x cosθ + y sinθ)/period + phase),
 * θ the direction across the bars (0° vertical bars, 90° horizontal, y down).
 */
export function grating(thetaDeg: number, period: number, o: { phase?: number; amp?: number; lum?: number; size?: number } = {}): Uint8Array {
  const { phase = 0.3, amp = 0.1, lum = 0.5, size = SIZE } = o;
  const th = (thetaDeg * Math.PI) / 180;
  const f = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = lum + amp * Math.sin((2 * Math.PI * (x * Math.cos(th) + y * Math.sin(th))) / period + phase);
      f.fill(Math.round(Math.max(0, Math.min(1, v)) * 255), (y * size + x) * 3, (y * size + x) * 3 + 3);
    }
  }
  return f;
}

/**
 * Frames of the synthetic movie (demo preset geometry: 128×128 at 24 fps) whose features
 * hold the given values on every frame (unnamed features 0; colour_rg 0.5 = neutral).
 */
export function movieFrames(count: number, features: Partial<Record<FeatureName, number>>, fps = 24): Uint8Array[] {
  const perFrame = FEATURE_NAMES.map((name) => new Float64Array(count).fill(features[name] ?? (name === 'colour_rg' ? 0.5 : 0)));
  const movie = proceduralMovie({ fps, width: SIZE, height: SIZE, frameCount: count, perFrame });
  return Array.from({ length: count }, (_, i) => movie.frame(i));
}

export const batch = (frames: Uint8Array[], size = SIZE) => ({ width: size, height: size, frames });
