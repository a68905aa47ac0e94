/**
 * `syncact demo`: the built-in demo session served live to the dashboard.
 *
 * Generates the demo session on first use (the same `.syncact/demo` as `replay --demo`,
 * through the same session options), opens it, wraps the pipeline as the server's
 * LiveSession, starts the server and prints the dashboard URL with the control token on
 * stdout (one line starting with `http`, so scripts can read it). Opens no browser.
 *
 * The server runs in a worker thread (startServerInWorker), so that clients cost the
 * pipeline's thread only a structured clone of each TR: with 50 clients at speed 20 an
 * in-thread server's fan-out made the bench's stand-in TR 3.4× longer (0.74 → 2.54 ms);
 * on this path the demo's pipeline thread stays within a few % of running with none
 * (6.84 → 6.83 ms busy per TR, 2-core machine; `npm run bench -- --only server.demo`).
 *
 * The demo loops by default, so a dashboard opened late still sees it playing.
 * SIGINT/SIGTERM stop the replay, close every client and the session, and exit 0.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import { pipelineLiveSession } from '../net/pipelineSession.ts';
import type { LiveSession } from '../net/liveSession.ts';
import type { RunningServer } from '../net/server.ts';
import { startServerInWorker } from '../net/startServerInWorker.ts';
import { dashboardBuilt } from '../net/staticFiles.ts';
import { checkSpeed, type ReplaySpeed } from '../streams/replayClock.ts';
import { openSession, type OpenedSession } from '../streams/session.ts';
import { numberOption, parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';
import { sessionFromArgs } from './sessionOptions.ts';
import { RunState, STATE_OPTIONS, STATE_USAGE, stateFromArgs } from './stateOptions.ts';

const usage = `usage: syncact demo [--port P] [--speed S] [--host H] [options]

Serves the built-in demo session (generated in .syncact/demo on first use) live: the
dashboard, /healthz, /metrics and the WebSocket on one port. Prints the dashboard URL
with the control token; whoever has the URL may play, pause, seek and change speed.

options:
  --port P         port to listen on (default 8765; 0 picks a free one)
  --host H         interface to bind (default 127.0.0.1)
  --speed S        0.25 … 20 times real time, or max (default 1)
  --no-loop        stop at the last TR instead of starting again
  --paused         start paused
  --max-trs N      only the first N TRs
  --frames-per-tr N  movie frames per TR through the CNN (default 4, so that a fresh
                   clone starts in seconds; 0 = every frame)
  --static DIR     the built dashboard (default client/dist)
  --token T        the control token (default: a random one; give one to keep the URL
                   valid across restarts)
  --timings FILE   write one line per TR: "tr epoch_ms" when its state was handed to the
                   server (for measuring display latency)

${STATE_USAGE}`;

/**
 * Frames per TR through the CNN by default: every frame (24 per TR) takes ~40 s of CPU on
 * first use, 4 per TR ~8 s (measured on a 2-core machine), and the feature cache makes
 * later starts immediate either way.
 */
export const DEMO_FRAMES_PER_TR = 4;

