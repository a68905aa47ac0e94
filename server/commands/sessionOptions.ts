/**
 * The session and model options `replay` and `analyze` share: where the session comes
 * from (--session, or the same fields as flags), which CNN, and the pipeline's knobs.
 * Parsed here once so both commands accept exactly the same set and say the same thing
 * about a bad value.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import { inferModelKind } from '../engine/cnn/factory.ts';
import type { ModelSpec } from '../engine/cnn/modelSpec.ts';
import type { OpenOptions, SessionSource } from '../streams/session.ts';
import { locateFfmpeg } from '../io/ffmpeg.ts';
import { createSyntheticSession } from '../synth/session.ts';
import { syntheticSessionJson, writeSyntheticSession } from '../synth/writeSession.ts';
import { numberOption } from './args.ts';

export const SESSION_OPTIONS = {
  session: { type: 'string' },
  demo: { type: 'boolean' },
  fmri: { type: 'string' },
  movie: { type: 'string' },
  mask: { type: 'string' },
  atlas: { type: 'string' },
  'atlas-labels': { type: 'string' },
  tr: { type: 'string' },
  onset: { type: 'string' },
  'smoothing-fwhm': { type: 'string' },
  'accept-tr': { type: 'boolean' },
  fps: { type: 'string' },
  'stop-at-movie-end': { type: 'boolean' },
  'live-timeout': { type: 'string' },
  model: { type: 'string' },
  layers: { type: 'string' },
  'frames-per-tr': { type: 'string' },
  units: { type: 'string' },
  'unit-maps': { type: 'string' },
  networks: { type: 'string' },
  'max-trs': { type: 'string' },
  'no-cache': { type: 'boolean' },
  'cache-dir': { type: 'string' },
} as const;

export const SESSION_USAGE = `session (a session.json, or its fields as flags; flags override the file):
  --session FILE     session.json (syncact fixtures writes one)
  --demo             the built-in demo session: .syncact/demo, generated on first use
  --fmri FILE        4D BOLD NIfTI          --movie FILE   the movie shown in the run
  --mask FILE        brain mask (default: automatic EPI mask)
  --atlas FILE       label atlas (its regions are the brain features)
  --atlas-labels F   its names table (TSV/CSV: index, name)
  --tr S             seconds per volume (default: the BOLD header's)
  --onset S          movie time at the start of volume 0 (default 0)
  --smoothing-fwhm MM  Gaussian smoothing of each volume before masking, FWHM in mm
                     (nilearn's smoothing_fwhm; default: the session's, else none; 0: none)
  --accept-tr        use --tr / the session's TR when the header disagrees
  --fps F            frame rate of a movie given as a folder of images
  --stop-at-movie-end  end at the movie's last TR (default: later TRs carry no frames)
  --fmri may name a folder that receives one 3D NIfTI per TR (live mode; needs --mask)
  --live-timeout S   live mode: seconds to wait for each volume, the first included (default 30)

model and pipeline:
  --model M          builtin (default), a .onnx file, or a TF.js model.json
  --layers A,B       layers to tap (default: all of the built-in model's)
  --frames-per-tr N  frames per TR through the CNN (default: every frame)
  --units I,J,…      these units as GLM regressors (default: PCA components)
  --unit-maps W      units with their own synchronized map: all (default), none, or I,J,…
  --networks N       learned networks coupled as features (default 8; 0: none)
  --max-trs N        only the first N TRs
  --no-cache         do not read or write the feature cache
  --cache-dir DIR    feature cache folder (default .syncact/cache or $SYNCACT_CACHE_DIR)`;

type Values = { [K in keyof typeof SESSION_OPTIONS]?: (typeof SESSION_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** Where the demo session lives, relative to the current folder. */
export const DEMO_DIR = join('.syncact', 'demo');

function intList(command: string, name: string, v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = v.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 0)) throw new SyncactError('CLI_USAGE', `${command}: --${name} must be a comma-separated list of unit indices, got "${v}"`);
  return xs;
}

function unitMapsOption(command: string, v: string): 'all' | 'none' | number[] {
  if (v === 'all' || v === 'none') return v;
  return intList(command, 'unit-maps', v) as number[];
}

