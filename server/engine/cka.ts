/**
 * Incremental linear CKA (Kornblith et al. 2019) between a layer's units X (T × p, one
 * p-vector per TR) and the brain features Y (T × q):
 *     CKA = ‖Xc′Yc‖²_F / (‖Xc′Xc‖_F · ‖Yc′Yc‖_F),   Xc, Yc column-centred,
 * which equals the HSIC form tr(KHLH)/sqrt(tr(KHKH)·tr(LHLH)) with K = XX′, L = YY′.
 *
 * State is the running means and the centred cross-products Cxx (p×p), Cyy (q×q), Cxy (p×q),
 * updated per TR by the co-moment recursion
 *     W ← λW + 1;  dx = x − x̄;  x̄ ← x̄ + dx/W;  (same for y)
 *     Cxy ← λ·Cxy + dx·(y − ȳ)′   (ȳ already updated)
 * rather than from raw sums Σxy′ − n·x̄ȳ′: unit activations and BOLD carry large offsets, and
 * the raw-sum difference would lose most of its digits to cancellation. The recursion is exact
 * (not an approximation) for λ = 1 and for exponential forgetting with weights λ^(age). Cost
 * O(pq + p²/2 + q²/2) per TR (only the upper triangles of Cxx and Cyy are kept current).
 *
 * Defined outputs: NaN before 2 samples, and NaN when either side has zero variance
 * (‖Cxx‖ = 0 or ‖Cyy‖ = 0), where CKA is 0/0. A TR whose x or y holds a NaN is skipped as a
 * whole (counted in `skipped`): the cross-products need complete pairs.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';

export interface IncrementalCkaOptions {
  /** Units per TR (columns of X). */
  p: number;
  /** Brain features per TR (columns of Y). */
  q: number;
  /** Forgetting factor λ in (0, 1]; 1 (default) weighs every TR equally. */
  forgetting?: number;
}

const KIND = 'cka';
const VERSION = 1;

export class IncrementalCka implements Estimator {
  readonly p: number;
  readonly q: number;
  readonly forgetting: number;
  private n = 0;
  private skippedTrs = 0;
  /** Sum of the sample weights (n when λ = 1). */
  private w = 0;
  private readonly mx: Float64Array;
  private readonly my: Float64Array;
  private readonly cxx: Float64Array;
  private readonly cyy: Float64Array;
  private readonly cxy: Float64Array;
  private readonly dx: Float64Array;
  private readonly dy: Float64Array;
  private readonly ey: Float64Array;
  private readonly ex: Float64Array;

  constructor(options: IncrementalCkaOptions) {
    const { p, q } = options;
    const lambda = options.forgetting ?? 1;
    if (!Number.isInteger(p) || p < 1 || !Number.isInteger(q) || q < 1) {
      throw new SyncactError('ENGINE_BAD_INPUT', `cka: p and q must be positive integers, got ${p} and ${q}`);
    }
    if (!(lambda > 0 && lambda <= 1)) throw new SyncactError('ENGINE_BAD_INPUT', `cka: forgetting must be in (0, 1], got ${lambda}`);
    this.p = p;
    this.q = q;
    this.forgetting = lambda;
    this.mx = new Float64Array(p);
    this.my = new Float64Array(q);
    this.cxx = new Float64Array(p * p);
    this.cyy = new Float64Array(q * q);
    this.cxy = new Float64Array(p * q);
    this.dx = new Float64Array(p);
    this.ex = new Float64Array(p);
    this.dy = new Float64Array(q);
    this.ey = new Float64Array(q);
  }

  /** TRs included so far. */
  get count(): number {
    return this.n;
  }

  /** TRs skipped because x or y held a NaN. */
  get skipped(): number {
    return this.skippedTrs;
  }

  /** Adds one TR: x the p unit responses, y the q brain features. */
  update(x: Float32Array | Float64Array, y: Float32Array | Float64Array): void {
    const { p, q } = this;
    if (x.length !== p || y.length !== q) {
      throw new SyncactError('ENGINE_BAD_INPUT', `cka: expected x of length ${p} and y of length ${q}, got ${x.length} and ${y.length}`);
    }
    if (hasNaN(x) || hasNaN(y)) {
      this.skippedTrs++;
      return;
    }
    const lambda = this.forgetting;
    this.w = lambda * this.w + 1;
    this.n++;
    const inv = 1 / this.w;
    const { mx, my, dx, dy, ex, ey, cxx, cyy, cxy } = this;
    for (let i = 0; i < p; i++) {
      dx[i] = x[i] - mx[i];
      mx[i] += dx[i] * inv;
      ex[i] = x[i] - mx[i];
    }
    for (let j = 0; j < q; j++) {
      dy[j] = y[j] - my[j];
      my[j] += dy[j] * inv;
      ey[j] = y[j] - my[j];
    }
    if (lambda !== 1) {
      this.decayUpper(cxx, p);
      this.decayUpper(cyy, q);
      for (let k = 0; k < cxy.length; k++) cxy[k] *= lambda;
    }
    for (let i = 0; i < p; i++) {
      const a = dx[i];
      let o = i * p;
      for (let j = i; j < p; j++) cxx[o + j] += a * ex[j];
      o = i * q;
      for (let j = 0; j < q; j++) cxy[o + j] += a * ey[j];
    }
    for (let i = 0; i < q; i++) {
      const a = dy[i];
      const o = i * q;
      for (let j = i; j < q; j++) cyy[o + j] += a * ey[j];
    }
  }

