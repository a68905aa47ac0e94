/**
 * Seeking (DESIGN.md §6): a seek, a loop or a start at --from restores the nearest
 * snapshot at or before the target and replays forward unpaced; the state after the jump
 * equals the state of an uninterrupted run at that TR.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, Subject, take, toArray } from 'rxjs';
import { SyncactError } from '../../server/errors.ts';
import { runPipeline, type PipelineOptions, type PipelineTr } from '../../server/streams/pipeline.ts';
import type { ClockCommand } from '../../server/streams/replayClock.ts';
import { SnapshotStore, snapshotBytes } from '../../server/streams/snapshots.ts';
import type { OpenedSession } from '../../server/streams/session.ts';
import { openTiny, stateValues } from './pipelineFixtures.ts';

const opened: OpenedSession[] = [];
const scratch: string[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh folder to spill into, so a test can see what is left in it. */
function spillParent(): string {
  const d = mkdtempSync(join(tmpdir(), 'syncact-seek-test-'));
  scratch.push(d);
  return d;
}

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

// In memory (the default budget holds the tiny session's snapshots), and with a budget of 0
// bytes, so every snapshot is spilled to disk and read back on the seek.
const placements = [
  { where: 'in memory', budget: () => undefined },
  { where: 'spilled', budget: () => ({ memoryBytes: 0, spill: { parent: spillParent() } }) },
];

