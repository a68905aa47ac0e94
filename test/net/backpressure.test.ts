/**
 * Slow and dead clients: a client that stops reading is coalesced to the latest update
 * per topic (bounded memory on the server, never a queue), a fast client beside it gets
 * everything, and a client that stops answering pings is terminated.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { startServer, type RunningServer, type ServerOptions } from '../../server/net/server.ts';
import { TOPIC_IDS } from '../../protocol/topics.ts';
import { FakeSession, makeInfo, type FakeSizes } from './fakeSession.ts';
import { TestClient, sleep } from './testClient.ts';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

// 64 units × 400 features: each coupling update is 3 × 25,600 elements ≈ 230 KB
const BIG: FakeSizes = { units: 64, features: 400, dims: [8, 8, 8], frame: [32, 32] };

async function setup(options: Partial<ServerOptions> = {}) {
  const session = new FakeSession(makeInfo(BIG), BIG);
  server = await startServer({ session, staticDir: join(tmpdir(), 'syncact-no-dashboard'), ...options });
  return session;
}

async function client(query: string): Promise<TestClient> {
  const c = await TestClient.connect(server!.wsUrl + query);
  clients.push(c);
  await c.until(() => c.json('hello').length === 1);
  return c;
}

const socketOf = (c: TestClient) => (c.ws as unknown as { _socket: Socket })._socket;

describe('backpressure', () => {
  it('a client that stops reading is coalesced: ≤ one pending update per topic, bounded buffer, then catches up to the latest', async () => {
    const HIGH = 256 * 1024;
    const session = await setup({ highWaterBytes: HIGH });
    const topics = ['state', 'coupling', 'units', 'frame'];
    const fast = await client(`?topics=${topics.join(',')}`);
    const slow = await client(`?topics=${topics.join(',')}`);
    socketOf(slow).pause();
    const N = 150; // ≈ 35 MB of coupling for the slow client if nothing were coalesced
    let maxPending = 0;
    let maxBuffered = 0;
    for (let tr = 0; tr < N; tr++) {
      session.emit(tr);
      // the pipeline runs at the fast client's pace here, so that client is truly fast
      await fast.until(() => fast.frames(TOPIC_IDS.coupling, 2).length === tr + 1, 5000, `fast client at TR ${tr}`);
      for (const c of server!.stats().clients) {
        maxPending = Math.max(maxPending, c.pending);
        maxBuffered = Math.max(maxBuffered, c.bufferedAmount);
      }
    }
    const stats = server!.stats();
    const slowStats = stats.clients.find((c) => c.dropped > 0);
    expect(slowStats, 'the paused client was coalesced').toBeDefined();
    expect(stats.clients.filter((c) => c.dropped > 0).length).toBe(1);
    expect(maxPending).toBeLessThanOrEqual(topics.length);
    // what sits in its socket buffer: at most high water + one topic update (< 300 KB here)
    expect(maxBuffered).toBeLessThan(HIGH + 300 * 1024);
    expect(stats.dropped).toBe(slowStats!.dropped);
    // the fast client got every TR, gapless
    expect(fast.json('state').map((s) => s.seq)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(fast.frames(TOPIC_IDS.coupling, 0).length).toBe(N);
    // resume: the slow client drains and ends on the latest TR of every topic, with gaps
    socketOf(slow).resume();
    await slow.until(() => slow.json('state').at(-1)?.tr === N - 1 && slow.frames(TOPIC_IDS.coupling, 2).at(-1)?.tr === N - 1, 15_000, 'slow client to catch up');
    const seqs = slow.json('state').map((s) => s.seq);
    expect(seqs.length).toBeLessThan(N);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const metrics = await fetch(`http://127.0.0.1:${server!.port}/metrics`).then((r) => r.text());
    expect(metrics).toContain(`syncact_dropped_updates_total ${stats.dropped}\n`);
  });

  it('the publish path never waits for clients: a paused client does not delay the others', async () => {
    const session = await setup({ highWaterBytes: 64 * 1024 });
    const paused = await Promise.all([1, 2, 3].map(() => client('?topics=coupling')));
    for (const p of paused) socketOf(p).pause();
    const fast = await client('?topics=state,coupling');
    for (let tr = 0; tr < 60; tr++) {
      session.emit(tr);
      await fast.until(() => fast.frames(TOPIC_IDS.coupling, 2).length === tr + 1, 5000, `fast client at TR ${tr}`);
    }
    expect(fast.frames(TOPIC_IDS.coupling, 1).map((f) => f.tr)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    for (const c of server!.stats().clients) expect(c.pending).toBeLessThanOrEqual(c.subscriptions.length);
  });

  it('heartbeat: a client that stops answering pings is terminated; a live one stays', async () => {
    await setup({ heartbeatMs: 500 });
    const live = await client('?topics=state');
    const dead = await client('?topics=state');
    socketOf(dead).pause(); // no pongs from here on
    const deadline = Date.now() + 5000;
    while (server!.stats().clients.length > 1 && Date.now() < deadline) await sleep(20);
    expect(server!.stats().clients.length).toBe(1);
    await sleep(1200); // two more heartbeats
    expect(live.closed).toBeNull();
    expect(server!.stats().clients.length).toBe(1);
  });
});
