/**
 * Model files on disk: a TF.js model (model.json + the weight shards its weightsManifest
 * names, as tensorflowjs_converter and `model.save()` write them) or an ONNX file. Reads
 * them with fs (no tfjs-node needed), checks that everything is there, and hashes the
 * content so that the feature cache keys on what the model IS, not where it lies.
 *
 * The hash of a TF.js model is sha256 over model.json's bytes followed by every shard's
 * bytes in manifest order; of an ONNX model, sha256 of the file.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';

/** One weight as model.json's weightsManifest lists it (tf.io.WeightsManifestEntry's shape). */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
  [extra: string]: unknown;
}

export interface TfjsModelFiles {
  /** Absolute path of model.json. */
  path: string;
  /** 'layers': a Keras-style layers model; 'graph': a TF graph (tf.loadGraphModel). */
  format: 'layers' | 'graph';
  /** The parsed model.json. */
  json: Record<string, unknown>;
  modelTopology: Record<string, unknown>;
  weightSpecs: TfjsWeightSpec[];
  /** All shards concatenated in manifest order (what tf.io's ModelArtifacts.weightData is). */
  weightData: ArrayBuffer;
  /** Hex sha256 of model.json + shards. */
  sha256: string;
}

export interface OnnxModelFile {
  path: string;
  bytes: Uint8Array;
  sha256: string;
}

async function readOrFail(path: string, what: string, about?: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'is missing' : code === 'EISDIR' ? 'is a folder' : `cannot be read (${code ?? String(e)})`;
    throw new SyncactError('CNN_MODEL_FILES', `${what} ${path} ${why}${about ? ` (${about})` : ''}`, path);
  }
}

const BYTES_PER: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** Bytes one weight takes in its shard (quantized weights are stored at the quantized width). */
function weightBytes(w: TfjsWeightSpec, file: string): number {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const dtype = w.quantization?.dtype ?? w.dtype;
  const per = BYTES_PER[dtype];
  if (per === undefined) {
    throw new SyncactError('CNN_MODEL_FORMAT', `weight "${w.name}" has dtype ${dtype}, which syncact cannot size (string weights are not supported)`, file);
  }
  return n * per;
}

/** 'layers' or 'graph', from the declared format or, for older files, the topology's shape. */
function detectFormat(json: Record<string, unknown>, topology: Record<string, unknown>, file: string): 'layers' | 'graph' {
  if (json.format === 'layers-model') return 'layers';
  if (json.format === 'graph-model') return 'graph';
  if (Array.isArray(topology.node)) return 'graph';
  if ('class_name' in topology || 'model_config' in topology || 'config' in topology) return 'layers';
  throw new SyncactError(
    'CNN_MODEL_FORMAT',
    `model.json's modelTopology is neither a Keras layers model (class_name/config) nor a TF graph (node list)${
      json.format ? `; format is ${JSON.stringify(json.format)}` : ''
    }`,
    file,
  );
}

/**
 * Reads model.json and its shards. Throws CNN_MODEL_FILES (model.json or a shard missing,
 * naming it; shards shorter than the weights they should hold) or CNN_MODEL_FORMAT (not
 * JSON, no modelTopology / weightsManifest, unknown topology).
 */
