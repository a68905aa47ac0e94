/**
 * MobileNetV2 as an ONNX model built in TypeScript with onnx-proto (no python, no file in
 * the repo): Conv (depthwise = group), Clip(0, 6) for ReLU6, Add, GlobalAveragePool,
 * Flatten, Gemm, opset 13, NCHW like a torchvision export, dynamic batch. Weights are
 * seeded He-normal (projection layers at half the variance, as they have no ReLU), biases
 * small, so activations stay O(1) through the 17 blocks (no overflow, no denormals to slow
 * the arithmetic).
 */
import onnxProto from 'onnx-proto';
import { createRng } from '../../server/engine/random.ts';
import { mobilenetV2Layers, type ArchLayer } from './mobilenetv2Arch.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const A = onnx.AttributeProto.AttributeType;

function tensor(name: string, dims: number[], values: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function ints(name: string, v: number[]): onnxProto.onnx.IAttributeProto {
  return { name, type: A.INTS, ints: v };
}

/**
 * Builds the model; returns its serialized bytes. Node outputs are named as in
 * mobilenetv2Arch.ts (`block_16_out`, `features`, `logits`), the input `input` [batch, 3, size, size].
 */
export function buildMobileNetV2Onnx(options: { seed?: number; size?: number; classes?: number } = {}): Uint8Array {
  const rng = createRng(options.seed ?? 1);
  const size = options.size ?? 224;
  const layers: ArchLayer[] = mobilenetV2Layers(options.classes ?? 1000);
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const inits: onnxProto.onnx.ITensorProto[] = [tensor('relu6_min', [], Float32Array.of(0)), tensor('relu6_max', [], Float32Array.of(6))];
  const normal = (n: number, std: number) => Float32Array.from({ length: n }, () => rng.normal() * std);
  for (const l of layers) {
    if (l.op === 'conv') {
      const fanIn = (l.cin / l.groups) * l.k * l.k;
      const w = normal(l.cout * fanIn, Math.sqrt((l.relu6 ? 2 : 1) / fanIn));
      inits.push(tensor(`${l.name}.weight`, [l.cout, l.cin / l.groups, l.k, l.k], w));
      inits.push(tensor(`${l.name}.bias`, [l.cout], normal(l.cout, 0.01)));
      const pad = (l.k - 1) >> 1;
      const convOut = l.relu6 ? `${l.name}_conv` : l.name;
      nodes.push({
        name: `${l.name}/Conv`,
        opType: 'Conv',
        input: [l.input, `${l.name}.weight`, `${l.name}.bias`],
        output: [convOut],
        attribute: [
          ints('kernel_shape', [l.k, l.k]),
          ints('strides', [l.stride, l.stride]),
          ints('pads', [pad, pad, pad, pad]),
          ints('dilations', [1, 1]),
          { name: 'group', type: A.INT, i: l.groups },
        ],
      });
      if (l.relu6) nodes.push({ name: `${l.name}/Clip`, opType: 'Clip', input: [convOut, 'relu6_min', 'relu6_max'], output: [l.name] });
    } else if (l.op === 'add') {
      nodes.push({ name: `${l.name}/Add`, opType: 'Add', input: [...l.inputs], output: [l.name] });
    } else if (l.op === 'gap') {
      nodes.push({ name: `${l.name}/GlobalAveragePool`, opType: 'GlobalAveragePool', input: [l.input], output: [`${l.name}_4d`] });
      nodes.push({ name: `${l.name}/Flatten`, opType: 'Flatten', input: [`${l.name}_4d`], output: [l.name], attribute: [{ name: 'axis', type: A.INT, i: 1 }] });
    } else {
      inits.push(tensor(`${l.name}.weight`, [l.cout, l.cin], normal(l.cout * l.cin, Math.sqrt(1 / l.cin))));
      inits.push(tensor(`${l.name}.bias`, [l.cout], normal(l.cout, 0.01)));
      nodes.push({
        name: `${l.name}/Gemm`,
        opType: 'Gemm',
        input: [l.input, `${l.name}.weight`, `${l.name}.bias`],
        output: [l.name],
        attribute: [{ name: 'transB', type: A.INT, i: 1 }],
      });
    }
  }
  const dim = (d: number | string) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });
  const valueInfo = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map(dim) } } },
  });
  const last = layers[layers.length - 1] as Extract<ArchLayer, { op: 'dense' }>;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'syncact-bench',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mobilenet_v2',
      node: nodes,
      initializer: inits,
      input: [valueInfo('input', ['batch', 3, size, size])],
      output: [valueInfo('logits', ['batch', last.cout])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
