/**
 * Hostile and broken clients: each is refused with a typed error (or closed, alone),
 * while a watching client keeps receiving every TR with no gaps.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startServer, type RunningServer, type ServerOptions } from '../../server/net/server.ts';
import { FakeSession } from './fakeSession.ts';
import { TestClient, sleep } from './testClient.ts';
import { createRng } from '../../server/engine/random.ts';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function setup(options: Partial<ServerOptions> = {}) {
  const session = new FakeSession();
  server = await startServer({ session, staticDir: join(tmpdir(), 'syncact-no-dashboard'), ...options });
  const watcher = await client('?topics=state');
  await watcher.until(() => watcher.json('hello').length === 1);
  return { session, watcher };
}

async function client(query = '', headers: Record<string, string> = {}): Promise<TestClient> {
  const c = await TestClient.connect(server!.wsUrl + query, { headers });
  clients.push(c);
  return c;
}

/** Publishes TRs from..to-1 and checks the watcher got exactly those, in order. */
async function watcherStillFine(session: FakeSession, watcher: TestClient, from: number, to: number) {
  for (let tr = from; tr < to; tr++) session.emit(tr);
  await watcher.until(() => watcher.json('state').length >= to, 5000, 'watcher states');
  expect(watcher.json('state').map((s) => s.seq)).toEqual(Array.from({ length: to }, (_, i) => i));
  expect(watcher.closed).toBeNull();
}

