/** The annotation table's rows: names and layers joined in, layer filter, sorting with non-finite values last. */
import { describe, expect, it } from 'vitest';
import { annotationRows } from '../../client/src/lib/annotationTable.ts';
import type { AnnotationRow } from '../../protocol/state.ts';

const session = {
  units: [
    { index: 0, layer: 's1', channel: 0 },
    { index: 1, layer: 'c1', channel: 0 },
    { index: 2, layer: 'pca', channel: 0 },
    { index: 3, layer: 'pca', channel: 1 },
  ],
  regressors: ['pc1', 'pc2'],
};
const rows: AnnotationRow[] = [
  { unit: 2, label: 'visual', sign: 1, score: 0.4, p: 0.01, q: 0.02 },
  { unit: 3, label: 'motion', sign: -1, score: 0.7, p: 0.001, q: 0.004 },
  { unit: 1, label: 'colour', sign: 1, score: null as unknown as number, p: null as unknown as number, q: null as unknown as number },
  { unit: 0, label: 'auditory', sign: 1, score: 0.1, p: 0.5, q: 0.5 },
];

describe('annotation table rows', () => {
  it('sorts by score, best first, with missing scores last in both directions', () => {
    const desc = annotationRows(session, rows, { layer: null, sort: 'score', descending: true });
    expect(desc.map((r) => r.name)).toEqual(['pc2', 'pc1', 's1:0', 'c1:0']);
    const asc = annotationRows(session, rows, { layer: null, sort: 'score', descending: false });
    expect(asc.map((r) => r.name)).toEqual(['s1:0', 'pc1', 'pc2', 'c1:0']);
  });

  it('sorts by label and p, and filters by layer', () => {
    expect(annotationRows(session, rows, { layer: null, sort: 'label', descending: false }).map((r) => r.label)).toEqual(['auditory', 'colour', 'motion', 'visual']);
    expect(annotationRows(session, rows, { layer: null, sort: 'p', descending: false }).map((r) => r.unit)).toEqual([3, 2, 0, 1]);
    const pca = annotationRows(session, rows, { layer: 'pca', sort: 'unit', descending: false });
    expect(pca.map((r) => [r.name, r.layer])).toEqual([
      ['pc1', 'pca'],
      ['pc2', 'pca'],
    ]);
  });

  it('does not modify the rows it was given', () => {
    const copy = JSON.parse(JSON.stringify(rows));
    annotationRows(session, rows, { layer: null, sort: 'q', descending: true });
    expect(JSON.parse(JSON.stringify(rows))).toEqual(copy);
  });
});

describe('annotation table with a row per CNN unit', () => {
  // Layers named so that the alphabetical order (c, pca, s, z) is not the model's (s, c, z, pca).
  const layers = ['s1', 'c1', 'z9'];
  const units = [
    ...layers.flatMap((layer) => Array.from({ length: 100 }, (_, channel) => ({ layer, channel }))),
    { layer: 'pca', channel: 0 },
  ].map((u, index) => ({ index, ...u }));
  const big = { units, regressors: ['pc1'] };
  // Every unit but the regressor, listed from the last to the first, with scores that do not follow the order.
  const many: AnnotationRow[] = units
    .slice(0, 300)
    .reverse()
    .map((u) => ({ unit: u.index, label: 'visual', sign: 1, score: ((u.index * 37) % 101) / 101, p: 0.01, q: ((u.index * 53) % 97) / 97 }));

  it('sorts by layer in the model order, channel by channel within a layer, both ways', () => {
    const asc = annotationRows(big, many, { layer: null, sort: 'layer', descending: false });
    expect(asc).toHaveLength(300);
    expect(asc.map((r) => r.unit)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(asc[100].name).toBe('c1:0');
    const desc = annotationRows(big, many, { layer: null, sort: 'layer', descending: true });
    expect(desc.slice(0, 2).map((r) => r.name)).toEqual(['z9:0', 'z9:1']);
    expect(desc[299].name).toBe('s1:99');
  });

  it('sorts hundreds of rows by q and keeps one layer when filtered', () => {
    const byQ = annotationRows(big, many, { layer: null, sort: 'q', descending: false });
    for (let i = 1; i < byQ.length; i++) expect(byQ[i].q).toBeGreaterThanOrEqual(byQ[i - 1].q);
    const c1 = annotationRows(big, many, { layer: 'c1', sort: 'score', descending: true });
    expect(c1).toHaveLength(100);
    expect(new Set(c1.map((r) => r.layer))).toEqual(new Set(['c1']));
    for (let i = 1; i < c1.length; i++) expect(c1[i].score).toBeLessThanOrEqual(c1[i - 1].score);
  });
});
