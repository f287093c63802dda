// The recurrent layers: shapes, Keras parameter counts and names, initialisers, stacking,
// Bidirectional, masking, stateful mode, go_backwards, graph mode and a small task that trains.
#include <gtest/gtest.h>

#include <sstream>

#include "gradcheck.h"
#include "synapse/graph.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;

namespace {

using synapse::testing::lens;

// Steps T-1 .. 0 of axis 1.
Tensor flip_time(const Tensor& y) {
  std::vector<std::int64_t> idx;
  for (std::int64_t t = y.dim(1) - 1; t >= 0; --t) idx.push_back(t);
  return gather(y, lens(idx), 1);
}

Tensor eye(std::int64_t n) {
  Tensor e = zeros({n, n});
  for (std::int64_t i = 0; i < n; ++i) e.data<float>()[i * n + i] = 1.0f;
  return e;
}

}  // namespace

TEST(Recurrent, ShapesReturnSequencesAndState) {
  manual_seed(1);
  const Tensor x = random_normal({2, 5, 3});
  auto last = nn::LSTM(nn::LSTMOptions(4).return_state(true));
  auto r = last->call(x);
  EXPECT_EQ(r.output.shape(), (Shape{2, 4}));
  ASSERT_EQ(r.states.size(), 2u);
  EXPECT_EQ(max_abs_diff(r.output, r.states[0]), 0.0);
  EXPECT_EQ(r.states[1].shape(), (Shape{2, 4}));

  auto seq = nn::GRU(nn::GRUOptions(6).return_sequences(true));
  auto s = seq->call(x);
  EXPECT_EQ(s.output.shape(), (Shape{2, 5, 6}));
  EXPECT_TRUE(s.states.empty());  // no return_state
  auto seq_state = nn::SimpleRNN(nn::SimpleRNNOptions(3).return_sequences(true).return_state(true));
  auto ss = seq_state->call(x);
  ASSERT_EQ(ss.states.size(), 1u);
  EXPECT_EQ(max_abs_diff(slice(ss.output, {0, 4, 0}, {-1, 1, -1}).reshape({2, 3}), ss.states[0]), 0.0);
  EXPECT_EQ((*seq_state)(x).shape(), (Shape{2, 5, 3}));
}

