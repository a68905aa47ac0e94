/**
 * The procedural movie: each frame is drawn from that frame's feature values, so what the
 * CNN sees is known exactly. A frame is a grey background (luminance), a static
 * checkerboard (contrast), two drifting sinusoidal gratings (grating_0 with vertical bars,
 * grating_90 with horizontal bars; their drift speed is motion) and a red–green tint
 * (colour_rg). All components average to zero over the frame except the background, so
 * the frame's mean grey level is the luminance term.
 */
import { FEATURE_NAMES } from './features.ts';

export interface ProceduralMovie {
  fps: number;
  width: number;
  height: number;
  frameCount: number;
  /** Frame i as RGB bytes, row-major from the top-left, width·height·3. */
  frame(i: number): Uint8Array;
}

/** Grey level range of the background: 0.38 + 0.24·luminance. */
const LUM_OFFSET = 0.38;
const LUM_RANGE = 0.24;
/** Amplitude of each of the checkerboard and the two gratings (at feature value 1). */
const PATTERN_AMPLITUDE = 0.1;
/** ± red–green shift at colour_rg = 1 or 0. */
const COLOUR_AMPLITUDE = 0.08;
/** Grating cycles across the frame, and top drift speed in cycles per second. */
const GRATING_CYCLES = 4;
const MAX_SPEED = 1.5;
/** Checkerboard squares across the frame. */
const CHECKS = 8;

export interface ProceduralMovieOptions {
  fps: number;
  width: number;
  height: number;
  frameCount: number;
  /** Per feature (FEATURE_NAMES order), the value of each frame in [0, 1]. */
  perFrame: Float64Array[];
}

export function proceduralMovie(o: ProceduralMovieOptions): ProceduralMovie {
  const f = (name: (typeof FEATURE_NAMES)[number]) => o.perFrame[FEATURE_NAMES.indexOf(name)];
  const [lum, contrast, g0, g90, colour, motion] = [
    f('luminance'),
    f('contrast'),
    f('grating_0'),
    f('grating_90'),
    f('colour_rg'),
    f('motion'),
  ];
  // Phase (cycles) of both gratings at each frame: the integral of the drift speed.
  const phase = new Float64Array(o.frameCount);
  for (let i = 1; i < o.frameCount; i++) phase[i] = (phase[i - 1] + (MAX_SPEED * motion[i - 1]) / o.fps) % 1;
  const { width: w, height: h } = o;
  const checkW = w / CHECKS;
  const checkH = h / CHECKS;
  const checker = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) checker[y * w + x] = (Math.floor(x / checkW) + Math.floor(y / checkH)) % 2 === 0 ? 1 : -1;
  }
  const row = new Float64Array(w);
  const col = new Float64Array(h);
  const byte = (v: number) => Math.min(255, Math.max(0, Math.round(v * 255)));
  return {
    fps: o.fps,
    width: w,
    height: h,
    frameCount: o.frameCount,
    frame(i: number): Uint8Array {
      if (!Number.isInteger(i) || i < 0 || i >= o.frameCount) {
        throw new RangeError(`frame ${i} is outside 0..${o.frameCount - 1}`);
      }
      const a0 = PATTERN_AMPLITUDE * g0[i];
      const a90 = PATTERN_AMPLITUDE * g90[i];
      const ac = PATTERN_AMPLITUDE * contrast[i];
      for (let x = 0; x < w; x++) row[x] = a0 * Math.sin(2 * Math.PI * ((GRATING_CYCLES * x) / w - phase[i]));
      for (let y = 0; y < h; y++) col[y] = a90 * Math.sin(2 * Math.PI * ((GRATING_CYCLES * y) / h - phase[i]));
      const background = LUM_OFFSET + LUM_RANGE * lum[i];
      const tint = COLOUR_AMPLITUDE * (2 * colour[i] - 1);
      const out = new Uint8Array(w * h * 3);
      let p = 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const g = background + ac * checker[y * w + x] + row[x] + col[y];
          out[p++] = byte(g + tint);
          out[p++] = byte(g - tint);
          out[p++] = byte(g);
        }
      }
      return out;
    },
  };
}
