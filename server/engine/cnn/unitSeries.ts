/**
 * From CNN activations to unit responses, one TR at a time (DESIGN.md §2, §4).
 *
 * Every channel of every tapped layer is one unit; units are numbered layer after layer in
 * the extractor's layer order (`UnitLayout`). Each frame's activations of all units are
 * averaged into the engine's microtime bins (`MicrotimeBinner`: frames in
 * [onset + k·TR, onset + (k+1)·TR) belong to TR k), and each TR's bins go through the causal
 * HRF convolution (`HrfConvolver`), which yields one response per unit (per kernel) at the
 * TR's reference time. The result per TR is one Float64Array over all units, exactly what a
 * batch computation gives: bin the whole movie, `np.convolve` each unit with the HRF, sample
 * every TR at its reference bin.
 *
 * Two halves, so the engine stays pure:
 * - `UnitSeries` is synchronous and pure: it takes activation matrices for a batch of frames
 *   with their movie times and hands out completed TRs; it can be snapshotted for seeking.
 * - `extractActivations` and `streamUnitResponses` are the small async drivers that pull
 *   frames from a source in batches of B, call `extractor.extract`, and feed `UnitSeries`
 *   (or collect the activation matrix for the feature cache).
 *
 * Frame subsampling (`framesPerTr`) keeps a fixed number of evenly spread frames per TR
 * instead of every frame, to spend less CNN time on long movies: the microtime bins left
 * empty hold the previous frame's value, as the binner documents.
 */
import { SyncactError } from '../../errors.ts';
import type { Estimator, EstimatorSnapshot } from '../estimator.ts';
import { DEFAULT_MICROTIME_BINS, microtimeHrfKernels, type HrfParams } from '../hrf.ts';
import { HrfConvolver } from '../hrfConvolver.ts';
import { binOfTime, MicrotimeBinner } from '../microtime.ts';
import type { FeatureExtractor, LayerActivations, LayerInfo } from './extractor.ts';

/**
 * Unit index ↔ (layer, channel). Layer l owns the units [offsets[l], offsets[l+1]), its
 * channel c is unit offsets[l] + c.
 */
export class UnitLayout {
  readonly layers: readonly LayerInfo[];
  /** Total units over all layers. */
  readonly units: number;
  /** First unit of each layer, plus the total at the end (length layers + 1). */
  readonly offsets: Int32Array;
  /** Layer index of each unit. */
  readonly layerOf: Int32Array;
  private readonly byName = new Map<string, number>();

  constructor(layers: readonly LayerInfo[]) {
    if (layers.length === 0) throw new SyncactError('ENGINE_BAD_INPUT', 'unit layout: no tapped layers');
    const offsets = new Int32Array(layers.length + 1);
    layers.forEach((l, i) => {
      if (!Number.isInteger(l.channels) || l.channels < 1) {
        throw new SyncactError('ENGINE_BAD_INPUT', `unit layout: layer "${l.name}" has ${l.channels} channels, expected a positive integer`);
      }
      if (this.byName.has(l.name)) throw new SyncactError('ENGINE_BAD_INPUT', `unit layout: layer "${l.name}" is tapped twice`);
      this.byName.set(l.name, i);
      offsets[i + 1] = offsets[i] + l.channels;
    });
    this.layers = layers.map((l) => ({ name: l.name, channels: l.channels }));
    this.offsets = offsets;
    this.units = offsets[layers.length];
    this.layerOf = new Int32Array(this.units);
    for (let l = 0; l < layers.length; l++) this.layerOf.fill(l, offsets[l], offsets[l + 1]);
  }

  /** The unit index of a layer's channel; the layer by name or by position. */
  index(layer: string | number, channel: number): number {
    const l = typeof layer === 'number' ? layer : this.byName.get(layer);
    if (l === undefined || !Number.isInteger(l) || l < 0 || l >= this.layers.length) {
      throw new SyncactError('ENGINE_BAD_INPUT', `unit layout: no layer ${JSON.stringify(layer)}; layers: ${this.layers.map((x) => x.name).join(', ')}`);
    }
    const n = this.layers[l].channels;
    if (!Number.isInteger(channel) || channel < 0 || channel >= n) {
      throw new SyncactError('ENGINE_BAD_INPUT', `unit layout: layer "${this.layers[l].name}" has channels 0..${n - 1}, got ${channel}`);
    }
    return this.offsets[l] + channel;
  }

