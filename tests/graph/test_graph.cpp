// Graph mode: tracing, Session, symbolic gradients (against eager autograd), optimizers, the
// optimisation passes, DOT, and the zoo models traced on a placeholder.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "../gradcheck.h"
#include "traced_training.h"
#include "synapse/graph.h"
#include "synapse/synapse.h"
#include "synapse/zoo.h"

using namespace synapse;
using synapse::testing::error_of;
using graph::Graph;
using graph::Session;

namespace {

void expect_close(const Tensor& a, const Tensor& b, float tol = 1e-4f) {
  ASSERT_EQ(to_string(a.shape()), to_string(b.shape()));
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  for (std::size_t i = 0; i < va.size(); ++i)
    ASSERT_NEAR(va[i], vb[i], tol * (1.0f + std::fabs(vb[i]))) << "at flat index " << i;
}

}  // namespace

TEST(Graph, PlaceholderShapesAndNames) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 784});
  EXPECT_TRUE(graph::is_symbolic(x));
  EXPECT_EQ(to_string(x.shape()), "[-1,784]");
  Tensor w = g.variable("w", zeros({784, 10}));
  Tensor y;
  {
    auto s = g.name_scope("layer1");
    y = matmul(x, w);
    Tensor y2 = matmul(x, w);
    EXPECT_EQ(g.node(Graph::producer(y2).first).name, "layer1/matmul_1");
  }
  EXPECT_EQ(g.node(Graph::producer(y).first).name, "layer1/matmul");
  EXPECT_EQ(to_string(y.shape()), "[-1,10]");
  // Unknown extents survive reshapes that merge them with known ones.
  EXPECT_EQ(to_string(reshape(y, {-1}).shape()), "[-1]");
  EXPECT_EQ(to_string(reshape(g.placeholder("img", {-1, 28, 28, 1}), {-1, 784}).shape()), "[-1,784]");
  EXPECT_EQ(to_string(sum(y, {1}).shape()), "[-1]");
  EXPECT_EQ(g.node(g.find("w")).op, "Variable");
  // A symbolic tensor has no data.
  EXPECT_NE(error_of([&] { (void)y.data<float>(); }).find("is a graph tensor"), std::string::npos);
  // Shape errors name the op and show -1 for the unknown extent.
  const std::string e = error_of([&] { (void)matmul(x, g.placeholder("bad", {5, 3})); });
  EXPECT_NE(e.find("matmul"), std::string::npos) << e;
  EXPECT_NE(e.find("[-1,784]"), std::string::npos) << e;
}

TEST(Graph, SessionRunsOnlyWhatFetchesNeedAndChecksFeeds) {
  Graph g;
  Tensor a = g.placeholder("a", {-1, 3});
  Tensor b = g.placeholder("b", {2});
  Tensor c = g.constant(tensor({1, 2, 3}), "c");
  Tensor y = a * c + 1.0f;
  Tensor z = b * 2.0f;
  Session s(g);
  const Tensor av = tensor({{1, 1, 1}, {2, 2, 2}});
  // z needs only b; y needs only a.
  expect_close(s.run(y, {{a, av}}), tensor({{2, 3, 4}, {3, 5, 7}}));
  expect_close(s.run(z, {{b, tensor({1, 5})}}), tensor({2, 10}));
  EXPECT_EQ(error_of([&] { s.run(y); }),
            "Session::run: placeholder 'a' (shape [-1,3]) must be fed: the fetches depend on it");
  EXPECT_EQ(error_of([&] { s.run(y, {{a, zeros({2, 4})}}); }),
            "Session::run: placeholder 'a' expects shape [-1,3], fed a tensor of shape [2,4]");
  EXPECT_NE(error_of([&] { s.run(y, {{a, zeros({2, 3}, DType::Int64)}}); }).find("expects dtype float32"),
            std::string::npos);
}

