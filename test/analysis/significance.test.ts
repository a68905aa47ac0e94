/**
 * A run too short for significance says so: on the committed tiny fixture (60 TRs, window
 * 31, 100 nulls asked for) no circular null fits (it needs 2W TRs), so no TR is scored; report.json's
 * `significance` block gives the reason and the run lengths that would do, one warning
 * line is emitted, and the truth block's sensitivity and false-positive rate are null, not
 * 0. The same fixture with a short window is scored from the TR session.ts says.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeSession, reportJson } from '../../server/analysis/analyze.ts';
import { jsonNumbers } from '../../server/analysis/atomicFolder.ts';
import { minTrsForNulls, significanceCoverage, significanceWarning } from '../../server/analysis/significance.ts';
import { nullShifts, nullsReadyAt, openSession } from '../../server/streams/session.ts';

const TINY = join(import.meta.dirname, '..', '..', 'fixtures', 'tiny', 'session.json');
let cacheDir: string;

beforeAll(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'syncact-significance-'));
});
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('minimum run length for lagged nulls', () => {
  it("is the shortest run session.ts gives that many nulls, all ready before its last TR", () => {
    for (const window of [1, 6, 30, 45]) {
      for (const shifts of [1, 4, 100]) {
        const t = minTrsForNulls(window, shifts)!;
        expect(t).toBe(3 * (2 * shifts + 2 * window - 1));
        expect(nullShifts(shifts, window, t)).toBe(shifts);
        expect(nullsReadyAt(shifts, window)).toBeLessThan(t);
        expect(nullShifts(shifts, window, t - 1)).toBeLessThan(shifts);
      }
    }
    expect(minTrsForNulls(30, 0)).toBeNull();
  });

  it('for circular nulls is 2·window + shifts − 1, all ready from the first full window', () => {
    for (const window of [1, 6, 30, 45]) {
      for (const shifts of [1, 4, 100]) {
        const t = minTrsForNulls(window, shifts, 'circular')!;
        expect(t).toBe(2 * window + shifts - 1);
        expect(nullShifts(shifts, window, t, 'circular')).toBe(shifts);
        expect(nullShifts(shifts, window, t - 1, 'circular')).toBeLessThan(shifts);
        expect(nullsReadyAt(shifts, window, 'circular')).toBe(window - 1);
      }
    }
  });

  it('gives a reason for each way of scoring nothing, and none when TRs were scored', () => {
    const base = { trCount: 60, trs: 60, window: 30, nulls: 100, nullShifts: 0, scoredTrs: 0 };
    expect(significanceCoverage(base).reason).toBe('60 TRs are too short for lagged nulls with window 30: at least 183 TRs are needed for one null, 777 for all 100');
    expect(significanceCoverage({ ...base, nulls: 0 }).reason).toBe('nulls is 0: significance is off');
    expect(significanceCoverage({ ...base, trCount: 900, trs: 50, nullShifts: 100 }).reason).toMatch(/stopped after 50 TRs, before its 100 lagged nulls were ready at TR 258/);
    const ok = significanceCoverage({ ...base, trCount: 900, trs: 900, nullShifts: 100, scoredTrs: 642 });
    expect(ok).toMatchObject({ scored_trs: 642, first_scored_tr: 258, null_shifts: 100, reason: null });
    expect(significanceWarning(ok)).toBeNull();
  });
});

describe('analysis of the tiny fixture', () => {
  it('60 TRs at window 31: nothing scored, explained in report.json and one warning; truth sensitivity/FPR null', async () => {
    const s = await openSession({ session: TINY }, { framesPerTr: 2, cacheDir, engine: { window: 31 } });
    try {
      expect(s.nullKind).toBe('circular');
      expect(s.warnings.some((w) => /no null shifts .*at most 0/.test(w))).toBe(true);
      const warnings: string[] = [];
      const run = await analyzeSession(s, { annotateEvery: 0, warn: (l) => warnings.push(l) });
      expect(run.tally.count).toBe(0);
      expect(run.significance).toEqual({
        scored_trs: 0,
        first_scored_tr: null,
        null_shifts: 0,
        nulls_requested: s.settings.nulls,
        window: 31,
        min_trs_any_null: 62,
        min_trs_all_nulls: 62 + s.settings.nulls - 1,
        reason: expect.stringContaining('60 TRs are too short for circular nulls with window 31: at least 62 TRs'),
      });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^no TR was scored for significance .*: 60 TRs are too short/);
      expect(warnings[0]).not.toContain('\n');
      const report = reportJson(s, run);
      const json = JSON.parse(JSON.stringify(report, jsonNumbers));
      expect(json.significance).toEqual(JSON.parse(JSON.stringify(run.significance)));
      expect(json.truth.sensitivity).toBeNull();
      expect(json.truth.false_positive_rate).toBeNull();
      expect(json.truth.detection.scored_trs).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('the same fixture with window 6 and 4 nulls is scored from the first full window, with no warning', async () => {
    const s = await openSession({ session: TINY }, { framesPerTr: 2, cacheDir, engine: { window: 6, nulls: 4 } });
    try {
      const warnings: string[] = [];
      const run = await analyzeSession(s, { annotateEvery: 0, warn: (l) => warnings.push(l) });
      const ready = nullsReadyAt(4, 6, 'circular');
      expect(ready).toBe(5);
      expect(run.significance).toMatchObject({ scored_trs: 60 - ready, first_scored_tr: ready, null_shifts: 4, reason: null });
      expect(warnings).toEqual([]);
      expect(Number.isFinite(run.truth!.sensitivity)).toBe(true);
    } finally {
      await s.close();
    }
  });
});
