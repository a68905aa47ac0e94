import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../server/net/server.ts';
import { SyncactError } from '../../server/errors.ts';
import { FakeSession } from './fakeSession.ts';

let server: RunningServer | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'syncact-net-'));
  dirs.push(d);
  return d;
}

describe('HTTP side of the live server', () => {
  it('binds 127.0.0.1 on a free port and prints a URL with the token', async () => {
    server = await startServer({ session: new FakeSession(), staticDir: join(tmp(), 'none') });
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.wsUrl).toBe(`ws://127.0.0.1:${server.port}/ws`);
    const other = await startServer({ session: new FakeSession(), staticDir: join(tmp(), 'none') });
    expect(other.token).not.toBe(server.token);
    await other.close();
  });

  it('/healthz and /metrics report the session', async () => {
    const session = new FakeSession();
    server = await startServer({ session, staticDir: join(tmp(), 'none') });
    session.emit(0);
    session.emit(1);
    const h = await get(server.port, '/healthz');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toEqual({ status: 'ok', tr: 1, clients: 0, lastFault: null });
    const m = await get(server.port, '/metrics');
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toContain('# TYPE syncact_trs_processed_total counter\nsyncact_trs_processed_total 2\n');
    expect(m.body).toContain('syncact_current_tr 1\n');
    // stage cnn took 1 ms at TR 0 and 2 ms at TR 1 (fake telemetry)
    expect(m.body).toContain('syncact_stage_latency_seconds_sum{stage="cnn"} 0.003\n');
    expect(m.body).toContain('syncact_stage_latency_seconds_count{stage="cnn"} 2\n');
    expect(m.body).toContain('syncact_stage_last_latency_seconds{stage="glm"} 0.0005\n');
    expect(m.body).toContain('syncact_clients 0\n');
    expect(m.body).toContain('syncact_dropped_updates_total 0\n');
    for (const line of m.body.trim().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) syncact_\w+ .+|syncact_\w+(\{\w+="[^"]*"\})? [-+0-9.eNaInf]+)$/);
    }
  });

  it('says the dashboard is not built when client/dist is missing', async () => {
    server = await startServer({ session: new FakeSession(), staticDir: join(tmp(), 'none') });
    const r = await get(server.port, '/');
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/dashboard is not built/);
    expect((await get(server.port, '/app.js')).status).toBe(404);
  });

  it('serves the built dashboard and nothing outside it', async () => {
    const root = tmp();
    const dist = join(root, 'dist');
    mkdirSync(join(dist, 'assets'), { recursive: true });
    writeFileSync(join(dist, 'index.html'), '<p>dash</p>');
    writeFileSync(join(dist, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(dist, '.secret'), 'no');
    writeFileSync(join(root, 'outside.txt'), 'secret');
    server = await startServer({ session: new FakeSession(), staticDir: dist });
    expect(await get(server.port, '/')).toMatchObject({ status: 200, type: 'text/html; charset=utf-8', body: '<p>dash</p>' });
    expect(await get(server.port, '/assets/app.js')).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8', body: 'console.log(1)' });
    expect(await get(server.port, '/assets/app.js', 'HEAD')).toMatchObject({ status: 200, body: '' });
    for (const p of ['/../outside.txt', '/%2e%2e/outside.txt', '/assets/..%2f..%2foutside.txt', '/.secret', '/%00', '/%E0%A4%A', '/assets/..\\..\\outside.txt']) {
      expect((await get(server.port, p)).status, p).toBe(404);
    }
    expect((await get(server.port, '/', 'POST')).status).toBe(405);
    expect((await get(server.port, '/ws')).status).toBe(426);
  });

  it('answers malformed HTTP with 400 and keeps serving', async () => {
    server = await startServer({ session: new FakeSession(), staticDir: join(tmp(), 'none') });
    const reply = await new Promise<string>((resolve) => {
      const s = connect(server!.port, '127.0.0.1', () => s.write('\x00\x01garbage\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect((await get(server.port, '/healthz')).status).toBe(200);
  });

  it('a port in use is SERVER_LISTEN_FAILED', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(startServer({ session: new FakeSession(), port })).rejects.toMatchObject({
        constructor: SyncactError,
        code: 'SERVER_LISTEN_FAILED',
        message: expect.stringContaining(`127.0.0.1:${port}: EADDRINUSE`),
      });
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});
