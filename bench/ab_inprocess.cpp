// ab_inprocess: a change against the code it replaces, alternated in one process.
//
//   ab_inprocess gemm  --m 50 --k 3136 --n 1024 [--ta] [--tb] [--cold] --threads 1 --variants 0,1
//   ab_inprocess train --model cnn --threads 2 --steps 600 --per 4 --variants 0,1 --data data/mnist
//
// The virtual machines this project is measured on drift by +-25% within minutes (another tenant's
// load, the hypervisor), so a build timed after another compares the machine's moods more than the
// code. Here the code under test reads dev::experiment() (src/core/experiment.h) temporarily,
//
//   if (dev::experiment() & 1) { ...new... } else { ...old... }
//
// and this program switches the variant every few products (gemm) or training steps (train): each
// round times every variant back to back, so a drift of the machine reaches them alike. It prints each
// variant's median, quartile and best, and per variant against the first: in how many rounds it was
// faster, and the median of the per-round ratios (a time ratio below 1, or a GFLOP/s ratio above 1, is
// the faster code). Take the switch out before committing (tests/layers/check_layers.py fails on it).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/isa.h"
#include "core/experiment.h"
#include "synapse/synapse.h"

using namespace synapse;
using Clock = std::chrono::steady_clock;

namespace {

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

// samples[v][round]: one number per variant and round; higher_is_better for GFLOP/s, not for ms.
void report(const std::vector<int>& variants, const std::vector<std::vector<double>>& samples, const std::string& unit,
            bool higher_is_better) {
  fmt::print("{:>8} {:>7} {:>10} {:>10} {:>10} {:>16} {:>12}\n", "variant", "rounds", "median", "quartile", "best",
             "faster rounds", "median ratio");
  for (std::size_t v = 0; v < variants.size(); ++v) {
    const std::vector<double>& s = samples[v];
    const double best = higher_is_better ? *std::max_element(s.begin(), s.end()) : *std::min_element(s.begin(), s.end());
    const double quart = quantile(s, higher_is_better ? 0.75 : 0.25);
    std::string wins = "-", ratio = "-";
    if (v > 0) {
      std::vector<double> r;
      int faster = 0;
      for (std::size_t i = 0; i < s.size() && i < samples[0].size(); ++i) {
        r.push_back(s[i] / samples[0][i]);
        faster += higher_is_better ? s[i] > samples[0][i] : s[i] < samples[0][i];
      }
      wins = fmt::format("{}/{}", faster, r.size());
      ratio = fmt::format("{:.3f}", quantile(r, 0.5));
    }
    fmt::print("{:>8} {:>7} {:>10.2f} {:>10.2f} {:>10.2f} {:>16} {:>12}\n", variants[v], s.size(), quantile(s, 0.5), quart,
               best, wins, ratio);
  }
  fmt::print("({}, {}; quartile: the better one; ratios against variant {})\n", unit,
             higher_is_better ? "higher is faster" : "lower is faster", variants[0]);
}

struct GemmArgs {
  std::int64_t m = 50, k = 3136, n = 1024;
  bool ta = false, tb = false, cold = false;
  int rounds = 40, per = 10;
};

// C = op(A) op(B) through the matmul op (the kernels a training step runs); with --cold, B rotates over 8
// copies (102 MB for the cnn's fc1 weights), as the optimizer's update leaves the weights out of L2.
void run_gemm(const GemmArgs& a, const std::vector<int>& variants) {
  NoGradGuard no_grad;
  const Tensor x = random_normal(a.ta ? Shape{a.k, a.m} : Shape{a.m, a.k});
  std::vector<Tensor> bs;
  for (int i = 0; i < (a.cold ? 8 : 1); ++i) bs.push_back(random_normal(a.tb ? Shape{a.n, a.k} : Shape{a.k, a.n}));
  const MatmulOptions o{.transpose_a = a.ta, .transpose_b = a.tb};
  std::size_t next = 0;
  const auto product = [&] { (void)matmul(x, bs[next++ % bs.size()], o); };
  for (int i = 0; i < 20; ++i) product();
  const double flops = 2.0 * static_cast<double>(a.m) * static_cast<double>(a.n) * static_cast<double>(a.k);
  std::vector<std::vector<double>> gflops(variants.size());
  for (int r = 0; r < a.rounds; ++r) {
    for (std::size_t v = 0; v < variants.size(); ++v) {
      dev::set_experiment(variants[v]);
      for (int i = 0; i < 3; ++i) product();  // the switch's first calls settle (caches, thread buffers)
      const Clock::time_point t0 = Clock::now();
      for (int i = 0; i < a.per; ++i) product();
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      gflops[v].push_back(flops * a.per / s * 1e-9);
    }
  }
  fmt::print("gemm m={} k={} n={}{}{}{}: {} rounds of {} products per variant\n", a.m, a.k, a.n, a.ta ? " ta" : "",
             a.tb ? " tb" : "", a.cold ? " cold B" : "", a.rounds, a.per);
  report(variants, gflops, "GFLOP/s", true);
}

// Times every training step (on_batch_begin to on_batch_end: forward, backward, optimizer) and switches
// the variant every `per` steps after the warm-up.
class Alternator : public train::Callback {
 public:
  Alternator(std::vector<int> variants, int per, int warmup)
      : variants_(std::move(variants)), per_(per), warmup_(warmup), ms_(variants_.size()) {
    dev::set_experiment(variants_[0]);
  }
  void on_batch_begin(train::Trainer&, std::int64_t) override { t0_ = Clock::now(); }
  void on_batch_end(train::Trainer&, std::int64_t, train::Logs&) override {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0_).count();
    if (step_ >= warmup_) ms_[current_].push_back(ms);
    ++step_;
    if (step_ >= warmup_ && (step_ - warmup_) % per_ == 0) {
      current_ = (current_ + 1) % variants_.size();
      dev::set_experiment(variants_[current_]);
    }
  }
  // One sample per variant and round: the mean step time of its `per` steps in that round.
  std::vector<std::vector<double>> rounds() const {
    std::vector<std::vector<double>> out(variants_.size());
    std::size_t n = ms_[0].size();
    for (const auto& m : ms_) n = std::min(n, m.size());
    for (std::size_t v = 0; v < variants_.size(); ++v)
      for (std::size_t b = 0; b + static_cast<std::size_t>(per_) <= n; b += static_cast<std::size_t>(per_)) {
        double sum = 0;
        for (int i = 0; i < per_; ++i) sum += ms_[v][b + static_cast<std::size_t>(i)];
        out[v].push_back(sum / per_);
      }
    return out;
  }

