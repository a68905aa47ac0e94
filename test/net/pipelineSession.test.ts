/**
 * The pipeline as the server's LiveSession: the states and annotations it serves are the
 * pipeline's own, maps are the engine's read-outs (each unit's own map, or a regressor's in
 * the joint GLM; networks are atlas
 * regions then learned atoms), and control commands steer the clock or are refused with
 * a typed error.
 */
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { denseWeights } from '../../server/io/atlas.ts';
import { pipelineLiveSession } from '../../server/net/pipelineSession.ts';
import { runPipeline } from '../../server/streams/pipeline.ts';
import type { OpenedSession } from '../../server/streams/session.ts';
import { openTiny, stateValues } from '../streams/pipelineFixtures.ts';

const opened: OpenedSession[] = [];
async function tiny(): Promise<OpenedSession> {
  const s = await openTiny();
  opened.push(s);
  return s;
}
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

describe('pipelineLiveSession', () => {
  it('serves the pipeline\'s states and annotations unchanged, and reports each state to onState', async () => {
    const a = await tiny();
    const seen: number[] = [];
    const live = pipelineLiveSession(a, { speed: 'max', onState: (s) => seen.push(s.tr) });
    const annotations: unknown[] = [];
    live.annotations$.subscribe((rows) => annotations.push(rows));
    const states = await lastValueFrom(live.state$.pipe(toArray()));
    const b = await tiny();
    const reference = await lastValueFrom(
      runPipeline({
        inputs: b.inputs,
        engine: b.engine,
        alpha: b.settings.fdrQ,
        speed: 'max',
        annotateEvery: b.settings.snapshotEvery,
        annotate: b.annotate,
        snapshotEvery: b.settings.snapshotEvery,
        frame: b.frame,
      }).pipe(toArray()),
    );
    expect(states.map((s) => s.tr)).toEqual(reference.map((t) => t.state.tr));
    expect(states.map((s) => stateValues({ state: s, annotations: null, caughtUp: 0 }))).toEqual(
      reference.map((t) => stateValues({ ...t, annotations: null })),
    );
    expect(annotations).toEqual(reference.filter((t) => t.annotations).map((t) => t.annotations));
    expect(annotations.length).toBeGreaterThan(0);
    expect(seen).toEqual(states.map((s) => s.tr));
  });

  it('maps: GLM units (t and beta), atlas regions, learned networks; nothing for other units or unknown indices', async () => {
    const s = await tiny();
    const live = pipelineLiveSession(s, { speed: 'max' });
    expect(live.map('unit-t', s.glmUnits[0])).toBeUndefined(); // before the first TR
    const last = (await lastValueFrom(live.state$.pipe(toArray()))).at(-1)!;
    expect(s.engine.fitted).toBe(true);
    const u = s.glmUnits[1];
    const t = live.map('unit-t', u)!;
    expect(t).toMatchObject({ kind: 'unit-t', index: u, tr: last.tr });
    expect(Array.from(t.values)).toEqual(Array.from(s.engine.tmap(u)));
    expect(Array.from(live.map('unit-beta', u)!.values)).toEqual(Array.from(s.engine.betas(u)));
    // A CNN unit's map is its own GLM's (every unit has one by default).
    expect(s.info.mapUnits).toEqual(s.mapUnits);
    const own = s.mapUnits[1];
    expect(Array.from(live.map('unit-t', own)!.values)).toEqual(Array.from(s.engine.unitTmap(own)));
    expect(Array.from(live.map('unit-beta', own)!.values)).toEqual(Array.from(s.engine.unitBetas(own)));
    const regions = s.atlas!.names.length;
    expect(Array.from(live.map('network', 1)!.values)).toEqual(Array.from(denseWeights(s.atlas!, 1)));
    expect(Array.from(live.map('network', regions + 1)!.values)).toEqual(Array.from(s.engine.atom(1)));
    expect(live.map('network', s.info.features.length)).toBeUndefined();
    expect(live.map('unit-t', s.info.units.length + 5)).toBeUndefined();
  });

  it('a unit that is neither a regressor nor mapped (unit_maps names others) has no map', async () => {
    const s = await openTiny({ engine: { regressors: 3, window: 10, nulls: 8, snapshotEvery: 4, unitMaps: [1] } });
    opened.push(s);
    const live = pipelineLiveSession(s, { speed: 'max' });
    expect(live.map('unit-t', 1)).toBeUndefined(); // before the third TR
    await lastValueFrom(live.state$.pipe(toArray()));
    expect(s.info.mapUnits).toEqual([1]);
    expect(Array.from(live.map('unit-t', 1)!.values)).toEqual(Array.from(s.engine.unitTmap(1)));
    expect(live.map('unit-t', 0)).toBeUndefined();
  });

  it('refuses a seek past the run and a selection that does not exist, with PROTOCOL_CONTROL_FAILED', async () => {
    const s = await tiny();
    const live = pipelineLiveSession(s);
    expect(() => live.control({ op: 'seek', tr: s.info.trCount })).toThrow(expect.objectContaining({ code: 'PROTOCOL_CONTROL_FAILED' }));
    expect(() => live.control({ op: 'select', target: 'network', index: s.info.features.length })).toThrow(/does not exist/);
    expect(() => live.control({ op: 'select', target: 'unit', index: s.info.units.length - 1 })).not.toThrow();
  });

  it('starts paused when asked, plays on command, and seeks', async () => {
    const s = await tiny();
    const live = pipelineLiveSession(s, { speed: 'max', paused: true });
    const trs: number[] = [];
    const done = new Promise<void>((resolve, reject) =>
      live.state$.subscribe({
        next: (st) => {
          trs.push(st.tr);
          if (st.tr === 2) live.control({ op: 'seek', tr: s.info.trCount - 3 });
        },
        error: reject,
        complete: resolve,
      }),
    );
    await new Promise((r) => setTimeout(r, 150));
    expect(trs).toEqual([]);
    live.control({ op: 'play' });
    await done;
    const n = s.info.trCount;
    expect(trs.slice(0, 3)).toEqual([0, 1, 2]);
    expect(trs.slice(-3)).toEqual([n - 3, n - 2, n - 1]);
    expect(trs.length).toBeLessThan(n);
  });

  it('annotates at the TR a seek lands on (fresh labels, not the position left), and clears them where the unit maps are not yet defined', async () => {
    const s = await tiny();
    const every = s.settings.snapshotEvery;
    const live = pipelineLiveSession(s, { speed: 'max' });
    const target = 13; // not a stride TR: without the seek it would not annotate
    expect((target + 1) % every).not.toBe(0);
    const got: { tr: number; seeks: number; rows: unknown }[] = [];
    let tr = -1;
    let seeks = 0;
    const done = new Promise<void>((resolve, reject) => {
      live.state$.subscribe({
        next: (st) => {
          tr = st.tr;
          // Forward past the target first, then back to it, then back to TR 0.
          if (seeks === 0 && st.tr === 30) (seeks++, live.control({ op: 'seek', tr: target }));
          else if (seeks === 1 && st.tr === target + 3) (seeks++, live.control({ op: 'seek', tr: 0 }));
          else if (seeks === 2 && st.tr === 1) live.stop();
        },
        error: reject,
        complete: resolve,
      });
      live.annotations$.subscribe((rows) => got.push({ tr, seeks, rows }));
    });
    await done;
    // The reference: a pipeline annotating at every TR, with no seek.
    const b = await tiny();
    const reference = await lastValueFrom(
      runPipeline({ inputs: b.inputs, engine: b.engine, alpha: b.settings.fdrQ, speed: 'max', annotateEvery: 1, annotate: b.annotate, snapshotEvery: every }).pipe(toArray()),
    );
    const atTarget = got.filter((g) => g.seeks === 1 && g.tr === target);
    expect(atTarget).toHaveLength(1);
    expect(got.filter((g) => g.seeks === 1)[0]).toBe(atTarget[0]);
    expect(reference[target].annotations).not.toBeNull();
    expect((reference[target].annotations as unknown[]).length).toBeGreaterThan(0);
    expect(atTarget[0].rows).toEqual(reference[target].annotations);
    // The labels of TR 30 (the position left) differ from those computed at the target.
    expect(reference[target].annotations).not.toEqual(reference[30].annotations);
    // Stride annotations are unchanged: before the seek at every Nth TR, after it at the next one.
    expect(got.filter((g) => g.seeks === 0).map((g) => g.tr)).toEqual(
      Array.from({ length: 30 }, (_, k) => k).filter((k) => (k + 1) % every === 0 && reference[k].annotations !== null),
    );
    // Seek to TR 0: no unit maps yet, so the stale table is cleared with an empty annotation.
    expect(reference[0].annotations).toBeNull();
    expect(got.filter((g) => g.seeks === 1).map((g) => g.tr)).toEqual([target, 15]);
    expect(got.filter((g) => g.seeks === 2).map((g) => [g.tr, g.rows])).toEqual([[0, []]]);
  });

  it('a seek while paused steps to that TR and stays paused (→ and ← on the dashboard), and play goes on from there', async () => {
    const s = await tiny();
    const live = pipelineLiveSession(s, { speed: 1, paused: true });
    const states: { tr: number; playing: boolean }[] = [];
    const sub = live.state$.subscribe((st) => states.push({ tr: st.tr, playing: st.clock.playing }));
    /** Polls until `n` states have arrived (the machine may be busy: no fixed sleep). */
    const count = async (n: number) => {
      for (let i = 0; i < 500 && states.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      await new Promise((r) => setTimeout(r, 100));
      expect(states).toEqual([]);
      live.control({ op: 'seek', tr: 5 });
      await count(1);
      live.control({ op: 'seek', tr: 6 });
      await count(2);
      live.control({ op: 'seek', tr: 5 });
      await count(3);
      // One state per step, each reported paused; nothing more while paused (1 TR is 1 s here).
      expect(states).toEqual([
        { tr: 5, playing: false },
        { tr: 6, playing: false },
        { tr: 5, playing: false },
      ]);
      await new Promise((r) => setTimeout(r, 1200));
      expect(states).toHaveLength(3);
      live.control({ op: 'speed', speed: 'max' });
      live.control({ op: 'play' });
      await count(6);
      expect(states.slice(3, 6)).toEqual([6, 7, 8].map((tr) => ({ tr, playing: true })));
    } finally {
      sub.unsubscribe();
    }
  });
});
