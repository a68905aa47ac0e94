/**
 * The NIfTI data model shared by the reader (read.ts), the writer (write.ts), `inspect`,
 * masks, atlases and the synthetic generator. Volumes are numbered from 0.
 */
export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

/** A 4×4 voxel-to-world (mm) matrix, row-major: affine[row][col]. */
export type Affine = number[][];

export interface NiftiHeader {
  format: 'nifti1' | 'nifti2';
  littleEndian: boolean;
  /** dim[1..dim[0]] */
  dims: number[];
  /** pixdim[1..dim[0]], as stored (spatial in xyzt_units, time in its own unit). */
  pixdim: number[];
  datatype: NiftiDatatype;
  datatypeCode: number;
  bitpix: number;
  /** Byte offset of the data in the data file (the .nii itself, or the .img of a pair). */
  voxOffset: number;
  /** As stored; the reader applies them only when slope is finite and non-zero. */
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  /** sform when sform_code > 0, else qform when qform_code > 0, else pixdim scaling. */
  affine: Affine;
  /**
   * Seconds, from pixdim[4] and xyzt_units (ms and µs converted; an unknown unit is taken
   * as seconds, as nibabel and most tools do); null for 3D images, a pixdim[4] that is not
   * positive, or a 4th axis in Hz, ppm or rad/s.
   */
  tr: number | null;
  xyztUnits: number;
  description: string;
  extensions: { code: number; data: Uint8Array }[];
}

/** The spatial grid of an image: what masks and atlases must match or be resampled to. */
export interface Grid {
  /** [nx, ny, nz] */
  dims: [number, number, number];
  affine: Affine;
}
