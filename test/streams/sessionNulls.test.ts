/**
 * The session's sliding-coupling nulls: a run of known length gets circular shifts of its
 * precomputed unit series (DESIGN.md §4), all `nulls` of them unless the run is shorter
 * than 2W + nulls − 1, with a warning saying why whenever it gets fewer; p-values exist
 * from the first full window, where lagged nulls would still be waiting for history.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeSession } from '../../server/analysis/analyze.ts';
import { ANNOTATION_NULLS_BUDGET_BYTES, nullShifts, nullShiftsWarning, openSession, temporalNullColumns, type OpenOptions } from '../../server/streams/session.ts';
import { fakeExtractor } from './pipelineFixtures.ts';

const TINY = join(import.meta.dirname, '..', '..', 'fixtures', 'tiny', 'session.json');
const opts = (engine: OpenOptions['engine']): OpenOptions => ({ model: fakeExtractor(), cacheDir: null, networks: 2, framesPerTr: 2, engine });

describe('session null shifts', () => {
  it('caps circular shifts at T − 2W + 1 and lagged ones at the first third of the run', () => {
    expect(nullShifts(100, 30, 300, 'circular')).toBe(100);
    expect(nullShifts(100, 30, 60, 'circular')).toBe(1);
    expect(nullShifts(100, 31, 60, 'circular')).toBe(0);
    expect(nullShifts(100, 30, 300)).toBe(20);
    expect(nullShiftsWarning(100, 0, 31, 60, 'circular')).toBe(
      'sliding coupling: no null shifts (100 asked for), so nothing is ever significant: circular shifts of a 60-TR run with window 31 must lie in [31, 29] (at most 0)',
    );
  });

  it('a 60-TR run at window 30 gets its one possible circular shift, with a warning saying why', async () => {
    const s = await openSession({ session: TINY }, opts({ window: 30, nulls: 100 }));
    try {
      expect(s.inputs.trCount).toBe(60);
      expect(s.nullKind).toBe('circular');
      expect(s.nullShifts).toBe(1);
      expect(s.warnings).toContain(
        'sliding coupling: 1 null shift instead of 100: circular shifts of a 60-TR run with window 30 must lie in [30, 30] (at most 1)',
      );
    } finally {
      await s.close();
    }
  });

  it('all asked-for shifts, no warning, and p-values for every defined pair from the first full window', async () => {
    const W = 8;
    const S = 20;
    const s = await openSession({ session: TINY }, opts({ window: W, nulls: S }));
    try {
      expect(s.nullKind).toBe('circular');
      expect(s.nullShifts).toBe(S);
      expect(s.warnings.filter((w) => w.startsWith('sliding coupling'))).toEqual([]);
      const pairs = s.info.units.length * s.info.features.length;
      let checked = 0;
      await analyzeSession(s, {
        annotateEvery: 0,
        stopAfter: W + 2,
        warn: () => {},
        onTr: (state) => {
          if (state.tr < W - 1) return;
          const { r, p } = s.engine.coupling(0.05);
          for (let q = 0; q < pairs; q++) {
            if (Number.isNaN(r[q])) expect(p[q]).toBeNaN();
            else {
              // Pooled over all pairs: p ≥ 1/(1 + S·pairs); lagged nulls (lags ≥ W) would give NaN until TR 2W − 1.
              expect(p[q]).toBeGreaterThanOrEqual(1 / (1 + S * pairs));
              expect(p[q]).toBeLessThanOrEqual(1);
              checked++;
            }
          }
        },
      });
      expect(checked).toBeGreaterThan(pairs);
    } finally {
      await s.close();
    }
  });
});

describe('temporalNullColumns (the unit annotation temporal null)', () => {
  const settings = { annotationNulls: 100, window: 30 };
  it('asks for annotation_nulls columns, fewer past the memory budget, none for a live or short run', () => {
    expect(temporalNullColumns(settings, 300, 25_760, 'circular', true)).toEqual({ count: 100, minShift: 30 });
    const big = temporalNullColumns(settings, 300, 403_192, 'circular', true);
    expect(big.count).toBe(Math.floor(ANNOTATION_NULLS_BUDGET_BYTES / (8 * 403_192)));
    expect(big.count).toBe(10);
    expect(big.warning).toMatch(/10 temporal null maps instead of 100/);
    // m = max(window, 20): a 60-TR run with window 6 shifts in [20, 40].
    expect(temporalNullColumns({ annotationNulls: 100, window: 6 }, 60, 500, 'circular', true)).toEqual({ count: 100, minShift: 20 });
    expect(temporalNullColumns(settings, 59, 500, 'circular', true)).toMatchObject({ count: 0, warning: expect.stringMatching(/no circular shift in \[30, 29\]/) });
    expect(temporalNullColumns(settings, 300, 500, 'lagged', true)).toMatchObject({ count: 0, warning: expect.stringMatching(/live run/) });
    expect(temporalNullColumns(settings, 300, 500, 'circular', false)).toEqual({ count: 0, minShift: 30 });
    expect(temporalNullColumns({ annotationNulls: 0, window: 30 }, 300, 500, 'circular', true)).toEqual({ count: 0, minShift: 30 });
  });

  it('the tiny session maps the shifted responses as extra columns: distinct (unit, shift) pairs, at most all of them', async () => {
    const s = await openSession({ session: TINY }, opts({ window: 6, nulls: 4, regressors: 3 }));
    try {
      const pairs = s.engine.unitMapNulls;
      // Every mapped unit × 21 shifts in [20, 40], or 100 when that is more.
      expect(s.mapUnits.length).toBeGreaterThan(0);
      expect(pairs.length).toBe(Math.min(100, s.mapUnits.length * 21));
      expect(new Set(pairs.map((p) => `${p.unit}:${p.shift}`)).size).toBe(pairs.length);
      for (const p of pairs) expect(p.shift >= 20 && p.shift <= 40).toBe(true);
    } finally {
      await s.close();
    }
  });
});
