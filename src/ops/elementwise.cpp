// Elementwise ops: arithmetic with NumPy broadcasting, unary math, activations, comparisons,
// selection (where) and dtype conversion (cast).
//
// Dtypes: arithmetic, maximum/minimum, neg, abs, sign and relu take every numeric dtype (not bool);
// pow and the transcendental functions and activations take float32; comparisons, where and cast
// take every dtype. Integer division truncates toward zero (C++ semantics), and a zero divisor
// throws instead of trapping.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "backend/cpu/elementwise.h"
#include "core/check.h"
#include "ops/dtype_dispatch.h"
#include "ops/families.h"
#include "ops/naive.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

// The PointwiseFactory (op.h) of a unary / binary scalar function without attributes, over the
// backend's block bodies.
template <class F>
PointwiseFactory unary_pointwise(F f) {
  return [f](const Attrs&) -> PointwiseFn {
    return [f](const PointwiseBlock& b) { cpu::unary_block(b, [f](float v) { return static_cast<float>(f(v)); }); };
  };
}
template <class F>
PointwiseFactory binary_pointwise(F f) {
  return [f](const Attrs&) -> PointwiseFn {
    return [f](const PointwiseBlock& b) {
      cpu::binary_block(b, [f](float u, float v) { return static_cast<float>(f(u, v)); });
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Scalar helpers, safe for every dtype (no signed overflow, no traps).

// -v; wraps around for the most negative signed integer instead of overflowing.
template <class T> T wrap_neg(T v) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    return static_cast<T>(std::make_unsigned_t<T>(0) - static_cast<std::make_unsigned_t<T>>(v));
  } else {
    return static_cast<T>(-v);
  }
}

template <class T> T abs_value(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::fabs(v);
  } else if constexpr (std::is_signed_v<T>) {
    return v < T(0) ? wrap_neg(v) : v;
  } else {
    return v;
  }
}

// -1, 0 or 1 (NaN stays NaN, -0 stays -0).
template <class T> T sign_value(T v) {
  if (v > T(0)) return T(1);
  if constexpr (std::is_signed_v<T>) {
    if (v < T(0)) return T(-1);
  }
  return v;
}

// a / b for integers, b != 0 (checked before the loop). INT_MIN / -1 traps on x86: it wraps instead.
template <class T> T int_div(T a, T b) {
  if constexpr (std::is_signed_v<T>) {
    if (b == T(-1)) return wrap_neg(a);
  }
  return static_cast<T>(a / b);
}

// The larger / smaller of two values; NaN in either propagates.
template <class T> T max_value(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return (a >= b || std::isnan(a)) ? a : b;
  } else {
    return a >= b ? a : b;
  }
}
template <class T> T min_value(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return (a <= b || std::isnan(a)) ? a : b;
  } else {
    return a <= b ? a : b;
  }
}

// 1 / (1 + e^-x) without overflow for large |x|: exp is only taken of a non-positive number.
float stable_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

// The scalar functions of the elementwise ops: each serves the op's kernel and its block body
// (PointwiseBlock, for fused graph execution), so the arithmetic is written once.
constexpr auto k_add = [](auto a, auto b) { return a + b; };
constexpr auto k_sub = [](auto a, auto b) { return a - b; };
constexpr auto k_mul = [](auto a, auto b) { return a * b; };
constexpr auto k_div_float = [](auto a, auto b) { return a / b; };  // integers: int_div
constexpr auto k_maximum = [](auto a, auto b) { return max_value(a, b); };
constexpr auto k_minimum = [](auto a, auto b) { return min_value(a, b); };
constexpr auto k_neg = [](auto v) { return wrap_neg(v); };
constexpr auto k_abs = [](auto v) { return abs_value(v); };
constexpr auto k_sign = [](auto v) { return sign_value(v); };
constexpr auto k_exp = [](float v) { return std::exp(v); };
constexpr auto k_log = [](float v) { return std::log(v); };
constexpr auto k_sqrt = [](float v) { return std::sqrt(v); };
constexpr auto k_square = [](float v) { return v * v; };
constexpr auto k_tanh = [](float v) { return std::tanh(v); };
constexpr auto k_relu = [](float v) { return v < 0.0f ? 0.0f : v; };

