// Module: named parameters, buffers and sub-modules; lazy building; state dictionaries; summary.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/nn.h"

namespace synapse::nn {

std::string snake_case(const std::string& type) {
  // Keras' generic_utils.to_snake_case, with the same two regular expressions.
  static const std::regex words("(.)([A-Z][a-z0-9]+)");
  static const std::regex humps("([a-z])([A-Z])");
  std::string s = std::regex_replace(std::regex_replace(type, words, "$1_$2"), humps, "$1_$2");
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!s.empty() && s[0] == '_') s = "private" + s;
  return s;
}

Module::Module(std::string type) : type_(std::move(type)), name_(snake_case(type_)) {}

// ---- calling ----

void Module::build_once(const Shape& input_shape) {
  if (built_) return;
  build(input_shape);
  built_ = true;
}

void Module::record_output_shape(const Shape& shape) {
  output_shape_ = shape;
  if (!output_shape_.empty()) output_shape_[0] = -1;  // the batch dimension, "None" in summaries
  has_output_shape_ = true;
}

Tensor Module::operator()(const Tensor& x) {
  build_once(x.shape());
  Tensor y;
  if (anomaly_mode()) {
    // Name the innermost layer in which an op produced NaN/Inf (the NaN hunt of the fit loop).
    try {
      y = forward(x);
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.rfind("layer '", 0) == 0) throw;
      throw Error(fmt::format("layer '{}' ({}): {}", name_, type_, msg));
    }
  } else {
    y = forward(x);
  }
  record_output_shape(y.shape());
  return y;
}

void Module::build(const Shape& /*input_shape*/) {}

void Module::collect_modes(std::vector<std::pair<Module*, bool>>& out) {
  out.emplace_back(this, training_);
  for (auto& c : children_) c->collect_modes(out);
}

void Module::build_for(const Shape& input_shape, DType dtype) {
  // Inference mode, so dropout draws no random numbers and batch normalisation leaves its moving
  // statistics alone; each module's own mode is restored afterwards, even on error.
  std::vector<std::pair<Module*, bool>> modes;
  collect_modes(modes);
  struct Restore {
    std::vector<std::pair<Module*, bool>>& modes;
    ~Restore() {
      for (auto& [m, on] : modes) m->training_ = on;
    }
  } restore{modes};
  eval();
  NoGradGuard no_grad;
  (*this)(zeros(input_shape, dtype));
  reset_states();  // the zero batch leaves no state behind in stateful layers
}

void Module::reset_states() {
  for (auto& c : children_) c->reset_states();
}

// ---- names ----

Module& Module::set_name(std::string name) {
  SYN_CHECK(!name.empty() && name.find('/') == std::string::npos,
            "{}: a module name must be non-empty and contain no '/', got '{}'", type_, name);
  name_ = std::move(name);
  name_explicit_ = true;
  return *this;
}

void Module::check_new_name(const std::string& name) const {
  SYN_CHECK(!name.empty() && name.find('/') == std::string::npos,
            "{} '{}': a parameter name must be non-empty and contain no '/', got '{}'", type_, name_, name);
  for (const auto* list : {&params_, &buffers_})
    for (const auto& e : *list)
      SYN_CHECK(e.name != name, "{} '{}': a parameter or buffer named '{}' already exists", type_, name_, name);
}

void Module::add_child(std::shared_ptr<Module> m) {
  SYN_CHECK(m != nullptr, "{} '{}': cannot add a null module", type_, name_);
  SYN_CHECK(m.get() != this, "{} '{}': a module cannot contain itself", type_, name_);
  auto taken = [&](const std::string& n) {
    for (const auto& c : children_)
      if (c->name_ == n) return true;
    return false;
  };
  if (taken(m->name_)) {
    SYN_CHECK(!m->name_explicit_, "{} '{}': duplicate layer name '{}' (names must be unique)", type_, name_, m->name_);
    // Keras' rule for default names: "dense", "dense_1", "dense_2", ...
    const std::string base = m->name_;
    int k = 1;
    while (taken(base + "_" + std::to_string(k))) ++k;
    m->name_ = base + "_" + std::to_string(k);
  }
  if (gen_ && !m->gen_) m->set_generator(gen_);
  children_.push_back(std::move(m));
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  std::string known;
  for (const auto& c : children_) {
    if (c->name_ == name) return c;
    known += (known.empty() ? "'" : ", '") + c->name_ + "'";
  }
  detail::fail("{} '{}': no layer named '{}' (layers: {})", type_, name_, name, known.empty() ? "none" : known);
}

// ---- parameters and buffers ----

Tensor Module::add_parameter(const std::string& name, Tensor value, bool trainable) {
  check_new_name(name);
  SYN_CHECK(value.defined() && value.dtype() == DType::Float32, "{} '{}': parameter '{}' must be a float32 tensor",
            type_, name_, name);
  if (!value.is_leaf()) value = value.detach();
  value.set_name(name);
  trainable = trainable && trainable_;  // a frozen module's later parameters (built on first call) stay frozen
  value.requires_grad_(trainable);
  params_.push_back({name, value, trainable});
  return value;
}

Tensor Module::add_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  SYN_CHECK(value.defined(), "{} '{}': buffer '{}' is undefined", type_, name_, name);
  if (!value.is_leaf() || value.requires_grad()) value = value.detach();
  value.set_name(name);
  buffers_.push_back({name, value, false});
  return value;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, bool trainable_only,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  if (params)
    for (const auto& e : params_)
      if (!trainable_only || e.trainable) out.emplace_back(prefix + e.name, e.value);
  if (buffers)
    for (const auto& e : buffers_) out.emplace_back(prefix + e.name, e.value);
  for (const auto& c : children_) c->collect(prefix + c->name_ + "/", params, buffers, trainable_only, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, false, false, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_trainable_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, false, true, out);
  return out;
}

