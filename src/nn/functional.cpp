// The functional API: symbolic tensors, layer calls, merge layers and nn::Model (see functional.h).
#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>
#include <unordered_map>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/nn.h"

namespace synapse::nn {

namespace internal {
// One call of a layer on symbolic tensors. `id` grows with every call made, so sorting calls by id
// is a topological order (a call's inputs exist before it).
struct LayerCall {
  std::shared_ptr<Module> layer;
  std::vector<SymbolicTensor> inputs;
  TensorMeta output;  // batch dimension -1
  std::int64_t id = 0;
};
}  // namespace internal

namespace {

std::int64_t next_call_id() {
  static std::atomic<std::int64_t> counter{0};
  return counter++;
}

std::string who(const Module& m) { return m.type() + " '" + m.name() + "'"; }

// "(None, 28, 28, 32)"
std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + (s[i] < 0 ? std::string("None") : std::to_string(s[i]));
  if (s.size() == 1) t += ",";
  return t + ")";
}

}  // namespace

// ---- symbolic tensors ----

const Shape& SymbolicTensor::shape() const {
  SYN_CHECK(call_, "an undefined symbolic tensor has no shape");
  return call_->output.shape;
}
DType SymbolicTensor::dtype() const {
  SYN_CHECK(call_, "an undefined symbolic tensor has no dtype");
  return call_->output.dtype;
}
Module& SymbolicTensor::layer() const {
  SYN_CHECK(call_, "an undefined symbolic tensor has no layer");
  return *call_->layer;
}

SymbolicTensor Input(const Shape& shape, std::string name, DType dtype) {
  for (auto d : shape)
    SYN_CHECK(d >= 1, "Input: the shape (without the batch dimension) must have known positive extents, got {}",
              to_string(shape));
  auto layer = std::make_shared<layers::InputLayer>(shape, dtype);
  if (!name.empty()) layer->set_name(std::move(name));
  auto call = std::make_shared<internal::LayerCall>();
  call->layer = layer;
  Shape full{-1};
  full.insert(full.end(), shape.begin(), shape.end());
  call->output = {full, dtype};
  call->id = next_call_id();
  return {call, 0};
}

SymbolicTensor Module::operator()(const SymbolicTensor& x) { return (*this)(std::vector<SymbolicTensor>{x}); }

SymbolicTensor Module::operator()(const std::vector<SymbolicTensor>& xs) {
  std::shared_ptr<Module> self = weak_from_this().lock();
  SYN_CHECK(self != nullptr, "{}: a layer called on symbolic tensors must be owned by a std::shared_ptr (make it with "
            "its nn:: factory)", who(*this));
  SYN_CHECK(!xs.empty(), "{}: called on no symbolic tensors", who(*this));
  for (std::size_t i = 0; i < xs.size(); ++i)
    SYN_CHECK(xs[i].defined(), "{}: symbolic input {} is undefined", who(*this), i);
  auto* merge = dynamic_cast<layers::MergeLayer*>(this);
  SYN_CHECK(merge != nullptr || xs.size() == 1,
            "{}: called on {} symbolic tensors; only merge layers (Add, Multiply, Concatenate) take several", who(*this),
            xs.size());
  SYN_CHECK(dynamic_cast<layers::InputLayer*>(this) == nullptr, "{}: an InputLayer cannot be called", who(*this));
  // The output shape: run the layer once on a zero batch of one (this also builds it), in inference
  // mode and without gradients; its mode and carried state are restored afterwards.
  std::vector<Tensor> zs;
  for (const auto& x : xs) {
    Shape s = x.shape();
    s[0] = 1;
    zs.push_back(zeros(s, x.dtype()));
  }
  const bool was_training = is_training();
  eval();
  Tensor y;
  try {
    NoGradGuard no_grad;
    y = merge ? (*merge)(zs) : (*this)(zs[0]);
  } catch (const Error& e) {
    train(was_training);
    std::string shapes;
    for (const auto& x : xs) shapes += (shapes.empty() ? "" : ", ") + shape_text(x.shape());
    throw Error(fmt::format("{} called on {}: {}", who(*this), shapes, e.what()));
  }
  train(was_training);
  reset_states();
  auto call = std::make_shared<internal::LayerCall>();
  call->layer = self;
  call->inputs = xs;
  Shape out = y.shape();
  if (!out.empty()) out[0] = -1;
  call->output = {out, y.dtype()};
  call->id = next_call_id();
  return {call, 0};
}

