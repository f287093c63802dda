// Shape ops: reshape (a view) and its compositions (flatten, squeeze, unsqueeze), and ops that move
// data without arithmetic: permute/transpose, concat, slice, pad, gather (with its scatter-add
// gradient gather_grad) and one_hot.
//
// Data movement is written once per element size, not per dtype: the kernels copy elements as
// unsigned integers of the element's width (or whole contiguous runs with memcpy).
#include <cstring>
#include <numeric>
#include <vector>

#include "core/parallel.h"
#include "core/check.h"
#include "ops/dtype_dispatch.h"
#include "ops/families.h"
#include "ops/naive.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

using Ints = std::vector<std::int64_t>;

// Resolves one -1 extent; throws naming both shapes when the element counts differ.
Shape resolve_reshape(const Shape& from, Shape to) {
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < to.size(); ++i) {
    if (to[i] == -1) {
      SYN_CHECK(infer < 0, "only one extent may be -1 in {}", to_string(to));
      infer = static_cast<int>(i);
    } else {
      SYN_CHECK(to[i] >= 0, "negative extent in {}", to_string(to));
      known *= to[i];
    }
  }
  const std::int64_t n = numel(from);
  if (infer >= 0) {
    SYN_CHECK(known != 0 && n % known == 0, "cannot reshape {} ({} elements) to {}", to_string(from), n, to_string(to));
    to[static_cast<std::size_t>(infer)] = n / known;
  }
  SYN_CHECK(numel(to) == n, "cannot reshape {} ({} elements) to {} ({} elements)", to_string(from), n, to_string(to),
            numel(to));
  return to;
}

std::size_t sz(std::int64_t i) { return static_cast<std::size_t>(i); }

// Calls f.template operator()<U>() with U an unsigned integer as wide as one element.
template <class F> void visit_width(DType dt, F&& f) {
  switch (dtype_size(dt)) {
    case 1: f.template operator()<std::uint8_t>(); return;
    case 4: f.template operator()<std::uint32_t>(); return;
    case 8: f.template operator()<std::uint64_t>(); return;
    default: detail::fail("unsupported element size {}", dtype_size(dt));
  }
}

// Rows of at least this many bytes per parallel chunk.
constexpr std::int64_t kCopyGrainBytes = 1 << 17;

// Copies a block of extents `ext` from src to dst, both addressed with element strides whose last
// entry is 1 (rows are contiguous on both sides): memcpy per row, rows in parallel.
void copy_block(const std::byte* src, const Ints& src_strides, std::byte* dst, const Ints& dst_strides, const Shape& ext,
                std::size_t esize) {
  if (numel(ext) == 0) return;
  if (ext.empty()) {
    std::memcpy(dst, src, esize);
    return;
  }
  const std::size_t nd = ext.size();
  const std::int64_t row = ext[nd - 1];
  const std::int64_t rows = numel(ext) / row;
  const std::size_t row_bytes = sz(row) * esize;
  const std::int64_t grain = std::max<std::int64_t>(1, kCopyGrainBytes / static_cast<std::int64_t>(row_bytes));
  parallel_for(0, rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      std::int64_t rem = r, so = 0, dof = 0;
      for (std::size_t d = nd - 1; d-- > 0;) {
        const std::int64_t idx = rem % ext[d];
        rem /= ext[d];
        so += idx * src_strides[d];
        dof += idx * dst_strides[d];
      }
      std::memcpy(dst + sz(dof) * esize, src + sz(so) * esize, row_bytes);
    }
  });
}

const std::byte* bytes(const Tensor& t) { return static_cast<const std::byte*>(t.raw_data()); }
std::byte* bytes(Tensor& t) { return static_cast<std::byte*>(t.raw_data()); }

// ---- permute ----

// perm must hold each of 0..n-1 once (negative entries count from the end).
Ints resolve_perm(const Ints& perm, std::int64_t n) {
  SYN_CHECK(static_cast<std::int64_t>(perm.size()) == n, "perm [{}] has {} entries for a tensor of rank {}",
            fmt::join(perm, ","), perm.size(), n);
  Ints out;
  std::vector<char> used(sz(n), 0);
  for (auto p : perm) {
    SYN_CHECK(p >= -n && p < n, "perm [{}] is not a permutation of 0..{}", fmt::join(perm, ","), n - 1);
    const std::int64_t q = p < 0 ? p + n : p;
    SYN_CHECK(!used[sz(q)], "perm [{}] is not a permutation of 0..{}", fmt::join(perm, ","), n - 1);
    used[sz(q)] = 1;
    out.push_back(q);
  }
  return out;
}

