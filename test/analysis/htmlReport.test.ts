/** Which pairs the report's timelines show. */
import { describe, expect, it } from 'vitest';
import type { SessionInfo, TrState } from '../../protocol/state.ts';
import { timelinePairs } from '../../server/analysis/htmlReport.ts';

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
