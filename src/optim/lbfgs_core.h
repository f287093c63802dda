// The L-BFGS iteration shared by optim::minimize_lbfgs (double vectors, the tabular solvers) and
// optim::LBFGS (the float parameters of a model): the two-loop recursion over the last m correction
// pairs, and two line searches — backtracking (Armijo, halving from the full step) and strong Wolfe
// (bracketing and zoom with cubic interpolation, Nocedal & Wright algorithms 3.5/3.6 as minFunc and
// PyTorch write them). Vectors hold T (float or double); every dot product is accumulated in double.
#pragma once
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

namespace synapse::optim::detail {

template <class T>
double dot(const std::vector<T>& a, const std::vector<T>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

template <class T>
double max_abs(const std::vector<T>& a) {
  double m = 0;
  for (T v : a) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

// f(x, grad): the objective at x, its gradient written into grad (same size).
template <class T>
using Fn = std::function<double(const std::vector<T>& x, std::vector<T>& grad)>;

struct LineSearchSpec {
  bool strong_wolfe = false;
  double initial_step = 1.0;  // the first trial step (times the direction)
  double c1 = 1e-4, c2 = 0.9;
  int max_evaluations = 60;          // function evaluations in one search
  double tolerance_change = 1e-9;    // strong Wolfe: stop zooming when the bracket is this narrow (times max|d|)
  double min_curvature = 1e-300;     // a pair (s, y) with s·y below this is not kept
};

// The correction pairs and the work vectors of one minimisation.
template <class T>
struct LbfgsState {
  explicit LbfgsState(int m) : history(m) {}
  int history;
  std::deque<std::vector<T>> s, y;
  std::deque<double> rho;
  std::vector<T> d, x_new, g_new;
  std::vector<double> alpha;

  void clear() { s.clear(), y.clear(), rho.clear(); }
  void push(std::vector<T> sv, std::vector<T> yv, double min_curvature) {
    const double sy = dot(sv, yv);
    if (!(sy > min_curvature)) return;
    s.push_back(std::move(sv));
    y.push_back(std::move(yv));
    rho.push_back(1 / sy);
    if (static_cast<int>(s.size()) > history) s.pop_front(), y.pop_front(), rho.pop_front();
  }

  // d = -H g by the two-loop recursion; H0 = (s·y / y·y) I from the newest pair, or 1/max(1, ||g||) I
  // without pairs (a first move of unit length). Returns the slope g·d (restarting from steepest
  // descent, with the history dropped, when d is not a descent direction).
  double direction(const std::vector<T>& g) {
    const std::size_t n = g.size();
    d = g;
    alpha.resize(s.size());
    for (std::size_t i = s.size(); i-- > 0;) {
      alpha[i] = rho[i] * dot(s[i], d);
      for (std::size_t j = 0; j < n; ++j) d[j] -= static_cast<T>(alpha[i] * static_cast<double>(y[i][j]));
    }
    double gamma = 1.0 / std::max(1.0, std::sqrt(dot(g, g)));
    if (!s.empty()) gamma = dot(s.back(), y.back()) / dot(y.back(), y.back());
    for (auto& v : d) v = static_cast<T>(static_cast<double>(v) * gamma);
    for (std::size_t i = 0; i < s.size(); ++i) {
      const double beta = rho[i] * dot(y[i], d);
      for (std::size_t j = 0; j < n; ++j) d[j] += static_cast<T>(static_cast<double>(s[i][j]) * (alpha[i] - beta));
    }
    for (auto& v : d) v = -v;
    double slope = dot(g, d);
    if (!(slope < 0)) {
      clear();
      for (std::size_t j = 0; j < n; ++j) d[j] = static_cast<T>(-static_cast<double>(g[j]) * gamma);
      slope = dot(g, d);
    }
    return slope;
  }
};

// Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [lo, hi].
inline double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= 0 && std::isfinite(d2_square)) {
    const double d2 = std::sqrt(d2_square);
    const double m = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                              : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    if (std::isfinite(m)) return std::min(std::max(m, lo), hi);
  }
  return (lo + hi) / 2;
}

// Result of a line search along st.d from x: the accepted point is in st.x_new / st.g_new.
struct SearchResult {
  bool found = false;
  double step = 0, value = 0;
  int evaluations = 0;
};

template <class T>
SearchResult line_search(LbfgsState<T>& st, const Fn<T>& f, const std::vector<T>& x, double fx,
                         const std::vector<T>& g, double slope, const LineSearchSpec& ls) {
  const std::size_t n = x.size();
  SearchResult r;
  auto eval = [&](double t, double& gtd) {
    for (std::size_t j = 0; j < n; ++j) st.x_new[j] = static_cast<T>(static_cast<double>(x[j]) + t * static_cast<double>(st.d[j]));
    ++r.evaluations;
    const double v = f(st.x_new, st.g_new);
    gtd = dot(st.g_new, st.d);
    return v;
  };
  st.x_new.resize(n);
  st.g_new.resize(n);
  double gtd = 0;
  if (!ls.strong_wolfe) {
    double t = ls.initial_step;
    for (; r.evaluations < ls.max_evaluations; t *= 0.5) {
      const double v = eval(t, gtd);
      if (std::isfinite(v) && v <= fx + ls.c1 * t * slope) return {true, t, v, r.evaluations};
    }
    return r;
  }
  // Strong Wolfe: find a bracket [lo, hi] containing acceptable steps, then zoom into it. The
  // gradients at the bracket ends are kept so the accepted point needs no second evaluation.
  struct Point {
    double t, f, gtd;
    std::vector<T> g;
  };
  const double d_norm = max_abs(st.d);
  double t = ls.initial_step;
  double f_new = eval(t, gtd);
  Point prev{0, fx, slope, g};
  Point b[2];
  bool done = false, bracketed = false;
  int iters = 0;
  while (iters < ls.max_evaluations) {
    if (!std::isfinite(f_new) || f_new > fx + ls.c1 * t * slope || (iters > 1 && f_new >= prev.f)) {
      b[0] = std::move(prev), b[1] = {t, f_new, gtd, st.g_new}, bracketed = true;
      break;
    }
    if (std::fabs(gtd) <= -ls.c2 * slope) {
      b[0] = {t, f_new, gtd, st.g_new}, done = true;
      break;
    }
    if (gtd >= 0) {
      b[0] = std::move(prev), b[1] = {t, f_new, gtd, st.g_new}, bracketed = true;
      break;
    }
    const double lo = t + 0.01 * (t - prev.t), hi = t * 10;
    const double next = cubic_interpolate(prev.t, prev.f, prev.gtd, t, f_new, gtd, lo, hi);
    prev = {t, f_new, gtd, st.g_new};
    t = next;
    f_new = eval(t, gtd);
    ++iters;
  }
  if (!done && !bracketed) b[0] = {0, fx, slope, g}, b[1] = {t, f_new, gtd, st.g_new};
  int low = 0;
  if (!done) {
    // A non-finite end is treated as a very large value: the zoom moves away from it.
    auto worse = [](double a, double c) { return !std::isfinite(a) || (std::isfinite(c) && a > c); };
    low = worse(b[0].f, b[1].f) ? 1 : 0;
    bool insufficient = false;
    while (iters < ls.max_evaluations) {
      const double lo = std::min(b[0].t, b[1].t), hi = std::max(b[0].t, b[1].t);
      if ((hi - lo) * d_norm < ls.tolerance_change) break;
      double tz = std::isfinite(b[0].f) && std::isfinite(b[1].f)
                      ? cubic_interpolate(b[0].t, b[0].f, b[0].gtd, b[1].t, b[1].f, b[1].gtd, lo, hi)
                      : (lo + hi) / 2;
      const double eps = 0.1 * (hi - lo);
      if (std::min(hi - tz, tz - lo) < eps) {
        if (insufficient || tz >= hi || tz <= lo) {
          tz = std::fabs(tz - hi) < std::fabs(tz - lo) ? hi - eps : lo + eps;
          insufficient = false;
        } else {
          insufficient = true;
        }
      } else {
        insufficient = false;
      }
      f_new = eval(tz, gtd);
      ++iters;
      const int high = 1 - low;
      if (!std::isfinite(f_new) || f_new > fx + ls.c1 * tz * slope || f_new >= b[low].f) {
        b[high] = {tz, f_new, gtd, st.g_new};
        low = worse(b[0].f, b[1].f) ? 1 : 0;
      } else {
        if (std::fabs(gtd) <= -ls.c2 * slope) done = true;
        else if (gtd * (b[high].t - b[low].t) >= 0) b[high] = b[low];
        b[low] = {tz, f_new, gtd, st.g_new};
        if (done) break;
      }
    }
  }
  const Point& best = b[low];
  if (!(best.t > 0) || !std::isfinite(best.f) || !(best.f < fx)) return r;  // no decrease found
  for (std::size_t j = 0; j < n; ++j)
    st.x_new[j] = static_cast<T>(static_cast<double>(x[j]) + best.t * static_cast<double>(st.d[j]));
  st.g_new = best.g;
  return {true, best.t, best.f, r.evaluations};
}

// One L-BFGS iteration from (x, fx, g): direction, line search, history update. On success x, fx and
// g hold the new point and the result says how far it moved; on failure (no decrease) nothing changes.
struct IterationResult {
  bool moved = false;
  double step_max = 0;  // max |x_new - x|
  double decrease = 0;  // fx_old - fx_new
  int evaluations = 0;
};

template <class T>
IterationResult lbfgs_iteration(LbfgsState<T>& st, const Fn<T>& f, std::vector<T>& x, double& fx, std::vector<T>& g,
                                const LineSearchSpec& ls) {
  const double slope = st.direction(g);
  const SearchResult sr = line_search(st, f, x, fx, g, slope, ls);
  IterationResult r;
  r.evaluations = sr.evaluations;
  if (!sr.found) return r;
  const std::size_t n = x.size();
  std::vector<T> sv(n), yv(n);
  for (std::size_t j = 0; j < n; ++j) {
    sv[j] = st.x_new[j] - x[j];
    yv[j] = st.g_new[j] - g[j];
  }
  r.step_max = max_abs(sv);
  st.push(std::move(sv), std::move(yv), ls.min_curvature);
  r.moved = true;
  r.decrease = fx - sr.value;
  x.swap(st.x_new);
  g.swap(st.g_new);
  fx = sr.value;
  return r;
}

}  // namespace synapse::optim::detail
