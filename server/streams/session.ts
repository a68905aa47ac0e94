/**
 * Opening a session: from a session.json (or the same fields as command-line flags), or a
 * synthetic preset generated in memory, to everything the pipeline needs (DESIGN.md §2):
 * the volume source, the mask and atlas on the data grid, the CNN stage run over the
 * movie (cnnStage.ts), the GLM design extras, the coupling engine, the `SessionInfo` the
 * server publishes, and the ground truth when the session has one.
 *
 * Stated behaviours:
 * - TR and lengths follow the lockstep rules (lockstep.ts `planLockstep`, whose warnings
 *   are kept): the session's TR, checked against the header's (REPLAY_TR_MISMATCH unless
 *   accepted), else the header's (REPLAY_NO_TR when neither); the replay has the run's
 *   volumes; TRs after the movie's end carry no frames (the units hold their last frame's
 *   activations, so the HRF responses settle at that frame's level) unless `stopAtMovieEnd`; frames
 *   after the run are not used; at most `maxTrs`. A session without a movie is
 *   SESSION_INVALID (there is nothing to couple the brain with).
 * - BOLD: a 4D NIfTI, or a live folder (one 3D file per TR, taken as each is complete;
 *   liveVolumes.ts). A live run needs a mask and is designed for the movie's length.
 * - Mask: the session's, else an automatic EPI mask of the run's mean.
 * - Atlas: its regions are the brain features (and the annotation templates); without an
 *   atlas the one feature is the global mean of the mask and annotation is off.
 * - Movie frames: a synthetic session (preset and seed in session.json) regenerates its
 *   procedural movie in memory, the exact frames its movie.mp4 encodes before H.264;
 *   any other movie (a video file, or a folder of images at `fps`) is decoded by ffmpeg
 *   at the model's input size.
 * - `hrf_derivative` is not used by the pipeline (one response per unit); a warning says so.
 */
import { resolve } from 'node:path';
import { cpus } from 'node:os';
import type { SessionInfo, UnitInfo } from '../../protocol/state.ts';
import { loadSession, parseSession, type EngineSettings, type SessionConfig } from '../config.ts';
import { SyncactError } from '../errors.ts';
import { CouplingEngine, type CouplingEngineOptions } from '../engine/coupling.ts';
import { cosineDriftOrder, dctRow } from '../engine/drift.ts';
import { SpatialSmoother } from '../engine/spatialSmoothing.ts';
import { createExtractor } from '../engine/cnn/factory.ts';
import type { FeatureExtractor } from '../engine/cnn/extractor.ts';
import { validateModelSpec, type ModelSpec } from '../engine/cnn/modelSpec.ts';
import type { UnitReductionSpec } from '../engine/cnn/unitReduction.ts';
import type { FrameSource } from '../engine/cnn/unitSeries.ts';
import { loadAnatomical } from '../io/anatomical.ts';
import { atlasFromLabels, brainFeaturesOptions, denseWeights, loadAtlas, type Atlas } from '../io/atlas.ts';
import { computeEpiMaskFromFile } from '../io/epiMask.ts';
import { FeatureCache } from '../io/featureCache.ts';
import { loadMask, maskIndices } from '../io/mask.ts';
import { openLiveFolder, type LiveVolumeOptions } from '../io/liveVolumes.ts';
import { openNifti } from '../io/nifti/read.ts';
import type { Grid } from '../io/nifti/types.ts';
import { PRESET_NAMES, type PresetName } from '../synth/presets.ts';
import { createSyntheticSession, type SyntheticSession } from '../synth/session.ts';
import { plantedAtlas } from '../synth/writeSession.ts';
import { runCnnStage, type CnnStageResult } from './cnnStage.ts';
import { planLockstep } from './lockstep.ts';
import type { FrameProvider } from './frameStage.ts';
import type { ReplayInputs, VolumeSource } from './replayInputs.ts';
import { isFolder, liveVolumes, maskVolume, meanOfFirst, movieFrames, movieThumbnails, niftiVolumes, syntheticThumbnails } from './sessionReaders.ts';
import { readTruth, type SessionTruth } from '../analysis/truthFile.ts';