// The permutation as a strided read: out[idx] = in[sum idx[k] * stride[k]] over output dims k, with
// extent-1 dims dropped and runs of output dims that are adjacent in the input merged.
struct StridedView {
  Shape ext;
  Ints stride;  // in input elements
};
StridedView permuted_view(const Shape& s, const Ints& perm) {
  const Ints in_st = contiguous_strides(s);
  StridedView v;
  for (auto p : perm) {
    const std::int64_t e = s[sz(p)], st = in_st[sz(p)];
    if (e == 1) continue;
    if (!v.ext.empty() && v.stride.back() == st * e) {
      v.ext.back() *= e;
      v.stride.back() = st;
    } else {
      v.ext.push_back(e);
      v.stride.push_back(st);
    }
  }
  return v;
}

// Copies a strip of a 2-D transpose: dst[a, b] = src[a * 1 + b * sb] for a in [a0, a1) and all b,
// with dst rows `ld` apart. Each 32 x 32 tile goes through a buffer on the stack: read in
// contiguous runs of a, written in contiguous runs of b, so power-of-two strides cannot make the
// tile's cache lines evict each other.
template <class U>
void transpose_strip(const U* src, U* dst, std::int64_t a0, std::int64_t a1, std::int64_t B, std::int64_t sb,
                     std::int64_t ld) {
  constexpr std::int64_t T = 32;
  U buf[T * T];
  const std::int64_t na = a1 - a0;
  for (std::int64_t b0 = 0; b0 < B; b0 += T) {
    const std::int64_t nb = std::min(T, B - b0);
    for (std::int64_t b = 0; b < nb; ++b) {
      const U* s = src + a0 + (b0 + b) * sb;
      for (std::int64_t a = 0; a < na; ++a) buf[a * T + b] = s[a];
    }
    for (std::int64_t a = 0; a < na; ++a) {
      U* d = dst + (a0 + a) * ld + b0;
      for (std::int64_t b = 0; b < nb; ++b) d[b] = buf[a * T + b];
    }
  }
}

// out = permute(in). The merged view tells the case: rows contiguous in the input (memcpy of rows);
// otherwise a tiled transpose between the output dim read with stride 1 (j) and the last (L).
template <class U> void permute_fast(const U* in, U* out, const StridedView& v) {
  const std::size_t nd = v.ext.size();
  if (nd == 0 || v.stride[nd - 1] == 1) {
    const Ints dst_st = contiguous_strides(v.ext);
    copy_block(reinterpret_cast<const std::byte*>(in), v.stride, reinterpret_cast<std::byte*>(out), dst_st, v.ext,
               sizeof(U));
    return;
  }
  std::size_t j = 0;
  while (v.stride[j] != 1) ++j;  // the input's innermost dim lands at output dim j < nd - 1
  const Ints out_st = contiguous_strides(v.ext);
  const std::int64_t A = v.ext[j], B = v.ext[nd - 1], sb = v.stride[nd - 1], ld = out_st[j];
  // Every other output dim is an "outer" index; work items are (outer, strip of a).
  Shape outer_ext;
  Ints outer_in, outer_out;
  for (std::size_t k = 0; k + 1 < nd; ++k)
    if (k != j) {
      outer_ext.push_back(v.ext[k]);
      outer_in.push_back(v.stride[k]);
      outer_out.push_back(out_st[k]);
    }
  constexpr std::int64_t TB = 32;
  const std::int64_t strips = (A + TB - 1) / TB;
  const std::int64_t items = numel(outer_ext) * strips;
  const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / (TB * B));
  parallel_for(0, items, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) {
      std::int64_t rem = t / strips, io = 0, oo = 0;
      for (std::size_t d = outer_ext.size(); d-- > 0;) {
        const std::int64_t idx = rem % outer_ext[d];
        rem /= outer_ext[d];
        io += idx * outer_in[d];
        oo += idx * outer_out[d];
      }
      const std::int64_t a0 = (t % strips) * TB;
      transpose_strip(in + io, out + oo, a0, std::min(A, a0 + TB), B, sb, ld);
    }
  });
}

