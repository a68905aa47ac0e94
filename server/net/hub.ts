/**
 * The fan-out between one live session and its clients. It subscribes once to the
 * session's streams, keeps the latest update of every topic (the snapshot a (re)connecting
 * client gets), numbers each topic's updates, and offers every new update to the clients
 * subscribed to its topic. Encoding happens once per update, on first send, and the bytes
 * are shared by all clients.
 *
 * The pipeline's call only records the TR (a few microseconds whatever the number of
 * clients); the fan-out runs in the next turn of the event loop (setImmediate), TR by TR
 * in order, with each client's socket corked so one TR costs one write per client. TRs
 * published faster than the event loop turns wait in a queue; a burst of MAX_QUEUED_TRS
 * is fanned out at once inside the pipeline's call, so the queue stays bounded and a fast
 * client still gets every TR (slow ones are coalesced per topic as always).
 *
 * Nothing the hub does can throw into the pipeline: a failure while publishing becomes a
 * `fault` sent to clients, and the session keeps running.
 */
import type { Subscription } from 'rxjs';
import type { WebSocket } from 'ws';
import { isSyncactError, type ErrorCode } from '../errors.ts';
import type { ControlCommand, MapSpec } from '../../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../../protocol/version.ts';
import { TOPICS, type Topic } from '../../protocol/topics.ts';
import type { AnnotationRow, TrState } from '../../protocol/state.ts';
import {
  encodeAnnotationsTopic,
  encodeCkaTopic,
  encodeCouplingTopic,
  encodeFrameTopic,
  encodeMapTopic,
  encodeSessionArrays,
  encodeStateTopic,
  encodeTelemetryTopic,
  encodeUnitsTopic,
  type Wire,
} from '../../protocol/topicCodec.ts';
import { parseTopicsQuery } from '../../protocol/validate.ts';
import { Connection, type ConnectionContext } from './connection.ts';
import type { LiveSession, MapView } from './liveSession.ts';
import type { ServerMetrics } from './metrics.ts';
import type { RateLimitOptions } from './rateLimit.ts';
import { lazyUpdate, type Update } from './update.ts';

export interface HubOptions {
  token: string;
  metrics: ServerMetrics;
  highWaterBytes: number;
  rateLimit: RateLimitOptions;
  heartbeatMs: number;
  /** The initial selection (the map clients see by default); unit 0 when left out. */
  selection?: { target: 'unit' | 'network'; index: number };
}

export interface Fault {
  code: ErrorCode;
  message: string;
}

/** TRs held for the fan-out while the pipeline publishes without yielding to the event loop. */
export const MAX_QUEUED_TRS = 64;

/** One TR's updates (or a session message) waiting for the fan-out. */
type Batch =
  | { kind: 'tr'; tr: number; updates: Update[]; mapSeq: number; maps: Map<string, Update> }
  | { kind: 'session'; tr: number; message: { type: 'fault'; code: ErrorCode; message: string } | { type: 'end' } };

export class Hub {
  readonly connections = new Set<Connection>();
  private readonly latest = new Map<Topic, Update>();
  private readonly seqs = Object.fromEntries(TOPICS.map((t) => [t, -1])) as Record<Topic, number>;
  /** The latest TR's batch: its map updates (one per distinct view) serve as snapshots too. */
  private latestBatch: Extract<Batch, { kind: 'tr' }> | undefined;
  private queue: Batch[] = [];
  private fanOutScheduled: ReturnType<typeof setImmediate> | undefined;
  private tr = -1;
  selection: { target: 'unit' | 'network'; index: number };
  /** Set when the state stream errored: the session is dead (new clients are told too). */
  failed: Fault | null = null;
  /** The latest fault of any kind (a dead stream, a reported problem, a map that failed). */
  lastFault: Fault | null = null;
  ended = false;
  private subscriptions: Subscription[] = [];
  private readonly ctx: ConnectionContext;
  /** The watched map views last told to the session (see LiveSession.watch). */
  private watchedKey = '';
  /** The session's arrays, encoded once (the background alone can be megabytes). */
  private sessionArrays: Wire[] | undefined;

  constructor(
    private readonly session: LiveSession,
    private readonly options: HubOptions,
  ) {
    this.selection = { ...(options.selection ?? { target: 'unit', index: 0 }) };
    this.ctx = {
      info: session.info,
      token: options.token,
      metrics: options.metrics,
      highWaterBytes: options.highWaterBytes,
      rateLimit: options.rateLimit,
      currentTr: () => this.tr,
      snapshot: (topic, spec) => {
        if (topic !== 'map') return this.latest.get(topic);
        return this.latestBatch ? this.mapUpdate(this.latestBatch, spec) : undefined;
      },
      control: (command) => this.control(command),
      viewsChanged: () => this.viewsChanged(),
    };
  }

  get currentTr(): number {
    return this.tr;
  }

