/**
 * The per-voxel work of the voxelwise GLM, over one block of voxels [v0, v1).
 *
 * Everything that depends only on the design (the gain, the P×P factor) is computed once
 * per TR by the caller and handed in through `params`; what is left is O(P) per voxel
 * with no allocation, so the same function runs in the calling thread or, on its own
 * block, in each worker (glmWorker.ts), over views of one shared buffer (GlmState). A
 * voxel's arithmetic never depends on which block it is in, so any split gives
 * identical bits.
 */
import { createGlmMemory, instantiateGlmKernel, type GlmWasmKernel, type WasmMemory } from './glmWasm.ts';

/** The per-voxel state, voxel-major (voxel v's P values are at [v·P, (v+1)·P)). */
export interface GlmArrays {
  /**
   * Fitted: the betas (float64, see glm.ts for why not float32). Warm-up: the weighted
   * Xᵀy of each voxel, which is what the betas are solved from — the two are never
   * needed at once, so they share the space (8·V·P bytes) and nothing is allocated or
   * freed when the estimator enters or leaves warm-up.
   */
  betas: Float64Array;
  /** Weighted residual sum of squares Σ w_t r_t² (fitted state only), float64. */
  rss: Float64Array;
  /** Weighted Σ w_t y_t², float64 (used to start the RSS and to tell an exact fit). */
  syy: Float64Array;
  /** 1 once the voxel has seen a non-finite value; its state is frozen from then on. */
  invalid: Uint8Array;
  /** The new volume, copied in by the caller each TR. */
  y: Float32Array;
  /** The WebAssembly SIMD versions of the Rls and Accumulate loops, bound to the memory these arrays view. */
  kernel: GlmWasmKernel | null;
}

/** Byte offsets of each array in the one buffer that holds them (16-byte aligned). */
export interface GlmLayout {
  voxels: number;
  regressors: number;
  betas: number;
  rss: number;
  syy: number;
  y: number;
  params: number;
  invalid: number;
  bytes: number;
}

export function glmLayout(voxels: number, regressors: number): GlmLayout {
  let end = 0;
  const take = (bytes: number) => {
    const at = end;
    end = Math.ceil((end + bytes) / 16) * 16;
    return at;
  };
  return {
    voxels,
    regressors,
    betas: take(voxels * regressors * 8),
    rss: take(voxels * 8),
    syy: take(voxels * 8),
    params: take(paramLength(regressors) * 8),
    y: take(voxels * 4),
    invalid: take(voxels),
    bytes: end,
  };
}

/**
 * Everything the per-voxel loop touches, in one buffer: a shared WebAssembly memory when
 * the SIMD kernel is available (and the state fits in 4 GiB), else a SharedArrayBuffer
 * (for workers) or a plain ArrayBuffer.
 */
export interface GlmState {
  layout: GlmLayout;
  buffer: ArrayBufferLike;
  memory: WasmMemory | null;
  arrays: GlmArrays;
  params: Float64Array;
}

export function createGlmState(voxels: number, regressors: number, shared: boolean): GlmState {
  const layout = glmLayout(voxels, regressors);
  const memory = createGlmMemory(layout.bytes);
  const buffer = memory ? memory.buffer : shared ? new SharedArrayBuffer(layout.bytes) : new ArrayBuffer(layout.bytes);
  return { layout, buffer, memory, ...viewGlmState(buffer, layout, memory) };
}

/** Views on a state buffer (in the thread that created it, or in a worker). */
export function viewGlmState(
  buffer: ArrayBufferLike,
  layout: GlmLayout,
  memory: WasmMemory | null,
): { arrays: GlmArrays; params: Float64Array } {
  const { voxels: v, regressors: p } = layout;
  return {
    arrays: {
      betas: new Float64Array(buffer, layout.betas, v * p),
      rss: new Float64Array(buffer, layout.rss, v),
      syy: new Float64Array(buffer, layout.syy, v),
      invalid: new Uint8Array(buffer, layout.invalid, v),
      y: new Float32Array(buffer, layout.y, v),
      kernel: memory ? instantiateGlmKernel(memory) : null,
    },
    params: new Float64Array(buffer, layout.params, paramLength(p)),
  };
}

/** What a block is asked to do this TR. */
export const GlmCommand = {
  /** Warm-up: xty ← λ·xty + x·y, syy ← λ·syy + y² (xty lives where the betas will). */
  Accumulate: 1,
  /** Leave warm-up: betas = Φ⁻¹ xty with the factor L and Lᵀ in params, rss = syy − βᵀxty. */
  Init: 2,
  /** Fitted: one recursive least squares step with the shared gain. */
  Rls: 3,
  /** Back to warm-up after the design lost rank: xty ← λ·Φ_prev·β + x·y. */
  Reenter: 4,
} as const;
export type GlmCommand = (typeof GlmCommand)[keyof typeof GlmCommand];

