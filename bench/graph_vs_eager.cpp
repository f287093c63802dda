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
  double eager_step_ms, graph_step_ms, eager_infer_ms, graph_infer_ms;
  double eager_peak_mb, graph_peak_mb;
};

Result measure(const zoo::Recipe& r, const Tensor& images, const Tensor& labels, const Tensor& test_x, int warmup,
               int steps) {
  const Batches b = make_batches(images, labels, r.batch_size, 64);
  Result res{};
  auto batch = [&](int i) { return static_cast<std::size_t>(i % 64); };
  const Tensor infer_x = slice(test_x, {0, 0, 0, 0}, {1000, -1, -1, -1});

  {  // eager
    nn::ModulePtr m = fresh_model(r);
    auto opt = optim::make_optimizer(r.optimizer, m->named_trainable_parameters(), r.learning_rate);
    m->train();
    auto step = [&](int i) {
      Tensor loss = mean(sparse_softmax_cross_entropy((*m)(b.x[batch(i)]), b.y[batch(i)]));
      loss.backward();
      opt->step();
      opt->zero_grad();
    };
    for (int i = 0; i < warmup; ++i) step(i);
    const std::size_t before = memory_stats().bytes_in_use;
    reset_peak_memory();
    step(warmup);
    res.eager_peak_mb = static_cast<double>(memory_stats().peak_bytes_in_use - before) / (1 << 20);
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) step(warmup + 1 + i);
    res.eager_step_ms = ms_since(t0) / steps;
    m->eval();
    NoGradGuard ng;
    (*m)(infer_x);
    const auto t1 = Clock::now();
    for (int i = 0; i < 5; ++i) (*m)(infer_x);
    res.eager_infer_ms = ms_since(t1) / 5;
  }
  {  // graph
    nn::ModulePtr m = fresh_model(r);
    auto opt = optim::make_optimizer(r.optimizer, m->named_trainable_parameters(), r.learning_rate);
    m->train();
    graph::Graph g;
    Tensor x = g.placeholder("images", {-1, 28, 28, 1});
    Tensor y = g.placeholder("labels", {-1}, DType::Int64);
    Tensor loss = mean(sparse_softmax_cross_entropy((*m)(x), y));
    graph::Op train = optim::minimize(*opt, loss);
    graph::Session s(g);
    auto step = [&](int i) { s.run({loss}, {{x, b.x[batch(i)]}, {y, b.y[batch(i)]}}, {train}); };
    for (int i = 0; i <= warmup; ++i) step(i);
    res.graph_peak_mb = static_cast<double>(s.stats().peak_bytes) / (1 << 20);
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) step(warmup + 1 + i);
    res.graph_step_ms = ms_since(t0) / steps;

    m->eval();
    graph::Graph gi;
    Tensor xi = gi.placeholder("images", {-1, 28, 28, 1});
    Tensor logits = (*m)(xi);
    graph::Session si(gi);
    si.run(logits, {{xi, infer_x}});
    const auto t1 = Clock::now();
    for (int i = 0; i < 5; ++i) si.run(logits, {{xi, infer_x}});
    res.graph_infer_ms = ms_since(t1) / 5;
  }
  return res;
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
    fmt::print("| model | eager ms/step | graph ms/step | graph speed | eager infer ms (b1000) | graph infer ms | "
               "eager step peak MB | graph step peak MB |\n|---|---|---|---|---|---|---|---|\n");
    std::stringstream ss(models);
    for (std::string name; std::getline(ss, name, ',');) {
      const Result r = measure(zoo::recipe(name), images, labels, test_x, warmup, steps);
      fmt::print("| {} | {:.2f} | {:.2f} | {:.2f}x | {:.1f} | {:.1f} | {:.2f} | {:.2f} |\n", name, r.eager_step_ms,
                 r.graph_step_ms, r.eager_step_ms / r.graph_step_ms, r.eager_infer_ms, r.graph_infer_ms,
                 r.eager_peak_mb, r.graph_peak_mb);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "graph_vs_eager: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
