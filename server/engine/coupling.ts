/**
 * The coupling engine: one TR of the whole coupling stage (DESIGN.md §2 and §4) as a
 * small pure composition of the estimators, so that server/streams only has to feed it
 * and read it, and seek by snapshot/restore of everything at once.
 *
 * Per TR, from the unit responses u (U, already HRF-convolved), the design extras e
 * (drift row with its constant, confounds) and the masked volume y (V):
 *   1. voxelwise GLM on the design x = [u[glmUnits], e]           → the joint model's maps
 *   1b. optional: per mapped unit, the GLM y = β·u_i + e·γ          → each unit's own
 *      synchronized map (unitMaps.ts; "unit maps")
 *   2. brain features f = atlas means of y                          (NaN for an emptied region)
 *   3. optional: y minus its least-squares fit on the extras so far (drift, constant,
 *      confounds) → running z-score → online dictionary learning → codes c (K atoms);
 *      with `dictionary.couple` the codes join the features, f ← [f, c]
 *   4. sliding-window correlation of u with f, shift nulls, BH    → coupling matrix
 *   5. per layer: incremental linear CKA of u[layer] with f        → layer similarity
 * Annotation is not incremental (it compares whole maps with templates) and runs on
 * demand from the current t-maps; the maps of its temporal null (units' responses
 * circularly shifted, `unitMaps.nulls`) are updated in 1b beside the units' own.
 *
 * `update` runs one TR through every stage. The stages are also methods of their own
 * (`beginTr`, which validates the input once, then `updateGlm`, `updateUnitMaps`, `updateFeatures`,
 * `preprocess`, `updateDictionary`, `updateSliding`, `updateCka`, `endTr`) so that
 * server/streams can make each one an operator and time it; they must be called in that
 * order, once per TR, and a call out of order is ENGINE_BAD_INPUT (the estimators would
 * see two TRs mixed, e.g. windows fed the last TR's features).
 *
 * Why the z-score feeds only the dictionary: the GLM has its own intercept and drift and
 * its t-maps do not depend on a voxel's scale, and Pearson correlations of region means
 * do not either; dictionary learning does (raw BOLD sits near 10³ and its λ is in units
 * of the data), so it sees volumes z-scored with the statistics so far. It also sees them
 * without the drift (driftResidual.ts): left in, the slow drift is the run's largest shared
 * pattern and takes atoms from the networks (on the demo session the planted maps came out
 * at spatial |r| 0.1–0.7 with the z-score alone).
 *
 * Degenerate volumes never throw: NaN voxels retire from the GLM (NaN maps there), are
 * left out of region means and of the dictionary's sample; constant voxels give NaN t.
 * A non-finite unit response or extra is a wiring bug (the design must be finite) and is
 * rejected before any state changes, as are wrong lengths.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';
import { VoxelwiseGlm } from './glm.ts';
import { UnitMaps } from './unitMaps.ts';
import { BrainFeatures, type BrainFeaturesOptions } from './brainFeatures.ts';
import { SlidingCorrelation, type SlidingCorrelationOptions } from './slidingCorrelation.ts';
import { OnlineDictionaryLearning, type DictionaryLearningOptions } from './dictionaryLearning.ts';
import { RunningStandardizer } from './standardize.ts';
import { DriftResidual } from './driftResidual.ts';
import { IncrementalCka } from './cka.ts';
import { benjaminiHochberg, rejectAt } from './fdr.ts';
import { annotateUnitsFrom, nullBestScoresFrom, type AnnotationOptions, type UnitAnnotation } from './annotation.ts';
import { createRng } from './random.ts';

export interface CouplingEngineOptions {
  /** V: masked voxels per volume. */
  voxels: number;
  /** U: unit responses per TR. */
  units: number;
  /**
   * The units that enter the GLM design as regressors (indices into the U responses;
   * DESIGN.md's "unit reduction" to K). Default: all U.
   */
  glmUnits?: ArrayLike<number>;
  /** Width of the per-TR design extras: the drift row with its constant, then confounds. */
  extras: number;
  glm?: { forgetting?: number; workers?: number };
  /** The atlas whose region means are the brain features. */
  atlas: BrainFeaturesOptions;
  /** Sliding-window coupling settings (units and features are filled in). */
  sliding: Omit<SlidingCorrelationOptions, 'units' | 'features'>;
  /**
   * Data-driven networks (voxels filled in); `couple: true` appends the codes to the
   * brain features that the sliding windows and CKA see.
   */
  dictionary?: Omit<DictionaryLearningOptions, 'voxels'> & { couple?: boolean };
  /** Layers for CKA: each a name and the indices of its units among the U. */
  layers?: { name: string; units: ArrayLike<number> }[];
  /** CKA forgetting factor λ ∈ (0, 1], default 1. */
  ckaForgetting?: number;
  /**
   * Units that get their own synchronized map (indices into the U responses; unitMaps.ts),
   * with the index among the extras of the constant column (the drift row's last);
   * omitted: no unit maps. O(units·V) per TR and units·V float64 of state.
   * `nulls`: the temporal null of the unit annotation ({@link UnitMapNullOptions}).
   */
  unitMaps?: { units: ArrayLike<number>; interceptColumn?: number; nulls?: UnitMapNullOptions };
  /** Template networks for on-demand annotation (over the same V voxels). */
  annotation?: AnnotationOptions;
  /**
   * A clock (e.g. `performance.now`) for profiling: when given, `stageTimes()` reports how
   * long each stage of the last update took. The engine never reads a clock of its own
   * (its results do not depend on time), so this is injected, like a scheduler.
   */
  clock?: () => number;
}

