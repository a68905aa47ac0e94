import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  createBuiltinExtractor,
  BUILTIN_DEFAULT_SEED,
  BUILTIN_ID,
  BUILTIN_PREPROCESSING,
  BUILTIN_PROTOTYPES,
  type BuiltinExtractor,
} from '../../../server/engine/cnn/builtin.ts';
import { prototypeStimulus } from '../../../server/engine/cnn/s2Prototypes.ts';
import { createRng } from '../../../server/engine/random.ts';
import { LEVELS, ORIENTATIONS_DEG, S1_SIZES } from '../../../server/engine/cnn/hmax.ts';
import { serreGabor } from '../../../server/engine/cnn/gabor.ts';
import type { LayerActivations } from '../../../server/engine/cnn/extractor.ts';
import { SyncactError } from '../../../server/errors.ts';
import { batch, grating, movieFrames, SIZE } from './builtinFrames.ts';

/** Channel ch of frame f of a layer. */
const at = (a: LayerActivations, f: number, ch: number) => a.values[f * a.channels + ch];
const layer = (acts: LayerActivations[], name: string) => {
  const a = acts.find((l) => l.layer === name);
  if (!a) throw new Error(`no layer ${name}`);
  return a;
};
/** TF.js float32 means over 16,384 pixels (running sums): 1e-3 relative, as CONVENTIONS.md has it for TF.js. */
const expectClose = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThan(1e-3 * Math.max(Math.abs(want), 0.01));
const channel = (ex: BuiltinExtractor, l: string, name: string) => {
  const i = ex.channelNames[l].indexOf(name);
  if (i < 0) throw new Error(`no channel ${l}/${name}`);
  return i;
};

let mean: BuiltinExtractor;
let max: BuiltinExtractor;

beforeAll(async () => {
  mean = await createBuiltinExtractor({ backend: 'wasm' });
  max = await createBuiltinExtractor({ backend: 'wasm', pooling: 'max' });
});
afterAll(async () => {
  await mean.dispose();
  await max.dispose();
});