  /** The layer and channel of a unit. */
  unit(index: number): { layer: string; layerIndex: number; channel: number } {
    if (!Number.isInteger(index) || index < 0 || index >= this.units) {
      throw new SyncactError('ENGINE_BAD_INPUT', `unit layout: unit ${index} is outside 0..${this.units - 1}`);
    }
    const l = this.layerOf[index];
    return { layer: this.layers[l].name, layerIndex: l, channel: index - this.offsets[l] };
  }
}

/**
 * Copies per-layer activations (frames × channels each) into one frames × units matrix in
 * layout order, checking that the extractor returned the layers it declared.
 */
export function flattenActivations(layout: UnitLayout, acts: readonly LayerActivations[], out?: Float32Array): Float32Array {
  if (acts.length !== layout.layers.length) {
    throw new SyncactError('ENGINE_BAD_INPUT', `unit series: extractor returned ${acts.length} layers, expected ${layout.layers.length}`);
  }
  const frames = acts[0].frames;
  const U = layout.units;
  const res = out ?? new Float32Array(frames * U);
  if (res.length !== frames * U) throw new SyncactError('ENGINE_BAD_INPUT', `unit series: output has length ${res.length}, expected ${frames * U}`);
  acts.forEach((a, l) => {
    const want = layout.layers[l];
    if (a.layer !== want.name || a.channels !== want.channels || a.frames !== frames || a.values.length !== frames * a.channels) {
      throw new SyncactError(
        'ENGINE_BAD_INPUT',
        `unit series: layer ${l} came back as "${a.layer}" (${a.frames} frames × ${a.channels} channels, ${a.values.length} values), expected "${want.name}" (${frames} × ${want.channels})`,
      );
    }
    const off = layout.offsets[l];
    const C = a.channels;
    for (let f = 0; f < frames; f++) res.set(a.values.subarray(f * C, (f + 1) * C), f * U + off);
  });
  return res;
}

export interface UnitSeriesOptions {
  /** The tapped layers, in the extractor's order (`extractor.layers`). */
  layers: readonly LayerInfo[];
  /** Repetition time in seconds. */
  tr: number;
  /** Movie time (s) at the start of volume 0; frames before it are not used. Default 0. */
  onset?: number;
  /** Microtime bins per TR (SPM's fMRI_T), default 16. */
  binsPerTr?: number;
  /** Where in each TR the response is read, as a fraction of the TR in [0, 1): default 0.5 (bin binsPerTr/2). */
  hrfReference?: number;
  /** Add the HRF's temporal derivative: responses then hold 2 × units values (kernel-major). */
  derivative?: boolean;
  /** Overrides of SPM's HRF parameters. */
  hrfParams?: Partial<HrfParams>;
}

/** One completed TR. */
export interface UnitTr {
  /** TR index (0-based). */
  tr: number;
  /** The TR's microtime bins, binsPerTr × units, row-major. */
  bins: Float64Array;
  /** HRF responses at the reference bin, kernel-major: responses[kk·units + u]. */
  responses: Float64Array;
}

const KIND = 'unitSeries';
const VERSION = 1;

/**
 * The pure, per-TR assembly: push frames (in time order) with `pushFrames`, take each TR
 * once its frames are all in (`completeTrs`) with `takeTr`. A TR is complete as soon as a
 * frame of a later TR has been pushed; at the end of the movie the caller takes the
 * remaining TRs (their empty bins hold the last frame's values).
 */
export class UnitSeries implements Estimator {
  readonly layout: UnitLayout;
  readonly tr: number;
  readonly onset: number;
  readonly binsPerTr: number;
  readonly referenceBin: number;
  readonly kernelCount: number;
  private readonly binner: MicrotimeBinner;
  private readonly convolver: HrfConvolver;
  private readonly dt: number;
  /** The highest TR a pushed frame fell in (0 before any frame): every TR before it is complete. */
  private seen = 0;

