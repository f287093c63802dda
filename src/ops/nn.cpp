// Neural-network ops: softmax and log_softmax over any axis, the fused (numerically stable) losses,
// and dropout.
//
// Every kernel subtracts the maximum before exponentiating, so large logits (1000 and more) stay
// finite. The softmax family views its input as [outer, n, inner] around the reduced axis: the last
// axis (inner == 1) is the fast path, one contiguous row per (outer) index; other axes work on column
// segments of an [n, inner] slab so the inner loops still run over contiguous memory.
//
// Helper ops users do not call, registered here for the gradients:
//   sparse_softmax_cross_entropy_grad(logits [..., C], labels [...]) = softmax(logits) - one_hot(labels)
//   sigmoid_cross_entropy_grad(logits, labels)                       = sigmoid(logits) - labels
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/elementwise.h"
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

// exp is ~10x the cost of an add: a smaller grain than plain elementwise loops.
constexpr std::int64_t kSoftmaxGrain = kElementwiseGrain / 4;

// Grain in rows (or columns) of `n` elements each.
std::int64_t rows_grain(std::int64_t n) { return std::max<std::int64_t>(1, kSoftmaxGrain / std::max<std::int64_t>(n, 1)); }

// A tensor seen as [outer, n, inner] around `axis`.
struct AxisView {
  std::int64_t outer = 1, n = 1, inner = 1;
};

AxisView axis_view(const Shape& s, int axis) {
  AxisView v;
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    if (d < axis) v.outer *= s[static_cast<std::size_t>(d)];
    if (d > axis) v.inner *= s[static_cast<std::size_t>(d)];
  }
  v.n = s[static_cast<std::size_t>(axis)];
  return v;
}

// [..., C] -> [..., 1]: a per-row gradient dy made to broadcast over the class axis.
Tensor per_row(const Tensor& dy) {
  Shape s = dy.shape();
  s.push_back(1);
  return reshape(dy, s);
}

// Calls f.template operator()<I>() for an int32 / int64 label dtype (checked by the shape rule).
template <class F> void visit_labels(DType dt, F&& f) {
  if (dt == DType::Int32) {
    f.template operator()<std::int32_t>();
  } else {
    f.template operator()<std::int64_t>();
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax and log_softmax kernels.

enum class Mode { Softmax, LogSoftmax };

float row_max(const float* x, std::int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (std::int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
  return m;
}

// log(sum(exp(x))) of one contiguous row, stable.
float row_logsumexp(const float* x, std::int64_t n) {
  const float m = row_max(x, n);
  float s = 0.0f;
  for (std::int64_t j = 0; j < n; ++j) s += std::exp(x[j] - m);
  return m + std::log(s);
}

// One contiguous row x[n] -> y[n].
template <Mode M> void softmax_row(const float* x, float* y, std::int64_t n) {
  const float m = row_max(x, n);
  if constexpr (M == Mode::Softmax) {
    float s = 0.0f;
    for (std::int64_t j = 0; j < n; ++j) {
      y[j] = std::exp(x[j] - m);
      s += y[j];
    }
    const float inv = 1.0f / s;
    for (std::int64_t j = 0; j < n; ++j) y[j] *= inv;
  } else {
    float s = 0.0f;
    for (std::int64_t j = 0; j < n; ++j) s += std::exp(x[j] - m);
    const float lse = m + std::log(s);
    for (std::int64_t j = 0; j < n; ++j) y[j] = x[j] - lse;
  }
}

// Columns [k0, k0 + len) of one [n, inner] slab (row stride `inner`); `m` and `s` hold len floats.
template <Mode M>
void softmax_columns(const float* x, float* y, std::int64_t n, std::int64_t inner, std::int64_t len, float* m,
                     float* s) {
  std::copy(x, x + len, m);
  for (std::int64_t j = 1; j < n; ++j)
    for (std::int64_t k = 0; k < len; ++k) m[k] = std::max(m[k], x[j * inner + k]);
  std::fill(s, s + len, 0.0f);
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t k = 0; k < len; ++k) {
      const float e = std::exp(x[j * inner + k] - m[k]);
      if constexpr (M == Mode::Softmax) y[j * inner + k] = e;
      s[k] += e;
    }
  }
  if constexpr (M == Mode::Softmax) {
    for (std::int64_t k = 0; k < len; ++k) s[k] = 1.0f / s[k];
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t k = 0; k < len; ++k) y[j * inner + k] *= s[k];
  } else {
    for (std::int64_t k = 0; k < len; ++k) s[k] = m[k] + std::log(s[k]);  // log-sum-exp per column
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t k = 0; k < len; ++k) y[j * inner + k] = x[j * inner + k] - s[k];
  }
}

