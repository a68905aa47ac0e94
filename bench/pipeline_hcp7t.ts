/**
 * The hcp7t half of bench/pipeline.bench.ts, run in a child process of its own so that
 * its peak RSS is this run's alone (not the earlier suites'): the streamed hcp7t preset
 * (113×136×113, volumes generated on the fly, never written) through the whole pipeline
 * at 'max' speed for its first N TRs, designed as the whole 921-TR run is (drift basis of
 * 921 TRs, 100 lagged nulls), so a TR costs what it costs in a full analysis. Prints one
 * JSON line: trs_per_s, peak_rss_mb and the open timings.
 *
 * usage: node bin/run-ts.js bench/pipeline_hcp7t.ts TRS CACHE_DIR
 */
import { analyzeSession } from '../server/analysis/analyze.ts';
import { openSyntheticSession } from '../server/streams/session.ts';

const trs = Number(process.argv[2] ?? 60);
const cacheDir = process.argv[3];
const t0 = performance.now();
const s = await openSyntheticSession('hcp7t', 1, { framesPerTr: 2, cacheDir });
const openSeconds = (performance.now() - t0) / 1000;
try {
  const run = await analyzeSession(s, { annotateEvery: 0, stopAfter: trs });
  const peak = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    JSON.stringify({
      trs: run.trs,
      design_trs: s.inputs.trCount,
      regressors: s.engine.extras + s.glmUnits.length,
      null_shifts: s.nullShifts,
      voxels: s.maskIndices.length,
      trs_per_s: run.trsPerSecond,
      peak_rss_mb: peak,
      open_s: openSeconds,
      open_ms: s.openMs,
      per_tr_ms: Object.fromEntries(Object.entries(run.stages).map(([k, v]) => [k, v.per_tr_ms])),
    }) + '\n',
  );
} finally {
  await s.close();
}
