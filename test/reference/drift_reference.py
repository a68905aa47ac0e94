"""Reference values for server/engine/drift.ts: a numpy re-implementation of nilearn's
`_cosine_drift(high_pass, frame_times)` (nilearn/glm/first_level/design_matrix.py) and of
shifted Legendre polynomials via numpy.polynomial.legendre. Run with
    /usr/bin/python3 test/reference/drift_reference.py
writes test/reference/drift_reference.json.
"""
import json
import os

import numpy as np
from numpy.polynomial import legendre


def cosine_drift(high_pass, frame_times):
    n_frames = len(frame_times)
    n_times = np.arange(n_frames)
    dt = (frame_times[-1] - frame_times[0]) / (n_frames - 1)
    order = np.minimum(n_frames - 1, int(np.floor(2 * n_frames * high_pass * dt)))
    drift = np.zeros((n_frames, order + 1))
    normalizer = np.sqrt(2.0 / n_frames)
    for k in range(1, order + 1):
        drift[:, k - 1] = normalizer * np.cos((np.pi / n_frames) * (n_times + .5) * k)
    drift[:, -1] = 1.
    return drift


def main():
    cases = []
    for n, tr, hp in ((100, 2.0, 1 / 128), (921, 1.0, 1 / 128), (405, 0.72, 0.01), (30, 2.5, 0.008), (5, 2.0, 0.3)):
        frame_times = np.arange(n) * tr
        m = cosine_drift(hp, frame_times)
        # keep the fixture small: every row for short runs, a few rows for long ones
        rows = list(range(n)) if n <= 100 else [0, 1, n // 3, n // 2, n - 2, n - 1]
        cases.append({"n": n, "tr": tr, "high_pass": hp, "width": m.shape[1], "rows": rows, "values": m[rows].ravel().tolist()})
    poly = []
    for t in (0.0, 37.5, 300.0, 599.0, 1234.5):
        x = 2 * t / 600.0 - 1
        poly.append({"t": t, "values": [float(legendre.legval(x, [0] * j + [1])) for j in range(1, 5)]})
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "drift_reference.json"), "w") as f:
        json.dump({"cosine": cases, "legendre_scale600_order4": poly}, f)


if __name__ == "__main__":
    main()
