// Local response normalisation over the last (channel) axis, TensorFlow's tf.nn.lrn:
//   sqr_sum[..., d] = sum(x[..., d - r : d + r + 1] ** 2)      (the window clipped to the channels)
//   y = x / (bias + alpha * sqr_sum) ** beta
// and its gradient, with s_i = bias + alpha * sqr_sum_i:
//   dx_j = dy_j s_j^-beta - 2 alpha beta x_j sum_{|i - j| <= r} dy_i x_i s_i^(-beta - 1)
// The fast kernels sum each row's windows from a zero-padded copy (2r + 1 vectorised passes over the C
// channels) and take s^-beta in closed form for beta 0.75, 0.5 and 1; the references sum each window
// again, in double, and call pow.
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

// One row's scratch: `padded` holds the row's values with r zeros on each side, so that every window
// is 2r + 1 contiguous elements and the sums over a row vectorise along the channels (a prefix sum
// would be a chain of C dependent additions).
struct RowScratch {
  RowScratch(std::int64_t c, std::int64_t r)
      : padded(static_cast<std::size_t>(c + 2 * r), 0.0f), win(static_cast<std::size_t>(c)) {}
  std::vector<float> padded, win;
  float* middle(std::int64_t r) { return padded.data() + r; }
};

// win[j] = sum of the values at |i - j| <= r (the middle of `padded`).
void window_sums(std::int64_t c, std::int64_t r, const float* padded, float* win) {
  for (std::int64_t j = 0; j < c; ++j) win[j] = padded[j];
  for (std::int64_t d = 1; d <= 2 * r; ++d)
    for (std::int64_t j = 0; j < c; ++j) win[j] += padded[j + d];
}

// Calls f with s -> s^-beta: closed forms for the betas people use (0.75 in AlexNet and TensorFlow's
// CIFAR-10 model, 0.5, 1), which vectorise (sqrt and division), and std::pow otherwise. On the cifar-cnn's
// two LRN layers std::pow per element took 22% of the training step.
template <class F>
void with_neg_pow(float beta, F&& f) {
  if (beta == 0.75f) {
    f([](float s) {
      const float root = std::sqrt(s);
      return 1.0f / (root * std::sqrt(root));
    });
  } else if (beta == 0.5f) {
    f([](float s) { return 1.0f / std::sqrt(s); });
  } else if (beta == 1.0f) {
    f([](float s) { return 1.0f / s; });
  } else {
    f([beta](float s) { return std::pow(s, -beta); });
  }
}

void lrn_kernel(const KernelContext& k) {
  const LrnParams p = params(k.attrs);
  const Tensor& x = k.in(0);
  const std::int64_t c = x.dim(-1), r = std::min(p.radius, std::max<std::int64_t>(c - 1, 0));
  const float* in = x.data<float>();
  float* out = k.out(0).data<float>();
  with_neg_pow(p.beta, [&](auto neg_pow) {
    parallel_for(0, rows_of(x), row_grain(c), [&](std::int64_t lo, std::int64_t hi) {
      RowScratch w(c, r);
      float* sq = w.middle(r);
      for (std::int64_t row = lo; row < hi; ++row) {
        const float* xr = in + row * c;
        float* yr = out + row * c;
        for (std::int64_t i = 0; i < c; ++i) sq[i] = xr[i] * xr[i];
        window_sums(c, r, w.padded.data(), w.win.data());
        const float* win = w.win.data();
        for (std::int64_t j = 0; j < c; ++j) yr[j] = xr[j] * neg_pow(p.bias + p.alpha * win[j]);
      }
    });
  });
}

void lrn_grad_kernel(const KernelContext& k) {
  const LrnParams p = params(k.attrs);
  const Tensor& x = k.in(0);
  const std::int64_t c = x.dim(-1), r = std::min(p.radius, std::max<std::int64_t>(c - 1, 0));
  const float* in = x.data<float>();
  const float* dy = k.in(1).data<float>();
  float* dx = k.out(0).data<float>();
  const float two_alpha_beta = 2.0f * p.alpha * p.beta;
  with_neg_pow(p.beta, [&](auto neg_pow) {
    parallel_for(0, rows_of(x), row_grain(c), [&](std::int64_t lo, std::int64_t hi) {
      RowScratch w(c, r);
      std::vector<float> scale(static_cast<std::size_t>(c));
      float* padded = w.middle(r);  // x^2, then q
      float* win = w.win.data();
      float* sc = scale.data();
      for (std::int64_t row = lo; row < hi; ++row) {
        const float* xr = in + row * c;
        const float* gr = dy + row * c;
        float* dr = dx + row * c;
        for (std::int64_t i = 0; i < c; ++i) padded[i] = xr[i] * xr[i];
        window_sums(c, r, w.padded.data(), win);
        for (std::int64_t i = 0; i < c; ++i) {
          const float s = p.bias + p.alpha * win[i];
          sc[i] = neg_pow(s);                 // s^-beta
          padded[i] = gr[i] * xr[i] * sc[i] / s;  // q_i = dy_i x_i s_i^(-beta - 1)
        }
        window_sums(c, r, w.padded.data(), win);
        for (std::int64_t j = 0; j < c; ++j) dr[j] = gr[j] * sc[j] - two_alpha_beta * xr[j] * win[j];
      }
    });
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
