/**
 * The GLM's per-TR voxel loops (the `Rls` and `Accumulate` commands of glmBlock.ts) as
 * WebAssembly SIMD functions, assembled here byte by byte so that no toolchain is needed
 * at install time.
 *
 * Why: the loop is compute-bound in V8 (bounds checks, one double per operation); with
 * f64x2 lanes and no bounds checks it measured 5.5 ms instead of 17 ms per TR at
 * V = 200,000, P = 69 on one core. The arithmetic is the same as the JavaScript kernel
 * (same formulas, float64) except that each dot product is summed in two lanes, so
 * results agree with it to rounding, not bit for bit; the calling thread and every
 * worker use the same kernel, so a run is bitwise the same whatever the thread count.
 *
 * The function works on a memory it imports (`env.mem`, shared, fixed size), in which
 * glmBlock.ts lays out the betas, the volume, the sums, the invalid flags and the
 * parameter block; its arguments are byte offsets into it:
 *   rls(betas, y, x, g, rss, syy, invalid, v0, v1, P: i32, lambda, c: f64)
 * For each voxel v in [v0, v1) that is not invalid: if y[v] is finite,
 *   e = y[v] − Σ_j β_vj x_j;  β_vj += g_j e;  rss[v] = λ·rss[v] + c·e²;  syy[v] = λ·syy[v] + y²;
 * else invalid[v] = 1, rss[v] = syy[v] = NaN (exactly as the JavaScript kernel).
 *   accumulate(xty, y, x, syy, rss, invalid, v0, v1, P: i32, lambda: f64)
 * does the warm-up step xty_vj = λ·xty_vj + x_j·y[v], syy[v] = λ·syy[v] + y², with the same
 * invalid/non-finite handling; it has no sums, so it is bitwise the JavaScript loop.
 *   init(betas, L, Lᵀ, syy, rss, invalid, v0, v1, P: i32)
 * solves each valid voxel's row of Xᵀy in place for β (forward with the rows of L, back
 * with the rows of Lᵀ, dot products in f64x2) and sets rss = max(syy − ‖L⁻¹Xᵀy‖², 0).
 */

// --- a few encoders (WebAssembly binary format, https://webassembly.github.io/spec/core/binary/)
const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (n: number) => [0x41, ...sleb(n)];
const f64 = (x: number) => [0x44, ...new Uint8Array(Float64Array.of(x).buffer)];
const memarg = (align: number) => [...uleb(align), 0];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const op = {
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  i32LtS: [0x48],
  i32Sub: [0x6b],
  f64Div: [0xa3],
  f64Gt: [0x64],
  select: [0x1b],
  i32Eqz: [0x45],
  f64Add: [0xa0],
  f64Sub: [0xa1],
  f64Mul: [0xa2],
  f64Eq: [0x61],
  f64PromoteF32: [0xbb],
  f32Load: [0x2a, ...memarg(2)],
  f64Load: [0x2b, ...memarg(3)],
  f64Store: [0x39, ...memarg(3)],
  u8Load: [0x2d, ...memarg(0)],
  u8Store: [0x3a, ...memarg(0)],
  // Rows of P doubles start 8-byte aligned only (P may be odd): align hint 8.
  v128Load: simd(0x00, ...memarg(3)),
  v128Store: simd(0x0b, ...memarg(3)),
  v128Zero: simd(0x0c, ...new Array<number>(16).fill(0)),
  f64x2Splat: simd(0x14),
  f64x2Lane: (lane: number) => simd(0x21, lane),
  f64x2Add: simd(0xf0),
  f64x2Mul: simd(0xf2),
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
};

