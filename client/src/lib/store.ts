/**
 * The dashboard's live store: one WebSocket to the syncact server, the latest state of
 * every topic, a per-TR history for the time plots, and the commands the user sends.
 *
 * Why a hand-written store and not Svelte state: it must run in Node for its tests (no
 * DOM, no Svelte), and it must keep large arrays raw (typed arrays straight from the
 * binary frames, drawn on canvas) while the components only learn that "something
 * changed". Time, timers, the socket and the frame scheduler are injected for the tests.
 *
 * Behaviour:
 * - Messages are decoded with the protocol's own codec (protocol/topicCodec.ts). Topics
 *   that send several parts per update (units, coupling, map JSON + frame) are assembled
 *   by `seq` and published only when complete.
 * - Reconnect: when the socket closes (server restarted, network gone) the store waits
 *   `backoffDelay(attempt)` (exponential, capped) and connects again; the attempt counter
 *   resets once a `hello` arrives. The phase and the countdown are in the state so the
 *   page can show them. A reconnected client gets `hello` + snapshot and continues.
 * - Display coalescing: subscribers are notified at most once per `schedule` call (the
 *   browser passes requestAnimationFrame); TR states that arrived and were superseded
 *   before a notification count as dropped display updates.
 * - Clock state: the server only sends `state` when a TR is processed, so a pause would
 *   never be seen; the store applies play/pause/speed/loop when the server acknowledges
 *   them.
 */
import { SPEED_MAX, SPEED_MIN, type ClientMessage, type ControlCommand, type MapKind, type MapSpec, type ServerMessage, type TelemetryMessage } from '../../../protocol/messages.ts';
import type { Frame } from '../../../protocol/binary.ts';
import type { AnnotationRow, SessionInfo } from '../../../protocol/state.ts';
import { decodeServerMessage } from '../../../protocol/topicCodec.ts';
import { TOPICS, topicName, type Topic } from '../../../protocol/topics.ts';
import type { ErrorCode } from '../../../server/errors.ts';
import { fdrThreshold, TrHistory } from './history.ts';

/** The subset of the browser WebSocket the store uses (so Node tests can pass a fake). */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export interface Backoff {
  /** Delay before the first retry, ms. */
  initialMs: number;
  /** Largest delay, ms. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 8000, factor: 2 };

/** Delay before retry number `attempt` (0 = first retry): initial · factor^attempt, capped. */
export function backoffDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, Math.max(0, attempt)));
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface StoreOptions {
  /** The WebSocket endpoint without query (`ws://host:port/ws`). */
  wsUrl: string;
  /** The control token from the page URL (null: watch only). */
  token: string | null;
  socket: (url: string) => SocketLike;
  timers?: Timers;
  /** Wall clock, ms (default Date.now). */
  now?: () => number;
  /** Runs the notification later (default: a 0 ms timer; the browser passes requestAnimationFrame). */
  schedule?: (fn: () => void) => void;
  backoff?: Backoff;
  /** Topics to subscribe (default: all). */
  topics?: Topic[];
}

export type Phase = 'connecting' | 'open' | 'waiting' | 'closed';

export interface ConnectionState {
  phase: Phase;
  /** Failed attempts since the last successful hello. */
  attempt: number;
  /** When the next attempt starts (wall clock ms), while waiting. */
  retryAt: number | null;
  /** Successful connections so far (1 after the first hello). */
  connects: number;
  /** Why the last socket closed. */
  lastClose: string | null;
}

/** The session description with its arrays, once `hello` and both session frames arrived. */
export interface SessionView extends Omit<SessionInfo, 'maskIndices' | 'background'> {
  maskIndices: Uint32Array;
  background: Float32Array;
}

export interface CouplingView {
  tr: number;
  seq: number;
  units: number;
  features: number;
  r: Float32Array;
  q: Float32Array;
  significant: Uint8Array;
}

