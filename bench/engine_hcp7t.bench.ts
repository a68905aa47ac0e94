/**
 * The whole coupling engine at HCP 7T movie scale (issue 3, "Speed"), one TR at a time:
 * V = 370,000 masked voxels; GLM on K = 64 units + 14 DCT drift columns and the constant
 * (P = 79, the DCT of a 921-TR run at 1/128 Hz); 400 atlas parcels; sliding windows
 * (W = 30) over 256 units × 400 parcels with 100 lagged null shifts pooled per unit and BH
 * across the 102,400 pairs; online dictionary learning (20 atoms on running z-scores,
 * updated every 5 TRs); CKA of 4 layers of 64 units with the parcels.
 *
 * A timed TR is what the replay does per TR: `update`, the coupling read-out (r, p, q,
 * significance) and one unit's t-map (what the dashboard shows). After a warm-up of 160
 * TRs (the GLM has full rank from TR 79, every null lag is ready from TR 158, every
 * preallocated array has been written, so its pages are resident), 60 TRs are timed:
 * - engine.hcp7t_per_tr_ms: median over 12 cycles of 5 TRs of the mean TR time (a cycle
 *   holds exactly one dictionary update, so this is the amortised cost);
 * - engine.hcp7t_cpu_per_tr_ms: the same statistic for the CPU time of all threads (the
 *   GLM workers included) per TR. The machine is shared: when other processes hold the
 *   cores, wall time rises and this one much less, so the two together say whether a slow
 *   figure was the engine or the neighbours;
 * - engine.hcp7t_glm_ms / _features_ms / _sliding_ms / _dictionary_ms: the same statistic
 *   per stage (GLM: update + t-map; sliding: update + read-out; dictionary: z-score + code +
 *   amortised dictionary pass), from the engine's injected-clock stage times;
 * - engine.hcp7t_rss_mb: resident memory after 60 timed TRs; engine.hcp7t_rss_growth_mb:
 *   after 60 minus after 20 timed TRs, both after a full garbage collection. The state is
 *   allocated up front, so this should be near 0. (Counted from TR 0 instead, RSS rises by
 *   ~50 MB between TRs 20 and 60 without any allocation: the null sums of a lag are first
 *   written when the run is that long, and untouched zeroed pages are not resident.)
 * Volumes are synthetic (shifted windows of one seeded noise buffer, plus 64 planted
 * parcels), made outside the timed region; nothing is written to disk.
 */
import { loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { median, type BenchSuite } from './bench.ts';
import { CouplingEngine, type CouplingStageTimes } from '../server/engine/coupling.ts';
import { cosineDriftOrder, dctRow } from '../server/engine/drift.ts';
import { createRng } from '../server/engine/random.ts';

const V = 370_000;
const K = 64;
const UNITS = 256;
const PARCELS = 400;
const WINDOW = 30;
const SHIFTS = 100;
const ATOMS = 20;
const UPDATE_EVERY = 5;
const RUN = 921; // TRs of an HCP 7T movie run: sets the DCT drift basis
const TR = 1;
const WARMUP = 160;
/** TRs timed after the warm-up: 12 cycles of UPDATE_EVERY; RSS is read after 20 and 60 of them. */
const TIMED = 60;
const CYCLES = TIMED / UPDATE_EVERY;

const FIGURES = [
  'engine.hcp7t_per_tr_ms',
  'engine.hcp7t_cpu_per_tr_ms',
  'engine.hcp7t_glm_ms',
  'engine.hcp7t_features_ms',
  'engine.hcp7t_sliding_ms',
  'engine.hcp7t_dictionary_ms',
  'engine.hcp7t_rss_mb',
  'engine.hcp7t_rss_growth_mb',
];

/** Seeded synthetic inputs, made one TR at a time outside the timed region. */
class Inputs {
  private readonly rng = createRng(11);
  private readonly noise: Float32Array;
  private readonly baseline: Float32Array;
  private readonly units = new Float64Array(UNITS);
  readonly labels: Int32Array;
  readonly volume = new Float32Array(V);

  constructor() {
    this.noise = new Float32Array(V + 4099);
    for (let i = 0; i < this.noise.length; i++) this.noise[i] = 10 * this.rng.normal();
    this.baseline = new Float32Array(V);
    for (let v = 0; v < V; v++) this.baseline[v] = 1000 + 20 * this.rng.normal();
    // Parcels are contiguous runs of the mask order (as compact parcels roughly are);
    // every 10th voxel is in none (white matter, CSF).
    this.labels = Int32Array.from({ length: V }, (_, v) => (v % 10 === 9 ? -1 : Math.floor((v * PARCELS) / V)));
  }

  /** Unit responses (smooth AR(1)) and the volume of the next TR. */
  next(): Float64Array {
    const u = this.units;
    for (let i = 0; i < UNITS; i++) u[i] = 0.8 * u[i] + 0.6 * this.rng.normal();
    const shift = this.rng.int(4096);
    const y = this.volume;
    for (let v = 0; v < V; v++) y[v] = this.baseline[v] + this.noise[v + shift];
    // Unit p drives parcel 5p (64 planted parcels), as a synchronized network would.
    const perParcel = V / PARCELS;
    for (let p = 0; p < K; p++) {
      const from = Math.ceil(5 * p * perParcel);
      const to = Math.ceil((5 * p + 1) * perParcel);
      const a = 8 * u[p];
      for (let v = from; v < to; v++) y[v] += a;
    }
    return u;
  }
}

/**
 * Resident memory after a full garbage collection, so that the per-TR read-out arrays
 * already dropped (a few MB per TR) do not show up as growth. `gc` is exposed at run
 * time, since the bench runner starts node without --expose-gc.
 */
function rssMb(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

const buffersMb = () => process.memoryUsage().arrayBuffers / 2 ** 20;

const suite: BenchSuite = {
  title: 'coupling engine at HCP 7T scale (V = 370,000, K = 64, 256 × 400 pairs, 100 nulls, 20 atoms)',
  figures: FIGURES,
  async run(ctx): Promise<Record<string, number>> {
    if (!FIGURES.some((f) => ctx.wants(f))) return {};
    ctx.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} before the run`);
    const inputs = new Inputs();
    const extras = cosineDriftOrder(RUN, TR) + 1;
    const engine = new CouplingEngine({
      voxels: V,
      units: UNITS,
      glmUnits: Array.from({ length: K }, (_, i) => i),
      extras,
      atlas: { labelOfVoxel: inputs.labels, regions: PARCELS },
      sliding: { window: WINDOW, nulls: { shifts: SHIFTS, seed: 1, pool: 'unit', minShift: WINDOW, maxShift: WINDOW + SHIFTS - 1 } },
      dictionary: { atoms: ATOMS, updateEvery: UPDATE_EVERY },
      layers: [0, 1, 2, 3].map((l) => ({ name: `layer${l}`, units: Array.from({ length: 64 }, (_, i) => 64 * l + i) })),
      clock: () => performance.now(),
    });
    ctx.log(`GLM: ${engine.voxels} voxels × ${K + extras} columns, ${engine.fitted ? 'fitted' : 'warm-up'}`);
    const tmap = new Float32Array(V);
    const total = TIMED;
    const perTr: number[] = [];
    const cpuPerTr: number[] = [];
    const parts: { glm: number[]; features: number[]; sliding: number[]; dictionary: number[] } = { glm: [], features: [], sliding: [], dictionary: [] };
    let rss20 = NaN;
    let rss60 = NaN;
    let buffers20 = NaN;
    let buffers60 = NaN;
    try {
      const start = performance.now();
      for (let k = 0; k < WARMUP + total; k++) {
        const units = inputs.next();
        const row = dctRow(k, RUN, TR);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        engine.update({ units, extras: row, volume: inputs.volume });
        const t1 = performance.now();
        const coupling = engine.coupling(0.05);
        const t2 = performance.now();
        engine.tmap(0, tmap);
        const t3 = performance.now();
        const cpu = process.cpuUsage(cpu0);
        // Read outside the timed span of that TR (a full GC takes a while).
        if (k + 1 === WARMUP + 20) [rss20, buffers20] = [rssMb(), buffersMb()];
        if (k + 1 === WARMUP + 60) [rss60, buffers60] = [rssMb(), buffersMb()];
        if (k + 1 === WARMUP) {
          let sig = 0;
          for (const s of coupling.significant) sig += s;
          ctx.log(`warm-up done in ${((t3 - start) / 1000).toFixed(1)} s; ${sig} of ${coupling.significant.length} pairs significant`);
        }
        if (k < WARMUP) continue;
        const stages: CouplingStageTimes = engine.stageTimes();
        perTr.push(t3 - t0);
        cpuPerTr.push((cpu.user + cpu.system) / 1000);
        parts.glm.push(stages.glm + (t3 - t2));
        parts.features.push(stages.features);
        parts.sliding.push(stages.sliding + (t2 - t1));
        parts.dictionary.push(stages.dictionary);
      }
    } finally {
      engine.dispose();
    }
    // Median over cycles of UPDATE_EVERY TRs of the mean: one dictionary pass per cycle.
    const cycleMedian = (xs: number[]) => {
      const means: number[] = [];
      for (let c = 0; c < CYCLES; c++) {
        const part = xs.slice(c * UPDATE_EVERY, (c + 1) * UPDATE_EVERY);
        means.push(part.reduce((a, b) => a + b, 0) / part.length);
      }
      return median(means);
    };
    const out: Record<string, number> = {
      'engine.hcp7t_per_tr_ms': cycleMedian(perTr),
      'engine.hcp7t_cpu_per_tr_ms': cycleMedian(cpuPerTr),
      'engine.hcp7t_glm_ms': cycleMedian(parts.glm),
      'engine.hcp7t_features_ms': cycleMedian(parts.features),
      'engine.hcp7t_sliding_ms': cycleMedian(parts.sliding),
      'engine.hcp7t_dictionary_ms': cycleMedian(parts.dictionary),
      'engine.hcp7t_rss_mb': rss60,
      'engine.hcp7t_rss_growth_mb': rss60 - rss20,
    };
    ctx.log(
      `per TR ${out['engine.hcp7t_per_tr_ms'].toFixed(1)} ms wall, ${out['engine.hcp7t_cpu_per_tr_ms'].toFixed(1)} ms CPU (GLM ${out['engine.hcp7t_glm_ms'].toFixed(1)}, features ` +
        `${out['engine.hcp7t_features_ms'].toFixed(1)}, sliding ${out['engine.hcp7t_sliding_ms'].toFixed(1)}, dictionary ` +
        `${out['engine.hcp7t_dictionary_ms'].toFixed(1)}); RSS ${rss20.toFixed(0)} MB after 20 timed TRs, ${rss60.toFixed(0)} MB after 60 ` +
        `(typed-array memory ${buffers20.toFixed(0)} and ${buffers60.toFixed(0)} MB); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    );
    return out;
  },
};

export default suite;