function positiveInt(command: string, name: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = numberOption(command, name, v, NaN);
  if (!Number.isInteger(n) || n < min) throw new SyncactError('CLI_USAGE', `${command}: --${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

/**
 * Generates the demo session into .syncact/demo unless a complete, current one is there
 * (session.json is written last; a session.json other than this version's, e.g. one from
 * before the demo set smoothing_fwhm, means the folder is regenerated).
 */
export async function ensureDemo(say: (line: string) => void): Promise<string> {
  const dir = resolve(DEMO_DIR);
  const file = join(dir, 'session.json');
  const demo = createSyntheticSession({ preset: 'demo', seed: 1 });
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text !== syntheticSessionJson(demo)) {
    say(text === null ? `generating the demo session in ${dir} (first use only) …` : `regenerating the demo session in ${dir} (written by another version of syncact) …`);
    const ffmpegPath = locateFfmpeg();
    await writeSyntheticSession(demo, dir, { ffmpegPath });
  }
  return file;
}

export async function sessionFromArgs(
  command: string,
  v: Values,
  say: (line: string) => void,
): Promise<{ source: SessionSource; options: OpenOptions }> {
  if (v.demo && (v.session || v.fmri)) throw new SyncactError('CLI_USAGE', `${command}: --demo replaces --session and --fmri; give one`);
  const session = v.demo ? await ensureDemo(say) : v.session;
  if (!session && !v.fmri) throw new SyncactError('CLI_USAGE', `${command}: give --session FILE, --demo, or --fmri FILE --movie FILE`);
  const tr = v.tr === undefined ? undefined : numberOption(command, 'tr', v.tr, NaN);
  if (tr !== undefined && !(tr > 0)) throw new SyncactError('CLI_USAGE', `${command}: --tr must be a positive number of seconds, got "${v.tr}"`);
  const source: SessionSource = {
    session,
    fmri: v.fmri,
    movie: v.movie,
    mask: v.mask,
    atlas: v.atlas,
    atlasLabels: v['atlas-labels'],
    tr,
    onset: v.onset === undefined ? undefined : numberOption(command, 'onset', v.onset, 0),
    fps: v.fps === undefined ? undefined : numberOption(command, 'fps', v.fps, NaN),
    smoothingFwhm: v['smoothing-fwhm'] === undefined ? undefined : numberOption(command, 'smoothing-fwhm', v['smoothing-fwhm'], NaN),
  };
  if (source.smoothingFwhm !== undefined && !(source.smoothingFwhm >= 0)) {
    throw new SyncactError('CLI_USAGE', `${command}: --smoothing-fwhm must be a FWHM in mm ≥ 0 (0: none), got "${v['smoothing-fwhm']}"`);
  }
  if (source.fps !== undefined && !(source.fps > 0)) throw new SyncactError('CLI_USAGE', `${command}: --fps must be a positive frame rate, got "${v.fps}"`);
  const liveTimeout = v['live-timeout'] === undefined ? undefined : numberOption(command, 'live-timeout', v['live-timeout'], NaN);
  if (liveTimeout !== undefined && !(liveTimeout > 0)) throw new SyncactError('CLI_USAGE', `${command}: --live-timeout must be a positive number of seconds, got "${v['live-timeout']}"`);
  const layers = v.layers?.split(',').map((x) => x.trim()).filter(Boolean);
  let model: ModelSpec | undefined;
  if (v.model && v.model !== 'builtin') {
    const path = resolve(v.model);
    if (!layers?.length) throw new SyncactError('CLI_USAGE', `${command}: --model ${v.model} needs --layers (the layer or node names to tap)`);
    model = inferModelKind(path) === 'onnx' ? { kind: 'onnx', path, layers } : { kind: 'tfjs', path, layers };
  }
  const options: OpenOptions = {
    model,
    layers,
    framesPerTr: positiveInt(command, 'frames-per-tr', v['frames-per-tr']),
    units: intList(command, 'units', v.units),
    ...(v['unit-maps'] === undefined ? {} : { engine: { unitMaps: unitMapsOption(command, v['unit-maps']) } }),
    networks: positiveInt(command, 'networks', v.networks, 0),
    maxTrs: positiveInt(command, 'max-trs', v['max-trs'], 3),
    acceptTrMismatch: v['accept-tr'] ?? false,
    stopAtMovieEnd: v['stop-at-movie-end'] ?? false,
    ...(liveTimeout === undefined ? {} : { live: { timeoutMs: liveTimeout * 1000 } }),
    cacheDir: v['no-cache'] ? null : v['cache-dir'] ? resolve(v['cache-dir']) : undefined,
    log: (m) => say(m),
  };
  return { source, options };
}
