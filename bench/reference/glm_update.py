"""numpy twin of bench/glm.bench.ts: one TR of the voxelwise GLM by recursive least
squares with a gain shared by all voxels, at V = 200,000 voxels and P = 69 columns
(64 units + intercept + 4 cosine drifts), float64 state, timed the same way (median per
TR after warm-up). Prints one JSON object {figure: ms}. Run by the bench with
/usr/bin/python3 (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from its environment).

Per TR, exactly as server/engine/glm.ts: u = Φ⁻¹x from the Cholesky factor of Φ,
q = xᵀu, g = u/(λ+q); e = y − Bx; B += e gᵀ; rss = λ·rss + e²λ/(λ+q);
syy = λ·syy + y²; Φ = λΦ + xxᵀ and its new factor (LAPACK, P×P: negligible either way).

- numpy.glm_update_ms: the plain vectorised numpy a user would write
  (`B @ x`, `B += np.outer(e, g)`).
- numpy.glm_update_blas_ms: the same step with the two V×P passes as in-place BLAS
  calls (dgemv, dger through scipy.linalg.blas on a Fortran-ordered B), i.e. the fastest
  this machine's BLAS can do it; NaN without scipy.
"""
import json
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
X[:, 0] = 1.0
for d in range(1, 5):
    X[:, d] = np.cos(np.pi * d * (t_all + 0.5) / RUN)
units = np.zeros(K)
for t in range(RUN):
    units = 0.8 * units + rng.standard_normal(K)
    X[t, 5:] = units
noise = rng.standard_normal(V + 4099).astype(np.float32)
volumes = [1000.0 + noise[s:s + V] for s in rng.integers(0, 4096, 16)]

# State after the warm-up: the exact start is a one-off, only the per-TR step is timed.
start = 400  # well past the early stretch where the drifts are nearly collinear
phi = X[:start].T @ X[:start]
L = np.linalg.cholesky(phi)
rss = np.ones(V)
syy = np.ones(V)


def gain(x):
    u = np.linalg.solve(L.T, np.linalg.solve(L, x))  # triangular pair
    q = float(x @ u)
    return u / (lam + q), lam / (lam + q)


def finish(x):
    global phi, L
    phi = lam * phi + np.outer(x, x)
    L = np.linalg.cholesky(phi)


def step_numpy(B, k):
    global rss, syy
    x = X[start + k]
    y = volumes[k % 16]
    g, c = gain(x)
    e = y - B @ x
    B += np.outer(e, g)
    rss = lam * rss + c * e * e
    syy = lam * syy + y.astype(np.float64) ** 2
    finish(x)


def median_ms(step, B):
    for k in range(WARMUP):
        step(B, k)
    times = []
    for k in range(WARMUP, WARMUP + TIMED):
        t0 = time.perf_counter()
        step(B, k)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


out = {}
B = np.zeros((V, P))
out["numpy.glm_update_ms"] = median_ms(step_numpy, B)
del B

try:
    from scipy.linalg import blas

    def step_blas(B, k):
        global rss, syy
        x = X[start + k]
        y = volumes[k % 16]
        g, c = gain(x)
        e = y - blas.dgemv(1.0, B, x)
        blas.dger(1.0, e, g, a=B, overwrite_a=1)
        rss = lam * rss + c * e * e
        syy = lam * syy + y.astype(np.float64) ** 2
        finish(x)

    out["numpy.glm_update_blas_ms"] = median_ms(step_blas, np.zeros((V, P), order="F"))
except ImportError:
    out["numpy.glm_update_blas_ms"] = float("nan")

print(json.dumps(out))