namespace layers {

// ---- InputLayer and merge layers ----

InputLayer::InputLayer(Shape shape, DType dtype) : Module("InputLayer"), shape_(std::move(shape)), dtype_(dtype) {}

Tensor InputLayer::forward(const Tensor& x) {
  const bool ok = x.ndim() == static_cast<std::int64_t>(shape_.size()) + 1 &&
                  (any_spatial_size_ ? shape_.empty() || x.shape().back() == shape_.back()
                                     : std::equal(shape_.begin(), shape_.end(), x.shape().begin() + 1,
                                                  [](std::int64_t want, std::int64_t got) { return got < 0 || want == got; }));
  if (!ok) {
    Shape want{-1};
    want.insert(want.end(), shape_.begin(), shape_.end());
    detail::fail("{}: expected inputs {} (batch first), got shape {}", who(*this), shape_text(want), to_string(x.shape()));
  }
  return x;
}

Tensor MergeLayer::operator()(const std::vector<Tensor>& xs) {
  SYN_CHECK(!xs.empty(), "{}: called on no tensors", who(*this));
  build_once(xs[0].shape());
  Tensor y = merge(xs);
  record_output_shape(y.shape());
  return y;
}

Tensor MergeLayer::forward(const Tensor& x) {
  detail::fail("{}: a merge layer takes a list of at least 2 tensors, got one tensor of shape {}", who(*this),
               to_string(x.shape()));
}

void MergeLayer::check_inputs(const std::vector<Tensor>& xs, bool same_shape) const {
  SYN_CHECK(xs.size() >= 2, "{}: a merge layer takes at least 2 inputs, got {}", who(*this), xs.size());
  for (std::size_t i = 1; i < xs.size() && same_shape; ++i)
    SYN_CHECK(xs[i].shape() == xs[0].shape(), "{}: inputs must have one shape: input 0 is {}, input {} is {}",
              who(*this), to_string(xs[0].shape()), i, to_string(xs[i].shape()));
}

Add::Add() : MergeLayer("Add") {}
Tensor Add::merge(const std::vector<Tensor>& xs) {
  check_inputs(xs, true);
  Tensor y = xs[0];
  for (std::size_t i = 1; i < xs.size(); ++i) y = y + xs[i];
  return y;
}

Multiply::Multiply() : MergeLayer("Multiply") {}
Tensor Multiply::merge(const std::vector<Tensor>& xs) {
  check_inputs(xs, true);
  Tensor y = xs[0];
  for (std::size_t i = 1; i < xs.size(); ++i) y = y * xs[i];
  return y;
}

Concatenate::Concatenate(std::int64_t axis) : MergeLayer("Concatenate"), axis_(axis) {}
Tensor Concatenate::merge(const std::vector<Tensor>& xs) {
  check_inputs(xs, false);
  return concat(xs, axis_);
}

// ---- Model ----

Model::Model(std::vector<SymbolicTensor> inputs, std::vector<SymbolicTensor> outputs, std::string name)
    : Module("Functional"), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {
  if (!name.empty()) set_name(std::move(name));
  SYN_CHECK(!inputs_.empty() && !outputs_.empty(), "Model '{}': needs at least one input and one output (got {} and {})",
            this->name(), inputs_.size(), outputs_.size());
  std::set<const internal::LayerCall*> input_calls;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    SYN_CHECK(inputs_[i].defined() && dynamic_cast<InputLayer*>(&inputs_[i].layer()) != nullptr,
              "Model '{}': input {} is not an nn::Input", this->name(), i);
    SYN_CHECK(input_calls.insert(inputs_[i].call().get()).second, "Model '{}': input {} ('{}') is listed twice",
              this->name(), i, inputs_[i].layer().name());
  }
  // The calls the outputs need, walking back to the inputs.
  std::set<const internal::LayerCall*> seen;
  std::vector<std::shared_ptr<internal::LayerCall>> stack;
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    SYN_CHECK(outputs_[i].defined(), "Model '{}': output {} is undefined", this->name(), i);
    stack.push_back(outputs_[i].call());
  }
  for (const auto& in : inputs_) stack.push_back(in.call());
  while (!stack.empty()) {
    auto c = stack.back();
    stack.pop_back();
    if (!seen.insert(c.get()).second) continue;
    calls_.push_back(c);
    if (input_calls.contains(c.get())) continue;
    SYN_CHECK(dynamic_cast<InputLayer*>(c->layer.get()) == nullptr,
              "Model '{}': graph disconnected: the outputs need input '{}', which is not among the model's inputs",
              this->name(), c->layer->name());
    for (const auto& x : c->inputs) stack.push_back(x.call());
  }
  std::sort(calls_.begin(), calls_.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
  std::set<const Module*> added;
  for (const auto& c : calls_)
    if (added.insert(c->layer.get()).second) add_child(c->layer);
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& inputs, const std::vector<const internal::LayerCall*>& targets) {
  SYN_CHECK(inputs.size() == inputs_.size(), "Model '{}': expected {} input(s), got {}", name(), inputs_.size(),
            inputs.size());
  // What the targets need.
  std::set<const internal::LayerCall*> needed;
  std::vector<const internal::LayerCall*> stack(targets.begin(), targets.end());
  while (!stack.empty()) {
    const auto* c = stack.back();
    stack.pop_back();
    if (!needed.insert(c).second) continue;
    for (const auto& x : c->inputs) stack.push_back(x.call().get());
  }
  std::unordered_map<const internal::LayerCall*, Tensor> values;
  for (std::size_t i = 0; i < inputs_.size(); ++i) values[inputs_[i].call().get()] = inputs_[i].layer()(inputs[i]);
  for (const auto& c : calls_) {
    if (!needed.contains(c.get()) || values.contains(c.get())) continue;
    std::vector<Tensor> xs;
    for (const auto& x : c->inputs) xs.push_back(values.at(x.call().get()));
    if (auto* merge = dynamic_cast<MergeLayer*>(c->layer.get()))
      values[c.get()] = (*merge)(xs);
    else
      values[c.get()] = (*c->layer)(xs[0]);
  }
  std::vector<Tensor> out;
  for (const auto* t : targets) out.push_back(values.at(t));
  return out;
}