export type { SessionTruth } from '../analysis/truthFile.ts';

/** Where a session comes from: a session.json, flags, or both (flags win). */
export interface SessionSource {
  session?: string;
  fmri?: string;
  movie?: string;
  mask?: string;
  atlas?: string;
  atlasLabels?: string;
  tr?: number;
  onset?: number;
  /** Frame rate of a movie given as a folder of images. */
  fps?: number;
  /** Spatial smoothing FWHM in mm, over the session's smoothing_fwhm; 0: none. */
  smoothingFwhm?: number;
}

/** How to run it: model, reduction, and the pipeline's own knobs. */
export interface OpenOptions {
  /** The CNN: a spec, or an extractor already made (tests). Default: the built-in model. */
  model?: ModelSpec | FeatureExtractor;
  /** Layers to tap (the built-in model's default: all). */
  layers?: string[];
  /** Frames per TR through the CNN (absent: every frame). */
  framesPerTr?: number;
  /** Chosen units as GLM regressors instead of PCA components. */
  units?: number[];
  /** Learned networks (dictionary atoms) coupled as brain features; 0: none. Default 8. */
  networks?: number;
  /** The dictionary is updated every this many TRs (codes every TR). Default 5 (1 below 10,000 voxels). */
  dictionaryUpdateEvery?: number;
  /** Replay at most this many TRs (from TR 0). */
  maxTrs?: number;
  acceptTrMismatch?: boolean;
  /** End the replay at the movie's last TR instead of replaying the rest of the run without frames. */
  stopAtMovieEnd?: boolean;
  /** Live folder polling and timeouts (when the BOLD run is a folder). */
  live?: LiveVolumeOptions;
  /** Feature cache folder; null: no cache. Default `.syncact/cache` (or $SYNCACT_CACHE_DIR). */
  cacheDir?: string | null;
  /** GLM worker threads (default: none below 100,000 voxels, else the GLM's own choice; see defaultWorkers). */
  workers?: number;
  /** Engine setting overrides on top of the session's (tests, bench). */
  engine?: Partial<EngineSettings>;
  /**
   * Spatial null draws for the annotation p-values of the GLM regressors (used only with
   * unit_maps "none"; default 100: p ≥ 1/101, enough for BH over 10 regressors). The
   * units' own maps use the temporal null, session `annotation_nulls`.
   */
  annotationNulls?: number;
  /** Progress lines (CNN frames, cache) for a terminal. */
  log?: (message: string) => void;
}

export interface OpenedSession {
  config: SessionConfig;
  info: SessionInfo;
  inputs: ReplayInputs;
  engine: CouplingEngine;
  settings: EngineSettings;
  grid: Grid;
  mask: Uint8Array;
  /** Grid index of each masked voxel (mask order). */
  maskIndices: Uint32Array;
  atlas: Atlas | null;
  cnn: CnnStageResult;
  /** Indices among the responses of the GLM regressors (their maps). */
  glmUnits: number[];
  /** CNN units with their own synchronized map (engine.unit_maps; indices among the U units). */
  mapUnits: number[];
  /** The learned networks coupled as features (atoms), 0 for none. */
  networks: number;
  /** Null shifts of the sliding coupling (0: no significance). */
  nullShifts: number;
  /**
   * 'circular' when the run's length is known (shifts over the whole precomputed unit
   * series, ready from the first TR), 'lagged' for an open-ended live run.
   */
  nullKind: NullKind;
  annotate: boolean;
  truth: SessionTruth | null;
  warnings: string[];
  /** The TR's last movie frame as a thumbnail (at most 64 px wide), null for a TR without frames. */
  frame: FrameProvider;
  /** Open times, ms: mask, atlas, CNN stage (cnn, hrf, reduction), engine. */
  openMs: Record<string, number>;
  close(): Promise<void>;
}

