// Exponential moving average of weights (tf.train.ExponentialMovingAverage).
#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "core/parallel.h"
#include "core/check.h"
#include "synapse/optim.h"

namespace synapse::optim {
namespace {
constexpr std::int64_t kGrain = kElementwiseGrain;
constexpr const char* kSuffix = "/ExponentialMovingAverage";
}  // namespace

ExponentialMovingAverage::ExponentialMovingAverage(NamedTensors params, double decay)
    : params_(std::move(params)), decay_(decay) {
  SYN_CHECK(decay >= 0.0 && decay <= 1.0, "ExponentialMovingAverage: decay must be in [0, 1], got {}", decay);
  std::set<std::string> names;
  for (const auto& [name, p] : params_) {
    SYN_CHECK(p.defined(), "ExponentialMovingAverage: '{}' is an undefined tensor", name);
    SYN_CHECK(p.dtype() == DType::Float32, "ExponentialMovingAverage: '{}' is {}, expected float32", name,
              dtype_name(p.dtype()));
    SYN_CHECK(names.insert(name).second, "ExponentialMovingAverage: two tensors are named '{}'", name);
    shadows_.push_back(p.clone().set_name(name + kSuffix));
  }
}

void ExponentialMovingAverage::update(std::int64_t num_updates) {
  double d = decay_;
  if (num_updates >= 0) {
    const double n = static_cast<double>(num_updates);
    d = std::min(d, (1.0 + n) / (10.0 + n));
  }
  const float one_minus_d = static_cast<float>(1.0 - d);
  for (std::size_t k = 0; k < params_.size(); ++k) {
    const float* v = params_[k].second.data<float>();
    float* s = shadows_[k].data<float>();
    // shadow -= (shadow - value) · (1 - decay), TensorFlow's assign_moving_average.
    parallel_for(0, shadows_[k].numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) s[i] -= (s[i] - v[i]) * one_minus_d;
    });
  }
}

const Tensor& ExponentialMovingAverage::shadow(const std::string& name) const {
  for (std::size_t k = 0; k < params_.size(); ++k)
    if (params_[k].first == name) return shadows_[k];
  detail::fail("ExponentialMovingAverage: no average for '{}'", name);
}

void ExponentialMovingAverage::swap() {
  for (std::size_t k = 0; k < params_.size(); ++k) {
    float* v = params_[k].second.data<float>();
    float* s = shadows_[k].data<float>();
    parallel_for(0, shadows_[k].numel(), kGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) std::swap(v[i], s[i]);
    });
  }
}

std::map<std::string, Tensor> ExponentialMovingAverage::state_dict() const {
  std::map<std::string, Tensor> out;
  for (std::size_t k = 0; k < params_.size(); ++k) out[params_[k].first + kSuffix] = shadows_[k];
  return out;
}

void ExponentialMovingAverage::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::set<std::string> known;
  for (std::size_t k = 0; k < params_.size(); ++k) {
    const std::string key = params_[k].first + kSuffix;
    known.insert(key);
    auto f = state.find(key);
    if (f == state.end()) {
      SYN_CHECK(!strict, "ExponentialMovingAverage: load_state_dict: missing '{}'", key);
      continue;
    }
    const Tensor& t = f->second;
    SYN_CHECK(t.defined() && t.dtype() == DType::Float32 && t.shape() == shadows_[k].shape(),
              "ExponentialMovingAverage: load_state_dict: '{}' should be float32 {}, found {} {}", key,
              to_string(shadows_[k].shape()), t.defined() ? dtype_name(t.dtype()) : "undefined",
              t.defined() ? to_string(t.shape()) : "");
  }
  if (strict)
    for (const auto& [key, t] : state)
      SYN_CHECK(known.count(key), "ExponentialMovingAverage: load_state_dict: unexpected '{}'", key);
  for (std::size_t k = 0; k < params_.size(); ++k) {
    auto f = state.find(params_[k].first + kSuffix);
    if (f != state.end()) std::memcpy(shadows_[k].raw_data(), f->second.raw_data(), shadows_[k].nbytes());
  }
}

}  // namespace synapse::optim

namespace synapse::optim {

graph::Op moving_average_op(ExponentialMovingAverage& ema, graph::Graph& g, const Optimizer* steps,
                            const std::string& name) {
  return g.host_op(name, {}, [&ema, steps](const std::vector<Tensor>&) { ema.update(steps ? steps->iterations() : -1); });
}

}  // namespace synapse::optim
