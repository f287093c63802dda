// synapse_bench: one zoo model per process, trained and run the way `synapse train` does, timed.
//
//   synapse_bench --model cnn --threads 2 --warmup 20 --steps 200 --data data/mnist
//
// prints one JSON line (bench/run.py collects them, bench/torch_ref.py and libtorch_ref print the same):
//   train_ips               training images per second over --steps steps after --warmup steps
//                           (MNIST's 60,000 training images in memory, shuffled batches, the recipe's
//                           optimizer, batch size, L2, weight averaging and augmentation; the Trainer's own loop)
//   infer_ips_1000          inference images per second over the 10,000 test images in batches of 1000
//   infer_ips_1             the same one image at a time (the first --infer1 test images, at most 5 s)
//   peak_rss_train_mb       peak resident memory at the end of training; peak_rss_mb at the end
//   start_to_first_batch_s  process start (see bench_common.h) to the end of the first optimizer step
//   train_flops_per_step    the FLOPs the ops of one training step declare (synapse::Profiler: products and
//                           convolutions, forward and backward); train_gflops = that x steps / time, to
//                           compare with peak_gflops_per_core x threads (synapse::peak_gflops_per_core)
//   blas, openmp            the libraries mapped into the process
//   precision               of the matrix products (--precision fp32|bf16: training and inference)
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "bench_common.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {

struct Args {
  std::string model = "cnn";
  std::string data = "data/mnist";
  int threads = 0;
  int warmup = 20;
  int steps = 200;
  int infer1 = 2000;
  std::int64_t t0_ns = 0;
  std::uint64_t seed = 0;
  bool quick = false;
  std::string precision = "fp32";
};

using Clock = std::chrono::steady_clock;

// Stamps the end of chosen optimizer steps (on_batch_end runs after the step), and counts the FLOPs of
// one training step (the last warm-up step, under the profiler: the timed steps run without it).
class StepTimer : public train::Callback {
 public:
  StepTimer(std::int64_t warmup, std::int64_t last, std::int64_t t0_ns) : warmup_(warmup), last_(last), t0_ns_(t0_ns) {}
  void on_batch_begin(train::Trainer& t, std::int64_t) override {
    if (t.global_step() == warmup_ - 1) profiler_ = std::make_unique<Profiler>();
  }
  void on_batch_end(train::Trainer& t, std::int64_t, train::Logs&) override {
    const std::int64_t step = t.global_step();
    if (step == 1) first_batch_s = bench::seconds_since_start(t0_ns_);
    if (profiler_ && profiler_->collecting()) {
      profiler_->stop();
      flops_per_step = profiler_->flops();
    }
    if (step == warmup_) warm = Clock::now();
    if (step == last_) end = Clock::now();
  }
  double first_batch_s = 0;
  double flops_per_step = 0;
  Clock::time_point warm, end;

 private:
  std::int64_t warmup_, last_, t0_ns_;
  std::unique_ptr<Profiler> profiler_;
};

// The optimizer, schedule, regularisation and callbacks of `synapse train MODEL` (src/cli/train.cpp),
// without validation, checkpoints or the progress bar, which a throughput measurement leaves out.
struct Setup {
  std::unique_ptr<optim::Optimizer> opt;
  train::FitOptions fit;
};

