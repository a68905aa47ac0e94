/**
 * Comparing CNN models by how brain-like they are (the paper's second claim: a CNN whose
 * representations are more brain-like also classifies images better).
 *
 * Each model runs the whole analysis on the same session (analyzeSession): its movie pass
 * goes through the feature cache (a model already seen on this movie is not run again),
 * and the brain side is replayed once per model. Per model:
 *  - brain_similarity = best_layer_cka: the largest linear CKA, over the tapped layers,
 *    between a layer's unit responses and the brain features at the end of the run. It is
 *    the score the correlation uses: one number per model, comparable across models
 *    whatever their width, since CKA is invariant to orthogonal transforms and isotropic
 *    scaling of the units.
 *  - significant_map_fraction: the share of the units with a synchronized map of their own
 *    (every CNN unit unless the session's unit_maps says otherwise) whose map (the t-map
 *    of the unit's own GLM) matches an atlas network significantly: annotation q ≤ the
 *    session's fdr_q, BH across those units. A model with more units is not favoured: it
 *    is a share. The p is the temporal null's (coupling.ts UnitMapNullOptions): the map
 *    must match its network better than the maps of the model's own responses circularly
 *    shifted over the run, so a pseudo-random model scores ~0 (on the tiny session: noise
 *    0, features 1, mixture 2/3; the spatial null gave all three 1). With unit_maps "none"
 *    it falls back to the joint GLM's regressors, whose p is still the spatial null's (map
 *    structure, not coupling: read that fraction with care).
 *  - coupled_unit_fraction: the share of CNN units with at least one brain feature they
 *    are coupled with in at least half of the scored TRs (analyze's "coupled pairs").
 * Across the models that have an ImageNet top-1 accuracy (at least 3): Pearson r and
 * Spearman rho between each score and accuracy, with a seeded percentile bootstrap 95%
 * interval (correlation.ts).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import type { FeatureExtractor } from '../engine/cnn/extractor.ts';
import { validateModelSpec, type ModelSpec } from '../engine/cnn/modelSpec.ts';
import { openSession, type OpenOptions, type SessionSource } from '../streams/session.ts';
import { analyzeSession, coupledPairs } from './analyze.ts';
import { bootstrapCi, pearson, spearman } from './correlation.ts';
import { SOFTWARE_COMMIT, SOFTWARE_VERSION } from './version.ts';

/** One model to compare: a spec (or, in tests, an extractor), with its accuracy when known. */
export interface ModelEntry {
  name: string;
  model: ModelSpec | FeatureExtractor;
  /** ImageNet top-1 accuracy as a fraction in [0, 1], or null when not supplied. */
  accuracy: number | null;
}

const ENTRY_KEYS = new Set(['name', 'model', 'accuracy']);

/**
 * Validates models.json content: `{"models": [{"name", "model", "accuracy"?}, …]}`, where
 * `model` is "builtin" or a model spec (`{kind, path, layers, …}`, paths relative to the
 * file's folder). COMPARE_MODELS_INVALID names the entry and the field; a malformed spec
 * is CNN_BAD_SPEC from validateModelSpec, prefixed with the entry.
 */
export function parseModelsFile(json: unknown, path: string): ModelEntry[] {
  const fail = (message: string): never => {
    throw new SyncactError('COMPARE_MODELS_INVALID', message, path);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('must be a JSON object with a "models" array');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'models') fail(`unknown field "${k}" (fields: models)`);
  if (!Array.isArray(o.models) || o.models.length === 0) fail('field "models" must be a non-empty array');
  const dir = dirname(resolve(path));
  const seen = new Set<string>();
  return (o.models as unknown[]).map((e, i) => {
    const where = `models[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) fail(`${where} must be an object {name, model, accuracy}`);
    const m = e as Record<string, unknown>;
    for (const k of Object.keys(m)) if (!ENTRY_KEYS.has(k)) fail(`${where}: unknown field "${k}" (fields: ${[...ENTRY_KEYS].join(', ')})`);
    if (typeof m.name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(m.name)) fail(`${where}: field "name" must be a name of letters, digits, ".", "_" or "-"`);
    const name = m.name as string;
    if (seen.has(name)) fail(`${where}: name "${name}" is used twice`);
    seen.add(name);
    let accuracy: number | null = null;
    if (m.accuracy !== undefined && m.accuracy !== null) {
      if (typeof m.accuracy !== 'number' || !(m.accuracy >= 0 && m.accuracy <= 1)) fail(`${where} (${name}): field "accuracy" must be the ImageNet top-1 accuracy as a fraction in [0, 1], got ${JSON.stringify(m.accuracy)}`);
      accuracy = m.accuracy as number;
    }
    let spec: unknown = m.model;
    if (spec === 'builtin') spec = { kind: 'builtin' };
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) fail(`${where} (${name}): field "model" must be "builtin" or a model spec {kind, path, layers}`);
    const s = { ...(spec as Record<string, unknown>) };
    if (typeof s.path === 'string' && s.path.trim() !== '') s.path = resolve(dir, s.path);
    try {
      return { name, model: validateModelSpec(s), accuracy };
    } catch (err) {
      if (err instanceof SyncactError) throw new SyncactError(err.code, `${where} (${name}): ${err.message}`, path);
      throw err;
    }
  });
}

/** Reads and validates a models.json. */
export async function loadModelsFile(path: string): Promise<ModelEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the models file (${code})`, resolve(path));
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyncactError('COMPARE_MODELS_INVALID', `not valid JSON: ${(e as Error).message}`, resolve(path));
  }
  return parseModelsFile(json, resolve(path));
}

