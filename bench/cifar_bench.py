#!/usr/bin/python3
"""The cifar-cnn training step: Synapse against PyTorch (Debian's python3-torch), the same model and batch.

    /usr/bin/python3 bench/cifar_bench.py [--build build-bench] [--reps 3] [--threads 2] [--steps 30]

Runs bench/synapse_bench --model cifar-cnn and bench/torch_ref.py --model cifar-cnn in alternation,
--reps times each, one process per run, on synthetic data of CIFAR-10's shape ([10240, 32, 32, 3]
standard-normal images, batch 128, no augmentation on either side), and prints the median training
images/s of each, the ratio and the load average before and after. Writes bench/results-cifar.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("SYNAPSE_BUILD_DIR", os.path.join(ROOT, "build-bench")))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    common = ["--model", "cifar-cnn", "--threads", str(a.threads), "--warmup", str(a.warmup), "--steps", str(a.steps),
              "--infer1", "200"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    load0 = os.getloadavg()
    syn, torch = [], []
    for rep in range(a.reps):
        syn.append(run([os.path.join(a.build, "bench", "synapse_bench")] + common, dict(os.environ)))
        torch.append(run(["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_ref.py")] + common, env))
        print(f"rep {rep + 1}: synapse {syn[-1]['train_ips']:.0f} img/s, torch {torch[-1]['train_ips']:.0f} img/s",
              file=sys.stderr)
    load1 = os.getloadavg()
    s = statistics.median(r["train_ips"] for r in syn)
    t = statistics.median(r["train_ips"] for r in torch)
    si = statistics.median(r["infer_ips_1000"] for r in syn)
    ti = statistics.median(r["infer_ips_1000"] for r in torch)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# cifar-cnn training step: Synapse against PyTorch",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, {a.threads} threads, batch 128, "
        f"median of {a.reps} interleaved runs of {a.steps} timed steps; load average {load0[0]:.2f} before, {load1[0]:.2f} after"
        + (" (a busy machine: provisional)" if max(load0[0], load1[0]) >= 1.2 else ""),
        "",
        "| | Synapse | PyTorch | Synapse / PyTorch |",
        "|---|---|---|---|",
        f"| training images/s | {s:.0f} | {t:.0f} | {s / t:.2f}x |",
        f"| inference images/s (batch 1000) | {si:.0f} | {ti:.0f} | {si / ti:.2f}x |",
        f"| training GFLOP/s (Synapse's declared FLOPs) | {statistics.median(r['train_gflops'] for r in syn):.1f} | | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(ROOT, "bench", "results-cifar.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
