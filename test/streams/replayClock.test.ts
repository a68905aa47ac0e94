import { describe, expect, it } from 'vitest';
import { map, of, Subject, timer, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { replayClock, type ClockCommand, type ClockTick, type ReplayClockOptions } from '../../server/streams/replayClock.ts';
import { clockedSteps } from '../../server/streams/clockedSteps.ts';
import { SyncactError } from '../../server/errors.ts';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/**
 * The clock driven by a consumer that spends `work(k)` ms on TR k (0: acknowledges at
 * once). Emits each tick when its processing is done, so output time = emittedAt + work.
 */
function run(
  ts: TestScheduler,
  options: Omit<ReplayClockOptions, 'acks' | 'scheduler'>,
  work: (k: number) => number = () => 0,
): Observable<ClockTick> {
  return clockedSteps({ ...options, scheduler: ts }, (t) => {
    const ms = work(t.tr);
    return ms === 0 ? of(t) : timer(ms, ts).pipe(map(() => t));
  });
}

/** Marble values from a list of [tr, emittedAt, lagMs, cause] for a TR of `trS` seconds. */
function ticks(trS: number, rows: [number, number, number, ClockTick['cause']][]): Record<string, ClockTick> {
  const out: Record<string, ClockTick> = {};
  rows.forEach(([tr, emittedAt, lagMs, cause], i) => {
    out[String.fromCharCode(97 + i)] = { tr, time: tr * trS, cause, emittedAt, scheduledAt: emittedAt - lagMs, lagMs };
  });
  return out;
}

describe('replay clock: pace', () => {
  it('emits one TR per TR at speed 1, from TR 0 at once, and completes after the last', () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      expectObservable(run(ts, { trCount: 4, tr: 1 })).toBe('a 999ms b 999ms c 999ms (d|)', ticks(1, [
        [0, 0, 0, 'start'],
        [1, 1000, 0, 'next'],
        [2, 2000, 0, 'next'],
        [3, 3000, 0, 'next'],
      ]));
    });
  });

  it.each([
    [2, 'a 499ms b 499ms (c|)', [0, 500, 1000]],
    [0.5, 'a 1999ms b 1999ms (c|)', [0, 2000, 4000]],
    [20, 'a 49ms b 49ms (c|)', [0, 50, 100]],
  ])('speed %s paces TRs at TR/speed', (speed, marbles, at) => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      expectObservable(run(ts, { trCount: 3, tr: 1, speed })).toBe(
        marbles,
        ticks(1, at.map((t, k) => [k, t, 0, k === 0 ? 'start' : 'next'] as [number, number, number, ClockTick['cause']])),
      );
    });
  });

  it('uses the TR in seconds (TR 0.72 s) and starts at options.start', () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      expectObservable(run(ts, { trCount: 5, tr: 0.72, start: 3 })).toBe('a 719ms (b|)', ticks(0.72, [
        [3, 0, 0, 'start'],
        [4, 720, 0, 'next'],
      ]));
    });
  });
});