/** Reads session.json and/or flags into a SessionConfig. */
export async function resolveSessionConfig(source: SessionSource): Promise<SessionConfig> {
  let config: SessionConfig;
  if (source.session) {
    config = await loadSession(source.session);
  } else {
    if (!source.fmri) throw new SyncactError('CLI_USAGE', 'give --session FILE, or at least --fmri and --movie');
    config = parseSession({ fmri: source.fmri }, resolve('flags.json'));
  }
  const abs = (p: string | undefined, cur: string | null) => (p === undefined ? cur : resolve(p));
  return {
    ...config,
    fmri: abs(source.fmri, config.fmri) as string,
    movie: abs(source.movie, config.movie),
    mask: abs(source.mask, config.mask),
    atlas: abs(source.atlas, config.atlas),
    atlasLabels: abs(source.atlasLabels, config.atlasLabels),
    tr: source.tr ?? config.tr,
    onset: source.onset ?? config.onset,
    smoothingFwhm: source.smoothingFwhm === undefined ? config.smoothingFwhm : source.smoothingFwhm > 0 ? source.smoothingFwhm : null,
  };
}

/** The session's smoother on the data grid (only the mask's bounding box is computed), or null. */
function smootherFor(config: SessionConfig, grid: Grid, mask: Uint8Array): SpatialSmoother | null {
  return config.smoothingFwhm === null ? null : new SpatialSmoother({ grid, fwhm: config.smoothingFwhm, mask });
}

/** Opens a session from files (session.json and/or flags). */
export async function openSession(source: SessionSource, options: OpenOptions = {}): Promise<OpenedSession> {
  const config = await resolveSessionConfig(source);
  const settings = { ...config.engine, ...options.engine };
  const warnings: string[] = [];
  const openMs: Record<string, number> = {};
  const live = await isFolder(config.fmri);
  const run = live ? await openLiveFolder(config.fmri, options.live ?? {}) : await openNifti(config.fmri);
  const grid = run.grid;
  try {
    let t = performance.now();
    let mask: Uint8Array;
    let mean: Float64Array | null = null;
    if (config.mask) {
      mask = await loadMask(config.mask, grid, { dataPath: config.fmri });
    } else if (live) {
      throw new SyncactError('SESSION_INVALID', 'a live folder needs a mask (the automatic EPI mask is computed from the whole run)', config.fmri);
    } else {
      const epi = await computeEpiMaskFromFile(config.fmri);
      mask = epi.mask;
      mean = epi.mean;
      warnings.push('no mask given: using an automatic EPI mask of the run mean');
    }
    openMs.mask = performance.now() - t;
    t = performance.now();
    const atlas = config.atlas ? await loadAtlas({ image: config.atlas, labels: config.atlasLabels ?? undefined, target: grid, mask }) : null;
    if (atlas) warnings.push(...atlas.warnings);
    openMs.atlas = performance.now() - t;

    const synthetic = config.preset !== null && config.seed !== null && PRESET_NAMES.includes(config.preset as PresetName);
    // A synthetic session's own movie is regenerated in memory; a --movie flag over it is decoded.
    const synth = synthetic && source.movie === undefined ? createSyntheticSession({ preset: config.preset as PresetName, seed: config.seed as number }) : null;
    if (!config.movie && !synth) throw new SyncactError('SESSION_INVALID', 'the session names no movie: there is nothing to couple the brain with', config.path);
    const indices = maskIndices(mask);
    const truth = config.truth ? await readTruth(config.truth, config.truthMaps, grid) : null;
    let background: Float32Array;
    let volumes: VolumeSource;
    let runLength: number | null;
    let headerTr: number | null;
    if ('dir' in run) {
      volumes = liveVolumes(run, indices, smootherFor(config, grid, mask));
      runLength = run.count;
      headerTr = run.headerTr;
      background = new Float32Array(grid.dims[0] * grid.dims[1] * grid.dims[2]);
      indices.forEach((g) => (background[g] = 1));
    } else {
      volumes = niftiVolumes(run, indices, smootherFor(config, grid, mask));
      runLength = run.volumeCount;
      headerTr = run.header.tr;
      background = mean ? Float32Array.from(mean) : await meanOfFirst(run, 10);
    }
    // The session's anatomical, when it names one, is drawn under the maps instead.
    if (config.anatomical) background = await loadAnatomical(config.anatomical, grid);
    return await assemble({
      config,
      settings,
      options,
      warnings,
      openMs,
      headerTr,
      runLength,
      grid,
      mask,
      indices,
      atlas,
      volumes,
      truth,
      background,
      synth,
      fps: source.fps,
      name: config.preset ? `${config.preset} (seed ${config.seed})` : config.fmri,
    });
  } catch (e) {
    if (!('dir' in run)) await run.close();
    throw e;
  }
}

