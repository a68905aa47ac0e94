/**
 * NIfTI-1/NIfTI-2 header decoding and validation: the bytes of a header become a
 * `NiftiHeader`, or a typed error naming the file and what is wrong with it.
 *
 * nifti-reader-js decodes the fixed fields (it detects the byte order and both versions).
 * We read a few things ourselves, each for a reason given where it is done: the NIfTI-2
 * 64-bit integers, the NIfTI-1 srow_* rows, the affine (affine.ts) and the extensions.
 * It is only ever handed exactly the fixed header bytes, so its extension parser (which
 * throws plain Errors on damaged extensions) never runs.
 */
import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { SyncactError } from '../../errors.ts';
import { bestAffine } from './affine.ts';
import { datatypeFromCode, type DatatypeInfo } from './datatype.ts';
import type { NiftiHeader } from './types.ts';

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;
/** The 4-byte "extender" that follows the fixed header in a .nii (and may in a .hdr). */
export const EXTENDER_BYTES = 4;

/** Largest volume we agree to hold in memory (voxels); beyond it dims are treated as damaged. */
export const MAX_VOXELS_PER_VOLUME = 2 ** 31 - 1;

export interface HeaderLayout {
  format: 'nifti1' | 'nifti2';
  littleEndian: boolean;
  /** 348 or 540. */
  headerBytes: number;
}

/** Reads sizeof_hdr (the first int32) to find the version and byte order. */
export function sniffHeader(first4: Uint8Array, file: string): HeaderLayout {
  if (first4.length < 4) {
    throw new SyncactError('NIFTI_TRUNCATED_HEADER', `file holds only ${first4.length} bytes, not a NIfTI header`, file);
  }
  const view = new DataView(first4.buffer, first4.byteOffset, 4);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_HEADER_BYTES) return { format: 'nifti1', littleEndian, headerBytes: size };
    if (size === NIFTI2_HEADER_BYTES) return { format: 'nifti2', littleEndian, headerBytes: size };
  }
  throw new SyncactError(
    'NIFTI_NOT_NIFTI',
    `not a NIfTI file: sizeof_hdr is neither 348 (NIfTI-1) nor 540 (NIfTI-2) in either byte order`,
    file,
  );
}

/** A decoded header plus what the reader needs beyond the shared model. */
export interface DecodedHeader {
  header: NiftiHeader;
  info: DatatypeInfo;
  /** True for ni1/ni2 magic: the data are in a separate .img file. */
  pair: boolean;
  voxelsPerVolume: number;
  volumeCount: number;
  /** voxelsPerVolume × bytes per voxel. */
  volumeBytes: number;
}

const EOL_CHECK = [0x0d, 0x0a, 0x1a, 0x0a];

function readMagic(bytes: Uint8Array, layout: HeaderLayout, file: string): { pair: boolean } {
  const at = layout.format === 'nifti1' ? 344 : 4;
  const m = bytes.subarray(at, at + 4);
  const version = layout.format === 'nifti1' ? 0x31 : 0x32;
  const ok = m[0] === 0x6e && (m[1] === 0x2b || m[1] === 0x69) && m[2] === version && m[3] === 0;
  if (!ok) {
    const shown = Array.from(m, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
    const hint = layout.format === 'nifti1' ? ' (an Analyze 7.5 header? only NIfTI is supported)' : '';
    throw new SyncactError('NIFTI_NOT_NIFTI', `bad ${layout.format} magic "${shown}"${hint}`, file);
  }
  if (layout.format === 'nifti2') {
    // The eol check catches files mangled by text-mode transfers; nibabel accepts all zeros.
    const eol = bytes.subarray(8, 12);
    const zero = eol.every((c) => c === 0);
    if (!zero && !EOL_CHECK.every((c, i) => eol[i] === c)) {
      throw new SyncactError('NIFTI_NOT_NIFTI', 'NIfTI-2 magic eol check bytes are damaged (text-mode transfer?)', file);
    }
  }
  return { pair: m[1] === 0x69 };
}

/** A 64-bit integer field; the library's reader mis-signs big-endian values and loses precision. */
function int64(view: DataView, at: number, littleEndian: boolean): number {
  const v = view.getBigInt64(at, littleEndian);
  return v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

function checkDims(rawDims: number[], file: string): number[] {
  const ndim = rawDims[0];
  if (!Number.isInteger(ndim) || ndim < 1 || ndim > 7) {
    throw new SyncactError('NIFTI_BAD_DIMS', `dim[0] is ${Number.isNaN(ndim) ? 'out of range' : ndim}, must be 1..7`, file);
  }
  const dims = rawDims.slice(1, ndim + 1);
  dims.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new SyncactError('NIFTI_BAD_DIMS', `dim[${i + 1}] is ${Number.isNaN(d) ? 'out of range' : d}, must be a positive size`, file);
    }
  });
  return dims;
}

