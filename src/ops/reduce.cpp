// Reductions over axes (sum, mean, max, min, argmax) and broadcasting (broadcast_to, and its adjoint
// sum_to).
//
// Every reduction kernel works on a canonical view of its input. Adjacent dimensions that are both
// reduced or both kept are merged and extent-1 dimensions dropped, which leaves alternating groups
// such as (kept, reduced, kept). Each reduced group is then folded in turn, from the last to the first,
// as a 3-D problem
//     in (O, R, I) -> out (O, I),   out[o, i] = fold over r of in[o, r, i],
// so the common cases are single passes: reducing the last axis is (O, R, 1), a bias gradient over a
// batch [N, C] -> [C] is (1, N, C), and NHWC -> per-channel [C] is (1, N*H*W, C).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backend/cpu/elementwise.h"
#include "core/parallel.h"
#include "core/check.h"
#include "ops/dtype_dispatch.h"
#include "ops/families.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

// ---- axes and shapes ----

// Sorted, unique, non-negative axes; empty input = all axes.
std::vector<std::int64_t> resolve_axes(const std::vector<std::int64_t>& axes, std::int64_t ndim, const char* op) {
  std::vector<std::int64_t> out;
  if (axes.empty()) {
    for (std::int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (auto a : axes) out.push_back(normalize_axis(a, ndim, op));
  std::sort(out.begin(), out.end());
  SYN_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), "{}: repeated axis in [{}]", op, fmt::join(axes, ","));
  return out;
}

bool contains(const std::vector<std::int64_t>& axes, std::int64_t d) {
  return std::find(axes.begin(), axes.end(), d) != axes.end();
}

Shape reduced_shape(const Shape& s, const std::vector<std::int64_t>& axes, bool keepdims) {
  Shape out;
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(s.size()); ++d) {
    if (!contains(axes, d)) {
      out.push_back(s[static_cast<std::size_t>(d)]);
    } else if (keepdims) {
      out.push_back(1);
    }
  }
  return out;
}

// Shape rule of sum/max/min. `needs_elements`: a reduced axis of extent 0 is an error (max has no
// identity element).
ShapeFn reduce_shape(const char* op, bool needs_elements) {
  return [op, needs_elements](const std::vector<TensorMeta>& in, const Attrs& a) {
    SYN_CHECK(in[0].dtype != DType::Bool, "dtype bool is not supported");
    const Shape& s = in[0].shape;
    const auto axes = resolve_axes(a.ints("axes"), static_cast<std::int64_t>(s.size()), op);
    if (needs_elements)
      for (auto d : axes)
        SYN_CHECK(s[static_cast<std::size_t>(d)] > 0, "cannot reduce the empty axis {} of shape {}", d, to_string(s));
    return one_output(reduced_shape(s, axes, a.b("keepdims")), in[0].dtype);
  };
}

// ---- combine functions ----

struct SumOp {
  template <class T> T operator()(T a, T b) const { return static_cast<T>(a + b); }
};
template <class T> bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    (void)v;
    return false;
  }
}
// max/min propagate NaN, as NumPy does.
// (Bitwise `|`, not `||`: no branch, so the lane loops vectorise.)
struct MaxOp {
  template <class T> T operator()(T a, T b) const { return ((b > a) | is_nan(b)) ? b : a; }
};
struct MinOp {
  template <class T> T operator()(T a, T b) const { return ((b < a) | is_nan(b)) ? b : a; }
};

// ---- the fold kernel ----

