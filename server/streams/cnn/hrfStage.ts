/**
 * `convolveHrf`: each TR's microtime bins through the SPM canonical HRF, causally, read at
 * the TR's reference bin: one response per unit per TR.
 *
 * Intuition: the BOLD signal is the neural drive seen through the haemodynamic response;
 * convolving each unit's series with the HRF makes it comparable with the volumes
 * (docs/method.md §1). The convolution only needs the last 32 s of bins, so it runs as
 * the TRs arrive, and equals a batch convolution of the whole series. Timed as `hrf`.
 *
 * ```
 * bins:      -b0--b1--b2|
 * responses: -r0--r1--r2|
 * ```
 *
 * @param o.units U, channels per bin
 * @param o.tr repetition time (s)
 * @param o.binsPerTr B
 * @param o.hrfReference where in the TR the response is read, a fraction in [0, 1)
 * @param run receives the `hrf` time
 */
import { defer, map, type OperatorFunction } from 'rxjs';
import { SyncactError } from '../../errors.ts';
import { microtimeHrfKernels } from '../../engine/hrf.ts';
import { HrfConvolver } from '../../engine/hrfConvolver.ts';
import { timedCnn, type CnnRun } from './cnnRun.ts';
import type { MicrotimeTr } from './microtimeStage.ts';

/** One TR's unit responses. */
export interface ResponseTr {
  tr: number;
  /** U HRF responses at the TR's reference time. */
  responses: Float64Array;
}

export interface HrfOptions {
  units: number;
  tr: number;
  binsPerTr: number;
  hrfReference: number;
}

export function convolveHrf(o: HrfOptions, run: CnnRun): OperatorFunction<MicrotimeTr, ResponseTr> {
  const T = o.binsPerTr;
  if (!(o.hrfReference >= 0 && o.hrfReference < 1)) throw new SyncactError('ENGINE_BAD_INPUT', `HRF stage: hrfReference must be in [0, 1), got ${o.hrfReference}`);
  return (bins) =>
    defer(() => {
      // Per subscription: the convolver holds the run's last 32 s of bins.
      const convolver = new HrfConvolver({
        channels: o.units,
        kernels: microtimeHrfKernels({ tr: o.tr, binsPerTr: T, derivative: false }),
        binsPerTr: T,
        referenceBin: Math.floor(o.hrfReference * T),
      });
      return bins.pipe(map((b) => timedCnn(run, 'hrf', () => ({ tr: b.tr, responses: convolver.pushTr(b.bins) }))));
    });
}
