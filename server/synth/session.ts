/**
 * A whole synthetic session from a preset and a seed (DESIGN.md §5): phantom brain, planted
 * networks, procedural movie, feature drives and the BOLD run, all pure and reproducible.
 * Small things (maps, feature courses, drives) are computed up front; movie frames and
 * BOLD volumes are computed on demand, so an hcp7t-size run is streamed, never stored.
 */
import { SyncactError } from '../errors.ts';
import { createRng } from '../engine/random.ts';
import type { Grid } from '../io/nifti/types.ts';
import { BoldGenerator } from './bold.ts';
import { driftRegressors, residualize } from './decorrelate.ts';
import { convolveAndSample, perTrMeans, standardize, type DriveTiming } from './drives.ts';
import { FEATURE_NAMES, featureTimeline, slowCourse } from './features.ts';
import { proceduralMovie, type ProceduralMovie } from './movie.ts';
import { brainRadius2, ellipsoidMask, NETWORK_SPECS, networkMap, voxelToWorld } from './phantom.ts';
import { PRESET_NAMES, PRESETS, type PresetName, type SynthPreset } from './presets.ts';
import { STREAM, subSeed } from './seed.ts';

export type { PresetName } from './presets.ts';

export const DEFAULT_SEED = 1;

export interface TruthNetwork {
  name: string;
  /** The feature that drives it, or null for a null network. */
  driver: string | null;
  sign: 1 | -1;
  /** Over the grid, peak 1, 0 outside the network and the mask. */
  map: Float32Array;
  /** World (mm) position of the map's peak voxel. */
  center: [number, number, number];
  /** Per TR, the standardized signal the network carries (its driver's drive, or its own). */
  signal: Float64Array;
}

export interface SyntheticSession {
  preset: PresetName;
  seed: number;
  /** Every parameter of the preset (copied into truth.json). */
  parameters: SynthPreset;
  tr: number;
  nVolumes: number;
  /** Movie time at the start of volume 0 (seconds). */
  onset: number;
  grid: Grid;
  /** 1 in the brain ellipsoid, over the grid. */
  mask: Uint8Array;
  maskedVoxels: number;
  movie: ProceduralMovie;
  features: {
    names: string[];
    /** Per feature, the value of each movie frame, in [0, 1]. */
    perFrame: Float64Array[];
    /** Per feature, the mean over the frames of each TR (not convolved). */
    perTr: Float64Array[];
    /** Per feature, which draw of its seed stream was kept (see decorrelate.ts). */
    draws: number[];
  };
  truth: {
    networks: TruthNetwork[];
    /** Per feature, per TR: HRF-convolved and standardized (a perfect unit's response). */
    drives: Float64Array[];
    /** Peak planted amplitude over noise SD. */
    snr: number;
    ar1: number;
    /** Planted amplitude at a map's peak per unit drive; noise SD is amplitude / snr. */
    amplitude: number;
  };
  /** Volume k (0-based) over the grid; fastest when read in order. */
  volume(k: number): Float32Array;
}

export interface SyntheticSessionOptions {
  preset: PresetName;
  /** Unsigned 32-bit integer; default 1. */
  seed?: number;
}

