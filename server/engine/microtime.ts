/**
 * Movie frames → microtime bins. Each TR is cut into `binsPerTr` bins of width
 * dt = TR/binsPerTr (SPM's microtime grid, default 16); bin b of TR k covers
 * [k·TR + b·dt, k·TR + (b+1)·dt) in movie time (the caller subtracts the movie onset).
 * A bin's value per channel is the mean of the frames that fall in it.
 *
 * Empty bins carry the last value forward (zero-order hold), channel by channel. Why not
 * linear interpolation: a frame stays on screen until the next one replaces it, so the hold
 * is what the viewer saw; and it is causal, so TR k can be emitted as soon as its own frames
 * are in (interpolation would need the first frame of TR k+1). Before the first frame a
 * channel holds 0. A NaN element in a frame is not counted for that channel (its bin holds
 * or averages the others), so one bad activation never poisons the convolution downstream.
 *
 * Frames must arrive in TR order, but may run ahead of `takeTr` (they are kept per TR until
 * taken). Frames whose time falls in a TR already taken, or before time 0, are dropped and
 * counted in `droppedFrames` rather than thrown: a jittery decoder must not stop a replay.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';

export interface MicrotimeBinnerOptions {
  /** Repetition time in seconds. */
  tr: number;
  /** Microtime bins per TR (SPM's fMRI_T), default 16. */
  binsPerTr?: number;
  /** Values per frame (units of a layer). */
  channels: number;
}

interface TrAccumulator {
  sums: Float64Array;
  counts: Uint32Array;
}

const KIND = 'microtime';
const VERSION = 1;

export class MicrotimeBinner implements Estimator {
  readonly tr: number;
  readonly binsPerTr: number;
  readonly channels: number;
  private readonly dt: number;
  /** The next TR `takeTr` will return. */
  private next = 0;
  private dropped = 0;
  /** Last emitted value per channel (the hold). */
  private readonly last: Float64Array;
  private readonly pending = new Map<number, TrAccumulator>();

  constructor(options: MicrotimeBinnerOptions) {
    const { tr, channels } = options;
    const binsPerTr = options.binsPerTr ?? 16;
    if (!(tr > 0) || !Number.isFinite(tr)) throw new SyncactError('ENGINE_BAD_INPUT', `microtime: TR must be positive, got ${tr}`);
    if (!Number.isInteger(binsPerTr) || binsPerTr < 1) {
      throw new SyncactError('ENGINE_BAD_INPUT', `microtime: binsPerTr must be a positive integer, got ${binsPerTr}`);
    }
    if (!Number.isInteger(channels) || channels < 1) {
      throw new SyncactError('ENGINE_BAD_INPUT', `microtime: channels must be a positive integer, got ${channels}`);
    }
    this.tr = tr;
    this.binsPerTr = binsPerTr;
    this.channels = channels;
    this.dt = tr / binsPerTr;
    this.last = new Float64Array(channels);
  }

  /** The TR index the next `takeTr` call must ask for. */
  get nextTr(): number {
    return this.next;
  }

  /** Frames ignored because they were late (their TR already taken) or before time 0. */
  get droppedFrames(): number {
    return this.dropped;
  }

  /**
   * Adds one frame.
   * @param time movie time of the frame in seconds, relative to the run start
   * @param values one value per channel
   */
  pushFrame(time: number, values: Float32Array | Float64Array): void {
    if (!Number.isFinite(time)) throw new SyncactError('ENGINE_BAD_INPUT', `microtime: frame time must be finite, got ${time}`);
    if (values.length !== this.channels) {
      throw new SyncactError('ENGINE_BAD_INPUT', `microtime: frame has ${values.length} values, expected ${this.channels}`);
    }
    if (time < 0) {
      this.dropped++;
      return;
    }
    // Bin index on the global grid; TR and bin within it follow from it, so that a frame at
    // exactly k·TR lands in bin 0 of TR k whatever the rounding of k·TR.
    const g = binOfTime(time, this.dt);
    const k = Math.floor(g / this.binsPerTr);
    const b = g - k * this.binsPerTr;
    if (k < this.next) {
      this.dropped++;
      return;
    }
    let acc = this.pending.get(k);
    if (!acc) {
      const n = this.binsPerTr * this.channels;
      acc = { sums: new Float64Array(n), counts: new Uint32Array(n) };
      this.pending.set(k, acc);
    }
    const off = b * this.channels;
    const { sums, counts } = acc;
    for (let c = 0; c < this.channels; c++) {
      const v = values[c];
      if (v !== v) continue;
      sums[off + c] += v;
      counts[off + c]++;
    }
  }

  /**
   * Closes TR k and returns its bins, row-major `binsPerTr × channels` (bin b, channel c at
   * b·channels + c). TRs are taken in order: k must equal `nextTr`.
   */
  takeTr(k: number, out?: Float64Array): Float64Array {
    if (k !== this.next) throw new SyncactError('ENGINE_BAD_INPUT', `microtime: asked for TR ${k}, the next TR is ${this.next}`);
    const C = this.channels;
    const n = this.binsPerTr * C;
    const res = out ?? new Float64Array(n);
    if (res.length !== n) throw new SyncactError('ENGINE_BAD_INPUT', `microtime: output has length ${res.length}, expected ${n}`);
    const acc = this.pending.get(k);
    const last = this.last;
    for (let b = 0; b < this.binsPerTr; b++) {
      const off = b * C;
      for (let c = 0; c < C; c++) {
        if (acc && acc.counts[off + c] > 0) last[c] = acc.sums[off + c] / acc.counts[off + c];
        res[off + c] = last[c];
      }
    }
    this.pending.delete(k);
    this.next++;
    return res;
  }

  /**
   * Captures the hold values and the next TR. Frames pushed ahead for TRs not yet taken are
   * not part of the state: a seek restores and then re-feeds frames from the restored TR on.
   */
  snapshot(): EstimatorSnapshot {
    return {
      kind: KIND,
      version: VERSION,
      scalars: { next: this.next, dropped: this.dropped, channels: this.channels, binsPerTr: this.binsPerTr, tr: this.tr },
      arrays: { last: Float64Array.from(this.last) },
    };
  }

  restore(s: EstimatorSnapshot): void {
    if (s.kind !== KIND || s.version !== VERSION) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `microtime: cannot restore a ${s.kind} v${s.version} snapshot`);
    }
    const last = s.arrays.last;
    if (s.scalars.channels !== this.channels || s.scalars.binsPerTr !== this.binsPerTr || s.scalars.tr !== this.tr || !last || last.length !== this.channels) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', 'microtime: snapshot was taken with another TR, bin count or channel count');
    }
    this.last.set(last);
    this.next = s.scalars.next;
    this.dropped = s.scalars.dropped;
    this.pending.clear();
  }
}

/**
 * Frames on a bin edge start that bin. A frame at i/fps that equals b·dt in exact
 * arithmetic (10 fps with 0.05 s bins) can round to b·dt − 1e-15 in floating point;
 * the tolerance (a billionth of a bin) puts it in bin b as a person would.
 */
const EDGE_TOLERANCE = 1e-9;

/** The global index of the bin of width `width` (seconds) holding time `time` (≥ 0). */
export function binOfTime(time: number, width: number): number {
  return Math.floor(time / width + EDGE_TOLERANCE);
}
