/**
 * `toTrState`: turns a finished work item into the typed per-TR state the server
 * publishes (protocol/state.ts `TrState`), with its telemetry: the wall time of every
 * stage for this TR, TRs per second over the last few TRs, and the clock's lag.
 *
 * Intuition: the last stage, so that its own cost (copies to float32, the thumbnail) is
 * measured too (`stageMs.state`). The rate is over a sliding window of emissions (the
 * last `rateWindow` TRs), which a dashboard can show as "× real time" next to the TR.
 *
 * ```
 * work:   --w0--w1--w2--|
 * result: --s0--s1--s2--|     (TrState with telemetry)
 * ```
 *
 * @param options.clock the current clock settings, read at each TR
 * @param options.rateWindow TRs in the rate's window (default 8)
 */
import { map, type OperatorFunction } from 'rxjs';
import type { AnnotationRow, TrState } from '../../protocol/state.ts';
import { timed, type TrWork } from './trWork.ts';

/** What the pipeline emits per TR: the state, and the annotation when this TR ran it. */
export interface PipelineTr {
  state: TrState;
  annotations: AnnotationRow[] | null;
  /** TRs replayed unpaced before this one to restore its state after a jump. */
  caughtUp: number;
}

export interface TelemetryOptions {
  clock: () => TrState['clock'];
  rateWindow?: number;
  /** Wall clock in ms (default performance.now); injected by tests. */
  now?: () => number;
}

export function toTrState(options: TelemetryOptions): OperatorFunction<TrWork, PipelineTr> {
  const windowSize = options.rateWindow ?? 8;
  const now = options.now ?? (() => performance.now());
  const stamps: number[] = [];
  return map((work) => {
    const state = timed(work, 'state', (): TrState => {
      const c = work.coupling;
      return {
        tr: work.tr,
        time: work.tick.time,
        clock: options.clock(),
        unitResponses: Float32Array.from(work.units ?? []),
        features: Float32Array.from(work.features ?? []),
        coupling: Float32Array.from(c?.r ?? []),
        couplingQ: Float32Array.from(c?.q ?? []),
        significant: c?.significant ?? new Uint8Array(0),
        cka: Float32Array.from(work.cka ?? []),
        frame: work.frame,
        telemetry: { stageMs: work.stageMs, trsPerSecond: NaN, lagMs: work.tick.lagMs },
      };
    });
    const t = now();
    stamps.push(t);
    if (stamps.length > windowSize + 1) stamps.shift();
    state.telemetry.trsPerSecond = stamps.length > 1 ? ((stamps.length - 1) * 1000) / (t - stamps[0]) : NaN;
    return { state, annotations: work.annotations, caughtUp: work.caughtUp };
  });
}