/**
 * A synthetic preset generated in memory and streamed, never written (the hcp7t bench):
 * volumes come from the generator, the mask and atlas are the phantom's, the truth is
 * in memory. `source.smoothingFwhm` smooths the volumes as a session.json's smoothing_fwhm does.
 */
export async function openSyntheticSession(
  preset: PresetName,
  seed: number,
  options: OpenOptions = {},
  source: Pick<SessionSource, 'smoothingFwhm'> = {},
): Promise<OpenedSession> {
  const synth = createSyntheticSession({ preset, seed });
  const config = parseSession(
    { fmri: '<synthetic>', tr: synth.tr, onset: synth.onset, preset, seed, smoothing_fwhm: source.smoothingFwhm ?? null },
    resolve(`${preset}.synthetic.json`),
  );
  const settings = { ...config.engine, ...options.engine };
  const indices = maskIndices(synth.mask);
  const atlas = atlasFromLabels({
    labels: plantedAtlas(synth),
    grid: synth.grid,
    target: synth.grid,
    mask: synth.mask,
    table: synth.truth.networks.map((n, i) => ({ index: i + 1, name: n.name })),
  });
  const masked = maskVolume(indices, smootherFor(config, synth.grid, synth.mask));
  const volumes: VolumeSource = {
    count: synth.nVolumes,
    voxels: indices.length,
    read: async (k) => masked(synth.volume(k)),
    close: async () => {},
  };
  const truth: SessionTruth = {
    networks: synth.truth.networks.map((n) => ({ name: n.name, driver: n.driver, sign: n.sign, map: n.map, signal: n.signal })),
    features: synth.features.names.map((name, f) => ({ name, drive: synth.truth.drives[f] })),
  };
  return assemble({
    config,
    settings,
    options,
    warnings: [],
    openMs: {},
    headerTr: synth.tr,
    runLength: synth.nVolumes,
    grid: synth.grid,
    mask: synth.mask,
    indices,
    atlas,
    volumes,
    truth,
    background: Float32Array.from(synth.volume(0)),
    synth,
    name: `${preset} (seed ${seed}, streamed)`,
  });
}

interface Parts {
  config: SessionConfig;
  settings: EngineSettings;
  options: OpenOptions;
  warnings: string[];
  openMs: Record<string, number>;
  /** TR in the BOLD header (null: none, e.g. 3D live files). */
  headerTr: number | null;
  /** Volumes in the run; null for an open-ended live folder. */
  runLength: number | null;
  /** Frame rate of a movie given as a folder of images. */
  fps?: number;
  grid: Grid;
  mask: Uint8Array;
  indices: Uint32Array;
  atlas: Atlas | null;
  volumes: VolumeSource;
  truth: SessionTruth | null;
  background: Float32Array;
  synth: SyntheticSession | null;
  name: string;
}