// Value conversion for cast: bool is v != 0; float -> integer truncates toward zero, saturates at the
// target's range and maps NaN to 0 (a plain static_cast would be undefined there); integer -> integer
// wraps modulo 2^bits as in NumPy.
template <class S, class D> D convert(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    constexpr S lo = static_cast<S>(std::numeric_limits<D>::min());  // exact: 0 or -2^k
    constexpr S hi = static_cast<S>(std::numeric_limits<D>::max());  // rounds to 2^k (or 255 exactly)
    if (std::isnan(v)) return D(0);
    if (v < lo) return std::numeric_limits<D>::min();
    if (v >= hi) return std::numeric_limits<D>::max();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Shape rules.

// Rejects bool (arithmetic on booleans is not defined here).
void require_numeric(DType dt, const char* what = "input") {
  SYN_CHECK(dt != DType::Bool, "{} must be numeric, got bool", what);
}

ShapeFn float_unary() {
  return [](const std::vector<TensorMeta>& in, const Attrs&) {
    require_float(in[0].dtype);
    return one_output(in[0].shape, in[0].dtype);
  };
}

ShapeFn numeric_unary() {
  return [](const std::vector<TensorMeta>& in, const Attrs&) {
    require_numeric(in[0].dtype);
    return one_output(in[0].shape, in[0].dtype);
  };
}

// Broadcasting, both inputs of one numeric dtype.
ShapeFn numeric_binary() {
  return [](const std::vector<TensorMeta>& in, const Attrs& a) {
    auto out = broadcast_binary()(in, a);  // checks dtypes agree first
    require_numeric(in[0].dtype, "inputs");
    return out;
  };
}

ShapeFn float_binary() {
  return [](const std::vector<TensorMeta>& in, const Attrs& a) {
    auto out = broadcast_binary()(in, a);
    require_float(in[0].dtype, "inputs");
    return out;
  };
}

// x and dy of one shape, float (the private *_grad ops).
ShapeFn float_pair() {
  return [](const std::vector<TensorMeta>& in, const Attrs&) {
    require_float(in[0].dtype, "x");
    require_float(in[1].dtype, "dy");
    SYN_CHECK(in[0].shape == in[1].shape, "x {} and dy {} differ in shape", to_string(in[0].shape),
              to_string(in[1].shape));
    return one_output(in[1].shape, in[1].dtype);
  };
}

// where(cond, a, b): cond bool, a and b of one dtype, all three broadcast together.
std::vector<TensorMeta> where_shape(const std::vector<TensorMeta>& in, const Attrs&) {
  SYN_CHECK(in[0].dtype == DType::Bool, "cond must be bool, got {}", dtype_name(in[0].dtype));
  SYN_CHECK(in[1].dtype == in[2].dtype, "dtypes differ: {} and {}", dtype_name(in[1].dtype), dtype_name(in[2].dtype));
  Shape s;
  try {
    s = broadcast_shapes(broadcast_shapes(in[0].shape, in[1].shape), in[2].shape);
  } catch (const Error&) {
    detail::fail("shapes do not broadcast: cond {}, a {}, b {}", to_string(in[0].shape), to_string(in[1].shape),
                 to_string(in[2].shape));
  }
  return one_output(std::move(s), in[1].dtype);
}

DType parse_dtype(const std::string& name) {
  for (DType t : {DType::Float32, DType::Int32, DType::Int64, DType::UInt8, DType::Bool})
    if (dtype_name(t) == name) return t;
  detail::fail("unknown dtype '{}'", name);
}

// ---------------------------------------------------------------------------------------------
// Kernels.

// A binary arithmetic kernel for every numeric dtype.
template <class F> KernelFn binary_kernel(const char* name, F f) {
  return [name, f](const KernelContext& c) {
    visit_numeric(c.in(0).dtype(), name,
                  [&]<class T>() { cpu::binary_map<T, T>(c.in(0), c.in(1), c.out(0), [&](T a, T b) { return static_cast<T>(f(a, b)); }); });
  };
}

// Integer division rejects a zero divisor up front: the loop runs in OpenMP threads and must not throw
// (and x86 would trap with SIGFPE).
void div_kernel(const KernelContext& c) {
  visit_numeric(c.in(0).dtype(), "div", [&]<class T>() {
    if constexpr (std::is_floating_point_v<T>) {
      cpu::binary_map<T, T>(c.in(0), c.in(1), c.out(0), k_div_float);
    } else {
      const T* pb = c.in(1).data<T>();
      const std::int64_t nb = c.in(1).numel();
      SYN_CHECK(c.out(0).numel() == 0 || std::find(pb, pb + nb, T(0)) == pb + nb, "div: integer division by zero");
      cpu::binary_map<T, T>(c.in(0), c.in(1), c.out(0), [](T a, T b) { return int_div(a, b); });
    }
  });
}

// pow: std::pow, with cheap exact forms for the common scalar exponents (x^2 from pow(x, 2.0f)).
void pow_reference(const KernelContext& c) {
  cpu::binary_map<float, float>(c.in(0), c.in(1), c.out(0), [](float a, float b) { return std::pow(a, b); });
}

void pow_kernel(const KernelContext& c) {
  const Tensor& b = c.in(1);
  if (b.numel() == 1 && c.in(0).shape() == c.out(0).shape()) {
    const float e = b.data<float>()[0];
    if (e == 1.0f) return cpu::unary_map<float, float>(c.in(0), c.out(0), [](float v) { return v; });
    if (e == 2.0f) return cpu::unary_map<float, float>(c.in(0), c.out(0), [](float v) { return v * v; });
    if (e == 3.0f) return cpu::unary_map<float, float>(c.in(0), c.out(0), [](float v) { return v * v * v; });
    if (e == -1.0f) return cpu::unary_map<float, float>(c.in(0), c.out(0), [](float v) { return 1.0f / v; });
  }
  pow_reference(c);
}

// A unary float kernel.
template <class F> KernelFn unary_float_kernel(F f) {
  return [f](const KernelContext& c) { cpu::unary_map<float, float>(c.in(0), c.out(0), f); };
}

// A unary kernel for every numeric dtype; `f` is a generic lambda.
template <class F> KernelFn unary_numeric_kernel(const char* name, F f) {
  return [name, f](const KernelContext& c) {
    visit_numeric(c.in(0).dtype(), name, [&]<class T>() {
      cpu::unary_map<T, T>(c.in(0), c.out(0), [&](T v) { return static_cast<T>(f(v)); });
    });
  };
}

// A comparison for every dtype, bool output.
template <class F> KernelFn compare_kernel(F f) {
  return [f](const KernelContext& c) {
    visit_all(c.in(0).dtype(), [&]<class T>() { cpu::binary_map<T, bool>(c.in(0), c.in(1), c.out(0), f); });
  };
}

// The gradient masks of relu / leaky_relu and clip, as functions of (x, dy): dy where x passes,
// alpha * dy elsewhere. With alpha 0 the rest is an exact 0 (not 0 * dy, which is NaN for an
// infinite dy). Both operands are read unconditionally, so the select vectorises (written as
// `pass ? dy[i] : 0` it compiled to a scalar branch per element).
auto leaky_relu_fn(float alpha) {
  return [alpha](float v) { return v > 0.0f ? v : alpha * v; };
}
auto clip_fn(float lo, float hi) {
  return [lo, hi](float v) { return std::min(std::max(v, lo), hi); };
}
auto leaky_grad_fn(float alpha) {
  return [alpha](float x, float d) { return x > 0.0f ? d : alpha * d; };
}
auto clip_grad_fn(float lo, float hi) {
  return [lo, hi](float x, float d) { return x >= lo && x <= hi ? d : 0.0f; };
}

// out = f(x, dy) elementwise, x and dy of one shape.
template <class F> void masked_grad(const KernelContext& c, F f) {
  const float* px = c.in(0).data<float>();
  const float* pdy = c.in(1).data<float>();
  float* po = c.out(0).data<float>();
  parallel_for(0, c.out(0).numel(), kElementwiseGrain, [=](std::int64_t lo, std::int64_t hi) {
    const float* __restrict x = px;
    const float* __restrict dy = pdy;
    float* __restrict o = po;
    const F fn = f;  // its constants in registers: a load in one arm of the select would stop vectorisation
    for (std::int64_t i = lo; i < hi; ++i) o[i] = fn(x[i], dy[i]);
  });
}

// ---- where ----

// Same-shape fast path: cond has the output's shape; a and b have it too or are single values.
template <class T, bool kScalarA, bool kScalarB>
void where_flat(const bool* cond, const T* a, const T* b, T* out, std::int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const T va = a[kScalarA ? 0 : i];  // both loaded unconditionally, so the select vectorises
      const T vb = b[kScalarB ? 0 : i];
      out[i] = cond[i] ? va : vb;
    }
  });
}

