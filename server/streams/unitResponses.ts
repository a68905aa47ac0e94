/**
 * `attachUnitResponses`: puts TR k's unit responses and GLM design extras on the work item.
 *
 * Intuition: the CNN stage has already run over the whole movie (cnnStage.ts: frames →
 * microtime bins → HRF → unit reduction), so per TR this is a lookup; it is a stage of
 * its own so that its cost is measured like the others and a streaming CNN could replace
 * it without touching the rest.
 *
 * ```
 * work:   --w0--w1--w2--|
 * result: --w0'-w1'-w2'-|     (w.units, w.extras set; stageMs.units)
 * ```
 *
 * @param inputs the session's per-TR responses and extras
 */
import { map, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../errors.ts';
import type { ReplayInputs } from './replayInputs.ts';
import { timed, type TrWork } from './trWork.ts';

export function attachUnitResponses(inputs: Pick<ReplayInputs, 'responses' | 'extras' | 'trCount'>): OperatorFunction<TrWork, TrWork> {
  return map((work) =>
    timed(work, 'units', () => {
      const k = work.tr;
      if (k < 0 || k >= inputs.trCount) throw new SyncactError('REPLAY_BAD_OPTIONS', `TR ${k} is outside the replay (0..${inputs.trCount - 1})`);
      work.units = inputs.responses[k];
      work.extras = inputs.extras(k);
      return work;
    }),
  );
}
