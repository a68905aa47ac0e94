/**
 * Worker threads for the voxelwise GLM, driven synchronously.
 *
 * The engine is synchronous, so `run()` does not return a promise: the calling thread
 * writes the command into a shared control array, wakes the workers with Atomics.notify
 * and sleeps in Atomics.wait until every worker has finished its block of voxels. All
 * per-voxel state lives in one shared buffer (a shared WebAssembly memory, or a
 * SharedArrayBuffer) that the caller and the workers all view, so nothing is copied per
 * TR except the new volume (V floats) and the design row.
 *
 * Starting a worker: the sources are TypeScript run through tsx. `execArgv: ['--import',
 * 'tsx']` does not install tsx's hooks inside a worker on Node 20 (the worker fails with
 * ERR_UNKNOWN_FILE_EXTENSION), so each worker starts from a few lines of JavaScript that
 * register tsx's ESM API (resolved from this file, so it works from any working directory,
 * under `node bin/run-ts.js`, the CLI and vitest alike) and then import glmWorker.ts.
 * A worker that cannot start, or throws, is reported as ENGINE_WORKER_FAILED instead of
 * leaving the caller waiting.
 */
import { Worker } from 'node:worker_threads';
import { SyncactError } from '../errors.ts';
import { type GlmCommand, type GlmLayout, type GlmState } from './glmBlock.ts';
import type { WasmMemory } from './glmWasm.ts';

/** Slots of the Int32 control array. */
export const CTRL_GENERATION = 0;
export const CTRL_DONE = 1;
export const CTRL_COMMAND = 2;
export const CTRL_FAILED = 3;
export const CTRL_LENGTH = 4;
/** Pool-only command, beside the GlmCommand values. */
export const POOL_STOP = 11;
/** Bytes for the first failing worker's message. */
export const MESSAGE_BYTES = 1024;

/** What each worker receives as workerData. */
export interface GlmWorkerData {
  control: SharedArrayBuffer;
  message: SharedArrayBuffer;
  /** The state buffer (glmBlock.ts GlmState), and its wasm memory when it is one. */
  buffer: SharedArrayBuffer;
  memory: WasmMemory | null;
  layout: GlmLayout;
  v0: number;
  v1: number;
}

/** How long the caller waits without any worker finishing before it gives up. */
const STALL_MS = 120_000;

function sharedBuffer(buffer: ArrayBufferLike): SharedArrayBuffer {
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw new SyncactError('ENGINE_BAD_INPUT', 'GLM worker pool needs SharedArrayBuffer-backed state');
  }
  return buffer;
}

export class GlmWorkerPool {
  private readonly control = new Int32Array(new SharedArrayBuffer(CTRL_LENGTH * 4));
  private readonly message = new Uint8Array(new SharedArrayBuffer(MESSAGE_BYTES));
  private readonly workers: Worker[] = [];
  private disposed = false;

  /**
   * Starts `count` workers, worker i owning a contiguous block of the voxels. Returns at
   * once: the workers finish starting while the caller does its first run().
   */
  constructor(count: number, state: GlmState) {
    const voxels = state.layout.voxels;
    const api = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./glmWorker.ts', import.meta.url).href;
    const boot = `
      const { workerData } = require('node:worker_threads');
      import(${JSON.stringify(api)})
        .then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })
        .catch((e) => {
          const control = new Int32Array(workerData.control);
          const text = new TextEncoder().encode('worker did not start: ' + (e && e.stack || e));
          if (Atomics.add(control, ${CTRL_FAILED}, 1) === 0) new Uint8Array(workerData.message).set(text.subarray(0, ${MESSAGE_BYTES}));
          Atomics.add(control, ${CTRL_DONE}, 1 << 20);
          Atomics.notify(control, ${CTRL_DONE});
        });`;
    for (let i = 0; i < count; i++) {
      // Even block edges keep the two-voxel loop on its fast path.
      const v0 = Math.min(voxels, 2 * Math.round((voxels * i) / count / 2));
      const v1 = i === count - 1 ? voxels : Math.min(voxels, 2 * Math.round((voxels * (i + 1)) / count / 2));
      const data: GlmWorkerData = {
        control: this.control.buffer as SharedArrayBuffer,
        message: this.message.buffer as SharedArrayBuffer,
        buffer: sharedBuffer(state.buffer),
        memory: state.memory,
        layout: state.layout,
        v0,
        v1,
      };
      const worker = new Worker(boot, { eval: true, workerData: data });
      // A forgotten dispose() must not keep the process alive.
      worker.unref();
      this.workers.push(worker);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs one command on every block and returns when all are done. */
  run(command: GlmCommand): void {
    if (this.disposed) throw new SyncactError('ENGINE_BAD_INPUT', 'GLM worker pool used after dispose()');
    const c = this.control;
    Atomics.store(c, CTRL_DONE, 0);
    Atomics.store(c, CTRL_COMMAND, command);
    Atomics.add(c, CTRL_GENERATION, 1);
    Atomics.notify(c, CTRL_GENERATION);
    const n = this.workers.length;
    for (;;) {
      const done = Atomics.load(c, CTRL_DONE);
      if (Atomics.load(c, CTRL_FAILED) > 0) this.fail();
      if (done >= n) return;
      if (Atomics.wait(c, CTRL_DONE, done, STALL_MS) === 'timed-out' && Atomics.load(c, CTRL_DONE) === done) {
        throw new SyncactError('ENGINE_WORKER_FAILED', `GLM workers made no progress for ${STALL_MS / 1000} s`);
      }
    }
  }

  /** Stops the workers (they leave their wait loop, then are terminated). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const c = this.control;
    Atomics.store(c, CTRL_COMMAND, POOL_STOP);
    Atomics.add(c, CTRL_GENERATION, 1);
    Atomics.notify(c, CTRL_GENERATION);
    for (const w of this.workers) void w.terminate();
  }

  private fail(): never {
    const bytes = this.message.slice();
    const end = bytes.indexOf(0);
    const text = new TextDecoder().decode(end >= 0 ? bytes.subarray(0, end) : bytes);
    this.dispose();
    throw new SyncactError('ENGINE_WORKER_FAILED', text || 'a GLM worker failed');
  }
}
