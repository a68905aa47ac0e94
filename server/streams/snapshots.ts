/**
 * Seeking by estimator snapshots (DESIGN.md §6): `SnapshotStore` keeps the coupling
 * engine's state every N TRs, and `seekBySnapshots` makes the engine's state match the TR
 * a tick asks for before that TR is processed.
 *
 * Intuition: the engine must see every volume in order, so the state at TR k is "all TRs
 * before k, applied once each". After a seek, a loop, or a start at `--from k`, the tick's
 * TR is not the engine's next one; the operator restores the nearest snapshot at or
 * before k (or keeps the current state when that is nearer, for a jump forward) and
 * replays the TRs in between unpaced, without emitting them. The state then equals an
 * uninterrupted run's at k (tested in test/streams/pipelineSeek.test.ts).
 *
 * Memory: one snapshot holds the whole engine (GLM state is O(V·P)): 144 MB at hcp7t size
 * (403k voxels), a few MB for the demo. The store keeps at most `maxKept` snapshots, fewer
 * when they would exceed `maxBytes` (1 GiB by default; the largest snapshot so far sets the
 * count, since an early one can be smaller: the unit maps store no cross-products before
 * their first fold): when full it doubles its spacing and drops the snapshots that are no longer on
 * it, so memory stays bounded whatever the run length, and a seek replays at most
 * 2·spacing TRs.
 *
 * ```
 * ticks:     0  1  2  3  [seek 1]  1'  2'
 * snapshots: s0       s3
 * at 1':     restore s0, replay TR 0 unpaced, then process TR 1
 * ```
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../errors.ts';
import type { CouplingEngine, CouplingSnapshot } from '../engine/coupling.ts';
import type { ReplayInputs } from './replayInputs.ts';
import { timedAsync, type TrWork } from './trWork.ts';

export class SnapshotStore {
  private spacing: number;
  private readonly kept = new Map<number, CouplingSnapshot>();
  private limit: number;
  /** Bytes of the largest snapshot offered so far (0: none yet). */
  private largest = 0;

  /**
   * @param every take a snapshot when the engine has seen a multiple of this many TRs
   * @param maxKept the most snapshots held at once (≥ 2)
   * @param maxBytes memory budget for the held snapshots (at least 2 are kept regardless)
   */
  constructor(
    every: number,
    readonly maxKept = 16,
    readonly maxBytes = 2 ** 30,
  ) {
    if (!Number.isInteger(every) || every < 1) throw new SyncactError('REPLAY_BAD_OPTIONS', `snapshot spacing must be a positive integer, got ${every}`);
    if (!Number.isInteger(maxKept) || maxKept < 2) throw new SyncactError('REPLAY_BAD_OPTIONS', `at least 2 snapshots must be kept, got ${maxKept}`);
    this.spacing = every;
    this.limit = maxKept;
  }

  /** Snapshots held at most (maxKept, or fewer under the memory budget once one has been sized). */
  get capacity(): number {
    return this.limit;
  }

  /** Current spacing in TRs (doubles when the store is full). */
  get every(): number {
    return this.spacing;
  }

  /** The TR counts at which snapshots are held, ascending. */
  get trs(): number[] {
    return [...this.kept.keys()].sort((a, b) => a - b);
  }

  /** Keeps the engine's state if its TR count is on the spacing and not held yet. */
  offer(engine: CouplingEngine): void {
    const k = engine.count;
    if (k % this.spacing !== 0 || this.kept.has(k)) return;
    const snap = engine.snapshot();
    const bytes = snapshotBytes(snap);
    if (bytes > this.largest) {
      this.largest = bytes;
      this.limit = Math.max(2, Math.min(this.maxKept, Math.floor(this.maxBytes / Math.max(1, bytes))));
    }
    this.kept.set(k, snap);
    while (this.kept.size > this.limit) {
      this.spacing *= 2;
      for (const t of [...this.kept.keys()]) if (t % this.spacing !== 0) this.kept.delete(t);
    }
  }

  /** The held snapshot with the largest TR count ≤ k, or null. */
  nearest(k: number): { tr: number; snapshot: CouplingSnapshot } | null {
    let best = -1;
    for (const t of this.kept.keys()) if (t <= k && t > best) best = t;
    return best < 0 ? null : { tr: best, snapshot: this.kept.get(best) as CouplingSnapshot };
  }

  clear(): void {
    this.kept.clear();
  }
}

/** Bytes held by a snapshot's arrays, its parts' included. */
export function snapshotBytes(s: { arrays?: Record<string, ArrayBufferView>; parts?: Record<string, unknown> }): number {
  let n = 0;
  for (const a of Object.values(s.arrays ?? {})) n += a.byteLength;
  for (const p of Object.values(s.parts ?? {})) n += snapshotBytes(p as typeof s);
  return n;
}

export interface SeekOptions {
  engine: CouplingEngine;
  /** Null: no snapshots (a jump back then replays from TR 0 on a reset engine). */
  store: SnapshotStore | null;
  inputs: Pick<ReplayInputs, 'responses' | 'extras' | 'volumes'>;
  /** Rebuilds the engine state at TR 0 when there is no snapshot (restores a TR-0 snapshot). */
  reset: () => void;
}

/**
 * Brings the engine to the state just before the tick's TR (see the file comment), and
 * offers the state to the store. Adds `stageMs.seek` and sets `work.caughtUp` on a jump.
 */
export function seekBySnapshots(o: SeekOptions): OperatorFunction<TrWork, TrWork> {
  const { engine, store, inputs } = o;
  return concatMap(async (work) => {
    const k = work.tr;
    if (engine.count !== k) {
      await timedAsync(work, 'seek', async () => {
        const snap = store?.nearest(k) ?? null;
        // Going forward from the current state is cheaper than from an older snapshot.
        if (!(engine.count < k && (snap === null || snap.tr <= engine.count))) {
          if (snap) engine.restore(snap.snapshot);
          else o.reset();
        }
        while (engine.count < k) {
          const j = engine.count;
          const volume = await inputs.volumes.read(j);
          engine.update({ units: inputs.responses[j], extras: inputs.extras(j), volume });
          work.caughtUp++;
          store?.offer(engine);
        }
      });
    }
    store?.offer(engine);
    return work;
  });
}
