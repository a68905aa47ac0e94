/**
 * The live server on its own thread, so that watching costs the pipeline's thread only a
 * structured clone of each TR (and of the watched maps), whatever the number of clients:
 * encoding, fan-out and the kernel copies of every client's bytes happen in the worker.
 * Same options and result as startServer; `stats()` returns the worker's latest report
 * (refreshed every `statsMs`).
 *
 * The worker starts from a few lines of JavaScript that register tsx (as the GLM workers
 * do: `--import tsx` does not reach worker threads on Node 20) and import serverWorker.ts.
 * A worker that fails to start is SERVER_WORKER_FAILED (or SERVER_LISTEN_FAILED); one
 * that dies later is reported on stderr once, and the pipeline is not disturbed.
 */
import { Worker } from 'node:worker_threads';
import type { Subscription } from 'rxjs';
import { SyncactError, isSyncactError } from '../errors.ts';
import type { BrainMap } from '../../protocol/state.ts';
import type { MapView } from './liveSession.ts';
import type { RunningServer, ServerOptions, ServerStats } from './server.ts';
import type { ServerWorkerData } from './serverWorker.ts';
import type { FromWorker, PlainError, ToWorker } from './workerMessages.ts';

export interface WorkerServerOptions extends ServerOptions {
  /** How often `stats()` is refreshed from the worker, ms (default 200). */
  statsMs?: number;
}

/** How long close() waits for the worker to close its sockets before terminating it. */
const CLOSE_TIMEOUT_MS = 3000;

const plain = (e: unknown): PlainError =>
  isSyncactError(e) ? { code: e.code, message: e.message } : { code: 'SESSION_FAULT', message: e instanceof Error ? e.message : String(e) };

export async function startServerInWorker(options: WorkerServerOptions): Promise<RunningServer> {
  const { session, statsMs = 200, ...rest } = options;
  const data: ServerWorkerData = { options: rest, info: session.info, statsMs };
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./serverWorker.ts', import.meta.url).href;
  const boot = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(api)})
      .then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })
      .catch((e) => parentPort.postMessage({ type: 'startFailed', error: { code: 'SERVER_WORKER_FAILED', message: 'worker did not start: ' + (e && e.stack || e) } }));`;
  const worker = new Worker(boot, { eval: true, workerData: data });
  const post = (m: ToWorker) => worker.postMessage(m);

  let views: MapView[] = [];
  let lastStats: ServerStats = { currentTr: -1, trsProcessed: 0, dropped: 0, clients: [] };
  let started = false;
  let closed = false;
  let onClosed: (() => void) | undefined;
  const subscriptions: Subscription[] = [];

  const mapsFor = (vs: MapView[]): BrainMap[] =>
    vs.flatMap((v) => {
      const m = session.map(v.kind, v.index);
      return m ? [m] : [];
    });

  const ready = new Promise<FromWorker & { type: 'ready' }>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'ready':
          started = true;
          resolve(m);
          return;
        case 'startFailed':
          reject(new SyncactError(m.error.code, m.error.message));
          void worker.terminate();
          return;
        case 'watch':
          views = m.views;
          try {
            const maps = mapsFor(views);
            if (maps.length > 0) post({ type: 'maps', maps });
          } catch (e) {
            post({ type: 'fault', error: plain(e) });
          }
          return;
        case 'control':
          Promise.resolve()
            .then(() => session.control(m.command))
            .then(
              () => post({ type: 'controlResult', id: m.id }),
              (e: unknown) => post({ type: 'controlResult', id: m.id, error: plain(e) }),
            );
          return;
        case 'stats':
          lastStats = m.stats;
          return;
        case 'closed':
          onClosed?.();
          return;
      }
    });
    worker.on('error', (e) => {
      if (!started) reject(new SyncactError('SERVER_WORKER_FAILED', `live server worker failed: ${e.message}`));
      else process.stderr.write(`SERVER_WORKER_FAILED: live server worker failed: ${e.message}\n`);
    });
    worker.on('exit', (code) => {
      onClosed?.();
      if (!started) reject(new SyncactError('SERVER_WORKER_FAILED', `live server worker exited with code ${code} before listening`));
      else if (!closed) process.stderr.write(`SERVER_WORKER_FAILED: live server worker exited with code ${code}\n`);
    });
  });
  const info = await ready;

  subscriptions.push(
    session.state$.subscribe({
      next: (state) => {
        let maps: BrainMap[] = [];
        try {
          maps = mapsFor(views);
        } catch (e) {
          post({ type: 'fault', error: plain(e) });
        }
        post({ type: 'tr', state, maps });
      },
      error: (e) => post({ type: 'failed', error: plain(e) }),
      complete: () => post({ type: 'end' }),
    }),
    session.annotations$.subscribe({
      next: (rows) => post({ type: 'annotations', rows }),
      error: (e) => post({ type: 'fault', error: plain(e) }),
    }),
  );
  if (session.faults$) {
    subscriptions.push(session.faults$.subscribe({ next: (e) => post({ type: 'fault', error: plain(e) }) }));
  }

  let closing: Promise<void> | undefined;
  return {
    url: info.url,
    wsUrl: info.wsUrl,
    host: info.host,
    port: info.port,
    token: info.token,
    stats: () => lastStats,
    close() {
      closing ??= (async () => {
        closed = true;
        for (const s of subscriptions) s.unsubscribe();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
          onClosed = () => {
            clearTimeout(timer);
            resolve();
          };
          post({ type: 'close' });
        });
        await worker.terminate();
      })();
      return closing;
    },
  };
}
