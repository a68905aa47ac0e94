/**
 * Per-unit synchronized maps: for EVERY mapped unit u on its own, the mass-univariate GLM
 *     y_v = β_uv·x_u + N·γ_uv + ε      (every voxel v)
 * where N is the nuisance design (intercept, drift, confounds: the per-TR design extras),
 * updated one TR at a time. This is Sync-ACT's "synchronized activation" of a unit: its
 * own brain map, not its column in a joint design with other units (glm.ts).
 *
 * With M = I − N(NᵀN)⁻¹Nᵀ the nuisance residual-maker over the TRs so far:
 *     β_uv = x_uᵀM y_v / x_uᵀM x_u,    RSS_uv = y_vᵀM y_v − (x_uᵀM y_v)² / x_uᵀM x_u,
 *     t_uv = x_uᵀM y_v / √(x_uᵀM x_u · RSS_uv / df),   df = T − r − 1,
 * r the nuisance columns in the fit. All three quadratic forms come from running sums:
 * - the nuisance is kept as the QR of N (Givens row updates, glmDense.ts), and every voxel
 *   and every unit is rotated with the same rotations (the GLM's per-voxel kernel,
 *   glmBlock.ts, for the voxels): z_v = Qᵀy_v, c_u = Qᵀx_u and the rotated-out residual
 *   sums give y_vᵀMy_v and x_uᵀMx_u stably (no normal matrix);
 * - a = Σ_t x_u y_v, one float64 per (unit, voxel): x_uᵀMy_v = a_uv − c_u·z_v.
 * O(U·V) per TR (the a update), plus O(P·(U + V)) for the rotations.
 *
 * Why a is folded every `foldEvery` TRs: updated every TR, a (U·V float64, 457 MB for 141
 * units × 403,192 voxels) is read and written whole per TR, so the update runs at memory
 * speed (369 ms per TR measured in the hcp7t pipeline on 2 busy cores). Instead the last m
 * TRs' x′ and y′ are kept (m·(U + V) values) and added to a every m TRs in voxel blocks that
 * stay in cache, so a travels to memory once per m TRs; read-outs add the pending TRs'
 * products on the fly (O(m·V) per map). The fold happens at fixed TR counts (multiples of
 * m) and snapshots carry the pending TRs, so results do not depend on when snapshots,
 * seeks or resumes happen.
 *
 * Cancellation: raw BOLD sits near 10³ and a unit response may have a large mean, so a
 * and c·z would be large numbers whose difference is the answer. Every series is
 * therefore referenced to its first TR (y′ = y − y₀, x′ = x − x₀): the intercept is in N,
 * so M·1 = 0 and M·y′ = M·y exactly, while a, z and c stay the size of the signal and the
 * drift. (y′ is rounded to float32, as the volume was: a change below the input's own
 * precision, and the same y′ feeds a and z so the algebra is exact on it.)
 *
 * The intercept: `interceptColumn` names the extras column that is the constant (the
 * engine's drift row ends with it); it is moved first in N so that it is in the fit from
 * the first TR, whatever the other columns do. Without it, the estimator adds its own.
 *
 * Early TRs: as in glm.ts, only the leading r columns of N (in the order intercept, then
 * the other extras) that each keep more than `rankTolerance` of their energy outside the
 * span of the earlier ones are in the fit; the maps are that restricted model's (slow
 * drift columns join as the run grows; r = P once every column is identifiable).
 *
 * Undefined read-outs are NaN and never throw: before the second TR; β where the unit has
 * no energy outside the nuisance span (x_uᵀMx_u ≤ rankTolerance·Σx′², e.g. a constant
 * unit); t where df ≤ 0 or the voxel is fit exactly (RSS ≤ 1e-13·Σy′², e.g. a constant
 * voxel); everything of a voxel that has seen a NaN or ±Infinity sample (it is retired
 * from then on, as in glm.ts). A non-finite unit response or extra, a constant column
 * that is not constant, or wrong lengths are wiring bugs: ENGINE_BAD_INPUT before any
 * state changes.
 *
 * No forgetting: these are whole-run maps (λ = 1, ordinary least squares).
 *
 * Memory: U·V float64 for a (29 MB for the demo's 141 units × 25,760 voxels; 418 MB for
 * 141 units × 370,000 voxels), P·V + 3·V float64 for the voxels' QR state.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';
import { EXACT_FIT, RANK_TOLERANCE, identifiableColumns, qrRowUpdate } from './glmDense.ts';
import { GlmCommand, createGlmState, runGlmBlock, setRotations, type GlmArrays } from './glmBlock.ts';

export interface UnitMapsOptions {
  /** V: voxels per volume (masked). */
  voxels: number;
  /** U: mapped units; update() takes their U responses. */
  units: number;
  /** Width of the per-TR nuisance row (the design extras: drift, its constant, confounds). */
  extras: number;
  /**
   * Index among the extras of the constant column (every TR the same nonzero value).
   * Omitted: the estimator adds its own intercept.
   */
  interceptColumn?: number;
  /** As GlmOptions.rankTolerance (default RANK_TOLERANCE = 1e-10). */
  rankTolerance?: number;
  /** m: TRs buffered before they are folded into the cross-products (see the file comment); default 8. */
  foldEvery?: number;
}

