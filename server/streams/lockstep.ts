/**
 * The lockstep join: TR k carries volume k and the movie frames whose times fall in
 * [onset + k·TR, onset + (k+1)·TR) (DESIGN.md §2, §6). Frame i is shown at movie time
 * i / fps; `onset` is the movie time at the start of volume 0 (positive: the movie had
 * started before the scan; negative: the scan started first).
 *
 * Two parts: `planLockstep` settles, before anything is read, which TR and how many TRs
 * the replay uses and what it says about the mismatches users meet (session TR against
 * header TR, movie shorter or longer than the run), each stated once as a warning or, where
 * the user has to decide, as a typed error; `LockstepReader` then delivers TR k on demand,
 * reading the movie and the volumes forward in one pass while TRs come in order and
 * restarting both streams at a jump (seek, loop).
 *
 * Boundaries are exact for the usual rational rates (TR 0.72 s at 24 fps): a frame whose
 * time equals a TR boundary to within 1e-6 frame belongs to the TR that starts there, so
 * every frame belongs to exactly one TR and floating-point noise cannot move it.
 */
import { SyncactError } from '../errors.ts';
import type { MovieFrame } from '../io/movieDecoder.ts';
import type { MovieSource, VolumeSource } from './sources.ts';

export interface LockstepOptions {
  /** TR from the session (s); null or absent: the header's. */
  tr?: number | null;
  /** TR from the BOLD header (s), null when the header has none (3D live files). */
  headerTr: number | null;
  /** Use the session's TR when it disagrees with the header's (recorded as a warning) instead of failing. */
  acceptTrMismatch?: boolean;
  /** Movie time (s) at the start of volume 0; default 0. */
  onset?: number;
  /** Volumes in the run; null for an open-ended live run. */
  volumeCount: number | null;
  fps: number;
  frameCount: number;
  /** End the replay at the last TR that has movie frames, instead of replaying the rest of the run without frames. */
  stopAtMovieEnd?: boolean;
  /** For messages: the BOLD file or live folder, and the movie. */
  fmri?: string;
  movie?: string;
}

export type ReplayWarningKind = 'tr_mismatch_accepted' | 'movie_shorter' | 'movie_longer' | 'movie_starts_late' | 'stopped_at_movie_end';

export interface ReplayWarning {
  kind: ReplayWarningKind;
  message: string;
}

export interface LockstepPlan {
  /** Seconds per TR used by the replay. */
  tr: number;
  onset: number;
  fps: number;
  frameCount: number;
  /** TRs to replay: the run's volumes, fewer with stopAtMovieEnd; null for an open-ended live run. */
  trCount: number | null;
  /** First TR that starts at or after the movie's last frame: from here on TRs carry no frames. */
  movieEndTr: number;
  warnings: ReplayWarning[];
}

/**
 * Header and session TRs further apart than this (s) disagree: far above float32 pixdim
 * rounding (~1e-7 s), far below any real TR difference; the same rule as session.ts.
 */
const TR_TOLERANCE = 1e-3;
/** Frame-time slack (in frames) at a TR boundary: float noise, never a real offset. */
const BOUNDARY_SLACK = 1e-6;

/** The first frame at or after movie time t, unclamped. */
function firstFrameAt(t: number, fps: number): number {
  const x = t * fps;
  const r = Math.round(x);
  return Math.abs(x - r) < BOUNDARY_SLACK ? r : Math.ceil(x);
}

/** Frames [start, end) of TR k under a plan (clamped to the movie; empty past its end). */
export function frameRange(plan: Pick<LockstepPlan, 'tr' | 'onset' | 'fps' | 'frameCount'>, k: number): { start: number; end: number } {
  const clamp = (i: number): number => Math.min(plan.frameCount, Math.max(0, i));
  return {
    start: clamp(firstFrameAt(plan.onset + k * plan.tr, plan.fps)),
    end: clamp(firstFrameAt(plan.onset + (k + 1) * plan.tr, plan.fps)),
  };
}

const fmt = (s: number): string => `${Number(s.toFixed(3))} s`;

