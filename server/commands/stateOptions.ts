/**
 * Crash safety for `replay` and `analyze` (docs/state-dir.md): the `--state-dir`,
 * `--state-every` and `--resume` options, and the glue between an opened session and
 * its state snapshots on disk (server/io/snapshotStore.ts).
 *
 * What a snapshot holds: the coupling engine's whole state (every estimator, nested under
 * `parts`), the TR count it has processed, and whatever the command gathers on the way
 * (analyze: the significance tally and the last annotation rows). The CNN responses are
 * not in it: the movie is known before the replay, so opening the session recomputes
 * them (or reads the feature cache), and their sha256 is part of the session identity,
 * so a snapshot is only restored over the very same responses.
 *
 * Why the identity has what it has: the engine's next state depends on the volumes (BOLD
 * file: path, size, mtime), the mask and atlas files, the unit responses (hashed: model,
 * layers, frames per TR, movie content and backend numerics all end up there), and the
 * engine settings; anything else that changed would make "the final result equals an
 * uninterrupted run" false, so it is refused as STATE_MISMATCH rather than resumed.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SyncactError } from '../errors.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { sessionIdentity, StateDir, type SessionIdentity, type SnapshotTree, type StoredState } from '../io/snapshotStore.ts';
import type { AnalysisCheckpoint, AnalysisSeries } from '../analysis/analyze.ts';
import type { OpenedSession } from '../streams/session.ts';
import { numberOption } from './args.ts';

export const STATE_OPTIONS = {
  'state-dir': { type: 'string' },
  'state-every': { type: 'string' },
  resume: { type: 'boolean' },
} as const;

export const STATE_USAGE = `crash safety (docs/state-dir.md):
  --state-dir DIR    write the whole pipeline state to DIR every N TRs (atomic; the last 2 kept)
  --state-every N    TRs between state snapshots (default: the session's snapshot_every)
  --resume           continue from the newest valid snapshot in --state-dir (TR 0 when none);
                     the result equals that of a run that was never interrupted`;

type Values = { 'state-dir'?: string; 'state-every'?: string; resume?: boolean };

export interface StateSettings {
  dir: string;
  /** TRs between snapshots; null: the session's snapshot_every. */
  every: number | null;
  resume: boolean;
}

/** The options parsed and checked; null without --state-dir. */
export function stateFromArgs(command: string, v: Values): StateSettings | null {
  if (!v['state-dir']) {
    if (v.resume) throw new SyncactError('CLI_USAGE', `${command}: --resume needs --state-dir DIR (the folder the interrupted run wrote)`);
    if (v['state-every'] !== undefined) throw new SyncactError('CLI_USAGE', `${command}: --state-every needs --state-dir DIR`);
    return null;
  }
  let every: number | null = null;
  if (v['state-every'] !== undefined) {
    every = numberOption(command, 'state-every', v['state-every'], NaN);
    if (!Number.isInteger(every) || every < 1) throw new SyncactError('CLI_USAGE', `${command}: --state-every must be a positive integer (TRs), got "${v['state-every']}"`);
  }
  return { dir: v['state-dir'], every, resume: v.resume ?? false };
}

/**
 * The session's identity for its snapshots (see the file comment). `parameters` adds the
 * command's own knobs that shape what is saved (e.g. analyze's annotation stride).
 */
export async function sessionStateIdentity(s: OpenedSession, command: string, parameters: Record<string, unknown> = {}): Promise<SessionIdentity> {
  let text: string | null = null;
  try {
    text = await readFile(s.config.path, 'utf8');
  } catch {
    // A session given only as flags has no file: its flags are in the config below.
  }
  const responses = createHash('sha256');
  for (const r of s.inputs.responses.slice(0, s.inputs.trCount)) responses.update(Buffer.from(r.buffer, r.byteOffset, r.byteLength));
  const c = s.config;
  return sessionIdentity({
    text,
    files: [c.fmri, c.movie, c.mask, c.atlas, c.atlasLabels],
    parameters: {
      command,
      ...parameters,
      config: { fmri: c.fmri, movie: c.movie, mask: c.mask, atlas: c.atlas, tr: c.tr, onset: c.onset, preset: c.preset, seed: c.seed },
      settings: s.settings,
      trCount: s.inputs.trCount,
      tr: s.inputs.tr,
      voxels: s.maskIndices.length,
      features: s.info.features,
      units: s.info.units.length,
      regressors: s.info.regressors,
      glmUnits: s.glmUnits,
      networks: s.networks,
      nullShifts: s.nullShifts,
      model: s.info.model,
      responsesSha256: responses.digest('hex'),
    },
  });
}

const ROOT_KIND = 'syncact-run';
const ROOT_VERSION = 1;

/** What a command gets back from a snapshot besides the engine's state. */
export interface Resumed {
  /** TRs already processed: the pipeline starts at this TR. */
  tr: number;
  /** The engine's state before TR 0 (taken before restoring), for jumps back (`--loop`). */
  zeroState: ReturnType<CouplingEngine['snapshot']>;
  /** The command's own saved parts (e.g. `tally`), and its extra JSON. */
  parts: Record<string, SnapshotTree>;
  extra: unknown;
  file: string;
}

/**
 * Writes and restores one session's run state in a `--state-dir`. Construct with
 * `openRunState`, which also restores the latest snapshot when resuming.
 */
export class RunState {
  private constructor(
    private readonly dir: StateDir,
    private readonly identity: SessionIdentity,
    /** TRs between snapshots. */
    readonly every: number,
    private readonly trCount: number,
    private readonly say: (line: string) => void,
  ) {}