// General broadcasting: rows of the last output dimension; each operand's inner stride is 0 or 1.
template <class T> void where_broadcast(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const Shape& os = out.shape();
  const std::size_t nd = os.size();
  const auto sc = cpu::broadcast_strides(cond.shape(), os);
  const auto sa = cpu::broadcast_strides(a.shape(), os);
  const auto sb = cpu::broadcast_strides(b.shape(), os);
  const bool* pc = cond.data<bool>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const std::int64_t inner = os[nd - 1];
  const std::int64_t rows = out.numel() / inner;
  const std::int64_t ic = sc[nd - 1], ia = sa[nd - 1], ib = sb[nd - 1];
  const std::int64_t grain = std::max<std::int64_t>(1, kElementwiseGrain / inner);
  parallel_for(0, rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      std::int64_t rem = r, oc = 0, oa = 0, ob = 0;
      for (std::size_t d = nd - 1; d-- > 0;) {
        const std::int64_t idx = rem % os[d];
        rem /= os[d];
        oc += idx * sc[d];
        oa += idx * sa[d];
        ob += idx * sb[d];
      }
      const bool* rc = pc + oc;
      const T* ra = pa + oa;
      const T* rb = pb + ob;
      T* ro = po + r * inner;
      for (std::int64_t j = 0; j < inner; ++j) ro[j] = rc[j * ic] ? ra[j * ia] : rb[j * ib];
    }
  });
}

