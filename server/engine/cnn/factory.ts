/**
 * `createExtractor(spec)`: the one place a model spec becomes a FeatureExtractor, whichever
 * kind it is. It validates the spec, reads the model files (through server/io/modelFiles.ts,
 * which also hashes them so `id` changes whenever the weights do), selects the TF.js
 * backend for TF.js models, and hands over to the loader of that kind.
 *
 * This module is the seam between files and the pure loaders, so unlike the rest of
 * server/engine it reaches the file system (through server/io only).
 */
import { extname } from 'node:path';
import { SyncactError } from '../../errors.ts';
import { readOnnxFile, readTfjsModelFiles } from '../../io/modelFiles.ts';
import { createBuiltinExtractor } from './builtin.ts';
import type { FeatureExtractor } from './extractor.ts';
import { validateModelSpec, type ModelSpec } from './modelSpec.ts';
import { loadOnnxExtractor } from './onnxModel.ts';
import { initTfBackend, type TfBackendChoice } from './tfBackend.ts';
import { loadTfjsExtractor } from './tfjsModel.ts';

export interface CreateExtractorOptions {
  /** TF.js backend for the built-in and TF.js models ('auto' by default); ONNX models always run on onnxruntime's CPU provider. */
  backend?: TfBackendChoice;
  /** Where the tfjs-backend-wasm binaries are, when not in the installed package. */
  wasmDir?: string;
}

/**
 * The model kind a file's extension suggests: '.onnx' → 'onnx', '.json' → 'tfjs'
 * (model.json). CNN_MODEL_FORMAT for anything else (a Keras .h5, a PyTorch .pt, a
 * SavedModel folder), saying how to convert it.
 */
export function inferModelKind(path: string): 'onnx' | 'tfjs' {
  const ext = extname(path).toLowerCase();
  if (ext === '.onnx') return 'onnx';
  if (ext === '.json') return 'tfjs';
  throw new SyncactError(
    'CNN_MODEL_FORMAT',
    `cannot tell the model format from "${ext || '(no extension)'}": give an .onnx file (torch.onnx.export) or a TF.js model.json (tensorflowjs_converter)`,
    path,
  );
}

/** A spec whose kind contradicts its file's extension is almost always a mistake worth naming. */
function checkKindMatchesFile(spec: Exclude<ModelSpec, { kind: 'builtin' }>): void {
  const ext = extname(spec.path).toLowerCase();
  if (spec.kind === 'tfjs' && ext === '.onnx') {
    throw new SyncactError('CNN_MODEL_FORMAT', "this is an ONNX file; use kind 'onnx' for it", spec.path);
  }
  if (spec.kind === 'onnx' && ext === '.json') {
    throw new SyncactError('CNN_MODEL_FORMAT', "this is a JSON file (a TF.js model.json?); use kind 'tfjs' for it", spec.path);
  }
}

/**
 * Builds the FeatureExtractor a spec describes.
 * @param spec `{kind:'builtin'}`, `{kind:'tfjs', path, layers, …}` or `{kind:'onnx', path, layers, …}`;
 *   validated here (CNN_BAD_SPEC), so parsed JSON may be passed as is.
 * @param options the TF.js backend choice.
 * @returns an extractor whose `id` is "builtin:hmax-v1:<output fingerprint>", "tfjs:<sha256 of model.json + shards>"
 *   or "onnx:<sha256 of the file>"; call `dispose()` when done.
 */
export async function createExtractor(spec: ModelSpec | unknown, options: CreateExtractorOptions = {}): Promise<FeatureExtractor> {
  const s = validateModelSpec(spec);
  switch (s.kind) {
    case 'builtin':
      return createBuiltinExtractor({ layers: s.layers, pooling: s.pooling, seed: s.seed, backend: options.backend });
    case 'tfjs': {
      checkKindMatchesFile(s);
      const files = await readTfjsModelFiles(s.path);
      const { backend } = await initTfBackend(options.backend ?? 'auto', { wasmDir: options.wasmDir });
      return loadTfjsExtractor({ model: files, layers: s.layers, preprocessing: s.preprocessing, pooling: s.pooling, backend });
    }
    case 'onnx': {
      checkKindMatchesFile(s);
      const file = await readOnnxFile(s.path);
      return loadOnnxExtractor({
        bytes: file.bytes,
        sha256: file.sha256,
        file: file.path,
        layers: s.layers,
        input: s.input,
        preprocessing: s.preprocessing,
        pooling: s.pooling,
        threads: s.threads,
      });
    }
  }
}