 private:
  std::vector<int> variants_;
  int per_, warmup_;
  std::vector<std::vector<double>> ms_;
  Clock::time_point t0_;
  std::size_t current_ = 0;
  int step_ = 0;
};

struct TrainArgs {
  std::string model = "cnn", data = "data/mnist";
  int steps = 600, per = 4, warmup = 10;
};

void run_train(const TrainArgs& a, const std::vector<int>& variants) {
  const zoo::Recipe& r = zoo::recipe(a.model);
  if (r.data != "mnist")
    throw std::runtime_error(fmt::format("--model {} trains on {}; this tool reads MNIST (--data)", a.model, r.data));
  const data::Mnist m = data::load_mnist(a.data);
  const Tensor x = data::scale(m.train_images).reshape({-1, 28, 28, 1});
  const Tensor y = cast(m.train_labels, DType::Int64);
  manual_seed(1);
  nn::ModulePtr model = r.build();
  model->build_for({1, 28, 28, 1});
  std::unique_ptr<optim::Optimizer> opt = optim::make_optimizer(r.optimizer, model->named_trainable_parameters(), r.learning_rate);
  auto alternator = std::make_shared<Alternator>(variants, a.per, a.warmup);
  train::FitOptions fit;
  fit.batch_size = r.batch_size;
  fit.verbose = 0;
  fit.max_steps = a.warmup + a.steps;
  fit.epochs = 1000;
  fit.seed = 1;
  fit.callbacks.push_back(alternator);
  train::Trainer trainer(*model, *opt, train::losses::sparse_categorical_crossentropy(), fit);
  trainer.fit(x, y);
  fmt::print("train {} (batch {}): {} steps after {} warm-up, variants switched every {} steps\n", a.model, r.batch_size,
             a.steps, a.warmup, a.per);
  report(variants, alternator->rounds(), "ms per step", false);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A change against the code it replaces, alternated in one process (src/core/experiment.h)", "ab_inprocess"};
  app.require_subcommand(1);
  app.fallthrough();  // --threads and --variants after the subcommand too
  int threads = 0;
  std::vector<int> variants{0, 1};
  app.add_option("--threads", threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
  app.add_option("--variants", variants, "values of dev::experiment() to alternate, the first the baseline")
      ->delimiter(',')
      ->expected(2, 16);
  GemmArgs g;
  CLI::App* gemm = app.add_subcommand("gemm", "one matrix product through the matmul op");
  gemm->add_option("--m", g.m, "rows of C")->check(CLI::Range(1, 1 << 20));
  gemm->add_option("--k", g.k, "the summed dimension")->check(CLI::Range(1, 1 << 20));
  gemm->add_option("--n", g.n, "columns of C")->check(CLI::Range(1, 1 << 20));
  gemm->add_flag("--ta", g.ta, "A stored transposed, [k, m]");
  gemm->add_flag("--tb", g.tb, "B stored transposed, [n, k]");
  gemm->add_flag("--cold", g.cold, "B rotates over 8 copies (out of L2, as in training)");
  gemm->add_option("--rounds", g.rounds, "rounds (each times every variant)")->check(CLI::Range(2, 100000));
  gemm->add_option("--per", g.per, "products timed per variant and round")->check(CLI::Range(1, 100000));
  TrainArgs t;
  CLI::App* train = app.add_subcommand("train", "training steps of a zoo model on MNIST");
  train->add_option("--model", t.model, "zoo model (MNIST-shaped input)");
  train->add_option("--data", t.data, "MNIST directory (scripts/fetch-data mnist DIR)");
  train->add_option("--steps", t.steps, "timed steps, all variants together")->check(CLI::Range(2, 1000000));
  train->add_option("--per", t.per, "steps per variant before switching")->check(CLI::Range(1, 10000));
  train->add_option("--warmup", t.warmup, "untimed steps first")->check(CLI::Range(1, 10000));
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) set_num_threads(threads);
    fmt::print("cpu: {}, {} threads, FMA peak {:.0f} GFLOP/s per core\n", cpu::cpu_info().model, num_threads(),
               peak_gflops_per_core());
    if (gemm->parsed()) run_gemm(g, variants);
    if (train->parsed()) run_train(t, variants);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ab_inprocess: {}\n", e.what());
    return 1;
  }
  return 0;
}