std::vector<Tensor> Model::call(const std::vector<Tensor>& inputs) {
  std::vector<const internal::LayerCall*> targets;
  for (const auto& o : outputs_) targets.push_back(o.call().get());
  return run(inputs, targets);
}

Tensor Model::forward(const Tensor& x) { return run({x}, {outputs_[0].call().get()})[0]; }

SymbolicTensor Model::output_of(const std::string& layer_name) const {
  for (const auto& c : calls_)
    if (c->layer->name() == layer_name) return {c, 0};
  child(layer_name);  // throws listing the layers
  detail::fail("Model '{}': layer '{}' is never called", name(), layer_name);
}

std::map<std::string, Tensor> Model::outputs_of(const std::vector<std::string>& layer_names,
                                                const std::vector<Tensor>& inputs) {
  std::vector<const internal::LayerCall*> targets;
  for (const auto& n : layer_names) targets.push_back(output_of(n).call().get());
  const std::vector<Tensor> values = run(inputs, targets);
  std::map<std::string, Tensor> out;
  for (std::size_t i = 0; i < layer_names.size(); ++i) out[layer_names[i]] = values[i];
  return out;
}

namespace {

// The convolution's kernel and bias with the batch normalisation after it folded in.
std::pair<Tensor, Tensor> folded(const Tensor& kernel, const Tensor& bias, const BatchNormalization& bn) {
  NoGradGuard no_grad;
  const std::int64_t out = bn.moving_mean().dim(0);
  Tensor scale = 1.0f / sqrt(bn.moving_variance() + bn.options().epsilon());
  if (bn.gamma().defined()) scale = scale * bn.gamma();
  Tensor b = bias.defined() ? bias : zeros({out});
  b = (b - bn.moving_mean()) * scale;
  if (bn.beta().defined()) b = b + bn.beta();
  // Output channels are the kernel's last axis (Conv2D) or its last two (depthwise: c*M + m).
  Tensor k = reshape(kernel, {-1, out}) * scale;
  return {reshape(k, kernel.shape()).detach(), b.detach()};
}

}  // namespace

