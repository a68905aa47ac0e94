import { describe, expect, it } from 'vitest';
import { from, lastValueFrom, map, toArray } from 'rxjs';
import { frameRange, LockstepReader, planLockstep, type LockstepOptions, type LockstepTr } from '../../server/streams/lockstep.ts';
import { clockedSteps } from '../../server/streams/clockedSteps.ts';
import type { MovieSource, VolumeSource } from '../../server/streams/sources.ts';
import { joinLockstep } from '../../server/streams/joinLockstep.ts';
import { replayClock } from '../../server/streams/replayClock.ts';
import { Subject } from 'rxjs';

/** A movie whose frame i is the single byte i % 256, counting how often it was (re)opened. */
function fakeMovie(frameCount: number, fps: number): MovieSource & { opened: [number, number][] } {
  const opened: [number, number][] = [];
  return {
    name: 'fake.mp4',
    fps,
    frameCount,
    width: 1,
    height: 1,
    opened,
    frames(start, end) {
      opened.push([start, end]);
      return (async function* () {
        for (let i = start; i < end; i++) yield { index: i, time: i / fps, rgb: new Uint8Array([i % 256]) };
      })();
    },
  };
}

/** A run whose volume k is 4 voxels of value k. */
function fakeVolumes(volumeCount: number, headerTr: number | null = 1, shift = 0): VolumeSource & { opened: number[] } {
  const opened: number[] = [];
  return {
    name: 'bold.nii',
    grid: { dims: [2, 2, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] },
    voxelsPerVolume: 4,
    headerTr,
    volumeCount,
    opened,
    volumes(start, end = volumeCount) {
      opened.push(start);
      return (async function* () {
        for (let k = start; k < end; k++) yield { index: k + shift, data: new Float32Array(4).fill(k) };
      })();
    },
    close: async () => undefined,
  };
}

const base: LockstepOptions = { headerTr: 1, volumeCount: 10, fps: 24, frameCount: 240, fmri: 'bold.nii', movie: 'movie.mp4' };

/**
 * Reference assignment in exact integer arithmetic: TR = trNum/trDen s, fps = fpsNum/1,
 * onset = onNum/onDen s. Frame i (time i/fps) is in TR k = floor((i/fps − onset)/TR).
 */
function exactTr(i: number, trNum: number, trDen: number, fps: number, onNum: number, onDen: number): number {
  // (i/fps − onNum/onDen) / (trNum/trDen) = (i·onDen − onNum·fps)·trDen / (fps·onDen·trNum)
  const num = BigInt(i * onDen - onNum * fps) * BigInt(trDen);
  const den = BigInt(fps * onDen * trNum);
  const q = num / den;
  // BigInt division truncates toward zero; floor for negatives.
  return Number(num < 0n && q * den !== num ? q - 1n : q);
}

describe('frameRange: which frames a TR carries', () => {
  it.each([
    // TR num/den, fps, onset num/den: boundaries that float arithmetic gets wrong (0.72·25 = 18.000000000000004)
    [72, 100, 25, 0, 1],
    [72, 100, 24, 0, 1],
    [1, 1, 30, 1, 2],
    [2, 1, 24, -13, 10],
    [7, 10, 30, 7, 100],
    [3, 2, 25, 3, 1],
  ])('TR %i/%i s at %i fps, onset %i/%i s: each frame in exactly the TR its time falls in', (trNum, trDen, fps, onNum, onDen) => {
    const plan = { tr: trNum / trDen, fps, onset: onNum / onDen, frameCount: 400 };
    const owner = new Int32Array(400).fill(-1);
    for (let k = 0; k < 60; k++) {
      const { start, end } = frameRange(plan, k);
      if (k > 0) expect(start).toBe(frameRange(plan, k - 1).end);
      for (let i = start; i < end; i++) {
        expect(owner[i]).toBe(-1);
        owner[i] = k;
      }
    }
    for (let i = 0; i < 400; i++) {
      const k = exactTr(i, trNum, trDen, fps, onNum, onDen);
      expect(owner[i]).toBe(k >= 0 && k < 60 ? k : -1);
    }
  });

  it('TR 0.72 s at 25 fps: TR k starts at frame 18k exactly', () => {
    const plan = { tr: 0.72, fps: 25, onset: 0, frameCount: 10_000 };
    for (let k = 0; k < 500; k++) expect(frameRange(plan, k)).toEqual({ start: 18 * k, end: 18 * k + 18 });
  });
});