Setup recipe_setup(const zoo::Recipe& r, nn::Module& model, std::int64_t n_train) {
  Setup s;
  const double lr = r.learning_rate;
  if (r.optimizer == "momentum" || r.optimizer == "nesterov") {
    s.opt = std::make_unique<optim::SGD>(
        model.named_trainable_parameters(),
        optim::SGDOptions{.learning_rate = lr, .momentum = r.momentum > 0 ? r.momentum : 0.9, .nesterov = r.optimizer == "nesterov"});
  } else {
    s.opt = optim::make_optimizer(r.optimizer, model.named_trainable_parameters(), lr);
  }
  const std::int64_t steps_per_epoch = (n_train + r.batch_size - 1) / r.batch_size;
  if (r.lr_decay_per_epoch != 1.0) s.opt->set_schedule(optim::exponential_decay(lr, steps_per_epoch, r.lr_decay_per_epoch));
  s.fit.batch_size = r.batch_size;
  s.fit.verbose = 0;
  if (r.augment_shift > 0) {
    const int shift = r.augment_shift;
    s.fit.augment = [shift](const Tensor& x, std::uint64_t seed) { return data::random_translate(x, shift, seed); };
  }
  if (r.l2 > 0) {
    std::vector<Tensor> kernels;
    for (const auto& [name, t] : model.named_trainable_parameters()) {
      bool chosen = r.l2_layers.empty();  // cifar-cnn: only its two hidden dense layers
      for (const auto& l : r.l2_layers) chosen = chosen || name.starts_with(l + "/");
      if (name.ends_with("/kernel") && chosen) kernels.push_back(t);
    }
    const float l2 = r.l2;
    s.fit.regularization = [kernels, l2] { return train::l2_regularization(kernels, l2); };
  }
  if (r.ema_decay > 0) {
    auto ema = std::make_shared<optim::ExponentialMovingAverage>(model.named_trainable_parameters(), r.ema_decay);
    s.fit.callbacks.push_back(train::callbacks::moving_average(ema));
  }
  if (r.lr_epoch_factor != 1.0) {
    const double f = r.lr_epoch_factor;
    s.fit.callbacks.push_back(train::callbacks::learning_rate_scheduler(
        [f, lr](int epoch, double) { return epoch == 0 ? lr : lr * std::pow(f, epoch); }));
  }
  return s;
}

// Splits x [N, ...] into tensors of `batch` rows (the last may be shorter), before any timing.
std::vector<Tensor> split_rows(const Tensor& x, std::int64_t batch, std::int64_t limit) {
  std::vector<Tensor> out;
  const std::int64_t n = std::min(limit, x.dim(0));
  for (std::int64_t lo = 0; lo < n; lo += batch) {
    std::vector<std::int64_t> begin(static_cast<std::size_t>(x.ndim()), 0), size(static_cast<std::size_t>(x.ndim()), -1);
    begin[0] = lo;
    size[0] = std::min(batch, n - lo);
    out.push_back(slice(x, begin, size));
  }
  return out;
}

// Images per second of forward passes over `batches` (after `warm` untimed batches), inference mode;
// stops early once `max_s` seconds have passed (a slow model on a busy machine), with the rate so far.
double inference_ips(nn::Module& model, const std::vector<Tensor>& batches, std::size_t warm, double max_s) {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < std::min(warm, batches.size()); ++i) (void)model(batches[i]);
  std::int64_t images = 0;
  const auto t0 = Clock::now();
  double s = 0;
  for (const Tensor& b : batches) {
    const Tensor out = model(b);
    images += b.dim(0);
    s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s > max_s) break;
  }
  return static_cast<double>(images) / s;
}