template <Mode M> void softmax_kernel(const Tensor& in, Tensor& out, int axis) {
  if (in.numel() == 0) return;
  const AxisView v = axis_view(in.shape(), axis);
  const float* x = in.data<float>();
  float* y = out.data<float>();
  const std::int64_t n = v.n, inner = v.inner;
  if (inner == 1) {  // last axis: one contiguous row per outer index
    parallel_for(0, v.outer, rows_grain(n), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r) softmax_row<M>(x + r * n, y + r * n, n);
    });
    return;
  }
  // Other axes: split the outer * inner columns over threads; each chunk walks runs of contiguous
  // columns within one slab.
  parallel_for(0, v.outer * inner, rows_grain(n), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> scratch(static_cast<std::size_t>(2 * std::min(hi - lo, inner)));
    for (std::int64_t c = lo; c < hi;) {
      const std::int64_t o = c / inner, k0 = c % inner;
      const std::int64_t len = std::min(inner - k0, hi - c);
      const std::int64_t base = o * n * inner + k0;
      softmax_columns<M>(x + base, y + base, n, inner, len, scratch.data(), scratch.data() + len);
      c += len;
    }
  });
}

// Naive reference: strided loops in double.
template <Mode M> void softmax_reference(const Tensor& in, Tensor& out, int axis) {
  if (in.numel() == 0) return;
  const AxisView v = axis_view(in.shape(), axis);
  const float* x = in.data<float>();
  float* y = out.data<float>();
  for (std::int64_t o = 0; o < v.outer; ++o) {
    for (std::int64_t k = 0; k < v.inner; ++k) {
      auto at = [&](std::int64_t j) { return (o * v.n + j) * v.inner + k; };
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < v.n; ++j) m = std::max(m, static_cast<double>(x[at(j)]));
      double s = 0.0;
      for (std::int64_t j = 0; j < v.n; ++j) s += std::exp(x[at(j)] - m);
      for (std::int64_t j = 0; j < v.n; ++j)
        y[at(j)] = static_cast<float>(M == Mode::Softmax ? std::exp(x[at(j)] - m) / s : x[at(j)] - m - std::log(s));
    }
  }
}

ShapeFn softmax_shape(const char* op) {
  return [op](const std::vector<TensorMeta>& in, const Attrs& a) {
    require_float(in[0].dtype);
    normalize_axis(a.i("axis"), static_cast<std::int64_t>(in[0].shape.size()), op);
    return one_output(in[0].shape, in[0].dtype);
  };
}

template <Mode M> KernelFn softmax_fn(bool reference) {
  return [reference](const KernelContext& c) {
    const int axis = normalize_axis(c.attrs.i("axis"), c.in(0).ndim());
    if (reference) {
      softmax_reference<M>(c.in(0), c.out(0), axis);
    } else {
      softmax_kernel<M>(c.in(0), c.out(0), axis);
    }
  };
}

