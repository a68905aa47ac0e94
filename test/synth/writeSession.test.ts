import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { SESSION_FILES, writeSyntheticSession, ATLAS_THRESHOLD } from '../../server/synth/writeSession.ts';
import { sha256 } from '../../server/synth/manifest.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { locateFfprobe } from '../../server/io/ffmpeg.ts';
import { loadSession, ENGINE_DEFAULTS } from '../../server/config.ts';

const NAMES = Object.values(SESSION_FILES);
let root: string;
const session = createSyntheticSession({ preset: 'tiny', seed: 1 });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'syncact-synth-'));
  await writeSyntheticSession(session, join(root, 'a'));
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 1 }), join(root, 'b'));
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 2 }), join(root, 'c'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const hash = async (dir: string, name: string) => sha256(await readFile(join(root, dir, name)));

describe('writeSyntheticSession', () => {
  it('writes exactly the session files, none left partial', async () => {
    expect((await readdir(join(root, 'a'))).sort()).toEqual([...NAMES].sort());
  });

  it('is byte-for-byte reproducible from the seed, and another seed changes the data', async () => {
    for (const name of NAMES) expect(await hash('b', name), name).toBe(await hash('a', name));
    for (const name of ['bold.nii.gz', 'movie.mp4', 'truth.json', 'session.json']) {
      expect(await hash('c', name), name).not.toBe(await hash('a', name));
    }
    // The anatomy is the same for every seed: only signals and noise depend on it.
    for (const name of ['mask.nii.gz', 'truth_maps.nii.gz', 'atlas.nii.gz', 'atlas.tsv']) {
      expect(await hash('c', name), name).toBe(await hash('a', name));
    }
  });

  it('writes a BOLD run the reader gives back exactly', async () => {
    const img = await openNifti(join(root, 'a', SESSION_FILES.bold));
    try {
      expect(img.header.dims).toEqual([12, 14, 12, 60]);
      expect(img.header.tr).toBe(1);
      expect(img.grid.affine).toEqual(session.grid.affine);
      for (const k of [0, 31, 59, 2]) expect(await img.readVolume(k)).toEqual(session.volume(k));
    } finally {
      await img.close();
    }
  });

  it('writes the mask, the planted maps and an atlas consistent with them', async () => {
    const mask = await openNifti(join(root, 'a', SESSION_FILES.mask));
    const maps = await openNifti(join(root, 'a', SESSION_FILES.truthMaps));
    const atlas = await openNifti(join(root, 'a', SESSION_FILES.atlas));
    try {
      expect(await mask.readVolume(0)).toEqual(Float32Array.from(session.mask));
      const networks = session.truth.networks;
      expect(maps.volumeCount).toBe(networks.length);
      const stack = await Promise.all(networks.map((_, i) => maps.readVolume(i)));
      stack.forEach((m, i) => expect(m).toEqual(networks[i].map));
      const labels = await atlas.readVolume(0);
      expect(atlas.header.description).toContain('atlas');
      let labelled = 0;
      for (let v = 0; v < labels.length; v++) {
        const values = stack.map((m) => m[v]);
        const best = Math.max(...values);
        const expected = best >= ATLAS_THRESHOLD ? values.indexOf(best) + 1 : 0;
        expect(labels[v]).toBe(expected);
        if (expected) labelled++;
      }
      expect(new Set(labels).size).toBe(networks.length + 1); // every network keeps some voxels
      expect(labelled).toBeGreaterThan(0);
    } finally {
      await Promise.all([mask.close(), maps.close(), atlas.close()]);
    }
    const tsv = await readFile(join(root, 'a', SESSION_FILES.atlasLabels), 'utf8');
    expect(tsv.trim().split('\n')).toEqual(['index\tname', ...session.truth.networks.map((n, i) => `${i + 1}\t${n.name}`)]);
  });

  it('writes truth.json with the exact drives, courses and network signals', async () => {
    const truth = JSON.parse(await readFile(join(root, 'a', SESSION_FILES.truth), 'utf8'));
    expect(truth).toMatchObject({ preset: 'tiny', seed: 1, tr: 1, n_volumes: 60, snr: 2, ar1: 0.4, noise_sd: 10 });
    expect(truth.features.map((f: { name: string }) => f.name)).toEqual(session.features.names);
    truth.features.forEach((f: { per_frame: number[]; per_tr: number[]; drive: number[] }, i: number) => {
      expect(f.per_frame).toEqual(Array.from(session.features.perFrame[i]));
      expect(f.per_tr).toEqual(Array.from(session.features.perTr[i]));
      expect(f.drive).toEqual(Array.from(session.truth.drives[i]));
    });
    expect(truth.networks.map((n: { driver: string | null; sign: number }) => [n.driver, n.sign])).toEqual(
      session.truth.networks.map((n) => [n.driver, n.sign]),
    );
    expect(truth.networks[5].signal).toEqual(Array.from(session.truth.networks[5].signal));
  });

  it('writes a session.json that loadSession resolves to these files', async () => {
    const loaded = await loadSession(join(root, 'a', SESSION_FILES.session));
    expect(loaded).toMatchObject({
      fmri: join(root, 'a', SESSION_FILES.bold),
      movie: join(root, 'a', SESSION_FILES.movie),
      mask: join(root, 'a', SESSION_FILES.mask),
      atlas: join(root, 'a', SESSION_FILES.atlas),
      atlasLabels: join(root, 'a', SESSION_FILES.atlasLabels),
      truth: join(root, 'a', SESSION_FILES.truth),
      truthMaps: join(root, 'a', SESSION_FILES.truthMaps),
      tr: 1,
      onset: 0,
      preset: 'tiny',
      seed: 1,
      engine: ENGINE_DEFAULTS,
    });
  });

  it('encodes a movie ffprobe reads as 480 H.264 frames, 64×64 at 8 fps', () => {
    const r = spawnSync(
      locateFfprobe(),
      ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,r_frame_rate,nb_read_frames', '-of', 'json', join(root, 'a', SESSION_FILES.movie)],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const [stream] = JSON.parse(r.stdout).streams;
    expect(stream).toMatchObject({ codec_name: 'h264', width: 64, height: 64, r_frame_rate: '8/1', nb_read_frames: '480' });
  });

  it('refuses an output path that is a file, with OUTPUT_NOT_WRITABLE', async () => {
    const file = join(root, 'plain-file');
    await writeFile(file, 'x');
    await expect(writeSyntheticSession(session, file)).rejects.toMatchObject({ code: 'OUTPUT_NOT_WRITABLE', file });
    await expect(writeSyntheticSession(session, join(file, 'below'))).rejects.toMatchObject({ code: 'OUTPUT_NOT_WRITABLE' });
  });

  it('removes a stale session.json first, so a failed run never looks complete', async () => {
    const dir = join(root, 'stale');
    await mkdir(dir);
    await writeFile(join(dir, SESSION_FILES.session), '{"fmri": "old.nii.gz"}');
    await expect(writeSyntheticSession(session, dir, { ffmpegPath: join(root, 'no-such-ffmpeg') })).rejects.toMatchObject({
      code: 'FFMPEG_FAILED',
    });
    const left = await readdir(dir);
    expect(left).not.toContain(SESSION_FILES.session);
    expect(left).not.toContain(SESSION_FILES.movie);
    expect(left.filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});
