/**
 * The CNN run-ahead as operators (server/streams/cnnStage.ts and cnn/): against the
 * function it replaced, `getOrComputeActivations` then `responsesFromActivations` then the
 * reducer. The cache file it writes has the same name (key) and the same bytes; the unit
 * responses and regressors are the same numbers, bit for bit, for several batchings,
 * samplings, onsets and run lengths; a cache hit reads no frame and calls no CNN; a CNN
 * that fails mid-movie fails the stage and leaves no cache file.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FeatureExtractor } from '../../server/engine/cnn/extractor.ts';
import { fitUnitReducer, type UnitReductionSpec } from '../../server/engine/cnn/unitReduction.ts';
import { responsesFromActivations, type FrameSource } from '../../server/engine/cnn/unitSeries.ts';
import { createRng } from '../../server/engine/random.ts';
import { cacheKeyParts, FeatureCache, getOrComputeActivations } from '../../server/io/featureCache.ts';
import { runCnnStage, type CnnStageOptions } from '../../server/streams/cnnStage.ts';
import { fakeExtractor } from './pipelineFixtures.ts';

const W = 16;

/** A seeded 16×16 movie of `frames` frames at `fps`, counting the frames read. */
function movie(frames: number, fps: number, seed: number): FrameSource & { reads: number } {
  const rng = createRng(seed);
  const pixels = Array.from({ length: frames }, () => Uint8Array.from({ length: W * W * 3 }, () => Math.floor(rng.uniform() * 256)));
  const m = {
    width: W,
    height: W,
    frameCount: frames,
    fps,
    reads: 0,
    frame(i: number): Uint8Array {
      m.reads++;
      return pixels[i];
    },
  };
  return m;
}

/** The fake CNN, counting its calls, optionally failing at call `failAt`. */
function counting(failAt = Infinity): FeatureExtractor & { calls: number } {
  const inner = fakeExtractor();
  const e = {
    ...inner,
    calls: 0,
    async extract(batch: Parameters<FeatureExtractor['extract']>[0]) {
      if (++e.calls === failAt) throw new Error('CNN died');
      return inner.extract(batch);
    },
  };
  return e;
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'syncact-cnnstage-'));

/** What runCnnStage computed before it was a pipe of operators. */
async function before(o: CnnStageOptions, cache: FeatureCache) {
  const parts = cacheKeyParts(o.extractor, o.movie, { movieHash: o.movieHash, sampling: { tr: o.tr, onset: o.onset, framesPerTr: o.framesPerTr } });
  const got = await getOrComputeActivations(o.extractor, o.movie, parts, cache, { batchSize: o.batchSize });
  const series = responsesFromActivations(got.activations, { tr: o.tr, onset: o.onset, binsPerTr: o.binsPerTr, hrfReference: o.hrfReference, nTrs: o.nTrs });
  const reducer = fitUnitReducer(o.reduction, series.responses);
  const U = series.layout.units;
  return series.responses.map((r) => {
    const out = new Float64Array(U + reducer.k);
    out.set(r);
    reducer.transform(r, out.subarray(U));
    return out;
  });
}

const pca: UnitReductionSpec = { kind: 'pca', components: 3 };
const cases: { name: string; frames: number; fps: number; tr: number; onset: number; nTrs: number; framesPerTr?: number; batchSize?: number; reduction: UnitReductionSpec }[] = [
  { name: 'every frame, batches of 8', frames: 120, fps: 6, tr: 1, onset: 0, nTrs: 20, reduction: pca },
  { name: 'every frame, batches of 1, an onset, a run shorter than the movie', frames: 120, fps: 6, tr: 1, onset: 2.5, nTrs: 12, batchSize: 1, reduction: pca },
  { name: '2 frames per TR, batches of 3, TR 1.5 s', frames: 90, fps: 5, tr: 1.5, onset: 0, nTrs: 12, framesPerTr: 2, batchSize: 3, reduction: pca },
  { name: 'a run longer than the movie, chosen units', frames: 40, fps: 4, tr: 1, onset: 0, nTrs: 14, batchSize: 7, reduction: { kind: 'units', units: [4, 0] } },
];

describe('the CNN stage as operators', () => {
  for (const c of cases) {
    it(`${c.name}: the same cache file (name and bytes) and the same responses as before, then a hit reads nothing`, async () => {
      const options = (extractor: FeatureExtractor, m: FrameSource, cache: FeatureCache): CnnStageOptions => ({
        extractor,
        movie: m,
        movieHash: `movie-${c.frames}`,
        tr: c.tr,
        onset: c.onset,
        nTrs: c.nTrs,
        binsPerTr: 16,
        hrfReference: 0.5,
        framesPerTr: c.framesPerTr,
        reduction: c.reduction,
        cache,
        batchSize: c.batchSize,
      });
      const oldDir = tempDir();
      const oldCache = new FeatureCache({ dir: oldDir });
      const expected = await before(options(fakeExtractor(), movie(c.frames, c.fps, 3), oldCache), oldCache);

      const dir = tempDir();
      const cache = new FeatureCache({ dir });
      const progress: number[] = [];
      const cold = await runCnnStage({ ...options(fakeExtractor(), movie(c.frames, c.fps, 3), cache), onProgress: (done) => progress.push(done) });
      expect(cold.cacheHit).toBe(false);
      expect(cold.cacheMiss).toBe('not cached yet');
      expect(cold.responses).toEqual(expected);
      expect(cold.responses.length).toBe(c.nTrs);
      expect(cold.glmUnits).toEqual(Array.from({ length: cold.reducer.k }, (_, j) => 5 + j));
      expect(progress[progress.length - 1]).toBe(cold.frames);
      const [file] = readdirSync(oldDir);
      expect(readdirSync(dir)).toEqual([file]);
      expect(readFileSync(join(dir, file)).equals(readFileSync(join(oldDir, file)))).toBe(true);

      const cnn = counting();
      const m = movie(c.frames, c.fps, 3);
      const warm = await runCnnStage(options(cnn, m, cache));
      expect(warm.cacheHit).toBe(true);
      expect([cnn.calls, m.reads]).toEqual([0, 0]);
      expect(warm.responses).toEqual(cold.responses);
      expect(warm.frames).toBe(cold.frames);
      for (const s of [cold, warm]) expect(Object.keys(s.stageMs)).toEqual(['cnn', 'hrf', 'reduction']);
    });
  }

  it('a CNN that fails mid-movie fails the stage with its error and writes no cache file', async () => {
    const dir = tempDir();
    const cnn = counting(3);
    const m = movie(120, 6, 5);
    await expect(
      runCnnStage({ extractor: cnn, movie: m, movieHash: 'x', tr: 1, onset: 0, nTrs: 20, binsPerTr: 16, hrfReference: 0.5, reduction: pca, cache: new FeatureCache({ dir }) }),
    ).rejects.toThrow('CNN died');
    expect(cnn.calls).toBe(3);
    // Frames are read a batch at a time, when the CNN is ready for them: not ahead.
    expect(m.reads).toBe(24);
    expect(readdirSync(dir)).toEqual([]);
  });
});