/**
 * Time each stage of the last update took, in the injected clock's units (0 without a
 * clock); `dictionary` is the dictionary's preprocessing plus its update.
 */
export interface CouplingStageTimes {
  glm: number;
  unitMaps: number;
  features: number;
  dictionary: number;
  sliding: number;
  cka: number;
}

/**
 * The temporal null of the unit annotation: `count` null columns, each a seeded (mapped
 * unit, shift s) pair whose value at TR k is that unit's response at TR (k − s) mod T,
 * read from `series` (the whole run's T×U responses, TR-major, as the sliding nulls'
 * series). They get maps of their own beside the mapped units' (the same UnitMaps, so
 * O(count·V) per TR and count·V float64 more), and each null map's best-template score
 * is a draw of "a unit's map with its coupling to this run's BOLD broken": the shift
 * keeps the unit's temporal structure and the BOLD's, and breaks their alignment.
 * Shifts lie in [minShift, T − minShift]: a shift (or its complement on the circle)
 * shorter than the response's autocorrelation would leave part of the coupling in.
 */
export interface UnitMapNullOptions {
  /** S, the null columns (0: none; the annotation of unit maps then has NaN p). */
  count: number;
  seed: number;
  /** m ≥ 1: the shortest shift in TRs; T − 2m + 1 ≥ 1 shifts must fit. */
  minShift: number;
  /** T×U responses, TR-major (`series[t·U + i]`); the run may not go past TR T − 1. */
  series: Float64Array;
}

/** One TR of input. Not modified; held from `beginTr` to `endTr`, not after. */
export interface CouplingInput {
  /** U unit responses (finite). */
  units: Float64Array;
  /** The design extras (finite), `extras` values. */
  extras: Float64Array;
  /** The masked volume, V voxels (NaN allowed). */
  volume: Float32Array;
}

/** The coupling matrix at the current TR, all U×F unit-major (`[i·F + f]`). */
export interface CouplingMatrix {
  r: Float64Array;
  /** Null p-values (NaN before the first null is ready or where r is NaN). */
  p: Float64Array;
  /** Benjamini–Hochberg q-values across the pairs of this TR. */
  q: Float64Array;
  /** 1 where q ≤ α. */
  significant: Uint8Array;
}

/** A snapshot of the whole engine: its own counters and one snapshot per estimator. */
export interface CouplingSnapshot extends EstimatorSnapshot {
  parts: Record<string, EstimatorSnapshot>;
}

const KIND = 'coupling';
/**
 * 2: the dictionary's drift residual joined the parts; 3: the unit maps (and their units)
 * joined; 4: the unit maps hold the temporal null columns after the mapped units (and the
 * snapshot their (unit, shift) pairs).
 */
const VERSION = 4;

/** The per-TR stages, in the order they must be called (`update` calls them all). */
const STAGES = ['beginTr', 'updateGlm', 'updateUnitMaps', 'updateFeatures', 'preprocess', 'updateDictionary', 'updateSliding', 'updateCka', 'endTr'] as const;
type Stage = (typeof STAGES)[number];

function bad(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', `coupling engine: ${message}`);
}

/** `count` distinct integers of [0, n) in seeded random order (sparse partial Fisher–Yates). */
function drawDistinct(n: number, count: number, seed: number): number[] {
  const rng = createRng(seed);
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < Math.min(count, n); i++) {
    const j = i + rng.int(n - i);
    const at = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out.push(at);
  }
  return out;
}

