"""numpy twin of bench/dictionary.bench.ts: online dictionary learning (Mairal et al.
2010) at V = 370,000 voxels, K = 20 atoms, dictionary updated every m = 5 TRs, on the
same kind of volumes (12 networks each over a contiguous 3 % of the voxels, Gaussian x
Bernoulli(0.4) amplitudes, unit noise), timed the same way: 60 warm-up TRs, then the
median over 12 cycles of 5 TRs of the cycle time / 5. Prints {"numpy.dictionary_update_ms": ms}.

Per TR, as server/engine/dictionaryLearning.ts does it, in the plain vectorised numpy a
user would write (dense matrices, BLAS products):
  c = D x, with G = D D' (kept between dictionary updates) scaled to unit-norm atoms; Lasso by coordinate descent (K x K);
  A += a a'; B[nz] += a[nz] x'  (only non-zero codes);
  every m TRs, for each atom j: u = (B_j - A[:, j]' D + A_jj D_j) / A_jj, projected onto
  the elastic-net ball (1 - r)|d|^2 + r|d|_1 <= 1 (r = 0.5) by Michelot's iterations with
  boolean masks; then G = D D'.
The first K TRs fill the atoms from residuals as the engine does; atom restarts, NaN
handling and sparse supports are left out (they cost nothing on these volumes).
"""
import json
import time

import numpy as np

V, K, M = 370_000, 20, 5
NETWORKS = 12
WARMUP, TIMED = 60, 60
LAM, R = 1.0, 0.5

rng = np.random.default_rng(1)
span = int(V * 0.03)
starts = rng.integers(0, V - span, NETWORKS)
noise = rng.standard_normal(V + 4099)
volumes = []
for t in range(WARMUP + TIMED):
    x = noise[(s := int(rng.integers(0, 4096))):s + V].copy()
    for n in range(NETWORKS):
        if rng.random() < 0.4:
            x[starts[n]:starts[n] + span] += 3 * rng.standard_normal()
    volumes.append(x)

D = np.zeros((K, V))
A = np.zeros((K, K))
B = np.zeros((K, V))
G = np.zeros((K, K))
filled = 0
count = 0


def lasso(G, c, lam):
    a = np.zeros(len(c))
    for _ in range(10_000):
        delta = 0.0
        for j in range(len(c)):
            if G[j, j] <= 0:
                continue
            z = c[j] - G[j] @ a + G[j, j] * a[j]
            new = np.sign(z) * max(abs(z) - lam, 0.0) / G[j, j]
            delta = max(delta, abs(new - a[j]))
            a[j] = new
        if delta <= 1e-12 * (1 + np.abs(a).max()):
            break
    return a


def project(u, r):
    c = 2 * (1 - r) / r
    a = np.abs(u)
    if (1 - r) * (a @ a) + r * a.sum() <= 1:
        return u
    keep = a > 0
    while True:
        act = a[keep]
        n, s1, s2 = act.size, act.sum(), act @ act
        qa, qb, qk = (1 - r) * n + c * c, r * n + 2 * c, (1 - r) * s2 + r * s1 - 1
        theta = 2 * qk / (qb + np.sqrt(qb * qb + 4 * qa * qk))
        new = a > theta
        if new.sum() == n:
            break
        keep = new
    return np.sign(u) * np.maximum(a - theta, 0) / (1 + c * theta)


def step(x):
    global filled, count, G
    norms = np.sqrt(np.diag(G))
    inv = np.where(norms > 0, 1 / np.where(norms > 0, norms, 1), 0)
    c = D @ x
    a = lasso(G * np.outer(inv, inv), c * inv, LAM) * inv
    A[:] += np.outer(a, a)
    nz = np.flatnonzero(a)
    B[nz] += np.outer(a[nz], x)
    count += 1
    if filled < K:
        res = x - a @ D
        D[filled] = project(res / np.linalg.norm(res), R)
        filled += 1
        G = D @ D.T
    if count >= K and (count - K) % M == 0:
        for j in range(K):
            ajj = A[j, j]
            if ajj <= 0:
                continue
            u = (B[j] - A[:, j] @ D) / ajj + D[j]
            D[j] = project(u, R)
        G = D @ D.T


for t in range(WARMUP):
    step(volumes[t])
cycles = []
for t in range(WARMUP, WARMUP + TIMED, M):
    t0 = time.perf_counter()
    for i in range(t, t + M):
        step(volumes[i])
    cycles.append((time.perf_counter() - t0) * 1000.0 / M)
print(json.dumps({"numpy.dictionary_update_ms": float(np.median(cycles))}))
