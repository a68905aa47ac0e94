/**
 * The truth block's scoring rules on hand-made inputs where every answer is known: which
 * (unit, network) pairs are planted, not planted or not scored, what counts as detected,
 * and how maps and annotation are scored on each driver's best regressor.
 */
import { describe, expect, it } from 'vitest';
import { SignificanceTally } from '../../server/engine/truthScore.ts';
import { pearson } from '../../server/analysis/correlation.ts';
import { truthBlock, type TruthInputs } from '../../server/analysis/truth.ts';
import { jsonNumbers } from '../../server/analysis/atomicFolder.ts';
import { createRng } from '../../server/engine/random.ts';

const T = 120;
const rng = createRng(5);
const noise = () => Float64Array.from({ length: T }, () => rng.normal());
/** b made exactly orthogonal to a (and centred), so ρ(a, b) = 0. */
function orthogonal(a: Float64Array, b: Float64Array): Float64Array {
  const ma = a.reduce((s, x) => s + x, 0) / T;
  const mb = b.reduce((s, x) => s + x, 0) / T;
  const ac = a.map((x) => x - ma);
  const bc = b.map((x) => x - mb);
  const k = ac.reduce((s, x, i) => s + x * bc[i], 0) / ac.reduce((s, x) => s + x * x, 0);
  return bc.map((x, i) => x - k * ac[i]);
}

const a = noise();
const b = orthogonal(a, noise());
const nullSignal = orthogonal(b, orthogonal(a, noise()));
const V = 50;
const mapA = Float32Array.from({ length: V }, (_, v) => (v < 10 ? 1 : 0));

function inputs(significant: (unit: number, feature: number, k: number) => boolean): TruthInputs {
  // Units: 0 = a, 1 = −a (both proxies of a), 2 = b (proxy of b, which drives nothing),
  // 3 = half a (ρ ≈ 0.6 with a: not scored against A), 4 = the GLM regressor (−a).
  const other = orthogonal(a, noise());
  const scale = Math.sqrt(a.reduce((s, y) => s + y * y, 0) / other.reduce((s, y) => s + y * y, 0));
  const half = a.map((x, i) => 0.6 * x + 0.8 * scale * other[i]);
  const units = [a, a.map((x) => -x), b, half, a.map((x) => -x)];
  const responses = Array.from({ length: T }, (_, k) => Float64Array.from(units, (u) => u[k]));
  const features = ['A', 'N', 'network_1'];
  const tally = new SignificanceTally(units.length * features.length);
  for (let k = 0; k < T; k++) tally.add(Uint8Array.from({ length: units.length * 3 }, (_, j) => (significant(Math.floor(j / 3), j % 3, k) ? 1 : 0)));
  return {
    truth: {
      networks: [
        { name: 'A', driver: 'a', sign: 1, map: mapA, signal: a },
        { name: 'N', driver: null, sign: 1, map: new Float32Array(V), signal: nullSignal },
      ],
      features: [
        { name: 'a', drive: a },
        { name: 'b', drive: b },
      ],
    },
    responses,
    unitNames: ['u0', 'u1', 'u2', 'u3', 'pc1'],
    featureNames: features,
    tally,
    glmUnits: [4],
    // The regressor is −a: its t-map is −mapA (plus a little noise).
    tmap: () => Float32Array.from(mapA, (x, v) => -x + 0.01 * Math.sin(v)),
    maskIndices: Uint32Array.from({ length: V }, (_, v) => v),
    annotations: [{ unit: 4, label: 'A', sign: -1, score: 0.9, p: 0.01, q: 0.01 }],
  };
}

