// The recurrent ops (lstm, gru, simple_rnn) and their fused backward ops: hand-computed steps,
// finite-difference gradients for every input and option, and fast kernels against the references.
#include <gtest/gtest.h>

#include <string>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;

namespace {

using synapse::testing::lens;

Tensor rnd(const Shape& s, Generator& g, float scale = 0.5f) { return random_normal(s, 0.0f, scale, &g); }

// The largest difference relative to the reference's magnitude (linear activations grow the values).
double rel_diff(const Tensor& fast, const Tensor& ref) {
  return max_abs_diff(fast, ref) / (1.0 + max_abs_diff(ref, zeros_like(ref)));
}

// Everything one op call needs, drawn from a seed.
struct Case {
  std::string cell;  // "lstm", "gru", "simple_rnn"
  std::int64_t B, T, I, H;
  std::vector<std::int64_t> lengths;  // empty: all T
  RnnOpOptions opts;
};

std::int64_t gates_of(const std::string& cell) { return cell == "lstm" ? 4 : cell == "gru" ? 3 : 1; }

struct Inputs {
  Tensor x, w, u, b, h0, c0, len;
};

Inputs make_inputs(const Case& c, std::uint64_t seed) {
  Generator g(seed);
  const std::int64_t gh = gates_of(c.cell) * c.H;
  Inputs in;
  in.x = rnd({c.B, c.T, c.I}, g);
  in.w = rnd({c.I, gh}, g);
  in.u = rnd({c.H, gh}, g);
  in.b = c.cell == "gru" && c.opts.reset_after ? rnd({2, gh}, g, 0.2f) : rnd({gh}, g, 0.2f);
  in.h0 = rnd({c.B, c.H}, g);
  in.c0 = rnd({c.B, c.H}, g);
  std::vector<std::int64_t> l = c.lengths;
  if (l.empty()) l.assign(static_cast<std::size_t>(c.B), c.T);
  in.len = lens(l);
  return in;
}

RnnOutputs run(const Case& c, const Inputs& in) {
  if (c.cell == "lstm") return lstm(in.x, in.w, in.u, in.b, in.h0, in.c0, in.len, c.opts);
  if (c.cell == "gru") return gru(in.x, in.w, in.u, in.b, in.h0, in.len, c.opts);
  return simple_rnn(in.x, in.w, in.u, in.b, in.h0, in.len, c.opts);
}

// y, h (and c) in one tensor, so one gradient check weighs all outputs.
Tensor all_outputs(const Case& c, const Inputs& in) {
  RnnOutputs o = run(c, in);
  std::vector<Tensor> parts{reshape(o.y, {c.B, c.T * c.H}), o.h};
  if (o.c.defined()) parts.push_back(o.c);
  return concat(parts, 1);
}

void expect_grads(const Case& c, std::uint64_t seed = 7) {
  Inputs in = make_inputs(c, seed);
  std::vector<Tensor> vars{in.x, in.w, in.u, in.b, in.h0};
  if (c.cell == "lstm") vars.push_back(in.c0);
  EXPECT_GRAD_MATCHES([&] { return all_outputs(c, in); }, vars);
}

Attrs attrs_of(const Case& c) {
  Attrs a;
  a.set("activation", c.opts.activation).set("recurrent_activation", c.opts.recurrent_activation);
  a.set("reverse", c.opts.reverse);
  if (c.cell == "gru") a.set("reset_after", c.opts.reset_after);
  return a;
}

std::vector<Tensor> forward_inputs(const Case& c, const Inputs& in) {
  if (c.cell == "lstm") return {in.x, in.w, in.u, in.b, in.h0, in.c0, in.len};
  return {in.x, in.w, in.u, in.b, in.h0, in.len};
}

// Fast against reference, forward (every output) and backward (every gradient).
void expect_fast_matches_reference(const Case& c) {
  SCOPED_TRACE(c.cell + " B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " I=" + std::to_string(c.I) +
               " H=" + std::to_string(c.H) + " reverse=" + std::to_string(c.opts.reverse));
  const Inputs in = make_inputs(c, 11);
  const Attrs at = attrs_of(c);
  const OpDef& op = op_def(c.cell);
  const std::vector<Tensor> fin = forward_inputs(c, in);
  std::vector<Tensor> fast, ref;
  {
    NoGradGuard ng;
    fast = apply(op, fin, at);
  }
  ref = apply_reference(op, fin, at);
  ASSERT_EQ(fast.size(), ref.size());
  for (std::size_t i = 0; i < fast.size(); ++i) EXPECT_LT(rel_diff(fast[i], ref[i]), 2e-5) << "output " << i;
  // Backward on the reference forward's saved tensors, with random output gradients.
  Generator g(5);
  std::vector<Tensor> bin{in.x, in.w, in.u, in.h0};
  if (c.cell == "lstm") bin.push_back(in.c0);
  bin.push_back(in.len);
  bin.push_back(ref[0]);
  if (c.cell != "simple_rnn") {
    bin.push_back(ref[ref.size() - 2]);
    bin.push_back(ref[ref.size() - 1]);
  }
  bin.push_back(rnd({c.B, c.T, c.H}, g, 1.0f));
  bin.push_back(rnd({c.B, c.H}, g, 1.0f));
  if (c.cell == "lstm") bin.push_back(rnd({c.B, c.H}, g, 1.0f));
  const OpDef& bop = op_def(c.cell + "_grad");
  std::vector<Tensor> bfast = apply(bop, bin, at), bref = apply_reference(bop, bin, at);
  ASSERT_EQ(bfast.size(), bref.size());
  for (std::size_t i = 0; i < bfast.size(); ++i) EXPECT_LT(rel_diff(bfast[i], bref[i]), 2e-5) << "gradient " << i;
}

float at(const Tensor& t, std::int64_t i) { return t.data<float>()[i]; }
Tensor m11(float v) { return from_vector(std::vector<float>{v}, {1, 1}); }

}  // namespace

