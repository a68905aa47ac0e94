/**
 * `annotateEvery`: labels the units with template networks every N TRs and at the last TR
 * of the run, and {@link annotationRows}, the one code path that says which maps are
 * labelled (the live stage, a seek's fresh annotation and `analyze`'s final table all call it).
 *
 * Which maps. With unit maps (session `unit_maps`, default every CNN unit) each mapped
 * unit is labelled from its own synchronized map, BH across those units: the product's
 * "a label for each unit from the brain network it couples to". Without unit maps
 * (`unit_maps: "none"`) the joint GLM's regressors (e.g. the PCA components pc1…) are
 * labelled from their t-maps instead. The regressors' labels are not refreshed live when
 * units have maps: a user reads units; `analyze` still writes the regressors' table once
 * at the end ({@link regressorAnnotationRows}).
 *
 * Intuition: annotation compares whole maps with templates (and draws null fields for
 * its p-values), far more work than one TR's update and not incremental, so it runs on a
 * stride, like a dashboard refreshing a slow panel. Which TRs annotate depends only on
 * the TR index, so a replay and a batch analysis of the same session annotate at the
 * same TRs and end with the same labels.
 *
 * ```
 * work (N = 2): --w0--w1--w2--w3|     (trCount 4)
 * annotations:  --·---A---·---A-|
 * ```
 */
import { map, type OperatorFunction } from 'rxjs';
import type { AnnotationRow } from '../../protocol/state.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timed, type TrWork } from './trWork.ts';

type Annotated = ReturnType<CouplingEngine['annotate']>[number];

const toRow = (a: Annotated): AnnotationRow => ({ unit: a.unit, label: a.label, sign: a.sign, score: a.score, p: a.p, q: a.q });

/**
 * The annotation as the dashboard and `analyze` show it: every mapped unit from its own
 * map when there are unit maps, else every GLM regressor from its joint-GLM t-map.
 */
export function annotationRows(engine: CouplingEngine): AnnotationRow[] {
  const units = engine.mappedUnits;
  return (units.length > 0 ? engine.annotate(units, 'unit') : engine.annotate()).map(toRow);
}

/** The GLM regressors' labels from their joint-GLM t-maps (what the annotation shows without unit maps). */
export function regressorAnnotationRows(engine: CouplingEngine): AnnotationRow[] {
  return engine.annotate().map(toRow);
}

export function isAnnotationTr(k: number, every: number, trCount: number): boolean {
  return k === trCount - 1 || (every > 0 && (k + 1) % every === 0);
}

/**
 * @param engine the coupling engine (with annotation templates; without, this stage does nothing)
 * @param every N, TRs between annotations (0: only at the last TR)
 * @param trCount TRs in the run
 * @param enabled false when the engine has no templates (the stage passes work through)
 */
export function annotateEvery(engine: CouplingEngine, every: number, trCount: number, enabled: boolean): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    if (!enabled || !isAnnotationTr(work.tr, every, trCount) || !engine.mapsReady) return work;
    work.annotations = timed(work, 'annotation', () => annotationRows(engine));
    return work;
  });
}
