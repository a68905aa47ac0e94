/**
 * The GLM's per-TR voxel loop (the `Rotate` command of glmBlock.ts) as a WebAssembly SIMD
 * function, assembled here byte by byte so that no toolchain is needed at install time.
 *
 * Why: in V8 the JavaScript loop is compute-bound (bounds checks, one double per
 * operation). Here two voxels go through the rotations at once in the two f64x2 lanes:
 * each rotation is 4 multiplies and 2 adds per voxel, and the two voxels' residual
 * chains are independent. Every operation is the JavaScript loop's, in the same order,
 * lane by lane (IEEE float64 either way, no fused multiply-add), so the two kernels agree
 * bit for bit (test/engine/glm.kernel.test.ts).
 *
 * The function works on a memory it imports (`env.mem`, shared, fixed size), in which
 * glmBlock.ts lays out z, the volume, the sums, the invalid flags and the rotations; its
 * arguments are byte offsets into it:
 *   rotate(z, y, rot, rss, syy, invalid, v0, v1, P: i32, lambda: f64)
 * `rot` holds, per column i, 64 bytes: c_i, c_i, s_i, s_i, c_i√λ, c_i√λ, s_i√λ, s_i√λ
 * (each value twice, so that one 16-byte load is a splat). For each voxel v in [v0, v1)
 * that is not invalid: if y[v] is finite, w = y[v] and for each i
 *   (z_vi, w) ← (c_i√λ·z_vi + s_i·w, c_i·w − s_i√λ·z_vi);  rss[v] = λ·rss[v] + w²;
 *   syy[v] = λ·syy[v] + y²;
 * else invalid[v] = 1, rss[v] = syy[v] = NaN (exactly as the JavaScript kernel). Four
 * valid neighbours with finite samples go together, as two f64x2 pairs: each residual w
 * is a chain of P dependent multiply-subtracts, and one chain alone left the kernel
 * latency-bound (14 ms per TR at V = 200,000, P = 69; two chains: see bench/glm.bench.ts).
 * Any other voxel runs alone in scalar f64 with the same operations.
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
/** Alignment hint (log2 bytes) and a constant byte offset added to the address. */
const memarg = (align: number, offset = 0) => [...uleb(align), ...uleb(offset)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const op = {
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32Or: [0x72],
  i32And: [0x71],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  i32LtU: [0x49],
  i32Eqz: [0x45],
  f64Add: [0xa0],
  f64Sub: [0xa1],
  f64Mul: [0xa2],
  f64Eq: [0x61],
  f64PromoteF32: [0xbb],
  f32Load: [0x2a, ...memarg(2)],
  f64Load: (offset = 0) => [0x2b, ...memarg(3, offset)],
  f64Store: [0x39, ...memarg(3)],
  u8Load: (offset = 0) => [0x2d, ...memarg(0, offset)],
  u8Store: [0x3a, ...memarg(0)],
  /** 16-byte aligned load of a duplicated rotation value. */
  v128Load: (offset: number) => simd(0x00, ...memarg(4, offset)),
  v128Load64Zero: simd(0x5d, ...memarg(3)),
  v128Load64Lane1: simd(0x57, ...memarg(3), 1),
  v128Store64Lane: (lane: number) => simd(0x5b, ...memarg(3), lane),
  f64x2Splat: simd(0x14),
  f64x2Extract: (lane: number) => simd(0x21, lane),
  f64x2Replace: (lane: number) => simd(0x22, lane),
  f64x2Add: simd(0xf0),
  f64x2Sub: simd(0xf1),
  f64x2Mul: simd(0xf2),
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
};

// Arguments, then locals: 10 i32, 6 f64, 6 v128 (see moduleBytes).
const [Z, Y, ROT, RSS, SYY, INVALID, V0, V1, P, LAMBDA] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const [v, o0, o1, o2, o3, j, rp, rowBytes, quad, vi] = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
const [y0, y1, y2, y3, ws, zs] = [20, 21, 22, 23, 24, 25];
const [wa, wb, za, zb, na, nb] = [26, 27, 28, 29, 30, 31];
// Byte offsets of the duplicated values inside one column's 64-byte rotation block.
const [C, S, CL, SL] = [0, 16, 32, 48];

/** base + index << shift */
const address = (base: number, index: number, shift: number) => [...get(base), ...get(index), ...i32(shift), ...op.i32Shl, ...op.i32Add];
const at = (base: number, offset: number) => [...get(base), ...get(offset), ...op.i32Add];
/** finite(x) ⇔ x − x == 0, leaves an i32 */
const finite = (x: number) => [...get(x), ...get(x), ...op.f64Sub, ...f64(0), ...op.f64Eq];
/** (v + k) as an i32 */
const vPlus = (k: number) => [...get(v), ...i32(k), ...op.i32Add];
/** target[index] = λ·target[index] + x·x (scalar) */
const decayAdd = (target: number, index: number[], x: number[]) => [
  ...get(target), ...index, ...i32(3), ...op.i32Shl, ...op.i32Add,
  ...get(LAMBDA), ...get(target), ...index, ...i32(3), ...op.i32Shl, ...op.i32Add, ...op.f64Load(), ...op.f64Mul,
  ...x, ...x, ...op.f64Mul, ...op.f64Add,
  ...op.f64Store,
];
/** for (j = 0, rp = ROT; j < rowBytes; j += 8, rp += 64) { body } */
const overColumns = (body: number[]) => [
  ...i32(0), ...set(j),
  ...get(ROT), ...set(rp),
  ...op.block, ...op.loop,
    ...get(j), ...get(rowBytes), ...op.i32GeU, ...op.brIf(1),
    ...body,
    ...get(j), ...i32(8), ...op.i32Add, ...set(j),
    ...get(rp), ...i32(64), ...op.i32Add, ...set(rp),
    ...op.br(0),
  ...op.end, ...op.end,
];
/** y_k = f64(y[v + k]) */
const loadY = (k: number, local: number) => [...vPlus(k), ...i32(2), ...op.i32Shl, ...get(Y), ...op.i32Add, ...op.f32Load, ...op.f64PromoteF32, ...set(local)];
/** One rotation on the lane pair held in `zl` (from rows oa, ob), with residuals `w`, result through `n`. */
const rotatePair = (oa: number, ob: number, zl: number, w: number, n: number) => [
  ...at(oa, j), ...op.v128Load64Zero, ...set(zl),
  ...at(ob, j), ...get(zl), ...op.v128Load64Lane1, ...set(zl),
  // n = cl·z + s·w
  ...get(rp), ...op.v128Load(CL), ...get(zl), ...op.f64x2Mul,
  ...get(rp), ...op.v128Load(S), ...get(w), ...op.f64x2Mul,
  ...op.f64x2Add, ...set(n),
  ...at(oa, j), ...get(n), ...op.v128Store64Lane(0),
  ...at(ob, j), ...get(n), ...op.v128Store64Lane(1),
  // w = c·w − sl·z
  ...get(rp), ...op.v128Load(C), ...get(w), ...op.f64x2Mul,
  ...get(rp), ...op.v128Load(SL), ...get(zl), ...op.f64x2Mul,
  ...op.f64x2Sub, ...set(w),
];

// prettier-ignore
const rotateBody: number[] = [
  ...get(P), ...i32(3), ...op.i32Shl, ...set(rowBytes),
  ...get(V0), ...set(v),
  ...op.block, ...op.loop,
    ...get(v), ...get(V1), ...op.i32GeU, ...op.brIf(1),
    // quad = v + 3 < v1 && the four are valid && their samples finite
    ...i32(0), ...set(quad),
    ...vPlus(3), ...get(V1), ...op.i32LtU,
    ...op.if,
      ...at(INVALID, v), ...op.u8Load(), ...at(INVALID, v), ...op.u8Load(1), ...op.i32Or,
      ...at(INVALID, v), ...op.u8Load(2), ...op.i32Or, ...at(INVALID, v), ...op.u8Load(3), ...op.i32Or, ...op.i32Eqz,
      ...op.if,
        ...loadY(0, y0), ...loadY(1, y1), ...loadY(2, y2), ...loadY(3, y3),
        ...finite(y0), ...finite(y1), ...op.i32And, ...finite(y2), ...op.i32And, ...finite(y3), ...op.i32And,
        ...set(quad),
      ...op.end,
    ...op.end,
    ...get(quad),
    ...op.if,
      // Two independent residual chains (voxels v, v+1 and v+2, v+3) hide each other's latency.
      ...get(Z), ...get(v), ...get(rowBytes), ...op.i32Mul, ...op.i32Add, ...set(o0),
      ...get(o0), ...get(rowBytes), ...op.i32Add, ...set(o1),
      ...get(o1), ...get(rowBytes), ...op.i32Add, ...set(o2),
      ...get(o2), ...get(rowBytes), ...op.i32Add, ...set(o3),
      ...get(y0), ...op.f64x2Splat, ...get(y1), ...op.f64x2Replace(1), ...set(wa),
      ...get(y2), ...op.f64x2Splat, ...get(y3), ...op.f64x2Replace(1), ...set(wb),
      ...overColumns([...rotatePair(o0, o1, za, wa, na), ...rotatePair(o2, o3, zb, wb, nb)]),
      ...get(wa), ...op.f64x2Extract(0), ...set(ws), ...decayAdd(RSS, vPlus(0), get(ws)),
      ...get(wa), ...op.f64x2Extract(1), ...set(ws), ...decayAdd(RSS, vPlus(1), get(ws)),
      ...get(wb), ...op.f64x2Extract(0), ...set(ws), ...decayAdd(RSS, vPlus(2), get(ws)),
      ...get(wb), ...op.f64x2Extract(1), ...set(ws), ...decayAdd(RSS, vPlus(3), get(ws)),
      ...decayAdd(SYY, vPlus(0), get(y0)),
      ...decayAdd(SYY, vPlus(1), get(y1)),
      ...decayAdd(SYY, vPlus(2), get(y2)),
      ...decayAdd(SYY, vPlus(3), get(y3)),
      ...get(v), ...i32(4), ...op.i32Add, ...set(v),
    ...op.else,
      ...at(INVALID, v), ...op.u8Load(), ...op.i32Eqz,
      ...op.if,
        ...loadY(0, y0),
        ...finite(y0),
        ...op.if,
          ...get(Z), ...get(v), ...get(rowBytes), ...op.i32Mul, ...op.i32Add, ...set(o0),
          ...get(y0), ...set(ws),
          ...overColumns([
            ...at(o0, j), ...op.f64Load(), ...set(zs),
            ...at(o0, j),
            ...get(rp), ...op.f64Load(CL), ...get(zs), ...op.f64Mul,
            ...get(rp), ...op.f64Load(S), ...get(ws), ...op.f64Mul,
            ...op.f64Add, ...op.f64Store,
            ...get(rp), ...op.f64Load(C), ...get(ws), ...op.f64Mul,
            ...get(rp), ...op.f64Load(SL), ...get(zs), ...op.f64Mul,
            ...op.f64Sub, ...set(ws),
          ]),
          ...decayAdd(RSS, vPlus(0), get(ws)),
          ...decayAdd(SYY, vPlus(0), get(y0)),
        ...op.else,
          ...at(INVALID, v), ...i32(1), ...op.u8Store,
          ...address(RSS, v, 3), ...f64(NaN), ...op.f64Store,
          ...address(SYY, v, 3), ...f64(NaN), ...op.f64Store,
        ...op.end,
      ...op.end,
      ...get(v), ...i32(1), ...op.i32Add, ...set(v),
    ...op.end,
    ...op.br(0),
  ...op.end, ...op.end,
];

function moduleBytes(): Uint8Array {
  const types = (list: number[]) => vec(list.map((t) => [t]));
  const rotateType = [0x60, ...types([I32, I32, I32, I32, I32, I32, I32, I32, I32, F64]), ...vec([])];
  const rotateCode = [...vec([[10, I32], [6, F64], [6, V128]]), ...rotateBody, ...op.end];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([rotateType])),
    // import env.mem: shared memory (flags 3) of at least 1 page, at most 65536.
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...name('rotate'), 0x00, 0]])),
    ...section(10, vec([[...uleb(rotateCode.length), ...rotateCode]])),
  ]);
}

export type WasmRotate = (
  z: number,
  y: number,
  rot: number,
  rss: number,
  syy: number,
  invalid: number,
  v0: number,
  v1: number,
  p: number,
  lambda: number,
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

export interface GlmWasmKernel {
  rotate: WasmRotate;
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

/** The kernel bound to `memory` (one instance per thread). */
export function instantiateGlmKernel(memory: WasmMemory): GlmWasmKernel {
  const module = glmWasmModule();
  if (!wasm || !module) throw new Error('WebAssembly SIMD is not available');
  const { exports } = new wasm.Instance(module, { env: { mem: memory } });
  return { rotate: exports.rotate as WasmRotate };
}
