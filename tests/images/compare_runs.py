#!/usr/bin/env python3
"""The image-folder path against the IDX path on the same images (issue 24's end-to-end check).

    compare_runs.py SYNAPSE MAKE_COLOUR_DATA IDX_DIR WORK N_TRAIN N_TEST EPOCHS TOLERANCE_POINTS [MODEL]

Writes the first N_TRAIN / N_TEST images of IDX_DIR as PNG class folders and as IDX files, trains MODEL
(default lenet5) on each with `synapse train` (IDX) and `synapse train image-folder` (PNG, grey, 28x28,
the same 10% held out for validation), and fails when the test accuracies differ by more than
TOLERANCE_POINTS percentage points. Both runs print their accuracy; the difference is printed last.
"""
import re
import subprocess
import sys


def accuracy(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"test accuracy: ([0-9.]+)%", out)
    if not m:
        sys.exit("no test accuracy in the output of %s:\n%s" % (" ".join(cmd), out))
    return float(m.group(1))


def main():
    synapse, make, idx_dir, work, n_train, n_test, epochs, tol = sys.argv[1:9]
    model = sys.argv[9] if len(sys.argv) > 9 else "lenet5"
    subprocess.run([make, "idx-folders", idx_dir, work, n_train, n_test], check=True)
    common = ["--epochs", epochs, "--seed", "1", "--augment", "0"]
    a = accuracy([synapse, "train", model, "--data", work + "/idx", "--logdir", work + "/run_idx"] + common)
    b = accuracy([synapse, "train", "image-folder", "--model", model, "--grayscale", "--image-size", "28",
                  "--validation-split", "0.1", "--data", work + "/png", "--logdir", work + "/run_png"] + common)
    print("IDX files: %.2f%%  PNG folders: %.2f%%  difference: %.2f points (tolerance %s)" % (a, b, abs(a - b), tol))
    if abs(a - b) > float(tol):
        sys.exit("the image-folder run differs from the IDX run by more than %s points" % tol)


if __name__ == "__main__":
    main()
