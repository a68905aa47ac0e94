/**
 * The feature cache: a movie's CNN activations, computed once and reused by later replays.
 *
 * A cache file holds every used frame's activations for one (model, movie content, tapped
 * layers, preprocessing, pooling, frame sampling, fps); its name is the sha256 of those
 * inputs, so a change to any of them looks for another file. The format (docs/feature-cache.md)
 * is the magic `SYNCACTF`, a format version, a JSON header (the key and its parts, layers,
 * frames and their times, dtype, the payload's sha256) and the float32 payload.
 *
 * A file that does not match exactly is never used: stale (its header was written for
 * other inputs) or corrupt (bad magic, unknown version, truncated, invalid JSON, payload
 * checksum mismatch) gives `{ miss: reason }`, logged through the injected logger, and
 * `getOrComputeActivations` recomputes and overwrites it. Writes go to a temporary file in
 * the same folder and are renamed over the target, so a reader (or a concurrent writer)
 * only ever sees a complete file.
 *
 * Memory: the whole matrix is held (frames × units × 4 B: 7200 frames × 3000 units is 86 MB)
 * because the unit series and the PCA fit read it whole; extraction itself runs in batches.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import type { FeatureExtractor, Pooling, Preprocessing } from '../engine/cnn/extractor.ts';
import {
  extractActivations,
  samplingKey,
  selectFrames,
  type ActivationMatrix,
  type FrameSampling,
  type FrameSource,
} from '../engine/cnn/unitSeries.ts';

export const CACHE_MAGIC = 'SYNCACTF';
export const CACHE_FORMAT_VERSION = 1;
/** Bumped when what a key means changes (e.g. how activations are computed), so old files stop matching. */
const KEY_SCHEME = 1;
const PREFIX_BYTES = 16;
const FILE_SUFFIX = '.syncactf';

/** Everything the cached activations depend on. */
export interface CacheKeyParts {
  /** The extractor's stable identity (`FeatureExtractor.id`). */
  modelId: string;
  /** sha256 (hex) of the movie's content, from the caller (e.g. `movieFileHash`). */
  movieHash: string;
  /** Tapped layer names, in order. */
  layers: string[];
  preprocessing: Preprocessing;
  pooling: Pooling;
  /** Which frames are used (every frame, or n per TR). */
  sampling: FrameSampling;
  /** Movie frame rate: frame times are index / fps. */
  fps: number;
}

/** Cached activations with what they were cached for. */
export interface CachedActivations extends ActivationMatrix {
  key: string;
  fps: number;
}

export type CacheLogger = (message: string) => void;

export interface FeatureCacheOptions {
  /** Cache folder; default `defaultCacheDir()`. */
  dir?: string;
  /** Where misses of stale or corrupt files are reported; default: nowhere. */
  logger?: CacheLogger;
}

/** `$SYNCACT_CACHE_DIR`, else `.syncact/cache` under the current folder (the project). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return env.SYNCACT_CACHE_DIR ? resolve(cwd, env.SYNCACT_CACHE_DIR) : resolve(cwd, '.syncact', 'cache');
}

/** The key parts for an extractor on a movie. */
export function cacheKeyParts(extractor: FeatureExtractor, movie: Pick<FrameSource, 'fps'>, o: { movieHash: string; sampling?: FrameSampling }): CacheKeyParts {
  return {
    modelId: extractor.id,
    movieHash: o.movieHash,
    layers: extractor.layers.map((l) => l.name),
    preprocessing: { ...extractor.preprocessing },
    pooling: extractor.pooling,
    sampling: o.sampling ?? { tr: 1 },
    fps: movie.fps,
  };
}

