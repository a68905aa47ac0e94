/**
 * One WebSocket client: its subscriptions, its pending slot per topic, its messages in.
 *
 * Backpressure: every topic update goes into the client's pending slot for that topic
 * (replacing, and counting as dropped, an older one not yet sent), then `flush` sends
 * pending updates while `ws.bufferedAmount` is under the high-water mark. Each send's
 * completion callback flushes again, so a slow client is served as fast as it reads,
 * always with the latest state, and the server holds at most one update per topic for it
 * (plus what already sits in its socket buffer, at most high water + one update).
 * Nothing here ever waits, so the pipeline never waits on a client.
 */
import { WebSocket } from 'ws';
import { SyncactError, isSyncactError, type ErrorCode } from '../errors.ts';
import { MESSAGES, type ClientMessage, type ControlCommand, type MapSpec, type ServerMessage } from '../../protocol/messages.ts';
import { parseClientMessage, validateMapSpec } from '../../protocol/validate.ts';
import { sliceOutOfRange } from '../../protocol/mapLayout.ts';
import type { Topic } from '../../protocol/topics.ts';
import type { Wire } from '../../protocol/topicCodec.ts';
import type { SessionInfo } from '../../protocol/state.ts';
import type { ServerMetrics } from './metrics.ts';
import { RateLimiter, type RateLimitOptions } from './rateLimit.ts';
import { tokenMatches } from './token.ts';
import type { Update } from './update.ts';

/** What a connection needs from the hub (kept narrow so each side is testable). */
export interface ConnectionContext {
  info: SessionInfo;
  token: string;
  metrics: ServerMetrics;
  highWaterBytes: number;
  rateLimit: RateLimitOptions;
  /** The session's latest TR (-1 before the first). */
  currentTr(): number;
  /** The latest update of a shared topic, or the map update for this spec. */
  snapshot(topic: Topic, spec: MapSpec): Update | undefined;
  /** Forwards a validated, authorised control command to the session (throws or rejects to refuse). */
  control(command: ControlCommand): void | Promise<void>;
  /** Called when this client's subscriptions or map view changed. */
  viewsChanged(): void;
}

/** A session message before its stamp (`v`, `tr`, `seq` are filled in on send). */
type Unstamped<M> = M extends ServerMessage ? Omit<M, 'v' | 'tr' | 'seq'> : never;

/** Session messages (replies, faults) are dropped rather than queued once the socket buffer holds this many times the high-water mark. */
const SESSION_MESSAGE_LIMIT_FACTOR = 4;

let nextId = 1;

export class Connection {
  readonly id = nextId++;
  readonly subscriptions = new Set<Topic>();
  mapSpec: MapSpec = {};
  /** At most one update per topic: the coalescing slots. */
  readonly pending = new Map<Topic, Update>();
  dropped = 0;
  /** The seq of the newest update taken per topic. */
  private readonly lastSeq = new Map<Topic, number>();
  /** Heartbeat: cleared at each ping, set by a pong or any message. */
  alive = true;
  private sessionSeq = 0;
  private readonly limiter: RateLimiter;
  private lastRateLimitReply = -Infinity;
  private readonly onSent = (err?: Error | null) => {
    if (!err && this.pending.size > 0) this.flush();
  };

  constructor(
    readonly ws: WebSocket,
    private readonly ctx: ConnectionContext,
    public authorized: boolean,
  ) {
    this.limiter = new RateLimiter(ctx.rateLimit);
  }

  /**
   * Puts an update in its topic's slot, replacing (and counting as dropped) an unsent older
   * one. An update not newer than the last one taken for its topic is ignored, so the
   * snapshot given at (re)subscription is never followed by an older TR.
   */
  put(update: Update): void {
    const last = this.lastSeq.get(update.topic);
    if (last !== undefined && update.seq <= last) return;
    this.lastSeq.set(update.topic, update.seq);
    if (this.pending.has(update.topic)) {
      this.dropped++;
      this.ctx.metrics.dropped++;
    }
    this.pending.set(update.topic, update);
  }

