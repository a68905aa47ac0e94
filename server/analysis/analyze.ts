/**
 * A batch analysis: the replay pipeline at 'max' speed to the end (the same pipeline
 * `replay` paces, so both end in the same state), with what a report needs gathered on
 * the way: per-pair significance counts after the nulls are ready, per-stage timings,
 * TRs per second and peak memory. `analyze` writes it with report.ts; the bench calls
 * this directly.
 */
import { lastValueFrom, take, tap } from 'rxjs';
import type { AnnotationRow, TrState } from '../../protocol/state.ts';
import { SyncactError } from '../errors.ts';
import type { EstimatorSnapshot } from '../engine/estimator.ts';
import { SignificanceTally } from '../engine/truthScore.ts';
import { annotationRows, regressorAnnotationRows } from '../streams/annotationStage.ts';
import { runPipeline } from '../streams/pipeline.ts';
import { nullsReadyAt, type OpenedSession } from '../streams/session.ts';
import { significanceCoverage, significanceWarning, type SignificanceCoverage } from './significance.ts';
import { truthBlock, type TruthBlock } from './truth.ts';
import { SOFTWARE_COMMIT, SOFTWARE_VERSION } from './version.ts';

export interface AnalysisRun {
  final: TrState;
  finalP: Float64Array;
  /**
   * Final annotation of the joint GLM's regressors. Without unit maps these are the rows
   * of the pipeline's annotation stage at the last TR; with unit maps (whose rows that stage
   * shows instead) they are computed once at the end.
   */
  annotations: AnnotationRow[];
  /**
   * Final annotation of every mapped unit's own map (session.mapUnits, BH across them;
   * empty without unit maps or without an atlas): the rows of the pipeline's annotation
   * stage at the last TR, so a replay's dashboard ends with the same table.
   */
  unitAnnotations: AnnotationRow[];
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
  /** How many TRs were scored for significance, and why none were when none were. */
  significance: SignificanceCoverage;
  /** Per-TR read-outs, when `keepSeries` was asked for (the derivatives' time series and the HTML report's timelines). */
  series: AnalysisSeries | null;
}

/** What the run looked like TR by TR: copies of the states' arrays, TR order. */
export interface AnalysisSeries {
  /** TR index of each entry. */
  trs: number[];
  /** Sliding-window r, units × features unit-major, per TR. */
  coupling: Float32Array[];
  /** Linear CKA per layer, per TR. */
  cka: Float32Array[];
  /** HRF-convolved unit responses (units then regressors), per TR. */
  unitResponses: Float32Array[];
  /** Brain feature values, per TR. */
  features: Float32Array[];
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
  /**
   * Keep every TR's coupling, CKA, unit responses and features (AnalysisRun.series). Off by default: at hcp7t size it
   * is units × features × TRs floats, which a benchmark does not want.
   */
  keepSeries?: boolean;
  /**
   * Where the run's warnings go (one line each, without a "warning:" prefix), e.g. a run too
   * short for any TR to be scored for significance. Default: stderr as "warning: LINE".
   */
  warn?: (line: string) => void;
  /**
   * Continue a run whose engine was restored from a state snapshot (docs/state-dir.md):
   * the pipeline starts at the engine's TR count, with the run's tally, TR count,
   * annotations and series as they were then, so it ends as an uninterrupted run does.
   */
  resume?: AnalysisCheckpoint;
  /** After each TR, before the next starts (the pipeline waits): the run's own state, for a snapshot. */
  afterTr?: (checkpoint: () => AnalysisCheckpoint) => void | Promise<void>;
}

/** What a run has gathered besides the engine's state (saved with it by `--state-dir`). */
export interface AnalysisCheckpoint {
  /** TRs emitted so far, earlier processes' included. */
  trs: number;
  tally: EstimatorSnapshot;
  /** The annotation stage's latest rows (annotationStage.ts `annotationRows`). */
  annotations: AnnotationRow[];
  series: AnalysisSeries | null;
}

