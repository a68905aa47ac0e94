/**
 * Live mode: a folder that receives one 3D NIfTI per TR, as a scanner's real-time export
 * (or rt-cloud's file watcher) writes them. Volumes are taken in order, each once it is
 * complete; a file still being written is waited for, never read half.
 *
 * Which file is volume k: the `.nii` / `.nii.gz` files in natural name order (vol2 before
 * vol10). When every name carries a number (the usual `..._0001.nii`), numbers must run on
 * from the first file taken: if vol_0007 is there but vol_0006 is not, volume 6 is waited
 * for (exports are not always written in order) and, after the timeout, reported missing,
 * rather than silently taking vol_0007 in its place. Names starting with '.' and any other
 * extension (`.partial`, `.tmp`, `~`) are ignored, so writers that rename into place are
 * always safe.
 *
 * When is a file complete: its size is the same on two consecutive polls (or a later
 * volume's file already exists, or it has not been modified for a second: an export
 * written earlier is then read without one poll per file) AND the NIfTI reader finds
 * everything its header promises (vox_offset + nx·ny·nz values; for gzip, a stream that
 * inflates to that length). Neither alone is enough: a writer can pause mid-file (stable
 * size, short data), and a file can be long enough while its writer is still busy.
 *
 * Waiting is by polling (default every 100 ms): it works on network shares, where file
 * system events do not. The timeout for volume k starts when volume k is asked for, so a
 * paused replay never times out on its own.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSyncactError, SyncactError } from '../errors.ts';
import { openNifti } from './nifti/read.ts';
import type { Grid } from './nifti/types.ts';

export interface LiveVolumeOptions {
  /** Milliseconds between looks at the folder; default 100. */
  pollMs?: number;
  /** Milliseconds to wait for each volume before REPLAY_MISSING_VOLUME; default 30 000. */
  timeoutMs?: number;
  /** Milliseconds to wait for the first volume (the scanner may not have started); default timeoutMs. */
  firstTimeoutMs?: number;
  /** Volumes in the run when known (the stream ends after them); default open-ended. */
  count?: number | null;
}

export interface LiveVolume {
  index: number;
  data: Float32Array;
  /** The file it came from. */
  file: string;
}

export interface LiveFolder {
  dir: string;
  /** Grid of the first volume; every later one must match it. */
  grid: Grid;
  voxelsPerVolume: number;
  /** TR in the first file's header: null for 3D files (the usual case), which carry none. */
  headerTr: number | null;
  count: number | null;
  /** Volumes start..end-1 (end defaults to count, or open-ended), as they arrive. */
  volumes(start?: number, end?: number): AsyncIterable<LiveVolume>;
}

const VOLUME_FILE = /\.nii(\.gz)?$/i;
/** Reader errors that mean "not all there yet" while a file is being written. */
const INCOMPLETE = new Set(['NIFTI_TRUNCATED_HEADER', 'NIFTI_TRUNCATED_DATA', 'NIFTI_GZIP_CORRUPT', 'NIFTI_NOT_NIFTI']);
/** A file unmodified for this long (ms) is not being written any more. */
const SETTLED_MS = 1000;
/** Affine entries further apart than this (mm) are different grids (as masks use). */
const AFFINE_TOLERANCE = 1e-4;

