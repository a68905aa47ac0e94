/**
 * From per-frame feature values to the ground-truth drive of each TR: what a unit that
 * responded exactly with the feature would produce after the engine's pipeline (frames
 * averaged into microtime bins, causal HRF convolution, sampled at the reference time of
 * each TR), standardized over the run. A correct engine reproduces these numbers.
 */
import { canonicalHrf, convolveCausal } from './hrf.ts';

export interface DriveTiming {
  tr: number;
  nVolumes: number;
  microtimeBins: number;
}

/**
 * Frame values → microtime bins. Frame i is at time i/fps and falls in bin floor(t/dt);
 * a bin is the mean of its frames; an empty bin holds the previous bin's value (the frame
 * stays on screen); bins before the first frame are 0.
 */
export function binFrames(perFrame: Float64Array, fps: number, t: DriveTiming): Float64Array {
  const nBins = t.nVolumes * t.microtimeBins;
  const dt = t.tr / t.microtimeBins;
  const sums = new Float64Array(nBins);
  const counts = new Uint32Array(nBins);
  for (let i = 0; i < perFrame.length; i++) {
    // The epsilon keeps a frame that lands exactly on a bin edge (i/fps = b·dt) in bin b.
    const b = Math.floor(i / fps / dt + 1e-9);
    if (b >= nBins) break;
    sums[b] += perFrame[i];
    counts[b]++;
  }
  const out = new Float64Array(nBins);
  let last = 0;
  for (let b = 0; b < nBins; b++) {
    if (counts[b] > 0) last = sums[b] / counts[b];
    out[b] = last;
  }
  return out;
}

/** The bin sampled for TR k: the one starting at the middle of the TR (SPM's T0 = T/2). */
export function referenceBin(k: number, microtimeBins: number): number {
  return k * microtimeBins + Math.floor(microtimeBins / 2);
}

/** HRF-convolves a microtime series and samples it at each TR's reference bin. */
export function convolveAndSample(microtime: Float64Array, t: DriveTiming): Float64Array {
  const response = convolveCausal(microtime, canonicalHrf(t.tr / t.microtimeBins));
  const out = new Float64Array(t.nVolumes);
  for (let k = 0; k < t.nVolumes; k++) out[k] = response[referenceBin(k, t.microtimeBins)];
  return out;
}

/** Zero mean, unit (population) standard deviation; a constant series becomes all zeros. */
export function standardize(x: Float64Array): Float64Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  const sd = Math.sqrt(ss / x.length);
  return x.map((v) => (sd > 0 ? (v - mean) / sd : 0));
}

/** The standardized drive of one feature: binFrames → convolveAndSample → standardize. */
export function featureDrive(perFrame: Float64Array, fps: number, t: DriveTiming): Float64Array {
  return standardize(convolveAndSample(binFrames(perFrame, fps, t), t));
}

/** Mean of the frames of each TR (frame i belongs to TR floor(i / (fps·TR))): the unconvolved course per TR. */
export function perTrMeans(perFrame: Float64Array, fps: number, t: DriveTiming): Float64Array {
  const sums = new Float64Array(t.nVolumes);
  const counts = new Uint32Array(t.nVolumes);
  for (let i = 0; i < perFrame.length; i++) {
    const k = Math.floor(i / fps / t.tr + 1e-9);
    if (k >= t.nVolumes) break;
    sums[k] += perFrame[i];
    counts[k]++;
  }
  return sums.map((s, k) => (counts[k] > 0 ? s / counts[k] : NaN));
}