export async function analyzeSession(s: OpenedSession, options: AnalyzeOptions = {}): Promise<AnalysisRun> {
  const U = s.info.units.length;
  const F = s.info.features.length;
  const tally = new SignificanceTally(U * F);
  const resume = options.resume;
  if (resume) tally.restore(resume.tally);
  const scoredFrom = nullsReadyAt(s.nullShifts, s.settings.window, s.nullKind);
  const totals: Record<string, number> = {};
  let final: TrState | null = null;
  // The annotation stage's latest rows (annotationStage.ts: units from their own maps, or
  // the regressors without unit maps), and whether the last TR run made them.
  let annotations: AnnotationRow[] = resume?.annotations ?? [];
  let annotatedLast = false;
  let peak = process.memoryUsage.rss();
  let trs = resume?.trs ?? 0;
  // TRs run by this call (rates and per-TR timings are this process's).
  let ran = 0;
  const series: AnalysisSeries | null = options.keepSeries ? { trs: [], coupling: [], cka: [], unitResponses: [], features: [] } : null;
  if (series && resume) {
    for (const k of Object.keys(series) as (keyof AnalysisSeries)[]) {
      const saved = resume.series?.[k];
      if (!saved) throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `analysis: the run being resumed kept no '${k}' series`);
      (series[k] as unknown[]).push(...saved);
    }
  }
  const afterTr = options.afterTr;
  const checkpoint = (): AnalysisCheckpoint => ({ trs, tally: tally.snapshot(), annotations, series });
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
      start: resume ? s.engine.count : undefined,
      afterTr: afterTr ? () => afterTr(checkpoint) : undefined,
    }).pipe(
      take(options.stopAfter ?? Infinity),
      tap((t) => {
        trs++;
        ran++;
        final = t.state;
        if (t.annotations) annotations = t.annotations;
        annotatedLast = t.annotations !== null;
        if (t.state.tr >= scoredFrom) tally.add(t.state.significant);
        if (series) {
          series.trs.push(t.state.tr);
          series.coupling.push(t.state.coupling.slice());
          series.cka.push(t.state.cka.slice());
          series.unitResponses.push(t.state.unitResponses.slice());
          series.features.push(t.state.features.slice());
        }
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
  // Stopped early (stopAfter) off the stride: annotate where the run ended, as a seek does.
  if (s.annotate && !annotatedLast && s.engine.mapsReady) annotations = annotationRows(s.engine);
  const ta = performance.now();
  const mapped = s.mapUnits.length > 0;
  const unitAnnotations = mapped ? annotations : [];
  if (mapped) annotations = s.annotate && s.engine.mapsReady ? regressorAnnotationRows(s.engine) : [];
  if (mapped && annotations.length > 0) totals.regressor_annotation = performance.now() - ta;
  const fractionSignificant = tally.fractions();
  const finalP = s.engine.coupling(s.settings.fdrQ).p;
  const stages = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, { total_ms: v, per_tr_ms: v / Math.max(1, ran) }]));
  const significance = significanceCoverage({
    trCount: s.inputs.trCount,
    trs,
    window: s.settings.window,
    nulls: s.settings.nulls,
    nullShifts: s.nullShifts,
    nullKind: s.nullKind,
    scoredTrs: tally.count,
  });
  const warning = significanceWarning(significance);
  if (warning) (options.warn ?? ((line: string) => process.stderr.write(`warning: ${line}\n`)))(warning);
  const truth = s.truth
    ? truthBlock({
        truth: s.truth,
        responses: s.inputs.responses.slice(0, s.inputs.trCount),
        unitNames: unitNames(s.info),
        featureNames: s.info.features,
        tally,
        glmUnits: s.glmUnits,
        tmap: (u) => s.engine.tmap(u),
        maskIndices: s.maskIndices,
        annotations,
        unitMaps: { units: s.mapUnits, tmap: (u) => s.engine.unitTmap(u), annotations: unitAnnotations },
      })
    : null;
  return {
    final: last,
    finalP,
    annotations,
    unitAnnotations,
    tally,
    stages,
    trs,
    seconds,
    trsPerSecond: ran / seconds,
    peakRssMb: Math.max(peak / 2 ** 20, process.resourceUsage().maxRSS / 1024),
    fractionSignificant,
    truth,
    significance,
    series,
  };
}

/** The name of a unit as tables and reports give it: "layer:channel", or the regressor's name for components. */
export function unitNames(info: OpenedSession['info']): string[] {
  return info.units.map((u) => (u.layer === 'pca' || u.layer === 'regressor' ? info.regressors[u.channel] : `${u.layer}:${u.channel}`));
}

/** The pairs counted as coupled: significant in at least half of the scored TRs. */
export const COUPLED_FRACTION = 0.5;

export interface CoupledPair {
  /** Index into the U×F pair arrays (unit-major). */
  index: number;
  unit: string;
  feature: string;
  r: number;
  fraction: number;
}

