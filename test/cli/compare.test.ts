/**
 * `syncact compare` from the command line, on the tiny session: ONNX models built here
 * whose brain similarity is ordered by construction (one computes exactly the movie
 * features that drive the phantom's networks, one pseudo-random values, one the first plus half the second);
 * a models.json with the built-in model (two layer choices) and an ONNX file, the folder it
 * writes and the feature cache serving a model's second run; usage errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compare } from '../../server/commands/compare.ts';
import { commands } from '../../server/commands/index.ts';
import { createRng } from '../../server/engine/random.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';

let tmp: string;
let sessionFile: string;
let modelsFile: string;
let log: string[];

const { onnx } = onnxProto;
const SIZE = 64; // the tiny movie's frame size: the models see the frames unresized

/**
 * An ONNX model on NCHW frames scaled to [0, 1]: x → Flatten → MatMul → 2 units, then
 * - 'features': the units are the frame's checkerboard contrast and red–green tint,
 *   exactly the features that drive the phantom's visual, default-mode and colour
 *   networks (server/synth/movie.ts), each scaled to about [0, 1];
 * - 'noise': sin of a random projection with weights so large that the smallest change
 *   of a frame moves it by many periods: deterministic, but unrelated to the content;
 * - 'mixture': the features plus half the noise.
 * On the 60-TR tiny session this gives best-layer CKA of about 0.51, 0.44 and 0.35 (the
 * last is what 2 unrelated units reach by chance against 7 features over 60 TRs).
 */
function builtModel(kind: 'features' | 'noise' | 'mixture'): Uint8Array {
  const N = SIZE * SIZE;
  const F = onnx.TensorProto.DataType.FLOAT;
  const features = new Float32Array(3 * N * 2);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = y * SIZE + x;
      const checker = (Math.floor(x / (SIZE / 8)) + Math.floor(y / (SIZE / 8))) % 2 === 0 ? 1 : -1;
      features[(2 * N + i) * 2] = checker / N / 0.1; // blue = the grey level: contrast
      features[i * 2 + 1] = 1 / N / 0.16; // red − green: the tint
      features[(N + i) * 2 + 1] = -1 / N / 0.16;
    }
  }
  const rng = createRng(7);
  const noise = Float32Array.from({ length: 3 * N * 2 }, () => 50 * rng.normal());
  const tensor = (name: string, v: Float32Array, dims: number[]) => ({ name, dims, dataType: F, rawData: new Uint8Array(v.buffer.slice(0)) });
  const nodes = [{ name: 'flatten', opType: 'Flatten', input: ['x'], output: ['flat'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] }];
  const inits = [];
  if (kind !== 'noise') {
    nodes.push({ name: 'features', opType: 'MatMul', input: ['flat', 'wf'], output: ['features'], attribute: [] });
    inits.push(tensor('wf', features, [3 * N, 2]));
  }
  if (kind !== 'features') {
    nodes.push({ name: 'project', opType: 'MatMul', input: ['flat', 'wn'], output: ['projection'], attribute: [] });
    nodes.push({ name: 'sin', opType: 'Sin', input: ['projection'], output: ['noise'], attribute: [] });
    inits.push(tensor('wn', noise, [3 * N, 2]));
  }
  if (kind === 'mixture') {
    nodes.push({ name: 'scale', opType: 'Mul', input: ['noise', 'a'], output: ['scaled'], attribute: [] });
    nodes.push({ name: 'sum', opType: 'Add', input: ['features', 'scaled'], output: ['mixture'], attribute: [] });
    inits.push(tensor('a', Float32Array.of(0.5), []));
  }
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: kind,
        node: nodes,
        initializer: inits,
        input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimParam: 'n' }, { dimValue: 3 }, { dimValue: SIZE }, { dimValue: SIZE }] } } } }],
        output: [{ name: kind, type: { tensorType: { elemType: F } } }],
      },
    }),
  ).finish();
}

