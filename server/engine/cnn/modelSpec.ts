/**
 * What a user writes to choose a CNN: the built-in model, a TF.js model (model.json +
 * weight shards) or an ONNX file, with the layers to tap and how to feed and pool them.
 * `validateModelSpec` checks the shape of a spec that arrived as JSON (a config file, the
 * command line) before any file is opened, so that a typo is reported as CNN_BAD_SPEC
 * naming the field rather than as a loader failure later.
 */
import { SyncactError } from '../../errors.ts';
import type { Pooling, Preprocessing } from './extractor.ts';

/** The embedded HMAX-style model (builtin.ts); its options are those of createBuiltinExtractor. */
export interface BuiltinModelSpec {
  kind: 'builtin';
  /** Layers to return (default all: s1, c1, s2, c2, color, motion). */
  layers?: string[];
  pooling?: Pooling;
  /** Seed of the S2 prototypes (default 1). */
  seed?: number;
}

export interface TfjsModelSpec {
  kind: 'tfjs';
  /** Path of model.json; its weight shards are looked up next to it. */
  path: string;
  /** Layer names (layers models) or node names (graph models) to tap. */
  layers: string[];
  /** Overrides of the defaults (size from the model's input, 'unit' normalisation, NHWC). */
  preprocessing?: Partial<Preprocessing>;
  /** Per-channel spatial pooling of 4D maps; 'mean' by default. */
  pooling?: Pooling;
}

export interface OnnxModelSpec {
  kind: 'onnx';
  /** Path of the .onnx file (external-data models are not supported). */
  path: string;
  /** Node output tensor names, or node names (each stands for its node's first output). */
  layers: string[];
  /** Name of the graph input to feed; the first non-initializer input by default. */
  input?: string;
  /** Overrides of the defaults (size and layout from the graph input, 'imagenet' normalisation). */
  preprocessing?: Partial<Preprocessing>;
  pooling?: Pooling;
  /** onnxruntime intra-op threads; 2 by default (this project's target machine has 2 cores). */
  threads?: number;
}

export type ModelSpec = BuiltinModelSpec | TfjsModelSpec | OnnxModelSpec;

const POOLINGS: readonly Pooling[] = ['mean', 'max'];
const RESIZES: readonly Preprocessing['resize'][] = ['bilinear', 'nearest'];
const ORDERS: readonly Preprocessing['colorOrder'][] = ['rgb', 'bgr'];
const NORMS: readonly Preprocessing['normalization'][] = ['imagenet', 'unit', 'symmetric', 'none'];
const LAYOUTS: readonly Preprocessing['layout'][] = ['nhwc', 'nchw'];

