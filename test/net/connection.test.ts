/**
 * The per-client coalescing logic on a stub socket (no network): what is sent, what waits,
 * what is replaced, and in which order.
 */
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Connection, type ConnectionContext } from '../../server/net/connection.ts';
import { ServerMetrics } from '../../server/net/metrics.ts';
import { lazyUpdate, type Update } from '../../server/net/update.ts';
import type { Topic } from '../../protocol/topics.ts';
import { makeInfo } from './fakeSession.ts';

class StubSocket {
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  sent: { data: string | Uint8Array; cb?: (err?: Error) => void }[] = [];
  send(data: string | Uint8Array, _opts: unknown, cb?: (err?: Error) => void) {
    this.sent.push({ data, cb });
    this.bufferedAmount += typeof data === 'string' ? data.length : data.byteLength;
  }
  /** The peer read everything: buffer empty, completion callbacks fire. */
  drain() {
    this.bufferedAmount = 0;
    for (const s of this.sent.splice(0)) s.cb?.();
  }
}

function setup(highWaterBytes = 100) {
  const metrics = new ServerMetrics();
  const ctx: ConnectionContext = {
    info: makeInfo(),
    token: 't',
    metrics,
    highWaterBytes,
    rateLimit: { burst: 10, perSecond: 10 },
    currentTr: () => 0,
    snapshot: () => undefined,
    control: () => undefined,
    viewsChanged: () => undefined,
  };
  const ws = new StubSocket();
  const conn = new Connection(ws as unknown as WebSocket, ctx, false);
  const log: string[] = [];
  const u = (topic: Topic, seq: number, bytes = 60): Update =>
    lazyUpdate(topic, seq, seq, () => {
      log.push(`${topic}:${seq}`);
      return [`${topic}:${seq}`.padEnd(bytes, '.')];
    });
  return { conn, ws, metrics, log, u };
}

const sentNames = (ws: StubSocket) => ws.sent.map((s) => String(s.data).replace(/\.+$/, ''));

describe('Connection coalescing', () => {
  it('sends at once under high water, holds one update per topic above it, newest wins', () => {
    const { conn, ws, metrics, u, log } = setup(100);
    conn.offer(u('state', 0));
    conn.offer(u('coupling', 0));
    expect(sentNames(ws)).toEqual(['state:0', 'coupling:0']); // 60 < 100, then 120 ≥ 100
    for (let seq = 1; seq <= 5; seq++) {
      conn.offer(u('state', seq));
      conn.offer(u('coupling', seq));
      expect(conn.pending.size).toBeLessThanOrEqual(2);
    }
    expect(sentNames(ws)).toEqual(['state:0', 'coupling:0']);
    expect(conn.pending.size).toBe(2);
    expect(conn.dropped).toBe(8); // seq 1..4 of both topics replaced
    expect(metrics.dropped).toBe(8);
    // replaced updates were never encoded
    expect(log).toEqual(['state:0', 'coupling:0']);
    ws.drain();
    // the drain callback flushed the newest of each topic, in slot order, up to high water
    expect(sentNames(ws)).toEqual(['state:5', 'coupling:5']);
    expect(conn.pending.size).toBe(0);
  });

  it('never takes an update older than (or as old as) the last one taken for its topic', () => {
    const { conn, ws, u } = setup(1000);
    conn.offer(u('state', 7)); // e.g. the snapshot given at subscription
    conn.offer(u('state', 6)); // a TR still queued for fan-out when the client subscribed
    conn.offer(u('state', 7));
    conn.offer(u('state', 8));
    expect(sentNames(ws)).toEqual(['state:7', 'state:8']);
    expect(conn.dropped).toBe(0);
  });

  it('a closed socket drops its pending updates instead of sending', () => {
    const { conn, ws, u } = setup(50);
    conn.offer(u('state', 0));
    conn.offer(u('state', 1));
    expect(conn.pending.size).toBe(1);
    ws.readyState = WebSocket.CLOSED;
    ws.drain();
    expect(conn.pending.size).toBe(0);
    expect(sentNames(ws)).toEqual([]);
  });

  it('put without flush batches a TR; flush sends it in topic order', () => {
    const { conn, ws, u } = setup(1000);
    conn.put(u('units', 3));
    conn.put(u('state', 3));
    expect(ws.sent).toEqual([]);
    conn.flush();
    expect(sentNames(ws)).toEqual(['units:3', 'state:3']);
  });
});
