/**
 * Reading and editing ONNX model protobufs (with onnx-proto's generated protobufjs code):
 * list the tensors a layer can be tapped at, describe the graph inputs, and make
 * intermediate tensors graph outputs so onnxruntime returns them.
 *
 * Why edit the model: onnxruntime only returns graph outputs, and exporters (torch.onnx)
 * make only the last layer one. syncact therefore ADDS each tapped tensor that is not yet
 * a graph output as a new graph output when the model is loaded; the file on disk is never
 * changed. The edit appends a second serialized ModelProto that holds only
 * `graph.output` entries to the original bytes: protobuf merges concatenated messages
 * (repeated fields are appended, sub-messages merged), so the result is the original model
 * plus the outputs, byte-for-byte otherwise; fields this onnx-proto version does not know
 * (newer IR versions) survive, and large weights are not re-encoded. The merged bytes are
 * meant for onnxruntime (C++ protobuf, which merges as the protobuf spec says); protobufjs'
 * decoder, which onnx-proto uses, does not merge repeated sub-messages (the later graph
 * replaces the first), so do not parse the edited bytes with `parseOnnxModel`.
 */
import onnxProto from 'onnx-proto';
import { SyncactError } from '../errors.ts';

const { onnx } = onnxProto;
export type OnnxModel = InstanceType<typeof onnx.ModelProto>;

/** A tensor that a node produces: what a user may tap. */
export interface OnnxNodeOutput {
  /** The tensor's name (what onnxruntime calls an output name). */
  tensor: string;
  /** The producing node's name ('' when the exporter left it unnamed). */
  node: string;
  opType: string;
}

/** A graph input that is fed at run time (initializers excluded). */
export interface OnnxInputInfo {
  name: string;
  /** ONNX TensorProto.DataType code (1 = float32); 0 when not declared. */
  elemType: number;
  /** Per dimension: a fixed size, a symbolic name (e.g. "batch"), or null when unknown. */
  dims: (number | string | null)[];
}

/** Parses ONNX protobuf bytes; CNN_MODEL_FORMAT when they are not an ONNX model. */
export function parseOnnxModel(bytes: Uint8Array, file?: string): OnnxModel {
  let model: OnnxModel;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new SyncactError('CNN_MODEL_FORMAT', `not an ONNX model (protobuf parse failed: ${(e as Error).message})`, file);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) {
    throw new SyncactError('CNN_MODEL_FORMAT', 'not an ONNX model (no graph or an empty graph)', file);
  }
  // Weights in separate files (onnx's save_as_external_data, used past 2 GB) are looked up
  // relative to a model path, which a session made from bytes does not have.
  const external = (model.graph.initializer ?? []).filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  if (external.length > 0) {
    throw new SyncactError(
      'CNN_MODEL_FORMAT',
      `${external.length} initializers keep their data in external files (e.g. "${external[0].name}"); ` +
        'save the model with its weights inside: onnx.save(onnx.load(path), out, save_as_external_data=False)',
      file,
    );
  }
  return model;
}

/** Every tensor produced by a node, in graph order. */
export function listNodeOutputs(model: OnnxModel): OnnxNodeOutput[] {
  const out: OnnxNodeOutput[] = [];
  for (const n of model.graph?.node ?? []) {
    for (const t of n.output ?? []) if (t) out.push({ tensor: t, node: n.name ?? '', opType: n.opType ?? '' });
  }
  return out;
}

/** Names of the graph's outputs. */
export function graphOutputNames(model: OnnxModel): string[] {
  return (model.graph?.output ?? []).map((o) => o.name ?? '');
}

function dimsOf(type: onnxProto.onnx.ITypeProto | null | undefined): (number | string | null)[] {
  const shape = type?.tensorType?.shape;
  if (!shape) return [];
  return (shape.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    if (d.dimValue !== null && d.dimValue !== undefined) {
      const v = Number(d.dimValue);
      return v > 0 ? v : null;
    }
    return null;
  });
}

/** Graph inputs that are fed at run time (older exporters also list initializers as inputs). */
export function graphInputs(model: OnnxModel): OnnxInputInfo[] {
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  return (model.graph?.input ?? [])
    .filter((i) => !inits.has(i.name ?? ''))
    .map((i) => ({ name: i.name ?? '', elemType: i.type?.tensorType?.elemType ?? 0, dims: dimsOf(i.type) }));
}

/** A long name list cut for an error message: the first `max`, then how many more. */
export function summarizeNames(names: string[], max = 40): string {
  const shown = names.slice(0, max).map((n) => JSON.stringify(n)).join(', ');
  return names.length > max ? `${shown}, … (${names.length - max} more)` : shown;
}

/**
 * Maps each requested layer name to the tensor to fetch: a node output tensor name is
 * taken as is; otherwise a node name stands for that node's first output. Graph inputs
 * are accepted too (tapping the preprocessed image is occasionally useful as a control).
 * Throws CNN_LAYER_NOT_FOUND listing the tensor names when a name matches neither.
 */
export function resolveTapNames(model: OnnxModel, names: string[], file?: string): string[] {
  const outputs = listNodeOutputs(model);
  const tensors = new Set(outputs.map((o) => o.tensor));
  for (const i of graphInputs(model)) tensors.add(i.name);
  const firstOutputOfNode = new Map<string, string>();
  for (const n of model.graph?.node ?? []) {
    const first = n.output?.[0];
    if (n.name && first && !firstOutputOfNode.has(n.name)) firstOutputOfNode.set(n.name, first);
  }
  return names.map((name) => {
    if (tensors.has(name)) return name;
    const t = firstOutputOfNode.get(name);
    if (t !== undefined) return t;
    throw new SyncactError(
      'CNN_LAYER_NOT_FOUND',
      `no tensor or node named "${name}" in the ONNX graph; available tensors (${outputs.length}): ${summarizeNames(outputs.map((o) => o.tensor))}`,
      file,
    );
  });
}

/**
 * Returns model bytes in which every tensor of `tensors` is a graph output: those already
 * outputs are left alone, the others get a ValueInfoProto appended to graph.output with the
 * type copied from graph.value_info when the exporter recorded it, else "float32 tensor of
 * unknown shape" (onnxruntime infers the shape). `added` lists the new outputs.
 */
export function withGraphOutputs(
  bytes: Uint8Array,
  model: OnnxModel,
  tensors: string[],
): { bytes: Uint8Array; added: string[] } {
  const existing = new Set(graphOutputNames(model));
  const known = new Map<string, onnxProto.onnx.IValueInfoProto>();
  for (const v of model.graph?.valueInfo ?? []) if (v.name) known.set(v.name, v);
  const added = [...new Set(tensors)].filter((t) => !existing.has(t));
  if (added.length === 0) return { bytes, added };
  const outputs = added.map((name) => {
    const vi = known.get(name);
    const type = vi?.type?.tensorType ? vi.type : { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } };
    return onnx.ValueInfoProto.create({ name, type });
  });
  const patch = onnx.ModelProto.encode(onnx.ModelProto.create({ graph: { output: outputs } })).finish();
  const merged = new Uint8Array(bytes.length + patch.length);
  merged.set(bytes, 0);
  merged.set(patch, bytes.length);
  return { bytes: merged, added };
}