  start(): void {
    this.subscriptions.push(
      this.session.state$.subscribe({
        next: (s) => this.guard(() => this.onState(s)),
        error: (e) => {
          this.failed = this.onFault(e);
        },
        complete: () => this.onEnd(),
      }),
      this.session.annotations$.subscribe({
        next: (rows) => this.guard(() => this.onAnnotations(rows)),
        error: (e) => this.onFault(e),
      }),
    );
    if (this.session.mapsChanged$) {
      this.subscriptions.push(this.session.mapsChanged$.subscribe({ next: () => this.guard(() => this.resendMaps(() => true)) }));
    }
    if (this.session.faults$) {
      this.subscriptions.push(this.session.faults$.subscribe({ next: (e) => this.onFault(e), error: (e) => this.onFault(e) }));
    }
  }

  stop(): void {
    for (const s of this.subscriptions) s.unsubscribe();
    this.subscriptions = [];
    if (this.fanOutScheduled) clearImmediate(this.fanOutScheduled);
    this.fanOutScheduled = undefined;
    this.queue = [];
  }

  /** Registers a new client: hello, the session arrays, then the snapshot of its topics. */
  attach(ws: WebSocket, options: { authorized: boolean; topicsQuery: string | null }): Connection {
    const conn = new Connection(ws, this.ctx, options.authorized);
    this.connections.add(conn);
    this.options.metrics.clients = this.connections.size;
    this.options.metrics.connectionsTotal++;
    ws.on('message', (data: Buffer, isBinary: boolean) => conn.receive(data, isBinary));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('close', () => {
      this.detach(conn);
      this.viewsChanged();
    });
    const { topics, unknown } = parseTopicsQuery(options.topicsQuery);
    const { maskIndices, background, ...rest } = this.session.info;
    conn.sendSession({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      session: {
        ...rest,
        arrays: { maskIndices: { part: 0, length: maskIndices.length }, background: { part: 1, length: background.length } },
      },
      topics: [...TOPICS],
      subscribed: topics,
      control: options.authorized,
      selection: { ...this.selection },
      heartbeatMs: this.options.heartbeatMs,
    });
    this.sessionArrays ??= encodeSessionArrays(this.session.info, 0, 0);
    conn.sendRaw(this.sessionArrays);
    if (unknown.length > 0) {
      const names = unknown.slice(0, 5).map((n) => JSON.stringify(n.slice(0, 40)));
      conn.sendError('PROTOCOL_INVALID_MESSAGE', `?topics= names unknown topics ${names.join(', ')} (topics: ${TOPICS.join(', ')})`);
    }
    if (this.failed) conn.sendSession({ type: 'fault', ...this.failed });
    conn.subscribe(topics);
    if (this.ended) conn.sendSession({ type: 'end' });
    this.viewsChanged();
    return conn;
  }

