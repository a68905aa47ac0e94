/**
 * `syncact replay` on the tiny synthetic session with the built-in CNN: one progress line
 * per TR (TR, time, lag, rate, top pairs), the speed handed to the pipeline (whose pacing
 * the replay clock's virtual-time tests cover: no wall-clock thresholds here), --from,
 * usage errors, and Ctrl-C: SIGINT to the real process stops the replay cleanly with exit
 * code 130.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { commands } from '../../server/commands/index.ts';
import { replay } from '../../server/commands/replay.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';
import type { PipelineOptions } from '../../server/streams/pipeline.ts';

/** The options each runPipeline call got (the real pipeline runs). */
const pipelineCalls = vi.hoisted(() => [] as Pick<PipelineOptions, 'speed' | 'start'>[]);
vi.mock('../../server/streams/pipeline.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../server/streams/pipeline.ts')>();
  return {
    ...actual,
    runPipeline: (o: PipelineOptions) => {
      pipelineCalls.push({ speed: o.speed, start: o.start });
      return actual.runPipeline(o);
    },
  };
});

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let tmp: string;
let sessionFile: string;
let cacheDir: string;
const common = () => ['--session', sessionFile, '--frames-per-tr', '2', '--cache-dir', cacheDir];

async function run(argv: string[]): Promise<{ code: number; lines: string[]; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  try {
    const code = await replay.run(argv);
    return { code, lines: out.trim().split('\n').filter(Boolean), err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const LINE = /^TR +(\d+)\/(\d+) {2}t +([\d.]+) s {2}lag +(\d+) ms {2}( +[\d.]+| +-) TR\/s {2}(.+)$/;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-replay-'));
  const dir = join(tmp, 'tiny');
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 1 }), dir);
  sessionFile = join(dir, 'session.json');
  const json = JSON.parse(readFileSync(sessionFile, 'utf8'));
  writeFileSync(sessionFile, JSON.stringify({ ...json, engine: { window: 6, nulls: 4, regressors: 4, snapshot_every: 5 } }));
  cacheDir = join(tmp, 'cache');
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('syncact replay', () => {
  it('is registered', () => {
    expect(commands).toContain(replay);
  });

  it('prints one line per TR, in order, paced (TR 1 s at 20×), with lag, rate and coupled pairs', async () => {
    pipelineCalls.length = 0;
    const { code, lines, err } = await run([...common(), '--speed', '20', '--max-trs', '12']);
    expect(code).toBe(0);
    // Paced: the pipeline's clock gets the speed asked for, and the header line says it.
    expect(pipelineCalls).toEqual([{ speed: 20, start: 0 }]);
    expect(err).toMatch(/: 12 TRs of 1 s at 20×, /);
    expect(lines).toHaveLength(12);
    lines.forEach((line, k) => {
      const m = LINE.exec(line);
      expect(m, line).not.toBeNull();
      expect(Number(m![1])).toBe(k);
      expect(Number(m![2])).toBe(12);
      expect(Number(m![3])).toBeCloseTo(k, 6);
    });
    // Pairs look like "unit~feature ±r" once a window has 3 samples.
    expect(LINE.exec(lines[11])![6]).toMatch(/^\S+~\S+ [+-][01]\.\d\d\*?/);
    expect(err).toMatch(/done at TR 11/);
  });

  it('--from starts at that TR (earlier TRs replayed unpaced first)', async () => {
    pipelineCalls.length = 0;
    const { code, lines } = await run([...common(), '--speed', 'max', '--max-trs', '12', '--from', '7']);
    expect(code).toBe(0);
    expect(pipelineCalls).toEqual([{ speed: 'max', start: 7 }]);
    expect(lines.map((l) => Number(LINE.exec(l)![1]))).toEqual([7, 8, 9, 10, 11]);
  });

  it('usage errors', async () => {
    await expect(run([...common(), '--speed', '100'])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--speed.*0\.25 and 20/) });
    await expect(run([...common(), '--from', '-1'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(run([...common(), '--max-trs', '12', '--from', '12'])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/past the last TR/) });
    await expect(run(['--fmri'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(run([...common(), '--live-timeout', '0'])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--live-timeout/) });
  });

  it('--live-timeout sets how long a live folder waits for a volume (the default 30 s would outlast this test)', async () => {
    const empty = join(tmp, 'live-empty');
    mkdirSync(empty);
    await expect(run([...common(), '--fmri', empty, '--tr', '1', '--live-timeout', '0.3'])).rejects.toMatchObject({ code: 'REPLAY_MISSING_VOLUME', file: empty });
  });

  it('Ctrl-C (SIGINT) stops the replay cleanly: exit code 130, no stack trace', async () => {
    const child = spawn(process.execPath, [join(root, 'bin/syncact.js'), 'replay', ...common(), '--speed', '1'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const firstLine = new Promise<void>((resolveLine) => {
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (out.includes('\n')) resolveLine();
      });
    });
    await firstLine;
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(130);
    expect(err).toMatch(/stopping/);
    expect(err).toMatch(/stopped at TR \d+/);
    expect(err).not.toMatch(/at .*\.ts:\d+/);
    // At speed 1 the replay was far from its 60th TR.
    expect(out.trim().split('\n').length).toBeLessThan(10);
  });
});
