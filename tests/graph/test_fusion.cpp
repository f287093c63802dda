// Elementwise fusion in the graph Session: which chains are fused, and that a fused chain computes
// exactly what the same nodes compute one by one (the same scalar functions, in the same order).
#include <gtest/gtest.h>

#include <string>

#include "../gradcheck.h"
#include "traced_training.h"
#include "synapse/graph.h"
#include "synapse/synapse.h"
#include "synapse/zoo.h"

using namespace synapse;
using graph::Graph;
using graph::Session;
using synapse::testing::max_abs_diff;

namespace {

// The fetches run with fusion, and without it: the values must be bit-identical.
std::vector<Tensor> run_both(Graph& g, const std::vector<Tensor>& fetches, const graph::Feeds& feeds,
                             graph::SessionStats* fused_stats = nullptr) {
  Session fused(g), plain(g);
  plain.set_fusion(false);
  const auto a = fused.run(fetches, feeds);
  const auto b = plain.run(fetches, feeds);
  EXPECT_EQ(plain.stats().fused_groups, 0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].shape(), b[i].shape());
    EXPECT_EQ(max_abs_diff(a[i], b[i]), 0.0) << "fetch " << i;
  }
  if (fused_stats) *fused_stats = fused.stats();
  return a;
}

}  // namespace

TEST(GraphFusion, ChainWithScalarsRowsAndARepeatedInput) {
  // Batch sizes: one block, several blocks over both threads, and a length that ends mid-block.
  for (std::int64_t batch : {3, 700, 5003}) {
    SCOPED_TRACE(batch);
    Graph g;
    Tensor x = g.placeholder("x", {-1, 10});
    Tensor b = g.variable("b", tensor({0.5f, -1.f, 2.f, 0.f, 1.f, -2.f, 3.f, 0.25f, -0.5f, 1.5f}));
    Tensor h = relu(x * 2.0f + b) * 0.5f - tanh(x);  // mul, add, relu, mul, tanh, sub
    graph::SessionStats st;
    manual_seed(7);
    const Tensor xv = random_normal({batch, 10});
    const Tensor got = run_both(g, {h}, {{x, xv}}, &st)[0];
    EXPECT_EQ(st.fused_groups, 1);
    EXPECT_EQ(st.nodes_fused, 6);
    EXPECT_EQ(st.nodes_run, 1);
    // Against eager, with values written out for the first row.
    const Tensor want = relu(xv * 2.0f + g.value_of(b)) * 0.5f - tanh(xv);
    EXPECT_EQ(max_abs_diff(got, want), 0.0);
    const float x0 = xv.data<float>()[0];
    EXPECT_FLOAT_EQ(got.data<float>()[0], std::max(x0 * 2.0f + 0.5f, 0.0f) * 0.5f - std::tanh(x0));
  }
}

TEST(GraphFusion, ActivationGradientChainInTraining) {
  // Dense + relu + a dropout-like mask, with gradients.
  Graph g;
  Tensor x = g.placeholder("x", {-1, 8});
  Tensor y = g.placeholder("y", {-1}, DType::Int64);
  Tensor mask = g.placeholder("mask", {-1, 16});
  manual_seed(3);
  Tensor w1 = g.variable("w1", random_normal({8, 16}) * 0.3f);
  Tensor b1 = g.variable("b1", zeros({16}));
  Tensor w2 = g.variable("w2", random_normal({16, 3}) * 0.3f);
  Tensor h = relu(matmul(x, w1) + b1) * mask;
  Tensor loss = mean(sparse_softmax_cross_entropy(matmul(h, w2), y));
  auto grads = graph::gradients(loss, {w1, b1, w2});
  const Tensor xv = random_normal({32, 8});
  const Tensor mv = cast(greater(random_uniform({32, 16}), full({}, 0.3f)), DType::Float32) * (1.0f / 0.7f);
  std::vector<std::int64_t> labels(32);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  const Tensor yv = from_vector(labels);
  std::vector<Tensor> fetches{loss};
  fetches.insert(fetches.end(), grads.begin(), grads.end());
  graph::SessionStats st;
  const auto got = run_both(g, fetches, {{x, xv}, {y, yv}, {mask, mv}}, &st);
  // Forward {add, relu} (relu's gradient reads its output, so add's output has no other user) and
  // backward {mul, relu grad}; relu's output feeds the mask mul and the gradient, so it stays a tensor.
  EXPECT_EQ(st.fused_groups, 2);
  EXPECT_EQ(st.nodes_fused, 4);
  // The gradients still equal eager autograd's.
  Tensor ew1 = g.value_of(w1).detach().requires_grad_(), eb1 = g.value_of(b1).detach().requires_grad_(),
         ew2 = g.value_of(w2).detach().requires_grad_();
  mean(sparse_softmax_cross_entropy(matmul(relu(matmul(xv, ew1) + eb1) * mv, ew2), yv)).backward();
  EXPECT_LT(max_abs_diff(got[1], ew1.grad()), 1e-6);
  EXPECT_LT(max_abs_diff(got[2], eb1.grad()), 1e-6);
  EXPECT_LT(max_abs_diff(got[3], ew2.grad()), 1e-6);
}

