/**
 * smoothing_fwhm in a session: every volume the engine gets is the whole grid smoothed
 * (server/engine/spatialSmoothing.ts) and then masked, as nilearn's maskers do, whether the
 * run is a 4D file or a live folder of 3D files, and whether the FWHM comes from
 * session.json or the flag (which overrides it; 0 turns it off).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeSession, reportJson } from '../../server/analysis/analyze.ts';
import { smoothVolume } from '../../server/engine/spatialSmoothing.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { gather } from '../../server/streams/sessionReaders.ts';
import { openSession, type OpenOptions, type OpenedSession } from '../../server/streams/session.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';
import { fakeExtractor } from './pipelineFixtures.ts';

const synth = createSyntheticSession({ preset: 'tiny', seed: 1 });
const opts: OpenOptions = { model: fakeExtractor(), cacheDir: null, networks: 2, annotationNulls: 10, framesPerTr: 4, engine: { regressors: 3, window: 8 } };
const FWHM = 7;
const TRS = [0, 3, 1, 2];

let tmp: string;
let dir: string;
/** The BOLD volumes as stored (float32 over the grid), read back from the written file. */
const raw: Float32Array[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-smoothing-'));
  dir = join(tmp, 'tiny');
  await writeSyntheticSession(synth, dir);
  const image = await openNifti(join(dir, 'bold.nii.gz'));
  for await (const { data } of image.volumes({ end: 4 })) raw.push(Float32Array.from(data));
  await image.close();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Reads TRS in that order (a jump back included), keeping every result until the end. */
async function read(s: OpenedSession): Promise<Map<number, Float32Array>> {
  const out = new Map<number, Float32Array>();
  try {
    for (const k of TRS) out.set(k, await s.inputs.volumes.read(k));
  } finally {
    await s.close();
  }
  return out;
}

function expectVolumes(got: Map<number, Float32Array>, s: OpenedSession, fwhm: number | null): void {
  for (const k of TRS) {
    const grid = fwhm === null ? raw[k] : smoothVolume(raw[k], synth.grid, fwhm);
    expect(Array.from(got.get(k) as Float32Array), `volume ${k}`).toEqual(Array.from(gather(grid, s.maskIndices)));
  }
}

describe('smoothing_fwhm', () => {
  it('session.json smoothing_fwhm smooths every volume of a 4D run over the whole grid, then masks', async () => {
    const file = join(dir, 'session.smoothed.json');
    const json = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...json, smoothing_fwhm: FWHM }));
    const s = await openSession({ session: file }, opts);
    expect(s.config.smoothingFwhm).toBe(FWHM);
    const got = await read(s);
    expectVolumes(got, s, FWHM);
    // The smoothing is not a no-op here: a masked voxel changes far more than float rounding (~1e-4 at 1000).
    const plain = gather(raw[0], s.maskIndices);
    expect(Math.max(...Array.from(got.get(0) as Float32Array, (v, i) => Math.abs(v - plain[i])))).toBeGreaterThan(0.1);
  });

  it('the flag overrides session.json; --smoothing-fwhm 0 turns it off', async () => {
    const file = join(dir, 'session.smoothed.json');
    const off = await openSession({ session: file, smoothingFwhm: 0 }, opts);
    expect(off.config.smoothingFwhm).toBeNull();
    expectVolumes(await read(off), off, null);
    const wider = await openSession({ session: join(dir, 'session.json'), smoothingFwhm: 10 }, opts);
    expect(wider.config.smoothingFwhm).toBe(10);
    expectVolumes(await read(wider), wider, 10);
  });

  it('report.json records the FWHM under parameters (null without smoothing)', async () => {
    for (const [source, want] of [
      [{ session: join(dir, 'session.smoothed.json') }, FWHM],
      [{ session: join(dir, 'session.json') }, null],
    ] as const) {
      const s = await openSession(source, { ...opts, maxTrs: 12 });
      try {
        const report = reportJson(s, await analyzeSession(s, { annotateEvery: 0, warn: () => undefined })) as { parameters: Record<string, unknown> };
        expect(report.parameters.smoothing_fwhm).toBe(want);
      } finally {
        await s.close();
      }
    }
  });

  it('a live folder of 3D volumes is smoothed the same way', async () => {
    const live = join(tmp, 'live');
    mkdirSync(live);
    for (let k = 0; k < 4; k++) await writeNifti(join(live, `vol${k}.nii`), raw[k], { dims: [...synth.grid.dims], affine: synth.grid.affine });
    const s = await openSession(
      { fmri: live, movie: join(dir, 'movie.mp4'), mask: join(dir, 'mask.nii.gz'), tr: 1, smoothingFwhm: FWHM },
      { ...opts, maxTrs: 4, live: { pollMs: 10, timeoutMs: 2000, count: 4 } },
    );
    expectVolumes(await read(s), s, FWHM);
  });
});