// Naive reference: one element at a time.
template <class U> void permute_reference(const U* in, U* out, const Shape& s, const Ints& perm) {
  const Ints in_st = contiguous_strides(s);
  Shape os;
  for (auto p : perm) os.push_back(s[sz(p)]);
  for (std::int64_t i = 0, n = numel(s); i < n; ++i) {
    std::int64_t rem = i, off = 0;
    for (std::size_t d = os.size(); d-- > 0;) {
      off += (rem % os[d]) * in_st[sz(perm[d])];
      rem /= os[d];
    }
    out[i] = in[off];
  }
}

template <bool kReference> KernelFn permute_kernel() {
  return [](const KernelContext& c) {
    const Tensor& x = c.in(0);
    const Ints perm = resolve_perm(c.attrs.ints("perm"), x.ndim());
    visit_width(x.dtype(), [&]<class U>() {
      const U* in = static_cast<const U*>(x.raw_data());
      U* out = static_cast<U*>(c.out(0).raw_data());
      if (x.numel() == 0) return;
      if constexpr (kReference) {
        permute_reference(in, out, x.shape(), perm);
      } else {
        permute_fast(in, out, permuted_view(x.shape(), perm));
      }
    });
  };
}

Ints inverse_perm(const Ints& perm) {
  Ints inv(perm.size());
  for (std::size_t k = 0; k < perm.size(); ++k) inv[sz(perm[k])] = static_cast<std::int64_t>(k);
  return inv;
}

// ---- concat ----

std::vector<TensorMeta> concat_shape(const std::vector<TensorMeta>& in, const Attrs& a) {
  SYN_CHECK(!in.empty(), "needs at least one tensor");
  const Shape& s0 = in[0].shape;
  SYN_CHECK(!s0.empty(), "cannot concatenate scalars (shape [])");
  const auto axis = normalize_axis(a.i("axis"), static_cast<std::int64_t>(s0.size()), "concat");
  Shape out = s0;
  out[sz(axis)] = 0;
  for (std::size_t k = 0; k < in.size(); ++k) {
    const Shape& s = in[k].shape;
    SYN_CHECK(in[k].dtype == in[0].dtype, "dtypes differ: input 0 is {}, input {} is {}", dtype_name(in[0].dtype), k,
              dtype_name(in[k].dtype));
    bool agree = s.size() == s0.size();
    for (std::size_t d = 0; agree && d < s.size(); ++d) agree = d == sz(axis) || s[d] == s0[d];
    SYN_CHECK(agree, "shapes must agree except on axis {}: input 0 is {}, input {} is {}", axis, to_string(s0), k,
              to_string(s));
    out[sz(axis)] += s[sz(axis)];
  }
  return one_output(std::move(out), in[0].dtype);
}

// out (outer, sum_k n_k * inner): input k fills columns [offset_k, offset_k + n_k * inner) of each row.
void concat_kernel(const KernelContext& c) {
  Tensor& out = c.out(0);
  if (out.numel() == 0) return;
  const auto axis = normalize_axis(c.attrs.i("axis"), out.ndim(), "concat");
  const std::size_t es = dtype_size(out.dtype());
  const Ints out_st = contiguous_strides(out.shape());
  std::int64_t offset = 0;  // along the axis
  for (const Tensor& x : c.inputs) {
    copy_block(bytes(x), contiguous_strides(x.shape()), bytes(out) + sz(offset * out_st[sz(axis)]) * es, out_st,
               x.shape(), es);
    offset += x.shape()[sz(axis)];
  }
}

// Naive reference: for each output element, the input whose range along the axis holds it.
void concat_reference(const KernelContext& c) {
  Tensor& out = c.out(0);
  const auto axis = sz(normalize_axis(c.attrs.i("axis"), out.ndim(), "concat"));
  visit_width(out.dtype(), [&]<class U>() {
    U* po = static_cast<U*>(out.raw_data());
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      Ints idx = naive::unravel(i, out.shape());
      std::size_t k = 0;
      while (idx[axis] >= c.in(k).shape()[axis]) idx[axis] -= c.in(k++).shape()[axis];
      po[i] = static_cast<const U*>(c.in(k).raw_data())[naive::ravel(idx, c.in(k).shape())];
    }
  });
}

// ---- slice and pad ----

