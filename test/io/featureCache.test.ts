import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  CACHE_FORMAT_VERSION,
  FeatureCache,
  cacheKeyParts,
  defaultCacheDir,
  getOrComputeActivations,
  movieFileHash,
  type CacheKeyParts,
} from '../../server/io/featureCache.ts';
import type { FeatureExtractor, FrameBatch, LayerActivations } from '../../server/engine/cnn/extractor.ts';
import type { ActivationMatrix, FrameSource } from '../../server/engine/cnn/unitSeries.ts';
import { createRng } from '../../server/engine/random.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'syncact-cache-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => join(root, `c${n++}`);

/** A small movie: frame i is a gradient that moves with i. */
function movie(frameCount = 30, fps = 10): FrameSource & { reads: number } {
  const m = {
    width: 4,
    height: 4,
    frameCount,
    fps,
    reads: 0,
    frame(i: number): Uint8Array {
      m.reads++;
      return Uint8Array.from({ length: 48 }, (_, j) => (i * 11 + j * 5) % 256);
    },
  };
  return m;
}

/** Two layers whose units are fixed functions of the frame bytes; counts its calls. */
function extractor(): FeatureExtractor & { calls: number } {
  const e = {
    id: 'test:cache-v1',
    backend: 'test',
    preprocessing: { width: 4, height: 4, resize: 'bilinear' as const, colorOrder: 'rgb' as const, normalization: 'unit' as const, layout: 'nhwc' as const },
    layers: [
      { name: 'a', channels: 3 },
      { name: 'b', channels: 2 },
    ],
    pooling: 'mean' as const,
    calls: 0,
    async extract(batch: FrameBatch): Promise<LayerActivations[]> {
      e.calls++;
      const F = batch.frames.length;
      const a = new Float32Array(F * 3);
      const b = new Float32Array(F * 2);
      batch.frames.forEach((f, i) => {
        a[i * 3] = f[0] / 7;
        a[i * 3 + 1] = Math.sin(f[5]);
        a[i * 3 + 2] = f[10] * f[11];
        b[i * 2] = -f[47] / 3;
        b[i * 2 + 1] = Math.sqrt(f[20]);
      });
      return [
        { layer: 'a', channels: 3, frames: F, values: a },
        { layer: 'b', channels: 2, frames: F, values: b },
      ];
    },
    async dispose() {},
  };
  return e;
}

function activations(frames: number, seed: number): ActivationMatrix {
  const rng = createRng(seed);
  return {
    layers: [
      { name: 'a', channels: 3 },
      { name: 'b', channels: 2 },
    ],
    frameIndices: Int32Array.from({ length: frames }, (_, i) => i),
    frameTimes: Float64Array.from({ length: frames }, (_, i) => i / 10),
    values: Float32Array.from({ length: frames * 5 }, () => rng.normal() * 100),
  };
}

const PARTS: CacheKeyParts = cacheKeyParts(extractor(), movie(), { movieHash: 'ab'.repeat(32) });

function logged(): { lines: string[]; logger: (m: string) => void } {
  const lines: string[] = [];
  return { lines, logger: (m) => lines.push(m) };
}

