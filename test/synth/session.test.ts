import { describe, expect, it } from 'vitest';
import { Matrix, solve } from 'ml-matrix';
import { createSyntheticSession, type SyntheticSession } from '../../server/synth/session.ts';
import { driftRegressors, pearson, residualize } from '../../server/synth/decorrelate.ts';
import { PRESETS } from '../../server/synth/presets.ts';
import { SyncactError } from '../../server/errors.ts';

const tiny = createSyntheticSession({ preset: 'tiny', seed: 1 });

function peakVoxel(map: Float32Array): number {
  let best = 0;
  for (let i = 1; i < map.length; i++) if (map[i] > map[best]) best = i;
  return best;
}

describe('createSyntheticSession', () => {
  it('describes the tiny preset consistently', () => {
    const p = PRESETS.tiny;
    expect(tiny.grid.dims).toEqual(p.dims);
    expect(tiny.nVolumes).toBe(p.nVolumes);
    expect(tiny.tr).toBe(1);
    expect(tiny.onset).toBe(0);
    expect(tiny.mask.length).toBe(12 * 14 * 12);
    expect(tiny.maskedVoxels).toBe(tiny.mask.reduce((a, b) => a + b, 0));
    expect(tiny.maskedVoxels).toBeGreaterThan(500);
    expect(tiny.movie.frameCount).toBe(p.nVolumes * p.fps);
    expect(tiny.features.names).toEqual(['luminance', 'contrast', 'grating_0', 'grating_90', 'colour_rg', 'motion']);
    for (const f of tiny.features.perFrame) {
      expect(f.length).toBe(tiny.movie.frameCount);
      expect(Math.min(...f)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...f)).toBeLessThanOrEqual(1);
    }
    expect(tiny.truth.networks.map((n) => n.name)).toEqual([
      'visual',
      'motion',
      'colour',
      'dorsal_attention',
      'default_mode',
      'null_frontal',
      'null_temporal',
    ]);
    expect(tiny.truth.networks.filter((n) => n.driver === null)).toHaveLength(2);
    expect(tiny.truth.networks.find((n) => n.name === 'default_mode')).toMatchObject({ driver: 'contrast', sign: -1 });
  });

  it('places networks at plausible MNI positions, inside the mask, peak 1', () => {
    const byName = Object.fromEntries(tiny.truth.networks.map((n) => [n.name, n]));
    expect(byName.visual.center[1]).toBeLessThan(-80); // occipital
    expect(Math.abs(byName.motion.center[0])).toBeGreaterThan(30); // lateral
    expect(byName.colour.center[2]).toBeLessThan(0); // ventral
    expect(byName.dorsal_attention.center[2]).toBeGreaterThan(35); // parietal, dorsal
    for (const n of tiny.truth.networks) {
      expect(Math.max(...n.map)).toBeCloseTo(1, 6);
      for (let i = 0; i < n.map.length; i++) if (n.map[i] !== 0) expect(tiny.mask[i]).toBe(1);
    }
  });

  it('is deterministic: same seed, same volumes, frames and drives; another seed differs', () => {
    const again = createSyntheticSession({ preset: 'tiny', seed: 1 });
    const other = createSyntheticSession({ preset: 'tiny', seed: 2 });
    for (const k of [0, 7, 59]) {
      expect(again.volume(k)).toEqual(tiny.volume(k));
      expect(other.volume(k)).not.toEqual(tiny.volume(k));
    }
    expect(again.movie.frame(100)).toEqual(tiny.movie.frame(100));
    expect(other.movie.frame(100)).not.toEqual(tiny.movie.frame(100));
    expect(again.truth.drives).toEqual(tiny.truth.drives);
    expect(other.truth.drives[0]).not.toEqual(tiny.truth.drives[0]);
  });

  it('gives the same volume whatever the access order (checkpointed AR noise)', () => {
    const inOrder = createSyntheticSession({ preset: 'tiny' });
    const sequential = Array.from({ length: inOrder.nVolumes }, (_, k) => inOrder.volume(k));
    const shuffled = createSyntheticSession({ preset: 'tiny' });
    // Jumps forward, then back across checkpoints (every 16), then repeats.
    for (const k of [40, 3, 59, 16, 15, 17, 0, 33, 33, 58, 1]) expect(shuffled.volume(k)).toEqual(sequential[k]);
  });

  it('is 0 outside the mask and around the baseline inside', () => {
    const v = tiny.volume(10);
    let inside = 0;
    for (let i = 0; i < v.length; i++) {
      if (!tiny.mask[i]) expect(v[i]).toBe(0);
      else inside += v[i];
    }
    const mean = inside / tiny.maskedVoxels;
    expect(mean).toBeGreaterThan(850);
    expect(mean).toBeLessThan(1050);
  });

  it('keeps drives, null signals and drift shapes weakly correlated', () => {
    const limit = PRESETS.tiny.maxAbsR;
    const signals = [...tiny.truth.drives, ...tiny.truth.networks.filter((n) => !n.driver).map((n) => n.signal)];
    const drift = driftRegressors(tiny.nVolumes);
    for (let a = 0; a < signals.length; a++) {
      for (const d of drift) expect(Math.abs(pearson(signals[a], d))).toBeLessThanOrEqual(limit);
      for (let b = a + 1; b < signals.length; b++) {
        expect(Math.abs(pearson(signals[a], signals[b]))).toBeLessThanOrEqual(limit + 1e-12);
      }
    }
  });

  it('standardizes drives and ties each driven network to its feature drive', () => {
    for (const d of tiny.truth.drives) {
      const mean = d.reduce((a, b) => a + b, 0) / d.length;
      const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
      expect(mean).toBeCloseTo(0, 10);
      expect(sd).toBeCloseTo(1, 10);
    }
    for (const n of tiny.truth.networks) {
      if (n.driver) expect(n.signal).toBe(tiny.truth.drives[tiny.features.names.indexOf(n.driver)]);
    }
  });

  it('rejects unknown presets and bad seeds with SYNTH_BAD_OPTIONS', () => {
    expect(() => createSyntheticSession({ preset: 'huge' as 'tiny' })).toThrow(SyncactError);
    expect(() => createSyntheticSession({ preset: 'huge' as 'tiny' })).toThrow(/unknown preset "huge"/);
    for (const seed of [-1, 1.5, 2 ** 32, NaN]) {
      expect(() => createSyntheticSession({ preset: 'tiny', seed })).toThrow(
        expect.objectContaining({ code: 'SYNTH_BAD_OPTIONS' }) as unknown as Error,
      );
    }
    expect(() => tiny.volume(60)).toThrow(RangeError);
    expect(() => tiny.movie.frame(-1)).toThrow(RangeError);
  });
});