describe.each(placements)('seek by snapshots held $where', ({ budget }) => {
  it('a seek back restores the nearest snapshot and replays forward: every later state equals the uninterrupted run', async () => {
    const ref = await uninterrupted();
    const s = await open();
    const controls = new Subject<ClockCommand>();
    let seeked = false;
    const out: PipelineTr[] = [];
    const snapshotBudget = budget();
    await new Promise<void>((resolve, reject) =>
      runPipeline(options(s, { controls, snapshotBudget })).subscribe({
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
    // The spill folder is private to the replay and gone once it ends.
    if (snapshotBudget) expect(readdirSync(snapshotBudget.spill.parent)).toEqual([]);
  });

  it('restoring the same snapshot twice gives the same states (restore copies, updates do not alter kept snapshots)', async () => {
    const ref = await uninterrupted();
    const s = await open();
    const controls = new Subject<ClockCommand>();
    let seeks = 0;
    const out: PipelineTr[] = [];
    await new Promise<void>((resolve, reject) =>
      runPipeline(options(s, { controls, snapshotBudget: budget() })).subscribe({
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
});

describe('seek by snapshots', () => {
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

/** Runs the tiny session's engine through TRs 0…n-1, offering each state to the stores. */
async function feed(s: OpenedSession, n: number, ...stores: SnapshotStore[]): Promise<void> {
  const { engine, inputs } = s;
  for (let k = 0; k < n; k++) {
    for (const store of stores) await store.offer(engine);
    engine.update({ units: inputs.responses[k], extras: inputs.extras(k), volume: await inputs.volumes.read(k) });
  }
  for (const store of stores) await store.offer(engine);
}

/** Bytes of the tiny session's snapshot once the unit maps hold cross-products (after their first fold, 8 TRs). */
async function foldedSnapshotBytes(): Promise<number> {
  const sizer = await open();
  const { inputs } = sizer;
  for (let k = 0; k < 9; k++) sizer.engine.update({ units: inputs.responses[k], extras: inputs.extras(k), volume: await inputs.volumes.read(k) });
  return snapshotBytes(sizer.engine.snapshot());
}

describe('SnapshotStore', () => {
  it('keeps at most maxKept snapshots by doubling its spacing, and finds the nearest at or before a TR', async () => {
    const s = await open();
    const store = new SnapshotStore({ every: 2, maxKept: 3 });
    await feed(s, 17, store);
    expect(store.trs.length).toBeLessThanOrEqual(3);
    expect(store.every).toBe(8);
    expect(store.trs).toEqual([0, 8, 16]);
    expect(store.nearestTr(15)).toBe(8);
    expect(store.nearestTr(16)).toBe(16);
    expect(store.spilledTrs).toEqual([]);
    expect(() => new SnapshotStore({ every: 0 })).toThrow(/positive integer/);
    expect(() => new SnapshotStore({ every: 1, maxKept: 1 })).toThrow(/at least 2/);
  });

  it('without a spill, holds fewer snapshots when they would exceed its memory budget', async () => {
    const s = await open();
    const bytes = await foldedSnapshotBytes();
    // The TR-0 snapshot is smaller, and the store sizes itself on the largest.
    expect(bytes).toBeGreaterThan(snapshotBytes(s.engine.snapshot()));
    const store = new SnapshotStore({ every: 1, memoryBytes: 3.5 * bytes, spill: null });
    await feed(s, 9, store);
    expect(store.capacity).toBe(3);
    expect(store.trs).toEqual([0, 4, 8]);
  });

  it('spills what does not fit its memory budget, keeps the in-memory bytes within it, and reads spilled snapshots back unchanged', async () => {
    const s = await open();
    const bytes = await foldedSnapshotBytes();
    const parent = spillParent();
    const inMemory = new SnapshotStore({ every: 2, spill: null });
    const spilling = new SnapshotStore({ every: 2, memoryBytes: 1.5 * bytes, spill: { parent } });
    await feed(s, 16, inMemory, spilling);
    expect(spilling.trs).toEqual(inMemory.trs);
    expect(spilling.trs).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16]);
    // Snapshots after the first fold (8 TRs) are too large to sit beside one in transit.
    expect(spilling.spilledTrs.filter((t) => t >= 8)).toEqual([8, 10, 12, 14, 16]);
    expect(spilling.bytesInMemory + bytes).toBeLessThanOrEqual(1.5 * bytes);
    const dir = spilling.spillDir as string;
    expect(dir.startsWith(parent)).toBe(true);
    expect(readdirSync(dir).length).toBe(spilling.spilledTrs.length);
    for (const tr of spilling.trs) {
      const a = await spilling.load(tr);
      const b = await inMemory.load(tr);
      expect(a.scalars).toEqual(b.scalars);
      expect(Object.keys(a.parts).sort()).toEqual(Object.keys(b.parts).sort());
      for (const [name, part] of Object.entries(b.parts)) {
        for (const [k, arr] of Object.entries(part.arrays)) expect(Array.from(a.parts[name].arrays[k] as Float64Array), `${tr} ${name}.${k}`).toEqual(Array.from(arr as Float64Array));
      }
    }
    spilling.close();
    expect(existsSync(dir)).toBe(false);
  });

  it('deletes the files of snapshots it drops when it doubles its spacing', async () => {
    const s = await open();
    const store = new SnapshotStore({ every: 1, maxKept: 4, memoryBytes: 0, spill: { parent: spillParent() } });
    await feed(s, 12, store);
    expect(store.trs).toEqual([0, 4, 8, 12]);
    expect(store.spilledTrs).toEqual([0, 4, 8, 12]);
    expect(readdirSync(store.spillDir as string).sort()).toEqual(['state-00000000.snap', 'state-00000004.snap', 'state-00000008.snap', 'state-00000012.snap']);
    store.close();
  });

  it('a failed spill (disk full) is REPLAY_SPILL_FAILED naming the folder, and the snapshot is not held', async () => {
    const s = await open();
    const diskFull = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const store = new SnapshotStore({
      every: 1,
      memoryBytes: 0,
      spill: { parent: spillParent(), faults: { beforeRename: () => Promise.reject(diskFull) } },
    });
    const err = await store.offer(s.engine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect((err as SyncactError).code).toBe('REPLAY_SPILL_FAILED');
    expect((err as SyncactError).file).toBe(store.spillDir);
    expect((err as SyncactError).message).toMatch(/TR 0.*ENOSPC/);
    expect(store.trs).toEqual([]);
    expect(readdirSync(store.spillDir as string)).toEqual([]);
    store.close();
  });

  it('a replay whose spill folder cannot be made ends with REPLAY_SPILL_FAILED naming it, not a wrong seek', async () => {
    const s = await open();
    const notAFolder = join(spillParent(), 'file');
    writeFileSync(notAFolder, 'x');
    const err = await lastValueFrom(runPipeline(options(s, { snapshotBudget: { memoryBytes: 0, spill: { parent: notAFolder } } })).pipe(toArray())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect((err as SyncactError).code).toBe('REPLAY_SPILL_FAILED');
    expect((err as SyncactError).file).toBe(notAFolder);
  });
});
