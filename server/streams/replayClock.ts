/**
 * The replay clock: one tick per TR, paced at TR / speed, that waits for its consumer.
 *
 * Intuition: the clock is a metronome that will not run ahead of the engine. It emits TR k,
 * then waits for two things before emitting the next TR: the consumer's acknowledgement
 * that k has been processed (`acks` emits k), and the time at which the next TR is due.
 * Volumes are therefore never dropped (DESIGN.md §6): a slow engine makes the clock wait,
 * and each tick says how late it is (`lagMs`). The schedule is anchored: TR k is due at
 * anchor + (k − anchorTr)·TR/speed, so after a slow stretch the clock emits as soon as the
 * consumer is ready until it has caught up with the timeline (as a scanner's backlog would
 * drain), and the lag shrinks back to 0. Play (resume), seek and speed changes re-anchor
 * the schedule at the moment they happen; pausing keeps the remaining part of the current
 * TR, so pause/resume does not shorten or lengthen a TR.
 *
 * Commands (an Observable, usually a Subject fed by the user interface):
 * - `{type:'pause'}` / `{type:'play'}`: stop / resume ticking (the TR in flight finishes).
 * - `{type:'seek', tr}`: TR `tr` is the next tick, due now (when playing).
 * - `{type:'speed', speed}`: 0.25 … 20, or 'max' (unpaced: the next TR as soon as the
 *   previous one is acknowledged).
 * - `{type:'loop', on}`: after the last TR, go back to TR 0 instead of completing.
 * - `{type:'stop'}`: complete now.
 *
 * Only the injected scheduler is read for time (no promises, no Date), so tests run in
 * virtual time with `TestScheduler.run`.
 *
 * Marble sketch (TR 1 s, speed 1, a consumer that acknowledges at once, then one that
 * takes 1.5 s per TR):
 *
 * ```
 * ticks (fast consumer):   0--1s--1--1s--2--1s--3|          lagMs 0, 0, 0, 0
 * ticks (slow consumer):   0--1.5s--1--1.5s--2--1.5s--3|    lagMs 0, 500, 1000, 1500
 * pause at 1.5 s, play at 3.5 s:
 * commands:                ---------P---------p--
 * ticks:                   0--1s--1-----------------0.5s--2--1s--3|
 * ```
 *
 * A seek while paused moves the position; nothing is emitted until play. At 'max' every
 * tick still goes through the scheduler, so that commands (and other I/O) get in between
 * TRs: with the default asyncScheduler that is about 1.4 ms per TR (~700 TRs/s with a
 * consumer that does nothing); asapScheduler is ~20× faster but lets a synchronous
 * consumer starve I/O.
 *
 * @param options.trCount number of TRs in the run (Infinity for an open-ended live run)
 * @param options.tr seconds per TR at speed 1
 * @param options.acks the consumer's "done with TR k" signals; exactly one per tick
 * @param options.controls play/pause/seek/speed/loop/stop commands
 * @param options.scheduler the time source (default asyncScheduler)
 * @returns ticks `{ tr, time, cause, scheduledAt, emittedAt, lagMs }`; completes after the
 *   last TR is acknowledged (when not looping) or on 'stop'; errors with REPLAY_BAD_ACK
 *   when an acknowledgement names a TR that is not in flight, and with any error of
 *   `acks` or `controls`.
 */
import { asyncScheduler, Observable, type SchedulerLike, type Subscription } from 'rxjs';
import { SyncactError } from '../errors.ts';

/** A speed factor in [MIN_SPEED, MAX_SPEED], or 'max' for unpaced replay. */
export type ReplaySpeed = number | 'max';

export const MIN_SPEED = 0.25;
export const MAX_SPEED = 20;

export type ClockCommand =
  | { type: 'play' }
  | { type: 'pause' }
  | { type: 'seek'; tr: number }
  | { type: 'speed'; speed: ReplaySpeed }
  | { type: 'loop'; on: boolean }
  | { type: 'stop' };

/** Why a tick is not simply the TR after the previous one: consumers reset state on a jump. */
export type TickCause = 'start' | 'next' | 'seek' | 'loop';

export interface ClockTick {
  /** TR index (from 0). */
  tr: number;
  /** Run time of the TR's start, k·TR seconds (the movie onset is added by the lockstep join). */
  time: number;
  cause: TickCause;
  /** Scheduler time (ms) at which this TR was due. */
  scheduledAt: number;
  /** Scheduler time (ms) at which it was emitted: later than scheduledAt when the consumer was slow. */
  emittedAt: number;
  /** emittedAt − scheduledAt: how far the replay is behind its timeline (0 at 'max'). */
  lagMs: number;
}

export interface ReplayClockOptions {
  trCount: number;
  /** Seconds per TR. */
  tr: number;
  acks: Observable<number>;
  controls?: Observable<ClockCommand>;
  /** Default 1. */
  speed?: ReplaySpeed;
  /** First TR (default 0). */
  start?: number;
  /** Default false. */
  loop?: boolean;
  /** Start paused (default false: ticking at once). */
  paused?: boolean;
  scheduler?: SchedulerLike;
}

/** Throws REPLAY_BAD_OPTIONS unless `speed` is 'max' or within [0.25, 20]. */
export function checkSpeed(speed: unknown): ReplaySpeed {
  if (speed === 'max') return speed;
  if (typeof speed !== 'number' || !(speed >= MIN_SPEED && speed <= MAX_SPEED)) {
    throw new SyncactError('REPLAY_BAD_OPTIONS', `speed must be between ${MIN_SPEED} and ${MAX_SPEED}, or 'max'; got ${String(speed)}`);
  }
  return speed;
}

