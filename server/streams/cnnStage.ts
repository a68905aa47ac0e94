/**
 * The CNN stage, run ahead over the whole movie before the replay starts (DESIGN.md §2,
 * §4): frames → CNN activations (from the feature cache when valid) → microtime bins →
 * HRF responses per TR → unit reduction to K GLM regressors.
 *
 * Why ahead and not per TR: the movie is known before the replay, the CNN is the most
 * expensive stage per frame, and the activations are cached across runs, so the per-TR
 * loop only looks responses up (unitResponses.ts) and replays at 50× real time. PCA over
 * the whole movie needs every TR anyway.
 *
 * The regressors: K principal components of the standardized unit responses (the
 * session's `regressors`, default 10), appended after the units, so the coupling engine
 * sees U + K response series and its GLM takes the last K. Components, not K chosen units,
 * because they are orthogonal (no two regressors split one effect between their maps) and
 * summarize every layer; `--units` picks units instead.
 */
import { SyncactError } from '../errors.ts';
import type { FeatureExtractor } from '../engine/cnn/extractor.ts';
import { fitUnitReducer, type UnitReducer, type UnitReductionSpec } from '../engine/cnn/unitReduction.ts';
import { responsesFromActivations, UnitLayout, type FrameSampling, type FrameSource } from '../engine/cnn/unitSeries.ts';
import { cacheKeyParts, getOrComputeActivations, type FeatureCache } from '../io/featureCache.ts';

export interface CnnStageOptions {
  extractor: FeatureExtractor;
  movie: FrameSource;
  /** sha256 of the movie's content (the cache key); any stable identity of the frames. */
  movieHash: string;
  tr: number;
  onset: number;
  /** TRs to produce responses for. */
  nTrs: number;
  binsPerTr: number;
  hrfReference: number;
  /** Frames kept per TR (absent: every frame). */
  framesPerTr?: number;
  reduction: UnitReductionSpec;
  cache?: FeatureCache | null;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  log?: (message: string) => void;
}

export interface CnnStageResult {
  layout: UnitLayout;
  /** Per TR: the U unit responses, then the K regressors. */
  responses: Float64Array[];
  /** U, the CNN units. */
  units: number;
  reducer: UnitReducer;
  /** Names of the K regressors ("pc1" …, or the chosen units' "layer:channel"). */
  regressorNames: string[];
  /** Indices of the K regressors among the responses (U … U+K−1). */
  glmUnits: number[];
  /** Activations came from the cache. */
  cacheHit: boolean;
  cacheMiss?: string;
  /** Frames that went through the CNN (or would have, on a hit). */
  frames: number;
  /** Wall time of the activations (CNN or cache read) and of binning + HRF + reduction, ms. */
  stageMs: { cnn: number; hrf: number; reduction: number };
}

export async function runCnnStage(o: CnnStageOptions): Promise<CnnStageResult> {
  const sampling: FrameSampling = { tr: o.tr, onset: o.onset, framesPerTr: o.framesPerTr };
  const t0 = performance.now();
  const parts = cacheKeyParts(o.extractor, o.movie, { movieHash: o.movieHash, sampling });
  const got = await getOrComputeActivations(o.extractor, o.movie, parts, o.cache ?? undefined, {
    batchSize: o.batchSize,
    onProgress: o.onProgress,
    logger: o.log,
  });
  const t1 = performance.now();
  const series = responsesFromActivations(got.activations, {
    tr: o.tr,
    onset: o.onset,
    binsPerTr: o.binsPerTr,
    hrfReference: o.hrfReference,
    nTrs: o.nTrs,
  });
  const t2 = performance.now();
  const U = series.layout.units;
  if (series.responses.length < o.nTrs) {
    throw new SyncactError('ENGINE_BAD_INPUT', `CNN stage: ${series.responses.length} TRs of unit responses for ${o.nTrs} TRs`);
  }
  const reducer = fitUnitReducer(o.reduction, series.responses);
  const responses = series.responses.map((r) => {
    const out = new Float64Array(U + reducer.k);
    out.set(r);
    reducer.transform(r, out.subarray(U));
    return out;
  });
  const t3 = performance.now();
  const regressorNames =
    o.reduction.kind === 'pca'
      ? Array.from({ length: reducer.k }, (_, j) => `pc${j + 1}`)
      : o.reduction.units.map((u) => {
          const x = series.layout.unit(u);
          return `${x.layer}:${x.channel}`;
        });
  return {
    layout: series.layout,
    responses,
    units: U,
    reducer,
    regressorNames,
    glmUnits: Array.from({ length: reducer.k }, (_, j) => U + j),
    cacheHit: got.hit,
    cacheMiss: got.miss,
    frames: got.activations.frameTimes.length,
    stageMs: { cnn: t1 - t0, hrf: t2 - t1, reduction: t3 - t2 },
  };
}
