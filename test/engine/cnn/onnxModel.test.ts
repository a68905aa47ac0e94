/**
 * The ONNX loader against PyTorch: test/fixtures/models/tiny_cnn.onnx and the outputs of
 * its sub-networks computed by PyTorch (test/reference/make_onnx_fixture.py). Only "logits"
 * is a graph output in the file, so every other tap goes through the add-at-load path.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { SyncactError } from '../../../server/errors.ts';
import { loadOnnxExtractor, onnxPreprocessing, poolTensor } from '../../../server/engine/cnn/onnxModel.ts';
import type { FeatureExtractor, FrameBatch } from '../../../server/engine/cnn/extractor.ts';
import {
  graphInputs,
  graphOutputNames,
  parseOnnxModel,
  resolveTapNames,
  summarizeNames,
  withGraphOutputs,
} from '../../../server/io/onnxGraph.ts';
import { readOnnxFile } from '../../../server/io/modelFiles.ts';
import { createRng } from '../../../server/engine/random.ts';

const { onnx } = onnxProto;
const dir = join(import.meta.dirname, '../../fixtures/models');
const modelPath = join(dir, 'tiny_cnn.onnx');
interface RefLayer {
  module: string;
  tensor: string;
  node: string;
  shape: number[];
  values: number[] | null;
  mean: number[];
  max: number[];
}
const ref = JSON.parse(readFileSync(join(dir, 'tiny_cnn_reference.json'), 'utf8')) as {
  graph_outputs: string[];
  frames: { width: number; height: number; data: number[][] };
  layers: RefLayer[];
};
const layer = (m: string) => ref.layers.find((l) => l.module === m)!;
const batch: FrameBatch = { width: ref.frames.width, height: ref.frames.height, frames: ref.frames.data.map((f) => Uint8Array.from(f)) };

/** |a − b| ≤ tol·(1 + |b|) elementwise (float32 vs PyTorch's float32). */
function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  expect(worst).toBeLessThanOrEqual(tol);
}

async function expectError(p: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SyncactError);
  expect((caught as SyncactError).code).toBe(code);
  expect((caught as SyncactError).message).toMatch(pattern);
}

describe('onnxGraph', () => {
  const bytes = readFileSync(modelPath);
  const model = parseOnnxModel(bytes, modelPath);

  it('describes the graph input and outputs', () => {
    expect(graphInputs(model)).toEqual([{ name: 'input', elemType: 1, dims: ['batch', 3, 16, 16] }]);
    expect(graphOutputNames(model)).toEqual(ref.graph_outputs);
  });

  it('resolves tensor names and node names, and lists what exists when a name is wrong', () => {
    expect(resolveTapNames(model, ['/relu1/Relu_output_0', '/conv2/Conv', 'logits'])).toEqual([
      '/relu1/Relu_output_0',
      '/conv2/Conv_output_0',
      'logits',
    ]);
    expect(() => resolveTapNames(model, ['relu9'], 'm.onnx')).toThrow(/no tensor or node named "relu9".*"\/relu1\/Relu_output_0"/);
  });

  it('adds only the missing outputs, and onnxruntime returns them equal to PyTorch', async () => {
    const taps = ['/pool1/MaxPool_output_0', '/relu2/Relu_output_0', 'logits'];
    const edited = withGraphOutputs(bytes, model, taps);
    expect(edited.added).toEqual(['/pool1/MaxPool_output_0', '/relu2/Relu_output_0']);
    // The file's bytes are a prefix (nothing re-encoded); onnxruntime's (conforming)
    // protobuf parser merges the appended graph: the original output first, then the added.
    expect(Buffer.from(edited.bytes.subarray(0, bytes.length)).equals(bytes)).toBe(true);
    const session = await ort.InferenceSession.create(edited.bytes, { intraOpNumThreads: 1 });
    try {
      expect(session.outputNames).toEqual(['logits', ...edited.added]);
      const x = new Float32Array(2 * 3 * 16 * 16);
      // NCHW x/255, as PyTorch saw it.
      batch.frames.forEach((f, n) => {
        for (let i = 0; i < 256; i++) for (let c = 0; c < 3; c++) x[n * 768 + c * 256 + i] = f[i * 3 + c] / 255;
      });
      const out = await session.run({ input: new ort.Tensor('float32', x, [2, 3, 16, 16]) });
      expectClose(out['/pool1/MaxPool_output_0'].data as Float32Array, layer('pool1').values!);
      expectClose(out['/relu2/Relu_output_0'].data as Float32Array, layer('relu2').values!);
      expectClose(out.logits.data as Float32Array, layer('fc').values!);
    } finally {
      await session.release();
    }
  });

  it('refuses weights kept in external files', () => {
    const m = parseOnnxModel(bytes);
    const t = m.graph!.initializer![0];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: 'weights.bin' }];
    expect(() => parseOnnxModel(onnx.ModelProto.encode(m).finish(), 'big.onnx')).toThrow(/big\.onnx: 1 initializers keep their data in external files/);
  });

  it('nothing to add leaves the bytes alone', () => {
    const edited = withGraphOutputs(bytes, model, ['logits']);
    expect(edited.added).toEqual([]);
    expect(edited.bytes).toBe(bytes);
  });

  it('cuts long name lists', () => {
    const names = Array.from({ length: 100 }, (_, i) => `t${i}`);
    const s = summarizeNames(names, 3);
    expect(s).toBe('"t0", "t1", "t2", … (97 more)');
  });
});

