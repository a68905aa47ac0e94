/**
 * `beginEngineTr`: hands TR k's unit responses, design extras and masked volume to the
 * coupling engine, which checks them once for all its stages.
 *
 * Intuition: the engine's stages (GLM, features, preprocessing, dictionary, sliding
 * windows, CKA) are separate operators that must see the same TR; this one opens the TR
 * in the engine (`CouplingEngine.beginTr`), and `endEngineTr` closes it. It also checks
 * that the engine is at this TR: a seek restores the engine before the TR arrives here
 * (snapshots.ts), so any other count is a wiring bug. Timed as `engine.input`.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0--w1--|     (engine at TR k with its input; stageMs['engine.input'])
 * ```
 *
 * @param engine the session's coupling engine (its state is the replay's state)
 */
import { map, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../errors.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timedEngine, type TrWork } from './trWork.ts';

export function beginEngineTr(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    const { units, extras, volume } = work;
    if (!units || !extras || !volume) throw new SyncactError('ENGINE_BAD_INPUT', `engine stages: TR ${work.tr} arrived without its units, extras or volume`);
    if (engine.count !== work.tr) throw new SyncactError('ENGINE_BAD_INPUT', `engine stages: engine is at TR ${engine.count}, work is for TR ${work.tr}`);
    timedEngine(work, 'input', () => engine.beginTr({ units, extras, volume }));
    return work;
  });
}