// The size with -1 resolved; throws naming the shape when begin/size do not fit.
Ints resolve_slice(const Shape& s, const Ints& begin, const Ints& size) {
  const auto n = s.size();
  SYN_CHECK(begin.size() == n && size.size() == n, "begin [{}] and size [{}] need {} entries for shape {}",
            fmt::join(begin, ","), fmt::join(size, ","), n, to_string(s));
  Ints out(n);
  for (std::size_t d = 0; d < n; ++d) {
    const std::int64_t len = size[d] == -1 ? s[d] - begin[d] : size[d];
    SYN_CHECK(begin[d] >= 0 && begin[d] <= s[d] && len >= 0 && begin[d] + len <= s[d],
              "begin [{}] size [{}] is out of bounds for shape {} (dimension {})", fmt::join(begin, ","),
              fmt::join(size, ","), to_string(s), d);
    out[d] = len;
  }
  return out;
}

void slice_kernel(const KernelContext& c) {
  const Tensor& x = c.in(0);
  Tensor& out = c.out(0);
  if (out.numel() == 0) return;
  const Ints& begin = c.attrs.ints("begin");
  const Ints in_st = contiguous_strides(x.shape());
  std::int64_t start = 0;
  for (std::size_t d = 0; d < begin.size(); ++d) start += begin[d] * in_st[d];
  const std::size_t es = dtype_size(x.dtype());
  copy_block(bytes(x) + sz(start) * es, in_st, bytes(out), contiguous_strides(out.shape()), out.shape(), es);
}

// Naive reference: out[idx] = x[idx + begin].
void slice_reference(const KernelContext& c) {
  const Tensor& x = c.in(0);
  const Ints& begin = c.attrs.ints("begin");
  visit_width(x.dtype(), [&]<class U>() {
    const U* px = static_cast<const U*>(x.raw_data());
    U* po = static_cast<U*>(c.out(0).raw_data());
    for (std::int64_t i = 0; i < c.out(0).numel(); ++i) {
      Ints idx = naive::unravel(i, c.out(0).shape());
      for (std::size_t d = 0; d < idx.size(); ++d) idx[d] += begin[d];
      po[i] = px[naive::ravel(idx, x.shape())];
    }
  });
}

// paddings are stored flat: (before_0, after_0, before_1, after_1, ...).
std::vector<TensorMeta> pad_shape(const std::vector<TensorMeta>& in, const Attrs& a) {
  const Shape& s = in[0].shape;
  const Ints& p = a.ints("paddings");
  SYN_CHECK(p.size() == 2 * s.size(), "{} (before, after) pairs given for shape {}", p.size() / 2, to_string(s));
  Shape out = s;
  for (std::size_t d = 0; d < s.size(); ++d) {
    SYN_CHECK(p[2 * d] >= 0 && p[2 * d + 1] >= 0, "negative padding ({}, {}) for dimension {} of shape {}", p[2 * d],
              p[2 * d + 1], d, to_string(s));
    out[d] += p[2 * d] + p[2 * d + 1];
  }
  return one_output(std::move(out), in[0].dtype);
}

void pad_kernel(const KernelContext& c) {
  const Tensor& x = c.in(0);
  Tensor& out = c.out(0);
  const double value = c.attrs.f("value");
  visit_all(out.dtype(), [&]<class T>() {
    T* po = out.data<T>();
    const T v = static_cast<T>(value);
    parallel_for(0, out.numel(), kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) po[i] = v;
    });
  });
  if (x.numel() == 0) return;
  const Ints& p = c.attrs.ints("paddings");
  const Ints out_st = contiguous_strides(out.shape());
  std::int64_t start = 0;
  for (std::size_t d = 0; d < out_st.size(); ++d) start += p[2 * d] * out_st[d];
  const std::size_t es = dtype_size(x.dtype());
  copy_block(bytes(x), contiguous_strides(x.shape()), bytes(out) + sz(start) * es, out_st, x.shape(), es);
}

// Naive reference: out[idx] = x[idx - before] where that lies inside x, else value.
void pad_reference(const KernelContext& c) {
  const Tensor& x = c.in(0);
  const Ints& p = c.attrs.ints("paddings");
  const double value = c.attrs.f("value");
  visit_all(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = c.out(0).data<T>();
    for (std::int64_t i = 0; i < c.out(0).numel(); ++i) {
      Ints idx = naive::unravel(i, c.out(0).shape());
      bool inside = true;
      for (std::size_t d = 0; d < idx.size(); ++d) {
        idx[d] -= p[2 * d];
        inside = inside && idx[d] >= 0 && idx[d] < x.shape()[d];
      }
      po[i] = inside ? px[naive::ravel(idx, x.shape())] : static_cast<T>(value);
    }
  });
}

// ---- gather and its gradient ----