  constructor(options: UnitSeriesOptions) {
    this.layout = new UnitLayout(options.layers);
    const T = options.binsPerTr ?? DEFAULT_MICROTIME_BINS;
    const frac = options.hrfReference ?? 0.5;
    if (!(frac >= 0 && frac < 1)) throw new SyncactError('ENGINE_BAD_INPUT', `unit series: hrfReference must be in [0, 1), got ${frac}`);
    const onset = options.onset ?? 0;
    if (!Number.isFinite(onset)) throw new SyncactError('ENGINE_BAD_INPUT', `unit series: onset must be finite, got ${onset}`);
    this.onset = onset;
    this.binner = new MicrotimeBinner({ tr: options.tr, binsPerTr: T, channels: this.layout.units });
    this.tr = options.tr;
    this.binsPerTr = T;
    this.referenceBin = Math.floor(frac * T);
    const kernels = microtimeHrfKernels({ tr: options.tr, binsPerTr: T, derivative: options.derivative ?? false, params: options.hrfParams });
    this.convolver = new HrfConvolver({ channels: this.layout.units, kernels, binsPerTr: T, referenceBin: this.referenceBin });
    this.kernelCount = kernels.length;
    this.dt = options.tr / T;
  }

  get units(): number {
    return this.layout.units;
  }

  /** The TR the next `takeTr` returns. */
  get nextTr(): number {
    return this.binner.nextTr;
  }

  /** TRs whose frames are all in: `takeTr` may be called while nextTr < completeTrs. */
  get completeTrs(): number {
    return this.seen;
  }

  /** Frames not used: before the onset, or late (their TR was already taken). */
  get droppedFrames(): number {
    return this.binner.droppedFrames;
  }

  /**
   * Pushes a batch of frames: `times[f]` is frame f's movie time in seconds, `acts` the
   * extractor's output for the batch (each layer frames × channels).
   */
  pushFrames(times: ArrayLike<number>, acts: readonly LayerActivations[]): void {
    const flat = flattenActivations(this.layout, acts);
    this.pushUnitFrames(times, flat);
  }

  /** Same as `pushFrames`, from a frames × units matrix already in layout order. */
  pushUnitFrames(times: ArrayLike<number>, values: Float32Array | Float64Array): void {
    const U = this.layout.units;
    if (values.length !== times.length * U) {
      throw new SyncactError('ENGINE_BAD_INPUT', `unit series: ${times.length} frame times but ${values.length / U} frames of activations`);
    }
    for (let f = 0; f < times.length; f++) this.pushFrame(times[f], values.subarray(f * U, (f + 1) * U));
  }

  /** Pushes one frame of all units (layout order) at movie time `time`. */
  pushFrame(time: number, values: Float32Array | Float64Array): void {
    // Frames on a bin edge start that bin (binOfTime); same convention as the ground truth
    // of server/synth/drives.ts.
    this.binner.pushFrame(time - this.onset, values);
    const k = this.trOf(time);
    if (k > this.seen) this.seen = k;
  }

  /**
   * The TR a frame at movie time `time` belongs to, −1 before the onset. The binner's own
   * assignment (via the global bin index), so "complete" agrees with where the frame was
   * binned even at a TR edge.
   */
  trOf(time: number): number {
    const t = time - this.onset;
    return t >= 0 ? Math.floor(binOfTime(t, this.dt) / this.binsPerTr) : -1;
  }

  /** Closes the next TR and returns its bins and responses (fresh arrays). */
  takeTr(): UnitTr {
    const k = this.binner.nextTr;
    const bins = this.binner.takeTr(k);
    const responses = this.convolver.pushTr(bins);
    if (this.seen < k + 1) this.seen = k + 1;
    return { tr: k, bins, responses };
  }

  /** Captures binner and convolver; frames pushed for TRs not yet taken must be re-fed after a restore. */
  snapshot(): EstimatorSnapshot {
    const b = this.binner.snapshot();
    const c = this.convolver.snapshot();
    return {
      kind: KIND,
      version: VERSION,
      scalars: {
        units: this.units,
        kernelCount: this.kernelCount,
        binnerVersion: b.version,
        convolverVersion: c.version,
        ...prefixed('binner.', b.scalars),
        ...prefixed('convolver.', c.scalars),
      },
      arrays: { ...prefixed('binner.', b.arrays), ...prefixed('convolver.', c.arrays) },
    };
  }

