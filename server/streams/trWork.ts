/**
 * The unit of work that flows through the per-TR pipeline (server/streams/pipeline.ts):
 * one clock tick, and what each stage adds to it. Stages are RxJS operators that take a
 * `TrWork`, fill in their part and the wall time they spent (`stageMs`), and pass it on,
 * so a stage can be swapped or timed without the others knowing.
 *
 * Why one mutable record rather than a new object per stage: a TR at hcp7t size carries a
 * 1.7 M-voxel volume; copying the record per stage would cost nothing, but copying what
 * it holds would. Each TR gets a fresh record; stages never keep it after they emit.
 */
import type { AnnotationRow, TrState } from '../../protocol/state.ts';
import type { CouplingMatrix } from '../engine/coupling.ts';
import type { ClockTick } from './replayClock.ts';

export interface TrWork {
  tick: ClockTick;
  /** The TR index (tick.tr). */
  tr: number;
  /** Wall time per stage for this TR, milliseconds, in the order the stages ran. */
  stageMs: Record<string, number>;
  /** TRs replayed without being emitted to restore the state at this TR after a jump (0 normally). */
  caughtUp: number;
  /** All unit responses of this TR (units, then the GLM components when the reduction is PCA). */
  units: Float64Array | null;
  /** The GLM design extras of this TR (drift row with its constant). */
  extras: Float64Array | null;
  /** The masked volume of this TR. */
  volume: Float32Array | null;
  /** Brain features of this TR: atlas regions, then the dictionary codes when coupled (after the dictionary stage). */
  features: Float64Array | null;
  coupling: CouplingMatrix | null;
  cka: Float64Array | null;
  /** Set on the TRs where annotation ran. */
  annotations: AnnotationRow[] | null;
  /** The TR's last movie frame as a thumbnail (null: none, or no frame stage). */
  frame: TrState['frame'];
}

export function newTrWork(tick: ClockTick): TrWork {
  return {
    tick,
    tr: tick.tr,
    stageMs: {},
    caughtUp: 0,
    units: null,
    extras: null,
    volume: null,
    features: null,
    coupling: null,
    cka: null,
    annotations: null,
    frame: null,
  };
}

/** Runs `f` and adds its wall time to `work.stageMs[stage]`. */
export function timed<T>(work: TrWork, stage: string, f: () => T): T {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    work.stageMs[stage] = (work.stageMs[stage] ?? 0) + (performance.now() - t0);
  }
}

/**
 * Runs one stage of the coupling engine: its wall time goes to `engine.<part>` and is added
 * to `engine`, the engine's total for the TR (what `engine.update` alone used to be timed as).
 */
export function timedEngine<T>(work: TrWork, part: string, f: () => T): T {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    const ms = performance.now() - t0;
    work.stageMs.engine = (work.stageMs.engine ?? 0) + ms;
    work.stageMs[`engine.${part}`] = (work.stageMs[`engine.${part}`] ?? 0) + ms;
  }
}

/** Async twin of {@link timed}. */
export async function timedAsync<T>(work: TrWork, stage: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    work.stageMs[stage] = (work.stageMs[stage] ?? 0) + (performance.now() - t0);
  }
}