/** Voxels per cache block of the fold: 1024 float64 of a per unit, m·1024 float32 of y′. */
const FOLD_BLOCK = 1024;

const SNAPSHOT_KIND = 'unit-maps';
const SNAPSHOT_VERSION = 1;

function badInput(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', `UnitMaps: ${message}`);
}

export class UnitMaps implements Estimator {
  readonly voxels: number;
  readonly units: number;
  readonly extras: number;
  readonly interceptColumn: number | null;
  readonly rankTolerance: number;
  /** P: nuisance columns in the QR (intercept first, then the other extras). */
  readonly nuisance: number;

  private trs = 0;
  /** R of the nuisance design (P×P upper triangular, row-major). */
  private readonly factor: Float64Array;
  /** Σ n_j² per nuisance column, for the identifiability test. */
  private readonly energy: Float64Array;
  /** Identifiable leading nuisance columns after the last update. */
  private rank = 0;
  /** The first TR: x₀ (U) and y₀ (V, float32 as the volumes), the references. */
  private readonly unitRef: Float64Array;
  private readonly voxelRef: Float32Array;
  /** The constant column's value (NaN before the first TR). */
  private interceptValue = NaN;
  /** Per unit: c_u = Qᵀx′ (U×P, unit-major), rotated-out Σ residual² and Σx′². */
  private readonly unitZ: Float64Array;
  private readonly unitRss: Float64Array;
  private readonly unitSxx: Float64Array;
  /** Per voxel: z = Qᵀy′, RSS, Σy′², retired flag; the GLM's kernel state (λ = 1). */
  private readonly voxelState: GlmArrays;
  private readonly params: Float64Array;
  /** a_uv = Σ x′_u y′_v over the folded TRs, unit-major (unit u's V values at [u·V, (u+1)·V)). */
  private readonly cross: Float64Array;
  readonly foldEvery: number;
  /** The TRs not yet folded into `cross`: their x′ (m×U) and y′ (m×V, float32 as rounded). */
  private readonly pendingX: Float64Array;
  private readonly pendingY: Float32Array;
  private pending = 0;
  // Per-TR scratch.
  private readonly row: Float64Array;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly work: Float64Array;
  private readonly xRef: Float64Array;