/** Settles the TR and the TR count, with the mismatch warnings; throws the mismatches the user must decide. */
export function planLockstep(o: LockstepOptions): LockstepPlan {
  const fmri = o.fmri ?? 'the BOLD run';
  const movie = o.movie ?? 'the movie';
  const warnings: ReplayWarning[] = [];
  const onset = o.onset ?? 0;
  if (!Number.isFinite(onset)) throw new SyncactError('REPLAY_BAD_OPTIONS', `onset must be a finite number of seconds; got ${onset}`);
  if (!(o.fps > 0 && Number.isFinite(o.fps))) throw new SyncactError('REPLAY_BAD_OPTIONS', `movie frame rate must be positive; got ${o.fps}`, o.movie);
  if (!(Number.isInteger(o.frameCount) && o.frameCount > 0)) throw new SyncactError('REPLAY_BAD_OPTIONS', `movie frame count must be a positive whole number; got ${o.frameCount}`, o.movie);
  if (o.volumeCount !== null && !(Number.isInteger(o.volumeCount) && o.volumeCount > 0)) {
    throw new SyncactError('REPLAY_BAD_OPTIONS', `the run must have at least one volume; got ${o.volumeCount}`, o.fmri);
  }

  // The TR: the session's when given (checked against the header's), else the header's.
  const sessionTr = o.tr ?? null;
  if (sessionTr !== null && !(Number.isFinite(sessionTr) && sessionTr > 0)) {
    throw new SyncactError('REPLAY_BAD_OPTIONS', `TR must be a positive number of seconds; got ${sessionTr}`);
  }
  let tr: number;
  if (sessionTr === null) {
    if (o.headerTr === null || !(o.headerTr > 0)) {
      throw new SyncactError('REPLAY_NO_TR', 'the header gives no TR (pixdim[4] is 0, or 3D files) and the session gives none: set "tr" (or --tr)', o.fmri);
    }
    tr = o.headerTr;
  } else {
    tr = sessionTr;
    if (o.headerTr !== null && Math.abs(sessionTr - o.headerTr) > TR_TOLERANCE) {
      const what = `the session's TR (${fmt(sessionTr)}) differs from the header's (${fmt(o.headerTr)})`;
      if (!o.acceptTrMismatch) {
        throw new SyncactError('REPLAY_TR_MISMATCH', `${what}: fix "tr" in the session, or accept the session's TR explicitly (--accept-tr)`, o.fmri);
      }
      warnings.push({ kind: 'tr_mismatch_accepted', message: `${fmri}: ${what}; using the session's TR as asked` });
    }
  }

  const movieSeconds = o.frameCount / o.fps;
  // TRs that start at or after the last frame carry none. Searched from just below the
  // arithmetic answer, so that the boundary rule (not float rounding) decides.
  const timing = { tr, onset, fps: o.fps, frameCount: o.frameCount };
  let movieEndTr = Math.max(0, Math.floor((movieSeconds - onset) / tr) - 2);
  while (movieEndTr > 0 && frameRange(timing, movieEndTr - 1).start >= o.frameCount) movieEndTr--;
  while (frameRange(timing, movieEndTr).start < o.frameCount) movieEndTr++;
  if (movieEndTr === 0) {
    throw new SyncactError('REPLAY_BAD_OPTIONS', `onset ${fmt(onset)} is at or after the end of ${movie} (${fmt(movieSeconds)}): no TR would carry frames`, o.movie);
  }
  const plan: LockstepPlan = { tr, onset, fps: o.fps, frameCount: o.frameCount, trCount: o.volumeCount, movieEndTr, warnings };

  if (onset < 0) {
    const firstWithFrames = Array.from({ length: movieEndTr }, (_, k) => k).find((k) => frameRange(plan, k).end > frameRange(plan, k).start) ?? 0;
    if (firstWithFrames > 0) {
      warnings.push({
        kind: 'movie_starts_late',
        message: `${movie} starts ${fmt(-onset)} after the run (onset ${fmt(onset)}): TRs 0..${firstWithFrames - 1} carry no frames`,
      });
    }
  }
  const runEnd = o.volumeCount === null ? null : onset + o.volumeCount * tr;
  if (o.volumeCount === null || movieEndTr < o.volumeCount) {
    const tail =
      o.volumeCount === null
        ? `if the live run goes on past TR ${movieEndTr - 1}, later TRs carry no frames`
        : `TRs ${movieEndTr}..${o.volumeCount - 1} carry no frames`;
    if (o.stopAtMovieEnd) {
      plan.trCount = o.volumeCount === null ? movieEndTr : Math.min(o.volumeCount, movieEndTr);
      warnings.push({
        kind: 'stopped_at_movie_end',
        message: `${movie} (${o.frameCount} frames, ${fmt(movieSeconds)}) ends before ${fmri}${runEnd === null ? ' may' : ` (${fmt(runEnd - onset)})`}: stopping after TR ${plan.trCount - 1}, as asked`,
      });
    } else {
      warnings.push({
        kind: 'movie_shorter',
        message: `${movie} (${o.frameCount} frames, ${fmt(movieSeconds)}) ends at run time ${fmt(movieSeconds - onset)}${runEnd === null ? '' : `, before the run ends at ${fmt(runEnd - onset)}`}: ${tail}`,
      });
    }
  }
  if (runEnd !== null && plan.trCount !== null) {
    const lastUsed = frameRange(plan, plan.trCount - 1).end;
    if (lastUsed < o.frameCount) {
      warnings.push({
        kind: 'movie_longer',
        message: `${movie} runs on after the last TR: frames ${lastUsed}..${o.frameCount - 1} (movie time ${fmt(lastUsed / o.fps)}..${fmt(movieSeconds)}) are not replayed`,
      });
    }
  }
  return plan;
}