int run(const Args& a) {
  const zoo::Recipe& r = zoo::recipe(a.model);
  if (a.threads > 0) set_num_threads(a.threads);
  const MatmulPrecisionGuard precision(parse_precision(a.precision, "--precision"));  // inference too
  const int warmup = std::max(1, a.quick ? std::min(a.warmup, 5) : a.warmup);
  const int steps = std::max(1, a.quick ? std::min(a.steps, 20) : a.steps);
  const int infer1 = a.quick ? std::min(a.infer1, 100) : a.infer1;

  // cifar-cnn: synthetic data of CIFAR-10's shape (standard-normal pixels, as after per-image
  // standardisation; no augmentation, which torch_ref.py does not do either).
  Tensor x, y, test_x;
  if (r.data == "cifar10") {
    Generator g(a.seed + 1);
    x = random_normal({10240, 32, 32, 3}, 0.0f, 1.0f, &g);
    test_x = random_normal({2000, 32, 32, 3}, 0.0f, 1.0f, &g);
    y = Tensor::empty({10240}, DType::Int64);
    for (std::int64_t i = 0; i < y.numel(); ++i) y.data<std::int64_t>()[i] = static_cast<std::int64_t>(g.next_u64() % 10);
  } else {
    const data::Mnist m = data::load_mnist(a.data);
    x = data::scale(m.train_images).reshape({-1, 28, 28, 1});
    y = cast(m.train_labels, DType::Int64);
    test_x = data::scale(m.test_images).reshape({-1, 28, 28, 1});
  }

  manual_seed(a.seed);
  nn::ModulePtr model = r.build();
  model->set_name(r.name);
  model->build_for({1, x.dim(1), x.dim(2), x.dim(3)});
  Setup s = recipe_setup(r, *model, x.dim(0));
  const std::int64_t total = warmup + steps;
  s.fit.max_steps = total;
  s.fit.epochs = static_cast<int>(total / ((x.dim(0) + r.batch_size - 1) / r.batch_size)) + 2;
  s.fit.seed = a.seed;
  s.fit.precision = matmul_precision();
  auto timer = std::make_shared<StepTimer>(warmup, total, a.t0_ns);
  s.fit.callbacks.push_back(timer);

  train::Trainer trainer(*model, *s.opt, train::losses::sparse_categorical_crossentropy(), s.fit);
  trainer.fit(x, y);
  const double train_s = std::chrono::duration<double>(timer->end - timer->warm).count();
  const double train_ips = static_cast<double>(steps) * r.batch_size / train_s;
  const double rss_train = bench::peak_rss_mb();

  model->eval();
  const double ips1000 = inference_ips(*model, split_rows(test_x, 1000, test_x.dim(0)), 1, 1e9);
  const double ips1 = inference_ips(*model, split_rows(test_x, 1, infer1), 20, 5.0);

  const auto getenv_or = [](const char* k) {
    const char* v = std::getenv(k);
    return std::string(v ? v : "");
  };
  fmt::print(
      "{{\"impl\":\"synapse\",\"model\":{},\"threads\":{},\"batch\":{},\"warmup\":{},\"steps\":{},\"train_ips\":{:.1f},"
      "\"infer_ips_1000\":{:.1f},\"infer_ips_1\":{:.1f},\"infer1_images\":{},\"peak_rss_train_mb\":{:.1f},"
      "\"peak_rss_mb\":{:.1f},\"start_to_first_batch_s\":{:.4f},\"start_clock\":\"{}\",\"steps_done\":{},"
      "\"train_flops_per_step\":{:.6g},\"train_gflops\":{:.2f},\"peak_gflops_per_core\":{:.1f},"
      "\"precision\":\"{}\",\"blas\":{},\"openmp\":{},\"env\":{{\"OMP_WAIT_POLICY\":{},\"GOMP_SPINCOUNT\":{},\"OPENBLAS_NUM_THREADS\":{}}}}}\n",
      bench::json_string(r.name), num_threads(), r.batch_size, warmup, steps, train_ips, ips1000, ips1, infer1, rss_train,
      bench::peak_rss_mb(), timer->first_batch_s, a.t0_ns > 0 ? "harness" : "proc", trainer.global_step(),
      timer->flops_per_step, timer->flops_per_step * steps / train_s * 1e-9, peak_gflops_per_core(),
      precision_name(matmul_precision()), bench::json_list(bench::blas_libraries()), bench::json_list(bench::openmp_libraries()),
      bench::json_string(getenv_or("OMP_WAIT_POLICY")), bench::json_string(getenv_or("GOMP_SPINCOUNT")),
      bench::json_string(getenv_or("OPENBLAS_NUM_THREADS")));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Times one zoo model: training and inference throughput, memory, start-up", "synapse_bench"};
  app.add_option("--model", a.model, "Zoo model: softmax, mlp, cnn, lenet5, keras-small")->capture_default_str();
  app.add_option("--data", a.data, "Folder with the MNIST IDX files")->capture_default_str();
  app.add_option("--threads", a.threads, "Threads (default: Synapse's default, all cores)");
  app.add_option("--warmup", a.warmup, "Untimed training steps first (>= 1)")->capture_default_str();
  app.add_option("--steps", a.steps, "Timed training steps")->capture_default_str();
  app.add_option("--infer1", a.infer1, "Test images for batch-1 inference")->capture_default_str();
  app.add_option("--t0-ns", a.t0_ns, "CLOCK_MONOTONIC ns when the harness started this process");
  app.add_option("--seed", a.seed, "Random seed")->capture_default_str();
  app.add_option("--precision", a.precision, "Matrix products in fp32 or bf16")->capture_default_str();
  app.add_flag("--quick", a.quick, "Few steps and images (a smoke test, not a measurement)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(a);
  } catch (const std::exception& e) {
    fmt::print(stderr, "synapse_bench: error: {}\n", e.what());
    return 1;
  }
}
