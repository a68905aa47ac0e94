/**
 * What the pipeline produces and the server publishes: the static description of a
 * session (sent once, and again on reconnect) and the state after each TR. The
 * pipeline (server/streams) builds these; server/net encodes them per topic; the client
 * draws them. Arrays stay typed arrays end to end (binary frames on the wire).
 */

export interface UnitInfo {
  /** Index into every per-unit array. */
  index: number;
  layer: string;
  channel: number;
}

export interface SessionInfo {
  /** Protocol version of these shapes; bumped on incompatible changes. */
  version: 1;
  name: string;
  /** Seconds. */
  tr: number;
  trCount: number;
  /** Movie onset offset in seconds. */
  onset: number;
  model: { id: string; backend: string };
  layers: { name: string; channels: number }[];
  units: UnitInfo[];
  /** Brain features (atlas regions / networks) in the order of every per-feature array. */
  features: string[];
  /** The data grid, and which grid voxels are in the mask (x fastest). */
  grid: { dims: [number, number, number]; affine: number[][] };
  maskIndices: Uint32Array;
  /** Mean EPI (or the anatomical the session names) over the whole grid, for the brain view. */
  background: Float32Array;
  /** Regressors the voxelwise GLM uses (unit indices or component names). */
  regressors: string[];
  /**
   * CNN units with a synchronized map of their own (their own GLM; session unit_maps): their
   * `unit-t`/`unit-beta` maps are that map. Absent or empty: only the regressors have maps.
   */
  mapUnits?: number[];
}

export interface Telemetry {
  /** Per-stage wall time for this TR, milliseconds (e.g. cnn, hrf, glm, sliding, features). */
  stageMs: Record<string, number>;
  /** TRs processed per second over the last few TRs. */
  trsPerSecond: number;
  /** How far this TR's processing ended behind its scheduled time, milliseconds. */
  lagMs: number;
}

export interface TrState {
  tr: number;
  /** Seconds since the run start: tr · TR. */
  time: number;
  clock: { playing: boolean; speed: number | 'max'; loop: boolean };
  /** HRF-convolved unit responses at this TR (one per unit). */
  unitResponses: Float32Array;
  /** Brain feature values at this TR (one per feature). */
  features: Float32Array;
  /** Sliding-window Pearson r, units × features, unit-major. */
  coupling: Float32Array;
  /** BH q-values, units × features (NaN where undefined). */
  couplingQ: Float32Array;
  /** 1 where significant at the session's FDR level. */
  significant: Uint8Array;
  /** Linear CKA per layer (same order as SessionInfo.layers), NaN while undefined. */
  cka: Float32Array;
  /** The last movie frame of this TR as a small RGB thumbnail, or null when the TR has no frame. */
  frame: { width: number; height: number; rgb: Uint8Array } | null;
  telemetry: Telemetry;
}

/** Each unit's best-matching network; recomputed every few TRs, not every TR. */
export interface AnnotationRow {
  unit: number;
  label: string;
  sign: 1 | -1;
  score: number;
  p: number;
  q: number;
}

/** A map over the mask (t-map of a unit's regressor, or a network's weights). */
export interface BrainMap {
  tr: number;
  kind: 'unit-t' | 'unit-beta' | 'network';
  index: number;
  /** One value per masked voxel (SessionInfo.maskIndices order). */
  values: Float32Array;
}
