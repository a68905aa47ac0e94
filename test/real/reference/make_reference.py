"""nibabel's answers for every NIfTI file in ../shared/data, for test/real/inspect.test.ts.

Run from the repository root with the Debian python (numpy 1.24, nibabel 5.0):

    /usr/bin/python3 test/real/reference/make_reference.py

Writes test/real/reference/<path under data, '/' -> '__'>.json for each .nii/.nii.gz:
the fields `syncact inspect --json` prints (format, dims, pixdim, datatype, best affine,
TR in seconds by the reader's rule, scl_slope/scl_inter as stored) and float64
per-volume statistics of the scaled finite values (min, max, mean, sum, count of
non-finite values).
"""
import gzip
import json
import os

import nibabel as nib
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(os.path.dirname(REPO), 'shared', 'data')
OUT = os.path.join(REPO, 'test', 'real', 'reference')


def finite_or_none(x):
    x = float(x)
    return x if np.isfinite(x) else None


def tr_seconds(hdr, ndim):
    """pixdim[4] in seconds: ms and us converted, unknown unit taken as seconds, Hz/ppm/rad: none."""
    if ndim < 4:
        return None
    p4 = float(hdr['pixdim'][4])
    if not np.isfinite(p4) or p4 <= 0:
        return None
    unit = int(hdr['xyzt_units']) & 0x38
    return {0: p4, 8: p4, 16: p4 / 1000, 24: p4 / 1e6}.get(unit)


def raw_header(path, klass):
    """The header as stored: nibabel's loaded header has scl_slope/scl_inter reset to NaN."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        return klass.from_fileobj(f, check=False)


def describe(path):
    img = nib.load(path)
    hdr = raw_header(path, type(img.header))
    ndim = int(hdr['dim'][0])
    shape = img.shape
    nvol = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    # The shared files are small; nibabel's float64 scaling of the whole image is the reference.
    all_values = img.get_fdata(dtype=np.float64).reshape((-1, nvol), order='F')
    volumes = []
    for k in range(nvol):
        v = all_values[:, k]
        fin = v[np.isfinite(v)]
        volumes.append({
            'min': float(fin.min()) if fin.size else None,
            'max': float(fin.max()) if fin.size else None,
            'mean': float(fin.mean()) if fin.size else None,
            'sum': float(fin.sum()),
            'nan': int(v.size - fin.size),
        })
    return {
        'file': os.path.relpath(path, DATA),
        'format': 'nifti2' if isinstance(hdr, nib.Nifti2Header) else 'nifti1',
        'dims': [int(d) for d in hdr['dim'][1:ndim + 1]],
        'pixdim': [float(p) for p in hdr['pixdim'][1:ndim + 1]],
        'datatype': str(hdr.get_data_dtype().newbyteorder('=').name),
        'affine': img.affine.tolist(),
        'tr': tr_seconds(hdr, ndim),
        'scl_slope': finite_or_none(hdr['scl_slope']),
        'scl_inter': finite_or_none(hdr['scl_inter']),
        'volumes': volumes,
    }


def main():
    count = 0
    for folder, _, names in sorted(os.walk(DATA)):
        for name in sorted(names):
            if not (name.endswith('.nii') or name.endswith('.nii.gz')):
                continue
            path = os.path.join(folder, name)
            ref = describe(path)
            out = os.path.join(OUT, ref['file'].replace(os.sep, '__') + '.json')
            with open(out, 'w') as f:
                json.dump(ref, f, indent=1)
            count += 1
            print(f"{ref['file']}: {ref['dims']} {ref['datatype']}")
    print(f'{count} references in {OUT}')


if __name__ == '__main__':
    main()
