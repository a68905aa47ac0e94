/** `syncact compare`: several CNNs on one session, brain similarity against ImageNet accuracy. */
import { SyncactError } from '../errors.ts';
import { compareModels, loadModelsFile } from '../analysis/compare.ts';
import { writeComparison } from '../analysis/compareReport.ts';
import { parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';
import { SESSION_OPTIONS, sessionFromArgs } from './sessionOptions.ts';

const usage = `usage: syncact compare (--session FILE | --demo) --models FILE --out DIR [options]

Runs the whole analysis once per model on the same session and writes DIR:
  models.tsv        per model: accuracy, best layer, best_layer_cka (the brain-similarity
                    score), significant_map_fraction, coupled_unit_fraction, CKA per layer
  correlation.tsv   Pearson r and Spearman rho between each score and accuracy, with a
                    seeded bootstrap 95% interval (needs 3 models with an accuracy)
  comparison.svg    brain similarity against accuracy, one point per model
  comparison.html   the plot and the tables       comparison.json  every parameter
Each model's movie pass is served by the feature cache when it has run on this movie.

models.json: {"models": [{"name": "alexnet", "model": {"kind": "onnx", "path": "alexnet.onnx",
  "layers": ["/features/features.1/Relu_output_0", …]}, "accuracy": 0.5652}, …]}
  "model" is "builtin" or a model spec (kind builtin | onnx | tfjs, path relative to the
  file, layers to tap); "accuracy" is ImageNet top-1 as a fraction in [0, 1] (optional).

options:
  --models FILE      the models to compare (required)
  --out DIR          output folder (required; replaced only if it is an earlier comparison)
  --bootstrap N      bootstrap resamples (default 2000)
  --seed N           bootstrap seed (default 1)
  --annotate-every N annotate every N TRs as well as at the end (default 100)
  --quiet            print only errors

session (as for analyze; see \`syncact analyze --help\`):
  --session FILE, --demo, --fmri FILE --movie FILE, --mask, --atlas, --atlas-labels,
  --tr, --onset, --accept-tr, --fps, --stop-at-movie-end
pipeline (the same for every model):
  --frames-per-tr N, --networks N, --max-trs N, --no-cache, --cache-dir DIR`;

const { model: _model, layers: _layers, units: _units, ...SHARED } = SESSION_OPTIONS;

function count(name: string, v: string | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new SyncactError('CLI_USAGE', `compare: --${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

export const compare: Command = {
  name: 'compare',
  summary: 'compare CNN models: brain similarity per model and its correlation with ImageNet accuracy',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'compare',
      argv,
      { ...SHARED, models: { type: 'string' }, out: { type: 'string' }, bootstrap: { type: 'string' }, seed: { type: 'string' }, 'annotate-every': { type: 'string' }, quiet: { type: 'boolean' } },
      false,
    );
    if (positionals.length) throw new SyncactError('CLI_USAGE', `compare: unexpected argument "${positionals[0]}"`);
    if (!values.models) throw new SyncactError('CLI_USAGE', 'compare: --models FILE is required');
    if (!values.out) throw new SyncactError('CLI_USAGE', 'compare: --out DIR is required');
    const bootstrap = count('bootstrap', values.bootstrap, 2000, 1);
    const seed = count('seed', values.seed, 1, 0);
    const annotateEvery = count('annotate-every', values['annotate-every'], 100, 0);
    const say = (line: string) => {
      if (!values.quiet) process.stderr.write(line + '\n');
    };
    const entries = await loadModelsFile(values.models);
    const { source, options } = await sessionFromArgs('compare', values, say);
    const result = await compareModels(source, entries, {
      open: options,
      annotateEvery,
      bootstrap,
      seed,
      onModel: (e, i) => say(`model ${i + 1}/${entries.length}: ${e.name}`),
    });
    for (const m of result.models) say(`  ${m.name}: best-layer CKA ${fmt(m.bestLayerCka)} (${m.bestLayer ?? 'n/a'}), accuracy ${m.accuracy === null ? 'n/a' : fmt(m.accuracy)}${m.cacheHit ? ' [feature cache]' : ''}`);
    for (const c of result.correlations.filter((x) => x.score === 'best_layer_cka')) {
      say(`${c.statistic}: ${fmt(c.estimate)} [${fmt(c.low)}, ${fmt(c.high)}] over ${c.n} models`);
    }
    for (const f of await writeComparison(values.out, result)) say(`  wrote ${f}`);
    return 0;
  },
};

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : 'n/a';
}
