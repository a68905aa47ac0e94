import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VoxelwiseGlm } from '../../server/engine/glm.ts';
import { GlmWorkerPool } from '../../server/engine/glmPool.ts';
import { GlmCommand, createGlmState } from '../../server/engine/glmBlock.ts';
import { SyncactError } from '../../server/errors.ts';
import { makeGlmData, row, volume } from './glmTestData.ts';

const live: { dispose(): void }[] = [];
afterEach(() => {
  for (const x of live.splice(0)) x.dispose();
});

function track<T extends { dispose(): void }>(x: T): T {
  live.push(x);
  return x;
}

/** Every read-out of two estimators, for bitwise comparison. */
function readAll(glm: VoxelwiseGlm, P: number) {
  const out: Record<string, unknown> = { count: glm.count, fitted: glm.fitted, rss: glm.rss() };
  for (let j = 0; j < P; j++) {
    out[`b${j}`] = glm.betas(j);
    out[`t${j}`] = glm.tmap(j);
  }
  return out;
}

describe('VoxelwiseGlm worker threads', () => {
  it('two workers give bitwise the same results as in-thread, TR by TR, through warm-up, rank loss, NaN voxels and restore', () => {
    const lambda = 0.5;
    const d = makeGlmData(41, 90, 3, 1001); // odd V: uneven blocks and the kernel's tail
    const X = d.X.slice();
    const Y = d.Y.slice();
    for (let t = 20; t < 60; t++) X[t * d.P + 5] = X[t * d.P + 4]; // rank lost, then regained
    Y[2 * d.V + 10] = NaN; // warm-up, first block
    Y[30 * d.V + 900] = -Infinity; // fitted, second block
    const threads = track(new VoxelwiseGlm({ voxels: d.V, regressors: d.P, forgetting: lambda, workers: 2 }));
    const inThread = new VoxelwiseGlm({ voxels: d.V, regressors: d.P, forgetting: lambda, workers: 0 });
    expect(threads.workers).toBe(2);
    expect(inThread.workers).toBe(0);
    const seen = new Set<boolean>();
    let snapAt30 = threads.snapshot();
    for (let k = 0; k < d.T; k++) {
      if (k === 30) snapAt30 = threads.snapshot();
      threads.update(row(X, k, d.P), volume(Y, k, d.V));
      inThread.update(row(X, k, d.P), volume(Y, k, d.V));
      seen.add(threads.fitted);
      expect(readAll(threads, d.P)).toEqual(readAll(inThread, d.P));
    }
    expect(seen).toEqual(new Set([false, true]));
    // A snapshot from the workers restores into an in-thread estimator and vice versa.
    const fromThreads = new VoxelwiseGlm({ voxels: d.V, regressors: d.P, forgetting: lambda, workers: 0 });
    fromThreads.restore(snapAt30);
    threads.restore(inThread.snapshot());
    expect(readAll(threads, d.P)).toEqual(readAll(inThread, d.P));
    for (let k = 30; k < d.T; k++) fromThreads.update(row(X, k, d.P), volume(Y, k, d.V));
    expect(readAll(fromThreads, d.P)).toEqual(readAll(inThread, d.P));
    // Restoring a snapshot taken before full rank into the fitted, threaded estimator
    // replaces the state the workers share.
    const early = new VoxelwiseGlm({ voxels: d.V, regressors: d.P, forgetting: lambda, workers: 0 });
    for (let k = 0; k < 3; k++) early.update(row(X, k, d.P), volume(Y, k, d.V));
    threads.restore(early.snapshot());
    for (let k = 3; k < 40; k++) {
      threads.update(row(X, k, d.P), volume(Y, k, d.V));
      early.update(row(X, k, d.P), volume(Y, k, d.V));
    }
    expect(readAll(threads, d.P)).toEqual(readAll(early, d.P));
  });

  it('defaults to in-thread for small problems', () => {
    const glm = track(new VoxelwiseGlm({ voxels: 100, regressors: 3 }));
    expect(glm.workers).toBe(0);
  });

  it('dispose() stops the workers and is idempotent', () => {
    const glm = new VoxelwiseGlm({ voxels: 10, regressors: 2, workers: 2 });
    glm.update(Float64Array.of(1, 0), new Float32Array(10));
    glm.dispose();
    glm.dispose();
    expect(glm.workers).toBe(0);
    expect(() => glm.update(Float64Array.of(1, 1), new Float32Array(10))).toThrow(SyncactError);
  });

  it('turns an error inside a worker into ENGINE_WORKER_FAILED instead of hanging', () => {
    const pool = track(new GlmWorkerPool(2, createGlmState(8, 2, true)));
    let caught: unknown;
    try {
      pool.run(99 as GlmCommand); // the workers' dispatcher throws on an unknown command
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SyncactError);
    expect((caught as SyncactError).code).toBe('ENGINE_WORKER_FAILED');
    expect((caught as SyncactError).message).toMatch(/^worker \[\d+, \d+\): Error: unknown GLM command 99/);
  });

  it('starts its workers under `node bin/run-ts.js` from another folder, and the process exits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncact-glm-'));
    try {
      const glmUrl = new URL('../../server/engine/glm.ts', import.meta.url).href;
      const script = join(dir, 'run.mts');
      writeFileSync(
        script,
        `import { VoxelwiseGlm } from ${JSON.stringify(glmUrl)};
const glm = new VoxelwiseGlm({ voxels: 999, regressors: 2, workers: 2 });
for (let k = 0; k < 4; k++) glm.update(Float64Array.of(1, k), new Float32Array(999).fill(3 + 2 * k));
process.stdout.write(JSON.stringify([glm.workers, glm.betas(0)[998], glm.betas(1)[0]]));
${'// no dispose(): unref()ed workers must not keep the process alive'}
`,
      );
      const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
      const out = execFileSync(process.execPath, [runTs, script], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
      expect(JSON.parse(out)).toEqual([2, 3, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