  private detach(conn: Connection): void {
    conn.pending.clear();
    this.connections.delete(conn);
    this.options.metrics.clients = this.connections.size;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.onFault(e);
    }
  }

  private nextSeq(topic: Topic): number {
    this.seqs[topic] = (this.seqs[topic] + 1) >>> 0;
    return this.seqs[topic];
  }

  private encodeSafely(encode: () => ReturnType<Update['wires']>): ReturnType<Update['wires']> {
    try {
      return encode();
    } catch (e) {
      this.onFault(e);
      return null;
    }
  }

  /** A new numbered update of a shared topic; it becomes the topic's snapshot. */
  private update(topic: Topic, encode: (seq: number) => ReturnType<Update['wires']>): Update {
    const seq = this.nextSeq(topic);
    const u = lazyUpdate(topic, this.tr, seq, () => this.encodeSafely(() => encode(seq)));
    this.latest.set(topic, u);
    return u;
  }

  /** Called by the pipeline for each TR: records it and schedules the fan-out. */
  private onState(s: TrState): void {
    this.tr = s.tr;
    const metrics = this.options.metrics;
    metrics.currentTr = s.tr;
    metrics.onTelemetry(s.telemetry);
    const updates = [this.update('state', (seq) => encodeStateTopic(s, seq))];
    // a TR without a movie frame publishes nothing on `frame` (its seq does not advance)
    if (s.frame) updates.push(this.update('frame', (seq) => encodeFrameTopic(s, seq)));
    updates.push(
      this.update('units', (seq) => encodeUnitsTopic(s, seq)),
      this.update('coupling', (seq) => encodeCouplingTopic(s, seq)),
      this.update('cka', (seq) => encodeCkaTopic(s, seq)),
      this.update('telemetry', (seq) => encodeTelemetryTopic(s, seq, { clients: this.connections.size, dropped: metrics.dropped })),
    );
    this.latestBatch = { kind: 'tr', tr: s.tr, updates, mapSeq: this.nextSeq('map'), maps: new Map() };
    this.enqueue(this.latestBatch);
  }

  private onAnnotations(rows: AnnotationRow[]): void {
    const tr = Math.max(this.tr, 0);
    const u = this.update('annotations', (seq) => encodeAnnotationsTopic(rows, tr, seq));
    this.enqueue({ kind: 'tr', tr, updates: [u], mapSeq: -1, maps: new Map() });
  }

  private enqueue(batch: Batch): void {
    this.queue.push(batch);
    if (this.queue.length >= MAX_QUEUED_TRS) {
      // a burst that never yields: fan out now rather than hold more TRs or drop them
      this.guard(() => this.fanOut());
      return;
    }
    this.fanOutScheduled ??= setImmediate(() => {
      this.fanOutScheduled = undefined;
      this.guard(() => this.fanOut());
    });
  }

  /** Offers each queued TR, in order, to its subscribers: one corked write per client per TR. */
  private fanOut(): void {
    const t0 = performance.now();
    const batches = this.queue;
    this.queue = [];
    try {
      this.fanOutBatches(batches);
    } finally {
      this.options.metrics.onFanOut(performance.now() - t0, batches.length);
    }
  }

  private fanOutBatches(batches: Batch[]): void {
    for (const b of batches) {
      if (b.kind === 'session') {
        for (const c of this.connections) c.sendSession(b.message, b.tr);
        continue;
      }
      for (const c of this.connections) {
        c.cork();
        try {
          for (const u of b.updates) if (c.subscriptions.has(u.topic)) c.put(u);
          if (b.mapSeq >= 0 && c.subscriptions.has('map')) {
            const m = this.mapUpdate(b, c.mapSpec);
            if (m) c.put(m);
          }
          c.flush();
        } finally {
          c.uncork();
        }
      }
    }
  }

  /** The map update of a client's view at a TR: one per distinct view, shared, encoded lazily. */
  private mapUpdate(batch: Extract<Batch, { kind: 'tr' }>, spec: MapSpec): Update | undefined {
    if (batch.mapSeq < 0) return undefined;
    const { kind, index } = this.resolveView(spec);
    const slices = spec.slices ?? null;
    const key = JSON.stringify([kind, index, slices]);
    let u = batch.maps.get(key);
    if (!u) {
      const { tr, mapSeq: seq } = batch;
      u = lazyUpdate('map', tr, seq, () =>
        this.encodeSafely(() => {
          const map = this.session.map(kind, index);
          return map ? encodeMapTopic(this.session.info, map, slices, tr, seq) : null;
        }),
      );
      batch.maps.set(key, u);
    }
    return u;
  }

  private control(command: ControlCommand): void | Promise<void> {
    const done = this.session.control(command);
    if (command.op !== 'select') return done;
    const apply = () => {
      this.selection = { target: command.target, index: command.index };
      this.viewsChanged();
      // clients whose map follows the selection see the new one now, even while paused
      this.resendMaps((c) => c.mapSpec.kind === undefined);
    };
    if (done instanceof Promise) return done.then(apply);
    apply();
  }

  /** Offers the current TR's map again to the map subscribers `which` selects. */
  private resendMaps(which: (c: Connection) => boolean): void {
    const batch = this.latestBatch;
    if (!batch) return;
    batch.maps = new Map();
    for (const c of this.connections) {
      if (!c.subscriptions.has('map') || !which(c)) continue;
      const u = this.mapUpdate(batch, c.mapSpec);
      if (!u) continue;
      c.forget('map');
      c.offer(u);
    }
  }

  /** The map each map subscriber watches (kind and index, after the selection default). */
  private watchedViews(): MapView[] {
    const views = new Map<string, MapView>();
    for (const c of this.connections) {
      if (!c.subscriptions.has('map')) continue;
      const v = this.resolveView(c.mapSpec);
      views.set(`${v.kind}:${v.index}`, v);
    }
    return [...views.values()];
  }

  private viewsChanged(): void {
    if (!this.session.watch) return;
    const views = this.watchedViews();
    const key = views.map((v) => `${v.kind}:${v.index}`).sort().join(',');
    if (key === this.watchedKey) return;
    this.watchedKey = key;
    this.session.watch(views);
  }

  private resolveView(spec: MapSpec): MapView {
    const kind = spec.kind ?? (this.selection.target === 'network' ? 'network' : 'unit-t');
    const index = spec.kind !== undefined && spec.index !== undefined ? spec.index : this.selection.index;
    return { kind, index };
  }

  /** Reports a fault to every client (in order with the TRs before it) and returns it. */
  private onFault(e: unknown): Fault {
    this.options.metrics.faults++;
    const fault: Fault = isSyncactError(e)
      ? { code: e.code, message: e.message }
      : { code: 'SESSION_FAULT', message: e instanceof Error ? e.message : String(e) };
    this.lastFault = fault;
    this.enqueue({ kind: 'session', tr: this.tr, message: { type: 'fault', ...fault } });
    return fault;
  }

  private onEnd(): void {
    this.ended = true;
    this.enqueue({ kind: 'session', tr: this.tr, message: { type: 'end' } });
  }
}
