/**
 * Whether a run was long enough to be scored for significance, and if not, why.
 *
 * Sliding-window significance comes from null shifts of the unit series
 * (server/streams/session.ts: `nullShifts` caps the session's `nulls` by what the run
 * allows, T − 2W + 1 circular shifts when its length is known, lags all ready within the
 * first third of a live run; `nullsReadyAt` is the TR from which all are).
 * A run shorter than 2W gets no null at all, so no TR is scored: no q-value ever passes, the coupled
 * pairs are empty and a truth block has nothing to score. Without this a 60-TR run reads as
 * "sensitivity 0" — a wrong finding rather than no finding. This file says it in the
 * report (`significance`) and in one warning line, with the run length that would do.
 */
import { nullShifts, nullsReadyAt, type NullKind } from '../streams/session.ts';

/** report.json's `significance` block. */
export interface SignificanceCoverage {
  /** TRs that entered the significance tally (after every lagged null was ready). */
  scored_trs: number;
  /** The first of them (TR index), null when none was scored. */
  first_scored_tr: number | null;
  /** Lagged nulls used (the session's `nulls`, capped by the run length). */
  null_shifts: number;
  /** Lagged nulls asked for (engine setting `nulls`). */
  nulls_requested: number;
  window: number;
  /** Run length in TRs from which at least one lagged null exists (null: `nulls` is 0). */
  min_trs_any_null: number | null;
  /** Run length in TRs from which all `nulls_requested` nulls are used (null: `nulls` is 0). */
  min_trs_all_nulls: number | null;
  /** Why no TR was scored; null when some were. */
  reason: string | null;
}

export interface CoverageInputs {
  /** TRs the run has (the design's length, which caps the nulls). */
  trCount: number;
  /** TRs actually replayed (fewer than trCount when a run is stopped early). */
  trs: number;
  window: number;
  /** Engine setting `nulls`. */
  nulls: number;
  /** The session's null-shift count (OpenedSession.nullShifts). */
  nullShifts: number;
  /** OpenedSession.nullKind; default 'lagged'. */
  nullKind?: NullKind;
  /** TRs in the significance tally. */
  scoredTrs: number;
}

/**
 * The shortest run (TRs) that gets at least `shifts` nulls with all of them ready before
 * its last TR, found with session.ts's own rules so that the two cannot disagree (closed
 * forms for the current rules: lagged 3·(2·shifts + 2·window − 1), circular
 * 2·window + shifts − 1). Null when shifts < 1.
 */
export function minTrsForNulls(window: number, shifts: number, kind: NullKind = 'lagged'): number | null {
  if (!(shifts >= 1)) return null;
  const bound = 3 * (2 * shifts + 2 * window + 2) + 10;
  for (let t = 1; t <= bound; t++) {
    if (nullShifts(shifts, window, t, kind) >= shifts && nullsReadyAt(shifts, window, kind) <= t - 1) return t;
  }
  return null;
}

export function significanceCoverage(o: CoverageInputs): SignificanceCoverage {
  const kind = o.nullKind ?? 'lagged';
  const readyAt = nullsReadyAt(o.nullShifts, o.window, kind);
  const anyNull = minTrsForNulls(o.window, 1, kind);
  const allNulls = minTrsForNulls(o.window, o.nulls, kind);
  let reason: string | null = null;
  if (o.scoredTrs === 0) {
    if (o.nulls < 1) reason = 'nulls is 0: significance is off';
    else if (o.nullShifts < 1) {
      reason =
        `${o.trCount} TRs are too short for ${kind} nulls with window ${o.window}: ` +
        `at least ${anyNull} TRs are needed for one null, ${allNulls} for all ${o.nulls}`;
    } else {
      reason = `the run stopped after ${o.trs} TRs, before its ${o.nullShifts} ${kind} nulls were ready at TR ${readyAt}`;
    }
  }
  return {
    scored_trs: o.scoredTrs,
    first_scored_tr: o.scoredTrs > 0 && Number.isFinite(readyAt) ? readyAt : null,
    null_shifts: o.nullShifts,
    nulls_requested: o.nulls,
    window: o.window,
    min_trs_any_null: anyNull,
    min_trs_all_nulls: allNulls,
    reason,
  };
}

/** The one-line warning for a run with no scored TR (null when some were scored). */
export function significanceWarning(c: SignificanceCoverage): string | null {
  return c.reason === null ? null : `no TR was scored for significance (no coupled pairs): ${c.reason}`;
}
