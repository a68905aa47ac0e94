/**
 * `syncact compare` from the command line: a models.json with the built-in model (two
 * layer choices) and an ONNX file, on the tiny session; the folder it writes, the feature
 * cache serving a model's second run, and usage errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compare } from '../../server/commands/compare.ts';
import { commands } from '../../server/commands/index.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';

let tmp: string;
let sessionFile: string;
let modelsFile: string;
let log: string[];

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
