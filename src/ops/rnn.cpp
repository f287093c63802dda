// Recurrent layers as ops, one op per whole sequence (as cuDNN, oneDNN and ONNX's LSTM/GRU/RNN nodes):
//
//   lstm(x [B,T,I], kernel [I,4H], recurrent_kernel [H,4H], bias [4H], h0 [B,H], c0 [B,H], lengths [B])
//     -> y [B,T,H], h_T [B,H], c_T [B,H], gates [B,T,4H] (i,f,c,o after activation), cells [B,T,H] (c_t)
//   gru(x, kernel [I,3H], recurrent_kernel [H,3H], bias [2,3H] (reset_after) or [3H], h0, lengths)
//     -> y, h_T, gates [B,T,3H] (z,r,hh), extra [B,T,H] (reset_after: h_{t-1} U_h + b_rh; else r*h_{t-1})
//   simple_rnn(x, kernel [I,H], recurrent_kernel [H,H], bias [H], h0, lengths) -> y, h_T
//
// Keras' gate orders. Attributes: activation, recurrent_activation (strings, Keras' names), reverse,
// reset_after (GRU). lengths (int64, each in 1..T): steps t >= lengths[b] are padding; they neither
// update the state nor produce output (y is 0 there). The last outputs (gates, cells, extra) are what
// the backward reads; gradients arriving at them are ignored.
//
// The gradient of each op is one fused op (lstm_grad, gru_grad, simple_rnn_grad) running the whole
// back-propagation through time; those have no gradient of their own (no second derivatives through
// recurrent layers).
#include <algorithm>
#include <vector>

#include "backend/cpu/rnn.h"
#include "core/check.h"
#include "ops/dtype_dispatch.h"
#include "ops/families.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

using cpu::RnnAct;
using cpu::RnnCell;

RnnAct parse_act(const std::string& name, const char* what) {
  if (name == "tanh") return RnnAct::Tanh;
  if (name == "relu") return RnnAct::Relu;
  if (name == "sigmoid") return RnnAct::Sigmoid;
  if (name == "linear") return RnnAct::Linear;
  if (name == "hard_sigmoid") return RnnAct::HardSigmoid;
  detail::fail("unknown {} '{}' (expected tanh, relu, sigmoid, hard_sigmoid or linear)", what, name);
}

// Where each tensor sits in the forward op's and the backward op's input and output lists.
struct Layout {
  RnnCell cell;
  bool has_c() const { return cell == RnnCell::LSTM; }
  bool saves() const { return cell != RnnCell::Simple; }
  // forward inputs: x, kernel, recurrent_kernel, bias, h0, [c0], lengths
  std::size_t fwd_lengths() const { return has_c() ? 6 : 5; }
  // forward outputs: y, h, [c], [gates, extra]
  std::size_t fwd_gates() const { return has_c() ? 3 : 2; }
  // backward inputs: x, kernel, recurrent_kernel, h0, [c0], lengths, y, [gates, extra], dy, dh, [dc]
  std::size_t bwd_lengths() const { return has_c() ? 5 : 4; }
  std::size_t bwd_y() const { return bwd_lengths() + 1; }
  std::size_t bwd_dy() const { return bwd_y() + (saves() ? 3 : 1); }
  int fwd_inputs() const { return static_cast<int>(fwd_lengths()) + 1; }
  int bwd_inputs() const { return static_cast<int>(bwd_dy()) + (has_c() ? 3 : 2); }
};

const char* op_name(RnnCell c) { return c == RnnCell::LSTM ? "lstm" : c == RnnCell::GRU ? "gru" : "simple_rnn"; }

cpu::RnnConfig config_of(RnnCell cell, const Shape& x, std::int64_t H, const Attrs& at) {
  cpu::RnnConfig c;
  c.cell = cell;
  c.act = parse_act(at.s("activation"), "activation");
  c.rec_act = parse_act(at.s("recurrent_activation"), "recurrent_activation");
  c.reverse = at.b("reverse");
  c.reset_after = cell == RnnCell::GRU && at.b("reset_after");
  c.B = x[0];
  c.T = x[1];
  c.I = x[2];
  c.H = H;
  return c;
}

Shape bias_shape(const cpu::RnnConfig& c) {
  const std::int64_t gh = c.gates() * c.H;
  return c.reset_after ? Shape{2, gh} : Shape{gh};
}

