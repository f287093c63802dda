// Layers and models. A Module owns named parameters, buffers and sub-modules, so its state is a
// dictionary of names ("conv1/kernel", "batch_normalization/moving_mean") — checkpoints, EMA and
// optimizers all address state by these names, never by position.
//
// A model from a list of layers (Keras' Sequential):
//
//   auto model = nn::Sequential({
//       nn::Conv2D(nn::Conv2DOptions(32, {5, 5}).padding(Padding::Same).activation(nn::Activation::ReLU)
//                      .name("conv1")),
//       nn::MaxPool2D(), nn::Flatten(), nn::Dense(10)});
//   model->build_for({1, 28, 28, 1});   // or just call it on a first batch
//   model->summary();
//   Tensor logits = (*model)(images);   // [N, 28, 28, 1] -> [N, 10]
//
// A model written by hand (Keras' subclassing): create the layers with add_module in the
// constructor, write forward.
//
//   class TwoLayer : public nn::Module {
//    public:
//     TwoLayer() : Module("TwoLayer") {   // default name "two_layer"
//       hidden_ = add_module(nn::Dense(nn::DenseOptions(16).activation(nn::Activation::Tanh).name("hidden")));
//       out_ = add_module(nn::Dense(1));
//     }
//     Tensor forward(const Tensor& x) override { return (*out_)((*hidden_)(x)); }
//    private:
//     std::shared_ptr<nn::layers::Dense> hidden_, out_;   // parameters "hidden/kernel", "dense/bias", ...
//   };
//
// Conventions:
// - Every layer is a class in nn::layers (nn::layers::Dense) and has a factory of the same name in nn
//   returning a std::shared_ptr to it (nn::Dense(10)); models are built from the factories.
// - A layer with several options takes an options struct with chainable setters, whose constructor
//   takes the required ones: nn::DenseOptions(128).activation(Activation::ReLU).name("fc1"). The
//   factory also accepts the required values directly (nn::Dense(10), nn::Conv2D(32, {5, 5})). Layers
//   without options take their argument and an optional name: nn::Dropout(0.5, "drop").
// - Layers are built lazily, like Keras: Dense(10) learns its input size on the first call (or from
//   build_for), so parameters exist only after that — build before creating an optimizer.
// - Default names are the snake_case of the type as Keras makes them ("Conv2D" -> "conv2d",
//   "BatchNormalization" -> "batch_normalization", "ReLU" -> "re_lu"); a parent makes the default names
//   of its children unique ("dense", "dense_1", ...); an explicit duplicate name is an error.
// - Images are NHWC, conv kernels HWIO [kh, kw, in, out], Dense kernels [in, out], as in Keras.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "synapse/ops.h"
#include "synapse/random.h"
#include "synapse/tensor.h"