async function run(argv: string[]): Promise<number> {
  log = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    log.push(String(s));
    return true;
  });
  try {
    return await compare.run(argv);
  } finally {
    spy.mockRestore();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-compare-cli-'));
  const dir = join(tmp, 'tiny');
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 1 }), dir);
  sessionFile = join(dir, 'session.json');
  const json = JSON.parse(readFileSync(sessionFile, 'utf8'));
  writeFileSync(sessionFile, JSON.stringify({ ...json, engine: { window: 6, nulls: 4, regressors: 3 } }));
  modelsFile = join(tmp, 'models.json');
  const onnx = join(import.meta.dirname, '../fixtures/models/tiny_cnn.onnx');
  writeFileSync(
    modelsFile,
    JSON.stringify({
      models: [
        { name: 'hmax', model: 'builtin', accuracy: 0.3 },
        { name: 'tiny_cnn', model: { kind: 'onnx', path: onnx, layers: ['/relu2/Relu_output_0', 'logits'] }, accuracy: 0.5 },
        { name: 'hmax_c', model: { kind: 'builtin', layers: ['c1', 'c2'] } },
      ],
    }),
  );
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('syncact compare', () => {
  it('is registered', () => {
    expect(commands).toContain(compare);
  });

  it('writes the comparison folder; a second run is served by the feature cache', async () => {
    const out = join(tmp, 'out');
    const args = ['--session', sessionFile, '--models', modelsFile, '--out', out, '--frames-per-tr', '2', '--max-trs', '30', '--networks', '0', '--cache-dir', join(tmp, 'cache'), '--bootstrap', '200'];
    expect(await run(args)).toBe(0);
    const models = readFileSync(join(out, 'models.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    expect(models.map((r) => r[0])).toEqual(['model', 'hmax', 'tiny_cnn', 'hmax_c']);
    const col = (name: string) => models[0].indexOf(name);
    expect(models[2][col('model_id')]).toMatch(/^onnx:[0-9a-f]{64}$/);
    expect(models[3][col('accuracy')]).toBe('n/a');
    expect(models[3][col('best_layer')]).toMatch(/^c[12]$/);
    for (const r of models.slice(1)) {
      const cka = Number(r[col('best_layer_cka')]);
      expect(cka).toBeGreaterThan(0);
      expect(cka).toBeLessThanOrEqual(1);
      expect(r[col('trs')]).toBe('30');
    }
    // Two models with an accuracy: too few for a correlation, said as n/a, not invented.
    const corr = readFileSync(join(out, 'correlation.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    expect(corr[1].slice(0, 4)).toEqual(['best_layer_cka', 'pearson', '2', 'n/a']);
    const json = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
    expect(json.parameters).toMatchObject({ bootstrap: 200, seed: 1, max_trs: 30, frames_per_tr: 2, brain_similarity: 'best_layer_cka' });
    expect(json.parameters.models[1].model.path).toMatch(/tiny_cnn\.onnx$/);
    expect(readFileSync(join(out, 'comparison.svg'), 'utf8')).toMatch(/^<svg [^>]*xmlns/);
    const before = readFileSync(join(out, 'models.tsv'), 'utf8');
    expect(log.join('')).not.toContain('[feature cache]');
    expect(await run(args)).toBe(0);
    expect(log.join('').match(/\[feature cache\]/g)).toHaveLength(3);
    expect(readFileSync(join(out, 'models.tsv'), 'utf8')).toBe(before);
  }, 30_000);

  it('orders ONNX models built to be brain-like, noise and a mixture, and correlates with accuracy by sign', async () => {
    const file = join(tmp, 'built.json');
    const models = (['noise', 'features', 'mixture'] as const).map((kind, i) => {
      const path = join(tmp, `${kind}.onnx`);
      writeFileSync(path, builtModel(kind));
      return { name: kind, model: { kind: 'onnx', path: `${kind}.onnx`, layers: [kind], preprocessing: { normalization: 'unit' } }, accuracy: [0.2, 0.8, 0.5][i] };
    });
    writeFileSync(file, JSON.stringify({ models }));
    // Two units per model, fewer than the session's default GLM regressors: the session
    // takes as many principal components as there are units.
    const out = join(tmp, 'built');
    expect(await run(['--session', sessionFile, '--models', file, '--out', out, '--frames-per-tr', '2', '--networks', '0', '--no-cache', '--bootstrap', '200', '--quiet'])).toBe(0);
    const rows = readFileSync(join(out, 'models.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    const col = rows[0].indexOf('best_layer_cka');
    const cka = Object.fromEntries(rows.slice(1).map((r) => [r[0], Number(r[col])]));
    expect(cka.features).toBeGreaterThan(cka.mixture);
    expect(cka.mixture).toBeGreaterThan(cka.noise);
    const corr = readFileSync(join(out, 'correlation.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    const spearman = corr.find((r) => r[0] === 'best_layer_cka' && r[1] === 'spearman')!;
    const pearson = corr.find((r) => r[0] === 'best_layer_cka' && r[1] === 'pearson')!;
    expect(Number(spearman[3])).toBe(1);
    expect(Number(pearson[3])).toBeGreaterThan(0);
  }, 30_000);

  it('usage errors name the option or the file', async () => {
    await expect(run(['--session', sessionFile, '--out', join(tmp, 'x')])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--models/) });
    await expect(run(['--session', sessionFile, '--models', modelsFile])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--out/) });
    await expect(run(['--session', sessionFile, '--models', modelsFile, '--out', join(tmp, 'x'), '--model', 'a.onnx'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(run(['--session', sessionFile, '--models', modelsFile, '--out', join(tmp, 'x'), '--bootstrap', '0'])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--bootstrap/) });
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{"models": [{"name": "a", "model": "builtin", "accuracy": 76.1}]}');
    await expect(run(['--session', sessionFile, '--models', bad, '--out', join(tmp, 'x')])).rejects.toMatchObject({ code: 'COMPARE_MODELS_INVALID', file: bad });
    await expect(run(['--session', sessionFile, '--models', join(tmp, 'none.json'), '--out', join(tmp, 'x')])).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});
