/**
 * Annotation of CNN units with template brain networks (DESIGN.md §4, "Annotation"):
 * each unit's synchronized map (its GLM t-map over the masked voxels) is compared with
 * every template network map, and the unit is labelled with the best one, with a score,
 * the Dice overlap of the top voxels and a null-based p-value.
 *
 * Score. The spatial Pearson r inside the mask (voxels where either map is NaN are left
 * out, pair by pair). The label is the template with the largest |r|, its sign is the
 * sign of that r and the score is |r|: a unit whose map is the negative of a network
 * (deactivated where the network is active) is as informative about that network as a
 * positive one, and a t-map's sign depends only on the sign of the regressor, so it is
 * labelled with the network and sign −1. The signed r of every template is in `scores`.
 *
 * Dice. The top `topFraction` (default 5%) of the unit's voxels, taken along the
 * label's sign, against the template's support when the template is a 0/1 mask, or
 * against its own top `topFraction` when it holds weights; only voxels finite in both.
 *
 * p-value. Voxels of a smooth map are not exchangeable, so permuting voxels gives nulls
 * far too narrow (p too small); spin tests need a sphere, which a volume does not have.
 * We use smoothness-matched Gaussian random fields (the random-field-theory model of a
 * smooth statistic map, and the volumetric form of the autocorrelation-preserving nulls of
 * Burt et al. 2020): white noise on the grid smoothed by a Gaussian of the map's FWHM,
 * estimated from neighbour differences (Forman et al. 1995: ρ₁ = 1 − var(Δ)/(2·var),
 * FWHM = √(−2 ln 2 / ln ρ₁), averaged over the axes), sampled at the map's finite
 * voxels. Each null map gets the same statistic as the unit, its best |r| over all
 * templates, so the p-value accounts for choosing the label:
 * p = (1 + #{null best ≥ score}) / (1 + nulls).
 * Block permutations on the grid were tried first and rejected: with blocks about one
 * FWHM wide, 45% of pure smooth-noise maps got p < 0.05 (the blocks break the large-scale
 * structure that makes smooth maps correlate with smooth templates by chance).
 * Without `grid` there is no spatial model, so p is NaN.
 *
 * That spatial null tests map structure, not coupling: any BOLD t-map is more network-like
 * than random smooth fields (a response correlates by chance with the strong, structured
 * network signals), so a pseudo-random unit got q ≤ 0.05 with it. Units with synchronized
 * maps of their own therefore use a TEMPORAL null instead ({@link annotateUnitsFrom} with
 * `temporalNulls`): the best scores of the maps of units' responses circularly shifted
 * over the run (coupling.ts, UnitMapNullOptions), pooled over the shifted columns:
 * p = (1 + #{null ≥ score}) / (1 + nulls) as above. Beyond the largest null that floor
 * 1/(S + 1) is replaced, only there, by the tail of a normal fitted to the Fisher z of the
 * null scores (see {@link temporalNullP}), so BH across many units can still reject.
 */
import { SyncactError } from '../errors.ts';
import { createRng } from './random.ts';
import { benjaminiHochberg } from './fdr.ts';

export interface AnnotationGrid {
  /** [nx, ny, nz] of the image grid the mask lives on. */
  dims: [number, number, number];
  /** Masked voxel → grid index x + nx·(y + ny·z) (NIfTI order, x fastest). */
  voxelIndex: Int32Array;
  /** Smoothness of the null fields as a FWHM in voxels; default: estimated from each map. */
  fwhm?: number;
}

export interface AnnotationOptions {
  /** Template network maps over the same masked voxels as the unit maps (weights or 0/1; NaN = outside). */
  templates: Float32Array[];
  /** One name per template. */
  names: string[];
  /** Fraction of voxels in the Dice "top" sets, in (0, 1); default 0.05. */
  topFraction?: number;
  /**
   * Null draws for the p-value; default 200, 0 for no p-value (NaN). p ≥ 1/(nulls + 1), so
   * for BH across many units use more (annotateUnits draws them once for all units).
   */
  nulls?: number;
  /** Seed of the null draws; default 0. */
  seed?: number;
  /** The image grid the masked voxels live on; needed for the null (p is NaN without it). */
  grid?: AnnotationGrid;
}

