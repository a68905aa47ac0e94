/**
 * `syncact inspect FILE [--json]`: the header of a NIfTI image and per-volume statistics,
 * computed while streaming (one volume in memory at a time, so a multi-GB run is fine).
 */
import { parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';
import { SyncactError } from '../errors.ts';
import { openNifti, type NiftiImage } from '../io/nifti/read.ts';
import { volumeStats, type VolumeStats } from '../io/nifti/stats.ts';

const usage = `usage: syncact inspect FILE [--json]

Prints the header of a NIfTI-1/NIfTI-2 image (.nii, .nii.gz, .hdr/.img) and, for every
volume, the min, max, mean and sum of its finite scaled values and the count of
non-finite values (float64 statistics, volumes numbered from 0).

options:
  --json   print exactly one JSON object: format, dims, pixdim, datatype, affine (4 rows),
           tr (seconds or null), scl_slope, scl_inter, volumes [{index, min, max, mean,
           sum, nan}], plus file, byte_order, vox_offset, qform_code, sform_code,
           xyzt_units, description and extensions [{code, bytes}]
  -h, --help
`;

/** JSON has no NaN or Infinity: non-finite header values are written as null. */
const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

function headerJson(img: NiftiImage) {
  const h = img.header;
  return {
    file: img.path,
    format: h.format,
    byte_order: h.littleEndian ? 'little' : 'big',
    dims: h.dims,
    pixdim: h.pixdim.map(finiteOrNull),
    datatype: h.datatype,
    affine: h.affine.map((row) => row.map(finiteOrNull)),
    tr: h.tr,
    scl_slope: finiteOrNull(h.sclSlope),
    scl_inter: finiteOrNull(h.sclInter),
    vox_offset: h.voxOffset,
    qform_code: h.qformCode,
    sform_code: h.sformCode,
    xyzt_units: h.xyztUnits,
    description: h.description,
    extensions: h.extensions.map((e) => ({ code: e.code, bytes: e.data.length })),
  };
}

const fmt = (v: number | null): string => {
  if (v === null) return '-';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e6 || a < 1e-3 ? v.toExponential(4) : Number(v.toPrecision(7)).toString();
};

function headerText(img: NiftiImage): string {
  const h = img.header;
  const rows: [string, string][] = [
    ['file', img.path],
    ['format', `${h.format}, ${h.littleEndian ? 'little' : 'big'}-endian`],
    ['dims', h.dims.join(' × ')],
    ['pixdim', h.pixdim.map((p) => fmt(p)).join(' × ')],
    ['datatype', `${h.datatype} (code ${h.datatypeCode}, ${h.bitpix} bits)`],
    ['volumes', `${img.volumeCount} of ${img.voxelsPerVolume} voxels`],
    ['tr', h.tr === null ? 'none' : `${fmt(h.tr)} s`],
    ['scaling', `scl_slope ${h.sclSlope}, scl_inter ${h.sclInter}`],
    ['vox_offset', String(h.voxOffset)],
    ['xforms', `qform_code ${h.qformCode}, sform_code ${h.sformCode} (affine from ${h.sformCode > 0 ? 'sform' : h.qformCode > 0 ? 'qform' : 'pixdim'})`],
    ['affine', h.affine.map((r) => r.map((v) => fmt(v).padStart(11)).join(' ')).join('\n' + ' '.repeat(13))],
  ];
  if (h.description) rows.push(['description', h.description]);
  if (h.extensions.length) rows.push(['extensions', h.extensions.map((e) => `code ${e.code} (${e.data.length} bytes)`).join(', ')]);
  return rows.map(([k, v]) => `${k.padEnd(11)}  ${v}`).join('\n');
}

/**
 * `syncact inspect run.nii.gz | head` closes stdout early: the write error (EPIPE) arrives
 * asynchronously, possibly after the command returned, so the handler stays installed
 * (once per process) and streaming stops at the next volume.
 */
let stdoutClosed = false;
let guarded = false;
function guardStdout(): void {
  if (guarded) return;
  guarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    stdoutClosed = true;
  });
}

const COLUMNS = ['volume', 'min', 'max', 'mean', 'sum', 'nonfinite'];
const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padStart(6) : c.padStart(13))).join(' ');

export const inspect: Command = {
  name: 'inspect',
  summary: 'print a NIfTI header and per-volume statistics',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs('inspect', argv, { json: { type: 'boolean', default: false } });
    if (positionals.length !== 1) {
      throw new SyncactError('CLI_USAGE', `inspect: expected one FILE, got ${positionals.length} (see \`syncact inspect --help\`)`);
    }
    const img = await openNifti(positionals[0]);
    guardStdout();
    try {
      if (values.json) {
        const volumes: (VolumeStats & { index: number })[] = [];
        for await (const { index, data } of img.volumes({ as: 'float64' })) volumes.push({ index, ...volumeStats(data) });
        process.stdout.write(JSON.stringify({ ...headerJson(img), volumes }) + '\n');
      } else {
        process.stdout.write(headerText(img) + '\n\n' + row(COLUMNS) + '\n');
        // Rows are printed as volumes arrive, so a long run shows progress.
        for await (const { index, data } of img.volumes({ as: 'float64' })) {
          if (stdoutClosed) break;
          const s = volumeStats(data);
          process.stdout.write(row([String(index), fmt(s.min), fmt(s.max), fmt(s.mean), fmt(s.sum), String(s.nan)]) + '\n');
        }
      }
    } finally {
      await img.close();
    }
    return 0;
  },
};
