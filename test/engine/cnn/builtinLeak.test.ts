import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { createBuiltinExtractor } from '../../../server/engine/cnn/builtin.ts';
import { initTfBackend } from '../../../server/engine/cnn/tfBackend.ts';
import { movieFrames } from './builtinFrames.ts';

describe('built-in model: no tensor leaks', () => {
  it('(f) holds the same number of tensors across 1,000 frames in batches, and none after dispose()', async () => {
    await initTfBackend('wasm');
    const start = tf.memory().numTensors;
    const ex = await createBuiltinExtractor({ backend: 'wasm' });
    // 40 distinct frames of the movie, reused: what is measured is the bookkeeping, not the pixels.
    const frames = movieFrames(40, { grating_0: 0.7, grating_90: 0.4, contrast: 0.5, colour_rg: 0.6, motion: 0.8, luminance: 0.5 });
    await ex.extract({ width: 128, height: 128, frames: frames.slice(0, 8) });
    // After the first batch the model holds its filters, prototypes and the previous frame.
    const steady = tf.memory().numTensors;
    expect(steady).toBeGreaterThan(start);
    let seen = 0;
    const sizes = [8, 25, 1, 16, 40, 7];
    for (let b = 0; seen < 1000; b++) {
      const n = Math.min(sizes[b % sizes.length], 1000 - seen);
      const off = (seen * 7) % (frames.length - n + 1);
      const acts = await ex.extract({ width: 128, height: 128, frames: frames.slice(off, off + n) });
      expect(acts[0].frames).toBe(n);
      seen += n;
      if (b % 10 === 0) expect(tf.memory().numTensors).toBe(steady);
      if (b === 20) ex.reset();
    }
    expect(tf.memory().numTensors).toBe(steady);
    // A failing batch (bad frame) leaks nothing either.
    await expect(ex.extract({ width: 128, height: 128, frames: [frames[0], new Uint8Array(3)] })).rejects.toThrow(/frame 1/);
    expect(tf.memory().numTensors).toBe(steady);
    await ex.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
