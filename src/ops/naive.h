// Loops for the naive reference kernels (`OpDef::reference`): one element at a time, serial, every
// broadcast offset computed from scratch, so that they are obviously correct. Tests compare the fast
// kernels (threaded, vectorised, with fast paths) against kernels built on these. Never used by the
// fast kernels.
#pragma once
#include <cstdint>
#include <vector>

#include "synapse/tensor.h"

namespace synapse::ops::naive {

// The flat offset into a contiguous tensor of shape `s` that NumPy broadcasting maps output element i
// (of shape `os`) to: trailing dimensions aligned, extent-1 dimensions read at index 0.
inline std::int64_t broadcast_offset(std::int64_t i, const Shape& os, const Shape& s) {
  std::int64_t off = 0, stride = 1;
  std::size_t d = os.size(), k = s.size();
  while (d-- > 0) {
    const std::int64_t idx = i % os[d];
    i /= os[d];
    if (k == 0) continue;
    --k;
    if (s[k] != 1) off += idx * stride;
    stride *= s[k];
  }
  return off;
}

// out[i] = f(x[i]).
template <class T, class R, class F> void unary(const Tensor& x, Tensor& out, F f) {
  const T* px = x.data<T>();
  R* po = out.data<R>();
  for (std::int64_t i = 0, n = out.numel(); i < n; ++i) po[i] = static_cast<R>(f(px[i]));
}

// out[i] = f(a[broadcast i], b[broadcast i]).
template <class T, class R, class F> void binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.data<R>();
  const Shape& os = out.shape();
  for (std::int64_t i = 0, n = out.numel(); i < n; ++i)
    po[i] = static_cast<R>(f(pa[broadcast_offset(i, os, a.shape())], pb[broadcast_offset(i, os, b.shape())]));
}

// The multi-index of flat position i in a contiguous tensor of shape s.
inline std::vector<std::int64_t> unravel(std::int64_t i, const Shape& s) {
  std::vector<std::int64_t> idx(s.size());
  for (std::size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

// The flat position of multi-index idx in a contiguous tensor of shape s.
inline std::int64_t ravel(const std::vector<std::int64_t>& idx, const Shape& s) {
  std::int64_t off = 0;
  for (std::size_t d = 0; d < s.size(); ++d) off = off * s[d] + idx[d];
  return off;
}

}  // namespace synapse::ops::naive
