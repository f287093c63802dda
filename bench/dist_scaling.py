#!/usr/bin/env python3
"""Data-parallel scaling on this machine: bench/dist_scaling (built with SYNAPSE_BUILD_BENCH=ON) under
mpirun with 1, 2 and 4 ranks x 1 thread, against 1 rank x 2 threads; images/s, the step time and the
time per step spent in gradient averaging (DistributedOptimizer's own clock), as a Markdown table.

    python3 bench/dist_scaling.py [--build build-bench] [--steps 40] [--model cnn] [--batch 50]

Measures only when the 1-minute load average is below 1.2; otherwise the table is marked provisional.
Scaling efficiency = images/s / (ranks x threads x the 1 x 1 images/s): ranks beyond the core count
(4 ranks on 2 cores) share cores, so it cannot exceed cores / (ranks x threads) there.
"""
import argparse
import json
import os
import subprocess


def run(build, ranks, threads, steps, model, batch, extra=()):
    cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "-x", f"OMP_NUM_THREADS={threads}", "-np", str(ranks),
           os.path.join(build, "bench", "dist_scaling"), "--model", model, "--threads", str(threads), "--steps", str(steps),
           "--batch", str(batch), "--warmup", "5", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--batch", type=int, default=50)
    a = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    load_before = os.getloadavg()[0]
    rows = []
    for ranks, threads in [(1, 1), (2, 1), (4, 1), (1, 2)]:
        rows.append(run(a.build, ranks, threads, a.steps, a.model, a.batch))
    load_after = os.getloadavg()[0]
    quiet = max(load_before, load_after) < 1.2
    base = rows[0]["images_per_s"]
    print(f"{a.model}, batch {a.batch} per rank, {a.steps} timed steps; CPU: {cpu}, {os.cpu_count()} cores; load average "
          f"{load_before:.2f} before, {load_after:.2f} after" + ("" if quiet else " (PROVISIONAL: load >= 1.2)"))
    print()
    print("| ranks x threads | images/s | ms/step | gradient averaging: wait ms/step | pack ms/step | efficiency |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        eff = r["images_per_s"] / (r["ranks"] * r["threads"] * base)
        print(f"| {r['ranks']} x {r['threads']} | {r['images_per_s']:.0f} | {r['ms_per_step']:.1f} | {r['comm_wait_ms']:.2f} "
              f"| {r['comm_pack_ms']:.2f} | {eff:.0%} |")
    print()
    print(f"gradient bytes per step: {rows[0]['param_bytes']} ({rows[0]['buckets']} buckets); ring allreduce per rank: "
          f"2(N-1)/N x that")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
