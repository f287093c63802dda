// The layers: each is a Module whose forward is a short composition of public ops, so gradients come
// from the ops' own gradient definitions.
#include <cstring>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/graph.h"
#include "synapse/nn.h"

namespace synapse::nn {
namespace layers {
namespace {

// (h, w) from one value (both) or two; every entry at least `min`.
std::vector<std::int64_t> pair_of(const std::vector<std::int64_t>& v, const char* what, const std::string& layer,
                                  std::int64_t min = 1) {
  SYN_CHECK(v.size() == 1 || v.size() == 2, "{}: {} must have 1 or 2 entries (h, w), got {}", layer, what, v.size());
  std::vector<std::int64_t> p = v.size() == 1 ? std::vector<std::int64_t>{v[0], v[0]} : v;
  SYN_CHECK(p[0] >= min && p[1] >= min, "{}: {} must be at least {}, got ({}, {})", layer, what, min, p[0], p[1]);
  return p;
}

// "Conv2D 'conv1'": how layer errors start.
std::string who(const Module& m) { return m.type() + " '" + m.name() + "'"; }

void apply_name(Module& m, const std::string& name) {
  if (!name.empty()) m.set_name(name);
}

}  // namespace

// ---- Dense ----

Dense::Dense(DenseOptions o) : Module("Dense"), o_(std::move(o)) {
  SYN_CHECK(o_.units() > 0, "Dense: units must be positive, got {}", o_.units());
  apply_name(*this, o_.name());
}

void Dense::build(const Shape& s) {
  SYN_CHECK(s.size() >= 2, "{}: expected inputs of rank >= 2 [batch, ..., features], got shape {}", who(*this),
            to_string(s));
  kernel_ = add_parameter("kernel", o_.kernel_initializer()({s.back(), o_.units()}, generator()));
  if (o_.use_bias()) bias_ = add_parameter("bias", o_.bias_initializer()({o_.units()}, generator()));
}

Tensor Dense::forward(const Tensor& x) {
  // x [..., in] · kernel [in, units] -> [..., units]
  SYN_CHECK(x.ndim() >= 2 && x.dim(-1) == kernel_.dim(0), "{}: expected inputs [batch, ..., {}], got shape {}",
            who(*this), kernel_.dim(0), to_string(x.shape()));
  if (bias_.defined()) {  // one op: the product, the bias and a relu
    const bool relu = o_.activation() == Activation::ReLU;
    Tensor y = dense(x, kernel_, bias_, {.relu = relu});
    return relu ? y : activate(y, o_.activation());
  }
  return activate(matmul(x, kernel_), o_.activation());
}

// ---- Conv2D ----

Conv2D::Conv2D(Conv2DOptions o) : Module("Conv2D"), o_(std::move(o)) {
  SYN_CHECK(o_.filters() > 0, "Conv2D: filters must be positive, got {}", o_.filters());
  o_.kernel_size(pair_of(o_.kernel_size(), "kernel_size", "Conv2D"));
  o_.strides(pair_of(o_.strides(), "strides", "Conv2D"));
  o_.dilation_rate(pair_of(o_.dilation_rate(), "dilation_rate", "Conv2D"));
  apply_name(*this, o_.name());
}

void Conv2D::build(const Shape& s) {
  SYN_CHECK(s.size() == 4, "{}: expected NHWC inputs of rank 4, got shape {}", who(*this), to_string(s));
  const auto& k = o_.kernel_size();
  kernel_ = add_parameter("kernel", o_.kernel_initializer()({k[0], k[1], s[3], o_.filters()}, generator()));
  if (o_.use_bias()) bias_ = add_parameter("bias", o_.bias_initializer()({o_.filters()}, generator()));
}

Tensor Conv2D::forward(const Tensor& x) {
  // x [N, H, W, C] * kernel [kh, kw, C, filters] -> [N, OH, OW, filters]
  SYN_CHECK(x.ndim() == 4 && x.dim(3) == kernel_.dim(2), "{}: expected NHWC inputs [N, H, W, {}], got shape {}",
            who(*this), kernel_.dim(2), to_string(x.shape()));
  const bool relu = o_.activation() == Activation::ReLU;  // applied inside the convolution
  const synapse::Conv2DAttrs co{
      .strides = o_.strides(), .dilation_rate = o_.dilation_rate(), .padding = o_.padding(), .relu = relu};
  Tensor y = bias_.defined() ? conv2d(x, kernel_, bias_, co) : conv2d(x, kernel_, co);
  return relu ? y : activate(y, o_.activation());
}

// ---- pooling ----

namespace {

// Checks the options once and fills in the default strides (the pool size).
void normalize_pool(Pool2DOptions& o, const char* type) {
  o.pool_size(pair_of(o.pool_size(), "pool_size", type));
  o.strides(o.strides().empty() ? o.pool_size() : pair_of(o.strides(), "strides", type));
}

synapse::Pool2DAttrs op_options(const Pool2DOptions& o) {
  return {.pool_size = o.pool_size(), .strides = o.strides(), .padding = o.padding()};
}

}  // namespace

// Keras' class names (MaxPool2D is its alias), so the default names are "max_pooling2d", ...
MaxPool2D::MaxPool2D(Pool2DOptions o) : Module("MaxPooling2D"), o_(std::move(o)) {
  normalize_pool(o_, "MaxPooling2D");
  apply_name(*this, o_.name());
}

Tensor MaxPool2D::forward(const Tensor& x) { return max_pool2d(x, op_options(o_)); }

AvgPool2D::AvgPool2D(Pool2DOptions o) : Module("AveragePooling2D"), o_(std::move(o)) {
  normalize_pool(o_, "AveragePooling2D");
  apply_name(*this, o_.name());
}

Tensor AvgPool2D::forward(const Tensor& x) { return avg_pool2d(x, op_options(o_)); }

// ---- shape, dropout, activations ----

Flatten::Flatten() : Module("Flatten") {}

Tensor Flatten::forward(const Tensor& x) {
  SYN_CHECK(x.ndim() >= 1, "{}: expected inputs with a batch dimension, got a scalar", who(*this));
  return flatten(x);
}

Dropout::Dropout(float rate) : Module("Dropout"), rate_(rate) {
  SYN_CHECK(rate >= 0.0f && rate < 1.0f, "Dropout: rate must be in [0, 1), got {}", rate);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, rate_, is_training(), &generator()); }

namespace {
const char* activation_type(Activation a) {
  switch (a) {
    case Activation::ReLU: return "ReLU";
    case Activation::Sigmoid: return "Sigmoid";
    case Activation::Tanh: return "Tanh";
    case Activation::Softmax: return "Softmax";
    case Activation::None: break;
  }
  return "Activation";
}
}  // namespace

ActivationLayer::ActivationLayer(Activation a) : Module(activation_type(a)), a_(a) {}

Tensor ActivationLayer::forward(const Tensor& x) { return activate(x, a_); }

// ---- BatchNormalization ----

BatchNormalization::BatchNormalization(BatchNormalizationOptions o) : Module("BatchNormalization"), o_(std::move(o)) {
  SYN_CHECK(o_.momentum() >= 0.0f && o_.momentum() <= 1.0f, "BatchNormalization: momentum must be in [0, 1], got {}",
            o_.momentum());
  SYN_CHECK(o_.epsilon() > 0.0f, "BatchNormalization: epsilon must be positive, got {}", o_.epsilon());
  apply_name(*this, o_.name());
}

void BatchNormalization::build(const Shape& s) {
  const auto rank = static_cast<std::int64_t>(s.size());
  SYN_CHECK(rank >= 1, "{}: expected inputs of rank >= 1, got a scalar", who(*this));
  axis_ = normalize_axis(o_.axis(), rank, "BatchNormalization axis");
  const std::int64_t c = s[static_cast<std::size_t>(axis_)];
  param_shape_.assign(s.size(), 1);
  param_shape_[static_cast<std::size_t>(axis_)] = c;
  // Keras' order: gamma, beta, moving_mean, moving_variance.
  if (o_.scale()) gamma_ = add_parameter("gamma", o_.gamma_initializer()({c}, generator()));
  if (o_.center()) beta_ = add_parameter("beta", o_.beta_initializer()({c}, generator()));
  moving_mean_ = add_buffer("moving_mean", o_.moving_mean_initializer()({c}, generator()));
  moving_variance_ = add_buffer("moving_variance", o_.moving_variance_initializer()({c}, generator()));
}

void BatchNormalization::update_moving(Tensor& moving, const Tensor& batch_stat) {
  // moving = momentum * moving + (1 - momentum) * batch_stat, in place (no gradient recorded).
  NoGradGuard no_grad;
  const float m = o_.momentum();
  Tensor updated = moving * m + reshape(batch_stat.detach(), moving.shape()) * (1.0f - m);
  std::memcpy(moving.raw_data(), updated.raw_data(), moving.nbytes());
}

Tensor BatchNormalization::forward(const Tensor& x) {
  // x [..., C, ...] with C at axis_; statistics over every other axis, shaped param_shape_.
  const auto c = param_shape_[static_cast<std::size_t>(axis_)];
  SYN_CHECK(x.ndim() == static_cast<std::int64_t>(param_shape_.size()) && x.dim(axis_) == c,
            "{}: expected inputs of rank {} with {} channels on axis {}, got shape {}", who(*this), param_shape_.size(),
            c, axis_, to_string(x.shape()));
  Tensor centered, var;
  // Batch statistics only when training and not frozen (Keras: a BatchNormalization with trainable =
  // False runs in inference mode).
  const bool batch_stats = is_training() && trainable();
  // Traced in training mode (a graph input): the moving statistics are updated by assign nodes tied
  // to the output, and gamma / beta enter as the graph's variables, so graph training matches eager.
  graph::Graph* g = batch_stats ? graph::graph_of(x) : nullptr;
  std::vector<graph::Op> updates;
  if (batch_stats) {
    std::vector<std::int64_t> axes;
    for (std::int64_t d = 0; d < x.ndim(); ++d)
      if (d != axis_) axes.push_back(d);
    const Tensor mean = synapse::mean(x, axes, /*keepdims=*/true);
    centered = x - mean;
    var = synapse::mean(square(centered), axes, /*keepdims=*/true);  // biased, as Keras normalises
    if (g != nullptr) {
      const float m = o_.momentum();
      for (auto [moving, stat] : {std::pair<Tensor*, const Tensor*>{&moving_mean_, &mean}, {&moving_variance_, &var}}) {
        const Tensor state = g->state(*moving);
        updates.push_back(g->assign(state, state * m + reshape(*stat, moving->shape()) * (1.0f - m), "update_moving"));
      }
    } else {
      update_moving(moving_mean_, mean);
      update_moving(moving_variance_, var);
    }
  } else {
    centered = x - reshape(moving_mean_, param_shape_);
    var = reshape(moving_variance_, param_shape_);
  }
  // y = (x - mean) * gamma / sqrt(var + eps) + beta; the factor is computed on the small [C] shape.
  auto param = [&](const Tensor& p) { return reshape(g != nullptr ? g->capture(p) : p, param_shape_); };
  Tensor factor = 1.0f / synapse::sqrt(var + o_.epsilon());
  if (gamma_.defined()) factor = factor * param(gamma_);
  Tensor y = centered * factor;
  if (beta_.defined()) y = y + param(beta_);
  return g != nullptr ? g->with_dependencies(updates, y) : y;
}

// ---- Embedding ----

Embedding::Embedding(EmbeddingOptions o) : Module("Embedding"), o_(std::move(o)) {
  SYN_CHECK(o_.input_dim() > 0 && o_.output_dim() > 0,
            "Embedding: input_dim and output_dim must be positive, got {} and {}", o_.input_dim(), o_.output_dim());
  apply_name(*this, o_.name());
}

void Embedding::build(const Shape& /*input_shape*/) {
  embeddings_ = add_parameter("embeddings", o_.embeddings_initializer()({o_.input_dim(), o_.output_dim()}, generator()));
}

Tensor Embedding::forward(const Tensor& x) {
  // indices [...] -> [..., output_dim]
  SYN_CHECK(x.dtype() == DType::Int32 || x.dtype() == DType::Int64, "{}: expected int32 or int64 indices, got {}",
            who(*this), dtype_name(x.dtype()));
  return gather(embeddings_, x, 0);
}

// ---- Sequential ----

Sequential::Sequential(std::vector<ModulePtr> modules) : Module("Sequential") {
  for (auto& m : modules) add(std::move(m));
}

Sequential& Sequential::add(ModulePtr m) {
  add_child(std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  SYN_CHECK(!children().empty(), "{}: the model has no layers", who(*this));
  Tensor y = x;
  for (const auto& m : children()) y = (*m)(y);
  return y;
}

}  // namespace layers

// ---- factories ----

namespace {
template <class L, class... A> std::shared_ptr<L> make_named(std::string name, A&&... args) {
  auto l = std::make_shared<L>(std::forward<A>(args)...);
  if (!name.empty()) l->set_name(std::move(name));
  return l;
}
}  // namespace

std::shared_ptr<layers::Dense> Dense(DenseOptions o) { return std::make_shared<layers::Dense>(std::move(o)); }
std::shared_ptr<layers::Conv2D> Conv2D(Conv2DOptions o) { return std::make_shared<layers::Conv2D>(std::move(o)); }
std::shared_ptr<layers::Conv2D> Conv2D(std::int64_t filters, std::vector<std::int64_t> kernel_size) {
  return Conv2D(Conv2DOptions(filters, std::move(kernel_size)));
}
std::shared_ptr<layers::MaxPool2D> MaxPool2D(Pool2DOptions o) { return std::make_shared<layers::MaxPool2D>(std::move(o)); }
std::shared_ptr<layers::AvgPool2D> AvgPool2D(Pool2DOptions o) { return std::make_shared<layers::AvgPool2D>(std::move(o)); }
std::shared_ptr<layers::Flatten> Flatten(std::string name) { return make_named<layers::Flatten>(std::move(name)); }
std::shared_ptr<layers::Dropout> Dropout(float rate, std::string name) {
  return make_named<layers::Dropout>(std::move(name), rate);
}
std::shared_ptr<layers::ActivationLayer> ReLU(std::string name) {
  return make_named<layers::ActivationLayer>(std::move(name), Activation::ReLU);
}
std::shared_ptr<layers::ActivationLayer> Sigmoid(std::string name) {
  return make_named<layers::ActivationLayer>(std::move(name), Activation::Sigmoid);
}
std::shared_ptr<layers::ActivationLayer> Tanh(std::string name) {
  return make_named<layers::ActivationLayer>(std::move(name), Activation::Tanh);
}
std::shared_ptr<layers::ActivationLayer> Softmax(std::string name) {
  return make_named<layers::ActivationLayer>(std::move(name), Activation::Softmax);
}
std::shared_ptr<layers::BatchNormalization> BatchNormalization(BatchNormalizationOptions o) {
  return std::make_shared<layers::BatchNormalization>(std::move(o));
}
std::shared_ptr<layers::Embedding> Embedding(EmbeddingOptions o) { return std::make_shared<layers::Embedding>(std::move(o)); }
std::shared_ptr<layers::Embedding> Embedding(std::int64_t input_dim, std::int64_t output_dim) {
  return Embedding(EmbeddingOptions(input_dim, output_dim));
}
std::shared_ptr<layers::Sequential> Sequential(std::vector<ModulePtr> modules, std::string name) {
  return make_named<layers::Sequential>(std::move(name), std::move(modules));
}

}  // namespace synapse::nn
