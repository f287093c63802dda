#include "backend/cpu/fused.h"

#include <algorithm>
#include <numeric>

#include "core/parallel.h"

namespace synapse::cpu {

namespace {

// Elements per block: 4 KiB per temporary, so the scratch of a chain stays in L1.
constexpr std::int64_t kBlock = 1024;

}  // namespace

void run_pointwise_program(const std::vector<PointwiseInput>& inputs, const std::vector<PointwiseInstr>& code,
                           int temps, float* out, std::int64_t n) {
  if (n <= 0 || code.empty()) return;
  // Blocks start at multiples of every row length, so a row input is one tile read from [0].
  std::int64_t rows = 1;
  for (const auto& in : inputs)
    if (in.layout == PointwiseInput::Layout::Row) rows = std::lcm(rows, in.row);
  const std::int64_t block = rows * std::max<std::int64_t>(1, kBlock / rows);
  const auto slot = static_cast<std::size_t>(std::min(block, n));  // floats per tile and per temporary
  std::vector<std::vector<float>> tiles(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (inputs[k].layout != PointwiseInput::Layout::Row) continue;
    auto& t = tiles[k];
    t.resize(slot);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = inputs[k].data[static_cast<std::int64_t>(i) % inputs[k].row];
  }
  const std::int64_t blocks = (n + block - 1) / block;
  const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / block);
  parallel_for(0, blocks, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> scratch(static_cast<std::size_t>(temps) * slot);
    for (std::int64_t b = lo; b < hi; ++b) {
      const std::int64_t start = b * block;
      const std::int64_t len = std::min(block, n - start);
      for (const auto& ins : code) {
        PointwiseBlock pb;
        pb.n = len;
        for (int j = 0; j < ins.nin; ++j) {
          const int a = ins.in[j];
          if (a < 0) {
            pb.in[j] = scratch.data() + static_cast<std::size_t>(-1 - a) * slot;
            continue;
          }
          const auto& in = inputs[static_cast<std::size_t>(a)];
          switch (in.layout) {
            case PointwiseInput::Layout::Full: pb.in[j] = in.data + start; break;
            case PointwiseInput::Layout::One:
              pb.in[j] = in.data;
              pb.one[j] = true;
              break;
            case PointwiseInput::Layout::Row: pb.in[j] = tiles[static_cast<std::size_t>(a)].data(); break;
          }
        }
        pb.out = ins.out < 0 ? out + start : scratch.data() + static_cast<std::size_t>(ins.out) * slot;
        (*ins.fn)(pb);
      }
    }
  });
}

}  // namespace synapse::cpu
