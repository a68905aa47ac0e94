/**
 * `syncact replay`: the session replayed TR by TR in the terminal, paced at the TR times
 * the speed, with one progress line per TR (TR, time, lag, rate, top coupled unit–network
 * pairs). Headless until the dashboard exists.
 *
 * Ctrl-C (SIGINT) stops cleanly: the clock gets a 'stop' command, the TR in flight
 * finishes, the stream completes, the session (GLM worker threads, files, CNN) is closed,
 * and the command exits with 130 (128 + SIGINT, the shell convention for "interrupted");
 * a replay that reaches its last TR exits 0. A second Ctrl-C while closing exits at once.
 */
import { Subject } from 'rxjs';
import type { TrState } from '../../protocol/state.ts';
import { SyncactError } from '../errors.ts';
import { runPipeline, type PipelineTr } from '../streams/pipeline.ts';
import { checkSpeed, type ClockCommand, type ReplaySpeed } from '../streams/replayClock.ts';
import { openSession, type OpenedSession } from '../streams/session.ts';
import { numberOption, parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';
import { SESSION_OPTIONS, SESSION_USAGE, sessionFromArgs } from './sessionOptions.ts';
import { RunState, STATE_OPTIONS, STATE_USAGE, stateFromArgs } from './stateOptions.ts';

const usage = `usage: syncact replay (--session FILE | --demo | --fmri FILE --movie FILE …) [--speed S] [--from TR] [options]

Replays the session: movie and BOLD in lockstep, one TR at a time, paced at TR/speed,
printing one line per TR: TR, run time, lag behind the schedule, TRs per second, and the
units most strongly coupled to a brain feature (* = significant at the session's FDR).
Ctrl-C stops cleanly (exit code 130); the end of the run exits 0.

options:
  --speed S        0.25 … 20 times real time, or max (default 1)
  --from TR        start at this TR (earlier TRs are processed unpaced first)
  --loop           start again at TR 0 after the last TR (until Ctrl-C)
  --top N          coupled pairs per line (default 3)
  --quiet          no per-TR lines (only the summary)

${SESSION_USAGE}

${STATE_USAGE}`;

export const replay: Command = {
  name: 'replay',
  summary: 'replay a session TR by TR in the terminal (movie and BOLD in lockstep)',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'replay',
      argv,
      {
        ...SESSION_OPTIONS,
        ...STATE_OPTIONS,
        speed: { type: 'string' },
        from: { type: 'string' },
        loop: { type: 'boolean' },
        top: { type: 'string' },
        quiet: { type: 'boolean' },
      },
      false,
    );
    if (positionals.length) throw new SyncactError('CLI_USAGE', `replay: unexpected argument "${positionals[0]}"`);
    const speed = parseSpeed(values.speed);
    const from = values.from === undefined ? 0 : numberOption('replay', 'from', values.from, 0);
    if (!Number.isInteger(from) || from < 0) throw new SyncactError('CLI_USAGE', `replay: --from must be a TR index (0, 1, …), got "${values.from}"`);
    const top = values.top === undefined ? 3 : numberOption('replay', 'top', values.top, 3);
    const stateSettings = stateFromArgs('replay', values);
    if (stateSettings?.resume && values.from !== undefined) throw new SyncactError('CLI_USAGE', 'replay: --resume continues at the snapshot\'s TR; give --from or --resume, not both');
    const say = (line: string) => process.stderr.write(line + '\n');
    const { source, options } = await sessionFromArgs('replay', values, say);

    // Ctrl-C during the (possibly long) open is honoured once the session is open.
    let interrupted = false;
    const controls = new Subject<ClockCommand>();
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      say('stopping …');
      controls.next({ type: 'stop' });
    };
    process.on('SIGINT', onSigint);
    let session: OpenedSession | null = null;
    try {
      session = await openSession(source, options);
      if (interrupted) return 130;
      const s = session;
      if (from >= s.inputs.trCount) throw new SyncactError('CLI_USAGE', `replay: --from ${from} is past the last TR (${s.inputs.trCount - 1})`);
      for (const w of s.warnings) say(`warning: ${w}`);
      say(
        `${s.info.name}: ${s.inputs.trCount} TRs of ${s.info.tr} s at ${speed === 'max' ? 'max speed' : `${speed}×`}, ` +
          `${s.maskIndices.length} voxels, ${s.cnn.units} units (${s.info.model.id}, ${s.info.model.backend}), ${s.info.features.length} features`,
      );
      // --state-dir: the engine's state every N TRs; --resume: continue from the newest (docs/state-dir.md).
      const saved = stateSettings ? await RunState.open(s, stateSettings, { name: 'replay' }, say) : null;
      const resumed = saved?.resumed ?? null;
      let last: PipelineTr | null = null;
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        runPipeline({
          inputs: s.inputs,
          engine: s.engine,
          alpha: s.settings.fdrQ,
          speed,
          start: resumed ? resumed.tr : from,
          zeroState: resumed?.zeroState,
          afterTr: saved ? () => saved.state.afterTr(s.engine) : undefined,
          loop: values.loop ?? false,
          controls,
          annotateEvery: s.settings.snapshotEvery,
          annotate: s.annotate,
          snapshotEvery: s.settings.snapshotEvery,
          frame: s.frame,
        }).subscribe({
          next: (t) => {
            last = t;
            if (!values.quiet) process.stdout.write(progressLine(s, t.state, top) + '\n');
          },
          error: reject,
          complete: resolve,
        });
      });
      const done = last as PipelineTr | null;
      const secs = (performance.now() - started) / 1000;
      say(`${interrupted ? 'stopped' : 'done'} at TR ${done ? done.state.tr : '-'} after ${secs.toFixed(1)} s`);
      return interrupted ? 130 : 0;
    } finally {
      process.off('SIGINT', onSigint);
      await session?.close();
    }
  },
};

