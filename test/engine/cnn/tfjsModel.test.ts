/**
 * The TF.js loader: models built here in code, saved to a temp folder as model.json + shards
 * (several shards, to exercise the manifest), read back from disk; a tapped layer must
 * equal the sub-network up to that layer computed with plain tf ops from the original
 * model's weights. A TF graph model (Conv2D + BiasAdd + Relu + Mean) is written by hand,
 * since TF.js cannot save graph models.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncactError } from '../../../server/errors.ts';
import type { FeatureExtractor, FrameBatch } from '../../../server/engine/cnn/extractor.ts';
import { initTfBackend } from '../../../server/engine/cnn/tfBackend.ts';
import { loadTfjsExtractor } from '../../../server/engine/cnn/tfjsModel.ts';
import { preprocessToTensor } from '../../../server/engine/cnn/preprocess.ts';
import { readTfjsModelFiles, writeTfjsModel, type TfjsArtifacts } from '../../../server/io/modelFiles.ts';
import { createRng } from '../../../server/engine/random.ts';

const tmp = mkdtempSync(join(tmpdir(), 'syncact-tfjs-'));
let backend = '';

function frames(seed: number, n: number, w: number, h: number): FrameBatch {
  const rng = createRng(seed);
  return { width: w, height: h, frames: Array.from({ length: n }, () => Uint8Array.from({ length: w * h * 3 }, () => Math.floor(rng.uniform() * 256))) };
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  expect(worst).toBeLessThanOrEqual(tol);
}

async function expectError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(SyncactError);
  expect((e as SyncactError).code).toBe(code);
  expect((e as SyncactError).message).toMatch(pattern);
}

/** Saves a layers model as model.json + shards of at most `shardBytes`. */
async function save(model: tf.LayersModel, dir: string, shardBytes = 256): Promise<string> {
  let path = '';
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      path = await writeTfjsModel(dir, a as unknown as TfjsArtifacts, { shardBytes });
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return path;
}

/** conv1 → relu1 → pool1 → conv2 (relu) → gap → fc, seeded weights, 16×16×3 input. */
function tinyModel(): tf.Sequential {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const bias = (v: number) => tf.initializers.constant({ value: v });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 4, kernelSize: 3, padding: 'same', name: 'conv1', kernelInitializer: init(1), biasInitializer: bias(0.05) }),
      tf.layers.reLU({ name: 'relu1' }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', activation: 'relu', name: 'conv2', kernelInitializer: init(2), biasInitializer: bias(0.1) }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 5, name: 'fc', kernelInitializer: init(3), biasInitializer: bias(-0.02) }),
    ],
  });
}

