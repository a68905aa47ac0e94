/**
 * A forward-only byte cursor over a gzip file: inflates with zlib.createGunzip and hands
 * out exact byte counts, holding at most one inflated chunk beyond what was asked for.
 * Memory stays bounded whatever the file size, because the gunzip stream is pulled (its
 * async iterator applies backpressure) rather than left to flow.
 *
 * Seeking backwards is not possible; callers open a new cursor (re-inflate from the start).
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream';
import { SyncactError } from '../../errors.ts';

/** Inflate output chunk: large enough that per-chunk overhead is negligible. */
const CHUNK_BYTES = 1 << 20;

/**
 * The largest ratio deflate can reach (a 258-byte match per 2 bits, ~1032:1). An
 * uncompressed size above compressedBytes × this is impossible, so a damaged header that
 * claims more is caught before anything is allocated or inflated.
 */
export const MAX_DEFLATE_RATIO = 1032;

export class GzipCursor {
  /** Bytes of inflated output consumed so far (the offset of the next byte). */
  position = 0;
  private readonly iterator: AsyncIterator<Buffer>;
  private readonly destroyStreams: () => void;
  private pending: Buffer | null = null;
  private pendingAt = 0;
  private ended = false;

  constructor(readonly path: string) {
    const source = createReadStream(path, { highWaterMark: CHUNK_BYTES });
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    // pipeline forwards source errors to gunzip and destroys both on failure.
    pipeline(source, gunzip, () => {});
    this.iterator = gunzip[Symbol.asyncIterator]();
    this.destroyStreams = () => {
      source.destroy();
      gunzip.destroy();
    };
  }

  private async nextChunk(): Promise<boolean> {
    if (this.ended) return false;
    let result: IteratorResult<Buffer>;
    try {
      result = await this.iterator.next();
    } catch (e) {
      this.ended = true;
      throw gzipError(e, this.path);
    }
    if (result.done) {
      this.ended = true;
      return false;
    }
    this.pending = result.value;
    this.pendingAt = 0;
    return true;
  }

  /**
   * Copies the next `target.length` bytes into target. Returns how many were copied:
   * fewer only when the inflated stream ended first.
   */
  async readInto(target: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      if (!this.pending || this.pendingAt >= this.pending.length) {
        if (!(await this.nextChunk())) break;
        continue;
      }
      const take = Math.min(target.length - filled, this.pending.length - this.pendingAt);
      target.set(this.pending.subarray(this.pendingAt, this.pendingAt + take), filled);
      this.pendingAt += take;
      filled += take;
    }
    this.position += filled;
    return filled;
  }

  /** Discards the next n bytes; returns how many were skipped (fewer at end of stream). */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n) {
      if (!this.pending || this.pendingAt >= this.pending.length) {
        if (!(await this.nextChunk())) break;
        continue;
      }
      const take = Math.min(n - skipped, this.pending.length - this.pendingAt);
      this.pendingAt += take;
      skipped += take;
    }
    this.position += skipped;
    return skipped;
  }

  /** Stops inflating and releases the file. Safe to call more than once. */
  destroy(): void {
    this.ended = true;
    this.pending = null;
    this.destroyStreams();
  }
}

/** Maps zlib and file-system failures to typed errors. */
export function gzipError(e: unknown, path: string): SyncactError {
  if (e instanceof SyncactError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  if (code === 'ENOENT') return new SyncactError('FILE_NOT_FOUND', 'no such file', path);
  if (code.startsWith('E')) return new SyncactError('FILE_UNREADABLE', `cannot read: ${err.message}`, path);
  if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(err?.message ?? '')) {
    return new SyncactError('NIFTI_GZIP_CORRUPT', 'gzip stream ends unexpectedly (file truncated?)', path);
  }
  return new SyncactError('NIFTI_GZIP_CORRUPT', `gzip data is corrupt: ${err?.message ?? String(e)}`, path);
}
