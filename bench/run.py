#!/usr/bin/python3
"""Runs the Synapse benchmark suite against the PyTorch and libtorch references (scripts/bench calls it).

For each zoo model it runs, in alternation and --reps times, Synapse (its defaults, 2 threads; and 1
thread for the scaling ratio), the libtorch reference (bench/libtorch_ref.cpp) and the PyTorch reference
(bench/torch_ref.py) with 1 and with 2 threads, one process per run, and prints the medians: training
images/s, inference images/s at batch 1000 and 1, peak resident memory during training and the time from
process start to the first trained batch, the ratio of Synapse to the fastest reference and whether the
issue's targets are met. Then it runs micro_bench (GEMM, conv2d, pooling, cross-entropy vs the measured
FMA peak). Writes the tables to bench/results.md and every raw JSON line to bench/results.jsonl.

The references get their best settings: one BLAS thread under torch's own threads
(OPENBLAS_NUM_THREADS=1), one inter-op thread, torch.inference_mode, and, per model and thread count,
the fastest of the OpenMP wait policies below (a short tuning run of each first). Synapse runs with a
clean environment: its defaults are what users get.

Standard library only; run with /usr/bin/python3.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["softmax", "mlp", "cnn", "lenet5", "keras-small", "cifar-cnn"]
# (warmup, timed steps) per model: each timed phase lasts a few seconds on 2 cores. cifar-cnn (the TF
# CIFAR-10 tutorial's model, batch 128) trains on synthetic data of CIFAR-10's shape on every side
# ([10240, 32, 32, 3] standard-normal images, no augmentation); the others on MNIST.
STEPS = {"softmax": (100, 10000), "mlp": (50, 1000), "cnn": (20, 200), "lenet5": (50, 600), "keras-small": (50, 600),
         "cifar-cnn": (5, 40)}
INFER1 = 10000  # test images for batch-1 inference (each side stops after 5 s): the whole test set, so the
# fast models' batch-1 phase lasts more than a few milliseconds
INFER1_MODEL = {"cifar-cnn": 2000}  # its synthetic test set has 2,000 images
# OpenMP wait policies tried for every side (libgomp reads both variables).
SPIN = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
}
CLEARED = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
           "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS", "LD_LIBRARY_PATH", "LD_PRELOAD")
TARGET_TRAIN, TARGET_INFER_1000, TARGET_INFER_1 = 1.5, 1.5, 3.0
TARGET_START_S, TARGET_SCALING, TARGET_CONV_PCT = 0.3, 1.7, 70  # issue #21: the cnn's heavy kernels >= 70%
TARGET_CNN_PEAK_PCT = 60  # issue #21: the cnn trains at >= 60% of the measured FP32 peak on all cores
# The sequence benchmark ("lstm-lm" in --models): a character-level LSTM language model, the same sizes on
# every side (bench/lstm_bench.cpp, bench/libtorch_lstm_ref.cpp, bench/torch_lstm_ref.py).
SEQ_MODEL = "lstm-lm"
# The default poem model of `synapse poem train` (src/apps/char_lm.cpp) on the regulated Tang poems: a
# vocabulary of 6,885 characters, batches of 64 poems of 65 steps.
SEQ_SIZES = {"vocab": 6885, "embed": 128, "hidden": 384, "layers": 2, "batch": 64, "seq-len": 65}
SEQ_STEPS = (2, 10)   # warm-up, timed training steps
SEQ_GEN = 1000        # timed generated characters
TARGET_SEQ_TRAIN, TARGET_SEQ_GEN = 1.5, 10.0  # x the faster reference's training; x PyTorch's generation


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class OtherWork:
    """The CPU time the rest of the machine took while the benchmarks ran: all CPUs' busy time from
    /proc/stat minus this process's and its children's, and the time the hypervisor stole. The load
    average cannot say this at the end of a run: it counts the benchmark's own threads (two threads on
    two cores read ~2, so every run looked noisy)."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        return {"busy": (v[0] + v[1] + v[2] + v[5] + v[6]) / hz, "steal": v[7] / hz,
                "ours": t.user + t.system + t.children_user + t.children_system, "wall": time.monotonic()}

    def summary(self):
        """(text, noisy): other work and steal as a share of the machine's cores over the run."""
        end = self._sample()
        wall = max(end["wall"] - self.start["wall"], 1e-9)
        cores = os.cpu_count() or 1
        others = max(0.0, (end["busy"] - self.start["busy"]) - (end["ours"] - self.start["ours"])) / wall / cores
        steal = (end["steal"] - self.start["steal"]) / wall / cores
        return (f"other processes took {100 * others:.0f}% of the cores and the hypervisor {100 * steal:.0f}% "
                f"while it ran", others > 0.05 or steal > 0.05)