// ---- hand-computed steps (I = H = 1; the numbers from the formulas in ops.h, evaluated in double) ----

TEST(Rnn, LstmTwoStepsByHand) {
  // Gates i, f, c, o: kernel [0.1, 0.2, 0.3, 0.4], recurrent [0.5, -0.5, 0.25, 0.1], bias [0, 1, 0, 0].
  const Tensor x = from_vector(std::vector<float>{0.5f, -1.0f}, {1, 2, 1});
  auto o = lstm(x, tensor({{0.1f, 0.2f, 0.3f, 0.4f}}), tensor({{0.5f, -0.5f, 0.25f, 0.1f}}), tensor({0.f, 1.f, 0.f, 0.f}),
                m11(0.1f), m11(-0.2f), lens({2}));
  EXPECT_NEAR(at(o.y, 0), -0.0315632f, 1e-6);
  EXPECT_NEAR(at(o.y, 1), -0.0714449f, 1e-6);
  EXPECT_NEAR(at(o.h, 0), -0.0714449f, 1e-6);
  EXPECT_NEAR(at(o.c, 0), -0.1802936f, 1e-6);
  // Length 1: one step, the second output is padding (0) and the state is the first step's.
  auto o1 = lstm(x, tensor({{0.1f, 0.2f, 0.3f, 0.4f}}), tensor({{0.5f, -0.5f, 0.25f, 0.1f}}),
                 tensor({0.f, 1.f, 0.f, 0.f}), m11(0.1f), m11(-0.2f), lens({1}));
  EXPECT_NEAR(at(o1.y, 0), -0.0315632f, 1e-6);
  EXPECT_EQ(at(o1.y, 1), 0.0f);
  EXPECT_NEAR(at(o1.c, 0), -0.0572101f, 1e-6);
}

TEST(Rnn, GruTwoStepsByHandBothResetModes) {
  // Gates z, r, h: kernel [0.3, -0.2, 0.5], recurrent [0.4, 0.6, -0.7]; input bias [0.1, 0, -0.1],
  // recurrent bias [0, 0.2, 0.3] (reset_after only); h0 = 0.2.
  const Tensor x = from_vector(std::vector<float>{0.5f, -1.0f}, {1, 2, 1});
  const Tensor w = tensor({{0.3f, -0.2f, 0.5f}}), u = tensor({{0.4f, 0.6f, -0.7f}});
  auto a = gru(x, w, u, tensor({{0.1f, 0.0f, -0.1f}, {0.0f, 0.2f, 0.3f}}), m11(0.2f), lens({2}));
  EXPECT_NEAR(at(a.y, 0), 0.2143576f, 1e-6);
  EXPECT_NEAR(at(a.y, 1), -0.1455273f, 1e-6);
  RnnOpOptions before;
  before.reset_after = false;
  auto b = gru(x, w, u, tensor({0.1f, 0.0f, -0.1f}), m11(0.2f), lens({2}), before);
  EXPECT_NEAR(at(b.y, 0), 0.1494490f, 1e-6);
  EXPECT_NEAR(at(b.h, 0), -0.2398687f, 1e-6);
}