TEST(Graph, VariablesAssignInitializerAndGroup) {
  Graph g;
  Tensor v = g.variable("v", tensor({1, 2}));
  Tensor inc = g.placeholder("inc", {2});
  graph::Op add_op = g.assign(v, v + inc, "add");
  graph::Op init = g.global_variables_initializer();
  int host_calls = 0;
  graph::Op count = g.host_op("count", {}, [&](const std::vector<Tensor>&) { ++host_calls; });
  graph::Op both = g.group({add_op, count});
  Session s(g);
  s.run(init);
  s.run(both, {{inc, tensor({1, 1})}});
  s.run(both, {{inc, tensor({1, 1})}});
  expect_close(s.run(v), tensor({3, 4}));
  EXPECT_EQ(host_calls, 2);
  expect_close(g.value_of(v), tensor({3, 4}));
  // Fetched values are copies: a later update does not change them.
  Tensor snapshot = s.run(v);
  s.run(add_op, {{inc, tensor({1, 1})}});
  expect_close(snapshot, tensor({3, 4}));
  s.run(init);
  expect_close(s.run(v), tensor({1, 2}));
}

TEST(Graph, DefaultGraphTakesInputlessOpsAndRandomOpsRedrawPerRun) {
  Graph g;
  Tensor r;
  {
    graph::DefaultGraph scope(g);
    r = apply1(op_def("random_uniform"), {},
               Attrs().set("shape", std::vector<std::int64_t>{4}).set("low", 0.0).set("high", 1.0).set("seed", 7));
  }
  ASSERT_TRUE(graph::is_symbolic(r));
  Session s(g);
  const auto a = s.run(r).to_vector<float>(), b = s.run(r).to_vector<float>();
  EXPECT_NE(a, b);
  for (float v : a) EXPECT_TRUE(v >= 0.0f && v < 1.0f);
  // Outside the scope the op runs eagerly.
  EXPECT_FALSE(graph::is_symbolic(apply1(op_def("random_uniform"), {},
                                         Attrs().set("shape", std::vector<std::int64_t>{2}).set("low", 0.0).set("high", 1.0).set("seed", 1))));
}

// ---- gradients: graph == eager ----
namespace {

// Builds f on placeholders in a graph and on eager leaves; compares f's value and d(sum(f*R))/dx.
void expect_graph_grads_match(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> xs,
                              const std::vector<Shape>& placeholder_shapes = {}) {
  Graph g;
  std::vector<Tensor> phs;
  graph::Feeds feeds;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape ps = i < placeholder_shapes.size() ? placeholder_shapes[i] : xs[i].shape();
    phs.push_back(g.placeholder(fmt::format("x{}", i), ps, xs[i].dtype()));
    feeds.emplace_back(phs.back(), xs[i]);
  }
  Tensor gy = f(phs);
  Generator gen(99);
  // Weights for a non-trivial upstream gradient.
  std::vector<Tensor> eager_leaves;
  for (auto& x : xs) eager_leaves.push_back(is_floating(x.dtype()) ? x.clone().requires_grad_() : x);
  Tensor ey = f(eager_leaves);
  const Tensor r = random_normal(ey.shape(), 0.0f, 1.0f, &gen);
  // The weights are fed too: a constant [4,3] does not combine with an unknown batch [-1,3].
  Tensor rp = g.placeholder("r", gy.shape());
  feeds.emplace_back(rp, r);
  Tensor gloss = sum(gy * rp);
  std::vector<Tensor> want_x, float_leaves;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (is_floating(xs[i].dtype())) {
      want_x.push_back(phs[i]);
      float_leaves.push_back(eager_leaves[i]);
    }
  std::vector<Tensor> ggrads = graph::gradients(gloss, want_x);
  std::vector<Tensor> fetches = ggrads;
  fetches.insert(fetches.begin(), gy);
  Session s(g);
  const auto got = s.run(fetches, feeds);
  expect_close(got[0], ey);
  const auto egrads = grad(sum(ey * r), float_leaves, {.allow_unused = true});
  for (std::size_t i = 0; i < egrads.size(); ++i) expect_close(got[i + 1], egrads[i], 2e-4f);
  // Same without the optimisation passes.
  Session plain(g);
  plain.set_optimize(false);
  const auto got2 = plain.run(fetches, feeds);
  for (std::size_t i = 0; i < got.size(); ++i) expect_close(got2[i], got[i], 1e-6f);
}

}  // namespace

