// Starts the target region of a per-ISA kernel file (see kernel_isa.h); isa_end.h ends it. Include
// it after every standard and project header of the file, once.
#include "backend/cpu/kernel_isa.h"

#ifdef SYNAPSE_VEC_H
#error "isa_begin.h: include vec.h (and epilogue.h) after isa_begin.h, so its helpers get the kernel's ISA"
#endif

#pragma GCC push_options
// GCC warns that a lambda taking or returning an __m512 changes the ABI before it applies the region's
// target to the lambda; every such function is internal to the region.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#if defined(__clang__)
// clang ignores GCC's target pragmas: the same region as a clang attribute (isa_end.h pops it).
#if SYNAPSE_KERNEL_LEVEL >= 2 && defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#define SYNAPSE_CLANG_ISA_REGION 1
#elif SYNAPSE_KERNEL_LEVEL == 1 && defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt"))), apply_to = function)
#define SYNAPSE_CLANG_ISA_REGION 1
#endif
#elif SYNAPSE_KERNEL_LEVEL >= 2 && defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512vl,avx512dq")
#elif SYNAPSE_KERNEL_LEVEL == 1 && defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")
#endif
