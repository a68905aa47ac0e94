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
 * Memory: one snapshot holds the whole engine: a few MB for the demo, ~600 MB at hcp7t size
 * (403k voxels; the unit maps' U×V cross-products are most of it). The store keeps at most
 * `maxKept` snapshots; those that fit `memoryBytes` (512 MiB by default: the demo's 40 MB
 * snapshots all fit) with room left for one more in transit stay in memory, the others
 * are spilled to a private temporary folder (server/io/snapshotSpill.ts, up to
 * `diskBytes`, 4 GiB by default) and read back on a seek, so a replay's memory is its live
 * state plus at most one snapshot in transit (taken or being restored), whatever the run
 * length and snapshot size. When the store is full it doubles its spacing and drops the
 * snapshots that are no longer on it (their files too), so a seek replays at most
 * 2·spacing TRs. The count is sized on the largest snapshot so far, since an early one can
 * be smaller (the unit maps store no cross-products before their first fold). Without a
 * spill (`spill: null`) every snapshot stays in memory and at least 2 are kept regardless.
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
import { SnapshotSpill, type SnapshotSpillOptions } from '../io/snapshotSpill.ts';
import type { ReplayInputs } from './replayInputs.ts';
import { timedAsync, type TrWork } from './trWork.ts';

export interface SnapshotStoreOptions {
  /** Take a snapshot when the engine has seen a multiple of this many TRs. */
  every: number;
  /** The most snapshots held at once, in memory and spilled together (≥ 2; default 16). */
  maxKept?: number;
  /** Bytes of snapshots held in memory (default 512 MiB); the rest are spilled. */
  memoryBytes?: number;
  /** Bytes of spilled snapshots (default 4 GiB); with a spill, at least 2 are kept regardless. */
  diskBytes?: number;
  /** Where spilled snapshots go (a private folder under os.tmpdir() by default); null: none, all in memory. */
  spill?: SnapshotSpillOptions | null;
}

type Held = { tr: number; bytes: number } & ({ snapshot: CouplingSnapshot; file?: undefined } | { file: string; snapshot?: undefined });

export class SnapshotStore {
  readonly maxKept: number;
  readonly memoryBytes: number;
  readonly diskBytes: number;
  private spacing: number;
  private readonly kept = new Map<number, Held>();
  private readonly spill: SnapshotSpill | null;
  private limit: number;
  /** Bytes of the largest snapshot offered so far (0: none yet). */
  private largest = 0;

  constructor(o: SnapshotStoreOptions) {
    const { every } = o;
    this.maxKept = o.maxKept ?? 16;
    this.memoryBytes = o.memoryBytes ?? 2 ** 29;
    this.diskBytes = o.diskBytes ?? 2 ** 32;
    if (!Number.isInteger(every) || every < 1) throw new SyncactError('REPLAY_BAD_OPTIONS', `snapshot spacing must be a positive integer, got ${every}`);
    if (!Number.isInteger(this.maxKept) || this.maxKept < 2) throw new SyncactError('REPLAY_BAD_OPTIONS', `at least 2 snapshots must be kept, got ${this.maxKept}`);
    if (!(this.memoryBytes >= 0) || !(this.diskBytes >= 0)) throw new SyncactError('REPLAY_BAD_OPTIONS', `snapshot budgets must be non-negative byte counts, got ${this.memoryBytes} and ${this.diskBytes}`);
    this.spacing = every;
    this.limit = this.maxKept;
    this.spill = o.spill === null ? null : new SnapshotSpill(o.spill ?? {});
  }

  /** Snapshots held at most (maxKept, or fewer under the budgets once one has been sized). */
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

  /** The TR counts whose snapshots are spilled to disk, ascending. */
  get spilledTrs(): number[] {
    return this.trs.filter((t) => this.kept.get(t)?.file !== undefined);
  }

  /** Bytes of the snapshots held in memory. */
  get bytesInMemory(): number {
    let n = 0;
    for (const h of this.kept.values()) if (h.snapshot) n += h.bytes;
    return n;
  }

  /** The spill folder while it exists (null before the first spill and after close). */
  get spillDir(): string | null {
    return this.spill?.dir ?? null;
  }

  /**
   * Keeps the engine's state if its TR count is on the spacing and not held yet: in memory
   * when it fits the memory budget with room left for the largest snapshot in transit
   * (held ones are spilled when a larger snapshot shrinks that room), else written to the spill folder (REPLAY_SPILL_FAILED
   * when that fails: the snapshot is then not held, and nothing partial is).
   */
  async offer(engine: CouplingEngine): Promise<void> {
    const k = engine.count;
    if (k % this.spacing !== 0 || this.kept.has(k)) return;
    const snap = engine.snapshot();
    const bytes = snapshotBytes(snap);
    if (bytes > this.largest) {
      this.largest = bytes;
      const fits = Math.floor(this.memoryBytes / Math.max(1, bytes)) + (this.spill ? Math.floor(this.diskBytes / Math.max(1, bytes)) : 0);
      this.limit = Math.max(2, Math.min(this.maxKept, fits));
    }
    // Thin out before placing the new one, so no file is written only to be deleted.
    const trs = new Set([...this.kept.keys(), k]);
    while (trs.size > this.limit) {
      this.spacing *= 2;
      for (const t of [...trs]) if (t % this.spacing !== 0) trs.delete(t);
    }
    for (const t of [...this.kept.keys()]) if (!trs.has(t)) await this.drop(t);
    // One snapshot is in transit at a time (being taken, or read back for a seek): held ones
    // leave room for it, so the budget bounds the peak, not only what sits in memory.
    if (this.spill !== null) {
      for (const t of this.trs) {
        const held = this.kept.get(t) as Held;
        if (held.snapshot === undefined || this.bytesInMemory + this.largest <= this.memoryBytes) continue;
        this.kept.set(t, { tr: t, bytes: held.bytes, file: (await this.spill.write(t, held.snapshot)).file });
      }
    }
    if (!trs.has(k)) return;
    if (this.spill === null || this.bytesInMemory + bytes + this.largest <= this.memoryBytes) {
      this.kept.set(k, { tr: k, bytes, snapshot: snap });
      return;
    }
    const { file } = await this.spill.write(k, snap);
    this.kept.set(k, { tr: k, bytes, file });
  }

  /** The TR count of the held snapshot nearest at or before k, or null. */
  nearestTr(k: number): number | null {
    let best = -1;
    for (const t of this.kept.keys()) if (t <= k && t > best) best = t;
    return best < 0 ? null : best;
  }

  /** The snapshot held at `tr` (read back from the spill folder if it was spilled). */
  async load(tr: number): Promise<CouplingSnapshot> {
    const held = this.kept.get(tr);
    if (!held) throw new Error(`unreachable: no snapshot held at TR ${tr}`);
    if (held.snapshot) return held.snapshot;
    return (await (this.spill as SnapshotSpill).read(held.file)) as CouplingSnapshot;
  }

  /** Drops every snapshot and removes the spill folder; the store cannot spill afterwards. */
  close(): void {
    this.kept.clear();
    this.spill?.close();
  }

  private async drop(tr: number): Promise<void> {
    const held = this.kept.get(tr);
    this.kept.delete(tr);
    if (held?.file !== undefined) await this.spill?.remove(held.file);
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
        const at = store?.nearestTr(k) ?? null;
        // Going forward from the current state is cheaper than from an older snapshot.
        if (!(engine.count < k && (at === null || at <= engine.count))) {
          if (at !== null && store) engine.restore(await store.load(at));
          else o.reset();
        }
        while (engine.count < k) {
          const j = engine.count;
          const volume = await inputs.volumes.read(j);
          engine.update({ units: inputs.responses[j], extras: inputs.extras(j), volume });
          work.caughtUp++;
          await store?.offer(engine);
        }
      });
    }
    await store?.offer(engine);
    return work;
  });
}