/** Coupled pairs, most consistently significant first (ties: larger |r|). */
export function coupledPairs(s: Pick<OpenedSession, 'info'>, run: Pick<AnalysisRun, 'fractionSignificant' | 'final'>): CoupledPair[] {
  const F = s.info.features.length;
  const names = unitNames(s.info);
  const pairs: CoupledPair[] = [];
  run.fractionSignificant.forEach((fr, j) => {
    if (fr >= COUPLED_FRACTION) pairs.push({ index: j, unit: names[Math.floor(j / F)], feature: s.info.features[j % F], r: run.final.coupling[j], fraction: fr });
  });
  pairs.sort((a, b) => b.fraction - a.fraction || Math.abs(b.r) - Math.abs(a.r) || a.index - b.index);
  return pairs;
}

/**
 * report.json for a run. Everything in it is what the inputs and parameters determine
 * (summary, every parameter, the software version, truth) except the run's measurements,
 * `trs_per_second`, `peak_rss_mb` and `timings` (RUN_MEASUREMENTS): those depend on the
 * machine and on earlier runs (a warm feature cache). A rerun writes the same bytes in
 * every other file, and the same report.json once those three keys are set aside
 * (`reproducibleReport`). They sit at the top level, beside the results, because that is
 * where a user looks for how fast a run went and how much memory it took.
 * @param invocation how the run was asked for (the session source and open options as
 *   given, the annotation stride); recorded under parameters so the run can be repeated.
 * @param command the command line, recorded under timings (it differs between a run and
 *   its --resume, which must still give the same results)
 */
/** report.json's keys that are measurements of the run, not results: they vary run to run. */
export const RUN_MEASUREMENTS = ['trs_per_second', 'peak_rss_mb', 'timings'] as const;

/** A report without its run measurements: what a rerun with the same inputs reproduces exactly. */
export function reproducibleReport(report: Record<string, unknown>): Record<string, unknown> {
  const out = { ...report };
  for (const key of RUN_MEASUREMENTS) delete out[key];
  return out;
}

export function reportJson(
  s: OpenedSession,
  run: AnalysisRun,
  invocation: Record<string, unknown> = {},
  command: string | null = null,
): Record<string, unknown> {
  const names = unitNames(s.info);
  const significantPairs = coupledPairs(s, run).map(({ unit, feature, r, fraction }) => ({ unit, feature, r, fraction }));
  return {
    syncact: 'analysis',
    version: 3,
    trs_per_second: run.trsPerSecond,
    peak_rss_mb: run.peakRssMb,
    software: { name: 'syncact', version: SOFTWARE_VERSION, commit: SOFTWARE_COMMIT },
    session: {
      path: s.config.path,
      fmri: s.config.fmri,
      movie: s.config.movie,
      mask: s.config.mask,
      atlas: s.config.atlas,
      atlas_labels: s.config.atlasLabels,
      tr: s.config.tr,
      onset: s.config.onset,
      preset: s.config.preset,
      seed: s.config.seed,
      entities: s.config.entities,
      name: s.info.name,
    },
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
      // Each unit's own map annotated (the joint GLM's regressors' without unit maps).
      annotations: (s.mapUnits.length > 0 ? run.unitAnnotations : run.annotations).map((a) => ({ ...a, unit: names[a.unit] })),
      regressor_annotations: run.annotations.map((a) => ({ ...a, unit: names[a.unit] })),
      warnings: s.warnings,
    },
    parameters: {
      ...invocation,
      model: s.info.model,
      engine: s.settings,
      smoothing_fwhm: s.config.smoothingFwhm,
      reduction: s.cnn.reducer.kind,
      glm_units: s.glmUnits.map((u) => names[u]),
      // engine.unitMaps is the choice as given ("all", "none" or indices); these are the units it named.
      unit_maps: s.mapUnits.map((u) => names[u]),
      unit_maps_degrees_of_freedom: s.engine.unitMapsDegreesOfFreedom(),
      learned_networks: s.networks,
      null_shifts: s.nullShifts,
      coupled_fraction: COUPLED_FRACTION,
      glm_degrees_of_freedom: s.engine.degreesOfFreedom(),
      cnn_frames: s.cnn.frames,
    },
    significance: run.significance,
    ...(run.truth ? { truth: run.truth } : {}),
    timings: {
      open_ms: s.openMs,
      stages: run.stages,
      pipeline_seconds: run.seconds,
      cnn_cache_hit: s.cnn.cacheHit,
      command,
    },
  };
}
