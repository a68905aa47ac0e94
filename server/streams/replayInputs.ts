/**
 * What the per-TR loop reads, once a session is open (server/streams/session.ts): the
 * unit responses of every TR (the CNN has run ahead over the whole movie, DESIGN.md §2:
 * the movie is known before the replay), the GLM design extras of every TR, and the
 * masked volumes, read on demand in any order (seeks go back).
 */

/** Masked BOLD volumes, one per TR. */
export interface VolumeSource {
  /** Volumes in the run. */
  readonly count: number;
  /** Masked voxels per volume (V). */
  readonly voxels: number;
  /**
   * Volume k over the mask (V values, mask order). Fastest in increasing k; an earlier k
   * restarts the underlying stream. Never returns a shared buffer.
   */
  read(k: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface ReplayInputs {
  /** TRs in the replay: the lockstep plan's TR count (planLockstep, via session.ts). */
  trCount: number;
  /** Seconds per TR. */
  tr: number;
  /** Per TR, every unit response the coupling engine takes (finite). */
  responses: readonly Float64Array[];
  /** Per TR, the GLM design extras (drift row, constant last). */
  extras(k: number): Float64Array;
  volumes: VolumeSource;
}
