/**
 * The dashboard store without a browser: messages made by the protocol's own encoders
 * (the bytes a server sends) fed to a fake socket, virtual timers for the reconnect.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGES, type ClientMessage, type ServerMessage } from '../../protocol/messages.ts';
import {
  encodeCkaTopic,
  encodeCouplingTopic,
  encodeMapTopic,
  encodeSessionArrays,
  encodeStateTopic,
  encodeUnitsTopic,
  type Wire,
} from '../../protocol/topicCodec.ts';
import type { SessionInfo } from '../../protocol/state.ts';
import { backoffDelay, LiveStore, unitHasMap, unitName, type SocketLike, type Timers } from '../../client/src/lib/store.ts';
import { fdrThreshold } from '../../client/src/lib/history.ts';
import { makeInfo, makeState } from '../net/fakeSession.ts';

class FakeSocket implements SocketLike {
  binaryType = 'blob';
  readyState = 0;
  sent: ClientMessage[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  onmessage: SocketLike['onmessage'] = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientMessage);
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }
  /** The server side: deliver wire messages (bytes arrive as their own ArrayBuffer, as in a browser). */
  deliver(wires: Wire[]): void {
    for (const w of wires) {
      this.onmessage?.({ data: typeof w === 'string' ? w : w.slice().buffer });
    }
  }
  drop(code = 1006): void {
    this.onclose?.({ code, reason: '' });
  }
}

/** Virtual timers: run() fires everything due up to a time. */
class VirtualTimers implements Timers {
  now = 0;
  private queue: { at: number; fn: () => void; id: number }[] = [];
  private id = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.id;
    this.queue.push({ at: this.now + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.queue = this.queue.filter((t) => t.id !== h);
  }
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const t = this.queue[0];
      if (!t || t.at > until) break;
      this.queue.shift();
      this.now = t.at;
      t.fn();
    }
    this.now = until;
  }
  get pending(): number {
    return this.queue.length;
  }
}

function hello(info: SessionInfo, control: boolean, seq = 0): string {
  const { maskIndices, background, ...rest } = info;
  const m: ServerMessage = {
    type: 'hello',
    v: MESSAGES.hello.version,
    tr: -1,
    seq,
    protocol: 1,
    session: { ...rest, arrays: { maskIndices: { part: 0, length: maskIndices.length }, background: { part: 1, length: background.length } } },
    topics: ['state', 'frame', 'units', 'coupling', 'map', 'annotations', 'cka', 'telemetry'],
    subscribed: ['state'],
    control,
    selection: { target: 'unit', index: 0 },
    heartbeatMs: 30000,
  };
  return JSON.stringify(m);
}

function ack(id: number, what: string): string {
  return JSON.stringify({ type: 'ack', v: 1, tr: 0, seq: 1, id, what } satisfies ServerMessage);
}

/** A store on a fake socket whose notifications run only when the test flushes them. */
function setup(options: { control?: boolean; info?: SessionInfo } = {}) {
  const sockets: FakeSocket[] = [];
  const timers = new VirtualTimers();
  const scheduled: (() => void)[] = [];
  const store = new LiveStore({
    wsUrl: 'ws://127.0.0.1:1/ws',
    token: 'secret',
    socket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    timers,
    now: () => timers.now,
    schedule: (fn) => scheduled.push(fn),
  });
  const notified: number[] = [];
  store.subscribe((s) => notified.push(s.version));
  const info = options.info ?? makeInfo();
  store.connect();
  const open = (sock = sockets.at(-1)!) => {
    sock.deliver([hello(info, options.control ?? true), ...encodeSessionArrays(info, 0, 0)]);
  };
  const flush = () => {
    while (scheduled.length) scheduled.shift()!();
  };
  return { store, sockets, timers, info, open, flush, notified, scheduled };
}