template <class T> void where_fast(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const Shape& os = out.shape();
  const bool a_full = a.shape() == os, b_full = b.shape() == os;
  const bool a_one = a.numel() == 1, b_one = b.numel() == 1;
  if (cond.shape() == os && (a_full || a_one) && (b_full || b_one)) {
    const bool* pc = cond.data<bool>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    if (a_full && b_full) return where_flat<T, false, false>(pc, pa, pb, po, n);
    if (a_full) return where_flat<T, false, true>(pc, pa, pb, po, n);
    if (b_full) return where_flat<T, true, false>(pc, pa, pb, po, n);
    return where_flat<T, true, true>(pc, pa, pb, po, n);
  }
  where_broadcast<T>(cond, a, b, out);
}

void where_kernel(const KernelContext& c) {
  visit_all(c.in(1).dtype(), [&]<class T>() { where_fast<T>(c.in(0), c.in(1), c.in(2), c.out(0)); });
}

void where_reference(const KernelContext& c) {
  visit_all(c.in(1).dtype(), [&]<class T>() {
    const Shape& os = c.out(0).shape();
    T* po = c.out(0).data<T>();
    for (std::int64_t i = 0; i < c.out(0).numel(); ++i) {
      const bool k = c.in(0).data<bool>()[naive::broadcast_offset(i, os, c.in(0).shape())];
      po[i] = k ? c.in(1).data<T>()[naive::broadcast_offset(i, os, c.in(1).shape())]
                : c.in(2).data<T>()[naive::broadcast_offset(i, os, c.in(2).shape())];
    }
  });
}

void cast_kernel(const KernelContext& c) {
  visit_all(c.in(0).dtype(), [&]<class S>() {
    visit_all(c.out(0).dtype(), [&]<class D>() { cpu::unary_map<S, D>(c.in(0), c.out(0), convert<S, D>); });
  });
}

// ---------------------------------------------------------------------------------------------
// Naive reference kernels (OpDef::reference): one serial loop per op over ops/naive.h, broadcast
// offsets computed per element, transcendental functions in double. Integer semantics that are
// definitions rather than arithmetic (wrapping negation, truncating division, cast's saturation)
// use the same helpers as the fast kernels.

template <class F> KernelFn binary_reference(const char* name, F f) {
  return [name, f](const KernelContext& c) {
    visit_numeric(c.in(0).dtype(), name, [&]<class T>() {
      naive::binary<T, T>(c.in(0), c.in(1), c.out(0), [&](T a, T b) { return static_cast<T>(f(a, b)); });
    });
  };
}

template <class F> KernelFn unary_numeric_reference(const char* name, F f) {
  return [name, f](const KernelContext& c) {
    visit_numeric(c.in(0).dtype(), name, [&]<class T>() {
      naive::unary<T, T>(c.in(0), c.out(0), [&](T v) { return static_cast<T>(f(v)); });
    });
  };
}

// A float32 function computed in double and rounded once.
template <class F> KernelFn unary_double_reference(F f) {
  return [f](const KernelContext& c) {
    naive::unary<float, float>(c.in(0), c.out(0), [&](float v) { return static_cast<float>(f(static_cast<double>(v))); });
  };
}

// (x, dy) -> f(x, dy), float32, x and dy of one shape.
template <class F> void pair_reference(const KernelContext& c, F f) {
  const float* x = c.in(0).data<float>();
  const float* dy = c.in(1).data<float>();
  float* out = c.out(0).data<float>();
  for (std::int64_t i = 0; i < c.out(0).numel(); ++i) out[i] = f(x[i], dy[i]);
}

void div_reference(const KernelContext& c) {
  visit_numeric(c.in(0).dtype(), "div", [&]<class T>() {
    if constexpr (std::is_floating_point_v<T>) {
      naive::binary<T, T>(c.in(0), c.in(1), c.out(0), [](T a, T b) { return a / b; });
    } else {
      const T* pb = c.in(1).data<T>();
      for (std::int64_t i = 0; i < c.in(1).numel() && c.out(0).numel() > 0; ++i)
        SYN_CHECK(pb[i] != T(0), "div: integer division by zero");
      naive::binary<T, T>(c.in(0), c.in(1), c.out(0), [](T a, T b) { return int_div(a, b); });
    }
  });
}