export const demo: Command = {
  name: 'demo',
  summary: 'serve the built-in demo session live to the dashboard (prints the URL)',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'demo',
      argv,
      {
        port: { type: 'string' },
        host: { type: 'string' },
        speed: { type: 'string' },
        'no-loop': { type: 'boolean' },
        paused: { type: 'boolean' },
        'max-trs': { type: 'string' },
        'frames-per-tr': { type: 'string' },
        static: { type: 'string' },
        timings: { type: 'string' },
        token: { type: 'string' },
        ...STATE_OPTIONS,
      },
      false,
    );
    if (positionals.length) throw new SyncactError('CLI_USAGE', `demo: unexpected argument "${positionals[0]}"`);
    const port = numberOption('demo', 'port', values.port, 8765);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new SyncactError('CLI_USAGE', `demo: --port must be 0 … 65535, got "${values.port}"`);
    const speed = parseSpeed(values.speed);
    if (values.token !== undefined && !/^[A-Za-z0-9_-]{8,256}$/.test(values.token)) {
      throw new SyncactError('CLI_USAGE', 'demo: --token must be 8 … 256 characters of A-Z, a-z, 0-9, _ or -');
    }
    const stateSettings = stateFromArgs('demo', values);
    const say = (line: string) => process.stderr.write(line + '\n');
    const session = await openDemo(say, { maxTrs: values['max-trs'], framesPerTr: values['frames-per-tr'] });
    let closing: Promise<number> | null = null;
    try {
      for (const w of session.warnings) say(`warning: ${w}`);
      const timings = values.timings ? resolve(values.timings) : null;
      if (timings) writeFileSync(timings, '');
      // --state-dir: the engine's state every N TRs; --resume: continue from the newest (docs/state-dir.md).
      const saved = stateSettings ? await RunState.open(session, stateSettings, { name: 'demo' }, say) : null;
      const live = pipelineLiveSession(session, {
        start: saved?.resumed?.tr,
        zeroState: saved?.resumed?.zeroState,
        afterTr: saved ? () => saved.state.afterTr(session.engine) : undefined,
        speed,
        loop: !values['no-loop'],
        paused: values.paused ?? false,
        onState: timings ? (s) => appendFileSync(timings, `${s.tr} ${Date.now()}\n`) : undefined,
      });
      const server = await serveDemo(live, {
        host: values.host,
        port,
        token: values.token,
        staticDir: values.static ? resolve(values.static) : undefined,
      });
      say(
        `${session.info.name}: ${session.info.trCount} TRs of ${session.info.tr} s at ${speed === 'max' ? 'max speed' : `${speed}×`}, ` +
          `${session.maskIndices.length} voxels, ${session.cnn.units} units, ${session.info.features.length} features`,
      );
      if (!dashboardBuilt(values.static ? resolve(values.static) : resolve('client', 'dist'))) {
        say('warning: the dashboard is not built (run `npm run build:client`); the page will say so');
      }
      process.stdout.write(`${server.url}\n`);
      say('Ctrl-C stops the demo.');

      return await new Promise<number>((done) => {
        const stop = (code: number) => {
          closing ??= (async () => {
            live.stop();
            await server.close();
            return code;
          })();
          closing.then(done, () => done(1));
        };
        process.once('SIGINT', () => stop(0));
        process.once('SIGTERM', () => stop(0));
      });
    } finally {
      await session.close();
    }
  },
};

/**
 * The demo session as `syncact demo` opens it (generated in .syncact/demo on first use).
 * Options as the command's flags give them: --max-trs, --frames-per-tr (0 = every frame).
 */
export async function openDemo(say: (line: string) => void, flags: { maxTrs?: string; framesPerTr?: string } = {}): Promise<OpenedSession> {
  const fpt = flags.framesPerTr ?? String(DEMO_FRAMES_PER_TR);
  const { source, options } = await sessionFromArgs('demo', { demo: true, 'max-trs': flags.maxTrs, 'frames-per-tr': fpt === '0' ? undefined : fpt }, say);
  return openSession(source, options);
}

/** Where `syncact demo` serves a live session from; bench/server.bench.ts measures this same path. */
export interface DemoServerOptions {
  host?: string;
  port?: number;
  token?: string;
  staticDir?: string;
}

/** Serves `live` the way `syncact demo` does: the HTTP/WebSocket server on its own worker thread. */
export function serveDemo(live: LiveSession, options: DemoServerOptions): Promise<RunningServer> {
  return startServerInWorker({ session: live, ...options });
}

function parseSpeed(v: string | undefined): ReplaySpeed {
  if (v === undefined) return 1;
  try {
    return checkSpeed(v === 'max' ? 'max' : Number(v));
  } catch (e) {
    throw new SyncactError('CLI_USAGE', `demo: --speed ${(e as Error).message.replace(/^speed /, '')}`);
  }
}
