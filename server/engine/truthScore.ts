/**
 * Scoring the coupling engine against a synthetic session's planted ground truth
 * (server/synth: which feature drives which network, with which sign and map). Pure
 * functions over typed arrays and names, so the ground-truth test and the pipeline's
 * `analyze` report (its `truth` block) score the same way.
 *
 * What counts as "detected" for a streaming estimator: a (unit, feature) pair is detected
 * when its sliding-window coupling is significant (BH q ≤ α across all pairs of that TR)
 * in at least `minFraction` (default ½) of the TRs scored, i.e. those after every null
 * shift is ready. One significant window is not a finding (with 10⁵ pairs and hundreds
 * of TRs some windows pass by chance, and two drives correlated at |r| ≈ 0.3 over the run
 * reach 0.6 in a few 30-TR windows); a coupling that holds for most of the run is what a
 * user would report. {@link SignificanceTally} counts the TRs, {@link detectedPairs}
 * applies the fraction.
 */
import { SyncactError } from '../errors.ts';
import { spatialCorrelation } from './annotation.ts';
import type { EstimatorSnapshot } from './estimator.ts';

/** The part of a planted network that scoring needs (server/synth's TruthNetwork fits). */
export interface PlantedNetwork {
  name: string;
  /** Name of the unit/feature that drives it, or null for a null network. */
  driver: string | null;
  sign: 1 | -1;
}

function bad(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', `truth score: ${message}`);
}

/**
 * The U×F mask (unit-major) of planted pairs: unit i couples with feature f when the
 * network named featureNames[f] is driven by unitNames[i]. Features that name no network
 * (e.g. dictionary atoms) and units that drive none have no planted pair.
 */
export function plantedPairs(networks: readonly PlantedNetwork[], unitNames: readonly string[], featureNames: readonly string[]): Uint8Array {
  const F = featureNames.length;
  const out = new Uint8Array(unitNames.length * F);
  const byName = new Map(networks.map((n) => [n.name, n]));
  unitNames.forEach((u, i) => {
    featureNames.forEach((name, f) => {
      const net = byName.get(name);
      if (net && net.driver === u) out[i * F + f] = 1;
    });
  });
  return out;
}

/** Counts, per pair, the TRs at which it was significant. */
export class SignificanceTally {
  readonly counts: Int32Array;
  private trs = 0;

  constructor(readonly pairs: number) {
    if (!Number.isInteger(pairs) || pairs < 1) throw bad(`pairs must be a positive integer, got ${pairs}`);
    this.counts = new Int32Array(pairs);
  }

  /** TRs added so far. */
  get count(): number {
    return this.trs;
  }

  /** Adds one TR's significance mask (1 = significant). */
  add(significant: Uint8Array): void {
    if (significant.length !== this.pairs) throw bad(`mask has ${significant.length} pairs, expected ${this.pairs}`);
    for (let i = 0; i < this.pairs; i++) this.counts[i] += significant[i] ? 1 : 0;
    this.trs++;
  }

  /** Fraction of the TRs each pair was significant (NaN before any TR). */
  fractions(): Float64Array {
    return Float64Array.from(this.counts, (c) => (this.trs > 0 ? c / this.trs : NaN));
  }

  /** The counts so far (a resumed analysis continues the tally: docs/state-dir.md). */
  snapshot(): EstimatorSnapshot {
    return { kind: 'significanceTally', version: 1, scalars: { trs: this.trs, pairs: this.pairs }, arrays: { counts: this.counts.slice() } };
  }

  restore(s: EstimatorSnapshot): void {
    const counts = s.arrays.counts;
    if (s.kind !== 'significanceTally' || s.version !== 1 || !(counts instanceof Int32Array) || counts.length !== this.pairs || !Number.isInteger(s.scalars.trs) || s.scalars.trs < 0) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `significance tally: cannot restore a ${s.kind} v${s.version} snapshot of ${counts?.length} pairs into one of ${this.pairs}`);
    }
    this.counts.set(counts);
    this.trs = s.scalars.trs;
  }
}

/** 1 where a pair was significant in at least `minFraction` of the TRs (see the file comment). */
export function detectedPairs(tally: SignificanceTally, minFraction = 0.5): Uint8Array {
  if (!(minFraction > 0 && minFraction <= 1)) throw bad(`minFraction must be in (0, 1], got ${minFraction}`);
  const f = tally.fractions();
  return Uint8Array.from(f, (x) => (x >= minFraction ? 1 : 0));
}

export interface DetectionScore {
  planted: number;
  /** Pairs that are not planted (the false-positive denominator). */
  notPlanted: number;
  truePositives: number;
  falsePositives: number;
  /** truePositives / planted (NaN without planted pairs). */
  sensitivity: number;
  /** falsePositives / notPlanted (NaN without such pairs). */
  falsePositiveRate: number;
}

