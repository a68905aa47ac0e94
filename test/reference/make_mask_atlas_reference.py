#!/usr/bin/python3
"""Reference values for masks, atlases and resampling (test/io/*, test/engine/epiMask*,
test/real/atlas.test.ts), computed independently with numpy, scipy.ndimage and nibabel.

    /usr/bin/python3 test/reference/make_mask_atlas_reference.py

Writes, under test/io/reference/:
  resample.json      small seeded grids with oblique affines; scipy map_coordinates
                     order 0 / order 1, mode='constant' (what nilearn's resample_img uses)
  epi_mean.f32       a seeded synthetic mean EPI volume (float32, x fastest)
  epi_mask.json      the masks nilearn's compute_epi_mask gives on it (re-implemented
                     below from nilearn/masking.py, nilearn is not installed), several options
  morphology.json    scipy.ndimage binary_erosion / binary_dilation / label on a seeded
                     random mask, gaussian_filter1d on a seeded random volume
  real_atlas.json    only when ../shared/data exists: Yeo-7 (2 mm) resampled onto the 4 mm
                     MNI brain-mask grid, voxel counts per label; the EPI mask of
                     bold/testSeries.nii.gz and its Dice with testSeries_mask.nii.gz

Arrays are nibabel-style [x, y, z]; flat vectors are written x fastest (order='F') to
match NIfTI order in the TypeScript code.
"""
import base64
import json
import os

import numpy as np
from scipy import ndimage

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, 'test', 'io', 'reference')
SHARED = os.path.join(REPO, '..', 'shared', 'data')


def rotation(ax, ay, az):
    cx, sx = np.cos(ax), np.sin(ax)
    cy, sy = np.cos(ay), np.sin(ay)
    cz, sz = np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def affine(rot, sizes, shift):
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag(sizes)
    a[:3, 3] = shift
    return a


def dst_coords(src_affine, dst_affine, dst_dims):
    """Source voxel coordinates of every destination voxel, x fastest."""
    m = np.linalg.inv(src_affine) @ dst_affine
    i, j, k = np.meshgrid(*[np.arange(n) for n in dst_dims], indexing='ij')
    ijk1 = np.stack([i.ravel(order='F'), j.ravel(order='F'), k.ravel(order='F'), np.ones(i.size)])
    return (m @ ijk1)[:3]


def check_unambiguous(coords, dims, order):
    """The TypeScript side counts points within 1e-6 voxel of an edge as inside (scipy does
    not), and a nearest tie could round either way: keep test points clear of both."""
    for axis, n in enumerate(dims):
        x = coords[axis]
        for edge in (0, n - 1):
            assert np.all(np.abs(x - edge) > 1e-4), 'point too close to an edge'
        if order == 0:
            frac = x - np.floor(x)
            assert np.all(np.abs(frac - 0.5) > 1e-4), 'nearest tie'


def resample_cases():
    rng = np.random.default_rng(20240611)
    specs = [
        {
            'name': 'oblique',
            'src_dims': [7, 6, 5],
            'src_affine': affine(rotation(0.17, -0.1, 0.35), [2.0, 2.5, 3.0], [-5.0, 3.0, 7.0]),
            'dst_dims': [9, 8, 6],
            'dst_affine': affine(rotation(-0.05, 0.2, 0.1), [1.5, 1.8, 2.2], [-6.0, 4.0, 6.0]),
        },
        {
            'name': 'flip_and_shift',
            # LAS source (x flipped, as MNI atlases), RAS destination with other sizes.
            'src_dims': [8, 7, 6],
            'src_affine': affine(np.eye(3), [-2.0, 2.0, 2.0], [14.0, -6.0, -5.0]),
            'dst_dims': [6, 5, 5],
            'dst_affine': affine(rotation(0.0, 0.0, 0.3), [2.7, 3.1, 2.9], [-3.3, -8.1, -6.2]),
        },
    ]
    cases = []
    for spec in specs:
        src_dims = spec['src_dims']
        n = int(np.prod(src_dims))
        values = np.round(rng.normal(size=n), 6)
        labels = rng.integers(0, 6, size=n).astype(float)
        coords = dst_coords(spec['src_affine'], spec['dst_affine'], spec['dst_dims'])
        check_unambiguous(coords, src_dims, 0)
        vol = values.reshape(src_dims, order='F')
        lab = labels.reshape(src_dims, order='F')
        trilinear = ndimage.map_coordinates(vol, coords, order=1, mode='constant', cval=0.0)
        nearest = ndimage.map_coordinates(lab, coords, order=0, mode='constant', cval=0.0)
        inside = int(np.sum(np.all([(coords[a] >= 0) & (coords[a] <= src_dims[a] - 1) for a in range(3)], axis=0)))
        assert 0 < inside < coords.shape[1], 'each case should have voxels inside and outside'
        cases.append({
            'name': spec['name'],
            'srcDims': src_dims,
            'srcAffine': spec['src_affine'].tolist(),
            'dstDims': spec['dst_dims'],
            'dstAffine': spec['dst_affine'].tolist(),
            'values': values.tolist(),
            'labels': labels.astype(int).tolist(),
            'trilinear': trilinear.tolist(),
            'nearest': nearest.astype(int).tolist(),
            'inside': inside,
        })
    return cases


