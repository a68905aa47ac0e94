/**
 * The NIfTI reader: NIfTI-1 and NIfTI-2, `.nii`, `.nii.gz`, `.hdr`/`.img` pairs (either
 * part may be gzipped), both byte orders, integer and float datatypes with scl_slope /
 * scl_inter applied.
 *
 * A 4D file is never read whole: `readVolume(k)` reads one volume (a positioned read for
 * uncompressed data; for gzip a forward cursor that re-inflates from the start only when
 * asked to go backwards) and `volumes()` streams a range in one pass with bounded memory.
 * Damaged files fail with typed errors that name the file; missing data is an error, never
 * zeros.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { SyncactError } from '../../errors.ts';
import { decodeVoxels, scalingFrom, type DatatypeInfo, type OutputType, type Scaling } from './datatype.ts';
import { decodeHeader, parseExtensions, sniffHeader, NIFTI2_HEADER_BYTES, type DecodedHeader } from './header.ts';
import { GzipCursor, gzipError, MAX_DEFLATE_RATIO } from './gzipStream.ts';
import type { Grid, NiftiHeader } from './types.ts';

export interface VolumesOptions<A extends OutputType = OutputType> {
  /** First volume (default 0). */
  start?: number;
  /** One past the last volume (default volumeCount). */
  end?: number;
  /** Output precision (default float32). */
  as?: A;
}

export interface NiftiImage {
  readonly path: string;
  readonly header: NiftiHeader;
  /** dims [nx, ny, nz] and affine. */
  readonly grid: Grid;
  /** nx·ny·nz */
  readonly voxelsPerVolume: number;
  /** Product of dims[3..] (1 for 3D). */
  readonly volumeCount: number;
  /** Scaled values of volume k, x fastest (NIfTI order). .nii: a positioned read; .nii.gz: may re-inflate from the start when seeking backwards. */
  readVolume(k: number, as?: 'float32'): Promise<Float32Array>;
  readVolume(k: number, as: 'float64'): Promise<Float64Array>;
  readVolume(k: number, as?: OutputType): Promise<Float32Array | Float64Array>;
  /** Streams volumes start..end-1 in order with bounded memory (for .gz one pass of inflate), reading one volume ahead; a volume that cannot be read fails when it is asked for. */
  volumes(options: VolumesOptions<'float64'> & { as: 'float64' }): AsyncIterable<{ index: number; data: Float64Array }>;
  volumes(options?: VolumesOptions<'float32'>): AsyncIterable<{ index: number; data: Float32Array }>;
  volumes(options?: VolumesOptions): AsyncIterable<{ index: number; data: Float32Array | Float64Array }>;
  /** Releases the file handle or inflate stream; a later read reopens it. */
  close(): Promise<void>;
}

/** Extension bytes beyond this are skipped unread: they never affect the voxels. */
const MAX_EXTENSION_BYTES = 16 << 20;

const GZIP_MAGIC = [0x1f, 0x8b];

function fsError(e: unknown, path: string): SyncactError {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return new SyncactError('FILE_NOT_FOUND', 'no such file', path);
  return new SyncactError('FILE_UNREADABLE', `cannot read: ${err?.message ?? String(e)}`, path);
}

async function fileSize(path: string): Promise<number> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new SyncactError('FILE_UNREADABLE', 'not a regular file', path);
    return s.size;
  } catch (e) {
    if (e instanceof SyncactError) throw e;
    throw fsError(e, path);
  }
}

async function openHandle(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    throw fsError(e, path);
  }
}

