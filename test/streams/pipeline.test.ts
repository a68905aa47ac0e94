/**
 * The pipeline end to end on the tiny synthetic session (in memory, a fast fake CNN):
 * replay and analyze are one pipeline at two speeds and give the same states; every TR is
 * emitted once, in order, with its telemetry; the per-TR values are the ones the inputs
 * imply (volume k's atlas means, responses of TR k), so a TR off by one would show.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { runPipeline, type PipelineTr } from '../../server/streams/pipeline.ts';
import type { OpenedSession } from '../../server/streams/session.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { batchWindowCorrelation } from '../../server/engine/slidingCorrelation.ts';
import { openTiny, stateValues } from './pipelineFixtures.ts';

const opened: OpenedSession[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

async function open(maxTrs?: number): Promise<OpenedSession> {
  const s = await openTiny({ maxTrs });
  opened.push(s);
  return s;
}

function run(s: OpenedSession, speed: number | 'max'): Promise<PipelineTr[]> {
  return lastValueFrom(
    runPipeline({
      inputs: s.inputs,
      engine: s.engine,
      alpha: 0.05,
      speed,
      annotateEvery: 8,
      annotate: s.annotate,
      snapshotEvery: 4,
      frame: s.frame,
    }).pipe(toArray()),
  );
}

describe('pipeline', () => {
  it('replay (paced) and analyze (max) emit the same states and end in the same engine state', async () => {
    const a = await open(20);
    const b = await open(20);
    const fast = await run(a, 'max');
    const paced = await run(b, 20); // TR 1 s at 20×: one TR per 50 ms
    expect(fast.map((t) => t.state.tr)).toEqual(Array.from({ length: 20 }, (_, k) => k));
    expect(paced.map(stateValues)).toEqual(fast.map(stateValues));
    expect(paced[paced.length - 1].state.clock).toEqual({ playing: true, speed: 20, loop: false });
    // The final maps and the whole estimator state agree too.
    for (const u of a.glmUnits) expect(Array.from(b.engine.tmap(u))).toEqual(Array.from(a.engine.tmap(u)));
    const sa = a.engine.snapshot();
    const sb = b.engine.snapshot();
    expect(sb.scalars).toEqual(sa.scalars);
    expect(Array.from(sb.arrays.features)).toEqual(Array.from(sa.arrays.features));
  });

  it('carries volume k and the responses of TR k, and the coupling is the windowed Pearson r of them', async () => {
    const s = await open();
    const out = await run(s, 'max');
    expect(out).toHaveLength(60);
    const synth = createSyntheticSession({ preset: 'tiny', seed: 1 });
    const atlas = s.atlas;
    if (!atlas?.regionOfVoxel) throw new Error('the tiny atlas is a label atlas');
    const R = atlas.names.length;
    const F = s.info.features.length;
    const U = s.info.units.length;
    for (const k of [0, 17, 59]) {
      const st = out[k].state;
      expect(Array.from(st.unitResponses)).toEqual(Array.from(Float32Array.from(s.inputs.responses[k])));
      // Atlas means of the generator's volume k (float32 output, so 1e-4 relative).
      const grid = synth.volume(k);
      const sums = new Float64Array(R);
      const counts = new Float64Array(R);
      s.maskIndices.forEach((g, v) => {
        const r = atlas.regionOfVoxel![v];
        if (r >= 0) {
          sums[r] += grid[g];
          counts[r]++;
        }
      });
      for (let r = 0; r < R; r++) expect(st.features[r]).toBeCloseTo(sums[r] / counts[r], 1);
      for (let r = 0; r < R; r++) expect(Math.abs(st.features[r] / (sums[r] / counts[r]) - 1)).toBeLessThan(1e-6);
    }
    // Sliding coupling at the last TR against a batch Pearson r of the emitted series.
    const units = s.inputs.responses.slice(0, 60) as Float64Array[];
    const features = out.map((t) => Float64Array.from(t.state.features));
    const window = s.settings.window;
    const batch = batchWindowCorrelation(units, features, 59, window);
    const last = out[59].state.coupling;
    let compared = 0;
    for (let i = 0; i < U * F; i++) {
      if (!Number.isFinite(batch[i])) continue;
      // Features went through float32 in the state; r is not sensitive at that level.
      expect(Math.abs(last[i] - batch[i])).toBeLessThan(1e-4);
      compared++;
    }
    expect(compared).toBeGreaterThan(U * (F - 1));
  });

  it('emits telemetry for every stage, annotation on its stride, and a thumbnail per TR', async () => {
    const s = await open();
    const out = await run(s, 'max');
    // One entry per stage for every TR, in the order the stages ran (annotation only on its TRs).
    const engineParts = ['input', 'glm', 'unit_maps', 'features', 'preprocess', 'dictionary', 'sliding', 'cka'];
    for (const t of out) {
      const ms = t.state.telemetry.stageMs;
      const expected = [
        'units',
        'volume',
        'engine',
        'engine.input',
        'engine.glm',
        'engine.unit_maps',
        'engine.features',
        'engine.preprocess',
        'engine.dictionary',
        'engine.sliding',
        'coupling',
        'engine.cka',
        'cka',
        ...(t.annotations ? ['annotation'] : []),
        'frame',
        'state',
      ];
      expect(Object.keys(ms)).toEqual(expected);
      for (const stage of expected) expect(ms[stage]).toBeGreaterThanOrEqual(0);
      // `engine` is the engine's total for the TR: the sum of its stages, nothing else.
      const parts = engineParts.reduce((a, p) => a + ms[`engine.${p}`], 0);
      expect(Math.abs(parts - ms.engine)).toBeLessThanOrEqual(1e-9 * Math.max(1, ms.engine));
      expect(t.state.telemetry.lagMs).toBe(0);
      expect(t.state.frame?.rgb.length).toBe(64 * 64 * 3);
    }
    expect(out[30].state.telemetry.trsPerSecond).toBeGreaterThan(0);
    // The stages are measured, not left at 0.
    expect(out.reduce((a, t) => a + t.state.telemetry.stageMs['engine.glm'], 0)).toBeGreaterThan(0);
    const annotated = out.filter((t) => t.annotations).map((t) => t.state.tr);
    expect(annotated).toEqual([7, 15, 23, 31, 39, 47, 55, 59]);
    const rows = out[59].annotations ?? [];
    // With unit maps (the default) each CNN unit is labelled from its own map, not the regressors.
    expect(s.mapUnits.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.unit)).toEqual(s.mapUnits);
    for (const r of rows) expect(s.info.features).toContain(r.label);
  });
});
