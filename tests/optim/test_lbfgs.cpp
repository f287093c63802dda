// optim::LBFGS: convergence on Rosenbrock and on quadratics, agreement with minimize_lbfgs (the
// tabular solvers' L-BFGS) on a logistic regression, state round trip, and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "synapse/ops.h"
#include "synapse/optim.h"
#include "synapse/random.h"
#include "synapse/solvers.h"

using namespace synapse;
using namespace synapse::optim;

namespace {

// Rosenbrock (a - x)^2 + b (y - x^2)^2 with a = 1, b = 100, written with ops so autograd gives the gradient.
Tensor rosenbrock(const Tensor& p) {
  const Tensor x = slice(p, {0}, {1}), y = slice(p, {1}, {1});
  return sum(square(1.0f - x) + square(y - square(x)) * 100.0f);
}

double run_rosenbrock(LineSearch ls, int steps, LBFGS** out = nullptr) {
  Tensor p = from_vector(std::vector<float>{-1.5f, 2.0f}, {2});
  p.requires_grad_();
  static std::unique_ptr<LBFGS> keep;
  keep = std::make_unique<LBFGS>(NamedTensors{{"p", p}}, LBFGSOptions{.max_iterations = steps, .max_evaluations = 4 * steps,
                                                                         .tolerance_grad = 1e-6, .line_search = ls});
  LBFGS& opt = *keep;
  const double loss = opt.step([&] {
    opt.zero_grad();
    Tensor l = rosenbrock(p);
    l.backward();
    return l;
  });
  if (out) *out = &opt;
  const std::vector<float> v = p.to_vector<float>();
  EXPECT_NEAR(v[0], 1.0f, 2e-3);
  EXPECT_NEAR(v[1], 1.0f, 4e-3);
  return loss;
}

}  // namespace

TEST(LBFGS, RosenbrockConvergesToOneOneWithStrongWolfe) {
  LBFGS* opt = nullptr;
  const double loss = run_rosenbrock(LineSearch::StrongWolfe, 100, &opt);
  EXPECT_LT(loss, 1e-6);
  // From (-1.5, 2) along the curved valley: within 60 iterations.
  EXPECT_LE(opt->iterations(), 60);
  // In float32 the loss stops changing (below tolerance_change) about when the gradient test passes.
  EXPECT_NE(opt->stop_reason(), "max_iterations");
}

TEST(LBFGS, RosenbrockConvergesToOneOneWithBacktracking) {
  LBFGS* opt = nullptr;
  EXPECT_LT(run_rosenbrock(LineSearch::Backtracking, 200, &opt), 1e-6);
  EXPECT_LE(opt->iterations(), 120);
}

TEST(LBFGS, QuadraticConvergesInAtMostDimIterations) {
  // f(x) = 1/2 x^T A x - b^T x, A = Q^T Q + I (SPD, condition ~30), dim 8. With a near-exact line search
  // (strong Wolfe, c2 = 1e-3: the cubic zoom is exact on a quadratic) and a history >= dim, L-BFGS is
  // BFGS, which ends on a quadratic within dim iterations.
  const std::int64_t n = 8;
  Generator gen(7);
  const Tensor q = random_normal({n, n}, 0, 1, &gen);
  std::vector<float> id(static_cast<std::size_t>(n * n), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) id[static_cast<std::size_t>(i * n + i)] = 1.0f;
  const Tensor a = matmul(transpose(q), q) + from_vector(id, {n, n});
  const Tensor b = random_normal({n, 1}, 0, 1, &gen);
  Tensor x = zeros({n, 1});
  x.requires_grad_();
  LBFGS opt({{"x", x}}, {.max_iterations = 50, .max_evaluations = 200, .tolerance_grad = 1e-4, .c2 = 1e-3});
  opt.step([&] {
    opt.zero_grad();
    Tensor l = sum(matmul(transpose(x), matmul(a, x))) * 0.5f - sum(b * x);
    l.backward();
    return l;
  });
  EXPECT_EQ(opt.stop_reason(), "tolerance_grad");
  EXPECT_LE(opt.iterations(), n);
  // The solution of A x = b: the residual is small.
  const std::vector<float> r = (matmul(a, x.detach()) - b).to_vector<float>();
  for (float v : r) EXPECT_NEAR(v, 0.0f, 1e-3f);
}

