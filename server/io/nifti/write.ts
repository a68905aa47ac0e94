/**
 * The NIfTI-1 writer: float32 3D/4D images, `.nii` or `.nii.gz`, little-endian, with both
 * the sform and the qform set from one affine so that nibabel, FSLeyes and NiiVue place
 * the image identically whichever transform they prefer.
 *
 * Files appear atomically: bytes go to `PATH.partial`, which is renamed to PATH only once
 * everything has been written (and, for the streaming writer, once the number of volumes
 * matches dims[3]). A crashed or aborted run never leaves a file that looks complete.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { endianness } from 'node:os';
import { pipeline, finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { SyncactError } from '../../errors.ts';
import type { Affine } from './types.ts';

/** NIfTI-1 header size plus the 4-byte extension flag; data start here. */
const HEADER_BYTES = 348;
const VOX_OFFSET = 352;
const DT_FLOAT32 = 16;
/** xyzt_units: NIFTI_UNITS_MM (2) | NIFTI_UNITS_SEC (8). */
const UNITS_MM_SEC = 2 | 8;
/** xyzt_units of a stack of maps: NIFTI_UNITS_MM only, the 4th axis has no unit. */
const UNITS_MM = 2;
/** NIFTI_XFORM_ALIGNED_ANAT: the default code for both transforms. */
export const XFORM_ALIGNED_ANAT = 2;

export interface NiftiIntent {
  /** NIFTI_INTENT_* code, e.g. 1001 estimate, 1002 label, 3 t-test. */
  code: number;
  /** Up to 15 characters. */
  name?: string;
  p1?: number;
  p2?: number;
  p3?: number;
}

export interface NiftiWriteOptions {
  /** [nx, ny, nz] or [nx, ny, nz, nt]; x varies fastest in the data. */
  dims: number[];
  /** Voxel-to-world (mm), 4×4 row-major; written as sform and as qform. */
  affine: Affine;
  /** Seconds per volume, stored in pixdim[4] (4D images). Default 1. Not with `volumes: 'maps'`. */
  tr?: number;
  /**
   * What the 4th axis is. 'time' (default): a run, pixdim[4] = tr and xyzt_units mm + s.
   * 'maps': a stack of maps (t or beta per regressor, network components), written as
   * nibabel writes `Nifti1Image(stack, affine)` and nilearn's `concat_imgs` returns it:
   * pixdim[4] = 1 and xyzt_units mm with no time unit, so that no tool (nilearn, FSL,
   * AFNI) reads the stack as a time series with a TR. Still 4D (not dim[5] with a vector
   * intent): nilearn's image functions accept 3D or 4D only.
   */
  volumes?: 'time' | 'maps';
  /** Up to 79 characters, stored in descrip. */
  description?: string;
  intent?: NiftiIntent;
  /** NIFTI_XFORM_* codes; default 2 (aligned anatomical) for both. */
  sformCode?: number;
  qformCode?: number;
  /** zlib level for `.nii.gz` (0–9); default 6. Lower is much faster on noisy float data. */
  gzipLevel?: number;
}

/** A 4D image written one volume at a time (see createNiftiWriter). */
export interface NiftiVolumeWriter {
  /** Appends one volume of nx·ny·nz values (x fastest). The array may be reused after. */
  writeVolume(volume: Float32Array): Promise<void>;
  /** Finishes the file and renames it into place; fails unless dims[3] volumes were written. */
  close(): Promise<void>;
  /** Discards everything written so far; the target path is left untouched. */
  abort(): Promise<void>;
}

/** Writes a whole image (x fastest, then y, z, t) atomically. */
export async function writeNifti(path: string, data: Float32Array, options: NiftiWriteOptions): Promise<void> {
  const dims = checkDims(path, options.dims);
  const expected = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new SyncactError(
      'NIFTI_WRITE_FAILED',
      `data has ${data.length} values but dims ${dims.join('×')} need ${expected}`,
      path,
    );
  }
  const writer = await openWriter(path, options, dims);
  try {
    await writer.write(float32Bytes(data));
    await writer.finish();
  } catch (e) {
    await writer.discard();
    throw e;
  }
}