TEST(Rnn, SimpleRnnTwoStepsByHandForwardAndReverse) {
  const Tensor x = from_vector(std::vector<float>{0.5f, -1.0f}, {1, 2, 1});
  auto f = simple_rnn(x, m11(0.8f), m11(-0.6f), tensor({0.05f}), m11(0.0f), lens({2}));
  EXPECT_NEAR(at(f.y, 0), 0.4218990f, 1e-6);
  EXPECT_NEAR(at(f.y, 1), -0.7629095f, 1e-6);
  RnnOpOptions rev;
  rev.reverse = true;  // step 1 first; each output stays at its own step
  auto r = simple_rnn(x, m11(0.8f), m11(-0.6f), tensor({0.05f}), m11(0.0f), lens({2}), rev);
  EXPECT_NEAR(at(r.y, 1), -0.6351490f, 1e-6);
  EXPECT_NEAR(at(r.y, 0), 0.6810605f, 1e-6);
  EXPECT_NEAR(at(r.h, 0), 0.6810605f, 1e-6);
}

// ---- gradients ----

// Every activation of the case's cell, forward (and reversed when asked).
void expect_grads_for_each_activation(Case c, bool reversed_too) {
  for (const char* act : {"tanh", "relu", "sigmoid", "linear"}) {
    SCOPED_TRACE(act);
    c.opts.activation = act;
    c.opts.reverse = false;
    expect_grads(c);
    if (!reversed_too) continue;
    c.opts.reverse = true;
    expect_grads(c);
  }
}

TEST(Grad, LstmEveryInputAndActivation) {
  expect_grads_for_each_activation(Case{"lstm", 2, 3, 3, 2, {3, 2}, {}}, false);
  for (const char* ract : {"hard_sigmoid", "tanh"}) {
    SCOPED_TRACE(ract);
    Case c{"lstm", 2, 3, 2, 3, {}, {}};
    c.opts.recurrent_activation = ract;
    expect_grads(c);
  }
}

TEST(Grad, LstmReverseAndLengths) {
  Case c{"lstm", 3, 4, 2, 3, {4, 1, 3}, {}};
  c.opts.reverse = true;
  expect_grads(c);
  c.opts.reverse = false;
  expect_grads(c, 3);
}

TEST(Grad, GruBothResetModesActivationsReverseLengths) {
  for (bool reset_after : {true, false}) {
    for (bool reverse : {false, true}) {
      SCOPED_TRACE(std::to_string(reset_after) + std::to_string(reverse));
      Case c{"gru", 3, 3, 2, 3, {3, 2, 1}, {}};
      c.opts.reset_after = reset_after;
      c.opts.reverse = reverse;
      expect_grads(c);
    }
    for (const char* act : {"relu", "sigmoid", "linear"}) {
      Case c{"gru", 2, 3, 3, 2, {}, {}};
      c.opts.reset_after = reset_after;
      c.opts.activation = act;
      c.opts.recurrent_activation = std::string(act) == "relu" ? "hard_sigmoid" : "tanh";
      expect_grads(c);
    }
  }
}

TEST(Grad, SimpleRnnActivationsReverseLengths) {
  expect_grads_for_each_activation(Case{"simple_rnn", 2, 4, 3, 2, {4, 2}, {}}, true);
}

TEST(Grad, RnnUnusedOutputsGiveZeroGradients) {
  // Only h_T is used: dy and dc arrive as zeros.
  Case c{"lstm", 2, 3, 2, 2, {3, 2}, {}};
  Inputs in = make_inputs(c, 2);
  EXPECT_GRAD_MATCHES([&] { return run(c, in).h; }, {in.x, in.w, in.u, in.b, in.h0, in.c0});
}

