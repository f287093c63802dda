// Local response normalisation over the last (channel) axis, TensorFlow's tf.nn.lrn:
//   sqr_sum[..., d] = sum(x[..., d - r : d + r + 1] ** 2)      (the window clipped to the channels)
//   y = x / (bias + alpha * sqr_sum) ** beta
// and its gradient, with s_i = bias + alpha * sqr_sum_i:
//   dx_j = dy_j s_j^-beta - 2 alpha beta x_j sum_{|i - j| <= r} dy_i x_i s_i^(-beta - 1)
// The fast kernels slide the window along each row of C channels (O(C) per row instead of O(C r)); the
// references sum each window again, in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/parallel.h"
#include "ops/dtype_dispatch.h"
#include "ops/families.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

struct LrnParams {
  std::int64_t radius;
  float bias, alpha, beta;
};

LrnParams params(const Attrs& a) {
  return {a.i("depth_radius"), static_cast<float>(a.f("bias")), static_cast<float>(a.f("alpha")),
          static_cast<float>(a.f("beta"))};
}

// Rows of C channels in `t`, and C.
std::int64_t rows_of(const Tensor& t) { return t.numel() / std::max<std::int64_t>(t.dim(-1), 1); }

std::int64_t row_grain(std::int64_t c) { return std::max<std::int64_t>(1, kElementwiseGrain / 8 / std::max<std::int64_t>(c, 1)); }

// win[j] = sum of v[i] over |i - j| <= r (prefix sums over one row).
void window_sums(const float* v, std::int64_t c, std::int64_t r, float* prefix, float* win) {
  prefix[0] = 0.0f;
  for (std::int64_t i = 0; i < c; ++i) prefix[i + 1] = prefix[i] + v[i];
  for (std::int64_t j = 0; j < c; ++j) win[j] = prefix[std::min(j + r + 1, c)] - prefix[std::max<std::int64_t>(j - r, 0)];
}

void lrn_kernel(const KernelContext& k) {
  const LrnParams p = params(k.attrs);
  const Tensor& x = k.in(0);
  const std::int64_t c = x.dim(-1);
  const float* in = x.data<float>();
  float* out = k.out(0).data<float>();
  parallel_for(0, rows_of(x), row_grain(c), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> sq(static_cast<std::size_t>(c)), prefix(static_cast<std::size_t>(c + 1)), win(static_cast<std::size_t>(c));
    for (std::int64_t row = lo; row < hi; ++row) {
      const float* xr = in + row * c;
      for (std::int64_t i = 0; i < c; ++i) sq[static_cast<std::size_t>(i)] = xr[i] * xr[i];
      window_sums(sq.data(), c, p.radius, prefix.data(), win.data());
      for (std::int64_t j = 0; j < c; ++j)
        out[row * c + j] = xr[j] * std::pow(p.bias + p.alpha * win[static_cast<std::size_t>(j)], -p.beta);
    }
  });
}

void lrn_grad_kernel(const KernelContext& k) {
  const LrnParams p = params(k.attrs);
  const Tensor& x = k.in(0);
  const std::int64_t c = x.dim(-1);
  const float* in = x.data<float>();
  const float* dy = k.in(1).data<float>();
  float* dx = k.out(0).data<float>();
  parallel_for(0, rows_of(x), row_grain(c), [&](std::int64_t lo, std::int64_t hi) {
    const auto n = static_cast<std::size_t>(c);
    std::vector<float> sq(n), prefix(n + 1), win(n), scale(n), q(n), qwin(n);
    for (std::int64_t row = lo; row < hi; ++row) {
      const float* xr = in + row * c;
      const float* gr = dy + row * c;
      for (std::size_t i = 0; i < n; ++i) sq[i] = xr[i] * xr[i];
      window_sums(sq.data(), c, p.radius, prefix.data(), win.data());
      for (std::size_t i = 0; i < n; ++i) {
        const float s = p.bias + p.alpha * win[i];
        scale[i] = std::pow(s, -p.beta);
        q[i] = gr[i] * xr[i] * scale[i] / s;
      }
      window_sums(q.data(), c, p.radius, prefix.data(), qwin.data());
      for (std::size_t j = 0; j < n; ++j) dx[row * c + static_cast<std::int64_t>(j)] = gr[j] * scale[j] - 2.0f * p.alpha * p.beta * xr[j] * qwin[j];
    }
  });
}

