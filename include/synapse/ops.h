// The op set. Every function here runs one registered op (see op.h) or a short composition of them,
// so each works eagerly, records gradients, and can later be traced into a graph.
//
// Conventions: NumPy broadcasting for elementwise ops; images are NHWC and conv filters HWIO
// ([kh, kw, in, out]) as in TensorFlow; a negative axis counts from the end.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "synapse/random.h"
#include "synapse/tensor.h"

namespace synapse {

// ---- elementwise, binary (broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);   // a > 0 where b is not an integer
Tensor pow(const Tensor& a, float exponent);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient goes to a where a >= b
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient goes to a where a <= b

// ---- elementwise, unary ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // not differentiable (zero gradient)
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float alpha = 0.2f);  // TensorFlow's default alpha
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
// Values limited to [lo, hi]; the gradient passes where lo <= x <= hi.
Tensor clip(const Tensor& x, float lo, float hi);

// ---- comparisons and selection (not differentiable, bool results) ----
Tensor equal(const Tensor& a, const Tensor& b);
Tensor greater(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
// cond ? a : b elementwise (broadcasting); differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Converts the dtype (float -> int truncates toward zero); differentiable float -> float only.
Tensor cast(const Tensor& x, DType dtype);

// ---- operators ----
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, float b);
Tensor operator-(const Tensor& a, float b);
Tensor operator*(const Tensor& a, float b);
Tensor operator/(const Tensor& a, float b);
Tensor operator+(float a, const Tensor& b);
Tensor operator-(float a, const Tensor& b);
Tensor operator*(float a, const Tensor& b);
Tensor operator/(float a, const Tensor& b);

// ---- matrix product ----
struct MatmulOptions {
  bool transpose_a = false;
  bool transpose_b = false;
};
// [m,k] x [k,n] -> [m,n]; batched: [...,m,k] x [...,k,n] with the leading (batch) dimensions
// broadcast; a 2-D operand is shared by every batch.
Tensor matmul(const Tensor& a, const Tensor& b, MatmulOptions opts = {});
// A fully connected layer in one op: x [..., in] kernel [in, units] + bias [units] -> [..., units],
// then relu when asked (TensorFlow's _FusedMatMul, PyTorch's linear + relu).
struct DenseOpOptions {
  bool relu = false;
};
Tensor dense(const Tensor& x, const Tensor& kernel, const Tensor& bias, DenseOpOptions opts = {});

// ---- shape ----
Tensor reshape(const Tensor& x, const Shape& shape);  // a view; one extent may be -1
// Reverses the dimensions (a 2-D transpose for matrices).
Tensor transpose(const Tensor& x);
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& perm);
// Keeps the first dimension and flattens the rest: [N, ...] -> [N, prod(...)].
Tensor flatten(const Tensor& x);
Tensor squeeze(const Tensor& x, std::int64_t axis);
Tensor unsqueeze(const Tensor& x, std::int64_t axis);
Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis);
// TensorFlow's slice: `size` elements from `begin` per dimension; size -1 means "to the end".
Tensor slice(const Tensor& x, const std::vector<std::int64_t>& begin, const std::vector<std::int64_t>& size);
// Pads each dimension with (before, after) elements of `value`.
Tensor pad(const Tensor& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& paddings, float value = 0.0f);
// Rows of `params` picked by integer `indices` along `axis` (an embedding lookup for axis 0):
// output shape = params.shape[:axis] + indices.shape + params.shape[axis+1:].
Tensor gather(const Tensor& params, const Tensor& indices, std::int64_t axis = 0);
// float32 one-hot encoding of integer indices: shape indices.shape + [depth].
Tensor one_hot(const Tensor& indices, std::int64_t depth, float on = 1.0f, float off = 0.0f);
// Broadcasts to `shape` (NumPy rules); sum_to is its gradient: sums broadcast dimensions away.
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- reductions (axes empty = all; negative axes allowed) ----
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
// Gradient goes to the maximal elements (split evenly between ties).
Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor min(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
// Index of the largest value along `axis` (the first on ties), int64.
Tensor argmax(const Tensor& x, std::int64_t axis = -1);

// ---- neural-network ops ----
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
// Per-example loss -sum(labels * log_softmax(logits)) over the last axis, computed stably in one op
// (tf.nn.softmax_cross_entropy_with_logits). logits, labels: [N, C] -> [N]. Differentiable in both.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels);
// Same with integer class labels [N] (int32 or int64, each in [0, C)); throws naming a bad label.
Tensor sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels);
// Elementwise max(x,0) - x*z + log(1 + exp(-|x|)) (tf.nn.sigmoid_cross_entropy_with_logits).
Tensor sigmoid_cross_entropy(const Tensor& logits, const Tensor& labels);
// mean((pred - target)^2), a scalar.
Tensor mean_squared_error(const Tensor& pred, const Tensor& target);

enum class Padding { Valid, Same };

