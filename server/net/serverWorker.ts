/**
 * The live server inside a worker thread (started by startServerInWorker.ts). It runs the
 * ordinary startServer against a WorkerSession: a LiveSession whose streams are fed by
 * messages from the pipeline's thread, whose maps are the ones that thread sends for the
 * views clients watch, and whose control commands are forwarded and answered
 * asynchronously. All encoding, fan-out and socket writes happen on this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Subject } from 'rxjs';
import { SyncactError, isSyncactError } from '../errors.ts';
import type { ControlCommand, MapKind } from '../../protocol/messages.ts';
import type { AnnotationRow, BrainMap, SessionInfo, TrState } from '../../protocol/state.ts';
import type { LiveSession, MapView } from './liveSession.ts';
import { startServer, type RunningServer, type ServerOptions } from './server.ts';
import type { FromWorker, PlainError, ToWorker } from './workerMessages.ts';

export interface ServerWorkerData {
  options: Omit<ServerOptions, 'session'>;
  info: SessionInfo;
  /** How often the worker reports its stats to the pipeline's thread. */
  statsMs: number;
}

const toError = (e: PlainError) => new SyncactError(e.code, e.message);
const key = (kind: MapKind, index: number) => `${kind}:${index}`;

class WorkerSession implements LiveSession {
  readonly states = new Subject<TrState>();
  readonly annotationRows = new Subject<AnnotationRow[]>();
  readonly faultEvents = new Subject<SyncactError>();
  readonly mapEvents = new Subject<void>();
  readonly state$ = this.states.asObservable();
  readonly annotations$ = this.annotationRows.asObservable();
  readonly faults$ = this.faultEvents.asObservable();
  readonly mapsChanged$ = this.mapEvents.asObservable();
  private readonly maps = new Map<string, BrainMap>();
  private readonly pendingControl = new Map<number, { resolve(): void; reject(e: Error): void }>();
  private nextControlId = 1;

  constructor(
    readonly info: SessionInfo,
    private readonly post: (m: FromWorker) => void,
  ) {}

  map(kind: MapKind, index: number): BrainMap | undefined {
    return this.maps.get(key(kind, index));
  }

  storeMaps(maps: BrainMap[]): void {
    for (const m of maps) this.maps.set(key(m.kind, m.index), m);
  }

  watch(views: MapView[]): void {
    // forget maps nobody watches, so memory follows the watched set
    const keep = new Set(views.map((v) => key(v.kind, v.index)));
    for (const k of this.maps.keys()) if (!keep.has(k)) this.maps.delete(k);
    this.post({ type: 'watch', views });
  }

  control(command: ControlCommand): Promise<void> {
    const id = this.nextControlId++;
    return new Promise((resolve, reject) => {
      this.pendingControl.set(id, { resolve, reject });
      this.post({ type: 'control', id, command });
    });
  }

  controlResult(id: number, error?: PlainError): void {
    const p = this.pendingControl.get(id);
    if (!p) return;
    this.pendingControl.delete(id);
    if (error) p.reject(toError(error));
    else p.resolve();
  }
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('serverWorker.ts must run in a worker thread');
  const data = workerData as ServerWorkerData;
  const post = (m: FromWorker) => port.postMessage(m);
  const session = new WorkerSession(data.info, post);
  let server: RunningServer;
  try {
    server = await startServer({ ...data.options, session });
  } catch (e) {
    post({ type: 'startFailed', error: isSyncactError(e) ? { code: e.code, message: e.message } : { code: 'SERVER_WORKER_FAILED', message: String(e) } });
    return;
  }
  const statsTimer = setInterval(() => post({ type: 'stats', stats: server.stats() }), data.statsMs);
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'tr':
        session.storeMaps(m.maps);
        session.states.next(m.state);
        return;
      case 'maps':
        session.storeMaps(m.maps);
        session.mapEvents.next();
        return;
      case 'annotations':
        session.annotationRows.next(m.rows);
        return;
      case 'fault':
        session.faultEvents.next(toError(m.error));
        return;
      case 'failed':
        session.states.error(toError(m.error));
        return;
      case 'end':
        session.states.complete();
        return;
      case 'controlResult':
        session.controlResult(m.id, m.error);
        return;
      case 'close':
        clearInterval(statsTimer);
        void server.close().then(() => {
          post({ type: 'closed' });
          port.close();
        });
        return;
    }
  });
  post({ type: 'ready', url: server.url, wsUrl: server.wsUrl, host: server.host, port: server.port, token: server.token });
}

void main();
