/**
 * The dashboard store against the real server (server/net on loopback, fed by the
 * FakeSession), with Node's `ws` as the browser WebSocket: hello and the session arrays,
 * topic updates as the server encodes them, control with the token, a map view, and a
 * reconnect after the server is closed and started again on the same port.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LiveStore, type SocketLike } from '../../client/src/lib/store.ts';
import { startServer, type RunningServer } from '../../server/net/server.ts';
import { FakeSession, makeState } from '../net/fakeSession.ts';

const servers: RunningServer[] = [];
const stores: LiveStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) s.dispose();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(session: FakeSession, port = 0, token = 'tok-0123456789'): Promise<RunningServer> {
  const s = await startServer({ session, port, token, staticDir: join(tmpdir(), 'syncact-no-dashboard') });
  servers.push(s);
  return s;
}

function storeFor(server: RunningServer, token: string | null): LiveStore {
  const store = new LiveStore({
    wsUrl: server.wsUrl,
    token,
    socket: (url) => new WebSocket(url) as unknown as SocketLike,
    backoff: { initialMs: 20, maxMs: 200, factor: 2 },
    schedule: (fn) => queueMicrotask(fn),
  });
  stores.push(store);
  store.connect();
  return store;
}

async function until(ok: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('LiveStore on the real server', () => {
  it('receives the session, every topic, and its map view', async () => {
    const session = new FakeSession();
    const server = await serve(session);
    const store = storeFor(server, server.token);
    await until(() => store.state.session !== null, 'the session');
    expect(store.state.control).toBe(true);
    expect(Array.from(store.state.session!.maskIndices)).toEqual(Array.from(session.info.maskIndices));
    for (let tr = 0; tr < 5; tr++) session.emit(tr);
    await until(() => store.state.coupling?.tr === 4 && store.state.units?.tr === 4 && store.state.cka?.tr === 4, 'TR 4');
    const s4 = makeState(4);
    expect(store.state.tr).toBe(4);
    expect(Array.from(store.state.coupling!.r)).toEqual(Array.from(s4.coupling));
    expect(Array.from(store.state.units!.features)).toEqual(Array.from(s4.features));
    expect(store.state.frame!.tr).toBe(4);
    expect(store.state.telemetry!.tr).toBe(4);
    expect(store.state.history!.size).toBe(5);
    expect(store.state.stats.skipped).toBe(0);
    // the default view is network 0; selecting a pair re-subscribes the map
    await until(() => store.state.map?.kind === 'network' && store.state.map.index === 0, 'the network map');
    store.select(2, 3);
    await until(() => store.state.map?.index === 3, 'the new map view');
    const g = session.info.maskIndices[7];
    expect(store.state.map!.values[g]).toBeCloseTo(-(3 * 1000 + 7) + 4 / 1000, 3);
  });

  it('controls the session with the token, and is refused without it', async () => {
    const session = new FakeSession();
    const server = await serve(session);
    const store = storeFor(server, server.token);
    await until(() => store.state.session !== null, 'the session');
    session.emit(0);
    await until(() => store.state.clock !== null, 'a state');
    store.pause();
    store.seek(7);
    store.setSpeed(2);
    await until(() => session.commands.length === 3, 'three commands');
    expect(session.commands).toEqual([{ op: 'pause' }, { op: 'seek', tr: 7 }, { op: 'speed', speed: 2 }]);
    await until(() => store.state.clock?.speed === 2, 'the speed ack');
    expect(store.state.clock!.playing).toBe(false);

    const watcher = storeFor(server, 'wrong-token-000');
    await until(() => watcher.state.session !== null, 'the watcher');
    expect(watcher.state.control).toBe(false);
    watcher.play();
    expect(watcher.state.lastError?.code).toBe('PROTOCOL_UNAUTHORIZED');
    expect(session.commands.length).toBe(3);
  });

  it('reconnects when the server goes away and comes back on the same port', async () => {
    const session = new FakeSession();
    const first = await serve(session);
    const store = storeFor(first, first.token);
    await until(() => store.state.session !== null, 'the session');
    session.emit(0);
    session.emit(1);
    await until(() => store.state.tr === 1, 'TR 1');
    await first.close();
    servers.splice(servers.indexOf(first), 1);
    await until(() => store.state.connection.phase === 'waiting', 'the disconnect');
    // refused while nothing listens: the attempts grow
    await until(() => store.state.connection.attempt >= 2, 'a second failed attempt');
    const again = new FakeSession();
    await serve(again, first.port, first.token);
    await until(() => store.state.connection.phase === 'open', 'the reconnect');
    expect(store.state.connection).toMatchObject({ attempt: 0, connects: 2 });
    again.emit(0);
    await until(() => store.state.tr === 0 && store.state.coupling?.tr === 0, 'the new run');
    expect(store.state.control).toBe(true);
    expect(store.state.history!.size).toBe(1); // the jump back to TR 0 forgot TR 1
  });
});
