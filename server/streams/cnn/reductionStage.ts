/**
 * `reduceUnits`: the unit responses of every TR, reduced to K GLM regressors appended to
 * each TR's responses (U units, then K).
 *
 * Intuition: thousands of units cannot all be GLM regressors; the default reduction is K
 * principal components of the standardized responses (orthogonal, so no two regressors
 * split one effect between their maps, and they summarize every layer), or K chosen units
 * (`--units`). PCA needs the covariance of the whole run, so this operator collects every
 * TR and emits once, when the responses end: the reason the CNN runs ahead of the replay
 * (the movie is known before it; DESIGN.md §4 allows the reduction to use all of it).
 * Timed as `reduction`.
 *
 * ```
 * responses: -r0--r1--r2|
 * result:    -----------(R|)     (R: all TRs with their K regressors, the fitted reducer)
 * ```
 *
 * @param o.reduction PCA with K components, or the chosen units
 * @param o.nTrs TRs the replay needs (fewer responses is a wiring error)
 * @param run receives the `reduction` time
 */
import { map, toArray, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../../errors.ts';
import { fitUnitReducer, type UnitReducer, type UnitReductionSpec } from '../../engine/cnn/unitReduction.ts';
import { timedCnn, type CnnRun } from './cnnRun.ts';
import type { ResponseTr } from './hrfStage.ts';

export interface ReducedResponses {
  /** Per TR: the U unit responses, then the K regressors. */
  responses: Float64Array[];
  reducer: UnitReducer;
}

export interface ReductionOptions {
  reduction: UnitReductionSpec;
  nTrs: number;
}

export function reduceUnits(o: ReductionOptions, run: CnnRun): OperatorFunction<ResponseTr, ReducedResponses> {
  return (trs) =>
    trs.pipe(
      toArray(),
      map((all) =>
        timedCnn(run, 'reduction', () => {
          if (all.length < o.nTrs) throw new SyncactError('ENGINE_BAD_INPUT', `CNN stage: ${all.length} TRs of unit responses for ${o.nTrs} TRs`);
          const raw = all.map((t) => t.responses);
          const reducer = fitUnitReducer(o.reduction, raw);
          const responses = raw.map((r) => {
            const out = new Float64Array(r.length + reducer.k);
            out.set(r);
            reducer.transform(r, out.subarray(r.length));
            return out;
          });
          return { responses, reducer };
        }),
      ),
    );
}