void register_softmax_ops() {
  define_op("softmax")
      .inputs(1)
      .shape(softmax_shape("softmax"))
      .kernel(Device::CPU, softmax_fn<Mode::Softmax>(false))
      .reference(softmax_fn<Mode::Softmax>(true))
      .grad([](const GradCtx& g) {
        // dx = y * (dy - sum(dy * y, axis))
        const std::int64_t axis = g.attrs.i("axis");
        return grads(g.y() * (g.dy() - sum(g.dy() * g.y(), {axis}, true)));
      });

  define_op("log_softmax")
      .inputs(1)
      .shape(softmax_shape("log_softmax"))
      .kernel(Device::CPU, softmax_fn<Mode::LogSoftmax>(false))
      .reference(softmax_fn<Mode::LogSoftmax>(true))
      .grad([](const GradCtx& g) {
        // dx = dy - softmax(x) * sum(dy, axis)
        const std::int64_t axis = g.attrs.i("axis");
        return grads(g.dy() - softmax(g.x(), axis) * sum(g.dy(), {axis}, true));
      });
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy with dense labels: logits, labels [..., C] -> loss [...].

void softmax_xent_kernel(const KernelContext& c) {
  const Tensor& logits = c.in(0);
  const std::int64_t C = logits.dim(-1);
  const std::int64_t rows = c.out(0).numel();
  const float* x = logits.data<float>();
  const float* z = c.in(1).data<float>();
  float* loss = c.out(0).data<float>();
  parallel_for(0, rows, rows_grain(C), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * C;
      const float* zr = z + r * C;
      const float lse = row_logsumexp(xr, C);
      float acc = 0.0f;  // sum z * (lse - x) = -sum z * log_softmax(x)
      for (std::int64_t j = 0; j < C; ++j) acc += zr[j] * (lse - xr[j]);
      loss[r] = acc;
    }
  });
}

void softmax_xent_reference(const KernelContext& c) {
  const std::int64_t C = c.in(0).dim(-1);
  const float* x = c.in(0).data<float>();
  const float* z = c.in(1).data<float>();
  float* loss = c.out(0).data<float>();
  for (std::int64_t r = 0; r < c.out(0).numel(); ++r) {
    double m = -std::numeric_limits<double>::infinity(), s = 0.0, acc = 0.0;
    for (std::int64_t j = 0; j < C; ++j) m = std::max(m, static_cast<double>(x[r * C + j]));
    for (std::int64_t j = 0; j < C; ++j) s += std::exp(x[r * C + j] - m);
    for (std::int64_t j = 0; j < C; ++j) acc -= z[r * C + j] * (x[r * C + j] - m - std::log(s));
    loss[r] = static_cast<float>(acc);
  }
}

std::vector<TensorMeta> softmax_xent_shape(const std::vector<TensorMeta>& in, const Attrs&) {
  require_float(in[0].dtype, "logits");
  require_float(in[1].dtype, "labels");
  SYN_CHECK(in[0].shape == in[1].shape, "logits {} and labels {} must have the same shape", to_string(in[0].shape),
            to_string(in[1].shape));
  SYN_CHECK(!in[0].shape.empty(), "logits must have a class axis, got a scalar");
  Shape out = in[0].shape;
  out.pop_back();
  return one_output(std::move(out), DType::Float32);
}

// ---------------------------------------------------------------------------------------------
// Sparse softmax cross-entropy: logits [..., C], integer labels [...] -> loss [...].

// Throws naming the first label outside [0, C); runs before any parallel loop.
template <class I> void check_labels(const Tensor& labels, std::int64_t C, const char* op) {
  const I* p = labels.data<I>();
  for (std::int64_t i = 0, n = labels.numel(); i < n; ++i) {
    const auto l = static_cast<std::int64_t>(p[i]);
    SYN_CHECK(l >= 0 && l < C, "{}: label {} at position {} is out of range [0, {})", op, l, i, C);
  }
}

