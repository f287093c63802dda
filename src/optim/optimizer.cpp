// Optimizer base (validation, clipping, schedule, named state) and the Keras update rules.
//
// Every rule is one fused loop over the raw float arrays of the parameter, its gradient and its slots:
// no temporaries, no autograd, split over threads by parallel_for above a grain. The gradient is read
// through StepInfo::prep, which applies the value clip and the global-norm scale on the fly, so
// clipping never writes (or allocates) gradient tensors.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <set>

#include "core/parallel.h"
#include "core/check.h"
#include "synapse/optim.h"

namespace synapse::optim {
namespace {

// A few flops per element (a sqrt and a division at most): below this, one thread is faster.
constexpr std::int64_t kGrain = kElementwiseGrain / 2;

// Runs body(i) for i in [0, n), in parallel chunks; the body is inlined into a plain loop the
// compiler vectorises. Bodies capture by value ([=]) and are copied into each chunk: with captures by
// reference, every store to a float array might change a captured float (the step size), so GCC
// reloaded it and left Adam's update scalar (a sqrt and a divide per element, not per 16).
template <class F> void for_each_index(std::int64_t n, const F& body) {
  parallel_for(0, n, kGrain, [&](std::int64_t lo, std::int64_t hi) {
    const F fn = body;
    for (std::int64_t i = lo; i < hi; ++i) fn(i);
  });
}

// Σ clip(g)² over one gradient, in double (accumulated per block of floats so the inner loop
// vectorises without reassociating a double sum).
double sum_of_squares(const float* g, std::int64_t n, float clip) {
  constexpr std::int64_t kBlock = 1024;
  double total = 0.0;
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = std::min(n, b + kBlock);
    float lanes[8] = {};
    std::int64_t i = b;
    for (; i + 8 <= e; i += 8)
      for (int j = 0; j < 8; ++j) {
        const float v = std::min(std::max(g[i + j], -clip), clip);
        lanes[j] += v * v;
      }
    for (; i < e; ++i) {
      const float v = std::min(std::max(g[i], -clip), clip);
      lanes[0] += v * v;
    }
    for (float l : lanes) total += static_cast<double>(l);
  }
  return total;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

float as_float(double v) { return static_cast<float>(v); }

void check_unit_interval(const char* type, const char* what, double v) {
  SYN_CHECK(v >= 0.0 && v <= 1.0, "{}: {} must be in [0, 1], got {}", type, what, v);
}
void check_non_negative(const char* type, const char* what, double v) {
  SYN_CHECK(v >= 0.0 && std::isfinite(v), "{}: {} must be a finite number >= 0, got {}", type, what, v);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Free clipping functions (tf.clip_by_global_norm / tf.clip_by_value): new tensors, so gradients that
// share storage (the autograd engine may hand one buffer to several leaves) are never clipped twice.

double clip_by_global_norm(std::vector<Tensor>& grads, double clip_norm) {
  SYN_CHECK(clip_norm > 0.0, "clip_by_global_norm: clip_norm must be > 0, got {}", clip_norm);
  double sq = 0.0;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) continue;
    SYN_CHECK(grads[i].dtype() == DType::Float32, "clip_by_global_norm: gradient {} is {}, expected float32", i,
              dtype_name(grads[i].dtype()));
    sq += sum_of_squares(grads[i].data<float>(), grads[i].numel(), std::numeric_limits<float>::infinity());
  }
  const double norm = std::sqrt(sq);
  // TensorFlow: clip_norm · min(1 / norm, 1 / clip_norm), and NaN everywhere when the norm is not finite.
  const double scale = std::isfinite(norm) ? clip_norm / std::max(norm, clip_norm) : std::nan("");
  const float s = as_float(scale);
  for (auto& g : grads) {
    if (!g.defined()) continue;
    Tensor out = Tensor::empty(g.shape());
    const float* in = g.data<float>();
    float* o = out.data<float>();
    for_each_index(g.numel(), [=](std::int64_t i) { o[i] = in[i] * s; });
    g = out;
  }
  return norm;
}

void clip_by_value(std::vector<Tensor>& grads, double clip_value) {
  SYN_CHECK(clip_value >= 0.0, "clip_by_value: clip_value must be >= 0, got {}", clip_value);
  const float c = as_float(clip_value);
  for (std::size_t k = 0; k < grads.size(); ++k) {
    Tensor& g = grads[k];
    if (!g.defined()) continue;
    SYN_CHECK(g.dtype() == DType::Float32, "clip_by_value: gradient {} is {}, expected float32", k,
              dtype_name(g.dtype()));
    Tensor out = Tensor::empty(g.shape());
    const float* in = g.data<float>();
    float* o = out.data<float>();
    for_each_index(g.numel(), [=](std::int64_t i) { o[i] = std::min(std::max(in[i], -c), c); });
    g = out;
  }
}

// ---------------------------------------------------------------------------------------------
// Optimizer base.

Optimizer::Optimizer(std::string type, NamedTensors params, double learning_rate)
    : type_(std::move(type)), params_(std::move(params)), lr_(learning_rate) {
  SYN_CHECK(std::isfinite(learning_rate), "{}: learning_rate must be finite, got {}", type_, learning_rate);
  std::set<std::string> names;
  std::set<const TensorImpl*> tensors;
  for (const auto& [name, p] : params_) {
    SYN_CHECK(p.defined(), "{}: parameter '{}' is an undefined tensor", type_, name);
    SYN_CHECK(p.dtype() == DType::Float32, "{}: parameter '{}' is {}, optimizers update float32 tensors", type_,
              name, dtype_name(p.dtype()));
    SYN_CHECK(p.is_leaf(), "{}: parameter '{}' is the result of an op; optimizers update leaf tensors", type_, name);
    SYN_CHECK(p.requires_grad(), "{}: parameter '{}' does not require gradients (call requires_grad_())", type_,
              name);
    SYN_CHECK(names.insert(name).second, "{}: two parameters are named '{}'", type_, name);
    SYN_CHECK(tensors.insert(p.impl()).second, "{}: parameter '{}' is a tensor already listed under another name",
              type_, name);
  }
}

double Optimizer::learning_rate() const { return schedule_ ? (*schedule_)(step_) : lr_; }

void Optimizer::set_learning_rate(double lr) {
  SYN_CHECK(std::isfinite(lr), "{}: learning_rate must be finite, got {}", type_, lr);
  lr_ = lr;
  schedule_.reset();
}

void Optimizer::set_schedule(std::shared_ptr<Schedule> s) {
  SYN_CHECK(s != nullptr, "{}: set_schedule: null schedule", type_);
  schedule_ = std::move(s);
}

void Optimizer::build_slots() const {
  if (!slots_.empty() || params_.empty()) return;
  specs_ = slot_specs();
  slots_.resize(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    for (const auto& spec : specs_) {
      Tensor s = full(p.shape(), static_cast<double>(spec.initial));
      s.set_name(name + "/" + spec.name);
      slots_[i].push_back(s);
    }
  }
}

void Optimizer::step() {
  grads_.resize(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) grads_[i] = params_[i].second.grad();
  try {
    apply(grads_);
  } catch (...) {
    std::fill(grads_.begin(), grads_.end(), Tensor());
    throw;
  }
  std::fill(grads_.begin(), grads_.end(), Tensor());  // keep the capacity, drop the references
}

void Optimizer::apply_gradients(const std::vector<Tensor>& grads) {
  SYN_CHECK(grads.size() == params_.size(), "{}: apply_gradients: expected {} gradients (one per parameter), found {}",
            type_, params_.size(), grads.size());
  apply(grads);
}

void Optimizer::apply(const std::vector<Tensor>& grads) {
  // Validate everything before any parameter changes.
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) continue;
    const auto& [name, p] = params_[i];
    SYN_CHECK(grads[i].dtype() == DType::Float32, "{}: gradient of parameter '{}' is {}, expected float32", type_,
              name, dtype_name(grads[i].dtype()));
    SYN_CHECK(grads[i].shape() == p.shape(), "{}: gradient of parameter '{}' has shape {}, the parameter has {}",
              type_, name, to_string(grads[i].shape()), to_string(p.shape()));
  }
  SYN_CHECK(clipping.clip_value >= 0.0 && clipping.clip_norm >= 0.0,
            "{}: clipping values must be >= 0 (0 = off), got clip_value {} and clip_norm {}", type_,
            clipping.clip_value, clipping.clip_norm);
  build_slots();

  GradPrep prep;
  if (clipping.clip_value > 0.0) prep.clip = as_float(clipping.clip_value);
  last_norm_ = -1.0;
  if (clipping.clip_norm > 0.0) {
    double sq = 0.0;
    for (const auto& g : grads)
      if (g.defined()) sq += sum_of_squares(g.data<float>(), g.numel(), prep.clip);
    last_norm_ = std::sqrt(sq);
    prep.scale = std::isfinite(last_norm_) ? as_float(clipping.clip_norm / std::max(last_norm_, clipping.clip_norm))
                                           : std::numeric_limits<float>::quiet_NaN();
  }

  const StepInfo info{learning_rate(), step_ + 1, prep};
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) continue;
    update(params_[i].second, grads[i], slots_[i], info);
  }
  ++step_;
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  build_slots();
  std::map<std::string, Tensor> out;
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (std::size_t j = 0; j < specs_.size(); ++j) out[params_[i].first + "/" + specs_[j].name] = slots_[i][j];
  Tensor it = Tensor::empty({}, DType::Int64);
  it.data<std::int64_t>()[0] = step_;
  out["iterations"] = it;
  Tensor lr = Tensor::empty({}, DType::Float32);
  lr.data<float>()[0] = as_float(learning_rate());
  out["learning_rate"] = lr;
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  build_slots();
  const char* ctx = "load_state_dict";
  std::set<std::string> known{"iterations", "learning_rate"};
  // Validate every entry first, so a failed load leaves the optimizer unchanged.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    for (std::size_t j = 0; j < specs_.size(); ++j) {
      const std::string key = params_[i].first + "/" + specs_[j].name;
      known.insert(key);
      auto f = state.find(key);
      if (f == state.end()) {
        SYN_CHECK(!strict, "{}: {}: missing '{}'", type_, ctx, key);
        continue;
      }
      const Tensor& t = f->second;
      SYN_CHECK(t.defined() && t.dtype() == DType::Float32 && t.shape() == params_[i].second.shape(),
                "{}: {}: '{}' should be float32 {}, found {} {}", type_, ctx, key,
                to_string(params_[i].second.shape()), t.defined() ? dtype_name(t.dtype()) : "undefined",
                t.defined() ? to_string(t.shape()) : "");
    }
  }
  auto it = state.find("iterations");
  if (it == state.end()) {
    SYN_CHECK(!strict, "{}: {}: missing 'iterations'", type_, ctx);
  } else {
    const Tensor& t = it->second;
    SYN_CHECK(t.defined() && t.numel() == 1 && (t.dtype() == DType::Int64 || t.dtype() == DType::Int32),
              "{}: {}: 'iterations' should be an int64 scalar", type_, ctx);
  }
  auto lr = state.find("learning_rate");
  if (lr != state.end())
    SYN_CHECK(lr->second.defined() && lr->second.numel() == 1 && lr->second.dtype() == DType::Float32,
              "{}: {}: 'learning_rate' should be a float32 scalar", type_, ctx);
  if (strict) {
    for (const auto& [key, t] : state) {
      if (known.count(key)) continue;
      std::vector<std::string> slot_names;
      for (const auto& s : specs_) slot_names.push_back(s.name);
      detail::fail("{}: {}: unexpected '{}' (this {} keeps per-parameter slots [{}] plus iterations and "
                   "learning_rate, for parameters such as '{}')",
                   type_, ctx, key, type_, joined(slot_names), params_.empty() ? "" : params_[0].first);
    }
  }

  // Copy.
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (std::size_t j = 0; j < specs_.size(); ++j) {
      auto f = state.find(params_[i].first + "/" + specs_[j].name);
      if (f != state.end()) std::memcpy(slots_[i][j].raw_data(), f->second.raw_data(), slots_[i][j].nbytes());
    }
  if (it != state.end()) {
    const Tensor& t = it->second;
    step_ = t.dtype() == DType::Int64 ? t.data<std::int64_t>()[0] : t.data<std::int32_t>()[0];
  }
  // The saved rate is float32: keep the configured double when the saved value is its rounding, so a
  // resumed run computes exactly what an uninterrupted one does.
  if (lr != state.end() && !schedule_) {
    const float saved = lr->second.data<float>()[0];
    if (saved != static_cast<float>(lr_)) lr_ = static_cast<double>(saved);
  }
}