describe('onnxPreprocessing', () => {
  it('takes size and layout from the graph input', () => {
    const p = onnxPreprocessing({ name: 'x', elemType: 1, dims: ['n', 3, 32, 48] }, {});
    expect(p).toEqual({ width: 48, height: 32, resize: 'bilinear', colorOrder: 'rgb', normalization: 'imagenet', layout: 'nchw' });
    expect(onnxPreprocessing({ name: 'x', elemType: 1, dims: [1, 20, 30, 3] }, {}).layout).toBe('nhwc');
    // Symbolic spatial dims: the user's size, else 224.
    expect(onnxPreprocessing({ name: 'x', elemType: 1, dims: ['n', 3, 'h', 'w'] }, { width: 64 })).toMatchObject({ width: 64, height: 224 });
  });

  it('refuses a size, layout or channel count that does not fit', async () => {
    const input = { name: 'x', elemType: 1, dims: ['n', 3, 32, 32] as (string | number)[] };
    await expectError(() => onnxPreprocessing(input, { width: 64 }), 'CNN_INPUT_SIZE', /fixed width of 32.*asks for 64/);
    await expectError(() => onnxPreprocessing(input, { layout: 'nhwc' }), 'CNN_INPUT_SIZE', /NCHW.*asks for NHWC/);
    await expectError(() => onnxPreprocessing({ name: 'x', elemType: 1, dims: [1, 1, 28, 28] }, {}), 'CNN_INPUT_SIZE', /1 channels/);
    await expectError(() => onnxPreprocessing({ name: 'x', elemType: 1, dims: [1, 10] }, {}), 'CNN_INPUT_SIZE', /4D input/);
  });
});

describe('poolTensor', () => {
  it('NCHW and NHWC give the same units; max and mean by hand', () => {
    const rng = createRng(3);
    const [n, c, h, w] = [2, 5, 3, 4];
    const nchw = new Float32Array(n * c * h * w).map(() => rng.normal());
    const nhwc = new Float32Array(nchw.length);
    for (let b = 0; b < n; b++)
      for (let k = 0; k < c; k++)
        for (let i = 0; i < h * w; i++) nhwc[((b * h * w) + i) * c + k] = nchw[(b * c + k) * h * w + i];
    for (const pooling of ['mean', 'max'] as const) {
      const a = poolTensor(nchw, [n, c, h, w], 'nchw', pooling);
      const b = poolTensor(nhwc, [n, h, w, c], 'nhwc', pooling);
      expect(a.channels).toBe(c);
      expectClose(a.values, b.values, 1e-6);
      const first = Array.from(nchw.subarray(0, h * w));
      const want = pooling === 'max' ? Math.max(...first) : first.reduce((s, v) => s + v, 0) / (h * w);
      expect(a.values[0]).toBeCloseTo(want, 5);
    }
    // 2D passes through.
    expect(Array.from(poolTensor(Float32Array.of(1, 2, 3, 4), [2, 2], 'nchw', 'max').values)).toEqual([1, 2, 3, 4]);
  });
});