describe('planLockstep', () => {
  it("takes the header's TR by default, and a session TR that agrees", () => {
    expect(planLockstep(base)).toMatchObject({ tr: 1, trCount: 10, onset: 0, warnings: [] });
    expect(planLockstep({ ...base, headerTr: 0.7200000286102295, tr: 0.72, frameCount: 173 }).tr).toBe(0.72);
  });

  it('a session TR that disagrees with the header is REPLAY_TR_MISMATCH unless accepted', () => {
    expect(() => planLockstep({ ...base, tr: 2 })).toThrow(
      expect.objectContaining({
        code: 'REPLAY_TR_MISMATCH',
        file: 'bold.nii',
        message: expect.stringMatching(/the session's TR \(2 s\) differs from the header's \(1 s\).*--accept-tr/),
      }) as unknown as Error,
    );
    const plan = planLockstep({ ...base, tr: 2, acceptTrMismatch: true, frameCount: 480 });
    expect(plan.tr).toBe(2);
    expect(plan.warnings).toEqual([{ kind: 'tr_mismatch_accepted', message: expect.stringContaining("using the session's TR as asked") }]);
  });

  it('no TR anywhere is REPLAY_NO_TR; a live folder takes the session TR', () => {
    expect(() => planLockstep({ ...base, headerTr: null })).toThrow(expect.objectContaining({ code: 'REPLAY_NO_TR', message: expect.stringContaining('--tr') }) as unknown as Error);
    expect(planLockstep({ ...base, headerTr: null, tr: 1 }).tr).toBe(1);
  });

  it('a movie shorter than the run: later TRs carry no frames, said once; or the replay stops at its end', () => {
    // 100 frames at 24 fps = 4.17 s: TRs 0..4 have frames, 5..9 none.
    const plan = planLockstep({ ...base, frameCount: 100 });
    expect(plan.trCount).toBe(10);
    expect(plan.movieEndTr).toBe(5);
    expect(plan.warnings).toEqual([
      { kind: 'movie_shorter', message: 'movie.mp4 (100 frames, 4.167 s) ends at run time 4.167 s, before the run ends at 10 s: TRs 5..9 carry no frames' },
    ]);
    const stopped = planLockstep({ ...base, frameCount: 100, stopAtMovieEnd: true });
    expect(stopped.trCount).toBe(5);
    expect(stopped.warnings.map((w) => w.kind)).toEqual(['stopped_at_movie_end']);
    expect(stopped.warnings[0].message).toContain('stopping after TR 4, as asked');
  });

  it('a movie longer than the run: the frames after the last TR are named', () => {
    const plan = planLockstep({ ...base, frameCount: 300 });
    expect(plan.trCount).toBe(10);
    expect(plan.warnings).toEqual([
      { kind: 'movie_longer', message: 'movie.mp4 runs on after the last TR: frames 240..299 (movie time 10 s..12.5 s) are not replayed' },
    ]);
  });

  it('onset: a movie that starts after the scan, and one that ends before the run starts', () => {
    const late = planLockstep({ ...base, onset: -2.5, frameCount: 240 });
    // 10 s of movie from run time 2.5 s: the run (10 s) ends at movie time 7.5 s.
    expect(late.warnings.map((w) => w.kind)).toEqual(['movie_starts_late', 'movie_longer']);
    expect(late.warnings[1].message).toContain('frames 180..239');
    expect(late.warnings[0].message).toContain('TRs 0..1 carry no frames');
    expect(frameRange(late, 2)).toEqual({ start: 0, end: 12 });
    expect(() => planLockstep({ ...base, onset: 10 })).toThrow(expect.objectContaining({ code: 'REPLAY_BAD_OPTIONS', message: expect.stringContaining('no TR would carry frames') }) as unknown as Error);
  });

  it('an open-ended live run plans with no TR count', () => {
    const plan = planLockstep({ ...base, volumeCount: null });
    expect(plan.trCount).toBeNull();
    expect(plan.warnings[0]).toMatchObject({ kind: 'movie_shorter', message: expect.stringContaining('if the live run goes on past TR 9') });
    expect(planLockstep({ ...base, volumeCount: null, stopAtMovieEnd: true }).trCount).toBe(10);
  });
});

function summary(t: LockstepTr): [number, number, number[], number] {
  return [t.tr, t.time, t.frames.map((f) => f.rgb[0]), t.volume[0]];
}