export function createSyntheticSession(options: SyntheticSessionOptions): SyntheticSession {
  const preset = PRESETS[options.preset as PresetName];
  if (!preset || !PRESET_NAMES.includes(options.preset)) {
    throw new SyncactError('SYNTH_BAD_OPTIONS', `unknown preset "${options.preset}"; presets: ${PRESET_NAMES.join(', ')}`);
  }
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new SyncactError('SYNTH_BAD_OPTIONS', `seed must be an integer in 0..4294967295, got ${seed}`);
  }
  const grid: Grid = { dims: [...preset.dims], affine: preset.affine.map((r) => r.slice()) };
  const timing: DriveTiming = { tr: preset.tr, nVolumes: preset.nVolumes, microtimeBins: preset.microtimeBins };
  const frameCount = Math.round(preset.nVolumes * preset.tr * preset.fps);

  const timeline = featureTimeline({
    seed,
    tr: preset.tr,
    nVolumes: preset.nVolumes,
    microtimeBins: preset.microtimeBins,
    fps: preset.fps,
    frameCount,
    blockSeconds: preset.blockSeconds,
    maxAbsR: preset.maxAbsR,
    maxAttempts: preset.maxAttempts,
  });
  const drives = timeline.drives;
  const perTr = timeline.perFrame.map((values) => perTrMeans(values, preset.fps, timing));

  const mask = ellipsoidMask(grid);
  let maskedVoxels = 0;
  for (const m of mask) maskedVoxels += m;

  // Null networks carry their own slow signal: the same kind of course as a feature, from
  // their own seed stream, HRF-convolved, then made exactly orthogonal to the mean, the
  // drift shapes, every feature drive and the earlier null signals, so any coupling found
  // between a null network and a feature is a false positive.
  const avoid = [new Float64Array(preset.nVolumes).fill(1), ...driftRegressors(preset.nVolumes), ...drives];
  const networks: TruthNetwork[] = NETWORK_SPECS.map((spec, n) => {
    const map = networkMap(grid, mask, spec);
    let signal: Float64Array;
    if (spec.driver === null) {
      const course = slowCourse(
        createRng(subSeed(seed, STREAM.nullSignals, n)),
        preset.nVolumes * preset.microtimeBins,
        preset.tr / preset.microtimeBins,
        preset.blockSeconds,
      );
      signal = standardize(residualize(convolveAndSample(course, timing), avoid));
      avoid.push(signal);
    } else {
      signal = drives[FEATURE_NAMES.indexOf(spec.driver as (typeof FEATURE_NAMES)[number])];
    }
    return { name: spec.name, driver: spec.driver, sign: spec.sign, map, center: peakWorld(grid, map), signal };
  });

  const bold = new BoldGenerator({
    seed,
    mask,
    nVolumes: preset.nVolumes,
    networks,
    baseline: baselineIntensity(grid, mask, maskedVoxels, preset, seed),
    amplitude: preset.amplitude,
    snr: preset.snr,
    ar1: preset.ar1,
    driftSd: preset.driftSd,
    checkpointEvery: preset.checkpointEvery,
  });

  return {
    preset: preset.name,
    seed,
    parameters: preset,
    tr: preset.tr,
    nVolumes: preset.nVolumes,
    onset: 0,
    grid,
    mask,
    maskedVoxels,
    movie: proceduralMovie({ fps: preset.fps, width: preset.width, height: preset.height, frameCount, perFrame: timeline.perFrame }),
    features: { names: [...FEATURE_NAMES], perFrame: timeline.perFrame, perTr, draws: timeline.attempts },
    truth: { networks, drives, snr: preset.snr, ar1: preset.ar1, amplitude: preset.amplitude },
    volume: (k) => bold.volume(k),
  };
}

/**
 * Mean intensity per masked voxel: brighter towards the centre (0.85–1 × baseline, like the
 * coil sensitivity falling off), plus a 2% voxel-to-voxel texture so no two voxels are alike.
 */
function baselineIntensity(grid: Grid, mask: Uint8Array, count: number, preset: SynthPreset, seed: number): Float64Array {
  const rng = createRng(subSeed(seed, STREAM.baseline));
  const out = new Float64Array(count);
  const [nx, ny] = grid.dims;
  let m = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const [x, y, z] = voxelToWorld(grid.affine, i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny)));
    const r2 = brainRadius2(x, y, z);
    out[m++] = preset.baseline * (0.85 + 0.15 * (1 - r2) + 0.02 * rng.normal());
  }
  return out;
}

function peakWorld(grid: Grid, map: Float32Array): [number, number, number] {
  let best = 0;
  for (let i = 1; i < map.length; i++) if (map[i] > map[best]) best = i;
  const [nx, ny] = grid.dims;
  return voxelToWorld(grid.affine, best % nx, Math.floor(best / nx) % ny, Math.floor(best / (nx * ny)));
}
