/**
 * compareModels on the tiny session with three small models whose brain similarity is
 * ordered by construction: "features" computes, from the pixels, exactly the movie
 * features that drive the phantom's networks (contrast, red–green colour, horizontal
 * grating amplitude; server/synth/movie.ts); "noise" gives each frame pseudo-random values
 * seeded by a hash of its bytes (deterministic, unrelated to the content); "mixture" is
 * their average. Expected: features > mixture > noise in best-layer CKA, and with
 * accuracies in the same order a positive correlation (Spearman 1).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeatureExtractor, FrameBatch, LayerActivations } from '../../server/engine/cnn/extractor.ts';
import { createRng } from '../../server/engine/random.ts';
import { compareModels, parseModelsFile, type ModelEntry } from '../../server/analysis/compare.ts';
import { analyzeSession } from '../../server/analysis/analyze.ts';
import { openSession } from '../../server/streams/session.ts';
import { writeComparison } from '../../server/analysis/compareReport.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';

/** The movie's driving features of one RGB frame, each scaled to about [0, 1] as in features.ts. */
function movieFeatures(rgb: Uint8Array, w: number, h: number): number[] {
  let checker = 0;
  let rg = 0;
  let s = 0;
  let c = 0;
  for (let y = 0; y < h; y++) {
    const sy = Math.sin((2 * Math.PI * 4 * y) / h);
    const cy = Math.cos((2 * Math.PI * 4 * y) / h);
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 3;
      const grey = rgb[p + 2] / 255;
      checker += grey * ((Math.floor(x / (w / 8)) + Math.floor(y / (h / 8))) % 2 === 0 ? 1 : -1);
      rg += (rgb[p] - rgb[p + 1]) / 255;
      s += grey * sy;
      c += grey * cy;
    }
  }
  const n = w * h;
  return [checker / n / 0.1, (rg / n / 0.16 + 1) / 2, (2 * Math.hypot(s, c)) / n / 0.1];
}

function noise(rgb: Uint8Array): number[] {
  let hash = 2166136261;
  for (let i = 0; i < rgb.length; i++) hash = Math.imul(hash ^ rgb[i], 16777619) >>> 0;
  const rng = createRng(hash);
  return [rng.uniform(), rng.uniform(), rng.uniform()];
}

function testModel(kind: 'features' | 'noise' | 'mixture'): FeatureExtractor {
  return {
    id: `test:${kind}-v1`,
    backend: 'test',
    preprocessing: { width: 32, height: 32, resize: 'bilinear', colorOrder: 'rgb', normalization: 'unit', layout: 'nhwc' },
    layers: [{ name: 'units', channels: 3 }],
    pooling: 'mean',
    async extract(batch: FrameBatch): Promise<LayerActivations[]> {
      const values = new Float32Array(batch.frames.length * 3);
      batch.frames.forEach((f, i) => {
        const a = movieFeatures(f, batch.width, batch.height);
        const b = noise(f);
        for (let k = 0; k < 3; k++) values[i * 3 + k] = kind === 'features' ? a[k] : kind === 'noise' ? b[k] : (a[k] + b[k]) / 2;
      });
      return [{ layer: 'units', channels: 3, frames: batch.frames.length, values }];
    },
    async dispose() {},
  };
}

