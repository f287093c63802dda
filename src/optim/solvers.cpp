// Exact linear fits in double: least squares by Cholesky, logistic / softmax regression by L-BFGS.
#include "synapse/solvers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "optim/lbfgs_core.h"
#include "synapse/ops.h"

namespace synapse::optim {

namespace {

// x [N, F] of any dtype -> doubles, row-major.
std::vector<double> to_doubles(const Tensor& x) {
  const std::vector<float> f = cast(x, DType::Float32).to_vector<float>();
  return {f.begin(), f.end()};
}

// Cholesky factor of the symmetric n x n matrix a in place (lower triangle); false if not positive definite.
bool cholesky(std::vector<double>& a, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    const double l = std::sqrt(d);
    a[j * n + j] = l;
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
  }
  return true;
}

// Solves L L^T z = b for one right-hand side with the factor from cholesky().
void cholesky_solve(const std::vector<double>& l, std::size_t n, std::vector<double>& b) {
  for (std::size_t i = 0; i < n; ++i) {
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) s -= l[i * n + k] * b[k];
    b[i] = s / l[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;) {
    double s = b[i];
    for (std::size_t k = i + 1; k < n; ++k) s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
}

}  // namespace

LinearFit least_squares(const Tensor& x, const Tensor& y, double ridge) {
  SYN_CHECK(x.ndim() == 2 && (y.ndim() == 1 || y.ndim() == 2) && y.dim(0) == x.dim(0) && x.dim(0) >= 1,
            "least_squares: expected x [N, F] and y [N] or [N, K] with the same N, found x {} and y {}",
            to_string(x.shape()), to_string(y.shape()));
  SYN_CHECK(ridge >= 0 && std::isfinite(ridge), "least_squares: ridge must be a finite number >= 0, found {}", ridge);
  const auto n = static_cast<std::size_t>(x.dim(0)), f = static_cast<std::size_t>(x.dim(1));
  const std::size_t k = y.ndim() == 1 ? 1 : static_cast<std::size_t>(y.dim(1));
  const std::vector<double> xs = to_doubles(x), ys = to_doubles(y);
  // Centre both (the intercept) and scale X's columns to unit deviation (the conditioning).
  std::vector<double> xm(f), ym(k), sd(f, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < f; ++j) xm[j] += xs[i * f + j];
    for (std::size_t c = 0; c < k; ++c) ym[c] += ys[i * k + c];
  }
  for (auto& v : xm) v /= static_cast<double>(n);
  for (auto& v : ym) v /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < f; ++j) sd[j] += (xs[i * f + j] - xm[j]) * (xs[i * f + j] - xm[j]);
  for (auto& v : sd) v = v > 0 ? std::sqrt(v / static_cast<double>(n)) : 1.0;
  std::vector<double> z(n * f);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < f; ++j) z[i * f + j] = (xs[i * f + j] - xm[j]) / sd[j];
  // A = Z^T Z, B = Z^T (Y - ym).
  std::vector<double> a(f * f, 0.0), b(f * k, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double* zi = z.data() + i * f;
    for (std::size_t p = 0; p < f; ++p) {
      for (std::size_t q = 0; q <= p; ++q) a[p * f + q] += zi[p] * zi[q];
      for (std::size_t c = 0; c < k; ++c) b[p * k + c] += zi[p] * (ys[i * k + c] - ym[c]);
    }
  }
  for (std::size_t p = 0; p < f; ++p)
    for (std::size_t q = 0; q < p; ++q) a[q * f + p] = a[p * f + q];
  double diag = 0;
  for (std::size_t p = 0; p < f; ++p) diag += a[p * f + p];
  diag = f ? std::max(diag / static_cast<double>(f), 1.0) : 1.0;
  std::vector<double> l;
  for (double lambda = ridge * diag;; lambda = std::max(lambda * 10, 1e-12 * diag)) {
    SYN_CHECK(lambda <= diag, "least_squares: X^T X [{} x {}] is not positive definite even with a ridge of {:g}", f, f,
              lambda);
    l = a;
    for (std::size_t p = 0; p < f; ++p) l[p * f + p] += lambda;
    if (cholesky(l, f)) break;
  }
  LinearFit r;
  r.features = static_cast<std::int64_t>(f);
  r.outputs = static_cast<std::int64_t>(k);
  r.weight.assign(f * k, 0.0);
  r.bias = ym;
  std::vector<double> col(f);
  for (std::size_t c = 0; c < k; ++c) {
    for (std::size_t p = 0; p < f; ++p) col[p] = b[p * k + c];
    cholesky_solve(l, f, col);
    for (std::size_t p = 0; p < f; ++p) {
      r.weight[p * k + c] = col[p] / sd[p];
      r.bias[c] -= xm[p] * r.weight[p * k + c];
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) {
      double e = ys[i * k + c] - r.bias[c];
      for (std::size_t p = 0; p < f; ++p) e -= xs[i * f + p] * r.weight[p * k + c];
      r.objective += e * e;
    }
  return r;
}

