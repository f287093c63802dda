// Graph mode against eager mode on the zoo models: training step time, inference time at batch 1000
// and the peak memory of intermediates, on real MNIST batches.
//
//   graph_vs_eager [--data DIR] [--models cnn,lenet5] [--steps N] [--warmup N] [--threads N]
//
// Both sides train the same model (same seed, the recipe's optimizer and batch size) on the same
// batches with mean sparse softmax cross-entropy (the recipes' L2 and weight averaging are left out on
// both sides). Eager: forward, backward, optimizer step. Graph: the model traced once on placeholders,
// optim::minimize, then Session::run per step. Peak memory: eager, the allocator's peak bytes in use
// during a step above what was in use before it; graph, Session::stats().peak_bytes of the train run.
// The graph side is timed with and without elementwise fusion (Session::set_fusion); eager, fused and
// unfused steps are timed in alternating rounds, so drifting machine load hits all three alike.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "synapse/synapse.h"

using namespace synapse;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Batches {
  std::vector<Tensor> x, y;
};

Batches make_batches(const Tensor& images, const Tensor& labels, std::int64_t batch, int count) {
  Batches b;
  for (int i = 0; i < count; ++i) {
    const std::int64_t lo = (i * batch) % (images.dim(0) - batch);
    b.x.push_back(slice(images, {lo, 0, 0, 0}, {batch, -1, -1, -1}));
    b.y.push_back(slice(labels, {lo}, {batch}));
  }
  return b;
}

nn::ModulePtr fresh_model(const zoo::Recipe& r) {
  manual_seed(1);
  nn::ModulePtr m = r.build();
  m->set_name(r.name);
  m->build_for({1, 28, 28, 1});
  return m;
}

struct Result {
  double eager_step_ms, graph_step_ms, unfused_step_ms, eager_infer_ms, graph_infer_ms;
  double eager_peak_mb, graph_peak_mb;
  std::int64_t fused_groups, nodes_fused;
};

Result measure(const zoo::Recipe& r, const Tensor& images, const Tensor& labels, const Tensor& test_x, int warmup,
               int steps) {
  const Batches b = make_batches(images, labels, r.batch_size, 64);
  Result res{};
  auto batch = [&](int i) { return static_cast<std::size_t>(i % 64); };
  const Tensor infer_x = slice(test_x, {0, 0, 0, 0}, {1000, -1, -1, -1});

  // Eager: forward, backward, optimizer step.
  nn::ModulePtr em = fresh_model(r);
  auto eopt = optim::make_optimizer(r.optimizer, em->named_trainable_parameters(), r.learning_rate);
  em->train();
  auto eager_step = [&](int i) {
    Tensor loss = mean(sparse_softmax_cross_entropy((*em)(b.x[batch(i)]), b.y[batch(i)]));
    loss.backward();
    eopt->step();
    eopt->zero_grad();
  };

  // Graph: the same model traced on placeholders, run with and without elementwise fusion.
  nn::ModulePtr gm = fresh_model(r);
  auto gopt = optim::make_optimizer(r.optimizer, gm->named_trainable_parameters(), r.learning_rate);
  gm->train();
  graph::Graph g;
  Tensor x = g.placeholder("images", {-1, 28, 28, 1});
  Tensor y = g.placeholder("labels", {-1}, DType::Int64);
  Tensor loss = mean(sparse_softmax_cross_entropy((*gm)(x), y));
  graph::Op train = optim::minimize(*gopt, loss);
  graph::Session fused(g), unfused(g);
  unfused.set_fusion(false);
  auto graph_step = [&](graph::Session& s, int i) {
    s.run({loss}, {{x, b.x[batch(i)]}, {y, b.y[batch(i)]}}, {train});
  };

  for (int i = 0; i < warmup; ++i) {
    eager_step(i);
    graph_step(fused, i);
    graph_step(unfused, i);
  }
  const std::size_t before = memory_stats().bytes_in_use;
  reset_peak_memory();
  eager_step(warmup);
  res.eager_peak_mb = static_cast<double>(memory_stats().peak_bytes_in_use - before) / (1 << 20);
  graph_step(fused, warmup);
  res.graph_peak_mb = static_cast<double>(fused.stats().peak_bytes) / (1 << 20);
  res.fused_groups = fused.stats().fused_groups;
  res.nodes_fused = fused.stats().nodes_fused;

  // Timed in alternating rounds, so a change in machine load hits all three sides alike.
  constexpr int kRounds = 8;
  const int n = std::max(1, steps / kRounds);
  double eager_ms = 0, fused_ms = 0, unfused_ms = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int base = warmup + 1 + round * n;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) eager_step(base + i);
    eager_ms += ms_since(t0);
    t0 = Clock::now();
    for (int i = 0; i < n; ++i) graph_step(fused, base + i);
    fused_ms += ms_since(t0);
    t0 = Clock::now();
    for (int i = 0; i < n; ++i) graph_step(unfused, base + i);
    unfused_ms += ms_since(t0);
  }
  res.eager_step_ms = eager_ms / (n * kRounds);
  res.graph_step_ms = fused_ms / (n * kRounds);
  res.unfused_step_ms = unfused_ms / (n * kRounds);

  // Inference at batch 1000, alternating too.
  em->eval();
  gm->eval();
  graph::Graph gi;
  Tensor xi = gi.placeholder("images", {-1, 28, 28, 1});
  Tensor logits = (*gm)(xi);
  graph::Session si(gi);
  NoGradGuard ng;
  (*em)(infer_x);
  si.run(logits, {{xi, infer_x}});
  double eager_infer = 0, graph_infer = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto t0 = Clock::now();
    (*em)(infer_x);
    eager_infer += ms_since(t0);
    t0 = Clock::now();
    si.run(logits, {{xi, infer_x}});
    graph_infer += ms_since(t0);
  }
  res.eager_infer_ms = eager_infer / kRounds;
  res.graph_infer_ms = graph_infer / kRounds;
  return res;
}

