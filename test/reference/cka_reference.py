"""Reference values for server/engine/cka.ts: linear CKA (Kornblith et al. 2019) of every
prefix of a seeded (X, Y) pair, computed the independent way, from centred Gram matrices:
    HSIC(K, L) = tr(K H L H),  CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),  K = X X'
and, with exponential forgetting (weights lam^(n-1-i)), from weighted centred
cross-products. Run with
    /usr/bin/python3 test/reference/cka_reference.py
writes test/reference/cka_reference.json.
"""
import json
import os

import numpy as np


def cka_gram(X, Y):
    n = X.shape[0]
    if n < 2:
        return float("nan")
    H = np.eye(n) - np.ones((n, n)) / n
    # Removing the column means first leaves HKH unchanged (H kills constant shifts) and
    # keeps the Gram entries small, so the offsets below do not cost digits.
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    K = X @ X.T
    L = Y @ Y.T
    hkl = np.trace(K @ H @ L @ H)
    hkk = np.trace(K @ H @ K @ H)
    hll = np.trace(L @ H @ L @ H)
    if hkk <= 0 or hll <= 0:
        return float("nan")
    return float(hkl / np.sqrt(hkk * hll))


def cka_weighted(X, Y, lam):
    n = X.shape[0]
    if n < 2:
        return float("nan")
    w = lam ** np.arange(n - 1, -1, -1, dtype=float)
    mx = (w[:, None] * X).sum(0) / w.sum()
    my = (w[:, None] * Y).sum(0) / w.sum()
    Xc, Yc = X - mx, Y - my
    cxy = Xc.T @ (w[:, None] * Yc)
    cxx = Xc.T @ (w[:, None] * Xc)
    cyy = Yc.T @ (w[:, None] * Yc)
    return float(np.sum(cxy ** 2) / (np.linalg.norm(cxx) * np.linalg.norm(cyy)))


def main():
    rng = np.random.default_rng(7)
    T, p, q = 40, 6, 4
    s = rng.standard_normal((T, 2))  # shared drives
    X = s @ rng.standard_normal((2, p)) + 0.7 * rng.standard_normal((T, p)) + 1000.0
    Y = s @ rng.standard_normal((2, q)) + 0.7 * rng.standard_normal((T, q)) - 50.0
    out = {
        "T": T, "p": p, "q": q,
        "X": X.ravel().tolist(), "Y": Y.ravel().tolist(),
        "cka": [cka_gram(X[: t + 1], Y[: t + 1]) for t in range(T)],
        "lambda": 0.95,
        "cka_forgetting": [cka_weighted(X[: t + 1], Y[: t + 1], 0.95) for t in range(T)],
    }
    here = os.path.dirname(os.path.abspath(__file__))
    # JSON has no NaN: undefined CKA (fewer than 2 samples) is written as null
    for key in ("cka", "cka_forgetting"):
        out[key] = [None if np.isnan(v) else v for v in out[key]]
    with open(os.path.join(here, "cka_reference.json"), "w") as f:
        json.dump(out, f, allow_nan=False)


if __name__ == "__main__":
    main()
