/**
 * The per-TR pipeline (DESIGN.md §2, §6): the replay clock drives the engine stages, one
 * operator per stage, and emits a typed state per TR (protocol/state.ts) with telemetry.
 *
 *   clock tick k ─▶ seekBySnapshots ─▶ attachUnitResponses ─▶ readVolumes
 *                ─▶ beginEngineTr ─▶ updateGlm ─▶ updateUnitMaps ─▶ updateFeatures ─▶ preprocessVolume
 *                ─▶ updateDictionary ─▶ updateSliding ─▶ updateCka ─▶ endEngineTr
 *                ─▶ annotateEvery ─▶ attachFrame ─▶ toTrState ─▶ PipelineTr
 *                (─▶ afterTr: waited for before the next tick, e.g. a state snapshot to disk)
 *
 * The CNN (frames → activations → microtime bins → HRF → unit reduction, cnnStage.ts and
 * cnn/) has run ahead over the whole movie when the session was opened, so the per-TR loop
 * only looks its responses up. Everything after the lookup is the coupling engine, one
 * operator per stage, each timed under its own telemetry name (`engine.input`,
 * `engine.glm`, `engine.unit_maps`, `engine.features`, `engine.preprocess`, `engine.dictionary`,
 * `engine.sliding` and `coupling` for the read-out with nulls and BH, `engine.cka` and
 * `cka`; `engine` is their engine total): voxelwise GLM maps, each unit's own map, atlas features, the
 * dictionary's preprocessing and learned networks, sliding-window coupling, CKA; then
 * annotation on a stride. The engine checks that its stages come in this order.
 *
 * One pipeline, any speed: `replay` runs it paced, `analyze` at 'max'; the stages do not
 * know the difference, so both end in the same state (test/streams/pipeline.test.ts).
 * Backpressure: `clockedSteps` acknowledges a tick only when its TR has gone through every
 * stage and been emitted, so no volume is skipped and a slow engine makes the clock wait
 * (the lag is in the telemetry).
 *
 * Unsubscribing stops the clock and the TR in flight; the engine is not disposed here
 * (its owner, the session, does it), so its final read-outs (maps, annotation) stay
 * available after the stream completes.
 */
import { concat, concatMap, defer, finalize, ignoreElements, of, share, tap, type Observable, type SchedulerLike } from 'rxjs';
import type { TrState } from '../../protocol/state.ts';
import type { CouplingEngine, CouplingSnapshot } from '../engine/coupling.ts';
import { annotateEvery } from './annotationStage.ts';
import { clockedSteps } from './clockedSteps.ts';
import { attachFrame, type FrameProvider } from './frameStage.ts';
import { beginEngineTr } from './beginTrStage.ts';
import { updateCka } from './ckaStage.ts';
import { updateDictionary } from './dictionaryStage.ts';
import { endEngineTr } from './endTrStage.ts';
import { updateFeatures } from './featuresStage.ts';
import { updateGlm } from './glmStage.ts';
import { preprocessVolume } from './preprocessStage.ts';
import { updateSliding } from './slidingStage.ts';
import { updateUnitMaps } from './unitMapsStage.ts';
import type { ClockCommand, ReplaySpeed } from './replayClock.ts';
import type { ReplayInputs } from './replayInputs.ts';
import { seekBySnapshots, SnapshotStore, type SnapshotStoreOptions } from './snapshots.ts';
import { toTrState, type PipelineTr } from './telemetry.ts';
import { newTrWork, type TrWork } from './trWork.ts';
import { attachUnitResponses } from './unitResponses.ts';
import { readVolumes } from './volumeStage.ts';

export type { PipelineTr } from './telemetry.ts';

