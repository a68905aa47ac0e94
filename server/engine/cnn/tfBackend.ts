/**
 * Which TensorFlow.js backend runs the built-in model and TF.js models.
 *
 * In `auto` mode the fastest one that works is taken, in this order:
 * 1. `@tensorflow/tfjs-node-gpu` (CUDA), 2. `@tensorflow/tfjs-node` (native TensorFlow on
 *    the CPU) — both only when the user has installed them: their installers download a
 *    native library, so they are not dependencies of syncact and are loaded with a dynamic
 *    `import()`;
 * 3. WebAssembly (`@tensorflow/tfjs-backend-wasm`, XNNPACK kernels), with SIMD and threads
 *    when the runtime supports them (Node has SIMD; the threaded build needs browser
 *    workers with SharedArrayBuffer, so in Node it runs single-threaded);
 * 4. the plain JavaScript `cpu` backend.
 * A backend that fails is skipped and the reason is kept in `detail`. When one backend is
 * asked for by name and it fails, that is a `CNN_BACKEND_FAILED` error saying what to do.
 *
 * TF.js keeps one global engine per process, so the backend is process-wide: every
 * extractor that calls this gets the same one. Calls are serialised so two extractors
 * starting at once do not race `tf.setBackend`.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { SyncactError } from '../../errors.ts';

export type TfBackendChoice = 'auto' | 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';

export const TF_BACKEND_CHOICES: readonly TfBackendChoice[] = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

export interface TfBackendInfo {
  /** What runs the ops, e.g. "tfjs-node-gpu", "tfjs-node", "tfjs-wasm-simd", "tfjs-wasm", "tfjs-cpu". */
  backend: string;
  /** Why this one: what was tried before it and why it was skipped, and the backend's features. */
  detail: string;
}

export interface TfBackendOptions {
  /**
   * Folder holding the `tfjs-backend-wasm*.wasm` binaries (default: the `dist/` folder of the
   * installed `@tensorflow/tfjs-backend-wasm`). Only read the first time wasm initialises.
   */
  wasmDir?: string;
}

/** One attempt: resolves to the reported name and detail, or throws with the reason. */
type Attempt = (o: TfBackendOptions) => Promise<{ backend: string; detail: string }>;

const NATIVE_HINT =
  'install it next to syncact (`npm install @tensorflow/tfjs-node` or `@tensorflow/tfjs-node-gpu`, same major ' +
  `version as @tensorflow/tfjs ${tf.version_core}; its installer downloads libtensorflow, so it needs internet), ` +
  "or choose 'wasm' or 'cpu'";

/**
 * Loads a native tfjs-node package. The specifier is held in a variable so TypeScript does
 * not try to resolve a package that is normally absent. The package registers the backend
 * "tensorflow" on the tfjs-core it depends on; when npm gave it its own copy of tfjs-core
 * (a version mismatch), our engine does not see that backend and this fails, clearly.
 */
async function loadNative(pkg: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu'): Promise<string> {
  try {
    await import(/* @vite-ignore */ pkg as string);
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (module|package)/.test(String(e));
    throw new Error(missing ? `${pkg} is not installed` : `${pkg} failed to load: ${errorText(e)}`);
  }
  if (tf.findBackendFactory('tensorflow') == null) {
    throw new Error(
      `${pkg} loaded but registered no "tensorflow" backend with this @tensorflow/tfjs (${tf.version_core}); ` +
        'its tfjs-core is probably a different version',
    );
  }
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg}: the "tensorflow" backend failed to initialise`);
  return pkg.replace('@tensorflow/', '');
}

/** The dist folder of the installed wasm backend, where its .wasm binaries ship. */
function defaultWasmDir(): string {
  return dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
}

const ATTEMPTS: Record<Exclude<TfBackendChoice, 'auto'>, Attempt> = {
  'tfjs-node-gpu': async () => ({ backend: await loadNative('@tensorflow/tfjs-node-gpu'), detail: 'native TensorFlow with CUDA' }),
  'tfjs-node': async () => ({ backend: await loadNative('@tensorflow/tfjs-node'), detail: 'native TensorFlow on the CPU' }),
  wasm: async (o) => {
    if (tf.engine().registry.wasm == null) {
      // Explicit paths (set again on every try until one succeeds, after which the wasm
      // backend refuses changes): bundlers and other working folders otherwise lose track
      // of the binaries.
      const dir = o.wasmDir ?? defaultWasmDir();
      try {
        setWasmPaths(dir.endsWith('/') ? dir : `${dir}/`);
      } catch {
        // tfjs-backend-wasm refuses new paths once a start has aborted, and cannot retry.
        throw new Error('an earlier WebAssembly start in this process failed and cannot be retried; restart syncact');
      }
    }
    let ok: boolean;
    try {
      ok = await tf.setBackend('wasm');
    } catch (e) {
      throw new Error(`the WebAssembly backend failed to initialise: ${errorText(e)}`);
    }
    if (!ok) throw new Error('the WebAssembly backend failed to initialise (its .wasm binary could not be loaded)');
    const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
    const threads = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true;
    const backend = `tfjs-wasm${simd ? '-simd' : ''}${threads ? '-threaded' : ''}`;
    return {
      backend,
      detail: `WebAssembly (XNNPACK), SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off (single thread)'}`,
    };
  },
  cpu: async () => {
    if (!(await tf.setBackend('cpu'))) throw new Error('the plain JavaScript backend failed to initialise');
    return { backend: 'tfjs-cpu', detail: 'plain JavaScript kernels (slowest)' };
  },
};

const AUTO_ORDER: Exclude<TfBackendChoice, 'auto'>[] = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

function whatToDo(choice: Exclude<TfBackendChoice, 'auto'>): string {
  if (choice === 'tfjs-node' || choice === 'tfjs-node-gpu') return NATIVE_HINT;
  if (choice === 'wasm') return "reinstall @tensorflow/tfjs-backend-wasm (its dist/*.wasm files must be present), or choose 'cpu'";
  return 'reinstall @tensorflow/tfjs';
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Selects the TF.js backend (process-wide) and reports which one runs.
 * @param prefer 'auto' (default) tries tfjs-node-gpu, tfjs-node, wasm, cpu in turn; a name
 *   asks for that one only and throws `CNN_BACKEND_FAILED` if it cannot start.
 * @param options where the wasm binaries are (tests, bundlers).
 */
export function initTfBackend(prefer: TfBackendChoice = 'auto', options: TfBackendOptions = {}): Promise<TfBackendInfo> {
  const run = async (): Promise<TfBackendInfo> => {
    if (!TF_BACKEND_CHOICES.includes(prefer)) {
      throw new SyncactError('CNN_BACKEND_FAILED', `unknown backend '${String(prefer)}': choose one of ${TF_BACKEND_CHOICES.join(', ')}`);
    }
    if (prefer !== 'auto') {
      try {
        return await ATTEMPTS[prefer](options);
      } catch (e) {
        throw new SyncactError('CNN_BACKEND_FAILED', `backend '${prefer}' failed: ${errorText(e)}; ${whatToDo(prefer)}`);
      }
    }
    const skipped: string[] = [];
    for (const choice of AUTO_ORDER) {
      try {
        const got = await ATTEMPTS[choice](options);
        return { backend: got.backend, detail: [...skipped, got.detail].join('; ') };
      } catch (e) {
        skipped.push(`${choice} skipped: ${errorText(e)}`);
      }
    }
    throw new SyncactError('CNN_BACKEND_FAILED', `no TF.js backend could start (${skipped.join('; ')}); reinstall @tensorflow/tfjs`);
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}
