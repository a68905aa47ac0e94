/**
 * Just enough SVG for the report's figures: escaping, linear scales with round ticks,
 * labelled axes, and colour-blind-safe palettes. Strings in, strings out, so a figure is
 * a pure function of its data (and a report is byte-identical when the data are).
 */

/** Escapes text for HTML/SVG content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A coordinate with at most 2 decimals (smaller files, stable text). */
export function px(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/**
 * Categorical colours safe for the common colour-vision deficiencies: Okabe & Ito (2008)
 * without black, then Paul Tol's "muted" scheme for categories beyond seven.
 */
export const CATEGORICAL = ['#E69F00', '#56B4E9', '#009E73', '#F0E442', '#0072B2', '#D55E00', '#CC79A7', '#332288', '#88CCEE', '#44AA99', '#117733', '#999933', '#DDCC77', '#CC6677', '#882255', '#AA4499'];

/** ColorBrewer RdBu (11 classes, reversed: blue negative, red positive), diverging and colour-blind safe. */
const RDBU = ['#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b', '#67001f'];

/** The diverging colour of v in [-1, 1] (clamped), interpolated in RGB between RdBu's classes; grey for NaN. */
export function diverging(v: number): string {
  if (!Number.isFinite(v)) return '#bdbdbd';
  const x = ((Math.max(-1, Math.min(1, v)) + 1) / 2) * (RDBU.length - 1);
  const i = Math.min(RDBU.length - 2, Math.floor(x));
  const f = x - i;
  const a = hex(RDBU[i]);
  const b = hex(RDBU[i + 1]);
  return '#' + a.map((c, k) => Math.round(c + (b[k] - c) * f).toString(16).padStart(2, '0')).join('');
}

function hex(c: string): number[] {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

/** Round tick values covering [lo, hi] (about `count` of them: steps of 1, 2 or 5 × 10^k). */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) as number;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A linear map from [d0, d1] to [r0, r1]. */
export function scale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

export interface Frame {
  width: number;
  height: number;
  /** Plot area inside the margins. */
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export function frame(width: number, height: number, margin = { left: 56, top: 16, right: 16, bottom: 44 }): Frame {
  return { width, height, left: margin.left, top: margin.top, right: width - margin.right, bottom: height - margin.bottom };
}

/**
 * Both axes of a plot with their ticks and labels (units in the label, e.g. "time (s)").
 * `xTicks` may carry names (categorical axes).
 */
export function axes(
  f: Frame,
  x: { scale: (v: number) => number; ticks: { value: number; label: string }[]; label: string },
  y: { scale: (v: number) => number; ticks: number[]; label: string },
): string {
  const parts: string[] = [];
  parts.push(`<line x1="${f.left}" y1="${f.bottom}" x2="${f.right}" y2="${f.bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${f.left}" y1="${f.top}" x2="${f.left}" y2="${f.bottom}" stroke="#333"/>`);
  for (const t of x.ticks) {
    const X = px(x.scale(t.value));
    parts.push(`<line x1="${X}" y1="${f.bottom}" x2="${X}" y2="${f.bottom + 4}" stroke="#333"/><text x="${X}" y="${f.bottom + 16}" text-anchor="middle" font-size="11">${esc(t.label)}</text>`);
  }
  for (const t of y.ticks) {
    const Y = px(y.scale(t));
    parts.push(`<line x1="${f.left - 4}" y1="${Y}" x2="${f.left}" y2="${Y}" stroke="#333"/><line x1="${f.left}" y1="${Y}" x2="${f.right}" y2="${Y}" stroke="#eee"/>`);
    parts.push(`<text x="${f.left - 7}" y="${Y}" text-anchor="end" dominant-baseline="middle" font-size="11">${esc(fmtTick(t))}</text>`);
  }
  parts.push(`<text x="${px((f.left + f.right) / 2)}" y="${f.height - 6}" text-anchor="middle" font-size="12">${esc(x.label)}</text>`);
  parts.push(`<text transform="translate(14 ${px((f.top + f.bottom) / 2)}) rotate(-90)" text-anchor="middle" font-size="12">${esc(y.label)}</text>`);
  return parts.join('');
}

function fmtTick(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** A polyline through the finite points (NaN breaks the line). */
export function polyline(xs: number[], ys: number[], color: string, width = 1.5): string {
  const runs: string[][] = [[]];
  xs.forEach((x, i) => {
    if (Number.isFinite(ys[i])) runs[runs.length - 1].push(`${px(x)},${px(ys[i])}`);
    else if (runs[runs.length - 1].length) runs.push([]);
  });
  return runs
    .filter((r) => r.length > 0)
    .map((r) => (r.length === 1 ? `<circle cx="${r[0].split(',')[0]}" cy="${r[0].split(',')[1]}" r="1.5" fill="${color}"/>` : `<polyline fill="none" stroke="${color}" stroke-width="${width}" points="${r.join(' ')}"/>`))
    .join('');
}

export function svg(f: Pick<Frame, 'width' | 'height'>, body: string, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" role="img" aria-label="${esc(title)}" font-family="sans-serif"><title>${esc(title)}</title>${body}</svg>`;
}
