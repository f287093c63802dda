// ONNX -> Synapse, the recurrent family: LSTM (with peepholes, unrolled), GRU and RNN.
#include <string>
#include <vector>

#include "onnx/import_internal.h"

namespace synapse::onnx::internal {
namespace {

// ---- recurrent layers ----
// ONNX's LSTM, GRU and RNN (forward, reverse or bidirectional) onto lstm, gru and simple_rnn.
// ONNX: X [T,B,I] (layout 1: [B,T,I]), W [D,G*H,I], R [D,G*H,H], B [D,2*G*H] (input then recurrent
// bias), sequence_lens [B], initial_h/_c [D,B,H]; Y [T,D,B,H] (layout 1: [B,T,D,H]), Y_h/Y_c [D,B,H]
// ([B,D,H]). ONNX's LSTM gates are i, o, f, c (Keras': i, f, c, o); GRU z, r, h and RNN's one gate are
// in Keras' order already. Weights are stored transposed ([G*H, I]). GRU linear_before_reset=1 is
// reset_after (two bias rows), 0 sums the two biases. An LSTM with peepholes (input P) becomes an
// unrolled graph of existing ops (peephole_lstm below). Clip, input_forget, activation parameters and
// activations other than Sigmoid, Tanh, Relu and HardSigmoid are Unsupported.
Tensor rows_of(const Tensor& t, std::int64_t from, std::int64_t n) {  // rows [from, from + n) of axis 0
  std::vector<std::int64_t> begin(static_cast<std::size_t>(t.ndim()), 0), size(static_cast<std::size_t>(t.ndim()), -1);
  begin[0] = from;
  size[0] = n;
  return slice(t, begin, size);
}
Tensor cols_of(const Tensor& t, std::int64_t from, std::int64_t n) {  // columns [from, from + n) of a [B, N] tensor
  return slice(t, {0, from}, {-1, n});
}

Tensor rnn_activation(const std::string& name, const Tensor& x) {  // the RnnOpOptions names
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return synapse::tanh(x);
  if (name == "relu") return relu(x);
  return clip(x * 0.2f + 0.5f, 0.0f, 1.0f);  // hard_sigmoid, ONNX's default alpha and beta
}

// ONNX's LSTM with peepholes, one direction, unrolled over the (known) T steps into ops that exist:
// one GEMM for the input projection of every step, then per step a matmul with the recurrent kernel,
// sigmoid/tanh and elementwise products (ONNX's equations, gates i, f, c, o here in Keras' order):
//   i = f(x W_i + h R_i + P_i * c_prev + b_i)    f = f(x W_f + h R_f + P_f * c_prev + b_f)
//   c = f * c_prev + i * g(x W_c + h R_c + b_c)  o = f(x W_o + h R_o + P_o * c + b_o)   h = o * h(c)
// P is [3H] in ONNX's order i, o, f. With `lengths`, steps t >= lengths[b] keep the state and output
// 0, and a reversed sequence runs from its last valid step down to 0, as the fused lstm op does.
//
// Why not a peephole option on the fused lstm op: peepholes exist only in imported ONNX models (Keras'
// and PyTorch's LSTMs have none, and the exporter never writes P), so the fused forward and backward
// kernels, their AVX-512 and scalar paths and the layer would all grow a rarely used branch on the
// hot loop of every LSTM. Unrolled, the import reuses ops that already have kernels, references and
// gradient checks, so an imported peephole LSTM runs, traces and fine-tunes with no new kernel code;
// the price (one graph node per gate per step) only falls on these rare models.
RnnOutputs peephole_lstm(const Tensor& x, const Tensor& kernel, const Tensor& rec, const Tensor& bias,
                         const Tensor& peep, Tensor h, Tensor c, const Tensor& lengths, const RnnOpOptions& o) {
  const std::int64_t T = x.dim(1), H = rec.dim(0);
  const Tensor p_i = rows_of(peep, 0, H), p_o = rows_of(peep, H, H), p_f = rows_of(peep, 2 * H, H);
  const Tensor xw = matmul(x, kernel) + bias;                          // [B, T, 4H]
  const Tensor len = lengths.defined() ? unsqueeze(lengths, 1) : Tensor();  // [B, 1]
  std::vector<Tensor> ys(static_cast<std::size_t>(T));
  for (std::int64_t s = 0; s < T; ++s) {
    const std::int64_t t = o.reverse ? T - 1 - s : s;
    const Tensor z = squeeze(slice(xw, {0, t, 0}, {-1, 1, -1}), 1) + matmul(h, rec);  // [B, 4H]
    const Tensor gi = rnn_activation(o.recurrent_activation, cols_of(z, 0, H) + p_i * c);
    const Tensor gf = rnn_activation(o.recurrent_activation, cols_of(z, H, H) + p_f * c);
    const Tensor cn = gf * c + gi * rnn_activation(o.activation, cols_of(z, 2 * H, H));
    const Tensor go = rnn_activation(o.recurrent_activation, cols_of(z, 3 * H, H) + p_o * cn);
    const Tensor hn = go * rnn_activation(o.activation, cn);
    if (len.defined()) {
      const Tensor valid = greater(len, full({}, static_cast<double>(t), DType::Int64));  // [B, 1]
      ys[static_cast<std::size_t>(t)] = unsqueeze(where(valid, hn, zeros({})), 1);
      h = where(valid, hn, h);
      c = where(valid, cn, c);
    } else {
      ys[static_cast<std::size_t>(t)] = unsqueeze(hn, 1);
      h = hn;
      c = cn;
    }
  }
  return {concat(ys, 1), h, c};
}

Outputs recurrent(Ctx& c, const std::string& kind) {
  const bool lstm_node = kind == "LSTM", gru_node = kind == "GRU";
  const std::int64_t G = lstm_node ? 4 : gru_node ? 3 : 1;
  if (c.has_attr("clip")) c.unsupported("clip");
  if (c.i("input_forget", 0) != 0) c.unsupported("input_forget");
  if (c.has_attr("activation_alpha") || c.has_attr("activation_beta")) c.unsupported("activation parameters");
  const bool peepholes = lstm_node && c.has(7);
  const bool layout1 = c.i("layout", 0) != 0;
  Tensor x = c.in(0);
  c.require_float(x);
  c.require_rank(x, 3);
  if (!layout1) x = permute(x, {1, 0, 2});  // [B, T, I]
  const Tensor W = c.in(1), R = c.in(2);
  // Every weight's shape is checked before it is sliced (a fuzzed model with a scalar W reached rows_of,
  // which indexes axis 0).
  auto expect_shape = [&](const Tensor& t, const char* what, const std::vector<std::int64_t>& dims) {
    bool ok = t.ndim() == static_cast<std::int64_t>(dims.size());
    for (std::size_t a = 0; ok && a < dims.size(); ++a) ok = dims[a] < 0 || t.dim(static_cast<std::int64_t>(a)) == dims[a];
    if (ok) return;
    std::string want;
    for (const std::int64_t d : dims) want += (want.empty() ? "" : ", ") + (d < 0 ? std::string("?") : std::to_string(d));
    throw Error(fmt::format("{}: {} must have shape [{}], got {}", describe(c.n), what, want, to_string(t.shape())));
  };
  expect_shape(R, "R (recurrence weights)", {-1, -1, -1});
  const std::int64_t H = c.i("hidden_size", R.dim(2)), T = x.dim(1);
  const std::string dir = c.s("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional") c.unsupported("direction '" + dir + "'");
  const std::int64_t D = dir == "bidirectional" ? 2 : 1;
  if (H < 1) throw Error(fmt::format("{}: hidden_size must be at least 1, got {}", describe(c.n), H));
  expect_shape(W, "W (input weights)", {D, G * H, x.dim(2)});
  expect_shape(R, "R (recurrence weights)", {D, G * H, H});
  if (c.has(3)) expect_shape(c.in(3), "B (biases)", {D, 2 * G * H});
  if (c.has(5)) expect_shape(c.in(5), "initial_h", {D, -1, H});
  if (lstm_node && c.has(6)) expect_shape(c.in(6), "initial_c", {D, -1, H});
  Tensor P;
  if (peepholes) {
    P = c.in(7);
    c.require_float(P, "P (peepholes)");
    if (P.ndim() != 2 || P.dim(0) != D || P.dim(1) != 3 * H)
      throw Error(fmt::format("{}: P (peepholes) must have shape [{}, {}] (num_directions, 3 * hidden_size), got {}",
                              describe(c.n), D, 3 * H, to_string(P.shape())));
    if (T < 0) c.unsupported("peepholes (input P) with an unknown sequence length");
  }
  // Activations per direction: LSTM f, g, h; GRU f, g; RNN f.
  std::vector<std::string> acts;
  if (const auto* a = c.attr("activations"))
    for (const auto& v : a->strings()) acts.push_back(v);
  const std::vector<std::string> defaults = lstm_node ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                            : gru_node ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                       : std::vector<std::string>{"Tanh"};
  if (acts.empty())
    for (std::int64_t d = 0; d < D; ++d) acts.insert(acts.end(), defaults.begin(), defaults.end());
  if (acts.size() != defaults.size() * static_cast<std::size_t>(D))
    c.unsupported(fmt::format("{} activations for {} direction(s)", acts.size(), D));
  auto act_name = [&](const std::string& a) -> std::string {
    if (a == "Sigmoid") return "sigmoid";
    if (a == "Tanh") return "tanh";
    if (a == "Relu") return "relu";
    if (a == "HardSigmoid") return "hard_sigmoid";  // ONNX's default alpha 0.2, beta 0.5
    c.unsupported("activation " + a);
  };
  const Tensor lengths = c.has(4) ? cast(c.in(4), DType::Int64) : full({1}, static_cast<double>(T), DType::Int64);
  if (!c.has(4) && T < 0) c.unsupported("an unknown sequence length without sequence_lens");
  auto keras_order = [&](const Tensor& t) {  // LSTM rows i, o, f, c -> i, f, c, o
    if (!lstm_node) return t;
    return concat({rows_of(t, 0, H), rows_of(t, 2 * H, H), rows_of(t, 3 * H, H), rows_of(t, H, H)}, 0);
  };
  auto state = [&](int i, std::int64_t d) {  // initial_h / initial_c of direction d, or zeros for every row
    return c.has(i) ? squeeze(rows_of(c.in(i), d, 1), 0) : zeros({1, H});
  };
  std::vector<Tensor> ys, hs, cs;
  for (std::int64_t d = 0; d < D; ++d) {
    const std::size_t a0 = defaults.size() * static_cast<std::size_t>(d);
    RnnOpOptions o;
    o.reverse = dir == "reverse" || d == 1;
    o.recurrent_activation = act_name(acts[a0]);
    o.activation = act_name(acts[a0 + (G == 1 ? 0 : 1)]);
    if (G == 1) o.recurrent_activation = "sigmoid";  // unused by simple_rnn
    if (lstm_node && acts[a0 + 1] != acts[a0 + 2])
      c.unsupported("different cell (g) and output (h) activations: " + acts[a0 + 1] + ", " + acts[a0 + 2]);
    const Tensor kernel = transpose(keras_order(squeeze(rows_of(W, d, 1), 0)));
    const Tensor rec = transpose(keras_order(squeeze(rows_of(R, d, 1), 0)));
    const Tensor b = c.has(3) ? squeeze(rows_of(c.in(3), d, 1), 0) : zeros({2 * G * H});
    const Tensor wb = keras_order(rows_of(b, 0, G * H)), rb = keras_order(rows_of(b, G * H, G * H));
    RnnOutputs r;
    if (peepholes) {
      r = peephole_lstm(x, kernel, rec, wb + rb, squeeze(rows_of(P, d, 1), 0), state(5, d), state(6, d),
                        c.has(4) ? lengths : Tensor(), o);
    } else if (lstm_node) {
      r = lstm(x, kernel, rec, wb + rb, state(5, d), state(6, d), lengths, o);
    } else if (gru_node) {
      o.reset_after = c.i("linear_before_reset", 0) != 0;
      const Tensor bias = o.reset_after ? concat({unsqueeze(wb, 0), unsqueeze(rb, 0)}, 0) : wb + rb;
      r = gru(x, kernel, rec, bias, state(5, d), lengths, o);
    } else {
      r = simple_rnn(x, kernel, rec, wb + rb, state(5, d), lengths, o);
    }
    ys.push_back(layout1 ? unsqueeze(r.y, 2) : unsqueeze(permute(r.y, {1, 0, 2}), 1));
    hs.push_back(unsqueeze(r.h, layout1 ? 1 : 0));
    if (lstm_node) cs.push_back(unsqueeze(r.c, layout1 ? 1 : 0));
  }
  const std::int64_t state_axis = layout1 ? 1 : 0;
  Outputs out{concat(ys, layout1 ? 2 : 1), concat(hs, state_axis)};
  if (lstm_node) out.push_back(concat(cs, state_axis));
  return out;
}

}  // namespace

void add_recurrent_ops(OpTable& m) {
  for (const char* kind : {"LSTM", "GRU", "RNN"})
    m[kind] = {{"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
                "input_forget", "layout", "linear_before_reset"},
               [k = std::string(kind)](Ctx& c) { return recurrent(c, k); }};
}

}  // namespace synapse::onnx::internal
