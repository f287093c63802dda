#!/usr/bin/python3
"""PyTorch reference for the Synapse benchmark: the zoo models of src/zoo/zoo.cpp, timed like synapse_bench.

    /usr/bin/python3 bench/torch_ref.py --model cnn --threads 2 --warmup 20 --steps 200 --data data/mnist

Layer for layer the zoo's models (same shapes, padding, activations, initialisers, optimizer, batch size;
NCHW, which for MNIST's single channel is the same memory as NHWC), trained on the 60,000 training images
held in memory as float32 with shuffled batches. Prints one JSON line with the fields synapse_bench
prints. Uses Debian's python3-torch (run it with /usr/bin/python3, not pyenv's python).
"""
import argparse
import functools
import json
import math
import os
import sys
import time

import torch
from torch import nn


def read_idx(path, header):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) <= header:
        sys.exit(f"torch_ref: error: '{path}' is too short")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)


def images(path):
    return read_idx(path, 16).view(-1, 1, 28, 28).float() / 255.0


def labels(path):
    return read_idx(path, 8).long()


def glorot(model):
    """Keras' defaults: Glorot-uniform kernels, zero biases (Keras and torch compute the same fans)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)
    return model


def build(name):
    """(model, batch, optimizer factory, mlp extras: L2 + per-epoch decay + EMA)"""
    if name == "softmax":
        m = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        with torch.no_grad():
            for p in m.parameters():
                p.zero_()
        return m, 100, lambda ps: torch.optim.SGD(ps, lr=0.5), False
    if name == "mlp":
        m = nn.Sequential(nn.Flatten(), nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 10))
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n.endswith("weight"):
                    nn.init.trunc_normal_(p, 0.0, 0.1, -0.2, 0.2)
                else:
                    p.fill_(0.1)
        return m, 100, lambda ps: torch.optim.SGD(ps, lr=0.1), True
    if name == "cnn":
        m = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))
        return glorot(m), 50, lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-7), False
    if name == "cifar-cnn":
        # TF's CIFAR-10 tutorial model as the zoo builds it (32x32 inputs). torch's LocalResponseNorm divides
        # alpha by the window size: alpha = TF's 0.001/9 times 9. Pool padding 1 on both sides gives TF
        # SAME's 16x16 and 8x8 outputs (TF pads only after): the same arithmetic, marginally other windows.
        lrn = lambda: nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0)
        m = nn.Sequential(
            nn.Conv2d(3, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1), lrn(),
            nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2, padding=1), nn.Flatten(),
            nn.Linear(4096, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, 10))
        return glorot(m), 128, lambda ps: torch.optim.SGD(ps, lr=0.1), False
    if name == "lenet5":
        m = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        return glorot(m), 64, lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-7), False
    if name == "keras-small":
        m = nn.Sequential(
            nn.Conv2d(1, 28, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(28 * 26 * 26, 128), nn.ReLU(), nn.Linear(128, 10))
        return glorot(m), 32, lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), False
    sys.exit(f"torch_ref: error: unknown model '{name}'; known: softmax, mlp, cnn, lenet5, keras-small")


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def mapped(keys):
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            i = line.find("/")
            if i < 0:
                continue
            path = line[i:].strip()
            base = os.path.basename(path)
            if any(k in base for k in keys) and path not in out:
                out.append(path)
    return out


def seconds_since_start(t0_ns):
    if t0_ns > 0:
        return (time.monotonic_ns() - t0_ns) * 1e-9
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    start = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of the whole line
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start


def inference_ips(model, batches, warm, max_s, amp):
    """As synapse_bench: stops early after max_s seconds."""
    with torch.inference_mode(), amp():
        for b in batches[:warm]:
            model(b)
        n, s = 0, 0.0
        t0 = time.perf_counter()
        for b in batches:
            model(b)
            n += b.shape[0]
            s = time.perf_counter() - t0
            if s > max_s:
                break
        return n / s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--infer1", type=int, default=2000)
    ap.add_argument("--t0-ns", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: forward passes and losses under torch.autocast('cpu', dtype=torch.bfloat16)")
    a = ap.parse_args()
    # autocast runs linear, conv and matmul in bf16 (fp32 weights, bf16 copies per call); fp32: a no-op context.
    amp = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    warmup = max(1, min(a.warmup, 5) if a.quick else a.warmup)
    steps = max(1, min(a.steps, 20) if a.quick else a.steps)
    infer1 = min(a.infer1, 100) if a.quick else a.infer1

    if a.model == "cifar-cnn":  # synthetic data of CIFAR-10's shape (synapse_bench draws the same shapes)
        x, y, test_x = torch.randn(10240, 3, 32, 32), torch.randint(0, 10, (10240,)), torch.randn(2000, 3, 32, 32)
    else:
        x = images(os.path.join(a.data, "train-images-idx3-ubyte"))
        y = labels(os.path.join(a.data, "train-labels-idx1-ubyte"))
        test_x = images(os.path.join(a.data, "t10k-images-idx3-ubyte"))
    n = x.shape[0]

    model, batch, make_opt, mlp_extras = build(a.model)
    opt = make_opt(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    kernels = [p for name, p in model.named_parameters() if name.endswith("weight")]
    cifar = a.model == "cifar-cnn"
    if cifar:  # weight decay 0.004 on fc384 and fc192 (Sequential indices 9 and 11), EMA 0.9999 of all weights
        kernels = [model[9].weight, model[11].weight]
    params = list(model.parameters())
    shadows = [p.detach().clone() for p in params] if mlp_extras or cifar else []
    per_epoch = (n + batch - 1) // batch

    model.train()
    first = warm = end = 0.0
    perm = None
    for step in range(warmup + steps):
        b = step % per_epoch
        if b == 0:
            perm = torch.randperm(n)
        idx = perm[b * batch:(b + 1) * batch]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        if mlp_extras:
            opt.param_groups[0]["lr"] = 0.1 * 0.99 ** (step / per_epoch)
        opt.zero_grad(set_to_none=True)
        with amp():
            loss = loss_fn(model(xb), yb)
        if mlp_extras or cifar:
            loss = loss + (0.004 if cifar else 1e-4) * 0.5 * sum(k.pow(2).sum() for k in kernels)
        loss.backward()
        opt.step()
        loss.item()  # Synapse's trainer reads the loss every step too
        if mlp_extras or cifar:
            with torch.no_grad():
                decay = min(0.9999 if cifar else 0.99, (1.0 + step + 1) / (10.0 + step + 1))
                torch._foreach_mul_(shadows, decay)
                torch._foreach_add_(shadows, params, alpha=1.0 - decay)
        if step == 0:
            first = seconds_since_start(a.t0_ns)
        if step + 1 == warmup:
            warm = time.perf_counter()
        if step + 1 == warmup + steps:
            end = time.perf_counter()
    train_ips = steps * batch / (end - warm)
    rss_train = peak_rss_mb()

    model.eval()
    b1000 = [test_x[lo:lo + 1000] for lo in range(0, test_x.shape[0], 1000)]
    b1 = [test_x[i:i + 1] for i in range(infer1)]
    ips1000 = inference_ips(model, b1000, 1, 1e9, amp)
    ips1 = inference_ips(model, b1, 20, 5.0, amp)

    print(json.dumps({
        "impl": "pytorch", "model": a.model, "threads": torch.get_num_threads(), "batch": batch,
        "warmup": warmup, "steps": steps, "train_ips": round(train_ips, 1),
        "infer_ips_1000": round(ips1000, 1), "infer_ips_1": round(ips1, 1), "infer1_images": infer1,
        "peak_rss_train_mb": round(rss_train, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "start_to_first_batch_s": round(first, 4), "start_clock": "harness" if a.t0_ns > 0 else "proc",
        "steps_done": warmup + steps,
        "blas": mapped(["blas", "mkl", "blis", "dnnl", "XNNPACK"]), "openmp": mapped(["gomp", "libomp", "iomp"]),
        "env": {k: os.environ.get(k, "") for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")},
        "torch_version": torch.__version__, "precision": a.precision,
    }, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
