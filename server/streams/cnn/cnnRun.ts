/**
 * What the CNN run-ahead (../cnnStage.ts) learns on the way, shared by its operators: the
 * open-time telemetry (`cnn`, `hrf`, `reduction`, wall ms summed over every call of that
 * operator) and where the activations came from.
 *
 * Why a record beside the stream rather than fields on every emission: the operators
 * interleave (on a cache miss the bins of TR k are made while the CNN is on later frames),
 * so each adds its own time as it works, and the totals are read once the stream is done,
 * like `TrWork.stageMs` per TR in the replay.
 */
export interface CnnRun {
  /** cnn: frames read and through the CNN, or the cache read; hrf: microtime binning + HRF; reduction: the fit and the K regressors. */
  stageMs: { cnn: number; hrf: number; reduction: number };
  /** The activations came from the feature cache. */
  cacheHit: boolean;
  /** Why the cache was not used, on a miss (absent without a cache). */
  cacheMiss?: string;
  /** Frames that went through the CNN (or would have, on a hit). */
  frames: number;
}

export function newCnnRun(): CnnRun {
  return { stageMs: { cnn: 0, hrf: 0, reduction: 0 }, cacheHit: false, frames: 0 };
}

/** Runs `f` and adds its wall time to `run.stageMs[stage]`. */
export function timedCnn<T>(run: CnnRun, stage: keyof CnnRun['stageMs'], f: () => T): T {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    run.stageMs[stage] += performance.now() - t0;
  }
}

/** Async twin of {@link timedCnn}. */
export async function timedCnnAsync<T>(run: CnnRun, stage: keyof CnnRun['stageMs'], f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    run.stageMs[stage] += performance.now() - t0;
  }
}
