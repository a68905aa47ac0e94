/**
 * The replay half of bench/pipeline.bench.ts (pipeline.hcp7t_replay_*), run in a child
 * process of its own so that its peak RSS is this run's alone: the streamed hcp7t preset
 * through runPipeline as `syncact replay` runs it (seek snapshots every `snapshot_every`
 * TRs, annotation on the same stride) at 'max' speed for its first N TRs, then one seek
 * back to TR `seekTo` and on to TR N-1 again. Unlike analyze, this path holds engine
 * snapshots (SnapshotStore), which is what its peak measures. Prints one JSON line.
 *
 * usage: node bin/run-ts.js bench/pipeline_hcp7t_replay.ts TRS SNAPSHOT_EVERY SEEK_TO CACHE_DIR
 */
import { Subject } from 'rxjs';
import { runPipeline, type PipelineTr } from '../server/streams/pipeline.ts';
import type { ClockCommand } from '../server/streams/replayClock.ts';
import { openSyntheticSession } from '../server/streams/session.ts';

const trs = Number(process.argv[2] ?? 60);
const every = Number(process.argv[3] ?? 10);
const seekTo = Number(process.argv[4] ?? 25);
const cacheDir = process.argv[5];
const t0 = performance.now();
const s = await openSyntheticSession('hcp7t', 1, { framesPerTr: 2, cacheDir });
const openSeconds = (performance.now() - t0) / 1000;
try {
  const controls = new Subject<ClockCommand>();
  let emitted = 0;
  let seeked = false;
  let afterSeek: PipelineTr | null = null;
  const total = trs + (trs - seekTo);
  const rssAtSeek = { before: 0, after: 0 };
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const sub = runPipeline({
      inputs: s.inputs,
      engine: s.engine,
      alpha: s.settings.fdrQ,
      speed: 'max',
      controls,
      annotateEvery: every,
      annotate: s.annotate,
      snapshotEvery: every,
    }).subscribe({
      next: (t) => {
        emitted++;
        if (seeked && afterSeek === null) {
          afterSeek = t;
          rssAtSeek.after = process.memoryUsage.rss();
        }
        if (t.state.tr === trs - 1 && !seeked) {
          seeked = true;
          rssAtSeek.before = process.memoryUsage.rss();
          controls.next({ type: 'seek', tr: seekTo });
        }
        if (emitted >= total) {
          sub.unsubscribe();
          resolve();
        }
      },
      error: reject,
      complete: resolve,
    });
  });
  const seconds = (performance.now() - started) / 1000;
  const peak = process.resourceUsage().maxRSS / 1024;
  const jump = afterSeek as PipelineTr | null;
  process.stdout.write(
    JSON.stringify({
      trs,
      snapshot_every: every,
      seek_to: seekTo,
      emitted,
      voxels: s.maskIndices.length,
      trs_per_s: emitted / seconds,
      peak_rss_mb: peak,
      rss_before_seek_mb: rssAtSeek.before / 2 ** 20,
      rss_after_seek_mb: rssAtSeek.after / 2 ** 20,
      seek_ms: jump?.state.telemetry.stageMs.seek ?? NaN,
      seek_caught_up: jump?.caughtUp ?? NaN,
      open_s: openSeconds,
    }) + '\n',
  );
} finally {
  await s.close();
}