async function assemble(p: Parts): Promise<OpenedSession> {
  const { config, settings, options, warnings, openMs } = p;
  const onset = config.onset;
  let extractor: FeatureExtractor | null = null;
  let ownsExtractor = false;
  let movieClose: (() => Promise<void>) | null = null;
  let thumbClose: (() => Promise<void>) | null = null;
  let engine: CouplingEngine | null = null;
  try {
    if (settings.hrfDerivative) warnings.push('hrf_derivative is not used by the pipeline: one HRF response per unit');
    const made = await makeExtractor(options);
    extractor = made.extractor;
    ownsExtractor = made.owned;

    // The movie as frames at the model's input size.
    const movie = p.synth
      ? { source: p.synth.movie as FrameSource, hash: `synthetic:${p.synth.preset}:${p.synth.seed}`, close: async () => {} }
      : await movieFrames(config.movie as string, extractor, p.fps);
    movieClose = movie.close;
    // TR and length by the lockstep rules (lockstep.ts): session TR vs header, movie vs run.
    const plan = planLockstep({
      tr: config.tr,
      headerTr: p.headerTr,
      acceptTrMismatch: options.acceptTrMismatch,
      onset,
      volumeCount: p.runLength,
      fps: movie.source.fps,
      frameCount: movie.source.frameCount,
      stopAtMovieEnd: options.stopAtMovieEnd,
      fmri: config.fmri,
      movie: config.movie ?? 'the synthetic movie',
    });
    warnings.push(...plan.warnings.map((w) => w.message));
    const tr = plan.tr;
    const thumbs = p.synth ? { frame: syntheticThumbnails(p.synth, plan), close: async () => {} } : await movieThumbnails(config.movie as string, plan, p.fps);
    thumbClose = thumbs.close;
    // An open-ended live run is designed (drift basis, CNN responses) for the movie's length.
    let trCount = plan.trCount ?? plan.movieEndTr;
    if (plan.trCount === null) warnings.push(`live run: designed for ${trCount} TRs, the movie's length`);
    if (options.maxTrs !== undefined) trCount = Math.min(trCount, options.maxTrs);
    if (trCount < 3) throw new SyncactError('REPLAY_BAD_OPTIONS', `the replay would have ${trCount} TRs; it needs at least 3`, config.fmri);

    // PCA cannot give more components than there are units, nor more than the TRs allow.
    const unitCount = extractor.layers.reduce((n, l) => n + l.channels, 0);
    const K = Math.min(settings.regressors, trCount - 2, unitCount);
    if (!options.units && K < settings.regressors) {
      warnings.push(`GLM regressors: ${K} principal components instead of ${settings.regressors} (${unitCount} units, ${trCount} TRs)`);
    }
    const reduction: UnitReductionSpec = options.units ? { kind: 'units', units: options.units } : { kind: 'pca', components: K, upToRank: true };
    const cache = options.cacheDir === null ? null : new FeatureCache({ dir: options.cacheDir, logger: options.log });
    let lastPct = -1;
    const cnn = await runCnnStage({
      extractor,
      movie: movie.source,
      movieHash: movie.hash,
      tr,
      onset,
      nTrs: trCount,
      binsPerTr: settings.microtimeBins,
      hrfReference: settings.hrfReference,
      framesPerTr: options.framesPerTr,
      reduction,
      cache,
      log: options.log,
      onProgress: (done, total) => {
        const pct = Math.floor((100 * done) / total);
        if (options.log && pct >= lastPct + 10) {
          lastPct = pct;
          options.log(`CNN ${extractor?.id}: ${done}/${total} frames`);
        }
      },
    });
    if (options.log) options.log(cnn.cacheHit ? 'CNN activations: from the feature cache' : `CNN activations: computed (${cnn.cacheMiss ?? 'no cache'})`);
    Object.assign(openMs, cnn.stageMs);
    if (cnn.reducer.k < K) {
      warnings.push(`GLM regressors: ${cnn.reducer.k} principal components instead of ${K}: the ${unitCount} unit responses have rank ${cnn.reducer.k}`);
    }

    const t = performance.now();
    const U = cnn.units;
    const V = p.indices.length;
    const extrasWidth = cosineDriftOrder(trCount, tr, settings.highPassHz) + 1;
    const extras = (k: number) => dctRow(k, trCount, tr, settings.highPassHz);
    const atlasOption: CouplingEngineOptions['atlas'] = p.atlas ? brainFeaturesOptions(p.atlas) : { labelOfVoxel: new Int32Array(V), regions: 1 };
    // The unit responses of all trCount TRs are computed above, before the replay: with a
    // known run length the nulls are circular shifts of them; a live run keeps lags.
    const nullKind: NullKind = plan.trCount === null ? 'lagged' : 'circular';
    const shifts = nullShifts(settings.nulls, settings.window, trCount, nullKind);
    if (shifts < settings.nulls) warnings.push(nullShiftsWarning(settings.nulls, shifts, settings.window, trCount, nullKind));
    const annotate = p.atlas !== null;
    const mapUnits = unitMapsOf(settings.unitMaps, U, config.path);
    const annotationNulls = temporalNullColumns(settings, trCount, V, nullKind, annotate && mapUnits.length > 0);
    if (annotationNulls.warning) warnings.push(annotationNulls.warning);
    const series = (nullKind === 'circular' && shifts > 0) || annotationNulls.count > 0 ? flattenResponses(cnn.responses, trCount) : undefined;
    const nullSeries = nullKind === 'circular' && shifts > 0 ? series : undefined;
    const networks = Math.max(0, options.networks ?? 8);
    const layers = cnn.layout.layers.map((l, i) => ({
      name: l.name,
      units: Array.from({ length: l.channels }, (_, c) => cnn.layout.offsets[i] + c),
    }));
    engine = new CouplingEngine({
      voxels: V,
      units: U + cnn.reducer.k,
      glmUnits: cnn.glmUnits,
      extras: extrasWidth,
      // The drift row ends with its constant (dctRow).
      unitMaps: {
        units: mapUnits,
        interceptColumn: extrasWidth - 1,
        nulls:
          annotationNulls.count > 0 && series
            ? { count: annotationNulls.count, seed: (config.seed ?? 0) + 7, minShift: annotationNulls.minShift, series }
            : undefined,
      },
      glm: { forgetting: settings.forgetting, workers: options.workers ?? defaultWorkers(V) },
      atlas: atlasOption,
      sliding: {
        window: settings.window,
        // Same effective length: weights 2^(−age/h) sum to 1/(1 − 2^(−1/h)) ≈ h/ln 2 = W.
        weighting: settings.windowKind === 'rectangular' ? { kind: 'rectangular' } : { kind: 'exponential', halfLife: settings.window * Math.LN2 },
        nulls: shifts > 0 ? { shifts, seed: config.seed ?? 0, pool: 'all', series: nullSeries } : undefined,
      },
      dictionary: networks > 0 ? { atoms: networks, couple: true, alpha: 1, updateEvery: options.dictionaryUpdateEvery ?? (V < 10_000 ? 1 : 5), seed: 0 } : undefined,
      layers,
      ckaForgetting: 1,
      annotation: annotate
        ? {
            templates: (p.atlas as Atlas).names.map((_, r) => denseWeights(p.atlas as Atlas, r)),
            names: (p.atlas as Atlas).names,
            topFraction: settings.annotationTop,
            nulls: options.annotationNulls ?? 100,
            seed: 3,
            grid: { dims: p.grid.dims, voxelIndex: Int32Array.from(p.indices) },
          }
        : undefined,
    });
    openMs.engine = performance.now() - t;

    const featureNames = [...(p.atlas ? p.atlas.names : ['global']), ...Array.from({ length: networks }, (_, j) => `network_${j + 1}`)];
    const units: UnitInfo[] = [];
    cnn.layout.layers.forEach((l, i) => {
      for (let c = 0; c < l.channels; c++) units.push({ index: cnn.layout.offsets[i] + c, layer: l.name, channel: c });
    });
    cnn.regressorNames.forEach((_, j) => units.push({ index: U + j, layer: cnn.reducer.kind === 'pca' ? 'pca' : 'regressor', channel: j }));
    const info: SessionInfo = {
      version: 1,
      name: p.name,
      tr,
      trCount,
      onset,
      model: { id: extractor.id, backend: extractor.backend },
      layers: cnn.layout.layers.map((l) => ({ name: l.name, channels: l.channels })),
      units,
      features: featureNames,
      grid: { dims: p.grid.dims, affine: p.grid.affine },
      maskIndices: p.indices,
      background: p.background,
      regressors: cnn.regressorNames,
      mapUnits,
    };
    const inputs: ReplayInputs = { trCount, tr, responses: cnn.responses, extras, volumes: p.volumes };
    const built = engine;
    const ex = extractor;
    const owned = ownsExtractor;
    const closeMovie = movieClose;
    return {
      config,
      info,
      inputs,
      engine: built,
      settings,
      grid: p.grid,
      mask: p.mask,
      maskIndices: p.indices,
      atlas: p.atlas,
      cnn,
      glmUnits: cnn.glmUnits,
      mapUnits,
      networks,
      nullShifts: shifts,
      nullKind,
      annotate,
      truth: p.truth,
      warnings,
      frame: thumbs.frame,
      openMs,
      async close() {
        built.dispose();
        await p.volumes.close();
        await closeMovie();
        await thumbs.close();
        if (owned) await ex.dispose();
      },
    };
  } catch (e) {
    engine?.dispose();
    await p.volumes.close();
    await movieClose?.();
    await thumbClose?.();
    if (extractor && ownsExtractor) await extractor.dispose();
    throw e;
  }
}

