/** Which pairs the report's timelines show. */
import { describe, expect, it } from 'vitest';
import type { SessionInfo, TrState } from '../../protocol/state.ts';
import { shortLayerNames, timelinePairs } from '../../server/analysis/htmlReport.ts';

const info = { features: ['a', 'b', 'c'] } as unknown as SessionInfo;

describe('timelinePairs', () => {
  it('takes the strongest coupled pair of each feature first, then the next strongest', () => {
    // Pairs index = unit·3 + feature; strongest first: three of feature a, then b, then c.
    const pairs = [0, 3, 6, 4, 8].map((index, k) => ({ index, unit: '', feature: '', r: 0, fraction: 1 - k / 10 }));
    const final = { coupling: new Float32Array(9) } as unknown as TrState;
    expect(timelinePairs({ pairs, final, info }).map((p) => p.index)).toEqual([0, 4, 8, 3]);
    expect(timelinePairs({ pairs, final, info }, 2).map((p) => p.index)).toEqual([0, 4]);
  });

  it('without coupled pairs, the largest |r| at the last TR (NaN left out), marked not significant', () => {
    const final = { coupling: Float32Array.of(0.1, -0.9, NaN, 0.5, 0.2, 0.3) } as unknown as TrState;
    const got = timelinePairs({ pairs: [], final, info }, 3);
    expect(got.map((p) => p.index)).toEqual([1, 3, 5]);
    expect(got.every((p) => !p.significant)).toBe(true);
  });
});

describe('shortLayerNames', () => {
  it('cuts what all names share, at a separator, and keeps distinct names distinct', () => {
    expect(shortLayerNames(['/features/features.1/Relu_output_0', '/features/features.4/Relu_output_0', '/features/features.11/Relu_output_0'])).toEqual(['1', '4', '11']);
    expect(shortLayerNames(['/relu2/Relu_output_0', 'logits'])).toEqual(['/relu2/Relu_o…', 'logits']);
    expect(shortLayerNames(['s1', 'c1', 's2'])).toEqual(['s1', 'c1', 's2']);
    expect(shortLayerNames(['conv_a', 'conv_b'])).toEqual(['a', 'b']);
    expect(shortLayerNames(['layer', 'layer_x'])).toEqual(['layer', 'layer_x']);
    expect(shortLayerNames(['only_one_rather_long_name'])).toEqual(['only_one_rath…']);
  });
});