  constructor(options: UnitMapsOptions) {
    const { voxels, units, extras } = options;
    if (!Number.isInteger(voxels) || voxels < 1) throw badInput(`voxels must be a positive integer, got ${voxels}`);
    if (!Number.isInteger(units) || units < 1) throw badInput(`units must be a positive integer, got ${units}`);
    if (!Number.isInteger(extras) || extras < 0) throw badInput(`extras must be a non-negative integer, got ${extras}`);
    const ic = options.interceptColumn;
    if (ic !== undefined && !(Number.isInteger(ic) && ic >= 0 && ic < extras)) {
      throw badInput(`interceptColumn ${ic} is not an extras column in [0, ${extras})`);
    }
    const rankTolerance = options.rankTolerance ?? RANK_TOLERANCE;
    if (!(rankTolerance > 0 && rankTolerance < 1)) throw badInput(`rankTolerance must be in (0, 1), got ${rankTolerance}`);
    const foldEvery = options.foldEvery ?? 8;
    if (!Number.isInteger(foldEvery) || foldEvery < 1) throw badInput(`foldEvery must be a positive integer, got ${foldEvery}`);
    this.foldEvery = foldEvery;
    this.pendingX = new Float64Array(foldEvery * units);
    this.pendingY = new Float32Array(foldEvery * voxels);
    this.voxels = voxels;
    this.units = units;
    this.extras = extras;
    this.interceptColumn = ic ?? null;
    this.rankTolerance = rankTolerance;
    const p = ic === undefined ? extras + 1 : extras;
    this.nuisance = p;
    this.factor = new Float64Array(p * p);
    this.energy = new Float64Array(p);
    this.unitRef = new Float64Array(units);
    this.voxelRef = new Float32Array(voxels);
    this.unitZ = new Float64Array(units * p);
    this.unitRss = new Float64Array(units);
    this.unitSxx = new Float64Array(units);
    const state = createGlmState(voxels, p, false);
    this.voxelState = state.arrays;
    this.params = state.params;
    this.cross = new Float64Array(units * voxels);
    this.row = new Float64Array(p);
    this.cos = new Float64Array(p);
    this.sin = new Float64Array(p);
    this.work = new Float64Array(p);
    this.xRef = new Float64Array(units);
  }

  /** TRs seen. */
  get count(): number {
    return this.trs;
  }

  /** r: nuisance columns in the fit now (intercept first; all P once every one is identifiable). */
  get identifiableNuisance(): number {
    return this.rank;
  }

  /** Residual degrees of freedom of every unit's model, T − r − 1 (NaN where ≤ 0). */
  degreesOfFreedom(): number {
    const df = this.trs - this.rank - 1;
    return df > 0 ? df : NaN;
  }

  /**
   * Adds one TR: `x` the U mapped units' responses, `extras` the nuisance row, `y` the
   * masked volume (V; a non-finite value retires that voxel). None is modified.
   */
  update(x: Float64Array, extras: Float64Array, y: Float32Array): void {
    const { units: U, voxels: V, nuisance: p } = this;
    if (x.length !== U) throw badInput(`got ${x.length} unit responses, expected ${U}`);
    if (extras.length !== this.extras) throw badInput(`got ${extras.length} extras, expected ${this.extras}`);
    if (y.length !== V) throw badInput(`volume has ${y.length} voxels, expected ${V}`);
    for (let i = 0; i < U; i++) if (!Number.isFinite(x[i])) throw badInput(`unit response ${i} is ${x[i]} (responses must be finite)`);
    for (let j = 0; j < extras.length; j++) {
      if (!Number.isFinite(extras[j])) throw badInput(`extra ${j} is ${extras[j]} (the design must be finite)`);
    }
    const ic = this.interceptColumn;
    if (ic !== null) {
      const c = extras[ic];
      if (c === 0 || (this.trs > 0 && c !== this.interceptValue)) {
        throw badInput(`extras column ${ic} is ${c} at TR ${this.trs}, but it was named the constant (${this.interceptValue})`);
      }
    }

    // Nuisance row in QR order: the constant first, then the other extras in their order.
    const n = this.row;
    if (ic === null) {
      n[0] = 1;
      n.set(extras, 1);
    } else {
      n[0] = extras[ic];
      for (let j = 0, k = 1; j < extras.length; j++) if (j !== ic) n[k++] = extras[j];
    }
    if (this.trs === 0) {
      this.unitRef.set(x);
      this.voxelRef.set(y);
      this.interceptValue = n[0];
    }
    const xr = this.xRef;
    for (let i = 0; i < U; i++) xr[i] = x[i] - this.unitRef[i];
    // Rounded to float32 here; the same values feed z and the cross-products.
    const yState = this.voxelState.y;
    for (let v = 0; v < V; v++) yState[v] = y[v] - this.voxelRef[v];

    qrRowUpdate(this.factor, p, 1, n, this.cos, this.sin, this.work);
    setRotations(this.params, p, 1, this.cos, this.sin);
    runGlmBlock(GlmCommand.Rotate, this.voxelState, this.params, p, 0, V);
    this.rotateUnits(xr);
    for (let j = 0; j < p; j++) this.energy[j] += n[j] * n[j];
    this.rank = identifiableColumns(this.factor, this.energy, p, this.rankTolerance);

    this.pendingX.set(xr, this.pending * U);
    this.pendingY.set(yState, this.pending * V);
    this.pending++;
    if (this.pending === this.foldEvery) this.fold();
    this.trs++;
  }

