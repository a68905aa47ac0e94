/**
 * The per-voxel work of the voxelwise GLM, over one block of voxels [v0, v1).
 *
 * Everything that depends only on the design (the Givens rotations that fold the new row
 * into R) is computed once per TR by the caller and handed in through `params`; what is
 * left is the same P rotations applied to each voxel's (z, y) pairs, O(P) per voxel with
 * no allocation, so the same function runs in the calling thread or, on its own block,
 * in each worker (glmWorker.ts), over views of one shared buffer (GlmState). A voxel's
 * arithmetic never depends on which block it is in, so any split gives identical bits.
 * The loop runs as a WebAssembly SIMD kernel (glmWasm.ts) where there is one, else as the
 * JavaScript loop below; both do the same operations in the same order, so they agree
 * bit for bit.
 */
import { createGlmMemory, instantiateGlmKernel, type GlmWasmKernel, type WasmMemory } from './glmWasm.ts';

/** The per-voxel state, voxel-major (voxel v's P values are at [v·P, (v+1)·P)). */
export interface GlmArrays {
  /**
   * z = Qᵀ·√W·y, the data rotated by the same orthogonal transformation that took the
   * weighted design to R (float64: glm.ts reads the betas as R⁻¹z). Valid at every TR,
   * full rank or not, so there is no warm-up state.
   */
  z: Float64Array;
  /** Weighted residual sum of squares of the full model, Σ w_t r_t² (the rotated-out parts), float64. */
  rss: Float64Array;
  /** Weighted Σ w_t y_t², float64 (to tell an exact fit). */
  syy: Float64Array;
  /** 1 once the voxel has seen a non-finite value; its state is frozen from then on. */
  invalid: Uint8Array;
  /** The new volume, copied in by the caller each TR. */
  y: Float32Array;
  /** The WebAssembly SIMD version of the loop, bound to the memory these arrays view. */
  kernel: GlmWasmKernel | null;
}

/** Byte offsets of each array in the one buffer that holds them (16-byte aligned). */
export interface GlmLayout {
  voxels: number;
  regressors: number;
  z: number;
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
    z: take(voxels * regressors * 8),
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
      z: new Float64Array(buffer, layout.z, v * p),
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
  /** Rotate the new volume into every voxel's z and RSS with the TR's Givens rotations. */
  Rotate: 1,
} as const;
export type GlmCommand = (typeof GlmCommand)[keyof typeof GlmCommand];

/**
 * Layout of the float64 parameter block shared by the caller and the workers: λ, then per
 * column i eight values c_i, c_i, s_i, s_i, c_i√λ, c_i√λ, s_i√λ, s_i√λ (the √λ forms make
 * the history scaling z ← √λ·z free per voxel; each value twice so that the SIMD kernel
 * reads a splat with one aligned load). The block starts 16-byte aligned.
 */
export const PARAM_LAMBDA = 0;
export const PARAM_HEADER = 2;
export const ROTATION_STRIDE = 8;
export function paramLength(p: number): number {
  return PARAM_HEADER + ROTATION_STRIDE * p;
}
/** Offset of the rotation block. */
export function paramRotations(_p: number): number {
  return PARAM_HEADER;
}

/** Writes λ and the TR's rotations (c, s from qrRowUpdate) into `params`. */
export function setRotations(params: Float64Array, p: number, lambda: number, cos: Float64Array, sin: Float64Array): void {
  params[PARAM_LAMBDA] = lambda;
  const root = Math.sqrt(lambda);
  for (let i = 0, o = paramRotations(p); i < p; i++, o += ROTATION_STRIDE) {
    const c = cos[i];
    const s = sin[i];
    params[o] = params[o + 1] = c;
    params[o + 2] = params[o + 3] = s;
    params[o + 4] = params[o + 5] = c * root;
    params[o + 6] = params[o + 7] = s * root;
  }
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
    case GlmCommand.Rotate:
      return rotate(a, params, p, v0, v1);
    default:
      throw new Error(`unknown GLM command ${String(command)}`);
  }
}

/**
 * Calls the wasm kernel on [v0, v1) in chunks. V8 first runs wasm in its baseline compiler
 * and swaps in optimized code only between calls, so one call over 200k voxels would run
 * unoptimized throughout. Chunks cost one call per 4096 voxels; an even chunk size keeps
 * the pairs where one call would have them.
 */