function indexList(name: string, xs: ArrayLike<number>, size: number): Int32Array {
  const out = Int32Array.from(xs);
  if (out.length === 0) throw bad(`${name} is empty`);
  out.forEach((v, i) => {
    if (!(Number.isInteger(xs[i]) && v >= 0 && v < size)) throw bad(`${name}[${i}] = ${xs[i]} is not a unit index in [0, ${size})`);
  });
  return out;
}

export class CouplingEngine implements Estimator {
  readonly voxels: number;
  readonly units: number;
  readonly extras: number;
  /** F: brain features per TR (atlas regions, + dictionary atoms when coupled). */
  readonly features: number;
  readonly layerNames: string[];
  private readonly glmUnits: Int32Array;
  /** GLM design column of each unit, −1 for units not in the design. */
  private readonly columnOf: Int32Array;
  private readonly glm: VoxelwiseGlm;
  /** The mapped units (indices into the U responses), and their maps (null: none). */
  private readonly mapUnits: Int32Array;
  private readonly unitMapOf: Int32Array;
  private readonly unitMaps: UnitMaps | null;
  private readonly mapResponses: Float64Array;
  /** Temporal null columns: their unit (index into the U responses) and shift, and the T×U series. */
  private readonly nullUnits: Int32Array;
  private readonly nullShifts: Int32Array;
  private readonly nullSeries: Float64Array;
  private readonly nullSeriesLength: number;
  private readonly atlas: BrainFeatures;
  private readonly standardizer: RunningStandardizer | null;
  /** Removes the extras' fit from the dictionary's sample (null without extras). */
  private readonly detrender: DriftResidual | null;
  private readonly dictionary: OnlineDictionaryLearning | null;
  private readonly coupleCodes: boolean;
  private readonly sliding: SlidingCorrelation;
  private readonly layers: Int32Array[];
  private readonly ckas: IncrementalCka[];
  private readonly annotation: AnnotationOptions | null;
  // Per-TR scratch and the last TR's outputs.
  private readonly design: Float64Array;
  private readonly regionValues: Float64Array;
  private readonly featureValues: Float64Array;
  private readonly codeValues: Float64Array;
  private readonly zscored: Float64Array | null;
  private readonly layerScratch: Float64Array[];
  private trs = 0;
  /** Index in STAGES of the next stage of the TR in progress (0: between TRs). */
  private step = 0;
  /** The input of the TR in progress (null between TRs). */
  private input: CouplingInput | null = null;
  private readonly clock: (() => number) | null;
  private readonly times: CouplingStageTimes = { glm: 0, unitMaps: 0, features: 0, dictionary: 0, sliding: 0, cka: 0 };

