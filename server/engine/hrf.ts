/**
 * The SPM canonical haemodynamic response function (double gamma), computed exactly as
 * SPM12's `spm_hrf(RT, P, T)` and `spm_get_bf` do, so that regressors built here match
 * what SPM and nilearn users expect to the last digit.
 *
 * SPM's own steps (spm_hrf.m), with dt = RT/T:
 *   u   = [0:ceil(p7/dt)] - p6/dt
 *   hrf = spm_Gpdf(u, p1/p3, dt/p3) - spm_Gpdf(u, p2/p4, dt/p4)/p5
 *   hrf = hrf([0:floor(p7/RT)]*T + 1);  hrf = hrf/sum(hrf)
 * i.e. the double gamma evaluated on a grid T times finer than RT and then sampled every
 * RT from time 0 (the fine grid only matters through the onset shift p6).
 *
 * The microtime kernel (the one the convolution uses) is what `spm_get_bf` builds for the
 * 'hrf' basis set: `spm_hrf(dt, [], T)` with dt = TR/T, i.e. the same function sampled
 * every microtime bin, normalised to unit sum. Unit sum means a constant drive of value a
 * gives, once the kernel has filled, a constant response a: the responses stay in the units
 * of the activations. The optional temporal derivative is also spm_get_bf's:
 * D = (bf - spm_hrf(dt, p with p6 + 1, T)) / 1, then orthogonalised against bf by
 * `spm_orth` (Gram-Schmidt without normalisation).
 */
import { SyncactError } from '../errors.ts';

/** SPM's parameter vector P = [p1 … p7], by name. Times in seconds. */
export interface HrfParams {
  /** p1: delay of the response (relative to onset), 6 s. */
  peakDelay: number;
  /** p2: delay of the undershoot (relative to onset), 16 s. */
  undershootDelay: number;
  /** p3: dispersion of the response, 1. */
  peakDispersion: number;
  /** p4: dispersion of the undershoot, 1. */
  undershootDispersion: number;
  /** p5: ratio of response to undershoot, 6. */
  ratio: number;
  /** p6: onset, 0 s. */
  onset: number;
  /** p7: length of the kernel, 32 s. */
  length: number;
}

/** SPM12 defaults, P = [6 16 1 1 6 0 32]. */
export const SPM_HRF_DEFAULTS: Readonly<HrfParams> = Object.freeze({
  peakDelay: 6,
  undershootDelay: 16,
  peakDispersion: 1,
  undershootDispersion: 1,
  ratio: 6,
  onset: 0,
  length: 32,
});

/** SPM's default microtime resolution (defaults.stats.fmri.t). */
export const DEFAULT_MICROTIME_BINS = 16;

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/**
 * log Γ(x) for x > 0. Integer arguments (the SPM defaults use shapes 6 and 16) are summed
 * exactly as log((x-1)!), so the default kernel carries no approximation error at all;
 * other arguments use the Lanczos approximation (g = 7, relative error ~1e-15).
 */
export function gammaln(x: number): number {
  if (Number.isInteger(x) && x > 0 && x <= 171) {
    let s = 0;
    for (let i = 2; i < x; i++) s += Math.log(i);
    return s;
  }
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - gammaln(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * SPM's `spm_Gpdf(x, h, l)`: the gamma density with shape h and rate l (scale 1/l),
 * zero for x < 0.
 */
export function gammaPdf(x: number, shape: number, rate: number): number {
  if (x < 0) return 0;
  if (x === 0) return shape > 1 ? 0 : shape === 1 ? rate : Infinity;
  return Math.exp((shape - 1) * Math.log(x) + shape * Math.log(rate) - rate * x - gammaln(shape));
}

function fullParams(params: Partial<HrfParams> | undefined): HrfParams {
  const p = { ...SPM_HRF_DEFAULTS, ...params };
  for (const [k, v] of Object.entries(p)) {
    if (!Number.isFinite(v)) throw new SyncactError('ENGINE_BAD_INPUT', `HRF parameter ${k} must be finite, got ${v}`);
  }
  if (p.peakDispersion <= 0 || p.undershootDispersion <= 0 || p.ratio === 0 || p.length <= 0) {
    throw new SyncactError('ENGINE_BAD_INPUT', 'HRF dispersions and length must be positive and the ratio non-zero');
  }
  return p;
}

/**
 * `spm_hrf(RT, P, T)`: the canonical HRF sampled every `rt` seconds from 0 to
 * floor(length/rt)·rt, normalised to unit sum.
 * @param rt sampling interval in seconds (the TR, or the microtime bin width)
 * @param params overrides of SPM's P vector
 * @param microtime T, SPM's fine-grid factor (only matters through the onset shift)
 */
export function spmHrf(rt: number, params?: Partial<HrfParams>, microtime: number = DEFAULT_MICROTIME_BINS): Float64Array {
  if (!(rt > 0) || !Number.isFinite(rt)) throw new SyncactError('ENGINE_BAD_INPUT', `HRF sampling interval must be positive, got ${rt}`);
  if (!Number.isInteger(microtime) || microtime < 1) {
    throw new SyncactError('ENGINE_BAD_INPUT', `HRF microtime resolution must be a positive integer, got ${microtime}`);
  }
  const p = fullParams(params);
  const dt = rt / microtime;
  const n = Math.floor(p.length / rt) + 1;
  const shift = p.onset / dt;
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const u = i * microtime - shift;
    const v =
      gammaPdf(u, p.peakDelay / p.peakDispersion, dt / p.peakDispersion) -
      gammaPdf(u, p.undershootDelay / p.undershootDispersion, dt / p.undershootDispersion) / p.ratio;
    out[i] = v;
    sum += v;
  }
  for (let i = 0; i < n; i++) out[i] /= sum;
  return out;
}

export interface MicrotimeKernelOptions {
  /** Repetition time in seconds. */
  tr: number;
  /** Microtime bins per TR (SPM's fMRI_T), default 16. */
  binsPerTr?: number;
  /** Add SPM's temporal derivative, orthogonalised against the HRF. Default false. */
  derivative?: boolean;
  params?: Partial<HrfParams>;
}

/**
 * The microtime basis of spm_get_bf: kernel 0 is the canonical HRF sampled every
 * TR/binsPerTr seconds (length floor(32 s / dt) + 1 = 513 bins at the defaults), kernel 1
 * (when asked) its temporal derivative made orthogonal to kernel 0.
 */
export function microtimeHrfKernels(options: MicrotimeKernelOptions): Float64Array[] {
  const T = options.binsPerTr ?? DEFAULT_MICROTIME_BINS;
  const dt = options.tr / T;
  const p = fullParams(options.params);
  const bf = spmHrf(dt, p, T);
  if (!options.derivative) return [bf];
  const shifted = spmHrf(dt, { ...p, onset: p.onset + 1 }, T);
  const dp = 1;
  const d = new Float64Array(bf.length);
  for (let i = 0; i < d.length; i++) d[i] = (bf[i] - shifted[i]) / dp;
  // spm_orth: D - bf * (pinv(bf) * D)
  let bb = 0;
  let bd = 0;
  for (let i = 0; i < d.length; i++) {
    bb += bf[i] * bf[i];
    bd += bf[i] * d[i];
  }
  const c = bd / bb;
  for (let i = 0; i < d.length; i++) d[i] -= bf[i] * c;
  return [bf, d];
}
