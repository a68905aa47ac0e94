/**
 * Brain features of one volume: the weighted mean of the masked voxels in each region
 * (parcel or network), feature_r = Σ_v w_rv·y_v / Σ_v w_rv over the voxels where y is not NaN.
 *
 * Three layouts, same answer:
 * - probabilistic or soft maps (`weights`, one array over the masked voxels per region):
 *   stored sparsely (index + weight of the non-zero voxels), because 400 dense maps over
 *   200 k voxels would be 320 MB while each parcel covers a few hundred voxels;
 * - the same maps already sparse (`sparse`: positions and weights per region, as an atlas
 *   keeps them, server/io/atlas.ts), taken without a dense copy;
 * - label atlases (`labelOfVoxel`, one region index per masked voxel, −1 for none): one pass over
 *   V with a running sum and count per region, the fast path for hard parcellations.
 * A region whose usable weight sums to 0 (empty, or all its voxels NaN in this volume) gives
 * NaN, not an exception: a dropped-out parcel must not stop the replay.
 * Stateless across TRs, so there is nothing to snapshot.
 */
import { SyncactError } from '../errors.ts';

export type BrainFeaturesOptions =
  | {
      /** One map per region over the masked voxels (length V each); zeros are skipped. */
      weights: ArrayLike<number>[];
      normalize?: 'mean';
    }
  | {
      /** Per region, positions in the masked voxel vector and their weights (zero weights are skipped). */
      sparse: { voxels: ArrayLike<number>; values: ArrayLike<number> }[];
      /** Masked voxels per volume (V). */
      voxels: number;
      normalize?: 'mean';
    }
  | {
      /** Region index (0 … regions−1) of each masked voxel, −1 for voxels in no region. */
      labelOfVoxel: Int32Array;
      /** Number of regions. */
      regions: number;
      normalize?: 'mean';
    };

interface SparseMap {
  index: Int32Array;
  weight: Float64Array;
}

export class BrainFeatures {
  /** Number of masked voxels each volume must have. */
  readonly voxels: number;
  /** Number of features (regions) per volume. */
  readonly regions: number;
  private readonly maps: SparseMap[] | null = null;
  private readonly labels: Int32Array | null = null;
  private readonly sums: Float64Array;
  private readonly counts: Float64Array;

  constructor(options: BrainFeaturesOptions) {
    if ((options.normalize ?? 'mean') !== 'mean') {
      throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: unknown normalize ${String(options.normalize)}`);
    }
    if ('labelOfVoxel' in options) {
      const { labelOfVoxel: labels, regions } = options;
      if (!Number.isInteger(regions) || regions < 1) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: regions must be a positive integer, got ${regions}`);
      for (let v = 0; v < labels.length; v++) {
        const l = labels[v];
        if (l < -1 || l >= regions) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: voxel ${v} has label ${l}, outside −1 … ${regions - 1}`);
      }
      this.labels = labels;
      this.voxels = labels.length;
      this.regions = regions;
    } else if ('sparse' in options) {
      const { sparse, voxels: V } = options;
      if (sparse.length === 0) throw new SyncactError('ENGINE_BAD_INPUT', 'brainFeatures: needs at least one region map');
      if (!Number.isInteger(V) || V < 1) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: voxels must be a positive integer, got ${V}`);
      this.maps = sparse.map(({ voxels: at, values }, r) => {
        if (at.length !== values.length) {
          throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: map ${r} lists ${at.length} voxels but ${values.length} weights`);
        }
        const keep: number[] = [];
        for (let i = 0; i < at.length; i++) {
          if (!Number.isInteger(at[i]) || at[i] < 0 || at[i] >= V) {
            throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: map ${r} lists voxel ${at[i]}, outside 0 … ${V - 1}`);
          }
          if (!Number.isFinite(values[i])) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: map ${r} has a non-finite weight at voxel ${at[i]}`);
          if (values[i] !== 0) keep.push(i);
        }
        return { index: Int32Array.from(keep, (i) => at[i]), weight: Float64Array.from(keep, (i) => values[i]) };
      });
      this.voxels = V;
      this.regions = sparse.length;
    } else {
      const { weights } = options;
      if (weights.length === 0) throw new SyncactError('ENGINE_BAD_INPUT', 'brainFeatures: needs at least one region map');
      const V = weights[0].length;
      this.maps = weights.map((w, r) => {
        if (w.length !== V) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: map ${r} has ${w.length} voxels, map 0 has ${V}`);
        let nz = 0;
        for (let v = 0; v < V; v++) {
          if (!Number.isFinite(w[v])) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: map ${r} has a non-finite weight at voxel ${v}`);
          if (w[v] !== 0) nz++;
        }
        const index = new Int32Array(nz);
        const weight = new Float64Array(nz);
        for (let v = 0, i = 0; v < V; v++) {
          if (w[v] !== 0) {
            index[i] = v;
            weight[i++] = w[v];
          }
        }
        return { index, weight };
      });
      this.voxels = V;
      this.regions = weights.length;
    }
    this.sums = new Float64Array(this.regions);
    this.counts = new Float64Array(this.regions);
  }

  /**
   * Features of one volume.
   * @param y masked voxel values (length `voxels`)
   * @param out optional output of length `regions`
   */
  extract(y: Float32Array | Float64Array, out?: Float64Array): Float64Array {
    if (y.length !== this.voxels) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: volume has ${y.length} voxels, expected ${this.voxels}`);
    const R = this.regions;
    const res = out ?? new Float64Array(R);
    if (res.length !== R) throw new SyncactError('ENGINE_BAD_INPUT', `brainFeatures: output has length ${res.length}, expected ${R}`);
    if (this.labels) {
      const { labels, sums, counts } = this;
      sums.fill(0);
      counts.fill(0);
      for (let v = 0; v < labels.length; v++) {
        const l = labels[v];
        const val = y[v];
        if (l < 0 || val !== val) continue;
        sums[l] += val;
        counts[l]++;
      }
      for (let r = 0; r < R; r++) res[r] = counts[r] > 0 ? sums[r] / counts[r] : NaN;
      return res;
    }
    const maps = this.maps!;
    for (let r = 0; r < R; r++) {
      const { index, weight } = maps[r];
      let s = 0;
      let ws = 0;
      for (let i = 0; i < index.length; i++) {
        const val = y[index[i]];
        if (val !== val) continue;
        s += weight[i] * val;
        ws += weight[i];
      }
      res[r] = ws !== 0 ? s / ws : NaN;
    }
    return res;
  }
}
