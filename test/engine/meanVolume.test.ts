import { describe, expect, it } from 'vitest';
import { MeanVolume } from '../../server/engine/meanVolume.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

describe('MeanVolume', () => {
  const voxels = 50;
  const rng = createRng(3);
  const volumes = Array.from({ length: 17 }, () => Float32Array.from({ length: voxels }, () => 100 + 10 * rng.normal()));

  it('incremental mean equals the batch mean', () => {
    const acc = new MeanVolume(voxels);
    for (const v of volumes) acc.update(v);
    expect(acc.count).toBe(17);
    const mean = acc.mean();
    for (let p = 0; p < voxels; p++) {
      let s = 0;
      for (const v of volumes) s += v[p];
      expect(Math.abs(mean[p] - s / 17)).toBeLessThan(1e-10);
    }
  });

  it('snapshot/restore resumes to the same answer', () => {
    const a = new MeanVolume(voxels);
    volumes.slice(0, 9).forEach((v) => a.update(v));
    const snap = a.snapshot();
    volumes.slice(9).forEach((v) => a.update(v));
    const b = new MeanVolume(voxels);
    b.restore(snap);
    expect(b.count).toBe(9);
    volumes.slice(9).forEach((v) => b.update(v));
    expect(Array.from(b.mean())).toEqual(Array.from(a.mean()));
    expect(() => new MeanVolume(voxels + 1).restore(snap)).toThrow(expect.objectContaining({ code: 'ENGINE_SNAPSHOT_MISMATCH' }));
    expect(() => b.restore({ ...snap, kind: 'glm' })).toThrow(SyncactError);
  });

  it('errors: no volume yet, wrong length', () => {
    const acc = new MeanVolume(voxels);
    expect(() => acc.mean()).toThrow(expect.objectContaining({ code: 'ENGINE_NOT_FITTED' }));
    expect(() => acc.update(new Float32Array(3))).toThrow(expect.objectContaining({ code: 'ENGINE_BAD_INPUT' }));
  });
});