// Arguments, then locals (4 i32, 3 f64, 2 v128: see moduleBytes).
const [BETAS, Y, X, G, RSS, SYY, INVALID, V0, V1, P, LAMBDA, C] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const [v, row, j, pairsEnd, yv, e, pred, acc, ev] = [12, 13, 14, 15, 16, 17, 18, 19, 20];
/** base + index << shift */
const address = (base: number, index: number, shift: number) => [...get(base), ...get(index), ...i32(shift), ...op.i32Shl, ...op.i32Add];
/** for (j = 0; j < pairsEnd; j += 16) { body } */
const overPairs = (body: number[]) => [
  ...i32(0), ...set(j),
  ...op.block, ...op.loop,
  ...get(j), ...get(pairsEnd), ...op.i32GeU, ...op.brIf(1),
  ...body,
  ...get(j), ...i32(16), ...op.i32Add, ...set(j),
  ...op.br(0),
  ...op.end, ...op.end,
];
/** if (P is odd) { body } — the last column, at byte offset pairsEnd. */
const lastIfOdd = (body: number[]) => [...get(P), ...i32(1), ...op.i32And, ...op.if, ...body, ...op.end];
const at = (base: number, offset: number) => [...get(base), ...get(offset), ...op.i32Add];

// prettier-ignore
const rlsBody: number[] = [
  // pairsEnd = (P & ~1) * 8: bytes covered by whole f64x2 lanes.
  ...get(P), ...i32(-2), ...op.i32And, ...i32(8), ...op.i32Mul, ...set(pairsEnd),
  ...get(V0), ...set(v),
  ...op.block, ...op.loop,
    ...get(v), ...get(V1), ...op.i32GeU, ...op.brIf(1),
    ...at(INVALID, v), ...op.u8Load, ...op.i32Eqz,
    ...op.if,
      ...address(Y, v, 2), ...op.f32Load, ...op.f64PromoteF32, ...set(yv),
      // finite ⇔ y − y == 0
      ...get(yv), ...get(yv), ...op.f64Sub, ...f64(0), ...op.f64Eq,
      ...op.if,
        ...get(BETAS), ...get(v), ...get(P), ...op.i32Mul, ...i32(3), ...op.i32Shl, ...op.i32Add, ...set(row),
        // pred = β_v · x
        ...op.v128Zero, ...set(acc),
        ...overPairs([
          ...get(acc), ...at(row, j), ...op.v128Load, ...at(X, j), ...op.v128Load, ...op.f64x2Mul, ...op.f64x2Add, ...set(acc),
        ]),
        ...get(acc), ...op.f64x2Lane(0), ...get(acc), ...op.f64x2Lane(1), ...op.f64Add, ...set(pred),
        ...lastIfOdd([
          ...get(pred), ...at(row, pairsEnd), ...op.f64Load, ...at(X, pairsEnd), ...op.f64Load, ...op.f64Mul, ...op.f64Add, ...set(pred),
        ]),
        ...get(yv), ...get(pred), ...op.f64Sub, ...set(e),
        // β_v += g·e
        ...get(e), ...op.f64x2Splat, ...set(ev),
        ...overPairs([
          ...at(row, j),
          ...at(row, j), ...op.v128Load, ...at(G, j), ...op.v128Load, ...get(ev), ...op.f64x2Mul, ...op.f64x2Add,
          ...op.v128Store,
        ]),
        ...lastIfOdd([
          ...at(row, pairsEnd),
          ...at(row, pairsEnd), ...op.f64Load, ...at(G, pairsEnd), ...op.f64Load, ...get(e), ...op.f64Mul, ...op.f64Add,
          ...op.f64Store,
        ]),
        // rss = λ·rss + c·e·e ; syy = λ·syy + y·y
        ...address(RSS, v, 3),
        ...get(LAMBDA), ...address(RSS, v, 3), ...op.f64Load, ...op.f64Mul, ...get(C), ...get(e), ...op.f64Mul, ...get(e), ...op.f64Mul, ...op.f64Add,
        ...op.f64Store,
        ...address(SYY, v, 3),
        ...get(LAMBDA), ...address(SYY, v, 3), ...op.f64Load, ...op.f64Mul, ...get(yv), ...get(yv), ...op.f64Mul, ...op.f64Add,
        ...op.f64Store,
      ...op.else,
        ...at(INVALID, v), ...i32(1), ...op.u8Store,
        ...address(RSS, v, 3), ...f64(NaN), ...op.f64Store,
        ...address(SYY, v, 3), ...f64(NaN), ...op.f64Store,
      ...op.end,
    ...op.end,
    ...get(v), ...i32(1), ...op.i32Add, ...set(v),
    ...op.br(0),
  ...op.end, ...op.end,
];