export async function readTfjsModelFiles(modelJsonPath: string): Promise<TfjsModelFiles> {
  const path = resolve(modelJsonPath);
  const raw = await readOrFail(path, 'model file');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new SyncactError('CNN_MODEL_FORMAT', `not a TF.js model.json (invalid JSON: ${(e as Error).message})`, path);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SyncactError('CNN_MODEL_FORMAT', 'not a TF.js model.json (not a JSON object)', path);
  }
  const topology = json.modelTopology as Record<string, unknown> | undefined;
  if (!topology || typeof topology !== 'object') {
    throw new SyncactError('CNN_MODEL_FORMAT', 'not a TF.js model.json (no modelTopology); is this a Keras .json or a converter config?', path);
  }
  const manifest = json.weightsManifest as { paths?: unknown; weights?: unknown }[] | undefined;
  if (!Array.isArray(manifest)) {
    throw new SyncactError('CNN_MODEL_FORMAT', 'not a TF.js model.json (no weightsManifest listing the weight shards)', path);
  }
  const format = detectFormat(json, topology, path);
  const hash = createHash('sha256').update(raw);
  const dir = dirname(path);
  const shards: Buffer[] = [];
  const weightSpecs: TfjsWeightSpec[] = [];
  for (const group of manifest) {
    if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new SyncactError('CNN_MODEL_FORMAT', 'a weightsManifest entry lacks "paths" or "weights"', path);
    }
    let got = 0;
    for (const p of group.paths) {
      if (typeof p !== 'string' || p.length === 0) throw new SyncactError('CNN_MODEL_FORMAT', `weightsManifest has a bad shard path ${JSON.stringify(p)}`, path);
      const shard = resolve(dir, p);
      // Shards live beside model.json; a manifest must not make syncact read other files.
      if (relative(dir, shard).startsWith('..') || isAbsolute(p)) {
        throw new SyncactError('CNN_MODEL_FORMAT', `weightsManifest names a shard outside the model's folder: ${JSON.stringify(p)}`, path);
      }
      const buf = await readOrFail(shard, 'weight shard', `named in ${basename(path)}`);
      hash.update(buf);
      shards.push(buf);
      got += buf.length;
    }
    const specs = group.weights as TfjsWeightSpec[];
    const need = specs.reduce((a, w) => a + weightBytes(w, path), 0);
    if (got < need) {
      throw new SyncactError(
        'CNN_MODEL_FILES',
        `weight shards ${group.paths.join(', ')} hold ${got} bytes but their weights need ${need}: a shard is truncated or from another model`,
        path,
      );
    }
    weightSpecs.push(...specs);
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return { path, format, json, modelTopology: topology, weightSpecs, weightData, sha256: hash.digest('hex') };
}

/** Reads an .onnx file and hashes it. CNN_MODEL_FILES when it is missing. */
export async function readOnnxFile(onnxPath: string): Promise<OnnxModelFile> {
  const path = resolve(onnxPath);
  const buf = await readOrFail(path, 'model file');
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return { path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** What `writeTfjsModel` writes: tf.io.ModelArtifacts' fields that go on disk. */
export interface TfjsArtifacts {
  modelTopology: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightSpecs: unknown[];
  /** One buffer, or several (TF.js ≥ 4.10 may hand over a list) written back to back. */
  weightData: ArrayBuffer | ArrayBuffer[];
  [extra: string]: unknown;
}

/**
 * Writes model.json + weight shards (`group1-shard{i}of{n}.bin`, at most `shardBytes` each,
 * 4 MB like tensorflowjs_converter by default) into `dir`, the layout `readTfjsModelFiles`
 * reads. Use it inside a `tf.io.withSaveHandler` to save a model built in code.
 */
export async function writeTfjsModel(dir: string, a: TfjsArtifacts, options: { shardBytes?: number } = {}): Promise<string> {
  const shardBytes = options.shardBytes ?? 4 * 1024 * 1024;
  const parts = Array.isArray(a.weightData) ? a.weightData : [a.weightData];
  const data = new Uint8Array(parts.reduce((s, b) => s + b.byteLength, 0));
  let at = 0;
  for (const b of parts) {
    data.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  const n = Math.max(1, Math.ceil(data.length / shardBytes));
  const paths = Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`);
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) await writeFile(join(dir, paths[i]), data.subarray(i * shardBytes, (i + 1) * shardBytes));
  const { weightSpecs, weightData: _unused, ...rest } = a;
  const json = { ...rest, weightsManifest: [{ paths, weights: weightSpecs }] };
  const path = join(dir, 'model.json');
  await writeFile(path, JSON.stringify(json));
  return path;
}