// Folds one contiguous row p[0..n), n >= 1, with 32 independent lanes so the loop vectorises (a
// single accumulator would serialise float additions) and several vector chains run at once.
template <class T, class Op> T fold_row(const T* p, std::int64_t n, Op op) {
  constexpr std::int64_t L = 32;
  if (n < 2 * L) {
    T acc = p[0];
    for (std::int64_t r = 1; r < n; ++r) acc = op(acc, p[r]);
    return acc;
  }
  T lane[L];
  for (std::int64_t k = 0; k < L; ++k) lane[k] = p[k];
  std::int64_t r = L;
  for (; r + L <= n; r += L)
    for (std::int64_t k = 0; k < L; ++k) lane[k] = op(lane[k], p[r + k]);
  T acc = lane[0];
  for (std::int64_t k = 1; k < L; ++k) acc = op(acc, lane[k]);
  for (; r < n; ++r) acc = op(acc, p[r]);
  return acc;
}

// out[i0..i1) = fold over r in [r0, r1) of in[r, i], for in of shape (R, I) (one slice o); r1 > r0.
template <class T, class Op>
void fold_columns(const T* in, T* out, std::int64_t I, std::int64_t r0, std::int64_t r1, std::int64_t i0,
                  std::int64_t i1, Op op) {
  if (I == 1) {
    out[0] = fold_row(in + r0, r1 - r0, op);
    return;
  }
  if (I < 64 && i0 == 0 && i1 == I && r1 - r0 >= 128 / I) {
    // Short rows (a bias gradient over few channels): fold k rows at a time as one contiguous run of
    // k * I >= 64 values, so the inner loop is long enough to vectorise, then fold the k partials.
    const std::int64_t k = (64 + I - 1) / I, run = k * I;
    T acc[127];
    const T* p = in + r0 * I;
    for (std::int64_t m = 0; m < run; ++m) acc[m] = p[m];
    std::int64_t r = r0 + k;
    for (; r + k <= r1; r += k) {
      const T* q = in + r * I;
      for (std::int64_t m = 0; m < run; ++m) acc[m] = op(acc[m], q[m]);
    }
    for (std::int64_t i = 0; i < I; ++i) {
      T v = acc[i];
      for (std::int64_t j = 1; j < k; ++j) v = op(v, acc[j * I + i]);
      for (std::int64_t rr = r; rr < r1; ++rr) v = op(v, in[rr * I + i]);
      out[i] = v;
    }
    return;
  }
  const T* first = in + r0 * I;
  for (std::int64_t i = i0; i < i1; ++i) out[i] = first[i];
  for (std::int64_t r = r0 + 1; r < r1; ++r) {
    const T* row = in + r * I;
    for (std::int64_t i = i0; i < i1; ++i) out[i] = op(out[i], row[i]);
  }
}

// in (O, R, I) -> out (O, I); R >= 1. Work is split over outputs (o, column blocks) when there are
// enough of them; otherwise (few outputs, long reductions: a full sum, a bias gradient [N, C] -> [C])
// over blocks of r into partial results that are folded afterwards in a fixed order. The split
// depends on the sizes only, never on the thread count, so results are reproducible.
template <class T, class Op> void fold_axis(const T* in, T* out, std::int64_t O, std::int64_t R, std::int64_t I, Op op) {
  const std::int64_t total = O * R * I;
  const std::int64_t grain = kElementwiseGrain;
  const std::int64_t outputs = O * I;
  const std::int64_t blocks = std::min<std::int64_t>({R, total / grain, 64});

  if (blocks >= 2 && outputs < 4096 && outputs * 64 < total) {
    // Partial results (O, blocks, I), each block folding a contiguous range of r.
    std::vector<T> part(static_cast<std::size_t>(O * blocks * I));
    T* pp = part.data();
    parallel_for(0, O * blocks, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) {
        const std::int64_t o = t / blocks, b = t % blocks;
        fold_columns(in + o * R * I, pp + t * I, I, R * b / blocks, R * (b + 1) / blocks, 0, I, op);
      }
    });
    for (std::int64_t o = 0; o < O; ++o) fold_columns(pp + o * blocks * I, out + o * I, I, 0, blocks, 0, I, op);
    return;
  }

  // Column blocks of at least 256 elements, so the inner loop stays long enough to vectorise.
  const std::int64_t col_blocks = std::max<std::int64_t>(1, I / 256);
  const std::int64_t items = O * col_blocks;
  const std::int64_t per_item = std::max<std::int64_t>(1, total / items);
  parallel_for(0, items, std::max<std::int64_t>(1, grain / per_item), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) {
      const std::int64_t o = t / col_blocks, c = t % col_blocks;
      fold_columns(in + o * R * I, out + o * I, I, 0, R, I * c / col_blocks, I * (c + 1) / col_blocks, op);
    }
  });
}