std::vector<TensorMeta> sparse_xent_shape(const std::vector<TensorMeta>& in, const Attrs&) {
  require_float(in[0].dtype, "logits");
  SYN_CHECK(in[1].dtype == DType::Int32 || in[1].dtype == DType::Int64, "labels must be int32 or int64, got {}",
            dtype_name(in[1].dtype));
  SYN_CHECK(!in[0].shape.empty(), "logits must have a class axis, got a scalar");
  Shape rows = in[0].shape;
  rows.pop_back();
  SYN_CHECK(in[1].shape == rows, "labels {} must have the shape of logits {} without the class axis, {}",
            to_string(in[1].shape), to_string(in[0].shape), to_string(rows));
  return one_output(std::move(rows), DType::Float32);
}

// loss[r] = logsumexp(x[r]) - x[r, label[r]]
template <class I> void sparse_xent_rows(const Tensor& logits, const Tensor& labels, Tensor& out, bool reference) {
  const std::int64_t C = logits.dim(-1);
  const std::int64_t rows = out.numel();
  const float* x = logits.data<float>();
  const I* lab = labels.data<I>();
  float* loss = out.data<float>();
  if (reference) {
    for (std::int64_t r = 0; r < rows; ++r) {
      double m = -std::numeric_limits<double>::infinity(), s = 0.0;
      for (std::int64_t j = 0; j < C; ++j) m = std::max(m, static_cast<double>(x[r * C + j]));
      for (std::int64_t j = 0; j < C; ++j) s += std::exp(x[r * C + j] - m);
      loss[r] = static_cast<float>(m + std::log(s) - x[r * C + static_cast<std::int64_t>(lab[r])]);
    }
    return;
  }
  parallel_for(0, rows, rows_grain(C), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * C;
      loss[r] = row_logsumexp(xr, C) - xr[static_cast<std::int64_t>(lab[r])];
    }
  });
}

// out[r] = softmax(x[r]) - one_hot(label[r])
template <class I> void sparse_xent_grad_rows(const Tensor& logits, const Tensor& labels, Tensor& out) {
  const std::int64_t C = logits.dim(-1);
  const std::int64_t rows = labels.numel();
  const float* x = logits.data<float>();
  const I* lab = labels.data<I>();
  float* y = out.data<float>();
  parallel_for(0, rows, rows_grain(C), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      softmax_row<Mode::Softmax>(x + r * C, y + r * C, C);
      y[r * C + static_cast<std::int64_t>(lab[r])] -= 1.0f;
    }
  });
}

KernelFn sparse_xent_fn(bool reference) {
  return [reference](const KernelContext& c) {
    visit_labels(c.in(1).dtype(), [&]<class I>() {
      check_labels<I>(c.in(1), c.in(0).dim(-1), "sparse_softmax_cross_entropy");
      sparse_xent_rows<I>(c.in(0), c.in(1), c.out(0), reference);
    });
  };
}

// Naive reference of sparse_softmax_cross_entropy_grad, in double: exp(x - max) / sum, minus 1 at the label.
void sparse_xent_grad_reference(const KernelContext& c) {
  visit_labels(c.in(1).dtype(), [&]<class I>() {
    check_labels<I>(c.in(1), c.in(0).dim(-1), "sparse_softmax_cross_entropy_grad");
    const std::int64_t C = c.in(0).dim(-1);
    const float* x = c.in(0).data<float>();
    const I* lab = c.in(1).data<I>();
    float* y = c.out(0).data<float>();
    for (std::int64_t r = 0; r < c.in(1).numel(); ++r) {
      double m = -std::numeric_limits<double>::infinity(), s = 0.0;
      for (std::int64_t j = 0; j < C; ++j) m = std::max(m, static_cast<double>(x[r * C + j]));
      for (std::int64_t j = 0; j < C; ++j) s += std::exp(x[r * C + j] - m);
      for (std::int64_t j = 0; j < C; ++j) {
        const double one_hot = j == static_cast<std::int64_t>(lab[r]) ? 1.0 : 0.0;
        y[r * C + j] = static_cast<float>(std::exp(x[r * C + j] - m) / s - one_hot);
      }
    }
  });
}

