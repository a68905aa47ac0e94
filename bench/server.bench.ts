/**
 * What watching costs the pipeline (issue "The live server": with 50 clients at speed 20
 * the pipeline's per-TR time stays within 10% of running with none).
 *
 * The path users run — `syncact demo`: the demo session opened as the command opens it
 * (openDemo), its pipeline as the server's LiveSession (pipelineLiveSession, speed 20,
 * looping) and the server in a worker thread (serveDemo → startServerInWorker):
 * - server.demo_tr_0_clients_ms / server.demo_tr_50_clients_ms: the pipeline thread's busy
 *   time per TR (median over TRs 20…140 of a pass of the event-loop utilisation × wall
 *   time between the hand-overs of consecutive TRs): engine, state, frame thumbnail, maps for the watched views, and the hand-over
 *   to the server worker (a structured clone per TR). The first pass warms up; the figure
 *   alone is the second pass, the 50-client figure the same TRs of the third (the demo
 *   loops) with 50 WebSocket clients subscribed to every topic;
 * - server.demo_50_clients_overhead_ratio: the second over the first (the bound is
 *   1.10).
 *
 * A stand-in pipeline, to see the server apart from a particular session: a real engine
 * step per TR — sliding-window correlations for U = 64 units × F = 100 features, W = 30 —
 * fills a TrState (coupling r/q/significance, unit responses, features, CKA, a 64×64
 * thumbnail) and publishes it through a Subject to the real server, paced at 20 TR/s:
 * - server.publish_0_clients_ms / server.publish_50_clients_ms: median time of the
 *   synchronous hand-over of one TR to the in-thread server (Subject.next; the server only
 *   records the TR there and fans it out in the next event-loop turn);
 * - server.tr_0_clients_ms / server.tr_50_clients_ms: median whole stand-in TR on the
 *   pipeline's thread with the in-thread server (startServer): engine step + building the
 *   state + publish + the fan-out that follows (timed until the event loop comes back);
 * - server.fanout_50_clients_ms: the in-thread server's mean fan-out time per TR, 50 clients;
 * - server.worker_tr_0_clients_ms / server.worker_tr_50_clients_ms: the whole stand-in TR
 *   with the server in a worker thread (startServerInWorker, what `syncact demo` uses).
 * In every case the 50 clients run in a child process, so their reading does not share the
 * server's thread (as browsers would not).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Subject } from 'rxjs';
import { median, type BenchSuite } from './bench.ts';
import { startServer, type RunningServer } from '../server/net/server.ts';
import { startServerInWorker } from '../server/net/startServerInWorker.ts';
import type { LiveSession } from '../server/net/liveSession.ts';
import type { SessionInfo, TrState } from '../protocol/state.ts';
import { SlidingCorrelation } from '../server/engine/slidingCorrelation.ts';
import { createRng } from '../server/engine/random.ts';
import { openDemo, serveDemo } from '../server/commands/demo.ts';
import { pipelineLiveSession } from '../server/net/pipelineSession.ts';

const U = 64;
const F = 100;
const W = 30;
const CLIENTS = 50;
const TRS = 100;
const PERIOD_MS = 50;
const TOPICS = 'state,units,coupling,cka,frame,telemetry';
/** What the demo's clients subscribe to: every topic, the selected map included (as the dashboard). */
const DEMO_TOPICS = 'state,frame,units,coupling,map,annotations,cka,telemetry';
/** The demo TRs timed in each pass: after the first 20 (start-up), 120 TRs (6 s at speed 20). */
const DEMO_FROM = 20;
const DEMO_TRS = 120;
const DEMO_SPEED = 20;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function info(): SessionInfo {
  const dims: [number, number, number] = [16, 16, 16];
  return {
    version: 1,
    name: 'bench',
    tr: 1,
    trCount: 10_000,
    onset: 0,
    model: { id: 'bench', backend: 'none' },
    layers: [{ name: 'l1', channels: U / 2 }, { name: 'l2', channels: U / 2 }],
    units: Array.from({ length: U }, (_, i) => ({ index: i, layer: i < U / 2 ? 'l1' : 'l2', channel: i % (U / 2) })),
    features: Array.from({ length: F }, (_, i) => `f${i}`),
    grid: { dims, affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] },
    maskIndices: Uint32Array.from({ length: 4096 }, (_, i) => i),
    background: new Float32Array(4096),
    regressors: [],
  };
}

