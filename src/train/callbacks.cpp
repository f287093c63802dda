// Callbacks for the fit loop, and the training state saved in checkpoints.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/device.h"
#include "synapse/profile.h"
#include "synapse/random.h"
#include "synapse/train.h"

namespace synapse::train {

io::Checkpoint capture_training_state(const nn::Module& model, const optim::Optimizer* opt, std::int64_t epoch) {
  io::Checkpoint c;
  for (const auto& [name, t] : model.state_dict()) c.tensors["model/" + name] = t;
  if (opt) {
    for (const auto& [name, t] : opt->state_dict()) c.tensors["optimizer/" + name] = t;
    c.step = opt->iterations();
  }
  c.epoch = epoch;
  c.metadata["rng"] = default_generator().state();
  return c;
}

void restore_training_state(const io::Checkpoint& ckpt, nn::Module& model, optim::Optimizer* opt) {
  std::map<std::string, Tensor> m, o;
  for (const auto& [name, t] : ckpt.tensors) {
    if (name.rfind("model/", 0) == 0) m[name.substr(6)] = t;
    if (name.rfind("optimizer/", 0) == 0) o[name.substr(10)] = t;
  }
  SYN_CHECK(!m.empty(), "restore: the checkpoint holds no model state (no 'model/...' tensors)");
  model.load_state_dict(m, /*strict=*/true);
  if (opt) opt->load_state_dict(o);
  if (auto it = ckpt.metadata.find("rng"); it != ckpt.metadata.end()) default_generator().set_state(it->second);
}

namespace callbacks {
namespace {

// 4 decimals, or 4 significant digits for values too large for that to be readable (an exploding loss).
std::string format_value(double v) { return std::abs(v) < 1e6 ? fmt::format("{:.4f}", v) : fmt::format("{:.4g}", v); }

std::string format_logs(const Logs& logs) {
  std::string out;
  // loss and accuracy first, the rest alphabetically.
  for (const char* key : {"loss", "accuracy"})
    if (auto it = logs.find(key); it != logs.end()) out += fmt::format(" - {}: {}", key, format_value(it->second));
  for (const auto& [k, v] : logs) {
    if (k == "loss" || k == "accuracy") continue;
    out += k == "lr" ? fmt::format(" - {}: {:.3g}", k, v) : fmt::format(" - {}: {}", k, format_value(v));
  }
  return out;
}

class ProgressBar : public Callback {
 public:
  void on_train_begin(Trainer&) override { tty_ = isatty(STDOUT_FILENO) != 0; }
  void on_epoch_begin(Trainer& t, int epoch) override {
    start_ = Clock::now();
    last_draw_ = tty_ ? start_ - std::chrono::seconds(1) : start_;
    epoch_ = epoch;
    // What will really run: max_steps may end training inside this epoch (--steps 400 of 1100), and a
    // resumed run starts after the batches it has done; the ETA counts only the steps left to run.
    epochs_ = t.planned_epochs();
    first_ = t.steps_done_in_epoch();
    end_ = first_ + t.steps_this_epoch();
    last_ = first_;
    if (tty_) std::printf("Epoch %d/%d\n", epoch + 1, epochs_);
  }
  void on_batch_end(Trainer&, std::int64_t batch, Logs& logs) override {
    const auto now = Clock::now();
    const std::int64_t total = end_;
    last_ = batch + 1;
    if (!tty_) {
      // Plain lines for logs and pipes: one every 15 seconds, none for short epochs.
      if (batch + 1 < total && now - last_draw_ >= std::chrono::seconds(15) && now - start_ >= std::chrono::seconds(15)) {
        last_draw_ = now;
        std::printf("  %lld/%lld - %.0fs%s\n", static_cast<long long>(batch + 1), static_cast<long long>(total),
                    seconds(now - start_), format_logs(logs).c_str());
        std::fflush(stdout);
      }
      return;
    }
    if (batch + 1 < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double elapsed = seconds(now - start_);
    const double eta = elapsed / static_cast<double>(batch + 1 - first_) * static_cast<double>(total - batch - 1);
    constexpr int width = 30;
    const int filled = static_cast<int>(width * (batch + 1) / total);
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), '.');
    std::printf("\r%*lld/%lld [%s] - ETA %4.0fs%s\033[K", static_cast<int>(std::to_string(total).size()),
                static_cast<long long>(batch + 1), static_cast<long long>(total), bar.c_str(), eta,
                format_logs(logs).c_str());
    std::fflush(stdout);
  }
  void on_epoch_end(Trainer& t, int, Logs& logs) override {
    const double elapsed = seconds(Clock::now() - start_);
    // The steps this epoch ran: "400/1100" when max_steps ended it early, "1100" when it ran whole.
    const long long total = t.steps_per_epoch();
    const std::string steps = last_ < total ? fmt::format("{}/{}", last_, total)
                              : tty_        ? fmt::format("{}/{}", total, total)
                                            : std::to_string(total);
    if (tty_) {
      std::printf("\r%s - %.1fs%s\033[K\n", steps.c_str(), elapsed, format_logs(logs).c_str());
    } else {
      std::printf("Epoch %d/%d - %s steps - %.1fs%s\n", epoch_ + 1, epochs_, steps.c_str(), elapsed, format_logs(logs).c_str());
    }
    std::fflush(stdout);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
  bool tty_ = false;
  int epoch_ = 0, epochs_ = 0;
  std::int64_t first_ = 0, end_ = 0;  // this epoch's batches [first_, end_) will run
  long long last_ = 0;                // batches of this epoch done so far (first_ + those run)
  Clock::time_point start_, last_draw_;
};

class EarlyStopping : public Callback {
 public:
  EarlyStopping(std::string monitor, int patience, double min_delta, bool restore)
      : monitor_(std::move(monitor)), patience_(patience), min_delta_(min_delta), restore_(restore) {
    // Accuracies improve upwards, losses downwards (Keras' "auto" mode).
    maximize_ = monitor_.find("acc") != std::string::npos;
  }
  void on_train_begin(Trainer&) override {
    best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    wait_ = 0;
    best_state_.clear();
  }
  void on_epoch_end(Trainer& t, int epoch, Logs& logs) override {
    auto it = logs.find(monitor_);
    SYN_CHECK(it != logs.end(), "early_stopping: the logs have no '{}' (is validation data set?)", monitor_);
    const double v = it->second;
    const bool better = maximize_ ? v > best_ + min_delta_ : v < best_ - min_delta_;
    if (better) {
      best_ = v;
      best_epoch_ = epoch;
      wait_ = 0;
      if (restore_) {
        best_state_.clear();
        for (const auto& [name, tensor] : t.model().state_dict()) best_state_[name] = tensor.clone();
      }
      return;
    }
    if (++wait_ >= patience_) {
      t.stop(fmt::format("early stopping: {} did not improve for {} epochs (best {:.4f} at epoch {})", monitor_,
                         patience_, best_, best_epoch_ + 1));
    }
  }
  void on_train_end(Trainer& t) override {
    if (restore_ && t.history().stopped_early && !best_state_.empty()) t.model().load_state_dict(best_state_);
  }

