#!/usr/bin/env python3
"""A short loopback load test of `synapse serve`: POST /predict from several client threads, bounded by
a request count and a time limit; reports requests/s and latency percentiles.

    bench/serve_load.py SYNAPSE RUN IMAGE [--clients 4] [--requests 400] [--seconds 20]

Starts its own server on a free loopback port (and stops it). Every answer must be 200 with the same
prediction; a failed request fails the run. The numbers depend on the machine and its load: they are
for spotting regressions on one machine, not for comparing machines.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "serve"))
from serve_util import Server  # noqa: E402


def percentile(sorted_values, p):
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("synapse")
    ap.add_argument("run")
    ap.add_argument("image")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=400, help="total requests (upper bound)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time limit")
    a = ap.parse_args()
    body = open(a.image, "rb").read()
    latencies, errors, predictions = [], [], set()
    lock = threading.Lock()
    issued = [0]
    with Server(a.synapse, a.run) as s:
        s.request("POST", "/predict", body)  # warm-up
        deadline = time.monotonic() + a.seconds

        def client():
            while True:
                with lock:
                    if issued[0] >= a.requests or time.monotonic() > deadline:
                        return
                    issued[0] += 1
                t0 = time.perf_counter()
                try:
                    status, _, data = s.request("POST", "/predict", body, {"Content-Type": "image/png"})
                    ok = status == 200
                    pred = json.loads(data)["prediction"] if ok else None
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    ok, pred, status = False, None, repr(e)
                dt = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(dt)
                        predictions.add(pred)
                    else:
                        errors.append(status)

        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    lat = sorted(x * 1000 for x in latencies)
    print(f"{len(lat)} requests from {a.clients} clients in {wall:.2f} s: {len(lat) / wall:.1f} requests/s; "
          f"{os.path.getsize(a.image)} byte {os.path.basename(a.image)}")
    if lat:
        print("latency ms: " + ", ".join(f"p{p} {percentile(lat, p):.2f}" for p in (50, 90, 99)) + f", max {lat[-1]:.2f}")
    if errors or len(predictions) > 1:
        print(f"FAIL: {len(errors)} failed requests {errors[:5]}; predictions {sorted(predictions)}")
        return 1
    print(f"all answered 200, prediction {predictions.pop() if predictions else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
