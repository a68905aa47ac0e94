/**
 * session.json: what a replay, an analysis or the dashboard needs to know about one
 * session (which files, the TR, the movie onset) and the engine settings, each with its
 * default. `syncact fixtures` writes one; users write their own for real data.
 *
 * Paths in the file are relative to the file's folder (so a session folder can be moved or
 * zipped as a whole) or absolute. Keys are snake_case, like nilearn's parameter names;
 * unknown keys are an error, so a typo never silently falls back to a default.
 *
 * Example:
 *   { "version": 1, "fmri": "bold.nii.gz", "movie": "movie.mp4", "mask": "mask.nii.gz",
 *     "atlas": "atlas.nii.gz", "atlas_labels": "atlas.tsv", "tr": 1, "onset": 0,
 *     "engine": { "window": 40 } }
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SyncactError } from './errors.ts';

export const SESSION_VERSION = 1;

/** Engine settings (DESIGN.md §4). Each is documented once, here. */
export interface EngineSettings {
  /** How a channel's feature map becomes one value per frame: spatial mean (default) or max. */
  pooling: 'mean' | 'max';
  /** Microtime bins per TR for binning frames and convolving (SPM's fMRI_T): 16. */
  microtimeBins: number;
  /** Where in each TR the convolved response is sampled, as a fraction of the TR in [0, 1): 0.5, the middle (SPM's fMRI_T0 = T/2). */
  hrfReference: number;
  /** Add the HRF's temporal derivative as a second regressor per unit: false. */
  hrfDerivative: boolean;
  /** K, the number of unit regressors in the voxelwise GLM (chosen units or components): 10. */
  regressors: number;
  /**
   * Which CNN units get their own synchronized map (each unit's GLM with intercept and
   * drift, beside the joint GLM of the K regressors): "all" (default), "none", or a list
   * of unit indices. Costs O(units × voxels) per TR and units × voxels × 8 bytes.
   */
  unitMaps: 'all' | 'none' | number[];
  /** DCT high-pass cut-off in Hz when the run length is known: 1/128 (SPM's 128 s). */
  highPassHz: number;
  /** Recursive least squares forgetting factor in (0, 1]; 1 equals batch OLS: 1. */
  forgetting: number;
  /** Sliding-window length for unit–feature correlations, in TRs: 30. */
  window: number;
  /** Window weighting: 'rectangular' (default) or 'exponential' (same effective length). */
  windowKind: 'rectangular' | 'exponential';
  /** Circular-shift null series per unit for significance: 100. */
  nulls: number;
  /** Benjamini–Hochberg false discovery rate across unit–feature pairs: 0.05. */
  fdrQ: number;
  /** Fraction of in-mask voxels taken as a map's "top voxels" for Dice in annotation: 0.1. */
  annotationTop: number;
  /**
   * Temporal null maps for the unit annotation's p-values (each a mapped unit's response
   * circularly shifted over the run; costs like that many more unit maps): 100, fewer
   * where the voxels would pass their memory budget (session.ts); 0 for none (p NaN).
   */
  annotationNulls: number;
  /** Estimator snapshots are kept every this many TRs, for seeking: 50. */
  snapshotEvery: number;
}

export const ENGINE_DEFAULTS: Readonly<EngineSettings> = Object.freeze({
  pooling: 'mean',
  microtimeBins: 16,
  hrfReference: 0.5,
  hrfDerivative: false,
  regressors: 10,
  unitMaps: 'all',
  highPassHz: 1 / 128,
  forgetting: 1,
  window: 30,
  windowKind: 'rectangular',
  nulls: 100,
  fdrQ: 0.05,
  annotationTop: 0.1,
  annotationNulls: 100,
  snapshotEvery: 50,
});

/** session.json as written on disk (snake_case keys, paths relative to its folder). */
export interface SessionFile {
  version: number;
  /** The 4D BOLD run (NIfTI). Required. */
  fmri: string;
  /** The movie shown during the run. */
  movie?: string | null;
  /** Brain mask on the BOLD grid; absent: an automatic EPI mask. */
  mask?: string | null;
  /** Label atlas (NIfTI) and its table (TSV: index, name). */
  atlas?: string | null;
  atlas_labels?: string | null;
  /** Background of the brain view (3D NIfTI in the BOLD's space, resampled to its grid); absent: the mean EPI. */
  anatomical?: string | null;
  /** Ground truth of a synthetic session: truth.json and the planted maps (4D NIfTI). */
  truth?: string | null;
  truth_maps?: string | null;
  /** Seconds per volume; absent or null: from the BOLD header. */
  tr?: number | null;
  /** Movie time (s) at the start of volume 0: 0. */
  onset?: number;
  /**
   * Spatial smoothing of every volume before masking, as nilearn's `smoothing_fwhm`: the
   * FWHM in mm of a Gaussian (server/engine/spatialSmoothing.ts); absent, null or 0: none.
   */
  smoothing_fwhm?: number | null;
  /** For synthetic sessions: the preset and seed that made them. */
  preset?: string | null;
  seed?: number | null;
  /**
   * BIDS entities naming the run, used to lay out `analyze --out` as a derivatives folder
   * (sub-<subject>/[ses-<session>/]func/sub-<subject>_[ses-<session>_]task-<task>_run-<run>_…).
   * Labels are letters and digits only, as BIDS requires; `task` defaults to "movie".
   */
  subject?: string | null;
  session?: string | null;
  task?: string | null;
  run?: string | number | null;
  /** Overrides of ENGINE_DEFAULTS, snake_case (e.g. "microtime_bins"). */
  engine?: Record<string, unknown>;
}

