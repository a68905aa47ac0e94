"""Reference values for server/engine/cnn/preprocess.ts (test/engine/cnn/preprocess.test.ts).

A small RGB frame made by a formula (the test rebuilds it), resized per channel as a float
image ('F' mode, so nothing is rounded to bytes) by Pillow: Image.BILINEAR (a triangle filter
stretched by the reduction factor when shrinking, i.e. antialiased, as torchvision's Resize
does) and Image.NEAREST. For enlarging, Pillow's bilinear is plain half-pixel bilinear; the
`halfpixel` cases check that with scipy.ndimage.map_coordinates (order 1, edges replicated),
the rule of TF2 tf.image.resize and PyTorch interpolate(align_corners=False).
Run: /usr/bin/python3 test/reference/cnn_preprocess_reference.py
"""
import json
import os

import numpy as np
from PIL import Image
from scipy import ndimage

W, H = 13, 9


def frame():
    y, x, c = np.meshgrid(np.arange(H), np.arange(W), np.arange(3), indexing="ij")
    return ((x * 37 + y * 91 + c * 53 + ((x * y) % 7) * 11) % 256).astype(np.float32)


def pil(img, out_h, out_w, resample):
    return np.stack(
        [np.asarray(Image.fromarray(img[:, :, c], mode="F").resize((out_w, out_h), resample)) for c in range(3)], axis=-1
    ).astype(np.float64)


def halfpixel(img, out_h, out_w):
    ys = (np.arange(out_h) + 0.5) * img.shape[0] / out_h - 0.5
    xs = (np.arange(out_w) + 0.5) * img.shape[1] / out_w - 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack(
        [ndimage.map_coordinates(img[:, :, c].astype(np.float64), [yy, xx], order=1, mode="nearest") for c in range(3)],
        axis=-1,
    )


def r6(a):
    return [round(float(v), 6) for v in a.ravel()]


img = frame()
cases = []
# shrink (×1.9), enlarge, same size, shrink x / enlarge y, strong shrink (×4.3 and ×4.5)
for out_w, out_h in [(7, 5), (20, 17), (13, 9), (4, 11), (3, 2)]:
    cases.append({"width": out_w, "height": out_h, "resize": "bilinear", "values": r6(pil(img, out_h, out_w, Image.BILINEAR))})
    cases.append({"width": out_w, "height": out_h, "resize": "nearest", "values": r6(pil(img, out_h, out_w, Image.NEAREST))})
halfpixel_cases = [{"width": w, "height": h, "values": r6(halfpixel(img, h, w))} for w, h in [(20, 17), (26, 18)]]
mean = np.array([0.485, 0.456, 0.406])
std = np.array([0.229, 0.224, 0.225])
imagenet = r6((pil(img, 5, 7, Image.BILINEAR) / 255 - mean) / std)
out = {
    "source": {"width": W, "height": H},
    "pillow": Image.__version__,
    "cases": cases,
    "halfpixel_enlarge": halfpixel_cases,
    "imagenet_7x5_bilinear": imagenet,
}
path = os.path.join(os.path.dirname(__file__), "cnn_preprocess_reference.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path)
