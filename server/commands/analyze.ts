/** `syncact analyze`: the replay pipeline at 'max' speed to the end, written to a folder. */
import { SyncactError } from '../errors.ts';
import { analyzeSession, coupledPairs, reportJson, type AnalysisSeries } from '../analysis/analyze.ts';
import { writeAnalysis } from '../analysis/report.ts';
import { openSession } from '../streams/session.ts';
import { parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';
import { SESSION_OPTIONS, SESSION_USAGE, sessionFromArgs } from './sessionOptions.ts';
import { checkpointFrom, checkpointParts, RunState, STATE_OPTIONS, STATE_USAGE, stateFromArgs } from './stateOptions.ts';

const usage = `usage: syncact analyze (--session FILE | --demo | --fmri FILE --movie FILE …) --out DIR [options]

Runs the whole Sync-ACT analysis as fast as the machine allows (the replay pipeline at
'max' speed) and writes DIR as a BIDS-derivatives-like folder:
  dataset_description.json  BIDS header (DatasetType "derivative", GeneratedBy syncact)
  report.json       summary, every parameter used, software version, a truth block
                    (sensitivity, false_positive_rate, map_correlation, annotation_accuracy)
                    when the session has ground truth, and the run's measurements:
                    trs_per_second, peak_rss_mb, timings (per stage, feature-cache hit);
                    a rerun writes every file identically, and report.json too once
                    those three measurement keys are set aside
  report.html       the figures: coupling matrix, networks per layer, CKA by depth,
                    timelines of the strongest pairs (static, open it in a browser)
  [sub-S/[ses-X/]]func/[sub-S_][ses-X_]task-T[_run-R]_…  (entities from session.json)
    desc-LAYER_stat-t_statmap.nii.gz, desc-LAYER_stat-beta_statmap.nii.gz (+ .json)
                    4D, one volume per unit of the CNN layer: each unit's own synchronized
                    map (its GLM with intercept and drift; --unit-maps picks the units)
    desc-glmLAYER_stat-t_statmap.nii.gz, desc-glmLAYER_stat-beta_statmap.nii.gz (+ .json)
                    the joint GLM of the regressors, per layer ("glmpca": the components)
    desc-fbn_components.nii.gz (+ .json)  the learned networks (4D)
    desc-annotation_table.tsv   per unit: layer, unit, label, sign, score, p, q (its own
                                map against the atlas networks; BH q across the units)
    desc-coupling_table.tsv     per unit and feature: final r, p, q, fraction significant
    desc-coupling_timeseries.tsv  sliding r over TRs, one column per coupled pair
    desc-cka_timeseries.tsv     CKA per layer over TRs
    (each TSV with a .json sidecar describing its columns)
Written to DIR.partial and renamed when complete: a failed run leaves no DIR that
looks finished. An existing DIR is replaced only if it is an earlier analysis.

options:
  --out DIR          output folder (required)
  --annotate-every N annotate every N TRs as well as at the end (default 100)
  --quiet            print only errors

${SESSION_USAGE}

${STATE_USAGE}`;

export const analyze: Command = {
  name: 'analyze',
  summary: 'run the whole analysis at full speed and write maps, tables and report.json',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'analyze',
      argv,
      { ...SESSION_OPTIONS, ...STATE_OPTIONS, out: { type: 'string' }, 'annotate-every': { type: 'string' }, quiet: { type: 'boolean' } },
      false,
    );
    if (positionals.length) throw new SyncactError('CLI_USAGE', `analyze: unexpected argument "${positionals[0]}"`);
    if (!values.out) throw new SyncactError('CLI_USAGE', 'analyze: --out DIR is required');
    const every = values['annotate-every'] === undefined ? 100 : Number(values['annotate-every']);
    if (!Number.isInteger(every) || every < 0) throw new SyncactError('CLI_USAGE', `analyze: --annotate-every must be a non-negative integer, got "${values['annotate-every']}"`);
    const stateSettings = stateFromArgs('analyze', values);
    const say = (line: string) => {
      if (!values.quiet) process.stderr.write(line + '\n');
    };
    // Ctrl-C: nothing half-done is presented as complete (the folder is written only at the
    // end, atomically), so stopping at once is safe; say what state the user is left in.
    const out = values.out;
    const onSigint = () => {
      process.stderr.write(
        `analyze: interrupted; ${out} was not written` +
          (stateSettings ? ` (the run's state is in ${stateSettings.dir}: add --resume to continue from it)\n` : '\n'),
      );
      process.exit(130);
    };
    process.once('SIGINT', onSigint);
    try {
      const { source, options } = await sessionFromArgs('analyze', values, say);
      const session = await openSession(source, options);
      try {
        for (const w of session.warnings) say(`warning: ${w}`);
        say(`${session.info.name}: ${session.inputs.trCount} TRs, ${session.maskIndices.length} voxels, ${session.cnn.units} units, ${session.info.features.length} features`);
        // --state-dir: the run's state every N TRs; --resume: continue from the newest (docs/state-dir.md).
        const saved = stateSettings ? await RunState.open(session, stateSettings, { name: 'analyze', parameters: { annotateEvery: every } }, say) : null;
        const run = await analyzeSession(session, {
          annotateEvery: every,
          keepSeries: true,
          resume: saved?.resumed ? checkpointFrom(saved.resumed, true) : undefined,
          afterTr: saved ? (checkpoint) => saved.state.afterTr(session.engine, () => checkpointParts(checkpoint())) : undefined,
        });
        const report = reportJson(
          session,
          run,
          {
            annotate_every: every,
            frames_per_tr: options.framesPerTr ?? null,
            layers: options.layers ?? null,
            units: options.units ?? null,
            networks: options.networks ?? null,
            max_trs: options.maxTrs ?? null,
            accept_tr: options.acceptTrMismatch ?? false,
            stop_at_movie_end: options.stopAtMovieEnd ?? false,
            fps: source.fps ?? null,
            model_spec: options.model ?? { kind: 'builtin' },
          },
          ['syncact', 'analyze', ...argv].join(' '),
        );
        const files = await writeAnalysis(values.out, {
          info: session.info,
          engine: session.engine,
          entities: session.config.entities,
          series: run.series as AnalysisSeries,
          pairs: coupledPairs(session, run),
          glmUnits: session.glmUnits,
          mapUnits: session.mapUnits,
          networks: session.networks,
          final: run.final,
          finalP: run.finalP,
          fractionSignificant: run.fractionSignificant,
          annotations: run.annotations,
          unitAnnotations: run.unitAnnotations,
          fdrQ: session.settings.fdrQ,
          report,
        });
        say(`${run.trs} TRs in ${run.seconds.toFixed(1)} s (${run.trsPerSecond.toFixed(1)} TR/s), peak RSS ${run.peakRssMb.toFixed(0)} MiB`);
        if (run.truth) {
          const t = run.truth;
          say(
            `truth: sensitivity ${fmt(t.sensitivity)}, false-positive rate ${fmt(t.false_positive_rate)}, ` +
              `map r ${fmt(t.map_correlation)}, annotation accuracy ${fmt(t.annotation_accuracy)}`,
          );
        }
        for (const f of files) say(`  wrote ${f}`);
        return 0;
      } finally {
        await session.close();
      }
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : 'n/a';
}