  constructor(o: CouplingEngineOptions) {
    const { voxels, units, extras } = o;
    if (!Number.isInteger(voxels) || voxels < 1) throw bad(`voxels must be a positive integer, got ${voxels}`);
    if (!Number.isInteger(units) || units < 1) throw bad(`units must be a positive integer, got ${units}`);
    if (!Number.isInteger(extras) || extras < 0) throw bad(`extras must be a non-negative integer, got ${extras}`);
    this.voxels = voxels;
    this.units = units;
    this.extras = extras;
    this.glmUnits = indexList('glmUnits', o.glmUnits ?? Array.from({ length: units }, (_, i) => i), units);
    this.columnOf = new Int32Array(units).fill(-1);
    this.glmUnits.forEach((u, c) => {
      if (this.columnOf[u] >= 0) throw bad(`glmUnits lists unit ${u} twice (the design would be rank deficient)`);
      this.columnOf[u] = c;
    });
    this.design = new Float64Array(this.glmUnits.length + extras);

    this.atlas = new BrainFeatures(o.atlas);
    if (this.atlas.voxels !== voxels) throw bad(`the atlas covers ${this.atlas.voxels} voxels, the volumes have ${voxels}`);
    this.regionValues = new Float64Array(this.atlas.regions);

    if (o.dictionary) {
      const { couple, ...dl } = o.dictionary;
      this.dictionary = new OnlineDictionaryLearning({ ...dl, voxels });
      this.standardizer = new RunningStandardizer({ size: voxels });
      this.detrender = extras > 0 ? new DriftResidual({ voxels, regressors: extras }) : null;
      this.zscored = new Float64Array(voxels);
      this.coupleCodes = couple ?? false;
      this.codeValues = new Float64Array(this.dictionary.atoms).fill(NaN);
    } else {
      this.dictionary = null;
      this.standardizer = null;
      this.detrender = null;
      this.zscored = null;
      this.coupleCodes = false;
      this.codeValues = new Float64Array(0);
    }
    this.features = this.atlas.regions + (this.coupleCodes ? this.codeValues.length : 0);
    this.featureValues = new Float64Array(this.features).fill(NaN);

    const layers = o.layers ?? [];
    this.layerNames = layers.map((l) => l.name);
    this.layers = layers.map((l, i) => indexList(`layers[${i}].units`, l.units, units));
    this.layerScratch = this.layers.map((l) => new Float64Array(l.length));
    this.annotation = o.annotation ?? null;
    this.clock = o.clock ?? null;
    if (this.annotation) {
      for (const [j, t] of this.annotation.templates.entries()) {
        if (t.length !== voxels) throw bad(`annotation template ${j} has ${t.length} voxels, the volumes have ${voxels}`);
      }
    }

    this.mapUnits = o.unitMaps && o.unitMaps.units.length > 0 ? indexList('unitMaps.units', o.unitMaps.units, units) : new Int32Array(0);
    this.unitMapOf = new Int32Array(units).fill(-1);
    this.mapUnits.forEach((u, i) => {
      if (this.unitMapOf[u] >= 0) throw bad(`unitMaps.units lists unit ${u} twice`);
      this.unitMapOf[u] = i;
    });
    const nulls = this.mapUnits.length > 0 ? o.unitMaps?.nulls : undefined;
    const asked = nulls ? nulls.count : 0;
    if (!(Number.isInteger(asked) && asked >= 0)) throw bad(`unitMaps.nulls.count must be an integer ≥ 0, got ${asked}`);
    let pairs: number[] = [];
    let T = 0;
    let m = 0;
    if (nulls && asked > 0) {
      const series = nulls.series;
      if (!(series instanceof Float64Array && series.length > 0 && series.length % units === 0)) {
        throw bad(`unitMaps.nulls.series must be a Float64Array of T × ${units} responses, got length ${series?.length}`);
      }
      T = series.length / units;
      m = nulls.minShift;
      if (!(Number.isInteger(m) && m >= 1 && T - 2 * m + 1 >= 1)) {
        throw bad(`unitMaps.nulls: shifts in [${m}, ${T - m}] of a ${T}-TR series: minShift must be an integer ≥ 1 with T − 2·minShift ≥ 0`);
      }
      for (let i = 0; i < series.length; i++) if (!Number.isFinite(series[i])) throw bad(`unitMaps.nulls.series[${i}] is ${series[i]} (responses must be finite)`);
      // Distinct (unit, shift) pairs, at most all of them: a repeated pair would count one null map twice.
      pairs = drawDistinct(this.mapUnits.length * (T - 2 * m + 1), asked, nulls.seed);
    }
    const S = pairs.length;
    const shifts = T - 2 * m + 1;
    this.nullUnits = Int32Array.from(pairs, (pair) => this.mapUnits[Math.floor(pair / shifts)]);
    this.nullShifts = Int32Array.from(pairs, (pair) => m + (pair % shifts));
    this.nullSeries = S > 0 && nulls ? nulls.series : new Float64Array(0);
    this.nullSeriesLength = S > 0 ? T : 0;
    this.mapResponses = new Float64Array(this.mapUnits.length + S);
    this.unitMaps =
      this.mapUnits.length > 0
        ? new UnitMaps({ voxels, units: this.mapUnits.length + S, extras, interceptColumn: o.unitMaps?.interceptColumn })
        : null;

    // Built last: the GLM may start worker threads, which a throw above would leak.
    this.sliding = new SlidingCorrelation({ ...o.sliding, units, features: this.features });
    this.ckas = this.layers.map((l) => new IncrementalCka({ p: l.length, q: this.features, forgetting: o.ckaForgetting }));
    this.glm = new VoxelwiseGlm({ voxels, regressors: this.design.length, ...o.glm });
  }

  /** TRs seen. */
  get count(): number {
    return this.trs;
  }

  /** True once the GLM design has full rank (every column, drift included, identifiable). */
  get fitted(): boolean {
    return this.glm.fitted;
  }

  /**
   * True once every unit's map is defined: the unit columns (first in the design) are
   * identifiable, possibly before the slow drift columns are; the maps are then the fit
   * without the drift columns not yet identifiable (see glm.ts), and t needs one more TR
   * than there are identifiable columns.
   */
  get mapsReady(): boolean {
    const r = this.glm.identifiableColumns;
    return r >= this.glmUnits.length && this.trs > r;
  }

  /** Number of atlas regions (the first features). */
  get regions(): number {
    return this.atlas.regions;
  }

