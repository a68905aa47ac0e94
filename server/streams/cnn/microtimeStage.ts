/**
 * `binMicrotime`: frame activations into microtime bins, one emission per TR: the TR's B
 * bins of every unit (B = `binsPerTr`, default 16), each the mean of the frames in it.
 *
 * Intuition: frames come at the movie's rate, the HRF is convolved at a fixed finer grid
 * (SPM's microtime); binning puts the frames on that grid (docs/method.md §1). A TR is
 * emitted as soon as a frame of a later TR arrives (its frames are all in), the rest when
 * the frames end; bins left empty hold the previous value. Frames before the onset or past
 * the run's `nTrs` TRs are not binned. The same assignment of frames to bins and TRs as
 * `UnitSeries` (server/engine/cnn/unitSeries.ts) and the same `MicrotimeBinner`, so the
 * bins equal those of `responsesFromActivations`. Timed as `hrf` (with the convolution,
 * as the open-time telemetry always has).
 *
 * ```
 * batches: -a0-----a1------a2|      (frames of TRs 0,0,1 | 1,2 | 2)
 * bins:    -------b0------b1-(b2|)
 * ```
 *
 * @param o.layout the units (every batch must have them)
 * @param o.tr repetition time (s)
 * @param o.onset movie time (s) of volume 0
 * @param o.binsPerTr B
 * @param o.nTrs TRs emitted (TRs past the last frame hold its values)
 * @param run receives the `hrf` time
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../../errors.ts';
import type { UnitLayout } from '../../engine/cnn/unitSeries.ts';
import { binOfTime, MicrotimeBinner } from '../../engine/microtime.ts';
import type { ActivationBatch } from './activationsStage.ts';
import { timedCnn, type CnnRun } from './cnnRun.ts';

/** One TR's microtime bins. */
export interface MicrotimeTr {
  tr: number;
  /** binsPerTr × units, row-major. */
  bins: Float64Array;
}

export interface MicrotimeOptions {
  layout: UnitLayout;
  tr: number;
  onset: number;
  binsPerTr: number;
  nTrs: number;
}

export function binMicrotime(o: MicrotimeOptions, run: CnnRun): OperatorFunction<ActivationBatch, MicrotimeTr> {
  return (batches) =>
    new Observable<MicrotimeTr>((subscriber) => {
      if (!Number.isFinite(o.onset)) throw new SyncactError('ENGINE_BAD_INPUT', `microtime stage: onset must be finite, got ${o.onset}`);
      const U = o.layout.units;
      const T = o.binsPerTr;
      const binner = new MicrotimeBinner({ tr: o.tr, binsPerTr: T, channels: U });
      const dt = o.tr / T;
      // The TR of a movie time, by the binner's own bin index so a frame on a TR edge is
      // counted complete where it was binned (−1 before the onset).
      const trOf = (time: number) => {
        const t = time - o.onset;
        return t >= 0 ? Math.floor(binOfTime(t, dt) / T) : -1;
      };
      /** Every TR before this one has all its frames. */
      let complete = 0;
      const emitUpTo = (end: number) => {
        while (binner.nextTr < end) {
          const k = binner.nextTr;
          const bins = binner.takeTr(k);
          if (complete < k + 1) complete = k + 1;
          subscriber.next({ tr: k, bins });
        }
      };
      return batches.subscribe({
        next: (b) => {
          if (b.layout.units !== U || b.values.length !== b.times.length * U) {
            subscriber.error(
              new SyncactError('ENGINE_BAD_INPUT', `microtime stage: a batch of ${b.times.length} frames has ${b.values.length} values, expected ${U} units per frame`),
            );
            return;
          }
          timedCnn(run, 'hrf', () => {
            for (let f = 0; f < b.times.length; f++) {
              const k = trOf(b.times[f]);
              // Frames past the run would only pile up in the binner's pending TRs.
              if (k >= o.nTrs) continue;
              binner.pushFrame(b.times[f] - o.onset, b.values.subarray(f * U, (f + 1) * U));
              if (k > complete) complete = k;
              emitUpTo(Math.min(complete, o.nTrs));
            }
          });
        },
        error: (e) => subscriber.error(e),
        complete: () => {
          timedCnn(run, 'hrf', () => emitUpTo(o.nTrs));
          subscriber.complete();
        },
      });
    });
}