/** Natural order: digit runs compare as numbers ("vol2" < "vol10"), the rest by code point. */
export function naturalCompare(a: string, b: string): number {
  const ta = a.match(/\d+|\D+/g) ?? [];
  const tb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const nx = x.replace(/^0+(?=\d)/, '');
      const ny = y.replace(/^0+(?=\d)/, '');
      if (nx.length !== ny.length) return nx.length - ny.length;
      if (nx !== ny) return nx < ny ? -1 : 1;
      // Same value, different zero padding: shorter first, for a stable total order.
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return ta.length - tb.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The last run of digits in a file's name (before the extension), or null. */
function numberOf(name: string): number | null {
  const m = /(\d+)\D*$/.exec(name.replace(VOLUME_FILE, ''));
  return m ? Number(m[1]) : null;
}

async function listVolumes(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot list the live folder (${code})`, dir);
  }
  return names.filter((n) => VOLUME_FILE.test(n) && !n.startsWith('.')).sort(naturalCompare);
}

function checkOptions(dir: string, o: LiveVolumeOptions): Required<Omit<LiveVolumeOptions, 'count'>> & { count: number | null } {
  const pollMs = o.pollMs ?? 100;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const firstTimeoutMs = o.firstTimeoutMs ?? timeoutMs;
  const count = o.count ?? null;
  for (const [name, v] of [['pollMs', pollMs], ['timeoutMs', timeoutMs], ['firstTimeoutMs', firstTimeoutMs]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new SyncactError('REPLAY_BAD_OPTIONS', `live ${name} must be a positive number of milliseconds; got ${v}`, dir);
  }
  if (count !== null && !(Number.isInteger(count) && count > 0)) throw new SyncactError('REPLAY_BAD_OPTIONS', `live volume count must be a positive whole number; got ${count}`, dir);
  return { pollMs, timeoutMs, firstTimeoutMs, count };
}

interface Taken {
  data: Float32Array;
  grid: Grid;
  headerTr: number | null;
  file: string;
}

/**
 * Waits for volume k of the folder and reads it. `base` is the number of volume 0's file
 * (null when names are not numbered); `expect` is the grid every volume must have.
 */
async function waitForVolume(dir: string, k: number, base: number | null, o: { pollMs: number; timeoutMs: number }, expect: Grid | null): Promise<Taken> {
  const started = Date.now();
  const sizes = new Map<string, number>();
  let why = 'no file for it has appeared';
  for (;;) {
    const names = await listVolumes(dir);
    let name: string | undefined;
    /** A file after volume k's is there: the writer has moved on. */
    let laterExists: boolean;
    if (base !== null && names.every((n) => numberOf(n) !== null)) {
      name = names.find((n) => numberOf(n) === base + k);
      const later = names.find((n) => (numberOf(n) as number) > base + k);
      laterExists = later !== undefined;
      if (!name) why = later ? `the file numbered ${base + k} is absent while ${later} is there` : `no file numbered ${base + k} has appeared`;
    } else {
      name = names[k];
      laterExists = names.length > k + 1;
      if (!name) why = `only ${names.length} volume file${names.length === 1 ? '' : 's'} ha${names.length === 1 ? 's' : 've'} appeared`;
    }
    if (name) {
      const path = join(dir, name);
      const { size, mtimeMs } = await stat(path).then(
        (st) => ({ size: st.size, mtimeMs: st.mtimeMs }),
        () => ({ size: -1, mtimeMs: 0 }),
      );
      // Settled: the same size as on the previous look; or, so that a folder exported
      // earlier is read without one poll per file, a later file exists or the file has
      // not changed for a while. The header check below is needed in every case.
      const settled = sizes.get(path) === size || laterExists || Date.now() - mtimeMs >= SETTLED_MS;
      if (size > 0 && settled) {
        const taken = await readIfComplete(path, size, expect);
        if (typeof taken !== 'string') return taken;
        why = `${name} is incomplete (${taken})`;
      } else if (size >= 0) {
        why = `${name} is still being written (${size} bytes)`;
      }
      sizes.set(path, size);
    }
    if (Date.now() - started >= o.timeoutMs) {
      throw new SyncactError('REPLAY_MISSING_VOLUME', `volume ${k} did not arrive in ${dir} within ${o.timeoutMs / 1000} s: ${why}`, dir);
    }
    await sleep(o.pollMs);
  }
}

/** The volume if the file holds all its header promises, else why not (a string). */
async function readIfComplete(path: string, size: number, expect: Grid | null): Promise<Taken | string> {
  let image;
  try {
    image = await openNifti(path);
  } catch (e) {
    if (isSyncactError(e) && INCOMPLETE.has(e.code)) return `${size} bytes: ${e.message}`;
    throw e;
  }
  try {
    if (image.volumeCount !== 1) {
      throw new SyncactError('REPLAY_VOLUME_MISMATCH', `a live volume file must hold one volume; this one has ${image.volumeCount}`, path);
    }
    let data: Float32Array;
    try {
      data = await image.readVolume(0);
    } catch (e) {
      if (isSyncactError(e) && INCOMPLETE.has(e.code)) return `${size} bytes: ${e.message}`;
      throw e;
    }
    if (expect && !sameGrid(expect, image.grid)) {
      throw new SyncactError(
        'REPLAY_VOLUME_MISMATCH',
        `grid ${image.grid.dims.join('×')} (affine ${JSON.stringify(image.grid.affine)}) differs from the first volume's ${expect.dims.join('×')} (affine ${JSON.stringify(expect.affine)})`,
        path,
      );
    }
    return { data, grid: image.grid, headerTr: image.header.tr, file: path };
  } finally {
    await image.close();
  }
}

function sameGrid(a: Grid, b: Grid): boolean {
  if (a.dims.some((d, i) => d !== b.dims[i])) return false;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) if (Math.abs(a.affine[r][c] - b.affine[r][c]) > AFFINE_TOLERANCE) return false;
  return true;
}

/** The number of the first volume file present (the numbering base), or null for unnumbered names. */
async function numberingBase(dir: string): Promise<number | null> {
  const names = await listVolumes(dir);
  if (names.length === 0 || !names.every((n) => numberOf(n) !== null)) return null;
  return Math.min(...names.map((n) => numberOf(n) as number));
}

/**
 * Opens a live folder: waits (up to firstTimeoutMs) for volume 0 to be complete and takes
 * the grid and header TR from it.
 */
export async function openLiveFolder(dir: string, options: LiveVolumeOptions = {}): Promise<LiveFolder> {
  const o = checkOptions(dir, options);
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => null);
  if (isDir === null) throw new SyncactError('FILE_NOT_FOUND', 'the live folder does not exist', dir);
  if (!isDir) throw new SyncactError('FILE_UNREADABLE', 'live mode needs a folder of volume files', dir);
  // The base is fixed once, from the files present when volume 0 is complete.
  let base: number | null = null;
  const first = await (async () => {
    const started = Date.now();
    for (;;) {
      base = await numberingBase(dir);
      if (base !== null || (await listVolumes(dir)).length > 0) break;
      if (Date.now() - started >= o.firstTimeoutMs) break;
      await sleep(o.pollMs);
    }
    const left = Math.max(o.pollMs, o.firstTimeoutMs - (Date.now() - started));
    return waitForVolume(dir, 0, base, { pollMs: o.pollMs, timeoutMs: left }, null);
  })();
  const grid = first.grid;
  const fixedBase: number | null = base;
  return {
    dir,
    grid,
    voxelsPerVolume: grid.dims[0] * grid.dims[1] * grid.dims[2],
    headerTr: first.headerTr,
    count: o.count,
    volumes(start = 0, end = o.count ?? Infinity) {
      if (!Number.isInteger(start) || start < 0 || !(end >= start)) {
        throw new SyncactError('REPLAY_BAD_OPTIONS', `live volumes ${start}..${end} is not a range of volumes`, dir);
      }
      return {
        async *[Symbol.asyncIterator]() {
          for (let k = start; k < end; k++) {
            const v = k === 0 ? first : await waitForVolume(dir, k, fixedBase, o, grid);
            yield { index: k, data: k === 0 ? v.data.slice() : v.data, file: v.file };
          }
        },
      };
    },
  };
}
