/**
 * The `truth` block of an analysis report: how well the run recovered what a synthetic
 * session planted (server/synth: movie feature d drives network n with a sign).
 *
 * A CNN unit is not a movie feature, so "the planted coupling" has to be said in terms of
 * units. A unit is a *proxy* of feature d when its HRF response correlates with d's drive
 * over the replayed TRs at |ρ| ≥ PROXY_R (0.9: at least 81% shared variance); it then
 * should couple with every network d drives. Why 0.9: a sliding window of 30 TRs sees a
 * unit at ρ = 0.75 with its driver as a mixture that often decorrelates locally, so such a
 * unit is not reliably "the feature" at the time scale the coupling is measured at; the
 * sensitivity of weaker proxies is still reported, by |ρ| band (`by_proxy_r`), so the
 * choice hides nothing. A (unit, network) pair is
 * - planted: the unit is a proxy of the network's driver;
 * - not planted: the unit's response correlates with the network's planted signal at
 *   |ρ| < NULL_R (0.3), i.e. nothing in the session links them (null networks, features
 *   that drive nothing, other features' networks);
 * - not scored: in between (a unit that half-tracks a driver: neither answer is wrong).
 * The counts of each are in the block, so a score on few pairs is visible as such.
 *
 * Detection is truthScore.ts's: significant (BH q ≤ α across all pairs of the TR) in at
 * least half of the TRs after every lagged null is ready. Only atlas features that name
 * a planted network are scored (learned networks have no planted identity).
 *
 * map_correlation, with unit maps (`unitMaps`: each unit's own GLM map, unitMaps.ts): for
 * each driver with planted maps, the mapped units that are its proxies (|ρ| ≥ PROXY_R,
 * as above); the spatial r of each one's final t-map, signed by its ρ, with the planted
 * map (Σ sign·map of the driven networks); averaged over the driver's proxies, then over
 * the drivers that have any (`drivers_without_proxy` lists the others).
 * annotation_accuracy: the same proxy units, each labelled with one of its driver's
 * networks and the planted sign (times the sign of ρ) or not; the fraction correct per
 * driver, averaged over drivers (so a driver with 30 proxies does not outweigh one with 1).
 * Without unit maps (session unit_maps "none"), both use the joint GLM's regressor that
 * tracks each driver best (largest |ρ|) instead, one per driver (`source` says which).
 * annotation_false_labels: every annotated map (units, or regressors without unit maps)
 * labelled at q ≤ 0.05 with a null network (one nothing drives) is a false label; count
 * and fraction of the labels at q ≤ 0.05.
 *
 * A run in which no TR was scored (too short for any lagged null: see significance.ts)
 * has no detections to score: sensitivity and false_positive_rate are NaN (null in
 * report.json), not 0.
 */
import { pearson } from './correlation.ts';
import type { AnnotationRow } from '../../protocol/state.ts';
import { mapCorrelation, plantedMap, scoreDetections, type SignificanceTally, detectedPairs, falseAnnotationLabels } from '../engine/truthScore.ts';
import type { SessionTruth } from './truthFile.ts';

export const PROXY_R = 0.9;
/** Bands of |ρ| whose proxies' sensitivity is reported (the last band is the scored one). */
export const PROXY_BANDS: [number, number][] = [
  [0.7, 0.8],
  [0.8, 0.9],
  [0.9, 1.0001],
];
export const NULL_R = 0.3;

export interface TruthBlock {
  sensitivity: number;
  false_positive_rate: number;
  map_correlation: number;
  annotation_accuracy: number;
  /** Whose maps were scored: each proxy unit's own map, or the joint GLM's regressors. */
  source: 'unit_maps' | 'glm_regressors';
  /** Drivers with no proxy among the mapped units (not in map_correlation or annotation_accuracy). */
  drivers_without_proxy: string[];
  /** Regressors labelled at q ≤ alpha with a null network (see the file comment). */
  annotation_false_labels: {
    count: number;
    /** Labels at q ≤ alpha. */
    labelled: number;
    /** count / labelled; NaN (null in JSON) when nothing was labelled. */
    fraction: number;
    alpha: number;
    labels: { regressor: string; label: string; q: number }[];
  };
  detection: {
    planted_pairs: number;
    not_planted_pairs: number;
    unscored_pairs: number;
    true_positives: number;
    false_positives: number;
    scored_trs: number;
    proxy_r: number;
    null_r: number;
    min_fraction: number;
    /** Sensitivity of proxies per |ρ| band (pairs of such units with their driver's networks). */
    by_proxy_r: { band: [number, number]; pairs: number; detected: number; sensitivity: number }[];
  };
  /** Per unit that is a proxy of a driver: its best feature and ρ. */
  proxies: { unit: number; name: string; feature: string; r: number }[];
  maps: { feature: string; unit: number; regressor: string; r_with_drive: number; map_r: number }[];
  annotations: { regressor: string; feature: string; label: string; sign: number; expected: string[]; correct: boolean }[];
}

