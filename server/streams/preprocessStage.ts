/**
 * `preprocessVolume`: online preprocessing of TR k's volume for the dictionary: the volume
 * less its least-squares fit on the design extras so far (drift, constant), z-scored with
 * the running mean and variance of every voxel.
 *
 * Intuition: dictionary learning depends on the data's scale and would spend atoms on the
 * slow drift (coupling.ts says why); the GLM and the correlations do not, so only the
 * dictionary's sample is preprocessed. Without learned networks this passes through.
 * Timed as `engine.preprocess`.
 *
 * ```
 * work:   --w0--w1--|
 * result: --w0--w1--|     (the dictionary's sample ready; stageMs['engine.preprocess'])
 * ```
 *
 * @param engine the coupling engine, after `updateFeatures` of TR k
 */
import { map, type OperatorFunction } from 'rxjs';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timedEngine, type TrWork } from './trWork.ts';

export function preprocessVolume(engine: CouplingEngine): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    timedEngine(work, 'preprocess', () => engine.preprocess());
    return work;
  });
}