// accumulate: arguments, then locals (4 i32, 1 f64, 2 v128).
const [XTY, AY, AX, ASYY, ARSS, AINVALID, AV0, AV1, AP, ALAMBDA] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const [av, arow, aj, aPairsEnd, ayv, lv, yvv] = [10, 11, 12, 13, 14, 15, 16];

// prettier-ignore
const accumulateBody: number[] = [
  ...get(AP), ...i32(-2), ...op.i32And, ...i32(8), ...op.i32Mul, ...set(aPairsEnd),
  ...get(ALAMBDA), ...op.f64x2Splat, ...set(lv),
  ...get(AV0), ...set(av),
  ...op.block, ...op.loop,
    ...get(av), ...get(AV1), ...op.i32GeU, ...op.brIf(1),
    ...at(AINVALID, av), ...op.u8Load, ...op.i32Eqz,
    ...op.if,
      ...address(AY, av, 2), ...op.f32Load, ...op.f64PromoteF32, ...set(ayv),
      ...get(ayv), ...get(ayv), ...op.f64Sub, ...f64(0), ...op.f64Eq,
      ...op.if,
        ...get(XTY), ...get(av), ...get(AP), ...op.i32Mul, ...i32(3), ...op.i32Shl, ...op.i32Add, ...set(arow),
        ...get(ayv), ...op.f64x2Splat, ...set(yvv),
        // xty = λ·xty + x·y
        ...i32(0), ...set(aj),
        ...op.block, ...op.loop,
          ...get(aj), ...get(aPairsEnd), ...op.i32GeU, ...op.brIf(1),
          ...at(arow, aj),
          ...get(lv), ...at(arow, aj), ...op.v128Load, ...op.f64x2Mul,
          ...at(AX, aj), ...op.v128Load, ...get(yvv), ...op.f64x2Mul,
          ...op.f64x2Add, ...op.v128Store,
          ...get(aj), ...i32(16), ...op.i32Add, ...set(aj),
          ...op.br(0),
        ...op.end, ...op.end,
        ...get(AP), ...i32(1), ...op.i32And,
        ...op.if,
          ...at(arow, aPairsEnd),
          ...get(ALAMBDA), ...at(arow, aPairsEnd), ...op.f64Load, ...op.f64Mul,
          ...at(AX, aPairsEnd), ...op.f64Load, ...get(ayv), ...op.f64Mul,
          ...op.f64Add, ...op.f64Store,
        ...op.end,
        ...address(ASYY, av, 3),
        ...get(ALAMBDA), ...address(ASYY, av, 3), ...op.f64Load, ...op.f64Mul, ...get(ayv), ...get(ayv), ...op.f64Mul, ...op.f64Add,
        ...op.f64Store,
      ...op.else,
        ...at(AINVALID, av), ...i32(1), ...op.u8Store,
        ...address(ARSS, av, 3), ...f64(NaN), ...op.f64Store,
        ...address(ASYY, av, 3), ...f64(NaN), ...op.f64Store,
      ...op.end,
    ...op.end,
    ...get(av), ...i32(1), ...op.i32Add, ...set(av),
    ...op.br(0),
  ...op.end, ...op.end,
];

// init: arguments, then locals (6 i32, 2 f64, 1 v128).
const [IB, IL, IU, ISYY, IRSS, IINVALID, IV0, IV1, IP] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const [iv, irow, ii, mrow, kStart, kEnd, is, fit, iacc] = [9, 10, 11, 12, 13, 14, 15, 16, 17];
const k = 18; // i32 local declared last
/**
 * s = row[i] − Σ_{k ∈ [kStart, kEnd)} M[i,k]·row[k] (pairs), minus the odd last term at kEnd
 * when `oddTerm` (an i32 on the stack) is set.
 */