  restore(s: EstimatorSnapshot): void {
    if (s.kind !== KIND || s.version !== VERSION) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `unit series: cannot restore a ${s.kind} v${s.version} snapshot`);
    }
    if (s.scalars.units !== this.units || s.scalars.kernelCount !== this.kernelCount) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', 'unit series: snapshot was taken with other layers or HRF kernels');
    }
    this.binner.restore({ kind: 'microtime', version: s.scalars.binnerVersion, scalars: unprefixed('binner.', s.scalars), arrays: unprefixed('binner.', s.arrays) });
    this.convolver.restore({ kind: 'hrfConvolver', version: s.scalars.convolverVersion, scalars: unprefixed('convolver.', s.scalars), arrays: unprefixed('convolver.', s.arrays) });
    // Frames pushed ahead of the snapshot's TR are not part of the state (the binner drops
    // them), so neither is having seen them: the restored series waits for those frames again.
    this.seen = this.binner.nextTr;
  }
}

function prefixed<T>(p: string, o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v]));
}

function unprefixed<T>(p: string, o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => k.startsWith(p)).map(([k, v]) => [k.slice(p.length), v]));
}

// ---------------------------------------------------------------------------------------
// Frames: where they come from and which are used.

/** A movie as the drivers see it; `ProceduralMovie` of server/synth is one. */
export interface FrameSource {
  width: number;
  height: number;
  frameCount: number;
  fps: number;
  /** Frame i as RGB bytes (width·height·3), synchronously or not. */
  frame(i: number): Uint8Array | Promise<Uint8Array>;
  /** Movie time of frame i in seconds; default i / fps. */
  time?(i: number): number;
}

export function frameTime(source: Pick<FrameSource, 'fps' | 'time'>, i: number): number {
  return source.time ? source.time(i) : i / source.fps;
}

/**
 * A FrameSource over a decoder that streams frames forward (ffmpeg, `MovieFile.frames`):
 * `frame(i)` reads on from the current position, skipping frames not asked for; asking for
 * an earlier frame restarts the stream at it. The drivers ask in increasing order, so a whole
 * movie costs one decode pass, subsampled or not. `close()` ends the stream.
 * @param open starts a stream of frames from frame `start` on, in order
 */
export function forwardFrameSource(
  info: { width: number; height: number; fps: number; frameCount: number },
  open: (start: number) => AsyncIterable<{ index: number; rgb: Uint8Array }>,
): FrameSource & { close(): Promise<void> } {
  let it: AsyncIterator<{ index: number; rgb: Uint8Array }> | null = null;
  /** Index of the frame the open stream yields next. */
  let pos = 0;
  const close = async () => {
    const old = it;
    it = null;
    await old?.return?.();
  };
  return {
    width: info.width,
    height: info.height,
    fps: info.fps,
    frameCount: info.frameCount,
    close,
    async frame(i: number): Promise<Uint8Array> {
      if (!Number.isInteger(i) || i < 0 || i >= info.frameCount) {
        throw new SyncactError('ENGINE_BAD_INPUT', `frame source: frame ${i} is outside 0..${info.frameCount - 1}`);
      }
      if (!it || i < pos) {
        await close();
        it = open(i)[Symbol.asyncIterator]();
        pos = i;
      }
      for (;;) {
        const r = await it.next();
        if (r.done) {
          it = null;
          throw new SyncactError('ENGINE_BAD_INPUT', `frame source: the stream ended before frame ${i} (the movie has ${pos} frames or fewer)`);
        }
        pos = r.value.index + 1;
        if (r.value.index === i) return r.value.rgb;
        if (r.value.index > i) throw new SyncactError('ENGINE_BAD_INPUT', `frame source: the stream went to frame ${r.value.index} without frame ${i}`);
      }
    },
  };
}

export interface FrameSampling {
  /** Repetition time (s): groups frames into TRs. */
  tr: number;
  /** Movie time at the start of volume 0, default 0. */
  onset?: number;
  /**
   * Frames kept per TR, spread evenly over the TR's frames (by rank: the j-th of n kept
   * frames is the floor((j + 0.5)·m/n)-th of the TR's m frames). Absent: every frame.
   */
  framesPerTr?: number;
}