/** An info whose last two units are PCA components (they have maps). */
function infoWithPca(): SessionInfo {
  const info = makeInfo();
  info.units = info.units.map((u, i) => (i >= info.units.length - 2 ? { index: i, layer: 'pca', channel: i - (info.units.length - 2) } : u));
  info.regressors = ['pc1', 'pc2'];
  return info;
}

describe('LiveStore: connecting and the session', () => {
  it('asks for every topic with the token, and builds the session from hello and its two frames', () => {
    const { store, sockets, open, info } = setup();
    const url = new URL(sockets[0].url);
    expect(url.pathname).toBe('/ws');
    expect(url.searchParams.get('token')).toBe('secret');
    expect(url.searchParams.get('topics')!.split(',')).toEqual(['state', 'frame', 'units', 'coupling', 'map', 'annotations', 'cka', 'telemetry']);
    expect(sockets[0].binaryType).toBe('arraybuffer');
    expect(store.state.connection.phase).toBe('connecting');
    sockets[0].deliver([hello(info, true)]);
    expect(store.state.session).toBeNull(); // arrays not there yet
    sockets[0].deliver(encodeSessionArrays(info, 0, 0));
    const s = store.state.session!;
    expect(s.name).toBe(info.name);
    expect(Array.from(s.maskIndices)).toEqual(Array.from(info.maskIndices));
    expect(Array.from(s.background)).toEqual(Array.from(info.background));
    expect(store.state.connection.phase).toBe('open');
    expect(store.state.control).toBe(true);
    expect(store.state.history?.trCount).toBe(info.trCount);
    void open;
  });

  it('selects the first unit with a map and shows the first network (defined from the first TR)', () => {
    const a = setup();
    a.open();
    expect(a.sockets[0].sent).toEqual([{ type: 'subscribe', v: 1, id: 1, topics: ['map'], map: { kind: 'network', index: 0 } }]);
    expect(a.store.state.selection).toEqual({ unit: 0, feature: 0 });
    const b = setup({ info: infoWithPca() });
    b.open();
    const unit = b.info.units.length - 2;
    expect(b.sockets[0].sent[0]).toMatchObject({ type: 'subscribe', map: { kind: 'network', index: 0 } });
    expect(b.store.state.selection).toEqual({ unit, feature: 0 });
    expect(b.store.state.mapRequest).toEqual({ kind: 'network', index: 0 });
  });
});

