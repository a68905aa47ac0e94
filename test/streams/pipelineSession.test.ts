/**
 * Opening sessions from files: a session given by flags (its movie decoded by ffmpeg)
 * against the same session's in-memory frames; the TR and movie-length rules (the lockstep
 * plan's, --stop-at-movie-end included); and a live folder of 3D volumes giving the
 * same states as the 4D file.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNifti } from '../../server/io/nifti/write.ts';
import { runPipeline, type PipelineTr } from '../../server/streams/pipeline.ts';
import { openSession, type OpenOptions, type OpenedSession, type SessionSource } from '../../server/streams/session.ts';
import { pearson } from '../../server/analysis/correlation.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';
import { fakeExtractor, stateValues } from './pipelineFixtures.ts';

let tmp: string;
let dir: string;
const synth = createSyntheticSession({ preset: 'tiny', seed: 1 });

const opts = (extra: OpenOptions = {}): OpenOptions => ({
  model: fakeExtractor(),
  cacheDir: null,
  networks: 2,
  annotationNulls: 10,
  framesPerTr: 4,
  engine: { regressors: 3, window: 8 },
  ...extra,
});

const flags = (): SessionSource => ({
  fmri: join(dir, 'bold.nii.gz'),
  movie: join(dir, 'movie.mp4'),
  mask: join(dir, 'mask.nii.gz'),
  atlas: join(dir, 'atlas.nii.gz'),
  atlasLabels: join(dir, 'atlas.tsv'),
});

async function states(s: OpenedSession): Promise<PipelineTr[]> {
  try {
    return await lastValueFrom(
      runPipeline({ inputs: s.inputs, engine: s.engine, alpha: 0.05, speed: 'max', annotateEvery: 0, annotate: s.annotate, snapshotEvery: 4 }).pipe(toArray()),
    );
  } finally {
    await s.close();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-session-'));
  dir = join(tmp, 'tiny');
  await writeSyntheticSession(synth, dir);
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('openSession', () => {
  it('flags only: the movie file decoded by ffmpeg gives the in-memory frames\' unit responses (up to H.264)', async () => {
    // 3 of every 8 frames (1, 4, 6): the CNN stops before the movie's last frame, and closing
    // the decoder with frames left in its pipe must not hang.
    const fromFile = await openSession(flags(), opts({ framesPerTr: 3 }));
    const fromMemory = await openSession({ session: join(dir, 'session.json') }, opts({ framesPerTr: 3 }));
    try {
      expect(fromFile.info.tr).toBe(1);
      expect(fromFile.inputs.trCount).toBe(60);
      expect(fromFile.info.features.slice(0, 7)).toEqual(synth.truth.networks.map((n) => n.name));
      expect(fromFile.truth).toBeNull();
      expect(fromMemory.truth?.networks.map((n) => n.name)).toEqual(synth.truth.networks.map((n) => n.name));
      // The planted maps read back from truth_maps.nii.gz are the generator's.
      expect(Array.from(fromMemory.truth!.networks[0].map)).toEqual(Array.from(synth.truth.networks[0].map));
      const U = fromFile.cnn.units;
      for (let u = 0; u < U; u++) {
        const a = fromFile.inputs.responses.map((r) => r[u]);
        const b = fromMemory.inputs.responses.map((r) => r[u]);
        expect(pearson(a, b)).toBeGreaterThan(0.98);
      }
      for (const k of [0, 33]) expect(Array.from(await fromFile.inputs.volumes.read(k))).toEqual(Array.from(await fromMemory.inputs.volumes.read(k)));
      // Thumbnails: TR k's last frame (8 fps: frame 8k + 7), decoded vs drawn, equal up to H.264.
      for (const k of [3, 1, 59]) {
        const a = await fromFile.frame(k);
        const b = await fromMemory.frame(k);
        expect([a?.width, a?.height]).toEqual([64, 64]);
        expect(Array.from(b!.rgb)).toEqual(Array.from(synth.movie.frame(8 * k + 7)));
        let diff = 0;
        for (let i = 0; i < a!.rgb.length; i++) diff += Math.abs(a!.rgb[i] - b!.rgb[i]);
        expect(diff / a!.rgb.length).toBeLessThan(4);
      }
    } finally {
      await fromFile.close();
      await fromMemory.close();
    }
  });

  it('a session TR that disagrees with the header is an error unless accepted', async () => {
    const file = join(tmp, 'tr2.json');
    const json = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8'));
    const abs = Object.fromEntries(Object.entries(json).map(([k, v]) => [k, typeof v === 'string' && v.includes('.') ? join(dir, v) : v]));
    writeFileSync(file, JSON.stringify({ ...abs, tr: 2 }));
    await expect(openSession({ session: file }, opts())).rejects.toMatchObject({ code: 'REPLAY_TR_MISMATCH' });
    const s = await openSession({ session: file }, opts({ acceptTrMismatch: true }));
    try {
      expect(s.info.tr).toBe(2);
      expect(s.warnings.join('\n')).toMatch(/differs from the header/);
      // At TR 2 s the 60 s movie covers 30 TRs of the 60-volume run: the rest carry no frames.
      expect(s.warnings.join('\n')).toMatch(/carry no frames/);
      expect(s.inputs.trCount).toBe(60);
    } finally {
      await s.close();
    }
    // --stop-at-movie-end: the lockstep's stopAtMovieEnd, the replay ends with the movie's last TR.
    const stopped = await openSession({ session: file }, opts({ acceptTrMismatch: true, stopAtMovieEnd: true }));
    try {
      expect(stopped.inputs.trCount).toBe(30);
      expect(stopped.info.trCount).toBe(30);
      expect(stopped.warnings.join('\n')).toMatch(/stopping after TR 29, as asked/);
      expect(stopped.warnings.join('\n')).not.toMatch(/carry no frames/);
    } finally {
      await stopped.close();
    }
  });

  it('a live folder of 3D volumes gives the same states as the 4D file', async () => {
    const live = join(tmp, 'live');
    mkdirSync(live);
    for (let k = 0; k < 12; k++) {
      await writeNifti(join(live, `vol${k}.nii`), synth.volume(k), { dims: [...synth.grid.dims], affine: synth.grid.affine });
    }
    const fromFolder = await states(await openSession({ ...flags(), fmri: live, tr: 1 }, opts({ maxTrs: 12, live: { pollMs: 10, timeoutMs: 2000 } })));
    const fromFile = await states(await openSession(flags(), opts({ maxTrs: 12 })));
    expect(fromFolder.map((t) => t.state.tr)).toEqual(Array.from({ length: 12 }, (_, k) => k));
    expect(fromFolder.map(stateValues)).toEqual(fromFile.map(stateValues));
    await expect(openSession({ ...flags(), fmri: live, mask: undefined, tr: 1 }, opts())).rejects.toMatchObject({ code: 'SESSION_INVALID', message: expect.stringMatching(/needs a mask/) });
  });

  it('live volumes arriving during the replay, one half-written first, give the 4D file\'s states (the pipeline waits for them)', async () => {
    const staging = join(tmp, 'staging');
    const live = join(tmp, 'live-slow');
    mkdirSync(staging);
    mkdirSync(live);
    const bytes: Buffer[] = [];
    for (let k = 0; k < 12; k++) {
      const f = join(staging, `vol${k}.nii`);
      await writeNifti(f, synth.volume(k), { dims: [...synth.grid.dims], affine: synth.grid.affine });
      bytes.push(readFileSync(f));
    }
    writeFileSync(join(live, 'vol0.nii'), bytes[0]);
    const session = await openSession({ ...flags(), fmri: live, tr: 1 }, opts({ maxTrs: 12, live: { pollMs: 10, timeoutMs: 5000 } }));
    const writer = (async () => {
      for (let k = 1; k < 12; k++) {
        await sleep(20);
        const file = join(live, `vol${k}.nii`);
        if (k === 5) {
          // Half a file, a pause longer than two polls, then the rest.
          writeFileSync(file, bytes[k].subarray(0, bytes[k].length >> 1));
          await sleep(80);
          appendFileSync(file, bytes[k].subarray(bytes[k].length >> 1));
        } else {
          writeFileSync(file, bytes[k]);
        }
      }
    })();
    const [fromFolder] = await Promise.all([states(session), writer]);
    const fromFile = await states(await openSession(flags(), opts({ maxTrs: 12 })));
    expect(fromFolder.map(stateValues)).toEqual(fromFile.map(stateValues));
  });
});