describe('LockstepReader', () => {
  it('TR k carries its frames and volume k, reading each stream once when TRs come in order', async () => {
    const movie = fakeMovie(50, 4);
    const volumes = fakeVolumes(8, 1.5);
    const plan = planLockstep({ headerTr: 1.5, volumeCount: 8, fps: 4, frameCount: 50, onset: 0.5 });
    const reader = new LockstepReader(plan, movie, volumes);
    const trs: LockstepTr[] = [];
    for await (const t of reader.trs()) trs.push(t);
    expect(trs.map((t) => t.tr)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const t of trs) {
      const { start, end } = frameRange(plan, t.tr);
      expect(t.frames.map((f) => f.index)).toEqual(Array.from({ length: end - start }, (_, i) => start + i));
      // Every frame's time is inside the TR's movie-time window.
      for (const f of t.frames) {
        expect(f.time).toBeGreaterThanOrEqual(t.movieTime);
        expect(f.time).toBeLessThan(t.movieTime + 1.5);
      }
      expect(t.volume[0]).toBe(t.tr);
      expect(t.time).toBeCloseTo(t.tr * 1.5, 12);
      expect(t.movieTime).toBeCloseTo(0.5 + t.tr * 1.5, 12);
    }
    expect(trs[0].frames.map((f) => f.index)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(movie.opened).toHaveLength(1);
    expect(volumes.opened).toEqual([0]);
    await reader.close();
  });

  it('a jump restarts the streams; every TR is the same as in an uninterrupted pass', async () => {
    const plan = planLockstep({ headerTr: 1, volumeCount: 12, fps: 5, frameCount: 47 });
    const sequential = new LockstepReader(plan, fakeMovie(47, 5), fakeVolumes(12));
    const expected: ReturnType<typeof summary>[] = [];
    for await (const t of sequential.trs()) expected.push(summary(t));
    const movie = fakeMovie(47, 5);
    const volumes = fakeVolumes(12);
    const jumping = new LockstepReader(plan, movie, volumes);
    const order = [3, 4, 5, 0, 1, 11, 10, 9, 10, 2];
    const got = await Promise.all(order.map((k) => jumping.at(k)));
    expect(got.map(summary)).toEqual(order.map((k) => expected[k]));
    // Frames past the movie's end (47 frames = 9.4 s): TR 9 has 2, TRs 10 and 11 none.
    expect(expected[9][2]).toEqual([45, 46]);
    expect(expected[10][2]).toEqual([]);
    // 9 then 10 is a step forward, not a jump: no reopening there.
    expect(volumes.opened).toEqual([3, 0, 11, 10, 9, 2]);
    await jumping.close();
    await expect(jumping.at(0)).rejects.toMatchObject({ code: 'REPLAY_BAD_OPTIONS' });
  });

  it('after a failed read the next call starts afresh', async () => {
    const plan = planLockstep({ headerTr: 1, volumeCount: 6, fps: 2, frameCount: 12 });
    const movie = fakeMovie(12, 2);
    const real = movie.frames.bind(movie);
    let failOnce = true;
    // The first stream dies at frame 3 (inside TR 1).
    movie.frames = (start, end) =>
      (async function* () {
        for await (const f of real(start, end)) {
          if (failOnce && f.index === 3) {
            failOnce = false;
            throw new Error('decoder died');
          }
          yield f;
        }
      })();
    const volumes = fakeVolumes(6);
    const reader = new LockstepReader(plan, movie, volumes);
    expect(summary(await reader.at(0))).toEqual([0, 0, [0, 1], 0]);
    await expect(reader.at(1)).rejects.toThrow('decoder died');
    expect(summary(await reader.at(1))).toEqual([1, 1, [2, 3], 1]);
    expect(summary(await reader.at(2))).toEqual([2, 2, [4, 5], 2]);
    expect(volumes.opened).toEqual([0, 1]);
  });

  it('a volume source out of step is REPLAY_VOLUME_MISMATCH naming the TR and the source', async () => {
    const plan = planLockstep({ headerTr: 1, volumeCount: 4, fps: 5, frameCount: 20 });
    const reader = new LockstepReader(plan, fakeMovie(20, 5), fakeVolumes(4, 1, 1));
    await expect(reader.at(0)).rejects.toMatchObject({ code: 'REPLAY_VOLUME_MISMATCH', file: 'bold.nii', message: 'bold.nii: TR 0 needs volume 0, the volume source gave volume 1' });
    await expect(reader.at(9)).rejects.toMatchObject({ code: 'REPLAY_BAD_OPTIONS' });
  });
});

describe('lockstep driven by the replay clock', () => {
  it("at 'max' speed, through clockedSteps, every TR once in order with its frames and volume", async () => {
    const plan = planLockstep({ headerTr: 1, volumeCount: 15, fps: 6, frameCount: 80 });
    const reader = new LockstepReader(plan, fakeMovie(80, 6), fakeVolumes(15));
    const out = await lastValueFrom(clockedSteps({ trCount: plan.trCount!, tr: plan.tr, speed: 'max' }, (tick) => from(reader.at(tick.tr))).pipe(toArray()));
    expect(out.map((t) => t.tr)).toEqual(Array.from({ length: 15 }, (_, k) => k));
    expect(out.flatMap((t) => t.frames.map((f) => f.index))).toEqual(Array.from({ length: 80 }, (_, i) => i));
    await reader.close();
  });

  it('joinLockstep pairs each tick with its TR', async () => {
    const plan = planLockstep({ headerTr: 1, volumeCount: 5, fps: 2, frameCount: 10 });
    const reader = new LockstepReader(plan, fakeMovie(10, 2), fakeVolumes(5));
    const acks = new Subject<number>();
    const out = await lastValueFrom(
      replayClock({ trCount: 5, tr: 1, speed: 'max', acks }).pipe(
        joinLockstep(reader),
        map(({ tick, data }) => {
          acks.next(tick.tr);
          return [tick.tr, data.tr, data.frames.length, data.volume[0]];
        }),
        toArray(),
      ),
    );
    expect(out).toEqual([0, 1, 2, 3, 4].map((k) => [k, k, 2, k]));
  });
});