/** A loaded session: absolute paths, defaults filled in. */
export interface SessionConfig {
  /** Absolute path of the session.json it came from. */
  path: string;
  fmri: string;
  movie: string | null;
  mask: string | null;
  atlas: string | null;
  atlasLabels: string | null;
  /** The brain view's background image; null: the mean EPI. */
  anatomical: string | null;
  truth: string | null;
  truthMaps: string | null;
  tr: number | null;
  onset: number;
  /** FWHM (mm) of the spatial smoothing of each volume before masking; null: none. */
  smoothingFwhm: number | null;
  preset: string | null;
  seed: number | null;
  /** BIDS entities of the run (labels only, no "sub-" prefixes); task is "movie" unless named. */
  entities: BidsEntities;
  engine: EngineSettings;
}

export interface BidsEntities {
  subject: string | null;
  session: string | null;
  task: string;
  run: string | null;
}

const FILE_KEYS = ['fmri', 'movie', 'mask', 'atlas', 'atlas_labels', 'anatomical', 'truth', 'truth_maps'] as const;
const TOP_KEYS = new Set<string>(['version', ...FILE_KEYS, 'tr', 'onset', 'smoothing_fwhm', 'preset', 'seed', 'subject', 'session', 'task', 'run', 'engine']);

const ENGINE_KEYS: Record<string, keyof EngineSettings> = {
  pooling: 'pooling',
  microtime_bins: 'microtimeBins',
  hrf_reference: 'hrfReference',
  hrf_derivative: 'hrfDerivative',
  regressors: 'regressors',
  unit_maps: 'unitMaps',
  high_pass_hz: 'highPassHz',
  forgetting: 'forgetting',
  window: 'window',
  window_kind: 'windowKind',
  nulls: 'nulls',
  fdr_q: 'fdrQ',
  annotation_top: 'annotationTop',
  annotation_nulls: 'annotationNulls',
  snapshot_every: 'snapshotEvery',
};

/** Reads, validates and resolves a session.json. */
export async function loadSession(path: string): Promise<SessionConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read session file (${code})`, absolute);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyncactError('SESSION_INVALID', `not valid JSON: ${(e as Error).message}`, absolute);
  }
  const session = parseSession(json, absolute);
  for (const [field, file] of [
    ['fmri', session.fmri],
    ['movie', session.movie],
    ['mask', session.mask],
    ['atlas', session.atlas],
    ['atlas_labels', session.atlasLabels],
    ['anatomical', session.anatomical],
    ['truth', session.truth],
    ['truth_maps', session.truthMaps],
  ] as const) {
    if (file === null) continue;
    const exists = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) throw new SyncactError('FILE_NOT_FOUND', `session field "${field}" names a file that does not exist`, file);
  }
  return session;
}

/**
 * Validates parsed session.json content; `path` is the file it came from (relative paths
 * resolve against its folder, and errors name it). Does not touch the file system.
 */
export function parseSession(json: unknown, path: string): SessionConfig {
  const fail = (message: string): never => {
    throw new SyncactError('SESSION_INVALID', message, path);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('must be a JSON object');
  const o = json as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!TOP_KEYS.has(key)) fail(`unknown field "${key}" (fields: ${[...TOP_KEYS].join(', ')})`);
  }
  if (o.version !== undefined && o.version !== SESSION_VERSION) {
    fail(`field "version" must be ${SESSION_VERSION}, got ${JSON.stringify(o.version)}`);
  }
  const dir = dirname(resolve(path));
  const file = (key: (typeof FILE_KEYS)[number], required: boolean): string | null => {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) fail(`field "${key}" is required`);
      return null;
    }
    if (typeof v !== 'string' || v.trim() === '') fail(`field "${key}" must be a non-empty path string`);
    return resolve(dir, v as string);
  };
  const number = (key: string, v: unknown, ok: (n: number) => boolean, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(`field "${key}" must be ${what}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const tr = o.tr === undefined || o.tr === null ? null : number('tr', o.tr, (n) => n > 0, 'a positive number of seconds');
  const onset = o.onset === undefined ? 0 : number('onset', o.onset, () => true, 'a number of seconds');
  const smoothing = o.smoothing_fwhm === undefined || o.smoothing_fwhm === null ? 0 : number('smoothing_fwhm', o.smoothing_fwhm, (n) => n >= 0, 'a FWHM in mm ≥ 0 (0 or null: no smoothing)');
  const seed =
    o.seed === undefined || o.seed === null
      ? null
      : number('seed', o.seed, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
  let preset: string | null = null;
  if (o.preset !== undefined && o.preset !== null) {
    if (typeof o.preset !== 'string') fail('field "preset" must be a string');
    preset = o.preset as string;
  }
  const label = (key: 'subject' | 'session' | 'task' | 'run'): string | null => {
    const v = o[key];
    if (v === undefined || v === null) return null;
    const text = key === 'run' && typeof v === 'number' && Number.isInteger(v) && v >= 0 ? String(v) : v;
    if (typeof text !== 'string' || !/^[A-Za-z0-9]+$/.test(text)) fail(`field "${key}" must be a BIDS label (letters and digits only${key === 'run' ? ', or a non-negative integer' : ''}), got ${JSON.stringify(v)}`);
    return text as string;
  };
  const entities: BidsEntities = { subject: label('subject'), session: label('session'), task: label('task') ?? 'movie', run: label('run') };
  return {
    path: resolve(path),
    fmri: file('fmri', true) as string,
    movie: file('movie', false),
    mask: file('mask', false),
    atlas: file('atlas', false),
    atlasLabels: file('atlas_labels', false),
    anatomical: file('anatomical', false),
    truth: file('truth', false),
    truthMaps: file('truth_maps', false),
    tr,
    onset,
    smoothingFwhm: smoothing > 0 ? smoothing : null,
    preset,
    seed,
    entities,
    engine: parseEngine(o.engine, fail, number),
  };
}

