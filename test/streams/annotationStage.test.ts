/**
 * The live annotation and `analyze`'s final tables are one code path: with unit maps the
 * stage labels every mapped CNN unit from its own map, and analyze's unit table is the
 * stage's rows at the last TR (a replay's dashboard ends on the same table); without unit
 * maps it labels the GLM regressors. The regressors' table analyze writes alongside is
 * their joint-GLM annotation at the end.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { analyzeSession } from '../../server/analysis/analyze.ts';
import { runPipeline } from '../../server/streams/pipeline.ts';
import type { OpenedSession } from '../../server/streams/session.ts';
import { annotationRows, regressorAnnotationRows } from '../../server/streams/annotationStage.ts';
import { openTiny } from './pipelineFixtures.ts';

const opened: OpenedSession[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

async function open(unitMaps?: 'none'): Promise<OpenedSession> {
  const s = await openTiny(unitMaps ? { engine: { regressors: 3, window: 10, nulls: 8, snapshotEvery: 4, unitMaps } } : {});
  opened.push(s);
  return s;
}

async function replay(s: OpenedSession) {
  const out = await lastValueFrom(
    runPipeline({ inputs: s.inputs, engine: s.engine, alpha: 0.05, speed: 'max', annotateEvery: 25, annotate: s.annotate, snapshotEvery: null }).pipe(toArray()),
  );
  return out.filter((t) => t.annotations !== null).map((t) => ({ tr: t.state.tr, rows: t.annotations ?? [] }));
}

describe('live annotation', () => {
  it('labels every mapped unit from its own map, and analyze ends with the same rows', async () => {
    const live = await open();
    const batch = await open();
    expect(live.mapUnits.length).toBeGreaterThan(live.glmUnits.length);
    const annotated = await replay(live);
    expect(annotated.map((a) => a.tr)).toEqual([24, 49, 59]);
    const last = annotated[annotated.length - 1].rows;
    expect(last.map((r) => r.unit)).toEqual(live.mapUnits);
    // Rows of the unit maps, not of the joint GLM: the engine's own unit annotation, label for label.
    const own = live.engine.annotate(live.mapUnits, 'unit');
    expect(last.map((r) => [r.label, r.sign, r.score, r.p, r.q])).toEqual(own.map((a) => [a.label, a.sign, a.score, a.p, a.q]));
    expect(annotationRows(live.engine)).toEqual(last);

    const run = await analyzeSession(batch, { annotateEvery: 25 });
    expect(run.unitAnnotations).toEqual(last);
    // The regressors' table is still written, from their joint-GLM maps at the end.
    expect(run.annotations.map((r) => r.unit)).toEqual(batch.glmUnits);
    expect(run.annotations).toEqual(regressorAnnotationRows(live.engine));
  });

  it('labels the GLM regressors when no unit has a map of its own (unit_maps: "none")', async () => {
    const live = await open('none');
    const batch = await open('none');
    expect(live.mapUnits).toEqual([]);
    const annotated = await replay(live);
    const last = annotated[annotated.length - 1].rows;
    expect(last.map((r) => r.unit)).toEqual(live.glmUnits);
    const run = await analyzeSession(batch, { annotateEvery: 25 });
    expect(run.annotations).toEqual(last);
    expect(run.unitAnnotations).toEqual([]);
  });

  it('annotates where a run stopped off the stride, as a seek does', async () => {
    const s = await open();
    const run = await analyzeSession(s, { annotateEvery: 25, stopAfter: 40 });
    expect(run.final.tr).toBe(39);
    expect(run.unitAnnotations).toEqual(annotationRows(s.engine));
  });
});