describe('LiveStore: topic updates', () => {
  it('publishes a coupling update only when its three parts (same seq) have arrived, and records r(t) and the FDR threshold', () => {
    const { store, sockets, open, flush } = setup();
    open();
    const s5 = makeState(5);
    const parts = encodeCouplingTopic(s5, 0);
    sockets[0].deliver([parts[0], parts[1]]);
    expect(store.state.coupling).toBeNull();
    sockets[0].deliver([parts[2]]);
    const c = store.state.coupling!;
    expect(c.tr).toBe(5);
    expect([c.units, c.features]).toEqual([6, 5]);
    expect(Array.from(c.r)).toEqual(Array.from(s5.coupling));
    expect(Array.from(c.significant)).toEqual(Array.from(s5.significant));
    const rec = store.state.history!.get(5)!;
    expect(rec.threshold).toBe(fdrThreshold(s5.coupling, s5.significant));
    // r(t) of one pair over the run: NaN where not seen, the value at TR 5
    const series = store.state.history!.series((r) => r.r?.[2 * 5 + 3]);
    expect(series[5]).toBe(s5.coupling[13]);
    expect(Number.isNaN(series[4])).toBe(true);
    flush();
  });

  it('pairs the map description with its frame by seq and finds the colour scale', () => {
    const info = infoWithPca();
    const { store, sockets, open } = setup({ info });
    open();
    const values = Float32Array.from(info.maskIndices, (_, m) => (m % 7) - 3.5);
    const wires = encodeMapTopic(info, { tr: 4, kind: 'unit-t', index: 5, values }, null, 4, 9);
    sockets[0].deliver([wires[0]]);
    expect(store.state.map).toBeNull();
    sockets[0].deliver([wires[1]]);
    const m = store.state.map!;
    expect([m.kind, m.index, m.mapTr]).toEqual(['unit-t', 5, 4]);
    expect(m.shape).toEqual([4, 5, 6]);
    expect(m.maxAbs).toBe(3.5);
    // scattered into the grid, NaN outside the mask
    expect(m.values[info.maskIndices[3]]).toBe(values[3]);
    expect(Number.isNaN(m.values[1])).toBe(true);
  });

  it('coalesces notifications: five TRs before a frame is one notification and four dropped display updates', () => {
    const { store, sockets, open, flush, notified } = setup();
    open();
    flush();
    const before = notified.length;
    for (let tr = 0; tr < 5; tr++) sockets[0].deliver([...encodeStateTopic(makeState(tr), tr), ...encodeUnitsTopic(makeState(tr), tr)]);
    expect(notified.length).toBe(before);
    flush();
    expect(notified.length).toBe(before + 1);
    expect(store.state.tr).toBe(4);
    expect(store.state.stats.trsReceived).toBe(5);
    expect(store.state.stats.droppedDisplay).toBe(4);
    expect(Array.from(store.state.units!.unitResponses)).toEqual(Array.from(makeState(4).unitResponses));
    expect(store.state.history!.size).toBe(5);
  });

  it('counts updates the server coalesced away (seq gaps per topic)', () => {
    const { store, sockets, open } = setup();
    open();
    sockets[0].deliver([...encodeStateTopic(makeState(0), 0), ...encodeStateTopic(makeState(1), 1), ...encodeStateTopic(makeState(5), 5)]);
    sockets[0].deliver([...encodeCkaTopic(makeState(1), 3), ...encodeCkaTopic(makeState(2), 7)]);
    expect(store.state.stats.skipped).toBe(3 + 3);
  });

  it('a jump back (seek, loop, restarted server) forgets the history after it', () => {
    const { store, sockets, open } = setup();
    open();
    for (let tr = 0; tr < 10; tr++) {
      sockets[0].deliver([...encodeStateTopic(makeState(tr), tr), ...encodeCouplingTopic(makeState(tr), tr)]);
    }
    expect(store.state.history!.last).toBe(9);
    sockets[0].deliver([...encodeStateTopic(makeState(3), 10), ...encodeCouplingTopic(makeState(3), 10)]);
    expect(store.state.tr).toBe(3);
    expect(store.state.history!.last).toBe(3);
    expect(store.state.history!.get(4)).toBeUndefined();
    expect(Array.from(store.state.history!.get(3)!.r!)).toEqual(Array.from(makeState(3).coupling));
  });

  it('a jump back drops a map computed after the new TR, and keeps one computed before it', () => {
    const { store, sockets, open, info } = setup();
    open();
    const values = Float32Array.from(info.maskIndices, (_, m) => m);
    sockets[0].deliver([...encodeStateTopic(makeState(8), 0), ...encodeMapTopic(info, { tr: 8, kind: 'network', index: 0, values }, null, 8, 0)]);
    sockets[0].deliver(encodeStateTopic(makeState(9), 1));
    expect(store.state.map?.mapTr).toBe(8);
    sockets[0].deliver(encodeStateTopic(makeState(8), 2));
    expect(store.state.map?.mapTr).toBe(8);
    sockets[0].deliver(encodeStateTopic(makeState(2), 3));
    expect(store.state.map).toBeNull();
  });

  it('reports undecodable bytes and unknown JSON as errors without throwing', () => {
    const { store, sockets, open } = setup();
    open();
    sockets[0].onmessage!({ data: new Uint8Array(12).buffer });
    expect(store.state.lastError?.code).toBe('PROTOCOL_BAD_FRAME');
    sockets[0].onmessage!({ data: '{"type":"nope","v":1}' });
    expect(store.state.lastError?.code).toBe('PROTOCOL_UNKNOWN_TYPE');
    sockets[0].onmessage!({ data: '{"type":"state","v":2}' });
    expect(store.state.lastError?.code).toBe('PROTOCOL_VERSION_MISMATCH');
    expect(store.state.stats.decodeErrors).toBe(3);
  });
});

