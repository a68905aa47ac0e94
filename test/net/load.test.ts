/**
 * Load: 50 real ws clients on loopback watching a session paced at 20 TR/s. Every client
 * gets every TR, gapless. Per TR, the publish time (the pipeline's hand-over) and the
 * turn time (hand-over + the server's fan-out that follows on the same thread) with 50
 * clients vs none are measured and printed, not asserted: timing figures belong to
 * `npm run bench -- --only server.` (bench/server.bench.ts, clients in another process).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startServer, type RunningServer } from '../../server/net/server.ts';
import { FakeSession, makeInfo, makeState, type FakeSizes } from './fakeSession.ts';
import { TestClient, sleep } from './testClient.ts';
import type { TrState } from '../../protocol/state.ts';

let server: RunningServer | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

const SIZES: FakeSizes = { units: 32, features: 50, dims: [8, 8, 8], frame: [16, 16] };
const TRS = 40;
const PERIOD_MS = 50; // 20 TR/s

/** Publishes pre-built states at 20 TR/s; returns per TR the publish and the turn time. */
async function pacedRun(session: FakeSession, states: TrState[]): Promise<{ publish: number[]; turn: number[] }> {
  const publish: number[] = [];
  const turn: number[] = [];
  const start = performance.now();
  for (let i = 0; i < states.length; i++) {
    const wait = start + i * PERIOD_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    session.states.next(states[i]);
    publish.push(performance.now() - t0);
    await new Promise((r) => setImmediate(r)); // after the fan-out the server scheduled
    turn.push(performance.now() - t0);
  }
  return { publish, turn };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

describe('load', () => {
  it('50 clients at 20 TR/s all receive every TR in order; publish time is printed', async () => {
    const session = new FakeSession(makeInfo(SIZES), SIZES);
    server = await startServer({ session, staticDir: join(tmpdir(), 'syncact-no-dashboard') });
    const states = Array.from({ length: 2 * TRS }, (_, tr) => makeState(tr, SIZES));
    const alone = await pacedRun(session, states.slice(0, TRS));
    for (let i = 0; i < 50; i++) clients.push(await TestClient.connect(`${server.wsUrl}?topics=state,units,cka,telemetry`));
    await Promise.all(clients.map((c) => c.until(() => c.json('state').length === 1, 10_000, 'snapshot')));
    const crowded = await pacedRun(session, states.slice(TRS));
    await Promise.all(clients.map((c) => c.until(() => c.json('state').length === TRS + 1, 20_000, 'all TRs')));
    for (const c of clients) {
      // the snapshot (TR TRS-1) then every TR published while connected
      expect(c.json('state').map((s) => s.tr)).toEqual(Array.from({ length: TRS + 1 }, (_, i) => TRS - 1 + i));
      expect(c.json('state').map((s) => s.seq)).toEqual(Array.from({ length: TRS + 1 }, (_, i) => TRS - 1 + i));
    }
    expect(server.stats().dropped).toBe(0);
    console.log(
      `[load] median over ${TRS} TRs at 20 TR/s, 0 → 50 clients (in this process): ` +
        `publish ${median(alone.publish).toFixed(3)} → ${median(crowded.publish).toFixed(3)} ms, ` +
        `publish + fan-out ${median(alone.turn).toFixed(3)} → ${median(crowded.turn).toFixed(3)} ms`,
    );
  });
});