describe('built-in model: shape of its output', () => {
  it('declares its id, backend, 128×128 unit-scaled input and layers, and returns frames × channels per layer', async () => {
    // The id ends in a fingerprint of the outputs on a fixed probe, so caches notice any change.
    expect(mean.id).toMatch(new RegExp(`^${BUILTIN_ID}:[0-9a-f]{12}$`));
    expect(mean.backend).toMatch(/^tfjs-wasm/);
    expect(mean.preprocessing).toEqual(BUILTIN_PREPROCESSING);
    expect(mean.preprocessing).toMatchObject({ width: 128, height: 128, normalization: 'unit', colorOrder: 'rgb' });
    expect(mean.layers).toEqual([
      { name: 's1', channels: 32 },
      { name: 'c1', channels: 16 },
      { name: 's2', channels: 64 },
      { name: 'c2', channels: 16 },
      { name: 'color', channels: 4 },
      { name: 'motion', channels: 9 },
    ]);
    for (const l of mean.layers) expect(mean.channelNames[l.name]).toHaveLength(l.channels);
    // Frames of any size are resized by the shared preprocessing.
    const acts = await mean.extract({ width: 40, height: 30, frames: [new Uint8Array(40 * 30 * 3).fill(90), new Uint8Array(40 * 30 * 3).fill(200)] });
    acts.forEach((a, i) => {
      expect(a.layer).toBe(mean.layers[i].name);
      expect(a.frames).toBe(2);
      expect(a.values).toHaveLength(2 * a.channels);
      for (const v of a.values) expect(Number.isFinite(v)).toBe(true);
    });
    const empty = await mean.extract(batch([]));
    expect(empty.map((a) => a.values.length)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('counts its FLOPs: at least the analytic count of its convolutions', () => {
    // S1: both sizes, 4 orientations, 'same' on 128, 64, 32, 16 px.
    let convs = 0;
    for (let l = 0; l < LEVELS; l++) convs += 2 * (SIZE >> l) ** 2 * (49 + 121) * 4;
    // S2: 16 prototypes and the patch energy over 3×3×4 C1 patches, valid on 64, 32, 16, 8.
    for (let l = 0; l < LEVELS; l++) convs += 2 * ((SIZE >> (l + 1)) - 2) ** 2 * 36 * 17;
    // Motion quadrature (2 × 4 filters of 11×11, valid on 32 px) and the 1×1 colour maps.
    convs += 2 * 22 * 22 * 121 * 8 + 2 * SIZE * SIZE * 3 * 3;
    expect(mean.flopsPerFrame).toBeGreaterThanOrEqual(convs);
    // The rest (pools, pointwise, reductions) is small beside the convolutions.
    expect(mean.flopsPerFrame).toBeLessThan(1.5 * convs);
  });

  it('rejects unknown layers, pooling and seeds, malformed frames, and use after dispose', async () => {
    const noLayer = createBuiltinExtractor({ backend: 'wasm', layers: ['c1', 'fc7'] });
    await expect(noLayer).rejects.toThrow(SyncactError);
    await expect(noLayer).rejects.toMatchObject({ code: 'CNN_LAYER_NOT_FOUND' });
    await expect(noLayer).rejects.toThrow(/no layer 'fc7'; its layers are s1, c1, s2, c2, color, motion/);
    await expect(createBuiltinExtractor({ pooling: 'median' as never })).rejects.toMatchObject({ code: 'CNN_BAD_SPEC' });
    await expect(createBuiltinExtractor({ seed: -1 })).rejects.toMatchObject({ code: 'CNN_BAD_SPEC' });
    await expect(mean.extract({ width: 8, height: 8, frames: [new Uint8Array(10)] })).rejects.toMatchObject({ code: 'CNN_BAD_FRAMES' });
    const ex = await createBuiltinExtractor({ backend: 'wasm', layers: ['motion', 'color'] });
    expect(ex.layers.map((l) => l.name)).toEqual(['motion', 'color']);
    const acts = await ex.extract(batch([grating(0, 32)]));
    expect(acts.map((a) => a.layer)).toEqual(['motion', 'color']);
    await ex.dispose();
    await expect(ex.extract(batch([grating(0, 32)]))).rejects.toMatchObject({ code: 'ENGINE_NOT_FITTED' });
  });
});

describe('built-in model: its units respond to what the synthetic movie varies', () => {
  it('(a) every s1 and c1 orientation unit prefers gratings of its orientation over the orthogonal ones, across its band', async () => {
    for (let level = 0; level < LEVELS; level++) {
      for (let si = 0; si < S1_SIZES.length; si++) {
        // Periods around the unit's own (λ of its size, times 2^level), half an octave either side.
        const own = serreGabor(S1_SIZES[si], 0).wavelength * 2 ** level;
        for (const period of [own / Math.SQRT2, own, own * Math.SQRT2]) {
          const frames = ORIENTATIONS_DEG.flatMap((o) => [grating(o, period), grating(o + 90, period)]);
          mean.reset();
          const acts = await mean.extract(batch(frames));
          ORIENTATIONS_DEG.forEach((o, oi) => {
            const s1 = channel(mean, 's1', `L${level}/s${S1_SIZES[si]}/${o}deg`);
            const c1 = channel(mean, 'c1', `L${level}/${o}deg`);
            const what = `L${level} size ${S1_SIZES[si]} ${o}° period ${period.toFixed(1)}`;
            // Preferred at least twice the orthogonal (measured ≥ 3×).
            expect(at(layer(acts, 's1'), 2 * oi, s1), what).toBeGreaterThan(2 * at(layer(acts, 's1'), 2 * oi + 1, s1));
            expect(at(layer(acts, 'c1'), 2 * oi, c1), what).toBeGreaterThan(2 * at(layer(acts, 'c1'), 2 * oi + 1, c1));
          });
        }
      }
    }
  });

  it("(a) on the movie's own gratings: grating_0 drives the 0° units, grating_90 the 90° units, at every level", async () => {
    const [g0] = movieFrames(1, { grating_0: 1, luminance: 0.5 });
    const [g90] = movieFrames(1, { grating_90: 1, luminance: 0.5 });
    mean.reset();
    const c1 = layer(await mean.extract(batch([g0, g90])), 'c1');
    // The movie's gratings have a 32 px period: the bands of levels 1–3 cover it.
    for (let level = 1; level < LEVELS; level++) {
      const u0 = channel(mean, 'c1', `L${level}/0deg`);
      const u90 = channel(mean, 'c1', `L${level}/90deg`);
      expect(at(c1, 0, u0)).toBeGreaterThan(2 * at(c1, 0, u90));
      expect(at(c1, 1, u90)).toBeGreaterThan(2 * at(c1, 1, u0));
    }
  });

  it('(b) the luminance unit is the mean grey; orientation units do not see luminance', async () => {
    const lums = [0, 0.25, 0.5, 0.75, 1];
    const frames = lums.map((l) => movieFrames(1, { luminance: l, grating_0: 0.5 })[0]);
    mean.reset();
    const acts = await mean.extract(batch(frames));
    const color = layer(acts, 'color');
    const lu = channel(mean, 'color', 'luminance');
    frames.forEach((f, i) => {
      let sum = 0;
      for (const v of f) sum += v;
      expectClose(at(color, i, lu), sum / f.length / 255);
      if (i > 0) expect(at(color, i, lu)).toBeGreaterThan(at(color, i - 1, lu));
    });
    // The grating is the same in every frame (no clipping at these levels): c1 changes only by
    // the byte rounding of the frames, under 2% of its strongest unit.
    const c1 = layer(acts, 'c1');
    const strongest = Math.max(...c1.values.subarray(0, c1.channels));
    for (let ch = 0; ch < c1.channels; ch++) {
      for (let i = 1; i < frames.length; i++) expect(Math.abs(at(c1, i, ch) - at(c1, 0, ch))).toBeLessThan(0.02 * strongest);
    }
  });

  it('(b) a uniform frame of any grey or colour drives no form or motion unit, only luminance and colour', async () => {
    const uniform = (r: number, g: number, b: number) => {
      const f = new Uint8Array(SIZE * SIZE * 3);
      for (let p = 0; p < f.length; p += 3) f.set([r, g, b], p);
      return f;
    };
    const frames = [uniform(0, 0, 0), uniform(77, 77, 77), uniform(128, 128, 128), uniform(255, 255, 255), uniform(200, 50, 90)];
    mean.reset();
    const acts = await mean.extract(batch(frames));
    // A global change of luminance between frames is not motion either.
    for (const name of ['s1', 'c1', 's2', 'c2', 'motion']) {
      for (const v of layer(acts, name).values) expect(Math.abs(v), name).toBeLessThan(1e-6);
    }
    const color = layer(acts, 'color');
    expectClose(at(color, 4, channel(mean, 'color', 'luminance')), (200 + 50 + 90) / 3 / 255);
    expectClose(at(color, 4, channel(mean, 'color', 'red_green')), (200 - 50) / 255);
    expectClose(at(color, 4, channel(mean, 'color', 'blue_yellow')), (90 - 125) / 255);
    expect(at(color, 4, channel(mean, 'color', 'contrast'))).toBeLessThan(1e-6);
  });

  it('(b) the red–green unit is the mean R − G and follows colour_rg; luminance ignores it; contrast follows contrast', async () => {
    const levels = [0, 0.25, 0.5, 0.75, 1];
    const frames = levels.map((c) => movieFrames(1, { colour_rg: c, luminance: 0.5 })[0]);
    mean.reset();
    const color = layer(await mean.extract(batch(frames)), 'color');
    const rg = channel(mean, 'color', 'red_green');
    const lu = channel(mean, 'color', 'luminance');
    frames.forEach((f, i) => {
      let d = 0;
      for (let p = 0; p < f.length; p += 3) d += f[p] - f[p + 1];
      expectClose(at(color, i, rg), d / (f.length / 3) / 255);
      if (i > 0) expect(at(color, i, rg)).toBeGreaterThan(at(color, i - 1, rg));
      expect(at(color, i, lu)).toBeCloseTo(at(color, 0, lu), 2);
    });
    expect(at(color, 2, rg)).toBeCloseTo(0, 5);
    const contrastFrames = levels.map((c) => movieFrames(1, { contrast: c, luminance: 0.5 })[0]);
    const cc = layer(await mean.extract(batch(contrastFrames)), 'color');
    const ct = channel(mean, 'color', 'contrast');
    expect(at(cc, 0, ct)).toBeCloseTo(0, 5);
    for (let i = 1; i < levels.length; i++) expect(at(cc, i, ct)).toBeGreaterThan(at(cc, i - 1, ct));
  });

  it('(c) motion is exactly 0 for identical consecutive frames and grows with drift speed, in the drift direction', async () => {
    const still = movieFrames(1, { grating_0: 1, grating_90: 1, contrast: 1, luminance: 0.4 })[0];
    mean.reset();
    const m0 = layer(await mean.extract(batch([still, still, still])), 'motion');
    expect(Array.from(m0.values).every((v) => v === 0)).toBe(true);

    const energy = channel(mean, 'motion', 'energy');
    const right = channel(mean, 'motion', '0deg+');
    const left = channel(mean, 'motion', '0deg-');
    const down = channel(mean, 'motion', '90deg+');
    const responses = [];
    for (const speed of [0, 0.25, 0.5, 0.75, 1]) {
      // grating_0 drifts towards +x: phase of sin(2π(4x/w − phase)) grows.
      const frames = movieFrames(2, { grating_0: 1, luminance: 0.5, motion: speed });
      mean.reset();
      const m = layer(await mean.extract(batch(frames)), 'motion');
      responses.push({ energy: at(m, 1, energy), right: at(m, 1, right), left: at(m, 1, left), down: at(m, 1, down) });
      // The first frame of a run is compared with itself.
      for (let ch = 0; ch < m.channels; ch++) expect(at(m, 0, ch)).toBe(0);
    }
    expect(responses[0].energy).toBe(0);
    for (let i = 1; i < responses.length; i++) {
      expect(responses[i].energy).toBeGreaterThan(responses[i - 1].energy);
      expect(responses[i].right).toBeGreaterThan(responses[i - 1].right);
      // Opposite direction and orthogonal orientation stay far below the preferred one.
      expect(responses[i].left).toBeLessThan(0.01 * responses[i].right);
      expect(responses[i].down).toBeLessThan(0.01 * responses[i].right);
    }
    // grating_90 drifts down (+y): the 90° unit's + channel.
    mean.reset();
    const m90 = layer(await mean.extract(batch(movieFrames(2, { grating_90: 1, luminance: 0.5, motion: 1 }))), 'motion');
    expect(at(m90, 1, down)).toBeGreaterThan(100 * at(m90, 1, channel(mean, 'motion', '90deg-')));
    expect(at(m90, 1, down)).toBeGreaterThan(100 * at(m90, 1, right));
  });

  it('(c) motion carries over batches: one batch equals the same frames split in two; reset() starts over', async () => {
    const frames = movieFrames(6, { grating_0: 0.8, grating_90: 0.5, motion: 0.7, luminance: 0.5 });
    mean.reset();
    const whole = layer(await mean.extract(batch(frames)), 'motion');
    mean.reset();
    const first = layer(await mean.extract(batch(frames.slice(0, 3))), 'motion');
    const second = layer(await mean.extract(batch(frames.slice(3))), 'motion');
    const split = new Float32Array([...first.values, ...second.values]);
    for (let i = 0; i < split.length; i++) expect(split[i]).toBeCloseTo(whole.values[i], 6);
    expect(at(second, 0, 0)).toBeGreaterThan(0);
    mean.reset();
    const restarted = layer(await mean.extract(batch(frames.slice(3))), 'motion');
    for (let ch = 0; ch < restarted.channels; ch++) expect(at(restarted, 0, ch)).toBe(0);
  });
});

describe('built-in model: S2 and C2', () => {
  it("each C2 unit answers ≈1 to the stimulus its prototype was imprinted from, and 0 to a blank frame", async () => {
    const rng = createRng(BUILTIN_DEFAULT_SEED);
    const stimuli = Array.from({ length: BUILTIN_PROTOTYPES }, (_, k) => prototypeStimulus(k, rng));
    const toRgb = (grey: Float32Array) => {
      const f = new Uint8Array(grey.length * 3);
      grey.forEach((v, i) => f.fill(Math.round(v * 255), 3 * i, 3 * i + 3));
      return f;
    };
    mean.reset();
    const c2 = layer(await mean.extract(batch([...stimuli.map((s) => toRgb(s.pixels)), new Uint8Array(SIZE * SIZE * 3).fill(128)])), 'c2');
    for (let k = 0; k < BUILTIN_PROTOTYPES; k++) {
      // Cosine similarity of the C1 patch with itself, but for the frame's byte rounding.
      expect(at(c2, k, k), `prototype ${k} (${stimuli[k].kind}, level ${stimuli[k].level})`).toBeGreaterThan(0.99);
      expect(at(c2, BUILTIN_PROTOTYPES, k)).toBeLessThan(1e-6);
    }
    // Not every unit answers 1 to everything: each is below 0.9 for some other stimulus.
    for (let k = 0; k < BUILTIN_PROTOTYPES; k++) {
      expect(Math.min(...stimuli.map((_, j) => at(c2, j, k)))).toBeLessThan(0.9);
    }
  });
});

describe('built-in model: pooling and determinism', () => {
  it("(d) 'max' pooling is ≥ 'mean' pooling for every unit; c2 is a global max either way", async () => {
    const frames = [
      ...movieFrames(3, { grating_0: 0.7, grating_90: 0.3, contrast: 0.8, colour_rg: 0.9, motion: 1, luminance: 0.3 }),
      grating(45, 12, { amp: 0.3 }),
    ];
    mean.reset();
    max.reset();
    const a = await mean.extract(batch(frames));
    const b = await max.extract(batch(frames));
    a.forEach((la, i) => {
      const lb = b[i];
      for (let k = 0; k < la.values.length; k++) {
        if (la.layer === 'c2') expect(lb.values[k]).toBe(la.values[k]);
        else expect(lb.values[k], `${la.layer}[${k}]`).toBeGreaterThanOrEqual(la.values[k] - 1e-6 * Math.abs(la.values[k]));
      }
    });
    // And strictly greater where the map is not flat (a grating's S1 response).
    expect(at(layer(b, 's1'), 3, 0)).toBeGreaterThan(1.2 * at(layer(a, 's1'), 3, 0));
  });

  it('(e) is deterministic: two models built apart give identical values; the S2 seed changes only s2/c2', async () => {
    const frames = movieFrames(4, { grating_0: 0.6, grating_90: 0.9, contrast: 0.5, colour_rg: 0.2, motion: 0.5, luminance: 0.6 });
    const other = await createBuiltinExtractor({ backend: 'wasm' });
    const seeded = await createBuiltinExtractor({ backend: 'wasm', seed: 7 });
    try {
      expect(other.id).toBe(mean.id);
      expect(seeded.id).toMatch(new RegExp(`^${BUILTIN_ID}:seed=7:[0-9a-f]{12}$`));
      expect(seeded.id.slice(-12)).not.toBe(mean.id.slice(-12));
      mean.reset();
      const a = await mean.extract(batch(frames));
      const b = await other.extract(batch(frames));
      const c = await seeded.extract(batch(frames));
      a.forEach((la, i) => expect(b[i].values).toEqual(la.values));
      for (const name of ['s1', 'c1', 'color', 'motion']) expect(layer(c, name).values).toEqual(layer(a, name).values);
      for (const name of ['s2', 'c2']) expect(layer(c, name).values).not.toEqual(layer(a, name).values);
      // Same model, same frames again after reset(): same values.
      mean.reset();
      const again = await mean.extract(batch(frames));
      a.forEach((la, i) => expect(again[i].values).toEqual(la.values));
    } finally {
      await other.dispose();
      await seeded.dispose();
    }
  });

  it('form and colour units of a frame do not depend on the other frames of its batch', async () => {
    const frames = movieFrames(3, { grating_0: 0.3, grating_90: 0.8, contrast: 0.4, colour_rg: 0.7, luminance: 0.5 });
    mean.reset();
    const together = await mean.extract(batch(frames));
    for (let f = 0; f < frames.length; f++) {
      const alone = await mean.extract(batch([frames[f]]));
      for (const name of ['s1', 'c1', 's2', 'c2', 'color']) {
        const t = layer(together, name);
        const s = layer(alone, name);
        for (let ch = 0; ch < t.channels; ch++) expect(at(s, 0, ch)).toBeCloseTo(at(t, f, ch), 5);
      }
    }
  });
});
