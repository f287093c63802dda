// Exact linear fits against closed-form answers and against scikit-learn's numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.h"
#include "synapse/solvers.h"

using namespace synapse;
using namespace synapse::optim;
using synapse::testing::error_of;

namespace {

Tensor matrix(const std::vector<float>& v, std::int64_t rows) {
  return from_vector(v, {rows, static_cast<std::int64_t>(v.size()) / rows});
}
Tensor labels(const std::vector<std::int64_t>& v) { return from_vector(v, {static_cast<std::int64_t>(v.size())}); }

}  // namespace

TEST(LeastSquares, SimpleRegressionIsCovarianceOverVariance) {
  // x = 1..4, y = 2, 3, 5, 4: slope = cov(x, y) / var(x) = 4 / 5, intercept = 3.5 - 0.8 * 2.5 = 1.5.
  const LinearFit f = least_squares(matrix({1, 2, 3, 4}, 4), from_vector(std::vector<float>{2, 3, 5, 4}, {4}));
  ASSERT_EQ(f.weight.size(), 1u);
  EXPECT_NEAR(f.weight[0], 0.8, 1e-9);
  EXPECT_NEAR(f.bias[0], 1.5, 1e-9);
  // Residuals 0.2 - 0.1... : (2 - 2.3)^2 + (3 - 3.1)^2 + (5 - 3.9)^2 + (4 - 4.7)^2 = 1.8.
  EXPECT_NEAR(f.objective, 1.8, 1e-9);
}