// maximum / minimum: a NaN in either operand is the result; on ties, a.
template <class T> T max_reference(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return a;
    if (std::isnan(b)) return b;
  }
  return a < b ? b : a;
}
template <class T> T min_reference(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return a;
    if (std::isnan(b)) return b;
  }
  return b < a ? b : a;
}

template <class F> KernelFn compare_reference(F f) {
  return [f](const KernelContext& c) {
    visit_all(c.in(0).dtype(), [&]<class T>() { naive::binary<T, bool>(c.in(0), c.in(1), c.out(0), f); });
  };
}

void cast_reference(const KernelContext& c) {
  visit_all(c.in(0).dtype(), [&]<class S>() {
    visit_all(c.out(0).dtype(), [&]<class D>() { naive::unary<S, D>(c.in(0), c.out(0), convert<S, D>); });
  });
}

// ---------------------------------------------------------------------------------------------
// Gradient helpers.

// The gradient for input i, computed only when that input wants one (skips e.g. the scalar in x * 2.0f).
template <class F> Tensor grad_for(const GradCtx& g, std::size_t i, F f) {
  return g.x(i).requires_grad() ? sum_to(f(), g.x(i).shape()) : Tensor();
}

Tensor zero_like_scalar(const Tensor& t) { return zeros({}, t.dtype()); }

// ---------------------------------------------------------------------------------------------
// Registration, one function per group.

void register_arithmetic() {
  define_op("add")
      .inputs(2)
      .shape(numeric_binary())
      .kernel(Device::CPU, binary_kernel("add", k_add))
      .reference(binary_reference("add", [](auto a, auto b) { return a + b; }))
      .pointwise(binary_pointwise(k_add))
      .grad([](const GradCtx& g) {
        return grads(grad_for(g, 0, [&] { return g.dy(); }), grad_for(g, 1, [&] { return g.dy(); }));
      });

  define_op("sub")
      .inputs(2)
      .shape(numeric_binary())
      .kernel(Device::CPU, binary_kernel("sub", k_sub))
      .reference(binary_reference("sub", [](auto a, auto b) { return a - b; }))
      .pointwise(binary_pointwise(k_sub))
      .grad([](const GradCtx& g) {
        return grads(grad_for(g, 0, [&] { return g.dy(); }), grad_for(g, 1, [&] { return -g.dy(); }));
      });

  define_op("mul")
      .inputs(2)
      .shape(numeric_binary())
      .kernel(Device::CPU, binary_kernel("mul", k_mul))
      .reference(binary_reference("mul", [](auto a, auto b) { return a * b; }))
      .pointwise(binary_pointwise(k_mul))
      .grad([](const GradCtx& g) {
        return grads(grad_for(g, 0, [&] { return g.dy() * g.x(1); }), grad_for(g, 1, [&] { return g.dy() * g.x(0); }));
      });

  define_op("div")
      .inputs(2)
      .shape(numeric_binary())
      .kernel(Device::CPU, div_kernel)
      .reference(div_reference)
      .pointwise(binary_pointwise(k_div_float))
      .grad([](const GradCtx& g) {
        // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -y/b
        return grads(grad_for(g, 0, [&] { return g.dy() / g.x(1); }),
                     grad_for(g, 1, [&] { return -g.dy() * g.y() / g.x(1); }));
      });

  define_op("pow")
      .inputs(2)
      .shape(float_binary())
      .kernel(Device::CPU, pow_kernel)
      .reference(pow_reference)
      .grad([](const GradCtx& g) {
        const Tensor &a = g.x(0), &b = g.x(1);
        // d/da = b a^(b-1);  d/db = y ln(a), taken as 0 where a <= 0 (log of a safe stand-in, so that
        // no NaN appears even transiently: anomaly mode checks every op).
        return grads(grad_for(g, 0, [&] { return g.dy() * b * pow(a, b - 1.0f); }), grad_for(g, 1, [&] {
                       const Tensor safe_a = where(greater(a, zero_like_scalar(a)), a, ones({}, a.dtype()));
                       return g.dy() * g.y() * log(safe_a);
                     }));
      });

  define_op("maximum")
      .inputs(2)
      .shape(numeric_binary())
      .kernel(Device::CPU, binary_kernel("maximum", k_maximum))
      .reference(binary_reference("maximum", [](auto a, auto b) { return max_reference(a, b); }))
      .pointwise(binary_pointwise(k_maximum))
      .grad([](const GradCtx& g) {
        // to a where a >= b, i.e. where !(a < b)
        const Tensor to_b = less(g.x(0), g.x(1));
        const Tensor zero = zero_like_scalar(g.dy());
        return grads(grad_for(g, 0, [&] { return where(to_b, zero, g.dy()); }),
                     grad_for(g, 1, [&] { return where(to_b, g.dy(), zero); }));
      });

  define_op("minimum")
      .inputs(2)
      .shape(numeric_binary())
      .kernel(Device::CPU, binary_kernel("minimum", k_minimum))
      .reference(binary_reference("minimum", [](auto a, auto b) { return min_reference(a, b); }))
      .pointwise(binary_pointwise(k_minimum))
      .grad([](const GradCtx& g) {
        // to a where a <= b, i.e. where !(a > b)
        const Tensor to_b = greater(g.x(0), g.x(1));
        const Tensor zero = zero_like_scalar(g.dy());
        return grads(grad_for(g, 0, [&] { return where(to_b, zero, g.dy()); }),
                     grad_for(g, 1, [&] { return where(to_b, g.dy(), zero); }));
      });
}