/** sha256 (hex) of a file's bytes, streamed: a movie's content hash for the key. */
export async function movieFileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the movie to hash it (${code})`, path);
  }
  return hash.digest('hex');
}

/** The parts as one JSON value with a fixed key order (what the key hashes and the header stores). */
function canonicalParts(parts: CacheKeyParts): Record<string, unknown> {
  if (typeof parts.modelId !== 'string' || parts.modelId === '') throw new SyncactError('ENGINE_BAD_INPUT', 'feature cache: modelId must be a non-empty string');
  if (typeof parts.movieHash !== 'string' || parts.movieHash === '') throw new SyncactError('ENGINE_BAD_INPUT', 'feature cache: movieHash must be a non-empty string');
  if (!(parts.fps > 0) || !Number.isFinite(parts.fps)) throw new SyncactError('ENGINE_BAD_INPUT', `feature cache: fps must be positive, got ${parts.fps}`);
  const p = parts.preprocessing;
  return {
    scheme: KEY_SCHEME,
    modelId: parts.modelId,
    movieHash: parts.movieHash,
    layers: [...parts.layers],
    preprocessing: {
      width: p.width,
      height: p.height,
      resize: p.resize,
      colorOrder: p.colorOrder,
      normalization: p.normalization,
      layout: p.layout,
    },
    pooling: parts.pooling,
    sampling: samplingKey(parts.sampling),
    fps: parts.fps,
  };
}

interface CacheHeader {
  key: string;
  parts: Record<string, unknown>;
  layers: { name: string; channels: number }[];
  units: number;
  frameCount: number;
  fps: number;
  frameIndices: number[];
  frameTimes: number[];
  dtype: 'float32';
  byteOrder: 'little';
  payloadBytes: number;
  payloadSha256: string;
}

const LITTLE_ENDIAN = endianness() === 'LE';

export class FeatureCache {
  readonly dir: string;
  private readonly log: CacheLogger;

  constructor(options: FeatureCacheOptions = {}) {
    this.dir = resolve(options.dir ?? defaultCacheDir());
    this.log = options.logger ?? (() => {});
  }

  /** sha256 (hex) of the canonical key parts. */
  key(parts: CacheKeyParts): string {
    return createHash('sha256').update(JSON.stringify(canonicalParts(parts))).digest('hex');
  }

  /** The file these parts are cached in. */
  path(parts: CacheKeyParts): string {
    return join(this.dir, this.key(parts) + FILE_SUFFIX);
  }

  /** The cached activations, or `{ miss: reason }` when absent, stale or corrupt. */
  async read(parts: CacheKeyParts): Promise<CachedActivations | { miss: string }> {
    const canonical = canonicalParts(parts);
    const key = this.key(parts);
    const file = join(this.dir, key + FILE_SUFFIX);
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { miss: 'not cached yet' };
      return this.miss(file, `unreadable (${code})`);
    }
    const parsed = parseCacheFile(buf);
    if ('miss' in parsed) return this.miss(file, parsed.miss);
    const { header, payload } = parsed;
    if (header.key !== key || JSON.stringify(header.parts) !== JSON.stringify(canonical)) {
      return this.miss(file, `stale: written for key ${String(header.key).slice(0, 12)}… (${describeDiff(header.parts, canonical)}), expected ${key.slice(0, 12)}…`);
    }
    return {
      key,
      fps: header.fps,
      layers: header.layers.map((l) => ({ name: l.name, channels: l.channels })),
      frameIndices: Int32Array.from(header.frameIndices),
      frameTimes: Float64Array.from(header.frameTimes),
      values: decodeFloat32(payload),
    };
  }

  /** Writes (or replaces) the cache file for these parts, atomically. */
  async write(parts: CacheKeyParts, acts: ActivationMatrix): Promise<void> {
    const canonical = canonicalParts(parts);
    const key = this.key(parts);
    const units = acts.layers.reduce((s, l) => s + l.channels, 0);
    const F = acts.frameTimes.length;
    if (acts.frameIndices.length !== F || acts.values.length !== F * units) {
      throw new SyncactError('ENGINE_BAD_INPUT', `feature cache: ${F} frame times, ${acts.frameIndices.length} frame indices and ${acts.values.length} values do not make ${F} frames × ${units} units`);
    }
    if (acts.layers.map((l) => l.name).join('\n') !== parts.layers.join('\n')) {
      throw new SyncactError('ENGINE_BAD_INPUT', `feature cache: activations have layers ${acts.layers.map((l) => l.name).join(', ')}, the key names ${parts.layers.join(', ')}`);
    }
    const payload = encodeFloat32(acts.values);
    const header: CacheHeader = {
      key,
      parts: canonical,
      layers: acts.layers.map((l) => ({ name: l.name, channels: l.channels })),
      units,
      frameCount: F,
      fps: parts.fps,
      frameIndices: Array.from(acts.frameIndices),
      frameTimes: Array.from(acts.frameTimes),
      dtype: 'float32',
      byteOrder: 'little',
      payloadBytes: payload.length,
      payloadSha256: createHash('sha256').update(payload).digest('hex'),
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.alloc(PREFIX_BYTES);
    prefix.write(CACHE_MAGIC, 0, 'latin1');
    prefix.writeUInt32LE(CACHE_FORMAT_VERSION, 8);
    prefix.writeUInt32LE(json.length, 12);
    const padding = Buffer.alloc(payloadOffset(json.length) - PREFIX_BYTES - json.length);

    const target = join(this.dir, key + FILE_SUFFIX);
    // Unique per writer: two processes (or two calls) writing the same key never share a temp file.
    const tmp = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true });
      const fh = await open(tmp, 'w');
      try {
        for (const part of [prefix, json, padding, payload]) await fh.write(part);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new SyncactError('FEATURE_CACHE_WRITE_FAILED', `cannot write the feature cache (${code}); set SYNCACT_CACHE_DIR to a writable folder`, target);
    }
  }

  private miss(file: string, reason: string): { miss: string } {
    this.log(`feature cache: ${file}: ${reason}; recomputing`);
    return { miss: reason };
  }
}

/** Where the payload starts: after the prefix and the JSON, rounded up to 8 bytes. */
function payloadOffset(headerBytes: number): number {
  return Math.ceil((PREFIX_BYTES + headerBytes) / 8) * 8;
}

/** Checks everything but the key; a file that fails any check is a miss with the reason. */
function parseCacheFile(buf: Buffer): { header: CacheHeader; payload: Buffer } | { miss: string } {
  if (buf.length < PREFIX_BYTES) return { miss: `corrupt: truncated (${buf.length} bytes, shorter than the ${PREFIX_BYTES}-byte prefix)` };
  if (buf.toString('latin1', 0, 8) !== CACHE_MAGIC) return { miss: 'corrupt: bad magic (not a syncact feature cache)' };
  const version = buf.readUInt32LE(8);
  if (version !== CACHE_FORMAT_VERSION) return { miss: `format version ${version}, this syncact reads version ${CACHE_FORMAT_VERSION}` };
  const H = buf.readUInt32LE(12);
  const offset = payloadOffset(H);
  if (PREFIX_BYTES + H > buf.length) return { miss: `corrupt: truncated header (${H} header bytes announced, ${buf.length - PREFIX_BYTES} present)` };
  let header: CacheHeader;
  try {
    header = JSON.parse(buf.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + H)) as CacheHeader;
  } catch (e) {
    return { miss: `corrupt: header is not valid JSON (${(e as Error).message})` };
  }
  const bad = checkHeader(header);
  if (bad) return { miss: `corrupt: ${bad}` };
  const expected = header.frameCount * header.units * 4;
  const present = buf.length - offset;
  if (present < expected) return { miss: `corrupt: truncated payload (${Math.max(0, present)} of ${expected} bytes)` };
  if (present > expected) return { miss: `corrupt: ${present - expected} bytes after the payload` };
  const payload = buf.subarray(offset);
  const sha = createHash('sha256').update(payload).digest('hex');
  if (sha !== header.payloadSha256) return { miss: 'corrupt: payload checksum mismatch' };
  return { header, payload };
}

function checkHeader(h: CacheHeader): string | null {
  if (typeof h !== 'object' || h === null) return 'header is not an object';
  if (typeof h.key !== 'string' || typeof h.parts !== 'object' || h.parts === null) return 'header has no key or parts';
  if (h.dtype !== 'float32' || h.byteOrder !== 'little') return `dtype ${h.dtype} (${h.byteOrder}), expected float32 little-endian`;
  if (!Array.isArray(h.layers) || h.layers.some((l) => typeof l?.name !== 'string' || !Number.isInteger(l.channels) || l.channels < 1)) return 'layers are malformed';
  if (h.layers.reduce((s, l) => s + l.channels, 0) !== h.units) return `layers add up to ${h.layers.reduce((s, l) => s + l.channels, 0)} units, header says ${h.units}`;
  if (!Number.isInteger(h.frameCount) || h.frameCount < 0) return `frame count ${h.frameCount}`;
  if (!Array.isArray(h.frameTimes) || h.frameTimes.length !== h.frameCount || !Array.isArray(h.frameIndices) || h.frameIndices.length !== h.frameCount) {
    return 'frame times or indices do not match the frame count';
  }
  if (h.payloadBytes !== h.frameCount * h.units * 4) return `payload size ${h.payloadBytes} is not frames × units × 4`;
  if (typeof h.payloadSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.payloadSha256)) return 'payload checksum is missing';
  if (!(h.fps > 0)) return `fps ${h.fps}`;
  return null;
}

/** Which canonical parts differ (for the stale message). */
function describeDiff(got: Record<string, unknown>, want: Record<string, unknown>): string {
  const keys = new Set([...Object.keys(got ?? {}), ...Object.keys(want)]);
  const diff = [...keys].filter((k) => JSON.stringify(got?.[k]) !== JSON.stringify(want[k]));
  return diff.length ? `differs in ${diff.join(', ')}` : 'same parts, other key scheme';
}

function encodeFloat32(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

function decodeFloat32(bytes: Buffer): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) Buffer.from(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

export interface GetOrComputeOptions {
  /** Frames per extractor call, default 8. */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Reported when a cache write fails (the computed activations are still returned). */
  logger?: CacheLogger;
}

export interface ActivationsResult {
  activations: CachedActivations;
  /** True when read from the cache. */
  hit: boolean;
  /** Why the cache was not used, on a miss (absent when no cache was given). */
  miss?: string;
}

/**
 * Activations of the movie's frames (those `parts.sampling` selects) through the extractor:
 * from the cache when a valid file exists, else computed in batches and written to it.
 * Without a cache, always computed. A failed write is logged and does not fail the call:
 * the cache only saves time.
 */
export async function getOrComputeActivations(
  extractor: FeatureExtractor,
  movie: FrameSource,
  parts: CacheKeyParts,
  cache?: FeatureCache,
  options: GetOrComputeOptions = {},
): Promise<ActivationsResult> {
  const want = cacheKeyParts(extractor, movie, { movieHash: parts.movieHash, sampling: parts.sampling });
  const a = canonicalParts(parts);
  const b = canonicalParts(want);
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new SyncactError('ENGINE_BAD_INPUT', `feature cache: key parts do not describe this extractor and movie (${describeDiff(a, b)})`);
  }
  let miss: string | undefined;
  if (cache) {
    const got = await cache.read(parts);
    if (!('miss' in got)) return { activations: got, hit: true };
    miss = got.miss;
  }
  const frames = selectFrames(movie, parts.sampling);
  const acts = await extractActivations(extractor, movie, { frames, batchSize: options.batchSize, onProgress: options.onProgress });
  let key = '';
  if (cache) {
    key = cache.key(parts);
    try {
      await cache.write(parts, acts);
    } catch (e) {
      (options.logger ?? (() => {}))(`feature cache: ${(e as Error).message}`);
    }
  }
  return { activations: { ...acts, key, fps: movie.fps }, hit: false, miss };
}
