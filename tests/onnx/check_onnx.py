"""Checks Synapse's ONNX exports against ONNX's checker and an independent runtime (OpenCV's dnn).

usage: check_onnx.py DIR   -- DIR holds <model>.onnx and <model>.npz (arrays "input" and "output",
Synapse's own output for that input), as written by onnx_export_zoo. Fails unless every model passes
onnx.checker (full check, with shape inference) and OpenCV's output is within 1e-4 of Synapse's.
"""
import glob
import os
import sys

import cv2
import numpy as np
import onnx

TOLERANCE = 1e-4


def main(folder):
    models = sorted(glob.glob(os.path.join(folder, "*.onnx")))
    if not models:
        sys.exit(f"no .onnx files in {folder}")
    failures = 0
    for path in models:
        name = os.path.splitext(os.path.basename(path))[0]
        data = np.load(os.path.splitext(path)[0] + ".npz")
        x, expected = data["input"], data["output"]
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        net = cv2.dnn.readNetFromONNX(path)
        net.setInput(x.astype(np.float32), model.graph.input[0].name)
        got = net.forward(model.graph.output[0].name)
        diff = float(np.max(np.abs(got.reshape(expected.shape) - expected)))
        ok = got.size == expected.size and diff < TOLERANCE
        failures += not ok
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"{name:12s} checker ok  opencv max|diff| = {diff:.2e}  {'ok' if ok else 'MISMATCH'}  ops: {', '.join(ops)}")
    if failures:
        sys.exit(f"{failures} of {len(models)} models disagree")
    print(f"{len(models)} models agree")


if __name__ == "__main__":
    main(sys.argv[1])
