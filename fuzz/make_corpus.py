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