export interface UnitAnnotation {
  /** Name of the best template, or "none" when no template has a defined r (e.g. a constant map). */
  label: string;
  /** Index of the best template, −1 for "none". */
  index: number;
  /** Sign of the best template's r. */
  sign: 1 | -1;
  /** |r| of the best template (NaN for "none"). */
  score: number;
  /** Dice of the top voxels with the best template (NaN for "none"). */
  dice: number;
  /** Null p-value of the score (NaN for "none", without nulls or without a grid). */
  p: number;
  /** Signed spatial r per template (NaN where undefined). */
  scores: Float64Array;
}

const ZERO_VARIANCE = 1e-12;

function bad(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', message);
}

/**
 * Spatial Pearson r of two maps over the voxels finite in both; NaN when fewer than 3
 * such voxels or either map is (numerically) constant there.
 */
export function spatialCorrelation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n0 = a.length;
  // Accumulate relative to a reference value so large offsets do not cancel digits.
  let ra = NaN;
  let rb = NaN;
  let n = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (let v = 0; v < n0; v++) {
    const x = a[v];
    const y = b[v];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (n === 0) {
      ra = x;
      rb = y;
    }
    const dx = x - ra;
    const dy = y - rb;
    n++;
    sa += dx;
    sb += dy;
    saa += dx * dx;
    sbb += dy * dy;
    sab += dx * dy;
  }
  if (n < 3) return NaN;
  const ca = saa - (sa * sa) / n;
  const cb = sbb - (sb * sb) / n;
  if (!(ca > ZERO_VARIANCE * saa && cb > ZERO_VARIANCE * sbb && ca > 0 && cb > 0)) return NaN;
  const r = (sab - (sa * sb) / n) / Math.sqrt(ca * cb);
  return r > 1 ? 1 : r < -1 ? -1 : r;
}

/** Index and |r| of the template with the largest |r|, or −1 when none is defined. */
function best(scores: Float64Array): { index: number; score: number } {
  let index = -1;
  let score = NaN;
  for (let j = 0; j < scores.length; j++) {
    const s = Math.abs(scores[j]);
    if (s === s && (index < 0 || s > score)) {
      index = j;
      score = s;
    }
  }
  return { index, score };
}