# --- nilearn.masking.compute_epi_mask, re-implemented step by step -------------------

def smooth_like_nilearn(mean):
    """image._compute_mean(smooth=1): smooth_array(affine=eye(4), fwhm=1), NaNs kept."""
    nan_mask = np.isnan(mean)
    arr = mean.copy()
    if arr.dtype.kind == 'i':
        arr = arr.astype(np.float32)
    arr[np.logical_not(np.isfinite(arr))] = 0
    sigma = 1.0 / np.sqrt(8 * np.log(2))  # fwhm 1, voxel size 1 (identity affine)
    for axis in range(3):
        ndimage.gaussian_filter1d(arr, sigma, output=arr, axis=axis)
    arr[nan_mask] = np.nan
    return arr


def largest_connected_component(mask):
    labels, n = ndimage.label(mask)
    if n == 1:
        return mask.astype(bool)
    counts = np.bincount(labels.ravel().astype(int))
    counts[0] = 0
    return labels == counts.argmax()


def compute_epi_mask(mean, lower_cutoff=0.2, upper_cutoff=0.85, connected=True, opening=2,
                     exclude_zeros=False):
    mean = smooth_like_nilearn(mean) if opening else mean.copy()
    mean[np.logical_not(np.isfinite(mean))] = 0
    sorted_input = np.sort(np.ravel(mean))
    if exclude_zeros:
        sorted_input = sorted_input[sorted_input != 0]
    lower = int(np.floor(lower_cutoff * len(sorted_input)))
    upper = min(int(np.floor(upper_cutoff * len(sorted_input))), len(sorted_input) - 1)
    delta = sorted_input[lower + 1:upper + 1] - sorted_input[lower:upper]
    ia = delta.argmax()
    threshold = 0.5 * (sorted_input[ia + lower] + sorted_input[ia + lower + 1])
    mask = mean >= threshold
    # _post_process_mask
    if opening:
        opening = int(opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    if connected and mask.any():
        mask = largest_connected_component(mask)
    if opening:
        mask = ndimage.binary_dilation(mask, iterations=2 * opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    return mask, float(threshold)


def packbits(mask):
    """x-fastest flat mask as base64 of numpy.packbits (big bit order)."""
    return base64.b64encode(np.packbits(mask.ravel(order='F').astype(np.uint8)).tobytes()).decode()


def synthetic_mean(rng, dims):
    """A phantom mean EPI: bright ellipsoid brain with a bias field, noisy background,
    an 'eye' attached by a one-voxel bridge (opening cuts it), a separate bright blob
    (the connected-component step drops it), a few NaNs."""
    x, y, z = np.meshgrid(*[np.arange(n, dtype=float) for n in dims], indexing='ij')
    c = [(n - 1) / 2 for n in dims]
    r = ((x - c[0]) / 8.0) ** 2 + ((y - c[1]) / 7.0) ** 2 + ((z - c[2]) / 5.5) ** 2
    brain = r <= 1.0
    vol = np.abs(rng.normal(0, 25, size=dims)) + 15
    bias = 1 + 0.15 * (x - c[0]) / dims[0] - 0.1 * (z - c[2]) / dims[2]
    vol[brain] = (650 + rng.normal(0, 45, size=dims))[brain] * bias[brain]
    eye = ((x - 19.5) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) <= 1.6 ** 2
    vol[eye] = 700
    vol[17:19, int(c[1]), int(c[2])] = 680  # bridge from the brain's surface to the eye
    blob = ((x - 2) ** 2 + (y - 2) ** 2 + (z - 2) ** 2) <= 1.5 ** 2
    vol[blob] = 900
    vol[0, dims[1] - 1, 3] = np.nan
    vol[dims[0] - 1, 0, dims[2] - 2] = np.nan
    return vol.astype(np.float32)


def epi_cases():
    rng = np.random.default_rng(7)
    dims = [22, 20, 16]
    mean = synthetic_mean(rng, dims)
    with open(os.path.join(OUT, 'epi_mean.f32'), 'wb') as f:
        f.write(mean.ravel(order='F').astype('<f4').tobytes())
    option_sets = [
        {},
        {'opening': 0},
        {'opening': 1, 'connected': False},
        {'opening': 0, 'connected': False},
        {'lowerCutoff': 0.3, 'upperCutoff': 0.9, 'opening': 3},
    ]
    cases = []
    for opts in option_sets:
        mask, threshold = compute_epi_mask(
            mean,
            lower_cutoff=opts.get('lowerCutoff', 0.2),
            upper_cutoff=opts.get('upperCutoff', 0.85),
            connected=opts.get('connected', True),
            opening=opts.get('opening', 2),
        )
        cases.append({'options': opts, 'threshold': threshold, 'count': int(mask.sum()), 'mask': packbits(mask)})
    return {'dims': dims, 'file': 'epi_mean.f32', 'cases': cases}


def morphology_cases():
    rng = np.random.default_rng(99)
    dims = [9, 8, 7]
    mask = rng.random(dims) < 0.55
    labels, n = ndimage.label(mask)
    volume = np.round(rng.normal(size=[6, 5, 4]), 6)
    sigma = 1.0 / np.sqrt(8 * np.log(2))
    smoothed = volume.copy()
    for axis in range(3):
        ndimage.gaussian_filter1d(smoothed, sigma, output=smoothed, axis=axis)
    wide = ndimage.gaussian_filter1d(volume, 1.7, axis=1)  # radius 7 > axis length 5: reflect twice
    return {
        'dims': dims,
        'mask': packbits(mask),
        'erosion1': packbits(ndimage.binary_erosion(mask)),
        'erosion2': packbits(ndimage.binary_erosion(mask, iterations=2)),
        'dilation1': packbits(ndimage.binary_dilation(mask)),
        'dilation3': packbits(ndimage.binary_dilation(mask, iterations=3)),
        'components': int(n),
        'largest': packbits(largest_connected_component(mask)),
        'smoothDims': [6, 5, 4],
        'volume': volume.ravel(order='F').tolist(),
        'smoothed': smoothed.ravel(order='F').tolist(),
        'smoothedSigma1_7Axis1': wide.ravel(order='F').tolist(),
    }


def real_reference():
    import nibabel as nib
    atl = os.path.join(SHARED, 'atlases')
    yeo = nib.load(os.path.join(atl, 'Yeo-7_space-MNI152NLin6_res-2x2x2.nii.gz'))
    brain = nib.load(os.path.join(atl, 'MNI152NLin6_res-4x4x4_T1w_descr-brainmask.nii.gz'))
    coords = dst_coords(yeo.affine, brain.affine, brain.shape[:3])
    labels = ndimage.map_coordinates(np.asanyarray(yeo.dataobj).astype(float), coords, order=0,
                                     mode='constant', cval=0.0)
    labels = np.rint(labels).astype(int)
    inside = np.asanyarray(brain.dataobj).ravel(order='F') != 0
    counts_grid = {str(l): int(np.sum(labels == l)) for l in range(1, 8)}
    counts_mask = {str(l): int(np.sum((labels == l) & inside)) for l in range(1, 8)}

    bold = nib.load(os.path.join(SHARED, 'bold', 'testSeries.nii.gz'))
    given = np.asanyarray(nib.load(os.path.join(SHARED, 'bold', 'testSeries_mask.nii.gz')).dataobj) != 0
    mean = np.asanyarray(bold.dataobj).mean(axis=-1)  # uint16 → float64, as nilearn
    epi, threshold = compute_epi_mask(mean)
    dice = 2 * np.sum(epi & given) / (epi.sum() + given.sum())
    return {
        'yeo7': {
            'brainmaskVoxels': int(inside.sum()),
            'countsOnGrid': counts_grid,
            'countsInMask': counts_mask,
        },
        'testSeries': {
            'dims': list(mean.shape),
            'threshold': threshold,
            'epiMaskCount': int(epi.sum()),
            'givenMaskCount': int(given.sum()),
            'diceWithGivenMask': float(dice),
            'mask': packbits(epi),
        },
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'resample.json'), 'w') as f:
        json.dump({'cases': resample_cases()}, f)
    with open(os.path.join(OUT, 'morphology.json'), 'w') as f:
        json.dump(morphology_cases(), f)
    with open(os.path.join(OUT, 'epi_mask.json'), 'w') as f:
        json.dump(epi_cases(), f, indent=1)
    if os.path.isdir(SHARED):
        with open(os.path.join(OUT, 'real_atlas.json'), 'w') as f:
            json.dump(real_reference(), f, indent=1)
    else:
        print('no ../shared/data: real_atlas.json not rewritten')


if __name__ == '__main__':
    main()
