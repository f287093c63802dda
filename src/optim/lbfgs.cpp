// optim::LBFGS: the shared L-BFGS iteration (lbfgs_core.h) over a model's float parameters, flattened.
#include <algorithm>
#include <cmath>
#include <set>

#include "core/check.h"
#include "optim/lbfgs_core.h"
#include "synapse/ops.h"
#include "synapse/optim.h"

namespace synapse::optim {

struct LBFGS::State {
  explicit State(int history) : core(history) {}
  detail::LbfgsState<float> core;
};

LBFGS::LBFGS(NamedTensors params, LBFGSOptions o) : params_(std::move(params)), o_(o) {
  SYN_CHECK(!params_.empty(), "LBFGS: no parameters to optimise");
  SYN_CHECK(o_.history_size >= 1, "LBFGS: history_size must be >= 1, found {}", o_.history_size);
  SYN_CHECK(o_.max_iterations >= 1, "LBFGS: max_iterations must be >= 1, found {}", o_.max_iterations);
  SYN_CHECK(o_.max_evaluations >= 0, "LBFGS: max_evaluations must be >= 0 (0: the default), found {}", o_.max_evaluations);
  SYN_CHECK(o_.learning_rate > 0 && std::isfinite(o_.learning_rate), "LBFGS: learning_rate must be a finite number > 0, found {}",
            o_.learning_rate);
  SYN_CHECK(0 < o_.c1 && o_.c1 < o_.c2 && o_.c2 < 1, "LBFGS: expected 0 < c1 < c2 < 1, found c1 {} and c2 {}", o_.c1, o_.c2);
  if (o_.max_evaluations == 0) o_.max_evaluations = o_.max_iterations * 5 / 4;
  std::set<std::string> names;
  for (const auto& [name, p] : params_) {
    SYN_CHECK(names.insert(name).second, "LBFGS: parameter name '{}' appears twice", name);
    SYN_CHECK(p.defined() && p.dtype() == DType::Float32 && p.is_leaf(),
              "LBFGS: parameter '{}' must be a float32 leaf tensor", name);
    numel_ += p.numel();
  }
  st_ = std::make_unique<State>(o_.history_size);
}

LBFGS::~LBFGS() = default;

void LBFGS::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

double LBFGS::step(const Closure& closure) {
  const auto n = static_cast<std::size_t>(numel_);
  // x <-> the parameters' storage; the closure's gradients -> g.
  auto write = [&](const std::vector<float>& x) {
    std::size_t at = 0;
    for (auto& [name, p] : params_) {
      std::copy_n(x.data() + at, p.numel(), p.data<float>());
      at += static_cast<std::size_t>(p.numel());
    }
  };
  auto evaluate = [&](std::vector<float>& g) {
    const Tensor loss = closure();
    ++evaluations_;
    SYN_CHECK(loss.defined() && loss.numel() == 1, "LBFGS: the closure must return the loss, a one-element tensor; found {}",
              loss.defined() ? to_string(loss.shape()) : "undefined");
    std::size_t at = 0;
    for (auto& [name, p] : params_) {
      const Tensor gp = p.grad();
      const auto k = static_cast<std::size_t>(p.numel());
      if (gp.defined()) {
        SYN_CHECK(gp.shape() == p.shape() && gp.dtype() == DType::Float32,
                  "LBFGS: the gradient of '{}' is {} {}, expected float32 {}", name, dtype_name(gp.dtype()),
                  to_string(gp.shape()), to_string(p.shape()));
        const Tensor c = gp.clone();
        std::copy_n(c.data<float>(), k, g.data() + at);
      } else {
        std::fill_n(g.data() + at, k, 0.0f);
      }
      at += k;
    }
    return static_cast<double>(cast(loss, DType::Float32).item<float>());
  };
  std::vector<float> x(n), g(n);
  {
    std::size_t at = 0;
    for (auto& [name, p] : params_) {
      const Tensor c = p.clone();
      std::copy_n(c.data<float>(), p.numel(), x.data() + at);
      at += static_cast<std::size_t>(p.numel());
    }
  }
  double fx = evaluate(g);
  SYN_CHECK(std::isfinite(fx), "LBFGS: the loss is {} at the start of the step", fx);
  const int evals_at_start = static_cast<int>(evaluations_);
  const detail::Fn<float> f = [&](const std::vector<float>& xv, std::vector<float>& gv) {
    write(xv);
    return evaluate(gv);
  };
  detail::LineSearchSpec ls;
  ls.strong_wolfe = o_.line_search == LineSearch::StrongWolfe;
  ls.c1 = o_.c1;
  ls.c2 = o_.c2;
  ls.tolerance_change = o_.tolerance_change;
  ls.min_curvature = 1e-10;
  stop_reason_ = "max_iterations";
  for (int i = 0; i < o_.max_iterations; ++i) {
    if (detail::max_abs(g) <= o_.tolerance_grad) {
      stop_reason_ = "tolerance_grad";
      break;
    }
    const int used = static_cast<int>(evaluations_) - evals_at_start + 1;
    if (used >= o_.max_evaluations) {
      stop_reason_ = "max_evaluations";
      break;
    }
    ls.max_evaluations = std::max(1, o_.max_evaluations - used);
    ls.initial_step = o_.learning_rate;
    const detail::IterationResult it = detail::lbfgs_iteration<float>(st_->core, f, x, fx, g, ls);
    if (!it.moved) {
      stop_reason_ = "no_decrease";
      break;
    }
    ++iterations_;
    if (on_iteration) {
      write(x);
      on_iteration(fx);
    }
    if (it.step_max <= o_.tolerance_change || std::fabs(it.decrease) < o_.tolerance_change) {
      stop_reason_ = "tolerance_change";
      break;
    }
  }
  write(x);  // the accepted point (the last evaluation may have been a rejected trial)
  return fx;
}

std::map<std::string, Tensor> LBFGS::state_dict() const {
  const auto& c = st_->core;
  const auto k = static_cast<std::int64_t>(c.s.size());
  Tensor s = Tensor::empty({k, numel_}), y = Tensor::empty({k, numel_});
  for (std::int64_t i = 0; i < k; ++i) {
    std::copy(c.s[static_cast<std::size_t>(i)].begin(), c.s[static_cast<std::size_t>(i)].end(), s.data<float>() + i * numel_);
    std::copy(c.y[static_cast<std::size_t>(i)].begin(), c.y[static_cast<std::size_t>(i)].end(), y.data<float>() + i * numel_);
  }
  return {{"s", s},
          {"y", y},
          {"iterations", from_vector(std::vector<std::int64_t>{iterations_}, {})},
          {"evaluations", from_vector(std::vector<std::int64_t>{evaluations_}, {})}};
}

void LBFGS::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  static const std::set<std::string> known{"s", "y", "iterations", "evaluations"};
  if (strict) {
    for (const auto& name : known)
      SYN_CHECK(state.count(name), "LBFGS::load_state_dict: slot '{}' is missing", name);
    for (const auto& [name, t] : state) SYN_CHECK(known.count(name), "LBFGS::load_state_dict: unexpected slot '{}'", name);
  }
  auto count = [&](const char* name, std::int64_t& into) {
    auto it = state.find(name);
    if (it == state.end()) return;
    SYN_CHECK(it->second.numel() == 1 && (it->second.dtype() == DType::Int64 || it->second.dtype() == DType::Int32),
              "LBFGS::load_state_dict: '{}' must be an integer scalar, found {} {}", name, dtype_name(it->second.dtype()),
              to_string(it->second.shape()));
    into = cast(it->second, DType::Int64).item<std::int64_t>();
  };
  const auto s = state.find("s"), y = state.find("y");
  SYN_CHECK((s == state.end()) == (y == state.end()), "LBFGS::load_state_dict: 's' and 'y' must be given together");
  if (s != state.end()) {
    for (const auto* t : {&s->second, &y->second}) {
      const char* name = t == &s->second ? "s" : "y";
      SYN_CHECK(t->dtype() == DType::Float32 && t->ndim() == 2 && t->dim(1) == numel_ && t->dim(0) <= o_.history_size,
                "LBFGS::load_state_dict: '{}' is {} {}, expected float32 [k, {}] with k <= history_size {}", name,
                dtype_name(t->dtype()), to_string(t->shape()), numel_, o_.history_size);
    }
    SYN_CHECK(s->second.dim(0) == y->second.dim(0), "LBFGS::load_state_dict: 's' has {} pairs but 'y' has {}",
              s->second.dim(0), y->second.dim(0));
    auto& c = st_->core;
    c.clear();
    const Tensor sc = s->second.clone(), yc = y->second.clone();
    for (std::int64_t i = 0; i < sc.dim(0); ++i) {
      const float* sp = sc.data<float>() + i * numel_;
      const float* yp = yc.data<float>() + i * numel_;
      std::vector<float> sv(sp, sp + numel_), yv(yp, yp + numel_);
      const double sy = detail::dot(sv, yv);
      SYN_CHECK(sy > 0 && std::isfinite(sy), "LBFGS::load_state_dict: correction pair {} has s·y = {}, expected > 0", i, sy);
      c.push(std::move(sv), std::move(yv), 0.0);
    }
  }
  count("iterations", iterations_);
  count("evaluations", evaluations_);
}

}  // namespace synapse::optim
