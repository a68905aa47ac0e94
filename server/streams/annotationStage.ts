/**
 * `annotateEvery`: labels the GLM units with template networks every N TRs and at the
 * last TR of the run.
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
 *
 * @param engine the coupling engine (with annotation templates; without, this stage does nothing)
 * @param every N, TRs between annotations (0: only at the last TR)
 * @param trCount TRs in the run
 * @param enabled false when the engine has no templates (the stage passes work through)
 */
import { map, type OperatorFunction } from 'rxjs';
import type { AnnotationRow } from '../../protocol/state.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { timed, type TrWork } from './trWork.ts';

export function isAnnotationTr(k: number, every: number, trCount: number): boolean {
  return k === trCount - 1 || (every > 0 && (k + 1) % every === 0);
}

export function annotateEvery(engine: CouplingEngine, every: number, trCount: number, enabled: boolean): OperatorFunction<TrWork, TrWork> {
  return map((work) => {
    if (!enabled || !isAnnotationTr(work.tr, every, trCount) || !engine.mapsReady) return work;
    work.annotations = timed(work, 'annotation', () =>
      engine.annotate().map(
        (a): AnnotationRow => ({ unit: a.unit, label: a.label, sign: a.sign, score: a.score, p: a.p, q: a.q }),
      ),
    );
    return work;
  });
}
