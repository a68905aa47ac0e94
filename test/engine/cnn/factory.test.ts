/**
 * createExtractor: every kind of spec gives a working extractor whose id follows the model
 * files' content; malformed specs are CNN_BAD_SPEC naming the field.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncactError } from '../../../server/errors.ts';
import { createExtractor, inferModelKind } from '../../../server/engine/cnn/factory.ts';
import { validateModelSpec } from '../../../server/engine/cnn/modelSpec.ts';
import { initTfBackend } from '../../../server/engine/cnn/tfBackend.ts';
import { writeTfjsModel, type TfjsArtifacts } from '../../../server/io/modelFiles.ts';

const fixtures = join(import.meta.dirname, '../../fixtures/models');
const tmp = mkdtempSync(join(tmpdir(), 'syncact-factory-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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

const frame = (w: number, h: number, v: number) => Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + v) % 256);

describe('validateModelSpec', () => {
  it('accepts the three kinds', () => {
    expect(validateModelSpec({ kind: 'builtin' })).toEqual({ kind: 'builtin' });
    const t = { kind: 'tfjs', path: 'm/model.json', layers: ['a'], pooling: 'max', preprocessing: { width: 64, normalization: 'symmetric' } };
    expect(validateModelSpec(t)).toEqual(t);
    const o = { kind: 'onnx', path: 'm.onnx', layers: ['a', 'b'], input: 'x', threads: 1 };
    expect(validateModelSpec(o)).toEqual(o);
  });

  it('names the field that is wrong', async () => {
    const cases: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{ kind: 'keras' }, /kind is "keras"/],
      [{ kind: 'onnx', layers: ['a'] }, /needs a path/],
      [{ kind: 'onnx', path: 'm.onnx', layers: [] }, /non-empty list/],
      [{ kind: 'onnx', path: 'm.onnx', layers: ['a', 'a'] }, /"a" is listed twice/],
      [{ kind: 'onnx', path: 'm.onnx', layers: ['a'], pooling: 'median' }, /pooling is "median"/],
      [{ kind: 'onnx', path: 'm.onnx', layers: ['a'], threads: 0 }, /threads is 0/],
      [{ kind: 'tfjs', path: 'm.json', layers: ['a'], threads: 2 }, /no field "threads"/],
      [{ kind: 'tfjs', path: 'm.json', layers: ['a'], preprocessing: { width: -3 } }, /preprocessing.width is -3/],
      [{ kind: 'tfjs', path: 'm.json', layers: ['a'], preprocessing: { layout: 'chw' } }, /preprocessing.layout is "chw"/],
      [{ kind: 'tfjs', path: 'm.json', layers: ['a'], preprocessing: { mean: 1 } }, /unknown field "mean"/],
      [{ kind: 'builtin', path: 'x' }, /no field "path"/],
      [{ kind: 'builtin', seed: 1.5 }, /seed is 1.5/],
    ];
    for (const [spec, pattern] of cases) await expectError(() => validateModelSpec(spec), 'CNN_BAD_SPEC', pattern);
  });

  it('infers the kind from the extension', async () => {
    expect(inferModelKind('a/b.ONNX')).toBe('onnx');
    expect(inferModelKind('a/model.json')).toBe('tfjs');
    await expectError(() => inferModelKind('resnet.pt'), 'CNN_MODEL_FORMAT', /"\.pt".*torch\.onnx\.export/);
  });
});

describe('createExtractor', () => {
  // TF.js has one backend per process: select it before building models in the test.
  beforeAll(async () => {
    await initTfBackend('cpu');
  });

  it('onnx: the fixture, tapped and run; the id is the file hash', async () => {
    const spec = { kind: 'onnx', path: join(fixtures, 'tiny_cnn.onnx'), layers: ['/relu2/Relu'], preprocessing: { normalization: 'unit' } };
    const a = await createExtractor(spec);
    const copy = join(tmp, 'copy.onnx');
    copyFileSync(spec.path, copy);
    const b = await createExtractor({ ...spec, path: copy });
    try {
      expect(a.id).toBe(b.id); // content, not location
      expect(a.backend).toBe('onnxruntime-cpu');
      expect(a.layers).toEqual([{ name: '/relu2/Relu', channels: 8 }]);
      const out = await a.extract({ width: 16, height: 16, frames: [frame(16, 16, 1)] });
      expect(out[0].values.length).toBe(8);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it('tfjs: id follows the weights', async () => {
    const m = tf.sequential({
      layers: [tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 3, kernelSize: 3, name: 'c', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })],
    });
    const dir = join(tmp, 'tfjs');
    let path = '';
    await m.save(tf.io.withSaveHandler(async (art) => {
      path = await writeTfjsModel(dir, art as unknown as TfjsArtifacts);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    m.dispose();
    const a = await createExtractor({ kind: 'tfjs', path, layers: ['c'] }, { backend: 'cpu' });
    expect(a.id).toMatch(/^tfjs:[0-9a-f]{64}$/);
    expect(a.backend).toBe('tfjs-cpu');
    expect(a.layers).toEqual([{ name: 'c', channels: 3 }]);
    const out = await a.extract({ width: 8, height: 8, frames: [frame(8, 8, 3), frame(8, 8, 5)] });
    expect(out[0].frames).toBe(2);
    await a.dispose();
    // One weight byte changed: another model, another id.
    const shard = join(dir, 'group1-shard1of1.bin');
    const bytes = readFileSync(shard);
    bytes[0] ^= 1;
    writeFileSync(shard, bytes);
    const b = await createExtractor({ kind: 'tfjs', path, layers: ['c'] }, { backend: 'cpu' });
    expect(b.id).not.toBe(a.id);
    await b.dispose();
  });

  it('builtin: the embedded model', async () => {
    const ex = await createExtractor({ kind: 'builtin', layers: ['color'] }, { backend: 'cpu' });
    try {
      expect(ex.id).toMatch(/^builtin:hmax-v1:[0-9a-f]{12}$/);
      expect(ex.layers.map((l) => l.name)).toEqual(['color']);
    } finally {
      await ex.dispose();
    }
  });

  it('bad specs and files give typed errors', async () => {
    await expectError(createExtractor({ kind: 'onnx', path: join(fixtures, 'tiny_cnn.onnx'), layers: ['fc9'] }), 'CNN_LAYER_NOT_FOUND', /no tensor or node named "fc9"/);
    await expectError(createExtractor({ kind: 'tfjs', path: join(fixtures, 'tiny_cnn.onnx'), layers: ['a'] }), 'CNN_MODEL_FORMAT', /use kind 'onnx'/);
    await expectError(createExtractor({ kind: 'onnx', path: join(tmp, 'model.json'), layers: ['a'] }), 'CNN_MODEL_FORMAT', /use kind 'tfjs'/);
    await expectError(createExtractor({ kind: 'onnx', path: join(tmp, 'missing.onnx'), layers: ['a'] }), 'CNN_MODEL_FILES', /missing\.onnx is missing/);
    await expectError(createExtractor({ kind: 'tfjs', path: join(tmp, 'nope', 'model.json'), layers: ['a'] }), 'CNN_MODEL_FILES', /is missing/);
    await expectError(createExtractor({ kind: 'onnx', path: 'x.onnx' } as unknown), 'CNN_BAD_SPEC', /layers/);
  });
});
