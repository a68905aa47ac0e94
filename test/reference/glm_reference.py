"""Reference values for test/engine/glm.test.ts (VoxelwiseGlm and batchOls).

Run with Debian's python (numpy 1.24): /usr/bin/python3 test/reference/glm_reference.py
Writes test/reference/glm_reference.json: a seeded design X (T×P: intercept, linear and
cosine drift, 3 smooth "unit responses"), data Y (T×V, float32, BOLD-like offsets around
1000 plus planted effects and noise), and for forgetting 1 and 0.95 the least-squares
betas, weighted RSS and t statistics computed with numpy.linalg.lstsq, independently of
the TypeScript code. Conventions (see server/engine/glm.ts): weights w_t = λ^(T-1-t)
are a window over homoscedastic noise, rss = Σ w r², df = Σw − tr(Φ⁻¹Φ₂),
Var β_j = σ² (Φ⁻¹Φ₂Φ⁻¹)_jj with Φ = XᵀWX, Φ₂ = XᵀW²X.
"""
import json
import os

import numpy as np

T, P, V = 40, 6, 50
rng = np.random.default_rng(20261126)
t = np.arange(T)
units = np.cumsum(rng.standard_normal((T, 3)), axis=0)  # smooth-ish responses
units -= units.mean(axis=0)
X = np.column_stack([np.ones(T), (t - t.mean()) / T, np.cos(np.pi * (t + 0.5) / T), units])
B_true = np.vstack([
    1000 + 200 * rng.standard_normal(V),
    5 * rng.standard_normal((2, V)),
    rng.standard_normal((3, V)),
])
Y = (X @ B_true + 2.0 * rng.standard_normal((T, V))).astype(np.float32)


def fit(lam):
    w = lam ** (T - 1 - t).astype(float)
    sw = np.sqrt(w)
    Yd = Y.astype(np.float64)
    beta, *_ = np.linalg.lstsq(sw[:, None] * X, sw[:, None] * Yd, rcond=None)
    r = Yd - X @ beta
    rss = (w[:, None] * r * r).sum(axis=0)
    phi = X.T @ (w[:, None] * X)
    phi2 = X.T @ ((w * w)[:, None] * X)
    inv = np.linalg.inv(phi)
    df = w.sum() - np.trace(inv @ phi2)
    var = np.diag(inv @ phi2 @ inv)
    tstat = beta / np.sqrt(rss[None, :] / df * var[:, None])
    return {
        "forgetting": lam,
        "df": float(df),
        "betas": beta.ravel().tolist(),  # P×V row-major
        "rss": rss.tolist(),
        "t": tstat.ravel().tolist(),
    }


out = {
    "T": T,
    "P": P,
    "V": V,
    "X": X.ravel().tolist(),
    "Y": [float(v) for v in Y.ravel()],
    "fits": [fit(1.0), fit(0.95)],
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "glm_reference.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {path}")