export interface ModelScore {
  name: string;
  modelId: string;
  backend: string;
  accuracy: number | null;
  layers: string[];
  /** Final CKA per layer (tap order). */
  cka: number[];
  bestLayer: string | null;
  /** The brain-similarity score: best_layer_cka. */
  bestLayerCka: number;
  /** Share of `mappedUnits` (of the regressors when none) whose map is annotated at q ≤ fdr_q. */
  significantMapFraction: number;
  coupledUnitFraction: number;
  units: number;
  /** Units with their own map (the denominator of significantMapFraction; 0: regressors were used). */
  mappedUnits: number;
  regressors: number;
  trs: number;
  cacheHit: boolean;
}

export interface CorrelationRow {
  score: 'best_layer_cka' | 'significant_map_fraction';
  statistic: 'pearson' | 'spearman';
  n: number;
  estimate: number;
  low: number;
  high: number;
  valid: number;
  draws: number;
}

export interface ComparisonResult {
  models: ModelScore[];
  correlations: CorrelationRow[];
  parameters: Record<string, unknown>;
}

export interface CompareOptions {
  /** How to open the session for every model (the model itself comes from each entry). */
  open?: Omit<OpenOptions, 'model' | 'layers' | 'units'>;
  /** Annotation stride in TRs (0: only at the end); default 100. */
  annotateEvery?: number;
  /** Bootstrap resamples; default 2000. */
  bootstrap?: number;
  /** Seed of the bootstrap; default 1. */
  seed?: number;
  /** Called before each model is run. */
  onModel?: (entry: ModelEntry, index: number) => void;
}

/** Runs every model on the session and correlates brain similarity with accuracy. */
export async function compareModels(source: SessionSource, entries: ModelEntry[], options: CompareOptions = {}): Promise<ComparisonResult> {
  const models: ModelScore[] = [];
  for (const [i, entry] of entries.entries()) {
    options.onModel?.(entry, i);
    const layers = 'kind' in entry.model && entry.model.kind === 'builtin' ? entry.model.layers : undefined;
    const s = await openSession(source, { ...options.open, model: entry.model, layers });
    try {
      const run = await analyzeSession(s, { annotateEvery: options.annotateEvery ?? 100 });
      const cka = s.info.layers.map((_, l) => run.final.cka[l]);
      let best = -1;
      cka.forEach((v, l) => {
        if (Number.isFinite(v) && (best < 0 || v > cka[best])) best = l;
      });
      // Each unit's own map when the session has unit maps, else the regressors' (the old score).
      const maps = s.mapUnits.length > 0 ? run.unitAnnotations : run.annotations;
      const annotated = maps.filter((a) => Number.isFinite(a.q));
      const mapCount = s.mapUnits.length > 0 ? s.mapUnits.length : s.glmUnits.length;
      const coupledUnits = new Set(coupledPairs(s, run).map((p) => Math.floor(p.index / s.info.features.length)).filter((u) => u < s.cnn.units));
      models.push({
        name: entry.name,
        modelId: s.info.model.id,
        backend: s.info.model.backend,
        accuracy: entry.accuracy,
        layers: s.info.layers.map((l) => l.name),
        cka,
        bestLayer: best >= 0 ? s.info.layers[best].name : null,
        bestLayerCka: best >= 0 ? cka[best] : NaN,
        significantMapFraction: annotated.length ? annotated.filter((a) => a.q <= s.settings.fdrQ).length / mapCount : NaN,
        coupledUnitFraction: coupledUnits.size / s.cnn.units,
        units: s.cnn.units,
        mappedUnits: s.mapUnits.length,
        regressors: s.glmUnits.length,
        trs: run.trs,
        cacheHit: s.cnn.cacheHit,
      });
    } finally {
      await s.close();
    }
  }
  const draws = options.bootstrap ?? 2000;
  const seed = options.seed ?? 1;
  const withAccuracy = models.filter((m) => m.accuracy !== null);
  const correlations: CorrelationRow[] = [];
  for (const score of ['best_layer_cka', 'significant_map_fraction'] as const) {
    const usable = withAccuracy.filter((m) => Number.isFinite(score === 'best_layer_cka' ? m.bestLayerCka : m.significantMapFraction));
    const x = usable.map((m) => (score === 'best_layer_cka' ? m.bestLayerCka : m.significantMapFraction));
    const y = usable.map((m) => m.accuracy as number);
    for (const [statistic, f] of [
      ['pearson', pearson],
      ['spearman', spearman],
    ] as const) {
      const b = usable.length >= 3 ? bootstrapCi(x, y, f, { draws, seed }) : { estimate: NaN, low: NaN, high: NaN, valid: 0, draws };
      correlations.push({ score, statistic, n: usable.length, ...b });
    }
  }
  return {
    models,
    correlations,
    parameters: {
      software: { name: 'syncact', version: SOFTWARE_VERSION, commit: SOFTWARE_COMMIT },
      session: source,
      models: entries.map((e) => ({ name: e.name, model: 'id' in e.model ? { extractor: e.model.id } : e.model, accuracy: e.accuracy })),
      annotate_every: options.annotateEvery ?? 100,
      frames_per_tr: options.open?.framesPerTr ?? null,
      networks: options.open?.networks ?? null,
      max_trs: options.open?.maxTrs ?? null,
      bootstrap: draws,
      seed,
      confidence_level: 0.95,
      brain_similarity: 'best_layer_cka',
    },
  };
}
