"""Reference values for server/engine/cnn/unitReduction.ts: PCA of standardized unit
responses, computed the independent way, with numpy's SVD of the standardized matrix
    Z = (X - mean) / std   (population std, ddof = 0; a constant column becomes all zeros)
    Z = U S V'
with the sign of each component fixed so that its largest-magnitude loading (entry of V's
column; the first one on a tie) is positive. Scores are U S = Z V (T x K), explained variance
ratio S_k^2 / sum(S^2). Two cases: fewer units than TRs, and more units than TRs (the usual
CNN case); each has a constant unit and units on very different scales. Run with
    /usr/bin/python3 test/reference/pca_reference.py
writes test/reference/pca_reference.json.
"""
import json
import os

import numpy as np


def case(rng, T, N, K, rank):
    drives = rng.standard_normal((T, rank)) * np.linspace(4.0, 1.0, rank)
    mixing = rng.standard_normal((rank, N))
    X = drives @ mixing + 0.5 * rng.standard_normal((T, N))
    X = X * rng.uniform(0.01, 100.0, N) + rng.uniform(-1e3, 1e3, N)
    X[:, 3] = 42.0  # a unit that never moves
    mean = X.mean(0)
    sd = X.std(0)
    const = sd <= 1e-12 * np.abs(mean)
    Z = np.where(const, 0.0, (X - mean) / np.where(const, 1.0, sd))
    U, S, Vt = np.linalg.svd(Z, full_matrices=False)
    V = Vt[:K].copy()
    for k in range(K):
        j = int(np.argmax(np.abs(V[k])))
        if V[k, j] < 0:
            V[k] = -V[k]
    scores = Z @ V.T
    return {
        "T": T,
        "N": N,
        "K": K,
        "X": X.ravel().tolist(),
        "mean": mean.tolist(),
        "sd": sd.tolist(),
        "loadings": V.ravel().tolist(),
        "singular_values": S[:K].tolist(),
        "scores": scores.ravel().tolist(),
        "explained_variance_ratio": (S[:K] ** 2 / np.sum(S ** 2)).tolist(),
    }


def main():
    rng = np.random.default_rng(20240607)
    out = {
        "tall": case(rng, T=40, N=25, K=6, rank=5),
        "wide": case(rng, T=30, N=60, K=5, rank=4),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pca_reference.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path)


if __name__ == "__main__":
    main()
