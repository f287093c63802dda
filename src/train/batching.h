// Row gathering for shuffled mini-batches: copies whole rows (examples) with memcpy, any dtype.
// (Contiguous rows need no copy: data::internal::rows_view.)
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/splitmix.h"
#include "data/rows.h"
#include "synapse/random.h"
#include "synapse/tensor.h"

namespace synapse::train::detail {

// rows[idx[0..n)] of t (t's first dimension indexes examples).
inline Tensor take_rows(const Tensor& t, const std::int64_t* idx, std::int64_t n) {
  Shape s = t.shape();
  s[0] = n;
  Tensor out = Tensor::empty(s, t.dtype());
  const std::size_t row = data::internal::row_bytes(t);
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (std::int64_t i = 0; i < n; ++i) std::memcpy(dst + static_cast<std::size_t>(i) * row, src + static_cast<std::size_t>(idx[i]) * row, row);
  return out;
}

// A seeded permutation of [0, n) (Fisher–Yates with Synapse's generator, the same on every machine).
inline std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  Generator g(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(g.next_u64() % static_cast<std::uint64_t>(i + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

// A seed for batch `batch` of epoch `epoch` of a run seeded with `seed` (SplitMix64's finaliser over
// the three, so neighbouring batches and epochs get unrelated seeds).
inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t epoch, std::uint64_t batch) {
  return ::synapse::detail::splitmix64(::synapse::detail::splitmix64(seed ^ epoch) ^ batch);
}

}  // namespace synapse::train::detail