/** Sensitivity and false-positive rate of a detection mask against the planted mask. */
export function scoreDetections(detected: Uint8Array, planted: Uint8Array): DetectionScore {
  if (detected.length !== planted.length) throw bad(`${detected.length} detections for ${planted.length} pairs`);
  let p = 0, tp = 0, fp = 0;
  for (let i = 0; i < planted.length; i++) {
    if (planted[i]) {
      p++;
      if (detected[i]) tp++;
    } else if (detected[i]) fp++;
  }
  const n = planted.length - p;
  return {
    planted: p,
    notPlanted: n,
    truePositives: tp,
    falsePositives: fp,
    sensitivity: p > 0 ? tp / p : NaN,
    falsePositiveRate: n > 0 ? fp / n : NaN,
  };
}

/**
 * The map a perfect synchronized map of `driver` would show, over the masked voxels:
 * Σ sign·map of the networks it drives (zero where it drives none; all zero when it
 * drives nothing). `maskIndex` gives each masked voxel's index into the grid maps.
 */
export function plantedMap(networks: readonly (PlantedNetwork & { map: ArrayLike<number> })[], driver: string, maskIndex: Int32Array): Float32Array {
  const out = new Float32Array(maskIndex.length);
  for (const n of networks) {
    if (n.driver !== driver) continue;
    for (let v = 0; v < maskIndex.length; v++) out[v] += n.sign * n.map[maskIndex[v]];
  }
  return out;
}

/** Spatial Pearson r of an estimated map with the planted one (over voxels finite in both; NaN if either is constant). */
export function mapCorrelation(estimated: ArrayLike<number>, planted: ArrayLike<number>): number {
  if (estimated.length !== planted.length) throw bad(`estimated map has ${estimated.length} voxels, planted ${planted.length}`);
  return spatialCorrelation(estimated, planted);
}

export interface AnnotationVerdict {
  unit: string;
  label: string;
  sign: 1 | -1;
  /** The networks the unit drives, with their signs (empty for a unit that drives none). */
  expected: { name: string; sign: 1 | -1 }[];
  /** Label is one of `expected` with its sign (for a unit that drives none: never scored). */
  correct: boolean;
}

/**
 * Annotation accuracy over the units that drive a network: the fraction labelled with
 * one of their planted networks and that network's sign (a unit driving a network with
 * sign −1 must be labelled −1).
 */
export function scoreAnnotations(
  annotations: readonly { label: string; sign: 1 | -1 }[],
  unitNames: readonly string[],
  networks: readonly PlantedNetwork[],
): { accuracy: number; verdicts: AnnotationVerdict[] } {
  if (annotations.length !== unitNames.length) throw bad(`${annotations.length} annotations for ${unitNames.length} units`);
  let scored = 0, right = 0;
  const verdicts = annotations.map((a, i) => {
    const expected = networks.filter((n) => n.driver === unitNames[i]).map((n) => ({ name: n.name, sign: n.sign }));
    const correct = expected.some((e) => e.name === a.label && e.sign === a.sign);
    if (expected.length > 0) {
      scored++;
      if (correct) right++;
    }
    return { unit: unitNames[i], label: a.label, sign: a.sign, expected, correct };
  });
  return { accuracy: scored > 0 ? right / scored : NaN, verdicts };
}

export interface FalseLabels {
  /** Annotations labelled with a null network at q ≤ alpha. */
  count: number;
  /** Annotations at q ≤ alpha (whatever their label): the labels a user would report. */
  labelled: number;
  /** count / labelled (NaN when nothing was labelled at q ≤ alpha). */
  fraction: number;
  /** Index into the annotations of each false label. */
  indices: number[];
}

/**
 * False annotations: a regressor labelled, at q ≤ alpha, with a null network — one the
 * truth says nothing drives. Nothing in the session couples with such a network, so any
 * significant label naming it is wrong whatever the regressor is (unlike a wrong driven
 * network, which annotation accuracy already counts for the drivers' regressors). The
 * fraction is over the significant labels, like a false discovery proportion.
 */
export function falseAnnotationLabels(
  annotations: readonly { label: string; q: number }[],
  networks: readonly PlantedNetwork[],
  alpha = 0.05,
): FalseLabels {
  if (!(alpha > 0 && alpha <= 1)) throw bad(`alpha must be in (0, 1], got ${alpha}`);
  const nulls = new Set(networks.filter((n) => n.driver === null).map((n) => n.name));
  let labelled = 0;
  const indices: number[] = [];
  annotations.forEach((a, i) => {
    if (!(a.q <= alpha)) return; // NaN q: not labelled
    labelled++;
    if (nulls.has(a.label)) indices.push(i);
  });
  return { count: indices.length, labelled, fraction: labelled > 0 ? indices.length / labelled : NaN, indices };
}