/** Layout of the float64 parameter block shared by the caller and the workers. */
export const PARAM_LAMBDA = 0;
/** λ/(λ + xᵀΦ⁻¹x): how much of the a-priori error² enters the RSS. */
export const PARAM_RSS_FACTOR = 1;
export const PARAM_HEADER = 4;
export function paramLength(p: number): number {
  return PARAM_HEADER + 2 * p + 2 * p * p;
}
/** Offset of the design row x (P). */
export function paramX(_p: number): number {
  return PARAM_HEADER;
}
/** Offset of the gain g = Φ_k⁻¹ x (P). */
export function paramGain(p: number): number {
  return PARAM_HEADER + p;
}
/** Offset of a P×P matrix: the Cholesky factor (Init) or the previous Φ (Reenter). */
export function paramMatrix(p: number): number {
  return PARAM_HEADER + 2 * p;
}
/** Offset of the transposed factor Lᵀ (Init only), so both solves read rows. */
export function paramUpper(p: number): number {
  return PARAM_HEADER + 2 * p + p * p;
}

/** True for NaN and ±Infinity (x − x is 0 only for finite x). */
function notFinite(y: number): boolean {
  return !(y - y === 0);
}

/** Runs `command` on voxels [v0, v1). */
export function runGlmBlock(
  command: GlmCommand,
  a: GlmArrays,
  params: Float64Array,
  p: number,
  v0: number,
  v1: number,
): void {
  switch (command) {
    case GlmCommand.Accumulate:
      return accumulate(a, params, p, v0, v1);
    case GlmCommand.Init:
      return init(a, params, p, v0, v1);
    case GlmCommand.Rls:
      return rls(a, params, p, v0, v1);
    case GlmCommand.Reenter:
      return reenter(a, params, p, v0, v1);
    default:
      throw new Error(`unknown GLM command ${String(command)}`);
  }
}

/**
 * Calls a wasm kernel on [v0, v1) in chunks. V8 first runs wasm in its baseline compiler
 * and swaps in optimized code only between calls, so one call over 200k voxels (the
 * exact start happens once) would run unoptimized throughout: measured 1.7 s instead
 * of 0.4 s. Chunks cost one call per 4096 voxels.
 */
const CHUNK = 4096;
function inChunks(v0: number, v1: number, f: (c0: number, c1: number) => void): void {
  for (let c0 = v0; c0 < v1; c0 += CHUNK) f(c0, Math.min(v1, c0 + CHUNK));
}

/** Marks voxel v as unusable: a voxel with a missing sample cannot share the gain. */
function invalidate(a: GlmArrays, v: number): void {
  a.invalid[v] = 1;
  a.rss[v] = NaN;
  a.syy[v] = NaN;
}

function accumulate(a: GlmArrays, params: Float64Array, p: number, v0: number, v1: number): void {
  const lambda = params[PARAM_LAMBDA];
  const xo = paramX(p);
  if (a.kernel) {
    const { accumulate } = a.kernel;
    const [xtyAt, yAt, xAt, syyAt, rssAt, invalidAt] = [
      a.betas.byteOffset, a.y.byteOffset, params.byteOffset + 8 * xo, a.syy.byteOffset, a.rss.byteOffset, a.invalid.byteOffset,
    ];
    inChunks(v0, v1, (c0, c1) => accumulate(xtyAt, yAt, xAt, syyAt, rssAt, invalidAt, c0, c1, p, lambda));
    return;
  }
  const { betas: xty, y, syy, invalid } = a;
  for (let v = v0; v < v1; v++) {
    if (invalid[v]) continue;
    const yv = y[v];
    if (notFinite(yv)) {
      invalidate(a, v);
      continue;
    }
    const o = v * p;
    for (let j = 0; j < p; j++) xty[o + j] = lambda * xty[o + j] + params[xo + j] * yv;
    syy[v] = lambda * syy[v] + yv * yv;
  }
}

/**
 * β = Φ⁻¹·Xᵀy in place of Xᵀy, one voxel at a time: z = L⁻¹·Xᵀy, then β = L⁻ᵀ·z, both
 * in place, reading rows of L and of Lᵀ. At the solution βᵀΦβ = βᵀXᵀWy = ‖z‖², so
 * RSS = Σwy² − ‖z‖²: the subtraction loses digits in proportion to Σwy²/RSS, harmless in
 * float64 (it is done once; later TRs add positive terms only).
 */
function init(a: GlmArrays, params: Float64Array, p: number, v0: number, v1: number): void {
  const lo = paramMatrix(p);
  const uo = paramUpper(p);
  if (a.kernel) {
    const { init: solve } = a.kernel;
    const [betasAt, lAt, uAt, syyAt, rssAt, invalidAt] = [
      a.betas.byteOffset, params.byteOffset + 8 * lo, params.byteOffset + 8 * uo, a.syy.byteOffset, a.rss.byteOffset, a.invalid.byteOffset,
    ];
    inChunks(v0, v1, (c0, c1) => solve(betasAt, lAt, uAt, syyAt, rssAt, invalidAt, c0, c1, p));
    return;
  }
  const { betas: b, rss, syy, invalid } = a;
  for (let v = v0; v < v1; v++) {
    if (invalid[v]) continue;
    const o = v * p;
    let fit = 0;
    for (let i = 0; i < p; i++) {
      const row = lo + i * p;
      let s = b[o + i];
      for (let k = 0; k < i; k++) s -= params[row + k] * b[o + k];
      const z = s / params[row + i];
      b[o + i] = z;
      fit += z * z;
    }
    for (let i = p - 1; i >= 0; i--) {
      const row = uo + i * p;
      let s = b[o + i];
      for (let k = i + 1; k < p; k++) s -= params[row + k] * b[o + k];
      b[o + i] = s / params[row + i];
    }
    const r = syy[v] - fit;
    rss[v] = r > 0 ? r : 0;
  }
}

