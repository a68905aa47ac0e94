/**
 * Writes sample images with the NIfTI writer, for test/reference/check_written.py to open
 * with nibabel: rigid affines in every quaternion branch (identity, MNI LAS, oblique,
 * flipped oblique, 180° turns), 3D and 4D, .nii and .nii.gz.
 *
 *   npx tsx test/reference/write_samples.ts OUT_DIR && /usr/bin/python3 test/reference/check_written.py OUT_DIR
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNifti } from '../../server/io/nifti/write.ts';
import type { Affine } from '../../server/io/nifti/types.ts';

type M3 = number[][];
const rot = (axis: 0 | 1 | 2, deg: number): M3 => {
  const t = (deg * Math.PI) / 180;
  const [c, s] = [Math.cos(t), Math.sin(t)];
  if (axis === 0) return [[1, 0, 0], [0, c, -s], [0, s, c]];
  if (axis === 1) return [[c, 0, s], [0, 1, 0], [-s, 0, c]];
  return [[c, -s, 0], [s, c, 0], [0, 0, 1]];
};
const mul = (a: M3, b: M3): M3 => a.map((r) => [0, 1, 2].map((j) => r[0] * b[0][j] + r[1] * b[1][j] + r[2] * b[2][j]));
const flipX: M3 = [[-1, 0, 0], [0, 1, 0], [0, 0, 1]];
const affine = (r: M3, zooms: number[], t: number[]): Affine => [
  ...r.map((row, i) => [row[0] * zooms[0], row[1] * zooms[1], row[2] * zooms[2], t[i]]),
  [0, 0, 0, 1],
];

const samples: [string, Affine][] = [
  ['identity', affine(rot(0, 0), [1, 1, 1], [0, 0, 0])],
  ['mni_las_1p6', affine(flipX, [1.6, 1.6, 1.6], [90, -126, -72])],
  ['oblique', affine(mul(rot(2, 25), rot(0, -12)), [2, 2.5, 3], [10, -20, 30])],
  ['oblique_flipped', affine(mul(mul(rot(1, 40), rot(2, -70)), [[1, 0, 0], [0, -1, 0], [0, 0, 1]]), [1, 2, 3], [-5, 7, 11])],
  ['turn_x', affine(rot(0, 180), [2, 2, 2], [1, 2, 3])],
  ['turn_y', affine(rot(1, 180), [2, 2, 2], [1, 2, 3])],
  ['turn_z_flipped', affine(mul(rot(2, 180), flipX), [3, 3, 3], [1, 2, 3])],
  ['near_turn', affine(mul(rot(1, 179), rot(0, 3)), [1, 1, 1], [0, 0, 0])],
];

/** check_written.py recognises samples by this description and checks value i = float32(sin(i)·100), x fastest. */
const SAMPLE_DESCRIPTION = 'syncact sample: sin(i)*100';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: write_samples.ts OUT_DIR\n');
  process.exit(2);
}
await mkdir(out, { recursive: true });
for (const [i, [name, a]] of samples.entries()) {
  const dims = i % 2 === 0 ? [4, 5, 6] : [4, 5, 6, 3];
  const n = dims.reduce((x, y) => x * y, 1);
  const data = Float32Array.from({ length: n }, (_, v) => Math.sin(v) * 100);
  await writeNifti(join(out, `${name}${i % 3 === 0 ? '.nii' : '.nii.gz'}`), data, { dims, affine: a, tr: 0.8, description: SAMPLE_DESCRIPTION });
}
process.stdout.write(`wrote ${samples.length} samples to ${out}\n`);