  /** Max |r| change at the last exact re-sync of the sliding sums (incremental-vs-batch drift). */
  get resyncDrift(): number {
    return this.sliding.resyncDrift;
  }

  /** How long each stage of the last update took (all 0 without `clock`). */
  stageTimes(): CouplingStageTimes {
    return { ...this.times };
  }

  /**
   * Adds one TR: the stages below in their order. See the file comment for what is
   * rejected and what is tolerated.
   */
  update(input: CouplingInput): void {
    this.beginTr(input);
    this.updateGlm();
    this.updateUnitMaps();
    this.updateFeatures();
    this.preprocess();
    this.updateDictionary();
    this.updateSliding();
    this.updateCka();
    this.endTr();
  }

  /**
   * Starts TR `count` with its input, checked once here: wrong lengths and non-finite
   * responses or extras throw ENGINE_BAD_INPUT before any state changes. The input is
   * held (not copied, not modified) until `endTr`.
   */
  beginTr(input: CouplingInput): void {
    this.expectStage('beginTr');
    const { units, extras, volume } = input;
    if (units.length !== this.units) throw bad(`got ${units.length} unit responses, expected ${this.units}`);
    if (extras.length !== this.extras) throw bad(`got ${extras.length} design extras, expected ${this.extras}`);
    if (volume.length !== this.voxels) throw bad(`volume has ${volume.length} voxels, expected ${this.voxels}`);
    for (let i = 0; i < units.length; i++) {
      if (!Number.isFinite(units[i])) throw bad(`unit response ${i} is ${units[i]} at TR ${this.trs} (responses must be finite)`);
    }
    for (let j = 0; j < extras.length; j++) {
      if (!Number.isFinite(extras[j])) throw bad(`design extra ${j} is ${extras[j]} at TR ${this.trs} (the design must be finite)`);
    }
    this.input = input;
    this.times.dictionary = 0;
    this.step = 1;
  }

  /** Stage 1: the voxelwise GLM on the design [u[glmUnits], extras]. */
  updateGlm(): void {
    const { units, extras, volume } = this.enter('updateGlm');
    const t0 = this.now();
    const x = this.design;
    const K = this.glmUnits.length;
    for (let c = 0; c < K; c++) x[c] = units[this.glmUnits[c]];
    x.set(extras, K);
    this.glm.update(x, volume);
    this.lap('glm', t0);
  }

  /** Stage 1b: every mapped unit's own GLM (nothing without `unitMaps`); read with `unitTmap`/`unitBetas`. */
  updateUnitMaps(): void {
    const { units, extras, volume } = this.enter('updateUnitMaps');
    if (!this.unitMaps) return;
    const t0 = this.now();
    const x = this.mapResponses;
    const M = this.mapUnits.length;
    for (let i = 0; i < M; i++) x[i] = units[this.mapUnits[i]];
    const T = this.nullSeriesLength;
    if (this.nullUnits.length > 0) {
      if (this.trs >= T) throw bad(`TR ${this.trs} is past the ${T}-TR response series of the annotation's temporal nulls`);
      for (let j = 0; j < this.nullUnits.length; j++) {
        const t = (((this.trs - this.nullShifts[j]) % T) + T) % T;
        x[M + j] = this.nullSeries[t * this.units + this.nullUnits[j]];
      }
    }
    this.unitMaps.update(x, extras, volume);
    this.lap('unitMaps', t0);
  }

  /** Stage 2: the atlas region means, the first features. */
  updateFeatures(): void {
    const { volume } = this.enter('updateFeatures');
    const t0 = this.now();
    this.atlas.extract(volume, this.regionValues);
    this.featureValues.set(this.regionValues);
    this.lap('features', t0);
  }

  /**
   * Stage 3: the dictionary's sample, the volume less its fit on the extras so far, z-scored
   * with the statistics so far (nothing without a dictionary). Timed with the dictionary.
   */
  preprocess(): void {
    const { extras, volume } = this.enter('preprocess');
    if (!(this.standardizer && this.zscored)) return;
    const t0 = this.now();
    const sample = this.detrender ? this.detrender.update(extras, volume, this.zscored) : volume;
    this.standardizer.update(sample);
    this.standardizer.transform(sample, this.zscored);
    this.lap('dictionary', t0);
  }

  /** Stage 4: one step of online dictionary learning; with `couple`, the codes join the features. */
  updateDictionary(): void {
    this.enter('updateDictionary');
    if (!(this.dictionary && this.zscored)) return;
    const t0 = this.now();
    this.codeValues.set(this.dictionary.update(this.zscored));
    if (this.coupleCodes) this.featureValues.set(this.codeValues, this.regionValues.length);
    this.lap('dictionary', t0);
  }