// Where fusion pays most: a memory-bound chain of 12 cheap elementwise ops (h = relu(h * 0.9 + 0.1),
// four times) on a [16000, 1024] batch (64 MB, twice the L3 cache here), eager against graph with and
// without fusion; ms per evaluation. (A chain of transcendental ops is compute-bound and gains little,
// and one that fits in the L3 cache gains ~10%.)
void chain_table(int reps) {
  const Tensor xv = random_normal({16000, 1024});
  auto chain = [](Tensor h) {
    for (int i = 0; i < 4; ++i) h = relu(h * 0.9f + 0.1f);
    return h;
  };
  graph::Graph g;
  Tensor x = g.placeholder("x", {-1, 1024});
  Tensor y = chain(x);
  graph::Session fused(g), unfused(g);
  unfused.set_fusion(false);
  NoGradGuard ng;
  chain(xv);
  fused.run(y, {{x, xv}});
  unfused.run(y, {{x, xv}});
  double e = 0, f = 0, u = 0;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    chain(xv);
    e += ms_since(t0);
    t0 = Clock::now();
    fused.run(y, {{x, xv}});
    f += ms_since(t0);
    t0 = Clock::now();
    unfused.run(y, {{x, xv}});
    u += ms_since(t0);
  }
  fmt::print("\nelementwise chain, 12 ops on [16000, 1024] floats ({} fused group of {} nodes):\n\n"
             "| eager ms | graph unfused ms | graph fused ms | fused speed vs eager | fused peak MB | unfused peak MB |\n"
             "|---|---|---|---|---|---|\n| {:.2f} | {:.2f} | {:.2f} | {:.2f}x | {:.1f} | {:.1f} |\n",
             fused.stats().fused_groups, fused.stats().nodes_fused, e / reps, u / reps, f / reps, e / f,
             static_cast<double>(fused.stats().peak_bytes) / (1 << 20),
             static_cast<double>(unfused.stats().peak_bytes) / (1 << 20));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Graph mode against eager mode on the zoo models", "graph_vs_eager"};
  std::string data = "data/mnist", models = "softmax,mlp,cnn,lenet5,keras-small";
  int steps = 100, warmup = 10, threads = 0;
  app.add_option("--data", data, "MNIST folder")->capture_default_str();
  app.add_option("--models", models, "Comma-separated zoo models")->capture_default_str();
  app.add_option("--steps", steps, "Timed training steps per side")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--threads", threads, "Threads (0: all cores)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) set_num_threads(threads);
    const data::Mnist mn = data::load_mnist(data);
    const Tensor images = data::scale(mn.train_images).reshape({-1, 28, 28, 1});
    const Tensor labels = cast(mn.train_labels, DType::Int64);
    const Tensor test_x = data::scale(mn.test_images).reshape({-1, 28, 28, 1});
    fmt::print("graph mode vs eager, {} threads, {} timed steps after {} warm-up steps\n\n", num_threads(), steps,
               warmup);
    fmt::print("| model | eager ms/step | graph ms/step | graph speed | graph unfused ms/step | fused groups (nodes) | "
               "eager infer ms (b1000) | graph infer ms | eager step peak MB | graph step peak MB |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n");
    std::stringstream ss(models);
    for (std::string name; std::getline(ss, name, ',');) {
      const Result r = measure(zoo::recipe(name), images, labels, test_x, warmup, steps);
      fmt::print("| {} | {:.2f} | {:.2f} | {:.2f}x | {:.2f} | {} ({}) | {:.1f} | {:.1f} | {:.2f} | {:.2f} |\n", name,
                 r.eager_step_ms, r.graph_step_ms, r.eager_step_ms / r.graph_step_ms, r.unfused_step_ms,
                 r.fused_groups, r.nodes_fused, r.eager_infer_ms, r.graph_infer_ms, r.eager_peak_mb, r.graph_peak_mb);
    }
    chain_table(10);
  } catch (const std::exception& e) {
    fmt::print(stderr, "graph_vs_eager: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
