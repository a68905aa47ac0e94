/**
 * The live server in a worker thread: the same protocol behaviour as in-thread, with the
 * session (FakeSession) on the test's thread and every socket on the worker's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startServerInWorker } from '../../server/net/startServerInWorker.ts';
import type { RunningServer } from '../../server/net/server.ts';
import { SyncactError } from '../../server/errors.ts';
import { TOPIC_IDS } from '../../protocol/topics.ts';
import { scatterMap } from '../../protocol/mapLayout.ts';
import { FakeSession, makeState } from './fakeSession.ts';
import { TestClient, sleep, tick } from './testClient.ts';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function client(query = ''): Promise<TestClient> {
  const c = await TestClient.connect(server!.wsUrl + query);
  clients.push(c);
  await c.until(() => c.json('hello').length === 1);
  return c;
}

describe('live server in a worker thread', () => {
  it('streams every TR in order, answers control through the session, serves maps, reports faults', async () => {
    const session = new FakeSession();
    server = await startServerInWorker({ session, staticDir: join(tmpdir(), 'syncact-no-dashboard'), statsMs: 50 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    const c = await client(`?topics=state,coupling&token=${server.token}`);
    expect(c.json('hello')[0]).toMatchObject({ control: true, session: { name: 'fake', trCount: 10_000 } });
    const N = 100;
    for (let tr = 0; tr < N; tr++) {
      session.emit(tr);
      if (tr % 10 === 9) await tick();
    }
    await c.until(() => c.json('state').length === N, 10_000, `${N} TRs`);
    expect(c.json('state').map((s) => s.seq)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(c.frames(TOPIC_IDS.coupling, 0)[42].data).toEqual(makeState(42).coupling);

    // control: applied on the session's thread, acknowledged after it returns
    c.send({ type: 'control', v: 1, id: 1, command: { op: 'seek', tr: 5 } });
    await c.until(() => c.json('ack').length === 1);
    expect(c.json('ack')[0]).toMatchObject({ id: 1, what: 'seek' });
    expect(session.commands).toEqual([{ op: 'seek', tr: 5 }]);
    session.control = () => {
      throw new SyncactError('REPLAY_BAD_OPTIONS', 'not now');
    };
    c.send({ type: 'control', v: 1, id: 2, command: { op: 'play' } });
    await c.until(() => c.json('error').length === 1);
    expect(c.json('error')[0]).toMatchObject({ id: 2, code: 'REPLAY_BAD_OPTIONS', message: 'not now' });

    // maps: the worker asks for the watched view; it arrives without waiting for a TR
    const m = await client();
    m.send({ type: 'subscribe', v: 1, topics: ['map'], map: { kind: 'network', index: 2 } });
    await m.until(() => m.frames(TOPIC_IDS.map).length === 1, 5000, 'map');
    expect(m.json('map')[0]).toMatchObject({ kind: 'network', index: 2, mapTr: N - 1 });
    const info = session.info;
    expect(m.frames(TOPIC_IDS.map)[0].data).toEqual(scatterMap(info.grid.dims, info.maskIndices, session.map('network', 2)!.values, null));
    session.emit(N);
    await m.until(() => m.frames(TOPIC_IDS.map).length === 2, 5000, 'map at the next TR');
    expect(m.json('map')[1]).toMatchObject({ tr: N, mapTr: N });

    // faults cross the thread with their code
    session.states.error(new SyncactError('MOVIE_DECODE_FAILED', 'ffmpeg died'));
    await c.until(() => c.json('fault').length === 1);
    expect(c.json('fault')[0]).toMatchObject({ code: 'MOVIE_DECODE_FAILED', message: 'ffmpeg died' });

    await sleep(150);
    expect(server.stats()).toMatchObject({ currentTr: N, trsProcessed: N + 1 });
    expect(server.stats().clients.length).toBe(2);
  });

  it('a port in use fails the start with SERVER_LISTEN_FAILED', async () => {
    const first = await startServerInWorker({ session: new FakeSession() });
    try {
      await expect(startServerInWorker({ session: new FakeSession(), port: first.port })).rejects.toMatchObject({ code: 'SERVER_LISTEN_FAILED' });
    } finally {
      await first.close();
    }
  });
});