export interface MapView {
  tr: number;
  mapTr: number;
  kind: MapKind;
  index: number;
  shape: number[];
  slices: MapSpec['slices'] | null;
  values: Float32Array;
  /** Largest |value| (finite), for colour scales. */
  maxAbs: number;
}

export interface ClockView {
  playing: boolean;
  speed: number | 'max';
  loop: boolean;
}

export interface Stats {
  /** Messages and bytes received since the store started. */
  messages: number;
  bytes: number;
  /** TR states received, and those superseded before they were shown. */
  trsReceived: number;
  droppedDisplay: number;
  /** Topic updates the server coalesced away for this client (seq gaps). */
  skipped: number;
  /** Messages the store could not decode. */
  decodeErrors: number;
}

export interface LiveState {
  connection: ConnectionState;
  session: SessionView | null;
  /** The server accepted the token: this page may control the replay. */
  control: boolean;
  tr: number;
  time: number;
  clock: ClockView | null;
  frame: { tr: number; width: number; height: number; rgb: Uint8Array } | null;
  units: { tr: number; unitResponses: Float32Array; features: Float32Array } | null;
  coupling: CouplingView | null;
  map: MapView | null;
  annotations: { tr: number; rows: AnnotationRow[] } | null;
  cka: { tr: number; values: Float32Array } | null;
  telemetry: TelemetryMessage | null;
  history: TrHistory | null;
  /** The selected (unit, feature) pair. */
  selection: { unit: number; feature: number };
  /** What the brain overlay shows. */
  mapRequest: { kind: MapKind; index: number } | null;
  /** A seek asked for while paused (the server moves there on play). */
  pendingSeek: number | null;
  faults: { code: string; message: string; tr: number }[];
  /** The last refused command or decode problem. */
  lastError: { code: ErrorCode; message: string } | null;
  ended: boolean;
  stats: Stats;
  /** Bumped at every notification. */
  version: number;
}

type Listener = (state: LiveState) => void;

/** Parts per binary topic (what an update needs before it is complete). */
const PARTS = { units: 2, coupling: 3, map: 1, frame: 1, cka: 1 } as const;

interface Pending {
  seq: number;
  tr: number;
  frames: (Frame | undefined)[];
  json?: ServerMessage;
}

export class LiveStore {
  readonly state: LiveState;
  private readonly listeners = new Set<Listener>();
  private socket: SocketLike | null = null;
  private retryTimer: unknown = null;
  private notifyScheduled = false;
  private disposed = false;
  private nextId = 1;
  private readonly sent = new Map<number, ControlCommand>();
  private readonly pending = new Map<string, Pending>();
  private sessionJson: Extract<ServerMessage, { type: 'hello' }>['session'] | null = null;
  private sessionArrays: { maskIndices?: Uint32Array; background?: Float32Array } = {};
  private readonly lastSeq = new Map<string, number>();
  /** The clock as acknowledged, held until a state built after the command arrives. */
  private clockOverride: { afterTr: number; clock: ClockView } | null = null;
  /** TR states received since the last notification. */
  private trsSinceNotify = 0;
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;
  private readonly backoff: Backoff;
  private readonly topics: Topic[];

  constructor(private readonly options: StoreOptions) {
    this.timers = options.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.now = options.now ?? (() => Date.now());
    this.schedule = options.schedule ?? ((fn) => this.timers.setTimeout(fn, 0));
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.topics = options.topics ?? [...TOPICS];
    this.state = {
      connection: { phase: 'closed', attempt: 0, retryAt: null, connects: 0, lastClose: null },
      session: null,
      control: false,
      tr: -1,
      time: 0,
      clock: null,
      frame: null,
      units: null,
      coupling: null,
      map: null,
      annotations: null,
      cka: null,
      telemetry: null,
      history: null,
      selection: { unit: 0, feature: 0 },
      mapRequest: null,
      pendingSeek: null,
      faults: [],
      lastError: null,
      ended: false,
      stats: { messages: 0, bytes: 0, trsReceived: 0, droppedDisplay: 0, skipped: 0, decodeErrors: 0 },
      version: 0,
    };
  }