TEST(GraphGrad, ElementwiseAndBroadcasting) {
  manual_seed(1);
  expect_graph_grads_match([](const auto& v) { return tanh(v[0]) * sigmoid(v[1]) + exp(v[0] * 0.5f) / (v[1] * v[1] + 1.0f); },
                           {random_normal({4, 3}), random_normal({3})}, {{-1, 3}, {3}});
  expect_graph_grads_match([](const auto& v) { return relu(v[0]) - maximum(v[0], v[1]) + sqrt(abs(v[0]) + 1.0f); },
                           {random_normal({5, 2}), random_normal({5, 1})}, {{-1, 2}, {-1, 1}});
}

TEST(GraphGrad, ReductionsOverAnUnknownBatch) {
  manual_seed(2);
  expect_graph_grads_match([](const auto& v) { return mean(square(v[0])) + sum(v[0], {1}, true) * mean(v[0], {0}) + mean(v[0], {1}, true); },
                           {random_normal({6, 4})}, {{-1, 4}});
  expect_graph_grads_match([](const auto& v) { return max(v[0], {1}) + sum(reshape(v[0], {-1})); },
                           {random_normal({3, 5})}, {{-1, 5}});
}

TEST(GraphGrad, LossesMatmulShapeOps) {
  manual_seed(3);
  expect_graph_grads_match([](const auto& v) { return softmax_cross_entropy(matmul(v[0], v[1]), softmax(v[2])); },
                           {random_normal({4, 3}), random_normal({3, 5}), random_normal({4, 5})}, {{-1, 3}, {3, 5}, {-1, 5}});
  expect_graph_grads_match([](const auto& v) { return sparse_softmax_cross_entropy(v[0], v[1]); },
                           {random_normal({4, 5}), from_vector(std::vector<std::int64_t>{0, 4, 2, 1})}, {{-1, 5}, {-1}});
  expect_graph_grads_match(
      [](const auto& v) { return concat({slice(v[0], {0, 1}, {-1, 2}), v[0]}, 1) * 2.0f + log_softmax(permute(v[1], {1, 0})); },
      {random_normal({3, 4}), random_normal({6, 3})}, {{-1, 4}, {6, -1}});
}

TEST(GraphGrad, ConvPoolFlatten) {
  manual_seed(4);
  expect_graph_grads_match(
      [](const auto& v) {
        Tensor h = relu(conv2d(v[0], v[1], v[2], {.padding = Padding::Same}));
        return flatten(max_pool2d(h)) + 0.0f;
      },
      {random_normal({2, 6, 6, 2}), random_normal({3, 3, 2, 3}), random_normal({3})}, {{-1, 6, 6, 2}});
  expect_graph_grads_match([](const auto& v) { return avg_pool2d(conv2d(v[0], v[1], {.strides = {2, 2}})); },
                           {random_normal({2, 7, 7, 1}), random_normal({3, 3, 1, 2})}, {{-1, 7, 7, 1}});
}

TEST(GraphGrad, DenseConvModelMatchesEagerAutograd) {
  manual_seed(5);
  auto model = nn::Sequential({nn::Conv2D(nn::Conv2DOptions(4, {3, 3}).activation(nn::Activation::ReLU)), nn::Flatten(),
                               nn::Dense(nn::DenseOptions(8).activation(nn::Activation::Tanh)), nn::Dense(3)});
  model->build_for({1, 6, 6, 1});
  const Tensor xv = random_normal({5, 6, 6, 1});
  const Tensor yv = from_vector(std::vector<std::int64_t>{0, 1, 2, 1, 0});
  auto params = model->named_trainable_parameters();

  Graph g;
  Tensor x = g.placeholder("x", {-1, 6, 6, 1});
  Tensor y = g.placeholder("y", {-1}, DType::Int64);
  Tensor loss = mean(sparse_softmax_cross_entropy((*model)(x), y));
  std::vector<Tensor> vars;
  for (auto& [n, p] : params) vars.push_back(p);  // the eager parameters name their Variable nodes
  auto gg = graph::gradients(loss, vars);
  gg.insert(gg.begin(), loss);
  Session s(g);
  const auto got = s.run(gg, {{x, xv}, {y, yv}});

  Tensor eloss = mean(sparse_softmax_cross_entropy((*model)(xv), yv));
  const auto eg = grad(eloss, vars);
  expect_close(got[0], eloss);
  for (std::size_t i = 0; i < eg.size(); ++i) expect_close(got[i + 1], eg[i], 2e-4f);
}

