/**
 * The fan-out between one live session and its clients. It subscribes once to the
 * session's streams, keeps the latest update of every topic (the snapshot a (re)connecting
 * client gets), numbers each topic's updates, and offers every new update to the clients
 * subscribed to its topic. Encoding happens once per update, on first send, and the bytes
 * are shared by all clients.
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
} from '../../protocol/topicCodec.ts';
import { Connection, type ConnectionContext } from './connection.ts';
import type { LiveSession } from './liveSession.ts';
import type { ServerMetrics } from './metrics.ts';
import type { RateLimitOptions } from './rateLimit.ts';
import { lazyUpdate, type Update } from './update.ts';

export interface HubOptions {
  token: string;
  metrics: ServerMetrics;
  highWaterBytes: number;
  rateLimit: RateLimitOptions;
  heartbeatMs: number;
}

export interface Fault {
  code: ErrorCode;
  message: string;
}

export class Hub {
  readonly connections = new Set<Connection>();
  private readonly latest = new Map<Topic, Update>();
  private readonly seqs = Object.fromEntries(TOPICS.map((t) => [t, -1])) as Record<Topic, number>;
  /** Map updates of the current TR, one per distinct view, shared by clients that watch it. */
  private mapsThisTr = new Map<string, Update>();
  private tr = -1;
  selection: { target: 'unit' | 'network'; index: number } = { target: 'unit', index: 0 };
  fault: Fault | null = null;
  ended = false;
  private subscriptions: Subscription[] = [];
  private readonly ctx: ConnectionContext;

  constructor(
    private readonly session: LiveSession,
    private readonly options: HubOptions,
  ) {
    this.ctx = {
      info: session.info,
      token: options.token,
      metrics: options.metrics,
      highWaterBytes: options.highWaterBytes,
      rateLimit: options.rateLimit,
      currentTr: () => this.tr,
      snapshot: (topic, spec) => (topic === 'map' ? this.mapUpdate(spec) : this.latest.get(topic)),
      control: (command) => this.control(command),
    };
  }

  get currentTr(): number {
    return this.tr;
  }

  start(): void {
    this.subscriptions.push(
      this.session.state$.subscribe({
        next: (s) => this.guard(() => this.onState(s)),
        error: (e) => this.onFault(e),
        complete: () => this.onEnd(),
      }),
      this.session.annotations$.subscribe({
        next: (rows) => this.guard(() => this.onAnnotations(rows)),
        error: (e) => this.onFault(e),
      }),
    );
  }

  stop(): void {
    for (const s of this.subscriptions) s.unsubscribe();
    this.subscriptions = [];
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
    ws.on('close', () => this.detach(conn));
    const topics = conn.subscribeFromQuery(options.topicsQuery);
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
    conn.sendRaw(encodeSessionArrays(this.session.info, this.tr, 0));
    if (this.fault) conn.sendSession({ type: 'fault', ...this.fault });
    conn.subscribe(topics);
    if (this.ended) conn.sendSession({ type: 'end' });
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

  private onState(s: TrState): void {
    this.tr = s.tr;
    const metrics = this.options.metrics;
    metrics.currentTr = s.tr;
    metrics.onTelemetry(s.telemetry);
    this.publishWithSeq('state', (seq) => encodeStateTopic(s, seq));
    // a TR without a movie frame publishes nothing on `frame` (its seq does not advance)
    if (s.frame) this.publishWithSeq('frame', (seq) => encodeFrameTopic(s, seq));
    this.publishWithSeq('units', (seq) => encodeUnitsTopic(s, seq));
    this.publishWithSeq('coupling', (seq) => encodeCouplingTopic(s, seq));
    this.publishWithSeq('cka', (seq) => encodeCkaTopic(s, seq));
    this.publishWithSeq('telemetry', (seq) =>
      encodeTelemetryTopic(s, seq, { clients: this.connections.size, dropped: metrics.dropped }),
    );
    // maps: one update per distinct view this TR, each client its own view
    this.nextSeq('map');
    this.mapsThisTr = new Map();
    for (const c of this.connections) {
      if (!c.subscriptions.has('map')) continue;
      const u = this.mapUpdate(c.mapSpec);
      if (u) c.offer(u);
    }
  }

  private publishWithSeq(topic: Topic, encode: (seq: number) => ReturnType<Update['wires']>): void {
    const seq = this.nextSeq(topic);
    const update = lazyUpdate(topic, this.tr, seq, () => this.encodeSafely(() => encode(seq)));
    this.latest.set(topic, update);
    for (const c of this.connections) if (c.subscriptions.has(topic)) c.offer(update);
  }

  private onAnnotations(rows: AnnotationRow[]): void {
    this.publishWithSeq('annotations', (seq) => encodeAnnotationsTopic(rows, Math.max(this.tr, 0), seq));
  }

  /** The map update for a client's view at the current TR (undefined before the first TR). */
  private mapUpdate(spec: MapSpec): Update | undefined {
    if (this.tr < 0) return undefined;
    const kind = spec.kind ?? (this.selection.target === 'network' ? 'network' : 'unit-t');
    const index = spec.kind !== undefined && spec.index !== undefined ? spec.index : this.selection.index;
    const slices = spec.slices ?? null;
    const key = JSON.stringify([kind, index, slices]);
    let u = this.mapsThisTr.get(key);
    if (!u) {
      const tr = this.tr;
      const seq = Math.max(this.seqs.map, 0);
      u = lazyUpdate('map', tr, seq, () =>
        this.encodeSafely(() => {
          const map = this.session.map(kind, index);
          return map ? encodeMapTopic(this.session.info, map, slices, tr, seq) : null;
        }),
      );
      this.mapsThisTr.set(key, u);
    }
    return u;
  }

  private control(command: ControlCommand): void {
    this.session.control(command);
    if (command.op === 'select') {
      this.selection = { target: command.target, index: command.index };
      this.mapsThisTr = new Map();
    }
  }

  private onFault(e: unknown): void {
    this.options.metrics.faults++;
    this.fault = isSyncactError(e)
      ? { code: e.code, message: e.message }
      : { code: 'SESSION_FAULT', message: e instanceof Error ? e.message : String(e) };
    for (const c of this.connections) c.sendSession({ type: 'fault', ...this.fault });
  }

  private onEnd(): void {
    this.ended = true;
    for (const c of this.connections) c.sendSession({ type: 'end' });
  }
}
