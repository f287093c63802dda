#!/usr/bin/python3
"""A/B: the same benchmark rows from two builds of Synapse, run in alternation in one session.

    /usr/bin/python3 bench/ab.py --a BUILD_BEFORE --b BUILD_AFTER [--reps 3] [--models cnn,lenet5]

Each build dir must hold bench/synapse_bench (and bench/lstm_bench for the lstm-lm row); build an older
commit's with `git worktree add ../before COMMIT` and `cmake --build ../before/build --target synapse_bench
lstm_bench`. For every model and repetition it runs A then B (then B then A on the next repetition, so a
drift of the machine favours neither), one process per run with Synapse's defaults (2 threads, a clean
environment), and prints the medians and B / A for every training and inference row: a ratio below 1 is a
row that got slower. Issue #18 (architecture) used it to show the refactor cost nothing.

Standard library only; run with /usr/bin/python3.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: the models, their step counts, CPU name, environment)

ROWS = [("train_ips", "train img/s"), ("infer_ips_1000", "infer img/s, batch 1000"), ("infer_ips_1", "infer img/s, batch 1")]
SEQ_ROWS = [("train_cps", "train chars/s", True), ("gen_us_per_char", "generation µs/char", False)]


def run_one(build, model, args):
    env = {k: v for k, v in os.environ.items() if k not in bench.CLEARED}
    if model == bench.SEQ_MODEL:
        sizes = [x for k, v in bench.SEQ_SIZES.items() for x in (f"--{k}", str(v))]
        cmd = [os.path.join(build, "bench", "lstm_bench")] + sizes + [
            "--threads", "2", "--warmup", str(bench.SEQ_STEPS[0]), "--steps", str(bench.SEQ_STEPS[1]),
            "--gen", str(bench.SEQ_GEN)]
    else:
        w, s = bench.STEPS[model]
        cmd = [os.path.join(build, "bench", "synapse_bench"), "--model", model, "--threads", "2", "--warmup", str(w),
               "--steps", str(s), "--infer1", str(bench.INFER1), "--data", args.data, "--t0-ns", "0"]
    if args.quick:
        cmd.append("--quick")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode != 0 or not line.startswith("{"):
        bench.log(f"  FAILED {build} {model}: {p.stderr.strip()[-300:]}")
        return None
    return json.loads(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the build before (its bench/ folder is used)")
    ap.add_argument("--b", required=True, help="the build after")
    ap.add_argument("--models", default=",".join(bench.MODELS + [bench.SEQ_MODEL]))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data", default=os.path.join(bench.ROOT, "data", "mnist"))
    ap.add_argument("--quick", action="store_true", help="few steps: a smoke test, not a measurement")
    ap.add_argument("--timeout", type=int, default=900)
    args = ap.parse_args()
    results = {}
    for model in args.models.split(","):
        for rep in range(args.reps):
            order = [("A", args.a), ("B", args.b)] if rep % 2 == 0 else [("B", args.b), ("A", args.a)]
            for side, build in order:
                r = run_one(build, model, args)
                if r:
                    results.setdefault((model, side), []).append(r)
                    bench.log(f"  {model:12} {side} rep {rep + 1}: " + ", ".join(
                        f"{k} {r[k]:.1f}" for k in ("train_ips", "infer_ips_1000", "infer_ips_1", "train_cps", "gen_us_per_char")
                        if k in r))
    print(f"A/B measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores of "
          f"{bench.cpu_model()}, load average {bench.loadavg():.1f} at the end; medians of {args.reps} alternating runs, "
          f"2 threads.\nA = {args.a}\nB = {args.b}\n")
    print("| model | row | A | B | B / A (above 1: B faster) |\n|---|---|---|---|---|")
    slower = []
    for model in args.models.split(","):
        rows = [(k, n, True) for k, n in ROWS] if model != bench.SEQ_MODEL else SEQ_ROWS
        for key, name, higher_better in rows:
            a = [r[key] for r in results.get((model, "A"), []) if key in r]
            b = [r[key] for r in results.get((model, "B"), []) if key in r]
            if not a or not b:
                print(f"| {model} | {name} | — | — | — |")
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            speed = mb / ma if higher_better else ma / mb
            if speed < 0.97:
                slower.append(f"{model} {name}")
            print(f"| {model} | {name} | {ma:,.1f} | {mb:,.1f} | {speed:.2f} |")
    print("\nRows more than 3% slower in B: " + (", ".join(slower) if slower else "none"))


if __name__ == "__main__":
    main()