TEST(LBFGS, AgreesWithTheSolversLbfgsOnLogisticRegression) {
  // Binary logistic regression with an L2 penalty on W, 60 rows x 3 features: optim::LBFGS on the
  // eager loss against logistic_regression (minimize_lbfgs in double). Same objective, same optimum.
  const std::int64_t rows = 60, f = 3;
  Generator gen(11);
  const Tensor xs = random_normal({rows, f}, 0, 1, &gen);
  const std::vector<float> xv = xs.to_vector<float>();
  std::vector<std::int64_t> labels(rows);
  std::vector<float> yf(rows);
  for (std::int64_t i = 0; i < rows; ++i) {
    const float z = 1.5f * xv[i * f] - 2.0f * xv[i * f + 1] + 0.5f + (i % 7 == 0 ? 2.0f : 0.0f);
    labels[i] = z > 0 ? 1 : 0;
    yf[i] = static_cast<float>(labels[i]);
  }
  const LinearFit ref = logistic_regression(xs, from_vector(labels, {rows}), 2);
  Tensor w = zeros({f, 1}), b = zeros({1});
  w.requires_grad_();
  b.requires_grad_();
  const Tensor y = from_vector(yf, {rows, 1});
  LBFGS opt({{"w", w}, {"b", b}}, {.max_iterations = 200, .max_evaluations = 400, .tolerance_grad = 1e-5});
  opt.step([&] {
    opt.zero_grad();
    Tensor l = sum(sigmoid_cross_entropy(matmul(xs, w) + b, y)) + sum(square(w)) * 0.5f;
    l.backward();
    return l;
  });
  const std::vector<float> wv = w.to_vector<float>();
  // The parameters are float32 here (double there): agreement to ~1e-4 relative.
  for (std::int64_t j = 0; j < f; ++j) EXPECT_NEAR(wv[j], ref.weight[j * 2 + 1], 1e-3) << "w" << j;
  EXPECT_NEAR(b.item<float>(), ref.bias[1], 1e-3);
}

TEST(LBFGS, StateRoundTripsAndResumesTheSamePath) {
  // Two steps of 5 iterations, against 5 + (save, load into a fresh optimizer) + 5: same parameters.
  auto make = [] {
    Tensor p = from_vector(std::vector<float>{-1.2f, 1.0f}, {2});
    p.requires_grad_();
    return p;
  };
  auto closure = [](LBFGS& opt, const Tensor& p) {
    return [&opt, p] {
      opt.zero_grad();
      Tensor l = rosenbrock(p);
      l.backward();
      return l;
    };
  };
  const LBFGSOptions o{.max_iterations = 5, .max_evaluations = 50};
  Tensor p1 = make();
  LBFGS a({{"p", p1}}, o);
  a.step(closure(a, p1));
  a.step(closure(a, p1));
  Tensor p2 = make();
  LBFGS b({{"p", p2}}, o);
  b.step(closure(b, p2));
  const auto state = b.state_dict();
  EXPECT_EQ(state.at("s").shape(), (Shape{5, 2}));
  EXPECT_EQ(state.at("iterations").item<std::int64_t>(), 5);
  LBFGS c({{"p", p2}}, o);
  c.load_state_dict(state);
  c.step(closure(c, p2));
  EXPECT_EQ(p1.to_vector<float>(), p2.to_vector<float>());
  EXPECT_EQ(c.iterations(), a.iterations());
}

TEST(LBFGS, ErrorsNameTheProblem) {
  Tensor p = zeros({2});
  p.requires_grad_();
  EXPECT_THROW(LBFGS({{"p", p}}, {.history_size = 0}), Error);
  EXPECT_THROW(LBFGS({{"p", p}, {"p", p}}), Error);
  LBFGS opt({{"p", p}});
  try {
    opt.step([] { return zeros({3}); });
    FAIL() << "no error for a non-scalar loss";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one-element"), std::string::npos) << e.what();
  }
  auto state = opt.state_dict();
  state["s"] = zeros({1, 3});
  state["y"] = zeros({1, 3});
  try {
    opt.load_state_dict(state);
    FAIL() << "no error for a wrong 's'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'s' is float32 [1,3], expected float32 [k, 2]"), std::string::npos) << e.what();
  }
}