export interface TruthInputs {
  truth: SessionTruth;
  /** Per TR replayed, every unit response (U + K). */
  responses: readonly Float64Array[];
  /** Display name of each unit (same order as the responses). */
  unitNames: string[];
  /** Brain feature names, in the coupling's order. */
  featureNames: string[];
  tally: SignificanceTally;
  minFraction?: number;
  /** GLM regressors: their indices among the units and their final t-maps (mask order). */
  glmUnits: number[];
  tmap: (unit: number) => Float32Array;
  maskIndices: Uint32Array;
  /** Final annotation of the GLM regressors (empty when annotation is off). */
  annotations: AnnotationRow[];
  /**
   * Each mapped unit's own map and its final annotation (empty when annotation is off):
   * when given with units, maps and annotation are scored on the proxy units' own maps.
   */
  unitMaps?: { units: number[]; tmap: (unit: number) => Float32Array; annotations: AnnotationRow[] };
  /** q at or below which an annotation counts as a label (default 0.05). */
  annotationAlpha?: number;
}

export function truthBlock(o: TruthInputs): TruthBlock {
  const T = o.responses.length;
  const U = o.unitNames.length;
  const F = o.featureNames.length;
  const series = (i: number) => Float64Array.from(o.responses, (r) => r[i]);
  const cut = (x: Float64Array) => x.subarray(0, T);
  const drivers = o.truth.features.filter((f) => o.truth.networks.some((n) => n.driver === f.name));
  const unitSeries = Array.from({ length: U }, (_, i) => series(i));

  // Each unit's best-tracked feature (over every feature, drivers or not).
  const best = unitSeries.map((u) => {
    let feature = '';
    let r = 0;
    for (const f of o.truth.features) {
      const x = pearson(u, cut(f.drive));
      if (Number.isFinite(x) && Math.abs(x) > Math.abs(r)) {
        r = x;
        feature = f.name;
      }
    }
    return { feature, r };
  });

  const networkOf = new Map(o.truth.networks.map((n) => [n.name, n]));
  const planted = new Uint8Array(U * F);
  const scored = new Uint8Array(U * F);
  for (let i = 0; i < U; i++) {
    for (let f = 0; f < F; f++) {
      const net = networkOf.get(o.featureNames[f]);
      if (!net) continue;
      const proxy = Math.abs(best[i].r) >= PROXY_R && net.driver === best[i].feature;
      if (proxy) {
        planted[i * F + f] = 1;
        scored[i * F + f] = 1;
      } else if (Math.abs(pearson(unitSeries[i], cut(net.signal))) < NULL_R) {
        scored[i * F + f] = 1;
      }
    }
  }
  const minFraction = o.minFraction ?? 0.5;
  const detected = detectedPairs(o.tally, minFraction);
  const byBand = PROXY_BANDS.map(([lo, hi]) => {
    let pairs = 0, hit = 0;
    for (let i = 0; i < U; i++) {
      const r = Math.abs(best[i].r);
      if (!(r >= lo && r < hi)) continue;
      for (let f = 0; f < F; f++) {
        if (networkOf.get(o.featureNames[f])?.driver !== best[i].feature) continue;
        pairs++;
        hit += detected[i * F + f];
      }
    }
    return { band: [lo, Math.min(hi, 1)] as [number, number], pairs, detected: hit, sensitivity: pairs && o.tally.count > 0 ? hit / pairs : NaN };
  });
  const keep = (m: Uint8Array) => Uint8Array.from(m.filter((_, j) => scored[j] === 1));
  const det = scoreDetections(keep(detected), keep(planted));

  const useUnits = (o.unitMaps?.units.length ?? 0) > 0;
  // Per driver, the maps scored: its proxies' own maps, or the regressor tracking it best.
  const picks = drivers.map((d) => {
    if (useUnits) {
      const units = (o.unitMaps as NonNullable<TruthInputs['unitMaps']>).units;
      return units.filter((i) => Math.abs(best[i].r) >= PROXY_R && best[i].feature === d.name).map((i) => ({ unit: i, r: best[i].r }));
    }
    let pick = o.glmUnits[0];
    let r = 0;
    for (const g of o.glmUnits) {
      const x = pearson(unitSeries[g], cut(d.drive));
      if (Number.isFinite(x) && Math.abs(x) > Math.abs(r)) {
        r = x;
        pick = g;
      }
    }
    return [{ unit: pick, r }];
  });
  const tmapOf = useUnits ? (o.unitMaps as NonNullable<TruthInputs['unitMaps']>).tmap : o.tmap;
  const maps = drivers.flatMap((d, j) => {
    const plantedMaps = plantedMap(o.truth.networks, d.name, Int32Array.from(o.maskIndices));
    return picks[j].map(({ unit, r }) => {
      const signed = Float32Array.from(tmapOf(unit), (v) => (r < 0 ? -v : v));
      return { feature: d.name, unit, regressor: o.unitNames[unit], r_with_drive: r, map_r: mapCorrelation(signed, plantedMaps) };
    });
  });
  const perDriver = (values: { feature: string; value: number }[]) => {
    const means = drivers
      .map((d) => values.filter((v) => v.feature === d.name && Number.isFinite(v.value)).map((v) => v.value))
      .filter((xs) => xs.length > 0)
      .map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length);
    return means.length ? means.reduce((a, b) => a + b, 0) / means.length : NaN;
  };

  // Annotation of the same maps: one of the driver's networks, with the network's sign
  // times the sign of the map's ρ with the drive.
  const annotated = useUnits ? (o.unitMaps as NonNullable<TruthInputs['unitMaps']>).annotations : o.annotations;
  const byUnit = new Map(annotated.map((a) => [a.unit, a]));
  const annotations = maps.flatMap((m) => {
    const a = byUnit.get(m.unit);
    if (!a) return [];
    const s = m.r_with_drive < 0 ? -1 : 1;
    const expected = o.truth.networks.filter((n) => n.driver === m.feature).map((n) => ({ name: n.name, sign: n.sign * s }));
    const correct = expected.some((e) => e.name === a.label && e.sign === a.sign);
    return [{ regressor: m.regressor, feature: m.feature, label: a.label, sign: a.sign, expected: expected.map((e) => `${e.sign < 0 ? '-' : '+'}${e.name}`), correct }];
  });

  const alpha = o.annotationAlpha ?? 0.05;
  const falseLabels = falseAnnotationLabels(annotated, o.truth.networks, alpha);
  // Nothing scored is no finding, not a sensitivity of 0.
  const scoredAny = o.tally.count > 0;
  return {
    sensitivity: scoredAny ? det.sensitivity : NaN,
    false_positive_rate: scoredAny ? det.falsePositiveRate : NaN,
    map_correlation: perDriver(maps.map((m) => ({ feature: m.feature, value: m.map_r }))),
    annotation_accuracy: perDriver(annotations.map((a) => ({ feature: a.feature, value: a.correct ? 1 : 0 }))),
    source: useUnits ? 'unit_maps' : 'glm_regressors',
    drivers_without_proxy: drivers.filter((_, j) => picks[j].length === 0).map((d) => d.name),
    annotation_false_labels: {
      count: falseLabels.count,
      labelled: falseLabels.labelled,
      fraction: falseLabels.fraction,
      alpha,
      labels: falseLabels.indices.map((i) => {
        const a = annotated[i];
        return { regressor: o.unitNames[a.unit], label: a.label, q: a.q };
      }),
    },
    detection: {
      planted_pairs: det.planted,
      not_planted_pairs: det.notPlanted,
      unscored_pairs: F * U - det.planted - det.notPlanted - countUnnamed(o.featureNames, networkOf) * U,
      true_positives: det.truePositives,
      false_positives: det.falsePositives,
      scored_trs: o.tally.count,
      proxy_r: PROXY_R,
      null_r: NULL_R,
      min_fraction: minFraction,
      by_proxy_r: byBand,
    },
    proxies: best.flatMap((b, unit) => (Math.abs(b.r) >= PROXY_R ? [{ unit, name: o.unitNames[unit], feature: b.feature, r: b.r }] : [])),
    maps,
    annotations,
  };
}

function countUnnamed(features: string[], networks: Map<string, unknown>): number {
  return features.filter((f) => !networks.has(f)).length;
}