/** Opens a streaming writer; the header is written at once, volumes follow in order. */
export async function createNiftiWriter(path: string, options: NiftiWriteOptions): Promise<NiftiVolumeWriter> {
  const dims = checkDims(path, options.dims);
  const nVolumes = dims.length === 4 ? dims[3] : 1;
  const volumeSize = dims[0] * dims[1] * dims[2];
  const writer = await openWriter(path, options, dims);
  let written = 0;
  let state: 'open' | 'closed' | 'aborted' = 'open';
  const fail = async (message: string): Promise<never> => {
    state = 'aborted';
    await writer.discard();
    throw new SyncactError('NIFTI_WRITE_FAILED', message, path);
  };
  return {
    async writeVolume(volume) {
      if (state !== 'open') throw new SyncactError('NIFTI_WRITE_FAILED', `writer is ${state}`, path);
      if (volume.length !== volumeSize) {
        return fail(`volume ${written} has ${volume.length} values, the grid has ${volumeSize}`);
      }
      if (written >= nVolumes) return fail(`more than the ${nVolumes} volumes declared in dims`);
      try {
        // A copy: the stream may still hold the chunk when the caller reuses its array.
        await writer.write(Buffer.from(float32Bytes(volume)));
      } catch (e) {
        state = 'aborted';
        await writer.discard();
        throw e;
      }
      written++;
    },
    async close() {
      if (state !== 'open') throw new SyncactError('NIFTI_WRITE_FAILED', `writer is ${state}`, path);
      if (written !== nVolumes) return fail(`closed after ${written} of ${nVolumes} volumes`);
      state = 'closed';
      try {
        await writer.finish();
      } catch (e) {
        await writer.discard();
        throw e;
      }
    },
    async abort() {
      if (state === 'closed') return;
      state = 'aborted';
      await writer.discard();
    },
  };
}

interface RawWriter {
  write(bytes: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  discard(): Promise<void>;
}

async function openWriter(path: string, options: NiftiWriteOptions, dims: number[]): Promise<RawWriter> {
  const header = buildNiftiHeader(path, { ...options, dims });
  const partial = path + '.partial';
  let handle: FileHandle;
  try {
    handle = await open(partial, 'w');
  } catch (e) {
    throw writeError(path, e);
  }
  const out = handle.createWriteStream();
  const gzip = path.endsWith('.gz') ? createGzip({ level: options.gzipLevel ?? 6 }) : null;
  const sink: Writable = gzip ?? out;
  let failure: unknown = null;
  const done = (gzip ? pipeline(gzip, out) : finished(out)).catch((e: unknown) => {
    failure = e;
  });
  let discarded = false;
  const raw: RawWriter = {
    async write(bytes) {
      if (failure) throw writeError(path, failure);
      if (!sink.write(bytes)) {
        await Promise.race([once(sink, 'drain'), done]).catch((e: unknown) => {
          failure ??= e;
        });
      }
      if (failure) throw writeError(path, failure);
    },
    async finish() {
      sink.end();
      await done;
      if (failure) throw writeError(path, failure);
      try {
        await rename(partial, path);
      } catch (e) {
        throw writeError(path, e);
      }
    },
    async discard() {
      if (discarded) return;
      discarded = true;
      sink.destroy();
      out.destroy();
      await done;
      await handle.close().catch(() => undefined);
      await rm(partial, { force: true });
    },
  };
  await raw.write(header);
  return raw;
}

function writeError(path: string, e: unknown): SyncactError {
  if (e instanceof SyncactError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new SyncactError('NIFTI_WRITE_FAILED', `cannot write: ${msg}`, path);
}

function checkDims(path: string, dims: number[]): number[] {
  if (
    (dims.length !== 3 && dims.length !== 4) ||
    !dims.every((d) => Number.isInteger(d) && d >= 1 && d <= 32767)
  ) {
    throw new SyncactError(
      'NIFTI_WRITE_FAILED',
      `dims must be 3 or 4 integers in 1..32767, got [${dims.join(', ')}]`,
      path,
    );
  }
  return dims.slice();
}

/** The float32 values as little-endian bytes (a view when the machine is little-endian). */
function float32Bytes(data: Float32Array): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (endianness() === 'LE') return view;
  const swapped = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += 4) {
    swapped[i] = view[i + 3];
    swapped[i + 1] = view[i + 2];
    swapped[i + 2] = view[i + 1];
    swapped[i + 3] = view[i];
  }
  return swapped;
}

/**
 * The 352 bytes that precede the data of a single-file float32 NIfTI-1 image: the 348-byte
 * header and an empty extension flag. Exported for tests and for writers of other layouts.
 */
