// lstm_bench: the sequence benchmark, a character-level LSTM language model timed the way
// bench/torch_lstm_ref.py (PyTorch) and libtorch_lstm_ref (libtorch) time theirs.
//
//   lstm_bench --threads 2
//
// Embedding(vocab, embed) -> LSTM(hidden) x layers (return_sequences) -> Dense(vocab) on every step,
// softmax cross-entropy over all batch x seq_len positions, Adam 1e-3, synthetic token ids (the speed
// of an LSTM does not depend on the values). Prints one JSON line:
//   train_cps        training characters (batch x seq_len per step) per second over --steps steps after --warmup
//   gen_us_per_char  batch-1 generation: the same model with stateful LSTMs (the state carried across
//                    calls), one character in, the next character's logits out and their argmax taken,
//                    microseconds per character (mean over --gen characters after 20 untimed ones)
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "bench_common.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {

struct Args {
  int threads = 0;
  std::int64_t vocab = 6885, embed = 128, hidden = 384, layers = 2, batch = 64, seq_len = 65;
  int warmup = 2, steps = 10, gen = 1000;
  bool quick = false;
};

using Clock = std::chrono::steady_clock;
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

nn::ModulePtr char_lm(const Args& a, bool stateful) {
  std::vector<nn::ModulePtr> layers{nn::Embedding(a.vocab, a.embed)};
  for (std::int64_t l = 0; l < a.layers; ++l)
    layers.push_back(nn::LSTM(nn::LSTMOptions(a.hidden).return_sequences(true).stateful(stateful)));
  layers.push_back(nn::Dense(a.vocab));
  nn::ModulePtr m = nn::Sequential(std::move(layers));
  m->build_for({1, 1}, DType::Int64);
  return m;
}

int run(const Args& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  const int warmup = a.quick ? std::min(a.warmup, 1) : a.warmup;
  const int steps = a.quick ? std::min(a.steps, 3) : a.steps;
  const int gen = a.quick ? std::min(a.gen, 50) : a.gen;

  manual_seed(0);
  nn::ModulePtr model = char_lm(a, false);
  optim::Adam opt(model->named_trainable_parameters(), {.learning_rate = 1e-3});
  const auto loss_fn = train::losses::sparse_categorical_crossentropy();
  Generator g(1);
  const Tensor data = cast(random_uniform({warmup + steps, a.batch, a.seq_len + 1}, 0.0f, static_cast<float>(a.vocab) - 0.5f, &g),
                           DType::Int64);

  model->train();
  Clock::time_point warm, end;
  for (int step = 0; step < warmup + steps; ++step) {
    const Tensor xb = slice(data, {step, 0, 0}, {1, -1, a.seq_len}).reshape({a.batch, a.seq_len});
    const Tensor yb = slice(data, {step, 0, 1}, {1, -1, a.seq_len}).reshape({a.batch * a.seq_len});
    const Tensor logits = (*model)(xb).reshape({a.batch * a.seq_len, a.vocab});
    Tensor loss = loss_fn(logits, yb);
    loss.backward();
    opt.step();
    opt.zero_grad();
    (void)loss.item<float>();
    if (step + 1 == warmup) warm = Clock::now();
    if (step + 1 == warmup + steps) end = Clock::now();
  }
  const double train_cps = static_cast<double>(steps * a.batch * a.seq_len) / seconds(end - warm);

  // Generation: a stateful copy with the trained weights, one character per call.
  nn::ModulePtr writer = char_lm(a, true);
  writer->load_state_dict(model->state_dict());
  writer->eval();
  double gen_us = 0;
  {
    NoGradGuard no_grad;
    Tensor token = zeros({1, 1}, DType::Int64);
    Clock::time_point t0;
    for (int i = 0; i < gen + 20; ++i) {
      if (i == 20) t0 = Clock::now();
      token = argmax((*writer)(token).reshape({1, a.vocab}), -1).reshape({1, 1});
    }
    gen_us = seconds(Clock::now() - t0) / gen * 1e6;
  }

  std::int64_t params = 0;
  for (const auto& [name, p] : model->named_trainable_parameters()) params += p.numel();
  fmt::print(
      "{{\"impl\":\"synapse\",\"threads\":{},\"vocab\":{},\"embed\":{},\"hidden\":{},\"layers\":{},\"batch\":{},"
      "\"seq_len\":{},\"params\":{},\"warmup\":{},\"steps\":{},\"train_cps\":{:.1f},\"gen_us_per_char\":{:.2f},"
      "\"gen_chars\":{},\"blas\":{},\"openmp\":{}}}\n",
      num_threads(), a.vocab, a.embed, a.hidden, a.layers, a.batch, a.seq_len, params, warmup, steps, train_cps, gen_us, gen,
      bench::json_list(bench::blas_libraries()), bench::json_list(bench::openmp_libraries()));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Times a character-level LSTM language model: training characters/s, generation latency", "lstm_bench"};
  app.add_option("--threads", a.threads, "Threads (default: Synapse's default, all cores)");
  app.add_option("--vocab", a.vocab, "Vocabulary size")->capture_default_str();
  app.add_option("--embed", a.embed, "Embedding width")->capture_default_str();
  app.add_option("--hidden", a.hidden, "LSTM units per layer")->capture_default_str();
  app.add_option("--layers", a.layers, "LSTM layers")->capture_default_str();
  app.add_option("--batch", a.batch, "Sequences per training step")->capture_default_str();
  app.add_option("--seq-len", a.seq_len, "Characters per sequence")->capture_default_str();
  app.add_option("--warmup", a.warmup, "Untimed training steps first")->capture_default_str();
  app.add_option("--steps", a.steps, "Timed training steps")->capture_default_str();
  app.add_option("--gen", a.gen, "Timed generated characters")->capture_default_str();
  app.add_flag("--quick", a.quick, "Few steps (a smoke test, not a measurement)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(a);
  } catch (const std::exception& e) {
    fmt::print(stderr, "lstm_bench: error: {}\n", e.what());
    return 1;
  }
}