describe('LiveStore: control', () => {
  it('sends commands with ids and applies play/pause/speed when the server acknowledges them', () => {
    const { store, sockets, open } = setup();
    open();
    sockets[0].deliver(encodeStateTopic(makeState(2), 0));
    expect(store.state.clock?.playing).toBe(true);
    store.togglePlay();
    const pause = sockets[0].sent.at(-1)!;
    expect(pause).toMatchObject({ type: 'control', v: 1, command: { op: 'pause' } });
    expect(store.state.clock?.playing).toBe(true); // not before the ack
    sockets[0].deliver([ack(pause.id!, 'pause')]);
    expect(store.state.clock?.playing).toBe(false);
    store.setSpeed(4);
    const speed = sockets[0].sent.at(-1)!;
    sockets[0].deliver([ack(speed.id!, 'speed')]);
    expect(store.state.clock?.speed).toBe(4);
    store.setSpeed(100);
    expect(store.state.lastError?.code).toBe('CLIENT_BAD_SPEED');
    expect(sockets[0].sent.at(-1)).toBe(speed);
  });

  it('a state built before an acknowledged pause does not undo it; a later TR or a jump shows the server\'s clock again', () => {
    const { store, sockets, open } = setup();
    open();
    const playing = (tr: number, seq: number, isPlaying = true) =>
      encodeStateTopic({ ...makeState(tr), clock: { playing: isPlaying, speed: 1, loop: false } }, seq);
    sockets[0].deliver(playing(5, 0));
    store.pause();
    const pause = sockets[0].sent.at(-1)!;
    sockets[0].deliver([JSON.stringify({ type: 'ack', v: 1, tr: 6, seq: 1, id: pause.id, what: 'pause' })]);
    expect(store.state.clock?.playing).toBe(false);
    sockets[0].deliver(playing(6, 1)); // built before the pause, sent after its ack
    expect(store.state.clock?.playing).toBe(false);
    expect(store.state.tr).toBe(6);
    // another client resumed: TR 7 is after the ack, its clock counts
    sockets[0].deliver(playing(7, 2));
    expect(store.state.clock?.playing).toBe(true);
    // and a jump back (a seek by someone) also shows the server's clock
    store.pause();
    const again = sockets[0].sent.at(-1)!;
    sockets[0].deliver([JSON.stringify({ type: 'ack', v: 1, tr: 7, seq: 2, id: again.id, what: 'pause' })]);
    sockets[0].deliver(playing(2, 3, true));
    expect(store.state.clock?.playing).toBe(true);
  });

  it('seeks clamped to the run; arrows step from a seek made while paused', () => {
    const info = makeInfo();
    info.trCount = 50;
    const { store, sockets, open } = setup({ info });
    open();
    sockets[0].deliver(encodeStateTopic({ ...makeState(10), clock: { playing: false, speed: 1, loop: false } }, 0));
    store.seek(80);
    expect(sockets[0].sent.at(-1)).toMatchObject({ command: { op: 'seek', tr: 49 } });
    store.seek(20);
    store.step(1);
    expect(sockets[0].sent.at(-1)).toMatchObject({ command: { op: 'seek', tr: 21 } });
    store.step(-1);
    store.step(-1);
    expect(sockets[0].sent.at(-1)).toMatchObject({ command: { op: 'seek', tr: 19 } });
    expect(store.state.pendingSeek).toBe(19);
  });

  it('a page without an accepted token sends nothing and says why', () => {
    const { store, sockets, open } = setup({ control: false });
    open();
    const n = sockets[0].sent.length;
    store.pause();
    store.seek(3);
    expect(sockets[0].sent.length).toBe(n);
    expect(store.state.lastError?.code).toBe('PROTOCOL_UNAUTHORIZED');
  });

  it('selecting a pair re-subscribes the map: a unit with a map shows its t-map, another its network', () => {
    const info = infoWithPca();
    const { store, sockets, open } = setup({ info, control: false });
    open();
    store.select(1, 3); // conv1 unit: no voxelwise map
    expect(store.state.selection).toEqual({ unit: 1, feature: 3 });
    expect(sockets[0].sent.at(-1)).toMatchObject({ type: 'subscribe', topics: ['map'], map: { kind: 'network', index: 3 } });
    store.select(5, 2); // pca component
    expect(sockets[0].sent.at(-1)).toMatchObject({ map: { kind: 'unit-t', index: 5 } });
    store.select(99, 0); // out of range: ignored
    expect(store.state.selection).toEqual({ unit: 5, feature: 2 });
    expect(unitHasMap(info, 5)).toBe(true);
    // A CNN unit with its own synchronized map (session unit_maps) has one too.
    expect(unitHasMap(info, 1)).toBe(false);
    expect(unitHasMap({ ...info, mapUnits: [1] }, 1)).toBe(true);
    expect(unitName(info, 5)).toBe('pc2');
    expect(unitName(info, 1)).toBe('conv1:1');
  });
});