void register_cross_entropy_ops() {
  define_op("softmax_cross_entropy")
      .inputs(2)
      .shape(softmax_xent_shape)
      .kernel(Device::CPU, softmax_xent_kernel)
      .reference(softmax_xent_reference)
      .grad([](const GradCtx& g) {
        // d/dlogits = (softmax(x) * sum(z) - z) * dy, which is (softmax(x) - z) * dy when each row of
        // labels sums to 1 (the usual case; the sum keeps the gradient exact for any labels).
        // d/dlabels = -log_softmax(x) * dy
        const Tensor dy = per_row(g.dy());
        Tensor dx, dz;
        if (g.x(0).requires_grad()) dx = (softmax(g.x(0), -1) * sum(g.x(1), {-1}, true) - g.x(1)) * dy;
        if (g.x(1).requires_grad()) dz = log_softmax(g.x(0), -1) * -dy;
        return grads(dx, dz);
      });

  define_op("sparse_softmax_cross_entropy")
      .inputs(2)
      .shape(sparse_xent_shape)
      .kernel(Device::CPU, sparse_xent_fn(false))
      .reference(sparse_xent_fn(true))
      .grad([](const GradCtx& g) {
        static const OpDef& grad_op = op_def("sparse_softmax_cross_entropy_grad");
        return grads(apply1(grad_op, {g.x(0), g.x(1)}) * per_row(g.dy()), Tensor());  // labels: none
      });

  define_op("sparse_softmax_cross_entropy_grad")
      .inputs(2)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        sparse_xent_shape(in, a);
        return one_output(in[0].shape, in[0].dtype);
      })
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                visit_labels(c.in(1).dtype(), [&]<class I>() {
                  check_labels<I>(c.in(1), c.in(0).dim(-1), "sparse_softmax_cross_entropy_grad");
                  sparse_xent_grad_rows<I>(c.in(0), c.in(1), c.out(0));
                });
              })
      .reference(sparse_xent_grad_reference)
      .grad([](const GradCtx& g) {
        // y = softmax(x) - one_hot: the softmax gradient with s = softmax(x).
        const Tensor s = softmax(g.x(0), -1);
        return grads(s * (g.dy() - sum(g.dy() * s, {-1}, true)), Tensor());
      });
}

// ---------------------------------------------------------------------------------------------
// Sigmoid cross-entropy (elementwise, broadcasting).

float stable_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

ShapeFn float_binary() {
  return [](const std::vector<TensorMeta>& in, const Attrs& a) {
    require_float(in[0].dtype, "logits");
    require_float(in[1].dtype, "labels");
    return broadcast_binary()(in, a);
  };
}

