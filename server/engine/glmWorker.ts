/**
 * A GLM worker thread (started by glmPool.ts): owns voxels [v0, v1), sleeps in
 * Atomics.wait until the generation counter moves, runs the command on its block with
 * the same kernel the calling thread would use, counts itself done, and sleeps again.
 * Errors are written to the shared message buffer, never thrown past the loop, so the
 * caller (blocked in Atomics.wait, unable to hear 'error' events) always wakes.
 */
import { workerData } from 'node:worker_threads';
import { runGlmBlock, viewGlmState, type GlmCommand } from './glmBlock.ts';
import {
  CTRL_COMMAND,
  CTRL_DONE,
  CTRL_FAILED,
  CTRL_GENERATION,
  MESSAGE_BYTES,
  POOL_STOP,
  type GlmWorkerData,
} from './glmPool.ts';

const data = workerData as GlmWorkerData;
const control = new Int32Array(data.control);
const { arrays, params } = viewGlmState(data.buffer, data.layout, data.memory);
const regressors = data.layout.regressors;

let seen = 0;
for (;;) {
  Atomics.wait(control, CTRL_GENERATION, seen);
  const generation = Atomics.load(control, CTRL_GENERATION);
  if (generation === seen) continue;
  seen = generation;
  const command = Atomics.load(control, CTRL_COMMAND);
  if (command === POOL_STOP) break;
  try {
    runGlmBlock(command as GlmCommand, arrays, params, regressors, data.v0, data.v1);
  } catch (e) {
    const text = new TextEncoder().encode(`worker [${data.v0}, ${data.v1}): ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    if (Atomics.add(control, CTRL_FAILED, 1) === 0) new Uint8Array(data.message).set(text.subarray(0, MESSAGE_BYTES));
  }
  Atomics.add(control, CTRL_DONE, 1);
  Atomics.notify(control, CTRL_DONE);
}
