"""Reference values for test/engine/spatialSmoothing.test.ts (server/engine/spatialSmoothing.ts).

Run with Debian's python (numpy 1.24, scipy 1.10, nibabel 5):
    /usr/bin/python3 test/reference/smoothing_reference.py
Writes test/reference/smoothing_reference.json.

`nilearn_smooth_array` below is nilearn's `image.image._smooth_array` (0.10) line for line,
minus the 'fast' option (nilearn is not installed here; scipy and nibabel are): non-finite
values set to 0 first, fwhm 0 warns and does not smooth, voxel sizes are the column norms
of the affine's 3×3 part (nibabel.affines.voxel_sizes gives the same numbers), and one
scipy.ndimage.gaussian_filter1d per axis (mode 'reflect', truncate 4.0) writing into the
float32 array itself, as nilearn's maskers do on float32 data (apply_mask_fmri, dtype 'f').
Each case is a seeded float32 volume in NIfTI order (x fastest) with its affine and FWHM.
"""
import json
import os
import warnings

import nibabel as nib
import numpy as np
from scipy import ndimage


def nilearn_smooth_array(arr, affine, fwhm=None, ensure_finite=True, copy=True):
    if isinstance(fwhm, (int, float)) and fwhm == 0.0:
        warnings.warn("fwhm=0 is treated as fwhm=None: no smoothing")
        fwhm = None
    if copy:
        arr = arr.copy()
    if ensure_finite:
        arr[np.logical_not(np.isfinite(arr))] = 0
    if fwhm is not None:
        fwhm = np.asarray(fwhm)
        fwhm = np.where(fwhm == None, 0.0, fwhm)  # noqa: E711 (as nilearn)
        affine = affine[:3, :3]
        fwhm_over_sigma_ratio = np.sqrt(8 * np.log(2))
        vox_size = np.sqrt(np.sum(affine ** 2, axis=0))
        assert np.allclose(vox_size, nib.affines.voxel_sizes(np.vstack([np.hstack([affine, np.zeros((3, 1))]), [0, 0, 0, 1]])))
        sigma = fwhm / (fwhm_over_sigma_ratio * vox_size)
        for n, s in enumerate(np.broadcast_to(sigma, (3,))):
            if s > 0.0:
                ndimage.gaussian_filter1d(arr, s, output=arr, axis=n)
    return arr


rng = np.random.default_rng(20261126)


def volume(dims, nonfinite=0):
    # Blobs plus noise, so that smoothing changes values by a lot and in both directions.
    x = rng.standard_normal(dims) * 10 + 100
    x[tuple(d // 2 for d in dims)] += 500
    x = x.astype(np.float32)
    if nonfinite:
        flat = x.reshape(-1)
        idx = rng.choice(flat.size, nonfinite, replace=False)
        flat[idx[: nonfinite - 2]] = np.nan
        flat[idx[-2]] = np.inf
        flat[idx[-1]] = -np.inf
    return x


def affine(columns, origin=(0.0, 0.0, 0.0)):
    a = np.eye(4)
    a[:3, :3] = np.array(columns, dtype=float).T  # columns[i] = world vector of voxel axis i
    a[:3, 3] = origin
    return a


cases = [
    ("isotropic 4 mm, fwhm 8", (9, 8, 7), affine([[4, 0, 0], [0, 4, 0], [0, 0, 4]], (-16, -14, -12)), 8.0, 0),
    ("anisotropic 2×3×4.5 mm with x and z flipped, fwhm 6", (10, 7, 6), affine([[-2, 0, 0], [0, 3, 0], [0, 0, -4.5]], (9, -9, 11)), 6.0, 0),
    ("axes permuted and y flipped (voxel x runs along world y), 1.6×2.5×2 mm, fwhm 5", (8, 9, 5), affine([[0, 1.6, 0], [-2.5, 0, 0], [0, 0, 2]]), 5.0, 0),
    ("NaN and ±inf voxels become 0 before smoothing, fwhm 6 at 3 mm", (7, 6, 5), affine([[3, 0, 0], [0, 3, 0], [0, 0, 3]]), 6.0, 6),
    ("kernel wider than an axis: reflect repeats (fwhm 20 at 2 mm, 3 slices)", (6, 5, 3), affine([[2, 0, 0], [0, 2, 0], [0, 0, 2]]), 20.0, 0),
    ("per-axis fwhm (6, 0, 4): the y axis is not smoothed", (7, 6, 5), affine([[2, 0, 0], [0, 2, 0], [0, 0, 2]]), [6.0, 0.0, 4.0], 0),
    ("fwhm 0: no smoothing, but non-finite values become 0 (nilearn's smooth_img)", (5, 4, 3), affine([[2, 0, 0], [0, 2, 0], [0, 0, 2]]), 0.0, 4),
    ("a single-voxel axis stays constant along it", (6, 5, 1), affine([[2, 0, 0], [0, 2, 0], [0, 0, 2]]), 5.0, 0),
]

out = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for name, dims, aff, fwhm, nonfinite in cases:
        x = volume(dims, nonfinite)
        y = nilearn_smooth_array(x, aff, fwhm)
        assert y.dtype == np.float32
        sigma = np.asarray(fwhm, dtype=float) / (np.sqrt(8 * np.log(2)) * nib.affines.voxel_sizes(aff))

        def flat(a):
            # NIfTI order (x fastest); non-finite values as strings JSON can carry.
            return [v if np.isfinite(v) else str(v) for v in a.reshape(-1, order="F").astype(float).tolist()]

        out.append({
            "name": name,
            "dims": list(dims),
            "affine": aff.tolist(),
            "fwhm": fwhm,
            "sigmas": np.broadcast_to(sigma, (3,)).tolist(),
            "input": flat(x),
            "output": flat(y),
        })

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smoothing_reference.json")
with open(path, "w") as f:
    json.dump({"generator": "test/reference/smoothing_reference.py", "scipy": __import__("scipy").__version__, "cases": out}, f)
    f.write("\n")
print(f"wrote {path}: {len(out)} cases")