// ---------------------------------------------------------------------------------------------
// SGD: v = momentum·v - lr·g; p += v, or p += momentum·v - lr·g (nesterov).

SGD::SGD(NamedTensors params, SGDOptions o) : Optimizer("SGD", std::move(params), o.learning_rate), o_(o) {
  check_unit_interval("SGD", "momentum", o_.momentum);
}

std::vector<Optimizer::SlotSpec> SGD::slot_specs() const {
  if (o_.momentum > 0.0) return {{"momentum"}};
  return {};
}

void SGD::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const StepInfo& s) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  const float lr = as_float(s.lr);
  const GradPrep prep = s.prep;
  if (o_.momentum <= 0.0) {
    for_each_index(param.numel(), [=](std::int64_t i) { p[i] += -prep(g[i]) * lr; });
    return;
  }
  float* v = slots[0].data<float>();
  const float mu = as_float(o_.momentum);
  if (o_.nesterov) {
    for_each_index(param.numel(), [=](std::int64_t i) {
      const float step = -prep(g[i]) * lr;
      v[i] = step + v[i] * mu;
      p[i] += step + v[i] * mu;
    });
  } else {
    for_each_index(param.numel(), [=](std::int64_t i) {
      v[i] = -prep(g[i]) * lr + v[i] * mu;
      p[i] += v[i];
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Adagrad: acc += g²; p -= lr·g / sqrt(acc + eps).

Adagrad::Adagrad(NamedTensors params, AdagradOptions o)
    : Optimizer("Adagrad", std::move(params), o.learning_rate), o_(o) {
  check_non_negative("Adagrad", "initial_accumulator", o_.initial_accumulator);
  check_non_negative("Adagrad", "epsilon", o_.epsilon);
}

std::vector<Optimizer::SlotSpec> Adagrad::slot_specs() const {
  return {{"accumulator", as_float(o_.initial_accumulator)}};
}

void Adagrad::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const StepInfo& s) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* acc = slots[0].data<float>();
  const float lr = as_float(s.lr), eps = as_float(o_.epsilon);
  const GradPrep prep = s.prep;
  for_each_index(param.numel(), [=](std::int64_t i) {
    const float gi = prep(g[i]);
    acc[i] += gi * gi;
    p[i] -= lr * gi / std::sqrt(acc[i] + eps);
  });
}

// ---------------------------------------------------------------------------------------------
// Adadelta: Eg² = rho·Eg² + (1-rho)·g²; d = sqrt(Ed² + eps) / sqrt(Eg² + eps) · g;
// Ed² = rho·Ed² + (1-rho)·d²; p -= lr·d.

Adadelta::Adadelta(NamedTensors params, AdadeltaOptions o)
    : Optimizer("Adadelta", std::move(params), o.learning_rate), o_(o) {
  check_unit_interval("Adadelta", "rho", o_.rho);
  check_non_negative("Adadelta", "epsilon", o_.epsilon);
}

std::vector<Optimizer::SlotSpec> Adadelta::slot_specs() const {
  return {{"accumulated_grad"}, {"accumulated_delta_var"}};
}

void Adadelta::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const StepInfo& s) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* eg = slots[0].data<float>();
  float* ed = slots[1].data<float>();
  const float lr = as_float(s.lr), eps = as_float(o_.epsilon), rho = as_float(o_.rho),
              one_minus_rho = as_float(1.0 - o_.rho);
  const GradPrep prep = s.prep;
  for_each_index(param.numel(), [=](std::int64_t i) {
    const float gi = prep(g[i]);
    eg[i] = rho * eg[i] + one_minus_rho * gi * gi;
    const float d = std::sqrt(ed[i] + eps) * gi / std::sqrt(eg[i] + eps);
    ed[i] = rho * ed[i] + one_minus_rho * d * d;
    p[i] -= lr * d;
  });
}

