/**
 * `updateDictionary`: one step of online dictionary learning (Mairal et al. 2009) on TR k's
 * preprocessed volume; the codes of the learned networks (FBNs) join the brain features.
 *
 * Intuition: each volume is one sample and each atom a spatial map, so the networks are
 * learned as the run plays; their codes per TR are time series that couple with units
 * like the atlas regions do. After this stage the TR's features are complete, so it puts
 * them on the work item. Timed as `engine.dictionary` (0 work without networks).
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0'-w1'-|     (w.features set; stageMs['engine.dictionary'])
 * ```
 *
 * @param engine the coupling engine, after `preprocessVolume` of TR k
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timedEngine, type TrWork } from './trWork.ts';

export function updateDictionary(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'dictionary', () => engine.updateDictionary());
    work.features = engine.lastFeatures();
    return work;
  });
}
