/**
 * Finding the ffmpeg and ffprobe executables. Order: the FFMPEG_PATH / FFPROBE_PATH
 * environment variables (what fluent-ffmpeg users already set), then the static builds of
 * the @ffmpeg-installer / @ffprobe-installer packages, then the PATH. A variable that is set
 * but wrong is an error rather than silently skipped: the user meant that file.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { SyncactError } from '../errors.ts';

export type FfmpegTool = 'ffmpeg' | 'ffprobe';

const ENV: Record<FfmpegTool, string> = { ffmpeg: 'FFMPEG_PATH', ffprobe: 'FFPROBE_PATH' };
const PACKAGE: Record<FfmpegTool, string> = { ffmpeg: '@ffmpeg-installer/ffmpeg', ffprobe: '@ffprobe-installer/ffprobe' };

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The installer package's binary, or null when the package or its platform build is absent. */
function fromPackage(tool: FfmpegTool): string | null {
  try {
    const require = createRequire(import.meta.url);
    const path = (require(PACKAGE[tool]) as { path?: string }).path;
    return path && isExecutable(path) ? path : null;
  } catch {
    return null;
  }
}

function fromPath(tool: FfmpegTool, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, tool);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

export interface LocateOptions {
  /** Defaults to process.env; tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** Skip the npm installer packages (tests of the PATH fallback). */
  skipPackages?: boolean;
}

/** The path of ffmpeg or ffprobe; throws FFMPEG_NOT_FOUND saying where it looked. */
export function locateTool(tool: FfmpegTool, options: LocateOptions = {}): string {
  const env = options.env ?? process.env;
  const fromEnv = env[ENV[tool]];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new SyncactError('FFMPEG_NOT_FOUND', `${ENV[tool]} is set but is not an executable file`, fromEnv);
  }
  const found = (options.skipPackages ? null : fromPackage(tool)) ?? fromPath(tool, env);
  if (found) return found;
  throw new SyncactError(
    'FFMPEG_NOT_FOUND',
    `${tool} not found: set ${ENV[tool]}, install ${PACKAGE[tool]}, or put ${tool} on PATH`,
  );
}

export const locateFfmpeg = (options?: LocateOptions): string => locateTool('ffmpeg', options);
export const locateFfprobe = (options?: LocateOptions): string => locateTool('ffprobe', options);