// ---------------------------------------------------------------------------------------------
// RMSProp (Keras): see optim.h.

RMSProp::RMSProp(NamedTensors params, RMSPropOptions o)
    : Optimizer("RMSProp", std::move(params), o.learning_rate), o_(o) {
  check_unit_interval("RMSProp", "rho", o_.rho);
  check_unit_interval("RMSProp", "momentum", o_.momentum);
  check_non_negative("RMSProp", "epsilon", o_.epsilon);
}

std::vector<Optimizer::SlotSpec> RMSProp::slot_specs() const {
  std::vector<SlotSpec> s{{"velocity"}};
  if (o_.momentum > 0.0) s.push_back({"momentum"});
  if (o_.centered) s.push_back({"average_gradient"});
  return s;
}

void RMSProp::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const StepInfo& s) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* v = slots[0].data<float>();
  const bool use_momentum = o_.momentum > 0.0;
  // Without momentum or centering the matching pointer is never read; point it at v for simplicity.
  float* mom = use_momentum ? slots[1].data<float>() : v;
  float* mg = o_.centered ? slots[use_momentum ? 2 : 1].data<float>() : v;
  const float lr = as_float(s.lr), eps = as_float(o_.epsilon), rho = as_float(o_.rho),
              one_minus_rho = as_float(1.0 - o_.rho), mu = as_float(o_.momentum);
  const GradPrep prep = s.prep;
  const std::int64_t n = param.numel();
  // Four loops rather than branches inside one, so each stays straight-line and vectorises.
  if (o_.centered && use_momentum) {
    for_each_index(n, [=](std::int64_t i) {
      const float gi = prep(g[i]);
      v[i] = rho * v[i] + one_minus_rho * gi * gi;
      mg[i] = rho * mg[i] + one_minus_rho * gi;
      mom[i] = mu * mom[i] + lr * gi / std::sqrt(v[i] - mg[i] * mg[i] + eps);
      p[i] -= mom[i];
    });
  } else if (o_.centered) {
    for_each_index(n, [=](std::int64_t i) {
      const float gi = prep(g[i]);
      v[i] = rho * v[i] + one_minus_rho * gi * gi;
      mg[i] = rho * mg[i] + one_minus_rho * gi;
      p[i] -= lr * gi / std::sqrt(v[i] - mg[i] * mg[i] + eps);
    });
  } else if (use_momentum) {
    for_each_index(n, [=](std::int64_t i) {
      const float gi = prep(g[i]);
      v[i] = rho * v[i] + one_minus_rho * gi * gi;
      mom[i] = mu * mom[i] + lr * gi / std::sqrt(v[i] + eps);
      p[i] -= mom[i];
    });
  } else {
    for_each_index(n, [=](std::int64_t i) {
      const float gi = prep(g[i]);
      v[i] = rho * v[i] + one_minus_rho * gi * gi;
      p[i] -= lr * gi / std::sqrt(v[i] + eps);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW (Keras): see optim.h for the epsilon placement.

Adam::Adam(NamedTensors params, AdamOptions o) : Adam("Adam", std::move(params), o) {}

Adam::Adam(std::string type, NamedTensors params, AdamOptions o)
    : Optimizer(std::move(type), std::move(params), o.learning_rate), o_(o) {
  SYN_CHECK(o_.beta1 >= 0.0 && o_.beta1 < 1.0, "{}: beta1 must be in [0, 1), got {}", this->type(), o_.beta1);
  SYN_CHECK(o_.beta2 >= 0.0 && o_.beta2 < 1.0, "{}: beta2 must be in [0, 1), got {}", this->type(), o_.beta2);
  check_non_negative(this->type().c_str(), "epsilon", o_.epsilon);
  check_non_negative(this->type().c_str(), "weight_decay", o_.weight_decay);
}

std::vector<Optimizer::SlotSpec> Adam::slot_specs() const { return {{"m"}, {"v"}}; }

void Adam::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const StepInfo& s) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = slots[0].data<float>();
  float* v = slots[1].data<float>();
  const double t = static_cast<double>(s.t);
  // alpha = lr · sqrt(1 - b2^t) / (1 - b1^t), the bias corrections folded into the step size.
  const float alpha = as_float(s.lr * std::sqrt(1.0 - std::pow(o_.beta2, t)) / (1.0 - std::pow(o_.beta1, t)));
  const float one_minus_b1 = as_float(1.0 - o_.beta1), one_minus_b2 = as_float(1.0 - o_.beta2),
              eps = as_float(o_.epsilon);
  const float decay = as_float(s.lr * o_.weight_decay);  // decoupled: p -= lr·wd·p (0 for Adam)
  const GradPrep prep = s.prep;
  for_each_index(param.numel(), [=](std::int64_t i) {
    const float gi = prep(g[i]);
    const float pi = p[i] - p[i] * decay;
    m[i] += (gi - m[i]) * one_minus_b1;
    v[i] += (gi * gi - v[i]) * one_minus_b2;
    p[i] = pi - m[i] * alpha / (std::sqrt(v[i]) + eps);
  });
}

AdamW::AdamW(NamedTensors params, AdamWOptions o)
    : Adam("AdamW", std::move(params),
           AdamOptions{.learning_rate = o.learning_rate, .beta1 = o.beta1, .beta2 = o.beta2, .epsilon = o.epsilon,
                       .weight_decay = o.weight_decay}) {}

// ---------------------------------------------------------------------------------------------

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, NamedTensors params, double learning_rate) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const double lr = learning_rate;
  if (n == "sgd") return std::make_unique<SGD>(std::move(params), SGDOptions{.learning_rate = lr});
  if (n == "momentum") return std::make_unique<SGD>(std::move(params), SGDOptions{.learning_rate = lr, .momentum = 0.9});
  if (n == "nesterov")
    return std::make_unique<SGD>(std::move(params), SGDOptions{.learning_rate = lr, .momentum = 0.9, .nesterov = true});
  if (n == "adagrad") return std::make_unique<Adagrad>(std::move(params), AdagradOptions{.learning_rate = lr});
  if (n == "adadelta") return std::make_unique<Adadelta>(std::move(params), AdadeltaOptions{.learning_rate = lr});
  if (n == "rmsprop") return std::make_unique<RMSProp>(std::move(params), RMSPropOptions{.learning_rate = lr});
  if (n == "adam") return std::make_unique<Adam>(std::move(params), AdamOptions{.learning_rate = lr});
  if (n == "adamw") return std::make_unique<AdamW>(std::move(params), AdamWOptions{.learning_rate = lr});
  detail::fail("make_optimizer: unknown optimizer '{}'; known: sgd, momentum, nesterov, adagrad, adadelta, rmsprop, "
               "adam, adamw",
               name);
}

}  // namespace synapse::optim