  /**
   * @param s the opened session (its engine is restored in place when resuming)
   * @param settings from `stateFromArgs`
   * @param command the command's name and its own identity parameters
   */
  static async open(
    s: OpenedSession,
    settings: StateSettings,
    command: { name: string; parameters?: Record<string, unknown> },
    say: (line: string) => void,
  ): Promise<{ state: RunState; resumed: Resumed | null }> {
    const identity = await sessionStateIdentity(s, command.name, command.parameters);
    const dir = new StateDir(settings.dir, { log: say });
    const state = new RunState(dir, identity, settings.every ?? s.settings.snapshotEvery, s.inputs.trCount, say);
    if (!settings.resume) return { state, resumed: null };
    const stored = await dir.latest(identity);
    if (stored === null) {
      say(`state: no valid snapshot in ${dir.dir}: starting at TR 0`);
      return { state, resumed: null };
    }
    const resumed = restoreRun(s.engine, stored);
    say(`state: resuming at TR ${resumed.tr} from ${stored.file}`);
    return { state, resumed };
  }

  /**
   * After a TR: when the engine has processed a multiple of `every` TRs (and the run is
   * not over: the end is the outputs' job), writes the engine and the command's `more`.
   * The pipeline waits for this (its afterTr hook), so the engine does not move while
   * its arrays are streamed to disk.
   */
  async afterTr(engine: CouplingEngine, more?: () => { parts?: Record<string, SnapshotTree>; extra?: unknown }): Promise<void> {
    const tr = engine.count;
    if (tr === 0 || tr % this.every !== 0 || tr >= this.trCount) return;
    const m = more?.() ?? {};
    const tree: SnapshotTree = { kind: ROOT_KIND, version: ROOT_VERSION, scalars: { tr }, arrays: {}, parts: { ...m.parts, engine: engine.snapshot() } };
    await this.dir.save({ identity: this.identity, tr, extra: m.extra }, tree);
  }
}

/** Restores the engine from a stored run state; the rest is returned for the command. */
export function restoreRun(engine: CouplingEngine, stored: StoredState): Resumed {
  const root = stored.state;
  if (root.kind !== ROOT_KIND || root.version !== ROOT_VERSION || !root.parts?.engine) {
    throw new SyncactError('STATE_CORRUPT', `not a run state (kind ${root.kind} v${root.version})`, stored.file);
  }
  const zeroState = engine.snapshot();
  engine.restore(root.parts.engine);
  const at = engine.count;
  if (at !== stored.meta.tr) {
    engine.restore(zeroState);
    throw new SyncactError('STATE_CORRUPT', `the engine state is at TR ${at}, the snapshot says ${stored.meta.tr}`, stored.file);
  }
  const { engine: _engine, ...parts } = root.parts;
  return { tr: stored.meta.tr, zeroState, parts, extra: stored.meta.extra, file: stored.file };
}

/** analyze's own state (AnalysisCheckpoint) as snapshot parts and extra JSON. */
export function checkpointParts(c: AnalysisCheckpoint): { parts: Record<string, SnapshotTree>; extra: unknown } {
  const parts: Record<string, SnapshotTree> = { tally: c.tally };
  if (c.series) {
    // Each per-TR series (all but `trs`) packed as one float32 array of n × width.
    const n = c.series.trs.length;
    const scalars: Record<string, number> = {};
    const arrays: Record<string, SnapshotTree['arrays'][string]> = { trs: Int32Array.from(c.series.trs) };
    for (const [k, rows] of Object.entries(c.series) as [string, Float32Array[]][]) {
      if (k === 'trs') continue;
      const width = n ? rows[0].length : 0;
      const packed = new Float32Array(n * width);
      rows.forEach((r, i) => packed.set(r, i * width));
      scalars[k] = width;
      arrays[k] = packed;
    }
    parts.series = { kind: 'analysisSeries', version: 1, scalars, arrays };
  }
  return { parts, extra: { trs: c.trs, annotations: c.annotations } };
}

/** The checkpoint a resumed analyze continues from (STATE_CORRUPT when the snapshot lacks a part). */
export function checkpointFrom(r: Resumed, keepSeries: boolean): AnalysisCheckpoint {
  const extra = r.extra as { trs?: unknown; annotations?: unknown } | undefined;
  const tally = r.parts.tally;
  const s = r.parts.series;
  if (!tally || !extra || !Number.isInteger(extra.trs) || !Array.isArray(extra.annotations) || (keepSeries && !s)) {
    throw new SyncactError('STATE_CORRUPT', 'the snapshot lacks the analysis tally, TR count, annotations or series', r.file);
  }
  let series: AnalysisSeries | null = null;
  if (s) {
    const trs = s.arrays.trs;
    if (!(trs instanceof Int32Array)) throw new SyncactError('STATE_CORRUPT', 'the saved analysis series has no TR list', r.file);
    const out: Record<string, unknown[]> = { trs: Array.from(trs) };
    for (const [k, width] of Object.entries(s.scalars)) {
      const packed = s.arrays[k];
      if (!(packed instanceof Float32Array) || packed.length !== trs.length * width) throw new SyncactError('STATE_CORRUPT', `the saved analysis series '${k}' has the wrong size`, r.file);
      out[k] = Array.from(trs, (_, i) => packed.subarray(i * width, (i + 1) * width));
    }
    series = out as unknown as AnalysisSeries;
  }
  return { trs: extra.trs as number, tally, annotations: extra.annotations as AnalysisCheckpoint['annotations'], series };
}
