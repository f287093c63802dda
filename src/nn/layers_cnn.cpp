// The layers pretrained CNNs need (MobileNet, Inception, ResNet): depthwise and separable convolutions,
// Keras' ReLU with max_value (ReLU6), activations by name, zero padding, global pooling, reshape.
#include <limits>

#include "core/check.h"
#include "synapse/nn.h"

namespace synapse::nn {
namespace layers {
namespace {

std::string who(const Module& m) { return m.type() + " '" + m.name() + "'"; }

void apply_name(Module& m, const std::string& name) {
  if (!name.empty()) m.set_name(name);
}

std::vector<std::int64_t> pair_of(const std::vector<std::int64_t>& v, const char* what, const char* layer) {
  SYN_CHECK(v.size() == 1 || v.size() == 2, "{}: {} must have 1 or 2 entries (h, w), got {}", layer, what, v.size());
  std::vector<std::int64_t> p = v.size() == 1 ? std::vector<std::int64_t>{v[0], v[0]} : v;
  SYN_CHECK(p[0] >= 1 && p[1] >= 1, "{}: {} must be at least 1, got ({}, {})", layer, what, p[0], p[1]);
  return p;
}

void check_nhwc(const Module& m, const Tensor& x) {
  SYN_CHECK(x.ndim() == 4, "{}: expected NHWC inputs of rank 4, got shape {}", who(m), to_string(x.shape()));
}

}  // namespace

// ---- DepthwiseConv2D ----

DepthwiseConv2D::DepthwiseConv2D(DepthwiseConv2DOptions o) : Module("DepthwiseConv2D"), o_(std::move(o)) {
  SYN_CHECK(o_.depth_multiplier() >= 1, "DepthwiseConv2D: depth_multiplier must be positive, got {}",
            o_.depth_multiplier());
  o_.kernel_size(pair_of(o_.kernel_size(), "kernel_size", "DepthwiseConv2D"));
  o_.strides(pair_of(o_.strides(), "strides", "DepthwiseConv2D"));
  o_.dilation_rate(pair_of(o_.dilation_rate(), "dilation_rate", "DepthwiseConv2D"));
  apply_name(*this, o_.name());
}

void DepthwiseConv2D::build(const Shape& s) {
  SYN_CHECK(s.size() == 4, "{}: expected NHWC inputs of rank 4, got shape {}", who(*this), to_string(s));
  const auto& k = o_.kernel_size();
  const std::int64_t m = o_.depth_multiplier();
  kernel_ = add_parameter("depthwise_kernel", o_.depthwise_initializer()({k[0], k[1], s[3], m}, generator()));
  if (o_.use_bias()) bias_ = add_parameter("bias", o_.bias_initializer()({s[3] * m}, generator()));
}

Tensor DepthwiseConv2D::forward(const Tensor& x) {
  check_nhwc(*this, x);
  SYN_CHECK(x.dim(3) == kernel_.dim(2), "{}: expected NHWC inputs [N, H, W, {}], got shape {}", who(*this),
            kernel_.dim(2), to_string(x.shape()));
  const synapse::Conv2DAttrs co{.strides = o_.strides(), .dilation_rate = o_.dilation_rate(), .padding = o_.padding()};
  return activate(depthwise_conv2d(x, kernel_, bias_, co), o_.activation());
}

// ---- SeparableConv2D ----

SeparableConv2D::SeparableConv2D(SeparableConv2DOptions o) : Module("SeparableConv2D"), o_(std::move(o)) {
  SYN_CHECK(o_.filters() > 0, "SeparableConv2D: filters must be positive, got {}", o_.filters());
  SYN_CHECK(o_.depth_multiplier() >= 1, "SeparableConv2D: depth_multiplier must be positive, got {}",
            o_.depth_multiplier());
  o_.kernel_size(pair_of(o_.kernel_size(), "kernel_size", "SeparableConv2D"));
  o_.strides(pair_of(o_.strides(), "strides", "SeparableConv2D"));
  o_.dilation_rate(pair_of(o_.dilation_rate(), "dilation_rate", "SeparableConv2D"));
  apply_name(*this, o_.name());
}

void SeparableConv2D::build(const Shape& s) {
  SYN_CHECK(s.size() == 4, "{}: expected NHWC inputs of rank 4, got shape {}", who(*this), to_string(s));
  const auto& k = o_.kernel_size();
  const std::int64_t m = o_.depth_multiplier();
  depthwise_ = add_parameter("depthwise_kernel", o_.depthwise_initializer()({k[0], k[1], s[3], m}, generator()));
  pointwise_ = add_parameter("pointwise_kernel", o_.pointwise_initializer()({1, 1, s[3] * m, o_.filters()}, generator()));
  if (o_.use_bias()) bias_ = add_parameter("bias", o_.bias_initializer()({o_.filters()}, generator()));
}

Tensor SeparableConv2D::forward(const Tensor& x) {
  check_nhwc(*this, x);
  SYN_CHECK(x.dim(3) == depthwise_.dim(2), "{}: expected NHWC inputs [N, H, W, {}], got shape {}", who(*this),
            depthwise_.dim(2), to_string(x.shape()));
  const synapse::Conv2DAttrs dw{.strides = o_.strides(), .dilation_rate = o_.dilation_rate(), .padding = o_.padding()};
  const Tensor d = depthwise_conv2d(x, depthwise_, {}, dw);
  const bool relu = o_.activation() == nn::Activation::ReLU;
  const Tensor y = conv2d(d, pointwise_, bias_, {.relu = relu});
  return relu ? y : activate(y, o_.activation());
}

// ---- activations ----

ReLULayer::ReLULayer(ReLUOptions o) : Module("ReLU"), o_(std::move(o)) {
  SYN_CHECK(!o_.max_value() || *o_.max_value() >= 0.0f, "ReLU: max_value must be >= 0, got {}", *o_.max_value());
  SYN_CHECK(o_.negative_slope() >= 0.0f, "ReLU: negative_slope must be >= 0, got {}", o_.negative_slope());
  apply_name(*this, o_.name());
}

Tensor ReLULayer::forward(const Tensor& x) {
  const float slope = o_.negative_slope(), thr = o_.threshold();
  const float hi = o_.max_value() ? *o_.max_value() : std::numeric_limits<float>::infinity();
  if (slope == 0.0f && thr == 0.0f) return o_.max_value() ? clip(x, 0.0f, hi) : relu(x);
  // x below the threshold: slope * (x - threshold); then capped at max_value.
  Tensor below = slope == 0.0f ? zeros_like(x) : (x - thr) * slope;
  Tensor y = where(less(x, full({}, thr)), below, x);
  return o_.max_value() ? clip(y, -std::numeric_limits<float>::infinity(), hi) : y;
}

ActivationByName::ActivationByName(std::string activation) : Module("Activation"), a_(std::move(activation)) {
  static const std::vector<std::string> known{"linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "swish"};
  SYN_CHECK(std::find(known.begin(), known.end(), a_) != known.end(),
            "Activation: unsupported activation '{}' (supported: {})", a_, fmt::join(known, ", "));
}

Tensor ActivationByName::forward(const Tensor& x) {
  if (a_ == "linear") return x;
  if (a_ == "relu") return relu(x);
  if (a_ == "relu6") return clip(x, 0.0f, 6.0f);
  if (a_ == "sigmoid") return sigmoid(x);
  if (a_ == "tanh") return tanh(x);
  if (a_ == "softmax") return softmax(x, -1);
  return x * sigmoid(x);  // swish
}

// ---- padding, global pooling, reshape ----

ZeroPadding2D::ZeroPadding2D(std::vector<std::pair<std::int64_t, std::int64_t>> padding)
    : Module("ZeroPadding2D"), padding_(std::move(padding)) {
  SYN_CHECK(padding_.size() == 2, "ZeroPadding2D: padding must be ((top, bottom), (left, right)), got {} pairs",
            padding_.size());
  for (const auto& [a, b] : padding_)
    SYN_CHECK(a >= 0 && b >= 0, "ZeroPadding2D: padding must be >= 0, got ({}, {})", a, b);
}

Tensor ZeroPadding2D::forward(const Tensor& x) {
  check_nhwc(*this, x);
  return pad(x, {{0, 0}, padding_[0], padding_[1], {0, 0}});
}

GlobalAveragePooling2D::GlobalAveragePooling2D(bool keepdims) : Module("GlobalAveragePooling2D"), keepdims_(keepdims) {}
Tensor GlobalAveragePooling2D::forward(const Tensor& x) {
  check_nhwc(*this, x);
  return mean(x, {1, 2}, keepdims_);
}

GlobalMaxPooling2D::GlobalMaxPooling2D(bool keepdims) : Module("GlobalMaxPooling2D"), keepdims_(keepdims) {}
Tensor GlobalMaxPooling2D::forward(const Tensor& x) {
  check_nhwc(*this, x);
  return max(x, {1, 2}, keepdims_);
}

Reshape::Reshape(Shape target_shape) : Module("Reshape"), target_(std::move(target_shape)) {
  SYN_CHECK(std::count(target_.begin(), target_.end(), -1) <= 1, "Reshape: at most one -1 in target_shape {}",
            to_string(target_));
}

Tensor Reshape::forward(const Tensor& x) {
  SYN_CHECK(x.ndim() >= 1, "{}: expected inputs with a batch dimension, got a scalar", who(*this));
  std::int64_t have = 1, known = 1;
  for (std::int64_t i = 1; i < x.ndim(); ++i) have *= x.dim(i);
  for (auto d : target_) known *= d < 0 ? 1 : d;
  Shape s{-1};
  for (auto d : target_) s.push_back(d < 0 ? (known ? have / known : 0) : d);
  std::int64_t want = 1;
  for (std::size_t i = 1; i < s.size(); ++i) want *= s[i];
  SYN_CHECK(want == have, "{}: cannot reshape {} to (None, {}): {} elements per example, target has {}", who(*this),
            to_string(x.shape()), fmt::join(target_, ", "), have, want);
  return reshape(x, s);
}

}  // namespace layers

}  // namespace synapse::nn