// One canonical dimension group: its extent, and whether it is reduced.
struct Group {
  std::int64_t extent;
  bool reduced;
};

std::vector<Group> canonical_groups(const Shape& s, const std::vector<std::int64_t>& axes) {
  std::vector<Group> g;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (s[d] == 1) continue;
    const bool red = contains(axes, static_cast<std::int64_t>(d));
    if (!g.empty() && g.back().reduced == red) {
      g.back().extent *= s[d];
    } else {
      g.push_back({s[d], red});
    }
  }
  return g;
}

// Reduces `in` over `axes` into `out` (whose element count is that of the result). The caller handles
// empty inputs.
template <class T, class Op> void reduce_kernel(const Tensor& in, Tensor& out, const std::vector<std::int64_t>& axes, Op op) {
  const std::vector<Group> g = canonical_groups(in.shape(), axes);
  const T* src = in.data<T>();
  T* dst_final = out.data<T>();
  std::int64_t last_reduced = -1;  // index of the first reduced group (the last pass)
  for (std::size_t k = 0; k < g.size(); ++k)
    if (g[k].reduced && last_reduced < 0) last_reduced = static_cast<std::int64_t>(k);
  if (last_reduced < 0) {  // only extent-1 axes reduced: a copy
    std::copy(src, src + in.numel(), dst_final);
    return;
  }
  std::vector<T> buf[2];
  int which = 0;
  std::int64_t inner = 1;  // product of the kept extents after the current group
  for (std::int64_t k = static_cast<std::int64_t>(g.size()) - 1; k >= 0; --k) {
    const Group& gk = g[static_cast<std::size_t>(k)];
    if (!gk.reduced) {
      inner *= gk.extent;
      continue;
    }
    std::int64_t outer = 1;
    for (std::int64_t j = 0; j < k; ++j) outer *= g[static_cast<std::size_t>(j)].extent;
    T* dst = dst_final;
    if (k != last_reduced) {
      buf[which].resize(static_cast<std::size_t>(outer * inner));
      dst = buf[which].data();
      which ^= 1;
    }
    fold_axis(src, dst, outer, gk.extent, inner, op);
    src = dst;
  }
}

// Naive reference: visits the input in order, folding each element into its output cell (floats in
// double, so the reference is also the more accurate one).
template <class T, class Op>
void reduce_reference(const Tensor& in, Tensor& out, const std::vector<std::int64_t>& axes, Op op, T empty_value) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
  const Shape& s = in.shape();
  std::vector<Acc> acc(static_cast<std::size_t>(out.numel()), static_cast<Acc>(empty_value));
  std::vector<char> seen(static_cast<std::size_t>(out.numel()), 0);
  Shape kept = s;
  for (auto a : axes) kept[static_cast<std::size_t>(a)] = 1;
  const auto os = cpu::broadcast_strides(kept, s);  // 0 on reduced dims
  const T* pi = in.data<T>();
  for (std::int64_t i = 0; i < in.numel(); ++i) {
    std::int64_t rem = i, off = 0;
    for (std::size_t d = s.size(); d-- > 0;) {
      off += (rem % s[d]) * os[d];
      rem /= s[d];
    }
    const auto o = static_cast<std::size_t>(off);
    acc[o] = seen[o] ? op(acc[o], static_cast<Acc>(pi[i])) : static_cast<Acc>(pi[i]);
    seen[o] = 1;
  }
  std::transform(acc.begin(), acc.end(), out.data<T>(), [](Acc v) { return static_cast<T>(v); });
}

