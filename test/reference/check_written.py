#!/usr/bin/python3
"""Independent check, with nibabel, of NIfTI files written by syncact's writer.

Usage: /usr/bin/python3 test/reference/check_written.py DIR [DIR ...]

For every .nii / .nii.gz in each DIR: nibabel opens it; the data are float32 and finite;
sform and qform codes are set; the qform nibabel rebuilds from the stored quaternion equals
the sform (our affines are rigid) and the qform nibabel itself computes from the affine;
the stored quaternion equals nibabel's (up to sign when a = 0, a 180° turn); pixdim equals the
affine's column norms; units are mm and s; samples from write_samples.ts hold the values
it wrote, in x-fastest order.
If DIR holds a synthetic session (session.json + truth.json), also: the BOLD, mask, atlas
and maps share one grid; the mask is 0/1 and the BOLD is 0 outside it; the atlas labels are
those of atlas.tsv; truth_maps has one volume per network; the BOLD time series at each
driven network's peak voxel correlates with the network's signal (after removing the drift
terms) more than at null networks with any feature's drive.
Exits non-zero on the first failure. The unit tests do not need python; this is kept to
re-check the writer against nibabel whenever it changes.
"""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check_nifti(path):
    img = nib.load(path)
    hdr = img.header
    data = np.asanyarray(img.dataobj)
    if data.dtype != np.float32:
        fail(f"{path}: dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        fail(f"{path}: non-finite values")
    sform, scode = img.get_sform(coded=True)
    qform, qcode = img.get_qform(coded=True)
    if scode == 0 or qcode == 0:
        fail(f"{path}: sform_code {scode} qform_code {qcode}")
    if not np.allclose(sform, qform, atol=1e-4):
        fail(f"{path}: qform differs from sform\n{qform}\n{sform}")
    probe = nib.Nifti1Header()
    probe.set_qform(sform, code=1)
    # Compare the transforms the quaternions encode, not their b, c, d: for a 180° turn
    # (a = 0) q and -q are the same rotation and nifti1_io and nibabel pick different signs.
    if not np.allclose(probe.get_qform(), qform, atol=1e-5):
        fail(f"{path}: stored qform\n{qform}\nnibabel's qform for the affine\n{probe.get_qform()}")
    if float(probe["pixdim"][0]) != float(hdr["pixdim"][0]):
        fail(f"{path}: qfac {hdr['pixdim'][0]} but nibabel computes {probe['pixdim'][0]}")
    a = np.sqrt(max(0.0, 1 - sum(float(hdr[k]) ** 2 for k in ("quatern_b", "quatern_c", "quatern_d"))))
    same = all(abs(float(probe[k]) - float(hdr[k])) < 1e-5 for k in ("quatern_b", "quatern_c", "quatern_d"))
    flipped = all(abs(float(probe[k]) + float(hdr[k])) < 1e-5 for k in ("quatern_b", "quatern_c", "quatern_d"))
    if not (same or (flipped and a < 1e-4)):
        fail(f"{path}: quaternion differs from nibabel's beyond the a = 0 sign ambiguity")
    zooms = np.sqrt((sform[:3, :3] ** 2).sum(axis=0))
    if not np.allclose(hdr.get_zooms()[:3], zooms, rtol=1e-6):
        fail(f"{path}: zooms {hdr.get_zooms()} vs column norms {zooms}")
    if hdr.get_xyzt_units() != ("mm", "sec"):
        fail(f"{path}: units {hdr.get_xyzt_units()}")
    if hdr["descrip"].tobytes().rstrip(b"\0") == b"syncact sample: sin(i)*100":
        # write_samples.ts: value i (x fastest, i.e. Fortran order) is float32(sin(i) * 100).
        expected = (np.sin(np.arange(data.size)) * 100).astype(np.float32)
        if not np.array_equal(data.ravel(order="F"), expected):
            fail(f"{path}: values or voxel order differ from write_samples.ts")
    print(f"ok {os.path.basename(path)} shape {img.shape} zooms {tuple(float(z) for z in hdr.get_zooms())}")
    return img


def detrended(y, n):
    u = np.arange(n) / (n - 1)
    x = np.column_stack([np.ones(n), 2 * u - 1, np.cos(np.pi * u)])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return y - x @ beta


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def check_session(folder):
    with open(os.path.join(folder, "session.json")) as f:
        session = json.load(f)
    with open(os.path.join(folder, "truth.json")) as f:
        truth = json.load(f)
    load = lambda key: nib.load(os.path.join(folder, session[key]))
    bold, mask, atlas, maps = load("fmri"), load("mask"), load("atlas"), load("truth_maps")
    for img in (mask, atlas, maps):
        if img.shape[:3] != bold.shape[:3] or not np.allclose(img.affine, bold.affine):
            fail("grids differ")
    n = truth["n_volumes"]
    if bold.shape[3] != n or abs(bold.header.get_zooms()[3] - truth["tr"]) > 1e-6:
        fail(f"bold shape {bold.shape} / TR {bold.header.get_zooms()[3]} vs truth {n} / {truth['tr']}")
    if not np.allclose(bold.affine, np.array(truth["grid"]["affine"]), atol=1e-5):
        fail("bold affine differs from truth.json's grid")
    m = mask.get_fdata() > 0
    if set(np.unique(mask.get_fdata())) - {0.0, 1.0}:
        fail("mask is not 0/1")
    if int(m.sum()) != truth["masked_voxels"]:
        fail(f"mask has {m.sum()} voxels, truth says {truth['masked_voxels']}")
    y = bold.get_fdata(dtype=np.float32)
    if np.any(y[~m] != 0):
        fail("bold is not 0 outside the mask")
    with open(os.path.join(folder, session["atlas_labels"])) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    names = [r[1] for r in rows]
    if names != [net["name"] for net in truth["networks"]]:
        fail(f"atlas.tsv names {names}")
    labels = set(np.unique(atlas.get_fdata()).astype(int)) - {0}
    if not labels <= set(range(1, len(names) + 1)):
        fail(f"atlas labels {labels}")
    if maps.shape[3] != len(truth["networks"]):
        fail("truth_maps volumes != networks")
    drives = {f["name"]: np.array(f["drive"]) for f in truth["features"]}
    md = maps.get_fdata()
    for i, net in enumerate(truth["networks"]):
        peak = np.unravel_index(np.argmax(md[..., i]), md.shape[:3])
        ts = detrended(y[peak].astype(np.float64), n)
        if net["driver"] is None:
            worst = max(abs(corr(ts, d)) for d in drives.values())
            print(f"  {net['name']}: null network, max |r| with any drive {worst:.2f}")
        else:
            r = corr(ts, net["sign"] * drives[net["driver"]])
            print(f"  {net['name']}: r with sign*drive({net['driver']}) = {r:.2f}")
            if r < 0.5:
                fail(f"{net['name']} does not follow its drive (r = {r:.2f})")
    print(f"ok session {folder}")


def main(folders):
    if not folders:
        print(__doc__)
        sys.exit(2)
    for folder in folders:
        files = sorted(glob.glob(os.path.join(folder, "*.nii")) + glob.glob(os.path.join(folder, "*.nii.gz")))
        if not files:
            fail(f"no NIfTI files in {folder}")
        for path in files:
            check_nifti(path)
        if os.path.exists(os.path.join(folder, "session.json")):
            check_session(folder)


if __name__ == "__main__":
    main(sys.argv[1:])
