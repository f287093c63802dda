#!/usr/bin/python3
"""PyTorch reference for micro_bench's depthwise rows: MobileNetV2's depthwise 3x3 layers as
torch.nn.functional.conv2d with groups = channels, channels_last (NHWC memory, like Synapse), forward
and (batch 8) the two gradients, in GFLOP/s and GB/s counted as micro_bench counts them.

    /usr/bin/python3 bench/torch_depthwise.py --threads 2

Uses Debian's python3-torch (run it with /usr/bin/python3). Prints one line per case and pass, and with
--json one JSON object per line.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

CASES = [  # name, (N, H, W, C), stride: the names of micro_bench's rows
    ("mnv2_112x112x96_s2_b1", (1, 112, 112, 96), 2),
    ("mnv2_56x56x144_s1_b1", (1, 56, 56, 144), 1),
    ("mnv2_14x14x576_s1_b1", (1, 14, 14, 576), 1),
    ("mnv2_7x7x960_s1_b1", (1, 7, 7, 960), 1),
    ("mnv2_112x112x96_s2_b8", (8, 112, 112, 96), 2),
    ("mnv2_56x56x144_s1_b8", (8, 56, 56, 144), 1),
    ("mnv2_14x14x576_s1_b8", (8, 14, 14, 576), 1),
    ("mnv2_7x7x960_s1_b8", (8, 7, 7, 960), 1),
]


def timed(fn, min_seconds):
    """(median wall seconds per call, mean process CPU seconds per call) over calls lasting at least
    min_seconds in all. On a loaded machine the CPU time is the fairer figure (micro_bench reports both)."""
    for _ in range(3):
        fn()
    times, total = [], 0.0
    c0 = time.process_time()
    while total < min_seconds or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
    cpu = (time.process_time() - c0) / len(times)
    times.sort()
    return times[len(times) // 2], cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=0.5, help="time per case and pass")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, (n, h, w, c), s in CASES:
        x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
        k = torch.randn(c, 1, 3, 3)
        b = torch.randn(c)
        oh, ow = (h + s - 1) // s, (w + s - 1) // s
        flops = 2.0 * 9 * n * oh * ow * c
        nbytes = 4.0 * (n * h * w * c + n * oh * ow * c + 9 * c)
        passes = {"fwd": lambda: F.conv2d(x, k, b, stride=s, padding=1, groups=c)}
        if n > 1:
            xg = x.clone().requires_grad_(True)
            kg = k.clone().requires_grad_(True)
            y = F.conv2d(xg, kg, None, stride=s, padding=1, groups=c)
            dy = torch.randn_like(y).contiguous(memory_format=torch.channels_last)
            passes["bwd_input"] = lambda: torch.autograd.grad(y, xg, dy, retain_graph=True)
            passes["bwd_filter"] = lambda: torch.autograd.grad(y, kg, dy, retain_graph=True)
        with torch.no_grad() if n == 1 else torch.enable_grad():
            for what, fn in passes.items():
                sec, cpu = timed(fn, args.seconds)
                row = {"name": f"torch_depthwise_{what}/{name}", "threads": args.threads, "us": sec * 1e6,
                       "cpu_us": cpu * 1e6, "GFLOPS": flops / sec * 1e-9, "GBps": nbytes / sec * 1e-9}
                if args.json:
                    print(json.dumps(row))
                else:
                    print(f"{row['name']:48s} threads {args.threads}  {row['us']:9.1f} us  (cpu {row['cpu_us']:9.1f} us)  "
                          f"{row['GFLOPS']:6.2f} GFLOP/s  {row['GBps']:6.2f} GB/s")


if __name__ == "__main__":
    main()