/**
 * One RLS step for every voxel of the block: the WebAssembly SIMD kernel when there is
 * one (glmWasm.ts, ~3× faster), else this JavaScript loop, two voxels per pass so that
 * each x_j and g_j loaded serves two rows (measured ~8% faster than one voxel per pass).
 * Everything is float64 except the incoming volume.
 */
function rls(a: GlmArrays, params: Float64Array, p: number, v0: number, v1: number): void {
  const lambda = params[PARAM_LAMBDA];
  const c = params[PARAM_RSS_FACTOR];
  const x = params.subarray(paramX(p), paramX(p) + p);
  const g = params.subarray(paramGain(p), paramGain(p) + p);
  if (a.kernel) {
    const po = params.byteOffset;
    const { rls: step } = a.kernel;
    const [betasAt, yAt, xAt, gAt, rssAt, syyAt, invalidAt] = [
      a.betas.byteOffset, a.y.byteOffset, po + 8 * paramX(p), po + 8 * paramGain(p), a.rss.byteOffset, a.syy.byteOffset, a.invalid.byteOffset,
    ];
    inChunks(v0, v1, (c0, c1) => step(betasAt, yAt, xAt, gAt, rssAt, syyAt, invalidAt, c0, c1, p, lambda, c));
    return;
  }
  const { betas: b, rss, syy, invalid, y } = a;
  let v = v0;
  while (v < v1) {
    // A pair of valid voxels with finite samples takes the fast path.
    if (v + 1 < v1 && !invalid[v] && !invalid[v + 1]) {
      const y0 = y[v];
      const y1 = y[v + 1];
      if (!notFinite(y0) && !notFinite(y1)) {
        const o0 = v * p;
        const o1 = o0 + p;
        let p0 = 0;
        let p1 = 0;
        for (let j = 0; j < p; j++) {
          const xj = x[j];
          p0 += b[o0 + j] * xj;
          p1 += b[o1 + j] * xj;
        }
        const e0 = y0 - p0;
        const e1 = y1 - p1;
        for (let j = 0; j < p; j++) {
          const gj = g[j];
          b[o0 + j] += gj * e0;
          b[o1 + j] += gj * e1;
        }
        rss[v] = lambda * rss[v] + c * e0 * e0;
        rss[v + 1] = lambda * rss[v + 1] + c * e1 * e1;
        syy[v] = lambda * syy[v] + y0 * y0;
        syy[v + 1] = lambda * syy[v + 1] + y1 * y1;
        v += 2;
        continue;
      }
    }
    rlsOne(a, x, g, lambda, c, p, v);
    v++;
  }
}

/** The same step for a single voxel (block edges, invalid neighbours, new NaNs). */
function rlsOne(
  a: GlmArrays,
  x: Float64Array,
  g: Float64Array,
  lambda: number,
  c: number,
  p: number,
  v: number,
): void {
  if (a.invalid[v]) return;
  const yv = a.y[v];
  if (notFinite(yv)) {
    invalidate(a, v);
    return;
  }
  const b = a.betas;
  const o = v * p;
  let pred = 0;
  for (let j = 0; j < p; j++) pred += b[o + j] * x[j];
  const e = yv - pred;
  for (let j = 0; j < p; j++) b[o + j] += g[j] * e;
  a.rss[v] = lambda * a.rss[v] + c * e * e;
  a.syy[v] = lambda * a.syy[v] + yv * yv;
}

/** Xᵀy = λ·Φ_prev·β + x·y in place of β (the normal equations hold at every fitted TR). */
function reenter(a: GlmArrays, params: Float64Array, p: number, v0: number, v1: number): void {
  const lambda = params[PARAM_LAMBDA];
  const xo = paramX(p);
  const mo = paramMatrix(p);
  const { betas, syy, invalid, y } = a;
  const beta = new Float64Array(p);
  for (let v = v0; v < v1; v++) {
    if (invalid[v]) continue;
    const yv = y[v];
    if (notFinite(yv)) {
      invalidate(a, v);
      continue;
    }
    const o = v * p;
    for (let j = 0; j < p; j++) beta[j] = betas[o + j];
    for (let i = 0; i < p; i++) {
      let s = 0;
      const row = mo + i * p;
      for (let j = 0; j < p; j++) s += params[row + j] * beta[j];
      betas[o + i] = lambda * s + params[xo + i] * yv;
    }
    syy[v] = lambda * syy[v] + yv * yv;
  }
}