const rowDot = (oddTerm: number[]) => [
  ...op.v128Zero, ...set(iacc),
  ...get(kStart), ...set(k),
  ...op.block, ...op.loop,
    ...get(k), ...get(kEnd), ...op.i32GeU, ...op.brIf(1),
    ...get(iacc), ...at(mrow, k), ...op.v128Load, ...at(irow, k), ...op.v128Load, ...op.f64x2Mul, ...op.f64x2Add, ...set(iacc),
    ...get(k), ...i32(16), ...op.i32Add, ...set(k),
    ...op.br(0),
  ...op.end, ...op.end,
  ...address(irow, ii, 3), ...op.f64Load,
  ...get(iacc), ...op.f64x2Lane(0), ...get(iacc), ...op.f64x2Lane(1), ...op.f64Add, ...op.f64Sub, ...set(is),
  ...oddTerm,
  ...op.if,
    ...get(is), ...at(mrow, kEnd), ...op.f64Load, ...at(irow, kEnd), ...op.f64Load, ...op.f64Mul, ...op.f64Sub, ...set(is),
  ...op.end,
];
/** mrow = base + i·P·8 */
const matrixRow = (base: number) => [...get(base), ...get(ii), ...get(IP), ...op.i32Mul, ...i32(3), ...op.i32Shl, ...op.i32Add, ...set(mrow)];

// prettier-ignore
const initBody: number[] = [
  ...get(IV0), ...set(iv),
  ...op.block, ...op.loop,
    ...get(iv), ...get(IV1), ...op.i32GeU, ...op.brIf(1),
    ...at(IINVALID, iv), ...op.u8Load, ...op.i32Eqz,
    ...op.if,
      ...get(IB), ...get(iv), ...get(IP), ...op.i32Mul, ...i32(3), ...op.i32Shl, ...op.i32Add, ...set(irow),
      ...f64(0), ...set(fit),
      // Forward: z_i = (b_i − Σ_{k<i} L_ik z_k) / L_ii, fit += z_i².
      ...i32(0), ...set(ii),
      ...op.block, ...op.loop,
        ...get(ii), ...get(IP), ...op.i32GeU, ...op.brIf(1),
        ...matrixRow(IL),
        ...i32(0), ...set(kStart),
        ...get(ii), ...i32(-2), ...op.i32And, ...i32(3), ...op.i32Shl, ...set(kEnd),
        ...rowDot([...get(ii), ...i32(1), ...op.i32And]),
        ...address(irow, ii, 3),
        ...get(is), ...address(mrow, ii, 3), ...op.f64Load, ...op.f64Div, ...set(is),
        ...get(is), ...op.f64Store,
        ...get(fit), ...get(is), ...get(is), ...op.f64Mul, ...op.f64Add, ...set(fit),
        ...get(ii), ...i32(1), ...op.i32Add, ...set(ii),
        ...op.br(0),
      ...op.end, ...op.end,
      // Back: β_i = (z_i − Σ_{k>i} U_ik β_k) / U_ii, i = P−1 … 0.
      ...get(IP), ...i32(1), ...op.i32Sub, ...set(ii),
      ...op.block, ...op.loop,
        ...get(ii), ...i32(0), ...op.i32LtS, ...op.brIf(1),
        ...matrixRow(IU),
        ...get(ii), ...i32(1), ...op.i32Add, ...i32(3), ...op.i32Shl, ...set(kStart),
        // kEnd = kStart + ((P − 1 − i) & ~1)·8; odd term when (P − 1 − i) is odd.
        ...get(kStart), ...get(IP), ...i32(1), ...op.i32Sub, ...get(ii), ...op.i32Sub, ...i32(-2), ...op.i32And, ...i32(3), ...op.i32Shl, ...op.i32Add, ...set(kEnd),
        ...rowDot([...get(IP), ...i32(1), ...op.i32Sub, ...get(ii), ...op.i32Sub, ...i32(1), ...op.i32And]),
        ...address(irow, ii, 3),
        ...get(is), ...address(mrow, ii, 3), ...op.f64Load, ...op.f64Div,
        ...op.f64Store,
        ...get(ii), ...i32(1), ...op.i32Sub, ...set(ii),
        ...op.br(0),
      ...op.end, ...op.end,
      // rss = syy − fit if positive, else 0 (as the JavaScript `r > 0 ? r : 0`).
      ...address(IRSS, iv, 3),
      ...address(ISYY, iv, 3), ...op.f64Load, ...get(fit), ...op.f64Sub, ...set(is),
      ...get(is), ...f64(0), ...get(is), ...f64(0), ...op.f64Gt, ...op.select,
      ...op.f64Store,
    ...op.end,
    ...get(iv), ...i32(1), ...op.i32Add, ...set(iv),
    ...op.br(0),
  ...op.end, ...op.end,
];

