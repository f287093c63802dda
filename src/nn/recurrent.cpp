// The recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional): parameters, masking and state around one
// op call per sequence (ops.h: lstm, gru, simple_rnn).
#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/nn.h"

namespace synapse::nn {
namespace layers {
namespace {

std::string who(const Module& m) { return m.type() + " '" + m.name() + "'"; }

// Steps T-1 .. 0 of axis 1 (Keras' go_backwards order of the outputs).
Tensor reverse_time(const Tensor& y) {
  const std::int64_t T = y.dim(1);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(T));
  for (std::int64_t t = 0; t < T; ++t) idx[static_cast<std::size_t>(t)] = T - 1 - t;
  return gather(y, from_vector(idx, {T}), 1);
}

template <class O> void check_units(const O& o, const char* type) {
  SYN_CHECK(o.units() > 0, "{}: units must be positive, got {}", type, o.units());
}

}  // namespace

Recurrent::Recurrent(std::string type, Config c, const std::string& name) : Module(std::move(type)), c_(std::move(c)) {
  if (!name.empty()) set_name(name);
}

void Recurrent::build(const Shape& s) {
  SYN_CHECK(s.size() == 3, "{}: expected inputs [batch, time, features], got shape {}", who(*this), to_string(s));
  const std::int64_t H = c_.units, G = c_.kind == Kind::LSTM ? 4 : c_.kind == Kind::GRU ? 3 : 1;
  kernel_ = add_parameter("kernel", c_.kernel_initializer({s[2], G * H}, generator()));
  recurrent_kernel_ = add_parameter("recurrent_kernel", c_.recurrent_initializer({H, G * H}, generator()));
  const Shape bias_shape = c_.kind == Kind::GRU && c_.reset_after ? Shape{2, G * H} : Shape{G * H};
  if (c_.use_bias) {
    Tensor b = c_.bias_initializer(bias_shape, generator());
    if (c_.kind == Kind::LSTM && c_.unit_forget_bias) {  // the forget gate's columns start at 1
      float* p = b.data<float>();
      for (std::int64_t j = H; j < 2 * H; ++j) p[j] = 1.0f;
    }
    bias_ = add_parameter("bias", b);
  } else {
    no_bias_ = zeros(bias_shape);  // the op always adds a bias; this one is not a parameter
  }
}

RecurrentResult Recurrent::run(const Tensor& x, const Tensor& lengths, const std::vector<Tensor>& initial_state) {
  build_once(x.shape());
  SYN_CHECK(x.ndim() == 3 && x.dim(2) == kernel_.dim(0), "{}: expected inputs [batch, time, {}], got shape {}",
            who(*this), kernel_.dim(0), to_string(x.shape()));
  const std::int64_t B = x.dim(0), T = x.dim(1), H = c_.units;
  const std::size_t ns = num_states();
  std::vector<Tensor> state = initial_state;
  if (state.empty() && c_.stateful && !carried_.empty()) {
    SYN_CHECK(carried_[0].dim(0) == B,
              "{}: the stateful layer carries a state for a batch of {}, got a batch of {}; call reset_states() "
              "first",
              who(*this), carried_[0].dim(0), B);
    state = carried_;
  }
  if (state.empty()) state.assign(ns, zeros({1, H}));  // [1, H]: zeros for every row (no batch size needed)
  SYN_CHECK(state.size() == ns, "{}: expected {} initial state tensor(s), got {}", who(*this), ns, state.size());
  const Tensor len = lengths.defined() ? lengths : full({1}, static_cast<double>(T), DType::Int64);
  RnnOpOptions o;
  o.activation = c_.activation;
  o.recurrent_activation = c_.recurrent_activation;
  o.reverse = c_.go_backwards;
  o.reset_after = c_.reset_after;
  const Tensor& b = c_.use_bias ? bias_ : no_bias_;
  RnnOutputs out;
  switch (c_.kind) {
    case Kind::LSTM: out = lstm(x, kernel_, recurrent_kernel_, b, state[0], state[1], len, o); break;
    case Kind::GRU: out = gru(x, kernel_, recurrent_kernel_, b, state[0], len, o); break;
    case Kind::Simple: out = simple_rnn(x, kernel_, recurrent_kernel_, b, state[0], len, o); break;
  }
  RecurrentResult r{c_.return_sequences ? out.y : out.h, {out.h}};
  if (out.c.defined()) r.states.push_back(out.c);
  if (c_.stateful) {
    carried_.clear();
    for (const Tensor& s : r.states) carried_.push_back(s.detach());
  }
  return r;
}

RecurrentResult Recurrent::call(const Tensor& x, const Tensor& lengths, const std::vector<Tensor>& initial_state) {
  RecurrentResult r = run(x, lengths, initial_state);
  if (c_.return_sequences && c_.go_backwards) r.output = reverse_time(r.output);
  if (!c_.return_state) r.states.clear();
  record_output_shape(r.output.shape());
  return r;
}

Tensor Recurrent::forward(const Tensor& x) { return call(x).output; }

// ---- the three cells: their options as a Config ----
#define SYNAPSE_RECURRENT_CONFIG(o, kind_, rec_act, forget, reset)                                               \
  Config {                                                                                                       \
    .kind = kind_, .units = o.units(), .activation = o.activation(), .recurrent_activation = rec_act,            \
    .use_bias = o.use_bias(), .return_sequences = o.return_sequences(), .return_state = o.return_state(),        \
    .go_backwards = o.go_backwards(), .stateful = o.stateful(), .unit_forget_bias = forget, .reset_after = reset, \
    .kernel_initializer = o.kernel_initializer(), .recurrent_initializer = o.recurrent_initializer(),            \
    .bias_initializer = o.bias_initializer()                                                                     \
  }

SimpleRNN::SimpleRNN(SimpleRNNOptions o)
    : RecurrentLayer("SimpleRNN", SYNAPSE_RECURRENT_CONFIG(o, Kind::Simple, "sigmoid", false, false), o) {
  check_units(options(), "SimpleRNN");
}

LSTM::LSTM(LSTMOptions o)
    : RecurrentLayer("LSTM", SYNAPSE_RECURRENT_CONFIG(o, Kind::LSTM, o.recurrent_activation(), o.unit_forget_bias(), false),
                     o) {
  check_units(options(), "LSTM");
}

GRU::GRU(GRUOptions o)
    : RecurrentLayer("GRU", SYNAPSE_RECURRENT_CONFIG(o, Kind::GRU, o.recurrent_activation(), false, o.reset_after()), o) {
  check_units(options(), "GRU");
}
#undef SYNAPSE_RECURRENT_CONFIG

// ---- Bidirectional ----

Bidirectional::Bidirectional(std::shared_ptr<Recurrent> layer, MergeMode mode) : Module("Bidirectional"), mode_(mode) {
  SYN_CHECK(layer != nullptr, "Bidirectional: the layer is null");
  SYN_CHECK(!layer->built(), "Bidirectional: wrap a layer that has not been called yet ('{}' is built)", layer->name());
  const std::string base = layer->name();
  bwd_ = layer->reversed_copy("backward_" + base);
  layer->set_name("forward_" + base);
  fwd_ = add_module(std::move(layer));
  add_module(bwd_);
}

RecurrentResult Bidirectional::call(const Tensor& x, const Tensor& lengths, const std::vector<Tensor>& initial_state) {
  build_once(x.shape());
  const std::size_t ns = fwd_->num_states();
  SYN_CHECK(initial_state.empty() || initial_state.size() == 2 * ns,
            "{}: expected {} initial state tensors (forward then backward), got {}", who(*this), 2 * ns,
            initial_state.size());
  auto part = [&](std::size_t from) {
    return initial_state.empty() ? std::vector<Tensor>{}
                                 : std::vector<Tensor>(initial_state.begin() + static_cast<std::ptrdiff_t>(from),
                                                       initial_state.begin() + static_cast<std::ptrdiff_t>(from + ns));
  };
  // Both runs keep each output at its input step, which is where Keras puts the backward outputs.
  RecurrentResult f = fwd_->run(x, lengths, part(0)), b = bwd_->run(x, lengths, part(ns));
  if (fwd_->return_sequences() && fwd_->go_backwards()) {
    f.output = reverse_time(f.output);
    b.output = reverse_time(b.output);
  }
  Tensor y;
  switch (mode_) {
    case MergeMode::Concat: y = concat({f.output, b.output}, -1); break;
    case MergeMode::Sum: y = f.output + b.output; break;
    case MergeMode::Mul: y = f.output * b.output; break;
    case MergeMode::Ave: y = (f.output + b.output) * 0.5f; break;
  }
  RecurrentResult r{y, {}};
  if (fwd_->return_state()) {
    r.states = f.states;
    r.states.insert(r.states.end(), b.states.begin(), b.states.end());
  }
  record_output_shape(y.shape());
  return r;
}

Tensor Bidirectional::forward(const Tensor& x) { return call(x).output; }

void Bidirectional::reset_states() {
  fwd_->reset_states();
  bwd_->reset_states();
}

}  // namespace layers

std::shared_ptr<layers::SimpleRNN> SimpleRNN(SimpleRNNOptions o) { return std::make_shared<layers::SimpleRNN>(std::move(o)); }
std::shared_ptr<layers::LSTM> LSTM(LSTMOptions o) { return std::make_shared<layers::LSTM>(std::move(o)); }
std::shared_ptr<layers::GRU> GRU(GRUOptions o) { return std::make_shared<layers::GRU>(std::move(o)); }
std::shared_ptr<layers::Bidirectional> Bidirectional(std::shared_ptr<layers::Recurrent> layer, MergeMode merge_mode,
                                                     std::string name) {
  auto m = std::make_shared<layers::Bidirectional>(std::move(layer), merge_mode);
  if (!name.empty()) m->set_name(std::move(name));
  return m;
}

}  // namespace synapse::nn