 private:
  std::string monitor_;
  int patience_;
  double min_delta_;
  bool restore_;
  bool maximize_ = false;
  double best_ = 0;
  int best_epoch_ = 0;
  int wait_ = 0;
  std::map<std::string, Tensor> best_state_;
};

class LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(std::function<double(int, double)> fn) : fn_(std::move(fn)) {}
  void on_epoch_begin(Trainer& t, int epoch) override {
    t.optimizer().set_learning_rate(fn_(epoch, t.optimizer().learning_rate()));
  }

 private:
  std::function<double(int, double)> fn_;
};

class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(std::string dir, int every_epochs, std::int64_t every_steps, int max_to_keep,
                  std::map<std::string, std::string> metadata, io::TensorMap extra)
      : manager_(std::move(dir), max_to_keep), every_epochs_(every_epochs), every_steps_(every_steps),
        metadata_(std::move(metadata)), extra_(std::move(extra)) {}
  void on_batch_end(Trainer& t, std::int64_t, Logs&) override {
    if (every_steps_ > 0 && t.global_step() % every_steps_ == 0) save(t);
  }
  void on_epoch_end(Trainer& t, int epoch, Logs&) override {
    if (every_epochs_ > 0 && (epoch + 1) % every_epochs_ == 0) save(t);
  }