// ---- optimizers ----
TEST(GraphOptim, MinimizeMatchesEagerStepsForEveryOptimizer) {
  for (const std::string name : {"sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"}) {
    manual_seed(6);
    auto make = [] {
      Generator gen(11);
      auto m = nn::Sequential({nn::Dense(nn::DenseOptions(6).activation(nn::Activation::ReLU)), nn::Dense(3)});
      m->set_generator(&gen);
      m->build_for({1, 4});
      m->set_generator(nullptr);
      return m;
    };
    auto eager = make();
    auto traced = make();
    const Tensor xv = random_normal({8, 4});
    const Tensor yv = from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1});

    auto eopt = optim::make_optimizer(name, eager->named_trainable_parameters(), 0.05);
    for (int step = 0; step < 3; ++step) {
      eopt->zero_grad();
      mean(sparse_softmax_cross_entropy((*eager)(xv), yv)).backward();
      eopt->step();
    }

    Graph g;
    Tensor x = g.placeholder("x", {-1, 4});
    Tensor y = g.placeholder("y", {-1}, DType::Int64);
    Tensor loss = mean(sparse_softmax_cross_entropy((*traced)(x), y));
    auto gopt = optim::make_optimizer(name, traced->named_trainable_parameters(), 0.05);
    graph::Op train = optim::minimize(*gopt, loss);
    Session s(g);
    for (int step = 0; step < 3; ++step) s.run({loss}, {{x, xv}, {y, yv}}, {train});
    const auto ep = eager->named_trainable_parameters(), tp = traced->named_trainable_parameters();
    for (std::size_t i = 0; i < ep.size(); ++i) {
      SCOPED_TRACE(fmt::format("{} {}", name, ep[i].first));
      expect_close(tp[i].second, ep[i].second, 1e-4f);
    }
  }
}

TEST(GraphLayers, BatchNormalizationTrainsAsEagerInTrainingMode) {
  // Traced in training mode: batch statistics, gamma / beta trained, moving statistics updated (in the
  // layer's own buffers) once per run, all equal to eager training.
  auto make = [] {
    Generator gen(11);
    auto m = nn::Sequential({nn::Dense(8), nn::BatchNormalization(), nn::ReLU(), nn::Dense(3)});
    m->set_generator(&gen);
    m->build_for({1, 4});
    m->set_generator(nullptr);
    m->train();
    return m;
  };
  auto eager = make();
  auto traced = make();
  manual_seed(12);
  const Tensor xv = random_normal({16, 4});
  std::vector<std::int64_t> labels(16);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  const Tensor yv = from_vector(labels);
  optim::SGD eopt(eager->named_trainable_parameters(), {.learning_rate = 0.1});
  for (int step = 0; step < 3; ++step) {
    eopt.zero_grad();
    mean(sparse_softmax_cross_entropy((*eager)(xv), yv)).backward();
    eopt.step();
  }
  Graph g;
  Tensor x = g.placeholder("x", {-1, 4});
  Tensor y = g.placeholder("y", {-1}, DType::Int64);
  Tensor loss = mean(sparse_softmax_cross_entropy((*traced)(x), y));
  optim::SGD gopt(traced->named_trainable_parameters(), {.learning_rate = 0.1});
  graph::Op train = optim::minimize(gopt, loss);
  Session s(g);
  for (int step = 0; step < 3; ++step) s.run({loss}, {{x, xv}, {y, yv}}, {train});
  const auto ep = eager->named_parameters(), tp = traced->named_parameters();
  ASSERT_EQ(ep.size(), tp.size());
  for (std::size_t i = 0; i < ep.size(); ++i) {
    SCOPED_TRACE(ep[i].first);
    expect_close(tp[i].second, ep[i].second, 1e-5f);
  }
  const auto eb = eager->named_buffers(), tb = traced->named_buffers();
  ASSERT_EQ(eb.size(), 2u);
  for (std::size_t i = 0; i < eb.size(); ++i) {
    SCOPED_TRACE(eb[i].first);
    expect_close(tb[i].second, eb[i].second, 1e-5f);
  }
  // gamma moved away from its initial ones, and the moving mean from its zeros.
  EXPECT_GT(max(abs(tp[2].second - ones({8}))).item<float>(), 1e-3f);
  EXPECT_GT(max(abs(tb[0].second)).item<float>(), 1e-4f);
}

