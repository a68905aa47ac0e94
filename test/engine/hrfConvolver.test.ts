import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { HrfConvolver } from '../../server/engine/hrfConvolver.ts';
import { microtimeHrfKernels } from '../../server/engine/hrf.ts';
import { MicrotimeBinner } from '../../server/engine/microtime.ts';
import { createRng, normalArray } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

const ref = JSON.parse(readFileSync(new URL('../reference/hrf_reference.json', import.meta.url), 'utf8')) as Record<string, number[] & number>;

/** Batch twin: full convolution of each channel, truncated to n, sampled at k·T + r0. */
function batchConvolve(x: Float64Array, C: number, h: Float64Array, T: number, r0: number): Float64Array {
  const n = x.length / C;
  const nTr = Math.floor(n / T);
  const out = new Float64Array(nTr * C);
  for (let k = 0; k < nTr; k++) {
    const m = k * T + r0;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < h.length && j <= m; j++) s += h[j] * x[(m - j) * C + c];
      out[k * C + c] = s;
    }
  }
  return out;
}

function run(conv: HrfConvolver, x: Float64Array, from: number, to: number): Float64Array[] {
  const TC = conv.binsPerTr * conv.channels;
  const outs: Float64Array[] = [];
  for (let k = from; k < to; k++) outs.push(conv.pushTr(x.subarray(k * TC, (k + 1) * TC)));
  return outs;
}