const CHUNK = 4096;
function inChunks(v0: number, v1: number, f: (c0: number, c1: number) => void): void {
  for (let c0 = v0; c0 < v1; c0 += CHUNK) f(c0, Math.min(v1, c0 + CHUNK));
}

/** Marks voxel v as unusable: a voxel with a missing sample no longer shares the design. */
function invalidate(a: GlmArrays, v: number): void {
  a.invalid[v] = 1;
  a.rss[v] = NaN;
  a.syy[v] = NaN;
}

/**
 * One QR-RLS step for every voxel of the block: w starts as y_v, and for each column i
 * (z_i, w) ← (c_i·√λz_i + s_i·w, c_i·w − s_i·√λz_i); what is left of w is the new
 * residual, RSS ← λ·RSS + w². The WebAssembly SIMD kernel when there is one (glmWasm.ts),
 * else this JavaScript loop, two voxels per pass: each w is a chain of P dependent
 * multiply-adds, and two independent chains keep the CPU busy while each waits.
 */
function rotate(a: GlmArrays, params: Float64Array, p: number, v0: number, v1: number): void {
  const lambda = params[PARAM_LAMBDA];
  if (a.kernel) {
    const { rotate: step } = a.kernel;
    const [zAt, yAt, rotAt, rssAt, syyAt, invalidAt] = [
      a.z.byteOffset, a.y.byteOffset, params.byteOffset + 8 * paramRotations(p), a.rss.byteOffset, a.syy.byteOffset, a.invalid.byteOffset,
    ];
    inChunks(v0, v1, (c0, c1) => step(zAt, yAt, rotAt, rssAt, syyAt, invalidAt, c0, c1, p, lambda));
    return;
  }
  // The rotations, unpacked once per block (P each).
  const c = new Float64Array(p);
  const s = new Float64Array(p);
  const cl = new Float64Array(p);
  const sl = new Float64Array(p);
  for (let i = 0, o = paramRotations(p); i < p; i++, o += ROTATION_STRIDE) {
    c[i] = params[o];
    s[i] = params[o + 2];
    cl[i] = params[o + 4];
    sl[i] = params[o + 6];
  }
  const { z, rss, syy, invalid, y } = a;
  let v = v0;
  while (v < v1) {
    // A pair of valid voxels with finite samples takes the fast path.
    if (v + 1 < v1 && !invalid[v] && !invalid[v + 1]) {
      const y0 = y[v];
      const y1 = y[v + 1];
      if (!notFinite(y0) && !notFinite(y1)) {
        let o0 = v * p;
        let o1 = o0 + p;
        let w0 = y0;
        let w1 = y1;
        for (let i = 0; i < p; i++, o0++, o1++) {
          const ci = c[i];
          const si = s[i];
          const cli = cl[i];
          const sli = sl[i];
          const z0 = z[o0];
          const z1 = z[o1];
          z[o0] = cli * z0 + si * w0;
          z[o1] = cli * z1 + si * w1;
          w0 = ci * w0 - sli * z0;
          w1 = ci * w1 - sli * z1;
        }
        rss[v] = lambda * rss[v] + w0 * w0;
        rss[v + 1] = lambda * rss[v + 1] + w1 * w1;
        syy[v] = lambda * syy[v] + y0 * y0;
        syy[v + 1] = lambda * syy[v + 1] + y1 * y1;
        v += 2;
        continue;
      }
    }
    rotateOne(a, c, s, cl, sl, lambda, p, v);
    v++;
  }
}

/** The same step for a single voxel (block edges, invalid neighbours, new NaNs): the same operations in the same order. */
function rotateOne(
  a: GlmArrays,
  c: Float64Array,
  s: Float64Array,
  cl: Float64Array,
  sl: Float64Array,
  lambda: number,
  p: number,
  v: number,
): void {
  if (a.invalid[v]) return;
  const yv = a.y[v];
  if (notFinite(yv)) {
    invalidate(a, v);
    return;
  }
  const z = a.z;
  let o = v * p;
  let w = yv;
  for (let i = 0; i < p; i++, o++) {
    const zi = z[o];
    z[o] = cl[i] * zi + s[i] * w;
    w = c[i] * w - sl[i] * zi;
  }
  a.rss[v] = lambda * a.rss[v] + w * w;
  a.syy[v] = lambda * a.syy[v] + yv * yv;
}
