/**
 * Spatial smoothing of one volume at HCP 7T size (the `hcp7t` preset's grid: 113×136×113,
 * 1.6 mm isotropic), FWHM 6 mm (σ = 1.59 voxels, 13-tap kernel), as the session readers
 * apply `smoothing_fwhm` to every volume before masking:
 *
 * - io.smoothing_ms: with the session's mask (the hcp7t phantom's, 403,192 voxels), which
 *   limits the work to the mask's bounding box and the kernel's reach around it: what a
 *   replay pays per TR;
 * - io.smoothing_full_ms: the whole grid (no mask), the same work nilearn does;
 * - scipy.smoothing_ms: nilearn's `_smooth_array` in scipy on the same grid size
 *   (bench/reference/smoothing.py); NaN without python.
 *
 * Median over 15 volumes after 3 warm-up ones; one seeded volume (smoothing does the same
 * work whatever the values), made before timing.
 */
import { median, runNumpyReference, type BenchSuite } from './bench.ts';
import { SpatialSmoother } from '../server/engine/spatialSmoothing.ts';
import { ellipsoidMask } from '../server/synth/phantom.ts';
import { PRESETS } from '../server/synth/presets.ts';
import { createRng } from '../server/engine/random.ts';

const FWHM_MM = 6;
const WARMUP = 3;
const TIMED = 15;

function timeSmoothing(smoother: SpatialSmoother, volume: Float32Array): number {
  const out = new Float32Array(volume.length);
  const times: number[] = [];
  for (let i = 0; i < WARMUP + TIMED; i++) {
    const t0 = performance.now();
    smoother.smooth(volume, out);
    if (i >= WARMUP) times.push(performance.now() - t0);
  }
  return median(times);
}

const suite: BenchSuite = {
  title: `spatial smoothing, hcp7t grid 113×136×113 at 1.6 mm, FWHM ${FWHM_MM} mm`,
  figures: ['io.smoothing_ms', 'io.smoothing_full_ms', 'scipy.smoothing_ms'],
  async run(ctx) {
    const out: Record<string, number> = {};
    if (ctx.wants('scipy.smoothing_ms')) Object.assign(out, runNumpyReference('smoothing.py', ['scipy.smoothing_ms'], ctx.log));
    if (!ctx.wants('io.smoothing_ms') && !ctx.wants('io.smoothing_full_ms')) return out;
    const preset = PRESETS.hcp7t;
    const grid = { dims: preset.dims, affine: preset.affine };
    const mask = ellipsoidMask(grid);
    const rng = createRng(1);
    const volume = Float32Array.from({ length: mask.length }, () => 1000 + 10 * rng.normal());
    if (ctx.wants('io.smoothing_ms')) out['io.smoothing_ms'] = timeSmoothing(new SpatialSmoother({ grid, fwhm: FWHM_MM, mask }), volume);
    if (ctx.wants('io.smoothing_full_ms')) out['io.smoothing_full_ms'] = timeSmoothing(new SpatialSmoother({ grid, fwhm: FWHM_MM }), volume);
    return out;
  },
};

export default suite;
