import { describe, it, expect } from 'vitest';
import { createBuiltinExtractor } from '../../../server/engine/cnn/builtin.ts';
import { createSyntheticSession } from '../../../server/synth/session.ts';
import { FEATURE_NAMES, type FeatureName } from '../../../server/synth/features.ts';

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let c = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    c += (a[i] - ma) * (b[i] - mb);
    va += (a[i] - ma) ** 2;
    vb += (b[i] - mb) ** 2;
  }
  return c / Math.sqrt(va * vb);
}

describe('built-in model on the tiny synthetic session (the demo movie at 64×64, 8 fps)', () => {
  it('has a unit that follows each feature the movie varies, frame by frame, better than any other feature', async () => {
    const session = createSyntheticSession({ preset: 'tiny' });
    const { movie } = session;
    const ex = await createBuiltinExtractor({ backend: 'wasm', layers: ['c1', 'color', 'motion'] });
    const series = new Map<string, Float64Array>();
    for (const l of ex.layers) for (const name of ex.channelNames[l.name]) series.set(`${l.name}/${name}`, new Float64Array(movie.frameCount));
    try {
      for (let start = 0; start < movie.frameCount; start += 40) {
        const frames = [];
        for (let i = start; i < Math.min(movie.frameCount, start + 40); i++) frames.push(movie.frame(i));
        const acts = await ex.extract({ width: movie.width, height: movie.height, frames });
        for (const a of acts) {
          ex.channelNames[a.layer].forEach((name, ch) => {
            const s = series.get(`${a.layer}/${name}`)!;
            for (let f = 0; f < a.frames; f++) s[start + f] = a.values[f * a.channels + ch];
          });
        }
      }
    } finally {
      await ex.dispose();
    }
    const feature = (name: FeatureName) => session.features.perFrame[FEATURE_NAMES.indexOf(name)];
    // unit → (its feature, smallest r accepted); measured r in the comment.
    const expected: [string, FeatureName, number][] = [
      ['color/luminance', 'luminance', 0.99], // 1.00
      ['color/red_green', 'colour_rg', 0.99], // 1.00
      ['c1/L0/45deg', 'contrast', 0.95], // 1.00: the checkerboard's energy is diagonal
      ['c1/L2/0deg', 'grating_0', 0.9], // 0.99
      ['c1/L2/90deg', 'grating_90', 0.9], // 0.98
      ['motion/0deg+', 'motion', 0.8], // 0.95
      ['motion/90deg+', 'motion', 0.8], // 0.92
      ['motion/energy', 'motion', 0.5], // 0.63
    ];
    for (const [unit, feat, min] of expected) {
      const rs = FEATURE_NAMES.map((f) => pearson(series.get(unit)!, feature(f)));
      const r = rs[FEATURE_NAMES.indexOf(feat)];
      expect(r, `${unit} vs ${feat}`).toBeGreaterThan(min);
      expect(Math.max(...rs), `${unit}: r with each feature ${rs.map((x) => x.toFixed(2)).join(' ')}`).toBe(r);
    }
  });
});
