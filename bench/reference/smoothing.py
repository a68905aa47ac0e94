"""scipy twin of bench/smoothing.bench.ts: one hcp7t volume (113×136×113 float32, 1.6 mm
isotropic) smoothed at FWHM 6 mm as nilearn's maskers do (image._smooth_array: non-finite
values to 0, then scipy.ndimage.gaussian_filter1d along x, y and z in place, mode
'reflect', truncate 4), over the whole grid as nilearn always does.

- scipy.smoothing_ms: median over 15 volumes after 3 warm-up ones.

Prints one JSON object {figure: ms}. Run by the bench with /usr/bin/python3.
"""
import json
import time

import numpy as np
from scipy import ndimage

DIMS = (113, 136, 113)
VOXEL_MM = 1.6
FWHM_MM = 6.0
WARMUP, TIMED = 3, 15

rng = np.random.default_rng(1)
volume = (1000 + 10 * rng.standard_normal(DIMS)).astype(np.float32)
sigma = FWHM_MM / (np.sqrt(8 * np.log(2)) * VOXEL_MM)


def smooth(x):
    arr = x.copy()
    arr[np.logical_not(np.isfinite(arr))] = 0
    for axis in range(3):
        ndimage.gaussian_filter1d(arr, sigma, output=arr, axis=axis)
    return arr


times = []
for i in range(WARMUP + TIMED):
    t0 = time.perf_counter()
    smooth(volume)
    if i >= WARMUP:
        times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"scipy.smoothing_ms": float(np.median(times))}))