void register_unary_math() {
  define_op("neg")
      .inputs(1)
      .shape(numeric_unary())
      .kernel(Device::CPU, unary_numeric_kernel("neg", k_neg))
      .reference(unary_numeric_reference("neg", [](auto v) { return wrap_neg(v); }))
      .pointwise(unary_pointwise(k_neg))
      .grad([](const GradCtx& g) { return grads(-g.dy()); });

  define_op("exp")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(k_exp))
      .reference(unary_double_reference([](double v) { return std::exp(v); }))
      .pointwise(unary_pointwise(k_exp))
      .grad([](const GradCtx& g) { return grads(g.dy() * g.y()); });

  define_op("log")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(k_log))
      .reference(unary_double_reference([](double v) { return std::log(v); }))
      .pointwise(unary_pointwise(k_log))
      .grad([](const GradCtx& g) { return grads(g.dy() / g.x()); });

  define_op("sqrt")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(k_sqrt))
      .reference(unary_double_reference([](double v) { return std::sqrt(v); }))
      .pointwise(unary_pointwise(k_sqrt))
      .grad([](const GradCtx& g) { return grads(g.dy() / g.y() * 0.5f); });  // 1 / (2 sqrt(x))

  define_op("square")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(k_square))
      .reference(unary_double_reference([](double v) { return v * v; }))
      .pointwise(unary_pointwise(k_square))
      .grad([](const GradCtx& g) { return grads(g.dy() * g.x() * 2.0f); });

  define_op("abs")
      .inputs(1)
      .shape(numeric_unary())
      .kernel(Device::CPU, unary_numeric_kernel("abs", k_abs))
      .reference(unary_numeric_reference("abs", [](auto v) { return abs_value(v); }))
      .pointwise(unary_pointwise(k_abs))
      .grad([](const GradCtx& g) { return grads(g.dy() * sign(g.x())); });

  // Not differentiable: registered without a gradient, so nothing is recorded and no gradient flows
  // through it (its derivative is zero wherever it exists).
  define_op("sign")
      .inputs(1)
      .shape(numeric_unary())
      .kernel(Device::CPU, unary_numeric_kernel("sign", k_sign))
      .reference(unary_numeric_reference("sign", [](auto v) { return sign_value(v); }))
      .pointwise(unary_pointwise(k_sign));

  define_op("tanh")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(k_tanh))
      .reference(unary_double_reference([](double v) { return std::tanh(v); }))
      .pointwise(unary_pointwise(k_tanh))
      .grad([](const GradCtx& g) { return grads(g.dy() * (1.0f - square(g.y()))); });
}