  /** Lets the next update of a topic through even if not newer (its content changed). */
  forget(topic: Topic): void {
    this.lastSeq.delete(topic);
  }

  offer(update: Update): void {
    this.put(update);
    this.flush();
  }

  /** Sends pending updates, oldest slot first, while the socket is under high water. */
  flush(): void {
    if (this.pending.size === 0) return;
    this.cork();
    try {
      while (this.pending.size > 0) {
        if (this.ws.readyState !== WebSocket.OPEN) {
          this.pending.clear();
          return;
        }
        if (this.ws.bufferedAmount >= this.ctx.highWaterBytes) return;
        const [topic, update] = this.pending.entries().next().value as [Topic, Update];
        this.pending.delete(topic);
        const wires = update.wires();
        if (wires) for (const w of wires) this.sendWire(w);
      }
    } finally {
      this.uncork();
    }
  }

  /**
   * Holds writes in the socket until uncork, so the messages of one TR leave in one
   * system call (ws writes each message separately otherwise; corking nests).
   */
  cork(): void {
    this.socket?.cork();
  }

  uncork(): void {
    this.socket?.uncork();
  }

  /** The TCP socket under ws (a private field of ws; absent → no corking, still correct). */
  private get socket(): { cork(): void; uncork(): void } | undefined {
    const s = (this.ws as unknown as { _socket?: { cork?: unknown; uncork?: unknown; destroyed?: boolean } })._socket;
    return s && typeof s.cork === 'function' && typeof s.uncork === 'function' && !s.destroyed ? (s as { cork(): void; uncork(): void }) : undefined;
  }

  private sendWire(w: Wire): void {
    const binary = typeof w !== 'string';
    this.ws.send(w, { binary }, this.onSent);
    this.ctx.metrics.messagesSent++;
    this.ctx.metrics.bytesSent += binary ? w.byteLength : Buffer.byteLength(w);
  }

