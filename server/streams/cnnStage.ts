/**
 * The CNN stage, run ahead over the whole movie before the replay starts (DESIGN.md §2,
 * §4), as a pipe of operators over the movie's frames, one per file in cnn/:
 *
 *   movieFrames ─▶ cnnActivations ─▶ binMicrotime ─▶ convolveHrf ─▶ reduceUnits ─▶ result
 *   (frame refs,    (CNN, or the      (microtime     (SPM HRF,      (K regressors:
 *    B per batch)    feature cache)    bins per TR)   per TR)        PCA of all TRs)
 *
 * Why ahead and not per TR: the movie is known before the replay, the CNN is the most
 * expensive stage per frame, and the activations are cached across runs, so the per-TR
 * loop only looks responses up (unitResponses.ts) and replays at 50× real time. PCA over
 * the whole movie needs every TR anyway (reductionStage.ts collects them).
 *
 * The regressors: K principal components of the standardized unit responses (the
 * session's `regressors`, default 10), appended after the units, so the coupling engine
 * sees U + K response series and its GLM takes the last K. Components, not K chosen units,
 * because they are orthogonal (no two regressors split one effect between their maps) and
 * summarize every layer; `--units` picks units instead.
 *
 * Telemetry (the session's open times): `cnn` (frames read and through the CNN, or the
 * cache read), `hrf` (binning and HRF), `reduction`, each summed over its operator's work.
 */
import { lastValueFrom, map } from 'rxjs';
import type { FeatureExtractor } from '../engine/cnn/extractor.ts';
import type { UnitReducer, UnitReductionSpec } from '../engine/cnn/unitReduction.ts';
import { UnitLayout, type FrameSampling, type FrameSource } from '../engine/cnn/unitSeries.ts';
import { cacheKeyParts, type FeatureCache } from '../io/featureCache.ts';
import { cnnActivations } from './cnn/activationsStage.ts';
import { newCnnRun } from './cnn/cnnRun.ts';
import { convolveHrf } from './cnn/hrfStage.ts';
import { binMicrotime } from './cnn/microtimeStage.ts';
import { movieFrames } from './cnn/movieFrames.ts';
import { reduceUnits } from './cnn/reductionStage.ts';

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
  /** Wall time of the activations (frames, CNN or cache read), of binning + HRF, and of the reduction, ms. */
  stageMs: { cnn: number; hrf: number; reduction: number };
}

export async function runCnnStage(o: CnnStageOptions): Promise<CnnStageResult> {
  const sampling: FrameSampling = { tr: o.tr, onset: o.onset, framesPerTr: o.framesPerTr };
  const parts = cacheKeyParts(o.extractor, o.movie, { movieHash: o.movieHash, sampling });
  const layout = new UnitLayout(o.extractor.layers);
  const U = layout.units;
  const run = newCnnRun();
  return lastValueFrom(
    movieFrames(o.movie, parts.sampling, o.batchSize).pipe(
      cnnActivations({ extractor: o.extractor, movie: o.movie, parts, cache: o.cache ?? null, onProgress: o.onProgress, log: o.log }, run),
      binMicrotime({ layout, tr: o.tr, onset: o.onset, binsPerTr: o.binsPerTr, nTrs: o.nTrs }, run),
      convolveHrf({ units: U, tr: o.tr, binsPerTr: o.binsPerTr, hrfReference: o.hrfReference }, run),
      reduceUnits({ reduction: o.reduction, nTrs: o.nTrs }, run),
      map(({ responses, reducer }): CnnStageResult => ({
        layout,
        responses,
        units: U,
        reducer,
        regressorNames:
          o.reduction.kind === 'pca'
            ? Array.from({ length: reducer.k }, (_, j) => `pc${j + 1}`)
            : o.reduction.units.map((u) => {
                const x = layout.unit(u);
                return `${x.layer}:${x.channel}`;
              }),
        glmUnits: Array.from({ length: reducer.k }, (_, j) => U + j),
        cacheHit: run.cacheHit,
        cacheMiss: run.cacheMiss,
        frames: run.frames,
        stageMs: { ...run.stageMs },
      })),
    ),
  );
}