function checkTr(tr: unknown, trCount: number, what: string): number {
  if (typeof tr !== 'number' || !Number.isInteger(tr) || tr < 0 || tr >= trCount) {
    throw new SyncactError('REPLAY_BAD_OPTIONS', `${what} must be a TR index in 0..${trCount - 1}; got ${String(tr)}`);
  }
  return tr;
}

export function replayClock(options: ReplayClockOptions): Observable<ClockTick> {
  return new Observable<ClockTick>((subscriber) => {
    const scheduler = options.scheduler ?? asyncScheduler;
    const { trCount, tr: trSeconds } = options;
    try {
      if (!(trCount >= 1) || !(Number.isInteger(trCount) || trCount === Infinity)) {
        throw new SyncactError('REPLAY_BAD_OPTIONS', `trCount must be a positive whole number (or Infinity); got ${trCount}`);
      }
      if (!(Number.isFinite(trSeconds) && trSeconds > 0)) {
        throw new SyncactError('REPLAY_BAD_OPTIONS', `tr must be a positive number of seconds; got ${trSeconds}`);
      }
    } catch (e) {
      subscriber.error(e);
      return;
    }

    let speed: ReplaySpeed;
    let next: number;
    try {
      speed = checkSpeed(options.speed ?? 1);
      next = checkTr(options.start ?? 0, trCount, 'start');
    } catch (e) {
      subscriber.error(e);
      return;
    }
    let loop = options.loop ?? false;
    let playing = !(options.paused ?? false);
    let cause: TickCause = 'start';
    /** The TR emitted and not yet acknowledged. */
    let inFlight: number | null = null;
    /** Scheduler time at which `next` is due (meaningful while playing and paced). */
    let dueAt = scheduler.now();
    /** While paused: how much of the current TR was left (ms). */
    let remaining = 0;
    let timer: Subscription | null = null;
    let done = false;

    const periodMs = (): number => (speed === 'max' ? 0 : (trSeconds * 1000) / speed);

    const cancelTimer = (): void => {
      timer?.unsubscribe();
      timer = null;
    };

    const finish = (): void => {
      if (done) return;
      done = true;
      cancelTimer();
      subscriber.complete();
    };

    const emit = (): void => {
      timer = null;
      if (done || !playing || inFlight !== null) return;
      const now = scheduler.now();
      // At 'max' the TR is due whenever it is emitted; paced, the anchor says when.
      const scheduledAt = speed === 'max' ? now : dueAt;
      const tick: ClockTick = {
        tr: next,
        time: next * trSeconds,
        cause,
        scheduledAt,
        emittedAt: now,
        lagMs: Math.max(0, now - scheduledAt),
      };
      inFlight = next;
      if (speed !== 'max') dueAt = scheduledAt + periodMs();
      next++;
      cause = 'next';
      if (next >= trCount) {
        next = 0;
        cause = 'loop';
      }
      subscriber.next(tick);
    };

    /** Arms the timer for the next tick when everything allows one; idempotent. */
    const pump = (): void => {
      if (done || !playing || inFlight !== null || timer !== null) return;
      // Through the scheduler even when due now: a consumer that acknowledges inside
      // next() must not recurse into emit (unbounded stack at 'max').
      const delay = speed === 'max' ? 0 : Math.max(0, dueAt - scheduler.now());
      timer = scheduler.schedule(emit, delay);
    };

    const onAck = (k: number): void => {
      if (done) return;
      if (inFlight === null || k !== inFlight) {
        fail(new SyncactError('REPLAY_BAD_ACK', `acknowledgement for TR ${k}, but ${inFlight === null ? 'no TR is' : `TR ${inFlight} is`} in flight`));
        return;
      }
      inFlight = null;
      // The last TR is done: complete unless looping (a loop toggled on meanwhile counts).
      if (cause === 'loop' && !loop) {
        finish();
        return;
      }
      pump();
    };

    const onCommand = (c: ClockCommand): void => {
      if (done) return;
      switch (c.type) {
        case 'pause':
          if (!playing) return;
          playing = false;
          remaining = speed === 'max' ? 0 : Math.max(0, dueAt - scheduler.now());
          cancelTimer();
          return;
        case 'play':
          if (playing) return;
          playing = true;
          dueAt = scheduler.now() + remaining;
          pump();
          return;
        case 'seek': {
          next = checkTr(c.tr, trCount, 'seek target');
          cause = 'seek';
          remaining = 0;
          dueAt = scheduler.now();
          cancelTimer();
          pump();
          return;
        }
        case 'speed': {
          const s = checkSpeed(c.speed);
          const now = scheduler.now();
          // The unelapsed part of the current TR stretches or shrinks with the speed.
          const factor = speed === 'max' || s === 'max' ? 0 : speed / s;
          if (playing) dueAt = now + Math.max(0, dueAt - now) * factor;
          else remaining *= factor;
          speed = s;
          cancelTimer();
          pump();
          return;
        }
        case 'loop':
          loop = c.on;
          // Switched off while waiting to wrap around: the run is over now.
          if (!loop && cause === 'loop' && inFlight === null) finish();
          return;
        case 'stop':
          finish();
          return;
        default:
          throw new SyncactError('REPLAY_BAD_OPTIONS', `unknown clock command ${JSON.stringify(c)}`);
      }
    };

    const fail = (e: unknown): void => {
      if (done) return;
      done = true;
      cancelTimer();
      subscriber.error(e);
    };

    const ackSub = options.acks.subscribe({ next: onAck, error: fail });
    const controlSub = options.controls?.subscribe({
      next: (c) => {
        try {
          onCommand(c);
        } catch (e) {
          fail(e);
        }
      },
      error: fail,
    });
    pump();
    return () => {
      done = true;
      cancelTimer();
      ackSub.unsubscribe();
      controlSub?.unsubscribe();
    };
  });
}
