/**
 * `syncact demo` serves from a worker thread (serveDemo), so that clients never cost the
 * pipeline's thread the fan-out: the server answers /healthz while the calling thread is
 * blocked (a synchronous child process does the request), which an in-thread server could
 * not. Host, port and token behave as with the in-thread server.
 */
import { spawnSync } from 'node:child_process';
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { demo, serveDemo } from '../../server/commands/demo.ts';
import { commands } from '../../server/commands/index.ts';
import type { LiveSession } from '../../server/net/liveSession.ts';
import type { SessionInfo, TrState } from '../../protocol/state.ts';

function info(): SessionInfo {
  return {
    version: 1,
    name: 'stub',
    tr: 1,
    trCount: 10,
    onset: 0,
    model: { id: 'stub', backend: 'none' },
    layers: [{ name: 'l1', channels: 2 }],
    units: [0, 1].map((i) => ({ index: i, layer: 'l1', channel: i })),
    features: ['f0'],
    grid: { dims: [2, 2, 2], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] },
    maskIndices: Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
    background: new Float32Array(8),
    regressors: [],
  };
}

describe('syncact demo', () => {
  it('is registered', () => {
    expect(commands).toContain(demo);
  });

  it('serves from a worker thread: /healthz answers while the calling thread is blocked', async () => {
    const session: LiveSession = {
      info: info(),
      state$: new Subject<TrState>().asObservable(),
      annotations$: new Subject<never>().asObservable(),
      map: () => undefined,
      control: () => undefined,
    };
    const server = await serveDemo(session, { host: '127.0.0.1', port: 0, token: 'demo-test-token-1' });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=demo-test-token-1`);
      expect(server.port).toBeGreaterThan(0);
      // spawnSync blocks this thread until the child has its answer (or is killed after 20 s).
      const child = spawnSync(
        process.execPath,
        ['-e', `fetch(${JSON.stringify(`http://127.0.0.1:${server.port}/healthz`)}).then((r) => r.text()).then((t) => process.stdout.write(t))`],
        { timeout: 20_000, encoding: 'utf8' },
      );
      expect(child.signal).toBeNull();
      expect(JSON.parse(child.stdout)).toMatchObject({ status: 'ok', tr: -1, clients: 0 });
    } finally {
      await server.close();
    }
  });
});
