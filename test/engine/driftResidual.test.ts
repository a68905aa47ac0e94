import { describe, expect, it } from 'vitest';
import { Matrix, solve } from 'ml-matrix';
import { DriftResidual } from '../../server/engine/driftResidual.ts';
import { dctRow } from '../../server/engine/drift.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

const V = 40;
const T = 50;
const E = dctRow(0, T, 1, 1 / 32).length; // 3 cosines + the constant

function makeData(seed: number): { rows: Float64Array[]; volumes: Float32Array[] } {
  const rng = createRng(seed);
  const rows = Array.from({ length: T }, (_, k) => dctRow(k, T, 1, 1 / 32));
  const coef = Array.from({ length: V }, () => Array.from({ length: E }, () => 5 * rng.normal()));
  const volumes = rows.map((x) => {
    const y = new Float32Array(V);
    for (let v = 0; v < V; v++) {
      let s = 100 + rng.normal();
      for (let a = 0; a < E; a++) s += coef[v][a] * x[a];
      y[v] = s;
    }
    return y;
  });
  return { rows, volumes };
}

/**
 * Batch twin: each voxel's series 0..k regressed on the rows 0..k by QR (ml-matrix) with
 * the estimator's ridge ε = 1e-10·tr(X'X) as √ε·I rows appended (the ridge only matters
 * while the early cosines are nearly collinear), residual at TR k.
 */
function batchResidual(rows: Float64Array[], volumes: Float32Array[], k: number): Float64Array {
  let trace = 0;
  for (const r of rows.slice(0, k + 1)) for (const x of r) trace += x * x;
  const root = Math.sqrt(1e-10 * trace);
  const ridgeRows = Array.from({ length: E }, (_, a) => Array.from({ length: E }, (_, b) => (a === b ? root : 0)));
  const X = new Matrix([...rows.slice(0, k + 1).map((r) => Array.from(r)), ...ridgeRows]);
  const Y = new Matrix([...volumes.slice(0, k + 1).map((y) => Array.from(y)), ...ridgeRows.map(() => new Array<number>(V).fill(0))]);
  const B = solve(X, Y);
  const fit = new Matrix([Array.from(rows[k])]).mmul(B);
  return Float64Array.from(volumes[k], (y, v) => y - fit.get(0, v));
}

describe('DriftResidual', () => {
  const { rows, volumes } = makeData(3);

  it('equals the batch least-squares residual on the TRs so far, and is NaN until the fit has a degree of freedom', () => {
    const d = new DriftResidual({ voxels: V, regressors: E });
    const out = new Float64Array(V);
    for (let k = 0; k < T; k++) {
      d.update(rows[k], volumes[k], out);
      if (k < E) {
        expect(Array.from(out).every(Number.isNaN)).toBe(true);
        continue;
      }
      const ref = batchResidual(rows, volumes, k);
      // float64 engine code, relative to the data's scale (~100).
      for (let v = 0; v < V; v++) expect(Math.abs(out[v] - ref[v])).toBeLessThan(1e-8 * 100);
    }
    // The drift is gone: the last residuals are the unit noise, not the ±5 drift.
    expect(Math.max(...Array.from(out, Math.abs))).toBeLessThan(5);
  });

  it('a snapshot restored mid-stream continues exactly as an uninterrupted run', () => {
    const whole = new DriftResidual({ voxels: V, regressors: E });
    const a = new Float64Array(V);
    for (let k = 0; k < T; k++) whole.update(rows[k], volumes[k], a);
    const first = new DriftResidual({ voxels: V, regressors: E });
    const b = new Float64Array(V);
    for (let k = 0; k < 20; k++) first.update(rows[k], volumes[k], b);
    const second = new DriftResidual({ voxels: V, regressors: E });
    second.restore(first.snapshot());
    for (let k = 20; k < T; k++) second.update(rows[k], volumes[k], b);
    expect(b).toEqual(a);
    expect(second.count).toBe(T);
  });

  it('a voxel that turns non-finite retires alone; a volume with no finite voxel is skipped', () => {
    const d = new DriftResidual({ voxels: V, regressors: E });
    const clean = new DriftResidual({ voxels: V, regressors: E });
    const out = new Float64Array(V);
    const ref = new Float64Array(V);
    for (let k = 0; k < T; k++) {
      const y = volumes[k].slice();
      if (k === 12) y[7] = NaN;
      if (k === 30) {
        d.update(rows[k], new Float32Array(V).fill(NaN), out);
        expect(Array.from(out).every(Number.isNaN)).toBe(true);
      }
      d.update(rows[k], y, out);
      clean.update(rows[k], volumes[k], ref);
    }
    expect(d.count).toBe(T);
    expect(out[7]).toBeNaN();
    for (let v = 0; v < V; v++) if (v !== 7) expect(out[v]).toBe(ref[v]);
  });

  it('rejects bad sizes, non-finite regressors and foreign snapshots with typed errors', () => {
    const d = new DriftResidual({ voxels: V, regressors: E });
    const out = new Float64Array(V);
    expect(() => new DriftResidual({ voxels: 0, regressors: E })).toThrowError(SyncactError);
    expect(() => d.update(new Float64Array(E + 1), volumes[0], out)).toThrowError(/regressors/);
    expect(() => d.update(Float64Array.from(rows[0], () => NaN), volumes[0], out)).toThrowError(/regressor 0 is NaN/);
    expect(() => d.update(rows[0], new Float32Array(V - 1), out)).toThrowError(/voxels/);
    const other = new DriftResidual({ voxels: V + 1, regressors: E });
    try {
      other.restore(d.snapshot());
      expect.unreachable();
    } catch (err) {
      expect((err as SyncactError).code).toBe('ENGINE_SNAPSHOT_MISMATCH');
    }
  });
});
