/**
 * Seeded fuzzing of the NIfTI reader: valid fixtures are damaged thousands of times
 * (random or boundary values written into the header and extensions, truncation, gzip
 * corruption) and read. Every outcome must be a successful read or a SyncactError — never
 * another exception, an unhandled stream error, a hang, or a giant allocation (damaged
 * dims must be refused before memory is reserved).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { openNifti } from '../../server/io/nifti/read.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng, type Rng } from '../../server/engine/random.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const dir = mkdtempSync(join(tmpdir(), 'syncact-nifti-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ITERATIONS = 3000;
/** Per-case guard: a hang shows up as a failure naming the case, not a test timeout. */
const CASE_TIMEOUT_MS = 5000;

interface Base {
  name: string;
  gz: boolean;
  /** Uncompressed bytes. */
  raw: Uint8Array;
  headerBytes: number;
  littleEndian: boolean;
  /** The .img of a pair, copied beside the mutated .hdr. */
  img?: string;
}

function base(name: string, img?: string): Base {
  const file = new Uint8Array(readFileSync(join(fixtures, name)));
  const gz = name.endsWith('.gz');
  const raw = gz ? new Uint8Array(gunzipSync(file)) : file;
  const view = new DataView(raw.buffer, raw.byteOffset);
  const le = view.getInt32(0, true) === 348 || view.getInt32(0, true) === 540;
  const headerBytes = view.getInt32(0, le);
  return { name, gz, raw, headerBytes, littleEndian: le, img };
}

const bases: Base[] = [
  base('dt_int16.nii'),
  base('be_float64.nii'),
  base('nifti2_int16_be_scaled.nii'),
  base('scaled_int16.nii.gz'),
  base('nifti2_qform.nii.gz'),
  base('ext_two.nii'),
  base('dims_5d.nii'),
  base('pair_int16.hdr', 'pair_int16.img'),
];

/** Offsets of the fields whose damage matters most: sizeof_hdr, dims, datatype, vox_offset, scaling, xforms, magic. */
const NIFTI1_FIELDS: [number, 'i16' | 'i32' | 'f32'][] = [
  [0, 'i32'], [40, 'i16'], [42, 'i16'], [44, 'i16'], [46, 'i16'], [48, 'i16'], [50, 'i16'], [70, 'i16'], [72, 'i16'],
  [76, 'f32'], [80, 'f32'], [92, 'f32'], [108, 'f32'], [112, 'f32'], [116, 'f32'], [123, 'i16'], [252, 'i16'], [254, 'i16'],
  [256, 'f32'], [260, 'f32'], [280, 'f32'], [344, 'i32'], [348, 'i32'],
];
const NIFTI2_FIELDS: [number, 'i16' | 'i32' | 'i64' | 'f64'][] = [
  [0, 'i32'], [4, 'i32'], [8, 'i32'], [12, 'i16'], [16, 'i64'], [24, 'i64'], [32, 'i64'], [40, 'i64'], [48, 'i64'],
  [104, 'f64'], [136, 'f64'], [168, 'i64'], [176, 'f64'], [184, 'f64'], [344, 'i32'], [348, 'i32'], [352, 'f64'], [500, 'i32'],
];
const BOUNDARY = [0, 1, -1, 2, 3, 7, 8, 16, 348, 352, 540, 544, 0x7fff, -0x8000, 0xffff, 0x7fffffff, -0x80000000, 1e30, -1e30, NaN, Infinity, 0.5];

function writeField(view: DataView, at: number, type: string, v: number, le: boolean) {
  if (at + 8 > view.byteLength) return;
  const int = Number.isFinite(v) ? Math.trunc(v) : 0;
  if (type === 'i16') view.setInt16(at, int, le);
  else if (type === 'i32') view.setInt32(at, int, le);
  else if (type === 'i64') view.setBigInt64(at, BigInt(int) * (Math.abs(int) < 1e4 ? 1n : 1n << 16n), le);
  else if (type === 'f32') view.setFloat32(at, v, le);
  else view.setFloat64(at, v, le);
}

type Mutation = 'header-bytes' | 'header-field' | 'extension-bytes' | 'truncate' | 'gzip-flip' | 'gzip-truncate';