/**
 * The movie frames the CNN sees, in time order. Every frame by default; with
 * `framesPerTr`, that many per TR, and none before the onset (they would be dropped).
 */
export function selectFrames(source: Pick<FrameSource, 'frameCount' | 'fps' | 'time'>, sampling: FrameSampling): Int32Array {
  const n = source.frameCount;
  const per = sampling.framesPerTr;
  if (per === undefined) return Int32Array.from({ length: n }, (_, i) => i);
  if (!Number.isInteger(per) || per < 1) throw new SyncactError('ENGINE_BAD_INPUT', `frame sampling: framesPerTr must be a positive integer, got ${per}`);
  if (!(sampling.tr > 0)) throw new SyncactError('ENGINE_BAD_INPUT', `frame sampling: TR must be positive, got ${sampling.tr}`);
  const onset = sampling.onset ?? 0;
  const out: number[] = [];
  let group: number[] = [];
  let groupTr = -1;
  const flush = () => {
    const m = group.length;
    if (m <= per) out.push(...group);
    else for (let j = 0; j < per; j++) out.push(group[Math.floor(((j + 0.5) * m) / per)]);
    group = [];
  };
  for (let i = 0; i < n; i++) {
    // The same edge convention as UnitSeries.pushFrame: a frame at a TR's start is in that TR.
    const t = frameTime(source, i) - onset;
    if (t < 0) continue;
    const k = binOfTime(t, sampling.tr);
    if (k !== groupTr) {
      flush();
      groupTr = k;
    }
    group.push(i);
  }
  flush();
  return Int32Array.from(out);
}

/** A canonical string for a sampling, for cache keys: "all", or "framesPerTr=4;tr=1;onset=0". */
export function samplingKey(sampling: FrameSampling): string {
  if (sampling.framesPerTr === undefined) return 'all';
  return `framesPerTr=${sampling.framesPerTr};tr=${sampling.tr};onset=${sampling.onset ?? 0}`;
}

// ---------------------------------------------------------------------------------------
// The async drivers.

/** A whole movie's activations: the unit of the feature cache. */
export interface ActivationMatrix {
  layers: LayerInfo[];
  /** Movie frame index of each row. */
  frameIndices: Int32Array;
  /** Movie time (s) of each row. */
  frameTimes: Float64Array;
  /** frames × units, row-major, units in layout order. */
  values: Float32Array;
}