  /** Svelte store contract: called at once and after every (coalesced) change. */
  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    fn(this.state);
    return () => this.listeners.delete(fn);
  }

  /** Opens the connection (and keeps it open, reconnecting, until dispose()). */
  connect(): void {
    if (this.disposed || this.socket) return;
    this.cancelRetry();
    const q = new URLSearchParams();
    if (this.options.token) q.set('token', this.options.token);
    q.set('topics', this.topics.join(','));
    const ws = this.options.socket(`${this.options.wsUrl}?${q.toString()}`);
    ws.binaryType = 'arraybuffer';
    this.socket = ws;
    this.state.connection.phase = 'connecting';
    this.pending.clear();
    this.lastSeq.clear();
    this.sessionJson = null;
    this.sessionArrays = {};
    this.clockOverride = null;
    ws.onmessage = (ev) => {
      if (this.socket === ws) this.receive(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.socket === ws) this.onClosed(`closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
    };
    ws.onerror = () => {
      // a close event always follows; the reconnect is handled there
    };
    this.notify();
  }

  /** Closes for good: no reconnect. */
  dispose(): void {
    this.disposed = true;
    this.cancelRetry();
    const ws = this.socket;
    this.socket = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
      ws.close(1000, 'page closed');
    }
    this.state.connection.phase = 'closed';
    this.notify();
  }

  // ------------------------------------------------------------------ commands

  play(): void {
    this.control({ op: 'play' });
  }

  pause(): void {
    this.control({ op: 'pause' });
  }

  togglePlay(): void {
    if (this.state.clock?.playing) this.pause();
    else this.play();
  }

  /** Seeks to a TR (clamped to the run). */
  seek(tr: number): void {
    const n = this.state.session?.trCount ?? 0;
    if (n === 0) return;
    const target = Math.max(0, Math.min(n - 1, Math.round(tr)));
    if (this.control({ op: 'seek', tr: target }) && !this.state.clock?.playing) this.state.pendingSeek = target;
  }

  /** One TR forward (+1) or back (−1) from the current TR. */
  step(delta: number): void {
    const from = this.state.pendingSeek ?? Math.max(this.state.tr, 0);
    this.seek(from + delta);
  }

  setSpeed(speed: number | 'max'): void {
    if (speed !== 'max' && !(speed >= SPEED_MIN && speed <= SPEED_MAX)) {
      this.fail('CLIENT_BAD_SPEED', `speed must be ${SPEED_MIN} … ${SPEED_MAX} or max`);
      return;
    }
    this.control({ op: 'speed', speed });
  }

  setLoop(loop: boolean): void {
    this.control({ op: 'loop', loop });
  }

  /**
   * Selects a (unit, feature) pair (heatmap click). The brain overlay follows: the unit's
   * t-map when it has one (its own synchronized map, or a GLM regressor's), else the
   * feature's network map.
   */
  select(unit: number, feature: number): void {
    const s = this.state.session;
    if (!s || unit < 0 || unit >= s.units.length || feature < 0 || feature >= s.features.length) return;
    this.state.selection = { unit, feature };
    this.showMap(unitHasMap(s, unit) ? 'unit-t' : 'network', unitHasMap(s, unit) ? unit : feature);
  }

  /** Chooses the brain overlay (a per-page view: no token needed). */
  showMap(kind: MapKind, index: number): void {
    this.state.mapRequest = { kind, index };
    this.sendMapSpec();
    this.notify();
  }

  /** Sends a control command; false (with lastError set) when this page may not control. */
  control(command: ControlCommand): boolean {
    if (!this.state.control) {
      this.fail('PROTOCOL_UNAUTHORIZED', 'this page has no control token (open the URL syncact printed)');
      return false;
    }
    const id = this.nextId++;
    if (!this.send({ type: 'control', v: 1, id, command })) return false;
    this.sent.set(id, command);
    return true;
  }

  // ------------------------------------------------------------------ incoming

  /** Handles one message from the socket (public for tests that feed bytes directly). */
  receive(data: unknown): void {
    const st = this.state;
    st.stats.messages++;
    let decoded;
    try {
      if (typeof data === 'string') {
        st.stats.bytes += data.length;
        decoded = decodeServerMessage(data);
      } else if (data instanceof ArrayBuffer || data instanceof Uint8Array) {
        st.stats.bytes += data.byteLength;
        decoded = decodeServerMessage(data);
      } else {
        throw new Error(`unexpected message payload ${typeof data}`);
      }
    } catch (e) {
      st.stats.decodeErrors++;
      const err = e as { code?: ErrorCode; message?: string };
      this.fail(err.code ?? 'CLIENT_DECODE', err.message ?? String(e));
      return;
    }
    if (decoded.kind === 'frame') this.onFrame(decoded.frame);
    else this.onJson(decoded.message);
  }

  private onJson(m: ServerMessage): void {
    const st = this.state;
    switch (m.type) {
      case 'hello': {
        this.sessionJson = m.session;
        st.control = m.control;
        st.connection.phase = 'open';
        st.connection.attempt = 0;
        st.connection.retryAt = null;
        st.connection.connects++;
        st.ended = false;
        break;
      }
      case 'state': {
        this.countSeq('state', m.seq);
        // A state built before an acknowledged clock command can arrive after its ack (the
        // server sends replies at once and TR updates on its next turn): its clock is
        // stale until a later TR, or a jump, shows the server's clock after the command.
        const o = this.clockOverride;
        if (o && (m.tr > o.afterTr || m.tr < st.tr)) this.clockOverride = null;
        this.onTr(m.tr);
        st.time = m.time;
        st.clock = this.clockOverride ? { ...this.clockOverride.clock } : { ...m.clock };
        if (st.pendingSeek !== null && m.tr === st.pendingSeek) st.pendingSeek = null;
        if (m.clock.playing) st.pendingSeek = null;
        st.stats.trsReceived++;
        this.trsSinceNotify++;
        break;
      }
      case 'map': {
        const p = this.pendingFor('map', m.seq, m.tr);
        p.json = m;
        this.completeMap(p);
        break;
      }
      case 'annotations':
        this.countSeq('annotations', m.seq);
        st.annotations = { tr: m.tr, rows: m.rows };
        break;
      case 'telemetry':
        this.countSeq('telemetry', m.seq);
        st.telemetry = m;
        break;
      case 'ack': {
        const cmd = m.id === undefined ? undefined : this.sent.get(m.id);
        if (m.id !== undefined) this.sent.delete(m.id);
        if (cmd) this.applyAck(cmd, m.tr);
        break;
      }
      case 'error':
        if (m.id !== undefined) this.sent.delete(m.id);
        st.lastError = { code: m.code, message: m.message };
        break;
      case 'fault':
        st.faults.push({ code: m.code, message: m.message, tr: m.tr });
        if (st.faults.length > 20) st.faults.shift();
        break;
      case 'end':
        st.ended = true;
        if (st.clock) st.clock = { ...st.clock, playing: false };
        break;
      case 'subscribed':
      case 'pong':
        break;
    }
    this.notify();
  }

  /** `tr`: the server's latest TR when it applied the command. */
  private applyAck(cmd: ControlCommand, tr: number): void {
    const st = this.state;
    const clock = st.clock ?? { playing: true, speed: 1, loop: false };
    if (cmd.op === 'play') st.clock = { ...clock, playing: true };
    else if (cmd.op === 'pause') st.clock = { ...clock, playing: false };
    else if (cmd.op === 'speed') st.clock = { ...clock, speed: cmd.speed };
    else if (cmd.op === 'loop') st.clock = { ...clock, loop: cmd.loop };
    else return;
    this.clockOverride = { afterTr: tr, clock: { ...st.clock } };
  }

  private onFrame(f: Frame): void {
    const st = this.state;
    const topic = topicName(f.topic);
    if (f.type === 'session' || topic === 'session') {
      if (f.part === 0) this.sessionArrays.maskIndices = f.data as Uint32Array;
      if (f.part === 1) this.sessionArrays.background = f.data as Float32Array;
      this.completeSession();
      this.notify();
      return;
    }
    if (topic === undefined || !(topic in PARTS)) return;
    const key = topic as keyof typeof PARTS;
    if (key === 'map') {
      const p = this.pendingFor('map', f.seq, f.tr);
      p.frames[0] = f;
      this.completeMap(p);
      this.notify();
      return;
    }
    const p = this.pendingFor(key, f.seq, f.tr);
    p.frames[f.part] = f;
    for (let i = 0; i < PARTS[key]; i++) if (!p.frames[i]) return;
    this.pending.delete(key);
    this.countSeq(key, f.seq);
    const hist = st.history?.at(f.tr);
    if (key === 'frame') {
      const [h, w] = f.shape;
      st.frame = { tr: f.tr, width: w, height: h, rgb: f.data as Uint8Array };
    } else if (key === 'units') {
      const unitResponses = p.frames[0]!.data as Float32Array;
      const features = p.frames[1]!.data as Float32Array;
      st.units = { tr: f.tr, unitResponses, features };
      if (hist) Object.assign(hist, { unitResponses, features });
    } else if (key === 'coupling') {
      const [units, features] = f.shape;
      const r = p.frames[0]!.data as Float32Array;
      const significant = p.frames[2]!.data as Uint8Array;
      st.coupling = { tr: f.tr, seq: f.seq, units, features, r, q: p.frames[1]!.data as Float32Array, significant };
      if (hist) Object.assign(hist, { r, significant, threshold: fdrThreshold(r, significant) });
    } else if (key === 'cka') {
      st.cka = { tr: f.tr, values: f.data as Float32Array };
      if (hist) hist.cka = st.cka.values;
    }
    this.notify();
  }

  private completeSession(): void {
    const { maskIndices, background } = this.sessionArrays;
    const json = this.sessionJson;
    if (!json || !maskIndices || !background) return;
    const { arrays: _arrays, ...rest } = json;
    const st = this.state;
    const prev = st.session;
    const same =
      prev !== null && prev.name === rest.name && prev.trCount === rest.trCount && prev.units.length === rest.units.length && prev.features.length === rest.features.length;
    st.session = { ...rest, maskIndices, background };
    if (!same) {
      st.history = new TrHistory(rest.trCount);
      st.selection = defaultSelection(st.session);
      st.mapRequest = null;
    }
    // The overlay view is per connection: say it again on every (re)connect. The first
    // view is the selected network, which exists from the first TR (a unit's t-map only
    // once the GLM has full rank).
    st.mapRequest ??= { kind: 'network', index: st.selection.feature };
    this.sendMapSpec();
  }

  private completeMap(p: Pending): void {
    const json = p.json;
    const frame = p.frames[0];
    if (!json || json.type !== 'map' || !frame) return;
    this.pending.delete('map');
    this.countSeq('map', p.seq);
    const values = frame.data as Float32Array;
    let maxAbs = 0;
    for (let i = 0; i < values.length; i++) {
      const a = Math.abs(values[i]);
      if (a > maxAbs && a !== Infinity) maxAbs = a;
    }
    this.state.map = { tr: json.tr, mapTr: json.mapTr, kind: json.kind, index: json.index, shape: json.shape, slices: json.slices, values, maxAbs };
  }

  private pendingFor(topic: string, seq: number, tr: number): Pending {
    let p = this.pending.get(topic);
    if (!p || p.seq !== seq) {
      p = { seq, tr, frames: [] };
      this.pending.set(topic, p);
    }
    return p;
  }

  /** A new TR: a jump back (seek, loop, restarted server) forgets the history after it. */
  private onTr(tr: number): void {
    const st = this.state;
    if (st.history && tr < st.history.last) st.history.truncateAfter(tr - 1);
    // After a jump back, a map computed after the new TR belongs to the run we jumped away
    // from (it comes back when the engine has it again: a t-map only once the GLM has full
    // rank). Only on a jump: in a forward run a map may be newer than its TR's state (the
    // server reads maps when it sends them).
    if (tr < st.tr && st.map && st.map.mapTr > tr) st.map = null;
    st.tr = tr;
  }

  private countSeq(topic: string, seq: number): void {
    const last = this.lastSeq.get(topic);
    if (last !== undefined && seq > last + 1) this.state.stats.skipped += seq - last - 1;
    this.lastSeq.set(topic, seq);
  }

  private onClosed(reason: string): void {
    this.socket = null;
    const c = this.state.connection;
    c.lastClose = reason;
    this.sent.clear();
    if (this.disposed) {
      c.phase = 'closed';
      this.notify();
      return;
    }
    const delay = backoffDelay(c.attempt, this.backoff);
    c.attempt++;
    c.phase = 'waiting';
    c.retryAt = this.now() + delay;
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
    this.notify();
  }

  private cancelRetry(): void {
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private sendMapSpec(): void {
    const req = this.state.mapRequest;
    if (!req || !this.state.session) return;
    this.send({ type: 'subscribe', v: 1, id: this.nextId++, topics: ['map'], map: { kind: req.kind, index: req.index } });
  }

  private send(message: ClientMessage): boolean {
    const ws = this.socket;
    if (!ws || this.state.connection.phase !== 'open') {
      this.fail('CLIENT_NOT_CONNECTED', 'not connected to the server');
      return false;
    }
    ws.send(JSON.stringify(message));
    return true;
  }

  private fail(code: ErrorCode, message: string): void {
    this.state.lastError = { code, message };
    this.notify();
  }

  /** Schedules one notification for everything that changed since the last one. */
  private notify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    this.schedule(() => this.flush());
  }

  /** Notifies now (the scheduled callback; public so a renderer can force a draw). */
  flush(): void {
    this.notifyScheduled = false;
    if (this.trsSinceNotify > 1) this.state.stats.droppedDisplay += this.trsSinceNotify - 1;
    this.trsSinceNotify = 0;
    this.state.version++;
    for (const fn of this.listeners) fn(this.state);
  }
}

/**
 * Units with voxelwise maps: the CNN units with a map of their own (session unit_maps,
 * every unit by default) and the GLM regressors (PCA components or chosen units).
 */
export function unitHasMap(s: Pick<SessionView, 'units' | 'mapUnits'>, unit: number): boolean {
  const u = s.units[unit];
  return u !== undefined && (u.layer === 'pca' || u.layer === 'regressor' || (s.mapUnits?.includes(unit) ?? false));
}

/** First pair shown: the first unit that has a map, with the first feature. */
function defaultSelection(s: SessionView): { unit: number; feature: number } {
  const unit = s.units.findIndex((u) => u.layer === 'pca' || u.layer === 'regressor');
  return { unit: Math.max(unit, 0), feature: 0 };
}

/** A unit's display name: `layer:channel`, or the regressor's name for PCA components. */
export function unitName(s: Pick<SessionView, 'units' | 'regressors'>, unit: number): string {
  const u = s.units[unit];
  if (!u) return `unit ${unit}`;
  if (u.layer === 'pca' || u.layer === 'regressor') return s.regressors[u.channel] ?? `${u.layer}${u.channel}`;
  return `${u.layer}:${u.channel}`;
}