// s_j = bias + alpha * (sum of x_i^2 over the window of j), in double.
double window_scale(const float* xr, std::int64_t c, std::int64_t j, const LrnParams& p) {
  double s = 0.0;
  for (std::int64_t i = std::max<std::int64_t>(j - p.radius, 0); i <= std::min(j + p.radius, c - 1); ++i)
    s += static_cast<double>(xr[i]) * xr[i];
  return p.bias + static_cast<double>(p.alpha) * s;
}

void lrn_reference(const KernelContext& k) {
  const LrnParams p = params(k.attrs);
  const Tensor& x = k.in(0);
  const std::int64_t c = x.dim(-1);
  for (std::int64_t row = 0; row < rows_of(x); ++row) {
    const float* xr = x.data<float>() + row * c;
    for (std::int64_t j = 0; j < c; ++j)
      k.out(0).data<float>()[row * c + j] = static_cast<float>(xr[j] * std::pow(window_scale(xr, c, j, p), -static_cast<double>(p.beta)));
  }
}

void lrn_grad_reference(const KernelContext& k) {
  const LrnParams p = params(k.attrs);
  const Tensor& x = k.in(0);
  const std::int64_t c = x.dim(-1);
  const double b = p.beta;
  for (std::int64_t row = 0; row < rows_of(x); ++row) {
    const float* xr = x.data<float>() + row * c;
    const float* gr = k.in(1).data<float>() + row * c;
    for (std::int64_t j = 0; j < c; ++j) {
      double v = gr[j] * std::pow(window_scale(xr, c, j, p), -b);
      for (std::int64_t i = std::max<std::int64_t>(j - p.radius, 0); i <= std::min(j + p.radius, c - 1); ++i)
        v -= 2.0 * p.alpha * b * xr[j] * gr[i] * xr[i] * std::pow(window_scale(xr, c, i, p), -b - 1.0);
      k.out(0).data<float>()[row * c + j] = static_cast<float>(v);
    }
  }
}

std::vector<TensorMeta> lrn_shape(const std::vector<TensorMeta>& in, const Attrs& a) {
  require_float(in[0].dtype, "input");
  SYN_CHECK(!in[0].shape.empty(), "expected a tensor with a channel axis (e.g. [N, H, W, C]), got a scalar");
  SYN_CHECK(a.i("depth_radius") >= 0, "depth_radius must be >= 0, got {}", a.i("depth_radius"));
  for (std::size_t i = 1; i < in.size(); ++i)
    SYN_CHECK(in[i].shape == in[0].shape, "gradient {} does not match the input {}", to_string(in[i].shape),
              to_string(in[0].shape));
  return one_output(in[0].shape, DType::Float32);
}

}  // namespace

void register_lrn_ops() {
  define_op("lrn")
      .inputs(1)
      .shape(lrn_shape)
      .kernel(Device::CPU, lrn_kernel)
      .reference(lrn_reference)
      .grad([](const GradCtx& g) {
        static const OpDef& grad_op = op_def("lrn_grad");
        return grads(apply1(grad_op, {g.x(0), g.dy()}, g.attrs));
      });
  // (x, dy) -> dx. Not differentiable itself: a second derivative through lrn is not supported.
  define_op("lrn_grad").inputs(2).shape(lrn_shape).kernel(Device::CPU, lrn_grad_kernel).reference(lrn_grad_reference);
}

}  // namespace ops

Tensor lrn(const Tensor& x, std::int64_t depth_radius, float bias, float alpha, float beta) {
  static const OpDef& op = op_def("lrn");
  return apply1(op, {x}, Attrs().set("depth_radius", depth_radius).set("bias", bias).set("alpha", alpha).set("beta", beta));
}

}  // namespace synapse
