/**
 * Faults with the real pipeline behind the real server (port 0, real ws clients): the
 * movie decoder dying during the replay, and a volume file vanishing in live mode. Each is
 * a `fault` to the clients with its typed code, naming the file or folder; the server stays
 * up (/healthz answers) and a new client still gets `hello` (and the fault).
 *
 * The movie: the CNN runs over the whole movie when the session opens, so the decoder that
 * works during the replay is the thumbnail one. The file is truncated while the replay
 * runs and the viewer seeks back, which restarts that decoder on the damaged file (a
 * decoder already running may have read the whole small file, so truncation alone would
 * not reliably reach it).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { pipelineLiveSession, type PipelineLiveSession } from '../../server/net/pipelineSession.ts';
import { startServer, type RunningServer } from '../../server/net/server.ts';
import { openSession, type OpenOptions, type OpenedSession, type SessionSource } from '../../server/streams/session.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';
import { fakeExtractor } from '../streams/pipelineFixtures.ts';
import { TestClient } from './testClient.ts';
import { TOPIC_IDS } from '../../protocol/topics.ts';

const synth = createSyntheticSession({ preset: 'tiny', seed: 1 });
let tmp: string;
let dir: string;

let server: RunningServer | undefined;
let live: PipelineLiveSession | undefined;
const sessions: OpenedSession[] = [];
const clients: TestClient[] = [];

const opts = (extra: OpenOptions = {}): OpenOptions => ({
  model: fakeExtractor(),
  cacheDir: null,
  networks: 2,
  annotationNulls: 10,
  framesPerTr: 4,
  engine: { regressors: 3, window: 8 },
  ...extra,
});

const flags = (): SessionSource => ({
  fmri: join(dir, 'bold.nii.gz'),
  movie: join(dir, 'movie.mp4'),
  mask: join(dir, 'mask.nii.gz'),
  atlas: join(dir, 'atlas.nii.gz'),
  atlasLabels: join(dir, 'atlas.tsv'),
});

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-faults-'));
  dir = join(tmp, 'tiny');
  await writeSyntheticSession(synth, dir);
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  live?.stop();
  live = undefined;
  await server?.close();
  server = undefined;
  for (const s of sessions.splice(0)) await s.close();
});

async function open(source: SessionSource, options: OpenOptions): Promise<OpenedSession> {
  const s = await openSession(source, options);
  sessions.push(s);
  return s;
}

async function serve(session: PipelineLiveSession): Promise<RunningServer> {
  live = session;
  server = await startServer({ session, staticDir: join(tmp, 'no-dashboard') });
  return server;
}

async function client(query = ''): Promise<TestClient> {
  const c = await TestClient.connect(server!.wsUrl + query);
  clients.push(c);
  return c;
}

async function healthz(): Promise<{ code: number; body: { status: string; lastFault: { code: string } | null } }> {
  const r = await fetch(`http://127.0.0.1:${server!.port}/healthz`);
  return { code: r.status, body: (await r.json()) as { status: string; lastFault: { code: string } | null } };
}

describe('faults with the real pipeline', () => {
  it('the movie decoder dying during the replay is a MOVIE_DECODE_FAILED fault naming the movie; the server stays up', async () => {
    const movie = join(tmp, 'damaged.mp4');
    // A copy of the movie, so the shared fixture stays whole.
    copyFileSync(join(dir, 'movie.mp4'), movie);
    const s = await open({ ...flags(), movie }, opts({ maxTrs: 30 }));
    const damageAt = 10;
    let damaged = false;
    const session: PipelineLiveSession = pipelineLiveSession(s, {
      speed: 'max',
      paused: true,
      onState: (st) => {
        if (damaged || st.tr !== damageAt) return;
        damaged = true;
        // The file loses its second half (and with it the MP4 index at its end); rewinding
        // restarts the thumbnail decoder, which then dies on it.
        truncateSync(movie, statSync(movie).size >> 1);
        session.control({ op: 'seek', tr: 2 });
      },
    });
    await serve(session);
    const a = await client('?topics=state,frame');
    await a.until(() => a.json('hello').length === 1, 5000, 'hello');
    session.control({ op: 'play' });
    await a.until(() => a.json('fault').length === 1, 10_000, 'fault');
    const [fault] = a.json('fault');
    expect(damaged).toBe(true);
    expect(fault).toMatchObject({ code: 'MOVIE_DECODE_FAILED', tr: damageAt });
    expect(fault.message).toContain(movie);
    // The TRs before the damage arrived, in order, with their movie frames.
    expect(a.json('state').map((x) => x.tr)).toEqual(Array.from({ length: damageAt + 1 }, (_, k) => k));
    expect(a.frames(TOPIC_IDS.frame).map((f) => f.tr)).toEqual(Array.from({ length: damageAt + 1 }, (_, k) => k));
    const h = await healthz();
    expect(h.code).toBe(200);
    expect(h.body).toMatchObject({ status: 'failed', lastFault: { code: 'MOVIE_DECODE_FAILED' } });
    const b = await client('?topics=state');
    await b.until(() => b.json('hello').length === 1 && b.json('fault').length === 1, 5000, 'hello and fault');
    expect(b.json('fault')[0]).toMatchObject({ code: 'MOVIE_DECODE_FAILED', tr: damageAt });
    // One failure, one fault (the states and the annotations share the pipeline that failed).
    expect(a.json('fault')).toHaveLength(1);
  });

  it('a volume file vanishing in live mode is a REPLAY_MISSING_VOLUME fault naming the TR and the folder; the server stays up', async () => {
    const folder = join(tmp, 'live');
    mkdirSync(folder);
    const n = 14;
    for (let k = 0; k < n; k++) {
      await writeNifti(join(folder, `vol${k}.nii`), synth.volume(k), { dims: [...synth.grid.dims], affine: synth.grid.affine });
    }
    const s = await open({ ...flags(), fmri: folder, tr: 1 }, opts({ maxTrs: n, live: { pollMs: 10, timeoutMs: 300 } }));
    const gone = 8;
    // Deleted after the session opened (it read volume 0 for the grid) and before the replay reads it.
    unlinkSync(join(folder, `vol${gone}.nii`));
    await serve(pipelineLiveSession(s, { speed: 'max' }));
    const a = await client('?topics=state');
    await a.until(() => a.json('fault').length === 1, 10_000, 'fault');
    const [fault] = a.json('fault');
    expect(fault).toMatchObject({ code: 'REPLAY_MISSING_VOLUME', tr: gone - 1 });
    expect(fault.message).toContain(folder);
    expect(fault.message).toContain(`volume ${gone} did not arrive`);
    expect(a.json('state').map((x) => x.tr)).toEqual(Array.from({ length: gone }, (_, k) => k));
    const h = await healthz();
    expect(h.code).toBe(200);
    expect(h.body).toMatchObject({ status: 'failed', lastFault: { code: 'REPLAY_MISSING_VOLUME' } });
    const b = await client();
    await b.until(() => b.json('hello').length === 1 && b.json('fault').length === 1, 5000, 'hello and fault');
    expect(a.json('fault')).toHaveLength(1);
  });
});
