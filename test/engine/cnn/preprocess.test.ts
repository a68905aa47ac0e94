import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { preprocessToFloat32, preprocessToTensor, validateFrameBatch, IMAGENET_MEAN, IMAGENET_STD } from '../../../server/engine/cnn/preprocess.ts';
import { initTfBackend } from '../../../server/engine/cnn/tfBackend.ts';
import type { FrameBatch, Preprocessing } from '../../../server/engine/cnn/extractor.ts';
import { SyncactError } from '../../../server/errors.ts';

interface RefCase {
  width: number;
  height: number;
  resize: 'bilinear' | 'nearest';
  values: number[];
}
const ref = JSON.parse(readFileSync(new URL('../../reference/cnn_preprocess_reference.json', import.meta.url), 'utf8')) as {
  source: { width: number; height: number };
  /** Pillow BILINEAR / NEAREST on float images. */
  cases: RefCase[];
  /** scipy half-pixel bilinear, for enlarging only. */
  halfpixel_enlarge: { width: number; height: number; values: number[] }[];
  imagenet_7x5_bilinear: number[];
};

/** The frame of cnn_preprocess_reference.py, rebuilt from the same formula. */
function referenceFrame(): Uint8Array {
  const { width: w, height: h } = ref.source;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = (x * 37 + y * 91 + c * 53 + ((x * y) % 7) * 11) % 256;
    }
  }
  return out;
}

const base = (o: Partial<Preprocessing>): Preprocessing => ({
  width: 7,
  height: 5,
  resize: 'bilinear',
  colorOrder: 'rgb',
  normalization: 'none',
  layout: 'nhwc',
  ...o,
});

function seededFrames(n: number, w: number, h: number, seed: number): Uint8Array[] {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
  return Array.from({ length: n }, () => Uint8Array.from({ length: w * h * 3 }, next));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const batchOf = (frames: Uint8Array[], width = ref.source.width, height = ref.source.height): FrameBatch => ({ width, height, frames });

describe('preprocessToFloat32 (plain typed arrays, the ONNX path)', () => {
  it("resizes like Pillow's BILINEAR (antialiased when shrinking) and NEAREST: down, up, mixed, identity", () => {
    const frame = referenceFrame();
    expect(ref.cases).toHaveLength(10);
    for (const c of ref.cases) {
      const got = preprocessToFloat32(batchOf([frame]), base({ width: c.width, height: c.height, resize: c.resize }));
      // Values on the 0…255 scale; float32 rounding (and the fixture's 6 decimals) stay below 1e-3.
      expect(maxAbsDiff(got, c.values), `${c.resize} ${c.width}×${c.height}`).toBeLessThan(1e-3);
    }
  });

  it('enlarges exactly like half-pixel bilinear (TF2 resize, PyTorch align_corners=False; scipy reference)', () => {
    for (const c of ref.halfpixel_enlarge) {
      const got = preprocessToFloat32(batchOf([referenceFrame()]), base({ width: c.width, height: c.height }));
      expect(maxAbsDiff(got, c.values), `${c.width}×${c.height}`).toBeLessThan(1e-3);
    }
  });

  it('antialiases when shrinking: a 1-pixel checkerboard shrunk 4× is flat grey, not an aliased pattern', () => {
    const w = 64;
    const frame = new Uint8Array(w * w * 3);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) frame.fill((x + y) % 2 ? 255 : 0, (y * w + x) * 3, (y * w + x) * 3 + 3);
    const got = preprocessToFloat32(batchOf([frame], w, w), base({ width: 16, height: 16 }));
    for (const v of got) expect(Math.abs(v - 127.5)).toBeLessThan(1);
    // Point sampling (nearest) hits the same phase of the checkerboard every time: all black,
    // the aliasing the filter avoids.
    const nearest = preprocessToFloat32(batchOf([frame], w, w), base({ width: 16, height: 16, resize: 'nearest' }));
    expect(new Set(nearest)).toEqual(new Set([0]));
  });

  it('applies the ImageNet mean/std per colour', () => {
    const got = preprocessToFloat32(batchOf([referenceFrame()]), base({ normalization: 'imagenet' }));
    expect(maxAbsDiff(got, ref.imagenet_7x5_bilinear)).toBeLessThan(1e-5);
  });

  it("maps bytes to [0,1] ('unit') and [-1,1] ('symmetric') exactly at the ends", () => {
    const frames = [new Uint8Array(4 * 3 * 3).fill(0), new Uint8Array(4 * 3 * 3).fill(255)];
    const p = { width: 4, height: 3 };
    const unit = preprocessToFloat32(batchOf(frames, 4, 3), base({ ...p, normalization: 'unit' }));
    const sym = preprocessToFloat32(batchOf(frames, 4, 3), base({ ...p, normalization: 'symmetric' }));
    const half = 36;
    for (let i = 0; i < half; i++) {
      expect(unit[i]).toBe(0);
      expect(unit[half + i]).toBeCloseTo(1, 6);
      expect(sym[i]).toBe(-1);
      expect(sym[half + i]).toBeCloseTo(1, 6);
    }
  });

  it("'bgr' reverses the channels and the statistics follow the colour; 'nchw' is the transpose", () => {
    const frame = referenceFrame();
    const rgb = preprocessToFloat32(batchOf([frame]), base({ normalization: 'imagenet' }));
    const bgr = preprocessToFloat32(batchOf([frame]), base({ normalization: 'imagenet', colorOrder: 'bgr' }));
    const nchw = preprocessToFloat32(batchOf([frame]), base({ normalization: 'imagenet', layout: 'nchw' }));
    const plane = 7 * 5;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        expect(bgr[p * 3 + (2 - c)]).toBe(rgb[p * 3 + c]);
        expect(nchw[c * plane + p]).toBe(rgb[p * 3 + c]);
      }
    }
    // A pure-red pixel's red value sits in the last slot under bgr, normalised with red's stats.
    const red = new Uint8Array([255, 0, 0]);
    const v = preprocessToFloat32(batchOf([red], 1, 1), base({ width: 1, height: 1, normalization: 'imagenet', colorOrder: 'bgr' }));
    expect(v[2]).toBeCloseTo((1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], 5);
    expect(v[0]).toBeCloseTo(-IMAGENET_MEAN[2] / IMAGENET_STD[2], 5);
  });

  it('treats each frame of a batch on its own and leaves the input untouched', () => {
    const frames = seededFrames(3, 10, 6, 7);
    const copies = frames.map((f) => f.slice());
    const p = base({ width: 5, height: 4, normalization: 'symmetric' });
    const all = preprocessToFloat32(batchOf(frames, 10, 6), p);
    const size = 5 * 4 * 3;
    frames.forEach((f, i) => {
      expect(all.subarray(i * size, (i + 1) * size)).toEqual(preprocessToFloat32(batchOf([f], 10, 6), p));
      expect(f).toEqual(copies[i]);
    });
  });

  it('rejects malformed frames and preprocessing with typed errors', () => {
    const bad = () => preprocessToFloat32({ width: 4, height: 3, frames: [new Uint8Array(35)] }, base({}));
    expect(bad).toThrow(SyncactError);
    expect(bad).toThrow(/frame 0 has 35 bytes; a 4×3 RGB frame has 36/);
    try {
      bad();
    } catch (e) {
      expect((e as SyncactError).code).toBe('CNN_BAD_FRAMES');
    }
    expect(() => validateFrameBatch({ width: 0, height: 3, frames: [] })).toThrow(/not a positive integer size/);
    const spec = () => preprocessToFloat32(batchOf([referenceFrame()]), base({ normalization: 'zscore' as never }));
    expect(spec).toThrow(/unknown normalization 'zscore'/);
    try {
      spec();
    } catch (e) {
      expect((e as SyncactError).code).toBe('CNN_BAD_SPEC');
    }
    expect(() => preprocessToFloat32(batchOf([referenceFrame()]), base({ width: 0 }))).toThrow(/input size 0×5/);
  });
});