describe('LiveStore: reconnect', () => {
  it('retries with exponential backoff after the server goes away, and resets the backoff after a hello', () => {
    const { store, sockets, timers, open, info } = setup();
    open();
    for (let tr = 0; tr < 4; tr++) sockets[0].deliver([...encodeStateTopic(makeState(tr), tr), ...encodeCouplingTopic(makeState(tr), tr)]);
    sockets[0].drop();
    expect(store.state.connection.phase).toBe('waiting');
    expect(store.state.connection.retryAt).toBe(250);
    timers.advance(249);
    expect(sockets.length).toBe(1);
    timers.advance(1);
    expect(sockets.length).toBe(2);
    expect(store.state.connection.phase).toBe('connecting');
    // refused again: 500, then 1000 ms
    sockets[1].drop();
    expect(store.state.connection.retryAt).toBe(250 + 500);
    timers.advance(500);
    sockets[2].drop();
    expect(store.state.connection.retryAt! - timers.now).toBe(1000);
    timers.advance(1000);
    expect(sockets.length).toBe(4);
    // the server is back: same session, so the history and the selection survive
    store.select(2, 4);
    open(sockets[3]);
    expect(store.state.connection).toMatchObject({ phase: 'open', attempt: 0, connects: 2 });
    expect(store.state.history!.size).toBe(4);
    expect(store.state.selection).toEqual({ unit: 2, feature: 4 });
    expect(sockets[3].sent.at(-1)).toMatchObject({ type: 'subscribe', map: { kind: 'network', index: 4 } });
    // the next drop starts again from the first delay
    sockets[3].drop();
    expect(store.state.connection.retryAt! - timers.now).toBe(250);
    void info;
  });

  it('a different session on reconnect starts a fresh history', () => {
    const { store, sockets, timers, open } = setup();
    open();
    sockets[0].deliver(encodeCouplingTopic(makeState(0), 0));
    sockets[0].drop();
    timers.advance(250);
    const other = makeInfo({ units: 4, features: 3, dims: [3, 3, 3], frame: null });
    sockets[1].deliver([hello(other, true), ...encodeSessionArrays(other, 0, 0)]);
    expect(store.state.session!.units.length).toBe(4);
    expect(store.state.history!.size).toBe(0);
  });

  it('dispose closes the socket and never reconnects', () => {
    const { store, sockets, timers, open } = setup();
    open();
    store.dispose();
    expect(sockets[0].closed?.code).toBe(1000);
    timers.advance(60_000);
    expect(sockets.length).toBe(1);
    expect(timers.pending).toBe(0);
    expect(store.state.connection.phase).toBe('closed');
  });

  it('backoff grows by its factor and stops at its cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a))).toEqual([250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
    expect(backoffDelay(2, { initialMs: 100, maxMs: 250, factor: 3 })).toBe(250);
  });
});
