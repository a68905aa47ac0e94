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
