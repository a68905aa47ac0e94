/**
 * Pairs each replay-clock tick with its TR of the lockstep join (volume k and its frames).
 *
 * Intuition: the clock says which TR is next, the reader knows how to get it; reading is
 * asynchronous (decoders, files), so ticks are served one at a time in order (concatMap),
 * and a reader error (a missing live volume, a dying decoder) ends the stream with that
 * error. The reader's streams stay open across ticks; the caller closes the reader.
 *
 * ```
 * ticks:   0-------1-------7--------     (7: a seek)
 * result:  --{0,TR0}-{1,TR1}--{7,TR7}   (each as soon as its read completes)
 * ```
 *
 * @param reader the lockstep reader of the session
 */
import { concatMap, from, map, type OperatorFunction } from 'rxjs';
import type { LockstepReader, LockstepTr } from './lockstep.ts';
import type { ClockTick } from './replayClock.ts';

export function joinLockstep(reader: LockstepReader): OperatorFunction<ClockTick, { tick: ClockTick; data: LockstepTr }> {
  return concatMap((tick) => from(reader.at(tick.tr)).pipe(map((data) => ({ tick, data }))));
}