// The fast and the reference kernel of a reduction op.
template <class Op> KernelFn reduce_fast(const char* name, Op op) {
  return [name, op](const KernelContext& c) {
    const auto axes = resolve_axes(c.attrs.ints("axes"), c.in(0).ndim(), name);
    visit_numeric(c.in(0).dtype(), name, [&]<class T>() {
      if (c.in(0).numel() == 0) {  // only sum gets here with reduced elements: its identity is 0
        std::fill(c.out(0).data<T>(), c.out(0).data<T>() + c.out(0).numel(), T(0));
        return;
      }
      reduce_kernel<T>(c.in(0), c.out(0), axes, op);
    });
  };
}
template <class Op> KernelFn reduce_naive(const char* name, Op op) {
  return [name, op](const KernelContext& c) {
    const auto axes = resolve_axes(c.attrs.ints("axes"), c.in(0).ndim(), name);
    visit_numeric(c.in(0).dtype(), name, [&]<class T>() { reduce_reference<T>(c.in(0), c.out(0), axes, op, T(0)); });
  };
}

// Gradient of max/min: dy goes to the elements equal to the result, split evenly between ties.
std::vector<Tensor> extremum_grad(const GradCtx& g, const char* name) {
  const auto axes = resolve_axes(g.attrs.ints("axes"), g.x().ndim(), name);
  const Shape keep = reduced_shape(g.x().shape(), axes, true);
  static const OpDef& mask_op = op_def("extremum_mask");
  const Tensor mask = apply1(mask_op, {g.x(), reshape(g.y(), keep)});  // 1 where x == y, else 0
  const Tensor count = sum(mask, axes, true);                           // ties per output, >= 1
  return grads(mask * (reshape(g.dy(), keep) / count));
}

// ---- argmax ----

// Index of the largest value (the first on ties; NaN counts as largest, as in NumPy) along R of
// in (O, R, I) -> out (O, I).
template <class T> bool beats(T v, T best) { return v > best || (is_nan(v) && !is_nan(best)); }

template <class T> void argmax_kernel(const T* in, std::int64_t* out, std::int64_t O, std::int64_t R, std::int64_t I) {
  const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(1, R * I));
  if (I == 1) {
    parallel_for(0, O, grain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t o = lo; o < hi; ++o) {
        const T* row = in + o * R;
        std::int64_t bi = 0;
        for (std::int64_t r = 1; r < R; ++r)
          if (beats(row[r], row[bi])) bi = r;
        out[o] = bi;
      }
    });
    return;
  }
  // Running best values per output, updated a whole row of I at a time (vectorises).
  std::vector<T> best(static_cast<std::size_t>(O * I));
  T* pb = best.data();
  parallel_for(0, O, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t o = lo; o < hi; ++o) {
      T* b = pb + o * I;
      std::int64_t* idx = out + o * I;
      const T* slab = in + o * R * I;
      for (std::int64_t i = 0; i < I; ++i) {
        b[i] = slab[i];
        idx[i] = 0;
      }
      for (std::int64_t r = 1; r < R; ++r) {
        const T* row = slab + r * I;
        for (std::int64_t i = 0; i < I; ++i) {
          const bool take = beats(row[i], b[i]);
          b[i] = take ? row[i] : b[i];
          idx[i] = take ? r : idx[i];
        }
      }
    }
  });
}

template <class T> void argmax_reference(const T* in, std::int64_t* out, std::int64_t O, std::int64_t R, std::int64_t I) {
  for (std::int64_t o = 0; o < O; ++o)
    for (std::int64_t i = 0; i < I; ++i) {
      std::int64_t bi = 0;
      for (std::int64_t r = 1; r < R; ++r)
        if (beats(in[(o * R + r) * I + i], in[(o * R + bi) * I + i])) bi = r;
      out[o * I + i] = bi;
    }
}