namespace synapse::optim {

graph::Op minimize(Optimizer& opt, const Tensor& loss, const std::string& name) {
  return minimize(opt.params(), loss, [&opt](const std::vector<Tensor>& all) { opt.apply_gradients(all); }, name,
                  opt.type());
}

graph::Op minimize(const NamedTensors& params, const Tensor& loss, std::function<void(const std::vector<Tensor>&)> apply,
                   const std::string& name, const std::string& owner) {
  graph::Graph* g = graph::graph_of(loss);
  SYN_CHECK(g != nullptr, "minimize: the loss must be a graph tensor (use backward() and step() eagerly)");
  // The parameters the graph holds as variables (their storage is the Variable node's).
  std::vector<std::size_t> which;
  std::vector<Tensor> vars;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int node = g->variable_node_of(params[i].second);
    if (node < 0) continue;
    which.push_back(i);
    vars.push_back(g->output(node));
  }
  SYN_CHECK(!vars.empty(), "minimize: none of the {} parameters of {} is a variable of the loss's graph", params.size(),
            owner);
  std::vector<Tensor> grads = graph::gradients(loss, vars);
  const std::size_t n = params.size();
  return g->host_op(name, grads, [apply = std::move(apply), which, n](const std::vector<Tensor>& values) {
    std::vector<Tensor> all(n);
    for (std::size_t k = 0; k < which.size(); ++k) all[which[k]] = values[k];
    apply(all);
  });
}

}  // namespace synapse::optim
