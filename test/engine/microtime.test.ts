import { describe, expect, it } from 'vitest';
import { MicrotimeBinner } from '../../server/engine/microtime.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

/** Batch twin: bins every frame on the whole grid at once, then holds empty bins. */
function batchBins(times: number[], frames: Float64Array[], tr: number, T: number, C: number, nTr: number): Float64Array {
  const n = nTr * T;
  const sums = new Float64Array(n * C);
  const counts = new Float64Array(n * C);
  const dt = tr / T;
  times.forEach((t, f) => {
    const g = Math.floor(t / dt + 1e-9);
    if (t < 0 || g >= n) return;
    for (let c = 0; c < C; c++) {
      const v = frames[f][c];
      if (Number.isNaN(v)) continue;
      sums[g * C + c] += v;
      counts[g * C + c]++;
    }
  });
  const out = new Float64Array(n * C);
  const last = new Float64Array(C);
  for (let g = 0; g < n; g++)
    for (let c = 0; c < C; c++) {
      if (counts[g * C + c] > 0) last[c] = sums[g * C + c] / counts[g * C + c];
      out[g * C + c] = last[c];
    }
  return out;
}

function movie(seed: number, fps: number, duration: number, C: number) {
  const rng = createRng(seed);
  const times: number[] = [];
  const frames: Float64Array[] = [];
  for (let f = 0; f / fps < duration; f++) {
    times.push(f / fps + 0.002 * rng.uniform());
    const v = new Float64Array(C);
    for (let c = 0; c < C; c++) v[c] = rng.normal();
    if (f % 17 === 3) v[1] = NaN;
    frames.push(v);
  }
  return { times, frames };
}

describe('MicrotimeBinner', () => {
  it('equals the batch binning, frame by frame, for 24 fps and TR 0.72 s with empty bins', () => {
    const tr = 0.72, T = 16, C = 5, nTr = 30;
    const { times, frames } = movie(7, 24, nTr * tr, C);
    const binner = new MicrotimeBinner({ tr, binsPerTr: T, channels: C });
    const expected = batchBins(times, frames, tr, T, C, nTr);
    let f = 0;
    for (let k = 0; k < nTr; k++) {
      while (f < times.length && times[f] < (k + 1) * tr) binner.pushFrame(times[f], frames[f++]);
      const got = binner.takeTr(k);
      for (let i = 0; i < T * C; i++) expect(got[i]).toBeCloseTo(expected[k * T * C + i], 12);
    }
    expect(binner.droppedFrames).toBe(0);
  });

  it('puts a frame lying on a bin edge into the bin it starts, despite rounding of i/fps', () => {
    // 10 fps, TR 0.8 s, 16 bins of 0.05 s: frame i is at exactly bin 2i; in floating point
    // (i/10)/0.05 lands just below 2i for some i (e.g. i = 3: 5.999999999999999).
    const binner = new MicrotimeBinner({ tr: 0.8, binsPerTr: 16, channels: 1 });
    for (let i = 0; i < 16; i++) binner.pushFrame(i / 10, Float64Array.of(i));
    const bins = binner.takeTr(0);
    for (let i = 0; i < 8; i++) {
      expect(bins[2 * i]).toBe(i);
      expect(bins[2 * i + 1]).toBe(i); // empty bin holds the last value
    }
  });

  it('averages the frames that share a bin', () => {
    const b = new MicrotimeBinner({ tr: 1, binsPerTr: 4, channels: 1 });
    b.pushFrame(0.0, Float64Array.of(1));
    b.pushFrame(0.1, Float64Array.of(3));
    b.pushFrame(0.6, Float64Array.of(10));
    expect(Array.from(b.takeTr(0))).toEqual([2, 2, 10, 10]);
    // no frames at all in TR 1: everything holds the last value
    expect(Array.from(b.takeTr(1))).toEqual([10, 10, 10, 10]);
  });

  it('accepts frames ahead of takeTr, drops late and negative ones and counts them', () => {
    const b = new MicrotimeBinner({ tr: 2, binsPerTr: 2, channels: 2 });
    b.pushFrame(-0.5, Float64Array.of(9, 9));
    b.pushFrame(0.5, Float64Array.of(1, 2));
    b.pushFrame(3.5, Float64Array.of(5, 6)); // TR 1, bin 1
    expect(Array.from(b.takeTr(0))).toEqual([1, 2, 1, 2]);
    b.pushFrame(1.0, Float64Array.of(7, 7)); // late: TR 0 is closed
    expect(Array.from(b.takeTr(1))).toEqual([1, 2, 5, 6]);
    expect(b.droppedFrames).toBe(2);
  });

  it('channels never seen hold 0; an all-NaN channel holds its last good value', () => {
    const b = new MicrotimeBinner({ tr: 1, binsPerTr: 2, channels: 2 });
    b.pushFrame(0.1, Float64Array.of(NaN, 4));
    b.pushFrame(0.6, Float64Array.of(3, NaN));
    expect(Array.from(b.takeTr(0))).toEqual([0, 4, 3, 4]);
  });

  it('restores a snapshot mid-stream and continues identically', () => {
    const tr = 1, T = 16, C = 3, nTr = 12;
    const { times, frames } = movie(11, 30, nTr * tr, C);
    const feed = (b: MicrotimeBinner, from: number, to: number) => {
      const outs: Float64Array[] = [];
      for (let k = from; k < to; k++) {
        times.forEach((t, f) => { if (t >= k * tr && t < (k + 1) * tr) b.pushFrame(t, frames[f]); });
        outs.push(b.takeTr(k));
      }
      return outs;
    };
    const a = new MicrotimeBinner({ tr, binsPerTr: T, channels: C });
    const full = feed(a, 0, nTr);
    const b = new MicrotimeBinner({ tr, binsPerTr: T, channels: C });
    feed(b, 0, 5);
    const snap = b.snapshot();
    feed(b, 5, 9); // wander off, then seek back
    const c = new MicrotimeBinner({ tr, binsPerTr: T, channels: C });
    c.restore(snap);
    const rest = feed(c, 5, nTr);
    rest.forEach((r, i) => expect(Array.from(r)).toEqual(Array.from(full[5 + i])));
    expect(() => new MicrotimeBinner({ tr, binsPerTr: 8, channels: C }).restore(snap)).toThrowError(/another TR/);
  });

  it('rejects bad configuration and out-of-order takes with typed errors', () => {
    expect(() => new MicrotimeBinner({ tr: 0, channels: 1 })).toThrowError(SyncactError);
    const b = new MicrotimeBinner({ tr: 1, channels: 2 });
    expect(() => b.takeTr(1)).toThrowError(/next TR is 0/);
    expect(() => b.pushFrame(0, Float64Array.of(1))).toThrowError(/expected 2/);
    expect(() => b.pushFrame(NaN, Float64Array.of(1, 2))).toThrowError(/finite/);
  });
});
