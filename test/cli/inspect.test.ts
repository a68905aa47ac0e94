/**
 * `syncact inspect`: the --json object against nibabel's answers for the reader fixtures,
 * the readable output, and the CLI contract (one typed error line on stderr, non-zero exit).
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { inspect } from '../../server/commands/inspect.ts';
import { commands } from '../../server/commands/index.ts';
import { SyncactError } from '../../server/errors.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = join(root, 'test/io/fixtures');
const reference = JSON.parse(readFileSync(join(fixtures, 'nifti_reference.json'), 'utf8')) as {
  images: { file: string; format: string; dims: number[]; pixdim: number[]; datatype: string; affine: number[][]; tr: number | null; sclSlope: number; sclInter: number; volumes: Record<string, number | string | null>[] }[];
};
const num = (v: number | string | null) => (v === null ? null : typeof v === 'number' ? v : Number(v));

/** Runs the command in-process and returns what it printed. */
async function run(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    return { code: await inspect.run(argv), out };
  } finally {
    spy.mockRestore();
  }
}

describe('syncact inspect', () => {
  it('is registered', () => {
    expect(commands).toContain(inspect);
  });

  for (const ref of reference.images.filter((r) => ['dt_uint8.nii', 'nifti2_int16_be_scaled.nii', 'pair_float32_be.hdr.gz', 'nonfinite_float32.nii.gz', 'dims_3d.nii', 'tr_msec.nii'].includes(r.file))) {
    it(`--json ${ref.file}: one object matching nibabel`, async () => {
      const { code, out } = await run([join(fixtures, ref.file), '--json']);
      expect(code).toBe(0);
      expect(out.trim().split('\n')).toHaveLength(1);
      const j = JSON.parse(out);
      expect(j.format).toBe(ref.format);
      expect(j.dims).toEqual(ref.dims);
      expect(j.pixdim).toHaveLength(ref.dims.length);
      j.pixdim.forEach((p: number, i: number) => expect(p).toBeCloseTo(ref.pixdim[i], 6));
      expect(j.datatype).toBe(ref.datatype);
      expect(j.tr).toEqual(ref.tr);
      expect(j.scl_slope).toBe(ref.sclSlope);
      expect(j.scl_inter).toBe(ref.sclInter);
      expect(j.affine).toHaveLength(4);
      j.affine.forEach((row: number[], r: number) => row.forEach((v, c) => expect(Math.abs(v - ref.affine[r][c])).toBeLessThan(1e-4)));
      expect(j.volumes).toHaveLength(ref.volumes.length);
      j.volumes.forEach((v: Record<string, number | null>, k: number) => {
        expect(v.index).toBe(k);
        expect(v.nan).toBe(ref.volumes[k].nan);
        for (const key of ['min', 'max', 'mean', 'sum']) {
          const want = num(ref.volumes[k][key]);
          if (want === null || !Number.isFinite(want)) expect(v[key]).toBeNull();
          else expect(Math.abs((v[key] as number) - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want));
        }
      });
    });
  }

  it('prints a header block and one stats row per volume without --json', async () => {
    const { code, out } = await run([join(fixtures, 'dims_5d.nii')]);
    expect(code).toBe(0);
    expect(out).toMatch(/format\s+nifti1, little-endian/);
    expect(out).toMatch(/dims\s+3 × 2 × 2 × 2 × 3/);
    expect(out).toMatch(/volumes\s+6 of 12 voxels/);
    const lines = out.split('\n');
    const table = lines.findIndex((l) => /^\s*volume\s+min\s+max\s+mean\s+sum\s+nonfinite$/.test(l));
    expect(table).toBeGreaterThan(0);
    const rows = lines.slice(table + 1).filter((l) => l.trim() !== '');
    expect(rows.map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('usage errors are CLI_USAGE', async () => {
    await expect(inspect.run([])).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(inspect.run(['a.nii', 'b.nii'])).rejects.toBeInstanceOf(SyncactError);
    await expect(inspect.run(['a.nii', '--bogus'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
  });

  it('through bin/syncact.js: a reader that closes the pipe early (| head) ends it quietly with exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncact-inspect-pipe-'));
    try {
      const file = join(dir, 'long.nii.gz');
      await writeNifti(file, new Float32Array(8 * 3000), { dims: [2, 2, 2, 3000], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] });
      const child = spawn(process.execPath, [join(root, 'bin/syncact.js'), 'inspect', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      await once(child.stdout, 'data');
      child.stdout.destroy();
      const [code] = await once(child, 'close');
      expect(stderr).toBe('');
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('through bin/syncact.js: a bad file gives one typed line on stderr and exit 1', async () => {
    const exec = promisify(execFile);
    const bad = join(fixtures, 'unsupported_rgb24.nii');
    const err = await exec(process.execPath, [join(root, 'bin/syncact.js'), 'inspect', bad, '--json']).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stdout).toBe('');
    const lines = String(err.stderr).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^NIFTI_UNSUPPORTED_DATATYPE: .*unsupported_rgb24\.nii: datatype 128 \(RGB24\) is not supported/);
  }, 30_000);
});
