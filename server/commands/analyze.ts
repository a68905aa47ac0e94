/** `syncact analyze`: the replay pipeline at 'max' speed to the end, written to a folder. */
import { SyncactError } from '../errors.ts';
import { analyzeSession, reportJson } from '../analysis/analyze.ts';
import { writeAnalysis } from '../analysis/report.ts';
import { openSession } from '../streams/session.ts';
import { parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';
import { SESSION_OPTIONS, SESSION_USAGE, sessionFromArgs } from './sessionOptions.ts';

const usage = `usage: syncact analyze (--session FILE | --demo | --fmri FILE --movie FILE …) --out DIR [options]

Runs the whole Sync-ACT analysis as fast as the machine allows (the replay pipeline at
'max' speed) and writes DIR:
  report.json       summary, parameters, per-stage timings, trs_per_second, peak_rss_mb,
                    and a truth block (sensitivity, false_positive_rate, map_correlation,
                    annotation_accuracy) when the session has ground truth
  glm_t.nii.gz      t-map of every GLM regressor (4D)      glm_beta.nii.gz  their betas
  networks.nii.gz   learned networks (4D)                  coupling.tsv, annotation.tsv
Written to DIR.partial and renamed when complete: a failed run leaves no DIR that
looks finished. An existing DIR is replaced only if it is an earlier analysis.

options:
  --out DIR          output folder (required)
  --annotate-every N annotate every N TRs as well as at the end (default 100)
  --quiet            print only errors

${SESSION_USAGE}`;

export const analyze: Command = {
  name: 'analyze',
  summary: 'run the whole analysis at full speed and write maps, tables and report.json',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'analyze',
      argv,
      { ...SESSION_OPTIONS, out: { type: 'string' }, 'annotate-every': { type: 'string' }, quiet: { type: 'boolean' } },
      false,
    );
    if (positionals.length) throw new SyncactError('CLI_USAGE', `analyze: unexpected argument "${positionals[0]}"`);
    if (!values.out) throw new SyncactError('CLI_USAGE', 'analyze: --out DIR is required');
    const every = values['annotate-every'] === undefined ? 100 : Number(values['annotate-every']);
    if (!Number.isInteger(every) || every < 0) throw new SyncactError('CLI_USAGE', `analyze: --annotate-every must be a non-negative integer, got "${values['annotate-every']}"`);
    const say = (line: string) => {
      if (!values.quiet) process.stderr.write(line + '\n');
    };
    const { source, options } = await sessionFromArgs('analyze', values, say);
    const session = await openSession(source, options);
    try {
      for (const w of session.warnings) say(`warning: ${w}`);
      say(`${session.info.name}: ${session.inputs.trCount} TRs, ${session.maskIndices.length} voxels, ${session.cnn.units} units, ${session.info.features.length} features`);
      const run = await analyzeSession(session, { annotateEvery: every });
      const report = reportJson(session, run, { command: ['syncact', 'analyze', ...argv].join(' ') });
      const files = await writeAnalysis(values.out, {
        info: session.info,
        engine: session.engine,
        glmUnits: session.glmUnits,
        networks: session.networks,
        final: run.final,
        finalP: run.finalP,
        fractionSignificant: run.fractionSignificant,
        annotations: run.annotations,
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
  },
};

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : 'n/a';
}
