/**
 * The pipeline end to end (issue "Lockstep replay", Speed):
 * - pipeline.demo_trs_per_s: `syncact analyze --demo` (the demo session, 300 TRs,
 *   25,760 voxels, built-in CNN with its activations from the feature cache): TRs per
 *   second of the per-TR loop (volume read, GLM, atlas features, learned networks,
 *   sliding coupling with nulls, CKA, annotation every 100 TRs and at the end). Target ≥ 50.
 *   The same run's truth figures (report.json's truth block) are kept beside it:
 *   pipeline.demo_sensitivity, pipeline.demo_false_positive_rate,
 *   pipeline.demo_map_correlation, pipeline.demo_annotation_accuracy.
 * - pipeline.hcp7t_trs_per_s, pipeline.hcp7t_peak_rss_mb: the hcp7t preset (113×136×113,
 *   ~403k voxels in the mask) streamed from the generator, never written, 60 TRs, in a
 *   child process so the peak RSS is its own (bench/pipeline_hcp7t.ts). Targets ≥ 2 TR/s
 *   and < 2048 MiB. pipeline.hcp7t_long_peak_rss_mb is the same at 180 TRs and
 *   pipeline.hcp7t_rss_growth_mb the difference: what run length costs in memory.
 * - pipeline.hcp7t_replay_peak_rss_mb: the same streamed hcp7t through the replay's path
 *   (runPipeline with seek snapshots every 10 TRs, annotation on that stride) for 60 TRs,
 *   then one seek back to TR 25 and on to TR 59 (bench/pipeline_hcp7t_replay.ts). Target
 *   < 2048 MiB. pipeline.hcp7t_replay_reference_peak_rss_mb is analyze's peak over the
 *   same 60 TRs in the same bench run: the difference is what seek snapshots cost.
 * The demo session is generated into .syncact/demo on first use (as `npm start` does) and
 * the CNN activations are cached in .syncact/cache, so only the first run pays for them.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { BenchSuite } from './bench.ts';
import { analyzeSession } from '../server/analysis/analyze.ts';
import { ensureDemo } from '../server/commands/sessionOptions.ts';
import { openSession } from '../server/streams/session.ts';

const HCP7T_TRS = 60;
const HCP7T_LONG_TRS = 180;
/** Small enough that the 60 TRs take 7 snapshots, so the store must thin and spill them. */
const REPLAY_SNAPSHOT_EVERY = 10;
/** Off the snapshot grid, so the seek restores a snapshot and replays TRs after it. */
const REPLAY_SEEK_TO = 25;
const root = resolve(import.meta.dirname, '..');

const suite: BenchSuite = {
  title: 'pipeline (analyze end to end)',
  figures: [
    'pipeline.demo_trs_per_s',
    'pipeline.demo_sensitivity',
    'pipeline.demo_false_positive_rate',
    'pipeline.demo_map_correlation',
    'pipeline.demo_annotation_accuracy',
    'pipeline.hcp7t_trs_per_s',
    'pipeline.hcp7t_peak_rss_mb',
    'pipeline.hcp7t_long_peak_rss_mb',
    'pipeline.hcp7t_rss_growth_mb',
    'pipeline.hcp7t_replay_peak_rss_mb',
    'pipeline.hcp7t_replay_reference_peak_rss_mb',
  ],
  async run(ctx) {
    const out: Record<string, number> = {};
    const cacheDir = resolve(root, '.syncact', 'cache');
    if (ctx.wants('pipeline.demo')) {
      const session = await ensureDemo(ctx.log);
      const s = await openSession({ session }, { cacheDir, log: ctx.log });
      try {
        ctx.log(`demo: CNN activations ${s.cnn.cacheHit ? 'from the cache' : 'computed (cached for next time)'}`);
        const run = await analyzeSession(s, { annotateEvery: 100 });
        out['pipeline.demo_trs_per_s'] = run.trsPerSecond;
        const t = run.truth;
        out['pipeline.demo_sensitivity'] = t?.sensitivity ?? NaN;
        out['pipeline.demo_false_positive_rate'] = t?.false_positive_rate ?? NaN;
        out['pipeline.demo_map_correlation'] = t?.map_correlation ?? NaN;
        out['pipeline.demo_annotation_accuracy'] = t?.annotation_accuracy ?? NaN;
        ctx.log(`demo: ${run.trs} TRs in ${run.seconds.toFixed(1)} s; per TR ${Object.entries(run.stages).map(([k, v]) => `${k} ${v.per_tr_ms.toFixed(2)} ms`).join(', ')}`);
      } finally {
        await s.close();
      }
    }
    if (ctx.wants('pipeline.hcp7t')) {
      const hcp7t = async (trs: number) => {
        const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bin/run-ts.js'), join(root, 'bench/pipeline_hcp7t.ts'), String(trs), cacheDir], {
          cwd: root,
          maxBuffer: 1 << 20,
        });
        const r = JSON.parse(stdout.trim().split('\n').pop() as string);
        ctx.log(`hcp7t: ${r.trs} TRs, ${r.voxels} voxels, open ${r.open_s.toFixed(1)} s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB; per TR ${Object.entries(r.per_tr_ms as Record<string, number>).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ')}`);
        return r as { trs_per_s: number; peak_rss_mb: number };
      };
      const short = await hcp7t(HCP7T_TRS);
      out['pipeline.hcp7t_trs_per_s'] = short.trs_per_s;
      out['pipeline.hcp7t_peak_rss_mb'] = short.peak_rss_mb;
      if (ctx.wants('pipeline.hcp7t_long_peak_rss_mb') || ctx.wants('pipeline.hcp7t_rss_growth_mb')) {
        // The same run three times longer: what memory costs per extra TR.
        const long = await hcp7t(HCP7T_LONG_TRS);
        out['pipeline.hcp7t_long_peak_rss_mb'] = long.peak_rss_mb;
        out['pipeline.hcp7t_rss_growth_mb'] = long.peak_rss_mb - short.peak_rss_mb;
      }
    }
    if (ctx.wants('pipeline.hcp7t_replay')) {
      const child = async (script: string, args: string[]) => {
        const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bin/run-ts.js'), join(root, script), ...args], { cwd: root, maxBuffer: 1 << 20 });
        return JSON.parse(stdout.trim().split('\n').pop() as string);
      };
      const replay = await child('bench/pipeline_hcp7t_replay.ts', [String(HCP7T_TRS), String(REPLAY_SNAPSHOT_EVERY), String(REPLAY_SEEK_TO), cacheDir]);
      const reference = await child('bench/pipeline_hcp7t.ts', [String(HCP7T_TRS), cacheDir]);
      ctx.log(
        `hcp7t replay: ${replay.trs} TRs, snapshots every ${replay.snapshot_every}, seek back to TR ${replay.seek_to} (restored, then ${replay.seek_caught_up} TRs replayed in ${replay.seek_ms.toFixed(0)} ms); ` +
          `peak RSS ${replay.peak_rss_mb.toFixed(0)} MB (RSS ${replay.rss_before_seek_mb.toFixed(0)} MB before the seek, ${replay.rss_after_seek_mb.toFixed(0)} MB after); analyze over the same TRs ${reference.peak_rss_mb.toFixed(0)} MB`,
      );
      out['pipeline.hcp7t_replay_peak_rss_mb'] = replay.peak_rss_mb;
      out['pipeline.hcp7t_replay_reference_peak_rss_mb'] = reference.peak_rss_mb;
    }
    return out;
  },
};

export default suite;
