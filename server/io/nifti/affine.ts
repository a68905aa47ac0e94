/**
 * The voxel-to-world affine of a NIfTI header, computed exactly as nibabel's
 * `get_best_affine()` does (the standard's method 3, then method 2, then the Analyze-style
 * fallback).
 *
 * Why not nifti-reader-js's `affine`: for NIfTI-1 it prefers the qform whenever
 * qform_code > sform_code (nibabel, FSL and nilearn use the sform whenever sform_code > 0),
 * its quaternion `a` is NaN when b²+c²+d² rounds above 1, it uses pixdim[0] as qfac even
 * when it is not ±1, and for NIfTI-2 it never evaluates the qform at all. Its fallback is
 * a bare diagonal, where nibabel centres the grid and flips x.
 */
import type { Affine } from './types.ts';

/** The header fields the affine depends on (pixdim as stored, index 0 = qfac). */
export interface AffineFields {
  /** dim[1..dim[0]] */
  dims: number[];
  /** pixdim[0..7] as stored. */
  pixdimAll: number[];
  qformCode: number;
  sformCode: number;
  quaternB: number;
  quaternC: number;
  quaternD: number;
  qoffsetX: number;
  qoffsetY: number;
  qoffsetZ: number;
  /** srow_x, srow_y, srow_z (4 values each). */
  srow: [number[], number[], number[]];
}

/** sform when sform_code > 0, else qform when qform_code > 0, else the base affine. */
export function bestAffine(f: AffineFields): Affine {
  if (f.sformCode > 0) return sformAffine(f.srow);
  if (f.qformCode > 0) return qformAffine(f);
  return baseAffine(f.dims, f.pixdimAll);
}

export function sformAffine(srow: [number[], number[], number[]]): Affine {
  return [[...srow[0]], [...srow[1]], [...srow[2]], [0, 0, 0, 1]];
}

/**
 * nibabel's header fix-ups for pixdim[1..3] (applied on load): 0 becomes 1, negatives
 * their absolute value; qfac (pixdim[0]) other than ±1 becomes 1.
 */
function fixedSpatialZooms(pixdimAll: number[]): [number, number, number] {
  const fix = (v: number | undefined) => (v === undefined || v === 0 || Number.isNaN(v) ? 1 : Math.abs(v));
  return [fix(pixdimAll[1]), fix(pixdimAll[2]), fix(pixdimAll[3])];
}

/**
 * Rotation matrix of the unit quaternion (a, b, c, d) with a = sqrt(1 - b² - c² - d²)
 * (nibabel `fillpositive` + `quat2mat`). When b²+c²+d² exceeds 1 by more than float32
 * rounding, nibabel refuses the file; we follow nifti1_io instead and normalise (b, c, d)
 * with a = 0 (a 180° rotation), so a slightly off header still has a usable orientation.
 */
export function quaternionToRotation(b: number, c: number, d: number): number[][] {
  const bcd2 = b * b + c * c + d * d;
  let a: number;
  const w2 = 1 - bcd2;
  // nibabel's threshold: 3 float32 epsilons of slack for values stored as float32.
  if (w2 < 0) {
    if (w2 < -3 * 1.1920928955078125e-7 && bcd2 > 0) {
      const s = 1 / Math.sqrt(bcd2);
      b *= s;
      c *= s;
      d *= s;
    }
    a = 0;
  } else {
    a = Math.sqrt(w2);
  }
  const n = a * a + b * b + c * c + d * d;
  if (!(n > 1e-15) || !Number.isFinite(n)) return [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const s = 2 / n;
  const [X, Y, Z] = [b * s, c * s, d * s];
  const [wX, wY, wZ] = [a * X, a * Y, a * Z];
  const [xX, xY, xZ] = [b * X, b * Y, b * Z];
  const [yY, yZ, zZ] = [c * Y, c * Z, d * Z];
  return [
    [1 - (yY + zZ), xY - wZ, xZ + wY],
    [xY + wZ, 1 - (xX + zZ), yZ - wX],
    [xZ - wY, yZ + wX, 1 - (xX + yY)],
  ];
}

/** Method 2: R(quaternion) · diag(dx, dy, qfac·dz), offset (qoffset_x, y, z). */
export function qformAffine(f: AffineFields): Affine {
  const R = quaternionToRotation(f.quaternB, f.quaternC, f.quaternD);
  const zooms = fixedSpatialZooms(f.pixdimAll);
  const qfac = f.pixdimAll[0] === -1 ? -1 : 1;
  zooms[2] *= qfac;
  const offsets = [f.qoffsetX, f.qoffsetY, f.qoffsetZ];
  const out: Affine = [];
  for (let r = 0; r < 3; r++) out.push([R[r][0] * zooms[0], R[r][1] * zooms[1], R[r][2] * zooms[2], offsets[r]]);
  out.push([0, 0, 0, 1]);
  return out;
}

/**
 * nibabel's `shape_zoom_affine(shape, zooms, x_flip=True)` for files with neither
 * transform: voxel sizes on the diagonal, x flipped (radiological Analyze convention),
 * and the grid centred on the origin.
 */
export function baseAffine(dims: number[], pixdimAll: number[]): Affine {
  const zooms = fixedSpatialZooms(pixdimAll);
  // Only the first dim[0] zooms exist; nibabel pads missing spatial axes with 1.
  for (let i = dims.length; i < 3; i++) zooms[i] = 1;
  const shape = [dims[0] ?? 1, dims[1] ?? 1, dims[2] ?? 1];
  zooms[0] = -zooms[0];
  const out: Affine = [];
  for (let r = 0; r < 3; r++) {
    const row = [0, 0, 0, -((shape[r] - 1) / 2) * zooms[r]];
    row[r] = zooms[r];
    out.push(row);
  }
  out.push([0, 0, 0, 1]);
  return out;
}
