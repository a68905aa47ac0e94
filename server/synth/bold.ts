/**
 * The synthetic BOLD signal, volume by volume. For an in-brain voxel v at TR k:
 *
 *   y = baseline_v + Σ_n amplitude · sign_n · map_n(v) · signal_n[k] + drift_v(k) + e_v(k)
 *
 * - signal_n is the standardized drive of network n (its feature's HRF-convolved course, or
 *   a null network's own slow signal);
 * - drift_v(k) = a_v·(2u − 1) + b_v·cos(πu), u = k/(nVolumes − 1), with a_v, b_v ~ N(0, driftSd²);
 * - e_v is AR(1) noise: e(0) = σ·z(0), e(k) = ρ·e(k−1) + √(1−ρ²)·σ·z(k), stationary with SD
 *   σ = amplitude / snr, spatially independent; the z of volume k come from their own seed.
 * Voxels outside the mask are 0, as in HCP's MNI-space runs.
 *
 * Why a cursor and checkpoints: AR(1) noise is sequential, and an hcp7t run (1.7 M voxels ×
 * 921 volumes) must never be held whole. Volumes are cheapest in order (one step each);
 * the noise state is stored every `checkpointEvery` volumes on the way, so going back to
 * volume k replays at most that many steps from the checkpoint before it. Any access order
 * gives the same bytes, because each step's innovations depend only on (seed, k).
 */
import { createRng } from '../engine/random.ts';
import { STREAM, subSeed } from './seed.ts';

export interface PlantedNetwork {
  map: Float32Array;
  sign: 1 | -1;
  /** Per TR, standardized. */
  signal: Float64Array;
}

export interface BoldGeneratorOptions {
  seed: number;
  mask: Uint8Array;
  nVolumes: number;
  networks: PlantedNetwork[];
  /** Per masked voxel (mask order), the mean intensity. */
  baseline: Float64Array;
  amplitude: number;
  snr: number;
  ar1: number;
  driftSd: number;
  checkpointEvery: number;
}

export class BoldGenerator {
  readonly nVolumes: number;
  private readonly o: BoldGeneratorOptions;
  /** Grid index of each masked voxel. */
  private readonly maskIndex: Int32Array;
  /** Per network: masked-voxel indices where its map is non-zero, and the map there. */
  private readonly supports: { at: Int32Array; weight: Float64Array; scale: number; signal: Float64Array }[];
  private readonly driftLinear: Float64Array;
  private readonly driftCosine: Float64Array;
  private readonly sigma: number;
  private readonly noise: Float64Array;
  /** The volume whose noise `noise` holds, −1 before the first. */
  private noiseAt = -1;
  private readonly checkpoints = new Map<number, Float64Array>();
  private readonly scratch: Float64Array;

  constructor(options: BoldGeneratorOptions) {
    this.o = options;
    this.nVolumes = options.nVolumes;
    const { mask } = options;
    let count = 0;
    for (let i = 0; i < mask.length; i++) if (mask[i]) count++;
    this.maskIndex = new Int32Array(count);
    const position = new Int32Array(mask.length).fill(-1);
    for (let i = 0, m = 0; i < mask.length; i++) {
      if (mask[i]) {
        position[i] = m;
        this.maskIndex[m++] = i;
      }
    }
    this.supports = options.networks.map((n) => {
      const at: number[] = [];
      const weight: number[] = [];
      for (let i = 0; i < n.map.length; i++) {
        if (n.map[i] !== 0 && position[i] >= 0) {
          at.push(position[i]);
          weight.push(n.map[i]);
        }
      }
      return { at: Int32Array.from(at), weight: Float64Array.from(weight), scale: options.amplitude * n.sign, signal: n.signal };
    });
    const driftRng = createRng(subSeed(options.seed, STREAM.drift));
    this.driftLinear = new Float64Array(count);
    this.driftCosine = new Float64Array(count);
    for (let m = 0; m < count; m++) {
      this.driftLinear[m] = options.driftSd * driftRng.normal();
      this.driftCosine[m] = options.driftSd * driftRng.normal();
    }
    this.sigma = options.amplitude / options.snr;
    this.noise = new Float64Array(count);
    this.scratch = new Float64Array(count);
  }

  /** Volume k over the whole grid (x fastest), a new array. */
  volume(k: number): Float32Array {
    if (!Number.isInteger(k) || k < 0 || k >= this.nVolumes) {
      throw new RangeError(`volume ${k} is outside 0..${this.nVolumes - 1}`);
    }
    this.seekNoise(k);
    const y = this.scratch;
    const u = this.nVolumes > 1 ? k / (this.nVolumes - 1) : 0;
    const lin = 2 * u - 1;
    const cos = Math.cos(Math.PI * u);
    const { baseline } = this.o;
    for (let m = 0; m < y.length; m++) {
      y[m] = baseline[m] + this.driftLinear[m] * lin + this.driftCosine[m] * cos + this.noise[m];
    }
    for (const s of this.supports) {
      const a = s.scale * s.signal[k];
      for (let j = 0; j < s.at.length; j++) y[s.at[j]] += a * s.weight[j];
    }
    const out = new Float32Array(this.o.mask.length);
    for (let m = 0; m < y.length; m++) out[this.maskIndex[m]] = y[m];
    return out;
  }

  /** Brings the noise state to volume k: forward steps, or back to a checkpoint first. */
  private seekNoise(k: number): void {
    if (k < this.noiseAt) {
      const every = this.o.checkpointEvery;
      const c = Math.floor(k / every) * every;
      const saved = this.checkpoints.get(c);
      if (!saved) throw new Error(`internal: no noise checkpoint at volume ${c}`);
      this.noise.set(saved);
      this.noiseAt = c;
    }
    while (this.noiseAt < k) this.stepNoise(this.noiseAt + 1);
  }

  private stepNoise(k: number): void {
    const rng = createRng(subSeed(this.o.seed, STREAM.noise, k));
    const rho = this.o.ar1;
    const sigma = this.sigma;
    const innovation = Math.sqrt(1 - rho * rho) * sigma;
    const e = this.noise;
    if (k === 0) {
      for (let m = 0; m < e.length; m++) e[m] = sigma * rng.normal();
    } else {
      for (let m = 0; m < e.length; m++) e[m] = rho * e[m] + innovation * rng.normal();
    }
    this.noiseAt = k;
    if (k % this.o.checkpointEvery === 0 && !this.checkpoints.has(k)) this.checkpoints.set(k, e.slice());
  }
}