std::vector<Tensor> Module::trainable_parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_trainable_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, true, false, out);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> all;
  collect("", true, true, false, all);
  return {all.begin(), all.end()};
}

namespace {

// "'a', 'b', 'c' and 2 more"
std::string quoted_list(const std::vector<std::string>& names, std::size_t max_shown = 8) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < max_shown; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > max_shown) s += " and " + std::to_string(names.size() - max_shown) + " more";
  return s;
}

}  // namespace

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  const auto own = state_dict();
  std::vector<std::string> missing, unexpected;
  for (const auto& [n, t] : own)
    if (!state.count(n)) missing.push_back(n);
  for (const auto& [n, t] : state)
    if (!own.count(n)) unexpected.push_back(n);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string msg;
    if (!missing.empty()) msg += "missing " + quoted_list(missing);
    if (!unexpected.empty()) msg += std::string(msg.empty() ? "" : "; ") + "unexpected " + quoted_list(unexpected);
    if (own.empty()) msg += " (the model has no state yet: build it first, e.g. with build_for)";
    detail::fail("load_state_dict: {} '{}': {}", type_, name_, msg);
  }
  // Check every tensor before copying any, so a failed load leaves the model unchanged.
  for (const auto& [n, dst] : own) {
    auto it = state.find(n);
    if (it == state.end()) continue;
    const Tensor& src = it->second;
    SYN_CHECK(src.defined(), "load_state_dict: '{}' is undefined in the state", n);
    SYN_CHECK(src.dtype() == dst.dtype(), "load_state_dict: dtype mismatch for '{}': expected {}, found {}", n,
              dtype_name(dst.dtype()), dtype_name(src.dtype()));
    SYN_CHECK(src.shape() == dst.shape(), "load_state_dict: shape mismatch for '{}': expected {}, found {}", n,
              to_string(dst.shape()), to_string(src.shape()));
  }
  for (const auto& [n, dst] : own) {
    auto it = state.find(n);
    if (it == state.end()) continue;
    // Into the existing storage: optimizers and layers hold handles to it.
    std::memmove(dst.raw_data(), it->second.raw_data(), dst.nbytes());
  }
}

std::int64_t Module::count_parameters(bool trainable_only) const {
  std::vector<std::pair<std::string, Tensor>> all;
  collect("", true, !trainable_only, trainable_only, all);
  std::int64_t n = 0;
  for (const auto& [name, t] : all) n += t.numel();
  return n;
}

void Module::set_trainable(bool on) {
  trainable_ = on;
  for (auto& e : params_) {
    e.trainable = on;
    e.value.requires_grad_(on);
  }
  for (auto& c : children_) c->set_trainable(on);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c->train(on);
}

Generator& Module::generator() const { return gen_ ? *gen_ : default_generator(); }

void Module::set_generator(Generator* g) {
  gen_ = g;
  for (auto& c : children_) c->set_generator(g);
}

// ---- summary ----

namespace {

constexpr std::size_t kNameWidth = 29, kShapeWidth = 26, kLineWidth = 65;

// "(None, 28, 28, 32)"; "?" when the module has not run yet.
std::string shape_text(const Module& m) {
  if (!m.has_output_shape()) return "?";
  std::string s = "(";
  for (std::size_t i = 0; i < m.output_shape().size(); ++i) {
    const auto d = m.output_shape()[i];
    s += (i ? ", " : "") + (d < 0 ? std::string("None") : std::to_string(d));
  }
  if (m.output_shape().size() == 1) s += ",";  // a 1-tuple, as Python prints it
  return s + ")";
}

// 3274634 -> "3,274,634"
std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Pads to `width` (at least one character wider than the text).
std::string column(const std::string& text, std::size_t width) { return text + std::string(width - text.size(), ' '); }

}  // namespace

void Module::summary(std::ostream& os) const {
  // One row per direct child (or for the module itself when it has none).
  std::vector<const Module*> rows;
  for (const auto& c : children_) rows.push_back(c.get());
  if (rows.empty()) rows.push_back(this);
  struct Row {
    std::string layer, shape, params;
  };
  std::vector<Row> text;
  // Keras' columns (29, 26, the rest of 65), widened when a name or shape needs it.
  std::size_t name_w = kNameWidth, shape_w = kShapeWidth;
  for (const Module* m : rows) {
    text.push_back({m->name() + " (" + m->type() + ")", shape_text(*m), with_commas(m->count_parameters())});
    name_w = std::max(name_w, text.back().layer.size() + 1);
    shape_w = std::max(shape_w, text.back().shape.size() + 1);
  }
  const std::string rule(name_w + shape_w + (kLineWidth - kNameWidth - kShapeWidth), '=');
  os << "Model: \"" << name_ << "\"\n";
  os << column("Layer (type)", name_w) << column("Output Shape", shape_w) << "Param #\n" << rule << "\n";
  for (const Row& r : text) os << column(r.layer, name_w) << column(r.shape, shape_w) << r.params << "\n";
  const std::int64_t total = count_parameters(), trainable = count_parameters(true);
  os << rule << "\n";
  os << "Total params: " << with_commas(total) << "\n";
  os << "Trainable params: " << with_commas(trainable) << "\n";
  os << "Non-trainable params: " << with_commas(total - trainable) << "\n";
}

void Module::summary() const { summary(std::cout); }

}  // namespace synapse::nn