// Declares an option of an options struct: a chainable setter `name(value)` and a getter `name()`.
// Follow it by the default value: SYNAPSE_OPTION(bool, use_bias) = true;
#define SYNAPSE_OPTION(T, opt_name)                   \
 public:                                              \
  auto opt_name(T value)->decltype(*this) {           \
    opt_name##_ = std::move(value);                   \
    return *this;                                     \
  }                                                   \
  const T& opt_name() const { return opt_name##_; }   \
                                                      \
 private:                                             \
  T opt_name##_

namespace synapse::nn {

using synapse::Padding;

// ---- initializers ----
// Keras' rules. The *_normal variance-scaling kinds draw from a normal truncated at two standard
// deviations with stddev = sqrt(scale / fan) / 0.87962566103423978, as Keras does, so the values'
// actual standard deviation is sqrt(scale / fan): glorot (scale 1, fan = (fan_in + fan_out) / 2),
// he (scale 2, fan = fan_in). The *_uniform kinds draw from [-limit, limit), limit = sqrt(3 scale / fan).
struct Initializer {
  enum class Kind {
    Zeros, Constant, Uniform, Normal, TruncatedNormal, GlorotUniform, GlorotNormal, HeUniform, HeNormal, Orthogonal };
  Kind kind = Kind::GlorotUniform;
  float a = 0.0f;  // Constant: value; Uniform: low; Normal/TruncatedNormal: mean; Orthogonal: gain
  float b = 0.0f;  // Uniform: high; Normal/TruncatedNormal: stddev

  static Initializer zeros() { return {Kind::Zeros}; }
  static Initializer ones() { return {Kind::Constant, 1.0f}; }
  static Initializer constant(float v) { return {Kind::Constant, v}; }
  static Initializer uniform(float low = -0.05f, float high = 0.05f) { return {Kind::Uniform, low, high}; }
  static Initializer normal(float mean = 0.0f, float stddev = 0.05f) { return {Kind::Normal, mean, stddev}; }
  static Initializer truncated_normal(float mean = 0.0f, float stddev = 0.05f) { return {Kind::TruncatedNormal, mean, stddev}; }
  static Initializer glorot_uniform() { return {Kind::GlorotUniform}; }
  static Initializer glorot_normal() { return {Kind::GlorotNormal}; }
  static Initializer he_uniform() { return {Kind::HeUniform}; }
  static Initializer he_normal() { return {Kind::HeNormal}; }
  // Keras' Orthogonal: the shape flattened to [prod(shape[:-1]), shape[-1]]; a seeded standard normal
  // matrix of the taller orientation is orthonormalised (Gram-Schmidt, the QR's Q with R's diagonal
  // made positive) and transposed back when wide, times `gain`: rows or columns orthonormal. The
  // default recurrent_kernel initializer of the recurrent layers.
  static Initializer orthogonal(float gain = 1.0f) { return {Kind::Orthogonal, gain}; }

  // Fans as Keras computes them: 1-D [n] -> n, n; 2-D [in, out]; conv HWIO [kh, kw, in, out] ->
  // kh*kw*in, kh*kw*out. Returns a fresh float32 tensor (no gradient).
  Tensor operator()(const Shape& shape, Generator& gen) const;
};
// (fan_in, fan_out) of a weight shape, as above.
std::pair<double, double> compute_fans(const Shape& shape);

enum class Activation { None, ReLU, Sigmoid, Tanh, Softmax };
Tensor activate(const Tensor& x, Activation a);
// Keras' names: "linear", "relu", "sigmoid", "tanh", "softmax".
const char* activation_name(Activation a);

// Keras' snake_case of a class name: "Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization".
std::string snake_case(const std::string& type);

// ---- Module ----
class SymbolicTensor;  // functional.h: a layer's output in a functional model's graph of layer calls

class Module : public std::enable_shared_from_this<Module> {
 public:
  // `type` is the class name shown by summary ("Conv2D"); the default name is its snake_case.
  explicit Module(std::string type);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Builds on first use (build(input shape)), runs forward and records the output shape.
  Tensor operator()(const Tensor& x);
  virtual Tensor forward(const Tensor& x) = 0;
  // Functional API (functional.h): calling a layer on symbolic tensors records a layer call.
  SymbolicTensor operator()(const SymbolicTensor& x);
  SymbolicTensor operator()(const std::vector<SymbolicTensor>& xs);
  // Creates parameters once the input shape is known; the default does nothing. Called by
  // operator() on the first call; to build a whole model, use build_for.
  virtual void build(const Shape& input_shape);
  bool built() const { return built_; }
  // Runs a zero batch of this shape (batch dimension included) and dtype through the model, in
  // inference mode and under NoGradGuard, so every layer is built (and BatchNormalization's moving
  // statistics are left alone). Use DType::Int64 for a model starting with an Embedding.
  void build_for(const Shape& input_shape, DType dtype = DType::Float32);

  const std::string& name() const { return name_; }
  Module& set_name(std::string name);
  const std::string& type() const { return type_; }

  // Parameters and buffers of this module and its sub-modules, named "child/param" recursively, in
  // creation order (own entries first, then each child's).
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_trainable_parameters() const;
  std::vector<Tensor> trainable_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters and buffers together: handles to the module's own tensors, not copies.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into the existing tensors (same storage, so optimizers keep working). strict: every
  // name must be present and no extra names; otherwise a subset is fine. Checks everything before
  // copying anything; throws naming the missing or unexpected names, or the tensor whose shape or
  // dtype differs (expected and found).
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // Elements of all parameters and buffers (Keras' count_params, which counts BatchNormalization's
  // moving statistics too), or of the trainable parameters only.
  std::int64_t count_parameters(bool trainable_only = false) const;
  // Forgets the state that stateful layers carry from one call to the next (Keras' reset_states);
  // recursive. build_for calls it after its zero batch.
  virtual void reset_states();
  // Freezes (false) or unfreezes the parameters of this module and its sub-modules (Keras'
  // layer.trainable): frozen parameters get no gradient and leave trainable_parameters(), but stay in
  // the state dict. Parameters a frozen module creates later (when it is built) are frozen too. As in
  // Keras, a frozen BatchNormalization runs in inference mode even in train(): it normalises with its
  // moving statistics and leaves them alone (so fine-tuning above a frozen pretrained base keeps it as it was).
  void set_trainable(bool on);
  bool trainable() const { return trainable_; }
  // Training mode (dropout active, batch statistics) or inference mode; recursive.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  const std::vector<std::shared_ptr<Module>>& children() const { return children_; }
  // The direct child with this name; throws listing the children's names when there is none.
  std::shared_ptr<Module> child(const std::string& name) const;

  // Keras-style summary of the direct children (or of the module itself when it has none):
  //   Model: "sequential"
  //   Layer (type)                 Output Shape              Param #
  //   =================================================================
  //   conv1 (Conv2D)               (None, 28, 28, 32)        832
  //   =================================================================
  //   Total params: 832
  //   Trainable params: 832
  //   Non-trainable params: 0
  // Columns are Keras' (29, 26, 10 wide), widened to fit a longer name or shape. Output shapes are
  // those of the last call ("?" before the first one).
  virtual void summary(std::ostream& os) const;
  void summary() const;  // to std::cout
  // Output shape of the last forward, batch dimension shown as -1 (empty before the first call).
  const Shape& output_shape() const { return output_shape_; }
  bool has_output_shape() const { return has_output_shape_; }

  // The generator used by initializers and dropout (the default generator unless set). set_generator
  // applies to the sub-modules too, and to those added later.
  Generator& generator() const;
  void set_generator(Generator* g);

 protected:
  // Registers a float32 parameter (trainable: it requires gradients) and returns the tensor — a
  // handle sharing storage with the registered one, which layers keep as a member.
  Tensor add_parameter(const std::string& name, Tensor value, bool trainable = true);
  // Registers state that is not trained (moving statistics): saved in the state dict, no gradient.
  Tensor add_buffer(const std::string& name, Tensor value);
  // Adds a sub-module (its default name made unique among the children) and returns it.
  template <class M> std::shared_ptr<M> add_module(std::shared_ptr<M> m) {
    add_child(m);
    return m;
  }
  void add_child(std::shared_ptr<Module> m);
  // For layers with an entry point besides operator() (the recurrent layers' call): build on first
  // use, and record the output shape that summary shows.
  void build_once(const Shape& input_shape);
  void record_output_shape(const Shape& shape);

 private:
  struct Entry {
    std::string name;
    Tensor value;
    bool trainable;
  };
  void collect(const std::string& prefix, bool params, bool buffers, bool trainable_only,
               std::vector<std::pair<std::string, Tensor>>& out) const;
  void check_new_name(const std::string& name) const;
  void collect_modes(std::vector<std::pair<Module*, bool>>& out);
  std::string type_;
  std::string name_;
  bool name_explicit_ = false;
  bool built_ = false;
  bool training_ = true;
  bool trainable_ = true;
  bool has_output_shape_ = false;
  Shape output_shape_;
  std::vector<Entry> params_;
  std::vector<Entry> buffers_;
  std::vector<std::shared_ptr<Module>> children_;
  Generator* gen_ = nullptr;
};

using ModulePtr = std::shared_ptr<Module>;

// ---- options ----
// Options of Dense: y = activation(x · kernel + bias) over the last axis; kernel [in, units].
struct DenseOptions {
  DenseOptions(std::int64_t units) : units_(units) {}  // NOLINT: implicit, so Dense(10) reads well
  SYNAPSE_OPTION(std::int64_t, units);
  SYNAPSE_OPTION(Activation, activation) = Activation::None;
  SYNAPSE_OPTION(bool, use_bias) = true;
  SYNAPSE_OPTION(Initializer, kernel_initializer) = Initializer::glorot_uniform();
  SYNAPSE_OPTION(Initializer, bias_initializer) = Initializer::zeros();
  SYNAPSE_OPTION(std::string, name);
};

// Options of Conv2D: NHWC input, kernel HWIO [kh, kw, in, filters]. Pairs are (h, w); a single value
// means the same for both.
struct Conv2DOptions {
  Conv2DOptions(std::int64_t filters, std::vector<std::int64_t> kernel_size)
      : filters_(filters), kernel_size_(std::move(kernel_size)) {}
  Conv2DOptions(std::int64_t filters, std::int64_t kernel_size) : filters_(filters), kernel_size_{kernel_size} {}
  SYNAPSE_OPTION(std::int64_t, filters);
  SYNAPSE_OPTION(std::vector<std::int64_t>, kernel_size);
  SYNAPSE_OPTION(std::vector<std::int64_t>, strides) = {1, 1};
  SYNAPSE_OPTION(Padding, padding) = Padding::Valid;
  SYNAPSE_OPTION(std::vector<std::int64_t>, dilation_rate) = {1, 1};
  SYNAPSE_OPTION(Activation, activation) = Activation::None;
  SYNAPSE_OPTION(bool, use_bias) = true;
  SYNAPSE_OPTION(Initializer, kernel_initializer) = Initializer::glorot_uniform();
  SYNAPSE_OPTION(Initializer, bias_initializer) = Initializer::zeros();
  SYNAPSE_OPTION(std::string, name);
};

// Options of MaxPool2D / AvgPool2D: pool_size (h, w), default 2x2; strides default to the pool size.
struct Pool2DOptions {
  Pool2DOptions(std::int64_t pool_size = 2) : pool_size_{pool_size} {}  // NOLINT: implicit
  Pool2DOptions(std::int64_t pool_h, std::int64_t pool_w) : pool_size_{pool_h, pool_w} {}
  SYNAPSE_OPTION(std::vector<std::int64_t>, pool_size);
  SYNAPSE_OPTION(std::vector<std::int64_t>, strides);  // empty: the pool size
  SYNAPSE_OPTION(Padding, padding) = Padding::Valid;
  SYNAPSE_OPTION(std::string, name);
};

// Options of BatchNormalization (Keras' defaults). Normalises over every axis but `axis`.
struct BatchNormalizationOptions {
  BatchNormalizationOptions() = default;
  SYNAPSE_OPTION(std::int64_t, axis) = -1;
  SYNAPSE_OPTION(float, momentum) = 0.99f;
  SYNAPSE_OPTION(float, epsilon) = 1e-3f;
  SYNAPSE_OPTION(bool, center) = true;  // the "beta" offset
  SYNAPSE_OPTION(bool, scale) = true;   // the "gamma" factor
  SYNAPSE_OPTION(Initializer, beta_initializer) = Initializer::zeros();
  SYNAPSE_OPTION(Initializer, gamma_initializer) = Initializer::ones();
  SYNAPSE_OPTION(Initializer, moving_mean_initializer) = Initializer::zeros();
  SYNAPSE_OPTION(Initializer, moving_variance_initializer) = Initializer::ones();
  SYNAPSE_OPTION(std::string, name);
};

// Options of Embedding: integer indices in [0, input_dim) -> rows of "embeddings" [input_dim, output_dim].
struct EmbeddingOptions {
  EmbeddingOptions(std::int64_t input_dim, std::int64_t output_dim) : input_dim_(input_dim), output_dim_(output_dim) {}
  SYNAPSE_OPTION(std::int64_t, input_dim);
  SYNAPSE_OPTION(std::int64_t, output_dim);
  SYNAPSE_OPTION(Initializer, embeddings_initializer) = Initializer::uniform(-0.05f, 0.05f);
  SYNAPSE_OPTION(std::string, name);
};


// ---- recurrent layers (Keras' SimpleRNN, LSTM, GRU, Bidirectional) ----
// Inputs [B, T, F] (batch-major). Each layer is one op per call (lstm, gru, simple_rnn in ops.h), so
// it traces into graphs like any layer. Parameters "kernel" [F, G*units], "recurrent_kernel"
// [units, G*units] and "bias" ([G*units]; GRU with reset_after [2, 3*units]), gates in Keras' order
// (LSTM i, f, c, o; GRU z, r, h). Activations by Keras' names: "tanh", "relu", "sigmoid",
// "hard_sigmoid" (clip(0.2 x + 0.5, 0, 1), tf.keras 2's), "linear".
//
//   auto lstm = nn::LSTM(nn::LSTMOptions(512).return_sequences(true).name("lstm1"));
//   Tensor y = (*lstm)(x);                                       // [B, T, 512]
//   nn::RecurrentResult r = lstm->call(x, lengths, {h0, c0});   // with lengths and a start state
//
// Masking: call(x, lengths) with int64 lengths [B] (each in 1..T): steps t >= lengths[b] are padding,
// they neither update the state nor produce output (y is 0 there); the states returned are those after
// each sequence's last valid step. go_backwards reads each sequence from its last valid step to step 0
// and, as Keras, returns the outputs in that processing order: output[:, k] is the step T-1-k (so a
// padded row's leading T-length entries are 0). stateful: the final state of each call is the initial
// state of the next (detached: no gradient flows across calls); the batch size must stay the same;
// reset_states() forgets it.
struct RecurrentResult {
  Tensor output;               // [B, T, units] with return_sequences, else [B, units]
  std::vector<Tensor> states;  // with return_state: LSTM {h, c}; GRU and SimpleRNN {h}; else empty
};

// The options all recurrent layers share (one list, so the three structs cannot drift apart).
#define SYNAPSE_RECURRENT_OPTIONS(Self)                                                  \
  Self(std::int64_t units) : units_(units) {} /* NOLINT: implicit, nn::LSTM(64) */      \
  SYNAPSE_OPTION(std::int64_t, units);                                                  \
  SYNAPSE_OPTION(std::string, activation) = "tanh";                                     \
  SYNAPSE_OPTION(bool, use_bias) = true;                                                \
  SYNAPSE_OPTION(bool, return_sequences) = false;                                       \
  SYNAPSE_OPTION(bool, return_state) = false;                                           \
  SYNAPSE_OPTION(bool, go_backwards) = false;                                           \
  SYNAPSE_OPTION(bool, stateful) = false;                                               \
  SYNAPSE_OPTION(Initializer, kernel_initializer) = Initializer::glorot_uniform();      \
  SYNAPSE_OPTION(Initializer, recurrent_initializer) = Initializer::orthogonal();       \
  SYNAPSE_OPTION(Initializer, bias_initializer) = Initializer::zeros();                 \
  SYNAPSE_OPTION(std::string, name)

// SimpleRNN: h_t = activation(x_t kernel + h_{t-1} recurrent_kernel + bias).
struct SimpleRNNOptions {
  SYNAPSE_RECURRENT_OPTIONS(SimpleRNNOptions);
};
// LSTM: gates i, f, c, o; unit_forget_bias starts the forget gate's bias at 1 (Keras' default).
struct LSTMOptions {
  SYNAPSE_RECURRENT_OPTIONS(LSTMOptions);
  SYNAPSE_OPTION(std::string, recurrent_activation) = "sigmoid";
  SYNAPSE_OPTION(bool, unit_forget_bias) = true;
};
// GRU: gates z, r, h; reset_after (TF2's default, = PyTorch and ONNX linear_before_reset=1) applies r
// after the recurrent product and has two bias rows (input, recurrent); false: r * h before it, one row.
struct GRUOptions {
  SYNAPSE_RECURRENT_OPTIONS(GRUOptions);
  SYNAPSE_OPTION(std::string, recurrent_activation) = "sigmoid";
  SYNAPSE_OPTION(bool, reset_after) = true;
};

// How Bidirectional combines the forward and backward outputs (Keras' merge_mode).
enum class MergeMode { Concat, Sum, Mul, Ave };

// ---- layers ----
namespace layers {

// [..., in] -> [..., units]. Parameters "kernel" [in, units], "bias" [units].
class Dense : public Module {
 public:
  explicit Dense(DenseOptions o);
  void build(const Shape& input_shape) override;
  Tensor forward(const Tensor& x) override;
  const DenseOptions& options() const { return o_; }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }

 private:
  DenseOptions o_;
  Tensor kernel_, bias_;
};

// [N, H, W, C] -> [N, OH, OW, filters] with synapse::conv2d (bias fused). Parameters "kernel"
// [kh, kw, C, filters], "bias" [filters].
class Conv2D : public Module {
 public:
  explicit Conv2D(Conv2DOptions o);
  void build(const Shape& input_shape) override;
  Tensor forward(const Tensor& x) override;
  const Conv2DOptions& options() const { return o_; }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }

 private:
  Conv2DOptions o_;
  Tensor kernel_, bias_;
};

// [N, H, W, C] -> [N, OH, OW, C]; no parameters.
class MaxPool2D : public Module {
 public:
  explicit MaxPool2D(Pool2DOptions o);
  Tensor forward(const Tensor& x) override;
  const Pool2DOptions& options() const { return o_; }

 private:
  Pool2DOptions o_;
};

class AvgPool2D : public Module {
 public:
  explicit AvgPool2D(Pool2DOptions o);
  Tensor forward(const Tensor& x) override;
  const Pool2DOptions& options() const { return o_; }

 private:
  Pool2DOptions o_;
};

// [N, ...] -> [N, prod(...)].
class Flatten : public Module {
 public:
  Flatten();
  Tensor forward(const Tensor& x) override;
};

// Inverted dropout in training mode (with the module's generator); the identity in inference mode.
class Dropout : public Module {
 public:
  explicit Dropout(float rate);
  Tensor forward(const Tensor& x) override;
  float rate() const { return rate_; }

 private:
  float rate_;
};

// An activation function as a layer (type "ReLU", "Sigmoid", "Tanh" or "Softmax").
class ActivationLayer : public Module {
 public:
  explicit ActivationLayer(Activation a);
  Tensor forward(const Tensor& x) override;
  Activation activation() const { return a_; }

 private:
  Activation a_;
};

// Batch normalisation over every axis but `axis` (Keras' BatchNormalization). Parameters "gamma",
// "beta" [C]; buffers "moving_mean", "moving_variance" [C].
// Training: y = (x - mean_b) / sqrt(var_b + epsilon) * gamma + beta with the batch mean and (biased)
// variance, differentiable through the batch statistics; then, without recording gradients,
// moving = momentum * moving + (1 - momentum) * batch_stat (the biased variance, as Keras 3).
// Inference, and training while frozen (set_trainable(false), as Keras' trainable = False): the same
// with the moving statistics, which are not updated.
class BatchNormalization : public Module {
 public:
  explicit BatchNormalization(BatchNormalizationOptions o);
  void build(const Shape& input_shape) override;
  Tensor forward(const Tensor& x) override;
  const BatchNormalizationOptions& options() const { return o_; }
  const Tensor& gamma() const { return gamma_; }
  const Tensor& beta() const { return beta_; }
  const Tensor& moving_mean() const { return moving_mean_; }
  const Tensor& moving_variance() const { return moving_variance_; }

 private:
  void update_moving(Tensor& moving, const Tensor& batch_stat);
  BatchNormalizationOptions o_;
  int axis_ = -1;  // normalised at build
  Shape param_shape_;  // [1, ..., C, ..., 1]: broadcasts against the input
  Tensor gamma_, beta_, moving_mean_, moving_variance_;
};

// Integer indices [...] -> [..., output_dim] rows of "embeddings" [input_dim, output_dim] (gather).
class Embedding : public Module {
 public:
  explicit Embedding(EmbeddingOptions o);
  void build(const Shape& input_shape) override;
  Tensor forward(const Tensor& x) override;
  const EmbeddingOptions& options() const { return o_; }
  const Tensor& embeddings() const { return embeddings_; }

 private:
  EmbeddingOptions o_;
  Tensor embeddings_;
};

// The recurrent layers' common part: parameters, masking, initial and carried state (see
// RecurrentResult above). SimpleRNN, LSTM and GRU differ only in their op and options.
class Recurrent : public Module {
 public:
  void build(const Shape& input_shape) override;
  // [B, T, F] -> [B, T, units] (return_sequences) or [B, units].
  Tensor forward(const Tensor& x) override;
  // lengths: int64 [B] (undefined: every sequence is T long); initial_state: LSTM {h, c}, else {h},
  // each [B, units] (empty: zeros, or the carried state of a stateful layer).
  RecurrentResult call(const Tensor& x, const Tensor& lengths = {}, const std::vector<Tensor>& initial_state = {});
  // Stateful layers: forget the carried state (the next call starts from zeros).
  void reset_states() override { carried_.clear(); }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& recurrent_kernel() const { return recurrent_kernel_; }
  const Tensor& bias() const { return bias_; }
  std::int64_t units() const { return c_.units; }
  bool return_sequences() const { return c_.return_sequences; }
  bool return_state() const { return c_.return_state; }
  bool go_backwards() const { return c_.go_backwards; }
  std::size_t num_states() const { return c_.kind == Kind::LSTM ? 2 : 1; }
  // A new, unbuilt layer with the same options, reading the sequence the other way (Bidirectional).
  virtual std::shared_ptr<Recurrent> reversed_copy(const std::string& name) const = 0;
  // Runs the op; y's step t stays at t even for go_backwards (Bidirectional's alignment). Returns
  // the states always. For call() and Bidirectional.
  RecurrentResult run(const Tensor& x, const Tensor& lengths, const std::vector<Tensor>& initial_state);

 protected:
  enum class Kind { Simple, LSTM, GRU };
  struct Config {
    Kind kind;
    std::int64_t units;
    std::string activation, recurrent_activation;
    bool use_bias, return_sequences, return_state, go_backwards, stateful, unit_forget_bias, reset_after;
    Initializer kernel_initializer, recurrent_initializer, bias_initializer;
  };
  Recurrent(std::string type, Config c, const std::string& name);

 private:
  Config c_;
  Tensor kernel_, recurrent_kernel_, bias_, no_bias_;
  std::vector<Tensor> carried_;  // stateful: the last call's final states (detached)
};

// A cell's layer: its options, and the reversed copy Bidirectional makes of it.
template <class Self, class Options> class RecurrentLayer : public Recurrent {
 public:
  const Options& options() const { return o_; }
  std::shared_ptr<Recurrent> reversed_copy(const std::string& name) const override {
    Options o = o_;
    return std::make_shared<Self>(o.go_backwards(!o.go_backwards()).name(name));
  }

 protected:
  RecurrentLayer(std::string type, Config c, Options o) : Recurrent(std::move(type), std::move(c), o.name()), o_(std::move(o)) {}

 private:
  Options o_;
};

class SimpleRNN : public RecurrentLayer<SimpleRNN, SimpleRNNOptions> {
 public:
  explicit SimpleRNN(SimpleRNNOptions o);
};
class LSTM : public RecurrentLayer<LSTM, LSTMOptions> {
 public:
  explicit LSTM(LSTMOptions o);
};
class GRU : public RecurrentLayer<GRU, GRUOptions> {
 public:
  explicit GRU(GRUOptions o);
};

// Keras' Bidirectional: the layer ("forward_NAME") and a copy reading the sequences the other way
// ("backward_NAME"), outputs merged by `mode` (concat: [..., 2*units]). With return_sequences the
// backward outputs are put back at their input steps before merging, as Keras does. call()'s
// initial_state is the forward layer's states then the backward layer's; the states returned are
// in the same order (with return_state).
class Bidirectional : public Module {
 public:
  Bidirectional(std::shared_ptr<Recurrent> layer, MergeMode mode = MergeMode::Concat);
  Tensor forward(const Tensor& x) override;
  RecurrentResult call(const Tensor& x, const Tensor& lengths = {}, const std::vector<Tensor>& initial_state = {});
  const std::shared_ptr<Recurrent>& forward_layer() const { return fwd_; }
  const std::shared_ptr<Recurrent>& backward_layer() const { return bwd_; }

 private:
  std::shared_ptr<Recurrent> fwd_, bwd_;
  MergeMode mode_;
};

// An ordered list of modules, each fed the previous one's output.
class Sequential : public Module {
 public:
  explicit Sequential(std::vector<ModulePtr> modules = {});
  // Appends a module (its default name made unique: "dense", "dense_1", ...); returns *this.
  Sequential& add(ModulePtr m);
  Tensor forward(const Tensor& x) override;
  std::size_t size() const { return children().size(); }
  const ModulePtr& operator[](std::size_t i) const { return children().at(i); }
};

}  // namespace layers

