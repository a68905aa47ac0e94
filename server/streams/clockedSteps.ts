/**
 * Runs one step per replay-clock tick, and acknowledges each tick when its step completes:
 * the loop that closes the clock's backpressure (DESIGN.md §6).
 *
 * Intuition: `replayClock` waits for "done with TR k" before it emits TR k+1. Wiring that
 * by hand needs a Subject and care about ordering; this function owns the Subject, runs
 * the steps one at a time in tick order (concatMap), and acknowledges a TR only after its
 * step has emitted everything and completed. A step that errors ends the replay with that
 * error; unsubscribing stops the clock and the step in progress.
 *
 * ```
 * clock:   0---------1---------2|          (TR 1 s)
 * step(k): \--r0|    \--r1|    \--r2|      (each step's output, then its ack)
 * result:  ---r0--------r1--------r2|
 * ```
 *
 * @param options the replay clock's options, without `acks` (owned here)
 * @param step the work of one TR; its emissions are the result's emissions
 */
import { concat, concatMap, defer, EMPTY, from, Observable, Subject, type ObservableInput } from 'rxjs';
import { replayClock, type ClockTick, type ReplayClockOptions } from './replayClock.ts';

export function clockedSteps<R>(options: Omit<ReplayClockOptions, 'acks'>, step: (tick: ClockTick) => ObservableInput<R>): Observable<R> {
  return defer(() => {
    const acks = new Subject<number>();
    return replayClock({ ...options, acks }).pipe(
      concatMap((tick) =>
        concat(
          from(step(tick)),
          defer(() => {
            acks.next(tick.tr);
            return EMPTY;
          }),
        ),
      ),
    );
  });
}
