#!/usr/bin/env python3
"""The layer check: fails when a lower layer of the library includes a higher one.

    python3 tests/layers/check_layers.py [REPO_ROOT]

The layers, bottom up (../shared/ARCHITECTURE.md and the README's design section show the same map); a
file may include headers of its own layer and of the layers below it:

    core      src/core, synapse/{dtype,shape,tensor,error,random,version}.h
    backend   src/backend, synapse/backend.h
    ops       src/ops, synapse/{op,ops}.h
    graph     src/autograd, src/graph, synapse/{autograd,graph}.h
    nn        src/{nn,optim,data,io,onnx}, synapse/{nn,optim,data,io,onnx,text,table}.h
    train     src/{train,report,zoo,apps}, synapse/{train,tensorboard,report,zoo,poem,tabular}.h
    cli       src/{cli,serve}, synapse/synapse.h

KNOWN lists the inclusions that point upwards today, each to be removed (issue #18); the check fails on
any other, and on a KNOWN entry that is gone (so the list only shrinks). Prints every finding.
"""
import os
import re
import sys

ORDER = ["core", "backend", "ops", "graph", "nn", "train", "cli"]
SRC = {"core": "core", "backend": "backend", "ops": "ops", "autograd": "graph", "graph": "graph", "nn": "nn",
       "optim": "nn", "data": "nn", "io": "nn", "onnx": "nn", "train": "train", "report": "train", "zoo": "train",
       "apps": "train", "cli": "cli", "serve": "cli"}
HEADERS = {"dtype.h": "core", "shape.h": "core", "tensor.h": "core", "error.h": "core", "random.h": "core",
           "version.h": "core", "backend.h": "backend", "op.h": "ops", "ops.h": "ops", "autograd.h": "graph",
           "graph.h": "graph", "nn.h": "nn", "optim.h": "nn", "data.h": "nn", "io.h": "nn", "onnx.h": "nn",
           "text.h": "nn", "table.h": "nn", "train.h": "train", "tensorboard.h": "train", "report.h": "train", "zoo.h": "train",
           "poem.h": "train", "tabular.h": "train", "synapse.h": "cli"}
# file -> included header, upward today (issue #18 removes them).
KNOWN = {
    ("src/core/tensor.cpp", "autograd/engine.h"),
    ("src/core/tensor.cpp", "synapse/ops.h"),
    ("include/synapse/tensor.h", "synapse/backend.h"),
    ("src/ops/registry.cpp", "autograd/engine.h"),
    ("src/ops/registry.cpp", "graph/trace.h"),
    ("src/ops/registry.cpp", "synapse/autograd.h"),
    ("src/ops/reduce.cpp", "graph/trace.h"),
    ("src/backend/cpu/fused.h", "synapse/op.h"),
    ("src/backend/cpu/elementwise.h", "synapse/op.h"),
}


def layer_of(rel):
    parts = rel.split("/")
    if parts[0] == "src" and len(parts) > 2:
        return SRC.get(parts[1])
    if parts[:2] == ["include", "synapse"]:
        if os.path.basename(rel) not in HEADERS:
            return "?"
        return HEADERS[os.path.basename(rel)]
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
    found, problems, files = set(), [], 0
    for top in ("src", "include"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".h", ".cpp")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                mine = layer_of(rel)
                if mine == "?":
                    problems.append(f"{rel}: a public header with no layer: add it to HEADERS in {__file__}")
                    continue
                if mine is None:
                    continue
                files += 1
                with open(os.path.join(root, rel), errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                        if not m:
                            continue
                        inc = m.group(1)
                        target = "include/" + inc if inc.startswith("synapse/") else "src/" + inc
                        theirs = layer_of(target)
                        if theirs in (None, "?") or ORDER.index(theirs) <= ORDER.index(mine):
                            continue
                        found.add((rel, inc))
                        if (rel, inc) not in KNOWN:
                            problems.append(f"{rel}:{lineno}: includes {inc}: layer '{mine}' may not include layer "
                                            f"'{theirs}' (order, bottom up: {' < '.join(ORDER)})")
    for rel, inc in sorted(KNOWN - found):
        problems.append(f"{rel} no longer includes {inc}: remove it from KNOWN in {__file__}")
    for rel, inc in sorted(KNOWN & found):
        print(f"known, to be removed (#18): {rel} includes {inc}")
    for p in problems:
        print("FAIL: " + p)
    print(f"{files} files checked, {len(found)} upward includes ({len(KNOWN & found)} known), {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