let tmp: string;
let sessionFile: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-compare-'));
  const dir = join(tmp, 'tiny');
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 1 }), dir);
  sessionFile = join(dir, 'session.json');
  const json = JSON.parse(readFileSync(sessionFile, 'utf8'));
  writeFileSync(sessionFile, JSON.stringify({ ...json, engine: { window: 6, nulls: 4, regressors: 3 } }));
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('compareModels', () => {
  it('orders models by construction and correlates brain similarity with accuracy positively', async () => {
    const entries: ModelEntry[] = [
      { name: 'noise', model: testModel('noise'), accuracy: 0.3 },
      { name: 'features', model: testModel('features'), accuracy: 0.8 },
      { name: 'mixture', model: testModel('mixture'), accuracy: 0.6 },
    ];
    const result = await compareModels({ session: sessionFile }, entries, { open: { cacheDir: null, networks: 0 }, bootstrap: 300, seed: 5 });
    const score = Object.fromEntries(result.models.map((m) => [m.name, m.bestLayerCka]));
    expect(score.features).toBeGreaterThan(score.mixture);
    expect(score.mixture).toBeGreaterThan(score.noise);
    const pearson = result.correlations.find((c) => c.score === 'best_layer_cka' && c.statistic === 'pearson')!;
    const spearman = result.correlations.find((c) => c.score === 'best_layer_cka' && c.statistic === 'spearman')!;
    expect(pearson.n).toBe(3);
    expect(pearson.estimate).toBeGreaterThan(0.5);
    expect(spearman.estimate).toBeCloseTo(1, 12);
    expect(pearson.low).toBeLessThanOrEqual(pearson.estimate);
    expect(pearson.high).toBeGreaterThanOrEqual(pearson.estimate);
    for (const m of result.models) {
      expect(m.bestLayer).toBe('units');
      expect(m.trs).toBe(60);
      expect(m.significantMapFraction).toBeGreaterThanOrEqual(0);
      expect(m.significantMapFraction).toBeLessThanOrEqual(1);
      // A share of the 3 units, each judged on its own map (not of the 3 PCA regressors).
      expect(m.mappedUnits).toBe(3);
      expect(Number.isInteger(Math.round(m.significantMapFraction * 3 * 1e9) / 1e9)).toBe(true);
    }
    // The temporal null tests coupling: the noise model's units are not called significant
    // (the old spatial null gave every model a fraction of 1), the feature model's are.
    const maps = Object.fromEntries(result.models.map((m) => [m.name, m.significantMapFraction]));
    expect(maps.noise).toBeLessThan(maps.features);
    expect(maps.noise).toBe(0);
    // The same count from the features model's own analysis: its units' annotations at q ≤ fdr_q.
    const s = await openSession({ session: sessionFile }, { cacheDir: null, networks: 0, model: testModel('features') });
    try {
      const run = await analyzeSession(s, { annotateEvery: 100 });
      expect(run.unitAnnotations.map((a) => a.unit)).toEqual([0, 1, 2]);
      const hits = run.unitAnnotations.filter((a) => a.q <= s.settings.fdrQ).length;
      expect(result.models[1].significantMapFraction).toBe(hits / 3);
    } finally {
      await s.close();
    }

    // Reversing the accuracies reverses the sign; the folder is written the same way twice.
    const reversed = await compareModels({ session: sessionFile }, entries.map((e) => ({ ...e, accuracy: 1.1 - (e.accuracy as number) })), { open: { cacheDir: null, networks: 0 }, bootstrap: 300, seed: 5 });
    expect(reversed.correlations.find((c) => c.score === 'best_layer_cka' && c.statistic === 'spearman')!.estimate).toBeCloseTo(-1, 12);
    const out = join(tmp, 'cmp');
    await writeComparison(out, result);
    const first = ['models.tsv', 'correlation.tsv', 'comparison.json', 'comparison.svg', 'comparison.html'].map((f) => readFileSync(join(out, f), 'utf8'));
    await writeComparison(out, result);
    expect(['models.tsv', 'correlation.tsv', 'comparison.json', 'comparison.svg', 'comparison.html'].map((f) => readFileSync(join(out, f), 'utf8'))).toEqual(first);
    const rows = first[0].trim().split('\n');
    expect(rows[0].split('\t').slice(0, 5)).toEqual(['model', 'model_id', 'accuracy', 'best_layer', 'best_layer_cka']);
    expect(rows.slice(1).map((r) => r.split('\t')[0])).toEqual(['noise', 'features', 'mixture']);
    expect(first[3]).toContain('ImageNet top-1 accuracy (%)');
    expect(first[4]).not.toMatch(/<script/i);
  }, 30_000);
});

describe('parseModelsFile', () => {
  const at = '/m/models.json';
  it('reads builtin and spec entries, resolving paths against the file', () => {
    const e = parseModelsFile({ models: [{ name: 'b', model: 'builtin', accuracy: 0.5 }, { name: 'o', model: { kind: 'onnx', path: 'x.onnx', layers: ['a'] } }] }, at);
    expect(e).toEqual([
      { name: 'b', model: { kind: 'builtin' }, accuracy: 0.5 },
      { name: 'o', model: expect.objectContaining({ kind: 'onnx', path: '/m/x.onnx', layers: ['a'] }), accuracy: null },
    ]);
  });
  it('names the entry and the field of a mistake', () => {
    const bad = (json: unknown, code: string, re: RegExp) => expect(() => parseModelsFile(json, at)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(re) }));
    bad([], 'COMPARE_MODELS_INVALID', /"models" array/);
    bad({ models: [] }, 'COMPARE_MODELS_INVALID', /non-empty/);
    bad({ models: [{ name: 'a', model: 'builtin', accuracy: 71 }] }, 'COMPARE_MODELS_INVALID', /models\[0\] \(a\).*fraction/);
    bad({ models: [{ name: 'a', model: 'builtin' }, { name: 'a', model: 'builtin' }] }, 'COMPARE_MODELS_INVALID', /used twice/);
    bad({ models: [{ name: 'a', model: 'builtin', acc: 1 }] }, 'COMPARE_MODELS_INVALID', /unknown field "acc"/);
    bad({ models: [{ name: 'a', model: 'resnet' }] }, 'COMPARE_MODELS_INVALID', /"builtin" or a model spec/);
    bad({ models: [{ name: 'a', model: { kind: 'onnx', path: 'x.onnx', layers: [] } }] }, 'CNN_BAD_SPEC', /models\[0\] \(a\): layers/);
  });
});