 private:
  // The epoch recorded is the number of whole epochs done (steps / steps per epoch), so a resumed fit
  // starts in the right epoch and skips exactly the batches already taken — also after an epoch cut
  // short by max_steps.
  void save(Trainer& t) {
    io::Checkpoint c = capture_training_state(t.model(), &t.optimizer(), t.global_step() / t.steps_per_epoch());
    for (const auto& [k, v] : metadata_) c.metadata[k] = v;
    for (const auto& [k, tensor] : extra_) {
      SYN_CHECK(!c.tensors.contains(k), "model_checkpoint: extra tensor '{}' collides with the training state", k);
      c.tensors[k] = tensor;
    }
    manager_.save(c);
  }
  io::CheckpointManager manager_;
  int every_epochs_;
  std::int64_t every_steps_;
  std::map<std::string, std::string> metadata_;
  io::TensorMap extra_;
};

class MetricsLogger : public Callback {
 public:
  explicit MetricsLogger(std::string path) : path_(std::move(path)) {
    json_ = path_.size() >= 6 && (path_.ends_with(".jsonl") || path_.ends_with(".json"));
  }
  void on_epoch_end(Trainer&, int epoch, Logs& logs) override {
    std::ofstream f(path_, std::ios::app);
    SYN_CHECK(f.good(), "metrics_logger: cannot open '{}' for writing", path_);
    if (json_) {
      std::string line = fmt::format("{{\"epoch\": {}", epoch + 1);
      for (const auto& [k, v] : logs) line += fmt::format(", \"{}\": {}", k, std::isfinite(v) ? fmt::format("{}", v) : "null");
      f << line << "}\n";
    } else {
      if (!header_written_) {
        std::string header = "epoch";
        for (const auto& [k, v] : logs) header += "," + k;
        f << header << "\n";
        header_written_ = true;
      }
      std::string line = std::to_string(epoch + 1);
      for (const auto& [k, v] : logs) line += fmt::format(",{}", v);
      f << line << "\n";
    }
  }

 private:
  std::string path_;
  bool json_ = false;
  bool header_written_ = false;
};

class NanGuard : public Callback {
 public:
  void on_batch_end(Trainer& t, std::int64_t batch, Logs&) override {
    for (const auto& [name, p] : t.model().named_parameters()) {
      const float* v = p.data<float>();
      for (std::int64_t i = 0; i < p.numel(); ++i) {
        if (!std::isfinite(v[i]))
          detail::fail("nan_guard: after epoch {}, batch {}: parameter '{}' became {} (element {}). Usual causes: "
                       "inputs that are not normalised or a learning rate that is too high",
                       t.epoch() + 1, batch + 1, name, std::isnan(v[i]) ? "NaN" : "Inf", i);
      }
    }
  }
};

class MovingAverage : public Callback {
 public:
  MovingAverage(std::shared_ptr<optim::ExponentialMovingAverage> ema, bool use_num_updates)
      : ema_(std::move(ema)), use_num_updates_(use_num_updates) {}
  void on_batch_end(Trainer& t, std::int64_t, Logs&) override { ema_->update(use_num_updates_ ? t.global_step() : -1); }
  void on_test_begin(Trainer&) override { ema_->swap(); }
  void on_test_end(Trainer&) override { ema_->swap(); }