// params viewed as (outer, axis extent, inner), indices as n flat positions.
struct GatherDims {
  std::int64_t outer = 1, extent = 1, inner = 1, n = 1;
};
GatherDims gather_dims(const Shape& params, std::int64_t axis, std::int64_t n_indices) {
  GatherDims g;
  for (std::size_t d = 0; d < params.size(); ++d) {
    if (static_cast<std::int64_t>(d) < axis) g.outer *= params[d];
    if (static_cast<std::int64_t>(d) > axis) g.inner *= params[d];
  }
  g.extent = params[sz(axis)];
  g.n = n_indices;
  return g;
}

Shape gather_output_shape(const Shape& params, const Shape& indices, std::int64_t axis) {
  Shape out(params.begin(), params.begin() + axis);
  out.insert(out.end(), indices.begin(), indices.end());
  out.insert(out.end(), params.begin() + axis + 1, params.end());
  return out;
}

void check_index_dtype(DType dt) {
  SYN_CHECK(dt == DType::Int32 || dt == DType::Int64, "indices must be int32 or int64, got {}", dtype_name(dt));
}

// The indices as int64, each checked against [0, extent) before any parallel work.
Ints checked_indices(const Tensor& indices, std::int64_t extent, std::int64_t axis, const Shape& params,
                     const char* op) {
  Ints idx(sz(indices.numel()));
  visit_numeric(indices.dtype(), op, [&]<class I>() {
    const I* p = indices.data<I>();
    for (std::size_t k = 0; k < idx.size(); ++k) idx[k] = static_cast<std::int64_t>(p[k]);
  });
  for (std::size_t k = 0; k < idx.size(); ++k)
    SYN_CHECK(idx[k] >= 0 && idx[k] < extent, "{}: index {} (at flat position {} of indices) is out of range [0, {}) "
              "for axis {} of params {}", op, idx[k], k, extent, axis, to_string(params));
  return idx;
}

void gather_kernel(const KernelContext& c) {
  const Tensor& params = c.in(0);
  const auto axis = normalize_axis(c.attrs.i("axis"), params.ndim(), "gather");
  const GatherDims g = gather_dims(params.shape(), axis, c.in(1).numel());
  const Ints idx = checked_indices(c.in(1), g.extent, axis, params.shape(), "gather");
  const std::size_t es = dtype_size(params.dtype());
  const std::size_t row_bytes = sz(g.inner) * es;
  const std::byte* src = bytes(params);
  std::byte* dst = bytes(c.out(0));
  if (row_bytes == 0) return;
  // out (outer, n, inner)[o, k] = params (outer, extent, inner)[o, idx[k]]
  const std::int64_t grain = std::max<std::int64_t>(1, kCopyGrainBytes / static_cast<std::int64_t>(row_bytes));
  parallel_for(0, g.outer * g.n, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) {
      const std::int64_t o = t / g.n, k = t % g.n;
      std::memcpy(dst + sz(t) * row_bytes, src + sz(o * g.extent + idx[sz(k)]) * row_bytes, row_bytes);
    }
  });
}

// Naive reference: out[before..., k..., after...] = params[before..., indices[k...], after...].
void gather_reference(const KernelContext& c) {
  const Tensor& params = c.in(0);
  const Tensor& indices = c.in(1);
  const auto axis = sz(normalize_axis(c.attrs.i("axis"), params.ndim(), "gather"));
  const Ints idx =
      checked_indices(indices, params.shape()[axis], static_cast<std::int64_t>(axis), params.shape(), "gather");
  const std::size_t ni = indices.shape().size();
  visit_width(params.dtype(), [&]<class U>() {
    const U* src = static_cast<const U*>(params.raw_data());
    U* po = static_cast<U*>(c.out(0).raw_data());
    for (std::int64_t i = 0; i < c.out(0).numel(); ++i) {
      const Ints o = naive::unravel(i, c.out(0).shape());
      const auto at = [&](std::size_t d) { return o.begin() + static_cast<std::ptrdiff_t>(d); };
      Ints pi(o.begin(), at(axis));                                                // the dims before the axis,
      pi.push_back(idx[sz(naive::ravel(Ints(at(axis), at(axis + ni)), indices.shape()))]);  // the index,
      pi.insert(pi.end(), at(axis + ni), o.end());                                 // the dims after it
      po[i] = src[naive::ravel(pi, params.shape())];
    }
  });
}