describe('truth block', () => {
  it('classifies pairs: proxies of the driver are planted, unrelated pairs not, half-proxies unscored', () => {
    const x = inputs(() => false);
    expect(pearson(x.responses.map((r) => r[3]), a)).toBeCloseTo(0.6, 1);
    const t = truthBlock(x);
    // Planted: u0, u1 and pc1 with A. Not planted: every unit with N (null signal ⟂ a, b),
    // u2 with A (b ⟂ a). Unscored: u3 with A; every unit with the unnamed network_1.
    expect(t.detection.planted_pairs).toBe(3);
    expect(t.detection.not_planted_pairs).toBe(5 + 1);
    expect(t.detection.unscored_pairs).toBe(1);
    expect(t.proxies.map((p) => [p.name, p.feature])).toEqual([
      ['u0', 'a'],
      ['u1', 'a'],
      ['u2', 'b'],
      ['pc1', 'a'],
    ]);
    expect(t.sensitivity).toBe(0);
    expect(t.false_positive_rate).toBe(0);
  });

  it('detection needs significance in at least half the TRs; sign does not matter', () => {
    const t = truthBlock(
      inputs((u, f, k) => {
        if (f === 0 && (u === 0 || u === 1)) return true; // planted, always
        if (f === 0 && u === 4) return k % 2 === 0; // planted, exactly half the TRs
        if (f === 1 && u === 2) return k < T / 2 - 1; // a false positive just under half: not detected
        if (f === 1 && u === 3) return true; // a false positive
        if (f === 2) return true; // unnamed feature: never scored
        return false;
      }),
    );
    expect(t.detection.true_positives).toBe(3);
    expect(t.sensitivity).toBe(1);
    expect(t.detection.false_positives).toBe(1);
    expect(t.false_positive_rate).toBeCloseTo(1 / 6, 12);
    expect(t.detection.by_proxy_r.at(-1)).toMatchObject({ pairs: 3, detected: 3 });
  });

  it('maps and annotation are scored on the regressor that tracks each driver, signed by its ρ', () => {
    const t = truthBlock(inputs(() => false));
    expect(t.maps).toHaveLength(1);
    expect(t.maps[0]).toMatchObject({ feature: 'a', regressor: 'pc1' });
    expect(t.maps[0].r_with_drive).toBeCloseTo(-1, 12);
    // −(−mapA) correlates with mapA almost perfectly.
    expect(t.map_correlation).toBeGreaterThan(0.99);
    // Labelled A with sign −1: right, since the regressor is −a.
    expect(t.annotations).toEqual([{ regressor: 'pc1', feature: 'a', label: 'A', sign: -1, expected: ['-A'], correct: true }]);
    expect(t.annotation_accuracy).toBe(1);
    const wrong = truthBlock({ ...inputs(() => false), annotations: [{ unit: 4, label: 'A', sign: 1, score: 0.9, p: 0.01, q: 0.01 }] });
    expect(wrong.annotation_accuracy).toBe(0);
  });

  it('with unit maps: every proxy unit of a driver is scored on its own map, averaged per driver', () => {
    // u0 = a with map +mapA, u1 = −a with map −mapA·0.5 + a ramp (a worse map), u3 (half a)
    // is no proxy; u2 proxies b, which drives nothing (not scored).
    const ramp = Float32Array.from({ length: V }, (_, v) => v / V);
    const own = new Map<number, Float32Array>([
      [0, mapA.slice()],
      [1, Float32Array.from(mapA, (x, v) => -0.5 * x + ramp[v])],
      [2, ramp],
      [3, mapA.slice()],
    ]);
    const unitAnnotations = [
      { unit: 0, label: 'A', sign: 1 as const, score: 0.9, p: 0.01, q: 0.01 },
      { unit: 1, label: 'A', sign: 1 as const, score: 0.5, p: 0.01, q: 0.02 }, // wrong sign for −a
      { unit: 2, label: 'N', sign: 1 as const, score: 0.4, p: 0.01, q: 0.03 }, // a false label
      { unit: 3, label: 'A', sign: 1 as const, score: 0.4, p: 0.01, q: 0.04 },
    ];
    const t = truthBlock({ ...inputs(() => false), unitMaps: { units: [0, 1, 2, 3], tmap: (u) => own.get(u) as Float32Array, annotations: unitAnnotations } });
    expect(t.source).toBe('unit_maps');
    expect(t.maps.map((m) => m.regressor)).toEqual(['u0', 'u1']);
    const r1 = pearson(Float64Array.from(own.get(1) as Float32Array, (x) => -x), Float64Array.from(mapA));
    expect(t.maps[0].map_r).toBeCloseTo(1, 6);
    expect(t.maps[1].map_r).toBeCloseTo(r1, 6);
    expect(t.map_correlation).toBeCloseTo((1 + r1) / 2, 6);
    expect(t.annotations.map((a) => a.correct)).toEqual([true, false]);
    expect(t.annotation_accuracy).toBe(0.5);
    expect(t.annotation_false_labels).toMatchObject({ count: 1, labelled: 4, labels: [{ regressor: 'u2', label: 'N', q: 0.03 }] });
    expect(t.drivers_without_proxy).toEqual([]);
    // Mapped units that proxy no driver: the driver is listed, and nothing is averaged.
    const none = truthBlock({ ...inputs(() => false), unitMaps: { units: [2, 3], tmap: (u) => own.get(u) as Float32Array, annotations: [] } });
    expect(none.drivers_without_proxy).toEqual(['a']);
    expect(none.map_correlation).toBeNaN();
    expect(none.annotation_accuracy).toBeNaN();
  });

  it('a regressor labelled with a null network at q ≤ 0.05 is a false label', () => {
    const base = inputs(() => false);
    const clean = truthBlock(base);
    expect(clean.annotation_false_labels).toEqual({ count: 0, labelled: 1, fraction: 0, alpha: 0.05, labels: [] });
    const t = truthBlock({
      ...base,
      unitNames: ['u0', 'u1', 'u2', 'u3', 'pc1'],
      annotations: [
        { unit: 4, label: 'A', sign: -1, score: 0.9, p: 0.01, q: 0.01 },
        { unit: 2, label: 'N', sign: 1, score: 0.4, p: 0.01, q: 0.03 }, // N is driven by nothing
        { unit: 3, label: 'N', sign: 1, score: 0.1, p: 0.3, q: 0.4 }, // not significant: no label
      ],
    });
    expect(t.annotation_false_labels).toEqual({ count: 1, labelled: 2, fraction: 0.5, alpha: 0.05, labels: [{ regressor: 'u2', label: 'N', q: 0.03 }] });
    // The driver's own regressor is still scored as before.
    expect(t.annotation_accuracy).toBe(1);
    // Labelled N itself, the driver's regressor is both wrong and a false label.
    const wrong = truthBlock({ ...base, annotations: [{ unit: 4, label: 'N', sign: -1, score: 0.9, p: 0.01, q: 0.01 }] });
    expect(wrong.annotation_accuracy).toBe(0);
    expect(wrong.annotation_false_labels).toMatchObject({ count: 1, labelled: 1, fraction: 1 });
  });

  it('with no TR scored, sensitivity and false-positive rate are undefined (NaN), not 0', () => {
    const x = inputs(() => true);
    const empty = { ...x, tally: new SignificanceTally(x.tally.pairs) };
    const t = truthBlock(empty);
    expect(t.detection.scored_trs).toBe(0);
    expect(t.sensitivity).toBeNaN();
    expect(t.false_positive_rate).toBeNaN();
    expect(t.detection.by_proxy_r.every((b) => Number.isNaN(b.sensitivity))).toBe(true);
    expect(JSON.parse(JSON.stringify(t, jsonNumbers))).toMatchObject({ sensitivity: null, false_positive_rate: null });
    // The same pairs with TRs scored: defined.
    expect(truthBlock(x).sensitivity).toBe(1);
  });
});
