/**
 * A batch analysis: the replay pipeline at 'max' speed to the end (the same pipeline
 * `replay` paces, so both end in the same state), with what a report needs gathered on
 * the way: per-pair significance counts after the nulls are ready, per-stage timings,
 * TRs per second and peak memory. `analyze` writes it with report.ts; the bench calls
 * this directly.
 */
import { lastValueFrom, take, tap } from 'rxjs';
import type { AnnotationRow, TrState } from '../../protocol/state.ts';
import { SignificanceTally } from '../engine/truthScore.ts';
import { runPipeline } from '../streams/pipeline.ts';
import { nullsReadyAt, type OpenedSession } from '../streams/session.ts';
import { truthBlock, type TruthBlock } from './truth.ts';

export interface AnalysisRun {
  final: TrState;
  finalP: Float64Array;
  annotations: AnnotationRow[];
  tally: SignificanceTally;
  /** Per stage: total ms over the run and mean ms per TR. */
  stages: Record<string, { total_ms: number; per_tr_ms: number }>;
  trs: number;
  seconds: number;
  trsPerSecond: number;
  /**
   * Peak resident set size of the process so far, MiB (the kernel's high-water mark, so the
   * CNN stage and the opening are included; in a process that did other work before, that
   * work is too).
   */
  peakRssMb: number;
  fractionSignificant: Float64Array;
  truth: TruthBlock | null;
}

export interface AnalyzeOptions {
  /** Annotation stride in TRs (0: only at the end); default 50. */
  annotateEvery?: number;
  onTr?: (state: TrState) => void;
  /**
   * Stop after this many TRs (a benchmark's sample of a long run): the design (drift basis,
   * nulls) stays the whole run's, unlike `maxTrs` when opening, which shortens the run.
   */
  stopAfter?: number;
}

export async function analyzeSession(s: OpenedSession, options: AnalyzeOptions = {}): Promise<AnalysisRun> {
  const U = s.info.units.length;
  const F = s.info.features.length;
  const tally = new SignificanceTally(U * F);
  const scoredFrom = nullsReadyAt(s.nullShifts, s.settings.window);
  const totals: Record<string, number> = {};
  let final: TrState | null = null;
  let annotations: AnnotationRow[] = [];
  let peak = process.memoryUsage.rss();
  let trs = 0;
  const t0 = performance.now();
  await lastValueFrom(
    runPipeline({
      inputs: s.inputs,
      engine: s.engine,
      alpha: s.settings.fdrQ,
      speed: 'max',
      annotateEvery: options.annotateEvery ?? 50,
      annotate: s.annotate,
      snapshotEvery: null,
    }).pipe(
      take(options.stopAfter ?? Infinity),
      tap((t) => {
        trs++;
        final = t.state;
        if (t.annotations) annotations = t.annotations;
        if (t.state.tr >= scoredFrom) tally.add(t.state.significant);
        for (const [k, v] of Object.entries(t.state.telemetry.stageMs)) totals[k] = (totals[k] ?? 0) + v;
        peak = Math.max(peak, process.memoryUsage.rss());
        options.onTr?.(t.state);
      }),
    ),
    { defaultValue: null },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (final === null) throw new Error('unreachable: a session has at least 3 TRs');
  const last: TrState = final;
  const fractionSignificant = tally.fractions();
  const finalP = s.engine.coupling(s.settings.fdrQ).p;
  const stages = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, { total_ms: v, per_tr_ms: v / Math.max(1, trs) }]));
  const unitNames = s.info.units.map((u) => (u.layer === 'pca' || u.layer === 'regressor' ? s.info.regressors[u.channel] : `${u.layer}:${u.channel}`));
  const truth = s.truth
    ? truthBlock({
        truth: s.truth,
        responses: s.inputs.responses.slice(0, s.inputs.trCount),
        unitNames,
        featureNames: s.info.features,
        tally,
        glmUnits: s.glmUnits,
        tmap: (u) => s.engine.tmap(u),
        maskIndices: s.maskIndices,
        annotations,
      })
    : null;
  return {
    final: last,
    finalP,
    annotations,
    tally,
    stages,
    trs,
    seconds,
    trsPerSecond: trs / seconds,
    peakRssMb: Math.max(peak / 2 ** 20, process.resourceUsage().maxRSS / 1024),
    fractionSignificant,
    truth,
  };
}

/** report.json's content for a run. */
export function reportJson(s: OpenedSession, run: AnalysisRun, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const F = s.info.features.length;
  const significantPairs: { unit: string; feature: string; r: number; fraction: number }[] = [];
  const names = s.info.units.map((u) => (u.layer === 'pca' || u.layer === 'regressor' ? s.info.regressors[u.channel] : `${u.layer}:${u.channel}`));
  run.fractionSignificant.forEach((fr, j) => {
    if (fr >= 0.5) significantPairs.push({ unit: names[Math.floor(j / F)], feature: s.info.features[j % F], r: run.final.coupling[j], fraction: fr });
  });
  significantPairs.sort((a, b) => b.fraction - a.fraction || Math.abs(b.r) - Math.abs(a.r));
  return {
    syncact: 'analysis',
    version: 1,
    session: { path: s.config.path, fmri: s.config.fmri, movie: s.config.movie, preset: s.config.preset, seed: s.config.seed, name: s.info.name },
    summary: {
      trs: run.trs,
      tr: s.info.tr,
      onset: s.info.onset,
      voxels: s.maskIndices.length,
      units: s.cnn.units,
      layers: s.info.layers,
      regressors: s.info.regressors,
      features: s.info.features,
      scored_trs: run.tally.count,
      coupled_pairs: significantPairs.length,
      top_pairs: significantPairs.slice(0, 20),
      cka: Object.fromEntries(s.info.layers.map((l, i) => [l.name, run.final.cka[i]])),
      annotations: run.annotations.map((a) => ({ ...a, unit: names[a.unit] })),
      warnings: s.warnings,
    },
    parameters: {
      model: s.info.model,
      engine: s.settings,
      reduction: s.cnn.reducer.kind,
      learned_networks: s.networks,
      null_shifts: s.nullShifts,
      glm_degrees_of_freedom: s.engine.degreesOfFreedom(),
      cnn_frames: s.cnn.frames,
      cnn_cache_hit: s.cnn.cacheHit,
    },
    timings: { open_ms: s.openMs, stages: run.stages, pipeline_seconds: run.seconds },
    trs_per_second: run.trsPerSecond,
    peak_rss_mb: run.peakRssMb,
    ...(run.truth ? { truth: run.truth } : {}),
    ...extra,
  };
}
