/**
 * A synthetic session's BOLD regenerated at another SNR: the same phantom, planted
 * networks, drives, drift and AR(1) noise draws (same seed, the session's own
 * BoldGenerator), only the noise scaled. The ground-truth tests use it to check map
 * criteria (r ≥ 0.9) that the demo's SNR 1 cannot reach for reasons of noise alone.
 * The baseline is the preset's constant rather than the session's per-voxel intensity;
 * every consumer here removes each voxel's mean, so that makes no difference to them.
 */
import { BoldGenerator } from '../../server/synth/bold.ts';
import type { SyntheticSession } from '../../server/synth/session.ts';

/** `volume(k)` of `s` at `snr` (planted peak / noise SD), over the whole grid like `s.volume`. */
export function sessionAtSnr(s: SyntheticSession, snr: number): (k: number) => Float32Array {
  const p = s.parameters;
  const bold = new BoldGenerator({
    seed: s.seed,
    mask: s.mask,
    nVolumes: s.nVolumes,
    networks: s.truth.networks,
    baseline: new Float64Array(s.maskedVoxels).fill(p.baseline),
    amplitude: p.amplitude,
    snr,
    ar1: p.ar1,
    driftSd: p.driftSd,
    checkpointEvery: p.checkpointEvery,
  });
  return (k) => bold.volume(k);
}
