"""numpy twins of bench/engine_small.bench.ts, timed the same way (median per TR after a
warm-up), so the table shows engine.X_ms beside numpy.X_ms measured in the same run.
Prints one JSON object {figure: ms}. Run by the bench with /usr/bin/python3.

- numpy.hrf_update_ms: 4096 channels, 513-tap kernel, 16 microtime bins per TR; the history
  is written twice into a doubled ring so the last L samples are one contiguous slice and
  the read-out is one BLAS matrix-vector product (the fastest plain-numpy way).
- numpy.cka_update_ms: the same co-moment recursion with np.outer (full p×p and q×q).
- numpy.standardize_update_ms: vectorised Welford update + transform of 200 k voxels.
"""
import json
import time

import numpy as np


def median_ms(warmup, reps, f):
    for i in range(warmup):
        f(i)
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        f(warmup + i)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def hrf_figure():
    C, T, L = 4096, 16, 513
    rng = np.random.default_rng(1)
    bins = rng.standard_normal((8, T, C))
    h_rev = rng.random(L)[::-1].copy()
    cap = L + T
    buf = np.zeros((2 * cap, C))
    state = {"m": 0}

    def step(i):
        m0 = state["m"]
        for b in range(T):
            r = (m0 + b) % cap
            buf[r] = bins[i % 8, b]
            buf[r + cap] = bins[i % 8, b]
        m = m0 + T // 2
        state["m"] = m0 + T
        start = (m - (L - 1)) % cap
        return h_rev @ buf[start:start + L]

    return median_ms(40, 40, step)


def cka_figure():
    p, q = 512, 400
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((16, p))
    ys = rng.standard_normal((16, q))
    s = {"n": 0, "mx": np.zeros(p), "my": np.zeros(q), "cxx": np.zeros((p, p)), "cyy": np.zeros((q, q)), "cxy": np.zeros((p, q))}

    def step(i):
        x, y = xs[i % 16], ys[i % 16]
        s["n"] += 1
        dx = x - s["mx"]
        s["mx"] += dx / s["n"]
        dy = y - s["my"]
        s["my"] += dy / s["n"]
        ex, ey = x - s["mx"], y - s["my"]
        s["cxx"] += np.outer(dx, ex)
        s["cyy"] += np.outer(dy, ey)
        s["cxy"] += np.outer(dx, ey)

    return median_ms(10, 60, step)


def standardize_figure():
    V = 200_000
    rng = np.random.default_rng(4)
    ys = [rng.standard_normal(V), rng.standard_normal(V)]
    n = np.zeros(V)
    mu = np.zeros(V)
    m2 = np.zeros(V)

    def step(i):
        y = ys[i % 2]
        ok = ~np.isnan(y)
        n[ok] += 1
        d = np.where(ok, y - mu, 0.0)
        mu[ok] += d[ok] / n[ok]
        m2[ok] += d[ok] * (y[ok] - mu[ok])
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.sqrt(m2 / (n - 1))
            return np.where(sd < np.finfo(float).eps, 0.0, (y - mu) / sd)

    return median_ms(5, 30, step)


if __name__ == "__main__":
    print(json.dumps({
        "numpy.hrf_update_ms": hrf_figure(),
        "numpy.cka_update_ms": cka_figure(),
        "numpy.standardize_update_ms": standardize_figure(),
    }))
