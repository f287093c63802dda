// Elementwise loops shared by the CPU kernels: unary maps and NumPy-broadcasting binary maps.
// They are written so the compiler vectorises the inner loop, and parallelised over OpenMP threads
// with parallel_for above a grain size.
#pragma once
#include <cstdint>
#include <vector>

#include "core/parallel.h"
#include "synapse/pointwise.h"
#include "synapse/tensor.h"

namespace synapse::cpu {

// out[i] = f(in[i])
template <class T, class R, class F>
void unary_map(const Tensor& in, Tensor& out, F f) {
  const T* x = in.data<T>();
  R* y = out.data<R>();
  parallel_for(0, in.numel(), kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
    const F fn = f;  // captured constants in registers, so a select on them vectorises
    for (std::int64_t i = lo; i < hi; ++i) y[i] = fn(x[i]);
  });
}

// Strides (in elements) of `s` seen as broadcast to `out` (rank-aligned on the right; 0 on broadcast dims).
inline std::vector<std::int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<std::int64_t> st(out.size(), 0);
  const auto own = contiguous_strides(s);
  const std::size_t off = out.size() - s.size();
  for (std::size_t i = 0; i < s.size(); ++i) st[off + i] = s[i] == 1 ? 0 : own[i];
  return st;
}

// out = f(a, b) with NumPy broadcasting; out already has the broadcast shape.
template <class T, class R, class F>
void binary_map(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.data<R>();
  const std::int64_t n = out.numel();
  if (n == 0) return;
  if (a.shape() == b.shape()) {
    parallel_for(0, n, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
      const F fn = f;
      for (std::int64_t i = lo; i < hi; ++i) po[i] = fn(pa[i], pb[i]);
    });
    return;
  }
  if (b.numel() == 1 && a.numel() == n) {
    const T vb = pb[0];
    parallel_for(0, n, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) po[i] = f(pa[i], vb);
    });
    return;
  }
  if (a.numel() == 1 && b.numel() == n) {
    const T va = pa[0];
    parallel_for(0, n, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) po[i] = f(va, pb[i]);
    });
    return;
  }
  // General case: iterate rows of the last output dimension.
  const Shape& os = out.shape();
  const std::size_t nd = os.size();
  const auto sa = broadcast_strides(a.shape(), os);
  const auto sb = broadcast_strides(b.shape(), os);
  const std::int64_t inner = os[nd - 1];
  const std::int64_t rows = n / inner;
  const std::int64_t ia = sa[nd - 1], ib = sb[nd - 1];
  const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / inner);
  parallel_for(0, rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      std::int64_t rem = r, oa = 0, ob = 0;
      for (std::size_t d = nd - 1; d-- > 0;) {
        const std::int64_t idx = rem % os[d];
        rem /= os[d];
        oa += idx * sa[d];
        ob += idx * sb[d];
      }
      const T* ra = pa + oa;
      const T* rb = pb + ob;
      R* ro = po + r * inner;
      if (ia == 1 && ib == 1) {
        for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j], rb[j]);
      } else if (ia == 1) {
        const T vb = rb[0];
        for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j], vb);
      } else if (ib == 1) {
        const T va = ra[0];
        for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(va, rb[j]);
      } else {
        const R v = f(ra[0], rb[0]);
        for (std::int64_t j = 0; j < inner; ++j) ro[j] = v;
      }
    }
  });
}

// ---- block bodies for fused execution (see PointwiseBlock in synapse/pointwise.h) ----
// Same scalar functions as the kernels above; no __restrict, since out may alias an input.

template <class F>
void unary_block(const PointwiseBlock& b, F f) {
  const float* x = b.in[0];
  float* y = b.out;
  if (b.one[0]) {
    const float v = f(x[0]);
    for (std::int64_t i = 0; i < b.n; ++i) y[i] = v;
    return;
  }
  for (std::int64_t i = 0; i < b.n; ++i) y[i] = f(x[i]);
}

template <class F>
void binary_block(const PointwiseBlock& b, F f) {
  const float* x = b.in[0];
  const float* z = b.in[1];
  float* y = b.out;
  if (!b.one[0] && !b.one[1]) {
    for (std::int64_t i = 0; i < b.n; ++i) y[i] = f(x[i], z[i]);
  } else if (!b.one[0]) {
    const float vz = z[0];
    for (std::int64_t i = 0; i < b.n; ++i) y[i] = f(x[i], vz);
  } else if (!b.one[1]) {
    const float vx = x[0];
    for (std::int64_t i = 0; i < b.n; ++i) y[i] = f(vx, z[i]);
  } else {
    const float v = f(x[0], z[0]);
    for (std::int64_t i = 0; i < b.n; ++i) y[i] = v;
  }
}

}  // namespace synapse::cpu
