/**
 * What every incremental estimator in server/engine shares: one TR per `update`,
 * read-outs of the current answer at any time, and `snapshot()` / `restore()` as plain
 * typed arrays and numbers, so the replay can seek and a crashed run can resume
 * (snapshots are written to disk by server/streams, never by the engine).
 */
export type SnapshotArray = Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array;

export interface EstimatorSnapshot {
  /** Which estimator wrote it, e.g. "glm"; restore() rejects another kind. */
  kind: string;
  /** Bumped when the layout changes; restore() rejects an unknown version. */
  version: number;
  scalars: Record<string, number>;
  arrays: Record<string, SnapshotArray>;
}

export interface Estimator {
  snapshot(): EstimatorSnapshot;
  restore(snapshot: EstimatorSnapshot): void;
}
