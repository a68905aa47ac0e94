/**
 * `updateGlm`: one recursive least-squares step of the voxelwise GLM with TR k's design
 * row (the K reduced unit responses, drift and constant) and volume.
 *
 * Intuition: the synchronized map of each unit (DESIGN.md §4) is its GLM beta/t-map; the
 * gain is shared by all voxels, so this is O(K·V) per TR and usually the engine's largest
 * cost at full-brain size, which is why it is timed on its own as `engine.glm`.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0--w1--|     (maps updated; stageMs['engine.glm'])
 * ```
 *
 * @param engine the coupling engine, inside TR k (after `beginEngineTr`)
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timedEngine, type TrWork } from './trWork.ts';

export function updateGlm(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'glm', () => engine.updateGlm());
    return work;
  });
}