// (O, R, I) around `axis`.
struct Split3 {
  std::int64_t O = 1, R = 1, I = 1;
};
Split3 split_at(const Shape& s, std::int64_t axis) {
  Split3 p;
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(s.size()); ++d) {
    const auto e = s[static_cast<std::size_t>(d)];
    if (d < axis) p.O *= e;
    if (d == axis) p.R = e;
    if (d > axis) p.I *= e;
  }
  return p;
}

template <bool kReference> KernelFn argmax_kernel_fn() {
  return [](const KernelContext& c) {
    const Tensor& x = c.in(0);
    const Split3 p = split_at(x.shape(), normalize_axis(c.attrs.i("axis"), x.ndim(), "argmax"));
    std::int64_t* po = c.out(0).data<std::int64_t>();
    visit_numeric(x.dtype(), "argmax", [&]<class T>() {
      if (p.O * p.I == 0) return;
      if constexpr (kReference) {
        argmax_reference(x.data<T>(), po, p.O, p.R, p.I);
      } else {
        argmax_kernel(x.data<T>(), po, p.O, p.R, p.I);
      }
    });
  };
}

// ---- broadcast_to ----

// out = x broadcast, by rows of the output's last dimension: each row is a copy of a row of x, or
// one value of x repeated.
template <class T> void broadcast_kernel(const Tensor& x, Tensor& out) {
  const Shape& os = out.shape();
  const std::int64_t n = out.numel();
  const T* px = x.data<T>();
  T* po = out.data<T>();
  if (n == 0) return;
  if (os.empty()) {
    po[0] = px[0];
    return;
  }
  const auto st = cpu::broadcast_strides(x.shape(), os);
  const std::size_t nd = os.size();
  const std::int64_t inner = os[nd - 1], rows = n / inner, step = st[nd - 1];
  parallel_for(0, rows, std::max<std::int64_t>(1, kElementwiseGrain / inner), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      std::int64_t rem = r, off = 0;
      for (std::size_t d = nd - 1; d-- > 0;) {
        off += (rem % os[d]) * st[d];
        rem /= os[d];
      }
      T* row = po + r * inner;
      if (step == 0) {
        const T v = px[off];
        for (std::int64_t j = 0; j < inner; ++j) row[j] = v;
      } else {
        std::copy(px + off, px + off + inner, row);
      }
    }
  });
}

// Naive reference: one output element at a time.
template <class T> void broadcast_reference(const Tensor& x, Tensor& out) {
  const auto st = cpu::broadcast_strides(x.shape(), out.shape());
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const Shape& os = out.shape();
  for (std::int64_t i = 0, n = out.numel(); i < n; ++i) {
    std::int64_t rem = i, off = 0;
    for (std::size_t d = os.size(); d-- > 0;) {
      off += (rem % os[d]) * st[d];
      rem /= os[d];
    }
    po[i] = px[off];
  }
}

}  // namespace