void register_sigmoid_cross_entropy_ops() {
  define_op("sigmoid_cross_entropy")
      .inputs(2)
      .shape(float_binary())
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                // max(x, 0) - x z + log(1 + exp(-|x|))
                cpu::binary_map<float, float>(c.in(0), c.in(1), c.out(0), [](float x, float z) {
                  return std::max(x, 0.0f) - x * z + std::log1p(std::exp(-std::fabs(x)));
                });
              })
      .reference([](const KernelContext& c) {
        // The textbook form, in double: log(1 + e^x) - x z (= -z log sigmoid(x) - (1 - z) log(1 - sigmoid(x))).
        naive::binary<float, float>(c.in(0), c.in(1), c.out(0), [](float x, float z) {
          return std::log1p(std::exp(static_cast<double>(x))) - static_cast<double>(x) * z;
        });
      })
      .grad([](const GradCtx& g) {
        // d/dx = (sigmoid(x) - z) dy;  d/dz = -x dy
        static const OpDef& grad_op = op_def("sigmoid_cross_entropy_grad");
        Tensor dx, dz;
        if (g.x(0).requires_grad()) dx = sum_to(apply1(grad_op, {g.x(0), g.x(1)}) * g.dy(), g.x(0).shape());
        if (g.x(1).requires_grad()) dz = sum_to(g.x(0) * -g.dy(), g.x(1).shape());
        return grads(dx, dz);
      });

  define_op("sigmoid_cross_entropy_grad")
      .inputs(2)
      .shape(float_binary())
      .kernel(Device::CPU,
              [](const KernelContext& c) {
                cpu::binary_map<float, float>(c.in(0), c.in(1), c.out(0),
                                              [](float x, float z) { return stable_sigmoid(x) - z; });
              })
      .reference([](const KernelContext& c) {
        naive::binary<float, float>(c.in(0), c.in(1), c.out(0), [](float x, float z) {
          return 1.0 / (1.0 + std::exp(-static_cast<double>(x))) - z;
        });
      })
      .grad([](const GradCtx& g) {
        // y = sigmoid(x) - z, so sigmoid(x) = y + z and d/dx = s (1 - s) dy; d/dz = -dy.
        const Tensor s = g.y() + g.x(1);
        return grads(sum_to(g.dy() * s * (1.0f - s), g.x(0).shape()), sum_to(-g.dy(), g.x(1).shape()));
      });
}

}  // namespace

void register_nn_ops() {
  register_softmax_ops();
  register_cross_entropy_ops();
  register_sigmoid_cross_entropy_ops();
}

}  // namespace ops

Tensor softmax(const Tensor& x, std::int64_t axis) {
  static const OpDef& op = op_def("softmax");
  return apply1(op, {x}, Attrs().set("axis", axis));
}

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  static const OpDef& op = op_def("log_softmax");
  return apply1(op, {x}, Attrs().set("axis", axis));
}

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  static const OpDef& op = op_def("softmax_cross_entropy");
  return apply1(op, {logits, labels});
}

Tensor sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  static const OpDef& op = op_def("sparse_softmax_cross_entropy");
  return apply1(op, {logits, labels});
}

Tensor sigmoid_cross_entropy(const Tensor& logits, const Tensor& labels) {
  static const OpDef& op = op_def("sigmoid_cross_entropy");
  return apply1(op, {logits, labels});
}

Tensor mean_squared_error(const Tensor& pred, const Tensor& target) {
  SYN_CHECK(pred.shape() == target.shape(), "mean_squared_error: pred {} and target {} must have the same shape",
            to_string(pred.shape()), to_string(target.shape()));
  SYN_CHECK(pred.dtype() == DType::Float32 && target.dtype() == DType::Float32,
            "mean_squared_error: pred and target must be float32, got {} and {}", dtype_name(pred.dtype()),
            dtype_name(target.dtype()));
  // mean(), not sum() / numel(): a graph tensor's batch is unknown until run time, and graph mode's
  // mean counts it there.
  return mean(square(pred - target));
}

Tensor dropout(const Tensor& x, float rate, bool training, Generator* gen) {
  SYN_CHECK(rate >= 0.0f && rate < 1.0f, "dropout: rate must be in [0, 1), got {}", rate);
  if (!training || rate == 0.0f) return x;
  SYN_CHECK(x.dtype() == DType::Float32, "dropout: input must be float32, got {}", dtype_name(x.dtype()));
  // The mask is a random op seeded from the generator, so a traced graph draws a fresh mask per run.
  Generator& g = gen ? *gen : default_generator();
  static const OpDef& mask_op = op_def("dropout_mask");
  const Tensor mask = apply1(mask_op, {x}, Attrs().set("rate", static_cast<double>(rate))
                                                 .set("seed", static_cast<std::int64_t>(g.next_u64())));
  return x * mask;  // the gradient, dy * mask, comes from mul
}

}  // namespace synapse