  /** Stage 5: the sliding windows (and their nulls) of every (unit, feature) pair; read them with `coupling()`. */
  updateSliding(): void {
    const { units } = this.enter('updateSliding');
    const t0 = this.now();
    this.sliding.update(units, this.featureValues);
    this.lap('sliding', t0);
  }

  /** Stage 6: each layer's CKA cross-products with the features; read them with `cka()`. */
  updateCka(): void {
    const { units } = this.enter('updateCka');
    const t0 = this.now();
    for (let l = 0; l < this.layers.length; l++) {
      const idx = this.layers[l];
      const xs = this.layerScratch[l];
      for (let i = 0; i < idx.length; i++) xs[i] = units[idx[i]];
      this.ckas[l].update(xs, this.featureValues);
    }
    this.lap('cka', t0);
  }

  /** Ends the TR: `count` moves on and the input is let go. */
  endTr(): void {
    this.enter('endTr');
    this.input = null;
    this.step = 0;
    this.trs++;
  }

  /** The brain features of the last TR (F values; NaN before the first TR). */
  lastFeatures(out?: Float64Array): Float64Array {
    const o = out ?? new Float64Array(this.features);
    if (o.length !== this.features) throw bad(`output has ${o.length} values, expected ${this.features}`);
    o.set(this.featureValues);
    return o;
  }

  /** The dictionary codes of the last TR (K values, NaN before the first; empty without a dictionary). */
  lastCodes(): Float64Array {
    return this.codeValues.slice();
  }

  /** Atom j's map over the voxels (needs `dictionary`). */
  atom(j: number, out?: Float32Array): Float32Array {
    if (!this.dictionary) throw bad('no dictionary was configured');
    return this.dictionary.atom(j, out);
  }

  /** t-map of a unit's GLM column (NaN before full rank and where undefined; see glm.ts). */
  tmap(unit: number, out?: Float32Array): Float32Array {
    return this.glm.tmap(this.column(unit), out);
  }

  /** Beta map of a unit's GLM column. */
  betas(unit: number, out?: Float32Array): Float32Array {
    return this.glm.betas(this.column(unit), out);
  }

  /** Residual degrees of freedom of the GLM (NaN before full rank). */
  degreesOfFreedom(): number {
    return this.glm.degreesOfFreedom();
  }

  /** The units with their own synchronized map (indices into the U responses, in map order). */
  get mappedUnits(): number[] {
    return Array.from(this.mapUnits);
  }

  /** True when `unit` has its own synchronized map (see `unitMaps` in the options). */
  hasUnitMap(unit: number): boolean {
    return Number.isInteger(unit) && unit >= 0 && unit < this.units && this.unitMapOf[unit] >= 0;
  }

  /** t map of a unit's own GLM (unitMaps.ts; NaN where undefined, e.g. before the second TR). */
  unitTmap(unit: number, out?: Float32Array): Float32Array {
    const maps = this.unitMapsOf(unit);
    return out ? maps.tmap(this.unitMapOf[unit], out) : maps.tmap(this.unitMapOf[unit]);
  }

  /** β map of a unit's own GLM. */
  unitBetas(unit: number, out?: Float32Array): Float32Array {
    const maps = this.unitMapsOf(unit);
    return out ? maps.betas(this.unitMapOf[unit], out) : maps.betas(this.unitMapOf[unit]);
  }

  /** The temporal null columns of the unit annotation: each one's unit (index into the U responses) and circular shift in TRs. */
  get unitMapNulls(): { unit: number; shift: number }[] {
    return Array.from(this.nullUnits, (unit, j) => ({ unit, shift: this.nullShifts[j] }));
  }

  /** t map of temporal null column j (the unit's map with its response shifted; see {@link UnitMapNullOptions}). */
  nullUnitTmap(j: number, out?: Float32Array): Float32Array {
    if (!(Number.isInteger(j) && j >= 0 && j < this.nullUnits.length) || !this.unitMaps) throw bad(`null column ${j} is not in [0, ${this.nullUnits.length})`);
    const i = this.mapUnits.length + j;
    return out ? this.unitMaps.tmap(i, out) : this.unitMaps.tmap(i);
  }

  /** Residual df of every unit's own GLM, T − r − 1 (NaN without unit maps or where ≤ 0). */
  unitMapsDegreesOfFreedom(): number {
    return this.unitMaps ? this.unitMaps.degreesOfFreedom() : NaN;
  }

  /** Pearson r of every (unit, feature) pair over the current window (U×F). */
  correlations(out?: Float64Array): Float64Array {
    return this.sliding.correlations(out);
  }