describe.each(['wasm', 'cpu'] as const)('preprocessToTensor on the %s backend', (backend) => {
  beforeAll(async () => {
    await initTfBackend(backend);
  });

  it('holds the typed-array values in the declared shape for every colour order, layout and normalisation', () => {
    const frames = seededFrames(3, 23, 17, 11);
    for (const normalization of ['imagenet', 'unit', 'symmetric', 'none'] as const) {
      for (const colorOrder of ['rgb', 'bgr'] as const) {
        for (const layout of ['nhwc', 'nchw'] as const) {
          const p = base({ width: 16, height: 12, normalization, colorOrder, layout });
          const t = preprocessToTensor(batchOf(frames, 23, 17), p);
          expect(t.shape).toEqual(layout === 'nhwc' ? [3, 12, 16, 3] : [3, 3, 12, 16]);
          expect(t.dtype).toBe('float32');
          expect(t.dataSync()).toEqual(preprocessToFloat32(batchOf(frames, 23, 17), p));
          t.dispose();
        }
      }
    }
    // And the values are the reference's, through the tensor too.
    const c = ref.cases[0];
    const t = preprocessToTensor(batchOf([referenceFrame()]), base({ width: c.width, height: c.height, resize: c.resize }));
    expect(maxAbsDiff(t.dataSync(), c.values)).toBeLessThan(1e-3);
    t.dispose();
  });

  it('leaves no tensors behind and handles an empty batch', () => {
    const before = tf.memory().numTensors;
    const t = preprocessToTensor(batchOf(seededFrames(2, 9, 9, 3), 9, 9), base({ width: 4, height: 4 }));
    expect(tf.memory().numTensors).toBe(before + 1);
    t.dispose();
    const empty = preprocessToTensor({ width: 9, height: 9, frames: [] }, base({ width: 4, height: 4, layout: 'nchw' }));
    expect(empty.shape).toEqual([0, 3, 4, 4]);
    empty.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => preprocessToTensor({ width: 9, height: 9, frames: [new Uint8Array(5)] }, base({}))).toThrow(/frame 0 has 5 bytes/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
