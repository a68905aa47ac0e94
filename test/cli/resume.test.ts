/**
 * Crash safety end to end (docs/state-dir.md): `analyze` and `replay` with `--state-dir`
 * are killed with a real SIGKILL in the middle of a TR chosen by a seeded draw, resumed
 * with `--resume`, and end with exactly the outputs of a run that was never interrupted
 * (bitwise maps, tables, report numbers; the same per-TR coupling lines).
 *
 * The kill comes from inside the child (test/cli/sigkillAtUpdate.ts: SIGKILL at the start
 * of its Nth engine update), so the TR it dies in does not depend on how loaded the
 * machine is. The uninterrupted references run in this process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { reproducibleReport } from '../../server/analysis/analyze.ts';
import { SOFTWARE_COMMIT } from '../../server/analysis/version.ts';
import { analyze } from '../../server/commands/analyze.ts';
import { replay } from '../../server/commands/replay.ts';
import { createRng } from '../../server/engine/random.ts';
import { stateFileName } from '../../server/io/snapshotStore.ts';

const root = resolve(import.meta.dirname, '../..');
const TRS = 60;
const EVERY = 5;
let tmp: string;
let sessionFile: string;
let cacheDir: string;
const common = () => ['--session', sessionFile, '--frames-per-tr', '2', '--cache-dir', cacheDir];

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `syncact ARGS` in a child process; with `killAtUpdate`, SIGKILLed at that engine update. */
async function child(args: string[], killAtUpdate?: number): Promise<ChildResult> {
  const argv = killAtUpdate ? ['--import', 'tsx', join(root, 'test/cli/sigkillAtUpdate.ts'), String(killAtUpdate), ...args] : [join(root, 'bin/syncact.js'), ...args];
  // The children record the commit this process loaded, not whatever HEAD is when they start
  // (a commit landing mid-test would otherwise make their report differ from the reference).
  const env = { ...process.env, SYNCACT_COMMIT: SOFTWARE_COMMIT ?? '' };
  const p = spawn(process.execPath, argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code, signal] = (await once(p, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

/** A command run in this process, its stdout captured and stderr silenced. */
async function inProcess(command: typeof analyze, argv: string[]): Promise<string> {
  let out = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
    out += String(c);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await command.run(argv)).toBe(0);
    return out;
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** Files under a folder, relative paths, sorted. */
function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

/** The TR (0-based) a draw kills in: after the first snapshot, never the last TR. */
function drawKillTr(rng: ReturnType<typeof createRng>, from: number): number {
  return from + 1 + Math.floor(rng.uniform() * (TRS - 2 - from));
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-resume-'));
  const dir = join(tmp, 'tiny');
  cpSync(join(root, 'fixtures/tiny'), dir, { recursive: true });
  sessionFile = join(dir, 'session.json');
  // A short window and a few lagged nulls, so significance (the tally analyze resumes) is defined.
  const json = JSON.parse(readFileSync(sessionFile, 'utf8'));
  writeFileSync(sessionFile, JSON.stringify({ ...json, engine: { window: 6, nulls: 4, regressors: 4 } }));
  cacheDir = join(tmp, 'cache');
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('analyze --state-dir / --resume', () => {
  it('killed twice at random TRs and resumed, it writes what an uninterrupted run writes', async () => {
    const ref = join(tmp, 'ref');
    await inProcess(analyze, [...common(), '--out', ref, '--quiet']);

    const out = join(tmp, 'out');
    const state = join(tmp, 'state');
    const args = ['analyze', ...common(), '--out', out, '--state-dir', state, '--state-every', String(EVERY)];
    const rng = createRng(20261126);

    // First run: dies in TR t1 (its update number t1 + 1).
    const t1 = drawKillTr(rng, EVERY);
    const first = await child(args, t1 + 1);
    expect(first.signal, first.stderr).toBe('SIGKILL');
    expect(existsSync(out)).toBe(false);
    const at1 = Math.floor(t1 / EVERY) * EVERY;
    // The last 2 complete snapshots, nothing partial.
    expect(readdirSync(state).sort()).toEqual([at1 - EVERY, at1].filter((k) => k > 0).map(stateFileName));

    // Second run resumes there and dies again later.
    const t2 = drawKillTr(rng, at1 + EVERY);
    const second = await child([...args, '--resume'], t2 - at1 + 1);
    expect(second.signal, second.stderr).toBe('SIGKILL');
    expect(second.stderr).toContain(`state: resuming at TR ${at1} from ${join(state, stateFileName(at1))}`);
    const at2 = Math.floor(t2 / EVERY) * EVERY;

    // Third run resumes and finishes.
    const third = await child([...args, '--resume']);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toContain(`state: resuming at TR ${at2}`);

    // Every file byte for byte (maps bitwise: gzip members compared inflated, header and
    // data), report.json once its run measurements (wall times, memory, the command line)
    // are set aside.
    const files = listFiles(out);
    expect(files).toEqual(listFiles(ref));
    expect(files.some((f) => f.endsWith('.nii.gz'))).toBe(true);
    expect(files).toContain('report.json');
    for (const f of files.filter((x) => x !== 'report.json')) {
      const read = (d: string) => (f.endsWith('.gz') ? gunzipSync(readFileSync(join(d, f))) : readFileSync(join(d, f)));
      expect(read(out).equals(read(ref)), f).toBe(true);
    }
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const refReport = JSON.parse(readFileSync(join(ref, 'report.json'), 'utf8'));
    expect(JSON.stringify(reproducibleReport(report))).toBe(JSON.stringify(reproducibleReport(refReport)));
    expect(report.timings.command).toContain('--resume');
    expect(report.summary.trs).toBe(TRS);
    expect(report.summary.scored_trs).toBeGreaterThan(0);
  });

  it('refuses a state folder written with other parameters (STATE_MISMATCH names the difference)', async () => {
    // The folder the test above left (snapshots of the finished run's last TRs).
    const args = [...common(), '--out', join(tmp, 'mm'), '--state-dir', join(tmp, 'state'), '--resume', '--networks', '4', '--quiet'];
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await expect(analyze.run(args)).rejects.toMatchObject({
        code: 'STATE_MISMATCH',
        file: join(tmp, 'state', stateFileName(TRS - EVERY)),
        message: expect.stringMatching(/parameters\.features differs; parameters\.networks: 8 in the snapshot, 4 now/),
      });
    } finally {
      e.mockRestore();
    }
    expect(existsSync(join(tmp, 'mm'))).toBe(false);
  });

  it('usage: --resume needs --state-dir', async () => {
    await expect(analyze.run([...common(), '--out', join(tmp, 'u'), '--resume'])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--resume needs --state-dir/) });
  });
});

describe('replay --state-dir / --resume', () => {
  /** Progress lines by TR, without the wall-clock fields (lag, TR/s). */
  const byTr = (stdout: string) =>
    new Map(
      stdout
        .trim()
        .split('\n')
        .map((l) => [Number(/^TR\s+(\d+)\//.exec(l)?.[1]), l.replace(/lag\s+-?\d+ ms\s+\S+ TR\/s/, '')] as const),
    );

  it('killed at a random TR and resumed, prints the same coupling for every later TR', async () => {
    const ref = byTr(await inProcess(replay, [...common(), '--speed', 'max']));
    expect(ref.size).toBe(TRS);
    const state = join(tmp, 'replay-state');
    const args = ['replay', ...common(), '--speed', 'max', '--state-dir', state, '--state-every', String(EVERY)];
    const t = drawKillTr(createRng(7), EVERY);
    const killed = await child(args, t + 1);
    expect(killed.signal).toBe('SIGKILL');
    const at = Math.floor(t / EVERY) * EVERY;
    const resumed = await child([...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`state: resuming at TR ${at}`);
    const lines = byTr(resumed.stdout);
    expect([...lines.keys()]).toEqual(Array.from({ length: TRS - at }, (_, i) => at + i));
    for (const [k, line] of lines) expect(line, `TR ${k}`).toBe(ref.get(k));
  });
});
