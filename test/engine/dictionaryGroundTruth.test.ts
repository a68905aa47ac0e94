/**
 * Ground truth for the data-driven networks (issue 3, item 4): the demo synthetic session
 * streamed through the coupling engine as the pipeline feeds it (each TR's masked volume
 * with the session's design extras: nilearn's DCT drift row at 1/128 Hz and the constant),
 * so the dictionary sees what it sees in a replay: the volume minus its drift fit so far,
 * z-scored with the statistics so far (coupling.ts). Every planted map must be found by
 * its own atom (greedy one-to-one matching on |spatial r| inside the mask), scored on the
 * maps the estimator reports (atom(j): the regression on code j thresholded at κ = 3
 * standard errors); the bar of r ≥ 0.8 is not reached by every network at this
 * SNR (see the first test). The
 * last test replays the same session at SNR 5 (synthSnr.ts), where the GLM's maps pass
 * r ≥ 0.9 (groundTruth.test.ts), to separate noise from the estimator's own limits.
 *
 * Networks driven by one feature are one network to any method that sees only the BOLD:
 * visual (+) and default mode (−) share the contrast drive, so the expected map for them
 * is their signed sum and one signed atom holding both is the right answer.
 */
import { describe, expect, it } from 'vitest';
import { CouplingEngine } from '../../server/engine/coupling.ts';
import { DEFAULT_HIGH_PASS, dctRow } from '../../server/engine/drift.ts';
import { SpatialSmoother } from '../../server/engine/spatialSmoothing.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { matchMaps } from './dictionaryLearningSynth.ts';
import { sessionAtSnr } from './synthSnr.ts';

/**
 * The demo session's masked voxels, the expected signed maps (one per driver), and a runner;
 * `fwhm` (mm) smooths each volume before masking as a session's smoothing_fwhm does.
 */
function demo(snr?: number, fwhm = 0) {
  const s = createSyntheticSession({ preset: 'demo' });
  const volume = snr === undefined ? s.volume : sessionAtSnr(s, snr);
  const voxels: number[] = [];
  s.mask.forEach((m, i) => {
    if (m) voxels.push(i);
  });
  const V = voxels.length;
  const T = s.nVolumes;
  const expected = new Map<string, Float64Array>();
  for (const n of s.truth.networks) {
    const key = n.driver ?? n.name;
    const map = expected.get(key) ?? new Float64Array(V);
    for (let v = 0; v < V; v++) map[v] += n.sign * n.map[voxels[v]];
    expected.set(key, map);
  }
  const smoother = fwhm > 0 ? new SpatialSmoother({ grid: s.grid, fwhm, mask: s.mask }) : null;
  const volumes = Array.from({ length: T }, (_, k) => {
    const grid = smoother ? smoother.smooth(volume(k)) : volume(k);
    return Float32Array.from(voxels, (i) => grid[i]);
  });
  /** |spatial r| of each planted network with its atom, after streaming the run; `drift: false` leaves the extras out. */
  const recover = (drift: boolean, settings: { atoms: number; updateEvery?: number } = { atoms: 10 }) => {
    const width = drift ? dctRow(0, T, s.tr, DEFAULT_HIGH_PASS).length : 0;
    const units = s.truth.drives.length;
    const engine = new CouplingEngine({
      voxels: V,
      units,
      extras: width,
      glm: { workers: 0 },
      atlas: { labelOfVoxel: new Int32Array(V), regions: 1 },
      sliding: { window: 30 },
      dictionary: { ...settings, seed: 0 },
    });
    const responses = new Float64Array(units);
    for (let k = 0; k < T; k++) {
      s.truth.drives.forEach((d, i) => (responses[i] = d[k]));
      const extras = drift ? dctRow(k, T, s.tr, DEFAULT_HIGH_PASS) : new Float64Array(0);
      engine.update({ units: responses, extras, volume: volumes[k] });
    }
    const atoms = Array.from({ length: settings.atoms }, (_, j) => engine.atom(j));
    const match = matchMaps([...expected.values()], atoms);
    expect(new Set(match.map((m) => m.atom)).size).toBe(expected.size);
    return Object.fromEntries([...expected.keys()].map((n, i) => [n, match[i].r]));
  };
  return { recover };
}

