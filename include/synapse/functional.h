// The functional API (Keras' functional models) and the layers pretrained CNNs need. Included by nn.h.
//
// Layers called on symbolic tensors record a graph of layer calls; nn::Model(inputs, outputs) turns
// it into a Module that runs eagerly (with autograd, gradients w.r.t. the inputs included), traces
// into graph mode, saves its state under the layers' names and exports to ONNX like any Module:
//
//   nn::SymbolicTensor in = nn::Input({32, 32, 3}, "image");          // no batch dimension
//   auto x = (*nn::Conv2D(nn::Conv2DOptions(16, 3).padding(Padding::Same).name("conv")))(in);
//   auto a = (*nn::ReLU6())(x);
//   auto b = (*nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).padding(Padding::Same)))(x);
//   auto y = (*nn::Add("add"))({a, b});                              // merge layers take several inputs
//   auto out = (*nn::Dense(10))((*nn::GlobalAveragePooling2D())(y));
//   auto model = nn::Model({in}, {out}, "net");
//   Tensor logits = (*model)(images);                                 // [N, 32, 32, 3] -> [N, 10]
//   auto feats = model->outputs_of({"conv", "add"}, images);         // named intermediate outputs
//   auto features = nn::Model(model->inputs(), {model->output_of("add")});  // a sub-model, shared layers
//
// Calling a layer on a symbolic tensor builds it and infers its output shape by running it once on a
// zero batch of one (in inference mode, without gradients). A layer may be called several times
// (shared weights); it is one child of the model, named as the layer. The model's children are its
// layers in the order of their first call, InputLayers included; state names are "layer/param".
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace synapse::nn {

namespace internal {
struct LayerCall;  // one call of a layer: the layer, its input symbolic tensors, its output shapes
}

// A symbolic tensor: output `index` of a recorded layer call (Keras' KerasTensor). shape() has -1 for
// the batch dimension.
class SymbolicTensor {
 public:
  SymbolicTensor() = default;
  SymbolicTensor(std::shared_ptr<internal::LayerCall> call, int index) : call_(std::move(call)), index_(index) {}
  bool defined() const { return call_ != nullptr; }
  const Shape& shape() const;
  DType dtype() const;
  // The layer that produced it.
  Module& layer() const;
  int index() const { return index_; }
  const std::shared_ptr<internal::LayerCall>& call() const { return call_; }

 private:
  std::shared_ptr<internal::LayerCall> call_;
  int index_ = 0;
};

// A model input: `shape` without the batch dimension (Keras' Input(shape=...)). The default name is
// "input_layer" (made unique in the model: "input_layer_1", ...).
SymbolicTensor Input(const Shape& shape, std::string name = {}, DType dtype = DType::Float32);

// ---- options of the CNN layers ----
// DepthwiseConv2D: filter "depthwise_kernel" [kh, kw, C, depth_multiplier], bias [C * depth_multiplier].
struct DepthwiseConv2DOptions {
  DepthwiseConv2DOptions(std::vector<std::int64_t> kernel_size) : kernel_size_(std::move(kernel_size)) {}  // NOLINT
  DepthwiseConv2DOptions(std::int64_t kernel_size) : kernel_size_{kernel_size} {}  // NOLINT: implicit
  SYNAPSE_OPTION(std::vector<std::int64_t>, kernel_size);
  SYNAPSE_OPTION(std::int64_t, depth_multiplier) = 1;
  SYNAPSE_OPTION(std::vector<std::int64_t>, strides) = {1, 1};
  SYNAPSE_OPTION(Padding, padding) = Padding::Valid;
  SYNAPSE_OPTION(std::vector<std::int64_t>, dilation_rate) = {1, 1};
  SYNAPSE_OPTION(Activation, activation) = Activation::None;
  SYNAPSE_OPTION(bool, use_bias) = true;
  SYNAPSE_OPTION(Initializer, depthwise_initializer) = Initializer::glorot_uniform();
  SYNAPSE_OPTION(Initializer, bias_initializer) = Initializer::zeros();
  SYNAPSE_OPTION(std::string, name);
};

// SeparableConv2D: a depthwise convolution ("depthwise_kernel" [kh, kw, C, M]) then a 1x1 convolution
// ("pointwise_kernel" [1, 1, C*M, filters]) and the bias [filters].
struct SeparableConv2DOptions {
  SeparableConv2DOptions(std::int64_t filters, std::vector<std::int64_t> kernel_size)
      : filters_(filters), kernel_size_(std::move(kernel_size)) {}
  SeparableConv2DOptions(std::int64_t filters, std::int64_t kernel_size) : filters_(filters), kernel_size_{kernel_size} {}
  SYNAPSE_OPTION(std::int64_t, filters);
  SYNAPSE_OPTION(std::vector<std::int64_t>, kernel_size);
  SYNAPSE_OPTION(std::int64_t, depth_multiplier) = 1;
  SYNAPSE_OPTION(std::vector<std::int64_t>, strides) = {1, 1};
  SYNAPSE_OPTION(Padding, padding) = Padding::Valid;
  SYNAPSE_OPTION(std::vector<std::int64_t>, dilation_rate) = {1, 1};
  SYNAPSE_OPTION(Activation, activation) = Activation::None;
  SYNAPSE_OPTION(bool, use_bias) = true;
  SYNAPSE_OPTION(Initializer, depthwise_initializer) = Initializer::glorot_uniform();
  SYNAPSE_OPTION(Initializer, pointwise_initializer) = Initializer::glorot_uniform();
  SYNAPSE_OPTION(Initializer, bias_initializer) = Initializer::zeros();
  SYNAPSE_OPTION(std::string, name);
};

// Keras' ReLU layer: f(x) = x for threshold <= x (capped at max_value when given), otherwise
// negative_slope * (x - threshold). ReLU6 is max_value 6.
struct ReLUOptions {
  ReLUOptions() = default;
  SYNAPSE_OPTION(std::optional<float>, max_value);
  SYNAPSE_OPTION(float, negative_slope) = 0.0f;
  SYNAPSE_OPTION(float, threshold) = 0.0f;
  SYNAPSE_OPTION(std::string, name);
};

namespace layers {

// The layer behind nn::Input: passes its input through (type "InputLayer").
class InputLayer : public Module {
 public:
  InputLayer(Shape shape, DType dtype);
  Tensor forward(const Tensor& x) override;
  const Shape& input_shape() const { return shape_; }  // without the batch dimension
  DType dtype() const { return dtype_; }
  // Accept any extents but the last (the channels), so that a convolutional prefix of the model runs on
  // images of any size (style transfer's feature networks). Off by default: the declared shape is checked.
  void set_any_spatial_size(bool on) { any_spatial_size_ = on; }

 private:
  Shape shape_;
  DType dtype_;
  bool any_spatial_size_ = false;
};

// A layer of several inputs (Add, Multiply, Concatenate): call it on a list of tensors.
class MergeLayer : public Module {
 public:
  using Module::operator();
  Tensor operator()(const std::vector<Tensor>& xs);
  virtual Tensor merge(const std::vector<Tensor>& xs) = 0;
  // A single tensor is refused: a merge layer needs a list.
  Tensor forward(const Tensor& x) override;

 protected:
  explicit MergeLayer(std::string type) : Module(std::move(type)) {}
  void check_inputs(const std::vector<Tensor>& xs, bool same_shape) const;
};

// Elementwise sum / product of inputs of one shape (broadcasting as the ops do).
class Add : public MergeLayer {
 public:
  Add();
  Tensor merge(const std::vector<Tensor>& xs) override;
};
class Multiply : public MergeLayer {
 public:
  Multiply();
  Tensor merge(const std::vector<Tensor>& xs) override;
};
// Joins the inputs along `axis` (default the last, the channels).
class Concatenate : public MergeLayer {
 public:
  explicit Concatenate(std::int64_t axis = -1);
  Tensor merge(const std::vector<Tensor>& xs) override;
  std::int64_t axis() const { return axis_; }

 private:
  std::int64_t axis_;
};

// [N, H, W, C] -> [N, OH, OW, C * depth_multiplier] with synapse::depthwise_conv2d.
class DepthwiseConv2D : public Module {
 public:
  explicit DepthwiseConv2D(DepthwiseConv2DOptions o);
  void build(const Shape& input_shape) override;
  Tensor forward(const Tensor& x) override;
  const DepthwiseConv2DOptions& options() const { return o_; }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }

 private:
  DepthwiseConv2DOptions o_;
  Tensor kernel_, bias_;
};

class SeparableConv2D : public Module {
 public:
  explicit SeparableConv2D(SeparableConv2DOptions o);
  void build(const Shape& input_shape) override;
  Tensor forward(const Tensor& x) override;
  const SeparableConv2DOptions& options() const { return o_; }

 private:
  SeparableConv2DOptions o_;
  Tensor depthwise_, pointwise_, bias_;
};

// Keras' ReLU(max_value, negative_slope, threshold) (type "ReLU"; nn::ReLU(ReLUOptions) makes it).
class ReLULayer : public Module {
 public:
  explicit ReLULayer(ReLUOptions o);
  Tensor forward(const Tensor& x) override;
  const ReLUOptions& options() const { return o_; }

 private:
  ReLUOptions o_;
};

// Keras' Activation layer (type "Activation") by name: "linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "swish".
class ActivationByName : public Module {
 public:
  explicit ActivationByName(std::string activation);
  Tensor forward(const Tensor& x) override;
  const std::string& activation() const { return a_; }

 private:
  std::string a_;
};

// Zeros around the image: padding {{top, bottom}, {left, right}}.
class ZeroPadding2D : public Module {
 public:
  explicit ZeroPadding2D(std::vector<std::pair<std::int64_t, std::int64_t>> padding);
  Tensor forward(const Tensor& x) override;
  const std::vector<std::pair<std::int64_t, std::int64_t>>& padding() const { return padding_; }

 private:
  std::vector<std::pair<std::int64_t, std::int64_t>> padding_;
};

// [N, H, W, C] -> [N, C] (or [N, 1, 1, C] with keepdims): the mean / max over the image.
class GlobalAveragePooling2D : public Module {
 public:
  explicit GlobalAveragePooling2D(bool keepdims = false);
  Tensor forward(const Tensor& x) override;

 private:
  bool keepdims_;
};
class GlobalMaxPooling2D : public Module {
 public:
  explicit GlobalMaxPooling2D(bool keepdims = false);
  Tensor forward(const Tensor& x) override;

 private:
  bool keepdims_;
};

// [N, ...] -> [N, target_shape...] (one entry may be -1).
class Reshape : public Module {
 public:
  explicit Reshape(Shape target_shape);
  Tensor forward(const Tensor& x) override;
  const Shape& target_shape() const { return target_; }

 private:
  Shape target_;
};

// A functional model (Keras' Model(inputs, outputs)): a Module whose children are its layers.
class Model : public Module {
 public:
  Model(std::vector<SymbolicTensor> inputs, std::vector<SymbolicTensor> outputs, std::string name = {});
  // One input; returns the first output.
  Tensor forward(const Tensor& x) override;
  // Every input, in order; returns every output.
  std::vector<Tensor> call(const std::vector<Tensor>& inputs);
  // The outputs of the named layers (their first call) on these inputs, computing only what they need.
  std::map<std::string, Tensor> outputs_of(const std::vector<std::string>& layer_names, const std::vector<Tensor>& inputs);
  std::map<std::string, Tensor> outputs_of(const std::vector<std::string>& layer_names, const Tensor& x) {
    return outputs_of(layer_names, std::vector<Tensor>{x});
  }
  const std::vector<SymbolicTensor>& inputs() const { return inputs_; }
  const std::vector<SymbolicTensor>& outputs() const { return outputs_; }
  // The symbolic output of a layer's first call (throws listing the layers when there is none).
  SymbolicTensor output_of(const std::string& layer_name) const;
  // For inference and export: a new model in which every BatchNormalization whose input is a Conv2D or
  // DepthwiseConv2D without activation (called once, read by nothing else) is folded into a new copy
  // of that convolution: kernel * gamma / sqrt(moving_variance + epsilon) per output channel, bias
  // (bias - moving_mean) * that + beta. The other layers are shared with this model.
  std::shared_ptr<Model> fold_batch_norm() const;
  // Keras' summary with the "Connected to" column: "layer[call][output]" of each inbound tensor.
  void summary(std::ostream& os) const override;
  using Module::summary;

 private:
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const std::vector<const internal::LayerCall*>& targets);
  std::vector<SymbolicTensor> inputs_, outputs_;
  std::vector<std::shared_ptr<internal::LayerCall>> calls_;  // the calls the outputs need, in topological order
};

}  // namespace layers