std::shared_ptr<Model> Model::fold_batch_norm() const {
  // Consumers of each call, to find convolutions read by their batch normalisation only.
  std::unordered_map<const internal::LayerCall*, int> readers;
  std::unordered_map<const Module*, int> calls_of;
  for (const auto& c : calls_) {
    ++calls_of[c->layer.get()];
    for (const auto& x : c->inputs) ++readers[x.call().get()];
  }
  for (const auto& o : outputs_) ++readers[o.call().get()];
  std::unordered_map<const internal::LayerCall*, const internal::LayerCall*> fold;  // conv call -> bn call
  for (const auto& c : calls_) {
    auto* bn = dynamic_cast<BatchNormalization*>(c->layer.get());
    if (!bn || c->inputs.size() != 1 || calls_of[bn] != 1) continue;
    const internal::LayerCall* conv = c->inputs[0].call().get();
    const Module* l = conv->layer.get();
    const bool rank4_last = c->output.shape.size() == 4 && (bn->options().axis() == -1 || bn->options().axis() == 3);
    const auto* c2 = dynamic_cast<const Conv2D*>(l);
    const auto* dw = dynamic_cast<const DepthwiseConv2D*>(l);
    const bool plain = (c2 && c2->options().activation() == nn::Activation::None) ||
                       (dw && dw->options().activation() == nn::Activation::None);
    if (plain && rank4_last && readers[conv] == 1 && calls_of[l] == 1) fold[conv] = c.get();
  }
  std::unordered_map<const internal::LayerCall*, SymbolicTensor> made;
  for (const auto& in : inputs_) made[in.call().get()] = in;
  for (const auto& c : calls_) {
    if (made.contains(c.get())) continue;
    std::vector<SymbolicTensor> xs;
    for (const auto& x : c->inputs) xs.push_back(made.at(x.call().get()));
    if (auto it = fold.find(c.get()); it != fold.end()) {
      const auto& bn = dynamic_cast<const BatchNormalization&>(*it->second->layer);
      ModulePtr conv;
      std::pair<Tensor, Tensor> kb;
      if (const auto* c2 = dynamic_cast<const Conv2D*>(c->layer.get())) {
        Conv2DOptions o = c2->options();
        conv = std::make_shared<Conv2D>(o.use_bias(true).name(c2->name()));
        kb = folded(c2->kernel(), c2->bias(), bn);
      } else {
        const auto& d = dynamic_cast<const DepthwiseConv2D&>(*c->layer);
        DepthwiseConv2DOptions o = d.options();
        conv = std::make_shared<DepthwiseConv2D>(o.use_bias(true).name(d.name()));
        kb = folded(d.kernel(), d.bias(), bn);
      }
      SymbolicTensor y = (*conv)(xs[0]);
      const bool depthwise = dynamic_cast<const DepthwiseConv2D*>(c->layer.get()) != nullptr;
      conv->load_state_dict({{"bias", kb.second}, {depthwise ? "depthwise_kernel" : "kernel", kb.first}});
      made[c.get()] = y;
      made[it->second] = y;  // the batch normalisation's output is the folded convolution's
      continue;
    }
    made[c.get()] = xs.size() == 1 && !dynamic_cast<MergeLayer*>(c->layer.get()) ? (*c->layer)(xs[0]) : (*c->layer)(xs);
  }
  std::vector<SymbolicTensor> outs;
  for (const auto& o : outputs_) outs.push_back(made.at(o.call().get()));
  return std::make_shared<Model>(inputs_, outs, name());
}

