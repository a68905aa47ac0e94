/**
 * The benchmark contract (DESIGN.md §9). Each `bench/*.bench.ts` file default-exports a
 * suite that names the figures it produces up front (so `--only PREFIX` can skip whole
 * suites) and measures them, references included, in the same run.
 * Figure names are flat and dotted with the unit in the name: `_ms`, `_fps`, `_per_s`, `_mb`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BenchSuite {
  /** A short title for the table. */
  title: string;
  /** Every figure name this suite may produce. */
  figures: string[];
  /** Measures; returns figure name → value (NaN or missing when a reference tool is absent). */
  run(ctx: BenchContext): Promise<Record<string, number>>;
}

export interface BenchContext {
  /** True when the figure should be measured (from --only). */
  wants(figure: string): boolean;
  /** A scratch folder for generated files, removed after the run. */
  tmpDir: string;
  /** Progress messages go to stderr so --json stdout stays one object. */
  log(message: string): void;
}

/** Median of a list of numbers (times). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Debian's python with numpy/scipy, where the reference scripts in bench/reference run. */
export const PYTHON = '/usr/bin/python3';

/**
 * Runs a numpy reference script (bench/reference/NAME.py) that prints one JSON object of
 * figures. Every figure named in `figures` is NaN when python is missing or the script
 * fails (logged), so the engine's figures are still reported without the reference.
 * @param env changes to the child's environment: a string sets a variable, undefined removes it
 */
export function runNumpyReference(
  name: string,
  figures: string[],
  log: (message: string) => void,
  env: Record<string, string | undefined> = {},
): Record<string, number> {
  const missing = Object.fromEntries(figures.map((f) => [f, NaN]));
  if (!existsSync(PYTHON)) {
    log(`numpy reference skipped: ${PYTHON} not found`);
    return missing;
  }
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const script = fileURLToPath(new URL(`./reference/${name}`, import.meta.url));
  try {
    return { ...missing, ...(JSON.parse(execFileSync(PYTHON, [script], { encoding: 'utf8', env: childEnv, timeout: 120_000 })) as Record<string, number>) };
  } catch (e) {
    log(`numpy reference failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return missing;
  }
}
