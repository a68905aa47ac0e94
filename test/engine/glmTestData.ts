/**
 * Seeded GLM test inputs shared by the glm*.test.ts files: a design with intercept,
 * drift and smooth unit responses, and BOLD-like float32 data (offsets ~1000, planted
 * effects, noise), plus the comparison helpers.
 */
import { createRng } from '../../server/engine/random.ts';

export interface GlmData {
  T: number;
  P: number;
  V: number;
  /** T×P row-major. */
  X: Float64Array;
  /** T×V row-major. */
  Y: Float32Array;
}

export function makeGlmData(seed: number, T: number, K: number, V: number): GlmData {
  const rng = createRng(seed);
  const P = K + 3;
  const X = new Float64Array(T * P);
  const walk = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    const row = t * P;
    X[row] = 1;
    X[row + 1] = (t - T / 2) / T;
    X[row + 2] = Math.cos((Math.PI * (t + 0.5)) / T);
    for (let k = 0; k < K; k++) {
      walk[k] = 0.8 * walk[k] + rng.normal();
      X[row + 3 + k] = walk[k];
    }
  }
  const B = new Float64Array(P * V);
  for (let v = 0; v < V; v++) {
    B[v] = 1000 + 200 * rng.normal();
    B[V + v] = 5 * rng.normal();
    B[2 * V + v] = 5 * rng.normal();
    for (let k = 0; k < K; k++) B[(3 + k) * V + v] = rng.normal();
  }
  const Y = new Float32Array(T * V);
  for (let t = 0; t < T; t++) {
    for (let v = 0; v < V; v++) {
      let s = 2 * rng.normal();
      for (let j = 0; j < P; j++) s += X[t * P + j] * B[j * V + v];
      Y[t * V + v] = s;
    }
  }
  return { T, P, V, X, Y };
}

export function row(X: Float64Array, t: number, P: number): Float64Array {
  return X.slice(t * P, (t + 1) * P);
}

export function volume(Y: Float32Array, t: number, V: number): Float32Array {
  return Y.slice(t * V, (t + 1) * V);
}

/** Weights λ^(k−1−t) for the first k TRs. */
export function forgettingWeights(lambda: number, k: number): Float64Array {
  const w = new Float64Array(k);
  for (let t = 0; t < k; t++) w[t] = lambda ** (k - 1 - t);
  return w;
}

/**
 * Largest error of `got` against `want`, relative to |want| plus a floor `floor` (for
 * values that are near 0 only by chance, e.g. a null unit's beta). NaN in either counts
 * as Infinity unless both are NaN.
 */
export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const a = got[i];
    const b = want[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (Number.isNaN(a) || Number.isNaN(b)) return Infinity;
    worst = Math.max(worst, Math.abs(a - b) / (Math.abs(b) + floor));
  }
  return worst;
}