// ---- factories ----
std::shared_ptr<layers::Model> Model(std::vector<SymbolicTensor> inputs, std::vector<SymbolicTensor> outputs,
                                     std::string name = {});
std::shared_ptr<layers::Add> Add(std::string name = {});
std::shared_ptr<layers::Multiply> Multiply(std::string name = {});
std::shared_ptr<layers::Concatenate> Concatenate(std::int64_t axis = -1, std::string name = {});
std::shared_ptr<layers::DepthwiseConv2D> DepthwiseConv2D(DepthwiseConv2DOptions o);
std::shared_ptr<layers::SeparableConv2D> SeparableConv2D(SeparableConv2DOptions o);
std::shared_ptr<layers::ReLULayer> ReLU(ReLUOptions o);
std::shared_ptr<layers::ReLULayer> ReLU6(std::string name = {});
std::shared_ptr<layers::ActivationByName> ActivationByName(std::string activation, std::string name = {});
std::shared_ptr<layers::ZeroPadding2D> ZeroPadding2D(std::vector<std::pair<std::int64_t, std::int64_t>> padding,
                                                     std::string name = {});
std::shared_ptr<layers::ZeroPadding2D> ZeroPadding2D(std::int64_t padding = 1, std::string name = {});
std::shared_ptr<layers::GlobalAveragePooling2D> GlobalAveragePooling2D(bool keepdims = false, std::string name = {});
std::shared_ptr<layers::GlobalMaxPooling2D> GlobalMaxPooling2D(bool keepdims = false, std::string name = {});
std::shared_ptr<layers::Reshape> Reshape(Shape target_shape, std::string name = {});

}  // namespace synapse::nn
