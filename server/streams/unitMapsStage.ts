/**
 * `updateUnitMaps`: one step of every mapped unit's own GLM (unitMaps.ts) with TR k's unit
 * responses, design extras and volume.
 *
 * Intuition: a unit's synchronized map is the voxelwise GLM of the BOLD on that unit's
 * response alone, plus intercept and drift; keeping one per unit is O(U·V) per TR (running
 * cross-products of every unit with every voxel), the engine's largest state and, with
 * many units at full-brain size, one of its largest costs, so it is timed on its own as
 * `engine.unit_maps`. Without unit maps (session `unit_maps: "none"`) the stage takes its
 * turn and does nothing.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0--w1--|     (unit maps updated; stageMs['engine.unit_maps'])
 * ```
 *
 * @param engine the coupling engine, inside TR k (after `updateGlm`)
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timedEngine, type TrWork } from './trWork.ts';

export function updateUnitMaps(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'unit_maps', () => engine.updateUnitMaps());
    return work;
  });
}