// gather_grad(dy, indices; axis, shape) = zeros(shape) with dy's rows added at the gathered positions
// (a scatter-add: duplicate indices accumulate). Race-free: each work item owns one o and a block of
// columns, and adds every k into it in order, so results do not depend on the thread count.
template <bool kReference> KernelFn gather_grad_kernel() {
  return [](const KernelContext& c) {
    Tensor& out = c.out(0);
    const auto axis = normalize_axis(c.attrs.i("axis"), out.ndim(), "gather_grad");
    const GatherDims g = gather_dims(out.shape(), axis, c.in(1).numel());
    const Ints idx = checked_indices(c.in(1), g.extent, axis, out.shape(), "gather_grad");
    visit_numeric(out.dtype(), "gather_grad", [&]<class T>() {
      const T* dy = c.in(0).data<T>();
      T* po = out.data<T>();
      parallel_for(0, out.numel(), kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
        std::fill(po + lo, po + hi, T(0));
      });
      if (g.inner == 0) return;
      auto add_rows = [&](std::int64_t o, std::int64_t j0, std::int64_t j1) {
        for (std::int64_t k = 0; k < g.n; ++k) {
          const T* src = dy + (o * g.n + k) * g.inner;
          T* dst = po + (o * g.extent + idx[sz(k)]) * g.inner;
          for (std::int64_t j = j0; j < j1; ++j) dst[j] += src[j];
        }
      };
      if constexpr (kReference) {
        for (std::int64_t o = 0; o < g.outer; ++o) add_rows(o, 0, g.inner);
      } else {
        const std::int64_t col_blocks = g.outer >= 4 ? 1 : std::max<std::int64_t>(1, std::min<std::int64_t>(4, g.inner / 64));
        const std::int64_t per_item = std::max<std::int64_t>(1, g.n * g.inner / col_blocks);
        parallel_for(0, g.outer * col_blocks, std::max<std::int64_t>(1, kElementwiseGrain / per_item),
                          [&](std::int64_t lo, std::int64_t hi) {
                            for (std::int64_t t = lo; t < hi; ++t) {
                              const std::int64_t o = t / col_blocks, b = t % col_blocks;
                              add_rows(o, g.inner * b / col_blocks, g.inner * (b + 1) / col_blocks);
                            }
                          });
      }
    });
  };
}

// ---- one_hot ----

// out (n, depth): `on` at column indices[i] when it lies in [0, depth), `off` elsewhere.
void one_hot_kernel(const KernelContext& c) {
  const std::int64_t depth = c.attrs.i("depth");
  const auto on = static_cast<float>(c.attrs.f("on")), off = static_cast<float>(c.attrs.f("off"));
  float* po = c.out(0).data<float>();
  const std::int64_t n = c.in(0).numel();
  visit_numeric(c.in(0).dtype(), "one_hot", [&]<class I>() {
    const I* pi = c.in(0).data<I>();
    const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(1, depth));
    parallel_for(0, n, grain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) {
        float* row = po + i * depth;
        for (std::int64_t j = 0; j < depth; ++j) row[j] = off;
        const auto k = static_cast<std::int64_t>(pi[i]);
        if (k >= 0 && k < depth) row[k] = on;
      }
    });
  });
}

// Naive reference: `on` where the column equals the index, `off` elsewhere.
void one_hot_reference(const KernelContext& c) {
  const std::int64_t depth = c.attrs.i("depth");
  const auto on = static_cast<float>(c.attrs.f("on")), off = static_cast<float>(c.attrs.f("off"));
  float* po = c.out(0).data<float>();
  visit_numeric(c.in(0).dtype(), "one_hot", [&]<class I>() {
    const I* pi = c.in(0).data<I>();
    for (std::int64_t i = 0; i < c.in(0).numel(); ++i)
      for (std::int64_t j = 0; j < depth; ++j) po[i * depth + j] = static_cast<std::int64_t>(pi[i]) == j ? on : off;
  });
}

}  // namespace

