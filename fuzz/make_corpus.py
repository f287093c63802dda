#!/usr/bin/python3
"""Seeds only Python writes (Debian's python3-numpy and python3-opencv, hence /usr/bin/python3) (fuzz/make_corpus.cpp writes the rest): a compressed .npz (numpy.savez_compressed),
and JPEG, BMP, PGM and 16-bit PNG images (OpenCV).   python3 fuzz/make_corpus.py fuzz/corpus"""
import io
import os
import sys

import cv2
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus"
rng = np.random.default_rng(25)
buf = io.BytesIO()
np.savez_compressed(buf, w=rng.normal(size=(3, 4)).astype(np.float32), y=np.arange(5, dtype=np.int64))
open(os.path.join(out, "npz", "savez_compressed.npz"), "wb").write(buf.getvalue())
digit = np.zeros((28, 28), np.uint8)
digit[5:23, 12:16] = 255
for ext, img in ((".jpg", digit), (".bmp", digit), (".pgm", digit),
                 (".png", (rng.random((6, 7)) * 65535).astype(np.uint16))):
    ok, data = cv2.imencode(ext, img)
    assert ok
    name = ("digit" if img.dtype == np.uint8 else "gray16") + ext
    open(os.path.join(out, "image", name), "wb").write(data.tobytes())

# CIFAR batches: label byte(s) + 3072 channels-first pixel bytes per record (fuzz/cifar.cpp reads each seed
# as CIFAR-10 and as CIFAR-100, so both record sizes are here).
os.makedirs(os.path.join(out, "cifar"), exist_ok=True)
pix = lambda: rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()
open(os.path.join(out, "cifar", "cifar10-2-records.bin"), "wb").write(bytes([3]) + pix() + bytes([9]) + pix())
open(os.path.join(out, "cifar", "cifar100-1-record.bin"), "wb").write(bytes([5, 42]) + pix())

# Keras / TF.js layers-models for fuzz/keras.cpp: model.json, a NUL byte, then the shard "w.bin" its manifest names.
import json
os.makedirs(os.path.join(out, "keras"), exist_ok=True)
def node(*names):
    return [[[n, 0, 0, {}] for n in names]]
def layer(name, cls, inbound, **cfg):
    return {"name": name, "class_name": cls, "config": dict(name=name, **cfg), "inbound_nodes": node(*inbound) if inbound else []}
def keras_seed(fname, topology, weights, quant=None):
    quant = quant or {}
    manifest, shard = [], b""
    for name, shape in weights:
        n = int(np.prod(shape))
        entry = {"name": name, "shape": shape, "dtype": "float32"}
        if name in quant:
            entry["quantization"] = {"dtype": quant[name], "scale": 0.01, "min": -0.5}
            shard += rng.integers(0, 256 if quant[name] == "uint8" else 65536, n).astype(
                np.uint8 if quant[name] == "uint8" else "<u2").tobytes()
        else:
            shard += rng.normal(size=n).astype("<f4").tobytes()
        manifest.append(entry)
    doc = {"format": "layers-model", "modelTopology": topology,
           "weightsManifest": [{"paths": ["w.bin"], "weights": manifest}]}
    open(os.path.join(out, "keras", fname), "wb").write(json.dumps(doc, separators=(",", ":")).encode() + b"\0" + shard)

inp = {"name": "in", "class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 6, 6, 2], "dtype": "float32"}, "inbound_nodes": []}
functional = {"class_name": "Model", "config": {"name": "tiny", "layers": [
    inp,
    layer("pad", "ZeroPadding2D", ["in"], padding=[[0, 1], [1, 0]]),
    layer("conv", "Conv2D", ["pad"], filters=3, kernel_size=[3, 3], strides=[2, 2], padding="valid", activation="relu", use_bias=False),
    layer("bn", "BatchNormalization", ["conv"], axis=-1, momentum=0.99, epsilon=0.001),
    layer("relu", "ReLU", ["bn"], max_value=6.0),
    layer("dw", "DepthwiseConv2D", ["relu"], kernel_size=3, padding="same", depth_multiplier=1, use_bias=False),
    layer("add", "Add", ["relu", "dw"]),
    layer("mul", "Multiply", ["add", "relu"]),
    layer("cat", "Concatenate", ["mul", "add"], axis=-1),
    layer("gap", "GlobalAveragePooling2D", ["cat"]),
    layer("fc", "Dense", ["gap"], units=2, activation="linear"),
    layer("sm", "Softmax", ["fc"], axis=-1)],
    "input_layers": [["in", 0, 0]], "output_layers": [["sm", 0, 0]]}, "keras_version": "2.2.4"}
keras_seed("functional", functional,
           [("conv/kernel", [3, 3, 2, 3]), ("bn/gamma", [3]), ("bn/beta", [3]), ("bn/moving_mean", [3]),
            ("bn/moving_variance", [3]), ("dw/depthwise_kernel", [3, 3, 3, 1]), ("fc/kernel", [6, 2]), ("fc/bias", [2])],
           quant={"bn/gamma": "uint8", "dw/depthwise_kernel": "uint16"})
sequential = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "SeparableConv2D", "config": {"name": "sep", "filters": 2, "kernel_size": 3, "padding": "same",
                                                 "depth_multiplier": 2, "batch_input_shape": [None, 5, 5, 1]}},
    {"class_name": "MaxPooling2D", "config": {"name": "mp", "pool_size": [2, 2], "padding": "same"}},
    {"class_name": "AveragePooling2D", "config": {"name": "ap", "pool_size": 1}},
    {"class_name": "Activation", "config": {"name": "act", "activation": "swish"}},
    {"class_name": "Flatten", "config": {"name": "f"}},
    {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}},
    {"class_name": "Reshape", "config": {"name": "r", "target_shape": [3, 6]}},
    {"class_name": "Flatten", "config": {"name": "f2"}},
    {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "tanh", "trainable": False}}]}}
keras_seed("sequential", sequential,
           [("sep/depthwise_kernel", [3, 3, 1, 2]), ("sep/pointwise_kernel", [1, 1, 2, 2]), ("sep/bias", [2]),
            ("d/kernel", [18, 3]), ("d/bias", [3])])
