/**
 * The pipeline's hooks for crash safety (docs/state-dir.md): `afterTr` runs after each
 * TR's state is emitted and before the clock moves on (so a snapshot sees exactly that
 * TR's engine), and a pipeline started at TR k on an engine restored from disk, with the
 * engine's TR-0 state as `zeroState`, equals the uninterrupted run, across a loop back to
 * TR 0 too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, take, tap, toArray } from 'rxjs';
import { StateDir, sessionIdentity } from '../../server/io/snapshotStore.ts';
import { runPipeline, type PipelineOptions, type PipelineTr } from '../../server/streams/pipeline.ts';
import type { OpenedSession } from '../../server/streams/session.ts';
import { openTiny, stateValues } from './pipelineFixtures.ts';

const TRS = 24;
const opened: OpenedSession[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function open(): Promise<OpenedSession> {
  const s = await openTiny({ maxTrs: TRS });
  opened.push(s);
  return s;
}

function options(s: OpenedSession, extra: Partial<PipelineOptions> = {}): PipelineOptions {
  return { inputs: s.inputs, engine: s.engine, alpha: 0.05, speed: 'max', annotateEvery: 6, annotate: s.annotate, snapshotEvery: 4, ...extra };
}

describe('pipeline hooks for --state-dir', () => {
  it('afterTr runs once per TR, after the state is handled downstream, and the next TR waits for it', async () => {
    const s = await open();
    const events: string[] = [];
    const counts: number[] = [];
    await lastValueFrom(
      runPipeline(
        options(s, {
          afterTr: async (t) => {
            events.push(`after ${t.state.tr}`);
            counts.push(s.engine.count);
            await new Promise((r) => setTimeout(r, 2));
            events.push(`done ${t.state.tr}`);
          },
        }),
      ).pipe(tap((t) => events.push(`emit ${t.state.tr}`))),
    );
    expect(events).toEqual(Array.from({ length: TRS }, (_, k) => [`emit ${k}`, `after ${k}`, `done ${k}`]).flat());
    // The engine has processed exactly TR k when afterTr(k) runs.
    expect(counts).toEqual(Array.from({ length: TRS }, (_, k) => k + 1));
  });

  it('a run restored from a state file at TR 10 (zeroState given) equals the uninterrupted run, through a loop back to TR 0', async () => {
    const ref = await lastValueFrom(runPipeline(options(await open())).pipe(toArray()));
    const dir = await mkdtemp(join(tmpdir(), 'syncact-pipeline-resume-'));
    dirs.push(dir);
    const identity = await sessionIdentity({ text: 'tiny', parameters: { maxTrs: TRS } });
    const store = new StateDir(dir);

    // The interrupted run: writes the engine every 5 TRs and stops after TR 12.
    const a = await open();
    await lastValueFrom(
      runPipeline(
        options(a, {
          afterTr: async () => {
            if (a.engine.count % 5 === 0) await store.save({ identity, tr: a.engine.count }, a.engine.snapshot());
          },
        }),
      ).pipe(take(13), toArray()),
    );
    const stored = await store.latest(identity);
    expect(stored?.meta.tr).toBe(10);

    const b = await open();
    const zeroState = b.engine.snapshot();
    b.engine.restore(stored!.state);
    const out: PipelineTr[] = await lastValueFrom(
      runPipeline(options(b, { start: 10, zeroState, loop: true })).pipe(take(TRS - 10 + TRS), toArray()),
    );
    expect(out.map((t) => t.state.tr)).toEqual([...Array.from({ length: TRS - 10 }, (_, i) => 10 + i), ...Array.from({ length: TRS }, (_, k) => k)]);
    expect(out.slice(0, TRS - 10).map(stateValues)).toEqual(ref.slice(10).map(stateValues));
    // The loop's jump back to TR 0 restored zeroState: the second pass is the whole run again.
    expect(out.slice(TRS - 10).map(stateValues)).toEqual(ref.map(stateValues));
  });
});