void register_activations() {
  define_op("relu")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(k_relu))
      .reference(unary_double_reference([](double v) { return v < 0.0 ? 0.0 : v; }))
      .pointwise(unary_pointwise(k_relu))
      .grad([](const GradCtx& g) {
        // Masked by the output (y > 0 exactly where x > 0), as TensorFlow's ReluGrad: the input need
        // not stay alive for the backward pass, and in a graph bias + relu can fuse.
        return grads(relu_grad_from_output(g.y(), g.dy()));
      });

  define_op("leaky_relu")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                cpu::unary_map<float, float>(c.in(0), c.out(0), leaky_relu_fn(static_cast<float>(c.attrs.f("alpha"))));
              })
      .reference([](const KernelContext& c) {
        const auto alpha = static_cast<float>(c.attrs.f("alpha"));
        naive::unary<float, float>(c.in(0), c.out(0), [&](float v) { return v > 0.0f ? v : alpha * v; });
      })
      .pointwise([](const Attrs& a) -> PointwiseFn {
        return [f = leaky_relu_fn(static_cast<float>(a.f("alpha")))](const PointwiseBlock& b) { cpu::unary_block(b, f); };
      })
      .grad([](const GradCtx& g) {
        static const OpDef& grad_op = op_def("leaky_relu_grad");
        return grads(apply1(grad_op, {g.x(), g.dy()}, g.attrs));
      });

  // (x, dy) -> dy where x > 0, alpha * dy elsewhere: the gradient of relu (alpha 0) and leaky_relu,
  // one pass instead of a comparison and a select. Linear in dy; piecewise constant in x.
  define_op("leaky_relu_grad")
      .inputs(2)
      .shape(float_pair())
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                masked_grad(c, leaky_grad_fn(static_cast<float>(c.attrs.f("alpha"))));
              })
      .reference([](const KernelContext& c) {
        const auto alpha = static_cast<float>(c.attrs.f("alpha"));
        pair_reference(c, [&](float x, float d) { return x > 0.0f ? d : alpha * d; });
      })
      .pointwise([](const Attrs& a) -> PointwiseFn {
        return [f = leaky_grad_fn(static_cast<float>(a.f("alpha")))](const PointwiseBlock& b) { cpu::binary_block(b, f); };
      })
      .grad([](const GradCtx& g) {
        static const OpDef& self = op_def("leaky_relu_grad");
        return grads(Tensor(), apply1(self, {g.x(0), g.dy()}, g.attrs));
      });

  define_op("sigmoid")
      .inputs(1)
      .shape(float_unary())
      .kernel(Device::CPU, unary_float_kernel(stable_sigmoid))
      .reference(unary_double_reference([](double v) { return 1.0 / (1.0 + std::exp(-v)); }))
      .pointwise(unary_pointwise(stable_sigmoid))
      .grad([](const GradCtx& g) { return grads(g.dy() * g.y() * (1.0f - g.y())); });

  define_op("clip")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        require_float(in[0].dtype);
        SYN_CHECK(a.f("lo") <= a.f("hi"), "lo {} is greater than hi {}", a.f("lo"), a.f("hi"));
        return one_output(in[0].shape, in[0].dtype);
      })
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                cpu::unary_map<float, float>(c.in(0), c.out(0),
                                             clip_fn(static_cast<float>(c.attrs.f("lo")), static_cast<float>(c.attrs.f("hi"))));
              })
      .reference([](const KernelContext& c) {
        const auto lo = static_cast<float>(c.attrs.f("lo")), hi = static_cast<float>(c.attrs.f("hi"));
        naive::unary<float, float>(c.in(0), c.out(0), [&](float v) { return v < lo ? lo : (v > hi ? hi : v); });
      })
      .pointwise([](const Attrs& a) -> PointwiseFn {
        return [f = clip_fn(static_cast<float>(a.f("lo")), static_cast<float>(a.f("hi")))](const PointwiseBlock& b) {
          cpu::unary_block(b, f);
        };
      })
      .grad([](const GradCtx& g) {
        static const OpDef& grad_op = op_def("clip_grad");
        return grads(apply1(grad_op, {g.x(), g.dy()}, g.attrs));
      });

  // (x, dy) -> dy where lo <= x <= hi, 0 elsewhere: the gradient of clip.
  define_op("clip_grad")
      .inputs(2)
      .shape(float_pair())
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                masked_grad(c, clip_grad_fn(static_cast<float>(c.attrs.f("lo")), static_cast<float>(c.attrs.f("hi"))));
              })
      .reference([](const KernelContext& c) {
        const auto lo = static_cast<float>(c.attrs.f("lo")), hi = static_cast<float>(c.attrs.f("hi"));
        pair_reference(c, [&](float x, float d) { return lo <= x && x <= hi ? d : 0.0f; });
      })
      .pointwise([](const Attrs& a) -> PointwiseFn {
        return [f = clip_grad_fn(static_cast<float>(a.f("lo")), static_cast<float>(a.f("hi")))](const PointwiseBlock& b) {
          cpu::binary_block(b, f);
        };
      })
      .grad([](const GradCtx& g) {
        static const OpDef& self = op_def("clip_grad");
        return grads(Tensor(), apply1(self, {g.x(0), g.dy()}, g.attrs));
      });
}