// Checks x, kernel, recurrent_kernel, h0 (and c0) and lengths; returns the configuration.
cpu::RnnConfig check_common(RnnCell cell, const TensorMeta& x, const TensorMeta& w, const TensorMeta& u,
                            const TensorMeta& h0, const TensorMeta* c0, const TensorMeta& lengths, const Attrs& at) {
  require_float(x.dtype, "x");
  require_float(w.dtype, "kernel");
  require_float(u.dtype, "recurrent_kernel");
  SYN_CHECK(x.shape.size() == 3 && x.shape[1] != 0, "x must be [batch,time,features] with time >= 1, got {}",
            to_string(x.shape));
  SYN_CHECK(u.shape.size() == 2, "recurrent_kernel must be [units,gates*units], got {}", to_string(u.shape));
  const cpu::RnnConfig c = config_of(cell, x.shape, u.shape[0], at);
  const std::int64_t gh = c.gates() * c.H;
  SYN_CHECK(u.shape[1] == gh, "recurrent_kernel must be [{},{}] ({} gates of {} units), got {}", c.H, gh, c.gates(),
            c.H, to_string(u.shape));
  SYN_CHECK(w.shape == (Shape{c.I, gh}), "kernel must be [{},{}] for x {} and {} units, got {}", c.I, gh,
            to_string(x.shape), c.H, to_string(w.shape));
  for (const TensorMeta* s : {&h0, c0}) {
    if (s == nullptr) continue;
    require_float(s->dtype, "initial state");
    SYN_CHECK(s->shape == (Shape{c.B, c.H}) || s->shape == (Shape{1, c.H}),
              "initial state must be [{},{}] (or [1,{}] for every row), got {}", c.B, c.H, c.H, to_string(s->shape));
  }
  SYN_CHECK(lengths.dtype == DType::Int64 && (lengths.shape == Shape{c.B} || lengths.shape == Shape{1}),
            "lengths must be int64 [{}] (or [1] for every row), got {} {}", c.B, dtype_name(lengths.dtype),
            to_string(lengths.shape));
  return c;
}

// The rows of an input given once for every row ([1, H] state, [1] lengths) repeated B times in
// `buf`; an input with B rows as it is.
template <class T> const T* all_rows(const Tensor* t, std::int64_t B, std::vector<T>& buf) {
  if (t == nullptr) return nullptr;
  if (t->dim(0) == B) return t->data<T>();
  const std::int64_t row = t->numel();
  buf.resize(static_cast<std::size_t>(B * row));
  for (std::int64_t b = 0; b < B; ++b) std::copy(t->data<T>(), t->data<T>() + row, buf.begin() + b * row);
  return buf.data();
}

// lengths for all B rows, checked to lie in 1..T.
const std::int64_t* checked_lengths(const Tensor& lengths, const cpu::RnnConfig& c, std::vector<std::int64_t>& buf,
                                    const char* op) {
  const std::int64_t* p = all_rows(&lengths, c.B, buf);
  for (std::int64_t b = 0; b < c.B; ++b)
    SYN_CHECK(p[b] >= 1 && p[b] <= c.T, "{}: lengths[{}] = {} is outside 1..{} (the time steps of x)", op, b, p[b], c.T);
  return p;
}

std::vector<TensorMeta> forward_shapes(RnnCell cell, const std::vector<TensorMeta>& in, const Attrs& at) {
  const Layout l{cell};
  const cpu::RnnConfig c =
      check_common(cell, in[0], in[1], in[2], in[4], l.has_c() ? &in[5] : nullptr, in[l.fwd_lengths()], at);
  require_float(in[3].dtype, "bias");
  SYN_CHECK(in[3].shape == bias_shape(c), "bias must be {}, got {}", to_string(bias_shape(c)), to_string(in[3].shape));
  std::vector<TensorMeta> out{{{c.B, c.T, c.H}, DType::Float32}, {{c.B, c.H}, DType::Float32}};
  if (l.has_c()) out.push_back({{c.B, c.H}, DType::Float32});
  if (l.saves()) {
    out.push_back({{c.B, c.T, c.gates() * c.H}, DType::Float32});
    out.push_back({{c.B, c.T, c.H}, DType::Float32});
  }
  return out;
}

