#!/usr/bin/env python3
"""Runs a 'synapse poem train' or 'synapse text train' command and checks the report.html it writes.

usage: check_lm_report.py --kind poem|text --run RUN_DIR [--poems N] [--length N] -- COMMAND...

The command's output is printed (so a test can still match it). Then, in RUN_DIR/report.html:
- every logged "epoch N: held-out perplexity X ..." has its row N in the epoch table, whose held-out
  perplexity (2 decimals) is history.json's val_perplexity of that epoch and rounds to the logged X;
- the logged baselines (unigram, bigram, interpolated bigram) and final perplexity are on the page;
- the Loss and Held-out perplexity charts are there, the baselines as dashed lines;
- the samples are well formed: for poems, N quatrains whose lines have exactly the form's characters
  followed by ， or 。; for text, the run's prime followed by LENGTH characters;
- the model summary is there.
Then `synapse report RUN_DIR -o RUN_DIR/report-again.html` must give the same table and the same
samples (the seeds are fixed).
"""
import argparse
import html
import json
import os
import re
import subprocess
import sys
import unicodedata


def fail(msg):
    sys.exit("check_lm_report: " + msg)


def parse_report(path):
    with open(path, encoding="utf-8") as f:
        page = f.read()
    if not page.startswith("<!DOCTYPE html>"):
        fail(f"{path} is not an HTML page")
    m = re.search(r'<section id="epochs">(.*?)</section>', page, re.S)
    if not m:
        fail(f"{path} has no epoch table")
    header = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", m.group(1))]
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(<td>.*?)</tr>", m.group(1), re.S)]
    table = {int(r[0]): dict(zip(header, [html.unescape(c) for c in r])) for r in rows}
    samples = [(html.unescape(c), html.unescape(t)) for c, t in re.findall(
        r'<figure class="text-sample"><figcaption>(.*?)</figcaption><pre>(.*?)</pre></figure>', page, re.S)]
    return page, table, samples


def check_verse(text, form, lines):
    got = text.strip("\n").split("\n")
    if len(got) != lines:
        fail(f"expected {lines} lines, got {len(got)}: {text!r}")
    for i, line in enumerate(got):
        body, mark = line[:-1], line[-1:]
        if mark != ("，" if i % 2 == 0 else "。"):
            fail(f"line {i + 1} ends in {mark!r}: {text!r}")
        if len(body) != form or any(unicodedata.category(c).startswith(("P", "Z", "C")) for c in body):
            fail(f"line {i + 1} is not {form} characters: {line!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["poem", "text"], required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--poems", type=int, default=4)
    ap.add_argument("--length", type=int, default=300)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    r = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
    print(r.stdout, end="")
    if r.returncode != 0:
        fail(f"command failed ({r.returncode}): {r.stderr}")

    logged = {int(n): float(x) for n, x in re.findall(r"epoch (\d+): held-out perplexity ([0-9.]+) per character", r.stdout)}
    base = re.search(r"perplexity unigram ([0-9.]+), bigram \(add-0\.03\) ([0-9.]+), interpolated bigram \(0\.7\) ([0-9.]+)",
                     r.stdout)
    final = re.search(r"held-out perplexity: ([0-9.]+) per character after", r.stdout)
    if not logged or not base or not final:
        fail("the command did not log per-epoch perplexities, baselines and a final perplexity")
    with open(os.path.join(a.run, "history.json"), encoding="utf-8") as f:
        history = json.load(f)
    epochs = {int(e["epoch"]): e for e in history["epochs"]}

    report = os.path.join(a.run, "report.html")
    page, table, samples = parse_report(report)
    if sorted(table) != sorted(logged):
        fail(f"the report's epochs {sorted(table)} are not the logged ones {sorted(logged)}")
    for n, x in logged.items():
        shown = table[n]["held-out perplexity"]
        if shown != f"{epochs[n]['val_perplexity']:.2f}":
            fail(f"epoch {n}: the report shows {shown}, history.json has {epochs[n]['val_perplexity']}")
        if f"{float(shown):.1f}" != f"{x:.1f}" and abs(float(shown) - x) > 0.051:
            fail(f"epoch {n}: the report shows {shown}, the log says {x}")
        if table[n]["loss"] != f"{epochs[n]['loss']:.4f}":
            fail(f"epoch {n}: the report's loss {table[n]['loss']} is not history.json's {epochs[n]['loss']}")
    for value in base.groups():
        if f">{value}<" not in page and f" {value} " not in page and f" {value}<" not in page:
            fail(f"the baseline perplexity {value} is not on the page")
    if f'<div class="value">{final.group(1)}</div>' not in page:
        fail(f"the final perplexity {final.group(1)} is not the headline card")
    for title in ("Loss", "Held-out perplexity"):
        if not re.search(r'class="chart-title"[^>]*>' + re.escape(title) + "<", page):
            fail(f"no chart '{title}'")
    if page.count('stroke-dasharray="7 5"') < 4:
        fail("the baselines are not drawn (4 dashed lines expected)")
    if '<pre class="summary">Model: ' not in page:
        fail("no model summary")

    if a.kind == "poem":
        if len(samples) != a.poems:
            fail(f"expected {a.poems} poems, found {len(samples)}")
        for caption, text in samples:
            m = re.match(r"(\d) characters × (\d) lines, seed \d+", caption)
            if not m:
                fail(f"unexpected caption {caption!r}")
            check_verse(text, int(m.group(1)), int(m.group(2)))
    else:
        prime = history["settings"].get("sample_prime", "")
        if not prime or len(samples) != 1:
            fail(f"expected one sample from the prime {prime!r}, found {len(samples)}")
        text = samples[0][1]
        if not text.startswith(prime) or len(text) != len(prime) + a.length:
            fail(f"the sample does not continue {prime!r} by {a.length} characters: {text!r}")

    # synapse report regenerates the same page from the run folder.
    again = os.path.join(a.run, "report-again.html")
    r2 = subprocess.run([cmd[0], "report", a.run, "-o", again], capture_output=True, text=True, encoding="utf-8")
    if r2.returncode != 0 or "report: " not in r2.stdout:
        fail(f"synapse report failed ({r2.returncode}): {r2.stdout} {r2.stderr}")
    _, table2, samples2 = parse_report(again)
    if table2 != table or samples2 != samples:
        fail("synapse report wrote a different table or different samples")
    print(f"ok: report.html with {len(table)} epochs, perplexities as logged, {len(samples)} well-formed sample(s); "
          "synapse report agrees")


if __name__ == "__main__":
    main()
