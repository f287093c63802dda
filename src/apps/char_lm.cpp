// The character language model: data preparation, model, training with baselines, loading, stepping.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/dist.h"
#include "synapse/poem.h"
#include "synapse/report.h"
#include "synapse/train.h"

namespace synapse::apps {

namespace fs = std::filesystem;

// ---- data ----
namespace {

void check_prepare(const PrepareOptions& o) {
  SYN_CHECK(o.seq_len >= 1, "--seq-len: {} is not allowed; it must be at least 1", o.seq_len);
  SYN_CHECK(o.valid_fraction > 0 && o.valid_fraction < 1, "held-out fraction {} must be in (0, 1)", o.valid_fraction);
  SYN_CHECK(o.min_count >= 1, "min_count {} must be at least 1", o.min_count);
}

std::int64_t held_out(std::int64_t n, const PrepareOptions& o) {
  SYN_CHECK(n >= 2, "need at least 2 texts to hold some out, got {}", n);
  auto v = static_cast<std::int64_t>(std::ceil(static_cast<double>(n) * o.valid_fraction));
  return std::clamp<std::int64_t>(v, 1, std::min(o.max_valid, n - 1));
}

}  // namespace

LmData prepare_texts(const std::vector<std::u32string>& texts, const PrepareOptions& o) {
  check_prepare(o);
  const auto n = static_cast<std::int64_t>(texts.size());
  const std::int64_t nv = held_out(n, o);
  const auto order = data::permutation(n, o.split_seed);
  std::vector<std::u32string> train_texts, valid_texts;
  for (std::int64_t i = 0; i < n; ++i)
    (i < nv ? valid_texts : train_texts).push_back(texts[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])]);
  LmData d;
  d.vocab = data::Vocabulary::build(train_texts, {.min_count = o.min_count});
  auto encode = [&](const std::vector<std::u32string>& ts) {
    std::vector<std::vector<std::int64_t>> seqs;
    for (const auto& t : ts) seqs.push_back(d.vocab.encode(t, true, true));
    return data::language_model_pairs(seqs, o.seq_len);
  };
  d.train = encode(train_texts);
  d.valid = encode(valid_texts);
  d.train_texts = n - nv;
  d.valid_texts = nv;
  return d;
}

LmData prepare_stream(const std::u32string& text, const PrepareOptions& o) {
  check_prepare(o);
  SYN_CHECK(static_cast<std::int64_t>(text.size()) >= 4 * (o.seq_len + 1),
            "the text has {} characters; with --seq-len {} it needs at least {}", text.size(), o.seq_len, 4 * (o.seq_len + 1));
  const auto n_windows = (static_cast<std::int64_t>(text.size()) - 1 + o.seq_len - 1) / o.seq_len;
  const std::int64_t nv = held_out(n_windows, o);
  // The held-out part is the end of the text (a contiguous piece, as char-rnn's validation split).
  const std::size_t cut = static_cast<std::size_t>((n_windows - nv) * o.seq_len);
  const std::u32string train_text = text.substr(0, cut + 1), valid_text = text.substr(cut);
  LmData d;
  d.vocab = data::Vocabulary::build({train_text}, {.min_count = o.min_count});
  d.train = data::language_model_pairs(data::windows(d.vocab.encode(train_text), o.seq_len), o.seq_len);
  d.valid = data::language_model_pairs(data::windows(d.vocab.encode(valid_text), o.seq_len), o.seq_len);
  d.train_texts = d.train.count();
  d.valid_texts = d.valid.count();
  return d;
}

// ---- model ----
nn::ModulePtr make_char_lm(std::int64_t vocab_size, const CharLmOptions& o, bool stateful) {
  SYN_CHECK(o.embed >= 1 && o.units >= 1, "char_lm: embed {} and units {} must be at least 1", o.embed, o.units);
  auto lstm = [&](const char* name) {
    return nn::LSTM(nn::LSTMOptions(o.units).return_sequences(true).stateful(stateful).name(name));
  };
  return nn::Sequential({nn::Embedding(nn::EmbeddingOptions(vocab_size, o.embed).name("embedding")), lstm("lstm1"),
                         lstm("lstm2"), nn::Dense(nn::DenseOptions(vocab_size).name("logits"))},
                        "char_lm");
}

