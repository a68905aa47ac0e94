/** The TSV tables: columns, n/a for undefined values, and the time series picking the right pair. */
import { describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../protocol/state.ts';
import { annotationTable, ckaSeriesTable, couplingSeriesTable, num, regressorLayer } from '../../server/analysis/tables.ts';

const info = {
  units: [
    { index: 0, layer: 'c1', channel: 0 },
    { index: 1, layer: 'c1', channel: 1 },
    { index: 2, layer: 'regressor', channel: 0 },
  ],
  regressors: ['c1:1'],
  features: ['visual', 'motion'],
  layers: [{ name: 'c1', channels: 2 }],
} as unknown as SessionInfo;

describe('analysis tables', () => {
  it('writes 6 significant digits and n/a for NaN', () => {
    expect(num(0.123456789)).toBe('0.123457');
    expect(num(NaN)).toBe('n/a');
    expect(num(Infinity)).toBe('n/a');
  });

  it('coupling time series: one column per pair, the value of that pair at each TR', () => {
    const series = { trs: [0, 1, 2], coupling: [0, 1, 2].map((t) => Float32Array.from({ length: 6 }, (_, j) => (t === 0 ? NaN : t * 10 + j))), cka: [], unitResponses: [], features: [] };
    const text = couplingSeriesTable(series, 2, [
      { index: 3, unit: 'c1:1', feature: 'motion', r: 0, fraction: 1 },
      { index: 4, unit: 'c1:1', feature: 'visual', r: 0, fraction: 1 },
    ]);
    expect(text.split('\n')).toEqual(['tr\ttime\tc1:1@motion\tc1:1@visual', '0\t0\tn/a\tn/a', '1\t2\t13\t14', '2\t4\t23\t24', '']);
  });

  it('CKA time series: a column per layer', () => {
    const series = { trs: [5], coupling: [], cka: [Float32Array.of(0.25)], unitResponses: [], features: [] };
    expect(ckaSeriesTable(series, 1, ['c1'])).toBe('tr\ttime\tc1\n5\t5\t0.25\n');
  });

  it('annotation table gives a chosen unit its CNN layer', () => {
    expect(regressorLayer(info, 2)).toBe('c1');
    expect(regressorLayer(info, 0)).toBe('c1');
    const text = annotationTable(info, [{ unit: 2, label: 'visual', sign: -1, score: 0.5, p: 0.01, q: NaN }]);
    expect(text).toBe('layer\tunit\tlabel\tsign\tscore\tp\tq\nc1\tc1:1\tvisual\t-1\t0.5\t0.01\tn/a\n');
  });
});
