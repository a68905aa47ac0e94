import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { pearson } from '../../server/synth/decorrelate.ts';
import { encodeVideo } from '../../server/io/videoEncode.ts';
import { locateFfmpeg } from '../../server/io/ffmpeg.ts';

const s = createSyntheticSession({ preset: 'tiny', seed: 3 });
const { width: w, height: h, frameCount } = s.movie;
const feature = (name: string) => s.features.perFrame[s.features.names.indexOf(name)];

/** Measurements of one RGB frame, by projection on the known patterns (values in 0..1). */
function measure(frame: Uint8Array) {
  let grey = 0;
  let rg = 0;
  let checker = 0;
  const sx = [0, 0];
  const sy = [0, 0];
  const n = w * h;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = 3 * (y * w + x);
      const [r, g, b] = [frame[p] / 255, frame[p + 1] / 255, frame[p + 2] / 255];
      grey += (r + g + b) / 3;
      rg += r - g;
      checker += b * ((Math.floor(x / (w / 8)) + Math.floor(y / (h / 8))) % 2 === 0 ? 1 : -1);
      const ax = (2 * Math.PI * 4 * x) / w;
      const ay = (2 * Math.PI * 4 * y) / h;
      sx[0] += b * Math.sin(ax);
      sx[1] += b * Math.cos(ax);
      sy[0] += b * Math.sin(ay);
      sy[1] += b * Math.cos(ay);
    }
  }
  return {
    grey: grey / n,
    rg: rg / n,
    checker: checker / n,
    grating0: (2 * Math.hypot(sx[0], sx[1])) / n,
    grating90: (2 * Math.hypot(sy[0], sy[1])) / n,
    /** Phase (cycles) of the x grating: sin(2π(4x/w − φ)) projects to (cos 2πφ, −sin 2πφ). */
    phase0: Math.atan2(-sx[1], sx[0]) / (2 * Math.PI),
  };
}

describe('procedural movie', () => {
  const frames = Array.from({ length: frameCount }, (_, i) => measure(s.movie.frame(i)));
  const q = 1 / 255; // one grey level

  it('renders luminance as the mean grey level', () => {
    frames.forEach((m, i) => expect(Math.abs(m.grey - (0.38 + 0.24 * feature('luminance')[i]))).toBeLessThan(q));
  });

  it('renders colour_rg as the red–green balance', () => {
    frames.forEach((m, i) => expect(Math.abs(m.rg - 0.16 * (2 * feature('colour_rg')[i] - 1))).toBeLessThan(2 * q));
  });

  it('renders contrast as the checkerboard amplitude and the gratings as their amplitudes', () => {
    frames.forEach((m, i) => {
      expect(Math.abs(m.checker - 0.1 * feature('contrast')[i])).toBeLessThan(q);
      expect(Math.abs(m.grating0 - 0.1 * feature('grating_0')[i])).toBeLessThan(2 * q);
      expect(Math.abs(m.grating90 - 0.1 * feature('grating_90')[i])).toBeLessThan(2 * q);
    });
  });

  it('drifts the gratings at 1.5 · motion cycles per second', () => {
    let checked = 0;
    for (let i = 0; i + 1 < frameCount; i++) {
      if (feature('grating_0')[i] < 0.3 || feature('grating_0')[i + 1] < 0.3) continue; // phase needs a visible grating
      let step = frames[i + 1].phase0 - frames[i].phase0;
      step -= Math.round(step); // wrap to (−0.5, 0.5]
      expect(Math.abs(step - (1.5 * feature('motion')[i]) / s.movie.fps)).toBeLessThan(0.01);
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('gives each feature a course that varies over the run', () => {
    for (const values of s.features.perFrame) {
      expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(0.3);
    }
  });

  it('survives H.264 encoding: decoded mean grey tracks the luminance course', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'syncact-movie-'));
    try {
      const path = join(dir, 'movie.mp4');
      await encodeVideo(path, { ...s.movie, frame: (i) => s.movie.frame(i) });
      const raw = spawnSync(locateFfmpeg(), ['-v', 'error', '-i', path, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
        maxBuffer: 64 << 20,
      });
      expect(raw.status).toBe(0);
      const bytes = raw.stdout as Buffer;
      expect(bytes.length).toBe(frameCount * w * h * 3);
      const decoded = Array.from({ length: frameCount }, (_, i) => measure(bytes.subarray(i * w * h * 3, (i + 1) * w * h * 3)).grey);
      expect(pearson(decoded, feature('luminance'))).toBeGreaterThan(0.99);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