/** The stand-in pipeline: one engine step and a full TrState per call. */
function makePipeline() {
  const rng = createRng(5);
  const est = new SlidingCorrelation({ units: U, features: F, window: W });
  const units = new Float64Array(U);
  const feats = new Float64Array(F);
  const r = new Float64Array(U * F);
  const rgb = new Uint8Array(64 * 64 * 3);
  let tr = 0;
  return (): TrState => {
    for (let i = 0; i < U; i++) units[i] = 0.7 * units[i] + rng.normal();
    for (let f = 0; f < F; f++) feats[f] = 0.7 * feats[f] + rng.normal() + 0.3 * units[f % U];
    est.update(units, feats);
    est.correlations(r);
    const coupling = Float32Array.from(r);
    const q = Float32Array.from(coupling, (x) => 1 - Math.abs(x));
    rgb.fill(tr & 255);
    const s: TrState = {
      tr,
      time: tr,
      clock: { playing: true, speed: 20, loop: false },
      unitResponses: Float32Array.from(units),
      features: Float32Array.from(feats),
      coupling,
      couplingQ: q,
      significant: Uint8Array.from(q, (x) => (x < 0.05 ? 1 : 0)),
      cka: Float32Array.from([0.1, 0.2]),
      frame: { width: 64, height: 64, rgb: rgb.slice() },
      telemetry: { stageMs: {}, trsPerSecond: 20, lagMs: 0 },
    };
    tr++;
    return s;
  };
}

