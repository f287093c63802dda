"""Writes PyTorch-exported models in ONNX's node-test layout, for `synapse onnx-conformance DIR`.

usage: torch_cases.py OUTDIR -- each case is OUTDIR/<name>/model.onnx plus test_data_set_0/input_0.pb
and output_0.pb (TensorProtos) holding a seeded input and PyTorch's own output. These are NCHW models
as PyTorch exports them (Conv with explicit pads, BatchNormalization, pooling, Flatten, Gemm), the
layout Synapse's exporter never produces, so the importer's NCHW paths are checked against an
independent framework.
"""
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from torch import nn


def cases():
    yield "torch_lenet_nchw", nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 10)), (2, 1, 28, 28)
    yield "torch_conv_bn_strided", nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.Sigmoid(),
        nn.Conv2d(8, 4, 3, padding=(0, 1), dilation=2), nn.Tanh(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Softmax(dim=1)), (2, 3, 17, 15)
    yield "torch_pool_padding", nn.Sequential(
        nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 5 * 4, 6), nn.LogSoftmax(dim=1)), (3, 4, 17, 13)
    yield "torch_mlp_flat", nn.Sequential(
        nn.Linear(784, 64), nn.ELU(), nn.Dropout(0.5), nn.Linear(64, 10)), (5, 784)


def main(out):
    torch.manual_seed(0)
    for name, model, shape in cases():
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        x = torch.rand(*shape)
        with torch.no_grad():
            y = model(x)
        folder = os.path.join(out, name)
        data = os.path.join(folder, "test_data_set_0")
        os.makedirs(data, exist_ok=True)
        path = os.path.join(folder, "model.onnx")
        # A symbolic batch, as real deployments export it (synapse run feeds 1000 images at once).
        torch.onnx.export(model, x, path, input_names=["x"], output_names=["y"], opset_version=13,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        onnx.checker.check_model(onnx.load(path))
        for fname, arr in (("input_0.pb", x), ("output_0.pb", y)):
            t = onnx.numpy_helper.from_array(arr.numpy().astype(np.float32))
            with open(os.path.join(data, fname), "wb") as f:
                f.write(t.SerializeToString())
        print(f"{name}: {', '.join(sorted({n.op_type for n in onnx.load(path).graph.node}))}")


if __name__ == "__main__":
    main(sys.argv[1])
