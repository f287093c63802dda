// libtorch_ref: the zoo models in libtorch's C++ API, timed exactly as synapse_bench times Synapse.
//
//   libtorch_ref --model cnn --threads 2 --warmup 20 --steps 200 --data data/mnist
//
// Layer for layer the models of src/zoo/zoo.cpp (same shapes, padding, activations, initialisers,
// optimizer, batch size; NCHW, which is NHWC for MNIST's single channel), trained on the 60,000 training
// images in memory with shuffled batches; prints the same JSON line as synapse_bench. cifar-cnn (the TF
// CIFAR-10 tutorial's model, src/zoo/images.cpp; as bench/torch_ref.py builds it) trains on synthetic data
// of CIFAR-10's shape, [10240, 3, 32, 32] standard-normal images, as synapse_bench and torch_ref.py do. Threads: torch's
// intra-op threads = --threads, one inter-op thread; the BLAS threads come from the environment (the
// harness sets OPENBLAS_NUM_THREADS=1, libtorch's fastest setting).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace nn = torch::nn;

struct Args {
  std::string model = "cnn";
  std::string data = "data/mnist";
  int threads = 1;
  int warmup = 20;
  int steps = 200;
  int infer1 = 2000;
  std::int64_t t0_ns = 0;
  bool quick = false;
};

// An MNIST IDX file (uint8 images [N, 28, 28] or labels [N]), uncompressed.
torch::Tensor read_idx(const std::string& path, int header) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open '" + path + "' (run scripts/fetch-data mnist)");
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (static_cast<int>(bytes.size()) <= header) throw std::runtime_error("'" + path + "' is too short");
  const auto n = static_cast<std::int64_t>(bytes.size()) - header;
  return torch::from_blob(bytes.data() + header, {n}, torch::kUInt8).clone();
}
torch::Tensor images(const std::string& path) { return read_idx(path, 16).view({-1, 1, 28, 28}).to(torch::kFloat32) / 255.0; }
torch::Tensor labels(const std::string& path) { return read_idx(path, 8).to(torch::kInt64); }

bool is_weight(const std::string& name) { return name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0; }

// Keras' defaults: Glorot-uniform kernels, zero biases (Keras and torch compute the same fans).
void glorot(nn::Sequential& m) {
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters()) {
    if (is_weight(p.key())) nn::init::xavier_uniform_(p.value());
    else nn::init::zeros_(p.value());
  }
}
nn::Conv2d conv(int in, int out, int k, int pad) { return nn::Conv2d(nn::Conv2dOptions(in, out, k).padding(pad)); }
nn::Functional relu() { return nn::Functional(torch::relu); }

struct Model {
  nn::Sequential net;
  int batch = 50;
  std::string optimizer;  // "sgd", "momentum", "adam"
  double lr = 1e-3;
  bool mlp_extras = false;  // lr x0.99 per epoch (the mlp)
  double l2 = 0;            // L2 on the kernels: l2 * sum(w^2) / 2 added to the loss
  std::vector<std::string> l2_names;  // non-empty: only these parameters get the L2
  double ema = 0;           // > 0: a moving average of the weights with this decay (TF's num_updates rule)
  bool cifar = false;       // synthetic CIFAR-10-shaped data
};

