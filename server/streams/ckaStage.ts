/**
 * `updateCka`: each layer's linear CKA with the brain features, from centred
 * cross-products updated with TR k, and read out per layer.
 *
 * Intuition: CKA says how similar a whole layer's representation is to the brain's,
 * one number per layer; the update is timed as `engine.cka`, the read-out as `cka`.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0'-w1'-|     (w.cka set; stageMs['engine.cka'], stageMs.cka)
 * ```
 *
 * @param engine the coupling engine, after `updateSliding` of TR k
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timed, timedEngine, type TrWork } from './trWork.ts';

export function updateCka(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'cka', () => engine.updateCka());
    work.cka = timed(work, 'cka', () => engine.cka());
    return work;
  });
}