describe('online dictionary learning on the demo synthetic session', () => {
  const { recover } = demo();

  // The auditor's settings: 10 atoms (more than the 6 networks to find) and the estimator's
  // defaults (λ = 1, map sparsity 0.5, an update every TR).
  it('recovers every planted network (signed, anticorrelated pairs merged) as one atom each', () => {
    const r = recover(true);
    expect(Object.keys(r)).toEqual(['contrast', 'motion', 'colour_rg', 'grating_90', 'null_frontal', 'null_temporal']);
    // Measured with the read-out maps (mapThreshold κ = 3): contrast 0.83, motion 0.69,
    // colour 0.76, grating 0.83, null frontal 0.86, null temporal 0.81 (mean 0.80; 0.83 before
    // atoms with correlated codes were merged, motion then 0.86: at this SNR the merge rule
    // costs about as often as it helps, see docs/method.md); the atoms themselves (κ = 0,
    // what was reported before the read-out) gave 0.60–0.80, mean 0.74. At SNR 1
    // (planted peak = noise SD) and 300 TRs least squares on the TRUE signals gives dense maps
    // at only 0.49–0.76 over the mask (0.96 on each network's support): the threshold is what
    // removes the noise voxels. Colour, the phantom's smallest network, stays lowest.
    // Floors: measured − 0.05.
    const floor: Record<string, number> = {
      contrast: 0.78,
      motion: 0.63,
      colour_rg: 0.71,
      grating_90: 0.78,
      null_frontal: 0.8,
      null_temporal: 0.76,
    };
    for (const [name, value] of Object.entries(r)) expect(value, name).toBeGreaterThanOrEqual(floor[name]);
    const mean = Object.values(r).reduce((a, b) => a + b, 0) / 6;
    expect(mean).toBeGreaterThanOrEqual(0.76);
  });

  it("with the replay's settings at demo size (8 atoms, an update every 5 TRs) every network is found too", () => {
    const r = recover(true, { atoms: 8, updateEvery: 5 });
    // Measured: contrast 0.89, motion 0.85, colour 0.51, grating 0.86, null frontal 0.73,
    // null temporal 0.67, mean 0.75 (the atoms themselves: 0.46–0.87, mean 0.71). Colour and
    // the null networks share atoms more at this stride; the threshold cannot unmix them.
    for (const value of Object.values(r)) expect(value).toBeGreaterThanOrEqual(0.45);
    const mean = Object.values(r).reduce((a, b) => a + b, 0) / 6;
    expect(mean).toBeGreaterThanOrEqual(0.7);
  });

  it('without the drift removed the drift takes atoms from the networks', () => {
    const r = recover(false);
    // Measured: null temporal 0.10, colour 0.39, null frontal 0.49 (the auditor's 0.10–0.72
    // was this feeding): the slow drift, the run's largest shared pattern, holds atoms.
    expect(Math.min(...Object.values(r))).toBeLessThan(0.2);
  });
});

describe("online dictionary learning on the demo session smoothed at the demo's 8 mm FWHM", () => {
  // writeSession.ts gives the demo's session.json smoothing_fwhm 8 (two 4 mm voxels).
  const { recover } = demo(undefined, 8);

  it('recovers every planted network as one atom each with 10 atoms, five of six at |r| ≥ 0.9', () => {
    const r = recover(true);
    // Measured (read-out κ = 3): contrast 0.942, motion 0.931, colour 0.924, grating 0.866,
    // null frontal 0.924, null temporal 0.929 (mean 0.919; the atoms themselves 0.81–0.92).
    // Floors: measured − 0.03.
    for (const value of Object.values(r)) expect(value).toBeGreaterThanOrEqual(0.83);
    expect(Object.values(r).filter((v) => v >= 0.9).length).toBeGreaterThanOrEqual(5);
    const mean = Object.values(r).reduce((a, b) => a + b, 0) / 6;
    expect(mean).toBeGreaterThanOrEqual(0.89);
  });

  it("with the replay's settings (8 atoms, an update every 5 TRs) every network is found, |r| ≥ 0.89", () => {
    const r = recover(true, { atoms: 8, updateEvery: 5 });
    // Measured: contrast 0.943, motion 0.914, colour 0.891, grating 0.932, null frontal 0.927,
    // null temporal 0.925 (mean 0.922). Before atoms with correlated codes were merged,
    // contrast's two blobs (visual +, default mode −) took two atoms and colour, the
    // smallest network, got none (|r| 0.02). Floors: measured − 0.03.
    for (const value of Object.values(r)) expect(value).toBeGreaterThanOrEqual(0.86);
    const mean = Object.values(r).reduce((a, b) => a + b, 0) / 6;
    expect(mean).toBeGreaterThanOrEqual(0.89);
  });
});

describe('online dictionary learning on the demo session regenerated at SNR 5', () => {
  // The same phantom, drives, drift and noise draws with the noise 5× smaller (synthSnr.ts),
  // as groundTruth.test.ts checks the GLM's r ≥ 0.9 map criterion.
  const { recover } = demo(5);

  it('recovers every planted network as one atom each, five of six at |r| ≥ 0.9', () => {
    const r = recover(true);
    expect(Object.keys(r)).toEqual(['contrast', 'motion', 'colour_rg', 'grating_90', 'null_frontal', 'null_temporal']);
    // Measured (10 atoms, defaults, seed 0, read-out κ = 3): contrast 0.948, motion 0.939,
    // colour 0.935, grating 0.880, null frontal 0.931, null temporal 0.936 (mean 0.928); the
    // atoms themselves gave 0.71–0.91, mean 0.85, with 6–12k non-zeros, the read-out maps
    // 1.5–4.1k against planted supports of 0.8–3.5k. Grating stays below 0.9: the learning
    // mixes part of it into the atoms of contrast and motion, which no read-out undoes.
    // Over four noise draws (docs/method.md) every network passes 0.9 in some draws and
    // not in others: the unmixing, not the noise, is the limit at this SNR.
    // Floors: measured − 0.03.
    const floor: Record<string, number> = {
      contrast: 0.91,
      motion: 0.9,
      colour_rg: 0.9,
      grating_90: 0.85,
      null_frontal: 0.9,
      null_temporal: 0.9,
    };
    for (const [name, value] of Object.entries(r)) expect(value, name).toBeGreaterThanOrEqual(floor[name]);
    expect(Object.values(r).filter((v) => v >= 0.9).length).toBeGreaterThanOrEqual(5);
    const mean = Object.values(r).reduce((a, b) => a + b, 0) / 6;
    expect(mean).toBeGreaterThanOrEqual(0.9);
  });
});
