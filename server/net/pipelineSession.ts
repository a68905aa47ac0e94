/**
 * The pipeline (server/streams) as the server's `LiveSession`: one replay, started when the
 * server subscribes, steered by control commands, with maps read from the coupling engine
 * on demand.
 *
 * Why an adapter and not the pipeline itself: the server wants a hot stream it can
 * subscribe to once, a synchronous `map()` and a `control()` that refuses bad commands with
 * a typed error; the pipeline is a cold Observable of `PipelineTr` steered by clock
 * commands. This file is the only place that knows both shapes.
 *
 * Maps: `unit-t`/`unit-beta` of a CNN unit with a map of its own (session unit_maps, every
 * unit by default) are that unit's own GLM map, from the third TR; of a GLM regressor (e.g.
 * a PCA component) its map in the joint GLM; any other unit has no voxelwise map (`map()`
 * returns undefined, the server then sends nothing). `network` index f is brain feature f: an atlas region's
 * weights for f < regions, a learned network's (dictionary atom's) map after that.
 *
 * Annotations: the pipeline annotates every `snapshotEvery` TRs (annotationStage.ts), the
 * same TRs in a replay and in a batch analysis. A viewer that jumps (a seek, ArrowLeft, a
 * loop back to TR 0) would then keep the labels of the position it left — TR 49's table at
 * TR 225, or labels from the future after a jump back — until the next stride TR. So after
 * a jump this adapter annotates at the TR landed on (an empty list where the unit maps
 * are not yet defined, which clears the old table). Only the served stream does this; the
 * pipeline's own states stay those of an uninterrupted run.
 *
 * Stepping while paused: the replay clock holds a seek made while paused until play (its
 * contract, test/streams/replayClock.test.ts). A dashboard user pressing → while paused
 * expects to see that TR — its frame, maps and coupling — and stay paused. So a seek while
 * paused plays just the TR landed on and pauses again as it comes out; the states of such
 * a step say "paused" throughout, so that the page never shows a flicker of playing.
 */
import { catchError, EMPTY, share, Subject, map as rxMap, filter, type Observable } from 'rxjs';
import type { ControlCommand, MapKind } from '../../protocol/messages.ts';
import type { AnnotationRow, BrainMap, TrState } from '../../protocol/state.ts';
import { SyncactError } from '../errors.ts';
import { denseWeights } from '../io/atlas.ts';
import { runPipeline, type PipelineOptions, type PipelineTr } from '../streams/pipeline.ts';
import type { ClockCommand, ReplaySpeed } from '../streams/replayClock.ts';
import type { OpenedSession } from '../streams/session.ts';
import { annotationRows } from '../streams/annotationStage.ts';
import type { LiveSession } from './liveSession.ts';

export interface PipelineSessionOptions {
  /** Playback speed at start (default 1). */
  speed?: ReplaySpeed;
  /** Start again at TR 0 after the last TR (default false: the stream completes). */
  loop?: boolean;
  /** Start paused (default false). */
  paused?: boolean;
  /** Called with each TR's state as it is handed to the server (timing traces). */
  onState?: (state: TrState) => void;
  /** First TR; with `zeroState`, the engine was restored there from a state snapshot (docs/state-dir.md). */
  start?: number;
  zeroState?: PipelineOptions['zeroState'];
  /** The pipeline's afterTr hook (a state snapshot to disk every N TRs). */
  afterTr?: PipelineOptions['afterTr'];
}

export interface PipelineLiveSession extends LiveSession {
  /** Stops the replay (the clock completes after the TR in flight). */
  stop(): void;
}

