/**
 * Writing an output folder atomically: everything goes into DIR.partial, which is renamed
 * to DIR only when the last file is in place. A run that fails or is interrupted leaves at
 * most a DIR.partial (removed on the next run), never a DIR that looks complete. An
 * existing DIR is replaced only when it is empty or an earlier output of the same kind (it
 * holds `marker`), so a typo in --out cannot delete someone's data.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';

/**
 * @param marker the file that marks an earlier output of this kind (e.g. report.json);
 *   `write` should write it last.
 * @param write fills the partial folder; returns the files written, relative to it.
 * @returns the files written, as absolute paths in DIR.
 */
export async function writeFolderAtomically(outDir: string, marker: string, what: string, write: (partial: string) => Promise<string[]>): Promise<string[]> {
  const dir = resolve(outDir);
  const partial = `${dir}.partial`;
  await checkReplaceable(dir, marker, what);
  const fail = (e: unknown, file: string): never => {
    if (e instanceof SyncactError) throw e;
    throw new SyncactError('OUTPUT_NOT_WRITABLE', `cannot write the ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  };
  try {
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
  } catch (e) {
    fail(e, partial);
  }
  let written: string[] = [];
  try {
    written = await write(partial);
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    fail(e, partial);
  }
  // Swap in: an earlier output moves aside first, so DIR is never half old, half new.
  const aside = `${dir}.old-${process.pid}`;
  try {
    const had = await exists(dir);
    if (had) await rename(dir, aside);
    await rename(partial, dir);
    if (had) await rm(aside, { recursive: true, force: true });
  } catch (e) {
    fail(e, dir);
  }
  return written.map((n) => join(dir, n));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function checkReplaceable(dir: string, marker: string, what: string): Promise<void> {
  let s;
  try {
    s = await stat(dir);
  } catch {
    return;
  }
  if (!s.isDirectory()) throw new SyncactError('OUTPUT_NOT_WRITABLE', 'the output path exists and is not a folder', dir);
  const names = await readdir(dir);
  if (names.length > 0 && !names.includes(marker)) {
    throw new SyncactError('OUTPUT_NOT_WRITABLE', `the output folder exists and is not an earlier ${what} (no ${marker}); give a new or empty folder`, dir);
  }
}

/** NaN and ±Infinity are not JSON: written as null. */
export function jsonNumbers(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}