describe('planted truth in the tiny preset', () => {
  const n = tiny.nVolumes;
  const vols = Array.from({ length: n }, (_, k) => tiny.volume(k));
  const drift = [new Float64Array(n).fill(1), ...driftRegressors(n)];
  /** The detrended (partial) mean time series of the voxels where the map is at least 0.5. */
  const inMap = (map: Float32Array) => {
    const ts = new Float64Array(n);
    const voxels = [...map.keys()].filter((i) => map[i] >= 0.5);
    for (let k = 0; k < n; k++) for (const i of voxels) ts[k] += vols[k][i] / voxels.length;
    return residualize(ts, drift);
  };
  for (const net of tiny.truth.networks) {
    if (net.driver) {
      it(`${net.name} follows sign × drive(${net.driver}) in its map`, () => {
        const drive = tiny.truth.drives[tiny.features.names.indexOf(net.driver as string)];
        // Partial correlation: the drift shapes are removed from both sides.
        expect(pearson(inMap(net.map), residualize(drive.map((d) => d * net.sign), drift))).toBeGreaterThan(0.8);
      });
    } else {
      it(`${net.name} follows its own signal and no feature`, () => {
        const ts = inMap(net.map);
        expect(pearson(ts, net.signal)).toBeGreaterThan(0.8);
        for (const d of tiny.truth.drives) expect(Math.abs(pearson(ts, residualize(d, drift)))).toBeLessThan(0.3);
      });
    }
  }
});