  /** The current linear CKA in [0, 1]; NaN when undefined (see the file comment). */
  value(): number {
    if (this.n < 2) return NaN;
    let hxy = 0;
    for (let k = 0; k < this.cxy.length; k++) hxy += this.cxy[k] * this.cxy[k];
    const nx = Math.sqrt(frobeniusUpper2(this.cxx, this.p));
    const ny = Math.sqrt(frobeniusUpper2(this.cyy, this.q));
    if (!(nx > 0) || !(ny > 0)) return NaN;
    return hxy / (nx * ny);
  }

  /**
   * The centred cross-product Xc′Yc (p × q, row-major; weighted when forgetting), e.g. to
   * show which unit–feature pairs drive the similarity. Copies.
   */
  crossProducts(out?: Float64Array): Float64Array {
    const res = out ?? new Float64Array(this.p * this.q);
    res.set(this.cxy);
    return res;
  }

  snapshot(): EstimatorSnapshot {
    return {
      kind: KIND,
      version: VERSION,
      scalars: { p: this.p, q: this.q, forgetting: this.forgetting, n: this.n, skipped: this.skippedTrs, w: this.w },
      arrays: {
        mx: Float64Array.from(this.mx),
        my: Float64Array.from(this.my),
        cxx: Float64Array.from(this.cxx),
        cyy: Float64Array.from(this.cyy),
        cxy: Float64Array.from(this.cxy),
      },
    };
  }

  restore(s: EstimatorSnapshot): void {
    if (s.kind !== KIND || s.version !== VERSION) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `cka: cannot restore a ${s.kind} v${s.version} snapshot`);
    }
    const { mx, my, cxx, cyy, cxy } = s.arrays;
    const sc = s.scalars;
    if (
      sc.p !== this.p ||
      sc.q !== this.q ||
      sc.forgetting !== this.forgetting ||
      mx?.length !== this.p ||
      my?.length !== this.q ||
      cxx?.length !== this.cxx.length ||
      cyy?.length !== this.cyy.length ||
      cxy?.length !== this.cxy.length
    ) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `cka: snapshot was taken with other sizes or forgetting than p=${this.p}, q=${this.q}, λ=${this.forgetting}`);
    }
    this.mx.set(mx);
    this.my.set(my);
    this.cxx.set(cxx);
    this.cyy.set(cyy);
    this.cxy.set(cxy);
    this.n = sc.n;
    this.skippedTrs = sc.skipped;
    this.w = sc.w;
  }

  private decayUpper(m: Float64Array, d: number): void {
    const lambda = this.forgetting;
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++) m[i * d + j] *= lambda;
  }
}

function hasNaN(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== a[i]) return true;
  return false;
}

/** ‖M‖²_F of a symmetric d×d matrix from its upper triangle. */
function frobeniusUpper2(m: Float64Array, d: number): number {
  let diag = 0;
  let off = 0;
  for (let i = 0; i < d; i++) {
    const o = i * d;
    diag += m[o + i] * m[o + i];
    for (let j = i + 1; j < d; j++) off += m[o + j] * m[o + j];
  }
  return diag + 2 * off;
}

/**
 * Batch linear CKA of row-major X (T × p) and Y (T × q) by two-pass centring: the twin the
 * tests compare the incremental estimator with. NaN when T < 2 or a side has no variance.
 */
export function batchLinearCka(x: ArrayLike<number>, y: ArrayLike<number>, T: number, p: number, q: number): number {
  if (x.length !== T * p || y.length !== T * q) throw new SyncactError('ENGINE_BAD_INPUT', `cka: X must be ${T}×${p} and Y ${T}×${q}`);
  if (T < 2) return NaN;
  const centred = (a: ArrayLike<number>, d: number): Float64Array => {
    const mean = new Float64Array(d);
    for (let t = 0; t < T; t++) for (let i = 0; i < d; i++) mean[i] += a[t * d + i] / T;
    const c = new Float64Array(T * d);
    for (let t = 0; t < T; t++) for (let i = 0; i < d; i++) c[t * d + i] = a[t * d + i] - mean[i];
    return c;
  };
  const xc = centred(x, p);
  const yc = centred(y, q);
  const cross2 = (a: Float64Array, da: number, b: Float64Array, db: number): number => {
    let s = 0;
    for (let i = 0; i < da; i++)
      for (let j = 0; j < db; j++) {
        let v = 0;
        for (let t = 0; t < T; t++) v += a[t * da + i] * b[t * db + j];
        s += v * v;
      }
    return s;
  };
  const nx = Math.sqrt(cross2(xc, p, xc, p));
  const ny = Math.sqrt(cross2(yc, q, yc, q));
  if (!(nx > 0) || !(ny > 0)) return NaN;
  return cross2(xc, p, yc, q) / (nx * ny);
}