class Runner:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.raw = []
        self.raw_path = os.path.splitext(args.out)[0] + ".jsonl"
        self.precision = "fp32"  # of the next run (--precision bf16 alternates it)
        if not args.micro_only:  # --micro-only keeps the model runs of the last full run
            open(self.raw_path, "w").close()

    def command(self, impl, model, threads, warmup, steps, t0):
        common = ["--model", model, "--threads", str(threads), "--warmup", str(warmup), "--steps", str(steps),
                  "--infer1", str(INFER1_MODEL.get(model, INFER1)), "--data", self.args.data, "--t0-ns", str(t0)]
        if self.precision != "fp32":  # libtorch_ref has no bf16 mode: --precision bf16 runs only the other two
            common += ["--precision", self.precision]
        if self.args.quick:
            common.append("--quick")
        if impl == "synapse":
            return [os.path.join(self.build, "bench", "synapse_bench")] + common
        if impl == "libtorch":
            return [os.path.join(self.build, "bench", "libtorch_ref")] + common
        return ["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_ref.py")] + common

    def available(self, impl):
        if impl == "pytorch":
            return subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0
        return os.access(self.command(impl, "softmax", 1, 1, 1, 0)[0], os.X_OK)

    def run(self, impl, model, threads, spin, warmup=None, steps=None, phase="measure"):
        w, s = STEPS[model]
        warmup = w if warmup is None else warmup
        steps = s if steps is None else steps
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        if impl != "synapse":
            env["OPENBLAS_NUM_THREADS"] = "1"  # one BLAS thread under torch's threads: its fastest setting
        env.update(SPIN[spin])
        t0 = time.monotonic_ns()
        try:
            p = subprocess.run(self.command(impl, model, threads, warmup, steps, t0), env=env, capture_output=True,
                               text=True, timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            log(f"  TIMEOUT {impl} {model} {threads}t {spin} after {self.args.timeout} s")
            return None
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        if p.returncode != 0 or not line.startswith("{"):
            log(f"  FAILED {impl} {model} {threads}t {spin}: {p.stderr.strip()[-500:]}")
            return None
        r = json.loads(line)
        r.update({"spin": spin, "phase": phase, "load1": loadavg(), "precision": self.precision})
        self.raw.append(r)
        with open(self.raw_path, "a") as f:  # as we go, so an interrupted run keeps what it measured
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
        log(f"  {phase:8} {impl:9} {self.precision} {model:12} {threads}t {spin:8} train {r['train_ips']:>10.1f} img/s  "
            f"infer1000 {r['infer_ips_1000']:>10.1f}  infer1 {r['infer_ips_1']:>9.1f}  "
            f"rss {r['peak_rss_train_mb']:>6.1f} MB  first {r['start_to_first_batch_s']:.3f} s")
        return r


def tune(runner, impls, models):
    """Fastest spin setting per (impl, threads, model) from a short training run of each."""
    best = {}
    for model in models:
        w, s = STEPS[model]
        for impl, threads in impls:
            if runner.args.quick or runner.args.no_tune or threads == 1:
                best[(impl, threads, model)] = "default"  # one thread: no parallel region to wait in
                continue
            results = {}
            for spin in SPIN:
                r = runner.run(impl, model, threads, spin, warmup=max(5, w // 4), steps=max(20, s // 4), phase="tune")
                if r:
                    results[spin] = r["train_ips"]
            best[(impl, threads, model)] = max(results, key=results.get) if results else "default"
    return best


def median(rs, key):
    vals = [r[key] for r in rs if r and key in r]
    return statistics.median(vals) if vals else None


def fmt_num(v, key):
    if v is None:
        return "—"
    if key == "start_to_first_batch_s":
        return f"{v:.3f}"
    if key.startswith("peak"):
        return f"{v:.0f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


METRICS = [
    ("train_ips", "train img/s", True),
    ("infer_ips_1000", "infer img/s, batch 1000", True),
    ("infer_ips_1", "infer img/s, batch 1", True),
    ("peak_rss_train_mb", "peak RSS in training, MB", False),
    ("start_to_first_batch_s", "start → first trained batch, s", False),
]
REFS = [("libtorch", 1), ("libtorch", 2), ("pytorch", 1), ("pytorch", 2)]


def peak_share_row(results, model):
    """The "train % of FP32 peak" row: each column's training FLOP rate over its threads' share of the FMA-loop
    peak that Synapse's processes measured on this host. Every side does the same arithmetic per image (the
    FLOPs Synapse's ops declare for a training step, divided by the batch), so the references' shares are their
    img/s times that. Returns (row, met) or None when Synapse's runs did not report the FLOPs; the target
    (issue #21) applies to the cnn on 2 threads only."""
    syn_runs = results.get(("synapse", 2, model), []) + results.get(("synapse", 1, model), [])
    flops = median(syn_runs, "train_flops_per_step")
    batch = median(syn_runs, "batch")
    peak = median(syn_runs, "peak_gflops_per_core")
    if not flops or not batch or not peak:
        return None
    per_image = flops / batch

    def share(impl, threads):
        ips = median(results.get((impl, threads, model), []), "train_ips")
        return None if ips is None else 100.0 * ips * per_image / 1e9 / (threads * peak)

    cols = [share("synapse", 2), share("synapse", 1)] + [share(i, t) for i, t in REFS]
    cells = ["—" if v is None else f"{v:.0f}%" for v in cols]
    met, target, mark = None, "", "—"
    if model == "cnn" and cols[0] is not None:
        met = cols[0] >= TARGET_CNN_PEAK_PCT
        target, mark = f"≥ {TARGET_CNN_PEAK_PCT}% (2t)", "yes" if met else "**no**"
    row = (f"| {model} | train % of FP32 peak ({per_image / 1e6:.3g} MFLOP/img, peak {peak:.1f}/core) | "
           + " | ".join(cells) + f" | — | {target} | {mark} |")
    return row, met


def table(results, models, spins):
    """Markdown rows: one per model and metric."""
    head = ("| model | metric | Synapse 2t | Synapse 1t | libtorch 1t | libtorch 2t | PyTorch 1t | PyTorch 2t "
            "| Synapse / best ref | target | met? |")
    rows = [head, "|" + "---|" * 11]
    verdicts = []
    for model in models:
        for key, label, higher in METRICS:
            syn = median(results.get(("synapse", 2, model), []), key)
            syn1 = median(results.get(("synapse", 1, model), []), key)
            refs = {(i, t): median(results.get((i, t, model), []), key) for i, t in REFS}
            present = [v for v in refs.values() if v is not None]
            ratio, target, met = None, "", None
            if key == "peak_rss_train_mb":
                pt = [v for (i, _), v in refs.items() if i == "pytorch" and v is not None]
                if syn is not None and pt:
                    ratio = syn / min(pt)
                    target, met = "≤ PyTorch's", syn <= min(pt)
            elif key == "start_to_first_batch_s":
                if syn is not None and present:
                    ratio = syn / min(present)
                target = f"< {TARGET_START_S} s"
                met = syn is not None and syn < TARGET_START_S
            elif syn is not None and present:
                best = max(present)
                ratio = syn / best
                want = {"train_ips": TARGET_TRAIN, "infer_ips_1000": TARGET_INFER_1000, "infer_ips_1": TARGET_INFER_1}[key]
                target, met = f"≥ {want}×", ratio >= want
            cells = [fmt_num(syn, key), fmt_num(syn1, key)] + [fmt_num(refs[r], key) for r in REFS]
            mark = "—" if met is None else ("yes" if met else "**no**")
            rows.append(f"| {model} | {label} | " + " | ".join(cells) +
                        f" | {'—' if ratio is None else f'{ratio:.2f}×'} | {target} | {mark} |")
            if met is not None:
                verdicts.append(met)
        pct_row = peak_share_row(results, model)
        if pct_row:
            row, met = pct_row
            rows.append(row)
            if met is not None:
                verdicts.append(met)
        if model == "cnn":
            s2 = median(results.get(("synapse", 2, model), []), "train_ips")
            s1 = median(results.get(("synapse", 1, model), []), "train_ips")
            if s1 and s2:
                met = s2 / s1 >= TARGET_SCALING
                verdicts.append(met)
                rows.append(f"| cnn | train scaling 2t / 1t | {s2 / s1:.2f}× | | | | | | | ≥ {TARGET_SCALING}× | "
                            f"{'yes' if met else '**no**'} |")
    return rows, verdicts


PRECISION_COLUMNS = [("synapse", "fp32"), ("synapse", "bf16"), ("pytorch", "fp32"), ("pytorch", "bf16")]


def run_precision(args, runner, models, reps):
    """--precision bf16: Synapse in fp32 and bf16 against PyTorch in fp32 and under bf16 autocast, on
    --threads threads (2 by default; 1 on a loaded machine, where two-thread runs wait for descheduled
    threads), every side at its default wait policy, the four runs of a model interleaved in each repetition."""
    impls = [c for c in PRECISION_COLUMNS if c[0] == "synapse" or runner.available("pytorch")]
    results = {}
    start_load = loadavg()
    other = OtherWork()
    for rep in range(reps):
        log(f"repetition {rep + 1}/{reps}")
        for model in models:
            for impl, precision in impls:
                runner.precision = precision
                results.setdefault((impl, precision, model), []).append(runner.run(impl, model, args.threads, "default"))
    other_text, noisy = other.summary()
    head = ("| model | metric | Synapse fp32 | Synapse bf16 | bf16 / fp32 | PyTorch fp32 | PyTorch bf16 autocast "
            "| Synapse bf16 / PyTorch bf16 |")
    rows = [head, "|" + "---|" * 8]
    for model in models:
        for key, label, _ in METRICS[:3]:
            v = {c: median(results.get((c[0], c[1], model), []), key) for c in PRECISION_COLUMNS}
            ratio = lambda a, b: "—" if a is None or not b else f"{a / b:.2f}×"
            rows.append(f"| {model} | {label} | " + " | ".join([
                fmt_num(v[("synapse", "fp32")], key), fmt_num(v[("synapse", "bf16")], key),
                ratio(v[("synapse", "bf16")], v[("synapse", "fp32")]), fmt_num(v[("pytorch", "fp32")], key),
                fmt_num(v[("pytorch", "bf16")], key), ratio(v[("synapse", "bf16")], v[("pytorch", "bf16")])]) + " |")
    return [
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {args.threads} thread"
        f"{'s' if args.threads != 1 else ''} of {cpu_model()}, "
        f"{'quick smoke run' if args.quick else f'median of {reps}'}, load average {start_load:.1f} at the start; "
        f"{other_text}" + (" — **other work was running: noisy numbers**" if noisy or start_load > 1.0 else "") + ".",
        "",
    ] + rows + [
        "",
        "bf16: Synapse `--precision bf16` (bf16 operands, fp32 accumulation, vdpbf16ps); PyTorch: forward and loss "
        "under `torch.autocast(\"cpu\", dtype=torch.bfloat16)`, inference under autocast and `InferenceMode`.",
    ]


def blas_line(build):
    """The `blas:` line of `synapse --version`: OpenBLAS's kernels for this CPU and who runs the products."""
    try:
        out = subprocess.run([os.path.join(build, "src", "synapse"), "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return next((l[len("blas: "):] for l in out.splitlines() if l.startswith("blas: ")), "")


def libs_summary(raw):
    out = {}
    for r in raw:
        key = r["impl"]
        names = sorted({os.path.basename(p) for p in r.get("blas", []) + r.get("openmp", [])})
        out.setdefault(key, set()).update(names)
    return {k: ", ".join(sorted(v)) for k, v in out.items()}


def run_micro(args):
    exe = os.path.join(args.build, "bench", "micro_bench")
    if not os.access(exe, os.X_OK):
        log(f"micro_bench not found at {exe}; skipped")
        return []
    # Medians of 5 repetitions: a single 0.3 s run of a kernel on this kind of virtual machine was seen
    # anywhere between 44% and 75% of peak within ten minutes.
    reps = 1 if args.quick else 5
    cmd = [exe, "--benchmark_format=json", f"--benchmark_min_time={0.02 if args.quick else 0.3}",
           f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"]
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    log("micro_bench ...")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        log(f"micro_bench failed: {p.stderr[-1000:]}")
        return []
    data = json.loads(p.stdout)
    peak = data.get("context", {}).get("peak_gflops_per_core", "?")
    rows = [f"Measured FP32 peak: {peak} GFLOP/s per core (FMA loop); % of peak = GFLOP/s / (that × threads); "
            f"each row the median of {reps} repetitions.",
            "", "| kernel | threads | time µs | GFLOP/s | % of peak | GB/s | target |", "|---|---|---|---|---|---|---|"]
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        parts = b["name"].removesuffix("_median").split("/")
        name = "/".join(q for q in parts if ":" not in q and q not in ("real_time", "manual_time"))
        bargs = dict(q.split(":", 1) for q in parts if ":" in q)
        if "rows" in bargs:
            name += f" [{bargs['rows']}, 10]"
        if "pct" in bargs:
            name += f" ({bargs['pct']}% of x not 0)"
        t = int(bargs.get("threads", 1))
        g = b.get("GFLOPS")
        pct = b.get("pct_peak")
        gb = b.get("GBps")
        target = ""
        # The cnn's heavy kernels in training (fp32): conv2's three passes and fc1's three products at the
        # training batch (not inference at batch 1000, nor the memory-bound batch-1 products).
        heavy = (name.startswith("conv_") and "cnn_conv2" in name) or any(
            name.startswith(f"gemm/cnn_fc1_{p}") for p in ("fwd_50x", "dW_3136x50x", "dX_50x"))
        if heavy and "bf16" not in name and pct is not None:
            target = f"≥ {TARGET_CONV_PCT}%: " + ("yes" if pct >= TARGET_CONV_PCT else "**no**")
        rows.append(f"| {name} | {t} | {b['real_time']:.1f} | {'' if g is None else f'{g:.1f}'} | "
                    f"{'' if pct is None else f'{pct:.0f}%'} | {'' if gb is None else f'{gb:.1f}'} | {target} |")
    return rows


def run_seq(args, reps, raw_path):
    """The LSTM language model on every side, in alternation, `reps` times; returns the table's lines."""
    build = args.build
    sides = [("synapse", 2), ("synapse", 1)]
    cmds = {"synapse": [os.path.join(build, "bench", "lstm_bench")],
            "libtorch": [os.path.join(build, "bench", "libtorch_lstm_ref")],
            "pytorch": ["/usr/bin/python3", os.path.join(ROOT, "bench", "torch_lstm_ref.py")]}
    if os.access(cmds["libtorch"][0], os.X_OK):
        sides += [("libtorch", 1), ("libtorch", 2)]
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0:
        sides += [("pytorch", 1), ("pytorch", 2)]
    sizes = [x for k, v in SEQ_SIZES.items() for x in (f"--{k}", str(v))]
    results = {}
    for rep in range(reps):
        log(f"{SEQ_MODEL}: repetition {rep + 1}/{reps}")
        for impl, threads in sides:
            env = {k: v for k, v in os.environ.items() if k not in CLEARED}
            if impl != "synapse":
                env["OPENBLAS_NUM_THREADS"] = "1"
            cmd = cmds[impl] + sizes + ["--threads", str(threads), "--warmup", str(SEQ_STEPS[0]), "--steps",
                                        str(SEQ_STEPS[1]), "--gen", str(SEQ_GEN)] + (["--quick"] if args.quick else [])
            try:
                p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                log(f"  TIMEOUT {impl} {threads}t")
                continue
            line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
            if p.returncode != 0 or not line.startswith("{"):
                log(f"  FAILED {impl} {threads}t: {p.stderr.strip()[-500:]}")
                continue
            r = json.loads(line)
            r.update({"model": SEQ_MODEL, "phase": "measure", "load1": loadavg()})
            with open(raw_path, "a") as f:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
            log(f"  {impl:9} {threads}t train {r['train_cps']:>10.1f} chars/s  generation {r['gen_us_per_char']:>8.1f} µs/char")
            results.setdefault((impl, threads), []).append(r)
    med = {k: (median(v, "train_cps"), median(v, "gen_us_per_char")) for k, v in results.items()}
    params = next((r["params"] for v in results.values() for r in v), None)
    lines = ["", "### Sequence model (LSTM language model)", "",
             f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores of "
             f"{cpu_model()}, load average {loadavg():.1f} at the end.", "",
             f"Embedding({SEQ_SIZES['vocab']}, {SEQ_SIZES['embed']}) → {SEQ_SIZES['layers']} × LSTM({SEQ_SIZES['hidden']}) → "
             f"Dense({SEQ_SIZES['vocab']}), {params:,} parameters; training on batches of {SEQ_SIZES['batch']} × "
             f"{SEQ_SIZES['seq-len']} characters with Adam ({SEQ_STEPS[1]} timed steps after {SEQ_STEPS[0]}); generation at "
             f"batch 1, one character per call with the state carried, {SEQ_GEN} characters. Medians of {reps}." if params else "",
             "", "| side | threads | train chars/s | generation µs/char |", "|---|---|---|---|"]
    for (impl, threads), (cps, us) in med.items():
        lines.append(f"| {impl} | {threads} | {fmt_num(cps, 'train')} | {'—' if us is None else f'{us:.1f}'} |")
    syn = max((med[k][0] for k in med if k[0] == "synapse" and med[k][0]), default=None)
    syn_gen = min((med[k][1] for k in med if k[0] == "synapse" and med[k][1]), default=None)
    refs_train = [v[0] for k, v in med.items() if k[0] != "synapse" and v[0]]
    refs_gen = [v[1] for k, v in med.items() if k[0] != "synapse" and v[1]]
    torch_gen = [v[1] for k, v in med.items() if k[0] == "pytorch" and v[1]]
    lines.append("")
    if syn and refs_train:
        ratio = med.get(("synapse", 2), (None,))[0] / max(refs_train) if med.get(("synapse", 2), (None,))[0] else None
        if ratio:
            lines.append(f"Training: Synapse (2 threads, its default) / the fastest reference = **{ratio:.2f}×** "
                         f"(target ≥ {TARGET_SEQ_TRAIN}×: {'met' if ratio >= TARGET_SEQ_TRAIN else '**not met**'}).")
    if syn_gen and torch_gen:
        g = min(torch_gen) / syn_gen
        lines.append(f"Generation: PyTorch's best µs/char / Synapse's best = **{g:.1f}×** (target ≥ {TARGET_SEQ_GEN}×: "
                     f"{'met' if g >= TARGET_SEQ_GEN else '**not met**'})"
                     + (f"; against the fastest reference (libtorch or PyTorch): {min(refs_gen) / syn_gen:.1f}×." if refs_gen else "."))
    return lines


def main():
    ap = argparse.ArgumentParser(description="Synapse vs PyTorch and libtorch on the zoo models")
    ap.add_argument("--build", default=os.environ.get("SYNAPSE_BUILD_DIR", os.path.join(ROOT, "build-bench")))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mnist"))
    ap.add_argument("--models", default=",".join(MODELS + [SEQ_MODEL]), help="comma-separated, default all")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions; the table shows medians")
    ap.add_argument("--quick", action="store_true", help="few steps, one repetition, no tuning: a smoke test")
    ap.add_argument("--no-tune", action="store_true", help="skip the OpenMP wait-policy tuning runs")
    ap.add_argument("--no-micro", action="store_true", help="skip micro_bench")
    ap.add_argument("--micro-only", action="store_true", help="only micro_bench")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per benchmark process")
    ap.add_argument("--out", default=None, help="default bench/results.md (bench/results-bf16.md with --precision bf16)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: only the zoo models, Synapse fp32 and bf16 against PyTorch fp32 and bf16 autocast")
    ap.add_argument("--threads", type=int, default=2, help="with --precision bf16: threads of every run (default 2)")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(ROOT, "bench", "results-bf16.md" if args.precision == "bf16" else "results.md")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seq = SEQ_MODEL in models
    models = [m for m in models if m != SEQ_MODEL]
    for m in models:
        if m not in MODELS:
            sys.exit(f"bench: unknown model '{m}'; known: {', '.join(MODELS + [SEQ_MODEL])}")
    reps = 1 if args.quick else max(1, args.reps)

    runner = Runner(args)
    if args.precision == "bf16":
        text = "\n".join(run_precision(args, runner, models, reps)) + "\n"
        print(text)
        with open(args.out, "w") as f:
            f.write("<!-- written by bench/run.py --precision bf16; do not edit -->\n" + text)
        log(f"bench: wrote {args.out} and {runner.raw_path}")
        return
    start_load = loadavg()
    if start_load > 1.0:
        log(f"bench: warning: load average {start_load:.1f} on {os.cpu_count()} cores: other work is running, "
            f"the numbers will be noisy")
    lines = []
    other = OtherWork()
    if not args.micro_only and models:
        impls = [("synapse", 2), ("synapse", 1)]
        for impl in ("libtorch", "pytorch"):
            if runner.available(impl):
                impls += [(impl, 1), (impl, 2)]
            else:
                log(f"bench: {impl} reference not available (scripts/bench installs it); its columns stay empty")
        # Synapse is tuned too, for information only: its table column always uses its defaults.
        best = tune(runner, impls, models)
        results = {}
        for rep in range(reps):
            log(f"repetition {rep + 1}/{reps}")
            for model in models:
                for impl, threads in impls:
                    spin = "default" if impl == "synapse" else best[(impl, threads, model)]
                    r = runner.run(impl, model, threads, spin)
                    results.setdefault((impl, threads, model), []).append(r)
        rows, verdicts = table(results, models, best)
        libs = libs_summary([r for r in runner.raw if r["phase"] == "measure"])
        other_text, noisy = other.summary()
        lines += [
            f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
            f"of {cpu_model()}, {'quick smoke run' if args.quick else f'median of {reps}'}"
            f", load average {start_load:.1f} at the start; {other_text}"
            + (" — **other work was running: noisy numbers**" if noisy else "") + ".",
            "",
        ] + rows + [
            "",
            f"Targets met: {sum(verdicts)} of {len(verdicts)}.",
            "",
            "Settings (each side at its best):",
            "- Synapse: its defaults, nothing set in the environment (2 threads = all cores; `--threads 1` for the "
            "1t column).",
            "- libtorch / PyTorch: `torch.set_num_threads(1 or 2)`, one inter-op thread, `OPENBLAS_NUM_THREADS=1`, "
            "inference under `InferenceMode`; OpenMP wait policy tuned per model and thread count: "
            + ", ".join(f"{i} {t}t {m}: {best[(i, t, m)]}" for m in models for i, t in impls
                        if i != "synapse" and t == 2) + ".",
            "- Libraries mapped into each process (from /proc/self/maps): "
            + "; ".join(f"{k}: {v}" for k, v in libs.items()) + ".",
        ]
        if blas := blas_line(args.build):
            lines.append(f"- Synapse's BLAS on this CPU (`synapse --version`): {blas}.")
        tuned = [r for r in runner.raw if r["phase"] == "tune" and r["impl"] == "synapse"]
        if tuned:
            lines.append("- Synapse under the same wait policies (tuning runs, information only): " + ", ".join(
                f"{r['model']} {r['spin']} {r['train_ips']:.0f}" for r in tuned) + " img/s.")
    if not args.micro_only and seq:
        lines += run_seq(args, reps, runner.raw_path)
    kernels_heading = "### Kernels (micro_bench)"
    if args.micro_only and os.path.exists(args.out):
        # Keep the model table of the last full run; only the kernel section is replaced.
        with open(args.out) as f:
            kept = f.read().split("\n", 1)[-1].split(kernels_heading)[0].rstrip("\n")
        lines = kept.split("\n") if kept else []
    if not args.no_micro:
        micro = run_micro(args)
        if micro:
            stamp = f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC."
            lines += ["", kernels_heading, "", stamp, ""] + micro
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write("<!-- written by scripts/bench (bench/run.py); do not edit -->\n" + text)
    log(f"bench: wrote {args.out}" + ("" if args.micro_only else f" and {runner.raw_path}"))


if __name__ == "__main__":
    main()
