/**
 * `readVolumes`: reads TR k's masked volume onto the work item.
 *
 * Intuition: the only asynchronous step of a TR (file or live folder), kept in one place;
 * `concatMap` keeps TRs in order and never reads two volumes at once, so a slow disk
 * slows the TR down (and the clock waits: DESIGN.md §6) instead of piling reads up.
 *
 * ```
 * work:   --w0------w1------|
 * read:     \--v0|    \--v1|
 * result: -----w0'------w1'-|     (w.volume set; stageMs.volume)
 * ```
 *
 * @param volumes the session's volume source
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import type { VolumeSource } from './replayInputs.ts';
import { timedAsync, type TrWork } from './trWork.ts';

export function readVolumes(volumes: VolumeSource): OperatorFunction<TrWork, TrWork> {
  return concatMap(async (work) => {
    work.volume = await timedAsync(work, 'volume', () => volumes.read(work.tr));
    return work;
  });
}
