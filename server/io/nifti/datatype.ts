/**
 * NIfTI datatype codes and the decoding of raw voxel bytes into scaled floats.
 *
 * Decoding works on a buffer the reader owns (a fresh ArrayBuffer per volume), so the
 * bytes can be swapped in place and viewed as a typed array without another copy.
 */
import { endianness } from 'node:os';
import { SyncactError } from '../../errors.ts';
import type { NiftiDatatype } from './types.ts';

export interface DatatypeInfo {
  code: number;
  name: NiftiDatatype;
  /** Bytes per voxel. */
  bytes: number;
}

const SUPPORTED: ReadonlyMap<number, DatatypeInfo> = new Map(
  (
    [
      [2, 'uint8', 1],
      [4, 'int16', 2],
      [8, 'int32', 4],
      [16, 'float32', 4],
      [64, 'float64', 8],
      [256, 'int8', 1],
      [512, 'uint16', 2],
      [768, 'uint32', 4],
    ] as const
  ).map(([code, name, bytes]) => [code, { code, name, bytes }]),
);

/** Names of the codes the standard defines, so an unsupported one is named in the error. */
const STANDARD_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'UNKNOWN'],
  [1, 'BINARY'],
  [2, 'UINT8'],
  [4, 'INT16'],
  [8, 'INT32'],
  [16, 'FLOAT32'],
  [32, 'COMPLEX64'],
  [64, 'FLOAT64'],
  [128, 'RGB24'],
  [255, 'ALL'],
  [256, 'INT8'],
  [512, 'UINT16'],
  [768, 'UINT32'],
  [1024, 'INT64'],
  [1280, 'UINT64'],
  [1536, 'FLOAT128'],
  [1792, 'COMPLEX128'],
  [2048, 'COMPLEX256'],
  [2304, 'RGBA32'],
]);

/** The datatype for a header code, or NIFTI_UNSUPPORTED_DATATYPE naming the type. */
export function datatypeFromCode(code: number, file: string): DatatypeInfo {
  const info = SUPPORTED.get(code);
  if (info) return info;
  const name = STANDARD_NAMES.get(code) ?? 'not a NIfTI datatype code';
  throw new SyncactError(
    'NIFTI_UNSUPPORTED_DATATYPE',
    `datatype ${code} (${name}) is not supported; syncact reads uint8, int8, int16, uint16, int32, uint32, float32 and float64`,
    file,
  );
}

/** The scaling to apply, or null: the standard says slope 0 (or non-finite) means none. */
export interface Scaling {
  slope: number;
  inter: number;
}

export function scalingFrom(sclSlope: number, sclInter: number): Scaling | null {
  if (sclSlope === 0 || !Number.isFinite(sclSlope)) return null;
  // A slope of 1 with intercept 0 is the identity; skipping it keeps float32 data zero-copy.
  if (sclSlope === 1 && sclInter === 0) return null;
  return { slope: sclSlope, inter: sclInter };
}

const hostLittleEndian = endianness() === 'LE';

type RawArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

function rawView(info: DatatypeInfo, buffer: ArrayBuffer, n: number): RawArray {
  switch (info.name) {
    case 'uint8':
      return new Uint8Array(buffer, 0, n);
    case 'int8':
      return new Int8Array(buffer, 0, n);
    case 'int16':
      return new Int16Array(buffer, 0, n);
    case 'uint16':
      return new Uint16Array(buffer, 0, n);
    case 'int32':
      return new Int32Array(buffer, 0, n);
    case 'uint32':
      return new Uint32Array(buffer, 0, n);
    case 'float32':
      return new Float32Array(buffer, 0, n);
    case 'float64':
      return new Float64Array(buffer, 0, n);
  }
}

export type OutputType = 'float32' | 'float64';

/**
 * Turns the raw bytes of n voxels into scaled values. `buffer` must hold exactly the
 * voxels from offset 0 and may be modified (byte-swapped) and reused as the result.
 */
export function decodeVoxels(
  buffer: ArrayBuffer,
  n: number,
  info: DatatypeInfo,
  littleEndian: boolean,
  scaling: Scaling | null,
  as: OutputType,
): Float32Array | Float64Array {
  if (littleEndian !== hostLittleEndian && info.bytes > 1) {
    const bytes = Buffer.from(buffer, 0, n * info.bytes);
    if (info.bytes === 2) bytes.swap16();
    else if (info.bytes === 4) bytes.swap32();
    else bytes.swap64();
  }
  const raw = rawView(info, buffer, n);
  if (!scaling && raw instanceof (as === 'float32' ? Float32Array : Float64Array)) {
    return raw as Float32Array | Float64Array;
  }
  const out = as === 'float32' ? new Float32Array(n) : new Float64Array(n);
  if (!scaling) {
    out.set(raw);
    return out;
  }
  // Scaled in float64 (as nibabel's get_fdata does) and rounded once on storing.
  const { slope, inter } = scaling;
  for (let i = 0; i < n; i++) out[i] = raw[i] * slope + inter;
  return out;
}