/** A NUL-terminated field (the library skips NULs and would append what follows them). */
function cString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end < 0 ? field.length : end)).toString('latin1');
}

/** Seconds per volume: pixdim[4] in the header's time unit; null when there is no time axis. */
export function trSeconds(dims: number[], pixdim4: number | undefined, xyztUnits: number): number | null {
  if (dims.length < 4 || pixdim4 === undefined || !Number.isFinite(pixdim4) || pixdim4 <= 0) return null;
  switch (xyztUnits & 0x38) {
    // Unknown time unit: taken as seconds, as nibabel's zooms and most tools do.
    case 0:
    case 8:
      return pixdim4;
    case 16:
      return pixdim4 / 1000;
    case 24:
      return pixdim4 / 1e6;
    default:
      // Hz, ppm, rad/s: the 4th axis is not time.
      return null;
  }
}

/**
 * Decodes and checks the fixed header (`bytes` holds at least layout.headerBytes).
 * Extensions are parsed separately (parseExtensions) because they sit between the header
 * and vox_offset, which for a .nii.gz must be inflated first.
 */
export function decodeHeader(bytes: Uint8Array, layout: HeaderLayout, file: string): DecodedHeader {
  if (bytes.length < layout.headerBytes) {
    throw new SyncactError(
      'NIFTI_TRUNCATED_HEADER',
      `${layout.format} header needs ${layout.headerBytes} bytes, the file holds ${bytes.length}`,
      file,
    );
  }
  const { pair } = readMagic(bytes, layout, file);
  const fixed = bytes.slice(0, layout.headerBytes).buffer;
  const lib = layout.format === 'nifti1' ? new NIFTI1() : new NIFTI2();
  try {
    lib.readHeader(fixed);
  } catch (e) {
    throw new SyncactError('NIFTI_NOT_NIFTI', `unreadable ${layout.format} header: ${(e as Error).message}`, file);
  }
  const le = layout.littleEndian;
  const view = new DataView(bytes.buffer, bytes.byteOffset, layout.headerBytes);

  let rawDims: number[];
  let voxOffset: number;
  let srow: [number[], number[], number[]];
  if (layout.format === 'nifti2') {
    rawDims = Array.from({ length: 8 }, (_, i) => int64(view, 16 + 8 * i, le));
    voxOffset = int64(view, 168, le);
    // float64 srows; the library reads them into its affine, which we do not use.
    srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => view.getFloat64(400 + (r * 4 + c) * 8, le))) as [number[], number[], number[]];
  } else {
    rawDims = lib.dims.slice(0, 8);
    voxOffset = lib.vox_offset;
    // The library only fills its affine from srow when it picks the sform; read them directly.
    srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => view.getFloat32(280 + (r * 4 + c) * 4, le))) as [number[], number[], number[]];
  }

  const dims = checkDims(rawDims, file);
  const spatial = [dims[0], dims[1] ?? 1, dims[2] ?? 1];
  const voxelsPerVolume = spatial[0] * spatial[1] * spatial[2];
  const volumeCount = dims.slice(3).reduce((a, b) => a * b, 1);
  if (voxelsPerVolume > MAX_VOXELS_PER_VOLUME) {
    throw new SyncactError('NIFTI_BAD_DIMS', `a volume of ${spatial.join('×')} voxels is larger than syncact can hold (2^31-1 voxels)`, file);
  }
  // bitpix is not checked against the datatype: like nibabel, the datatype code decides.
  const info = datatypeFromCode(lib.datatypeCode, file);
  const volumeBytes = voxelsPerVolume * info.bytes;
  if (!Number.isSafeInteger(volumeCount) || !Number.isSafeInteger(volumeBytes * volumeCount)) {
    throw new SyncactError('NIFTI_BAD_DIMS', `dims ${dims.join('×')} overflow: the image would be larger than 2^53 bytes`, file);
  }

  const minOffset = pair ? 0 : layout.headerBytes + EXTENDER_BYTES;
  if (!Number.isSafeInteger(voxOffset) || voxOffset < minOffset) {
    const why = pair ? 'must be a whole number ≥ 0' : `must be a whole number ≥ ${minOffset} in a single-file ${layout.format}`;
    throw new SyncactError('NIFTI_BAD_VOX_OFFSET', `vox_offset is ${voxOffset}; it ${why}`, file);
  }

  const sclSlope = lib.scl_slope;
  const sclInter = lib.scl_inter;
  if (sclSlope !== 0 && Number.isFinite(sclSlope) && !Number.isFinite(sclInter)) {
    // nibabel refuses this too: every value would be non-finite.
    throw new SyncactError('NIFTI_BAD_SCALING', `scl_slope is ${sclSlope} but scl_inter is ${sclInter}`, file);
  }

  const pixdimAll = lib.pixDims.slice(0, 8);
  const pixdim = pixdimAll.slice(1, dims.length + 1);
  const affine = bestAffine({
    dims,
    pixdimAll,
    qformCode: lib.qform_code,
    sformCode: lib.sform_code,
    quaternB: lib.quatern_b,
    quaternC: lib.quatern_c,
    quaternD: lib.quatern_d,
    qoffsetX: lib.qoffset_x,
    qoffsetY: lib.qoffset_y,
    qoffsetZ: lib.qoffset_z,
    srow,
  });

  const header: NiftiHeader = {
    format: layout.format,
    littleEndian: le,
    dims,
    pixdim,
    datatype: info.name,
    datatypeCode: info.code,
    bitpix: lib.numBitsPerVoxel,
    voxOffset,
    sclSlope,
    sclInter,
    qformCode: lib.qform_code,
    sformCode: lib.sform_code,
    affine,
    tr: trSeconds(dims, pixdimAll[4], lib.xyzt_units),
    xyztUnits: lib.xyzt_units,
    description: cString(bytes.subarray(layout.format === 'nifti1' ? 148 : 240, layout.format === 'nifti1' ? 228 : 320)),
    extensions: [],
  };
  return { header, info, pair, voxelsPerVolume, volumeCount, volumeBytes };
}

/**
 * Header extensions: `bytes` starts at the 4-byte extender (just after the fixed header)
 * and ends at vox_offset (or the end of a .hdr). Each extension is esize (int32, counting
 * its 8-byte head), ecode (int32), then data. A chain that runs past its end is ignored
 * from that point, as nibabel does: extensions never change how the voxels are read.
 */
export function parseExtensions(bytes: Uint8Array, littleEndian: boolean): { code: number; data: Uint8Array }[] {
  if (bytes.length < EXTENDER_BYTES + 8 || bytes[0] === 0) return [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: { code: number; data: Uint8Array }[] = [];
  let at = EXTENDER_BYTES;
  while (at + 8 <= bytes.length) {
    const esize = view.getInt32(at, littleEndian);
    const ecode = view.getInt32(at + 4, littleEndian);
    if (esize < 8 || at + esize > bytes.length) break;
    out.push({ code: ecode, data: bytes.slice(at + 8, at + esize) });
    at += esize;
  }
  return out;
}