std::vector<TensorMeta> backward_shapes(RnnCell cell, const std::vector<TensorMeta>& in, const Attrs& at) {
  const Layout l{cell};
  const cpu::RnnConfig c = check_common(cell, in[0], in[1], in[2], in[3], l.has_c() ? &in[4] : nullptr,
                                        in[l.bwd_lengths()], at);
  for (std::size_t i = l.bwd_y(); i < in.size(); ++i) require_float(in[i].dtype, "saved or gradient tensor");
  SYN_CHECK(in[l.bwd_dy()].shape == (Shape{c.B, c.T, c.H}), "dy must be [{},{},{}], got {}", c.B, c.T, c.H,
            to_string(in[l.bwd_dy()].shape));
  std::vector<TensorMeta> out{{in[0].shape, DType::Float32}, {in[1].shape, DType::Float32},
                              {in[2].shape, DType::Float32}, {bias_shape(c), DType::Float32},
                              {{c.B, c.H}, DType::Float32}};
  if (l.has_c()) out.push_back({{c.B, c.H}, DType::Float32});
  return out;
}

const float* f32(const Tensor& t) { return t.data<float>(); }
float* f32(Tensor& t) { return t.data<float>(); }

template <bool kReference> void forward_kernel(RnnCell cell, const KernelContext& k) {
  const Layout l{cell};
  const cpu::RnnConfig c = config_of(cell, k.in(0).shape(), k.in(2).dim(0), k.attrs);
  std::vector<std::int64_t> len_buf;
  std::vector<float> h0_buf, c0_buf;
  cpu::RnnForwardArgs a{.x = f32(k.in(0)), .w = f32(k.in(1)), .u = f32(k.in(2)), .bias = f32(k.in(3)),
                        .h0 = all_rows(&k.in(4), c.B, h0_buf),
                        .c0 = all_rows(l.has_c() ? &k.in(5) : nullptr, c.B, c0_buf),
                        .lengths = checked_lengths(k.in(l.fwd_lengths()), c, len_buf, op_name(cell)), .y = f32(k.out(0)), .h_last = f32(k.out(1)),
                        .c_last = l.has_c() ? f32(k.out(2)) : nullptr,
                        .gates = l.saves() ? f32(k.out(l.fwd_gates())) : nullptr,
                        .extra = l.saves() ? f32(k.out(l.fwd_gates() + 1)) : nullptr};
  if (kReference) {
    cpu::rnn_forward_reference(c, a);
  } else {
    cpu::rnn_forward(c, a);
  }
}

template <bool kReference> void backward_kernel(RnnCell cell, const KernelContext& k) {
  const Layout l{cell};
  const cpu::RnnConfig c = config_of(cell, k.in(0).shape(), k.in(2).dim(0), k.attrs);
  const std::size_t y = l.bwd_y(), dy = l.bwd_dy();
  std::vector<std::int64_t> len_buf;
  std::vector<float> h0_buf, c0_buf;
  cpu::RnnBackwardArgs a{.x = f32(k.in(0)), .w = f32(k.in(1)), .u = f32(k.in(2)),
                         .h0 = all_rows(&k.in(3), c.B, h0_buf),
                         .c0 = all_rows(l.has_c() ? &k.in(4) : nullptr, c.B, c0_buf),
                         .lengths = checked_lengths(k.in(l.bwd_lengths()), c, len_buf, op_name(cell)),
                         .y = f32(k.in(y)), .gates = l.saves() ? f32(k.in(y + 1)) : nullptr,
                         .extra = l.saves() ? f32(k.in(y + 2)) : nullptr, .dy = f32(k.in(dy)),
                         .dh_last = f32(k.in(dy + 1)), .dc_last = l.has_c() ? f32(k.in(dy + 2)) : nullptr,
                         .dx = f32(k.out(0)), .dw = f32(k.out(1)), .du = f32(k.out(2)), .dbias = f32(k.out(3)),
                         .dh0 = f32(k.out(4)), .dc0 = l.has_c() ? f32(k.out(5)) : nullptr};
  if (kReference) {
    cpu::rnn_backward_reference(c, a);
  } else {
    cpu::rnn_backward(c, a);
  }
}