/** Reads up to `length` bytes at `position`; returns the bytes actually there. */
async function readAt(handle: FileHandle, path: string, target: Uint8Array, position: number): Promise<number> {
  let filled = 0;
  try {
    while (filled < target.length) {
      const { bytesRead } = await handle.read(target, filled, target.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
  } catch (e) {
    throw fsError(e, path);
  }
  return filled;
}

async function isGzip(path: string): Promise<boolean> {
  const handle = await openHandle(path);
  try {
    const head = new Uint8Array(2);
    const n = await readAt(handle, path, head, 0);
    return n === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  } finally {
    await handle.close();
  }
}

/** The header file for a path: the path itself, or the .hdr beside a given .img. */
async function headerPathFor(path: string): Promise<string> {
  const m = /^(.*)\.img(\.gz)?$/i.exec(path);
  if (!m) return path;
  for (const candidate of [`${m[1]}.hdr`, `${m[1]}.hdr.gz`]) {
    if (await exists(candidate)) return candidate;
  }
  throw new SyncactError('NIFTI_NOT_NIFTI', `an .img file needs its .hdr beside it (looked for ${m[1]}.hdr and .hdr.gz)`, path);
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The .img (or .img.gz) of a header/image pair. */
async function imagePathFor(headerPath: string): Promise<string> {
  const base = headerPath.replace(/\.hdr(\.gz)?$/i, '').replace(/\.nii(\.gz)?$/i, '');
  const tried = [`${base}.img`, `${base}.img.gz`];
  for (const candidate of tried) if (await exists(candidate)) return candidate;
  throw new SyncactError('NIFTI_MISSING_IMG', `header says the data are in a separate .img file, but ${tried.join(' and ')} do not exist`, headerPath);
}

interface DataSource {
  path: string;
  gz: boolean;
  /** Compressed (for gz) or plain size of the data file. */
  bytes: number;
}

/** Opens a NIfTI image, reading and checking its header; no voxel data are read yet. */
export async function openNifti(path: string): Promise<NiftiImage> {
  const headerPath = await headerPathFor(path);
  const headerFileBytes = await fileSize(headerPath);
  const headerGz = await isGzip(headerPath);

  // Header bytes: the fixed header, then (for a single file) everything up to vox_offset.
  let decoded: DecodedHeader;
  let extensionBytes: Uint8Array;
  let data: DataSource;
  if (!headerGz) {
    const handle = await openHandle(headerPath);
    try {
      const head = new Uint8Array(Math.min(headerFileBytes, NIFTI2_HEADER_BYTES));
      await readAt(handle, headerPath, head, 0);
      const layout = sniffHeader(head.subarray(0, 4), headerPath);
      decoded = decodeHeader(head, layout, headerPath);
      data = await dataSourceFor(headerPath, decoded, { path: headerPath, gz: false, bytes: headerFileBytes });
      checkDataSize(decoded, data);
      const extEnd = decoded.pair ? headerFileBytes : decoded.header.voxOffset;
      extensionBytes = new Uint8Array(Math.max(0, Math.min(extEnd - layout.headerBytes, MAX_EXTENSION_BYTES)));
      await readAt(handle, headerPath, extensionBytes, layout.headerBytes);
    } finally {
      await handle.close();
    }
  } else {
    const c = new GzipCursor(headerPath);
    try {
      const first4 = new Uint8Array(4);
      const got = await c.readInto(first4);
      const layout = sniffHeader(first4.subarray(0, got), headerPath);
      const head = new Uint8Array(layout.headerBytes);
      head.set(first4);
      const rest = await c.readInto(head.subarray(4));
      decoded = decodeHeader(head.subarray(0, 4 + rest), layout, headerPath);
      data = await dataSourceFor(headerPath, decoded, { path: headerPath, gz: true, bytes: headerFileBytes });
      checkDataSize(decoded, data);
      const wanted = decoded.pair
        ? Math.min(MAX_EXTENSION_BYTES, headerFileBytes * MAX_DEFLATE_RATIO)
        : decoded.header.voxOffset - layout.headerBytes;
      extensionBytes = new Uint8Array(Math.min(wanted, MAX_EXTENSION_BYTES));
      const n = await c.readInto(extensionBytes);
      if (!decoded.pair) {
        if (wanted > extensionBytes.length) await c.skip(wanted - extensionBytes.length);
        if (c.position < decoded.header.voxOffset) {
          throw new SyncactError('NIFTI_BAD_VOX_OFFSET', `vox_offset is ${decoded.header.voxOffset}, past the end of the inflated file (${c.position} bytes)`, headerPath);
        }
      }
      extensionBytes = extensionBytes.subarray(0, n);
    } finally {
      // Not kept for reading volumes: an image that is opened only for its grid must not
      // hold a descriptor; the first readVolume inflates the (small) header again.
      c.destroy();
    }
  }
  decoded.header.extensions = parseExtensions(extensionBytes, decoded.header.littleEndian);
  return new NiftiFile(path, decoded, data);
}

async function dataSourceFor(headerPath: string, decoded: DecodedHeader, self: DataSource): Promise<DataSource> {
  if (!decoded.pair) return self;
  const imgPath = await imagePathFor(headerPath);
  return { path: imgPath, gz: await isGzip(imgPath), bytes: await fileSize(imgPath) };
}

/**
 * Truncation caught at open: an uncompressed file must hold vox_offset + all volumes; a
 * gzip file cannot inflate to more than MAX_DEFLATE_RATIO × its size (a damaged header
 * claiming more is refused before anything is allocated). A gzip file that is merely
 * short is caught when the missing volume is read.
 */
function checkDataSize(decoded: DecodedHeader, data: DataSource): void {
  const { voxOffset } = decoded.header;
  const need = voxOffset + decoded.volumeBytes * decoded.volumeCount;
  if (!data.gz) {
    // The data must start inside the file: a vox_offset at or past its end is a damaged
    // header field (its own code), not merely a short file.
    if (voxOffset >= data.bytes && decoded.volumeBytes > 0) {
      throw new SyncactError('NIFTI_BAD_VOX_OFFSET', `vox_offset is ${voxOffset}, at or past the end of the ${data.bytes}-byte file`, data.path);
    }
    if (data.bytes < need) {
      const complete = Math.max(0, Math.floor((data.bytes - voxOffset) / decoded.volumeBytes));
      throw new SyncactError(
        'NIFTI_TRUNCATED_DATA',
        `file has ${data.bytes} bytes but the header needs ${need} (vox_offset ${voxOffset} + ${decoded.volumeCount} volumes of ${decoded.volumeBytes} bytes); ${Math.min(complete, decoded.volumeCount)} volumes are complete`,
        data.path,
      );
    }
  } else if (need > data.bytes * MAX_DEFLATE_RATIO + 1024) {
    throw new SyncactError(
      'NIFTI_TRUNCATED_DATA',
      `header needs ${need} bytes of data but a ${data.bytes}-byte gzip file cannot hold more than ${data.bytes * MAX_DEFLATE_RATIO} (damaged dims or vox_offset?)`,
      data.path,
    );
  }
}

class NiftiFile implements NiftiImage {
  readonly header: NiftiHeader;
  readonly grid: Grid;
  readonly voxelsPerVolume: number;
  readonly volumeCount: number;
  private readonly info: DatatypeInfo;
  private readonly volumeBytes: number;
  private readonly scaling: Scaling | null;
  /** Opened on first read (a promise, so concurrent first reads share one handle). */
  private handle: Promise<FileHandle> | null = null;
  /** The shared forward cursor used by readVolume on gzip data. */
  private cursor: GzipCursor | null = null;
  /** Serialises readVolume calls that share the cursor. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    decoded: DecodedHeader,
    private readonly data: DataSource,
  ) {
    this.header = decoded.header;
    this.info = decoded.info;
    this.voxelsPerVolume = decoded.voxelsPerVolume;
    this.volumeCount = decoded.volumeCount;
    this.volumeBytes = decoded.volumeBytes;
    this.scaling = scalingFrom(decoded.header.sclSlope, decoded.header.sclInter);
    const d = decoded.header.dims;
    this.grid = { dims: [d[0], d[1] ?? 1, d[2] ?? 1], affine: decoded.header.affine.map((row) => [...row]) };
  }

  private checkIndex(k: number): void {
    if (!Number.isInteger(k) || k < 0 || k >= this.volumeCount) {
      throw new SyncactError(
        'NIFTI_VOLUME_OUT_OF_RANGE',
        `volume ${k} does not exist: the image has ${this.volumeCount} volume${this.volumeCount === 1 ? '' : 's'} (0..${this.volumeCount - 1})`,
        this.path,
      );
    }
  }

  private truncated(k: number, got: number): SyncactError {
    const start = this.header.voxOffset + k * this.volumeBytes;
    return new SyncactError(
      'NIFTI_TRUNCATED_DATA',
      `volume ${k} needs bytes ${start}..${start + this.volumeBytes} of the ${this.data.gz ? 'inflated data' : 'file'}, but it ends at byte ${start + got}`,
      this.data.path,
    );
  }

  private decode(buffer: ArrayBuffer, as: OutputType): Float32Array | Float64Array {
    return decodeVoxels(buffer, this.voxelsPerVolume, this.info, this.header.littleEndian, this.scaling, as);
  }

  readVolume(k: number, as?: 'float32'): Promise<Float32Array>;
  readVolume(k: number, as: 'float64'): Promise<Float64Array>;
  readVolume(k: number, as?: OutputType): Promise<Float32Array | Float64Array>;
  async readVolume(k: number, as: OutputType = 'float32'): Promise<Float32Array | Float64Array> {
    this.checkIndex(k);
    const buffer = new ArrayBuffer(this.volumeBytes);
    const target = new Uint8Array(buffer);
    const start = this.header.voxOffset + k * this.volumeBytes;
    let got: number;
    if (!this.data.gz) {
      this.handle ??= openHandle(this.data.path);
      const handle = await this.handle.catch((e: unknown) => {
        this.handle = null;
        throw e;
      });
      got = await readAt(handle, this.data.path, target, start);
    } else {
      const run = this.queue.then(() => this.readGzipAt(target, start));
      this.queue = run.catch(() => {});
      got = await run;
    }
    if (got < this.volumeBytes) throw this.truncated(k, got);
    return this.decode(buffer, as);
  }

  private async readGzipAt(target: Uint8Array, start: number): Promise<number> {
    if (!this.cursor || this.cursor.position > start) {
      this.cursor?.destroy();
      this.cursor = new GzipCursor(this.data.path);
    }
    try {
      await this.cursor.skip(start - this.cursor.position);
      // Ended before the volume starts: a negative count places the end for the message.
      if (this.cursor.position < start) return this.cursor.position - start;
      return await this.cursor.readInto(target);
    } catch (e) {
      this.cursor?.destroy();
      this.cursor = null;
      throw gzipError(e, this.data.path);
    }
  }

  volumes(options: VolumesOptions<'float64'> & { as: 'float64' }): AsyncIterable<{ index: number; data: Float64Array }>;
  volumes(options?: VolumesOptions<'float32'>): AsyncIterable<{ index: number; data: Float32Array }>;
  volumes(options?: VolumesOptions): AsyncIterable<{ index: number; data: Float32Array | Float64Array }>;
  volumes(options: VolumesOptions = {}): AsyncIterable<{ index: number; data: Float32Array | Float64Array }> {
    const start = options.start ?? 0;
    const end = options.end ?? this.volumeCount;
    const as = options.as ?? 'float32';
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > this.volumeCount || start > end) {
      throw new SyncactError(
        'NIFTI_VOLUME_OUT_OF_RANGE',
        `volume range ${start}..${end} is not within 0..${this.volumeCount} (the image has ${this.volumeCount} volumes)`,
        this.path,
      );
    }
    return this.data.gz ? this.gzipVolumes(start, end, as) : this.plainVolumes(start, end, as);
  }

  private plainVolumes(start: number, end: number, as: OutputType) {
    return readAhead(start, end, (k) => this.readVolume(k, as));
  }

  /**
   * One pass of inflate on a cursor of its own, so it does not disturb readVolume; read
   * ahead by one volume (readAhead), so inflate (on the thread pool) proceeds while the
   * caller awaits other work, e.g. a paced replay clock or a socket.
   */
  private async *gzipVolumes(start: number, end: number, as: OutputType) {
    if (start === end) return;
    const cursor = new GzipCursor(this.data.path);
    try {
      const first = this.header.voxOffset + start * this.volumeBytes;
      const skipped = await cursor.skip(first);
      if (skipped < first) throw this.truncated(start, skipped - first);
      // The cursor is sequential: readAhead asks for k+1 only once k has been read.
      yield* readAhead(start, end, async (k) => {
        const buffer = new ArrayBuffer(this.volumeBytes);
        const got = await cursor.readInto(new Uint8Array(buffer));
        if (got < this.volumeBytes) throw this.truncated(k, got);
        return this.decode(buffer, as);
      });
    } finally {
      cursor.destroy();
    }
  }

  async close(): Promise<void> {
    this.cursor?.destroy();
    this.cursor = null;
    const handle = this.handle;
    this.handle = null;
    await (await handle?.catch(() => null))?.close();
  }
}

/** The outcome of a read, kept: a promise of this never rejects. */
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/**
 * Yields read(k) for k = start..end-1 in order, asking for volume k+1 when k is handed
 * out (at most two volumes held). The read-ahead's outcome is kept settled rather than as
 * a pending rejection: a volume that fails while the consumer is busy elsewhere (a
 * truncated file) is delivered as that volume's error when the consumer asks for it, and
 * a consumer that stops earlier never sees it; it is never an unhandled rejection, which
 * would end the process.
 */
async function* readAhead<T>(start: number, end: number, read: (k: number) => Promise<T>): AsyncGenerator<{ index: number; data: T }> {
  let next = start < end ? settle(read(start)) : null;
  for (let k = start; k < end && next; k++) {
    const got = await next;
    if (!got.ok) throw got.error;
    next = k + 1 < end ? settle(read(k + 1)) : null;
    yield { index: k, data: got.value };
  }
}
