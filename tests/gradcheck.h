// Finite-difference gradient checking — every differentiable op is tested with it — and small helpers
// shared by the tests.
//
//   EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, opts); }, {x, w});
//
// The function's output (any shape) is reduced to the scalar sum(out * R) with fixed random weights R,
// so every output element matters and symmetric errors cannot cancel. The analytic gradient from
// synapse::grad is compared with central differences (loss accumulated in double) element by element.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>

#include "synapse/synapse.h"

namespace synapse::testing {

struct GradCheckOptions {
  float eps = 1e-3f;
  double atol = 2e-3;
  double rtol = 2e-2;
  // Check at most this many elements per variable (evenly spread), to keep big convs fast.
  std::int64_t max_elements = 400;
};

inline double weighted_sum(const Tensor& out, const Tensor& r) {
  const float* o = out.data<float>();
  const float* w = r.data<float>();
  double acc = 0.0;
  for (std::int64_t i = 0; i < out.numel(); ++i) acc += static_cast<double>(o[i]) * static_cast<double>(w[i]);
  return acc;
}

inline ::testing::AssertionResult grad_matches(const std::function<Tensor()>& f, std::vector<Tensor> vars,
                                               const GradCheckOptions& opt = {}) {
  for (auto& v : vars)
    if (!v.requires_grad()) v.requires_grad_();
  Tensor out = f();
  if (out.dtype() != DType::Float32) return ::testing::AssertionFailure() << "output is not float32";
  Generator gen(1234);
  const Tensor r = random_normal(out.shape(), 0.0f, 1.0f, &gen);
  const Tensor loss = sum(out * r);
  const std::vector<Tensor> analytic = grad(loss, vars, {.allow_unused = true});

  std::ostringstream bad;
  int failures = 0;
  for (std::size_t vi = 0; vi < vars.size(); ++vi) {
    Tensor& v = vars[vi];
    float* p = v.data<float>();
    const float* a = analytic[vi].data<float>();
    const std::int64_t n = v.numel();
    const std::int64_t step = std::max<std::int64_t>(1, n / opt.max_elements);
    for (std::int64_t i = 0; i < n; i += step) {
      const float orig = p[i];
      double lp, lm;
      {
        NoGradGuard ng;
        p[i] = orig + opt.eps;
        lp = weighted_sum(f(), r);
        p[i] = orig - opt.eps;
        lm = weighted_sum(f(), r);
        p[i] = orig;
      }
      const double numeric = (lp - lm) / (2.0 * static_cast<double>(opt.eps));
      const double diff = std::fabs(numeric - static_cast<double>(a[i]));
      if (!(diff <= opt.atol + opt.rtol * std::fabs(numeric))) {
        if (failures < 8)
          bad << "\n  input " << vi << " shape " << to_string(v.shape()) << " element " << i << ": analytic " << a[i]
              << ", numeric " << numeric;
        ++failures;
      }
    }
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << failures << " gradient element(s) differ:" << bad.str();
}

// Largest absolute difference between two float tensors of one shape (for fast-vs-reference checks).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double m = 0.0;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(pa[i]) - pb[i]));
  return m;
}

// An int64 vector [n] (sequence lengths, indices).
inline Tensor lens(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// The message of the synapse::Error that f throws, or "(no error)" — for exact error-message tests.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The fast kernel of `op` against its naive reference kernel on the same inputs: the largest difference.
inline double fast_vs_reference(const char* op, const std::vector<Tensor>& in, const Attrs& attrs = {}) {
  return max_abs_diff(apply1(op_def(op), in, attrs), apply_reference(op_def(op), in, attrs)[0]);
}

}  // namespace synapse::testing

#define EXPECT_GRAD_MATCHES(fn, ...) EXPECT_TRUE(::synapse::testing::grad_matches(fn, __VA_ARGS__))
