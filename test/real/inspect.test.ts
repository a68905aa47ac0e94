/**
 * `syncact inspect --json` on every NIfTI file in ../shared/data (public real files, see
 * its README), compared with nibabel: header fields, best affine (1e-4), TR, and float64
 * per-volume statistics. Skipped where that folder is absent. References:
 * test/real/reference/*.json, made by test/real/reference/make_reference.py.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(repoRoot, '../shared/data');
const referenceDir = path.join(repoRoot, 'test/real/reference');
const exec = promisify(execFile);

function niftiFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return niftiFiles(full);
      return /\.nii(\.gz)?$/.test(name) ? [full] : [];
    });
}

interface Reference {
  file: string;
  format: string;
  dims: number[];
  pixdim: number[];
  datatype: string;
  affine: number[][];
  tr: number | null;
  scl_slope: number | null;
  scl_inter: number | null;
  volumes: { min: number | null; max: number | null; mean: number | null; sum: number; nan: number }[];
}

/** Relative 1e-9 (float64 statistics; sums differ from numpy's only by summation order). */
function expectStat(actual: number | null, expected: number | null, what: string) {
  if (expected === null) return expect(actual, what).toBeNull();
  expect(actual, what).not.toBeNull();
  expect(Math.abs((actual as number) - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
}

const files = niftiFiles(shared);

describe.skipIf(!existsSync(shared))('syncact inspect --json on ../shared/data', () => {
  it('finds the shared files and has a nibabel reference for each', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const ref = path.join(referenceDir, path.relative(shared, file).split(path.sep).join('__') + '.json');
      expect(existsSync(ref), `${ref} missing: run /usr/bin/python3 test/real/reference/make_reference.py`).toBe(true);
    }
  });

  for (const file of files) {
    const rel = path.relative(shared, file);
    it(rel, async () => {
      const ref = JSON.parse(readFileSync(path.join(referenceDir, rel.split(path.sep).join('__') + '.json'), 'utf8')) as Reference;
      const { stdout } = await exec(process.execPath, [path.join(repoRoot, 'bin/syncact.js'), 'inspect', file, '--json'], {
        maxBuffer: 64 << 20,
      });
      expect(stdout.trim().split('\n')).toHaveLength(1);
      const j = JSON.parse(stdout);
      expect(j.format).toBe(ref.format);
      expect(j.dims).toEqual(ref.dims);
      expect(j.datatype).toBe(ref.datatype);
      j.pixdim.forEach((p: number, i: number) => expect(p).toBeCloseTo(ref.pixdim[i], 6));
      expect(j.pixdim).toHaveLength(ref.pixdim.length);
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) expect(Math.abs(j.affine[r][c] - ref.affine[r][c]), `affine[${r}][${c}]`).toBeLessThan(1e-4);
      }
      if (ref.tr === null) expect(j.tr).toBeNull();
      else expect(j.tr).toBeCloseTo(ref.tr, 9);
      expect(j.scl_slope).toBe(ref.scl_slope);
      expect(j.scl_inter).toBe(ref.scl_inter);
      expect(j.volumes).toHaveLength(ref.volumes.length);
      ref.volumes.forEach((e, k) => {
        const v = j.volumes[k];
        expect(v.index).toBe(k);
        expect(v.nan, `volume ${k} nan`).toBe(e.nan);
        for (const key of ['min', 'max', 'mean', 'sum'] as const) expectStat(v[key], e[key], `volume ${k} ${key}`);
      });
    }, 120_000);
  }
});
