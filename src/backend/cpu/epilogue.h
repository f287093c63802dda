// The two ends of a fused layer (dense, conv2d + bias + relu): the output starts as the bias in every
// row, a GEMM accumulates the product onto it (beta = 1), then relu runs in place. Internal linkage,
// like vec.h: a per-ISA kernel file includes it after isa_begin.h (see kernel_isa.h).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/parallel.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu {
namespace {

// y[r, 0:n) = bias[0:n) for r < rows (y row-major, rows of n floats), on the calling thread.
inline void fill_rows(float* y, const float* bias, std::int64_t rows, std::int64_t n) {
  for (std::int64_t r = 0; r < rows; ++r) copy_floats(y + r * n, bias, n);
}

// The same over the threads.
inline void parallel_fill_rows(float* y, const float* bias, std::int64_t rows, std::int64_t n) {
  parallel_for(0, rows, kElementwiseGrain / std::max<std::int64_t>(n, 1) + 1,
               [&](std::int64_t lo, std::int64_t hi) { fill_rows(y + lo * n, bias, hi - lo, n); });
}

// p[0, n) = max(p[0, n), 0), over the threads.
inline void relu_in_place(float* p, std::int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) { relu_floats(p + lo, hi - lo); });
}

}  // namespace
}  // namespace synapse::cpu