describe('HrfConvolver', () => {
  it('equals np.convolve(x, h)[:n] sampled at k*T + T0 (scipy reference) for T0 = 8, 0, 15', () => {
    const x = Float64Array.from(ref.conv_input);
    const C = ref.conv_channels as number;
    const T = ref.conv_T as number;
    const kernels = microtimeHrfKernels({ tr: 1, derivative: true });
    for (const [name, r0] of [['mid', 8], ['start', 0], ['end', 15]] as const) {
      const conv = new HrfConvolver({ channels: C, kernels: [kernels[0]], binsPerTr: T, referenceBin: r0 });
      const outs = run(conv, x, 0, x.length / (T * C));
      const expected = ref[`conv_tr1_${name}`];
      outs.forEach((o, k) => {
        for (let c = 0; c < C; c++) expect(Math.abs(o[c] - expected[k * C + c])).toBeLessThan(1e-10);
      });
    }
    const both = new HrfConvolver({ channels: C, kernels, binsPerTr: T });
    const outs = run(both, x, 0, x.length / (T * C));
    outs.forEach((o, k) => {
      for (let c = 0; c < C; c++) {
        expect(Math.abs(o[c] - ref.conv_tr1_mid[k * C + c])).toBeLessThan(1e-10);
        expect(Math.abs(o[C + c] - ref.conv_tr1_mid_deriv[k * C + c])).toBeLessThan(1e-10);
      }
    });
  });

  it('equals the batch twin on seeded data past the ring wrap-around, TR 2 s, 7 channels', () => {
    const T = 16, C = 7, nTr = 60;
    const [h] = microtimeHrfKernels({ tr: 2 });
    const x = normalArray(3, nTr * T * C);
    const conv = new HrfConvolver({ channels: C, kernels: [h], binsPerTr: T, referenceBin: 5 });
    const expected = batchConvolve(x, C, h, T, 5);
    run(conv, x, 0, nTr).forEach((o, k) => {
      for (let c = 0; c < C; c++) expect(o[c]).toBeCloseTo(expected[k * C + c], 11);
    });
    expect(conv.trs).toBe(nTr);
  });

  it('a constant drive converges to the same constant (unit-sum kernel)', () => {
    const [h] = microtimeHrfKernels({ tr: 1 });
    const conv = new HrfConvolver({ channels: 2, kernels: [h] });
    const bins = new Float64Array(32);
    for (let i = 0; i < 16; i++) { bins[2 * i] = 3; bins[2 * i + 1] = -1; }
    let o: Float64Array = new Float64Array(2);
    for (let k = 0; k < 40; k++) o = conv.pushTr(bins);
    expect(o[0]).toBeCloseTo(3, 10);
    expect(o[1]).toBeCloseTo(-1, 10);
  });

  it('restores a snapshot mid-stream and continues identically', () => {
    const T = 16, C = 4, nTr = 50;
    const kernels = microtimeHrfKernels({ tr: 1, derivative: true });
    const x = normalArray(21, nTr * T * C);
    const a = new HrfConvolver({ channels: C, kernels });
    const full = run(a, x, 0, nTr);
    const b = new HrfConvolver({ channels: C, kernels });
    run(b, x, 0, 37);
    const snap = b.snapshot();
    run(b, x, 37, 45);
    const c = new HrfConvolver({ channels: C, kernels });
    c.restore(snap);
    run(c, x, 37, nTr).forEach((o, i) => expect(Array.from(o)).toEqual(Array.from(full[37 + i])));
    const other = new HrfConvolver({ channels: C + 1, kernels });
    expect(() => other.restore(snap)).toThrowError(SyncactError);
    expect(() => other.restore({ ...snap, kind: 'cka' })).toThrowError(/cannot restore a cka/);
  });

  it('a NaN sample poisons the outputs only for the kernel length, like the batch convolution', () => {
    const T = 16, C = 1, nTr = 80;
    const [h] = microtimeHrfKernels({ tr: 1 });
    const x = normalArray(5, nTr * T);
    x[10 * T + 3] = NaN;
    const outs = run(new HrfConvolver({ channels: C, kernels: [h] }), x, 0, nTr);
    expect(Number.isFinite(outs[9][0])).toBe(true);
    expect(Number.isNaN(outs[10][0])).toBe(true);
    // sample 163 reaches the outputs at 16k + 8 for 163 <= 16k + 8 <= 163 + 512: k = 10 … 41
    expect(Number.isNaN(outs[41][0])).toBe(true);
    expect(Number.isFinite(outs[42][0])).toBe(true);
  });

  it('rejects mismatched inputs with typed errors', () => {
    const [h] = microtimeHrfKernels({ tr: 1 });
    expect(() => new HrfConvolver({ channels: 2, kernels: [] })).toThrowError(SyncactError);
    expect(() => new HrfConvolver({ channels: 2, kernels: [h], referenceBin: 16 })).toThrowError(/referenceBin/);
    expect(() => new HrfConvolver({ channels: 2, kernels: [h] }).pushTr(new Float64Array(31))).toThrowError(/got 31/);
  });

  it('frames → MicrotimeBinner → HrfConvolver equals convolving the held frame series in one batch', () => {
    // 30 fps against TR 0.6 s / 16 bins (37.5 ms): some bins get two frames (averaged), and a
    // decoder stall (frames 300-329 missing) leaves a second of empty bins (held).
    const tr = 0.6, T = 16, C = 3, nTr = 70, fps = 30;
    const rng = createRng(12);
    const binner = new MicrotimeBinner({ tr, binsPerTr: T, channels: C });
    const [h] = microtimeHrfKernels({ tr, binsPerTr: T });
    const conv = new HrfConvolver({ channels: C, kernels: [h], binsPerTr: T });
    // batch: the whole microtime series built at once from all frames, then convolved
    const dt = tr / T;
    const series = new Float64Array(nTr * T * C);
    const last = new Float64Array(C);
    const frames: { t: number; v: Float64Array }[] = [];
    for (let f = 0; f / fps < nTr * tr; f++) {
      const v = new Float64Array(C);
      for (let c = 0; c < C; c++) v[c] = rng.normal() + c;
      if (f < 300 || f >= 330) frames.push({ t: f / fps, v });
    }
    let f = 0;
    for (let g = 0; g < nTr * T; g++) {
      const sum = new Float64Array(C);
      let count = 0;
      for (; f < frames.length && Math.floor(frames[f].t / dt) === g; f++, count++) frames[f].v.forEach((v, c) => (sum[c] += v));
      if (count > 0) sum.forEach((v, c) => (last[c] = v / count));
      series.set(last, g * C);
    }
    const expected = batchConvolve(series, C, h, T, T / 2);
    f = 0;
    for (let k = 0; k < nTr; k++) {
      while (f < frames.length && frames[f].t < (k + 1) * tr) binner.pushFrame(frames[f].t, frames[f++].v);
      const out = conv.pushTr(binner.takeTr(k));
      for (let c = 0; c < C; c++) expect(out[c]).toBeCloseTo(expected[k * C + c], 11);
    }
  });
});
