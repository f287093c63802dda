#!/usr/bin/env python3
"""The layer check: fails when a lower layer of the library includes a higher one.

    python3 tests/layers/check_layers.py [REPO_ROOT]
    python3 tests/layers/check_layers.py --self-test   (the check fails on a made-up upward include)

The layers, bottom up (../shared/ARCHITECTURE.md and the README's design section show the same map); a
file may include headers of its own layer and of the layers below it:

    core      src/core, synapse/{dtype,shape,device,tensor,error,random,version}.h
    backend   src/backend, synapse/pointwise.h
    ops       src/ops, synapse/{op,ops}.h
    graph     src/autograd, src/graph, synapse/{autograd,graph}.h
    nn        src/{nn,optim,data,io,onnx,dist}, synapse/{nn,optim,data,io,onnx,dist,text,table}.h
    train     src/{train,report,zoo,apps}, synapse/{train,tensorboard,report,zoo,poem,tabular}.h
    cli       src/{cli,serve}, synapse/synapse.h

The check fails on any inclusion that points upwards, and prints every finding. Where a lower layer
needs a higher one at run time, the higher layer installs a hook (the dispatcher's trace and record
hooks in synapse/op.h) or defines the method itself (Tensor::backward lives in src/autograd).

It also fails on a file that includes core/experiment.h (the switch of bench/ab_inprocess.cpp): an
experiment's variants are measured, then one is kept and the switch taken out before the commit.
"""
import os
import re
import sys

ORDER = ["core", "backend", "ops", "graph", "nn", "train", "cli"]
SRC = {"core": "core", "backend": "backend", "ops": "ops", "autograd": "graph", "graph": "graph", "nn": "nn",
       "optim": "nn", "data": "nn", "io": "nn", "onnx": "nn", "dist": "nn", "train": "train", "report": "train", "zoo": "train",
       "apps": "train", "cli": "cli", "serve": "cli"}
HEADERS = {"dtype.h": "core", "shape.h": "core", "tensor.h": "core", "error.h": "core", "random.h": "core",
           "version.h": "core", "device.h": "core", "budget.h": "core", "pointwise.h": "backend", "op.h": "ops", "ops.h": "ops", "profile.h": "ops", "autograd.h": "graph",
           "graph.h": "graph", "nn.h": "nn", "functional.h": "nn", "keras.h": "nn", "optim.h": "nn", "solvers.h": "nn", "data.h": "nn", "io.h": "nn", "onnx.h": "nn", "dist.h": "nn",
           "text.h": "nn", "table.h": "nn", "train.h": "train", "tensorboard.h": "train", "report.h": "train",
           "zoo.h": "train", "poem.h": "train", "tabular.h": "train", "stylize.h": "train", "synapse.h": "cli"}
EXPERIMENT = "core/experiment.h"


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
                        if inc == EXPERIMENT and rel != "src/core/experiment.cpp":
                            problems.append(f"{rel}:{lineno}: includes {inc}: an experiment's switch left in the "
                                            "code (keep the variant that won, then take the switch out)")
                            continue
                        target = "include/" + inc if inc.startswith("synapse/") else "src/" + inc
                        theirs = layer_of(target)
                        if theirs in (None, "?") or ORDER.index(theirs) <= ORDER.index(mine):
                            continue
                        found.add((rel, inc))
                        problems.append(f"{rel}:{lineno}: includes {inc}: layer '{mine}' may not include layer "
                                        f"'{theirs}' (order, bottom up: {' < '.join(ORDER)})")
    for p in problems:
        print("FAIL: " + p)
    print(f"{files} files checked, {len(found)} upward includes, {len(problems)} problems")
    return 1 if problems else 0


def self_test():
    """A tree with one upward include (core -> nn) and one allowed (nn -> core) must fail with exactly
    the first; a public header without a layer and an experiment's switch outside its own file must be
    reported too."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        files = {"src/core/a.cpp": '#include "synapse/nn.h"\n', "src/nn/b.cpp": '#include "synapse/tensor.h"\n',
                 "src/ops/c.cpp": '#include "core/experiment.h"\n', "src/core/experiment.cpp": '#include "core/experiment.h"\n',
                 "include/synapse/nn.h": "", "include/synapse/tensor.h": "", "include/synapse/mystery.h": ""}
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        r = subprocess.run([sys.executable, __file__, root], capture_output=True, text=True)
        fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
        ok = (r.returncode == 1 and len(fails) == 3 and any("src/core/a.cpp:1: includes synapse/nn.h" in f for f in fails)
              and "mystery.h" in r.stdout and sum("src/ops/c.cpp:1: includes core/experiment.h" in f for f in fails) == 1)
        print(r.stdout)
        print("self-test:", "passed" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
