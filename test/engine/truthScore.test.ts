import { describe, it, expect } from 'vitest';
import {
  SignificanceTally,
  detectedPairs,
  falseAnnotationLabels,
  mapCorrelation,
  plantedMap,
  plantedPairs,
  scoreAnnotations,
  scoreDetections,
} from '../../server/engine/truthScore.ts';
import { SyncactError } from '../../server/errors.ts';

const networks = [
  { name: 'visual', driver: 'contrast', sign: 1 as const, map: Float32Array.from([1, 0.5, 0, 0, 0]) },
  { name: 'motion', driver: 'motion', sign: 1 as const, map: Float32Array.from([0, 0, 1, 0, 0]) },
  { name: 'default_mode', driver: 'contrast', sign: -1 as const, map: Float32Array.from([0, 0, 0, 1, 0]) },
  { name: 'null_frontal', driver: null, sign: 1 as const, map: Float32Array.from([0, 0, 0, 0, 1]) },
];
const units = ['luminance', 'contrast', 'motion'];
const features = ['visual', 'motion', 'default_mode', 'null_frontal', 'atom_0'];

describe('truth scoring', () => {
  it('plants exactly the driver → network pairs, unit-major', () => {
    const p = plantedPairs(networks, units, features);
    const F = features.length;
    const on = Array.from(p.keys()).filter((i) => p[i]).map((i) => `${units[Math.floor(i / F)]}→${features[i % F]}`);
    expect(on).toEqual(['contrast→visual', 'contrast→default_mode', 'motion→motion']);
  });

  it('tallies significant TRs and detects pairs at the fraction, inclusive', () => {
    const t = new SignificanceTally(3);
    expect(Array.from(t.fractions()).every(Number.isNaN)).toBe(true);
    t.add(Uint8Array.from([1, 1, 0]));
    t.add(Uint8Array.from([1, 0, 0]));
    t.add(Uint8Array.from([1, 0, 1]));
    t.add(Uint8Array.from([0, 1, 0]));
    expect(t.count).toBe(4);
    expect(Array.from(t.fractions())).toEqual([0.75, 0.5, 0.25]);
    expect(Array.from(detectedPairs(t))).toEqual([1, 1, 0]);
    expect(Array.from(detectedPairs(t, 0.6))).toEqual([1, 0, 0]);
    expect(() => t.add(new Uint8Array(2))).toThrowError(SyncactError);
    expect(() => detectedPairs(t, 0)).toThrowError(/minFraction/);
  });

  it('scores sensitivity and false-positive rate', () => {
    const planted = Uint8Array.from([1, 1, 0, 0, 0, 0]);
    const s = scoreDetections(Uint8Array.from([1, 0, 1, 0, 0, 0]), planted);
    expect(s).toEqual({ planted: 2, notPlanted: 4, truePositives: 1, falsePositives: 1, sensitivity: 0.5, falsePositiveRate: 0.25 });
    expect(scoreDetections(new Uint8Array(2), new Uint8Array(2)).sensitivity).toBeNaN();
  });

  it('builds the signed planted map of a driver over the masked voxels', () => {
    const maskIndex = Int32Array.from([0, 1, 3, 4]);
    expect(Array.from(plantedMap(networks, 'contrast', maskIndex))).toEqual([1, 0.5, -1, 0]);
    expect(Array.from(plantedMap(networks, 'luminance', maskIndex))).toEqual([0, 0, 0, 0]);
    const truth = plantedMap(networks, 'contrast', maskIndex);
    expect(mapCorrelation(Float32Array.from(truth, (x) => 3 * x + 1), truth)).toBeCloseTo(1, 12);
    expect(mapCorrelation(Float32Array.from(truth, (x) => -x), truth)).toBeCloseTo(-1, 12);
    expect(mapCorrelation(new Float32Array(4), truth)).toBeNaN();
  });

  it('counts an annotation right only with a planted network and its sign', () => {
    const { accuracy, verdicts } = scoreAnnotations(
      [
        { label: 'null_frontal', sign: 1 }, // luminance drives nothing: not scored
        { label: 'default_mode', sign: 1 }, // right network, wrong sign
        { label: 'motion', sign: 1 },
      ],
      units,
      networks,
    );
    expect(accuracy).toBe(0.5);
    expect(verdicts.map((v) => v.correct)).toEqual([false, false, true]);
    expect(verdicts[1].expected).toEqual([
      { name: 'visual', sign: 1 },
      { name: 'default_mode', sign: -1 },
    ]);
    expect(scoreAnnotations([{ label: 'default_mode', sign: -1 }], ['contrast'], networks).accuracy).toBe(1);
  });

  it('counts a label naming a null network at q ≤ alpha as false, over the labels at q ≤ alpha', () => {
    const rows = [
      { label: 'null_frontal', q: 0.01 }, // false: nothing drives null_frontal
      { label: 'visual', q: 0.04 }, // a driven network: not a false label here
      { label: 'null_frontal', q: 0.05 }, // at alpha: counts
      { label: 'null_frontal', q: 0.2 }, // not significant: not a label
      { label: 'motion', q: NaN }, // never tested: not a label
    ];
    const f = falseAnnotationLabels(rows, networks);
    expect(f).toEqual({ count: 2, labelled: 3, fraction: 2 / 3, indices: [0, 2] });
    expect(falseAnnotationLabels(rows, networks, 0.01)).toMatchObject({ count: 1, labelled: 1, fraction: 1 });
    expect(falseAnnotationLabels([{ label: 'visual', q: 0.5 }], networks).fraction).toBeNaN();
    expect(() => falseAnnotationLabels(rows, networks, 0)).toThrow(SyncactError);
  });
});