/** How the sliding coupling's nulls shift the unit series (slidingCorrelation.ts). */
export type NullKind = 'circular' | 'lagged';

/**
 * Null-shift count: the session's `nulls`, capped by what the run allows.
 * - circular: shifts come from [W, T − W] so that no null window overlaps the true one,
 *   which gives at most T − 2W + 1 distinct shifts.
 * - lagged (default, the rule before circular nulls existed): capped so every null is
 *   ready within the first third of the run (lags come from [W, W + 2S − 1] and need W TRs
 *   of history), since the significance of a short run would otherwise rest on its last
 *   few TRs only.
 */
export function nullShifts(nulls: number, window: number, trCount: number, kind: NullKind = 'lagged'): number {
  const cap = kind === 'circular' ? trCount - 2 * window + 1 : Math.floor((trCount / 3 - 2 * window + 1) / 2);
  return Math.max(0, Math.min(nulls, cap));
}

/**
 * TRs from which every null is ready with a full window (significance is undefined
 * before): circular nulls from the first full window, W − 1; lagged ones once the largest
 * lag has W TRs of history.
 */
export function nullsReadyAt(shifts: number, window: number, kind: NullKind = 'lagged'): number {
  if (!(shifts > 0)) return Infinity;
  return kind === 'circular' ? window - 1 : window + 2 * shifts - 1 + window - 1;
}

