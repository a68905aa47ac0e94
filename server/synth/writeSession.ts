/**
 * Writes a synthetic session to a folder, in the layout `syncact replay` and `analyze` read:
 *
 *   bold.nii.gz        the 4D BOLD run (float32), streamed volume by volume
 *   mask.nii.gz        the brain ellipsoid (float32 0/1)
 *   movie.mp4          the procedural movie (H.264, reproducible bytes)
 *   truth.json         networks, drivers, signs, SNR, AR, feature courses per frame and per TR, drives
 *   truth_maps.nii.gz  the planted maps, one volume per network in truth.json's order
 *   atlas.nii.gz       label atlas of the planted networks (label = network index + 1)
 *   atlas.tsv          index<TAB>name, with a header row (BIDS dseg.tsv style)
 *   session.json       the files above, TR, onset, preset and seed (paths relative), and
 *                      the preset's smoothing_fwhm (SESSION_SMOOTHING_FWHM) when it has one
 *
 * Every file is written to NAME.partial and renamed when complete. An existing session.json
 * is removed first and the new one is written last, so a folder holds a session.json only
 * when every file it names is complete and belongs to it.
 */
import { access, constants, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import { encodeVideo } from '../io/videoEncode.ts';
import { createNiftiWriter, writeNifti } from '../io/nifti/write.ts';
import type { SessionFile } from '../config.ts';
import { SESSION_VERSION } from '../config.ts';
import { referenceBin } from './drives.ts';
import { MAP_CUTOFF } from './phantom.ts';
import type { SyntheticSession } from './session.ts';

/** A voxel gets a network's label when that network's map is the largest there and above this. */
export const ATLAS_THRESHOLD = 0.2;

/**
 * smoothing_fwhm (mm) written into each preset's session.json; null: none.
 * - demo: 8 mm at its 4 mm voxels, the smoothing a user would pick (two voxels; SPM's
 *   default FWHM). Without it the GLM maps of the demo's SNR 1 correlate 0.50–0.79 with the
 *   planted maps, with it 0.93–0.985 (6 mm: 0.87–0.97), while detections and annotations
 *   are unchanged (measured in test/engine/groundTruth.test.ts).
 * - tiny: none; it is the unit tests' fixture, and their expectations are its raw volumes.
 * - hcp7t: none, like HCP's volume data (its 2 mm smoothing is on the surface); the
 *   benchmarks stream it without writing it.
 */
export const SESSION_SMOOTHING_FWHM: Readonly<Record<SyntheticSession['preset'], number | null>> = Object.freeze({ tiny: null, demo: 8, hcp7t: null });

export const SESSION_FILES = {
  bold: 'bold.nii.gz',
  mask: 'mask.nii.gz',
  movie: 'movie.mp4',
  truth: 'truth.json',
  truthMaps: 'truth_maps.nii.gz',
  atlas: 'atlas.nii.gz',
  atlasLabels: 'atlas.tsv',
  session: 'session.json',
} as const;

export interface WriteSessionOptions {
  /** ffmpeg executable; default: located (FFMPEG_PATH, installer package, PATH). */
  ffmpegPath?: string;
  /** Called after each file is in place, e.g. to print progress. */
  onFile?: (file: WrittenFile) => void;
  /** Called after each BOLD volume (k from 0), for progress on large presets. */
  onVolume?: (k: number, total: number) => void;
}

export interface WrittenFile {
  /** Name inside the folder. */
  name: string;
  path: string;
  bytes: number;
}

/** Writes every file of the session into `outDir` (created if needed); returns them in order. */
export async function writeSyntheticSession(
  session: SyntheticSession,
  outDir: string,
  options: WriteSessionOptions = {},
): Promise<WrittenFile[]> {
  const dir = resolve(outDir);
  await prepareFolder(dir);
  await rm(join(dir, SESSION_FILES.session), { force: true });
  const written: WrittenFile[] = [];
  const done = async (name: string): Promise<void> => {
    const path = join(dir, name);
    const file = { name, path, bytes: (await stat(path)).size };
    written.push(file);
    options.onFile?.(file);
  };
  const { grid, tr } = session;
  const spatial = { affine: grid.affine, tr };
  const gridSize = grid.dims[0] * grid.dims[1] * grid.dims[2];
  const description = `syncact synthetic ${session.preset} seed ${session.seed}`;
  // The anatomy does not depend on the seed, and neither do the files that hold it.
  const anatomy = `syncact synthetic ${session.preset}`;

  // The BOLD run, streamed: hcp7t-size runs are never held in memory.
  const boldPath = join(dir, SESSION_FILES.bold);
  const writer = await createNiftiWriter(boldPath, {
    ...spatial,
    dims: [...grid.dims, session.nVolumes],
    description,
    // Noisy float data barely compresses; level 1 gets most of the gain (the zeros outside
    // the brain) at a fraction of level 6's time.
    gzipLevel: 1,
  });
  try {
    for (let k = 0; k < session.nVolumes; k++) {
      await writer.writeVolume(session.volume(k));
      options.onVolume?.(k, session.nVolumes);
    }
    await writer.close();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await done(SESSION_FILES.bold);

  await writeNifti(join(dir, SESSION_FILES.mask), Float32Array.from(session.mask), {
    ...spatial,
    dims: [...grid.dims],
    description: `${anatomy} mask`,
  });
  await done(SESSION_FILES.mask);

  const networks = session.truth.networks;
  const maps = new Float32Array(gridSize * networks.length);
  networks.forEach((n, i) => maps.set(n.map, i * gridSize));
  await writeNifti(join(dir, SESSION_FILES.truthMaps), maps, {
    ...spatial,
    dims: [...grid.dims, networks.length],
    description: `${anatomy} planted maps`,
    intent: { code: 1001, name: 'planted maps' }, // NIFTI_INTENT_ESTIMATE
  });
  await done(SESSION_FILES.truthMaps);

  await writeNifti(join(dir, SESSION_FILES.atlas), plantedAtlas(session), {
    ...spatial,
    dims: [...grid.dims],
    description: `${anatomy} atlas`,
    intent: { code: 1002, name: 'planted networks' }, // NIFTI_INTENT_LABEL
  });
  await done(SESSION_FILES.atlas);

  await writeText(join(dir, SESSION_FILES.atlasLabels), atlasTable(session));
  await done(SESSION_FILES.atlasLabels);

  const { movie } = session;
  await encodeVideo(join(dir, SESSION_FILES.movie), {
    width: movie.width,
    height: movie.height,
    fps: movie.fps,
    frameCount: movie.frameCount,
    frame: (i) => movie.frame(i),
    ffmpegPath: options.ffmpegPath,
  });
  await done(SESSION_FILES.movie);

  await writeText(join(dir, SESSION_FILES.truth), JSON.stringify(truthJson(session), null, 1) + '\n');
  await done(SESSION_FILES.truth);

  await writeText(join(dir, SESSION_FILES.session), syntheticSessionJson(session));
  await done(SESSION_FILES.session);
  return written;
}

/**
 * The text of the session.json writeSyntheticSession writes for `session`: a folder whose
 * session.json differs was written by another version of the generator (ensureDemo
 * regenerates it).
 */
export function syntheticSessionJson(session: SyntheticSession): string {
  const file: SessionFile = {
    version: SESSION_VERSION,
    fmri: SESSION_FILES.bold,
    movie: SESSION_FILES.movie,
    mask: SESSION_FILES.mask,
    atlas: SESSION_FILES.atlas,
    atlas_labels: SESSION_FILES.atlasLabels,
    truth: SESSION_FILES.truth,
    truth_maps: SESSION_FILES.truthMaps,
    tr: session.tr,
    onset: session.onset,
    preset: session.preset,
    seed: session.seed,
    ...(SESSION_SMOOTHING_FWHM[session.preset] === null ? {} : { smoothing_fwhm: SESSION_SMOOTHING_FWHM[session.preset] }),
  };
  return JSON.stringify(file, null, 2) + '\n';
}

async function prepareFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    if (!(await stat(dir)).isDirectory()) throw new Error('not a folder');
    await access(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST' || code === 'ENOTDIR' || !code
        ? 'it, or a folder above it, exists and is not a folder'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? `permission denied (${code})`
          : code;
    throw new SyncactError('OUTPUT_NOT_WRITABLE', `cannot write the session folder: ${why}`, dir);
  }
}

async function writeText(path: string, text: string): Promise<void> {
  const partial = path + '.partial';
  try {
    await writeFile(partial, text);
    await rename(partial, path);
  } catch (e) {
    await rm(partial, { force: true });
    throw new SyncactError('OUTPUT_NOT_WRITABLE', `cannot write (${(e as NodeJS.ErrnoException).code ?? e})`, path);
  }
}

/** Label per voxel: 1 + the index of the network whose map is largest, if ≥ ATLAS_THRESHOLD; else 0. */
export function plantedAtlas(session: SyntheticSession): Float32Array {
  const n = session.mask.length;
  const labels = new Float32Array(n);
  const best = new Float32Array(n);
  session.truth.networks.forEach((net, i) => {
    for (let v = 0; v < n; v++) {
      if (net.map[v] >= ATLAS_THRESHOLD && net.map[v] > best[v]) {
        best[v] = net.map[v];
        labels[v] = i + 1;
      }
    }
  });
  return labels;
}

function atlasTable(session: SyntheticSession): string {
  return ['index\tname', ...session.truth.networks.map((n, i) => `${i + 1}\t${n.name}`)].join('\n') + '\n';
}

const FEATURE_DESCRIPTIONS: Record<string, string> = {
  luminance: 'mean grey level: background 0.38 + 0.24·value',
  contrast: 'amplitude of a static 8×8 checkerboard: ±0.1·value',
  grating_0: 'amplitude of a grating with vertical bars (varies along x), 4 cycles per frame: 0.1·value',
  grating_90: 'amplitude of a grating with horizontal bars (varies along y), 4 cycles per frame: 0.1·value',
  colour_rg: 'red–green balance: R += 0.08·(2·value − 1), G −= the same',
  motion: 'drift speed of both gratings: 1.5·value cycles per second',
};

const list = (a: ArrayLike<number>): number[] => Array.from(a);

/** The ground truth, self-describing: everything needed to score an analysis of the session. */
export function truthJson(session: SyntheticSession): Record<string, unknown> {
  const p = session.parameters;
  return {
    generator: 'syncact synth',
    preset: session.preset,
    seed: session.seed,
    parameters: p,
    tr: session.tr,
    n_volumes: session.nVolumes,
    onset: session.onset,
    grid: session.grid,
    masked_voxels: session.maskedVoxels,
    model: {
      bold:
        'y[v,k] = baseline[v] + sum_n amplitude*sign_n*map_n[v]*signal_n[k] + a[v]*(2u-1) + b[v]*cos(pi*u) + e[v,k], ' +
        'u = k/(n_volumes-1); a, b ~ N(0, drift_sd^2); e AR(1) with lag-1 correlation ar1 and SD noise_sd; 0 outside the mask',
      drive:
        'frames averaged into microtime bins of TR/microtime_bins (empty bins hold the last value, 0 before the first frame), ' +
        'causally convolved with the SPM canonical HRF (unit sum, 32 s), sampled at bin k*microtime_bins + floor(microtime_bins/2), ' +
        'standardized over the run (population SD)',
      reference_bin_of_tr0: referenceBin(0, p.microtimeBins),
      snr: 'amplitude / noise_sd at a map peak (map = 1)',
      decorrelation:
        'each feature course is redrawn (draw = index of the kept draw) until its drive has |r| <= parameters.maxAbsR ' +
        'with the earlier drives and the drift shapes; null signals are HRF-convolved slow courses made exactly orthogonal ' +
        'to the mean, the drift shapes, all drives and the earlier null signals',
    },
    snr: session.truth.snr,
    ar1: session.truth.ar1,
    amplitude: session.truth.amplitude,
    noise_sd: session.truth.amplitude / session.truth.snr,
    drift_sd: p.driftSd,
    map_cutoff: MAP_CUTOFF,
    atlas_threshold: ATLAS_THRESHOLD,
    movie: {
      fps: session.movie.fps,
      width: session.movie.width,
      height: session.movie.height,
      frame_count: session.movie.frameCount,
    },
    features: session.features.names.map((name, f) => ({
      name,
      description: FEATURE_DESCRIPTIONS[name],
      drives: session.truth.networks.filter((n) => n.driver === name).map((n) => n.name),
      draw: session.features.draws[f],
      per_frame: list(session.features.perFrame[f]),
      per_tr: list(session.features.perTr[f]),
      drive: list(session.truth.drives[f]),
    })),
    networks: session.truth.networks.map((n, i) => ({
      index: i + 1,
      name: n.name,
      driver: n.driver,
      sign: n.sign,
      center_mm: n.center,
      voxels: n.map.reduce((c, v) => c + (v > 0 ? 1 : 0), 0),
      signal: list(n.signal),
    })),
  };
}