describe('hostile input', () => {
  it('garbage bytes, malformed JSON, unknown types, wrong versions: typed errors, connection kept', async () => {
    const { session, watcher } = await setup();
    session.emit(0);
    const bad = await client();
    bad.ws.send(randomBytes(64));
    bad.ws.send(Buffer.from('SYNCxxxx'));
    bad.send('{"type": "subscribe", "v": 1, "topics": [');
    bad.send('"just a string"');
    bad.send({ type: 'launch', v: 1 });
    bad.send({ type: 'subscribe', v: 99, topics: ['state'] });
    bad.send({ type: 'subscribe', v: 1, topics: ['state'], path: '/etc/passwd' });
    bad.send({ type: 'hello', v: 1 });
    await bad.until(() => bad.json('error').length === 8);
    expect(bad.json('error').map((e) => e.code)).toEqual([
      'PROTOCOL_BAD_FRAME',
      'PROTOCOL_BAD_FRAME',
      'PROTOCOL_INVALID_MESSAGE',
      'PROTOCOL_INVALID_MESSAGE',
      'PROTOCOL_UNKNOWN_TYPE',
      'PROTOCOL_VERSION_MISMATCH',
      'PROTOCOL_INVALID_MESSAGE',
      'PROTOCOL_UNKNOWN_TYPE',
    ]);
    expect(bad.json('error')[2].message).toMatch(/^not JSON/);
    expect(bad.json('error')[6].message).toMatch(/unknown field "path"/);
    // session message seq counts hello + the 8 errors without gaps
    expect(bad.json('error').map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // still usable afterwards
    bad.send({ type: 'subscribe', v: 1, topics: ['state'] });
    await bad.until(() => bad.json('state').length === 1);
    expect(bad.closed).toBeNull();
    await watcherStillFine(session, watcher, 1, 20);
    const metrics = await fetch(`http://127.0.0.1:${server!.port}/metrics`).then((r) => r.text());
    expect(metrics).toContain('syncact_rejected_messages_total{code="PROTOCOL_BAD_FRAME"} 2\n');
    expect(metrics).toContain('syncact_rejected_messages_total{code="PROTOCOL_UNKNOWN_TYPE"} 2\n');
  });

  it('a message over maxPayload closes that client with 1009, and only that client', async () => {
    const { session, watcher } = await setup({ maxPayload: 4096 });
    const big = await client();
    await big.until(() => big.json('hello').length === 1);
    big.send(JSON.stringify({ type: 'ping', v: 1, pad: 'x'.repeat(5000) }));
    await big.until(() => big.closed !== null, 5000, 'close');
    expect(big.closed!.code).toBe(1009);
    await watcherStillFine(session, watcher, 0, 10);
    expect(server!.stats().clients.length).toBe(1);
  });

  it('control without the token is refused; a flood is rate limited; others unaffected', async () => {
    const { session, watcher } = await setup({ rateLimit: { burst: 20, perSecond: 1 } });
    const c = await client();
    await c.until(() => c.json('hello').length === 1);
    c.send({ type: 'control', v: 1, command: { op: 'seek', tr: 0 } });
    await c.until(() => c.json('error').length === 1);
    expect(c.json('error')[0].code).toBe('PROTOCOL_UNAUTHORIZED');
    for (let i = 0; i < 500; i++) c.send({ type: 'ping', v: 1, id: i });
    await c.until(() => c.json('error').some((e) => e.code === 'PROTOCOL_RATE_LIMITED'));
    await sleep(50);
    const pongs = c.json('pong').length;
    // the bucket held 19 after the control message, refilling at 1 per second
    expect(pongs).toBeGreaterThanOrEqual(19);
    expect(pongs).toBeLessThan(30);
    // at most one rate-limit reply per second, not one per dropped message
    const limited = c.json('error').filter((e) => e.code === 'PROTOCOL_RATE_LIMITED').length;
    expect(limited).toBeGreaterThanOrEqual(1);
    expect(limited).toBeLessThan(10);
    expect(session.commands).toEqual([]);
    await watcherStillFine(session, watcher, 0, 10);
  });

  it('refuses foreign browser origins with 403 and accepts same-machine ones', async () => {
    const { session, watcher } = await setup();
    const origin = (o: string, extra: Record<string, string> = {}) => client('', { Origin: o, ...extra }).then(() => 'open', (e: { statusCode?: number }) => e.statusCode);
    expect(await origin('http://evil.example')).toBe(403);
    expect(await origin('null')).toBe(403);
    expect(await origin('file://')).toBe(403);
    // DNS rebinding: the Host header matches the Origin, but it is not a loopback name
    expect(await origin(`http://evil.example:${server!.port}`, { Host: `evil.example:${server!.port}` })).toBe(403);
    expect(await origin(`http://127.0.0.1:${server!.port}`)).toBe('open');
    expect(await origin('http://localhost:5173')).toBe('open');
    const wrongPath = await TestClient.connect(`ws://127.0.0.1:${server!.port}/other`).then(() => 'open', (e: { statusCode?: number }) => e.statusCode);
    expect(wrongPath).toBe(404);
    const metrics = await fetch(`http://127.0.0.1:${server!.port}/metrics`).then((r) => r.text());
    expect(metrics).toContain('syncact_refused_upgrades_total{reason="origin"} 4\n');
    await watcherStillFine(session, watcher, 0, 5);
  });

  it('connections beyond maxClients are refused with 503; the others are unaffected', async () => {
    const { session, watcher } = await setup({ maxClients: 3 });
    await client();
    await client();
    await expect(client()).rejects.toMatchObject({ statusCode: 503 });
    await watcherStillFine(session, watcher, 0, 5);
  });

  it('allowedOrigins admits a listed origin', async () => {
    await setup({ allowedOrigins: ['https://lab.example.org'] });
    await expect(client('', { Origin: 'https://lab.example.org' })).resolves.toBeInstanceOf(TestClient);
    await expect(client('', { Origin: 'https://other.example.org' })).rejects.toMatchObject({ statusCode: 403 });
  });

  it('clients killed mid-message and seeded random frames leave the server serving', async () => {
    const { session, watcher } = await setup();
    const rng = createRng(99);
    for (let k = 0; k < 10; k++) {
      await new Promise<void>((resolve) => {
        const s = connect(server!.port, '127.0.0.1', () => {
          s.write(
            `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          );
        });
        s.once('data', () => {
          // half a masked text frame announcing 1000 bytes, or random frame bytes, then gone
          const junk = k % 2 === 0 ? Buffer.from([0x81, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, 0x7b]) : Buffer.from(Array.from({ length: 1 + rng.int(30) }, () => rng.int(256)));
          s.write(junk, () => {
            s.destroy();
            resolve();
          });
        });
        s.on('error', () => resolve());
      });
    }
    await watcherStillFine(session, watcher, 0, 10);
    await sleep(50);
    expect(server!.stats().clients.length).toBe(1);
    expect((await fetch(`http://127.0.0.1:${server!.port}/healthz`)).status).toBe(200);
  });
});
