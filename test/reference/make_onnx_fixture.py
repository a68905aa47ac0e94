"""The tiny ONNX fixture for server/engine/cnn/onnxModel.ts, and PyTorch's answers for it.

A small PyTorch CNN with seeded weights,
    conv1(3→4, 3×3, pad 1) → relu1 → pool1 (max 2×2) → conv2(4→8, 3×3, pad 1) → relu2
    → gap (global average pool) → flatten → fc (8→5),
on 3×16×16 inputs (NCHW), is exported with torch.onnx.export (opset 13, dynamic batch) to
test/fixtures/models/tiny_cnn.onnx. Only the input ("input") and the last layer ("logits")
are graph outputs, so every intermediate tap in the tests exercises syncact's "add the
tensor as a graph output at load" path.

tiny_cnn_reference.json holds, for 2 seeded 16×16 RGB uint8 frames (interleaved rgb,
row-major, as syncact's FrameBatch), PyTorch's outputs of each sub-network (the model run up
to that layer) on x/255 in NCHW: per layer the ONNX tensor name it maps to, the shape, the
full tensor (flattened, C order; only for tensors of ≤ 1024 values) and the per-channel spatial mean and max (the pooled
activations syncact's extractor returns).

Run with
    /usr/bin/python3 test/reference/make_onnx_fixture.py
The unit tests read the committed outputs; they do not need python.
"""
import json
import os

import numpy as np
import onnx
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "models")


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def stages(self, x):
        """Yields (module name, output) for every stage: the sub-network outputs."""
        for name in ["conv1", "relu1", "pool1", "conv2", "relu2", "gap"]:
            x = getattr(self, name)(x)
            yield name, x
        x = torch.flatten(x, 1)
        yield "fc", self.fc(x)

    def forward(self, x):
        out = None
        for _, out in self.stages(x):
            pass
        return out


def main():
    torch.manual_seed(20261126)
    model = TinyCnn().eval()
    # Positive biases on conv2 keep some relu2 units alive for every frame (a dead unit
    # would make the max/mean comparison trivially 0 == 0).
    with torch.no_grad():
        model.conv2.bias.add_(0.1)

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "tiny_cnn.onnx")
    dummy = torch.zeros(1, 3, 16, 16)
    torch.onnx.export(
        model, dummy, path, opset_version=13, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True,
    )
    graph = onnx.load(path).graph
    # Module name → the ONNX tensor holding its output (the first output of the node
    # torch named "/<module>/<Op>").
    tensor_of = {}
    for node in graph.node:
        parts = node.name.split("/")
        if len(parts) >= 2 and parts[1] in dict(model.named_children()):
            tensor_of.setdefault(parts[1], node.output[0])
    tensor_of["fc"] = "logits"

    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    # A smooth gradient in the second frame so the two differ in structure, not only noise.
    yy, xx = np.mgrid[0:16, 0:16]
    frames[1, :, :, 0] = (xx * 16).astype(np.uint8)
    x = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    layers = []
    with torch.no_grad():
        for name, out in model.stages(x):
            a = out.numpy().astype(np.float64)
            if a.ndim == 4:
                mean = a.mean(axis=(2, 3))
                mx = a.max(axis=(2, 3))
            else:
                mean = a
                mx = a
            layers.append({
                "module": name,
                "tensor": tensor_of.get(name),
                "node": next((n.name for n in graph.node if n.output and n.output[0] == tensor_of.get(name)), None),
                "shape": list(a.shape),
                # The full tensor only where it is small (keeps the fixture small).
                "values": [float(v) for v in a.ravel()] if a.size <= 1024 else None,
                "mean": [float(v) for v in mean.ravel()],
                "max": [float(v) for v in mx.ravel()],
            })
    ref = {
        "model": "tiny_cnn.onnx",
        "input": {"name": "input", "layout": "nchw", "width": 16, "height": 16, "normalization": "unit"},
        "graph_outputs": [o.name for o in graph.output],
        "frames": {"width": 16, "height": 16, "data": [[int(v) for v in f.ravel()] for f in frames]},
        "layers": layers,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }
    with open(os.path.join(OUT, "tiny_cnn_reference.json"), "w") as f:
        json.dump(ref, f)
    print("wrote", path, os.path.getsize(path), "bytes;", "tensors:", tensor_of)


if __name__ == "__main__":
    main()
