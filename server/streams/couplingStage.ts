/**
 * `updateCoupling`: feeds TR k to the coupling engine and reads its per-TR outputs.
 *
 * Intuition: the engine (server/engine/coupling.ts) is pure and synchronous; this stage is
 * the only place where the streams touch it per TR. The update (GLM maps, brain features,
 * learned networks, sliding sums, CKA cross-products) is timed as `engine`, with its parts
 * as `engine.glm`, `engine.features`, `engine.dictionary`, `engine.sliding`, `engine.cka`; reading the
 * coupling matrix with its nulls and BH q-values as `coupling`; the layer CKAs as `cka`.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0'-w1'-|     (features, coupling, cka set)
 * ```
 *
 * @param engine the session's coupling engine (its state is the replay's state)
 * @param alpha the BH false discovery rate for `significant`
 */
import { map, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../errors.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timed, type TrWork } from './trWork.ts';

export function updateCoupling(engine: CouplingEngine, alpha: number): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    const { units, extras, volume } = work;
    if (!units || !extras || !volume) throw new SyncactError('ENGINE_BAD_INPUT', `coupling stage: TR ${work.tr} arrived without its units, extras or volume`);
    if (engine.count !== work.tr) throw new SyncactError('ENGINE_BAD_INPUT', `coupling stage: engine is at TR ${engine.count}, work is for TR ${work.tr}`);
    timed(work, 'engine', () => engine.update({ units, extras, volume }));
    // The engine's own parts of that time, so telemetry says whether the GLM, the sliding
    // windows or the dictionary is the slow part.
    for (const [part, ms] of Object.entries(engine.stageTimes())) work.stageMs[`engine.${part}`] = ms;
    work.features = engine.lastFeatures();
    work.coupling = timed(work, 'coupling', () => engine.coupling(alpha));
    work.cka = timed(work, 'cka', () => engine.cka());
    return work;
  });
}