function parseSpeed(v: string | undefined): ReplaySpeed {
  if (v === undefined) return 1;
  try {
    return checkSpeed(v === 'max' ? 'max' : Number(v));
  } catch (e) {
    throw new SyncactError('CLI_USAGE', `replay: --speed ${(e as Error).message.replace(/^speed /, '')}`);
  }
}

/** `TR   12/300  t  12.0 s  lag    0 ms   48.2 TR/s  pc1~visual +0.81*  c1:3~motion +0.70` */
export function progressLine(s: OpenedSession, st: TrState, top: number): string {
  const F = s.info.features.length;
  const name = (i: number) => {
    const u = s.info.units[i];
    return u.layer === 'pca' || u.layer === 'regressor' ? s.info.regressors[u.channel] : `${u.layer}:${u.channel}`;
  };
  const order: number[] = [];
  for (let j = 0; j < st.coupling.length; j++) if (Number.isFinite(st.coupling[j])) order.push(j);
  // Significant pairs first, then by |r|.
  order.sort((a, b) => st.significant[b] - st.significant[a] || Math.abs(st.coupling[b]) - Math.abs(st.coupling[a]));
  // r over fewer than half a window is noise (±1 at 3 samples): say so instead.
  const filled = Math.min(st.tr + 1, s.settings.window);
  const pairs = (filled * 2 < s.settings.window ? [] : order)
    .slice(0, Math.max(0, top))
    .map((j) => `${name(Math.floor(j / F))}~${s.info.features[j % F]} ${st.coupling[j] >= 0 ? '+' : ''}${st.coupling[j].toFixed(2)}${st.significant[j] ? '*' : ''}`);
  const rate = st.telemetry.trsPerSecond;
  return [
    `TR ${String(st.tr).padStart(4)}/${s.inputs.trCount}`,
    `t ${st.time.toFixed(1).padStart(6)} s`,
    `lag ${Math.round(st.telemetry.lagMs).toString().padStart(5)} ms`,
    `${Number.isFinite(rate) ? rate.toFixed(1).padStart(6) : '     -'} TR/s`,
    pairs.join('  ') || `(window filling: ${filled}/${s.settings.window} TRs)`,
  ].join('  ');
}