describe('replay clock: pause, seek, speed', () => {
  it('pause keeps the rest of the TR; play resumes it', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable, expectSubscriptions }) => {
      // TR 1 at 1000; paused at 1500 with 500 ms left; resumed at 3500, so TR 2 at 4000.
      const controls = hot<ClockCommand>('1500ms p 1999ms r', { p: { type: 'pause' }, r: { type: 'play' } });
      expectObservable(run(ts, { trCount: 4, tr: 1, controls })).toBe('a 999ms b 2999ms c 999ms (d|)', ticks(1, [
        [0, 0, 0, 'start'],
        [1, 1000, 0, 'next'],
        [2, 4000, 0, 'next'],
        [3, 5000, 0, 'next'],
      ]));
      // The clock lets go of its controls when it completes.
      expectSubscriptions(controls.subscriptions).toBe('^ 4999ms !');
    });
  });

  it('starts paused when asked, and a seek while paused is the first TR after play', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('100ms s 99ms r', { s: { type: 'seek', tr: 5 }, r: { type: 'play' } });
      expectObservable(run(ts, { trCount: 7, tr: 1, controls, paused: true })).toBe('200ms a 999ms (b|)', ticks(1, [
        [5, 200, 0, 'seek'],
        [6, 1200, 0, 'next'],
      ]));
    });
  });

  it('seek makes the target the next TR, due at once, then paces from there', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('2500ms s', { s: { type: 'seek', tr: 7 } });
      expectObservable(run(ts, { trCount: 10, tr: 1, controls })).toBe('a 999ms b 999ms c 499ms d 999ms e 999ms (f|)', ticks(1, [
        [0, 0, 0, 'start'],
        [1, 1000, 0, 'next'],
        [2, 2000, 0, 'next'],
        [7, 2500, 0, 'seek'],
        [8, 3500, 0, 'next'],
        [9, 4500, 0, 'next'],
      ]));
    });
  });

  it('a seek backwards while a TR is in flight waits for its acknowledgement', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      // The consumer takes 800 ms per TR; the seek at 1200 lands while TR 1 is processed
      // (1000..1800), so TR 0 is emitted at 1800 (output at 2600), due at the seek: lag 600.
      const controls = hot<ClockCommand>('1200ms s', { s: { type: 'seek', tr: 0 } });
      const out = run(ts, { trCount: 2, tr: 1, controls }, () => 800);
      expectObservable(out).toBe('800ms a 999ms b 799ms c 799ms (d|)', {
        a: tick(0, 0, 0, 'start'),
        b: tick(1, 1000, 0, 'next'),
        c: tick(0, 1800, 600, 'seek'),
        d: tick(1, 2600, 400, 'next'),
      });
    });
  });

  it('a speed change mid-TR rescales what is left of it', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      // TR 1 at 1000, TR 2 due at 2000; at 1500 speed 2 leaves 250 ms: TR 2 at 1750, then every 500 ms.
      const controls = hot<ClockCommand>('1500ms x', { x: { type: 'speed', speed: 2 } });
      expectObservable(run(ts, { trCount: 5, tr: 1, controls })).toBe('a 999ms b 749ms c 499ms d 499ms (e|)', ticks(1, [
        [0, 0, 0, 'start'],
        [1, 1000, 0, 'next'],
        [2, 1750, 0, 'next'],
        [3, 2250, 0, 'next'],
        [4, 2750, 0, 'next'],
      ]));
    });
  });

  it('slowing down while paused stretches the remaining part of the TR', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      // Paused at 600 with 400 ms left; speed 0.5 makes it 800; play at 1000: TR 1 at 1800.
      const controls = hot<ClockCommand>('600ms p 199ms x 199ms r', {
        p: { type: 'pause' },
        x: { type: 'speed', speed: 0.5 },
        r: { type: 'play' },
      });
      expectObservable(run(ts, { trCount: 3, tr: 1, controls })).toBe('a 1799ms b 1999ms (c|)', ticks(1, [
        [0, 0, 0, 'start'],
        [1, 1800, 0, 'next'],
        [2, 3800, 0, 'next'],
      ]));
    });
  });
});

function tick(tr: number, emittedAt: number, lagMs: number, cause: ClockTick['cause'], trS = 1): ClockTick {
  return { tr, time: tr * trS, cause, emittedAt, scheduledAt: emittedAt - lagMs, lagMs };
}

describe('replay clock: backpressure', () => {
  it('waits for a slow consumer and reports the lag, never skipping a TR', () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      // 1.5 s of work per 1 s TR: each TR is handed out when the previous one is done.
      const out = run(ts, { trCount: 4, tr: 1 }, () => 1500);
      expectObservable(out).toBe('1500ms a 1499ms b 1499ms c 1499ms (d|)', {
        a: tick(0, 0, 0, 'start'),
        b: tick(1, 1500, 500, 'next'),
        c: tick(2, 3000, 1000, 'next'),
        d: tick(3, 4500, 1500, 'next'),
      });
    });
  });

  it('catches up with its timeline when the consumer speeds up again', () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      // TRs 0 and 1 take 1.5 s, later ones 100 ms: TR 2 (due 2000) leaves at 3000, TR 3
      // (due 3000) right after TR 2 at 3100, and TR 4 is on time again at 4000.
      const out = run(ts, { trCount: 5, tr: 1 }, (k) => (k < 2 ? 1500 : 100)).pipe(map((t) => [t.tr, t.emittedAt, t.lagMs]));
      expectObservable(out).toBe('1500ms a 1499ms b 99ms c 99ms d 899ms (e|)', {
        a: [0, 0, 0],
        b: [1, 1500, 500],
        c: [2, 3000, 1000],
        d: [3, 3100, 100],
        e: [4, 4000, 0],
      });
    });
  });
});

