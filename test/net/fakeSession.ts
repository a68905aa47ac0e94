/**
 * A stand-in for the pipeline until server/streams exists: a LiveSession whose states
 * are pushed by the test through an RxJS Subject. Everything it emits is made from a seed
 * so that what a client receives can be compared with what was published.
 */
import { Subject } from 'rxjs';
import type { ControlCommand, MapKind } from '../../protocol/messages.ts';
import type { AnnotationRow, BrainMap, SessionInfo, TrState } from '../../protocol/state.ts';
import type { LiveSession } from '../../server/net/liveSession.ts';
import { createRng } from '../../server/engine/random.ts';

export interface FakeSizes {
  units: number;
  features: number;
  dims: [number, number, number];
  frame: [number, number] | null;
}

export const SMALL: FakeSizes = { units: 6, features: 5, dims: [6, 5, 4], frame: [4, 6] };

export function makeInfo(sizes: FakeSizes = SMALL): SessionInfo {
  const [nx, ny, nz] = sizes.dims;
  const mask: number[] = [];
  for (let g = 0; g < nx * ny * nz; g++) if (g % 3 !== 1) mask.push(g);
  const layers = [
    { name: 'conv1', channels: Math.ceil(sizes.units / 2) },
    { name: 'conv2', channels: sizes.units - Math.ceil(sizes.units / 2) },
  ];
  return {
    version: 1,
    name: 'fake',
    tr: 1,
    trCount: 10_000,
    onset: 0,
    model: { id: 'fake', backend: 'none' },
    layers,
    units: Array.from({ length: sizes.units }, (_, i) => ({
      index: i,
      layer: i < layers[0].channels ? 'conv1' : 'conv2',
      channel: i < layers[0].channels ? i : i - layers[0].channels,
    })),
    features: Array.from({ length: sizes.features }, (_, i) => `net${i}`),
    grid: { dims: sizes.dims, affine: [[2, 0, 0, -10], [0, 2, 0, -12], [0, 0, 2, -8], [0, 0, 0, 1]] },
    maskIndices: Uint32Array.from(mask),
    background: Float32Array.from({ length: nx * ny * nz }, (_, g) => g / 10),
    regressors: ['u0', 'u1'],
  };
}

/** The state for TR `tr`, deterministic in (tr, sizes). */
export function makeState(tr: number, sizes: FakeSizes = SMALL): TrState {
  const rng = createRng(1000 + tr);
  const U = sizes.units;
  const F = sizes.features;
  const coupling = Float32Array.from({ length: U * F }, () => rng.uniform() * 2 - 1);
  const couplingQ = Float32Array.from({ length: U * F }, () => rng.uniform());
  couplingQ[0] = NaN;
  return {
    tr,
    time: tr * 1,
    clock: { playing: true, speed: 'max', loop: false },
    unitResponses: Float32Array.from({ length: U }, () => rng.normal()),
    features: Float32Array.from({ length: F }, () => rng.normal()),
    coupling,
    couplingQ,
    significant: Uint8Array.from(couplingQ, (q) => (q < 0.05 ? 1 : 0)),
    cka: Float32Array.from([tr === 0 ? NaN : rng.uniform(), rng.uniform()]),
    frame: sizes.frame
      ? { height: sizes.frame[0], width: sizes.frame[1], rgb: Uint8Array.from({ length: sizes.frame[0] * sizes.frame[1] * 3 }, () => rng.int(256)) }
      : null,
    telemetry: { stageMs: { cnn: 1 + (tr % 3), glm: 0.5 }, trsPerSecond: 20, lagMs: 0 },
  };
}

export class FakeSession implements LiveSession {
  readonly states = new Subject<TrState>();
  readonly annotations = new Subject<AnnotationRow[]>();
  readonly state$ = this.states.asObservable();
  readonly annotations$ = this.annotations.asObservable();
  readonly commands: ControlCommand[] = [];
  latestTr = -1;

  constructor(
    readonly info: SessionInfo = makeInfo(),
    private readonly sizes: FakeSizes = SMALL,
  ) {}

  /** Publishes TR `tr` (as the pipeline would after processing it). */
  emit(tr: number): TrState {
    const s = makeState(tr, this.sizes);
    this.latestTr = tr;
    this.states.next(s);
    return s;
  }

  map(kind: MapKind, index: number): BrainMap | undefined {
    if (this.latestTr < 0) return undefined;
    const n = this.info.maskIndices.length;
    const values = Float32Array.from({ length: n }, (_, m) => (kind === 'network' ? -1 : 1) * (index * 1000 + m) + this.latestTr / 1000);
    return { tr: this.latestTr, kind, index, values };
  }

  control(command: ControlCommand): void {
    this.commands.push(command);
  }
}