export function buildNiftiHeader(path: string, options: NiftiWriteOptions): Uint8Array {
  const dims = checkDims(path, options.dims);
  const affine = checkAffine(path, options.affine);
  const maps = options.volumes === 'maps';
  if (maps && options.tr !== undefined) {
    throw new SyncactError('NIFTI_WRITE_FAILED', `a stack of maps has no tr (got ${options.tr})`, path);
  }
  const tr = options.tr ?? 1;
  if (!(Number.isFinite(tr) && tr > 0)) {
    throw new SyncactError('NIFTI_WRITE_FAILED', `tr must be a positive number of seconds, got ${tr}`, path);
  }
  const buf = new ArrayBuffer(VOX_OFFSET);
  const v = new DataView(buf);
  const bytes = new Uint8Array(buf);
  const le = true;
  v.setInt32(0, HEADER_BYTES, le);
  bytes[38] = 'r'.charCodeAt(0); // "regular", as FSL and nibabel write it
  v.setInt16(40, dims.length, le);
  for (let i = 0; i < 7; i++) v.setInt16(42 + 2 * i, i < dims.length ? dims[i] : 1, le);
  const intent = options.intent;
  if (intent) {
    v.setFloat32(56, intent.p1 ?? 0, le);
    v.setFloat32(60, intent.p2 ?? 0, le);
    v.setFloat32(64, intent.p3 ?? 0, le);
    v.setInt16(68, intent.code, le);
    writeString(bytes, 328, 16, intent.name ?? '');
  }
  v.setInt16(70, DT_FLOAT32, le);
  v.setInt16(72, 32, le);

  const q = affineToQuaternion(affine);
  v.setFloat32(76, q.qfac, le);
  v.setFloat32(80, q.pixdim[0], le);
  v.setFloat32(84, q.pixdim[1], le);
  v.setFloat32(88, q.pixdim[2], le);
  v.setFloat32(92, dims.length === 4 ? tr : 0, le);
  for (let i = 5; i < 8; i++) v.setFloat32(76 + 4 * i, 0, le);
  v.setFloat32(108, VOX_OFFSET, le);
  v.setFloat32(112, 1, le); // scl_slope: values are stored as they are
  v.setFloat32(116, 0, le);
  bytes[123] = maps ? UNITS_MM : UNITS_MM_SEC;
  writeString(bytes, 148, 80, options.description ?? 'syncact');
  v.setInt16(252, options.qformCode ?? XFORM_ALIGNED_ANAT, le);
  v.setInt16(254, options.sformCode ?? XFORM_ALIGNED_ANAT, le);
  v.setFloat32(256, q.b, le);
  v.setFloat32(260, q.c, le);
  v.setFloat32(264, q.d, le);
  v.setFloat32(268, affine[0][3], le);
  v.setFloat32(272, affine[1][3], le);
  v.setFloat32(276, affine[2][3], le);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) v.setFloat32(280 + 16 * r + 4 * c, affine[r][c], le);
  }
  writeString(bytes, 344, 4, 'n+1');
  // bytes 348..351 stay 0: no extensions.
  return bytes;
}

function writeString(bytes: Uint8Array, offset: number, size: number, s: string): void {
  // Leave room for the terminating NUL; non-ASCII is replaced so the field stays one byte per char.
  const n = Math.min(s.length, size - 1);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    bytes[offset + i] = c >= 32 && c < 127 ? c : 63;
  }
}

function checkAffine(path: string, affine: Affine): Affine {
  const ok =
    Array.isArray(affine) &&
    affine.length >= 3 &&
    affine.slice(0, 3).every((row) => Array.isArray(row) && row.length === 4 && row.every(Number.isFinite));
  if (!ok) throw new SyncactError('NIFTI_WRITE_FAILED', 'affine must be a 4×4 matrix of finite numbers', path);
  if (Math.abs(det3(affine)) < 1e-12) throw new SyncactError('NIFTI_WRITE_FAILED', 'affine is singular', path);
  return affine;
}

function det3(m: number[][]): number {
  return (
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
  );
}

export interface Quaternion {
  b: number;
  c: number;
  d: number;
  /** pixdim[0]: +1, or -1 when the affine flips handedness (negative determinant). */
  qfac: number;
  /** Voxel sizes: the norms of the affine's first three columns. */
  pixdim: [number, number, number];
}

/**
 * The qform parameters of an affine, as nifti1_io's nifti_mat44_to_quatern computes them:
 * voxel sizes from the column norms, the nearest rotation by polar decomposition (so a
 * sheared sform still yields a valid qform), qfac from the sign of its determinant (the
 * third column is flipped when negative), then the quaternion with a ≥ 0 and only b, c, d kept.
 */
export function affineToQuaternion(affine: Affine): Quaternion {
  const cols: number[][] = [0, 1, 2].map((c) => [affine[0][c], affine[1][c], affine[2][c]]);
  const pixdim = cols.map((col) => Math.hypot(col[0], col[1], col[2])) as [number, number, number];
  // Unit columns (a zero column becomes the matching axis, as nifti1_io does).
  const m: number[][] = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < 3; r++) m[r][c] = pixdim[c] > 0 ? cols[c][r] / pixdim[c] : r === c ? 1 : 0;
  }
  const p = polar(m);
  let qfac = 1;
  if (det3(p) < 0) {
    qfac = -1;
    for (let r = 0; r < 3; r++) p[r][2] = -p[r][2];
  }
  const [r11, r12, r13] = p[0];
  const [r21, r22, r23] = p[1];
  const [r31, r32, r33] = p[2];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { b, c, d, qfac, pixdim };
}

/** The orthogonal factor of a 3×3 matrix, by the scaled Newton iteration X ← (X + X⁻ᵀ)/2. */
function polar(m: number[][]): number[][] {
  let x = m.map((row) => row.slice());
  for (let iter = 0; iter < 100; iter++) {
    const inv = inverse3(x);
    const y = x.map((row, r) => row.map((val, c) => 0.5 * (val + inv[c][r])));
    let diff = 0;
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) diff = Math.max(diff, Math.abs(y[r][c] - x[r][c]));
    x = y;
    if (diff < 1e-15) break;
  }
  return x;
}

function inverse3(m: number[][]): number[][] {
  const det = det3(m);
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}