export interface ExtractOptions {
  /** Which movie frames (default: every frame, `selectFrames` with no subsampling). */
  frames?: Int32Array;
  /** Frames per `extractor.extract` call, default 8. */
  batchSize?: number;
  /** Called after each batch with the frames done so far. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Runs the extractor over the movie's frames in batches of B and returns every frame's
 * activations (frames × units float32: 7200 frames × 3000 units is 86 MB, which is the
 * memory this costs; the per-batch work is bounded by B).
 */
export async function extractActivations(extractor: FeatureExtractor, source: FrameSource, options: ExtractOptions = {}): Promise<ActivationMatrix> {
  const layout = new UnitLayout(extractor.layers);
  const frames = options.frames ?? selectFrames(source, { tr: 1 });
  const values = new Float32Array(frames.length * layout.units);
  await forEachBatch(extractor, source, layout, frames, options, (start, flat) => values.set(flat, start * layout.units));
  return {
    layers: layout.layers.map((l) => ({ ...l })),
    frameIndices: Int32Array.from(frames),
    frameTimes: Float64Array.from(frames, (i) => frameTime(source, i)),
    values,
  };
}

export interface StreamOptions extends Omit<UnitSeriesOptions, 'layers'>, Omit<ExtractOptions, 'frames'> {
  /** Frames kept per TR (absent: every frame). */
  framesPerTr?: number;
  /** TRs to produce; default: up to the TR of the last frame. */
  nTrs?: number;
  /** Called with each TR as soon as it is complete. */
  onTr?: (tr: UnitTr) => void;
}

export interface UnitResponses {
  layout: UnitLayout;
  kernelCount: number;
  /** Per TR, kernelCount × units responses (kernel-major). */
  responses: Float64Array[];
}

/**
 * The streaming driver: frames in batches of B → extractor → `UnitSeries`, emitting each TR
 * (`onTr`) as soon as a frame of a later TR has been seen, so a replay can start before the
 * whole movie has gone through the CNN.
 */
export async function streamUnitResponses(extractor: FeatureExtractor, source: FrameSource, options: StreamOptions): Promise<UnitResponses> {
  const series = new UnitSeries({ ...options, layers: extractor.layers });
  const selected = selectFrames(source, { tr: options.tr, onset: options.onset, framesPerTr: options.framesPerTr });
  // Only frames of the run go through the CNN: none before the onset, none after TR nTrs − 1.
  const frames = selected.filter((i) => {
    const k = series.trOf(frameTime(source, i));
    return k >= 0 && (options.nTrs === undefined || k < options.nTrs);
  });
  const times = Float64Array.from(frames, (i) => frameTime(source, i));
  const responses: Float64Array[] = [];
  const nTrs = options.nTrs ?? defaultTrCount(times, options.tr, options.onset ?? 0);
  const take = () => {
    const t = series.takeTr();
    responses.push(t.responses);
    options.onTr?.(t);
  };
  await forEachBatch(extractor, source, series.layout, frames, options, (start, flat, count) => {
    series.pushUnitFrames(times.subarray(start, start + count), flat);
    while (series.nextTr < Math.min(series.completeTrs, nTrs)) take();
  });
  while (series.nextTr < nTrs) take();
  return { layout: series.layout, kernelCount: series.kernelCount, responses };
}

/**
 * The same responses from activations already computed (the feature cache): pure and
 * synchronous. Every row is used: a subsampled movie is cached as its sampled frames.
 */
export function responsesFromActivations(acts: ActivationMatrix, options: Omit<UnitSeriesOptions, 'layers'> & { nTrs?: number }): UnitResponses {
  const series = new UnitSeries({ ...options, layers: acts.layers });
  const U = series.units;
  const F = acts.frameTimes.length;
  if (acts.values.length !== F * U) {
    throw new SyncactError('ENGINE_BAD_INPUT', `unit series: activation matrix has ${acts.values.length} values, expected ${F} frames × ${U} units`);
  }
  const nTrs = options.nTrs ?? defaultTrCount(acts.frameTimes, options.tr, options.onset ?? 0);
  const responses: Float64Array[] = [];
  for (let f = 0; f < F; f++) {
    // Frames past the run would only pile up in the binner's pending TRs.
    if (series.trOf(acts.frameTimes[f]) >= nTrs) continue;
    series.pushFrame(acts.frameTimes[f], acts.values.subarray(f * U, (f + 1) * U));
    while (series.nextTr < Math.min(series.completeTrs, nTrs)) responses.push(series.takeTr().responses);
  }
  while (series.nextTr < nTrs) responses.push(series.takeTr().responses);
  return { layout: series.layout, kernelCount: series.kernelCount, responses };
}

/** TRs up to and including the one holding the last frame (0 when no frame is past the onset). */
function defaultTrCount(times: Float64Array, tr: number, onset: number): number {
  if (times.length === 0) return 0;
  const t = times[times.length - 1] - onset;
  return t < 0 ? 0 : binOfTime(t, tr) + 1;
}

async function forEachBatch(
  extractor: FeatureExtractor,
  source: FrameSource,
  layout: UnitLayout,
  frames: Int32Array,
  options: ExtractOptions,
  sink: (start: number, flat: Float32Array, count: number) => void,
): Promise<void> {
  const B = options.batchSize ?? 8;
  if (!Number.isInteger(B) || B < 1) throw new SyncactError('ENGINE_BAD_INPUT', `unit series: batchSize must be a positive integer, got ${B}`);
  for (let start = 0; start < frames.length; start += B) {
    const count = Math.min(B, frames.length - start);
    const batch: Uint8Array[] = [];
    for (let j = 0; j < count; j++) batch.push(await source.frame(frames[start + j]));
    const acts = await extractor.extract({ width: source.width, height: source.height, frames: batch });
    sink(start, flattenActivations(layout, acts), count);
    options.onProgress?.(start + count, frames.length);
  }
}