void register_reduce_ops() {
  define_op("sum")
      .inputs(1)
      .shape(reduce_shape("sum", false))
      .kernel(Device::CPU, reduce_fast("sum", SumOp{}))
      .reference(reduce_naive("sum", SumOp{}))
      .grad([](const GradCtx& g) {
        const auto axes = resolve_axes(g.attrs.ints("axes"), g.x().ndim(), "sum");
        return grads(broadcast_to(reshape(g.dy(), reduced_shape(g.x().shape(), axes, true)), g.x().shape()));
      });

  define_op("max")
      .inputs(1)
      .shape(reduce_shape("max", true))
      .kernel(Device::CPU, reduce_fast("max", MaxOp{}))
      .reference(reduce_naive("max", MaxOp{}))
      .grad([](const GradCtx& g) { return extremum_grad(g, "max"); });

  define_op("min")
      .inputs(1)
      .shape(reduce_shape("min", true))
      .kernel(Device::CPU, reduce_fast("min", MinOp{}))
      .reference(reduce_naive("min", MinOp{}))
      .grad([](const GradCtx& g) { return extremum_grad(g, "min"); });

  // Helper of the max/min gradient: extremum_mask(x, y) = float32 (x == y ? 1 : 0), with y (the
  // reduction's result, kept dims) broadcast to x's shape. Not differentiable (piecewise constant).
  define_op("extremum_mask")
      .inputs(2)
      .shape([](const std::vector<TensorMeta>& in, const Attrs&) {
        SYN_CHECK(in[0].dtype == in[1].dtype, "dtypes differ: {} and {}", dtype_name(in[0].dtype), dtype_name(in[1].dtype));
        SYN_CHECK(broadcast_shapes(in[0].shape, in[1].shape) == in[0].shape, "{} does not broadcast to {}",
                  to_string(in[1].shape), to_string(in[0].shape));
        return one_output(in[0].shape, DType::Float32);
      })
      .kernel(Device::CPU, [](const KernelContext& c) {
        visit_numeric(c.in(0).dtype(), "extremum_mask", [&]<class T>() {
          cpu::binary_map<T, float>(c.in(0), c.in(1), c.out(0), [](T a, T b) { return a == b ? 1.0f : 0.0f; });
        });
      })
      .reference([](const KernelContext& c) {  // naive: y broadcast to x's shape, then compared per element
        visit_numeric(c.in(0).dtype(), "extremum_mask", [&]<class T>() {
          Tensor y = Tensor::empty(c.in(0).shape(), c.in(0).dtype());
          broadcast_reference<T>(c.in(1), y);
          for (std::int64_t i = 0; i < c.out(0).numel(); ++i)
            c.out(0).data<float>()[i] = c.in(0).data<T>()[i] == y.data<T>()[i] ? 1.0f : 0.0f;
        });
      });

  // element_count(x, axes) -> float32 scalar: how many elements of x the axes (all when empty) span,
  // read from x's shape when the op runs. mean() divides by it when a graph's extent is unknown until
  // then (its batch). Not differentiable: the count does not depend on x's values.
  define_op("element_count")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        resolve_axes(a.ints("axes"), static_cast<std::int64_t>(in[0].shape.size()), "element_count");
        return one_output(Shape{}, DType::Float32);
      })
      .kernel(Device::CPU, [](const KernelContext& c) {
        double n = 1;
        for (auto d : resolve_axes(c.attrs.ints("axes"), c.in(0).ndim(), "element_count"))
          n *= static_cast<double>(c.in(0).shape()[static_cast<std::size_t>(d)]);
        c.out(0).data<float>()[0] = static_cast<float>(n);
      })
      .reference([](const KernelContext& c) {  // counts the elements whose other coordinates are all 0
        const Shape& s = c.in(0).shape();
        std::vector<bool> counted(s.size(), c.attrs.ints("axes").empty());
        for (auto d : resolve_axes(c.attrs.ints("axes"), c.in(0).ndim(), "element_count")) counted[static_cast<std::size_t>(d)] = true;
        std::int64_t n = 0;
        for (std::int64_t i = 0, total = c.in(0).numel(); i < total; ++i) {
          bool first = true;
          for (std::int64_t d = static_cast<std::int64_t>(s.size()) - 1, rest = i; d >= 0; --d) {
            const auto k = static_cast<std::size_t>(d);
            if (!counted[k] && rest % s[k] != 0) first = false;
            rest /= s[k];
          }
          n += first ? 1 : 0;
        }
        c.out(0).data<float>()[0] = static_cast<float>(n);
      });

  // argmax(x, axis) -> int64, the axis removed. Not differentiable.
  define_op("argmax")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        SYN_CHECK(in[0].dtype != DType::Bool, "dtype bool is not supported");
        const Shape& s = in[0].shape;
        const auto axis = normalize_axis(a.i("axis"), static_cast<std::int64_t>(s.size()), "argmax");
        SYN_CHECK(s[static_cast<std::size_t>(axis)] > 0, "cannot take the argmax over the empty axis {} of shape {}", axis,
                  to_string(s));
        Shape out = s;
        out.erase(out.begin() + axis);
        return one_output(std::move(out), DType::Int64);
      })
      .kernel(Device::CPU, argmax_kernel_fn<false>())
      .reference(argmax_kernel_fn<true>());

  define_op("broadcast_to")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        const Shape& target = a.ints("shape");
        SYN_CHECK(broadcast_shapes(in[0].shape, target, "broadcast_to") == target, "cannot broadcast {} to {}",
                  to_string(in[0].shape), to_string(target));
        return one_output(std::move(target), in[0].dtype);
      })
      .kernel(Device::CPU, [](const KernelContext& c) {
        visit_all(c.in(0).dtype(), [&]<class T>() { broadcast_kernel<T>(c.in(0), c.out(0)); });
      })
      .reference([](const KernelContext& c) {
        visit_all(c.in(0).dtype(), [&]<class T>() { broadcast_reference<T>(c.in(0), c.out(0)); });
      })
      .grad([](const GradCtx& g) { return grads(sum_to(g.dy(), g.x().shape())); });
}

}  // namespace ops

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  static const OpDef& op = op_def("sum");
  return apply1(op, {x}, Attrs().set("axes", axes).set("keepdims", keepdims));
}