export function pipelineLiveSession(session: OpenedSession, options: PipelineSessionOptions = {}): PipelineLiveSession {
  const { info, engine } = session;
  const controls = new Subject<ClockCommand>();
  let playing = !(options.paused ?? false);
  /** A seek made while paused: the TR to show before pausing again (null: none). */
  let stepTo: number | null = null;
  const trs$: Observable<PipelineTr> = runPipeline({
    inputs: session.inputs,
    engine,
    alpha: session.settings.fdrQ,
    speed: options.speed ?? 1,
    loop: options.loop ?? false,
    paused: options.paused ?? false,
    controls,
    annotateEvery: session.settings.snapshotEvery,
    annotate: session.annotate,
    snapshotEvery: session.settings.snapshotEvery,
    frame: session.frame,
    start: options.start,
    zeroState: options.zeroState,
    afterTr: options.afterTr,
  }).pipe(
    rxMap((t) => {
      if (stepTo === null) return t;
      // Paused before the next tick is due: the clock acknowledges this TR only after it is out.
      if (t.state.tr === stepTo) {
        stepTo = null;
        controls.next({ type: 'pause' });
      }
      return { ...t, state: { ...t.state, clock: { ...t.state.clock, playing: false } } };
    }),
    share(),
  );
  let lastTr = -1;
  const state$ = trs$.pipe(
    rxMap((t) => {
      lastTr = t.state.tr;
      options.onState?.(t.state);
      return t.state;
    }),
  );
  let previousTr = -1;
  const annotations$ = trs$.pipe(
    // A failed pipeline is reported once, by state$ (the server's fault); the annotations,
    // which share it, just stop. Errors of the annotation itself (below) still travel.
    catchError(() => EMPTY),
    rxMap((t) => {
      const jumped = previousTr >= 0 && t.state.tr !== previousTr + 1;
      previousTr = t.state.tr;
      if (t.annotations !== null || !jumped || !session.annotate) return t.annotations;
      // The engine is at this TR's state: the next TR is not processed before this returns.
      return engine.mapsReady ? annotationRows(engine) : [];
    }),
    filter((rows): rows is AnnotationRow[] => rows !== null),
  );
  const glmUnits = new Set(session.glmUnits);
  const regions = session.atlas ? session.atlas.names.length : 0;
  // map() is called once per TR per distinct view: a region's weights do not change, so keep them.
  const regionMaps = new Map<number, Float32Array>();
  return {
    info,
    state$,
    annotations$,
    map(kind: MapKind, index: number): BrainMap | undefined {
      if (kind === 'network') {
        if (!Number.isInteger(index) || index < 0 || index >= info.features.length) return undefined;
        if (index < regions && session.atlas) {
          let w = regionMaps.get(index);
          if (!w) regionMaps.set(index, (w = denseWeights(session.atlas, index)));
          return { tr: lastTr, kind, index, values: w };
        }
        const atom = index - regions;
        if (atom >= session.networks || engine.count === 0) return undefined;
        return { tr: lastTr, kind, index, values: engine.atom(atom) };
      }
      if (engine.hasUnitMap(index)) {
        if (!(engine.unitMapsDegreesOfFreedom() > 0)) return undefined;
        return { tr: lastTr, kind, index, values: kind === 'unit-t' ? engine.unitTmap(index) : engine.unitBetas(index) };
      }
      if (!glmUnits.has(index) || !engine.mapsReady) return undefined;
      const values = kind === 'unit-t' ? engine.tmap(index) : engine.betas(index);
      return { tr: lastTr, kind, index, values };
    },
    control(command: ControlCommand): void {
      switch (command.op) {
        case 'play':
        case 'pause':
          playing = command.op === 'play';
          stepTo = null;
          controls.next({ type: command.op });
          return;
        case 'seek':
          if (command.tr >= info.trCount) {
            throw new SyncactError('PROTOCOL_CONTROL_FAILED', `seek: TR ${command.tr} is past the last TR (${info.trCount - 1})`);
          }
          controls.next({ type: 'seek', tr: command.tr });
          if (!playing) {
            // A step: play the TR landed on, then pause again (see the file comment).
            stepTo = command.tr;
            controls.next({ type: 'play' });
          }
          return;
        case 'speed':
          controls.next({ type: 'speed', speed: command.speed });
          return;
        case 'loop':
          controls.next({ type: 'loop', on: command.loop });
          return;
        case 'select': {
          const n = command.target === 'unit' ? info.units.length : info.features.length;
          if (command.index >= n) {
            throw new SyncactError('PROTOCOL_CONTROL_FAILED', `select: ${command.target} ${command.index} does not exist (${n} ${command.target}s)`);
          }
          // The server keeps the selection and asks map() for it; nothing changes in the pipeline.
          return;
        }
      }
    },
    stop(): void {
      controls.next({ type: 'stop' });
    },
  };
}
