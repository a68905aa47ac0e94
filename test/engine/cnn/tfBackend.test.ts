import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initTfBackend } from '../../../server/engine/cnn/tfBackend.ts';
import { measureMatmulGflops } from '../../../server/engine/cnn/matmulThroughput.ts';
import { SyncactError } from '../../../server/errors.ts';

/** Whether a package resolves from the repo (tfjs-node is normally absent: no internet to install it). */
function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const nativeAbsent = !installed('@tensorflow/tfjs-node') && !installed('@tensorflow/tfjs-node-gpu');

describe('initTfBackend', () => {
  it.skipIf(!nativeAbsent)('auto: without tfjs-node it takes WebAssembly with SIMD and says why the native ones were skipped', async () => {
    const info = await initTfBackend();
    expect(info.backend).toBe('tfjs-wasm-simd');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.detail).toMatch(/^tfjs-node-gpu skipped: @tensorflow\/tfjs-node-gpu is not installed; tfjs-node skipped: @tensorflow\/tfjs-node is not installed; /);
    expect(info.detail).toMatch(/SIMD on/);
  });

  it.skipIf(!nativeAbsent)('a native backend asked for by name and absent is CNN_BACKEND_FAILED saying how to install it', async () => {
    for (const name of ['tfjs-node', 'tfjs-node-gpu'] as const) {
      const p = initTfBackend(name);
      await expect(p).rejects.toThrow(SyncactError);
      await expect(p).rejects.toMatchObject({ code: 'CNN_BACKEND_FAILED' });
      await expect(p).rejects.toThrow(new RegExp(`backend '${name}' failed: @tensorflow/${name} is not installed; install it`));
      await expect(p).rejects.toThrow(/npm install @tensorflow\/tfjs-node/);
    }
    // The failure leaves the backend in use as it was.
    expect(['wasm', 'cpu']).toContain(tf.getBackend());
  });

  it('switches between wasm and cpu by name, and serialises concurrent calls (the last asked wins)', async () => {
    expect(await initTfBackend('cpu')).toEqual({ backend: 'tfjs-cpu', detail: 'plain JavaScript kernels (slowest)' });
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await initTfBackend('wasm');
    expect(wasm.backend).toMatch(/^tfjs-wasm/);
    expect(tf.getBackend()).toBe('wasm');
    const [a, b, c] = await Promise.all([initTfBackend('wasm'), initTfBackend('cpu'), initTfBackend('wasm')]);
    expect([a.backend, b.backend, c.backend]).toEqual([wasm.backend, 'tfjs-cpu', wasm.backend]);
    expect(tf.getBackend()).toBe('wasm');
    // Ops run on what was chosen.
    expect(Array.from(tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.eye(2)).dataSync()))).toEqual([1, 2, 3, 4]);
  });

  it('measureMatmulGflops measures on wasm, says what it ran, and gives back the backend it found', async () => {
    await initTfBackend('cpu');
    const before = tf.memory().numTensors;
    const m = await measureMatmulGflops({ size: 96, minSeconds: 0.05 });
    expect(m.backend).toMatch(/^tfjs-wasm/);
    expect(m.method).toMatch(/^tfjs-wasm\S* matMul 96×96 float32, best of \d+$/);
    expect(m.calls).toBeGreaterThanOrEqual(3);
    expect(Number.isFinite(m.gflops) && m.gflops > 0).toBe(true);
    expect(tf.getBackend()).toBe('cpu');
    expect(tf.memory().numTensors).toBe(before);
    await initTfBackend('wasm');
  });

  it('rejects an unknown backend name', async () => {
    await expect(initTfBackend('webgpu' as never)).rejects.toMatchObject({
      code: 'CNN_BACKEND_FAILED',
      message: expect.stringMatching(/unknown backend 'webgpu': choose one of auto, tfjs-node-gpu, tfjs-node, wasm, cpu/),
    });
  });

  it('missing wasm binaries: an error when wasm is asked for by name, a fall-through to cpu in auto (own process)', () => {
    // A failed WebAssembly start cannot be retried in a process, so this runs in a child.
    const dir = mkdtempSync(join(tmpdir(), 'syncact-tfbackend-'));
    try {
      const module = new URL('../../../server/engine/cnn/tfBackend.ts', import.meta.url).href;
      // .mts: the temp folder has no package.json saying "type": "module".
      const script = join(dir, 'child.mts');
      writeFileSync(
        script,
        `import { initTfBackend } from ${JSON.stringify(module)};
const out: Record<string, unknown> = {};
try { await initTfBackend('wasm', { wasmDir: ${JSON.stringify(join(dir, 'nowhere'))} }); out.explicit = 'started'; }
catch (e) { out.explicit = { code: (e as { code?: string }).code, message: (e as Error).message }; }
out.auto = await initTfBackend('auto');
process.stdout.write('RESULT' + JSON.stringify(out) + '\\n');
`,
      );
      const runTs = fileURLToPath(new URL('../../../bin/run-ts.js', import.meta.url));
      const stdout = execFileSync(process.execPath, [runTs, script], { cwd: dir, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT'));
      const out = JSON.parse(line!.slice('RESULT'.length)) as { explicit: { code: string; message: string }; auto: { backend: string; detail: string } };
      expect(out.explicit.code).toBe('CNN_BACKEND_FAILED');
      expect(out.explicit.message).toMatch(/backend 'wasm' failed: the WebAssembly backend failed to initialise.*reinstall @tensorflow\/tfjs-backend-wasm/);
      expect(out.auto.backend).toBe('tfjs-cpu');
      expect(out.auto.detail).toMatch(/wasm skipped: an earlier WebAssembly start in this process failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