  /** r, null p, BH q across pairs and the q ≤ α mask at the current TR. */
  coupling(alpha = 0.05): CouplingMatrix {
    const r = this.sliding.correlations();
    const p = this.sliding.pValues();
    const q = benjaminiHochberg(p);
    return { r, p, q, significant: rejectAt(q, alpha) };
  }

  /** Current linear CKA of each layer with the brain features (NaN where undefined), in `layers` order. */
  cka(): Float64Array {
    return Float64Array.from(this.ckas, (c) => c.value());
  }

  /**
   * Annotates units from their current t-maps against the configured templates, with BH
   * q-values across the units annotated. `maps: 'glm'` (default) reads the joint GLM's
   * maps (default units: every GLM unit), p from the spatial null (annotation.ts);
   * `'unit'` each unit's own map (default units: every mapped unit), p from the temporal
   * null: the best-template scores of the null columns' maps ({@link UnitMapNullOptions};
   * NaN p without null columns).
   */
  annotate(units?: ArrayLike<number>, maps: 'glm' | 'unit' = 'glm'): (UnitAnnotation & { unit: number; q: number })[] {
    if (!this.annotation) throw bad('no annotation templates were configured');
    const list = units ? Array.from(units) : Array.from(maps === 'unit' ? this.mapUnits : this.glmUnits);
    // Maps made one at a time (each read once): 141 unit maps at 403,192 voxels are 227 MB.
    if (maps === 'unit') {
      const nulls = nullBestScoresFrom(this.nullUnits.length, (j) => this.nullUnitTmap(j), this.annotation);
      return annotateUnitsFrom(list.length, (i) => this.unitTmap(list[i]), this.annotation, nulls).map((a, i) => ({ ...a, unit: list[i] }));
    }
    return annotateUnitsFrom(list.length, (i) => this.tmap(list[i]), this.annotation).map((a, i) => ({ ...a, unit: list[i] }));
  }

  /** Between TRs only: halfway through a TR the estimators hold two different TRs. */
  snapshot(): CouplingSnapshot {
    if (this.step !== 0) throw bad(`snapshot in the middle of TR ${this.trs} (after ${STAGES[this.step - 1]}); finish it with endTr first`);
    const parts: Record<string, EstimatorSnapshot> = {
      glm: this.glm.snapshot(),
      sliding: this.sliding.snapshot(),
    };
    if (this.unitMaps) parts.unitMaps = this.unitMaps.snapshot();
    if (this.standardizer) parts.standardize = this.standardizer.snapshot();
    if (this.detrender) parts.detrend = this.detrender.snapshot();
    if (this.dictionary) parts.dictionary = this.dictionary.snapshot();
    this.ckas.forEach((c, l) => (parts[`cka.${l}`] = c.snapshot()));
    return {
      kind: KIND,
      version: VERSION,
      scalars: { count: this.trs, voxels: this.voxels, units: this.units, extras: this.extras, features: this.features },
      arrays: {
        features: this.featureValues.slice(),
        codes: this.codeValues.slice(),
        glmUnits: this.glmUnits.slice(),
        mapUnits: this.mapUnits.slice(),
        nullUnits: this.nullUnits.slice(),
        nullShifts: this.nullShifts.slice(),
      },
      parts,
    };
  }

