/**
 * `updateSliding`: the sliding-window Pearson r of every (unit, feature) pair with TR k,
 * and the coupling read out: circular-shift null p-values and Benjamini–Hochberg q-values
 * across the pairs, with the q ≤ α mask.
 *
 * Intuition: the running sums move by one TR in O(1) per pair (and per null shift), timed
 * as `engine.sliding`; the read-out ranks every pair against its nulls and sorts the
 * p-values for BH, a cost of its own, timed as `coupling`.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0'-w1'-|     (w.coupling set; stageMs['engine.sliding'], stageMs.coupling)
 * ```
 *
 * @param engine the coupling engine, after `updateDictionary` of TR k
 * @param alpha the BH false discovery rate for `significant`
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timed, timedEngine, type TrWork } from './trWork.ts';

export function updateSliding(engine: CouplingEngine, alpha: number): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'sliding', () => engine.updateSliding());
    work.coupling = timed(work, 'coupling', () => engine.coupling(alpha));
    return work;
  });
}