TEST(GraphFusion, FetchedOrSharedIntermediatesStayTensors) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 64});
  Tensor t = exp(x * 0.1f);  // mul -> exp
  Tensor y = t * 2.0f + t;   // t has two users: mul and add, so exp's output is not absorbed
  graph::SessionStats st;
  const Tensor xv = random_normal({4, 64});
  run_both(g, {y}, {{x, xv}}, &st);
  EXPECT_EQ(st.fused_groups, 2);  // {mul, exp} and {mul, add}
  EXPECT_EQ(st.nodes_fused, 4);
  // Fetching the intermediate keeps it out of the consumer's group.
  Tensor u = relu(x);
  Tensor v = u * 3.0f;
  run_both(g, {u, v}, {{x, xv}}, &st);
  EXPECT_EQ(st.fused_groups, 0);
}

TEST(GraphFusion, DyingInputLendsItsBufferAndPeakStaysOneBuffer) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 256});
  manual_seed(11);
  Tensor w = g.variable("w", random_normal({256, 256}) * 0.0625f);
  Tensor h = matmul(x, w);  // an intermediate that dies in the group below
  for (int i = 0; i < 6; ++i) h = tanh(h) * 0.5f + 0.1f;
  Tensor y = sum(h);
  Session s(g);
  const Tensor xv = random_normal({64, 256});
  const Tensor got = s.run(y, {{x, xv}});
  EXPECT_EQ(s.stats().fused_groups, 1);
  EXPECT_EQ(s.stats().nodes_fused, 18);
  EXPECT_EQ(s.stats().buffers_reused, 1);
  EXPECT_LE(s.stats().peak_bytes, 64 * 256 * 4 + 4096);  // the matmul's buffer, reused in place
  Tensor e = matmul(xv, g.value_of(w));
  for (int i = 0; i < 6; ++i) e = tanh(e) * 0.5f + 0.1f;
  EXPECT_LT(max_abs_diff(got, sum(e)), 1e-3);
}

TEST(GraphFusion, AnomalyModeRunsNodesOneByOneAndNamesTheOp) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 4});
  Tensor y = log(x - 1.0f) * 2.0f;
  Session s(g);
  const Tensor xv = zeros({2, 4});
  s.run(y, {{x, xv}});
  EXPECT_EQ(s.stats().fused_groups, 1);  // the NaN passes silently when anomaly mode is off
  AnomalyModeGuard anomaly;
  s.run(y, {{x, full({2, 4}, 3.0f)}});
  EXPECT_EQ(s.stats().fused_groups, 0);
  EXPECT_EQ(s.stats().nodes_run, 3);
  try {
    s.run(y, {{x, xv}});
    FAIL() << "expected a NaN error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("log"), std::string::npos) << e.what();
  }
}

TEST(GraphFusion, TrainingStepsEqualUnfused) {
  // An mlp's train step (with the Adam host op) gives bit-identical weights with and without fusion.
  // Its hidden layer uses tanh, whose gradient dy * (1 - y^2) is a chain of three elementwise ops
  // (the zoo mlp's relu now runs inside the dense op, leaving no chain to fuse).
  auto train = [](bool fuse) {
    manual_seed(5);
    synapse::testing::TracedTraining t(nn::Sequential(
        {nn::Flatten(), nn::Dense(nn::DenseOptions(64).activation(nn::Activation::Tanh)), nn::Dense(nn::DenseOptions(10))}));
    Session s(t.g);
    s.set_fusion(fuse);
    manual_seed(9);
    const Tensor xv = random_uniform({16, 28, 28, 1});
    std::vector<std::int64_t> labels(16);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 10);
    const Tensor yv = from_vector(labels);
    for (int i = 0; i < 3; ++i) s.run({t.loss}, {{t.x, xv}, {t.y, yv}}, {t.step});
    if (fuse) {
      EXPECT_GE(s.stats().fused_groups, 1);
    }
    std::vector<Tensor> params;
    for (const auto& [name, p] : t.model->named_trainable_parameters()) params.push_back(p.clone());
    return params;
  };
  const auto a = train(true), b = train(false);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(max_abs_diff(a[i], b[i]), 0.0) << i;
}

TEST(GraphFusion, EveryPointwiseBodyEqualsItsKernel) {
  // The block body of each op (full and single-value operands) against the op's own kernel.
  const Attrs attrs = Attrs().set("alpha", 0.1).set("lo", -0.5).set("hi", 0.5);
  int checked = 0;
  for (const OpDef* op : all_ops()) {
    if (!op->pointwise_fn()) continue;
    SCOPED_TRACE(op->name());
    const int nin = op->num_inputs();
    ASSERT_GE(nin, 1);
    ASSERT_LE(nin, 3);
    manual_seed(21);
    for (int single = -1; single < nin; ++single) {  // which input is a single value (-1: none)
      if (single >= 0 && op->name().find("_grad") != std::string::npos) continue;  // (x, dy) of one shape
      std::vector<Tensor> in;
      for (int k = 0; k < nin; ++k) in.push_back(random_uniform(k == single ? Shape{} : Shape{37}, 0.25f, 2.0f) -
                                                 (op->name() == "log" || op->name() == "sqrt" ? 0.0f : 1.0f));
      const Tensor want = apply1(*op, in, attrs);
      Tensor got = Tensor::empty(want.shape());
      PointwiseBlock b;
      for (int k = 0; k < nin; ++k) {
        b.in[k] = in[static_cast<std::size_t>(k)].data<float>();
        b.one[k] = k == single;
      }
      b.out = got.data<float>();
      b.n = got.numel();
      op->pointwise_fn()(attrs)(b);
      EXPECT_EQ(max_abs_diff(got, want), 0.0) << "single input " << single;
    }
    ++checked;
  }
  EXPECT_GE(checked, 19);
}