function mutate(b: Base, rng: Rng): { bytes: Uint8Array; kind: Mutation } {
  const choices: Mutation[] = ['header-bytes', 'header-field', 'header-field', 'extension-bytes', 'truncate'];
  if (b.gz) choices.push('gzip-flip', 'gzip-truncate');
  const kind = choices[rng.int(choices.length)];
  const raw = b.raw.slice();
  const view = new DataView(raw.buffer);
  switch (kind) {
    case 'header-bytes': {
      const n = 1 + rng.int(6);
      for (let i = 0; i < n; i++) raw[rng.int(b.headerBytes)] = rng.int(256);
      break;
    }
    case 'header-field': {
      const fields = b.headerBytes === 348 ? NIFTI1_FIELDS : NIFTI2_FIELDS;
      const n = 1 + rng.int(3);
      for (let i = 0; i < n; i++) {
        const [at, type] = fields[rng.int(fields.length)];
        const v = rng.uniform() < 0.7 ? BOUNDARY[rng.int(BOUNDARY.length)] : (rng.uniform() - 0.5) * 2 ** (rng.int(40));
        writeField(view, at, type, v, rng.uniform() < 0.9 ? b.littleEndian : !b.littleEndian);
      }
      break;
    }
    case 'extension-bytes': {
      const end = Math.min(raw.length, b.headerBytes + 96);
      for (let i = 0; i < 8; i++) raw[b.headerBytes + rng.int(end - b.headerBytes)] = rng.int(256);
      break;
    }
    case 'truncate':
      return { bytes: b.gz ? gzipSync(raw.subarray(0, rng.int(raw.length))) : raw.subarray(0, rng.int(raw.length)), kind };
    case 'gzip-flip': {
      const gz = new Uint8Array(gzipSync(raw));
      const n = 1 + rng.int(4);
      for (let i = 0; i < n; i++) gz[rng.int(gz.length)] ^= 1 + rng.int(255);
      return { bytes: gz, kind };
    }
    case 'gzip-truncate': {
      const gz = gzipSync(raw);
      return { bytes: gz.subarray(0, rng.int(gz.length)), kind };
    }
  }
  return { bytes: b.gz ? gzipSync(raw) : raw, kind };
}

/** Opens and reads what a user of the reader would: header, a few volumes, the last one. */
async function exercise(path: string): Promise<void> {
  const img = await openNifti(path);
  try {
    expect(img.header.affine).toHaveLength(4);
    const n = img.volumeCount;
    for (const k of new Set([0, Math.min(1, n - 1), n - 1])) {
      const v = await img.readVolume(k, k % 2 ? 'float64' : 'float32');
      expect(v.length).toBe(img.voxelsPerVolume);
    }
    for await (const { data } of img.volumes({ end: Math.min(n, 3) })) expect(data.length).toBe(img.voxelsPerVolume);
  } finally {
    await img.close();
  }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} took over ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

describe('NIfTI reader fuzz', () => {
  it(`${ITERATIONS} damaged files: each is read or refused with a SyncactError`, async () => {
    const rng = createRng(0x5eed_d1);
    const outcomes = new Map<string, number>();
    const kinds = new Map<Mutation, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const b = bases[rng.int(bases.length)];
      const { bytes, kind } = mutate(b, rng);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const name = b.img ? `fuzz${i}.hdr` : `fuzz${i}${b.gz ? '.nii.gz' : '.nii'}`;
      const path = join(dir, name);
      writeFileSync(path, bytes);
      if (b.img) copyFileSync(join(fixtures, b.img), join(dir, `fuzz${i}.img`));
      const what = `case ${i} (${kind} of ${b.name})`;
      try {
        await withTimeout(exercise(path), what);
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        if (!(e instanceof SyncactError)) {
          throw new Error(`${what}: expected a SyncactError, got ${(e as Error)?.stack ?? String(e)}`);
        }
        expect(e.message, what).toContain(dir);
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
      }
      rmSync(path);
      if (b.img) rmSync(join(dir, `fuzz${i}.img`));
    }
    if (process.env.SYNCACT_FUZZ_REPORT) console.log(JSON.stringify({ outcomes: [...outcomes], kinds: [...kinds] }));
    // The mix must exercise both paths and the main failure modes, or the fuzz proves little.
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(ITERATIONS / 10);
    for (const code of ['NIFTI_NOT_NIFTI', 'NIFTI_TRUNCATED_DATA', 'NIFTI_BAD_DIMS', 'NIFTI_GZIP_CORRUPT', 'NIFTI_TRUNCATED_HEADER']) {
      expect(outcomes.get(code) ?? 0, `${code} in ${JSON.stringify([...outcomes])}`).toBeGreaterThan(0);
    }
    expect(kinds.size).toBe(6);
  });
});
