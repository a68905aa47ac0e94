/**
 * Planted functional networks for the dictionary-learning tests: K smooth blobs inside a
 * spherical mask on a 16³ grid (about 1,700 voxels), each driven by an independent
 * sparse time course (zero with probability 0.6, else 3·N(0, 1)), plus white noise:
 * x_t = Σ_j map_j · s_j(t) + noise. Seeded and deterministic.
 */
import { createRng } from '../../server/engine/random.ts';

export interface PlantedNetworks {
  voxels: number;
  maps: Float64Array[];
  series: Float64Array[];
  volumes: Float32Array[];
}

export function plantedNetworks(seed: number, networks: number, trs: number, noise: number): PlantedNetworks {
  const n = 16;
  const c = (n - 1) / 2;
  const coords: [number, number, number][] = [];
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      for (let k = 0; k < n; k++) if ((i - c) ** 2 + (j - c) ** 2 + (k - c) ** 2 <= 7.5 ** 2) coords.push([i, j, k]);
  const V = coords.length;
  const rng = createRng(seed);
  const centres: [number, number, number][] = [];
  while (centres.length < networks) {
    const p = coords[rng.int(V)];
    if (centres.every((q) => Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]) > 6)) centres.push(p);
  }
  // Gaussian blobs (σ = 1.5 voxels) cut at 5 % of their peak: sparse, smooth maps.
  const maps = centres.map((q) => {
    const m = new Float64Array(V);
    coords.forEach((p, v) => {
      const g = Math.exp(-((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2) / (2 * 1.5 ** 2));
      m[v] = g > 0.05 ? g : 0;
    });
    return m;
  });
  const series = maps.map(() => new Float64Array(trs));
  const volumes: Float32Array[] = [];
  for (let t = 0; t < trs; t++) {
    const x = new Float32Array(V);
    for (let v = 0; v < V; v++) x[v] = noise * rng.normal();
    for (let j = 0; j < networks; j++) {
      const s = rng.uniform() < 0.4 ? 3 * rng.normal() : 0;
      series[j][t] = s;
      if (s !== 0) for (let v = 0; v < V; v++) x[v] += s * maps[j][v];
    }
    volumes.push(x);
  }
  return { voxels: V, maps, series, volumes };
}

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma;
    const y = b[i] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/**
 * Greedy one-to-one matching on |r|: repeatedly pairs the planted map and atom with the
 * largest |correlation| among those not yet paired. Returns, per planted map, the atom
 * and |r|.
 */
export function matchMaps(planted: Float64Array[], learned: ArrayLike<number>[]): { atom: number; r: number }[] {
  const r = planted.map((p) => learned.map((d) => Math.abs(pearson(p, d))));
  const out = planted.map(() => ({ atom: -1, r: 0 }));
  const usedAtoms = new Set<number>();
  for (let round = 0; round < Math.min(planted.length, learned.length); round++) {
    let best = -1;
    let bi = -1;
    let bj = -1;
    for (let i = 0; i < planted.length; i++) {
      if (out[i].atom >= 0) continue;
      for (let j = 0; j < learned.length; j++) if (!usedAtoms.has(j) && r[i][j] > best) [best, bi, bj] = [r[i][j], i, j];
    }
    out[bi] = { atom: bj, r: best };
    usedAtoms.add(bj);
  }
  return out;
}
