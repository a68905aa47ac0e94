import { describe, it, expect } from 'vitest';
import {
  annotateUnit,
  annotateUnits,
  spatialCorrelation,
  estimateFwhmVoxels,
  type AnnotationOptions,
} from '../../server/engine/annotation.ts';
import { benjaminiHochberg } from '../../server/engine/fdr.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

// A small phantom: an ellipsoid mask on a 20×20×16 grid (NIfTI order, x fastest).
const dims: [number, number, number] = [20, 20, 16];
const [nx, ny, nz] = dims;
const voxelIndex = (() => {
  const idx: number[] = [];
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        if (((x - 9.5) / 9) ** 2 + ((y - 9.5) / 9) ** 2 + ((z - 7.5) / 7) ** 2 <= 1) idx.push(x + nx * (y + ny * z));
      }
  return Int32Array.from(idx);
})();
const V = voxelIndex.length;
const grid = { dims, voxelIndex };
const xyz = (g: number) => [g % nx, Math.floor(g / nx) % ny, Math.floor(g / (nx * ny))];

/** White noise on the grid smoothed by a Gaussian of sd `sigma` voxels, at the masked voxels. */
function smoothNoise(seed: number, sigma: number): Float32Array {
  const rng = createRng(seed);
  let g = new Float64Array(nx * ny * nz);
  for (let i = 0; i < g.length; i++) g[i] = rng.normal();
  const R = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * R + 1 }, (_, i) => Math.exp(-((i - R) ** 2) / (2 * sigma * sigma)));
  const strides = [1, nx, nx * ny];
  for (let a = 0; a < 3; a++) {
    const out = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) {
      const c = xyz(i)[a];
      let s = 0;
      for (let d = -R; d <= R; d++) if (c + d >= 0 && c + d < dims[a]) s += k[d + R] * g[i + d * strides[a]];
      out[i] = s;
    }
    g = out;
  }
  const m = Float32Array.from(voxelIndex, (i) => g[i]);
  let ss = 0;
  for (const v of m) ss += v * v;
  const sd = Math.sqrt(ss / V);
  return m.map((v) => v / sd);
}

function blob(cx: number, cy: number, cz: number, sd: number): Float32Array {
  return Float32Array.from(voxelIndex, (g) => {
    const [x, y, z] = xyz(g);
    return Math.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * sd * sd));
  });
}

const centres = [[5, 5, 5], [14, 5, 5], [5, 14, 10], [14, 14, 10], [9, 9, 3], [9, 9, 12]];
const templates = centres.map(([x, y, z]) => blob(x, y, z, 3));
const names = ['visual', 'auditory', 'dorsal-attention', 'default-mode', 'somatomotor', 'frontoparietal'];
const base: AnnotationOptions = { templates, names, nulls: 49, seed: 3, grid };

/** Standardised template j plus `noise` × standardised smooth noise. */
function planted(j: number, sign: number, noise: number, seed: number): Float32Array {
  const t = templates[j];
  let m = 0, ss = 0;
  for (const v of t) m += v / V;
  for (const v of t) ss += (v - m) ** 2;
  const sd = Math.sqrt(ss / V);
  const n = smoothNoise(seed, 1.5);
  return Float32Array.from(t, (v, i) => (sign * (v - m)) / sd + noise * n[i]);
}

/** Two-pass Pearson r over the voxels finite in both, in float64. */
function referenceR(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && Number.isFinite(b[i])) (xs.push(a[i]), ys.push(b[i]));
  const mx = xs.reduce((s, v) => s + v, 0) / xs.length;
  const my = ys.reduce((s, v) => s + v, 0) / ys.length;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('spatialCorrelation', () => {
  it('equals a two-pass Pearson r, also around a large offset and with NaN voxels', () => {
    const a = smoothNoise(1, 1);
    const b = Float32Array.from(smoothNoise(2, 1), (v, i) => 1000 + v + 0.5 * a[i]);
    b[7] = NaN;
    a[100] = NaN;
    const r = spatialCorrelation(a, b);
    expect(r).toBeCloseTo(referenceR(a, b), 10);
    expect(r).toBeGreaterThan(0.2);
  });

  it('is NaN for a constant map or fewer than 3 common voxels', () => {
    expect(spatialCorrelation(new Float32Array(V).fill(2.5), templates[0])).toBeNaN();
    expect(spatialCorrelation(Float32Array.of(1, 2, NaN, 4), Float32Array.of(1, 3, 2, NaN))).toBeNaN();
  });
});

