"""numpy twin of bench/glm.bench.ts: one TR of the voxelwise GLM by QR-based recursive
least squares with the rotations shared by all voxels, at V = 200,000 voxels and P = 69
columns (64 units, then intercept + 4 cosine drifts), float64 state, timed the same way
(median per TR after warm-up). Prints one JSON object {figure: ms}. Run by the bench
with /usr/bin/python3 (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from its
environment).

Per TR, exactly as server/engine/glm.ts: the Givens rotations (c_i, s_i) that fold the
row x into √λ·R (P×P, a Python loop over P: negligible either way), then per voxel, for
i = 0..P−1: (z_i, w) ← (c_i·√λz_i + s_i·w, c_i·w − s_i·√λz_i) with w starting at y;
rss = λ·rss + w²; syy = λ·syy + y².

- numpy.glm_update_plain_ms: the plain vectorised numpy a user would write (one column of Z
  at a time, Z Fortran-ordered so that each column is contiguous).
- numpy.glm_update_blas_ms: the same rotations as in-place BLAS drot calls
  (scipy.linalg.blas), i.e. the fastest this machine's BLAS can do them; NaN without scipy.
- numpy.glm_rls_update_ms: the textbook RLS step the engine used before (e = y − Bx,
  B += e gᵀ with a shared gain), kept for comparison: fewer flops, but it carries the
  betas (see glm.ts for why the engine no longer does).
"""
import json
import math
import time

import numpy as np

V, K = 200_000, 64
P = K + 5
RUN = 920
WARMUP, TIMED = 5, 30
lam = 1.0

rng = np.random.default_rng(1)
t_all = np.arange(RUN)
X = np.empty((RUN, P))
units = np.zeros(K)
for t in range(RUN):
    units = 0.8 * units + rng.standard_normal(K)
    X[t, :K] = units
X[:, K] = 1.0
for d in range(1, 5):
    X[:, K + d] = np.cos(np.pi * d * (t_all + 0.5) / RUN)
noise = rng.standard_normal(V + 4099).astype(np.float32)
volumes = [1000.0 + noise[s:s + V] for s in rng.integers(0, 4096, 16)]

# The shared factor after a run-in; only the per-TR step is timed.
start = 400
R = np.linalg.qr(X[:start], mode="r")
rss = np.ones(V)
syy = np.ones(V)


def rotations(x):
    """Folds x into √λ·R (in place) and returns the rotations (c, s)."""
    global R
    R *= math.sqrt(lam)
    w = x.copy()
    c = np.ones(P)
    s = np.zeros(P)
    for i in range(P):
        h = math.hypot(R[i, i], w[i])
        if w[i] == 0.0 or h == 0.0:
            continue
        c[i], s[i] = R[i, i] / h, w[i] / h
        R[i, i] = h
        w[i] = 0.0
        Ri = R[i, i + 1:].copy()
        R[i, i + 1:] = c[i] * Ri + s[i] * w[i + 1:]
        w[i + 1:] = c[i] * w[i + 1:] - s[i] * Ri
    return c, s


def step_numpy(Z, k):
    global rss, syy
    x = X[start + k]
    y = volumes[k % 16].astype(np.float64)
    c, s = rotations(x)
    root = math.sqrt(lam)
    w = y.copy()
    for i in range(P):
        zi = root * Z[:, i]
        Z[:, i] = c[i] * zi + s[i] * w
        w = c[i] * w - s[i] * zi
    rss = lam * rss + w * w
    syy = lam * syy + y * y


def median_ms(step, Z):
    for k in range(WARMUP):
        step(Z, k)
    times = []
    for k in range(WARMUP, WARMUP + TIMED):
        t0 = time.perf_counter()
        step(Z, k)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


out = {}
Z = np.zeros((V, P), order="F")
out["numpy.glm_update_plain_ms"] = median_ms(step_numpy, Z)

try:
    from scipy.linalg import blas

    def step_blas(Z, k):
        global rss, syy
        x = X[start + k]
        y = volumes[k % 16].astype(np.float64)
        c, s = rotations(x)
        if lam != 1.0:
            Z *= math.sqrt(lam)
        w = y.copy()
        for i in range(P):
            # drot: (x, y) ← (c·x + s·y, c·y − s·x), in place on Z's column and w.
            blas.drot(Z[:, i], w, c[i], s[i], overwrite_x=1, overwrite_y=1)
        rss = lam * rss + w * w
        syy = lam * syy + y * y

    out["numpy.glm_update_blas_ms"] = median_ms(step_blas, Z)
except ImportError:
    out["numpy.glm_update_blas_ms"] = float("nan")
del Z

# The previous engine's RLS step, for comparison.
L = np.linalg.cholesky(X[:start].T @ X[:start])
phi = X[:start].T @ X[:start]


def step_rls(B, k):
    global rss, syy, phi, L
    x = X[start + k]
    y = volumes[k % 16]
    u = np.linalg.solve(L.T, np.linalg.solve(L, x))
    q = float(x @ u)
    g, cf = u / (lam + q), lam / (lam + q)
    e = y - B @ x
    B += np.outer(e, g)
    rss = lam * rss + cf * e * e
    syy = lam * syy + y.astype(np.float64) ** 2
    phi = lam * phi + np.outer(x, x)
    L = np.linalg.cholesky(phi)


B = np.zeros((V, P))
out["numpy.glm_rls_update_ms"] = median_ms(step_rls, B)
del B

print(json.dumps(out))
