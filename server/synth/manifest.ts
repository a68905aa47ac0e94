/**
 * The manifest of a committed fixture: how it was made (preset, seed, parameters, ffmpeg)
 * and a checksum of every file, so a test can regenerate it and prove nothing drifted.
 *
 * Two checksums per gzip file: of the bytes, and of the decompressed content. zlib builds
 * may compress the same bytes differently (Node bundles a SIMD-tuned zlib), so a clean
 * clone on another machine compares content; the bytes are compared where zlib matches.
 * movie.mp4 depends on the ffmpeg build, whose version line is recorded for the same reason.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { relative, dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { SyntheticSession } from './session.ts';
import type { WrittenFile } from './writeSession.ts';

export interface ManifestFile {
  /** Path relative to the manifest's folder, with forward slashes. */
  path: string;
  bytes: number;
  sha256: string;
  /** For .gz files: sha256 of the decompressed content. */
  content_sha256?: string;
}

export interface FixtureManifest {
  generator: string;
  command: string;
  preset: string;
  seed: number;
  parameters: unknown;
  node: string;
  zlib: string;
  /** First line of `ffmpeg -version` of the ffmpeg that encoded movie.mp4. */
  ffmpeg: string;
  files: ManifestFile[];
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Checksums of one file; `path` is recorded relative to `base`. */
export async function manifestEntry(path: string, base: string): Promise<ManifestFile> {
  const bytes = await readFile(path);
  const entry: ManifestFile = { path: relative(base, path).split('\\').join('/'), bytes: bytes.length, sha256: sha256(bytes) };
  if (path.endsWith('.gz')) entry.content_sha256 = sha256(gunzipSync(bytes));
  return entry;
}

/** `ffmpeg -version`'s first line, or '' when it cannot be run. */
export function ffmpegVersion(ffmpegPath: string): string {
  const r = spawnSync(ffmpegPath, ['-version'], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : '';
}

/** Writes the manifest of a just-written session to `manifestPath` (atomically). */
export async function writeManifest(
  manifestPath: string,
  session: SyntheticSession,
  files: WrittenFile[],
  ffmpegPath: string,
  command: string,
): Promise<FixtureManifest> {
  const base = dirname(manifestPath);
  const manifest: FixtureManifest = {
    generator: 'syncact fixtures',
    command,
    preset: session.preset,
    seed: session.seed,
    parameters: session.parameters,
    node: process.version,
    zlib: process.versions.zlib ?? '',
    ffmpeg: ffmpegVersion(ffmpegPath),
    files: await Promise.all(files.map((f) => manifestEntry(f.path, base))),
  };
  const partial = manifestPath + '.partial';
  await writeFile(partial, JSON.stringify(manifest, null, 2) + '\n');
  await rename(partial, manifestPath);
  return manifest;
}
