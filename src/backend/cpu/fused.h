// Fused elementwise execution: a straight-line program of pointwise block bodies (PointwiseBlock in
// synapse/pointwise.h) run block by block over the output, so a chain like add -> relu -> mul reads its
// inputs and writes its output once, its intermediates living in a per-thread scratch that stays in
// cache.
// The graph Session builds these programs from chains of elementwise nodes.
#pragma once
#include <cstdint>
#include <vector>

#include "synapse/pointwise.h"

namespace synapse::cpu {

// How an input of the program is laid over the output's n elements.
struct PointwiseInput {
  enum class Layout : std::uint8_t {
    Full,  // n elements, element i at [i]
    One,   // a single value
    Row,   // `row` elements repeated: element i at [i % row] (a bias over the trailing dimensions)
  };
  const float* data = nullptr;
  Layout layout = Layout::Full;
  std::int64_t row = 0;
};

// One instruction: out = fn(operands). An operand is input k (k >= 0) or temporary t (encoded -1 - t);
// `out` is a temporary index, or -1 for the program's output (the last instruction).
struct PointwiseInstr {
  const PointwiseFn* fn = nullptr;
  int nin = 0;
  int in[3] = {0, 0, 0};
  int out = -1;
};

// Runs `code` for every element of `out` (n elements), in blocks, over the OpenMP threads. `out` may
// be a Full input (each element is read before it is written). Temporaries: `temps` of them.
void run_pointwise_program(const std::vector<PointwiseInput>& inputs, const std::vector<PointwiseInstr>& code,
                           int temps, float* out, std::int64_t n);

}  // namespace synapse::cpu
