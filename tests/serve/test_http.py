#!/usr/bin/env python3
"""synapse serve over loopback: the page, /healthz, POST /predict with a good PNG (also 16 at once from 8
threads), a body that is no image (400), a blank page (422), a body over --max-kb (413), GET /predict
(405), an unknown path (404).
    test_http.py SYNAPSE RUN SEVEN_PNG"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Server, png  # noqa: E402

failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)


def main():
    synapse, run, seven_path = sys.argv[1:4]
    seven = open(seven_path, "rb").read()
    with Server(synapse, run, "--max-kb", "64") as s:
        status, headers, body = s.request("GET", "/")
        check("GET / is the page", status == 200 and b'<canvas id="pad"' in body and headers.get("Content-Type", "").startswith("text/html"))
        check("the page needs nothing from the network", b"http://" not in body and b"https://" not in body)
        status, _, body = s.request("GET", "/healthz")
        check("GET /healthz", status == 200 and json.loads(body)["status"] == "ok", body)
        status, headers, body = s.request("POST", "/predict", seven, {"Content-Type": "image/png"})
        j = json.loads(body)
        check("POST /predict reads the seven", status == 200 and j["prediction"] == 7, body[:200])
        check("ten probabilities summing to 1", len(j["probabilities"]) == 10 and abs(sum(j["probabilities"]) - 1) < 1e-4)
        check("the 28x28 image the model saw", len(j["image"]) == 784 and max(j["image"]) == 1.0 and min(j["image"]) == 0.0)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: s.request("POST", "/predict", seven), range(16)))
        check("16 concurrent requests, all read alike",
              all(a[0] == 200 and json.loads(a[2])["probabilities"] == j["probabilities"] for a in answers))
        status, _, body = s.request("POST", "/predict", b"this is not an image")
        check("garbage: 400 naming the problem", status == 400 and b"not a PNG, JPEG" in body, body)
        status, _, body = s.request("POST", "/predict", b"")
        check("empty body: 400", status == 400 and b"empty" in body, body)
        status, _, body = s.request("POST", "/predict", png(60, 40, [200] * 2400))
        check("blank page: 422 no digit found", status == 422 and b"no digit found" in body, body)
        status, _, body = s.request("POST", "/predict", b"\0" * (65 * 1024))
        check("65 KiB over a 64 KiB limit: 413", status == 413 and b"larger than the limit of 65536 bytes" in body, body)
        status, headers, body = s.request("GET", "/predict")
        check("GET /predict: 405 with Allow: POST", status == 405 and headers.get("Allow") == "POST", body)
        status, _, body = s.request("GET", "/nope")
        check("unknown path: 404", status == 404 and b"no such page" in body, body)
        status, _, body = s.request("GET", "/healthz")
        check("still healthy after the bad requests", status == 200)
    print("http: " + ("passed" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