describe('TF.js layers models from disk', () => {
  let original: tf.Sequential;
  let modelPath: string;
  let ex: FeatureExtractor;
  const batch = frames(11, 3, 16, 16);

  beforeAll(async () => {
    backend = (await initTfBackend('cpu')).backend;
    original = tinyModel();
    modelPath = await save(original, join(tmp, 'tiny'));
    const files = await readTfjsModelFiles(modelPath);
    ex = await loadTfjsExtractor({ model: files, layers: ['relu1', 'pool1', 'conv2', 'fc'], backend, preprocessing: { normalization: 'symmetric' } });
  });
  afterAll(async () => {
    await ex?.dispose();
    original?.dispose();
  });

  it('was saved as several shards and reads back as a layers model with a content hash', async () => {
    const json = JSON.parse(readFileSync(modelPath, 'utf8'));
    expect(json.weightsManifest[0].paths.length).toBeGreaterThan(2);
    const files = await readTfjsModelFiles(modelPath);
    expect(files.format).toBe('layers');
    expect(files.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ex.id).toBe(`tfjs:${files.sha256}`);
    expect(ex.backend).toBe(backend);
    expect(ex.preprocessing).toEqual({ width: 16, height: 16, resize: 'bilinear', colorOrder: 'rgb', normalization: 'symmetric', layout: 'nhwc' });
    expect(ex.layers).toEqual([
      { name: 'relu1', channels: 4 },
      { name: 'pool1', channels: 4 },
      { name: 'conv2', channels: 8 },
      { name: 'fc', channels: 5 },
    ]);
  });

  it('tapped layers equal the sub-network run with plain ops on the original weights', async () => {
    const out = await ex.extract(batch);
    const w = (name: string) => original.getLayer(name).getWeights();
    const [k1, b1] = w('conv1');
    const [k2, b2] = w('conv2');
    const [kf, bf] = w('fc');
    const want = tf.tidy(() => {
      const x = preprocessToTensor(batch, ex.preprocessing);
      const relu1 = tf.relu(tf.add(tf.conv2d(x, k1 as tf.Tensor4D, 1, 'same'), b1));
      const pool1 = tf.maxPool(relu1 as tf.Tensor4D, 2, 2, 'valid');
      const conv2 = tf.relu(tf.add(tf.conv2d(pool1 as tf.Tensor4D, k2 as tf.Tensor4D, 1, 'valid'), b2));
      const gap = tf.mean(conv2, [1, 2]);
      const fc = tf.add(tf.matMul(gap, kf as tf.Tensor2D), bf);
      return [tf.mean(relu1, [1, 2]), tf.mean(pool1, [1, 2]), gap, fc].map((t) => t.dataSync());
    });
    out.forEach((a, k) => {
      expect(a.frames).toBe(3);
      expectClose(a.values, want[k]);
    });
    // Not all-zero: the comparison means something.
    expect(Math.max(...out[2].values)).toBeGreaterThan(0);
  });

  it('max pooling is the per-channel spatial max', async () => {
    const mx = await loadTfjsExtractor({ model: await readTfjsModelFiles(modelPath), layers: ['relu1'], pooling: 'max', backend });
    try {
      const [a] = await mx.extract(batch);
      const want = tf.tidy(() => {
        const [k1, b1] = original.getLayer('conv1').getWeights();
        const x = preprocessToTensor(batch, mx.preprocessing);
        return tf.max(tf.relu(tf.add(tf.conv2d(x, k1 as tf.Tensor4D, 1, 'same'), b1)), [1, 2]).dataSync();
      });
      expectClose(a.values, want);
    } finally {
      await mx.dispose();
    }
  });

  it('leaks no tensors across 1,000 frames', async () => {
    await ex.extract(frames(1, 1, 16, 16)); // warm-up (kernels may cache constants once)
    const before = tf.memory().numTensors;
    const chunk = frames(5, 50, 20, 12); // other size: the resize path runs too
    let total = 0;
    for (let i = 0; i < 20; i++) total += (await ex.extract(chunk))[0].frames;
    expect(total).toBe(1000);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an empty batch gives empty matrices', async () => {
    const out = await ex.extract({ width: 16, height: 16, frames: [] });
    expect(out.map((o) => o.values.length)).toEqual([0, 0, 0, 0]);
  });

  it('a model with a free input size takes the preprocessing size, and too small frames are CNN_INPUT_SIZE', async () => {
    const free = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [null, null, 3] as unknown as number[], filters: 2, kernelSize: 5, name: 'c1', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
        tf.layers.conv2d({ filters: 2, kernelSize: 5, name: 'c2', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
      ],
    });
    const path = await save(free, join(tmp, 'free'));
    free.dispose();
    const files = await readTfjsModelFiles(path);
    const ok = await loadTfjsExtractor({ model: files, layers: ['c2'], backend, preprocessing: { width: 24, height: 20 } });
    expect(ok.preprocessing).toMatchObject({ width: 24, height: 20 });
    expect(ok.layers).toEqual([{ name: 'c2', channels: 2 }]);
    await ok.dispose();
    const before = tf.memory().numTensors;
    await expectError(loadTfjsExtractor({ model: files, layers: ['c2'], backend, preprocessing: { width: 6, height: 6 } }), 'CNN_INPUT_SIZE', /6×6/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('bad input gives typed errors', async () => {
    const files = await readTfjsModelFiles(modelPath);
    await expectError(loadTfjsExtractor({ model: files, layers: ['conv9'], backend }), 'CNN_LAYER_NOT_FOUND', /no layer named "conv9".*"conv1", "relu1", "pool1", "conv2", "gap", "fc"/);
    await expectError(loadTfjsExtractor({ model: files, layers: ['fc'], backend, preprocessing: { width: 32 } }), 'CNN_INPUT_SIZE', /fixed width of 16/);
    // A missing shard is named.
    const dir = join(tmp, 'broken');
    const path = await save(original, dir);
    unlinkSync(join(dir, 'group1-shard2of' + JSON.parse(readFileSync(path, 'utf8')).weightsManifest[0].paths.length + '.bin'));
    await expectError(readTfjsModelFiles(path), 'CNN_MODEL_FILES', /weight shard .*group1-shard2of\d+\.bin is missing/);
    // A truncated shard.
    const dir2 = join(tmp, 'truncated');
    const path2 = await save(original, dir2, 1 << 20);
    writeFileSync(join(dir2, 'group1-shard1of1.bin'), new Uint8Array(100));
    await expectError(readTfjsModelFiles(path2), 'CNN_MODEL_FILES', /hold 100 bytes but their weights need/);
    // Not a model.
    const notModel = join(tmp, 'not.json');
    writeFileSync(notModel, JSON.stringify({ hello: 1 }));
    await expectError(readTfjsModelFiles(notModel), 'CNN_MODEL_FORMAT', /no modelTopology/);
    writeFileSync(notModel, JSON.stringify({ modelTopology: { foo: 1 }, weightsManifest: [] }));
    await expectError(readTfjsModelFiles(notModel), 'CNN_MODEL_FORMAT', /neither a Keras layers model/);
    writeFileSync(notModel, JSON.stringify({ modelTopology: { node: [] }, weightsManifest: [{ paths: ['../secret.bin'], weights: [] }] }));
    await expectError(readTfjsModelFiles(notModel), 'CNN_MODEL_FORMAT', /outside the model's folder: "\.\.\/secret\.bin"/);
    writeFileSync(notModel, '{oops');
    await expectError(readTfjsModelFiles(notModel), 'CNN_MODEL_FORMAT', /invalid JSON/);
    await expectError(readTfjsModelFiles(join(tmp, 'none', 'model.json')), 'CNN_MODEL_FILES', /model file .*model\.json is missing/);
  });
});

/** A TF graph model by hand: input → Conv2D (3×3, SAME) → BiasAdd → Relu → Mean over H, W. */
function writeGraphModel(dir: string, kernel: Float32Array, bias: Float32Array): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const f = { type: 'DT_FLOAT' };
  const konst = (name: string, dims: number[]) => ({
    name,
    op: 'Const',
    attr: { dtype: f, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: dims.map((d) => ({ size: String(d) })) } } } },
  });
  const topology = {
    node: [
      { name: 'image', op: 'Placeholder', attr: { dtype: f, shape: { shape: { dim: [{ size: '-1' }, { size: '12' }, { size: '12' }, { size: '3' }] } } } },
      konst('conv/kernel', [3, 3, 3, 4]),
      konst('conv/bias', [4]),
      konst('mean/axes', [2]),
      {
        name: 'conv/Conv2D',
        op: 'Conv2D',
        input: ['image', 'conv/kernel'],
        attr: {
          T: f,
          strides: { list: { i: ['1', '1', '1', '1'] } },
          padding: { s: b64('SAME') },
          data_format: { s: b64('NHWC') },
          dilations: { list: { i: ['1', '1', '1', '1'] } },
        },
      },
      { name: 'conv/BiasAdd', op: 'BiasAdd', input: ['conv/Conv2D', 'conv/bias'], attr: { T: f, data_format: { s: b64('NHWC') } } },
      { name: 'conv/Relu', op: 'Relu', input: ['conv/BiasAdd'], attr: { T: f } },
      { name: 'pooled', op: 'Mean', input: ['conv/Relu', 'mean/axes'], attr: { T: f, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } } },
    ],
    library: {},
    versions: { producer: 1482 },
  };
  const axes = new Int32Array([1, 2]);
  const data = Buffer.concat([Buffer.from(kernel.buffer), Buffer.from(bias.buffer), Buffer.from(axes.buffer)]);
  const json = {
    format: 'graph-model',
    generatedBy: 'hand (syncact test)',
    convertedBy: null,
    modelTopology: topology,
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'conv/kernel', shape: [3, 3, 3, 4], dtype: 'float32' },
          { name: 'conv/bias', shape: [4], dtype: 'float32' },
          { name: 'mean/axes', shape: [2], dtype: 'int32' },
        ],
      },
    ],
  };
  writeFileSync(join(dir, 'group1-shard1of1.bin'), data);
  const path = join(dir, 'model.json');
  writeFileSync(path, JSON.stringify(json));
  return path;
}

