#!/usr/bin/env python3
"""synapse predict / export / report / serve on colour runs (issue 24), against the runs the CLI tests train:
an image-folder run (small-cnn, 16x16 RGB, classes class_0..2) and a cifar-cnn run (32x32 RGB, standardised).
    colour_cli.py predict SYNAPSE FOLDER_RUN FOLDERS CIFAR_RUN CIFAR_DIR OUT
    colour_cli.py export  SYNAPSE FOLDER_RUN CIFAR_RUN OUT
    colour_cli.py report  SYNAPSE FOLDER_RUN FOLDERS OUT
    colour_cli.py serve   SYNAPSE FOLDER_RUN FOLDERS OUT
Each prints one line per check and exits 1 if any failed."""
import base64
import json
import os
import re
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serve"))
from serve_util import Server  # noqa: E402

failures = []
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)


def run(*args, ok=True):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def rgb_png(width, height, pixels):
    """An 8-bit RGB PNG from a row-major list of (r, g, b) tuples."""
    raw = b"".join(b"\0" + bytes(v for px in pixels[y * width:(y + 1) * width] for v in px) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_header(data):
    """(width, height, colour type) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    w, h, _, kind = struct.unpack(">IIBB", data[16:26])
    return w, h, kind


def eval_accuracy(synapse, run_dir, data):
    out = run(synapse, "eval", run_dir, "--data", data).stdout
    m = re.search(r"test accuracy: ([0-9.]+)% on (\d+) images", out)
    return float(m.group(1)), int(m.group(2))


def test_files(folders):
    files = []
    for k in range(3):
        d = os.path.join(folders, "test", f"class_{k}")
        files += [(os.path.join(d, f), f"class_{k}") for f in sorted(os.listdir(d))]
    return files


def predict(synapse, folder_run, folders, cifar_run, cifar_dir, out):
    # The image-folder run: every test image, labelled with the run's class names; as many right as eval says.
    files = test_files(folders)
    j = json.loads(run(synapse, "predict", folder_run, *[os.path.join(folders, "test", f"class_{k}") for k in range(3)],
                       "--json").stdout)
    res = j["results"]
    check("one result per test image", len(res) == len(files), len(res))
    check("three probabilities each, labels are the class folders",
          all(len(r["probabilities"]) == 3 and r["label"] == f"class_{r['prediction']}" for r in res))
    check("preprocessing named", j["preprocessing"] == "resized to 16x16 RGB images" and j["classes"] == ["class_0", "class_1", "class_2"],
          j["preprocessing"])
    right = sum(r["label"] == truth for r, (_, truth) in zip(res, files))
    acc, n = eval_accuracy(synapse, folder_run, folders)
    check("predict on the PNGs agrees with eval", n == len(files) and abs(100.0 * right / n - acc) < 0.01, f"{right}/{n} vs {acc}%")
    # A 48x48 image is resized to the model's 16x16; --show writes what the model saw (RGB).
    big = os.path.join(out, "big.png")
    with open(big, "wb") as f:
        f.write(rgb_png(48, 48, [((x * 5) % 256, (y * 5) % 256, 128) for y in range(48) for x in range(48)]))
    p = run(synapse, "predict", folder_run, big, "--show", os.path.join(out, "shown"))
    check("one image: prediction and the three classes",
          re.search(r"prediction: class_[0-2] \([0-9.]+%\)\n  class_0: [0-9.]+\n  class_1: [0-9.]+\n  class_2: [0-9.]+", p.stdout) is not None,
          p.stdout)
    shown = os.path.join(out, "shown", "big-16x16.png")
    check("--show wrote the 16x16 RGB image the model saw", os.path.exists(shown) and png_header(open(shown, "rb").read()) == (16, 16, 2))
    # Modes that make no sense for a colour model are refused, naming what the model takes.
    p = run(synapse, "predict", folder_run, big, "--raw", ok=False)
    check("--raw refused", p.returncode != 0 and "--raw is for MNIST models" in p.stderr and "takes 16x16 RGB images" in p.stderr, p.stderr)
    idx = os.path.join(out, "t10k-images-idx3-ubyte")
    with open(idx, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 1, 28, 28) + bytes(784))
    p = run(synapse, "predict", folder_run, idx, ok=False)
    check("an IDX file refused", p.returncode != 0 and "is an IDX file (MNIST digits); model 'small-cnn' takes 16x16 RGB images" in p.stderr,
          p.stderr)

    # The cifar-cnn run (standardised per image): its test batch written as PNGs; as many right as eval says.
    data = open(os.path.join(cifar_dir, "test_batch.bin"), "rb").read()
    pngs, labels = [], []
    os.makedirs(os.path.join(out, "cifar"), exist_ok=True)
    for i in range(len(data) // 3073):
        rec = data[i * 3073:(i + 1) * 3073]
        px = [(rec[1 + p], rec[1 + 1024 + p], rec[1 + 2048 + p]) for p in range(1024)]
        path = os.path.join(out, "cifar", f"{i:03d}.png")
        with open(path, "wb") as f:
            f.write(rgb_png(32, 32, px))
        pngs.append(path)
        labels.append(rec[0])
    j = json.loads(run(synapse, "predict", cifar_run, os.path.join(out, "cifar"), "--json").stdout)
    check("cifar: CIFAR-10's class names", all(r["label"] == CIFAR[r["prediction"]] for r in j["results"]) and
          j["preprocessing"] == "resized to 32x32 RGB images, standardised per image", j["preprocessing"])
    right = sum(r["prediction"] == y for r, y in zip(j["results"], labels))
    acc, n = eval_accuracy(synapse, cifar_run, cifar_dir)
    check("cifar: predict on the PNGs agrees with eval (standardised alike)", n == len(pngs) and abs(100.0 * right / n - acc) < 0.01,
          f"{right}/{n} vs {acc}%")


def export(synapse, folder_run, cifar_run, out):
    for run_dir, side, extra in ((folder_run, 16, "outputs: class_0, class_1, class_2"),
                                 (cifar_run, 32, "each standardised first as in training")):
        onnx = os.path.join(out, f"{os.path.basename(run_dir)}.onnx")
        p = run(synapse, "export", run_dir, "-o", onnx)
        check(f"{os.path.basename(run_dir)}: input [N, {side}, {side}, 3]",
              f"input:  input float32 [N, {side}, {side}, 3]" in p.stdout and extra in p.stdout, p.stdout)
        check(f"{os.path.basename(run_dir)}: the file", os.path.getsize(onnx) > 1000)


def report(synapse, folder_run, folders, out):
    page = os.path.join(out, "report.html")
    p = run(synapse, "report", folder_run, "--data", folders, "-o", page, "--samples", "12")
    html = open(page).read()
    check("the report is written", p.stdout.strip() == f"report: {page}", p.stdout)
    check("confusion matrix with the class names", 'id="confusion"' in html and "true class_1 predicted" in html)
    images = re.findall(r'<figure class="sample (?:right|wrong)"><img alt="test image \d+" src="data:image/png;base64,([^"]+)"', html)
    check("12 test images shown", len(images) >= 12, len(images))
    check("in colour, at the model's size", all(png_header(base64.b64decode(i)) == (16, 16, 2) for i in images))
    check("the test labels counted", "Test labels" in html and "among the 30 images of the test set" in html)
    acc, _ = eval_accuracy(synapse, folder_run, folders)
    check("its accuracy is eval's", f'<div class="value">{acc:.2f}%</div>' in html, acc)


def serve(synapse, folder_run, folders, out):
    files = test_files(folders)
    with Server(synapse, folder_run) as s:
        status, _, body = s.request("GET", "/healthz")
        h = json.loads(body)
        check("/healthz: input and classes", status == 200 and h["input"] == [16, 16, 3] and h["classes"] == ["class_0", "class_1", "class_2"], body)
        status, _, body = s.request("GET", "/")
        check("GET / says how to POST images", status == 200 and b"POST /predict" in body and b"16x16 RGB" in body, body[:300])
        image = open(files[0][0], "rb").read()
        status, _, body = s.request("POST", "/predict", image, {"Content-Type": "image/png"})
        j = json.loads(body)
        check("POST /predict: three probabilities and a class name",
              status == 200 and len(j["probabilities"]) == 3 and j["label"] == f"class_{j['prediction']}" and "image" not in j, body[:300])
        local = json.loads(run(synapse, "predict", folder_run, files[0][0], "--json").stdout)["results"][0]
        check("the same probabilities as predict", all(abs(a - b) < 1e-5 for a, b in zip(j["probabilities"], local["probabilities"])))
        big = rgb_png(40, 40, [(200, (x * 6) % 256, (y * 6) % 256) for y in range(40) for x in range(40)])
        status, _, body = s.request("POST", "/predict", big)
        check("a 40x40 image is resized", status == 200 and len(json.loads(body)["probabilities"]) == 3, body[:200])
        status, _, body = s.request("POST", "/predict", b"not an image")
        check("a body that is no image: 400", status == 400 and b"request body" in body, body[:200])


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    os.makedirs(args[-1], exist_ok=True)
    {"predict": predict, "export": export, "report": report, "serve": serve}[mode](*args)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