// sum / count: a composition, so its gradient is sum's scaled.
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  SYN_CHECK(x.defined(), "mean: input 0 is an undefined tensor");
  // A graph tensor's public shape has -1 for an extent known only when the graph runs (its batch).
  const Shape& s = x.impl()->symbolic ? x.impl()->shape : x.shape();
  std::int64_t count = 1;
  bool unknown = false;
  for (auto a : ops::resolve_axes(axes, x.ndim(), "mean")) {
    const std::int64_t d = s[static_cast<std::size_t>(a)];
    unknown = unknown || d < 0;
    count *= d;
  }
  if (unknown) {  // counted when the graph runs
    static const OpDef& op = op_def("element_count");
    return sum(x, axes, keepdims) / apply1(op, {x}, Attrs().set("axes", axes));
  }
  SYN_CHECK(count > 0 || is_floating(x.dtype()), "mean: no elements to average in {} over axes [{}]",
            to_string(x.shape()), fmt::join(axes, ","));
  return sum(x, axes, keepdims) / static_cast<float>(count);  // 0/0 = NaN for an empty float mean, as NumPy
}

Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  static const OpDef& op = op_def("max");
  return apply1(op, {x}, Attrs().set("axes", axes).set("keepdims", keepdims));
}

Tensor min(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  static const OpDef& op = op_def("min");
  return apply1(op, {x}, Attrs().set("axes", axes).set("keepdims", keepdims));
}

Tensor argmax(const Tensor& x, std::int64_t axis) {
  static const OpDef& op = op_def("argmax");
  return apply1(op, {x}, Attrs().set("axis", axis));
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  static const OpDef& op = op_def("broadcast_to");
  if (x.shape() == shape) return x;
  return apply1(op, {x}, Attrs().set("shape", shape));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const Shape& s = x.shape();
  SYN_CHECK(s.size() >= shape.size(), "sum_to: cannot reduce {} to the larger rank {}", to_string(s), to_string(shape));
  const std::size_t lead = s.size() - shape.size();
  std::vector<std::int64_t> axes;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (d < lead) {
      axes.push_back(static_cast<std::int64_t>(d));
    } else {
      const auto t = shape[d - lead];
      SYN_CHECK(t == s[d] || t == 1, "sum_to: {} does not broadcast to {}", to_string(shape), to_string(s));
      if (t == 1 && s[d] != 1) axes.push_back(static_cast<std::int64_t>(d));
    }
  }
  return reshape(sum(x, axes, true), shape);
}

}  // namespace synapse
