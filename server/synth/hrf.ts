/**
 * The ground-truth haemodynamic response of synthetic sessions: SPM's canonical double
 * gamma (response peak shape 6, undershoot shape 16, unit dispersions, ratio 6, 32 s),
 * sampled every microtime bin from lag 0 and normalised to unit sum.
 *
 * Deliberately separate from server/engine/hrf.ts: the generator is the referee for the
 * engine, so it must not share the code it is judging. Both follow spm_hrf, so a correct
 * engine reproduces these responses.
 */

/** log((n-1)!) = log Γ(n) for a positive integer n; exact enough for the shapes used here. */
function logGammaInt(n: number): number {
  let s = 0;
  for (let i = 2; i < n; i++) s += Math.log(i);
  return s;
}

/** Gamma density with integer shape and unit scale at t ≥ 0. */
function gammaPdf(t: number, shape: number): number {
  if (t <= 0) return 0;
  return Math.exp((shape - 1) * Math.log(t) - t - logGammaInt(shape));
}

/**
 * The canonical HRF at lags 0, dt, 2dt, … ≤ 32 s, summing to 1 (a constant input a gives,
 * once the kernel has filled, a constant response a).
 * @param dt sampling interval in seconds (the microtime bin, TR / bins)
 */
export function canonicalHrf(dt: number): Float64Array {
  const n = Math.floor(32 / dt + 1e-9) + 1;
  const h = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const t = i * dt;
    h[i] = gammaPdf(t, 6) - gammaPdf(t, 16) / 6;
    sum += h[i];
  }
  for (let i = 0; i < n; i++) h[i] /= sum;
  return h;
}

/** Causal convolution y[i] = Σ_j h[j]·x[i−j], with x = 0 before the start (nothing shown yet). */
export function convolveCausal(x: Float64Array, h: Float64Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let s = 0;
    const m = Math.min(i, h.length - 1);
    for (let j = 0; j <= m; j++) s += h[j] * x[i - j];
    y[i] = s;
  }
  return y;
}