  /**
   * Sends a session message (hello, replies, faults) unless the client is far behind;
   * `tr` is the TR it is about (default: the latest).
   */
  sendSession(message: Unstamped<ServerMessage>, tr = this.ctx.currentTr()): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount >= SESSION_MESSAGE_LIMIT_FACTOR * this.ctx.highWaterBytes) return;
    const stamped = { ...message, v: MESSAGES[message.type].version, tr, seq: this.sessionSeq++ };
    this.sendWire(JSON.stringify(stamped));
  }

  sendRaw(wires: Wire[]): void {
    for (const w of wires) this.sendWire(w);
  }

  sendError(code: ErrorCode, message: string, id?: number): void {
    this.ctx.metrics.reject(code);
    this.sendSession(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
  }

  /** Adds subscriptions and offers each one's latest update (the snapshot). */
  subscribe(topics: Topic[]): void {
    for (const t of topics) {
      this.subscriptions.add(t);
      const u = this.ctx.snapshot(t, this.mapSpec);
      if (u) this.offer(u);
    }
  }

  /** Handles one incoming WebSocket message; never throws. */
  receive(data: Buffer, isBinary: boolean): void {
    this.alive = true;
    if (!this.limiter.take()) {
      this.ctx.metrics.reject('PROTOCOL_RATE_LIMITED');
      const now = performance.now();
      if (now - this.lastRateLimitReply >= 1000) {
        this.lastRateLimitReply = now;
        this.sendSession({ type: 'error', code: 'PROTOCOL_RATE_LIMITED', message: `more than ${this.ctx.rateLimit.perSecond} messages per second; messages are being dropped` });
      }
      return;
    }
    let msg: ClientMessage;
    try {
      msg = parseClientMessage(isBinary ? data : data.toString('utf8'), isBinary);
    } catch (e) {
      this.replyError(e);
      return;
    }
    try {
      this.dispatch(msg);
    } catch (e) {
      this.replyError(e, msg.id);
    }
  }

  private replyError(e: unknown, id?: number): void {
    if (isSyncactError(e)) this.sendError(e.code, e.message, id);
    else this.sendError('PROTOCOL_CONTROL_FAILED', e instanceof Error ? e.message : String(e), id);
  }

  private dispatch(msg: ClientMessage): void {
    const withId = <T extends object>(m: T) => (msg.id === undefined ? m : { ...m, id: msg.id });
    switch (msg.type) {
      case 'subscribe': {
        if (msg.map) {
          this.checkMapSpec(msg.map);
          this.mapSpec = msg.map;
          this.forget('map'); // a new view: the current TR's map is new to this client
        }
        // a new map spec re-sends the map to a client already subscribed to it
        const topics = [...msg.topics];
        if (msg.map && this.subscriptions.has('map') && !topics.includes('map')) topics.push('map');
        // reply first, so the snapshot arrives after the client knows it is subscribed
        const all = [...new Set([...this.subscriptions, ...topics])];
        this.sendSession(withId({ type: 'subscribed' as const, topics: all, map: this.mapSpec }));
        this.subscribe(topics);
        this.ctx.viewsChanged();
        return;
      }
      case 'unsubscribe':
        for (const t of msg.topics) {
          this.subscriptions.delete(t);
          this.pending.delete(t);
          this.forget(t);
        }
        this.ctx.viewsChanged();
        this.sendSession(withId({ type: 'ack' as const, what: 'unsubscribe' }));
        return;
      case 'auth':
        if (!tokenMatches(this.ctx.token, msg.token)) {
          throw new SyncactError('PROTOCOL_UNAUTHORIZED', 'auth: the token does not match this session');
        }
        this.authorized = true;
        this.sendSession(withId({ type: 'ack' as const, what: 'auth' }));
        return;
      case 'control':
        if (!this.authorized) {
          throw new SyncactError(
            'PROTOCOL_UNAUTHORIZED',
            `control.${msg.command.op}: needs the session token (connect with ?token= or send auth)`,
          );
        }
        this.checkControl(msg.command);
        {
          const ack = withId({ type: 'ack' as const, what: msg.command.op });
          const done = this.ctx.control(msg.command);
          if (done instanceof Promise) done.then(() => this.sendSession(ack), (e: unknown) => this.replyError(e, msg.id));
          else this.sendSession(ack);
        }
        return;
      case 'ping':
        this.sendSession(withId({ type: 'pong' as const }));
        return;
    }
  }

  /** Bounds that depend on the session (the validator only knows the shapes). */
  private checkMapSpec(spec: MapSpec): void {
    validateMapSpec(spec);
    const info = this.ctx.info;
    if (spec.index !== undefined && spec.kind !== undefined) {
      const count = spec.kind === 'network' ? info.features.length : info.units.length;
      if (spec.index >= count) {
        throw new SyncactError('PROTOCOL_INVALID_MESSAGE', `subscribe.map: ${spec.kind} index ${spec.index} is out of range (0..${count - 1})`);
      }
    } else if (spec.index !== undefined) {
      throw new SyncactError('PROTOCOL_INVALID_MESSAGE', 'subscribe.map: index needs a kind');
    }
    if (spec.slices) {
      const badSlice = sliceOutOfRange(info.grid.dims, spec.slices);
      if (badSlice !== undefined) {
        throw new SyncactError('PROTOCOL_INVALID_MESSAGE', `subscribe.map.slices: ${spec.slices.axis} slice ${badSlice} is outside the grid [${info.grid.dims.join(', ')}]`);
      }
    }
  }

  private checkControl(command: ControlCommand): void {
    const info = this.ctx.info;
    if (command.op === 'seek' && command.tr >= info.trCount) {
      throw new SyncactError('PROTOCOL_INVALID_MESSAGE', `control.seek: tr ${command.tr} is past the run (${info.trCount} TRs)`);
    }
    if (command.op === 'select') {
      const count = command.target === 'network' ? info.features.length : info.units.length;
      if (command.index >= count) {
        throw new SyncactError('PROTOCOL_INVALID_MESSAGE', `control.select: ${command.target} ${command.index} is out of range (0..${count - 1})`);
      }
    }
  }
}
