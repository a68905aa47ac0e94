/**
 * NIfTI read throughput on a multi-GB 4D run (HCP 7T grid 113×136×113, float32).
 *
 * - `io.niigz_read_mb_per_s`: `openNifti(...).volumes()` over a .nii.gz, in a child process.
 * - `gzip.read_mb_per_s`: the reference, `gzip -dc FILE > /dev/null` on the same file.
 * - `io.niigz_peak_rss_mb`: peak resident memory of that child (process.resourceUsage().maxRSS),
 *   whole process included; bounded streaming keeps it far below the file size.
 * - `io.nii_read_mb_per_s`: the same read over the uncompressed .nii (from the page cache,
 *   since it was just written: this measures the reader, not the disk).
 * MB/s = uncompressed voxel bytes (1e6 per MB) / seconds.
 *
 * The files are written streaming (one volume in memory) with gzip level 1 from
 * low-entropy data (integer-valued floats, ~4:1), so writing is quick; inflating such data
 * is faster than inflating real BOLD, which is why gzip itself is measured on the same file.
 * SYNCACT_BENCH_NIFTI_MB sets the uncompressed size (default 2500) for quick checks.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, openSync, closeSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import type { BenchSuite } from './bench.ts';
import { buildNiftiHeader } from '../server/io/nifti/write.ts';

const GRID = [113, 136, 113] as const;
const VOXELS = GRID[0] * GRID[1] * GRID[2];
const CHILD_FLAG = '--syncact-nifti-read-child';
const here = dirname(fileURLToPath(import.meta.url));

/**
 * Noise for the volumes: small integers (−3..3) from a fixed table, read at a shifted
 * position per volume. Integer-valued floats near 1000 leave most mantissa bits zero, so
 * the data compress about 4:1 — between a mask (trivial) and real BOLD (~1.5:1).
 */
const NOISE = (() => {
  const table = new Float32Array(1 << 20);
  let a = 12345;
  for (let i = 0; i < table.length; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    table[i] = ((a >>> 16) % 7) - 3;
  }
  return table;
})();

/** One volume: a smooth quantised pattern plus table noise; volume k shifts both. */
function fillVolume(out: Float32Array, k: number): void {
  const [nx, ny] = GRID;
  const mask = NOISE.length - 1;
  let i = 0;
  let n = (k * 7919) & mask;
  for (let z = 0; z < GRID[2]; z++) {
    for (let y = 0; y < ny; y++) {
      const base = 1000 + ((((y >> 3) * 7 + (z >> 3) * 13 + ((z + k) % 5)) % 97) << 3);
      for (let x = 0; x < nx; x++) {
        out[i++] = base + (x >> 4) + NOISE[n];
        n = (n + 1) & mask;
      }
    }
  }
}

async function write(stream: Writable, chunk: Uint8Array): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}

async function finish(stream: Writable): Promise<void> {
  stream.end();
  await once(stream, 'close');
}

/** Writes the same run as .nii and .nii.gz in one streaming pass. */
async function writeRun(niiPath: string, gzPath: string, volumes: number): Promise<void> {
  const header = buildNiftiHeader(niiPath, { dims: [...GRID, volumes], affine: [[-1.6, 0, 0, 90], [0, 1.6, 0, -126], [0, 0, 1.6, -72], [0, 0, 0, 1]], tr: 1 });
  const plain = createWriteStream(niiPath);
  const gzFile = createWriteStream(gzPath);
  const gzip = createGzip({ level: 1 });
  gzip.pipe(gzFile);
  await write(plain, header);
  await write(gzip, header);
  const volume = new Float32Array(VOXELS);
  for (let k = 0; k < volumes; k++) {
    fillVolume(volume, k);
    // Copies: the streams may still hold a chunk when the array is refilled.
    const bytes = new Uint8Array(volume.buffer.slice(0));
    await Promise.all([write(plain, bytes), write(gzip, bytes)]);
  }
  gzip.end();
  await Promise.all([finish(plain), once(gzFile, 'close')]);
}