  /**
   * β map of mapped unit `unit` (its index among the U), one value per voxel, NaN where
   * undefined. Float32 unless `out` is a Float64Array (the full precision, for tests).
   */
  betas(unit: number): Float32Array;
  betas<A extends Float32Array | Float64Array>(unit: number, out: A): A;
  betas(unit: number, out?: Float32Array | Float64Array): Float32Array | Float64Array {
    return this.readout(unit, 'beta', out ?? new Float32Array(this.voxels));
  }

  /** t map of mapped unit `unit`, NaN where undefined (see the file comment); `out` as for betas(). */
  tmap(unit: number): Float32Array;
  tmap<A extends Float32Array | Float64Array>(unit: number, out: A): A;
  tmap(unit: number, out?: Float32Array | Float64Array): Float32Array | Float64Array {
    return this.readout(unit, 't', out ?? new Float32Array(this.voxels));
  }

  snapshot(): EstimatorSnapshot {
    const s = this.voxelState;
    return {
      kind: SNAPSHOT_KIND,
      version: SNAPSHOT_VERSION,
      scalars: {
        voxels: this.voxels,
        units: this.units,
        extras: this.extras,
        interceptColumn: this.interceptColumn ?? -1,
        rankTolerance: this.rankTolerance,
        count: this.trs,
        interceptValue: this.interceptValue,
        foldEvery: this.foldEvery,
        pending: this.pending,
      },
      arrays: {
        factor: this.factor.slice(),
        energy: this.energy.slice(),
        unitRef: this.unitRef.slice(),
        voxelRef: this.voxelRef.slice(),
        unitZ: this.unitZ.slice(),
        unitRss: this.unitRss.slice(),
        unitSxx: this.unitSxx.slice(),
        z: s.z.slice(),
        rss: s.rss.slice(),
        syy: s.syy.slice(),
        invalid: s.invalid.slice(),
        // Before the first fold the cross-products are all 0: not stored (the pipeline keeps
        // a TR-0 snapshot for loops and seeks, and at 141 × 403,192 they are 457 MB).
        cross: this.trs > this.pending ? this.cross.slice() : new Float64Array(0),
        pendingX: this.pendingX.slice(0, this.pending * this.units),
        pendingY: this.pendingY.slice(0, this.pending * this.voxels),
      },
    };
  }