/**
 * The science check: at each network's peak voxel, regress the BOLD on everything that was
 * planted (intercept, drift shapes, all six feature drives, both null signals). The
 * coefficient of the network's own signal must come out near amplitude·sign, and every
 * other signal's near 0: driven networks follow their feature and nothing else, null
 * networks follow no feature. demo (300 TRs, SNR 1) gives a standard error of about 2
 * (amplitude 20); the tolerance is half the amplitude, about 5 standard errors.
 */
describe('planted truth is recoverable (demo preset, in memory)', () => {
  const demo: SyntheticSession = createSyntheticSession({ preset: 'demo', seed: 1 });
  const n = demo.nVolumes;
  const nulls = demo.truth.networks.filter((x) => x.driver === null);
  const columns = [new Float64Array(n).fill(1), ...driftRegressors(n), ...demo.truth.drives, ...nulls.map((x) => x.signal)];
  const names = ['intercept', 'linear', 'cosine', ...demo.features.names, ...nulls.map((x) => x.name)];
  const X = new Matrix(n, columns.length);
  columns.forEach((c, j) => c.forEach((v, i) => X.set(i, j, v)));
  const peaks = demo.truth.networks.map((net) => peakVoxel(net.map));
  const series = peaks.map(() => new Float64Array(n));
  for (let k = 0; k < n; k++) {
    const v = demo.volume(k);
    peaks.forEach((p, i) => (series[i][k] = v[p]));
  }

  demo.truth.networks.forEach((net, i) => {
    it(`${net.name}: own coefficient ≈ amplitude·sign, the others ≈ 0`, () => {
      const beta = solve(X, Matrix.columnVector(Array.from(series[i]))).to1DArray();
      const own = net.driver ? names.indexOf(net.driver) : names.indexOf(net.name);
      const amp = demo.truth.amplitude;
      // Other networks' maps are ~0 at this peak, so only the own signal is expected.
      expect(beta[own] * net.sign).toBeGreaterThan(amp / 2);
      expect(beta[own] * net.sign).toBeLessThan(amp * 1.5);
      for (let j = 3; j < names.length; j++) {
        if (j !== own) expect(Math.abs(beta[j]), `${net.name} on ${names[j]}`).toBeLessThan(amp / 2);
      }
    });
  });
});

describe('hcp7t preset (streamed, never materialized)', () => {
  it('uses the HCP 1.6 mm MNI grid and computes volumes on demand, in any order', () => {
    const hcp = createSyntheticSession({ preset: 'hcp7t', seed: 1 });
    expect(hcp.grid.dims).toEqual([113, 136, 113]);
    expect(hcp.grid.affine).toEqual([
      [-1.6, 0, 0, 90],
      [0, 1.6, 0, -126],
      [0, 0, 1.6, -72],
      [0, 0, 0, 1],
    ]);
    expect(hcp.nVolumes).toBe(921);
    expect(hcp.movie.frameCount).toBe(921 * 24);
    // An MNI-sized brain: about 1.7 litres of 4.096 mm³ voxels.
    expect(hcp.maskedVoxels).toBeGreaterThan(350_000);
    expect(hcp.maskedVoxels).toBeLessThan(450_000);
    const v0 = hcp.volume(0);
    const v2 = hcp.volume(2);
    expect(v0.length).toBe(113 * 136 * 113);
    // Byte comparison: vitest's deep equality walks 1.7 M elements one by one.
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytes(v2).equals(bytes(v0))).toBe(false);
    expect(bytes(hcp.volume(0)).equals(bytes(v0))).toBe(true);
  });
});
