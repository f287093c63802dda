#!/usr/bin/env python3
"""Runs a 'synapse poem write' command and checks that its output is well-formed verse.

usage: check_verse.py --form N --lines N [--count N] [--acrostic CHARS] [--start CHAR] -- COMMAND...
Each poem (poems are separated by a blank line) must have exactly `lines` lines, each `form`
characters followed by ， (odd lines) or 。 (even lines); with --acrostic, line i starts with its
i-th character; with --start, the first poem's first character is it.
"""
import argparse
import subprocess
import sys
import unicodedata


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--form", type=int, required=True)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--acrostic", default="")
    ap.add_argument("--start", default="")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    r = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {r.stderr}")
    poems = [p.splitlines() for p in r.stdout.strip().split("\n\n")]
    if len(poems) != a.count:
        sys.exit(f"expected {a.count} poems, got {len(poems)}:\n{r.stdout}")
    for p in poems:
        if len(p) != a.lines:
            sys.exit(f"expected {a.lines} lines, got {len(p)}:\n{r.stdout}")
        for i, line in enumerate(p):
            body, mark = line[:-1], line[-1:]
            if mark != ("，" if i % 2 == 0 else "。"):
                sys.exit(f"line {i + 1} ends in {mark!r}:\n{r.stdout}")
            if len(body) != a.form or any(unicodedata.category(c).startswith(("P", "Z", "C")) for c in body):
                sys.exit(f"line {i + 1} is not {a.form} characters: {line!r}\n{r.stdout}")
            if a.acrostic and body[0] != a.acrostic[i]:
                sys.exit(f"line {i + 1} does not start with {a.acrostic[i]}:\n{r.stdout}")
    if a.start and poems[0][0][0] != a.start:
        sys.exit(f"the poem does not start with {a.start}:\n{r.stdout}")
    print(r.stdout, end="")
    print(f"ok: {len(poems)} poem(s) of {a.lines} lines of {a.form} characters")


if __name__ == "__main__":
    main()