TEST(GraphLosses, MeanSquaredErrorCountsTheFedBatch) {
  // The mean's count includes the unknown batch, resolved per run (not the trace-time extent).
  Graph g;
  Tensor x = g.placeholder("x", {-1, 3});
  Tensor t = g.placeholder("t", {-1, 3});
  Tensor loss = mean_squared_error(x, t);
  Session s(g);
  EXPECT_FLOAT_EQ(s.run(loss, {{x, tensor({{1, 2, 3}, {4, 5, 6}})}, {t, zeros({2, 3})}}).item<float>(), 91.0f / 6.0f);
  EXPECT_FLOAT_EQ(s.run(loss, {{x, tensor({{1, 2, 3}})}, {t, zeros({1, 3})}}).item<float>(), 14.0f / 3.0f);
  EXPECT_FLOAT_EQ(mean_squared_error(tensor({{1, 2, 3}}), zeros({1, 3})).item<float>(), 14.0f / 3.0f);
}

TEST(GraphOptim, EmaHostOpGroupedWithTrainOp) {
  Graph g;
  Tensor w = g.variable("w", tensor({1.0f}));
  Tensor loss = sum(square(w));
  optim::SGD opt(g.named_variables(), {.learning_rate = 0.25});
  optim::ExponentialMovingAverage ema(g.named_variables(), 0.5);
  graph::Op train = g.group({optim::minimize(opt, loss), optim::moving_average_op(ema, g)});
  Session s(g);
  s.run(train);  // w: 1 - 0.25*2 = 0.5; shadow: 1 - 0.5*(1 - 0.5) = 0.75
  EXPECT_FLOAT_EQ(g.value_of(w).item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(ema.shadow("w").item<float>(), 0.75f);
}

// ---- dropout, optimisation passes, DOT ----
TEST(GraphDropout, FreshMaskPerRunAndEagerStatistics) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 1000});
  auto drop = nn::Dropout(0.5f);
  Tensor y = (*drop)(x);
  Session s(g);
  const Tensor ones_v = ones({2, 1000});
  const auto a = s.run(y, {{x, ones_v}}).to_vector<float>();
  const auto b = s.run(y, {{x, ones_v}}).to_vector<float>();
  EXPECT_NE(a, b);
  int zeros_a = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros_a += v == 0.0f;
  }
  EXPECT_NEAR(zeros_a, 1000, 120);
  drop->eval();
  Graph g2;
  Tensor x2 = g2.placeholder("x", {-1, 3});
  EXPECT_TRUE((*drop)(x2).is_same(x2));
}

