// The backend's pointwise contract: the float32 body of an elementwise op over one contiguous block,
// for fused execution (the graph Session runs a chain of such ops block by block, so intermediates stay
// in cache). Kernels implement it; an op declares one through OpDef::pointwise (op.h).
#pragma once
#include <cstdint>
#include <functional>

namespace synapse {

// out[i] = f(in[0][i], in[1][i], ...) for i < n, where an input with `one[k]` set is a single value
// read at [0]. `out` may be one of the inputs (element i is read before it is written).
struct PointwiseBlock {
  const float* in[3] = {nullptr, nullptr, nullptr};
  bool one[3] = {false, false, false};
  float* out = nullptr;
  std::int64_t n = 0;
};
using PointwiseFn = std::function<void(const PointwiseBlock&)>;

}  // namespace synapse
