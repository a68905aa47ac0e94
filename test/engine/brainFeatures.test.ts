import { describe, expect, it } from 'vitest';
import { BrainFeatures } from '../../server/engine/brainFeatures.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

/** Batch twin: dense (regions × voxels) weights, nan-aware weighted mean, numpy style. */
function batch(weights: Float32Array[], y: ArrayLike<number>): number[] {
  return weights.map((w) => {
    let s = 0, ws = 0;
    for (let v = 0; v < y.length; v++) {
      if (Number.isNaN(y[v]) || w[v] === 0) continue;
      s += w[v] * y[v];
      ws += w[v];
    }
    return ws !== 0 ? s / ws : NaN;
  });
}

describe('BrainFeatures', () => {
  const V = 500, R = 7;
  const rng = createRng(4);
  const labels = new Int32Array(V);
  for (let v = 0; v < V; v++) labels[v] = rng.int(R + 1) - 1; // −1 … R−1
  for (let v = 0; v < V; v++) if (labels[v] === 5) labels[v] = 0; // region 5 left empty
  const indicator = Array.from({ length: R }, (_, r) => Float32Array.from(labels, (l) => (l === r ? 1 : 0)));
  const soft = Array.from({ length: R }, () => Float32Array.from({ length: V }, () => (rng.uniform() < 0.3 ? rng.uniform() : 0)));
  const volume = (seed: number) => {
    const g = createRng(seed);
    const y = new Float32Array(V);
    for (let v = 0; v < V; v++) y[v] = 1000 + 50 * g.normal();
    for (let v = 0; v < V; v += 37) y[v] = NaN;
    return y;
  };

  it('label fast path equals the indicator-weight path and the batch twin', () => {
    const byLabel = new BrainFeatures({ labelOfVoxel: labels, regions: R });
    const byWeight = new BrainFeatures({ weights: indicator });
    for (let seed = 0; seed < 5; seed++) {
      const y = volume(seed);
      const a = byLabel.extract(y);
      const b = byWeight.extract(y);
      const ref = batch(indicator, y);
      for (let r = 0; r < R; r++) {
        if (Number.isNaN(ref[r])) {
          expect(a[r]).toBeNaN();
          expect(b[r]).toBeNaN();
        } else {
          expect(a[r]).toBeCloseTo(ref[r], 9);
          expect(b[r]).toBeCloseTo(ref[r], 9);
        }
      }
      expect(a[5]).toBeNaN();
    }
  });

  it('soft maps give the weighted mean over non-NaN voxels', () => {
    const f = new BrainFeatures({ weights: soft });
    const y = volume(99);
    const out = new Float64Array(R);
    expect(f.extract(y, out)).toBe(out);
    const ref = batch(soft, y);
    for (let r = 0; r < R; r++) expect(out[r]).toBeCloseTo(ref[r], 9);
  });

  it('sparse maps (positions and weights, as atlases keep them) give what their dense form gives', () => {
    const sparse = soft.map((w) => {
      const voxels: number[] = [];
      const values: number[] = [];
      w.forEach((x, v) => {
        if (x !== 0 || v % 50 === 0) {
          voxels.push(v);
          values.push(x); // a few explicit zeros: skipped like the dense path's
        }
      });
      return { voxels: Uint32Array.from(voxels), values: Float32Array.from(values) };
    });
    const bySparse = new BrainFeatures({ sparse, voxels: V });
    const byDense = new BrainFeatures({ weights: soft });
    expect([bySparse.voxels, bySparse.regions]).toEqual([V, R]);
    for (let seed = 10; seed < 13; seed++) {
      const y = volume(seed);
      const a = bySparse.extract(y);
      const b = byDense.extract(y);
      const ref = batch(soft, y);
      for (let r = 0; r < R; r++) {
        expect(a[r]).toBe(b[r]);
        expect(a[r]).toBeCloseTo(ref[r], 9);
      }
    }
  });

  it('sparse maps: positions outside the volume, mismatched lengths and non-finite weights are typed errors', () => {
    const one = (voxels: number[], values: number[]) => () => new BrainFeatures({ sparse: [{ voxels, values }], voxels: 4 });
    expect(one([0, 4], [1, 1])).toThrowError(/map 0 lists voxel 4, outside 0 … 3/);
    expect(one([0, 1.5], [1, 1])).toThrowError(SyncactError);
    expect(one([0, 1], [1])).toThrowError(/2 voxels but 1 weights/);
    expect(one([0, 1], [1, NaN])).toThrowError(/non-finite weight at voxel 1/);
    expect(() => new BrainFeatures({ sparse: [], voxels: 4 })).toThrowError(SyncactError);
    expect(() => new BrainFeatures({ sparse: [{ voxels: [0], values: [1] }], voxels: 4 }).extract(new Float32Array(5))).toThrowError(/expected 4/);
  });

  it('a region whose voxels are all NaN gives NaN, the others are unaffected', () => {
    const f = new BrainFeatures({ labelOfVoxel: Int32Array.of(0, 0, 1, 1, -1), regions: 2 });
    expect(Array.from(f.extract(Float64Array.of(NaN, NaN, 2, 4, 100)))).toEqual([NaN, 3]);
  });

  it('rejects bad labels and wrong volume lengths with typed errors', () => {
    expect(() => new BrainFeatures({ labelOfVoxel: Int32Array.of(0, 2), regions: 2 })).toThrowError(SyncactError);
    expect(() => new BrainFeatures({ weights: [new Float32Array(3), new Float32Array(4)] })).toThrowError(/map 1 has 4 voxels/);
    expect(() => new BrainFeatures({ labelOfVoxel: labels, regions: R }).extract(new Float32Array(3))).toThrowError(/expected 500/);
  });
});