describe('replay clock: loop, max, stop', () => {
  it('loops back to TR 0 after the last TR until stopped', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('4500ms s', { s: { type: 'stop' } });
      const out = run(ts, { trCount: 3, tr: 1, loop: true, controls }).pipe(map((t) => `${t.tr}${t.cause[0]}`));
      expectObservable(out).toBe('a 999ms b 999ms c 999ms d 999ms e 499ms |', { a: '0s', b: '1n', c: '2n', d: '0l', e: '1n' });
    });
  });

  it('loop switched off while waiting to wrap around completes at once', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('3500ms o', { o: { type: 'loop', on: false } });
      const out = run(ts, { trCount: 2, tr: 1, loop: true, controls }).pipe(map((t) => t.tr));
      expectObservable(out).toBe('a 999ms b 999ms c 999ms d 499ms |', { a: 0, b: 1, c: 0, d: 1 });
    });
  });

  it("'max' emits the next TR as soon as the previous one is done", () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      const out = run(ts, { trCount: 4, tr: 1, speed: 'max' }, () => 10).pipe(map((t) => [t.tr, t.emittedAt, t.lagMs]));
      expectObservable(out).toBe('10ms a 9ms b 9ms c 9ms (d|)', { a: [0, 0, 0], b: [1, 10, 0], c: [2, 20, 0], d: [3, 30, 0] });
    });
    // A consumer that acknowledges inside next(): every TR in the same virtual instant,
    // in order, without recursing (2000 TRs would overflow a recursive design's stack).
    const ts2 = scheduler();
    const seen: number[] = [];
    let completed = false;
    run(ts2, { trCount: 2000, tr: 1, speed: 'max' }).subscribe({ next: (t) => seen.push(t.tr), complete: () => (completed = true) });
    ts2.flush();
    expect(completed).toBe(true);
    expect(seen).toEqual(Array.from({ length: 2000 }, (_, k) => k));
    expect(ts2.now()).toBe(0);
  });

  it("switching from 'max' to paced re-anchors at the switch", () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('25ms x', { x: { type: 'speed', speed: 1 } });
      // TRs 0,1,2 at 0,10,20 (10 ms work each); at 25 speed 1: TR 3 due at 25 → emitted at 30 (lag 5), TR 4 due 1025.
      const out = run(ts, { trCount: 5, tr: 1, speed: 'max', controls }, () => 10).pipe(map((t) => [t.tr, t.emittedAt, t.lagMs]));
      expectObservable(out).toBe('10ms a 9ms b 9ms c 9ms d 994ms (e|)', {
        a: [0, 0, 0],
        b: [1, 10, 0],
        c: [2, 20, 0],
        d: [3, 30, 5],
        e: [4, 1025, 0],
      });
    });
  });
});

describe('replay clock: errors travel downstream', () => {
  it('an acknowledgement for a TR not in flight is REPLAY_BAD_ACK', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const acks = cold<number>('500ms a', { a: 3 });
      expectObservable(replayClock({ trCount: 5, tr: 1, acks, scheduler: ts }).pipe(map((t) => t.tr))).toBe(
        'a 499ms #',
        { a: 0 },
        new SyncactError('REPLAY_BAD_ACK', 'acknowledgement for TR 3, but TR 0 is in flight'),
      );
    });
  });

  it('a bad speed or seek command errors the replay with REPLAY_BAD_OPTIONS', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('1500ms x', { x: { type: 'speed', speed: 50 } });
      expectObservable(run(ts, { trCount: 5, tr: 1, controls }).pipe(map((t) => t.tr))).toBe(
        'a 999ms b 499ms #',
        { a: 0, b: 1 },
        new SyncactError('REPLAY_BAD_OPTIONS', "speed must be between 0.25 and 20, or 'max'; got 50"),
      );
    });
    const ts2 = scheduler();
    ts2.run(({ hot, expectObservable }) => {
      const controls = hot<ClockCommand>('100ms x', { x: { type: 'seek', tr: 5 } });
      expectObservable(run(ts2, { trCount: 5, tr: 1, controls }).pipe(map((t) => t.tr))).toBe(
        'a 99ms #',
        { a: 0 },
        new SyncactError('REPLAY_BAD_OPTIONS', 'seek target must be a TR index in 0..4; got 5'),
      );
    });
  });

  it('bad options are errors, not throws', () => {
    const acks = new Subject<number>();
    const errors: unknown[] = [];
    for (const bad of [{ trCount: 0, tr: 1 }, { trCount: 3, tr: 0 }, { trCount: 3, tr: 1, speed: 0.1 }, { trCount: 3, tr: 1, start: 3 }]) {
      replayClock({ ...bad, acks }).subscribe({ error: (e) => errors.push(e) });
    }
    expect(errors).toHaveLength(4);
    for (const e of errors) expect(e).toMatchObject({ code: 'REPLAY_BAD_OPTIONS' });
  });

  it('an error in a step ends the replay and releases the clock', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable, expectSubscriptions }) => {
      const controls = hot<ClockCommand>('');
      const out = clockedSteps({ trCount: 5, tr: 1, controls, scheduler: ts }, (t) => {
        if (t.tr === 2) throw new Error('engine failed');
        return of(t.tr);
      });
      expectObservable(out).toBe('a 999ms b 999ms #', { a: 0, b: 1 }, new Error('engine failed'));
      expectSubscriptions(controls.subscriptions).toBe('^ 1999ms !');
    });
  });

  it('unsubscribing cancels the pending tick', () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      expectObservable(run(ts, { trCount: 5, tr: 1 }).pipe(map((t) => t.tr)), '^ 1500ms !').toBe('a 999ms b', { a: 0, b: 1 });
    });
    // Nothing is left scheduled once the subscription is gone.
    expect(ts.actions.length).toBe(0);
  });
});
