import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENGINE_DEFAULTS, loadSession, parseSession } from '../server/config.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-config-'));
  await mkdir(join(dir, 'data'));
  for (const f of ['bold.nii.gz', 'movie.mp4', 'mask.nii.gz']) await writeFile(join(dir, 'data', f), '');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const at = '/sessions/s1/session.json';

describe('parseSession', () => {
  it('resolves relative paths against the file folder, keeps absolute ones, fills defaults', () => {
    const s = parseSession({ fmri: 'bold.nii.gz', movie: '../movies/m.mp4', mask: '/abs/mask.nii', anatomical: 'anat/T1w.nii.gz' }, at);
    expect(s).toEqual({
      path: at,
      fmri: '/sessions/s1/bold.nii.gz',
      movie: '/sessions/movies/m.mp4',
      mask: '/abs/mask.nii',
      atlas: null,
      atlasLabels: null,
      anatomical: '/sessions/s1/anat/T1w.nii.gz',
      truth: null,
      truthMaps: null,
      tr: null,
      onset: 0,
      smoothingFwhm: null,
      preset: null,
      seed: null,
      entities: { subject: null, session: null, task: 'movie', run: null },
      engine: ENGINE_DEFAULTS,
    });
  });

  it('documents the DESIGN.md defaults', () => {
    expect(ENGINE_DEFAULTS).toMatchObject({ microtimeBins: 16, hrfReference: 0.5, window: 30, nulls: 100, fdrQ: 0.05, snapshotEvery: 50, forgetting: 1 });
    expect(ENGINE_DEFAULTS.highPassHz).toBeCloseTo(1 / 128, 15);
  });

  it('reads engine overrides in snake_case and leaves the rest at defaults', () => {
    const s = parseSession({ fmri: 'b.nii', tr: 0.72, onset: 2.5, engine: { window: 40, fdr_q: 0.01, window_kind: 'exponential', hrf_derivative: true } }, at);
    expect(s.tr).toBe(0.72);
    expect(s.onset).toBe(2.5);
    expect(s.engine).toEqual({ ...ENGINE_DEFAULTS, window: 40, fdrQ: 0.01, windowKind: 'exponential', hrfDerivative: true });
  });

  it('reads smoothing_fwhm in mm; 0 and null mean no smoothing', () => {
    expect(parseSession({ fmri: 'b.nii', smoothing_fwhm: 6.5 }, at).smoothingFwhm).toBe(6.5);
    expect(parseSession({ fmri: 'b.nii', smoothing_fwhm: 0 }, at).smoothingFwhm).toBeNull();
    expect(parseSession({ fmri: 'b.nii', smoothing_fwhm: null }, at).smoothingFwhm).toBeNull();
  });

  const bad: [string, unknown, string][] = [
    ['not an object', [1, 2], 'must be a JSON object'],
    ['missing fmri', { movie: 'm.mp4' }, 'field "fmri" is required'],
    ['empty path', { fmri: '' }, 'field "fmri" must be a non-empty path string'],
    ['path not a string', { fmri: 'b.nii', mask: 3 }, 'field "mask" must be a non-empty path string'],
    ['typo', { fmri: 'b.nii', atlas_label: 'a.tsv' }, 'unknown field "atlas_label"'],
    ['negative TR', { fmri: 'b.nii', tr: -1 }, 'field "tr" must be a positive number of seconds'],
    ['string TR', { fmri: 'b.nii', tr: '1' }, 'field "tr"'],
    ['version', { fmri: 'b.nii', version: 2 }, 'field "version" must be 1'],
    ['seed', { fmri: 'b.nii', seed: 1.5 }, 'field "seed" must be a non-negative integer'],
    ['negative smoothing', { fmri: 'b.nii', smoothing_fwhm: -4 }, 'field "smoothing_fwhm" must be a FWHM in mm ≥ 0'],
    ['smoothing as text', { fmri: 'b.nii', smoothing_fwhm: '6mm' }, 'field "smoothing_fwhm"'],
    ['engine not object', { fmri: 'b.nii', engine: 5 }, 'field "engine" must be an object'],
    ['engine typo', { fmri: 'b.nii', engine: { windows: 30 } }, 'unknown field "engine.windows"'],
    ['window too small', { fmri: 'b.nii', engine: { window: 2 } }, 'field "engine.window" must be an integer ≥ 3'],
    ['q out of range', { fmri: 'b.nii', engine: { fdr_q: 1 } }, 'field "engine.fdr_q" must be in (0, 1)'],
    ['forgetting', { fmri: 'b.nii', engine: { forgetting: 0 } }, 'field "engine.forgetting"'],
    ['reference', { fmri: 'b.nii', engine: { hrf_reference: 1 } }, 'field "engine.hrf_reference"'],
    ['pooling', { fmri: 'b.nii', engine: { pooling: 'median' } }, 'field "engine.pooling" must be "mean" or "max"'],
    ['bins', { fmri: 'b.nii', engine: { microtime_bins: 0 } }, 'field "engine.microtime_bins" must be a positive integer'],
  ];
  for (const [name, json, message] of bad) {
    it(`rejects ${name} with SESSION_INVALID naming the field`, () => {
      expect(() => parseSession(json, at)).toThrow(expect.objectContaining({ code: 'SESSION_INVALID', file: at, message: expect.stringContaining(message) }) as unknown as Error);
    });
  }
});

describe('loadSession', () => {
  it('loads a session file and checks the files it names exist', async () => {
    const path = join(dir, 'data', 'session.json');
    await writeFile(path, JSON.stringify({ version: 1, fmri: 'bold.nii.gz', movie: 'movie.mp4', mask: 'mask.nii.gz', tr: 1 }));
    const s = await loadSession(path);
    expect(s.fmri).toBe(join(dir, 'data', 'bold.nii.gz'));
    expect(s.movie).toBe(join(dir, 'data', 'movie.mp4'));
    expect(s.atlas).toBeNull();
  });

  it('names a missing file and its field with FILE_NOT_FOUND', async () => {
    const path = join(dir, 'data', 'missing.json');
    await writeFile(path, JSON.stringify({ fmri: 'bold.nii.gz', atlas: 'atlas.nii.gz' }));
    await expect(loadSession(path)).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      file: join(dir, 'data', 'atlas.nii.gz'),
      message: expect.stringContaining('"atlas"'),
    });
  });

  it('reports a missing session file and invalid JSON', async () => {
    await expect(loadSession(join(dir, 'none.json'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    const path = join(dir, 'broken.json');
    await writeFile(path, '{"fmri": ');
    await expect(loadSession(path)).rejects.toMatchObject({ code: 'SESSION_INVALID', file: path, message: expect.stringContaining('not valid JSON') });
  });

  it('loads the committed tiny fixture', async () => {
    const s = await loadSession(new URL('../fixtures/tiny/session.json', import.meta.url).pathname);
    expect(s).toMatchObject({ preset: 'tiny', seed: 1, tr: 1, onset: 0 });
    expect(s.truthMaps).toMatch(/fixtures\/tiny\/truth_maps\.nii\.gz$/);
  });
});