TEST(LeastSquares, RecoversAnExactLinearMapWithTwoOutputs) {
  // y0 = 2 x0 - 3 x1 + 0.5 x2 + 1, y1 = -x0 + 4 x2 - 2, on 12 rows of unevenly scaled features.
  std::vector<float> x, y;
  for (int i = 0; i < 12; ++i) {
    const float a = static_cast<float>(i % 5) - 2, b = static_cast<float>((i * 7) % 11) * 10, c = static_cast<float>(i * i % 13) * 0.01f;
    x.insert(x.end(), {a, b, c});
    y.insert(y.end(), {2 * a - 3 * b + 0.5f * c + 1, -a + 4 * c - 2});
  }
  const LinearFit f = least_squares(matrix(x, 12), matrix(y, 12));
  ASSERT_EQ(f.features, 3);
  ASSERT_EQ(f.outputs, 2);
  const std::vector<double> w{2, -1, -3, 0, 0.5, 4}, b{1, -2};
  for (std::size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(f.weight[i], w[i], 1e-4) << i;
  for (std::size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(f.bias[i], b[i], 1e-3) << i;
}

TEST(LeastSquares, DuplicatedColumnsShareTheWeight) {
  // The same column twice: X^T X is singular; the ridge splits the slope 0.8 evenly.
  const LinearFit f = least_squares(matrix({1, 1, 2, 2, 3, 3, 4, 4}, 4), from_vector(std::vector<float>{2, 3, 5, 4}, {4, 1}));
  EXPECT_NEAR(f.weight[0], 0.4, 1e-6);
  EXPECT_NEAR(f.weight[1], 0.4, 1e-6);
  EXPECT_NEAR(f.bias[0], 1.5, 1e-6);
  // A constant column gets no weight.
  const LinearFit c = least_squares(matrix({1, 7, 2, 7, 3, 7, 4, 7}, 4), from_vector(std::vector<float>{2, 3, 5, 4}, {4}));
  EXPECT_NEAR(c.weight[0], 0.8, 1e-9);
  EXPECT_NEAR(c.weight[1], 0.0, 1e-9);
}

TEST(LogisticRegression, InterceptOnlyIsTheLogOdds) {
  // A feature that is always 0: only the (unpenalised) bias learns, and softmax gives the class shares.
  const LinearFit f = logistic_regression(matrix({0, 0, 0, 0}, 4), labels({1, 1, 0, 1}), 2);
  EXPECT_TRUE(f.converged);
  EXPECT_NEAR(f.bias[1] - f.bias[0], std::log(3.0), 1e-7);
  EXPECT_EQ(f.weight[0], 0.0);
  const LinearFit m = logistic_regression(matrix({0, 0, 0, 0, 0, 0}, 6), labels({0, 1, 1, 2, 2, 2}), 3);
  EXPECT_NEAR(m.bias[1] - m.bias[0], std::log(2.0), 1e-7);
  EXPECT_NEAR(m.bias[2] - m.bias[0], std::log(3.0), 1e-7);
}

TEST(LogisticRegression, UnpenalisedIndicatorIsTheDifferenceOfLogOdds) {
  // x = 0 rows: 1 of 4 positive; x = 1 rows: 3 of 4 positive. Without a penalty the fit reproduces both
  // shares: b = logit(1/4) = -log 3, w = logit(3/4) - logit(1/4) = 2 log 3.
  LogisticOptions o;
  o.l2 = 0;
  const LinearFit f = logistic_regression(matrix({0, 0, 0, 0, 1, 1, 1, 1}, 8), labels({0, 0, 0, 1, 1, 1, 1, 0}), 2, o);
  EXPECT_TRUE(f.converged);
  EXPECT_NEAR(f.bias[1], -std::log(3.0), 1e-6);
  EXPECT_NEAR(f.weight[1], 2 * std::log(3.0), 1e-6);
}

// Reference numbers: scikit-learn 1.2.1, LogisticRegression(C=1.0, tol=1e-12, max_iter=100000) on these rows.
// Its L-BFGS stops a few 1e-6 short of the optimum (scipy's BFGS with gtol 1e-12 gives w0 = 0.92083149 for
// the binary fit, as here), hence the tolerance 1e-5; the stationarity test below is exact.
const std::vector<float> kRows{0.5f, 1.0f, 1.5f, -0.5f, -1.0f, 2.0f, 2.0f, 0.0f, -0.5f, -1.5f, 1.0f, 1.0f, 0.0f, 0.5f, -2.0f, -1.0f, 0.3f, -0.2f};

TEST(LogisticRegression, BinaryMatchesScikitLearnWithCEqualsOne) {
  const LinearFit f = logistic_regression(matrix(kRows, 9), labels({1, 1, 0, 1, 0, 0, 1, 0, 1}), 2);
  EXPECT_TRUE(f.converged);
  EXPECT_EQ(f.weight[0], 0.0);  // kernel column 0 stays zero
  EXPECT_NEAR(f.weight[1], 0.9208275058121803, 1e-5);
  EXPECT_NEAR(f.weight[3], -0.04875435925140867, 1e-5);
  EXPECT_NEAR(f.bias[1], 0.08455009379169874, 1e-5);
  // The optimum's conditions: sum_i (p_i - y_i) x_i + w = 0 and sum_i (p_i - y_i) = 0.
  const std::vector<int> y{1, 1, 0, 1, 0, 0, 1, 0, 1};
  double g0 = f.weight[1], g1 = f.weight[3], gb = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double x0 = kRows[2 * i], x1 = kRows[2 * i + 1];
    const double p = 1 / (1 + std::exp(-(f.weight[1] * x0 + f.weight[3] * x1 + f.bias[1])));
    g0 += (p - y[i]) * x0;
    g1 += (p - y[i]) * x1;
    gb += p - y[i];
  }
  EXPECT_NEAR(g0, 0, 1e-8);
  EXPECT_NEAR(g1, 0, 1e-8);
  EXPECT_NEAR(gb, 0, 1e-8);
}

TEST(LogisticRegression, MultinomialMatchesScikitLearnWithCEqualsOne) {
  const LinearFit f = logistic_regression(matrix(kRows, 9), labels({0, 1, 2, 1, 0, 2, 2, 0, 1}), 3);
  EXPECT_TRUE(f.converged);
  const std::vector<double> w{-0.5616326805122651, 0.7788861299539347,  -0.21725344944166983,
                              -0.3412444987263073, -0.48987666502220417, 0.8311211637485115};
  const std::vector<double> b{0.25891859389231187, -0.19600317536675688, -0.0629154185255548};
  for (std::size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(f.weight[i], w[i], 1e-5) << i;
  for (std::size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(f.bias[i], b[i], 1e-5) << i;
}

TEST(LogisticRegression, RefusesBadLabelsAndShapes) {
  EXPECT_EQ(error_of([] { logistic_regression(matrix({0, 1}, 2), labels({0, 2}), 2); }),
            "logistic_regression: label 2 of row 1 is outside 0..1");
  EXPECT_EQ(error_of([] { logistic_regression(matrix({0, 1}, 2), labels({0}), 2); }),
            "logistic_regression: expected x [N, F] and labels [N] with the same N, found x [2,1] and labels [1]");
  EXPECT_EQ(error_of([] { least_squares(matrix({0, 1}, 2), labels({0, 1, 1})); }),
            "least_squares: expected x [N, F] and y [N] or [N, K] with the same N, found x [2,1] and y [3]");
}

TEST(Lbfgs, FindsTheMinimumOfRosenbrock) {
  // f = (1 - a)^2 + 100 (b - a^2)^2, minimum 0 at (1, 1), from the classic start (-1.2, 1).
  const Objective f = [](const std::vector<double>& x, std::vector<double>& g) {
    const double a = x[0], b = x[1];
    g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
    g[1] = 200 * (b - a * a);
    return (1 - a) * (1 - a) + 100 * (b - a * a) * (b - a * a);
  };
  const LbfgsResult r = minimize_lbfgs(f, {-1.2, 1.0});
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(r.x[0], 1.0, 1e-6);
  EXPECT_NEAR(r.x[1], 1.0, 1e-6);
  EXPECT_LT(r.value, 1e-12);
}