describe('FeatureCache', () => {
  it('a read after a write returns identical floats, layers and frame times', async () => {
    const cache = new FeatureCache({ dir: freshDir() });
    expect(await cache.read(PARTS)).toEqual({ miss: 'not cached yet' });
    const acts = activations(37, 1);
    await cache.write(PARTS, acts);
    const got = await cache.read(PARTS);
    if ('miss' in got) throw new Error(got.miss);
    expect(got.key).toBe(cache.key(PARTS));
    expect(got.key).toMatch(/^[0-9a-f]{64}$/);
    expect(got.values).toEqual(acts.values);
    expect(got.frameTimes).toEqual(acts.frameTimes);
    expect(got.frameIndices).toEqual(acts.frameIndices);
    expect(got.layers).toEqual(acts.layers);
    expect(got.fps).toBe(10);
    // the documented layout
    const buf = await readFile(cache.path(PARTS));
    expect(buf.toString('latin1', 0, 8)).toBe('SYNCACTF');
    expect(buf.readUInt32LE(8)).toBe(CACHE_FORMAT_VERSION);
    const H = buf.readUInt32LE(12);
    const header = JSON.parse(buf.toString('utf8', 16, 16 + H));
    expect(header).toMatchObject({ units: 5, frameCount: 37, dtype: 'float32', byteOrder: 'little', payloadBytes: 37 * 5 * 4 });
    const offset = Math.ceil((16 + H) / 8) * 8;
    expect(buf.length).toBe(offset + 37 * 5 * 4);
    expect(buf.readFloatLE(offset + 4 * 7)).toBe(acts.values[7]);
  });

  it('changing any key part misses', async () => {
    const cache = new FeatureCache({ dir: freshDir() });
    await cache.write(PARTS, activations(5, 2));
    const variants: CacheKeyParts[] = [
      { ...PARTS, modelId: 'test:cache-v2' },
      { ...PARTS, movieHash: 'cd'.repeat(32) },
      { ...PARTS, layers: ['a', 'c'] },
      { ...PARTS, preprocessing: { ...PARTS.preprocessing, normalization: 'imagenet' } },
      { ...PARTS, preprocessing: { ...PARTS.preprocessing, width: 8 } },
      { ...PARTS, pooling: 'max' },
      { ...PARTS, sampling: { tr: 1, framesPerTr: 4 } },
      { ...PARTS, fps: 24 },
    ];
    const keys = new Set([cache.key(PARTS), ...variants.map((v) => cache.key(v))]);
    expect(keys.size).toBe(variants.length + 1);
    for (const v of variants) expect(await cache.read(v)).toEqual({ miss: 'not cached yet' });
    expect('miss' in (await cache.read(PARTS))).toBe(false);
    // Sampling every frame does not depend on the TR used to describe it; key order does not matter.
    expect(cache.key({ ...PARTS, sampling: { tr: 2, onset: 3 } })).toBe(cache.key(PARTS));
    const reordered = Object.fromEntries(Object.entries(PARTS).reverse()) as unknown as CacheKeyParts;
    expect(cache.key(reordered)).toBe(cache.key(PARTS));
  });

  it('a stale file (written for other parts) is detected, logged, never used', async () => {
    const { lines, logger } = logged();
    const cache = new FeatureCache({ dir: freshDir(), logger });
    const other = { ...PARTS, pooling: 'max' as const };
    await cache.write(other, activations(5, 3));
    await copyFile(cache.path(other), cache.path(PARTS));
    const got = await cache.read(PARTS);
    expect(got).toEqual({ miss: expect.stringMatching(/^stale: written for key [0-9a-f]{12}… \(differs in pooling\)/) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(cache.path(PARTS));
    expect(lines[0]).toMatch(/stale.*recomputing$/);
  });

  describe('corrupt files are misses with a reason, and a rebuild overwrites them', () => {
    const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['a flipped payload byte', (b) => { const c = Buffer.from(b); c[c.length - 5] ^= 0x10; return c; }, /^corrupt: payload checksum mismatch$/],
      ['a truncated payload', (b) => b.subarray(0, b.length - 3), /^corrupt: truncated payload \(397 of 400 bytes\)$/],
      ['bytes after the payload', (b) => Buffer.concat([b, Buffer.from([0])]), /^corrupt: 1 bytes after the payload$/],
      ['a truncated header', (b) => b.subarray(0, 40), /^corrupt: truncated header/],
      ['a file shorter than the prefix', (b) => b.subarray(0, 10), /^corrupt: truncated \(10 bytes/],
      ['bad magic', (b) => { const c = Buffer.from(b); c.write('SYNCACTX', 0, 'latin1'); return c; }, /^corrupt: bad magic/],
      ['another format version', (b) => { const c = Buffer.from(b); c.writeUInt32LE(99, 8); return c; }, /^format version 99, this syncact reads version 1$/],
      ['invalid JSON', (b) => { const c = Buffer.from(b); c[16] = 0x7d; return c; }, /^corrupt: header is not valid JSON/],
      ['a header whose sizes disagree', (b) => {
        const H = b.readUInt32LE(12);
        const json = b.toString('utf8', 16, 16 + H).replace('"units":5', '"units":4');
        const c = Buffer.from(b);
        c.write(json.padEnd(H, ' '), 16, 'utf8');
        return c;
      }, /^corrupt: layers add up to 5 units, header says 4$/],
    ];
    for (const [name, damage, reason] of cases) {
      it(name, async () => {
        const { lines, logger } = logged();
        const dir = freshDir();
        const cache = new FeatureCache({ dir, logger });
        const ex = extractor();
        const m = movie(20);
        const first = await getOrComputeActivations(ex, m, PARTS, cache);
        expect(first.hit).toBe(false);
        const file = cache.path(PARTS);
        await writeFile(file, damage(await readFile(file)));
        const got = await cache.read(PARTS);
        expect('miss' in got && got.miss).toMatch(reason);
        expect(lines.join('\n')).toMatch(/recomputing/);
        // getOrCompute recomputes and overwrites the damaged file
        const callsBefore = ex.calls;
        const again = await getOrComputeActivations(ex, m, PARTS, cache);
        expect(again.hit).toBe(false);
        expect(again.miss).toMatch(reason);
        expect(ex.calls).toBeGreaterThan(callsBefore);
        expect(again.activations.values).toEqual(first.activations.values);
        const third = await getOrComputeActivations(ex, m, PARTS, cache);
        expect(third.hit).toBe(true);
        expect(third.activations.values).toEqual(first.activations.values);
      });
    }
  });

  it('concurrent writers leave one complete file and no temporary files', async () => {
    const dir = freshDir();
    const cache = new FeatureCache({ dir });
    const variants = Array.from({ length: 8 }, (_, i) => activations(4000, 100 + i));
    await Promise.all(variants.map((a) => cache.write(PARTS, a)));
    // and readers racing writers only ever see a complete file or none
    const racing = await Promise.all([
      ...variants.slice(0, 4).map((a) => cache.write(PARTS, a).then(() => null)),
      ...Array.from({ length: 4 }, () => cache.read(PARTS)),
    ]);
    for (const r of racing) if (r) expect('miss' in r).toBe(false);
    const got = await cache.read(PARTS);
    if ('miss' in got) throw new Error(got.miss);
    expect(variants.some((v) => v.values.every((x, i) => x === got.values[i]))).toBe(true);
    expect(await readdir(dir)).toEqual([`${cache.key(PARTS)}.syncactf`]);
  });

  it('writers in separate processes racing a reader: the reader only ever sees complete files', async () => {
    const dir = freshDir();
    const script = join(root, 'writer.mts'); // .mts: ESM outside the package
    const cacheModule = new URL('../../server/io/featureCache.ts', import.meta.url).href;
    const randomModule = new URL('../../server/engine/random.ts', import.meta.url).href;
    // Each writer rewrites the same key 6 times with its own seeded values.
    await writeFile(
      script,
      `import { FeatureCache } from ${JSON.stringify(cacheModule)};
import { createRng } from ${JSON.stringify(randomModule)};
const [dir, seed, parts] = process.argv.slice(2);
const rng = createRng(Number(seed));
const values = Float32Array.from({ length: 20000 * 5 }, () => rng.normal());
const acts = { layers: [{ name: 'a', channels: 3 }, { name: 'b', channels: 2 }], frameIndices: Int32Array.from({ length: 20000 }, (_, i) => i), frameTimes: Float64Array.from({ length: 20000 }, (_, i) => i / 10), values };
const cache = new FeatureCache({ dir });
for (let k = 0; k < 6; k++) await cache.write(JSON.parse(parts), acts);
`,
    );
    const runTs = new URL('../../bin/run-ts.js', import.meta.url).pathname;
    const seeds = [11, 12, 13];
    const children = seeds.map(
      (seed) =>
        new Promise<number | null>((done) => {
          const child = spawn(process.execPath, [runTs, script, dir, String(seed), JSON.stringify(PARTS)], { stdio: 'ignore' });
          child.on('close', done);
        }),
    );
    const cache = new FeatureCache({ dir });
    let exited = false;
    const all = Promise.all(children).then((codes) => ((exited = true), codes));
    let reads = 0;
    while (!exited) {
      const r = await cache.read(PARTS);
      reads++;
      // Before the first rename there is no file; after it, always a complete one.
      if ('miss' in r) expect(r.miss).toBe('not cached yet');
    }
    expect(await all).toEqual([0, 0, 0]);
    const got = await cache.read(PARTS);
    if ('miss' in got) throw new Error(got.miss);
    const firsts = seeds.map((seed) => createRng(seed).normal());
    expect(firsts.map((x) => Math.fround(x))).toContain(got.values[0]);
    expect(await readdir(dir)).toEqual([`${cache.key(PARTS)}.syncactf`]);
    expect(reads).toBeGreaterThan(0);
  });

  it('a write that cannot create its folder is a typed error naming the file', async () => {
    const blocker = join(root, 'not-a-folder');
    await writeFile(blocker, 'x');
    const cache = new FeatureCache({ dir: join(blocker, 'cache') });
    await expect(cache.write(PARTS, activations(2, 4))).rejects.toMatchObject({
      code: 'FEATURE_CACHE_WRITE_FAILED',
      message: expect.stringContaining('set SYNCACT_CACHE_DIR'),
    });
    // getOrCompute still returns the activations (the cache only saves time) and says why
    const { lines, logger } = logged();
    const res = await getOrComputeActivations(extractor(), movie(6), PARTS, cache, { logger });
    expect(res.hit).toBe(false);
    expect(res.activations.values.length).toBe(6 * 5);
    expect(lines[0]).toMatch(/FEATURE_CACHE|cannot write the feature cache/);
  });

  it('rejects mismatched writes and key parts that do not describe the extractor', async () => {
    const cache = new FeatureCache({ dir: freshDir() });
    const a = activations(3, 5);
    await expect(cache.write(PARTS, { ...a, values: a.values.subarray(1) })).rejects.toMatchObject({ code: 'ENGINE_BAD_INPUT' });
    await expect(cache.write({ ...PARTS, layers: ['x', 'b'] }, a)).rejects.toThrow(/layers a, b, the key names x, b/);
    await expect(getOrComputeActivations(extractor(), movie(), { ...PARTS, pooling: 'max' }, cache)).rejects.toThrow(/differs in pooling/);
    expect(() => cache.key({ ...PARTS, movieHash: '' })).toThrow(/movieHash/);
  });
});

describe('getOrComputeActivations', () => {
  it('computes once in batches, then reads the cache without touching the extractor or the movie', async () => {
    const cache = new FeatureCache({ dir: freshDir() });
    const ex = extractor();
    const m = movie(30);
    const first = await getOrComputeActivations(ex, m, PARTS, cache, { batchSize: 8 });
    expect(first).toMatchObject({ hit: false, miss: 'not cached yet' });
    expect(ex.calls).toBe(4);
    expect(first.activations.frameIndices).toEqual(Int32Array.from({ length: 30 }, (_, i) => i));
    const second = await getOrComputeActivations(ex, m, PARTS, cache);
    expect(second.hit).toBe(true);
    expect(ex.calls).toBe(4);
    expect(m.reads).toBe(30);
    expect(second.activations.values).toEqual(first.activations.values);
    // without a cache: always computed
    const third = await getOrComputeActivations(ex, m, PARTS);
    expect(third.hit).toBe(false);
    expect(third.miss).toBeUndefined();
    expect(third.activations.values).toEqual(first.activations.values);
  });

  it('caches only the sampled frames when frames are subsampled per TR', async () => {
    const cache = new FeatureCache({ dir: freshDir() });
    const parts = cacheKeyParts(extractor(), movie(), { movieHash: PARTS.movieHash, sampling: { tr: 1, framesPerTr: 2 } });
    const res = await getOrComputeActivations(extractor(), movie(30), parts, cache);
    // 10 frames per TR → ranks floor(2.5) = 2 and floor(7.5) = 7
    expect(Array.from(res.activations.frameIndices)).toEqual([2, 7, 12, 17, 22, 27]);
    const back = await cache.read(parts);
    if ('miss' in back) throw new Error(back.miss);
    expect(Array.from(back.frameTimes)).toEqual([0.2, 0.7, 1.2, 1.7, 2.2, 2.7]);
  });
});

describe('cache location and movie hash', () => {
  it('defaults to .syncact/cache under the project, or $SYNCACT_CACHE_DIR', () => {
    expect(defaultCacheDir({}, '/proj')).toBe(resolve('/proj/.syncact/cache'));
    expect(defaultCacheDir({ SYNCACT_CACHE_DIR: '/tmp/x' }, '/proj')).toBe('/tmp/x');
    expect(defaultCacheDir({ SYNCACT_CACHE_DIR: 'rel' }, '/proj')).toBe(resolve('/proj/rel'));
  });

  it('hashes a movie file by content', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'm1.mp4'), 'abc');
    await writeFile(join(dir, 'm2.mp4'), 'abc');
    // sha256("abc")
    expect(await movieFileHash(join(dir, 'm1.mp4'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await movieFileHash(join(dir, 'm2.mp4'))).toBe(await movieFileHash(join(dir, 'm1.mp4')));
    await expect(movieFileHash(join(dir, 'none.mp4'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});
