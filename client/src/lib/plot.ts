/**
 * Small canvas plotting kit for the time plots: linear scales, "nice" ticks, labelled
 * axes, lines with gaps at NaN, and shaded bands. Kept tiny on purpose: every plot of the
 * dashboard is a few lines over TRs, redrawn from raw typed arrays at display rate.
 */

export interface Scale {
  (v: number): number;
  domain: [number, number];
  range: [number, number];
}

export function linear(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = ((v: number) => r0 + (v - d0) * k) as Scale;
  f.domain = domain;
  f.range = range;
  return f;
}

/** About `count` round tick values covering [lo, hi] (1, 2 or 5 × 10^n steps). */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

/** Finite min and max of several series (NaN ignored); `fallback` when none is finite. */
export function extent(series: ArrayLike<number>[], fallback: [number, number] = [0, 1]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.length; i++) {
      const v = s[i];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  if (lo === Infinity) return fallback;
  if (lo === hi) return [lo - 1, hi + 1];
  return [lo, hi];
}

/** Sizes the canvas backing store for the device pixel ratio; returns a context in CSS pixels. */
export function fitCanvas(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(width * dpr));
  const h = Math.max(1, Math.round(height * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

export const FONT = '11px system-ui, sans-serif';
export const AXIS_COLOUR = '#555';

export interface AxesOptions {
  x: Scale;
  y: Scale;
  xLabel: string;
  yLabel: string;
  xTicks?: number;
  yTicks?: number;
  /** Formats tick values. */
  fmtX?: (v: number) => string;
  fmtY?: (v: number) => string;
  /** Draw the x tick labels (off for stacked plots that share the x axis). */
  xTickLabels?: boolean;
}

/** Axes with ticks, tick labels and axis titles (units in the titles). */
export function drawAxes(ctx: CanvasRenderingContext2D, o: AxesOptions): void {
  const [x0, x1] = o.x.range;
  const [y0, y1] = o.y.range; // y0 bottom, y1 top
  ctx.save();
  ctx.strokeStyle = AXIS_COLOUR;
  ctx.fillStyle = AXIS_COLOUR;
  ctx.font = FONT;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(x0, y1);
  ctx.lineTo(x0, y0);
  ctx.lineTo(x1, y0);
  ctx.stroke();
  const fx = o.fmtX ?? ((v: number) => String(v));
  const fy = o.fmtY ?? ((v: number) => String(v));
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of ticks(o.x.domain[0], o.x.domain[1], o.xTicks ?? 6)) {
    const px = Math.round(o.x(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(px, y0);
    ctx.lineTo(px, y0 + 3);
    ctx.stroke();
    if (o.xTickLabels !== false) ctx.fillText(fx(t), px, y0 + 4);
  }
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of ticks(o.y.domain[0], o.y.domain[1], o.yTicks ?? 3)) {
    const py = Math.round(o.y(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x0 - 3, py);
    ctx.lineTo(x0, py);
    ctx.stroke();
    ctx.fillText(fy(t), x0 - 5, py);
  }
  if (o.xTickLabels !== false) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(o.xLabel, (x0 + x1) / 2, ctx.canvas.height / (globalThis.devicePixelRatio || 1) - 1);
  }
  ctx.save();
  ctx.translate(10, (y0 + y1) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(o.yLabel, 0, 0);
  ctx.restore();
  ctx.restore();
}

/** A polyline over i = 0 … n−1 (x = i), broken at NaN. */
export function drawLine(ctx: CanvasRenderingContext2D, ys: ArrayLike<number>, x: Scale, y: Scale, colour: string, width = 1.5, upTo = ys.length): void {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < Math.min(upTo, ys.length); i++) {
    const v = ys[i];
    if (!Number.isFinite(v)) {
      pen = false;
      continue;
    }
    const px = x(i);
    const py = y(v);
    if (pen) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    pen = true;
  }
  ctx.stroke();
  ctx.restore();
}

/** A shaded band between −half[i] and +half[i] (NaN: no band at i). */
export function drawBand(ctx: CanvasRenderingContext2D, half: ArrayLike<number>, x: Scale, y: Scale, fill: string): void {
  ctx.save();
  ctx.fillStyle = fill;
  let i = 0;
  const n = half.length;
  while (i < n) {
    while (i < n && !Number.isFinite(half[i])) i++;
    const start = i;
    while (i < n && Number.isFinite(half[i])) i++;
    if (i <= start) continue;
    ctx.beginPath();
    for (let k = start; k < i; k++) ctx.lineTo(x(k), y(half[k]));
    for (let k = i - 1; k >= start; k--) ctx.lineTo(x(k), y(-half[k]));
    ctx.closePath();
    ctx.fill();
  }
  ctx.restore();
}