// Comparisons, where and cast. Comparisons have no gradient (bool results).
void register_selection() {
  define_op("equal")
      .inputs(2)
      .shape(broadcast_binary(true))
      .kernel(Device::CPU, compare_kernel([](auto a, auto b) { return a == b; }))
      .reference(compare_reference([](auto a, auto b) { return a == b; }));
  define_op("greater")
      .inputs(2)
      .shape(broadcast_binary(true))
      .kernel(Device::CPU, compare_kernel([](auto a, auto b) { return a > b; }))
      .reference(compare_reference([](auto a, auto b) { return a > b; }));
  define_op("less")
      .inputs(2)
      .shape(broadcast_binary(true))
      .kernel(Device::CPU, compare_kernel([](auto a, auto b) { return a < b; }))
      .reference(compare_reference([](auto a, auto b) { return a < b; }));

  define_op("where")
      .inputs(3)
      .shape(where_shape)
      .kernel(Device::CPU, where_kernel)
      .reference(where_reference)
      .grad([](const GradCtx& g) {
        const Tensor& cond = g.x(0);
        const Tensor zero = zero_like_scalar(g.dy());
        return grads(Tensor(), grad_for(g, 1, [&] { return where(cond, g.dy(), zero); }),
                     grad_for(g, 2, [&] { return where(cond, zero, g.dy()); }));
      });

  define_op("cast")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        return one_output(in[0].shape, parse_dtype(a.s("dtype")));
      })
      .kernel(Device::CPU, cast_kernel)
      .reference(cast_reference)
      .grad([](const GradCtx& g) {
        // Identity between float types; no gradient into or out of integers and bool.
        const bool float_to_float = is_floating(g.x().dtype()) && is_floating(g.y().dtype());
        return grads(float_to_float ? g.dy() : Tensor());
      });
}

}  // namespace

void register_elementwise_ops() {
  register_arithmetic();
  register_unary_math();
  register_activations();
  register_selection();
}

Tensor relu_grad_from_output(const Tensor& y, const Tensor& dy) {
  static const OpDef& op = op_def("leaky_relu_grad");
  return apply1(op, {y, dy}, Attrs().set("alpha", 0.0));
}

}  // namespace ops

// ---- public functions ----

// A float scalar in the dtype of `like`, so `int_tensor + 1.0f` stays integral.
static Tensor scalar_like(float v, const Tensor& like) { return full({}, v, like.dtype()); }

Tensor add(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("add"); return apply1(op, {a, b}); }
Tensor sub(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("sub"); return apply1(op, {a, b}); }
Tensor mul(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("mul"); return apply1(op, {a, b}); }
Tensor div(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("div"); return apply1(op, {a, b}); }
Tensor pow(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("pow"); return apply1(op, {a, b}); }
Tensor maximum(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("maximum"); return apply1(op, {a, b}); }
Tensor minimum(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("minimum"); return apply1(op, {a, b}); }
Tensor equal(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("equal"); return apply1(op, {a, b}); }
Tensor greater(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("greater"); return apply1(op, {a, b}); }
Tensor less(const Tensor& a, const Tensor& b) { static const OpDef& op = op_def("less"); return apply1(op, {a, b}); }
Tensor neg(const Tensor& x) { static const OpDef& op = op_def("neg"); return apply1(op, {x}); }
Tensor exp(const Tensor& x) { static const OpDef& op = op_def("exp"); return apply1(op, {x}); }
Tensor log(const Tensor& x) { static const OpDef& op = op_def("log"); return apply1(op, {x}); }
Tensor sqrt(const Tensor& x) { static const OpDef& op = op_def("sqrt"); return apply1(op, {x}); }
Tensor square(const Tensor& x) { static const OpDef& op = op_def("square"); return apply1(op, {x}); }
Tensor abs(const Tensor& x) { static const OpDef& op = op_def("abs"); return apply1(op, {x}); }
Tensor sign(const Tensor& x) { static const OpDef& op = op_def("sign"); return apply1(op, {x}); }
Tensor relu(const Tensor& x) { static const OpDef& op = op_def("relu"); return apply1(op, {x}); }
Tensor sigmoid(const Tensor& x) { static const OpDef& op = op_def("sigmoid"); return apply1(op, {x}); }
Tensor tanh(const Tensor& x) { static const OpDef& op = op_def("tanh"); return apply1(op, {x}); }

Tensor pow(const Tensor& a, float exponent) { return pow(a, scalar_like(exponent, a)); }

Tensor leaky_relu(const Tensor& x, float alpha) {
  static const OpDef& op = op_def("leaky_relu");
  return apply1(op, {x}, Attrs().set("alpha", alpha));
}

Tensor clip(const Tensor& x, float lo, float hi) {
  static const OpDef& op = op_def("clip");
  return apply1(op, {x}, Attrs().set("lo", lo).set("hi", hi));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  static const OpDef& op = op_def("where");
  return apply1(op, {cond, a, b});
}

Tensor cast(const Tensor& x, DType dtype) {
  static const OpDef& op = op_def("cast");
  if (x.defined() && x.dtype() == dtype) return x;  // nothing to convert (like torch's .to())
  return apply1(op, {x}, Attrs().set("dtype", std::string(dtype_name(dtype))));
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, float b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, float b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, float b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, float b) { return div(a, scalar_like(b, a)); }
Tensor operator+(float a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(float a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(float a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(float a, const Tensor& b) { return div(scalar_like(a, b), b); }

}  // namespace synapse
