/**
 * `attachFrame`: puts TR k's last movie frame, as a small thumbnail, on the work item.
 *
 * Intuition: the dashboard shows the frame the brain is responding to; the CNN has long
 * seen every frame (cnnStage.ts), so this only fetches one small picture per TR (from the
 * in-memory movie, or from a second decoder at thumbnail size) and it is timed as `frame`.
 * `concatMap` keeps TRs in order and the decoder reading forward.
 *
 * ```
 * work:   --w0------w1------|
 * fetch:    \--f0|    \--f1|
 * result: -----w0'------w1'-|     (w.frame set, null when the TR has no frame)
 * ```
 *
 * @param frame the thumbnail of TR k, or null (synchronously or not)
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import type { TrState } from '../../protocol/state.ts';
import { timedAsync, type TrWork } from './trWork.ts';

export type FrameProvider = (tr: number) => TrState['frame'] | Promise<TrState['frame']>;

export function attachFrame(frame: FrameProvider): OperatorFunction<TrWork, TrWork> {
  return concatMap(async (work) => {
    work.frame = await timedAsync(work, 'frame', async () => frame(work.tr));
    return work;
  });
}
