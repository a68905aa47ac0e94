/**
 * FLOPs per frame of an ONNX CNN, read off the graph: shapes are propagated from the input
 * through the ops image classifiers use, and each Conv / Gemm / MatMul contributes
 * 2 × its multiply-adds (the usual convention: MobileNetV2's "300 M mult-adds" are 0.6
 * GFLOP). Elementwise ops (Clip, Relu, Add, BatchNormalization, pooling) are left out:
 * they are memory-bound, a few % of the arithmetic, and not what a matmul throughput
 * measures, so leaving them out keeps "FLOPs / machine matmul FLOP/s" a clean lower bound
 * on the time per frame.
 */
import { parseOnnxModel, graphInputs } from '../../server/io/onnxGraph.ts';

function attrInts(node: { attribute?: { name?: string | null; ints?: (number | { toNumber(): number })[] | null; i?: unknown }[] | null }, name: string): number[] | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.ints?.map((v) => Number(v));
}

function attrInt(node: { attribute?: { name?: string | null; i?: unknown }[] | null }, name: string, def: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.i == null ? def : Number(a.i);
}

/**
 * FLOPs for one frame (batch 1) at the graph input's declared size (`size` for symbolic
 * spatial dims). Throws on an op whose output shape it cannot work out.
 */
export function onnxFlopsPerFrame(bytes: Uint8Array, size = 224): number {
  const model = parseOnnxModel(bytes);
  const shapes = new Map<string, number[]>();
  for (const t of model.graph?.initializer ?? []) shapes.set(t.name ?? '', (t.dims ?? []).map(Number));
  const [input] = graphInputs(model);
  shapes.set(
    input.name,
    input.dims.map((d, i) => (i === 0 ? 1 : typeof d === 'number' ? d : size)),
  );
  let flops = 0;
  for (const node of model.graph?.node ?? []) {
    const ins = (node.input ?? []).map((n) => shapes.get(n));
    const x = ins[0];
    const out = node.output?.[0] ?? '';
    if (!x) throw new Error(`onnxFlops: no shape for ${node.input?.[0]} (node ${node.name})`);
    let y: number[];
    switch (node.opType) {
      case 'Conv': {
        const w = ins[1]!;
        const [n, , h, wd] = x;
        const k = attrInts(node, 'kernel_shape') ?? w.slice(2);
        const s = attrInts(node, 'strides') ?? [1, 1];
        const p = attrInts(node, 'pads') ?? [0, 0, 0, 0];
        const d = attrInts(node, 'dilations') ?? [1, 1];
        const ho = Math.floor((h + p[0] + p[2] - d[0] * (k[0] - 1) - 1) / s[0]) + 1;
        const wo = Math.floor((wd + p[1] + p[3] - d[1] * (k[1] - 1) - 1) / s[1]) + 1;
        y = [n, w[0], ho, wo];
        // w is [Cout, Cin/group, kh, kw]: one multiply-add per weight per output pixel.
        flops += 2 * n * ho * wo * w.reduce((a, b) => a * b, 1);
        break;
      }
      case 'Gemm': {
        const w = ins[1]!;
        const transB = attrInt(node, 'transB', 0) === 1;
        const [m, kDim] = attrInt(node, 'transA', 0) === 1 ? [x[1], x[0]] : [x[0], x[1]];
        const nOut = transB ? w[0] : w[1];
        y = [m, nOut];
        flops += 2 * m * kDim * nOut;
        break;
      }
      case 'MatMul': {
        const w = ins[1]!;
        y = [...x.slice(0, -1), w[w.length - 1]];
        flops += 2 * x.reduce((a, b) => a * b, 1) * w[w.length - 1];
        break;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
        y = [x[0], x[1], 1, 1];
        break;
      case 'Flatten': {
        const axis = attrInt(node, 'axis', 1);
        y = [x.slice(0, axis).reduce((a, b) => a * b, 1), x.slice(axis).reduce((a, b) => a * b, 1)];
        break;
      }
      case 'Clip':
      case 'Relu':
      case 'Add':
      case 'Mul':
      case 'BatchNormalization':
      case 'Identity':
        y = x;
        break;
      default:
        throw new Error(`onnxFlops: op ${node.opType} (node ${node.name}) is not handled`);
    }
    shapes.set(out, y);
  }
  return flops;
}