/** 50 ws clients in a child process; resolves once all are connected; `stop` returns what they got. */
async function startClients(url: string) {
  const code = `
    const { WebSocket } = require('ws');
    const n = ${CLIENTS}; let open = 0; const got = new Array(n).fill(0); const bytes = new Array(n).fill(0);
    const sockets = [];
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(process.argv[1]);
      ws.on('open', () => { if (++open === n) process.stdout.write('ready\\n'); });
      ws.on('message', (d, bin) => { got[i]++; bytes[i] += d.length; });
      ws.on('error', (e) => { process.stderr.write(String(e) + '\\n'); });
      sockets.push(ws);
    }
    process.stdin.on('data', () => {
      process.stdout.write(JSON.stringify({ messages: got, bytes }) + '\\n');
      for (const s of sockets) s.terminate();
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', code, url], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('bench clients did not answer')), 30_000);
      const check = () => {
        if (lines.length > 0) {
          clearTimeout(t);
          resolve(lines.shift()!);
        } else waiters.push(check);
      };
      check();
    });
  if ((await nextLine()) !== 'ready') throw new Error('bench clients failed to connect');
  return {
    async stop(): Promise<{ messages: number[]; bytes: number[] }> {
      child.stdin.write('report\n');
      return JSON.parse(await nextLine());
    },
  };
}

async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function fanOutTotals(text: string): { sum: number; count: number } {
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { sum: value('syncact_fanout_seconds_sum'), count: value('syncact_fanout_seconds_count') };
}

async function pacedRun(subject: Subject<TrState>, next: () => TrState): Promise<{ publish: number[]; total: number[] }> {
  const publish: number[] = [];
  const total: number[] = [];
  const start = performance.now();
  for (let i = 0; i < TRS; i++) {
    const wait = start + i * PERIOD_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    const s = next();
    const t1 = performance.now();
    subject.next(s);
    const t2 = performance.now();
    await new Promise((r) => setImmediate(r)); // runs after the fan-out the server scheduled
    const t3 = performance.now();
    publish.push(t2 - t1);
    total.push(t3 - t0);
  }
  return { publish, total };
}

interface Scenario {
  publish0: number;
  publish50: number;
  tr0: number;
  tr50: number;
  fanOut50: number;
}

/** One server (in-thread or in a worker): 100 TRs alone, then 100 TRs with 50 clients. */
async function scenario(
  start: (session: LiveSession) => Promise<RunningServer>,
  label: string,
  log: (m: string) => void,
): Promise<Scenario> {
  const states = new Subject<TrState>();
  const session: LiveSession = {
    info: info(),
    state$: states.asObservable(),
    annotations$: new Subject<never>().asObservable(),
    map: () => undefined,
    control: () => undefined,
  };
  const server = await start(session);
  try {
    const next = makePipeline();
    for (let i = 0; i < W; i++) states.next(next()); // fill the window before timing
    const alone = await pacedRun(states, next);
    const clients = await startClients(`${server.wsUrl}?topics=${TOPICS}`);
    const before = fanOutTotals(await metricsText(server.port));
    const crowded = await pacedRun(states, next);
    const after = fanOutTotals(await metricsText(server.port));
    await new Promise((r) => setTimeout(r, 500));
    const got = await clients.stop();
    const perClient = got.messages.reduce((a, b) => a + b, 0) / CLIENTS;
    const mb = got.bytes.reduce((a, b) => a + b, 0) / 2 ** 20;
    const result: Scenario = {
      publish0: median(alone.publish),
      publish50: median(crowded.publish),
      tr0: median(alone.total),
      tr50: median(crowded.total),
      fanOut50: ((after.sum - before.sum) * 1000) / (after.count - before.count),
    };
    log(
      `${label}: clients received ${perClient.toFixed(0)} messages each (${mb.toFixed(0)} MiB in all), ` +
        `${server.stats().dropped} updates coalesced; per TR: publish ${result.publish0.toFixed(3)} → ${result.publish50.toFixed(3)} ms, ` +
        `whole TR ${result.tr0.toFixed(2)} → ${result.tr50.toFixed(2)} ms (server fan-out ${result.fanOut50.toFixed(2)} ms)`,
    );
    return result;
  } finally {
    await server.close();
  }
}

/**
 * `syncact demo`'s path at speed 20: the pipeline thread's busy ms per TR over TRs
 * DEMO_FROM … DEMO_FROM + DEMO_TRS, alone, then over the same TRs of the next pass with 50
 * clients. A TR's busy time is the event-loop utilisation (performance.eventLoopUtilization)
 * between the hand-over of the TR before and its own: all the pipeline's thread did, whether
 * in the engine or for the server, and none of the worker's or the clients' time. The
 * median over the TRs is returned.
 */
async function demoScenario(staticDir: string, log: (m: string) => void): Promise<{ tr0: number; tr50: number }> {
  const session = await openDemo(log);
  try {
    const last = session.info.trCount - 1;
    const from = Math.min(DEMO_FROM, Math.max(0, last - DEMO_TRS));
    const to = Math.min(last, from + DEMO_TRS);
    let handed = 0;
    // A recorder takes the event-loop utilisation at the hand-over of each timed TR of one pass.
    const recorders: { pass: number; samples: EventLoopUtilization[]; resolve: (samples: EventLoopUtilization[]) => void }[] = [];
    let pass = 0;
    let previous = -1;
    const live = pipelineLiveSession(session, {
      speed: DEMO_SPEED,
      loop: true,
      onState: (s) => {
        if (s.tr < previous) pass++;
        previous = s.tr;
        handed++;
        for (let i = recorders.length - 1; i >= 0; i--) {
          const r = recorders[i];
          if (r.pass !== pass || s.tr < from || s.tr > to) continue;
          r.samples.push(performance.eventLoopUtilization());
          if (s.tr === to) {
            recorders.splice(i, 1);
            r.resolve(r.samples);
          }
        }
      },
    });
    const record = (p: number) => new Promise<EventLoopUtilization[]>((resolve) => recorders.push({ pass: p, samples: [], resolve }));
    const server = await serveDemo(live, { port: 0, staticDir });
    try {
      // Median of the per-TR busy times: on a shared machine, a TR whose thread was
      // preempted by another process reads as busy, and the median shrugs those off.
      const busy = async (p: number) => {
        const samples = await record(p);
        const perTr = samples.slice(1).map((e, i) => performance.eventLoopUtilization(e, samples[i]).active);
        const mean = (performance.eventLoopUtilization(samples[samples.length - 1], samples[0]).active) / (samples.length - 1);
        log(`  pass ${p}: busy per TR median ${median(perTr).toFixed(2)} ms, mean ${mean.toFixed(2)} ms over ${perTr.length} TRs`);
        return median(perTr);
      };
      // Pass 0 warms up (JIT, first reads of the feature cache and the movie): not timed.
      const tr0 = await busy(1);
      const clients = await startClients(`${server.wsUrl}?topics=${DEMO_TOPICS}`);
      // The same TRs of a later pass, once the clients are in (the next pass unless they took longer than it).
      const next = previous < from ? pass : pass + 1;
      const tr50 = await busy(next);
      const got = await clients.stop();
      const perClient = got.messages.reduce((x, y) => x + y, 0) / CLIENTS;
      const mb = got.bytes.reduce((x, y) => x + y, 0) / 2 ** 20;
      log(
        `syncact demo (${session.info.trCount} TRs, ${session.maskIndices.length} voxels, server in a worker) at ${DEMO_SPEED}×: ` +
          `pipeline thread busy ${tr0.toFixed(2)} ms per TR alone → ${tr50.toFixed(2)} ms with ${CLIENTS} clients ` +
          `(TRs ${from}…${to}, passes 1 and ${next}; clients received ${perClient.toFixed(0)} messages each, ${mb.toFixed(0)} MiB in all; ` +
          `${server.stats().dropped} updates coalesced; ${handed} TRs handed over)`,
      );
      return { tr0, tr50 };
    } finally {
      live.stop();
      await server.close();
    }
  } finally {
    await session.close();
  }
}

const DEMO_FIGURES = ['server.demo_tr_0_clients_ms', 'server.demo_tr_50_clients_ms', 'server.demo_50_clients_overhead_ratio'];
const IN_THREAD_FIGURES = [
  'server.publish_0_clients_ms',
  'server.publish_50_clients_ms',
  'server.tr_0_clients_ms',
  'server.tr_50_clients_ms',
  'server.fanout_50_clients_ms',
];
const WORKER_FIGURES = ['server.worker_tr_0_clients_ms', 'server.worker_tr_50_clients_ms'];

const suite: BenchSuite = {
  title: `live server: ${CLIENTS} clients at 20 TR/s vs none (U = ${U}, F = ${F})`,
  figures: [...DEMO_FIGURES, ...IN_THREAD_FIGURES, ...WORKER_FIGURES],
  async run(ctx) {
    const staticDir = join(tmpdir(), 'syncact-no-dashboard');
    const out: Record<string, number> = {};
    if (DEMO_FIGURES.some((f) => ctx.wants(f))) {
      const r = await demoScenario(staticDir, ctx.log);
      out['server.demo_tr_0_clients_ms'] = r.tr0;
      out['server.demo_tr_50_clients_ms'] = r.tr50;
      out['server.demo_50_clients_overhead_ratio'] = r.tr50 / r.tr0;
    }
    if (IN_THREAD_FIGURES.some((f) => ctx.wants(f))) {
      const r = await scenario((session) => startServer({ session, staticDir }), 'in-thread', ctx.log);
      Object.assign(out, {
        'server.publish_0_clients_ms': r.publish0,
        'server.publish_50_clients_ms': r.publish50,
        'server.tr_0_clients_ms': r.tr0,
        'server.tr_50_clients_ms': r.tr50,
        'server.fanout_50_clients_ms': r.fanOut50,
      });
    }
    if (WORKER_FIGURES.some((f) => ctx.wants(f))) {
      const r = await scenario((session) => startServerInWorker({ session, staticDir }), 'worker', ctx.log);
      out['server.worker_tr_0_clients_ms'] = r.tr0;
      out['server.worker_tr_50_clients_ms'] = r.tr50;
    }
    return out;
  },
};

export default suite;
