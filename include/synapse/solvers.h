// Exact fits of linear models, in double precision: least squares (Cholesky of the normal equations)
// and L2-regularised logistic / softmax regression (L-BFGS on the full batch, to convergence), on top of
// a small general L-BFGS minimiser. The weights come out as a Dense layer holds them (kernel [F, K],
// bias [K]), so a fitted model is an ordinary layer.
//
//   optim::LinearFit f = optim::least_squares(x, y);                  // x [N, F], y [N, K] float32
//   optim::LinearFit g = optim::logistic_regression(x, labels, 3);    // labels [N] int64 in 0..2
//   dense.kernel = from_vector(to_float(g.weight), {F, 3});           // softmax(x·W + b) = P(class)
//
// logistic_regression minimises  sum_i -log P(y_i | x_i) + l2/2 * ||W||^2  (the bias is not penalised):
// scikit-learn's LogisticRegression with C = 1/l2 (default l2 = 1, i.e. C = 1). Two classes are fitted as
// scikit-learn does, one logistic vector w (kernel column 0 is zero, column 1 is w), so the penalty is
// the same; three or more as a multinomial softmax with one column per class.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "synapse/tensor.h"

namespace synapse::optim {

struct LinearFit {
  std::int64_t features = 0, outputs = 0;
  std::vector<double> weight;  // [features, outputs], row-major (a Dense kernel)
  std::vector<double> bias;    // [outputs]
  int iterations = 0;          // L-BFGS iterations (0 for least squares)
  double objective = 0;        // the minimised objective (the sum of squares for least squares)
  bool converged = true;
};

// Ordinary least squares with an intercept: minimises ||Y - X W - 1 b^T||^2 (+ a ridge of
// `ridge` times the mean diagonal of the standardised X^T X, only to keep Cholesky well-conditioned;
// raised tenfold until the factorisation succeeds when X has dependent columns).
// x [N, F], y [N] or [N, K]; any float dtype.
LinearFit least_squares(const Tensor& x, const Tensor& y, double ridge = 1e-10);

struct LogisticOptions {
  double l2 = 1.0;              // the penalty l2/2 * ||W||^2 on the summed loss (scikit-learn: 1/C)
  int max_iterations = 2000;
  double tolerance = 1e-9;      // stop when max |gradient| <= tolerance * N
};
// x [N, F] float, labels [N] int64 in [0, classes).
LinearFit logistic_regression(const Tensor& x, const Tensor& labels, std::int64_t classes,
                              const LogisticOptions& o = {});

// ---- L-BFGS ----
// f(x, grad) returns the objective at x and writes its gradient into grad (same size as x).
using Objective = std::function<double(const std::vector<double>& x, std::vector<double>& grad)>;
struct LbfgsOptions {
  int max_iterations = 2000;
  int history = 10;                // correction pairs kept
  double gradient_tolerance = 1e-9;  // stop when max |grad| <= this
};
struct LbfgsResult {
  std::vector<double> x;
  double value = 0;
  double gradient_max = 0;  // max |grad| at x
  int iterations = 0;
  bool converged = false;   // the gradient test passed (else: out of iterations, or no more progress)
};
// Minimises f from x0 (two-loop recursion, backtracking Armijo line search). For smooth convex f.
LbfgsResult minimize_lbfgs(const Objective& f, std::vector<double> x0, const LbfgsOptions& o = {});

}  // namespace synapse::optim