void register_shape_ops() {
  define_op("reshape")
      .inputs(1)
      .view()
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        return one_output(resolve_reshape(in[0].shape, a.ints("shape")), in[0].dtype);
      })
      .kernel(Device::CPU, [](const KernelContext&) {})  // a view: the dispatcher shares the input's storage
      .no_reference("a view: the dispatcher shares the input's storage and no kernel moves data")
      .grad([](const GradCtx& g) { return grads(reshape(g.dy(), g.x().shape())); });

  // permute(x; perm): out.shape[k] = x.shape[perm[k]].
  define_op("permute")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        const Shape& s = in[0].shape;
        const Ints perm = resolve_perm(a.ints("perm"), static_cast<std::int64_t>(s.size()));
        Shape out;
        for (auto p : perm) out.push_back(s[sz(p)]);
        return one_output(std::move(out), in[0].dtype);
      })
      .kernel(Device::CPU, permute_kernel<false>())
      .reference(permute_kernel<true>())
      .grad([](const GradCtx& g) {
        return grads(permute(g.dy(), inverse_perm(resolve_perm(g.attrs.ints("perm"), g.x().ndim()))));
      });

  // concat(x_0, ..., x_k; axis). The gradient of each input is its slice of dy.
  define_op("concat")
      .inputs(-1)
      .shape(concat_shape)
      .kernel(Device::CPU, concat_kernel)
      .reference(concat_reference)
      .grad([](const GradCtx& g) {
        const auto axis = normalize_axis(g.attrs.i("axis"), g.dy().ndim(), "concat");
        std::vector<Tensor> dx(g.inputs.size());
        Ints begin(g.dy().shape().size(), 0);
        for (std::size_t k = 0; k < g.inputs.size(); ++k) {
          const Shape& s = g.x(k).shape();
          if (g.x(k).requires_grad()) dx[k] = g.inputs.size() == 1 ? g.dy() : slice(g.dy(), begin, s);
          begin[sz(axis)] += s[sz(axis)];
        }
        return dx;
      });

  // slice(x; begin, size) with TensorFlow's semantics (size -1: to the end).
  define_op("slice")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        return one_output(resolve_slice(in[0].shape, a.ints("begin"), a.ints("size")), in[0].dtype);
      })
      .kernel(Device::CPU, slice_kernel)
      .reference(slice_reference)
      .grad([](const GradCtx& g) {
        const Shape& s = g.x().shape();
        const Ints& begin = g.attrs.ints("begin");
        const Shape& size = g.y().shape();
        std::vector<std::pair<std::int64_t, std::int64_t>> p;
        for (std::size_t d = 0; d < s.size(); ++d) p.emplace_back(begin[d], s[d] - begin[d] - size[d]);
        return grads(pad(g.dy(), p, 0.0f));
      });

  // pad(x; paddings, value).
  define_op("pad")
      .inputs(1)
      .shape(pad_shape)
      .kernel(Device::CPU, pad_kernel)
      .reference(pad_reference)
      .grad([](const GradCtx& g) {
        const Ints& p = g.attrs.ints("paddings");
        Ints begin;
        for (std::size_t d = 0; d < p.size() / 2; ++d) begin.push_back(p[2 * d]);
        return grads(slice(g.dy(), begin, g.x().shape()));
      });

  // gather(params, indices; axis): out = params.shape[:axis] + indices.shape + params.shape[axis+1:].
  define_op("gather")
      .inputs(2)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        const Shape& s = in[0].shape;
        check_index_dtype(in[1].dtype);
        SYN_CHECK(!s.empty(), "params must have rank >= 1, got shape []");
        const auto axis = normalize_axis(a.i("axis"), static_cast<std::int64_t>(s.size()), "gather");
        return one_output(gather_output_shape(s, in[1].shape, axis), in[0].dtype);
      })
      .kernel(Device::CPU, gather_kernel)
      .reference(gather_reference)
      .grad([](const GradCtx& g) {
        static const OpDef& scatter = op_def("gather_grad");
        const Attrs a = Attrs().set("axis", g.attrs.i("axis")).set("shape", g.x(0).shape());
        return grads(apply1(scatter, {g.dy(), g.x(1)}, a), Tensor());
      });

  // gather_grad(dy, indices; axis, shape): the scatter-add adjoint of gather, of the params' shape.
  define_op("gather_grad")
      .inputs(2)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        const Shape& s = a.ints("shape");
        check_index_dtype(in[1].dtype);
        SYN_CHECK(!s.empty(), "params must have rank >= 1, got shape []");
        const auto axis = normalize_axis(a.i("axis"), static_cast<std::int64_t>(s.size()), "gather_grad");
        const Shape want = gather_output_shape(s, in[1].shape, axis);
        SYN_CHECK(in[0].shape == want, "dy has shape {}, expected {} for params {} and indices {}", to_string(in[0].shape),
                  to_string(want), to_string(s), to_string(in[1].shape));
        return one_output(std::move(s), in[0].dtype);
      })
      .kernel(Device::CPU, gather_grad_kernel<false>())
      .reference(gather_grad_kernel<true>())
      .grad([](const GradCtx& g) { return grads(gather(g.dy(), g.x(1), g.attrs.i("axis")), Tensor()); });

  // one_hot(indices; depth, on, off) -> float32 indices.shape + [depth]. Not differentiable.
  define_op("one_hot")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        SYN_CHECK(is_integral(in[0].dtype), "indices must be integers, got {}", dtype_name(in[0].dtype));
        const std::int64_t depth = a.i("depth");
        SYN_CHECK(depth >= 0, "depth must be >= 0, got {}", depth);
        Shape out = in[0].shape;
        out.push_back(depth);
        return one_output(std::move(out), DType::Float32);
      })
      .kernel(Device::CPU, one_hot_kernel)
      .reference(one_hot_reference);
}

}  // namespace ops

