#!/usr/bin/env python3
"""Crash safety of `synapse train` (README, "Reliability"), end to end:

    crash_safety.py SYNAPSE MNIST_DIR WORK_DIR [--kills 10] [--seed 25]

1. kill -9: a short run with a checkpoint every few steps is killed at seeded random moments, --resume'd each
   time. After every kill each file the run wrote whole (checkpoints/ckpt-*.syn, model.syn, history.json,
   checkpoints/checkpoint, the index) must be complete and valid: the checkpoints' CRC32 and layout are checked here,
   independently of the library. A last --resume run (not killed) must finish the planned steps, and remove the
   temporary files "NAME.tmp.PID" the killed runs left behind (plus planted ones of a dead PID), but not one of a
   live process nor a file outside that pattern.
2. Full disk: a resumed run under a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored, so write() fails with EFBIG)
   must fail with a clear save_checkpoint error, leave no temporary file, and leave the newest checkpoint intact.
"""
import argparse
import json
import os
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib

STEPS, EVERY = 6000, 200


def check_checkpoint(path):
    """The SYNCKPT1 layout of synapse/io.h: magic, header, aligned data, CRC32 of everything before it."""
    data = open(path, "rb").read()
    assert data[:8] == b"SYNCKPT1", f"{path}: bad magic"
    (hlen,) = struct.unpack("<Q", data[8:16])
    header = json.loads(data[16:16 + hlen])
    start = (16 + hlen + 63) // 64 * 64
    end = start + max((t["offset"] + t["nbytes"] for t in header["tensors"]), default=0)
    assert len(data) == end + 4, f"{path}: {len(data)} bytes, the header says {end + 4}"
    (crc,) = struct.unpack("<I", data[end:])
    assert crc == zlib.crc32(data[:end]), f"{path}: CRC32 mismatch"
    return header


def check_run(logdir):
    """Every whole-file output of the run is complete; returns the newest checkpoint's step (0 when none)."""
    ckdir = os.path.join(logdir, "checkpoints")
    newest = 0
    if os.path.isdir(ckdir):
        for name in os.listdir(ckdir):
            if name.startswith("ckpt-") and name.endswith(".syn"):
                newest = max(newest, check_checkpoint(os.path.join(ckdir, name))["step"])
        if os.path.exists(os.path.join(ckdir, "checkpoint")):  # the index
            json.load(open(os.path.join(ckdir, "checkpoint")))
    if os.path.exists(os.path.join(logdir, "model.syn")):
        check_checkpoint(os.path.join(logdir, "model.syn"))
    if os.path.exists(os.path.join(logdir, "history.json")):
        json.load(open(os.path.join(logdir, "history.json")))
    return newest


