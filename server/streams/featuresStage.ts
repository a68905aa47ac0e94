/**
 * `updateFeatures`: TR k's brain features from its volume, the mean of each atlas region
 * (NaN for a region whose voxels are all NaN).
 *
 * Intuition: the sliding windows and CKA couple units with a few dozen region means, not
 * with voxels; extracting them is one pass over the volume, timed as `engine.features`.
 * The learned networks' codes join these features in the dictionary stage.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0--w1--|     (region means updated; stageMs['engine.features'])
 * ```
 *
 * @param engine the coupling engine, after `updateGlm` of TR k
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timedEngine, type TrWork } from './trWork.ts';

export function updateFeatures(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'features', () => engine.updateFeatures());
    return work;
  });
}
