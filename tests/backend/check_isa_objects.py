#!/usr/bin/env python3
"""Checks the runtime-dispatch rule of src/backend/cpu/kernel_isa.h on compiled objects.

  check_isa_objects.py [--allow REGEX] --generic OBJ... --avx2 OBJ... --avx512 OBJ...

For each function of each object (objdump -d):
  - generic objects (the generic kernel copies, and in a portable build every other object of the
    library): no instruction on ymm or zmm registers at all;
  - avx2 objects: no zmm; ymm only in functions of the synapse::cpu::avx2 namespace or with internal
    linkage (vec.h's helpers);
  - avx512 objects: ymm / zmm only in the synapse::cpu::avx512 namespace or with internal linkage;
  - in every object, a weak (COMDAT) function, which the linker may pick for every object that uses it,
    has no ymm / zmm instruction: that is the SIGILL trap the scheme avoids.
Functions whose demangled name matches --allow are exempt (outside weak functions): code with its own
target attribute and run-time check, such as core/peak.cpp's FMA chains. Prints each violation (object, function, first offending instruction) and exits 1 if any.
"""
import re
import subprocess
import sys

FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
YMM = re.compile(r"%ymm\d+")
ZMM = re.compile(r"%zmm\d+|%k[1-7]\b")


def symbol_kinds(obj):
    """Demangled name -> nm type letter for the functions defined in obj."""
    out = subprocess.run(["nm", "-C", "--defined-only", obj], check=True, capture_output=True, text=True).stdout
    kinds = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            kinds[parts[2]] = parts[1]
    return kinds


def functions(obj):
    """(demangled name, [instructions]) for every function in obj's disassembly."""
    out = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", obj], check=True, capture_output=True,
                         text=True).stdout
    name, body = None, []
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            if name is not None:
                yield name, body
            name, body = m.group(1), []
        elif name is not None and "\t" in line:
            body.append(line.split("\t", 1)[1].strip())
    if name is not None:
        yield name, body


def check(obj, isa, allow):
    problems = []
    kinds = symbol_kinds(obj)
    for name, body in functions(obj):
        kind = kinds.get(name, "?")
        weak = kind in ("W", "V", "u")
        local = kind.islower() or "(anonymous namespace)" in name
        ymm = next((i for i in body if YMM.search(i)), None)
        zmm = next((i for i in body if ZMM.search(i)), None)
        wide = zmm or ymm
        if wide is None or (allow is not None and allow.search(name) and not weak):
            continue
        own = isa != "generic" and f"synapse::cpu::{isa}::" in name
        if weak:
            problems.append(f"{obj}: weak function {name} uses {wide!r}: another object may get this copy")
        elif isa == "generic":
            problems.append(f"{obj}: {name} uses {wide!r} in a generic object")
        elif isa == "avx2" and zmm:
            problems.append(f"{obj}: {name} uses AVX-512 ({zmm!r}) in an avx2 object")
        elif not (own or local):
            problems.append(f"{obj}: {name} uses {wide!r} outside synapse::cpu::{isa}")
    return problems


def main(argv):
    isa, objects, allow = None, {"generic": [], "avx2": [], "avx512": []}, None
    args = [p for a in argv for p in a.split(";") if p]  # CMake passes lists joined with ';'
    if len(args) >= 2 and args[0] == "--allow":
        allow, args = re.compile(args[1]), args[2:]
    for a in args:
        if a.startswith("--"):
            isa = a[2:]
            if isa not in objects:
                sys.exit(f"check_isa_objects.py: unknown option {a} (expected --generic, --avx2, --avx512)")
        elif isa is None:
            sys.exit(f"check_isa_objects.py: {a}: name --generic, --avx2 or --avx512 before the objects")
        else:
            objects[isa].append(a)
    if not any(objects.values()):
        sys.exit("check_isa_objects.py: no objects given")
    problems, count = [], 0
    for isa, objs in objects.items():
        for obj in objs:
            problems += check(obj, isa, allow)
            count += 1
    for p in problems:
        print(p)
    print(f"{count} objects checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
