#!/usr/bin/env python3
"""The synthesised real-world suite: `synapse predict --json` on make_digit_suite's folders.

    check_digit_suite.py SYNAPSE RUN SUITE_DIR [--tolerance POINTS] [--raw-gap POINTS]

Accuracy on SUITE_DIR/clean (MNIST's own 28x28 digits) against SUITE_DIR/real (inverted, scaled 2-8x,
off-centre on grey noisy paper, JPEG/PNG/RGB/RGBA), the labels taken from the file names (NNNN-LABEL.ext).
Passes when the real photos read through data::mnist_style are within --tolerance points of the clean
digits, and the same photos without preprocessing (--raw) are at least --raw-gap points worse.
"""
import argparse
import json
import os
import subprocess
import sys


FORMATS = ["grey JPEG", "grey PNG", "RGB JPEG", "RGBA PNG"]  # make_digit_suite's formats, in turn


def label(result):
    return int(os.path.basename(result["file"]).split("-")[1].split(".")[0])


def accuracy(synapse, run, folder, *flags, by_format=None):
    out = subprocess.run([synapse, "predict", run, folder, "--json", *flags], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"synapse predict {folder} {' '.join(flags)} failed ({out.returncode}):\n{out.stderr}")
    results = json.loads(out.stdout)["results"]
    right = sum(label(r) == r["prediction"] for r in results)
    if by_format is not None:
        for r in results:
            f = FORMATS[int(os.path.basename(r["file"]).split("-")[0]) % 4]
            by_format.setdefault(f, []).append(label(r) == r["prediction"])
    return 100.0 * right / len(results), len(results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("synapse")
    ap.add_argument("run")
    ap.add_argument("suite")
    ap.add_argument("--tolerance", type=float, default=3.0)
    ap.add_argument("--raw-gap", type=float, default=20.0)
    a = ap.parse_args()
    clean, n = accuracy(a.synapse, a.run, os.path.join(a.suite, "clean"), "--raw")
    formats = {}
    real, m = accuracy(a.synapse, a.run, os.path.join(a.suite, "real"), by_format=formats)
    raw, _ = accuracy(a.synapse, a.run, os.path.join(a.suite, "real"), "--raw")
    print(f"clean MNIST digits:              {clean:6.2f}% of {n}")
    print(f"real-world photos, mnist_style:  {real:6.2f}% of {m}")
    print(f"real-world photos, raw resize:   {raw:6.2f}% of {m}")
    print("photos by format, mnist_style:   " +
          ", ".join(f"{f} {100.0 * sum(v) / len(v):.1f}% of {len(v)}" for f, v in sorted(formats.items())))
    ok = True
    if real < clean - a.tolerance:
        print(f"FAIL: the photos read {real:.2f}%, more than {a.tolerance} points below the clean {clean:.2f}%")
        ok = False
    if raw > real - a.raw_gap:
        print(f"FAIL: without preprocessing the photos read {raw:.2f}%, not {a.raw_gap} points below {real:.2f}%")
        ok = False
    print("suite: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
