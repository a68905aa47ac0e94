/**
 * Seeking (DESIGN.md §6): a seek, a loop or a start at --from restores the nearest
 * snapshot at or before the target and replays forward unpaced; the state after the jump
 * equals the state of an uninterrupted run at that TR.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, Subject, take, toArray } from 'rxjs';
import { runPipeline, type PipelineOptions, type PipelineTr } from '../../server/streams/pipeline.ts';
import type { ClockCommand } from '../../server/streams/replayClock.ts';
import { SnapshotStore, snapshotBytes } from '../../server/streams/snapshots.ts';
import type { OpenedSession } from '../../server/streams/session.ts';
import { openTiny, stateValues } from './pipelineFixtures.ts';

const opened: OpenedSession[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

async function open(): Promise<OpenedSession> {
  const s = await openTiny({ maxTrs: 24 });
  opened.push(s);
  return s;
}

function options(s: OpenedSession, extra: Partial<PipelineOptions> = {}): PipelineOptions {
  return { inputs: s.inputs, engine: s.engine, alpha: 0.05, speed: 'max', annotateEvery: 6, annotate: s.annotate, snapshotEvery: 4, ...extra };
}

async function uninterrupted(): Promise<PipelineTr[]> {
  const s = await open();
  return lastValueFrom(runPipeline(options(s)).pipe(toArray()));
}

describe('seek by snapshots', () => {
  it('a seek back restores the nearest snapshot and replays forward: every later state equals the uninterrupted run', async () => {
    const ref = await uninterrupted();
    const s = await open();
    const controls = new Subject<ClockCommand>();
    let seeked = false;
    const out: PipelineTr[] = [];
    await new Promise<void>((resolve, reject) =>
      runPipeline(options(s, { controls })).subscribe({
        next: (t) => {
          out.push(t);
          if (t.state.tr === 17 && !seeked) {
            seeked = true;
            controls.next({ type: 'seek', tr: 6 });
          }
        },
        error: reject,
        complete: resolve,
      }),
    );
    expect(out.map((t) => t.state.tr)).toEqual([...Array.from({ length: 18 }, (_, k) => k), ...Array.from({ length: 18 }, (_, k) => k + 6)]);
    const after = out.slice(18);
    // Snapshot at 4 TRs, then TRs 4 and 5 replayed unpaced before TR 6 is processed.
    expect(after[0].caughtUp).toBe(2);
    expect(after.slice(1).every((t) => t.caughtUp === 0)).toBe(true);
    expect(after.map(stateValues)).toEqual(ref.slice(6).map(stateValues));
    expect(out.slice(0, 18).map(stateValues)).toEqual(ref.slice(0, 18).map(stateValues));
  });

  it('restoring the same snapshot twice gives the same states (restore copies, updates do not alter kept snapshots)', async () => {
    const ref = await uninterrupted();
    const s = await open();
    const controls = new Subject<ClockCommand>();
    let seeks = 0;
    const out: PipelineTr[] = [];
    await new Promise<void>((resolve, reject) =>
      runPipeline(options(s, { controls })).subscribe({
        next: (t) => {
          out.push(t);
          if (t.state.tr === 14 && seeks < 2) {
            seeks++;
            controls.next({ type: 'seek', tr: 9 });
          }
        },
        error: reject,
        complete: resolve,
      }),
    );
    const trs = out.map((t) => t.state.tr);
    expect(trs).toEqual([...Array.from({ length: 15 }, (_, k) => k), 9, 10, 11, 12, 13, 14, ...Array.from({ length: 15 }, (_, k) => k + 9)]);
    expect(out.map(stateValues)).toEqual(trs.map((k) => stateValues(ref[k])));
  });

  it('a seek forward replays from the current state, and a start at --from equals the uninterrupted run there', async () => {
    const ref = await uninterrupted();
    const s = await open();
    const controls = new Subject<ClockCommand>();
    const out: PipelineTr[] = [];
    await new Promise<void>((resolve, reject) =>
      runPipeline(options(s, { controls, start: 9 })).subscribe({
        next: (t) => {
          out.push(t);
          if (t.state.tr === 10) controls.next({ type: 'seek', tr: 19 });
        },
        error: reject,
        complete: resolve,
      }),
    );
    expect(out.map((t) => t.state.tr)).toEqual([9, 10, 19, 20, 21, 22, 23]);
    expect(out[0].caughtUp).toBe(9);
    expect(out[2].caughtUp).toBe(8);
    expect(out.map(stateValues)).toEqual([9, 10, 19, 20, 21, 22, 23].map((k) => stateValues(ref[k])));
  });

  it('looping restores TR 0: the second pass equals the first', async () => {
    const s = await open();
    const out = await lastValueFrom(runPipeline(options(s, { loop: true })).pipe(take(30), toArray()));
    expect(out.map((t) => t.state.tr)).toEqual([...Array.from({ length: 24 }, (_, k) => k), 0, 1, 2, 3, 4, 5]);
    expect(out.slice(24).map(stateValues)).toEqual(out.slice(0, 6).map(stateValues));
  });

  it('without snapshots a jump back replays from the start state', async () => {
    const ref = await uninterrupted();
    const s = await open();
    const controls = new Subject<ClockCommand>();
    const out: PipelineTr[] = [];
    let seeked = false;
    await new Promise<void>((resolve, reject) =>
      runPipeline(options(s, { controls, snapshotEvery: null })).subscribe({
        next: (t) => {
          out.push(t);
          if (t.state.tr === 12 && !seeked) {
            seeked = true;
            controls.next({ type: 'seek', tr: 5 });
          }
        },
        error: reject,
        complete: resolve,
      }),
    );
    const after = out.slice(13);
    expect(after[0].state.tr).toBe(5);
    expect(after[0].caughtUp).toBe(5);
    expect(after.map(stateValues)).toEqual(ref.slice(5).map(stateValues));
  });
});

describe('SnapshotStore', () => {
  it('keeps at most maxKept snapshots by doubling its spacing, and finds the nearest at or before a TR', async () => {
    const s = await open();
    const store = new SnapshotStore(2, 3);
    const { engine, inputs } = s;
    for (let k = 0; k < 17; k++) {
      store.offer(engine);
      engine.update({ units: inputs.responses[k], extras: inputs.extras(k), volume: await inputs.volumes.read(k) });
    }
    store.offer(engine);
    expect(store.trs.length).toBeLessThanOrEqual(3);
    expect(store.every).toBe(8);
    expect(store.trs).toEqual([0, 8, 16]);
    expect(store.nearest(15)?.tr).toBe(8);
    expect(store.nearest(16)?.tr).toBe(16);
    expect(() => new SnapshotStore(0)).toThrow(/positive integer/);
  });

  it('holds fewer snapshots when they would exceed its memory budget', async () => {
    const s = await open();
    const { engine, inputs } = s;
    // The size of a snapshot once the unit maps hold cross-products (after their first fold,
    // 8 TRs): the TR-0 snapshot is smaller, and the store sizes itself on the largest.
    const sizer = await open();
    for (let k = 0; k < 9; k++) sizer.engine.update({ units: inputs.responses[k], extras: inputs.extras(k), volume: await inputs.volumes.read(k) });
    const bytes = snapshotBytes(sizer.engine.snapshot());
    expect(bytes).toBeGreaterThan(snapshotBytes(engine.snapshot()));
    const store = new SnapshotStore(1, 16, 3.5 * bytes);
    for (let k = 0; k < 10; k++) {
      store.offer(engine);
      engine.update({ units: inputs.responses[k], extras: inputs.extras(k), volume: await inputs.volumes.read(k) });
    }
    expect(store.capacity).toBe(3);
    expect(store.trs.length).toBeLessThanOrEqual(3);
    expect(store.trs).toEqual([0, 4, 8]);
  });
});