/** The warning for a session that gets fewer null shifts than its `nulls` asks for. */
export function nullShiftsWarning(nulls: number, shifts: number, window: number, trCount: number, kind: NullKind): string {
  const why =
    kind === 'circular'
      ? `circular shifts of a ${trCount}-TR run with window ${window} must lie in [${window}, ${trCount - window}] (at most ${Math.max(0, trCount - 2 * window + 1)})`
      : `a live run's lagged nulls must all be ready within the first third of its ${trCount} TRs with window ${window}`;
  const what = shifts > 0 ? `${shifts} null shift${shifts === 1 ? '' : 's'} instead of ${nulls}` : `no null shifts (${nulls} asked for), so nothing is ever significant`;
  return `sliding coupling: ${what}: ${why}`;
}

/**
 * Memory budget of the annotation's temporal null columns: their cross-products, 8·V bytes
 * each, live in the unit maps' state and in every snapshot, and at hcp7t size (403,192
 * voxels) the replay's peak RSS is 1973 MB without them, close to the 2 GiB target; 32 MiB
 * allows 10 null columns there (measured peak 2030 MB) and the full 100 up to 41,943
 * voxels (the demo has 25,760).
 */
export const ANNOTATION_NULLS_BUDGET_BYTES = 32 * 2 ** 20;

