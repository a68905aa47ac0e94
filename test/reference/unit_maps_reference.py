"""Reference values for test/engine/unitMaps.test.ts (per-unit synchronized maps).

Run with Debian's python (numpy 1.24): /usr/bin/python3 test/reference/unit_maps_reference.py
Writes test/reference/unit_maps_reference.json: seeded unit responses X (T×U, large
means), design extras N (T×E: nilearn's cosine drift at 1/128 Hz with the constant last),
BOLD-like float32 volumes Y (T×V: offsets ~1000, a strong drift, effects of some units,
noise), and, at the TRs listed in "checks", each unit's own GLM fitted with
numpy.linalg.lstsq on [N, x_u] over the first k TRs: beta of x_u, its t statistic
(df = k − E − 1) per voxel. Independent of the TypeScript code.
"""
import json
import os

import numpy as np

T, U, V, TR = 120, 4, 40, 2.0
rng = np.random.default_rng(20261126)
# nilearn's _cosine_drift(1/128, frame_times): order = floor(2·n·hp·dt), constant last
order = int(np.floor(2 * T * (1 / 128) * TR))
k = np.arange(T)
N = np.column_stack(
    [np.sqrt(2.0 / T) * np.cos(np.pi / T * (k + 0.5) * j) for j in range(1, order + 1)] + [np.ones(T)]
)
walk = np.zeros((T, U))
for t in range(1, T):
    walk[t] = 0.8 * walk[t - 1] + rng.standard_normal(U)
X = 40.0 + 10.0 * np.arange(U)[None, :] + walk
offset = 1000 + 200 * rng.standard_normal(V)
drift = 30 * rng.standard_normal(V)
effects = 2 * rng.standard_normal((U, V)) * (rng.random((U, V)) < 0.5)
slow = k / T + 0.5 * np.sin(2 * np.pi * k / T)
Y = (offset[None, :] + drift[None, :] * slow[:, None] + walk @ effects + 3 * rng.standard_normal((T, V))).astype(np.float32)

checks = [40, 80, T]
fits = []
for n in checks:
    betas = np.zeros((U, V))
    tstat = np.zeros((U, V))
    Yd = Y[:n].astype(np.float64)
    for u in range(U):
        D = np.column_stack([N[:n], X[:n, u]])
        beta, *_ = np.linalg.lstsq(D, Yd, rcond=None)
        r = Yd - D @ beta
        df = n - D.shape[1]
        var = np.linalg.inv(D.T @ D)[-1, -1]
        betas[u] = beta[-1]
        tstat[u] = beta[-1] / np.sqrt((r * r).sum(axis=0) / df * var)
    fits.append({"trs": n, "betas": betas.ravel().tolist(), "t": tstat.ravel().tolist()})

out = {
    "T": T,
    "U": U,
    "V": V,
    "E": N.shape[1],
    "intercept_column": order,
    "units": X.ravel().tolist(),
    "extras": N.ravel().tolist(),
    "volumes": [float(v) for v in Y.ravel()],
    "fits": fits,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unit_maps_reference.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {path}")