  /**
   * Restores every estimator from a snapshot of an engine built with the same options.
   * The layout (sizes, parts present) is checked before anything changes; a part that
   * its own estimator then rejects leaves the engine partly restored, so restore a good
   * snapshot (or rebuild the engine) after an ENGINE_SNAPSHOT_MISMATCH.
   */
  restore(s: EstimatorSnapshot): void {
    const mismatch = (why: string) => new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `coupling engine: ${why}`);
    if (s.kind !== KIND) throw mismatch(`cannot restore a '${s.kind}' snapshot`);
    if (s.version !== VERSION) throw mismatch(`unknown snapshot version ${s.version}`);
    const parts = (s as Partial<CouplingSnapshot>).parts;
    if (!parts) throw mismatch('snapshot has no estimator parts');
    const c = s.scalars;
    if (c.voxels !== this.voxels || c.units !== this.units || c.extras !== this.extras || c.features !== this.features) {
      throw mismatch(
        `snapshot is for ${c.voxels} voxels, ${c.units} units, ${c.extras} extras, ${c.features} features; ` +
          `this engine has ${this.voxels}, ${this.units}, ${this.extras}, ${this.features}`,
      );
    }
    const g = s.arrays.glmUnits;
    if (!(g instanceof Int32Array) || g.length !== this.glmUnits.length || g.some((u, i) => u !== this.glmUnits[i])) {
      throw mismatch('snapshot has other GLM units');
    }
    const m = s.arrays.mapUnits;
    if (!(m instanceof Int32Array) || m.length !== this.mapUnits.length || m.some((u, i) => u !== this.mapUnits[i])) {
      throw mismatch('snapshot has other mapped units (unit maps)');
    }
    const nu = s.arrays.nullUnits;
    const ns = s.arrays.nullShifts;
    if (
      !(nu instanceof Int32Array && ns instanceof Int32Array) ||
      nu.length !== this.nullUnits.length ||
      ns.length !== this.nullShifts.length ||
      nu.some((u, j) => u !== this.nullUnits[j] || ns[j] !== this.nullShifts[j])
    ) {
      throw mismatch('snapshot has other temporal null columns (unit, shift) for the annotation');
    }
    const { features, codes } = s.arrays;
    if (!(features instanceof Float64Array) || features.length !== this.features) throw mismatch('snapshot features have the wrong size');
    if (!(codes instanceof Float64Array) || codes.length !== this.codeValues.length) throw mismatch('snapshot codes have the wrong size');
    const expected = ['glm', 'sliding'];
    if (this.unitMaps) expected.push('unitMaps');
    if (this.standardizer) expected.push('standardize');
    if (this.detrender) expected.push('detrend');
    if (this.dictionary) expected.push('dictionary');
    this.ckas.forEach((_, l) => expected.push(`cka.${l}`));
    const have = Object.keys(parts).sort();
    if (have.join() !== [...expected].sort().join()) throw mismatch(`snapshot parts [${have.join(', ')}], expected [${expected.join(', ')}]`);

    this.glm.restore(parts.glm);
    this.sliding.restore(parts.sliding);
    if (this.unitMaps) this.unitMaps.restore(parts.unitMaps);
    if (this.standardizer) this.standardizer.restore(parts.standardize);
    if (this.detrender) this.detrender.restore(parts.detrend);
    if (this.dictionary) this.dictionary.restore(parts.dictionary);
    this.ckas.forEach((ck, l) => ck.restore(parts[`cka.${l}`]));
    this.featureValues.set(features);
    this.codeValues.set(codes);
    this.trs = c.count;
    // A TR left half done (a stage threw) is abandoned: the restored state is between TRs.
    this.step = 0;
    this.input = null;
  }

  /** Stops the GLM's worker threads; the engine cannot be updated afterwards. */
  dispose(): void {
    this.glm.dispose();
  }

  /**
   * Throws unless `stage` is the next one of the TR (STAGES order): a stage out of order
   * would mix two TRs in one estimator (e.g. sliding windows fed last TR's features).
   */
  private expectStage(stage: Stage): void {
    const i = STAGES.indexOf(stage);
    if (i === this.step) return;
    if (this.step === 0) throw bad(`${stage} called outside a TR; call beginTr for TR ${this.trs} first`);
    throw bad(`${stage} called after ${STAGES[this.step - 1]} of TR ${this.trs}; the next stage is ${STAGES[this.step]}`);
  }

  /** Checks the order, moves to the next stage and hands out the TR's input. */
  private enter(stage: Stage): CouplingInput {
    this.expectStage(stage);
    this.step++;
    if (this.input === null) throw new Error('unreachable: a TR in progress holds its input');
    return this.input;
  }

  private now(): number {
    return this.clock ? this.clock() : 0;
  }

  /** Adds the time since `t0` to a stage (the dictionary's time is its preprocessing plus its update). */
  private lap(stage: keyof CouplingStageTimes, t0: number): void {
    if (!this.clock) return;
    const dt = this.clock() - t0;
    this.times[stage] = stage === 'dictionary' ? this.times.dictionary + dt : dt;
  }

  private unitMapsOf(unit: number): UnitMaps {
    if (!Number.isInteger(unit) || unit < 0 || unit >= this.units) throw bad(`unit ${unit} is not in [0, ${this.units})`);
    if (!this.unitMaps || this.unitMapOf[unit] < 0) throw bad(`unit ${unit} has no map of its own (unitMaps.units)`);
    return this.unitMaps;
  }

  private column(unit: number): number {
    if (!Number.isInteger(unit) || unit < 0 || unit >= this.units) throw bad(`unit ${unit} is not in [0, ${this.units})`);
    const c = this.columnOf[unit];
    if (c < 0) throw bad(`unit ${unit} is not in the GLM design (glmUnits), so it has no map`);
    return c;
  }
}
