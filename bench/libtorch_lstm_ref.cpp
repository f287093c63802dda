// libtorch_lstm_ref: the sequence benchmark's character-level LSTM language model in libtorch's C++
// API, timed exactly as lstm_bench times Synapse (bench/torch_lstm_ref.py is the same in PyTorch).
//
//   libtorch_lstm_ref --threads 2
//
// Embedding(vocab, embed) -> torch::nn::LSTM(hidden, layers, batch_first) -> Linear(vocab), softmax
// cross-entropy over every position, Adam 1e-3, synthetic token ids. Prints one JSON line with
// train_cps (training characters per second) and gen_us_per_char (batch-1 generation, state carried,
// argmax of the next character's logits).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "bench_common.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace nn = torch::nn;

struct CharLMImpl : nn::Module {
  CharLMImpl(std::int64_t vocab, std::int64_t embed, std::int64_t hidden, std::int64_t layers)
      : embedding(register_module("embedding", nn::Embedding(vocab, embed))),
        lstm(register_module("lstm", nn::LSTM(nn::LSTMOptions(embed, hidden).num_layers(layers).batch_first(true)))),
        out(register_module("out", nn::Linear(hidden, vocab))) {}
  std::tuple<torch::Tensor, std::tuple<torch::Tensor, torch::Tensor>> forward(
      const torch::Tensor& x, torch::optional<std::tuple<torch::Tensor, torch::Tensor>> state = {}) {
    auto [h, s] = lstm->forward(embedding->forward(x), state);
    return {out->forward(h), s};
  }
  nn::Embedding embedding;
  nn::LSTM lstm;
  nn::Linear out;
};
TORCH_MODULE(CharLM);

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, warmup = 2, steps = 10, gen = 1000;
  std::int64_t vocab = 6885, embed = 128, hidden = 384, layers = 2, batch = 64, seq_len = 65;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> long long {
      if (i + 1 >= argc) {
        std::cerr << "libtorch_lstm_ref: error: " << k << " needs a value\n";
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (k == "--threads") threads = static_cast<int>(next());
    else if (k == "--warmup") warmup = static_cast<int>(next());
    else if (k == "--steps") steps = static_cast<int>(next());
    else if (k == "--gen") gen = static_cast<int>(next());
    else if (k == "--vocab") vocab = next();
    else if (k == "--embed") embed = next();
    else if (k == "--hidden") hidden = next();
    else if (k == "--layers") layers = next();
    else if (k == "--batch") batch = next();
    else if (k == "--seq-len") seq_len = next();
    else if (k == "--quick") quick = true;
    else {
      std::cerr << "libtorch_lstm_ref: error: unknown flag '" << k << "'\n";
      return 2;
    }
  }
  if (quick) {
    steps = std::min(steps, 3);
    warmup = std::min(warmup, 1);
    gen = std::min(gen, 50);
  }
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
  torch::manual_seed(0);

  CharLM model(vocab, embed, hidden, layers);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
  const torch::Tensor data = torch::randint(0, vocab, {warmup + steps, batch, seq_len + 1}, torch::kInt64);

  model->train();
  Clock::time_point warm, end;
  for (int step = 0; step < warmup + steps; ++step) {
    const torch::Tensor xb = data[step].slice(1, 0, seq_len), yb = data[step].slice(1, 1, seq_len + 1);
    opt.zero_grad();
    auto [logits, state] = model->forward(xb);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, vocab}), yb.reshape({-1}));
    loss.backward();
    opt.step();
    (void)loss.item<float>();
    if (step + 1 == warmup) warm = Clock::now();
    if (step + 1 == warmup + steps) end = Clock::now();
  }
  const double train_cps = static_cast<double>(steps * batch * seq_len) / seconds(end - warm);

  model->eval();
  double gen_us = 0;
  {
    torch::InferenceMode guard;
    torch::Tensor token = torch::zeros({1, 1}, torch::kInt64);
    torch::optional<std::tuple<torch::Tensor, torch::Tensor>> state;
    Clock::time_point t0;
    for (int i = 0; i < gen + 20; ++i) {
      if (i == 20) t0 = Clock::now();
      auto [logits, s] = model->forward(token, state);
      state = s;
      token = logits.select(1, 0).argmax(-1, true);
    }
    gen_us = seconds(Clock::now() - t0) / gen * 1e6;
  }

  std::int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  std::printf(
      "{\"impl\":\"libtorch\",\"threads\":%d,\"vocab\":%lld,\"embed\":%lld,\"hidden\":%lld,\"layers\":%lld,"
      "\"batch\":%lld,\"seq_len\":%lld,\"params\":%lld,\"warmup\":%d,\"steps\":%d,\"train_cps\":%.1f,"
      "\"gen_us_per_char\":%.2f,\"gen_chars\":%d,\"blas\":%s,\"openmp\":%s}\n",
      at::get_num_threads(), static_cast<long long>(vocab), static_cast<long long>(embed), static_cast<long long>(hidden),
      static_cast<long long>(layers), static_cast<long long>(batch), static_cast<long long>(seq_len),
      static_cast<long long>(params), warmup, steps, train_cps, gen_us, gen, bench::json_list(bench::blas_libraries()).c_str(),
      bench::json_list(bench::openmp_libraries()).c_str());
  return 0;
}