void reset_states(nn::Module& model) {
  if (auto* r = dynamic_cast<nn::layers::Recurrent*>(&model)) r->reset_states();
  for (const auto& c : model.children()) reset_states(*c);
}

double perplexity(nn::Module& model, const data::Sequences& s, std::int64_t batch) {
  SYN_CHECK(batch >= 1, "perplexity: batch must be at least 1, got {}", batch);
  const bool was_training = model.is_training();
  model.eval();
  double nll = 0;
  std::int64_t count = 0;
  try {
    train::for_each_batch(s.inputs, batch, std::ref(model), [&](const Tensor& logits, std::int64_t lo, std::int64_t hi) {
      const Tensor targets = data::rows(s, lo, hi).targets;
      const std::vector<float> l = sparse_softmax_cross_entropy(logits, targets).to_vector<float>();  // [B, T]
      const std::vector<std::int64_t> y = targets.to_vector<std::int64_t>();
      for (std::size_t i = 0; i < l.size(); ++i)
        if (y[i] != data::Vocabulary::kPad) {
          nll += l[i];
          ++count;
        }
    });
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  SYN_CHECK(count > 0, "perplexity: no tokens to evaluate");
  return std::exp(nll / static_cast<double>(count));
}

// ---- training ----
namespace {

// After each epoch: the held-out perplexity (val_loss = its log, the mean NLL per token), printed next
// to the baselines.
class HeldOut : public train::Callback {
 public:
  HeldOut(const data::Sequences& valid, const LmTrainResult& baselines, int verbose)
      : valid_(valid), base_(baselines), verbose_(verbose) {}
  void on_epoch_begin(train::Trainer& t, int) override {
    start_ = std::chrono::steady_clock::now();
    first_step_ = t.global_step();
  }
  void on_epoch_end(train::Trainer& t, int epoch, train::Logs& logs) override {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::int64_t steps = t.global_step() - first_step_;
    last_ = perplexity(t.model(), valid_);
    logs["val_loss"] = std::log(last_);
    logs["val_perplexity"] = last_;
    if (steps > 0) logs["step_seconds"] = secs / static_cast<double>(steps);
    if (verbose_)
      std::printf("epoch %d: held-out perplexity %.1f per character (unigram %.1f, bigram %.1f, interpolated bigram "
                  "%.1f; %.2fx the bigram); %.3f s per training step\n",
                  epoch + 1, last_, base_.unigram, base_.bigram, base_.interpolated, last_ / base_.bigram,
                  steps > 0 ? secs / static_cast<double>(steps) : 0.0);
    std::fflush(stdout);
  }
  double last() const { return last_; }

 private:
  data::Sequences valid_;
  LmTrainResult base_;
  int verbose_;
  double last_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::int64_t first_step_ = 0;
};

}  // namespace

LmTrainResult train_char_lm(const LmData& d, const LmTrainOptions& o) {
  // Under mpirun, fit trains data-parallel (train.h); rank 0 alone prints and writes.
  const bool root = dist::rank() == 0;
  const int verbose = root ? o.verbose : 0;
  SYN_CHECK(o.epochs >= 1, "--epochs: {} is not allowed; it must be at least 1", o.epochs);
  SYN_CHECK(o.batch >= 1, "--batch: {} is not allowed; it must be at least 1", o.batch);
  SYN_CHECK(std::isfinite(o.lr) && o.lr > 0, "--lr: {} is not allowed; it must be above 0", o.lr);
  SYN_CHECK(o.max_steps >= 0, "--steps: {} is not allowed; it must be 0 (no limit) or more", o.max_steps);
  SYN_CHECK(std::isfinite(o.minutes) && o.minutes >= 0, "--minutes: {} is not allowed; it must be 0 (no limit) or more",
            o.minutes);
  SYN_CHECK(d.train.count() > 0 && d.valid.count() > 0, "no training or held-out sequences");
  const auto t0 = std::chrono::steady_clock::now();
  fs::create_directories(o.logdir);

  data::NgramModel uni(1, d.vocab.size()), bi(2, d.vocab.size(), 0.03), jm(2, d.vocab.size(), 1.0, 0.7);
  LmTrainResult r;
  for (auto [model, out] : {std::pair{&uni, &r.unigram}, std::pair{&bi, &r.bigram}, std::pair{&jm, &r.interpolated}}) {
    model->fit(d.train);
    *out = model->perplexity(d.valid);
  }
  if (verbose)
    std::printf("baselines on %lld held-out tokens: perplexity unigram %.1f, bigram (add-0.03) %.1f, interpolated "
                "bigram (0.7) %.1f\n",
                static_cast<long long>(d.valid.tokens()), r.unigram, r.bigram, r.interpolated);

  manual_seed(o.seed);
  nn::ModulePtr model = make_char_lm(d.vocab.size(), o.model);
  model->build_for({1, 1}, DType::Int64);
  if (verbose) model->summary();
  auto opt = optim::make_optimizer("adam", model->named_trainable_parameters(), o.lr);

  std::map<std::string, std::string> meta = o.metadata;
  meta["model"] = "char_lm";
  meta["kind"] = o.kind;
  meta["embed"] = std::to_string(o.model.embed);
  meta["units"] = std::to_string(o.model.units);
  // What the report continues for a text run: the start of the training text, up to its first line
  // break (at most 24 characters).
  if (o.kind != "poem" && !meta.count("sample_prime")) {
    std::u32string prime;
    for (std::int64_t id : data::rows(d.train, 0, 1).inputs.to_vector<std::int64_t>()) {
      if (d.vocab.is_special(id) || prime.size() >= 24) break;
      prime.push_back(d.vocab.character(id));
      if (prime.back() == U'\n') break;
    }
    if (!prime.empty()) meta["sample_prime"] = data::encode_utf8(prime);
  }
  const io::TensorMap extra{{"vocabulary", d.vocab.to_tensor()}};

  train::FitOptions fo;
  fo.epochs = o.epochs;
  fo.batch_size = o.batch;
  fo.seed = o.seed;
  fo.max_steps = o.max_steps;
  fo.verbose = verbose;
  if (verbose) fo.callbacks.push_back(train::callbacks::progress_bar());
  auto held_out = std::make_shared<HeldOut>(d.valid, r, verbose);
  fo.callbacks.push_back(held_out);
  if (o.minutes > 0) fo.callbacks.push_back(train::callbacks::time_limit(o.minutes));
  fo.callbacks.push_back(train::callbacks::nan_guard());
  const fs::path logdir(o.logdir);
  std::shared_ptr<report::HistoryLog> history;
  if (root) {
    fo.callbacks.push_back(train::callbacks::model_checkpoint((logdir / "checkpoints").string(), 1, 0, 3, meta, extra));
    fo.callbacks.push_back(train::callbacks::metrics_logger((logdir / "metrics.csv").string()));
    fo.callbacks.push_back(train::callbacks::tensorboard(o.logdir, 100, true, /*graph=*/false));
    history = std::make_shared<report::HistoryLog>((logdir / "history.json").string());
    for (const auto& [k, v] : meta) history->set(k, v);
    history->set("epochs", static_cast<double>(o.epochs));
    history->set("batch", static_cast<double>(o.batch));
    history->set("learning_rate", o.lr);
    history->set("seed", static_cast<double>(o.seed));
    history->set("unigram_perplexity", r.unigram);
    history->set("bigram_perplexity", r.bigram);
    history->set("interpolated_bigram_perplexity", r.interpolated);
    history->set("threads", static_cast<double>(num_threads()));
    fo.callbacks.push_back(history);
  }

  train::Trainer trainer(*model, *opt, train::losses::sparse_categorical_crossentropy(true, data::Vocabulary::kPad), fo);
  const train::History h = trainer.fit(d.train.inputs, d.train.targets);
  if (verbose && !h.stop_reason.empty()) std::printf("%s\n", h.stop_reason.c_str());

  r.perplexity = held_out->last();
  r.steps = opt->iterations();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!root) return r;  // rank 0 saves the model, the history and the report
  io::Checkpoint ckpt = train::capture_training_state(*model, nullptr, trainer.epoch());
  ckpt.step = r.steps;
  ckpt.metadata.insert(meta.begin(), meta.end());
  ckpt.metadata["val_perplexity"] = fmt::format("{:.2f}", r.perplexity);
  ckpt.metadata["unigram_perplexity"] = fmt::format("{:.2f}", r.unigram);
  ckpt.metadata["bigram_perplexity"] = fmt::format("{:.2f}", r.bigram);
  ckpt.metadata["interpolated_bigram_perplexity"] = fmt::format("{:.2f}", r.interpolated);
  ckpt.tensors["vocabulary"] = d.vocab.to_tensor();
  r.model_path = (logdir / "model.syn").string();
  io::save_checkpoint(r.model_path, ckpt);
  history->set("val_perplexity", r.perplexity);
  history->set("steps", static_cast<double>(r.steps));
  history->set("seconds", r.seconds);
  history->write();
  // The model is saved: a report that cannot be written is a warning, not a failed run.
  std::string report_path;
  try {
    report_path = write_lm_report(o.logdir);
  } catch (const Error& e) {
    std::fprintf(stderr, "warning: %s/report.html not written: %s\n", o.logdir.c_str(), e.what());
  }
  if (verbose) {
    std::printf("saved %s\n", r.model_path.c_str());
    if (!report_path.empty()) std::printf("report: %s\n", report_path.c_str());
    std::printf("held-out perplexity: %.1f per character after %lld steps in %.0fs (unigram %.1f, bigram %.1f, "
                "interpolated bigram %.1f)\n",
                r.perplexity, static_cast<long long>(r.steps), r.seconds, r.unigram, r.bigram, r.interpolated);
  }
  return r;
}