// The conv2d op's attributes (a Conv2D layer's nn::Conv2DOptions adds filters, kernel size, activation and
// initialisers; the shared fields have the same names).
struct Conv2DAttrs {
  std::vector<std::int64_t> strides{1, 1};        // (h, w)
  std::vector<std::int64_t> dilation_rate{1, 1};  // (h, w)
  Padding padding = Padding::Valid;
  bool relu = false;  // max(y, 0) inside the kernel (conv + bias + relu in one op)
};
// x [N,H,W,C] * filter [KH,KW,C,O] -> [N,OH,OW,O]; SAME pads as TensorFlow does (the extra row/column
// after). The bias [O], when given, is added inside the same kernel, and so is relu when asked.
Tensor conv2d(const Tensor& x, const Tensor& filter, const Conv2DAttrs& opts = {});
Tensor conv2d(const Tensor& x, const Tensor& filter, const Tensor& bias, const Conv2DAttrs& opts = {});

// Depthwise convolution (TensorFlow's depthwise_conv2d): x [N,H,W,C] * filter [KH,KW,C,M] -> [N,OH,OW,C*M],
// each input channel c convolved with its own M filters into output channels c*M .. c*M+M-1; strides,
// dilations and SAME/VALID padding as conv2d (opts.relu must be false). bias [C*M] when defined.
Tensor depthwise_conv2d(const Tensor& x, const Tensor& filter, const Tensor& bias = {}, const Conv2DAttrs& opts = {});

// The pooling ops' attributes (nn::Pool2DOptions has the same fields, plus a name).
struct Pool2DAttrs {
  std::vector<std::int64_t> pool_size{2, 2};  // (h, w)
  std::vector<std::int64_t> strides{2, 2};    // (h, w)
  Padding padding = Padding::Valid;
};
// NHWC pooling. Padded cells never win a max and are not counted in an average (TensorFlow's rule).
Tensor max_pool2d(const Tensor& x, const Pool2DAttrs& opts = {});
Tensor avg_pool2d(const Tensor& x, const Pool2DAttrs& opts = {});

// Local response normalisation over the last axis (tf.nn.lrn; the defaults are TF's):
// y = x / (bias + alpha * sum(x[..., d - r .. d + r]^2))^beta, the window clipped to the channels.
Tensor lrn(const Tensor& x, std::int64_t depth_radius = 5, float bias = 1.0f, float alpha = 1.0f, float beta = 0.5f);

// Inverted dropout: in training, zeroes each element with probability `rate` and scales the rest by
// 1/(1-rate); otherwise returns x unchanged. Random bits come from `gen` (the default generator if null).
Tensor dropout(const Tensor& x, float rate, bool training = true, Generator* gen = nullptr);

// ---- recurrent layers: one op per whole sequence (as cuDNN and ONNX's LSTM/GRU/RNN nodes) ----
// x [B,T,I] (batch-major, as Keras); kernel [I,G*H], recurrent_kernel [H,G*H] with the G gates in
// Keras' order: LSTM i, f, c, o; GRU z, r, h; SimpleRNN one. lengths: int64 [B], each in 1..T; steps
// t >= lengths[b] are padding: they leave the state alone and their output is 0. With `reverse` each
// sequence runs from its last valid step down to step 0; y's step t is still stored at t.
// Returns y [B,T,H] and the state after each sequence's last valid step (h; c for LSTM). An initial
// state may be [1,H] and lengths [1], meaning the same for every row (what the layers pass when
// none is given, so a traced graph needs no batch size).
// Gradients flow to x, the weights, the bias and the initial state through one fused
// back-propagation-through-time op (lstm_grad, gru_grad, simple_rnn_grad), which has no gradient of
// its own: no second derivatives through recurrent layers.
struct RnnOpOptions {
  std::string activation = "tanh";               // tanh, relu, sigmoid, hard_sigmoid, linear
  std::string recurrent_activation = "sigmoid";  // the gates' (LSTM, GRU): the same choices
  bool reverse = false;
  bool reset_after = true;  // GRU: r applied after the recurrent product (TF2's default), bias [2,3H]
};
struct RnnOutputs {
  Tensor y, h, c;  // c only for LSTM
};
// bias [4H]; h0, c0 [B,H]. c_t = f*c_{t-1} + i*act(c~), h_t = o*act(c_t).
RnnOutputs lstm(const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                const Tensor& h0, const Tensor& c0, const Tensor& lengths, const RnnOpOptions& opts = {});
// bias [2,3H] (rows: input, recurrent) with reset_after, else [3H]. h_t = z*h_{t-1} + (1-z)*hh, with
// hh = act(x W_h + b_h + r*(h U_h + b_rh)) (reset_after, = ONNX linear_before_reset = PyTorch) or
// act(x W_h + b_h + (r*h) U_h).
RnnOutputs gru(const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
               const Tensor& h0, const Tensor& lengths, const RnnOpOptions& opts = {});
// bias [H]; h_t = act(x_t W + h_{t-1} U + b).
RnnOutputs simple_rnn(const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                      const Tensor& h0, const Tensor& lengths, const RnnOpOptions& opts = {});

}  // namespace synapse