TEST(Recurrent, KerasParameterCountsNamesAndSummary) {
  auto model = nn::Sequential({nn::LSTM(nn::LSTMOptions(4).return_sequences(true).name("lstm1")),
                               nn::GRU(nn::GRUOptions(4).return_sequences(true)),
                               nn::GRU(nn::GRUOptions(4).reset_after(false).return_sequences(true)),
                               nn::Bidirectional(nn::LSTM(nn::LSTMOptions(2).return_sequences(true))), nn::SimpleRNN(4)});
  model->build_for({1, 20, 3});
  // Keras: LSTM 4*4*(3+4+1); GRU 3*4*(4+4+2) (reset_after), 3*4*(4+4+1); Bidirectional(LSTM(2)) on 4
  // features 2 * 4*2*(4+2+1); SimpleRNN(4) on 4: 4*(4+4+1).
  const auto& c = model->children();
  EXPECT_EQ(c[0]->count_parameters(), 128);
  EXPECT_EQ(c[1]->count_parameters(), 120);
  EXPECT_EQ(c[2]->count_parameters(), 108);
  EXPECT_EQ(c[3]->count_parameters(), 112);
  EXPECT_EQ(c[4]->count_parameters(), 36);
  const auto sd = model->state_dict();
  for (const char* name : {"lstm1/kernel", "lstm1/recurrent_kernel", "lstm1/bias", "gru/bias", "gru_1/bias",
                           "bidirectional/forward_lstm/kernel", "bidirectional/backward_lstm/recurrent_kernel",
                           "simple_rnn/kernel"})
    EXPECT_TRUE(sd.contains(name)) << name;
  EXPECT_EQ(sd.at("lstm1/kernel").shape(), (Shape{3, 16}));
  EXPECT_EQ(sd.at("gru/bias").shape(), (Shape{2, 12}));
  EXPECT_EQ(sd.at("gru_1/bias").shape(), (Shape{12}));
  std::ostringstream os;
  model->summary(os);
  const std::string s = os.str();
  EXPECT_NE(s.find("lstm1 (LSTM)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 20, 4)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 4)"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 504"), std::string::npos) << s;
}

TEST(Recurrent, InitializersForgetBiasAndOrthogonal) {
  manual_seed(3);
  auto l = nn::LSTM(3);
  l->build_for({1, 2, 5});
  const float* b = l->bias().data<float>();
  for (int j = 0; j < 12; ++j) EXPECT_EQ(b[j], j >= 3 && j < 6 ? 1.0f : 0.0f) << j;
  // recurrent_kernel [3, 12]: orthonormal rows.
  const Tensor u = l->recurrent_kernel();
  EXPECT_LT(max_abs_diff(matmul(u, u, {.transpose_b = true}), eye(3)), 1e-5);
  // Tall: orthonormal columns; gain scales.
  Generator g(4);
  const Tensor q = nn::Initializer::orthogonal(2.0f)({6, 4}, g);
  EXPECT_LT(max_abs_diff(matmul(q, q, {.transpose_a = true}), eye(4) * 4.0f), 1e-5);
}

TEST(Recurrent, StackedLayersTrainEndToEndGradients) {
  manual_seed(2);
  auto model = nn::Sequential({nn::LSTM(nn::LSTMOptions(8).return_sequences(true)), nn::GRU(5), nn::Dense(1)});
  const Tensor x = random_normal({3, 4, 2});
  Tensor loss = mean(square((*model)(x)));
  loss.backward();
  for (const auto& [name, p] : model->named_trainable_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(max_abs_diff(p.grad(), zeros_like(p)), 0.0) << name;
  }
}

TEST(Recurrent, BidirectionalIsForwardPlusBackwardOnTheReversedSequence) {
  manual_seed(4);
  const Tensor x = random_normal({2, 6, 3});
  for (bool seqs : {true, false}) {
    auto bi = nn::Bidirectional(nn::LSTM(nn::LSTMOptions(4).return_sequences(seqs).return_state(true)));
    auto r = bi->call(x);
    NoGradGuard ng;
    const auto& f = bi->forward_layer();
    const auto& b = bi->backward_layer();
    EXPECT_EQ(f->name(), "forward_lstm");
    EXPECT_EQ(b->name(), "backward_lstm");
    // The backward layer equals an LSTM with its weights run on the time-reversed input.
    auto plain = nn::LSTM(nn::LSTMOptions(4).return_sequences(seqs));
    plain->build_for({1, 6, 3});
    plain->load_state_dict(b->state_dict());
    Tensor back = (*plain)(flip_time(x));
    if (seqs) back = flip_time(back);
    const Tensor fwd = f->call(x).output;
    EXPECT_LT(max_abs_diff(r.output, concat({fwd, back}, -1)), 1e-6);
    ASSERT_EQ(r.states.size(), 4u);  // forward h, c then backward h, c
    EXPECT_LT(max_abs_diff(r.states[2], seqs ? slice(back, {0, 0, 0}, {-1, 1, -1}).reshape({2, 4}) : back), 1e-6);
    auto sum_bi = nn::Bidirectional(nn::LSTM(nn::LSTMOptions(4).return_sequences(seqs)), nn::MergeMode::Ave);
    EXPECT_EQ((*sum_bi)(x).dim(-1), 4);
  }
}

TEST(Recurrent, MaskedRowEqualsTheSequenceAlone) {
  manual_seed(5);
  const Tensor x = random_normal({3, 6, 2});
  for (bool backwards : {false, true}) {
    auto l = nn::GRU(nn::GRUOptions(5).return_sequences(true).return_state(true).go_backwards(backwards));
    auto r = l->call(x, lens({6, 4, 1}));
    auto alone = l->call(slice(x, {1, 0, 0}, {1, 4, -1}));
    const Tensor row = slice(r.output, {1, 0, 0}, {1, -1, -1});
    // go_backwards: outputs in processing order, the padded steps' zeros first.
    const Tensor valid = backwards ? slice(row, {0, 2, 0}, {1, 4, -1}) : slice(row, {0, 0, 0}, {1, 4, -1});
    const Tensor pad = backwards ? slice(row, {0, 0, 0}, {1, 2, -1}) : slice(row, {0, 4, 0}, {1, 2, -1});
    EXPECT_LT(max_abs_diff(valid, alone.output), 1e-6);
    EXPECT_EQ(max_abs_diff(pad, zeros({1, 2, 5})), 0.0);
    EXPECT_LT(max_abs_diff(slice(r.states[0], {1, 0}, {1, -1}), alone.states[0]), 1e-6);
  }
}

TEST(Recurrent, GoBackwardsReadsTheSequenceBackToFront) {
  manual_seed(6);
  const Tensor x = random_normal({2, 5, 3});
  auto back = nn::LSTM(nn::LSTMOptions(4).return_sequences(true).go_backwards(true));
  const Tensor yb = (*back)(x);
  auto fwd = nn::LSTM(nn::LSTMOptions(4).return_sequences(true));
  fwd->build_for({1, 5, 3});
  fwd->load_state_dict(back->state_dict());
  EXPECT_LT(max_abs_diff(yb, (*fwd)(flip_time(x))), 1e-6);  // Keras: output k is input step T-1-k
}

TEST(Recurrent, StatefulTwoCallsEqualOneLongCall) {
  manual_seed(7);
  const Tensor x = random_normal({2, 8, 3});
  auto st = nn::LSTM(nn::LSTMOptions(4).return_sequences(true).stateful(true));
  const Tensor y1 = (*st)(slice(x, {0, 0, 0}, {-1, 4, -1}));
  const Tensor y2 = (*st)(slice(x, {0, 4, 0}, {-1, 4, -1}));
  auto whole = nn::LSTM(nn::LSTMOptions(4).return_sequences(true));
  whole->build_for({1, 8, 3});
  whole->load_state_dict(st->state_dict());
  const Tensor y = (*whole)(x);
  EXPECT_LT(max_abs_diff(concat({y1, y2}, 1), y), 1e-6);
  EXPECT_NE(error_of([&] { (*st)(random_normal({3, 4, 3})); }).find("carries a state for a batch of 2, got a batch of 3"),
            std::string::npos);
  st->reset_states();
  EXPECT_LT(max_abs_diff((*st)(slice(x, {0, 0, 0}, {-1, 4, -1})), y1), 1e-7);
  // Batch 1, one step at a time (generation) equals the whole sequence.
  auto gen = nn::GRU(nn::GRUOptions(4).stateful(true));
  auto ref = nn::GRU(nn::GRUOptions(4).return_sequences(true));
  gen->build_for({1, 1, 3});
  ref->build_for({1, 1, 3});
  ref->load_state_dict(gen->state_dict());
  const Tensor x1 = slice(x, {0, 0, 0}, {1, -1, -1});
  const Tensor yr = (*ref)(x1);
  for (std::int64_t t = 0; t < 8; ++t)
    EXPECT_LT(max_abs_diff((*gen)(slice(x1, {0, t, 0}, {1, 1, -1})), slice(yr, {0, t, 0}, {1, 1, -1}).reshape({1, 4})),
              1e-6);
}

TEST(Recurrent, InitialStateIsUsedAndGetsGradients) {
  manual_seed(8);
  const Tensor x = random_normal({2, 3, 2});
  Tensor h0 = random_normal({2, 4}).requires_grad_(), c0 = random_normal({2, 4}).requires_grad_();
  auto l = nn::LSTM(4);
  const Tensor y0 = l->call(x).output;
  const Tensor y = l->call(x, {}, {h0, c0}).output;
  EXPECT_GT(max_abs_diff(y, y0), 1e-4);
  sum(y).backward();
  EXPECT_GT(max_abs_diff(h0.grad(), zeros({2, 4})), 0.0);
  EXPECT_GT(max_abs_diff(c0.grad(), zeros({2, 4})), 0.0);
  EXPECT_NE(error_of([&] { l->call(x, {}, {h0}); }).find("expected 2 initial state tensor(s), got 1"), std::string::npos);
}

TEST(Recurrent, LearnsTheSignOfASum) {
  // Sequences of 7 values in {-1, 1}; the label is whether they sum to more than 0.
  manual_seed(9);
  Generator g(9);
  auto model = nn::Sequential({nn::LSTM(8), nn::Dense(1)});
  model->build_for({1, 7, 1});
  optim::Adam opt(model->named_trainable_parameters(), {.learning_rate = 0.03});
  auto batch = [&](std::int64_t n, Tensor& x, Tensor& y) {
    x = sign(random_uniform({n, 7, 1}, -1.0f, 1.0f, &g));
    y = cast(greater(sum(x, {1, 2}), zeros({n})), DType::Float32).reshape({n, 1});
  };
  Tensor x, y;
  for (int step = 0; step < 150; ++step) {
    batch(32, x, y);
    Tensor loss = mean(sigmoid_cross_entropy((*model)(x), y));
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  NoGradGuard ng;
  batch(500, x, y);
  const Tensor pred = cast(greater((*model)(x), zeros({500, 1})), DType::Float32);
  const double acc = static_cast<double>(mean(cast(equal(pred, y), DType::Float32)).item<float>());
  EXPECT_GT(acc, 0.95);
}

TEST(Recurrent, TracedModelInASessionMatchesEager) {
  manual_seed(10);
  auto model = nn::Sequential({nn::LSTM(nn::LSTMOptions(6).return_sequences(true)), nn::GRU(4), nn::Dense(2)});
  model->build_for({1, 5, 3});
  const Tensor xv = random_normal({3, 5, 3});
  const Tensor yv = from_vector(std::vector<std::int64_t>{0, 1, 1});
  auto params = model->named_trainable_parameters();
  graph::Graph g;
  Tensor x = g.placeholder("x", {-1, 5, 3});
  Tensor y = g.placeholder("y", {-1}, DType::Int64);
  Tensor loss = mean(sparse_softmax_cross_entropy((*model)(x), y));
  std::vector<Tensor> vars;
  for (auto& [n, p] : params) vars.push_back(p);
  auto gg = graph::gradients(loss, vars);
  gg.insert(gg.begin(), loss);
  graph::Session s(g);
  const auto got = s.run(gg, {{x, xv}, {y, yv}});
  Tensor eloss = mean(sparse_softmax_cross_entropy((*model)(xv), yv));
  const auto eg = grad(eloss, vars);
  EXPECT_LT(max_abs_diff(got[0], eloss), 1e-6);
  for (std::size_t i = 0; i < eg.size(); ++i) EXPECT_LT(max_abs_diff(got[i + 1], eg[i]), 1e-5) << params[i].first;
}