// ---- loading and stepping ----
LoadedLm load_char_lm(const std::string& path) {
  const std::string file = fs::is_directory(path) ? (fs::path(path) / "model.syn").string() : path;
  SYN_CHECK(fs::exists(file), "no model at '{}' (train one with: synapse poem train / synapse text train)", file);
  const io::Checkpoint c = io::load_checkpoint(file);
  auto it = c.metadata.find("model");
  SYN_CHECK(it != c.metadata.end() && it->second == "char_lm", "'{}' holds no character language model (model '{}')", file,
            it == c.metadata.end() ? std::string("?") : it->second);
  SYN_CHECK(c.tensors.contains("vocabulary"), "'{}' has no vocabulary", file);
  LoadedLm lm;
  lm.vocab = data::Vocabulary::from_tensor(c.tensors.at("vocabulary"));
  lm.metadata = c.metadata;
  CharLmOptions mo;
  try {
    mo.embed = std::stoll(c.metadata.at("embed"));
    mo.units = std::stoll(c.metadata.at("units"));
  } catch (const std::exception&) {
    detail::fail("'{}': missing or bad 'embed' / 'units' metadata", file);
  }
  lm.model = make_char_lm(lm.vocab.size(), mo, /*stateful=*/true);
  lm.model->build_for({1, 1}, DType::Int64);
  try {
    train::restore_training_state(c, *lm.model, nullptr);
  } catch (const Error& e) {
    detail::fail("'{}' does not fit its model: {}", file, e.what());
  }
  lm.model->eval();
  return lm;
}

NextLogits LoadedLm::stepper() {
  reset_states(*model);
  nn::ModulePtr m = model;
  return [m](std::int64_t token) {
    NoGradGuard no_grad;
    const Tensor logits = (*m)(from_vector(std::vector<std::int64_t>{token}, {1, 1}));  // [1, 1, V]
    return logits.to_vector<float>();
  };
}

}  // namespace synapse::apps