// The gradient: one call of the fused backward op with the forward's inputs, saved outputs and the
// gradients of y and of the final state(s).
std::vector<Tensor> rnn_grad(RnnCell cell, const GradCtx& g) {
  const Layout l{cell};
  std::vector<Tensor> in{g.x(0), g.x(1), g.x(2), g.x(4)};
  if (l.has_c()) in.push_back(g.x(5));
  in.push_back(g.x(l.fwd_lengths()));
  in.push_back(g.y(0));
  if (l.saves()) {
    in.push_back(g.y(l.fwd_gates()));
    in.push_back(g.y(l.fwd_gates() + 1));
  }
  in.push_back(g.dy(0));
  in.push_back(g.dy(1));
  if (l.has_c()) in.push_back(g.dy(2));
  static const OpDef* ops[3] = {&op_def("simple_rnn_grad"), &op_def("lstm_grad"), &op_def("gru_grad")};
  std::vector<Tensor> d = apply(*ops[static_cast<int>(cell)], in, g.attrs);
  // One gradient per forward input: x, kernel, recurrent_kernel, bias, h0, [c0], and none for lengths.
  // A state given once for every row ([1, H]) gets the sum over the rows.
  for (std::size_t i = 4; i < d.size(); ++i)
    if (g.x(i).dim(0) == 1 && g.x(0).dim(0) != 1) d[i] = sum(d[i], {0}, true);
  d.emplace_back();
  return d;
}

// The matrix products dominate: per step and row, x [I] and h [H] times the kernels [I, G*H] and
// [H, G*H]. The backward pass multiplies by each kernel twice (the input's and the kernel's gradient).
double rnn_flops(const KernelContext& k, double passes) {
  const Shape& x = k.in(0).shape();  // [batch, time, features]
  return passes * 2.0 * static_cast<double>(x[0]) * static_cast<double>(x[1]) *
         static_cast<double>(k.in(1).numel() + k.in(2).numel());
}

void define_cell(RnnCell cell) {
  const Layout l{cell};
  const std::string name = op_name(cell);
  define_op(name)
      .inputs(l.fwd_inputs())
      .shape([cell](const std::vector<TensorMeta>& in, const Attrs& at) { return forward_shapes(cell, in, at); })
      .kernel(Device::CPU, [cell](const KernelContext& k) { forward_kernel<false>(cell, k); })
      .reference([cell](const KernelContext& k) { forward_kernel<true>(cell, k); })
      .flops([](const KernelContext& k) { return rnn_flops(k, 1.0); })
      .grad([cell](const GradCtx& g) { return rnn_grad(cell, g); });
  define_op(name + "_grad")
      .inputs(l.bwd_inputs())
      .shape([cell](const std::vector<TensorMeta>& in, const Attrs& at) { return backward_shapes(cell, in, at); })
      .kernel(Device::CPU, [cell](const KernelContext& k) { backward_kernel<false>(cell, k); })
      .reference([cell](const KernelContext& k) { backward_kernel<true>(cell, k); })
      .flops([](const KernelContext& k) { return rnn_flops(k, 2.0); });
}

Attrs rnn_attrs(const RnnOpOptions& o, bool gru) {
  Attrs a;
  a.set("activation", o.activation).set("recurrent_activation", o.recurrent_activation).set("reverse", o.reverse);
  if (gru) a.set("reset_after", o.reset_after);
  return a;
}

}  // namespace

void register_rnn_ops() {
  define_cell(RnnCell::Simple);
  define_cell(RnnCell::LSTM);
  define_cell(RnnCell::GRU);
}

}  // namespace ops

RnnOutputs lstm(const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                const Tensor& h0, const Tensor& c0, const Tensor& lengths, const RnnOpOptions& opts) {
  static const OpDef& op = op_def("lstm");
  auto out = apply(op, {x, kernel, recurrent_kernel, bias, h0, c0, lengths}, ops::rnn_attrs(opts, false));
  return {out[0], out[1], out[2]};
}

RnnOutputs gru(const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
               const Tensor& h0, const Tensor& lengths, const RnnOpOptions& opts) {
  static const OpDef& op = op_def("gru");
  auto out = apply(op, {x, kernel, recurrent_kernel, bias, h0, lengths}, ops::rnn_attrs(opts, true));
  return {out[0], out[1], Tensor()};
}

RnnOutputs simple_rnn(const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                      const Tensor& h0, const Tensor& lengths, const RnnOpOptions& opts) {
  static const OpDef& op = op_def("simple_rnn");
  auto out = apply(op, {x, kernel, recurrent_kernel, bias, h0, lengths}, ops::rnn_attrs(opts, false));
  return {out[0], out[1], Tensor()};
}

}  // namespace synapse