interface ChildReport {
  seconds: number;
  volumes: number;
  maxRssMb: number;
  checksum: number;
}

/** Reads every volume through the public API in a fresh process and reports time and peak RSS. */
async function readInChild(path: string): Promise<ChildReport> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(here, '../bin/run-ts.js'), join(here, 'nifti.bench.ts'), CHILD_FLAG, path], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as ChildReport;
}

async function timeGzip(path: string): Promise<number> {
  const devNull = openSync('/dev/null', 'w');
  try {
    const t0 = performance.now();
    const child = spawn('gzip', ['-dc', path], { stdio: ['ignore', devNull, 'ignore'] });
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) return NaN;
    return (performance.now() - t0) / 1000;
  } catch {
    return NaN;
  } finally {
    closeSync(devNull);
  }
}

const suite: BenchSuite = {
  title: 'NIfTI read: multi-GB 4D .nii.gz and .nii through volumes()',
  figures: ['io.niigz_read_mb_per_s', 'gzip.read_mb_per_s', 'io.niigz_peak_rss_mb', 'io.nii_read_mb_per_s'],
  async run(ctx) {
    const targetMb = Number(process.env.SYNCACT_BENCH_NIFTI_MB ?? 2500);
    const volumes = Math.max(2, Math.round((targetMb * 1e6) / (VOXELS * 4)));
    const dataMb = (volumes * VOXELS * 4) / 1e6;
    const nii = join(ctx.tmpDir, 'run.nii');
    const gz = join(ctx.tmpDir, 'run.nii.gz');
    ctx.log(`writing ${volumes} volumes of ${GRID.join('×')} float32 (${dataMb.toFixed(0)} MB) as .nii and .nii.gz`);
    const tw = performance.now();
    await writeRun(nii, gz, volumes);
    ctx.log(`written in ${((performance.now() - tw) / 1000).toFixed(1)} s; gzip ratio ${((volumes * VOXELS * 4) / statSync(gz).size).toFixed(1)}:1`);

    const out: Record<string, number> = {};
    if (ctx.wants('io.niigz_read_mb_per_s') || ctx.wants('io.niigz_peak_rss_mb')) {
      const r = await readInChild(gz);
      if (r.volumes !== volumes) throw new Error(`child read ${r.volumes} of ${volumes} volumes`);
      out['io.niigz_read_mb_per_s'] = dataMb / r.seconds;
      out['io.niigz_peak_rss_mb'] = r.maxRssMb;
      ctx.log(`.nii.gz: ${r.seconds.toFixed(2)} s, peak RSS ${r.maxRssMb.toFixed(0)} MB`);
    }
    if (ctx.wants('gzip.read_mb_per_s')) {
      const s = await timeGzip(gz);
      out['gzip.read_mb_per_s'] = dataMb / s;
      ctx.log(`gzip -dc: ${s.toFixed(2)} s`);
    }
    if (ctx.wants('io.nii_read_mb_per_s')) {
      const r = await readInChild(nii);
      out['io.nii_read_mb_per_s'] = dataMb / r.seconds;
      ctx.log(`.nii: ${r.seconds.toFixed(2)} s, peak RSS ${r.maxRssMb.toFixed(0)} MB`);
    }
    return out;
  },
};

export default suite;

// Child mode (see readInChild): stream every volume, touch the data, report.
const childAt = process.argv.indexOf(CHILD_FLAG);
if (childAt >= 0) {
  const { openNifti } = await import('../server/io/nifti/read.ts');
  const t0 = performance.now();
  const img = await openNifti(process.argv[childAt + 1]);
  let count = 0;
  let checksum = 0;
  for await (const { data } of img.volumes()) {
    checksum += data[0] + data[data.length >> 1];
    count++;
  }
  await img.close();
  const seconds = (performance.now() - t0) / 1000;
  const report: ChildReport = { seconds, volumes: count, maxRssMb: process.resourceUsage().maxRSS / 1024, checksum };
  process.stdout.write(JSON.stringify(report) + '\n');
}