// ---- factories: the way models are written ----
std::shared_ptr<layers::Dense> Dense(DenseOptions o);
std::shared_ptr<layers::Conv2D> Conv2D(Conv2DOptions o);
std::shared_ptr<layers::Conv2D> Conv2D(std::int64_t filters, std::vector<std::int64_t> kernel_size);
std::shared_ptr<layers::MaxPool2D> MaxPool2D(Pool2DOptions o = {});
std::shared_ptr<layers::AvgPool2D> AvgPool2D(Pool2DOptions o = {});
std::shared_ptr<layers::Flatten> Flatten(std::string name = {});
std::shared_ptr<layers::Dropout> Dropout(float rate, std::string name = {});
std::shared_ptr<layers::ActivationLayer> ReLU(std::string name = {});
std::shared_ptr<layers::ActivationLayer> Sigmoid(std::string name = {});
std::shared_ptr<layers::ActivationLayer> Tanh(std::string name = {});
std::shared_ptr<layers::ActivationLayer> Softmax(std::string name = {});
std::shared_ptr<layers::BatchNormalization> BatchNormalization(BatchNormalizationOptions o = {});
std::shared_ptr<layers::Embedding> Embedding(EmbeddingOptions o);
std::shared_ptr<layers::Embedding> Embedding(std::int64_t input_dim, std::int64_t output_dim);
std::shared_ptr<layers::Sequential> Sequential(std::vector<ModulePtr> modules = {}, std::string name = {});
std::shared_ptr<layers::SimpleRNN> SimpleRNN(SimpleRNNOptions o);
std::shared_ptr<layers::LSTM> LSTM(LSTMOptions o);
std::shared_ptr<layers::GRU> GRU(GRUOptions o);
std::shared_ptr<layers::Bidirectional> Bidirectional(std::shared_ptr<layers::Recurrent> layer,
                                                     MergeMode merge_mode = MergeMode::Concat, std::string name = {});

}  // namespace synapse::nn

// ---- local response normalisation (src/nn/lrn.cpp; the TF CIFAR-10 tutorial's norm1/norm2) ----
namespace synapse::nn {
struct LocalResponseNormalizationOptions {
  SYNAPSE_OPTION(std::int64_t, depth_radius) = 5;  // tf.nn.lrn's defaults
  SYNAPSE_OPTION(float, bias) = 1.0f;
  SYNAPSE_OPTION(float, alpha) = 1.0f;
  SYNAPSE_OPTION(float, beta) = 0.5f;
  SYNAPSE_OPTION(std::string, name);
};
namespace layers {
// [..., C] -> same shape: synapse::lrn over the channel axis; no parameters.
class LocalResponseNormalization : public Module {
 public:
  explicit LocalResponseNormalization(LocalResponseNormalizationOptions o);
  Tensor forward(const Tensor& x) override;
  const LocalResponseNormalizationOptions& options() const { return o_; }

 private:
  LocalResponseNormalizationOptions o_;
};
}  // namespace layers
std::shared_ptr<layers::LocalResponseNormalization> LocalResponseNormalization(LocalResponseNormalizationOptions o = {});
}  // namespace synapse::nn

#include "synapse/functional.h"