def temp_files(logdir):
    return [os.path.join(d, f) for d, _, fs in os.walk(logdir) for f in fs if ".tmp." in f]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("synapse")
    ap.add_argument("mnist")
    ap.add_argument("work")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=25)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.mnist, "train-images-idx3-ubyte")) and \
            not os.path.exists(os.path.join(a.mnist, "train-images-idx3-ubyte.gz")):
        print(f"skipped: no MNIST in {a.mnist} (scripts/fetch-data mnist)")
        return 77
    logdir = os.path.join(a.work, "run")
    subprocess.run(["rm", "-rf", a.work], check=True)
    os.makedirs(a.work)
    cmd = [a.synapse, "train", "softmax", "--data", a.mnist, "--logdir", logdir, "--steps", str(STEPS),
           "--epochs", "100", "--checkpoint-every", str(EVERY), "--seed", "3", "--threads", "1"]

    # How long a whole run takes here, so the kills land inside runs (loading, training, saving).
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    full = time.monotonic() - t0
    check_run(logdir)
    subprocess.run(["rm", "-rf", logdir], check=True)

    rng = random.Random(a.seed)
    steps_seen = []
    for k in range(a.kills):
        p = subprocess.Popen(cmd + (["--resume"] if k else []), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rng.uniform(0.3, max(0.6, full / 3))
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        if p.returncode == 0:
            print(f"kill {k + 1} after {delay:.2f} s: the run had already finished")
        elif p.returncode != -signal.SIGKILL:
            sys.exit(f"kill {k + 1}: the run failed before the kill ({p.returncode}): {err.decode()}")
        newest = check_run(logdir)
        steps_seen.append(newest)
        print(f"kill {k + 1} after {delay:.2f} s: every file whole, newest checkpoint at step {newest}")
    # Stale temporary files: what the kills left, plus planted ones of a process that has exited (so the test does
    # not depend on a kill landing inside a write); one of a live process (this script) and one outside the
    # writer's pattern must stay.
    left_by_kills = temp_files(logdir)
    dead = subprocess.Popen(["true"])
    dead.wait()
    ckdir = os.path.join(logdir, "checkpoints")
    os.makedirs(ckdir, exist_ok=True)
    planted_dead = [os.path.join(ckdir, f"ckpt-999.syn.tmp.{dead.pid}"), os.path.join(logdir, f"model.syn.tmp.{dead.pid}")]
    planted_live = os.path.join(ckdir, f"ckpt-998.syn.tmp.{os.getpid()}")
    other = os.path.join(logdir, "notes.tmp.txt")
    for f in planted_dead + [planted_live, other]:
        open(f, "wb").write(b"partial")
    out = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the final --resume failed ({out.returncode}): {out.stderr}")
    check_run(logdir)
    stale = [f for f in temp_files(logdir) if f not in (planted_live, other)]
    if stale:
        sys.exit(f"stale temporary files after the resume: {stale}")
    if not os.path.exists(planted_live) or not os.path.exists(other):
        sys.exit(f"the resume removed {planted_live} (a live process's) or {other} (not a temporary file)")
    os.remove(planted_live)
    os.remove(other)
    print(f"resume removed the stale temporary files: {len(left_by_kills)} left by the kills, {len(planted_dead)} planted")
    history = json.load(open(os.path.join(logdir, "history.json")))
    if history["settings"].get("steps") != STEPS:
        sys.exit(f"the resumed run ended at step {history['settings'].get('steps')}, expected {STEPS}")
    print(f"resumed to the end: {STEPS} steps; newest checkpoint after each kill: {steps_seen}; "
          f"stale temporary files: {len(temp_files(logdir))}")

    # Full disk: every file of the run may grow to 20 KB only; the next checkpoint (about 94 KB) cannot be saved.
    before = {n: open(os.path.join(ckdir, n), "rb").read() for n in os.listdir(ckdir) if n.endswith(".syn")}
    for f in temp_files(logdir):
        os.remove(f)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    more = [c if c != str(STEPS) else str(STEPS + 2 * EVERY) for c in cmd]
    out = subprocess.run(more + ["--resume"], capture_output=True, text=True, preexec_fn=limit)
    if out.returncode == 0:
        sys.exit("the run under a 20 KB file-size limit succeeded; expected a failed save")
    want = (r"synapse: error: save_checkpoint: cannot write '" + re.escape(ckdir) + r"/ckpt-\d+\.syn': write to '" +
            re.escape(ckdir) + r"/ckpt-\d+\.syn\.tmp\.\d+' failed: File too large")
    if not re.search(want, out.stderr):
        sys.exit(f"unexpected error under the file-size limit (want {want!r}):\n{out.stderr}")
    if temp_files(logdir):
        sys.exit(f"temporary files left after the failed save: {temp_files(logdir)}")
    for n, data in before.items():
        if open(os.path.join(ckdir, n), "rb").read() != data:
            sys.exit(f"{n} changed during the failed save")
    check_run(logdir)
    print("full disk: " + out.stderr.strip().splitlines()[-1])
    print(f"full disk: the {len(before)} earlier checkpoints are intact, no temporary file left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