// ---- fast kernels against the references ----

TEST(Rnn, FastMatchesReferenceForwardAndBackward) {
  const std::vector<std::vector<std::int64_t>> shapes{
      // B, T, I, H
      {1, 5, 3, 7}, {3, 4, 5, 20}, {4, 1, 2, 17}, {2, 6, 16, 16}, {5, 3, 4, 33}};
  for (const char* cell : {"lstm", "gru", "simple_rnn"}) {
    for (const auto& s : shapes) {
      for (bool reverse : {false, true}) {
        Case c{cell, s[0], s[1], s[2], s[3], {}, {}};
        c.opts.reverse = reverse;
        if (c.B >= 3) {  // mixed lengths, one row full
          c.lengths.assign(static_cast<std::size_t>(c.B), 1);
          for (std::int64_t b = 0; b < c.B; ++b) c.lengths[static_cast<std::size_t>(b)] = 1 + (b * 2) % c.T;
          c.lengths[0] = c.T;
        }
        expect_fast_matches_reference(c);
        if (c.cell == "gru") {
          c.opts.reset_after = false;
          expect_fast_matches_reference(c);
        }
      }
    }
  }
  // The other activations through the fast paths.
  for (const char* act : {"relu", "sigmoid", "linear", "hard_sigmoid"}) {
    for (const char* cell : {"lstm", "gru", "simple_rnn"}) {
      Case c{cell, 3, 4, 5, 19, {4, 2, 3}, {}};
      c.opts.activation = act;
      c.opts.recurrent_activation = std::string(act) == "relu" ? "hard_sigmoid" : "tanh";
      expect_fast_matches_reference(c);
    }
  }
}

TEST(Rnn, PaddedRowEqualsTheSequenceAlone) {
  Case c{"lstm", 2, 5, 3, 4, {5, 3}, {}};
  const Inputs in = make_inputs(c, 4);
  for (bool reverse : {false, true}) {
    c.opts.reverse = reverse;
    NoGradGuard ng;
    RnnOutputs both = run(c, in);
    Case one{"lstm", 1, 3, 3, 4, {}, c.opts};
    Inputs in1 = in;
    in1.x = slice(in.x, {1, 0, 0}, {1, 3, -1});
    in1.h0 = slice(in.h0, {1, 0}, {1, -1});
    in1.c0 = slice(in.c0, {1, 0}, {1, -1});
    in1.len = lens({3});
    RnnOutputs alone = run(one, in1);
    EXPECT_LT(max_abs_diff(slice(both.y, {1, 0, 0}, {1, 3, -1}), alone.y), 1e-6);
    EXPECT_EQ(max_abs_diff(slice(both.y, {1, 3, 0}, {1, 2, -1}), zeros({1, 2, 4})), 0.0);
    EXPECT_LT(max_abs_diff(slice(both.h, {1, 0}, {1, -1}), alone.h), 1e-6);
    EXPECT_LT(max_abs_diff(slice(both.c, {1, 0}, {1, -1}), alone.c), 1e-6);
  }
}

TEST(Rnn, ErrorsNameTheOpAndShapes) {
  Case c{"lstm", 2, 3, 2, 2, {}, {}};
  Inputs in = make_inputs(c, 1);
  EXPECT_EQ(error_of([&] { lstm(in.x, in.w, in.u, in.b, in.h0, in.c0, lens({3, 4})); }),
            "lstm: lengths[1] = 4 is outside 1..3 (the time steps of x)");
  EXPECT_NE(error_of([&] { lstm(in.x, zeros({3, 8}), in.u, in.b, in.h0, in.c0, in.len); })
                .find("lstm: kernel must be [2,8] for x [2,3,2] and 2 units, got [3,8]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { lstm(in.x, in.w, in.u, zeros({7}), in.h0, in.c0, in.len); }).find("lstm: bias must be [8], got [7]"),
            std::string::npos);
  RnnOpOptions bad;
  bad.activation = "gelu";
  EXPECT_NE(error_of([&] { lstm(in.x, in.w, in.u, in.b, in.h0, in.c0, in.len, bad); }).find("unknown activation 'gelu'"),
            std::string::npos);
}