function bad(message: string): never {
  throw new SyncactError('CNN_BAD_SPEC', message);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkOneOf<T>(field: string, value: unknown, allowed: readonly T[]): void {
  if (value !== undefined && !allowed.includes(value as T)) {
    bad(`${field} is ${JSON.stringify(value)}; expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  }
}

function checkPreprocessing(p: unknown): void {
  if (p === undefined) return;
  if (!isObject(p)) bad('preprocessing must be an object');
  for (const k of Object.keys(p)) {
    if (!['width', 'height', 'resize', 'colorOrder', 'normalization', 'layout'].includes(k)) {
      bad(`preprocessing has an unknown field "${k}"`);
    }
  }
  for (const k of ['width', 'height'] as const) {
    const v = p[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 8192)) {
      bad(`preprocessing.${k} is ${JSON.stringify(v)}; expected an integer in 1..8192`);
    }
  }
  checkOneOf('preprocessing.resize', p.resize, RESIZES);
  checkOneOf('preprocessing.colorOrder', p.colorOrder, ORDERS);
  checkOneOf('preprocessing.normalization', p.normalization, NORMS);
  checkOneOf('preprocessing.layout', p.layout, LAYOUTS);
}

function checkLayers(layers: unknown): void {
  if (!Array.isArray(layers) || layers.length === 0) bad('layers must be a non-empty list of layer names');
  const seen = new Set<string>();
  for (const l of layers) {
    if (typeof l !== 'string' || l.length === 0) bad(`layers has a non-string or empty entry ${JSON.stringify(l)}`);
    if (seen.has(l)) bad(`layer "${l}" is listed twice`);
    seen.add(l);
  }
}

/**
 * Checks a spec (typically parsed JSON) and returns it typed. Throws CNN_BAD_SPEC naming
 * the offending field. Does not touch the file system: missing files are the loaders'
 * CNN_MODEL_FILES.
 */
export function validateModelSpec(spec: unknown): ModelSpec {
  if (!isObject(spec)) bad('a model spec must be an object such as {"kind":"builtin"}');
  const kind = spec.kind;
  if (kind === 'builtin') {
    for (const k of Object.keys(spec)) {
      if (!['kind', 'layers', 'pooling', 'seed'].includes(k)) bad(`a builtin spec has no field "${k}" (it takes layers, pooling, seed)`);
    }
    if (spec.layers !== undefined) checkLayers(spec.layers);
    checkOneOf('pooling', spec.pooling, POOLINGS);
    const seed = spec.seed;
    if (seed !== undefined && !(typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) {
      bad(`seed is ${JSON.stringify(seed)}; expected an integer in 0..2^32-1`);
    }
    return spec as unknown as BuiltinModelSpec;
  }
  if (kind !== 'tfjs' && kind !== 'onnx') {
    bad(`kind is ${JSON.stringify(kind)}; expected "builtin", "tfjs" or "onnx"`);
  }
  const allowed =
    kind === 'tfjs'
      ? ['kind', 'path', 'layers', 'preprocessing', 'pooling']
      : ['kind', 'path', 'layers', 'input', 'preprocessing', 'pooling', 'threads'];
  for (const k of Object.keys(spec)) if (!allowed.includes(k)) bad(`a ${kind} spec has no field "${k}"`);
  if (typeof spec.path !== 'string' || spec.path.length === 0) bad(`a ${kind} spec needs a path`);
  checkLayers(spec.layers);
  checkPreprocessing(spec.preprocessing);
  checkOneOf('pooling', spec.pooling, POOLINGS);
  if (kind === 'onnx') {
    if (spec.input !== undefined && (typeof spec.input !== 'string' || spec.input.length === 0)) {
      bad('input must be a non-empty input name');
    }
    const t = spec.threads;
    if (t !== undefined && !(typeof t === 'number' && Number.isInteger(t) && t >= 1 && t <= 256)) {
      bad(`threads is ${JSON.stringify(t)}; expected an integer in 1..256`);
    }
  }
  return spec as unknown as ModelSpec;
}

/** Size used for a model input whose height/width are free and the spec gives none. */
export const DEFAULT_INPUT_SIZE = 224;

/**
 * The preprocessing a loaded model gets: what its input declares (fixed size, where the 3
 * colour channels are), the user's overrides, then the loader's defaults (PyTorch/ONNX:
 * 'imagenet' + NCHW; TF.js: 'unit' + NHWC). A fixed input dimension that the overrides
 * contradict is CNN_INPUT_SIZE, since the model could not run on it.
 * @param inputName the model input's name, for messages.
 * @param dims the input's shape: a fixed size, a symbolic name, or null (unknown) per dimension.
 */
export function resolvePreprocessing(
  inputName: string,
  dims: readonly (number | string | null)[],
  over: Partial<Preprocessing>,
  defaults: { normalization: Preprocessing['normalization']; layout: Preprocessing['layout'] },
  file?: string,
): Preprocessing {
  const d = dims;
  const shape = `[${d.map((x) => x ?? '?').join(', ')}]`;
  if (d.length !== 4) {
    throw new SyncactError(
      'CNN_INPUT_SIZE',
      `model input "${inputName}" has shape ${shape}; an image model needs a 4D input (NCHW or NHWC)`,
      file,
    );
  }
  // Where are the 3 colour channels? A fixed 3 says it; otherwise the user's layout, else the default.
  let layout: Preprocessing['layout'];
  if (d[1] === 3 && d[3] !== 3) layout = 'nchw';
  else if (d[3] === 3 && d[1] !== 3) layout = 'nhwc';
  else layout = over.layout ?? defaults.layout;
  if (over.layout && over.layout !== layout) {
    throw new SyncactError(
      'CNN_INPUT_SIZE',
      `model input "${inputName}" has shape ${shape}, which is ${layout.toUpperCase()}, but the preprocessing asks for ${over.layout.toUpperCase()}`,
      file,
    );
  }
  const [cDim, hDim, wDim] = layout === 'nchw' ? [d[1], d[2], d[3]] : [d[3], d[1], d[2]];
  if (typeof cDim === 'number' && cDim !== 3) {
    throw new SyncactError('CNN_INPUT_SIZE', `model input "${inputName}" takes ${cDim} channels; syncact feeds RGB (3)`, file);
  }
  const pick = (fixed: number | string | null, asked: number | undefined, what: string): number => {
    if (typeof fixed === 'number') {
      if (asked !== undefined && asked !== fixed) {
        throw new SyncactError(
          'CNN_INPUT_SIZE',
          `model input "${inputName}" has a fixed ${what} of ${fixed} (shape ${shape}) but the preprocessing asks for ${asked}; leave ${what} out or give ${fixed}`,
          file,
        );
      }
      return fixed;
    }
    return asked ?? DEFAULT_INPUT_SIZE;
  };
  return {
    width: pick(wDim, over.width, 'width'),
    height: pick(hDim, over.height, 'height'),
    resize: over.resize ?? 'bilinear',
    colorOrder: over.colorOrder ?? 'rgb',
    normalization: over.normalization ?? defaults.normalization,
    layout,
  };
}
