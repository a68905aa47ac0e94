/**
 * `endEngineTr`: closes TR k in the coupling engine, which then counts k + 1 TRs and lets
 * the TR's input go.
 *
 * Intuition: the counterpart of `beginEngineTr`; after it the engine is between TRs, where
 * snapshots (seek, state on disk) and annotation may read it. Not timed: it moves a counter.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0--w1--|     (engine.count = k + 1)
 * ```
 *
 * @param engine the coupling engine, after the last stage of TR k
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import type { TrWork } from './trWork.ts';

export function endEngineTr(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    engine.endTr();
    return work;
  });
}
