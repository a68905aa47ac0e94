/**
 * A minimal single-file NIfTI-1 (.nii) image in memory, float32, from the session's grid
 * and affine. NiiVue loads volumes from NIfTI bytes; the server sends raw arrays, so the
 * dashboard wraps them once (the background, and the overlay the first time) and later
 * overlay updates only overwrite the voxel values inside NiiVue.
 *
 * Header fields set: sizeof_hdr 348, dim, datatype 16 (float32), bitpix 32, pixdim (voxel
 * sizes from the affine's columns), vox_offset 352, scl_slope 1, xyzt_units mm+s,
 * sform_code 2 (aligned) with srow = the affine, qform_code 0, magic "n+1".
 */

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI1_VOX_OFFSET = 352;

export function niftiFloat32(dims: readonly [number, number, number], affine: number[][], data: Float32Array, description = 'syncact'): ArrayBuffer {
  const [nx, ny, nz] = dims;
  if (data.length !== nx * ny * nz) throw new Error(`nifti: ${data.length} values for a ${nx}×${ny}×${nz} grid`);
  const buf = new ArrayBuffer(NIFTI1_VOX_OFFSET + data.byteLength);
  const v = new DataView(buf);
  const le = true;
  v.setInt32(0, NIFTI1_HEADER_BYTES, le);
  v.setUint8(39, 0); // dim_info
  const dim = [3, nx, ny, nz, 1, 1, 1, 1];
  dim.forEach((d, i) => v.setInt16(40 + 2 * i, d, le));
  v.setInt16(70, 16, le); // datatype float32
  v.setInt16(72, 32, le); // bitpix
  const voxel = [0, 1, 2].map((c) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]));
  const pixdim = [1, voxel[0], voxel[1], voxel[2], 1, 1, 1, 1];
  pixdim.forEach((p, i) => v.setFloat32(76 + 4 * i, p, le));
  v.setFloat32(108, NIFTI1_VOX_OFFSET, le);
  v.setFloat32(112, 1, le); // scl_slope
  v.setFloat32(116, 0, le); // scl_inter
  v.setUint8(123, 2 | 8); // xyzt_units: mm, s
  const text = new TextEncoder().encode(description.slice(0, 79));
  new Uint8Array(buf, 148, text.length).set(text);
  v.setInt16(252, 0, le); // qform_code
  v.setInt16(254, 2, le); // sform_code: aligned to another file / template
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) v.setFloat32(280 + 16 * r + 4 * c, affine[r][c], le);
  new Uint8Array(buf, 344, 4).set([0x6e, 0x2b, 0x31, 0x00]); // "n+1\0"
  new Float32Array(buf, NIFTI1_VOX_OFFSET, data.length).set(data);
  return buf;
}
