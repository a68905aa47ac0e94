/**
 * The voxelwise mean of a stream of volumes, one volume per `update`, in bounded memory
 * (one float64 sum per voxel), so an automatic EPI mask can be computed from a run that
 * is never held whole. Summed in float64: for 1000 float32 volumes the mean agrees with
 * numpy's `mean(axis=-1)` to float32 precision.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';

const KIND = 'meanVolume';
const VERSION = 1;

export class MeanVolume implements Estimator {
  private sum: Float64Array;
  private n = 0;

  /** @param voxels values per volume (nx·ny·nz) */
  constructor(readonly voxels: number) {
    this.sum = new Float64Array(voxels);
  }

  /** Volumes seen so far. */
  get count(): number {
    return this.n;
  }

  /** Adds one volume (x fastest). The array is not kept. */
  update(volume: ArrayLike<number>): void {
    if (volume.length !== this.voxels) {
      throw new SyncactError('ENGINE_BAD_INPUT', `volume has ${volume.length} values, expected ${this.voxels}`);
    }
    const s = this.sum;
    for (let p = 0; p < s.length; p++) s[p] += volume[p];
    this.n++;
  }

  /** The mean so far; ENGINE_NOT_FITTED before the first volume. */
  mean(out: Float64Array = new Float64Array(this.voxels)): Float64Array {
    if (this.n === 0) throw new SyncactError('ENGINE_NOT_FITTED', 'mean of zero volumes');
    const inv = 1 / this.n;
    for (let p = 0; p < out.length; p++) out[p] = this.sum[p] * inv;
    return out;
  }

  snapshot(): EstimatorSnapshot {
    return { kind: KIND, version: VERSION, scalars: { count: this.n, voxels: this.voxels }, arrays: { sum: this.sum.slice() } };
  }

  restore(snapshot: EstimatorSnapshot): void {
    if (snapshot.kind !== KIND || snapshot.version !== VERSION) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `cannot restore a ${snapshot.kind} v${snapshot.version} snapshot into ${KIND} v${VERSION}`);
    }
    const sum = snapshot.arrays.sum;
    if (!(sum instanceof Float64Array) || sum.length !== this.voxels || snapshot.scalars.voxels !== this.voxels) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `snapshot is for ${snapshot.scalars.voxels} voxels, expected ${this.voxels}`);
    }
    this.sum = sum.slice();
    this.n = snapshot.scalars.count;
  }
}
