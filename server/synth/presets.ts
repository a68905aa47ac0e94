/**
 * The parameters of the three synthetic presets (DESIGN.md §5). Everything a generated
 * session depends on, apart from the seed, is here and is copied into truth.json.
 */
import type { Affine } from '../io/nifti/types.ts';

export type PresetName = 'tiny' | 'demo' | 'hcp7t';
export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'demo', 'hcp7t'];

export interface SynthPreset {
  name: PresetName;
  /** Grid size [nx, ny, nz]. */
  dims: [number, number, number];
  /** Voxel-to-MNI-mm affine (x flipped, like the MNI152 templates FSL and HCP ship). */
  affine: Affine;
  /** Seconds per volume. */
  tr: number;
  nVolumes: number;
  /** Movie frame rate and size (pixels; even, for yuv420p). */
  fps: number;
  width: number;
  height: number;
  /** Microtime bins per TR for the ground-truth convolution (SPM's default 16). */
  microtimeBins: number;
  /** Planted amplitude at a map's peak divided by the noise standard deviation. */
  snr: number;
  /** Lag-1 autocorrelation of the per-voxel noise. */
  ar1: number;
  /** Mean in-brain intensity (arbitrary scanner units). */
  baseline: number;
  /** Planted amplitude at a map's peak, per unit of standardized drive (2% of baseline). */
  amplitude: number;
  /** SD of the per-voxel linear and cosine drift coefficients (1% of baseline). */
  driftSd: number;
  /** Feature courses hold each level for a random duration in this range (seconds). */
  blockSeconds: [number, number];
  /**
   * Largest |r| allowed between any two planted signals (feature drives, null signals) and
   * between a signal and the drift shapes; courses are redrawn until it holds (decorrelate.ts).
   */
  maxAbsR: number;
  /** Redraws tried before keeping the least correlated one. */
  maxAttempts: number;
  /** Volumes between stored noise states, for seeking backwards in hcp7t-size runs. */
  checkpointEvery: number;
}

/** An MNI-like affine with isotropic voxels whose grid centre sits at `centre` (mm). */
function centredAffine(dims: [number, number, number], voxel: number, centre: [number, number, number]): Affine {
  const half = dims.map((d) => (d - 1) / 2);
  return [
    [-voxel, 0, 0, centre[0] + voxel * half[0]],
    [0, voxel, 0, centre[1] - voxel * half[1]],
    [0, 0, voxel, centre[2] - voxel * half[2]],
    [0, 0, 0, 1],
  ];
}

/** The middle of the phantom brain in MNI mm (the MNI brain is not centred on the origin). */
export const BRAIN_CENTRE: [number, number, number] = [0, -18, 10];

const common = {
  tr: 1,
  microtimeBins: 16,
  ar1: 0.4,
  baseline: 1000,
  amplitude: 20,
  driftSd: 10,
  blockSeconds: [3, 9] as [number, number],
  maxAbsR: 0.3,
  maxAttempts: 200,
};

export const PRESETS: Record<PresetName, SynthPreset> = {
  tiny: {
    ...common,
    name: 'tiny',
    dims: [12, 14, 12],
    affine: centredAffine([12, 14, 12], 12, BRAIN_CENTRE),
    nVolumes: 60,
    fps: 8,
    width: 64,
    height: 64,
    snr: 2,
    // 60 TRs hold only ~10 independent blocks per course: 0.3 would take hundreds of redraws.
    maxAbsR: 0.4,
    checkpointEvery: 16,
  },
  demo: {
    ...common,
    name: 'demo',
    dims: [40, 48, 40],
    affine: centredAffine([40, 48, 40], 4, BRAIN_CENTRE),
    nVolumes: 300,
    fps: 24,
    width: 128,
    height: 128,
    snr: 1,
    checkpointEvery: 64,
  },
  hcp7t: {
    ...common,
    name: 'hcp7t',
    dims: [113, 136, 113],
    // The HCP 1.6 mm MNI grid (MNINonLinear/Results/tfMRI_MOVIE*_7T_*).
    affine: [
      [-1.6, 0, 0, 90],
      [0, 1.6, 0, -126],
      [0, 0, 1.6, -72],
      [0, 0, 0, 1],
    ],
    nVolumes: 921,
    fps: 24,
    width: 224,
    height: 224,
    snr: 0.5,
    checkpointEvery: 128,
  },
};