 private:
  std::shared_ptr<optim::ExponentialMovingAverage> ema_;
  bool use_num_updates_;
};

class TimeLimit : public Callback {
 public:
  explicit TimeLimit(double minutes) : minutes_(minutes) {
    SYN_CHECK(std::isfinite(minutes) && minutes > 0, "time_limit: minutes must be above 0, got {}", minutes);
  }
  void on_train_begin(Trainer&) override { start_ = std::chrono::steady_clock::now(); }
  void on_batch_end(Trainer& t, std::int64_t, Logs&) override {
    const double m = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() / 60.0;
    if (m >= minutes_ && !t.stopping()) {
      t.stop(fmt::format("reached the time limit of {} minutes after {} steps", minutes_, t.global_step()));
      t.history().stopped_early = false;
    }
  }

 private:
  double minutes_;
  std::chrono::steady_clock::time_point start_;
};

class ProfileSteps : public Callback {
 public:
  ProfileSteps(std::int64_t steps, std::function<void(const std::string&)> sink, std::int64_t skip)
      : steps_(steps), skip_(skip), sink_(std::move(sink)) {
    SYN_CHECK(steps >= 1, "profile_steps: steps must be at least 1, got {}", steps);
    SYN_CHECK(skip >= 0, "profile_steps: skip must be at least 0, got {}", skip);
  }
  void on_batch_begin(Trainer&, std::int64_t) override {
    if (seen_ == skip_ && !profiler_) profiler_ = std::make_unique<Profiler>();
  }
  void on_batch_end(Trainer&, std::int64_t, Logs&) override {
    ++seen_;
    if (profiler_ && seen_ == skip_ + steps_) report();
  }
  void on_train_end(Trainer&) override { report(); }

 private:
  void report() {
    if (!profiler_ || !profiler_->collecting()) return;
    profiler_->stop();
    const std::int64_t done = std::min(seen_ - skip_, steps_);
    if (done < 1) return;
    const std::string table = format_profile(
        *profiler_, {.steps = done, .peak_gflops = num_threads() * peak_gflops_per_core()});
    if (sink_) sink_(fmt::format("profile of {} training steps (after {} warm-up steps), {} threads, peak {:.0f} "
                                 "GFLOP/s per core (measured):\n{}",
                                 done, skip_, num_threads(), peak_gflops_per_core(), table));
  }

  std::int64_t steps_, skip_, seen_ = 0;
  std::function<void(const std::string&)> sink_;
  std::unique_ptr<Profiler> profiler_;
};

}  // namespace

CallbackPtr profile_steps(std::int64_t steps, std::function<void(const std::string&)> sink, std::int64_t skip) {
  return std::make_shared<ProfileSteps>(steps, std::move(sink), skip);
}
CallbackPtr time_limit(double minutes) { return std::make_shared<TimeLimit>(minutes); }
CallbackPtr moving_average(std::shared_ptr<optim::ExponentialMovingAverage> ema, bool use_num_updates) {
  return std::make_shared<MovingAverage>(std::move(ema), use_num_updates);
}
CallbackPtr progress_bar() { return std::make_shared<ProgressBar>(); }
CallbackPtr early_stopping(std::string monitor, int patience, double min_delta, bool restore_best_weights) {
  return std::make_shared<EarlyStopping>(std::move(monitor), patience, min_delta, restore_best_weights);
}
CallbackPtr learning_rate_scheduler(std::function<double(int, double)> fn) {
  return std::make_shared<LearningRateScheduler>(std::move(fn));
}
CallbackPtr model_checkpoint(std::string dir, int every_epochs, std::int64_t every_steps, int max_to_keep,
                             std::map<std::string, std::string> metadata, io::TensorMap extra) {
  return std::make_shared<ModelCheckpoint>(std::move(dir), every_epochs, every_steps, max_to_keep, std::move(metadata),
                                           std::move(extra));
}
CallbackPtr metrics_logger(std::string path) { return std::make_shared<MetricsLogger>(std::move(path)); }
CallbackPtr nan_guard() { return std::make_shared<NanGuard>(); }

}  // namespace callbacks
}  // namespace synapse::train
