"""Writes the small NIfTI files the reader is tested on, and nibabel's answers for them.

Run from the repository root with the Debian python (numpy 1.24, nibabel 5.0):

    /usr/bin/python3 test/reference/make_nifti_fixtures.py

Output: test/io/fixtures/*.nii, *.nii.gz, *.hdr/*.img (a few hundred bytes each) and
test/io/fixtures/nifti_reference.json. Each entry of the JSON holds what nibabel reads
from the file: format, byte order, dims, pixdim as stored, datatype, scl_slope/scl_inter,
vox_offset, qform/sform codes, the best affine, TR in seconds (the reader's rule, from
pixdim[4] and xyzt_units), extensions, every voxel value (float64, x fastest) and
per-volume statistics of the finite values. Non-finite numbers are written as the
strings "NaN", "Infinity", "-Infinity" (JSON has no literal for them).
"""
import gzip
import json
import os
import shutil
import struct

import nibabel as nib
import numpy as np

OUT = os.path.join('test', 'io', 'fixtures')
RNG = np.random.default_rng(20240611)
SHAPE4 = (4, 3, 2, 2)

# A sform with rotation, anisotropic voxels and an offset, used unless a case says otherwise.
ROT = np.array([[0.96592583, -0.25881905, 0.0], [0.25881905, 0.96592583, 0.0], [0.0, 0.0, 1.0]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = ROT @ np.diag([2.0, 2.5, 3.0])
AFFINE[:3, 3] = [-90.5, 126.25, -72.0]


def values_for(dtype, shape=SHAPE4):
    """Values spanning the type's range, extremes included, so decoding errors show."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind in 'iu':
        info = np.iinfo(dt)
        v = RNG.integers(info.min, info.max, size=n, endpoint=True, dtype=np.int64)
        v[0], v[1] = info.min, info.max
        if info.min < 0:
            v[2] = -1
        v[3] = 0
        return v.astype(dt).reshape(shape, order='F')
    v = RNG.normal(scale=1000.0, size=n)
    v[0], v[1] = np.finfo(dt).max, np.finfo(dt).tiny
    v[2] = -0.0
    return v.astype(dt).reshape(shape, order='F')


def make_image(data, klass=nib.Nifti1Image, endianness='<', affine=AFFINE, sform=2, qform=0, tr=2.0, units=('mm', 'sec')):
    data = np.asarray(data)
    header = klass.header_class(endianness=endianness)
    header.set_data_dtype(data.dtype)
    img = klass(data, None, header=header)
    img.set_sform(affine, code=sform)
    img.set_qform(affine, code=qform)
    img.header.set_xyzt_units(*units)
    if np.ndim(data) >= 4:
        zooms = list(img.header.get_zooms())
        zooms[3] = tr
        img.header.set_zooms(zooms)
    return img


def save(img, name):
    path = os.path.join(OUT, name)
    img.to_filename(path)
    return path


def patch(path, offset, fmt, value, endian='<'):
    """Overwrites one header field in place (for cases nibabel will not write)."""
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(struct.pack(endian + fmt, value))


def gzip_file(path):
    # mtime=0 and no name: the same bytes on every run.
    with open(path, 'rb') as f, open(path + '.gz', 'wb') as out, gzip.GzipFile(filename='', mode='wb', fileobj=out, mtime=0) as g:
        shutil.copyfileobj(f, g)
    os.remove(path)
    return path + '.gz'


def enc(x):
    x = float(x)
    if np.isnan(x):
        return 'NaN'
    if np.isinf(x):
        return 'Infinity' if x > 0 else '-Infinity'
    return x


def tr_seconds(raw_header, ndim):
    if ndim < 4:
        return None
    p4 = float(raw_header['pixdim'][4])
    if not np.isfinite(p4) or p4 <= 0:
        return None
    t = int(raw_header['xyzt_units']) & 0x38
    return {0: p4, 8: p4, 16: p4 / 1000, 24: p4 / 1e6}.get(t)


def raw_header_of(path):
    """The header as stored, without nibabel's load-time fixes (pixdim signs, qfac)."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        first = f.read(4)
        f.seek(0)
        is2 = 540 in (struct.unpack('<i', first)[0], struct.unpack('>i', first)[0])
        klass = nib.Nifti2Header if is2 else nib.Nifti1Header
        return klass.from_fileobj(f, check=False)


def describe(path):
    img = nib.load(path)
    hdr = img.header
    header_path = path.replace('.img', '.hdr')
    raw = raw_header_of(header_path)
    ndim = int(raw['dim'][0])
    data = img.get_fdata(dtype=np.float64)
    vols = data.reshape(data.shape[:3] + (-1,), order='F') if data.ndim > 3 else data.reshape(data.shape + (1,) * (4 - data.ndim), order='F')
    vols = vols.reshape((-1, vols.shape[-1]), order='F')
    stats = []
    for k in range(vols.shape[1]):
        v = vols[:, k]
        fin = v[np.isfinite(v)]
        stats.append({
            'min': enc(fin.min()) if fin.size else None,
            'max': enc(fin.max()) if fin.size else None,
            'mean': enc(fin.mean()) if fin.size else None,
            'sum': enc(fin.sum()),
            'nan': int(v.size - fin.size),
        })
    slope, inter = float(raw['scl_slope']), float(raw['scl_inter'])
    return {
        'file': os.path.basename(header_path),
        'format': 'nifti2' if isinstance(hdr, nib.Nifti2Header) else 'nifti1',
        'littleEndian': hdr.endianness == '<',
        'dims': [int(d) for d in raw['dim'][1:ndim + 1]],
        'pixdim': [enc(p) for p in raw['pixdim'][1:ndim + 1]],
        'datatype': str(hdr.get_data_dtype().newbyteorder('=').name),
        'datatypeCode': int(raw['datatype']),
        'voxOffset': int(raw['vox_offset']),
        'sclSlope': enc(slope),
        'sclInter': enc(inter),
        'qformCode': int(raw['qform_code']),
        'sformCode': int(raw['sform_code']),
        'affine': img.affine.tolist(),
        'zooms': [float(z) for z in hdr.get_zooms()],
        'tr': tr_seconds(raw, ndim),
        'description': raw['descrip'].item().decode('latin1'),
        'extensions': [{'code': int(e.get_code()), 'hex': e.get_content().hex()} for e in hdr.extensions],
        'values': [enc(x) for x in data.ravel(order='F')],
        'volumes': stats,
    }


def main():
    if os.path.isdir(OUT):
        for name in os.listdir(OUT):
            os.remove(os.path.join(OUT, name))
    else:
        os.makedirs(OUT)
    cases = []

    # Every supported datatype, little-endian .nii, sform.
    for dt in ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64']:
        cases.append(save(make_image(values_for(dt)), f'dt_{dt}.nii'))

    # Big-endian, plain and gzipped.
    cases.append(save(make_image(values_for('>i2'), endianness='>'), 'be_int16.nii'))
    cases.append(save(make_image(values_for('>f8'), endianness='>'), 'be_float64.nii'))
    cases.append(save(make_image(values_for('>u4'), endianness='>'), 'be_uint32.nii.gz'))

    # NIfTI-2: little- and big-endian, sform and qform-only (the library never evaluates the NIfTI-2 qform).
    cases.append(save(make_image(values_for('<f4'), klass=nib.Nifti2Image), 'nifti2_float32.nii'))
    path = save(make_image(values_for('>i2'), klass=nib.Nifti2Image, endianness='>'), 'nifti2_int16_be_scaled.nii')
    patch(path, 176, 'd', 0.25, '>')
    patch(path, 184, 'd', -3.0, '>')
    cases.append(path)
    flip = AFFINE.copy()
    flip[:, 2] *= -1  # negative determinant: qfac = -1
    cases.append(save(make_image(values_for('<f8'), klass=nib.Nifti2Image, affine=flip, sform=0, qform=1), 'nifti2_qform.nii.gz'))

    # Scaling: slope/inter applied; slope 0 means no scaling whatever the intercept.
    # (nibabel chooses its own scaling when saving, so the fields are patched afterwards.)
    path = save(make_image(values_for('int16')), 'scaled_int16.nii')
    patch(path, 112, 'f', 0.5)
    patch(path, 116, 'f', 10.0)
    cases.append(gzip_file(path))
    path = save(make_image(values_for('uint8')), 'scaled_uint8.nii')
    patch(path, 112, 'f', 2.0)
    patch(path, 116, 'f', -1.0)
    cases.append(path)
    path = save(make_image(values_for('int16')), 'scaled_slope0.nii')
    patch(path, 112, 'f', 0.0)
    patch(path, 116, 'f', 5.0)
    cases.append(path)

    # Header/image pairs, plain and gzipped.
    cases.append(save(make_image(values_for('int16'), klass=nib.Nifti1Pair), 'pair_int16.img'))
    cases.append(save(make_image(values_for('float32'), klass=nib.Nifti1Pair, endianness='>'), 'pair_float32_be.img.gz'))

    # Transforms: sform only (sheared), qform only (qfac -1), both (sform wins), neither (base affine).
    shear = AFFINE.copy()
    shear[0, 1] += 0.3
    cases.append(save(make_image(values_for('float32'), affine=shear, sform=4, qform=0), 'xform_sform_only.nii'))
    cases.append(save(make_image(values_for('float32'), affine=flip, sform=0, qform=1), 'xform_qform_only.nii'))
    img = make_image(values_for('float32'), affine=flip, sform=0, qform=1)
    img.set_sform(shear, code=2)
    cases.append(save(img, 'xform_both.nii'))
    cases.append(save(make_image(values_for('float32'), sform=0, qform=0), 'xform_none.nii'))
    # qform with a negative voxel size and qfac 0 as stored: nibabel fixes both on load.
    path = save(make_image(values_for('float32'), affine=AFFINE, sform=0, qform=1), 'xform_qform_fixups.nii')
    patch(path, 76, 'f', 0.0)
    patch(path, 80, 'f', -2.0)
    cases.append(path)

    # Extensions (two comments) and a non-default vox_offset.
    img = make_image(values_for('int16'))
    img.header.extensions.append(nib.nifti1.Nifti1Extension('comment', b'syncact reader fixture'))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(40, b'\x00\x01\x02\x03 binary payload'))
    img.header['descrip'] = b'syncact fixture: two extensions'
    cases.append(save(img, 'ext_two.nii'))
    img = make_image(values_for('float32'))
    img.header['vox_offset'] = 1024
    cases.append(save(img, 'voxoffset_1024.nii'))

    # Time units, 3D, 2D, 5D, non-finite values.
    cases.append(save(make_image(values_for('float32'), tr=2500.0, units=('mm', 'msec')), 'tr_msec.nii'))
    cases.append(save(make_image(values_for('float32', (4, 3, 2))), 'dims_3d.nii'))
    cases.append(save(make_image(values_for('float32', (5, 3))), 'dims_2d.nii'))
    cases.append(save(make_image(values_for('int16', (3, 2, 2, 2, 3))), 'dims_5d.nii'))
    v = values_for('float32')
    v.flat[5], v.flat[7], v.flat[30] = np.nan, np.inf, -np.inf
    cases.append(save(make_image(v), 'nonfinite_float32.nii.gz'))

    reference = [describe(p) for p in cases]

    # Unsupported datatypes: the reader must name them.
    unsupported = []
    rgb = np.zeros((2, 2, 2), dtype=[('R', 'u1'), ('G', 'u1'), ('B', 'u1')])
    for name, data, code, label in [
        ('unsupported_rgb24.nii', rgb, 128, 'RGB24'),
        ('unsupported_complex64.nii', np.ones((2, 2, 2), np.complex64), 32, 'COMPLEX64'),
        ('unsupported_int64.nii', np.ones((2, 2, 2), np.int64), 1024, 'INT64'),
    ]:
        img = nib.Nifti1Image(data, np.eye(4), dtype=data.dtype)
        save(img, name)
        assert int(nib.load(os.path.join(OUT, name)).header['datatype']) == code
        unsupported.append({'file': name, 'code': code, 'name': label})

    with open(os.path.join(OUT, 'nifti_reference.json'), 'w') as f:
        json.dump({'generator': 'test/reference/make_nifti_fixtures.py', 'nibabel': nib.__version__,
                   'images': reference, 'unsupported': unsupported}, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'{len(reference)} images, {len(unsupported)} unsupported, {total} bytes in {OUT}')


if __name__ == '__main__':
    main()
