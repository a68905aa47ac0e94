/**
 * The live server with real ws clients on loopback, fed by a FakeSession (a Subject
 * stands in for the pipeline until server/streams lands).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startServer, type RunningServer } from '../../server/net/server.ts';
import { SyncactError } from '../../server/errors.ts';
import { TOPIC_IDS } from '../../protocol/topics.ts';
import { scatterMap } from '../../protocol/mapLayout.ts';
import { Subject } from 'rxjs';
import { FakeSession, makeState } from './fakeSession.ts';
import { TestClient, sleep, tick } from './testClient.ts';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function setup(options: { session?: FakeSession } = {}) {
  const session = options.session ?? new FakeSession();
  server = await startServer({ session, staticDir: join(tmpdir(), 'syncact-no-dashboard') });
  return { session, server };
}

async function client(query = ''): Promise<TestClient> {
  const c = await TestClient.connect(server!.wsUrl + query);
  clients.push(c);
  return c;
}

describe('live session over WebSocket', () => {
  it('sends hello with SessionInfo and the session arrays, read-only without the token', async () => {
    const { session } = await setup();
    const c = await client();
    await c.until(() => c.frames(TOPIC_IDS.session).length === 2, 5000, 'hello');
    const [hello] = c.json('hello');
    expect(c.received[0]).toEqual({ kind: 'json', message: hello });
    expect(hello).toMatchObject({ v: 1, tr: -1, seq: 0, protocol: 1, control: false, subscribed: [], selection: { target: 'unit', index: 0 } });
    expect(hello.topics).toEqual(['state', 'frame', 'units', 'coupling', 'map', 'annotations', 'cka', 'telemetry']);
    const { maskIndices, background, ...rest } = session.info;
    expect(hello.session).toEqual({ ...rest, arrays: { maskIndices: { part: 0, length: maskIndices.length }, background: { part: 1, length: background.length } } });
    const [mask, bg] = c.frames(TOPIC_IDS.session);
    expect(mask.data).toEqual(maskIndices);
    expect(bg.data).toEqual(background);
    const t = await client(`?token=${server!.token}`);
    await t.until(() => t.json('hello').length === 1);
    expect(t.json('hello')[0].control).toBe(true);
  });

  it('?topics= with unknown names: hello first, then one error, then the snapshot of the known ones', async () => {
    const { session } = await setup();
    session.emit(0);
    const c = await client('?topics=state,secrets,,state');
    await c.until(() => c.json('state').length === 1);
    const kinds = c.received.map((d) => (d.kind === 'json' ? d.message.type : `frame${d.frame.topic}`));
    expect(kinds).toEqual(['hello', 'frame0', 'frame0', 'error', 'state']);
    expect(c.json('hello')[0].subscribed).toEqual(['state']);
    expect(c.json('error')[0]).toMatchObject({ code: 'PROTOCOL_INVALID_MESSAGE', message: expect.stringContaining('unknown topics "secrets"') });
  });

  it('close() ends every connection, a reading one with 1001 and a stalled one by termination', async () => {
    const { session } = await setup();
    const live = await client('?topics=state');
    const stalled = await client('?topics=state');
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    session.emit(0);
    await server!.close();
    server = undefined;
    await live.until(() => live.closed !== null, 5000, 'close');
    expect(live.closed!.code).toBe(1001);
  });

  it('a fast client receives every TR in order at speed max, with gapless sequence numbers on every topic', async () => {
    const { session } = await setup();
    const c = await client('?topics=state,units,coupling,cka,frame,telemetry');
    await c.until(() => c.json('hello').length === 1);
    const N = 300;
    for (let tr = 0; tr < N; tr++) {
      session.emit(tr);
      if (tr % 10 === 9) await tick(); // the pipeline yields now and then; never waits for clients
    }
    await c.until(() => c.json('telemetry').length === N, 10_000, `${N} TRs`);
    const states = c.json('state');
    expect(states.map((s) => s.tr)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(states.map((s) => s.seq)).toEqual(Array.from({ length: N }, (_, i) => i));
    for (const [topic, parts] of [[TOPIC_IDS.units, 2], [TOPIC_IDS.coupling, 3], [TOPIC_IDS.cka, 1], [TOPIC_IDS.frame, 1]] as const) {
      const fr = c.frames(topic);
      expect(fr.length).toBe(N * parts);
      expect(fr.map((f) => f.seq)).toEqual(Array.from({ length: N * parts }, (_, i) => Math.floor(i / parts)));
      expect(fr.map((f) => f.tr)).toEqual(fr.map((f) => f.seq));
    }
    // payloads are the published arrays
    const want = makeState(123);
    expect(c.frames(TOPIC_IDS.coupling, 0)[123].data).toEqual(want.coupling);
    expect(c.frames(TOPIC_IDS.units, 1)[123].data).toEqual(want.features);
    expect(server!.stats()).toMatchObject({ currentTr: N - 1, trsProcessed: N, dropped: 0 });
  });

  it('a burst published without yielding is fanned out in bounded chunks, every TR delivered', async () => {
    const { session } = await setup();
    const c = await client('?topics=state');
    await c.until(() => c.json('hello').length === 1);
    for (let tr = 0; tr < 500; tr++) session.emit(tr); // no await: the event loop never turns
    await c.until(() => c.json('state').length === 500, 10_000, '500 TRs');
    expect(c.json('state').map((s) => s.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(server!.stats().dropped).toBe(0);
  });

  it('subscribes by message: snapshot first, then updates; unsubscribe stops them', async () => {
    const { session } = await setup();
    session.emit(0);
    session.emit(1);
    const c = await client();
    c.send({ type: 'subscribe', v: 1, id: 5, topics: ['state', 'cka'] });
    await c.until(() => c.json('state').length === 1 && c.frames(TOPIC_IDS.cka).length === 1);
    expect(c.json('subscribed')[0]).toMatchObject({ id: 5, topics: ['state', 'cka'], tr: 1 });
    expect(c.json('state')[0]).toMatchObject({ tr: 1, seq: 1 });
    session.emit(2);
    await c.until(() => c.json('state').length === 2);
    c.send({ type: 'unsubscribe', v: 1, id: 6, topics: ['state'] });
    await c.until(() => c.json('ack').length === 1);
    expect(c.json('ack')[0]).toMatchObject({ id: 6, what: 'unsubscribe' });
    session.emit(3);
    await c.until(() => c.frames(TOPIC_IDS.cka).length === 3);
    expect(c.json('state').map((s) => s.tr)).toEqual([1, 2]);
  });

  it('annotations: the latest table as a snapshot, then every recomputation', async () => {
    const { session } = await setup();
    session.emit(0);
    session.annotations.next([{ unit: 1, label: 'visual', sign: 1, score: 0.5, p: 0.01, q: 0.02 }]);
    const c = await client('?topics=annotations');
    await c.until(() => c.json('annotations').length === 1);
    expect(c.json('annotations')[0]).toMatchObject({ tr: 0, seq: 0, rows: [{ unit: 1, label: 'visual' }] });
    session.emit(1);
    session.annotations.next([{ unit: 2, label: 'auditory', sign: -1, score: NaN, p: 1, q: 1 }]);
    await c.until(() => c.json('annotations').length === 2);
    expect(c.json('annotations')[1]).toMatchObject({ tr: 1, seq: 1, rows: [{ unit: 2, score: null }] });
  });

  it('map topic: the selected unit by default, a chosen view per client, select changes the default', async () => {
    const { session } = await setup();
    session.emit(0);
    const whole = await client('?topics=map');
    const sliced = await client();
    sliced.send({ type: 'subscribe', v: 1, topics: ['map'], map: { kind: 'network', index: 3, slices: { axis: 'z', indices: [1, 2] } } });
    await whole.until(() => whole.frames(TOPIC_IDS.map).length === 1);
    await sliced.until(() => sliced.frames(TOPIC_IDS.map).length === 1);
    const info = session.info;
    expect(whole.json('map')[0]).toMatchObject({ kind: 'unit-t', index: 0, slices: null, shape: [4, 5, 6], tr: 0, mapTr: 0 });
    expect(whole.frames(TOPIC_IDS.map)[0].data).toEqual(scatterMap(info.grid.dims, info.maskIndices, session.map('unit-t', 0)!.values, null));
    expect(sliced.json('map')[0]).toMatchObject({ kind: 'network', index: 3, slices: { axis: 'z', indices: [1, 2] }, shape: [2, 5, 6] });
    expect(sliced.frames(TOPIC_IDS.map)[0].data).toEqual(
      scatterMap(info.grid.dims, info.maskIndices, session.map('network', 3)!.values, { axis: 'z', indices: [1, 2] }),
    );
    const boss = await client(`?token=${server!.token}`);
    boss.send({ type: 'control', v: 1, id: 1, command: { op: 'select', target: 'unit', index: 4 } });
    await boss.until(() => boss.json('ack').length === 1);
    expect(session.commands).toEqual([{ op: 'select', target: 'unit', index: 4 }]);
    // the default-view client gets the newly selected map at once (the replay may be paused)
    await whole.until(() => whole.frames(TOPIC_IDS.map).length === 2);
    expect(whole.json('map')[1]).toMatchObject({ kind: 'unit-t', index: 4, tr: 0, seq: 0 });
    expect(whole.frames(TOPIC_IDS.map)[1].data).toEqual(scatterMap(info.grid.dims, info.maskIndices, session.map('unit-t', 4)!.values, null));
    expect(sliced.frames(TOPIC_IDS.map).length).toBe(1); // its own view did not change
    session.emit(1);
    await whole.until(() => whole.frames(TOPIC_IDS.map).length === 3);
    await sliced.until(() => sliced.frames(TOPIC_IDS.map).length === 2);
    expect(whole.json('map')[2]).toMatchObject({ kind: 'unit-t', index: 4, tr: 1, seq: 1 });
    expect(sliced.json('map')[1]).toMatchObject({ kind: 'network', index: 3, tr: 1, seq: 1 });
    // an out-of-range view is refused and the previous view stays
    sliced.send({ type: 'subscribe', v: 1, id: 9, topics: [], map: { slices: { axis: 'x', indices: [6] } } });
    await sliced.until(() => sliced.json('error').length === 1);
    expect(sliced.json('error')[0]).toMatchObject({ id: 9, code: 'PROTOCOL_INVALID_MESSAGE', message: expect.stringContaining('x slice 6 is outside the grid') });
  });

  it('the initial selection is an option', async () => {
    const session = new FakeSession();
    server = await startServer({ session, staticDir: join(tmpdir(), 'syncact-no-dashboard'), selection: { target: 'network', index: 2 } });
    session.emit(0);
    const c = await client('?topics=map');
    await c.until(() => c.json('map').length === 1);
    expect(c.json('hello')[0].selection).toEqual({ target: 'network', index: 2 });
    expect(c.json('map')[0]).toMatchObject({ kind: 'network', index: 2 });
  });

  it('control needs the token: refused without, accepted after auth, bounds checked', async () => {
    const { session } = await setup();
    const c = await client();
    await c.until(() => c.json('hello').length === 1);
    c.send({ type: 'control', v: 1, id: 1, command: { op: 'pause' } });
    c.send({ type: 'auth', v: 1, id: 2, token: 'guess' });
    await c.until(() => c.json('error').length === 2);
    expect(c.json('error')).toMatchObject([
      { id: 1, code: 'PROTOCOL_UNAUTHORIZED', message: expect.stringContaining('control.pause: needs the session token') },
      { id: 2, code: 'PROTOCOL_UNAUTHORIZED' },
    ]);
    expect(session.commands).toEqual([]);
    c.send({ type: 'auth', v: 1, id: 3, token: server!.token });
    c.send({ type: 'control', v: 1, id: 4, command: { op: 'speed', speed: 2 } });
    c.send({ type: 'control', v: 1, id: 5, command: { op: 'seek', tr: 10_000 } });
    c.send({ type: 'control', v: 1, id: 6, command: { op: 'select', target: 'network', index: 5 } });
    c.send({ type: 'control', v: 1, id: 7, command: { op: 'seek', tr: 42 } });
    c.send({ type: 'ping', v: 1, id: 8 });
    await c.until(() => c.json('pong').length === 1);
    expect(c.json('ack').map((a) => [a.id, a.what])).toEqual([[3, 'auth'], [4, 'speed'], [7, 'seek']]);
    expect(c.json('error').slice(2)).toMatchObject([
      { id: 5, code: 'PROTOCOL_INVALID_MESSAGE', message: expect.stringContaining('past the run (10000 TRs)') },
      { id: 6, code: 'PROTOCOL_INVALID_MESSAGE', message: expect.stringContaining('network 5 is out of range (0..4)') },
    ]);
    expect(session.commands).toEqual([{ op: 'speed', speed: 2 }, { op: 'seek', tr: 42 }]);
    // a session that refuses a command: its typed error goes back to the client
    session.control = () => {
      throw new SyncactError('REPLAY_BAD_OPTIONS', 'cannot loop a live run');
    };
    c.send({ type: 'control', v: 1, id: 9, command: { op: 'loop', loop: true } });
    await c.until(() => c.json('error').length === 5);
    expect(c.json('error')[4]).toMatchObject({ id: 9, code: 'REPLAY_BAD_OPTIONS', message: 'cannot loop a live run' });
  });

  it('reconnect: hello and a snapshot of the current state, then it continues', async () => {
    const { session } = await setup();
    let c = await client('?topics=state,coupling');
    for (let tr = 0; tr < 5; tr++) session.emit(tr);
    await c.until(() => c.json('state').length === 5);
    await c.close();
    for (let tr = 5; tr < 9; tr++) session.emit(tr); // missed while away
    c = await client('?topics=state,coupling');
    await c.until(() => c.json('state').length === 1 && c.frames(TOPIC_IDS.coupling).length === 3);
    expect(c.received[0]).toMatchObject({ kind: 'json', message: { type: 'hello', tr: 8, subscribed: ['state', 'coupling'] } });
    expect(c.json('state')[0]).toMatchObject({ tr: 8, seq: 8 });
    expect(c.frames(TOPIC_IDS.coupling, 0)[0].data).toEqual(makeState(8).coupling);
    session.emit(9);
    session.emit(10);
    await c.until(() => c.json('state').length === 3);
    expect(c.json('state').map((s) => s.tr)).toEqual([8, 9, 10]);
  });

  it('a pipeline fault is reported to every client, and to later ones; the server stays up', async () => {
    const { session } = await setup();
    const a = await client('?topics=state');
    session.emit(0);
    session.states.error(new Error('movie decoder exited with code 1'));
    await a.until(() => a.json('fault').length === 1);
    expect(a.json('fault')[0]).toMatchObject({ code: 'SESSION_FAULT', message: 'movie decoder exited with code 1', tr: 0 });
    const b = await client('?topics=state');
    await b.until(() => b.json('fault').length === 1 && b.json('state').length === 1);
    expect(b.json('state')[0].tr).toBe(0);
    const h = await fetch(`http://127.0.0.1:${server!.port}/healthz`).then((r) => r.json());
    expect(h).toMatchObject({ status: 'failed', lastFault: { code: 'SESSION_FAULT' } });
  });

  it('problems the session survives are faults for every client; the stream goes on', async () => {
    const session = new FakeSession();
    const faults = new Subject<SyncactError | Error>();
    Object.assign(session, { faults$: faults.asObservable() });
    await setup({ session });
    const c = await client('?topics=state');
    session.emit(0);
    faults.next(new SyncactError('REPLAY_MISSING_VOLUME', 'vol_0001.nii vanished', '/scans/vol_0001.nii'));
    session.emit(1);
    await c.until(() => c.json('state').length === 2);
    // in publication order: TR 0, the fault, TR 1
    const order = c.received.flatMap((d) => (d.kind === 'json' && (d.message.type === 'state' || d.message.type === 'fault') ? [d.message.type] : []));
    expect(order).toEqual(['state', 'fault', 'state']);
    expect(c.json('fault')[0]).toMatchObject({ code: 'REPLAY_MISSING_VOLUME', message: '/scans/vol_0001.nii: vol_0001.nii vanished', tr: 0 });
    const h = await fetch(`http://127.0.0.1:${server!.port}/healthz`).then((r) => r.json());
    expect(h).toMatchObject({ status: 'ok', tr: 1, lastFault: { code: 'REPLAY_MISSING_VOLUME' } });
    // a client arriving later is not told about a fault the session survived
    const late = await client('?topics=state');
    await late.until(() => late.json('state').length === 1);
    expect(late.json('fault')).toEqual([]);
  });

  it('a map that fails to build is a fault for its watchers; other topics keep flowing', async () => {
    const { session } = await setup();
    session.map = () => {
      throw new Error('volume file vanished');
    };
    const c = await client('?topics=state,map');
    session.emit(0);
    session.emit(1);
    await c.until(() => c.json('state').length === 2 && c.json('fault').length >= 1);
    expect(c.json('fault')[0]).toMatchObject({ code: 'SESSION_FAULT', message: 'volume file vanished' });
    expect(c.frames(TOPIC_IDS.map)).toEqual([]);
  });

  it('end of the run is announced', async () => {
    const { session } = await setup();
    const c = await client('?topics=state');
    session.emit(0);
    session.states.complete();
    await c.until(() => c.json('end').length === 1);
    await sleep(10);
    expect(c.json('state').length).toBe(1);
    const h = (await fetch(`http://127.0.0.1:${server!.port}/healthz`).then((r) => r.json())) as { status: string };
    expect(h.status).toBe('ended');
    const late = await client('?topics=state');
    await late.until(() => late.json('end').length === 1);
    expect(late.json('state').map((s) => s.tr)).toEqual([0]);
  });
});