Model build(const std::string& name) {
  Model m;
  if (name == "softmax") {
    m.net = nn::Sequential(nn::Flatten(), nn::Linear(784, 10));
    torch::NoGradGuard g;
    for (auto& p : m.net->parameters()) p.zero_();
    m.batch = 100, m.optimizer = "sgd", m.lr = 0.5;
  } else if (name == "mlp") {
    m.net = nn::Sequential(nn::Flatten(), nn::Linear(784, 500), relu(), nn::Linear(500, 10));
    torch::NoGradGuard g;
    for (auto& p : m.net->named_parameters()) {
      // Truncated normal(0, 0.1) approximated by clamping at two standard deviations (no C++ trunc_normal_
      // in libtorch 1.13); the timing does not depend on it.
      if (is_weight(p.key())) p.value().normal_(0.0, 0.1).clamp_(-0.2, 0.2);
      else p.value().fill_(0.1);
    }
    m.batch = 100, m.optimizer = "sgd", m.lr = 0.1, m.mlp_extras = true, m.l2 = 1e-4, m.ema = 0.99;
  } else if (name == "cnn") {
    m.net = nn::Sequential(conv(1, 32, 5, 2), relu(), nn::MaxPool2d(2), conv(32, 64, 5, 2), relu(), nn::MaxPool2d(2),
                           nn::Flatten(), nn::Linear(3136, 1024), relu(), nn::Dropout(0.5), nn::Linear(1024, 10));
    glorot(m.net);
    m.batch = 50, m.optimizer = "adam", m.lr = 1e-3;
  } else if (name == "lenet5") {
    m.net = nn::Sequential(conv(1, 6, 5, 2), relu(), nn::MaxPool2d(2), conv(6, 16, 5, 0), relu(), nn::MaxPool2d(2),
                           nn::Flatten(), nn::Linear(400, 120), relu(), nn::Linear(120, 84), relu(), nn::Linear(84, 10));
    glorot(m.net);
    m.batch = 64, m.optimizer = "adam", m.lr = 1e-3;
  } else if (name == "keras-small") {
    m.net = nn::Sequential(conv(1, 28, 3, 0), relu(), nn::Flatten(), nn::Linear(28 * 26 * 26, 128), relu(),
                           nn::Linear(128, 10));
    glorot(m.net);
    m.batch = 32, m.optimizer = "momentum", m.lr = 0.01;
  } else if (name == "cifar-cnn") {
    // As torch_ref.py: torch's LocalResponseNorm divides alpha by the window size (alpha = TF's 0.001/9
    // times 9); pool padding 1 on both sides gives TF SAME's 16x16 and 8x8 outputs.
    const auto lrn = [] { return nn::LocalResponseNorm(nn::LocalResponseNormOptions(9).alpha(0.001).beta(0.75).k(1.0)); };
    const auto pool = [] { return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)); };
    m.net = nn::Sequential(conv(3, 64, 5, 2), relu(), pool(), lrn(), conv(64, 64, 5, 2), relu(), lrn(), pool(),
                           nn::Flatten(), nn::Linear(4096, 384), relu(), nn::Linear(384, 192), relu(), nn::Linear(192, 10));
    glorot(m.net);
    // Weight decay 0.004 on fc384 and fc192 (Sequential indices 9 and 11), a 0.9999 average of all weights.
    m.batch = 128, m.optimizer = "sgd", m.lr = 0.1, m.l2 = 0.004, m.l2_names = {"9.weight", "11.weight"}, m.ema = 0.9999;
    m.cifar = true;
  } else {
    throw std::runtime_error("unknown model '" + name + "'; known: softmax, mlp, cnn, lenet5, keras-small, cifar-cnn");
  }
  return m;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Model& m) {
  auto params = m.net->parameters();
  if (m.optimizer == "adam")  // Keras' epsilon
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(m.lr).eps(1e-7));
  if (m.optimizer == "momentum")
    return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(m.lr).momentum(0.9));
  return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(m.lr));
}

// As synapse_bench: stops early after max_s seconds.
double inference_ips(Model& m, const std::vector<torch::Tensor>& batches, std::size_t warm, double max_s) {
  c10::InferenceMode guard;
  for (std::size_t i = 0; i < std::min(warm, batches.size()); ++i) (void)m.net->forward(batches[i]);
  std::int64_t n = 0;
  const auto t0 = Clock::now();
  double s = 0;
  for (const auto& b : batches) {
    auto out = m.net->forward(b);
    n += b.size(0);
    s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s > max_s) break;
  }
  return static_cast<double>(n) / s;
}

