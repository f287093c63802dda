// The calling thread's matrix-product precision (device.h) and the CPU probe for bf16.
#include <string>

#include "core/check.h"
#include "synapse/device.h"

namespace synapse {
namespace {
thread_local MatmulPrecision thread_precision = MatmulPrecision::fp32;
}  // namespace

MatmulPrecision matmul_precision() { return thread_precision; }

void detail::set_thread_matmul_precision(MatmulPrecision p) noexcept { thread_precision = p; }

bool cpu_supports_bf16() {
  // The kernels (backend/cpu/gemm_bf16.cpp) are compiled for AVX-512 + BF16 whatever the build's
  // -march, and run only where the CPU reports the feature. (Not x86-64 with GCC or Clang: no kernels.)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

void set_matmul_precision(MatmulPrecision p) {
  SYN_CHECK(p != MatmulPrecision::bf16 || cpu_supports_bf16(),
            "set_matmul_precision: bf16 matrix products need a CPU with AVX512-BF16 (the avx512_bf16 flag in "
            "/proc/cpuinfo); this CPU lacks it: use fp32");
  thread_precision = p;
}

std::string_view precision_name(MatmulPrecision p) {
  switch (p) {
    case MatmulPrecision::fp32: return "fp32";
    case MatmulPrecision::bf16: return "bf16";
  }
  return "?";
}

MatmulPrecision parse_precision(std::string_view value, std::string_view what) {
  MatmulPrecision p{};
  if (value == "fp32") {
    p = MatmulPrecision::fp32;
  } else if (value == "bf16") {
    p = MatmulPrecision::bf16;
  } else {
    detail::fail("{}: unknown precision '{}' (expected fp32 or bf16)", what, value);
  }
  SYN_CHECK(p != MatmulPrecision::bf16 || cpu_supports_bf16(),
            "{} bf16: this CPU lacks AVX512-BF16 (no avx512_bf16 flag in /proc/cpuinfo), which bf16 matrix products "
            "need; use {} fp32",
            what, what);
  return p;
}

}  // namespace synapse
