#!/usr/bin/python3
"""PyTorch reference for the sequence benchmark: a character-level LSTM language model, timed like lstm_bench.

    /usr/bin/python3 bench/torch_lstm_ref.py --threads 2

The model of bench/lstm_bench.cpp, layer for layer: Embedding(vocab, embed) -> LSTM(hidden) ->
LSTM(hidden) -> Linear(vocab) on every step, softmax cross-entropy over all batch x seq_len positions,
Adam 1e-3. Synthetic token ids (seeded; the speed of an LSTM does not depend on the values). Prints one
JSON line:
  train_cps        training characters (batch x seq_len per step) per second over --steps steps after --warmup
  gen_us_per_char  batch-1 generation: one character in, the state carried, the next character's
                   logits out and its argmax picked, in microseconds per character (mean over --gen chars)
Uses Debian's python3-torch (run it with /usr/bin/python3, not pyenv's python).
"""
import argparse
import json
import os
import time

import torch
from torch import nn


class CharLM(nn.Module):
    def __init__(self, vocab, embed, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.embed(x), state)
        return self.out(h), state


def mapped(keys):
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            i = line.find("/")
            if i < 0:
                continue
            path = line[i:].strip()
            if any(k in os.path.basename(path) for k in keys) and path not in out:
                out.append(path)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vocab", type=int, default=6885)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=65)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--gen", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    steps = min(a.steps, 3) if a.quick else a.steps
    warmup = min(a.warmup, 1) if a.quick else a.warmup
    gen = min(a.gen, 50) if a.quick else a.gen

    model = CharLM(a.vocab, a.embed, a.hidden, a.layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, a.vocab, (warmup + steps, a.batch, a.seq_len + 1), generator=g)

    model.train()
    warm = end = 0.0
    for step in range(warmup + steps):
        xb, yb = data[step, :, :-1], data[step, :, 1:]
        opt.zero_grad(set_to_none=True)
        logits, _ = model(xb)
        loss = loss_fn(logits.reshape(-1, a.vocab), yb.reshape(-1))
        loss.backward()
        opt.step()
        loss.item()
        if step + 1 == warmup:
            warm = time.perf_counter()
        if step + 1 == warmup + steps:
            end = time.perf_counter()
    train_cps = steps * a.batch * a.seq_len / (end - warm)

    model.eval()
    with torch.inference_mode():
        token = torch.zeros(1, 1, dtype=torch.long)
        state = None
        for i in range(gen + 20):
            if i == 20:
                t0 = time.perf_counter()
            logits, state = model(token, state)
            token = logits[:, -1].argmax(-1, keepdim=True)
        gen_us = (time.perf_counter() - t0) / gen * 1e6

    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "impl": "pytorch", "threads": torch.get_num_threads(), "vocab": a.vocab, "embed": a.embed,
        "hidden": a.hidden, "layers": a.layers, "batch": a.batch, "seq_len": a.seq_len, "params": params,
        "warmup": warmup, "steps": steps, "train_cps": round(train_cps, 1), "gen_us_per_char": round(gen_us, 2),
        "gen_chars": gen, "blas": mapped(["blas", "mkl", "blis", "dnnl"]), "openmp": mapped(["gomp", "libomp", "iomp"]),
        "torch_version": torch.__version__,
    }, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