/** The k-th largest value of `xs` (1-based), by quickselect; reorders `xs`. */
function kthLargest(xs: Float64Array, k: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = xs[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (xs[i] > pivot) i++;
      while (xs[j] < pivot) j--;
      if (i <= j) {
        const t = xs[i];
        xs[i] = xs[j];
        xs[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return xs[target];
  }
  return xs[target];
}

/** Voxels whose value (times `sign`) is in the top `fraction` of the usable ones (ties included). */
function topSet(map: ArrayLike<number>, sign: number, fraction: number, usable: Uint8Array): Uint8Array {
  const vals = new Float64Array(map.length);
  let n = 0;
  for (let v = 0; v < map.length; v++) if (usable[v]) vals[n++] = sign * map[v];
  const out = new Uint8Array(map.length);
  if (n === 0) return out;
  const threshold = kthLargest(vals.subarray(0, n), Math.max(1, Math.ceil(fraction * n)));
  for (let v = 0; v < map.length; v++) if (usable[v] && sign * map[v] >= threshold) out[v] = 1;
  return out;
}

function isBinary(t: Float32Array): boolean {
  for (let v = 0; v < t.length; v++) {
    const x = t[v];
    if (Number.isFinite(x) && x !== 0 && x !== 1) return false;
  }
  return true;
}

/** Dice overlap of the unit's top voxels with the template's support or top voxels. */
function dice(map: Float32Array, template: Float32Array, sign: number, fraction: number): number {
  const usable = new Uint8Array(map.length);
  for (let v = 0; v < map.length; v++) usable[v] = Number.isFinite(map[v]) && Number.isFinite(template[v]) ? 1 : 0;
  const a = topSet(map, sign, fraction, usable);
  let b: Uint8Array;
  if (isBinary(template)) {
    b = new Uint8Array(map.length);
    for (let v = 0; v < map.length; v++) b[v] = usable[v] && template[v] === 1 ? 1 : 0;
  } else {
    b = topSet(template, 1, fraction, usable);
  }
  let na = 0, nb = 0, both = 0;
  for (let v = 0; v < map.length; v++) {
    na += a[v];
    nb += b[v];
    both += a[v] & b[v];
  }
  return na + nb > 0 ? (2 * both) / (na + nb) : NaN;
}

/**
 * The map's smoothness as a FWHM in voxels, from neighbour differences along the three
 * axes (Forman et al. 1995); NaN when it cannot be estimated (fewer than 2 neighbour
 * pairs, constant map). Very rough maps give values below 1.
 */
export function estimateFwhmVoxels(map: ArrayLike<number>, grid: AnnotationGrid): number {
  const [nx, ny, nz] = grid.dims;
  const lookup = gridLookup(grid, map.length);
  let s = 0, ss = 0, n = 0;
  for (let v = 0; v < map.length; v++) {
    const x = map[v];
    if (!Number.isFinite(x)) continue;
    s += x;
    ss += x * x;
    n++;
  }
  if (n < 3) return NaN;
  const variance = (ss - (s * s) / n) / (n - 1);
  if (!(variance > 0)) return NaN;
  const strides = [1, nx, nx * ny];
  const sizes = [nx, ny, nz];
  let sum = 0;
  let axes = 0;
  for (let a = 0; a < 3; a++) {
    let d2 = 0, m = 0;
    for (let v = 0; v < map.length; v++) {
      const g = grid.voxelIndex[v];
      const coord = a === 0 ? g % nx : a === 1 ? Math.floor(g / nx) % ny : Math.floor(g / (nx * ny));
      if (coord + 1 >= sizes[a]) continue;
      const w = lookup[g + strides[a]];
      if (w < 0) continue;
      const x = map[v];
      const y = map[w];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      d2 += (x - y) * (x - y);
      m++;
    }
    if (m < 2) continue;
    const rho = 1 - d2 / m / (2 * variance);
    // ρ ≤ 0: rougher than white noise, no smoothness; ρ ≥ 1: flat along this axis.
    const fwhm = rho <= 0 ? 0 : rho >= 1 ? Math.min(...sizes) : Math.sqrt((-2 * Math.LN2) / Math.log(rho));
    sum += fwhm;
    axes++;
  }
  return axes > 0 ? sum / axes : NaN;
}

function gridLookup(grid: AnnotationGrid, voxels: number): Int32Array {
  const [nx, ny, nz] = grid.dims;
  const size = nx * ny * nz;
  const lookup = new Int32Array(size).fill(-1);
  for (let v = 0; v < voxels; v++) lookup[grid.voxelIndex[v]] = v;
  return lookup;
}

/**
 * Best scores (max over templates of |r|) of `count` Gaussian random fields of the given
 * FWHM (voxels), sampled at the voxels where `valid` is 1 (NaN elsewhere).
 * The noise is drawn on the mask's bounding box padded by 3σ, so every masked voxel sees
 * the whole kernel, and smoothed by three 1D passes of a truncated Gaussian (±3σ).
 */
export function nullBestScores(
  templates: Float32Array[],
  grid: AnnotationGrid,
  fwhm: number,
  valid: Uint8Array,
  count: number,
  seed: number,
): Float64Array {
  const [nx, ny, nz] = grid.dims;
  const V = valid.length;
  const sigma = Math.max(0, fwhm) / (2 * Math.sqrt(2 * Math.LN2));
  const R = sigma > 0.1 ? Math.ceil(3 * sigma) : 0;
  const kernel = new Float64Array(2 * R + 1);
  for (let i = 0; i <= 2 * R; i++) kernel[i] = R === 0 ? 1 : Math.exp(-((i - R) ** 2) / (2 * sigma * sigma));
  // Bounding box of the masked voxels, padded by R.
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  const coords = new Int32Array(3 * V);
  for (let v = 0; v < V; v++) {
    const g = grid.voxelIndex[v];
    const c = [g % nx, Math.floor(g / nx) % ny, Math.floor(g / (nx * ny))];
    for (let a = 0; a < 3; a++) {
      coords[3 * v + a] = c[a];
      lo[a] = Math.min(lo[a], c[a] - R);
      hi[a] = Math.max(hi[a], c[a] + R);
    }
  }
  const size = [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1];
  const boxLen = size[0] * size[1] * size[2];
  const strides = [1, size[0], size[0] * size[1]];
  const at = new Int32Array(V);
  for (let v = 0; v < V; v++) {
    at[v] = coords[3 * v] - lo[0] + strides[1] * (coords[3 * v + 1] - lo[1]) + strides[2] * (coords[3 * v + 2] - lo[2]);
  }
  const rng = createRng(seed);
  let a = new Float64Array(boxLen);
  let b = new Float64Array(boxLen);
  const field = new Float64Array(V);
  const scores = new Float64Array(templates.length);
  const out = new Float64Array(count);
  for (let s = 0; s < count; s++) {
    // Uniform white noise: after smoothing (and, for r, after summing over the mask) its
    // distribution is Gaussian by the central limit theorem, and a uniform costs a
    // fifth of a Box–Muller normal on the ~10⁶ voxels of a padded whole-brain box.
    for (let i = 0; i < boxLen; i++) a[i] = rng.uniform() - 0.5;
    if (R > 0) {
      // 1D passes along x, then y, over the whole box; the z pass only at the voxels read.
      for (let axis = 0; axis < 2; axis++) {
        const st = strides[axis];
        const n = size[axis];
        const lines = boxLen / n;
        for (let l = 0; l < lines; l++) {
          // Line start: the index with coordinate 0 along `axis`.
          const start = axis === 0 ? l * n : (l % size[0]) + Math.floor(l / size[0]) * size[0] * n;
          for (let c = 0; c < n; c++) {
            const from = c < R ? -c : -R;
            const to = c + R >= n ? n - 1 - c : R;
            const i = start + c * st;
            let acc = 0;
            for (let d = from; d <= to; d++) acc += kernel[d + R] * a[i + d * st];
            b[i] = acc;
          }
        }
        const t = a;
        a = b;
        b = t;
      }
      const st = strides[2];
      const n = size[2];
      for (let v = 0; v < V; v++) {
        if (!valid[v]) {
          field[v] = NaN;
          continue;
        }
        const i = at[v];
        const c = coords[3 * v + 2] - lo[2];
        const from = c < R ? -c : -R;
        const to = c + R >= n ? n - 1 - c : R;
        let acc = 0;
        for (let d = from; d <= to; d++) acc += kernel[d + R] * a[i + d * st];
        field[v] = acc;
      }
    } else {
      for (let v = 0; v < V; v++) field[v] = valid[v] ? a[at[v]] : NaN;
    }
    for (let j = 0; j < templates.length; j++) scores[j] = spatialCorrelation(field, templates[j]);
    out[s] = best(scores).score;
  }
  return out;
}

/**
 * Best scores (max over templates of |r|, the label's statistic) of `count` maps made one
 * at a time by `mapOf`: the temporal null of the unit annotation. NaN for a map with no
 * defined r (e.g. a constant null response).
 */
export function nullBestScoresFrom(count: number, mapOf: (j: number) => Float32Array, o: Pick<AnnotationOptions, 'templates'>): Float64Array {
  const out = new Float64Array(count);
  const scores = new Float64Array(o.templates.length);
  for (let j = 0; j < count; j++) {
    const m = mapOf(j);
    for (let k = 0; k < o.templates.length; k++) scores[k] = spatialCorrelation(m, o.templates[k]);
    out[j] = best(scores).score;
  }
  return out;
}

/** erfc(x), |relative error| < 1.2e-7 (Numerical Recipes' Chebyshev fit). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/**
 * The temporal-null p of a best score: (1 + #{null ≥ score}) / (1 + #defined nulls), and,
 * for a score above every null, the smaller of that floor and the upper tail of a normal
 * fitted to the nulls' Fisher z (atanh r) at the score's z. Why the tail only there: inside
 * the nulls' range the empirical p is exact under exchangeability, so a pure-noise unit's
 * p stays uniform; past the largest of S nulls it cannot go below 1/(S + 1), and with BH
 * across ~141 units a unit at that floor needs ~28 others with it to reach q ≤ 0.05
 * (S = 100). NaN when fewer than 2 nulls are defined or the score is NaN.
 */
export function temporalNullP(score: number, nulls: Float64Array): number {
  if (Number.isNaN(score)) return NaN;
  let exceed = 0, used = 0, s = 0, ss = 0;
  for (const x of nulls) {
    if (Number.isNaN(x)) continue;
    used++;
    if (x >= score) exceed++;
    const z = Math.atanh(Math.min(x, 1 - 1e-12));
    s += z;
    ss += z * z;
  }
  if (used < 2) return NaN;
  const floor = (1 + exceed) / (1 + used);
  if (exceed > 0) return floor;
  const mean = s / used;
  const sd = Math.sqrt(Math.max(0, (ss - s * s / used) / (used - 1)));
  if (!(sd > 0)) return floor;
  const z = (Math.atanh(Math.min(score, 1 - 1e-12)) - mean) / sd;
  return Math.min(floor, 0.5 * erfc(z / Math.SQRT2));
}

/** p = (1 + #{null ≥ score}) / (1 + #defined nulls); NaN when none is defined. */
function nullP(score: number, nulls: Float64Array): number {
  let exceed = 0;
  let used = 0;
  for (const x of nulls) {
    if (Number.isNaN(x)) continue;
    used++;
    if (x >= score) exceed++;
  }
  return used > 0 && !Number.isNaN(score) ? (1 + exceed) / (1 + used) : NaN;
}

function finiteMask(map: Float32Array): Uint8Array {
  return Uint8Array.from(map, (x) => (Number.isFinite(x) ? 1 : 0));
}

function validate(map: Float32Array, o: AnnotationOptions): void {
  if (o.templates.length === 0) throw bad('annotation: no template maps given');
  if (o.templates.length !== o.names.length) {
    throw bad(`annotation: ${o.templates.length} templates but ${o.names.length} names`);
  }
  o.templates.forEach((t, j) => {
    if (t.length !== map.length) {
      throw bad(`annotation: template '${o.names[j]}' has ${t.length} voxels, the unit map has ${map.length}`);
    }
  });
  const frac = o.topFraction ?? 0.05;
  if (!(frac > 0 && frac < 1)) throw bad(`annotation: topFraction must be in (0, 1), got ${frac}`);
  const nulls = o.nulls ?? 200;
  if (!Number.isInteger(nulls) || nulls < 0) throw bad(`annotation: nulls must be an integer ≥ 0, got ${nulls}`);
  if (o.grid) {
    const [nx, ny, nz] = o.grid.dims;
    if (![nx, ny, nz].every((d) => Number.isInteger(d) && d > 0)) throw bad(`annotation: bad grid dims ${o.grid.dims.join('×')}`);
    if (o.grid.voxelIndex.length !== map.length) {
      throw bad(`annotation: grid.voxelIndex has ${o.grid.voxelIndex.length} entries, the unit map has ${map.length} voxels`);
    }
    const size = nx * ny * nz;
    for (const g of o.grid.voxelIndex) {
      if (!(g >= 0 && g < size)) throw bad(`annotation: grid.voxelIndex holds ${g}, outside the ${nx}×${ny}×${nz} grid`);
    }
    const f = o.grid.fwhm;
    if (f !== undefined && !(f >= 0 && Number.isFinite(f))) throw bad(`annotation: grid.fwhm must be a number ≥ 0, got ${f}`);
  }
}

/**
 * Labels one unit's map with the best template network.
 * @param map the unit's synchronized map over the masked voxels (NaN voxels ignored).
 * @param o templates, names and the null settings ({@link AnnotationOptions}).
 * @throws SyncactError ENGINE_BAD_INPUT for mismatched sizes or options; a constant or
 *   all-NaN map is not an error: it gets label "none".
 */
export function annotateUnit(map: Float32Array, o: AnnotationOptions): UnitAnnotation {
  validate(map, o);
  const T = o.templates.length;
  const scores = new Float64Array(T);
  for (let j = 0; j < T; j++) scores[j] = spatialCorrelation(map, o.templates[j]);
  const { index, score } = best(scores);
  if (index < 0) return { label: 'none', index: -1, sign: 1, score: NaN, dice: NaN, p: NaN, scores };
  const sign: 1 | -1 = scores[index] < 0 ? -1 : 1;
  const d = dice(map, o.templates[index], sign, o.topFraction ?? 0.05);
  const nulls = o.nulls ?? 200;
  let p = NaN;
  if (nulls > 0 && o.grid) {
    const fwhm = o.grid.fwhm ?? estimateFwhmVoxels(map, o.grid);
    if (Number.isFinite(fwhm)) {
      p = nullP(score, nullBestScores(o.templates, o.grid, fwhm, finiteMask(map), nulls, o.seed ?? 0));
    }
  }
  return { label: o.names[index], index, sign, score, dice: d, p, scores };
}

/**
 * Labels every unit and adds the Benjamini–Hochberg q-value of its p across the units.
 * The null fields do not depend on a unit's values, only on its smoothness and finite
 * voxels, so one null distribution is drawn for all units: fields at the median FWHM of
 * the maps (or `grid.fwhm`), sampled where every map is finite. Per-unit p-values can
 * therefore differ slightly from {@link annotateUnit}'s; the cost is one set of nulls
 * instead of one per unit.
 */
export function annotateUnits(maps: Float32Array[], o: AnnotationOptions): (UnitAnnotation & { q: number })[] {
  return annotateUnitsFrom(maps.length, (i) => maps[i], o);
}

/**
 * {@link annotateUnits} with the maps made on demand, one alive at a time (each asked for
 * once): the same results, without holding every map, which at
 * 141 units × 403,192 voxels is 227 MB. With `temporalNulls` (best scores of temporal null
 * maps, {@link nullBestScoresFrom}) p comes from them ({@link temporalNullP}) instead of
 * the spatial null fields.
 */
export function annotateUnitsFrom(
  count: number,
  mapOf: (i: number) => Float32Array,
  o: AnnotationOptions,
  temporalNulls?: Float64Array,
): (UnitAnnotation & { q: number })[] {
  const nulls = o.nulls ?? 200;
  // With a temporal null no spatial null is drawn (nor the FWHM estimated).
  const grid = nulls > 0 && o.grid && !temporalNulls ? o.grid : null;
  const results: UnitAnnotation[] = [];
  const fwhms: number[] = [];
  let valid: Uint8Array | null = null;
  // One pass, each map made once: at 403,192 voxels a unit's t-map costs about as much as its labelling.
  for (let i = 0; i < count; i++) {
    const m = mapOf(i);
    results.push(annotateUnit(m, { ...o, nulls: 0 }));
    if (!grid) continue;
    fwhms.push(grid.fwhm ?? estimateFwhmVoxels(m, grid));
    if (valid === null) valid = finiteMask(m);
    else for (let v = 0; v < m.length; v++) if (!Number.isFinite(m[v])) valid[v] = 0;
  }
  if (grid && count > 0) {
    const finite = fwhms.filter(Number.isFinite).sort((a, b) => a - b);
    if (finite.length > 0 && valid !== null) {
      const fwhm = finite[finite.length >> 1];
      const dist = nullBestScores(o.templates, grid, fwhm, valid, nulls, o.seed ?? 0);
      for (const r of results) r.p = r.index < 0 ? NaN : nullP(r.score, dist);
    }
  }
  if (temporalNulls) for (const r of results) r.p = r.index < 0 ? NaN : temporalNullP(r.score, temporalNulls);
  const q = benjaminiHochberg(Float64Array.from(results, (r) => r.p));
  return results.map((r, i) => ({ ...r, q: q[i] }));
}
