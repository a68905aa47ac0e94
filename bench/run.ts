/**
 * `npm run bench [-- --json] [-- --only PREFIX]`: runs every bench/*.bench.ts suite and
 * prints a table, or one JSON object {"machine": {...}, "figures": {...}}.
 */
import { readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, platform, arch, release } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchSuite } from './bench.ts';

const { values } = parseArgs({
  options: { json: { type: 'boolean', default: false }, only: { type: 'string', multiple: true } },
  allowPositionals: false,
});
const prefixes = values.only ?? [];
const wants = (figure: string) => prefixes.length === 0 || prefixes.some((p) => figure.startsWith(p));

const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).sort();
const tmpDir = mkdtempSync(join(tmpdir(), 'syncact-bench-'));
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const figures: Record<string, number> = {};
try {
  for (const file of files) {
    const suite = (await import(pathToFileURL(join(here, file)).href)).default as BenchSuite;
    if (!suite.figures.some(wants)) continue;
    log(`${suite.title} (${file})`);
    const out = await suite.run({ wants, tmpDir, log });
    for (const [k, v] of Object.entries(out)) if (wants(k)) figures[k] = v;
  }
} finally {
  rmSync(tmpDir, { recursive: true, force: true });
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memory_gb: Math.round(totalmem() / 2 ** 30),
  os: `${platform()} ${release()} ${arch()}`,
  node: process.version,
};
if (values.json) {
  process.stdout.write(JSON.stringify({ machine, figures }) + '\n');
} else {
  const width = Math.max(10, ...Object.keys(figures).map((k) => k.length));
  process.stdout.write(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gb} GiB, node ${machine.node}\n\n`);
  for (const [k, v] of Object.entries(figures)) {
    const shown = Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4)) : 'n/a';
    process.stdout.write(`${k.padEnd(width)}  ${shown}\n`);
  }
}