int run(const Args& a) {
  torch::set_num_threads(a.threads);
  at::set_num_interop_threads(1);
  torch::manual_seed(0);
  const int warmup = std::max(1, a.quick ? std::min(a.warmup, 5) : a.warmup);
  const int steps = std::max(1, a.quick ? std::min(a.steps, 20) : a.steps);
  const int infer1 = a.quick ? std::min(a.infer1, 100) : a.infer1;

  Model m = build(a.model);
  torch::Tensor x, y, test_x;
  if (m.cifar) {  // synthetic data of CIFAR-10's shape, as synapse_bench and torch_ref.py draw it
    x = torch::randn({10240, 3, 32, 32});
    y = torch::randint(0, 10, {10240}, torch::kInt64);
    test_x = torch::randn({2000, 3, 32, 32});
  } else {
    x = images(a.data + "/train-images-idx3-ubyte");
    y = labels(a.data + "/train-labels-idx1-ubyte");
    test_x = images(a.data + "/t10k-images-idx3-ubyte");
  }
  const std::int64_t n = x.size(0);

  auto opt = make_optimizer(m);
  std::vector<torch::Tensor> kernels, shadows;
  for (auto& p : m.net->named_parameters())
    if (is_weight(p.key()) &&
        (m.l2_names.empty() || std::find(m.l2_names.begin(), m.l2_names.end(), p.key()) != m.l2_names.end()))
      kernels.push_back(p.value());
  if (m.ema > 0)
    for (auto& p : m.net->parameters()) shadows.push_back(p.detach().clone());
  const std::int64_t per_epoch = (n + m.batch - 1) / m.batch;

  m.net->train();
  double first_batch_s = 0;
  Clock::time_point warm, end;
  torch::Tensor perm;
  for (std::int64_t step = 0; step < warmup + steps; ++step) {
    const std::int64_t b = step % per_epoch;
    if (b == 0) perm = torch::randperm(n, torch::kInt64);
    const std::int64_t lo = b * m.batch, hi = std::min(n, lo + m.batch);
    const torch::Tensor idx = perm.slice(0, lo, hi);
    const torch::Tensor xb = x.index_select(0, idx), yb = y.index_select(0, idx);
    if (m.mlp_extras) {
      auto& o = static_cast<torch::optim::SGDOptions&>(opt->param_groups()[0].options());
      o.lr(m.lr * std::pow(0.99, static_cast<double>(step) / static_cast<double>(per_epoch)));
    }
    opt->zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(m.net->forward(xb), yb);
    if (m.l2 > 0) {
      torch::Tensor l2 = torch::zeros({});
      for (const auto& k : kernels) l2 = l2 + k.pow(2).sum();
      loss = loss + m.l2 * 0.5 * l2;
    }
    loss.backward();
    opt->step();
    (void)loss.item<float>();  // Synapse's trainer reads the loss every step too
    if (m.ema > 0) {
      torch::NoGradGuard g;
      const double t = static_cast<double>(step + 1);
      const double decay = std::min(m.ema, (1.0 + t) / (10.0 + t));
      auto params = m.net->parameters();
      for (std::size_t i = 0; i < params.size(); ++i) shadows[i].mul_(decay).add_(params[i], 1.0 - decay);
    }
    if (step == 0) first_batch_s = bench::seconds_since_start(a.t0_ns);
    if (step + 1 == warmup) warm = Clock::now();
    if (step + 1 == warmup + steps) end = Clock::now();
  }
  const double train_ips = static_cast<double>(steps) * m.batch / std::chrono::duration<double>(end - warm).count();
  const double rss_train = bench::peak_rss_mb();

  m.net->eval();
  std::vector<torch::Tensor> b1000, b1;
  for (std::int64_t lo = 0; lo < test_x.size(0); lo += 1000) b1000.push_back(test_x.slice(0, lo, lo + 1000));
  for (std::int64_t i = 0; i < std::min<std::int64_t>(infer1, test_x.size(0)); ++i) b1.push_back(test_x.slice(0, i, i + 1));
  const double ips1000 = inference_ips(m, b1000, 1, 1e9);
  const double ips1 = inference_ips(m, b1, 20, 5.0);

  const auto env = [](const char* k) {
    const char* v = std::getenv(k);
    return bench::json_string(v ? v : "");
  };
  std::printf(
      "{\"impl\":\"libtorch\",\"model\":%s,\"threads\":%d,\"batch\":%d,\"warmup\":%d,\"steps\":%d,\"train_ips\":%.1f,"
      "\"infer_ips_1000\":%.1f,\"infer_ips_1\":%.1f,\"infer1_images\":%d,\"peak_rss_train_mb\":%.1f,"
      "\"peak_rss_mb\":%.1f,\"start_to_first_batch_s\":%.4f,\"start_clock\":\"%s\",\"steps_done\":%d,"
      "\"blas\":%s,\"openmp\":%s,\"env\":{\"OMP_WAIT_POLICY\":%s,\"GOMP_SPINCOUNT\":%s,\"OPENBLAS_NUM_THREADS\":%s},"
      "\"torch_version\":\"%d.%d.%d\"}\n",
      bench::json_string(a.model).c_str(), torch::get_num_threads(), m.batch, warmup, steps, train_ips, ips1000, ips1,
      infer1, rss_train, bench::peak_rss_mb(), first_batch_s, a.t0_ns > 0 ? "harness" : "proc", warmup + steps,
      bench::json_list(bench::blas_libraries()).c_str(), bench::json_list(bench::openmp_libraries()).c_str(),
      env("OMP_WAIT_POLICY").c_str(), env("GOMP_SPINCOUNT").c_str(), env("OPENBLAS_NUM_THREADS").c_str(),
      TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      const auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error("option " + k + " needs a value");
        return argv[++i];
      };
      if (k == "--model") a.model = value();
      else if (k == "--data") a.data = value();
      else if (k == "--threads") a.threads = std::stoi(value());
      else if (k == "--warmup") a.warmup = std::stoi(value());
      else if (k == "--steps") a.steps = std::stoi(value());
      else if (k == "--infer1") a.infer1 = std::stoi(value());
      else if (k == "--t0-ns") a.t0_ns = std::stoll(value());
      else if (k == "--quick") a.quick = true;
      else throw std::runtime_error("unknown option '" + k +
                                    "' (known: --model --data --threads --warmup --steps --infer1 --t0-ns --quick)");
    }
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_ref: error: %s\n", e.what());
    return 1;
  }
}