TEST(GraphPasses, FoldingLifetimesAndBufferReuse) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 256});
  Tensor c = g.constant(full({256}, 2.0f)) * 3.0f + 1.0f;  // folded: constants only
  Tensor h = x * c;
  for (int i = 0; i < 6; ++i) h = tanh(h) * 0.5f + 0.1f;  // a chain of dying same-shape values
  Tensor y = sum(h);
  Session s(g);
  s.set_fusion(false);  // buffer reuse on its own (fusion would run the chain as one group)
  const Tensor xv = random_normal({64, 256});
  const Tensor got = s.run(y, {{x, xv}});
  EXPECT_EQ(s.stats().nodes_folded, 2);
  EXPECT_EQ(s.stats().fused_groups, 0);
  EXPECT_GT(s.stats().buffers_reused, 10);
  // Lifetimes: one [64,256] buffer at a time (reused in place), not one per node.
  EXPECT_LE(s.stats().peak_bytes, 2 * 64 * 256 * 4 + 4096);
  EXPECT_GT(s.stats().peak_bytes, 0);
  Session plain(g);
  plain.set_optimize(false);
  expect_close(plain.run(y, {{x, xv}}), got, 1e-6f);
  EXPECT_EQ(plain.stats().buffers_reused, 0);
  EXPECT_GT(plain.stats().total_bytes, s.stats().total_bytes);
  // Eager reference.
  Tensor e = xv * (full({256}, 2.0f) * 3.0f + 1.0f);
  for (int i = 0; i < 6; ++i) e = tanh(e) * 0.5f + 0.1f;
  expect_close(got, sum(e), 1e-4f);
  s.run(y, {{x, xv}});
  EXPECT_EQ(s.stats().plans, 1);  // cached per fetch set
}

TEST(GraphDot, ScopesAsClustersAndShapesOnEdges) {
  Graph g;
  Tensor x = g.placeholder("x", {-1, 4});
  Tensor y;
  {
    auto s = g.name_scope("dense");
    y = relu(matmul(x, g.variable("kernel", zeros({4, 2}))));
  }
  const std::string dot = g.to_dot();
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("subgraph cluster_0"), std::string::npos);
  EXPECT_NE(dot.find("label=\"dense\""), std::string::npos);
  EXPECT_NE(dot.find("[label=\"[-1,4]\"]"), std::string::npos);
  EXPECT_NE(dot.find("[label=\"[-1,2]\"]"), std::string::npos);
}

// ---- the zoo, traced ----
TEST(GraphZoo, ForwardMatchesEager) {
  for (const auto& name : zoo::names()) {
    SCOPED_TRACE(name);
    manual_seed(8);
    auto model = zoo::recipe(name).build();
    model->build_for({1, 28, 28, 1});
    model->eval();
    const Tensor xv = random_uniform({3, 28, 28, 1});
    Graph g;
    Tensor x = g.placeholder("images", {-1, 28, 28, 1});
    Tensor logits = (*model)(x);
    EXPECT_EQ(to_string(logits.shape()), "[-1,10]");
    Session s(g);
    const Tensor got = s.run(logits, {{x, xv}});
    NoGradGuard ng;
    expect_close(got, (*model)(xv), 1e-4f);
    EXPECT_GT(s.stats().peak_bytes, 0);
  }
}

// The "Deep MNIST" CNN traced in training mode (dropout active, a fresh mask per run) trains.
TEST(GraphZoo, CnnTrainsInGraphMode) {
  manual_seed(9);
  synapse::testing::TracedTraining t("cnn");
  Session s(t.g);
  const Tensor xv = random_uniform({4, 28, 28, 1});
  const Tensor yv = from_vector(std::vector<std::int64_t>{3, 1, 4, 1});
  const float first = s.run({t.loss}, {{t.x, xv}, {t.y, yv}}, {t.step})[0].item<float>();
  EXPECT_NEAR(first, std::log(10.0f), 0.3f);  // an untrained 10-class model
  // With half the units dropped at random, the loss of 4 images jumps from step to step: compare the
  // mean of steps 5-8 (an untrained model would stay near ln 10).
  float late = 0;
  for (int i = 1; i < 8; ++i) {
    const float loss = s.run({t.loss}, {{t.x, xv}, {t.y, yv}}, {t.step})[0].item<float>();
    if (i >= 4) late += loss / 4;
  }
  EXPECT_LT(late, 0.6f * first);
  EXPECT_EQ(t.opt->iterations(), 8);
}
