"""numpy reference for bench/sliding.bench.ts: the same per-TR work done as batch linear
algebra on the window (no running sums), at U=256, F=400, W=30, S=100 lagged nulls.

- numpy.sliding_update_nonull_ms: z-score the W×U and W×F windows, r = Zuᵀ·Zf / W.
- numpy.sliding_update_ms: the same plus the S lagged unit windows as one (S·U)×W by W×F
  product, per-pair p = (1 + #{|r_null| ≥ |r|}) / (S + 1) and BH across the pairs.

Prints one JSON object of figures (medians over TRs, ms). Run with /usr/bin/python3.
"""
import json
import sys
import time

import numpy as np

U, F, W, S = 256, 400, 30, 100
TIMED = 15


def zscore(x):
    x = x - x.mean(axis=0)
    sd = np.sqrt((x * x).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / sd


def bh(p):
    m = p.size
    order = np.argsort(p)
    q = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1)
    return out


def main():
    rng = np.random.default_rng(2)
    lags = np.sort(rng.choice(np.arange(W, W + 2 * S), size=S, replace=False))
    T = W + lags[-1] + TIMED + 1
    units = rng.standard_normal((T, U))
    feats = rng.standard_normal((T, F)) + 0.3 * units[:, np.arange(F) % U]
    nonull, full = [], []
    for k in range(T - TIMED, T):
        t0 = time.perf_counter()
        fz = zscore(feats[k - W + 1:k + 1])
        r = zscore(units[k - W + 1:k + 1]).T @ fz
        t1 = time.perf_counter()
        idx = (np.arange(k - W + 1, k + 1)[None, :] - lags[:, None])  # S×W
        lagged = units[idx]  # S×W×U
        lz = zscore(lagged.transpose(1, 0, 2).reshape(W, S * U))  # W×(S·U)
        rn = (lz.T @ fz).reshape(S, U, F)
        exceed = (np.abs(rn) >= np.abs(r)[None]).sum(axis=0)
        p = (1 + exceed) / (S + 1)
        bh(p.ravel())
        t2 = time.perf_counter()
        nonull.append((t1 - t0) * 1e3)
        full.append((t2 - t0) * 1e3)
    json.dump({"numpy.sliding_update_nonull_ms": float(np.median(nonull)),
               "numpy.sliding_update_ms": float(np.median(full))}, sys.stdout)


if __name__ == "__main__":
    main()