function parseEngine(
  v: unknown,
  fail: (message: string) => never,
  number: (key: string, v: unknown, ok: (n: number) => boolean, what: string) => number,
): EngineSettings {
  const out: EngineSettings = { ...ENGINE_DEFAULTS };
  if (v === undefined || v === null) return out;
  if (typeof v !== 'object' || Array.isArray(v)) fail('field "engine" must be an object');
  const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    const name = `engine.${key}`;
    switch (ENGINE_KEYS[key]) {
      case 'pooling':
        if (value !== 'mean' && value !== 'max') fail(`field "${name}" must be "mean" or "max"`);
        out.pooling = value as 'mean' | 'max';
        break;
      case 'windowKind':
        if (value !== 'rectangular' && value !== 'exponential') fail(`field "${name}" must be "rectangular" or "exponential"`);
        out.windowKind = value as 'rectangular' | 'exponential';
        break;
      case 'hrfDerivative':
        if (typeof value !== 'boolean') fail(`field "${name}" must be true or false`);
        out.hrfDerivative = value as boolean;
        break;
      case 'microtimeBins':
        out.microtimeBins = number(name, value, int(1), 'a positive integer');
        break;
      case 'hrfReference':
        out.hrfReference = number(name, value, (n) => n >= 0 && n < 1, 'a fraction of the TR in [0, 1)');
        break;
      case 'regressors':
        out.regressors = number(name, value, int(1), 'a positive integer');
        break;
      case 'unitMaps':
        if (value === 'all' || value === 'none') out.unitMaps = value;
        else if (Array.isArray(value) && value.length > 0 && value.every((u) => Number.isInteger(u) && u >= 0)) out.unitMaps = value as number[];
        else fail(`field "${name}" must be "all", "none" or a non-empty list of unit indices, got ${JSON.stringify(value)}`);
        break;
      case 'highPassHz':
        out.highPassHz = number(name, value, (n) => n >= 0, 'a non-negative frequency in Hz (0: none)');
        break;
      case 'forgetting':
        out.forgetting = number(name, value, (n) => n > 0 && n <= 1, 'in (0, 1]');
        break;
      case 'window':
        out.window = number(name, value, int(3), 'an integer ≥ 3 (TRs)');
        break;
      case 'nulls':
        out.nulls = number(name, value, int(0), 'a non-negative integer');
        break;
      case 'fdrQ':
        out.fdrQ = number(name, value, (n) => n > 0 && n < 1, 'in (0, 1)');
        break;
      case 'annotationTop':
        out.annotationTop = number(name, value, (n) => n > 0 && n <= 1, 'a fraction in (0, 1]');
        break;
      case 'annotationNulls':
        out.annotationNulls = number(name, value, int(0), 'a non-negative integer');
        break;
      case 'snapshotEvery':
        out.snapshotEvery = number(name, value, int(1), 'a positive integer (TRs)');
        break;
      default:
        fail(`unknown field "${name}" (engine fields: ${Object.keys(ENGINE_KEYS).join(', ')})`);
    }
  }
  return out;
}
