/**
 * Colour maps readable by colour-blind viewers: viridis for magnitudes (monotone in
 * lightness), a blue–white–orange diverging map for signed values such as r and t (blue
 * and orange stay distinct under the common deficiencies, unlike red–green), and the
 * Okabe–Ito palette for categories (layers).
 *
 * Each map is a few anchor colours interpolated linearly in sRGB; `makeLut` samples it
 * into a 256-entry table so that drawing a 150×15 heatmap or a slice is a lookup per cell.
 */

export type Rgb = [number, number, number];

function hex(h: string): Rgb {
  const n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** matplotlib's viridis at 0, 1/8, …, 1 (its 256-entry table at 0, 32, …, 255). */
export const VIRIDIS_ANCHORS: Rgb[] = ['#440154', '#482475', '#414487', '#355f8d', '#2a788e', '#21918c', '#22a884', '#7ad151', '#fde725'].map(hex);

/** Blue (RdBu's blues) through near-white to orange (PuOr's oranges), for −1 … 1. */
export const DIVERGING_ANCHORS: Rgb[] = ['#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fee0b6', '#fdb863', '#e08214', '#b35806'].map(hex);

/** Okabe & Ito (2008), black moved last: eight colours distinguishable with any common deficiency. */
export const CATEGORICAL: string[] = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

/** Linear interpolation along anchors spread evenly over [0, 1]; t outside is clamped, NaN gives null. */
export function interpolate(anchors: Rgb[], t: number): Rgb | null {
  if (Number.isNaN(t)) return null;
  const x = Math.min(1, Math.max(0, t)) * (anchors.length - 1);
  const i = Math.min(anchors.length - 2, Math.floor(x));
  const f = x - i;
  const a = anchors[i];
  const b = anchors[i + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

export const viridis = (t: number): Rgb | null => interpolate(VIRIDIS_ANCHORS, t);

/** Signed value v in [−1, 1] (clamped): −1 blue, 0 near-white, +1 orange. */
export const diverging = (v: number): Rgb | null => interpolate(DIVERGING_ANCHORS, (v + 1) / 2);

/** 256 RGBA entries of a map over [0, 1], for per-pixel lookups. */
export function makeLut(anchors: Rgb[]): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const c = interpolate(anchors, i / 255)!;
    lut.set([c[0], c[1], c[2], 255], i * 4);
  }
  return lut;
}

export function css(c: Rgb | null, fallback = '#bbb'): string {
  return c ? `rgb(${c[0]},${c[1]},${c[2]})` : fallback;
}

/**
 * A NiiVue colour map (R, G, B, A, I arrays) from anchors: the overlay colours for the
 * positive (orange, dark to bright) and negative (blue) halves of a signed map.
 */
export function niivueColormap(anchors: Rgb[]): { R: number[]; G: number[]; B: number[]; A: number[]; I: number[] } {
  const n = anchors.length;
  return {
    R: anchors.map((c) => c[0]),
    G: anchors.map((c) => c[1]),
    B: anchors.map((c) => c[2]),
    A: anchors.map((_, i) => (i === 0 ? 0 : 255)),
    I: anchors.map((_, i) => Math.round((i * 255) / (n - 1))),
  };
}

/** Overlay halves: stronger values are more saturated and further from the grey background. */
export const OVERLAY_POSITIVE: Rgb[] = ['#b35806', '#e08214', '#fdb863'].map(hex);
export const OVERLAY_NEGATIVE: Rgb[] = ['#2166ac', '#4393c3', '#92c5de'].map(hex);