void Model::summary(std::ostream& os) const {
  // Which call of its layer each call is (for "name[call][output]").
  std::unordered_map<const internal::LayerCall*, int> call_index;
  std::unordered_map<const Module*, int> calls_of;
  for (const auto& c : calls_) call_index[c.get()] = calls_of[c->layer.get()]++;
  struct Row {
    std::string layer, shape, params, connected;
  };
  std::vector<Row> rows;
  std::size_t w0 = 33, w1 = 22, w2 = 12;
  for (const auto& child_ptr : children()) {
    Row r{fmt::format("{} ({})", child_ptr->name(), child_ptr->type()), "", std::to_string(child_ptr->count_parameters()),
          ""};
    std::vector<std::string> links;
    for (const auto& c : calls_) {
      if (c->layer != child_ptr) continue;
      if (r.shape.empty()) r.shape = shape_text(c->output.shape);
      for (const auto& x : c->inputs)
        links.push_back(fmt::format("'{}[{}][{}]'", x.layer().name(), call_index.at(x.call().get()), x.index()));
    }
    r.connected = fmt::format("[{}]", fmt::join(links, ", "));
    w0 = std::max(w0, r.layer.size() + 1);
    w1 = std::max(w1, r.shape.size() + 1);
    w2 = std::max(w2, r.params.size() + 1);
    rows.push_back(std::move(r));
  }
  auto pad = [](const std::string& s, std::size_t w) { return s + std::string(w > s.size() ? w - s.size() : 1, ' '); };
  const std::size_t width = w0 + w1 + w2 + 32;
  os << "Model: \"" << name() << "\"\n";
  os << pad("Layer (type)", w0) << pad("Output Shape", w1) << pad("Param #", w2) << "Connected to\n";
  os << std::string(width, '=') << "\n";
  for (const auto& r : rows) os << pad(r.layer, w0) << pad(r.shape, w1) << pad(r.params, w2) << r.connected << "\n";
  os << std::string(width, '=') << "\n";
  const std::int64_t total = count_parameters(), trainable = count_parameters(true);
  os << "Total params: " << total << "\nTrainable params: " << trainable << "\nNon-trainable params: " << total - trainable
     << "\n";
}

}  // namespace layers

// ---- factories ----

namespace {
template <class M> std::shared_ptr<M> named(std::shared_ptr<M> m, std::string name) {
  if (!name.empty()) m->set_name(std::move(name));
  return m;
}
}  // namespace

std::shared_ptr<layers::Model> Model(std::vector<SymbolicTensor> inputs, std::vector<SymbolicTensor> outputs,
                                     std::string name) {
  return std::make_shared<layers::Model>(std::move(inputs), std::move(outputs), std::move(name));
}
std::shared_ptr<layers::Add> Add(std::string name) { return named(std::make_shared<layers::Add>(), std::move(name)); }
std::shared_ptr<layers::Multiply> Multiply(std::string name) {
  return named(std::make_shared<layers::Multiply>(), std::move(name));
}
std::shared_ptr<layers::Concatenate> Concatenate(std::int64_t axis, std::string name) {
  return named(std::make_shared<layers::Concatenate>(axis), std::move(name));
}

std::shared_ptr<layers::DepthwiseConv2D> DepthwiseConv2D(DepthwiseConv2DOptions o) {
  return std::make_shared<layers::DepthwiseConv2D>(std::move(o));
}
std::shared_ptr<layers::SeparableConv2D> SeparableConv2D(SeparableConv2DOptions o) {
  return std::make_shared<layers::SeparableConv2D>(std::move(o));
}
std::shared_ptr<layers::ReLULayer> ReLU(ReLUOptions o) { return std::make_shared<layers::ReLULayer>(std::move(o)); }
std::shared_ptr<layers::ReLULayer> ReLU6(std::string name) {
  return std::make_shared<layers::ReLULayer>(ReLUOptions().max_value(6.0f).name(std::move(name)));
}
std::shared_ptr<layers::ActivationByName> ActivationByName(std::string activation, std::string name) {
  return named(std::make_shared<layers::ActivationByName>(std::move(activation)), std::move(name));
}
std::shared_ptr<layers::ZeroPadding2D> ZeroPadding2D(std::vector<std::pair<std::int64_t, std::int64_t>> padding,
                                                     std::string name) {
  return named(std::make_shared<layers::ZeroPadding2D>(std::move(padding)), std::move(name));
}
std::shared_ptr<layers::ZeroPadding2D> ZeroPadding2D(std::int64_t padding, std::string name) {
  return ZeroPadding2D({{padding, padding}, {padding, padding}}, std::move(name));
}
std::shared_ptr<layers::GlobalAveragePooling2D> GlobalAveragePooling2D(bool keepdims, std::string name) {
  return named(std::make_shared<layers::GlobalAveragePooling2D>(keepdims), std::move(name));
}
std::shared_ptr<layers::GlobalMaxPooling2D> GlobalMaxPooling2D(bool keepdims, std::string name) {
  return named(std::make_shared<layers::GlobalMaxPooling2D>(keepdims), std::move(name));
}
std::shared_ptr<layers::Reshape> Reshape(Shape target_shape, std::string name) {
  return named(std::make_shared<layers::Reshape>(std::move(target_shape)), std::move(name));
}

}  // namespace synapse::nn
