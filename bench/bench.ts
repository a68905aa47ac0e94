/**
 * The benchmark contract (DESIGN.md §9). Each `bench/*.bench.ts` file default-exports a
 * suite that names the figures it produces up front (so `--only PREFIX` can skip whole
 * suites) and measures them, references included, in the same run.
 * Figure names are flat and dotted with the unit in the name: `_ms`, `_fps`, `_per_s`, `_mb`.
 */
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