function moduleBytes(): Uint8Array {
  const types = (list: number[]) => vec(list.map((t) => [t]));
  const rlsType = [0x60, ...types([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F64, F64]), ...vec([])];
  const accumulateType = [0x60, ...types([I32, I32, I32, I32, I32, I32, I32, I32, I32, F64]), ...vec([])];
  const rlsCode = [...vec([[4, I32], [3, F64], [2, V128]]), ...rlsBody, ...op.end];
  const accumulateCode = [...vec([[4, I32], [1, F64], [2, V128]]), ...accumulateBody, ...op.end];
  const initType = [0x60, ...types([I32, I32, I32, I32, I32, I32, I32, I32, I32]), ...vec([])];
  // Locals 9..14 i32, 15..16 f64, 17 v128, 18 i32 (k).
  const initCode = [...vec([[6, I32], [2, F64], [1, V128], [1, I32]]), ...initBody, ...op.end];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([rlsType, accumulateType, initType])),
    // import env.mem: shared memory (flags 3) of at least 1 page, at most 65536.
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])),
    ...section(3, vec([[0], [1], [2]])),
    ...section(7, vec([
      [...name('rls'), 0x00, 0],
      [...name('accumulate'), 0x00, 1],
      [...name('init'), 0x00, 2],
    ])),
    ...section(10, vec([
      [...uleb(rlsCode.length), ...rlsCode],
      [...uleb(accumulateCode.length), ...accumulateCode],
      [...uleb(initCode.length), ...initCode],
    ])),
  ]);
}

export type WasmRls = (
  betas: number,
  y: number,
  x: number,
  g: number,
  rss: number,
  syy: number,
  invalid: number,
  v0: number,
  v1: number,
  p: number,
  lambda: number,
  c: number,
) => void;

/**
 * The parts of the WebAssembly JS API used here, typed locally: the project compiles with
 * lib ES2022 and no DOM types, which is where TypeScript declares them.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

export type WasmAccumulate = (
  xty: number,
  y: number,
  x: number,
  syy: number,
  rss: number,
  invalid: number,
  v0: number,
  v1: number,
  p: number,
  lambda: number,
) => void;

export type WasmInit = (
  betas: number,
  l: number,
  u: number,
  syy: number,
  rss: number,
  invalid: number,
  v0: number,
  v1: number,
  p: number,
) => void;

export interface GlmWasmKernel {
  rls: WasmRls;
  accumulate: WasmAccumulate;
  init: WasmInit;
}

let compiled: WasmModule | null | undefined;

/** The compiled module, or null where WebAssembly, its SIMD or shared memory is missing. */
export function glmWasmModule(): WasmModule | null {
  if (compiled === undefined) {
    try {
      const bytes = moduleBytes();
      compiled = wasm && wasm.validate(bytes) ? new wasm.Module(bytes) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** Largest memory a wasm32 module can address. */
export const WASM_MAX_BYTES = 65536 * 65536;

/** A shared, fixed-size memory of at least `bytes` for the kernel, or null without WebAssembly. */
export function createGlmMemory(bytes: number): WasmMemory | null {
  if (!wasm || !glmWasmModule() || bytes > WASM_MAX_BYTES) return null;
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  try {
    return new wasm.Memory({ initial: pages, maximum: pages, shared: true });
  } catch {
    return null; // e.g. out of address space: the JavaScript kernel works on any buffer
  }
}

/** The kernels bound to `memory` (one instance per thread). */
export function instantiateGlmKernel(memory: WasmMemory): GlmWasmKernel {
  const module = glmWasmModule();
  if (!wasm || !module) throw new Error('WebAssembly SIMD is not available');
  const { exports } = new wasm.Instance(module, { env: { mem: memory } });
  return {
    rls: exports.rls as WasmRls,
    accumulate: exports.accumulate as WasmAccumulate,
    init: exports.init as WasmInit,
  };
}