Tensor reshape(const Tensor& x, const Shape& shape) {
  static const OpDef& op = op_def("reshape");
  return apply1(op, {x}, Attrs().set("shape", shape));
}

// The method form lives here, with its op, so that core knows no op.
Tensor Tensor::reshape(const Shape& shape) const { return synapse::reshape(*this, shape); }

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& perm) {
  static const OpDef& op = op_def("permute");
  return apply1(op, {x}, Attrs().set("perm", perm));
}

Tensor transpose(const Tensor& x) {
  SYN_CHECK(x.defined(), "transpose: input 0 is an undefined tensor");
  std::vector<std::int64_t> perm(static_cast<std::size_t>(x.ndim()));
  std::iota(perm.rbegin(), perm.rend(), 0);
  return permute(x, perm);
}

Tensor flatten(const Tensor& x) {
  SYN_CHECK(x.defined(), "flatten: input 0 is an undefined tensor");
  const Shape& s = x.shape();
  SYN_CHECK(!s.empty(), "flatten: needs a tensor of rank >= 1, got shape []");
  std::int64_t rest = 1;
  for (std::size_t d = 1; d < s.size(); ++d) rest *= s[d];
  return reshape(x, {s[0], rest});
}

Tensor squeeze(const Tensor& x, std::int64_t axis) {
  SYN_CHECK(x.defined(), "squeeze: input 0 is an undefined tensor");
  Shape s = x.shape();
  const auto d = static_cast<std::size_t>(normalize_axis(axis, x.ndim(), "squeeze"));
  SYN_CHECK(s[d] == 1, "squeeze: dimension {} of shape {} has extent {}, not 1", d, to_string(s), s[d]);
  s.erase(s.begin() + static_cast<std::ptrdiff_t>(d));
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, std::int64_t axis) {
  SYN_CHECK(x.defined(), "unsqueeze: input 0 is an undefined tensor");
  Shape s = x.shape();
  const std::int64_t n = x.ndim();
  SYN_CHECK(axis >= -(n + 1) && axis <= n, "unsqueeze: axis {} is out of range [{}, {}] for a tensor of rank {}", axis,
            -(n + 1), n, n);
  const std::int64_t d = axis < 0 ? axis + n + 1 : axis;  // may be one past the last axis
  s.insert(s.begin() + d, 1);
  return reshape(x, s);
}

Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis) {
  static const OpDef& op = op_def("concat");
  return apply1(op, xs, Attrs().set("axis", axis));
}

Tensor slice(const Tensor& x, const std::vector<std::int64_t>& begin, const std::vector<std::int64_t>& size) {
  static const OpDef& op = op_def("slice");
  return apply1(op, {x}, Attrs().set("begin", begin).set("size", size));
}

Tensor pad(const Tensor& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& paddings, float value) {
  static const OpDef& op = op_def("pad");
  std::vector<std::int64_t> flat;
  for (const auto& [before, after] : paddings) {
    flat.push_back(before);
    flat.push_back(after);
  }
  return apply1(op, {x}, Attrs().set("paddings", flat).set("value", value));
}

Tensor gather(const Tensor& params, const Tensor& indices, std::int64_t axis) {
  static const OpDef& op = op_def("gather");
  return apply1(op, {params, indices}, Attrs().set("axis", axis));
}

Tensor one_hot(const Tensor& indices, std::int64_t depth, float on, float off) {
  static const OpDef& op = op_def("one_hot");
  return apply1(op, {indices}, Attrs().set("depth", depth).set("on", on).set("off", off));
}

}  // namespace synapse