LbfgsResult minimize_lbfgs(const Objective& f, std::vector<double> x0, const LbfgsOptions& o) {
  SYN_CHECK(o.history >= 1 && o.max_iterations >= 0, "minimize_lbfgs: history {} must be >= 1 and max_iterations {} >= 0",
            o.history, o.max_iterations);
  LbfgsResult r;
  r.x = std::move(x0);
  std::vector<double> g(r.x.size());
  r.value = f(r.x, g);
  SYN_CHECK(std::isfinite(r.value), "minimize_lbfgs: the objective is {} at the starting point", r.value);
  detail::LbfgsState<double> st(o.history);
  const detail::LineSearchSpec ls;  // backtracking from the full step, Armijo c1 = 1e-4, 60 halvings
  int stalled = 0;
  for (; r.iterations < o.max_iterations; ++r.iterations) {
    r.gradient_max = detail::max_abs(g);
    if (r.gradient_max <= o.gradient_tolerance) break;
    const detail::IterationResult it = detail::lbfgs_iteration<double>(st, f, r.x, r.value, g, ls);
    if (!it.moved) break;  // no decrease representable in double: as close as it gets
    // Stop when the objective no longer changes in double (ten times in a row).
    stalled = it.decrease <= 4 * std::numeric_limits<double>::epsilon() * std::fabs(r.value) ? stalled + 1 : 0;
    if (stalled >= 10) break;
  }
  r.gradient_max = detail::max_abs(g);
  r.converged = r.gradient_max <= o.gradient_tolerance;
  return r;
}

LinearFit logistic_regression(const Tensor& x, const Tensor& labels, std::int64_t classes, const LogisticOptions& o) {
  SYN_CHECK(x.ndim() == 2 && labels.ndim() == 1 && labels.dim(0) == x.dim(0) && x.dim(0) >= 1,
            "logistic_regression: expected x [N, F] and labels [N] with the same N, found x {} and labels {}",
            to_string(x.shape()), to_string(labels.shape()));
  SYN_CHECK(classes >= 2, "logistic_regression: expected at least 2 classes, found {}", classes);
  SYN_CHECK(o.l2 >= 0 && std::isfinite(o.l2), "logistic_regression: l2 must be a finite number >= 0, found {}", o.l2);
  const auto n = static_cast<std::size_t>(x.dim(0)), f = static_cast<std::size_t>(x.dim(1));
  const std::vector<double> xs = to_doubles(x);
  const std::vector<std::int64_t> y = cast(labels, DType::Int64).to_vector<std::int64_t>();
  for (std::size_t i = 0; i < n; ++i)
    SYN_CHECK(y[i] >= 0 && y[i] < classes, "logistic_regression: label {} of row {} is outside 0..{}", y[i], i,
              classes - 1);
  const bool binary = classes == 2;
  const std::size_t k = binary ? 1 : static_cast<std::size_t>(classes);  // columns fitted
  // Parameters: W [f, k] row-major, then b [k].
  const Objective objective = [&](const std::vector<double>& p, std::vector<double>& g) {
    std::fill(g.begin(), g.end(), 0.0);
    const double* w = p.data();
    const double* b = p.data() + f * k;
    double* gw = g.data();
    double* gb = g.data() + f * k;
    double loss = 0;
    std::vector<double> z(k);
    for (std::size_t i = 0; i < n; ++i) {
      const double* xi = xs.data() + i * f;
      for (std::size_t c = 0; c < k; ++c) z[c] = b[c];
      for (std::size_t j = 0; j < f; ++j)
        for (std::size_t c = 0; c < k; ++c) z[c] += xi[j] * w[j * k + c];
      const auto yi = static_cast<std::size_t>(y[i]);
      if (binary) {
        // -log sigmoid(+-z) = softplus(-+z), in a form that never overflows.
        const double t = yi == 1 ? -z[0] : z[0];
        loss += t > 0 ? t + std::log1p(std::exp(-t)) : std::log1p(std::exp(t));
        z[0] = 1 / (1 + std::exp(-z[0])) - static_cast<double>(yi);  // d loss / d z
      } else {
        const double top = *std::max_element(z.begin(), z.end());
        double sum = 0;
        for (auto& v : z) sum += (v = std::exp(v - top));
        loss += std::log(sum) - std::log(z[yi]);
        for (auto& v : z) v /= sum;
        z[yi] -= 1;
      }
      for (std::size_t c = 0; c < k; ++c) gb[c] += z[c];
      for (std::size_t j = 0; j < f; ++j)
        for (std::size_t c = 0; c < k; ++c) gw[j * k + c] += xi[j] * z[c];
    }
    for (std::size_t j = 0; j < f * k; ++j) {
      loss += 0.5 * o.l2 * w[j] * w[j];
      gw[j] += o.l2 * w[j];
    }
    return loss;
  };
  LbfgsOptions lo;
  lo.max_iterations = o.max_iterations;
  lo.gradient_tolerance = o.tolerance * static_cast<double>(n);
  const LbfgsResult fit = minimize_lbfgs(objective, std::vector<double>((f + 1) * k, 0.0), lo);
  LinearFit r;
  r.features = static_cast<std::int64_t>(f);
  r.outputs = classes;
  r.iterations = fit.iterations;
  r.objective = fit.value;
  r.converged = fit.converged;
  const auto outs = static_cast<std::size_t>(classes);
  r.weight.assign(f * outs, 0.0);
  r.bias.assign(outs, 0.0);
  // Two classes: column 0 stays zero, so softmax([0, z]) = (1 - sigmoid(z), sigmoid(z)).
  const std::size_t first = binary ? 1 : 0;
  for (std::size_t c = 0; c < k; ++c) {
    for (std::size_t j = 0; j < f; ++j) r.weight[j * outs + first + c] = fit.x[j * k + c];
    r.bias[first + c] = fit.x[f * k + c];
  }
  return r;
}

}  // namespace synapse::optim