/** One TR of the replay: its volume and its frames. */
export interface LockstepTr {
  tr: number;
  /** Run time of the TR's start, k·TR (s). */
  time: number;
  /** Movie time of the TR's start, onset + k·TR (s). */
  movieTime: number;
  /** In order; empty before the movie starts or after it ends. */
  frames: MovieFrame[];
  volume: Float32Array;
}

/**
 * Delivers TR k of a plan from a movie source and a volume source. Reading is sequential
 * while TRs are asked for in order; a jump restarts both streams at the target. Calls are
 * served one at a time, in call order. Close it to stop the decoders and readers.
 */
export class LockstepReader {
  private frameIt: AsyncIterator<MovieFrame> | null = null;
  private volumeIt: AsyncIterator<{ index: number; data: Float32Array }> | null = null;
  /** The TR the open iterators are positioned at. */
  private nextTr = -1;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly plan: LockstepPlan,
    private readonly movie: MovieSource,
    private readonly volumes: VolumeSource,
  ) {
    if (movie.frameCount !== plan.frameCount || Math.abs(movie.fps - plan.fps) > 1e-9 * plan.fps) {
      throw new SyncactError('REPLAY_BAD_OPTIONS', `the plan was made for ${plan.frameCount} frames at ${plan.fps} fps, the movie source has ${movie.frameCount} at ${movie.fps}`, movie.name);
    }
  }

  /** TR k: its volume and frames. */
  at(k: number): Promise<LockstepTr> {
    const run = this.queue.then(async () => {
      try {
        return await this.read(k);
      } catch (e) {
        // Streams in an unknown state: the next call starts afresh, so a retry (or a
        // seek away from a damaged stretch) reads correct data or fails again clearly.
        await this.release().catch(() => undefined);
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** TRs start..trCount-1 in order (open-ended for a live run). */
  async *trs(start = 0): AsyncGenerator<LockstepTr> {
    for (let k = start; this.plan.trCount === null || k < this.plan.trCount; k++) yield await this.at(k);
  }

  private async read(k: number): Promise<LockstepTr> {
    if (this.closed) throw new SyncactError('REPLAY_BAD_OPTIONS', 'the lockstep reader is closed');
    const { trCount } = this.plan;
    if (!Number.isInteger(k) || k < 0 || (trCount !== null && k >= trCount)) {
      throw new SyncactError('REPLAY_BAD_OPTIONS', `TR ${k} is not in the replay (0..${trCount === null ? '' : trCount - 1})`, this.volumes.name);
    }
    if (k !== this.nextTr) await this.restart(k);
    this.nextTr = k + 1;
    const { start, end } = frameRange(this.plan, k);
    const frames: MovieFrame[] = [];
    for (let i = start; i < end; i++) {
      const r = await this.frameIt!.next();
      if (r.done || r.value.index !== i) {
        throw new SyncactError('MOVIE_DECODE_FAILED', `TR ${k} needs frame ${i}, the movie source gave ${r.done ? 'no more frames' : `frame ${r.value.index}`}`, this.movie.name);
      }
      frames.push(r.value);
    }
    const v = await this.volumeIt!.next();
    if (v.done || v.value.index !== k) {
      throw new SyncactError(
        v.done ? 'REPLAY_MISSING_VOLUME' : 'REPLAY_VOLUME_MISMATCH',
        `TR ${k} needs volume ${k}, the volume source gave ${v.done ? 'no more volumes' : `volume ${v.value.index}`}`,
        this.volumes.name,
      );
    }
    return { tr: k, time: k * this.plan.tr, movieTime: this.plan.onset + k * this.plan.tr, frames, volume: v.value.data };
  }

  private async restart(k: number): Promise<void> {
    await this.release();
    const lastTr = this.plan.trCount === null ? this.plan.movieEndTr : Math.min(this.plan.trCount, this.plan.movieEndTr);
    const from = frameRange(this.plan, k).start;
    const to = Math.max(from, frameRange(this.plan, Math.max(0, lastTr - 1)).end);
    this.frameIt = this.movie.frames(from, to)[Symbol.asyncIterator]();
    this.volumeIt = this.volumes.volumes(k, this.plan.trCount ?? undefined)[Symbol.asyncIterator]();
  }

  /** Ends both streams (their `return` kills decoders and closes files). */
  private async release(): Promise<void> {
    const f = this.frameIt;
    const v = this.volumeIt;
    this.frameIt = null;
    this.volumeIt = null;
    this.nextTr = -1;
    await Promise.all([f?.return?.(), v?.return?.()]);
  }

  /** Stops the streams; the sources themselves stay open (their owner closes them). */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.release();
  }
}
