"""Reference values for server/engine/cnn/preprocess.ts (test/engine/cnn/preprocess.test.ts).

A small RGB frame made by a formula (the test rebuilds it), resized with half-pixel centres
by scipy.ndimage.map_coordinates (order 1 = bilinear, edges replicated), which is an
independent implementation of the same sampling rule as TF2 tf.image.resize /
PyTorch interpolate(align_corners=False); and with 'nearest' at floor((i + 0.5)·in/out).
Run: /usr/bin/python3 test/reference/cnn_preprocess_reference.py
"""
import json
import os

import numpy as np
from scipy import ndimage

W, H = 13, 9


def frame():
    y, x, c = np.meshgrid(np.arange(H), np.arange(W), np.arange(3), indexing="ij")
    return ((x * 37 + y * 91 + c * 53 + ((x * y) % 7) * 11) % 256).astype(np.float64)


def bilinear(img, out_h, out_w):
    ys = (np.arange(out_h) + 0.5) * img.shape[0] / out_h - 0.5
    xs = (np.arange(out_w) + 0.5) * img.shape[1] / out_w - 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack(
        [ndimage.map_coordinates(img[:, :, c], [yy, xx], order=1, mode="nearest") for c in range(3)], axis=-1
    )


def nearest(img, out_h, out_w):
    ys = np.minimum(img.shape[0] - 1, np.floor((np.arange(out_h) + 0.5) * img.shape[0] / out_h)).astype(int)
    xs = np.minimum(img.shape[1] - 1, np.floor((np.arange(out_w) + 0.5) * img.shape[1] / out_w)).astype(int)
    return img[ys][:, xs]


img = frame()
cases = []
for out_w, out_h in [(7, 5), (20, 17), (13, 9), (4, 11)]:
    cases.append({"width": out_w, "height": out_h, "resize": "bilinear", "values": bilinear(img, out_h, out_w).ravel().tolist()})
    cases.append({"width": out_w, "height": out_h, "resize": "nearest", "values": nearest(img, out_h, out_w).ravel().tolist()})
mean = np.array([0.485, 0.456, 0.406])
std = np.array([0.229, 0.224, 0.225])
imagenet = ((bilinear(img, 5, 7) / 255 - mean) / std).ravel().tolist()
out = {"source": {"width": W, "height": H}, "cases": cases, "imagenet_7x5_bilinear": imagenet}
path = os.path.join(os.path.dirname(__file__), "cnn_preprocess_reference.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path)