export interface PipelineOptions {
  inputs: ReplayInputs;
  engine: CouplingEngine;
  /** BH false discovery rate for the per-TR significance mask. */
  alpha: number;
  /** Default 1; 'max' for unpaced (analyze). */
  speed?: ReplaySpeed;
  /** First TR emitted (earlier TRs are replayed unpaced first). Default 0. */
  start?: number;
  loop?: boolean;
  paused?: boolean;
  controls?: Observable<ClockCommand>;
  scheduler?: SchedulerLike;
  /** Annotate every N TRs and at the last (0: only at the last). */
  annotateEvery: number;
  /** Whether the engine has annotation templates. */
  annotate: boolean;
  /** Snapshot spacing for seeks (null: none; a jump back then replays from TR 0). */
  snapshotEvery: number | null;
  /** Most snapshots held at once (default 16). */
  maxSnapshots?: number;
  /** Memory and spill budgets of the seek snapshots (snapshots.ts; default 512 MiB in memory, the rest spilled to os.tmpdir()). */
  snapshotBudget?: Pick<SnapshotStoreOptions, 'memoryBytes' | 'diskBytes' | 'spill'>;
  /** The TR's last movie frame as a thumbnail (absent: null in every state). */
  frame?: FrameProvider;
  /**
   * Called after each TR's state has been emitted (and handled downstream), before the
   * clock may move on: the replay waits for its promise, so the engine holds this TR's
   * state meanwhile (writing it to disk: docs/state-dir.md). Its error ends the replay.
   */
  afterTr?: (tr: PipelineTr) => void | Promise<void>;
  /**
   * The engine's state before TR 0 when it starts the pipeline later (restored from a
   * state snapshot): a jump back before every held snapshot restores this.
   */
  zeroState?: CouplingSnapshot;
}

/** The replay as an Observable of per-TR states; completes after the last TR (unless looping). */
export function runPipeline(o: PipelineOptions): Observable<PipelineTr> {
  return defer(() => {
    const { inputs, engine } = o;
    const clock: TrState['clock'] = { playing: !(o.paused ?? false), speed: o.speed ?? 1, loop: o.loop ?? false };
    const controls = o.controls?.pipe(
      tap((c) => {
        if (c.type === 'play') clock.playing = true;
        else if (c.type === 'pause') clock.playing = false;
        else if (c.type === 'speed') clock.speed = c.speed;
        else if (c.type === 'loop') clock.loop = c.on;
      }),
      share(),
    );
    const store = o.snapshotEvery === null ? null : new SnapshotStore({ every: o.snapshotEvery, maxKept: o.maxSnapshots ?? 16, ...o.snapshotBudget });
    // Without a store, a jump back restores the state the pipeline started from.
    const initial = o.zeroState ?? (store === null ? engine.snapshot() : null);
    const stages = {
      seek: seekBySnapshots({
        engine,
        store,
        inputs,
        reset: () => {
          if (initial === null) throw new Error('unreachable: a store always holds the start state');
          engine.restore(initial);
        },
      }),
      units: attachUnitResponses(inputs),
      volume: readVolumes(inputs.volumes),
      // The coupling engine's stages, in the order the engine requires.
      engine: (w: Observable<TrWork>) =>
        w.pipe(
          beginEngineTr(engine),
          updateGlm(engine),
          updateUnitMaps(engine),
          updateFeatures(engine),
          preprocessVolume(engine),
          updateDictionary(engine),
          updateSliding(engine, o.alpha),
          updateCka(engine),
          endEngineTr(engine),
        ),
      annotation: annotateEvery(engine, o.annotateEvery, inputs.trCount, o.annotate),
      frame: o.frame ? attachFrame(o.frame) : (w: Observable<TrWork>) => w,
      state: toTrState({ clock: () => ({ ...clock }) }),
      after: (trs: Observable<PipelineTr>) => {
        const after = o.afterTr;
        if (!after) return trs;
        return trs.pipe(concatMap((t) => concat(of(t), defer(async () => after(t)).pipe(ignoreElements()))));
      },
    };
    return clockedSteps(
      {
        trCount: inputs.trCount,
        tr: inputs.tr,
        speed: o.speed,
        start: o.start,
        loop: o.loop,
        paused: o.paused,
        controls,
        scheduler: o.scheduler,
      },
      (tick) =>
        of(newTrWork(tick)).pipe(stages.seek, stages.units, stages.volume, stages.engine, stages.annotation, stages.frame, stages.state, stages.after),
    ).pipe(finalize(() => store?.close()));
  });
}