describe('estimateFwhmVoxels', () => {
  it('recovers the FWHM of smoothed noise (2.355·σ)', () => {
    for (const sigma of [1, 2]) {
      let est = 0;
      for (let s = 0; s < 5; s++) est += estimateFwhmVoxels(smoothNoise(10 + s, sigma), grid) / 5;
      expect(est / (2 * Math.sqrt(2 * Math.LN2) * sigma)).toBeGreaterThan(0.85);
      expect(est / (2 * Math.sqrt(2 * Math.LN2) * sigma)).toBeLessThan(1.15);
    }
  });
});

describe('annotateUnit', () => {
  it('labels template j + smooth noise with j, sign +1 and a small p', () => {
    for (const j of [0, 3, 5]) {
      const a = annotateUnit(planted(j, 1, 1, 100 + j), base);
      expect(a.label).toBe(names[j]);
      expect(a.index).toBe(j);
      expect(a.sign).toBe(1);
      expect(a.score).toBeCloseTo(a.scores[j], 12);
      expect(a.score).toBeGreaterThan(0.5);
      expect(a.p).toBeCloseTo(1 / 50, 12); // no null field beats it
      expect(a.dice).toBeGreaterThan(0.3);
      for (let k = 0; k < templates.length; k++) expect(Math.abs(a.scores[k])).toBeLessThanOrEqual(a.score);
    }
  });

  it('labels the negative of a template with that template and sign −1', () => {
    const a = annotateUnit(planted(2, -1, 0.8, 7), base);
    expect(a.label).toBe('dorsal-attention');
    expect(a.sign).toBe(-1);
    expect(a.scores[2]).toBeLessThan(0);
    expect(a.score).toBeCloseTo(-a.scores[2], 12);
    expect(a.p).toBeLessThan(0.05);
    // The Dice is of the most negative voxels, so it overlaps the network.
    expect(a.dice).toBeGreaterThan(0.3);
  });

  it('gives roughly uniform p-values for pure smooth-noise maps', () => {
    const ps: number[] = [];
    for (let s = 0; s < 30; s++) ps.push(annotateUnit(smoothNoise(500 + s, 1.5), { ...base, seed: s }).p);
    expect(ps.every((p) => p > 0 && p <= 1)).toBe(true);
    // Expected 1.5 of 30 below 0.05 and 15 below 0.5.
    expect(ps.filter((p) => p <= 0.05).length).toBeLessThanOrEqual(5);
    const half = ps.filter((p) => p <= 0.5).length;
    expect(half).toBeGreaterThanOrEqual(8);
    expect(half).toBeLessThanOrEqual(22);
  });

  it('ignores NaN voxels: same scores as the map and templates without those voxels', () => {
    const map = planted(1, 1, 1.5, 9);
    const holes = new Set<number>();
    const rng = createRng(4);
    while (holes.size < V / 10) holes.add(rng.int(V));
    const withNan = map.slice();
    for (const h of holes) withNan[h] = NaN;
    const keep = Array.from({ length: V }, (_, i) => i).filter((i) => !holes.has(i));
    const compact = Float32Array.from(keep, (i) => map[i]);
    const a = annotateUnit(withNan, { ...base, nulls: 0 });
    const b = annotateUnit(compact, { templates: templates.map((t) => Float32Array.from(keep, (i) => t[i])), names, nulls: 0 });
    for (let j = 0; j < templates.length; j++) expect(a.scores[j]).toBeCloseTo(b.scores[j], 12);
    expect(a.label).toBe(b.label);
    expect(a.dice).toBe(b.dice);
    const withP = annotateUnit(withNan, base);
    expect(withP.label).toBe('auditory');
    expect(withP.p).toBeLessThan(0.05);
  });

  it('a constant or all-NaN map gets label "none" and NaN results, without throwing', () => {
    for (const map of [new Float32Array(V).fill(3), new Float32Array(V).fill(NaN)]) {
      const a = annotateUnit(map, base);
      expect(a.label).toBe('none');
      expect(a.index).toBe(-1);
      expect(a.score).toBeNaN();
      expect(a.dice).toBeNaN();
      expect(a.p).toBeNaN();
      expect(Array.from(a.scores).every(Number.isNaN)).toBe(true);
    }
  });

  it('Dice is 1 when the top voxels are exactly the template support or top set', () => {
    const weights = templates[4];
    const support = weights.map((v) => (v > 0.5 ? 1 : 0));
    const count = support.reduce((s, v) => s + v, 0);
    const binary = annotateUnit(weights, { templates: [support], names: ['mask'], nulls: 0, topFraction: (count - 0.5) / V });
    expect(binary.dice).toBe(1);
    const weighted = annotateUnit(weights, { templates: [weights], names: ['w'], nulls: 0, topFraction: 0.1 });
    expect(weighted.dice).toBe(1);
    expect(weighted.score).toBeCloseTo(1, 12);
    // Against another network the top voxels barely overlap.
    expect(annotateUnit(templates[0], { templates: [weights], names: ['w'], nulls: 0 }).dice).toBeLessThan(0.2);
  });

  it('has no p-value without a grid or without nulls', () => {
    const map = planted(0, 1, 1, 1);
    expect(annotateUnit(map, { ...base, grid: undefined }).p).toBeNaN();
    expect(annotateUnit(map, { ...base, nulls: 0 }).p).toBeNaN();
  });

  it('is deterministic for a seed', () => {
    const map = smoothNoise(77, 1.5);
    expect(annotateUnit(map, base).p).toBe(annotateUnit(map, base).p);
  });

  it('rejects inconsistent inputs with typed errors', () => {
    const map = planted(0, 1, 1, 1);
    const cases: [AnnotationOptions, RegExp][] = [
      [{ ...base, names: names.slice(1) }, /6 templates but 5 names/],
      [{ ...base, templates: [...templates.slice(1), new Float32Array(3)] }, /template 'frontoparietal' has 3 voxels, the unit map has \d+/],
      [{ ...base, topFraction: 1 }, /topFraction must be in \(0, 1\)/],
      [{ ...base, nulls: -1 }, /nulls must be an integer ≥ 0/],
      [{ ...base, grid: { dims, voxelIndex: Int32Array.from(voxelIndex, (g) => g + nx * ny * nz) } }, /outside the 20×20×16 grid/],
      [{ ...base, templates: [], names: [] }, /no template maps/],
    ];
    for (const [o, message] of cases) {
      try {
        annotateUnit(map, o);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(SyncactError);
        expect((e as SyncactError).code).toBe('ENGINE_BAD_INPUT');
        expect((e as SyncactError).message).toMatch(message);
      }
    }
  });
});

describe('annotateUnits', () => {
  it('labels each unit like annotateUnit and adds BH q-values across units', () => {
    const maps = [planted(0, 1, 1, 20), smoothNoise(21, 1.5), planted(3, -1, 1, 22), new Float32Array(V).fill(1), smoothNoise(23, 1.5)];
    const out = annotateUnits(maps, { ...base, nulls: 99 });
    expect(out.map((r) => r.label)).toEqual(maps.map((m) => annotateUnit(m, base).label));
    expect(out[0].label).toBe('visual');
    expect(out[2].label).toBe('default-mode');
    expect(out[2].sign).toBe(-1);
    expect(out[3].label).toBe('none');
    expect(out[3].q).toBeNaN();
    const q = benjaminiHochberg(Float64Array.from(out, (r) => r.p));
    out.forEach((r, i) => (Number.isNaN(q[i]) ? expect(r.q).toBeNaN() : expect(r.q).toBeCloseTo(q[i], 14)));
    expect(out[0].q).toBeLessThanOrEqual(0.05);
    expect(out[2].q).toBeLessThanOrEqual(0.05);
    expect(out[0].p).toBeCloseTo(1 / 100, 12);
  });
});
