import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtures } from '../../server/commands/fixtures.ts';
import { manifestEntry, ffmpegVersion, type FixtureManifest } from '../../server/synth/manifest.ts';
import { locateFfmpeg } from '../../server/io/ffmpeg.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const manifestPath = join(repo, 'fixtures/manifest.json');
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'syncact-fixtures-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the committed tiny fixture', () => {
  it('matches its manifest', async () => {
    const manifest: FixtureManifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    for (const f of manifest.files) {
      const entry = await manifestEntry(join(repo, 'fixtures', f.path), join(repo, 'fixtures'));
      expect(entry, f.path).toEqual(f);
    }
  });

  it('is reproduced by `syncact fixtures` with the manifest seed', async () => {
    const manifest: FixtureManifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    const out = join(root, 'regen');
    const code = await fixtures.run(['--preset', manifest.preset, '--seed', String(manifest.seed), '--out', join(out, 'tiny'), '--manifest', join(out, 'manifest.json'), '--quiet']);
    expect(code).toBe(0);
    const sameZlib = manifest.zlib === process.versions.zlib;
    const sameFfmpeg = manifest.ffmpeg === ffmpegVersion(locateFfmpeg());
    let compared = 0;
    for (const f of manifest.files) {
      const now = await manifestEntry(join(out, f.path), out);
      if (f.path.endsWith('.mp4')) {
        // The encoder's bytes are reproducible only on the same ffmpeg build.
        if (!sameFfmpeg) continue;
        expect(now.sha256, f.path).toBe(f.sha256);
      } else if (f.content_sha256) {
        // Another zlib may compress the same content differently.
        expect(now.content_sha256, f.path).toBe(f.content_sha256);
        if (sameZlib) expect(now.sha256, f.path).toBe(f.sha256);
      } else {
        expect(now.sha256, f.path).toBe(f.sha256);
      }
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(7);
  });
});

describe('syncact fixtures', () => {
  const run = (...args: string[]) => fixtures.run(args);

  it('needs --preset and --out, and rejects unknown presets and stray arguments', async () => {
    await expect(run('--out', root)).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringContaining('--preset') });
    await expect(run('--preset', 'tiny')).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringContaining('--out') });
    await expect(run('--preset', 'huge', '--out', root)).rejects.toMatchObject({
      code: 'CLI_USAGE',
      message: expect.stringContaining('unknown preset "huge"; presets: tiny, demo, hcp7t'),
    });
    await expect(run('--preset', 'tiny', '--out', root, 'extra')).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(run('--preset', 'tiny', '--out', root, '--colour')).rejects.toMatchObject({ code: 'CLI_USAGE' });
  });

  it('rejects a seed that is not a non-negative integer', async () => {
    await expect(run('--preset', 'tiny', '--out', root, '--seed', 'abc')).rejects.toMatchObject({ code: 'CLI_USAGE' });
    await expect(run('--preset', 'tiny', '--out', root, '--seed=-3')).rejects.toMatchObject({ code: 'SYNTH_BAD_OPTIONS' });
  });

  it('reports an unwritable --out with OUTPUT_NOT_WRITABLE', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, '');
    await expect(run('--preset', 'tiny', '--out', file, '--quiet')).rejects.toMatchObject({ code: 'OUTPUT_NOT_WRITABLE', file });
  });

  it('reports a missing ffmpeg with FFMPEG_NOT_FOUND before writing anything', async () => {
    const saved = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = join(root, 'missing-ffmpeg');
    try {
      await expect(run('--preset', 'tiny', '--out', join(root, 'noffmpeg'), '--quiet')).rejects.toMatchObject({
        code: 'FFMPEG_NOT_FOUND',
      });
      expect(await readdir(root)).not.toContain('noffmpeg');
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
  });
});