  restore(snap: EstimatorSnapshot): void {
    const mismatch = (why: string) => new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `UnitMaps.restore: ${why}`);
    if (snap.kind !== SNAPSHOT_KIND) throw mismatch(`snapshot is of kind "${snap.kind}", expected "${SNAPSHOT_KIND}"`);
    if (snap.version !== SNAPSHOT_VERSION) throw mismatch(`snapshot version ${snap.version}, expected ${SNAPSHOT_VERSION}`);
    const sc = snap.scalars;
    if (
      sc.voxels !== this.voxels ||
      sc.units !== this.units ||
      sc.extras !== this.extras ||
      sc.interceptColumn !== (this.interceptColumn ?? -1) ||
      sc.rankTolerance !== this.rankTolerance ||
      sc.foldEvery !== this.foldEvery
    ) {
      throw mismatch(
        `snapshot is for ${sc.voxels} voxels, ${sc.units} units, ${sc.extras} extras, intercept column ${sc.interceptColumn}, ` +
          `rank tolerance ${sc.rankTolerance}, fold every ${sc.foldEvery}; this estimator has ${this.voxels}, ${this.units}, ` +
          `${this.extras}, ${this.interceptColumn ?? -1}, ${this.rankTolerance}, ${this.foldEvery}`,
      );
    }
    if (!Number.isInteger(sc.count) || sc.count < 0) throw mismatch(`snapshot has count ${sc.count}`);
    if (!Number.isInteger(sc.pending) || sc.pending < 0 || sc.pending >= this.foldEvery) throw mismatch(`snapshot has ${sc.pending} pending TRs`);
    const { voxels: V, units: U, nuisance: p } = this;
    const arr = snap.arrays;
    const expect = <T>(name: string, ctor: new (n: number) => T, length: number): T => {
      const a = arr[name];
      if (!(a instanceof (ctor as unknown as Function)) || a.length !== length) {
        throw mismatch(`array "${name}" is missing or has the wrong type or length`);
      }
      return a as T;
    };
    const parts = {
      factor: expect('factor', Float64Array, p * p),
      energy: expect('energy', Float64Array, p),
      unitRef: expect('unitRef', Float64Array, U),
      voxelRef: expect('voxelRef', Float32Array, V),
      unitZ: expect('unitZ', Float64Array, U * p),
      unitRss: expect('unitRss', Float64Array, U),
      unitSxx: expect('unitSxx', Float64Array, U),
      z: expect('z', Float64Array, V * p),
      rss: expect('rss', Float64Array, V),
      syy: expect('syy', Float64Array, V),
      invalid: expect('invalid', Uint8Array, V),
      cross: expect('cross', Float64Array, sc.count > sc.pending ? U * V : 0),
      pendingX: expect('pendingX', Float64Array, sc.pending * U),
      pendingY: expect('pendingY', Float32Array, sc.pending * V),
    };
    this.factor.set(parts.factor);
    this.energy.set(parts.energy);
    this.unitRef.set(parts.unitRef);
    this.voxelRef.set(parts.voxelRef);
    this.unitZ.set(parts.unitZ);
    this.unitRss.set(parts.unitRss);
    this.unitSxx.set(parts.unitSxx);
    const s = this.voxelState;
    s.z.set(parts.z);
    s.rss.set(parts.rss);
    s.syy.set(parts.syy);
    s.invalid.set(parts.invalid);
    if (parts.cross.length > 0) this.cross.set(parts.cross);
    else this.cross.fill(0);
    this.pendingX.set(parts.pendingX);
    this.pendingY.set(parts.pendingY);
    this.pending = sc.pending;
    this.trs = sc.count;
    this.interceptValue = sc.interceptValue;
    this.rank = identifiableColumns(this.factor, this.energy, p, this.rankTolerance);
  }

  /**
   * Adds the m pending TRs to a, voxel block by voxel block: a block of every unit's row
   * and of the m pending volumes stays in cache while it is worked on, so a crosses the
   * memory bus once per fold. Four pending TRs per pass cut the passes over the block.
   */
  private fold(): void {
    const { units: U, voxels: V } = this;
    const m = this.pending;
    const a = this.cross;
    const px = this.pendingX;
    const py = this.pendingY;
    for (let v0 = 0; v0 < V; v0 += FOLD_BLOCK) {
      const v1 = Math.min(V, v0 + FOLD_BLOCK);
      for (let u = 0; u < U; u++) {
        const base = u * V;
        let q = 0;
        for (; q + 3 < m; q += 4) {
          const x0 = px[q * U + u];
          const x1 = px[(q + 1) * U + u];
          const x2 = px[(q + 2) * U + u];
          const x3 = px[(q + 3) * U + u];
          const y0 = q * V;
          const y1 = y0 + V;
          const y2 = y1 + V;
          const y3 = y2 + V;
          for (let v = v0; v < v1; v++) a[base + v] += x0 * py[y0 + v] + x1 * py[y1 + v] + (x2 * py[y2 + v] + x3 * py[y3 + v]);
        }
        for (; q + 1 < m; q += 2) {
          const x0 = px[q * U + u];
          const x1 = px[(q + 1) * U + u];
          const y0 = q * V;
          const y1 = y0 + V;
          for (let v = v0; v < v1; v++) a[base + v] += x0 * py[y0 + v] + x1 * py[y1 + v];
        }
        if (q < m) {
          const x0 = px[q * U + u];
          const y0 = q * V;
          for (let v = v0; v < v1; v++) a[base + v] += x0 * py[y0 + v];
        }
      }
    }
    this.pending = 0;
  }

  /** The same Givens rotations as the voxels', on each unit's (c_u, x′_u): c = Qᵀx′. */
  private rotateUnits(xr: Float64Array): void {
    const p = this.nuisance;
    const { cos, sin, unitZ, unitRss, unitSxx } = this;
    for (let u = 0; u < this.units; u++) {
      let w = xr[u];
      unitSxx[u] += w * w;
      const base = u * p;
      for (let i = 0; i < p; i++) {
        const zi = unitZ[base + i];
        unitZ[base + i] = cos[i] * zi + sin[i] * w;
        w = cos[i] * w - sin[i] * zi;
      }
      unitRss[u] += w * w;
    }
  }

  private readout<A extends Float32Array | Float64Array>(unit: number, kind: 'beta' | 't', o: A): A {
    if (!Number.isInteger(unit) || unit < 0 || unit >= this.units) throw badInput(`unit ${unit} is not in [0, ${this.units})`);
    const V = this.voxels;
    if (o.length !== V) throw badInput(`output has ${o.length} values, expected ${V}`);
    const p = this.nuisance;
    const r = this.rank;
    if (r === 0 || this.trs < 2) return nanFilled(o);
    // x′ᵀMx′ for the model with the leading r nuisance columns: the rotated-out residual
    // plus the parts along the columns not (yet) in the fit.
    const c = this.unitZ.subarray(unit * p, (unit + 1) * p);
    let sxx = this.unitRss[unit];
    for (let i = r; i < p; i++) sxx += c[i] * c[i];
    if (!(sxx > this.rankTolerance * this.unitSxx[unit])) return nanFilled(o);
    const df = this.degreesOfFreedom();
    if (kind === 't' && !(df > 0)) return nanFilled(o);
    const { z, rss, syy, invalid } = this.voxelState;
    // a_uv of the TRs so far: the folded sums plus the pending TRs' products.
    const a = this.cross.slice(unit * V, (unit + 1) * V);
    for (let q = 0; q < this.pending; q++) {
      const xq = this.pendingX[q * this.units + unit];
      const yq = this.pendingY.subarray(q * V, (q + 1) * V);
      for (let v = 0; v < V; v++) a[v] += xq * yq[v];
    }
    for (let v = 0; v < V; v++) {
      if (invalid[v]) {
        o[v] = NaN;
        continue;
      }
      const zb = v * p;
      let proj = 0;
      for (let i = 0; i < r; i++) proj += c[i] * z[zb + i];
      const sxy = a[v] - proj;
      if (kind === 'beta') {
        o[v] = sxy / sxx;
        continue;
      }
      let syyM = rss[v];
      for (let i = r; i < p; i++) syyM += z[zb + i] * z[zb + i];
      const res = syyM - (sxy * sxy) / sxx;
      o[v] = !(res > EXACT_FIT * syy[v]) ? NaN : sxy / Math.sqrt((sxx * res) / df);
    }
    return o;
  }
}

function nanFilled<A extends Float32Array | Float64Array>(o: A): A {
  o.fill(NaN);
  return o;
}
