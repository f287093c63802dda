#!/usr/bin/env python3
"""The bad-input catalogue (README, "Reliability"): every command and file type fed something wrong, each case
asserting the exact shape of the message (it names the file, flag or tensor, and the expected and found values)
and a non-zero exit (HTTP cases: the status and the JSON error).

    bad_inputs.py SYNAPSE READ_PROBE MNIST_DIR WORK_DIR     run every case
    bad_inputs.py --list                                     the cases, for the README

Each case: (name, command, expected). The command's {w} is the work folder with the bad files (made below),
{mnist} the real MNIST folder, {model} a softmax model trained for 2 steps; `expected` is a regular expression
the last "error:" line of stderr (or, for a flag CLI11 refuses, its first line) must match whole (fullmatch), with {w} substituted (re.escape'd)."""
import gzip
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib


def be32(*v):
    return b"".join(struct.pack(">I", x) for x in v)


def idx(type_code, dims, body):
    return bytes([0, 0, type_code, len(dims)]) + be32(*dims) + body


def png(w, h, rows):
    """A grayscale 8-bit PNG with these rows (bytes)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_files(w, mnist):
    """Every bad file of the catalogue, in folder w."""
    def put(name, data):
        path = os.path.join(w, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(data if isinstance(data, bytes) else data.encode())
    # MNIST folders with one bad file each (the other three real, linked).
    mnist = os.path.abspath(mnist)

    def mnist_with(folder, name, data):
        os.makedirs(os.path.join(w, folder), exist_ok=True)
        for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            for src in (os.path.join(mnist, f), os.path.join(mnist, f + ".gz")):
                if os.path.exists(src) and f != name and not (name.startswith(f)):
                    os.symlink(src, os.path.join(w, folder, os.path.basename(src)))
        put(os.path.join(folder, name), data)
    mnist_with("idx_magic", "t10k-images-idx3-ubyte", b"GIF89a" + bytes(100))
    mnist_with("idx_short_header", "t10k-images-idx3-ubyte", bytes([0, 0, 8, 3]) + be32(10000))
    mnist_with("idx_truncated", "t10k-images-idx3-ubyte", idx(8, [10000, 28, 28], bytes(5000)))
    mnist_with("idx_gigabytes", "t10k-images-idx3-ubyte", idx(8, [1000000, 64, 64], bytes(84)))
    mnist_with("idx_gz_corrupt", "t10k-images-idx3-ubyte.gz", gzip.compress(idx(8, [2, 28, 28], bytes(1568)))[:-30] + bytes(30))
    mnist_with("idx_count_mismatch", "t10k-labels-idx1-ubyte", idx(8, [9999], bytes(9999)))
    mnist_with("idx_label_dtype", "t10k-labels-idx1-ubyte", idx(0x0C, [10000], bytes(40000)))
    mnist_with("idx_image_rank", "t10k-images-idx3-ubyte", idx(8, [10000, 784], bytes(7840000)))
    # Checkpoints.
    put("ckpt/not.syn", b"PK\x03\x04 this is a zip, not a checkpoint")
    put("ckpt/short.syn", b"SYNCKPT1\x10")
    put("ckpt/header_len.syn", b"SYNCKPT1" + struct.pack("<Q", 1 << 40) + bytes(8))
    hdr = b"{not json"
    put("ckpt/json.syn", b"SYNCKPT1" + struct.pack("<Q", len(hdr)) + hdr + bytes(4))
    # ONNX.
    put("onnx/garbage.onnx", b"\xff\xff\xff\xff not a protobuf")
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fuzz", "corpus", "onnx")
    put("onnx/bomb.onnx", open(os.path.join(corpus, "regression-constantofshape-40GB.onnx"), "rb").read())
    # Images.
    put("img/empty.png", b"")
    put("img/text.png", b"hello, this is not an image\n")
    put("img/blank.png", png(28, 28, [bytes(28)] * 28))
    put("img/huge.png", png(2, 2, [bytes(2)] * 2)[:16] + be32(60000, 4000) + png(2, 2, [bytes(2)] * 2)[24:])
    put("img/huge.pgm", b"P5\n4000 3000\n255\n" + bytes(10))
    # CSV tables.
    put("csv/cells.csv", "a,b,y\n1,2,0\n3,4\n5,6,1\n")
    put("csv/empty.csv", "")
    put("csv/repeated.csv", "a,a,y\n1,2,0\n")
    put("csv/ok.csv", "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    # JSON and text.
    put("json/poems_syntax.json", '[{"author": "a", "title": "t", "paragraphs": ["x"]')
    put("json/poems_object.json", '{"author": "a"}')
    put("text/not_utf8.txt", b"caf\xe9 au lait\n")
    put("run_bad_history/history.json", "{\"model\": \"softmax\",")
    # NPZ (read through read_probe: no command reads .npz).
    put("npz/not.npz", b"this is not a zip archive at all")
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + (b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }".ljust(117) + b"\n") + bytes(16)
    put("npz/f8.npz", zipfile_bytes("x.npy", npy))
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + (b"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }".ljust(117) + b"\n") + bytes(16)
    put("npz/fortran.npz", zipfile_bytes("x.npy", npy))
    good = zipfile_bytes("x.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) +
                         (b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }".ljust(117) + b"\n") + bytes(16))
    put("npz/crc.npz", good.replace(bytes(16), b"\x01" + bytes(15), 1))
    put("npz/truncated.npz", good[:60])


def zipfile_bytes(name, data):
    import io
    import zipfile
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr(name, data)
    return b.getvalue()


S = "synapse"
CASES = [
    # ---- command-line flags ----
    ("flag: --epochs 0", [S, "train", "softmax", "--epochs", "0"], r"--epochs: Value 0 is not an integer from 1 to 100000"),
    ("flag: unknown zoo model", [S, "train", "resnet"], r"unknown model 'resnet'; the zoo has: softmax, mlp, cnn, lenet5, keras-small, cifar-cnn, small-cnn, resnet-small"),
    ("flag: unknown optimizer", [S, "train", "softmax", "--optimizer", "sgdd", "--data", "{mnist}", "--logdir", "{w}/r1"], r"make_optimizer: unknown optimizer 'sgdd'; known: sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw"),
    ("flag: --precision fp16", [S, "train", "softmax", "--precision", "fp16"], r"--precision: unknown precision 'fp16' \(expected fp32 or bf16\)"),
    ("flag: --checkpoint-every 0", [S, "train", "softmax", "--checkpoint-every", "0"], r"--checkpoint-every: Value 0 is not an integer from 1 to 1099511627776"),
    ("flag: --port 70000", [S, "serve", "{model}", "--port", "70000"], r"--port: Value 70000 is not an integer from 0 to 65535"),
    ("env: SYNAPSE_ISA=avx9", ["env", "SYNAPSE_ISA=avx9", S, "summary", "cnn"], r"SYNAPSE_ISA=avx9: unknown kernel path \(expected one of generic, avx2, avx512; this CPU supports generic[a-z0-9, ]*\)"),
    ("env: SYNAPSE_READ_BUDGET=lots", ["env", "SYNAPSE_READ_BUDGET=lots", S, "eval", "{model}", "--data", "{mnist}"],
     r"SYNAPSE_READ_BUDGET=lots: expected a positive number of bytes with an optional K, M or G suffix"),
    ("env: read budget too small for MNIST", ["env", "SYNAPSE_READ_BUDGET=1M", S, "eval", "{model}", "--data", "{mnist}"],
     r"read_idx: '.*/train-images-idx3-ubyte': header \(shape \[60000,28,28\], uint8\) declares 47040000 bytes, more than the read budget of 1048576 bytes \(raise it with SYNAPSE_READ_BUDGET=BYTES or synapse::set_read_budget\)"),
    # ---- IDX (MNIST folders) ----
    ("idx: missing folder", [S, "eval", "{model}", "--data", "{w}/no_such_folder"], r"load_mnist: '{w}/no_such_folder' has no train-images-idx3-ubyte \(nor train-images-idx3-ubyte.gz\); the directory does not exist \(scripts/fetch-data mnist downloads MNIST\)"),
    ("idx: bad magic", [S, "eval", "{model}", "--data", "{w}/idx_magic"], r"read_idx: '{w}/idx_magic/t10k-images-idx3-ubyte': not an IDX file: expected magic number 0x00000803 \(images\) or 0x00000801 \(labels\) or another IDX magic 0x0000TTDD \(.*\), found 0x47494638"),
    ("idx: header cut short", [S, "eval", "{model}", "--data", "{w}/idx_short_header"], r"read_idx: '{w}/idx_short_header/t10k-images-idx3-ubyte': truncated header: magic 0x00000803 announces 3 dimensions, the file ends after 1 of them"),
    ("idx: data shorter than declared", [S, "eval", "{model}", "--data", "{w}/idx_truncated"],
     r"read_idx: '{w}/idx_truncated/t10k-images-idx3-ubyte': header says 10000 images of 28x28 = 7840000 bytes, file has 5000 bytes of data"),
    ("idx: 100 bytes declaring 4 GB", [S, "eval", "{model}", "--data", "{w}/idx_gigabytes"],
     r"read_idx: '{w}/idx_gigabytes/t10k-images-idx3-ubyte': header says 1000000 images of 64x64 = 4096000000 bytes, file has 84 bytes of data"),
    ("idx: corrupt gzip", [S, "eval", "{model}", "--data", "{w}/idx_gz_corrupt"], r"read_idx: '{w}/idx_gz_corrupt/t10k-images-idx3-ubyte.gz': corrupt gzip data: {w}/idx_gz_corrupt/t10k-images-idx3-ubyte.gz: incorrect data check"),
    ("idx: images and labels disagree", [S, "eval", "{model}", "--data", "{w}/idx_count_mismatch"], r"load_mnist: '{w}/idx_count_mismatch/t10k-images-idx3-ubyte' has 10000 images but '{w}/idx_count_mismatch/t10k-labels-idx1-ubyte' has 9999 labels"),
    ("idx: int32 labels", [S, "eval", "{model}", "--data", "{w}/idx_label_dtype"], r"load_mnist: '{w}/idx_label_dtype/t10k-labels-idx1-ubyte': expected uint8 labels \[N\] \(magic 0x00000801\), found int32 of shape \[10000\]"),
    ("idx: images of rank 2", [S, "eval", "{model}", "--data", "{w}/idx_image_rank"], r"load_mnist: '{w}/idx_image_rank/t10k-images-idx3-ubyte': expected uint8 images \[N, rows, cols\] \(magic 0x00000803\), found uint8 of shape \[10000,784\]"),
    ("idx: predict --index out of range", [S, "predict", "{model}", "{mnist}/t10k-images-idx3-ubyte", "--index", "10000"], r"--index 10000 is outside the 10000 images of '.*/t10k-images-idx3-ubyte'"),
    # ---- checkpoints ----
    ("checkpoint: not a checkpoint", [S, "eval", "{w}/ckpt/not.syn", "--data", "{mnist}"], r"load_checkpoint: '{w}/ckpt/not.syn' is not a Synapse checkpoint \(bad magic: expected \"SYNCKPT1\" at the start of the file\)"),
    ("checkpoint: truncated", [S, "eval", "{w}/ckpt/short.syn", "--data", "{mnist}"], r"load_checkpoint: '{w}/ckpt/short.syn' is truncated: 9 bytes, shorter than the smallest checkpoint"),
    ("checkpoint: header length past the end", [S, "eval", "{w}/ckpt/header_len.syn", "--data", "{mnist}"],
     r"load_checkpoint: '{w}/ckpt/header_len.syn' is truncated or corrupt: header length 1099511627776 runs past the end of the file \(24 bytes\)"),
    ("checkpoint: header not JSON", [S, "eval", "{w}/ckpt/json.syn", "--data", "{mnist}"], r"load_checkpoint: '{w}/ckpt/json.syn': file is corrupt: header is not valid JSON \(\[json.exception.parse_error.101\] parse error at line 1, column 3: .*\)"),
    ("checkpoint: run folder without model.syn", [S, "eval", "{w}/csv", "--data", "{mnist}"], r"load_checkpoint: cannot open '{w}/csv/model.syn': No such file or directory"),
    ("checkpoint: export of a missing model", [S, "export", "{w}/nope.syn", "-o", "{w}/x.onnx"], r"load_checkpoint: cannot open '{w}/nope.syn': No such file or directory"),
    # ---- ONNX ----
    ("onnx: not a protobuf", [S, "run", "{w}/onnx/garbage.onnx", "--data", "{mnist}"], r"'{w}/onnx/garbage.onnx' is not a valid onnx.ModelProto \(protobuf parse failed\)"),
    ("onnx: 87 bytes asking ConstantOfShape for 40 GB", [S, "run", "{w}/onnx/bomb.onnx", "--data", "{mnist}"],
     r"'{w}/onnx/bomb.onnx': ConstantOfShape node 'bomb': Tensor::empty: a tensor of shape \[100000,100000\] \(float32\) declares "
     r"40000000000 bytes, more than the read budget of \d+ bytes \(raise it with SYNAPSE_READ_BUDGET=BYTES or "
     r"synapse::set_read_budget\)"),
    ("onnx: missing file", [S, "run", "{w}/onnx/none.onnx", "--data", "{mnist}"], r"cannot open '{w}/onnx/none.onnx'"),
    # ---- images (predict) ----
    ("image: empty file", [S, "predict", "{model}", "{w}/img/empty.png"], r"cannot read image '{w}/img/empty.png': it is empty \(0 bytes\)"),
    ("image: not an image", [S, "predict", "{model}", "{w}/img/text.png"], r"cannot read image '{w}/img/text.png': not a PNG, JPEG, BMP, GIF, TGA or PNM image stb_image can decode \(unknown image type\)"),
    ("image: blank (no digit)", [S, "predict", "{model}", "{w}/img/blank.png"], r"'{w}/img/blank.png': mnist_style: no digit found: the image is blank \(dark paper at 0.00, noise 0.000; the strongest ink differs from the paper by 0.000, below the 0.100 a stroke needs\)"),
    ("image: 68 bytes declaring 60000x4000", [S, "predict", "{model}", "{w}/img/huge.png"],
     r"cannot read image '{w}/img/huge.png': its header declares 60000x4000 pixels \(at least 30000000 bytes of rows\), but 68 bytes of PNG inflate to at most 71200"),
    ("image: 27-byte PNM declaring 4000x3000", [S, "predict", "{model}", "{w}/img/huge.pgm"],
     r"cannot read image '{w}/img/huge.pgm': its PNM header declares 4000x3000 pixels of 1 channel\(s\), 12000000 samples, but the file has 27 bytes"),
    ("image: missing file", [S, "predict", "{model}", "{w}/img/none.png"], r"cannot read image '{w}/img/none.png': no such file"),
    # ---- CSV tables ----
    ("csv: row with too few cells", [S, "tabular", "train", "{w}/csv/cells.csv", "--target", "y", "--out", "{w}/t1"], r"read_table: '{w}/csv/cells.csv': line 3: expected 3 cells \(one per column of the header\), found 2"),
    ("csv: empty file", [S, "tabular", "train", "{w}/csv/empty.csv", "--target", "y", "--out", "{w}/t2"], r"read_table: '{w}/csv/empty.csv' is empty: expected a header row with the column names"),
    ("csv: repeated column name", [S, "tabular", "train", "{w}/csv/repeated.csv", "--target", "y", "--out", "{w}/t3"], r"read_table: '{w}/csv/repeated.csv': line 1, column 2: the column name 'a' appears twice"),
    ("csv: --target not a column", [S, "tabular", "train", "{w}/csv/ok.csv", "--target", "z", "--out", "{w}/t4"], r"'{w}/csv/ok.csv' has no column 'z'; its columns are: a, b, y"),
    ("csv: --delimiter of two characters", [S, "tabular", "train", "{w}/csv/ok.csv", "--target", "y", "--delimiter", ";;"], r"--delimiter: ';;' is not one character such as , or ; \(or tab\) that cannot be part of a quote or a line end"),
    # ---- JSON and text ----
    ("json: poems file with a syntax error", [S, "poem", "train", "--data", "{w}/json/poems_syntax.json", "--logdir", "{w}/p1"], r"'{w}/json/poems_syntax.json' is not valid JSON: \[json.exception.parse_error.101\] parse error at line 1, column 51: .*"),
    ("json: poems file not an array", [S, "poem", "train", "--data", "{w}/json/poems_object.json", "--logdir", "{w}/p2"], r"'{w}/json/poems_object.json': expected a JSON array of poems"),
    ("json: run with a corrupt history.json", [S, "report", "{w}/run_bad_history"], r"'{w}/run_bad_history/history.json' is not valid JSON: \[json.exception.parse_error.101\] parse error at line 1, column 21: .*"),
    ("text: not UTF-8", [S, "text", "train", "{w}/text/not_utf8.txt", "--logdir", "{w}/x1"], r"{w}/text/not_utf8.txt: invalid UTF-8 at byte offset 4: byte 0x20 is not a continuation byte"),
    # ---- NPZ (read_probe) ----
    ("npz: not a zip", ["probe", "npz", "{w}/npz/not.npz"], r"load_npz: '{w}/npz/not.npz': not a zip file, or truncated \(no end-of-central-directory record\)"),
    ("npz: float64 array", ["probe", "npz", "{w}/npz/f8.npz"], r"load_npz: '{w}/npz/f8.npz': member 'x.npy': unsupported dtype '<f8' \(supported: <f4 <i4 <i8 \|u1 \|b1\)"),
    ("npz: Fortran order", ["probe", "npz", "{w}/npz/fortran.npz"], r"load_npz: '{w}/npz/fortran.npz': member 'x.npy': the array is in Fortran order.*"),
    ("npz: CRC mismatch", ["probe", "npz", "{w}/npz/crc.npz"], r"load_npz: '{w}/npz/crc.npz': member 'x.npy': member is corrupt \(CRC32 mismatch: zip says [0-9a-f]{8}, data has [0-9a-f]{8}\)"),
    ("npz: truncated", ["probe", "npz", "{w}/npz/truncated.npz"], r"load_npz: '{w}/npz/truncated.npz': not a zip file, or truncated.*"),
]

# serve: (name, method, path, body file or bytes, expected status, expected "error" regex)
HTTP = [
    ("serve: body that is no image", "POST", "/predict", b"hello", 400, r"cannot read image 'request body': not a PNG, JPEG, BMP, GIF, TGA or PNM image stb_image can decode \(unknown image type\)"),
    ("serve: blank image", "POST", "/predict", "img/blank.png", 422, r"'request body': mnist_style: no digit found: the image is blank \(.*\)"),
    ("serve: GET /predict", "GET", "/predict", None, 405, r"GET /predict: method not allowed; send the image with POST"),
    ("serve: unknown page", "GET", "/nope", None, 404, r"no such page: GET /nope \(try GET /, GET /healthz, POST /predict\)"),
    ("serve: body above --max-kb", "POST", "/predict", b"\x89PNG" + bytes(2 << 20), 413, r"the request body is larger than the limit of 1048576 bytes"),
]


def run_http(synapse, model, w, failures, verbose):
    p = subprocess.Popen([synapse, "serve", model, "--port", "0", "--max-kb", "1024"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for line in p.stdout:
            m = re.search(r"http://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            failures.append("serve: the server did not print its address")
            return
        for name, method, path, body, status, expected in HTTP:
            if isinstance(body, str):
                body = open(os.path.join(w, body), "rb").read()
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    got, text = r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                got, text = e.code, e.read().decode()
            except (urllib.error.URLError, ConnectionError) as e:
                got, text = 0, str(e)
            try:
                err = json.loads(text).get("error", "")
            except ValueError:
                err = text
            ok = got == status and re.fullmatch(expected, err)
            if verbose or not ok:
                print(f"{'ok  ' if ok else 'FAIL'} {name}: HTTP {got}: {err}")
            if not ok:
                failures.append(f"{name}: expected HTTP {status} and error matching {expected!r}, got {got}: {err}")
    finally:
        p.kill()
        p.wait()


def main():
    if sys.argv[1:] == ["--list"]:
        for name, *_ in CASES + HTTP:
            print(name)
        return 0
    synapse, probe, mnist, w = sys.argv[1:5]
    verbose = "-v" in sys.argv
    if not os.path.exists(os.path.join(mnist, "t10k-images-idx3-ubyte")):
        print(f"skipped: no MNIST in {mnist} (scripts/fetch-data mnist)")
        return 77
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    make_files(w, mnist)
    model = os.path.join(w, "model")
    subprocess.run([synapse, "train", "softmax", "--steps", "2", "--data", mnist, "--logdir", model, "--threads", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    failures = []
    for name, argv, expected in CASES:
        argv = [a.format(w=w, mnist=mnist, model=model) for a in argv]
        argv = [synapse if a == S else probe if a == "probe" else a for a in argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        # The last "error:" line, else (a flag refused by CLI11) the first line of stderr.
        lines = [l for l in out.stderr.splitlines() if l and not l.startswith("Run with --help")]
        errors = [l for l in lines if l.startswith(("synapse: error: ", "error: "))] or lines[:1] or [""]
        line = re.sub(r"^(synapse: )?error: ", "", errors[-1])
        pattern = expected.replace("{w}", re.escape(w))
        ok = out.returncode != 0 and re.fullmatch(pattern, line) is not None
        if verbose or not ok:
            print(f"{'ok  ' if ok else 'FAIL'} {name} (exit {out.returncode}): {line}")
        if not ok:
            failures.append(f"{name}: expected a non-zero exit and a message matching {pattern!r}; got exit "
                            f"{out.returncode}:\n{out.stderr}")
    run_http(synapse, model, w, failures, verbose)
    total = len(CASES) + len(HTTP)
    if failures:
        print(f"{len(failures)} of {total} cases failed:\n" + "\n".join(failures))
        return 1
    print(f"all {total} bad-input cases give their message and a non-zero exit (or HTTP status)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