describe('loadOnnxExtractor on tiny_cnn.onnx', () => {
  let file: Awaited<ReturnType<typeof readOnnxFile>>;
  let mean: FeatureExtractor;
  const modules = ['conv1', 'relu1', 'pool1', 'conv2', 'relu2', 'gap', 'fc'];
  beforeAll(async () => {
    file = await readOnnxFile(modelPath);
    // Tensor names for most, a node name for conv2.
    const layers = modules.map((m) => (m === 'conv2' ? layer(m).node : layer(m).tensor));
    mean = await loadOnnxExtractor({ ...file, file: file.path, layers, preprocessing: { normalization: 'unit' }, threads: 1 });
  });
  afterAll(async () => {
    await mean?.dispose();
  });

  it('reports identity, backend, preprocessing and channels', () => {
    expect(mean.id).toMatch(/^onnx:[0-9a-f]{64}$/);
    expect(mean.backend).toBe('onnxruntime-cpu');
    expect(mean.preprocessing).toEqual({ width: 16, height: 16, resize: 'bilinear', colorOrder: 'rgb', normalization: 'unit', layout: 'nchw' });
    expect(mean.layers.map((l) => l.channels)).toEqual([4, 4, 4, 8, 8, 8, 5]);
    expect(mean.layers[3].name).toBe('/conv2/Conv');
  });

  it('tapped layers equal the PyTorch sub-network outputs, pooled (mean)', async () => {
    const out = await mean.extract(batch);
    out.forEach((a, k) => {
      expect(a.frames).toBe(2);
      expectClose(a.values, layer(modules[k]).mean);
    });
  });

  it('max pooling equals PyTorch too', async () => {
    const ex = await loadOnnxExtractor({ ...file, layers: [layer('relu1').tensor, layer('conv2').tensor], pooling: 'max', preprocessing: { normalization: 'unit' } });
    try {
      const out = await ex.extract(batch);
      expectClose(out[0].values, layer('relu1').max);
      expectClose(out[1].values, layer('conv2').max);
    } finally {
      await ex.dispose();
    }
  });

  it('the tapped global pool run through the fc weights gives the tapped logits', async () => {
    const out = await mean.extract(batch);
    const model = parseOnnxModel(file.bytes);
    const init = (name: string) => {
      const t = model.graph!.initializer!.find((i) => i.name === name)!;
      const raw = t.rawData!;
      return t.floatData?.length ? Float32Array.from(t.floatData) : new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    };
    const W = init('fc.weight'); // 5 × 8
    const b = init('fc.bias');
    const gap = out[5].values;
    const logits = new Float32Array(10);
    for (let f = 0; f < 2; f++) for (let o = 0; o < 5; o++) {
      let s = b[o];
      for (let i = 0; i < 8; i++) s += W[o * 8 + i] * gap[f * 8 + i];
      logits[f * 5 + o] = s;
    }
    expectClose(out[6].values, logits, 1e-5);
  });

  it('a batch gives the same rows as the frames one by one', async () => {
    const both = await mean.extract(batch);
    const second = await mean.extract({ ...batch, frames: [batch.frames[1]] });
    second.forEach((a, k) => expectClose(a.values, both[k].values.subarray(a.channels), 1e-6));
    expect((await mean.extract({ ...batch, frames: [] }))[0].values.length).toBe(0);
  });

  it('a graph with a fixed batch of 1 is run frame by frame', async () => {
    const m = parseOnnxModel(file.bytes);
    m.graph!.input![0].type!.tensorType!.shape!.dim![0] = onnx.TensorShapeProto.Dimension.create({ dimValue: 1 });
    m.graph!.output![0].type!.tensorType!.shape!.dim![0] = onnx.TensorShapeProto.Dimension.create({ dimValue: 1 });
    const bytes = onnx.ModelProto.encode(m).finish();
    const ex = await loadOnnxExtractor({ bytes, sha256: 'x', layers: [layer('relu2').tensor], preprocessing: { normalization: 'unit' } });
    try {
      const out = await ex.extract({ ...batch, frames: [...batch.frames, batch.frames[0]] });
      expectClose(out[0].values, [...layer('relu2').mean, ...layer('relu2').mean.slice(0, 8)]);
    } finally {
      await ex.dispose();
    }
  });

  it('free spatial dims take the asked size', async () => {
    const m = parseOnnxModel(file.bytes);
    const dims = m.graph!.input![0].type!.tensorType!.shape!.dim!;
    dims[2] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'h' });
    dims[3] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'w' });
    const bytes = onnx.ModelProto.encode(m).finish();
    const ok = await loadOnnxExtractor({ bytes, sha256: 'x', layers: ['/relu2/Relu'], preprocessing: { width: 24, height: 20 } });
    expect(ok.preprocessing).toMatchObject({ width: 24, height: 20, layout: 'nchw' });
    expect(ok.layers).toEqual([{ name: '/relu2/Relu', channels: 8 }]);
    await ok.dispose();
  });

  it('frames too small for the network are CNN_INPUT_SIZE', async () => {
    // One 5×5 convolution without padding, free spatial dims: it needs at least 5×5.
    const F = onnx.TensorProto.DataType.FLOAT;
    const w = new Float32Array(2 * 3 * 5 * 5).fill(0.1);
    const bytes = onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 13 }],
        graph: {
          name: 'g',
          node: [{ name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [5, 5] }] }],
          initializer: [{ name: 'w', dims: [2, 3, 5, 5], dataType: F, rawData: new Uint8Array(w.buffer) }],
          input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimParam: 'n' }, { dimValue: 3 }, { dimParam: 'h' }, { dimParam: 'w' }] } } } }],
          output: [{ name: 'y', type: { tensorType: { elemType: F } } }],
        },
      }),
    ).finish();
    const ok = await loadOnnxExtractor({ bytes, sha256: 'x', layers: ['conv'], preprocessing: { width: 5, height: 5 } });
    expect(ok.layers).toEqual([{ name: 'conv', channels: 2 }]);
    await ok.dispose();
    await expectError(
      loadOnnxExtractor({ bytes, sha256: 'x', file: 'conv.onnx', layers: ['conv'], preprocessing: { width: 4, height: 4 } }),
      'CNN_INPUT_SIZE',
      /conv\.onnx: the model cannot run on 4×4 inputs/,
    );
  });

  it('frames of another size are resized to the model input', async () => {
    // 32×32 frames made of 2×2 blocks of the 16×16 ones: nearest-neighbour halving (input
    // pixel floor((i + 0.5)·2) = 2i + 1, inside block i) gives the originals back.
    const big = batch.frames.map((f) => {
      const g = new Uint8Array(32 * 32 * 3);
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) g[(y * 32 + x) * 3 + c] = f[((y >> 1) * 16 + (x >> 1)) * 3 + c];
      return g;
    });
    const ex = await loadOnnxExtractor({ ...file, layers: ['logits'], preprocessing: { normalization: 'unit', resize: 'nearest' } });
    try {
      const out = await ex.extract({ width: 32, height: 32, frames: big });
      expectClose(out[0].values, layer('fc').mean);
    } finally {
      await ex.dispose();
    }
  });

  it('bad input gives typed errors', async () => {
    await expectError(
      loadOnnxExtractor({ ...file, file: 'tiny.onnx', layers: ['/relu1/Relu_output_0', 'conv9'] }),
      'CNN_LAYER_NOT_FOUND',
      /tiny\.onnx: no tensor or node named "conv9".*"\/pool1\/MaxPool_output_0"/,
    );
    await expectError(loadOnnxExtractor({ ...file, layers: ['logits'], input: 'image' }), 'CNN_LAYER_NOT_FOUND', /no graph input named "image"; inputs: "input"/);
    await expectError(loadOnnxExtractor({ ...file, layers: ['logits'], preprocessing: { width: 32 } }), 'CNN_INPUT_SIZE', /fixed width of 16/);
    await expectError(loadOnnxExtractor({ bytes: Uint8Array.of(1, 2, 3, 4, 5), sha256: 'x', layers: ['a'] }), 'CNN_MODEL_FORMAT', /not an ONNX model/);
    await expectError(readOnnxFile(join(dir, 'nope.onnx')), 'CNN_MODEL_FILES', /nope\.onnx is missing/);
  });
});