/**
 * The temporal null columns of the unit annotation (coupling.ts, UnitMapNullOptions):
 * session `annotation_nulls`, capped by {@link ANNOTATION_NULLS_BUDGET_BYTES}, with shifts
 * in [m, T − m], m = max(window, 20) TRs: at least the sliding window, as the coupling's
 * circular nulls, and 20 TRs so that the HRF-smoothed response's autocorrelation is gone.
 * None for a live run (its future responses are unknown), a run shorter than 2m TRs, or
 * without annotated unit maps.
 */
export function temporalNullColumns(
  settings: Pick<EngineSettings, 'annotationNulls' | 'window'>,
  trCount: number,
  voxels: number,
  kind: NullKind,
  wanted: boolean,
): { count: number; minShift: number; warning?: string } {
  const minShift = Math.max(settings.window, 20);
  const asked = settings.annotationNulls;
  if (!wanted || asked === 0) return { count: 0, minShift };
  if (kind !== 'circular') return { count: 0, minShift, warning: 'annotation: a live run has no temporal null for the unit maps (its future responses are unknown), so their p-values are NaN' };
  if (trCount - 2 * minShift + 1 < 1) {
    return { count: 0, minShift, warning: `annotation: a ${trCount}-TR run has no circular shift in [${minShift}, ${trCount - minShift}] for the unit maps' temporal null, so their p-values are NaN` };
  }
  const cap = Math.max(1, Math.floor(ANNOTATION_NULLS_BUDGET_BYTES / (8 * voxels)));
  if (asked <= cap) return { count: asked, minShift };
  return {
    count: cap,
    minShift,
    warning: `annotation: ${cap} temporal null maps instead of ${asked} (annotation_nulls): at ${voxels} voxels more would pass their ${ANNOTATION_NULLS_BUDGET_BYTES / 2 ** 20} MiB memory budget; p below 1/${cap + 1} comes from the normal tail fit`,
  };
}

/** TR-major T×U copy of the first `trCount` unit responses (the circular nulls' series). */
function flattenResponses(responses: readonly Float64Array[], trCount: number): Float64Array {
  const U = responses[0].length;
  const out = new Float64Array(trCount * U);
  for (let t = 0; t < trCount; t++) out.set(responses[t], t * U);
  return out;
}

/** The units named by engine.unit_maps, checked against the model's U units. */
function unitMapsOf(choice: EngineSettings['unitMaps'], units: number, path: string): number[] {
  if (choice === 'none') return [];
  if (choice === 'all') return Array.from({ length: units }, (_, u) => u);
  const wrong = choice.find((u) => u >= units);
  if (wrong !== undefined) throw new SyncactError('SESSION_INVALID', `engine.unit_maps names unit ${wrong}, but the model has ${units} units (0…${units - 1})`, path);
  if (new Set(choice).size !== choice.length) throw new SyncactError('SESSION_INVALID', 'engine.unit_maps names a unit twice', path);
  return [...choice];
}

/**
 * GLM worker threads: none below 100,000 voxels. Measured on the demo (25,760 voxels, 15
 * regressors, 2 busy cores): 0.8 ms per TR in the calling thread, 5 ms with 2 workers,
 * whose wake-ups cost more than the voxel loop they share. Above, the GLM's own default.
 */
function defaultWorkers(voxels: number): number | undefined {
  return voxels >= 100_000 && cpus().length >= 2 ? undefined : 0;
}

async function makeExtractor(options: OpenOptions): Promise<{ extractor: FeatureExtractor; owned: boolean }> {
  const m = options.model;
  if (m && 'extract' in m) return { extractor: m, owned: false };
  const spec = validateModelSpec(m ?? { kind: 'builtin' });
  const layers = options.layers ?? ('layers' in spec ? spec.layers : undefined);
  return { extractor: await createExtractor(layers ? { ...spec, layers } : spec), owned: true };
}
