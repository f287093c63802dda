// Compiling a kernel file once per instruction set (the runtime dispatch of isa.h).
//
// Each file listed in SYNAPSE_KERNEL_SOURCES (src/CMakeLists.txt) is compiled three times on x86-64,
// with -DSYNAPSE_KERNEL_ISA=generic|avx2|avx512 and -DSYNAPSE_KERNEL_LEVEL=0|1|2 and WITHOUT any -m
// flag beyond the build's baseline (not even -march=native: only -mtune=native when SYNAPSE_NATIVE).
// The file's kernels are compiled for the wider instruction sets by a `#pragma GCC target` region that
// starts after every standard and project header is included:
//
//   #include <algorithm>                    // every standard / project header first
//   #include "backend/cpu/conv.h"
//   #include "core/parallel.h"
//   #include "backend/cpu/isa_begin.h"      // push_options + target(...): the region starts here
//   #include "backend/cpu/vec.h"            // ISA helpers (internal linkage), compiled for the region
//   namespace synapse::cpu::SYNAPSE_KERNEL_ISA {
//   ... kernels: `#if SYNAPSE_AVX512` 16-lane code `#elif SYNAPSE_AVX2` 8-lane code `#else` scalar ...
//   }
//   #include "backend/cpu/isa_end.h"        // pop_options: the region ends
//   #if SYNAPSE_KERNEL_DISPATCH             // the generic compile only: the public entry points
//   SYNAPSE_ISA_VARIANTS(conv2d_forward)
//   void conv2d_forward(...) { SYNAPSE_DISPATCH(conv2d_forward)(g, x, ...); }
//   #endif
//
// Why this scheme and not -mavx512f on the command line: inline functions and template
// instantiations (std::vector, std::min, parallel_for's helpers, a header's lambdas) are emitted in
// every object that uses them under one mangled name, and the linker keeps one copy for all; had an
// object been compiled with -mavx512f, that copy could be its AVX-512 one, and an AVX2 machine would
// die of SIGILL in std::vector. Here every such function is defined outside the region, so every
// object compiles it for the baseline; only code written inside the region (the kernels, in the
// namespace of their ISA, and vec.h / epilogue.h, which have internal linkage) gets the wide
// instructions. GCC inlines baseline functions into the region's functions (their ISA is a subset),
// so std::min & co. cost nothing. tests/backend/check_isa_objects.py checks the objects: no weak
// symbol of an avx2/avx512 object contains a ymm/zmm instruction, and the generic objects none at all.
//
// GCC does not define __AVX2__ / __AVX512F__ inside a target region of a C++ file, so the kernels test
// SYNAPSE_AVX2 (AVX2 + FMA usable: the avx2 and avx512 compiles) and SYNAPSE_AVX512 (the avx512 compile).
//
// Calls between kernel files go through the public entry points (conv.cpp calls gemm() and
// conv2d_direct_forward(), which dispatch again to the same path). A kernel file must not call, by its
// unqualified name, a public kernel it defines itself: argument-dependent lookup would also find the
// dispatcher in synapse::cpu, and the call is ambiguous (the compiler says so).
//
// Adding a kernel file: add it to SYNAPSE_KERNEL_SOURCES, lay it out as above, give each public
// function a line of SYNAPSE_ISA_VARIANTS and a dispatching definition, and keep its naive reference
// (compiled once, in the generic compile's dispatch section, like conv2d_forward_reference).
// Adding a path (e.g. amx): a new level here and in isa.h, and a fourth compile in src/CMakeLists.txt.
#pragma once
#include <cstdint>
#include <cstring>

#include "backend/cpu/isa.h"

#if !defined(SYNAPSE_KERNEL_ISA) || !defined(SYNAPSE_KERNEL_LEVEL)
#error "kernel_isa.h: compile this file through SYNAPSE_KERNEL_SOURCES (it needs SYNAPSE_KERNEL_ISA / _LEVEL)"
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define SYNAPSE_AVX2 (SYNAPSE_KERNEL_LEVEL >= 1)
#define SYNAPSE_AVX512 (SYNAPSE_KERNEL_LEVEL >= 2)
#else
#define SYNAPSE_AVX2 0
#define SYNAPSE_AVX512 0
#endif

// The generic compile also defines the dispatching entry points.
#define SYNAPSE_KERNEL_DISPATCH (SYNAPSE_KERNEL_LEVEL == 0)

#if defined(__x86_64__)
// Declares the three copies of the public kernel `f` (same type as synapse::cpu::f).
#define SYNAPSE_ISA_VARIANTS(f)                                   \
  namespace generic { decltype(::synapse::cpu::f) f; }            \
  namespace avx2 { decltype(::synapse::cpu::f) f; }               \
  namespace avx512 { decltype(::synapse::cpu::f) f; }
// The copy of `f` for the active path.
#define SYNAPSE_DISPATCH(f) (::synapse::cpu::pick_isa(&generic::f, &avx2::f, &avx512::f))
#else
#define SYNAPSE_ISA_VARIANTS(f) \
  namespace generic { decltype(::synapse::cpu::f) f; }
#define SYNAPSE_DISPATCH(f) (&generic::f)
#endif