describe('TF.js graph models from disk', () => {
  const rng = createRng(9);
  const kernel = Float32Array.from({ length: 3 * 3 * 3 * 4 }, () => rng.normal() * 0.3);
  const bias = Float32Array.of(0.1, -0.05, 0.2, 0);
  let path: string;
  beforeAll(async () => {
    if (!backend) backend = (await initTfBackend('cpu')).backend;
    const dir = join(tmp, 'graph');
    rmSync(dir, { recursive: true, force: true });
    (await import('node:fs')).mkdirSync(dir);
    path = writeGraphModel(dir, kernel, bias);
  });

  it('taps nodes by name and equals the ops run directly', async () => {
    const files = await readTfjsModelFiles(path);
    expect(files.format).toBe('graph');
    const ex = await loadTfjsExtractor({ model: files, layers: ['conv/Relu', 'conv/Conv2D', 'pooled'], backend });
    try {
      expect(ex.preprocessing).toMatchObject({ width: 12, height: 12, layout: 'nhwc', normalization: 'unit' });
      expect(ex.layers.map((l) => l.channels)).toEqual([4, 4, 4]);
      const batch = frames(21, 2, 12, 12);
      const out = await ex.extract(batch);
      const want = tf.tidy(() => {
        const x = preprocessToTensor(batch, ex.preprocessing);
        const conv = tf.conv2d(x, tf.tensor4d(kernel, [3, 3, 3, 4]), 1, 'same');
        const relu = tf.relu(tf.add(conv, tf.tensor1d(bias)));
        return [tf.mean(relu, [1, 2]), tf.mean(conv, [1, 2])].map((t) => t.dataSync());
      });
      expectClose(out[0].values, want[0]);
      expectClose(out[1].values, want[1]);
      // The graph's own Mean node is 2D: it passes through and equals the pooled Relu.
      expectClose(out[2].values, want[0]);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 10; i++) await ex.extract(batch);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      await ex.dispose();
    }
  });

  it('a wrong node name lists the nodes', async () => {
    await expectError(
      loadTfjsExtractor({ model: await readTfjsModelFiles(path), layers: ['conv/Relu6'], backend }),
      'CNN_LAYER_NOT_FOUND',
      /no node named "conv\/Relu6" in the graph; nodes \(8\): "image", "conv\/kernel"/,
    );
  });
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));
