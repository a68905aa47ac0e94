/**
 * Shared by the pipeline tests: a fast deterministic FeatureExtractor (its units are known
 * functions of the frame: mean red, green, blue, grey contrast and frame-to-frame change,
 * in two "layers"), and a tiny synthetic session opened in memory with it.
 */
import type { FeatureExtractor, FrameBatch, LayerActivations } from '../../server/engine/cnn/extractor.ts';
import type { PipelineTr } from '../../server/streams/pipeline.ts';
import { openSyntheticSession, type OpenOptions, type OpenedSession } from '../../server/streams/session.ts';

export function fakeExtractor(): FeatureExtractor {
  let prev: Float64Array | null = null;
  return {
    id: 'test:fake-v1',
    backend: 'js',
    preprocessing: { width: 64, height: 64, resize: 'bilinear', colorOrder: 'rgb', normalization: 'unit', layout: 'nhwc' },
    layers: [
      { name: 'colour', channels: 3 },
      { name: 'texture', channels: 2 },
    ],
    pooling: 'mean',
    async extract(batch: FrameBatch): Promise<LayerActivations[]> {
      const n = batch.frames.length;
      const colour = new Float32Array(n * 3);
      const texture = new Float32Array(n * 2);
      const px = batch.width * batch.height;
      batch.frames.forEach((f, i) => {
        const grey = new Float64Array(px);
        let s = 0;
        for (let p = 0; p < px; p++) {
          for (let c = 0; c < 3; c++) colour[i * 3 + c] += f[p * 3 + c] / 255 / px;
          grey[p] = (f[p * 3] + f[p * 3 + 1] + f[p * 3 + 2]) / 765;
          s += grey[p];
        }
        const mean = s / px;
        let v = 0;
        let d = 0;
        for (let p = 0; p < px; p++) {
          v += (grey[p] - mean) ** 2;
          if (prev) d += Math.abs(grey[p] - prev[p]);
        }
        texture[i * 2] = Math.sqrt(v / px);
        texture[i * 2 + 1] = d / px;
        prev = grey;
      });
      return [
        { layer: 'colour', channels: 3, frames: n, values: colour },
        { layer: 'texture', channels: 2, frames: n, values: texture },
      ];
    },
    async dispose() {},
  };
}

/** The tiny preset in memory with the fake CNN, no cache, small nulls. */
export function openTiny(options: OpenOptions = {}): Promise<OpenedSession> {
  return openSyntheticSession('tiny', 1, {
    model: fakeExtractor(),
    cacheDir: null,
    networks: 2,
    annotationNulls: 20,
    framesPerTr: 4,
    engine: { regressors: 3, window: 10, nulls: 8, snapshotEvery: 4 },
    ...options,
  });
}

/** Everything in a state except what depends on wall time (telemetry) and the clock's settings. */
export function stateValues(t: PipelineTr) {
  const s = t.state;
  return {
    tr: s.tr,
    time: s.time,
    unitResponses: Array.from(s.unitResponses),
    features: Array.from(s.features),
    coupling: Array.from(s.coupling),
    couplingQ: Array.from(s.couplingQ),
    significant: Array.from(s.significant),
    cka: Array.from(s.cka),
    frame: s.frame ? Array.from(s.frame.rgb) : null,
    annotations: t.annotations,
  };
}
