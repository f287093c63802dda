// Training: losses, metrics, the fit loop and its callbacks.
//
//   train::FitOptions opts{.epochs = 2, .batch_size = 50};
//   opts.validation = {val_images, val_labels};
//   auto history = train::fit(*model, optimizer, train::losses::sparse_categorical_crossentropy(),
//                             {train_images, train_labels}, opts);
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "synapse/dist.h"
#include "synapse/io.h"
#include "synapse/nn.h"
#include "synapse/optim.h"
#include "synapse/tensor.h"

namespace synapse::train {

// ---- losses: (model output, target) -> scalar mean over the batch ----
using Loss = std::function<Tensor(const Tensor& output, const Tensor& target)>;
namespace losses {
// Integer labels [N] (or [N, T] for a sequence); output logits (from_logits) or probabilities [N, C]
// ([N, T, C]). With ignore_class (Keras' SparseCategoricalCrossentropy(ignore_class=...)), targets equal
// to it neither count in the mean nor get a gradient: the loss is the mean over the other targets (0
// when every target is ignored), e.g. ignore_class = 0 for the <pad> of padded sequences.
Loss sparse_categorical_crossentropy(bool from_logits = true, std::optional<std::int64_t> ignore_class = std::nullopt);
// One-hot or soft labels [N, C].
Loss categorical_crossentropy(bool from_logits = true);
Loss binary_crossentropy(bool from_logits = true);
Loss mean_squared_error();
Loss mean_absolute_error();
}  // namespace losses

// λ · Σ ||w||² / 2 over the given weights (tf.nn.l2_loss summed, times λ), to add to a loss.
Tensor l2_regularization(const std::vector<Tensor>& weights, float lambda);

// ---- metrics: accumulate over batches, report a value ----
class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  virtual void update(const Tensor& output, const Tensor& target) = 0;
  virtual double result() const = 0;
  virtual void reset() = 0;
};
class Mean : public Metric {  // mean of the values passed as `output`
 public:
  explicit Mean(std::string name = "mean") : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void update(const Tensor& values, const Tensor& unused = Tensor()) override;
  double result() const override { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  void reset() override { sum_ = 0; count_ = 0; }
 private:
  std::string name_;
  double sum_ = 0;
  std::int64_t count_ = 0;
};
// argmax(output) == label (integer labels) or == argmax(label) (one-hot labels).
class Accuracy : public Metric {
 public:
  std::string name() const override { return "accuracy"; }
  void update(const Tensor& output, const Tensor& target) override;
  double result() const override { return total_ ? static_cast<double>(correct_) / static_cast<double>(total_) : 0.0; }
  void reset() override { correct_ = total_ = 0; }
 private:
  std::int64_t correct_ = 0, total_ = 0;
};
class ConfusionMatrix : public Metric {
 public:
  explicit ConfusionMatrix(int num_classes) : n_(num_classes), counts_(static_cast<std::size_t>(num_classes * num_classes)) {}
  std::string name() const override { return "confusion_matrix"; }
  void update(const Tensor& output, const Tensor& target) override;  // rows: true class, cols: predicted
  double result() const override;                                      // overall accuracy
  void reset() override;
  std::int64_t count(int truth, int predicted) const;
  std::vector<double> per_class_accuracy() const;
  int num_classes() const { return n_; }
  std::string to_string() const;
 private:
  int n_;
  std::vector<std::int64_t> counts_;
};

// ---- the fit loop ----
// Logs passed to callbacks: "loss", "accuracy", "val_loss", "val_accuracy", "lr", ...
using Logs = std::map<std::string, double>;

class Trainer;

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Trainer&) {}
  virtual void on_train_end(Trainer&) {}
  virtual void on_epoch_begin(Trainer&, int /*epoch*/) {}
  virtual void on_epoch_end(Trainer&, int /*epoch*/, Logs& /*logs*/) {}
  // Around each training step (the batch's index in the epoch); begin comes before the batch is read.
  virtual void on_batch_begin(Trainer&, std::int64_t /*batch*/) {}
  virtual void on_batch_end(Trainer&, std::int64_t /*batch*/, Logs& /*logs*/) {}
  // Around the validation pass of each epoch.
  virtual void on_test_begin(Trainer&) {}
  virtual void on_test_end(Trainer&) {}
};
using CallbackPtr = std::shared_ptr<Callback>;

struct History {
  std::vector<Logs> epochs;       // one entry per finished epoch
  bool stopped_early = false;
  std::string stop_reason;
  // What fit warned about (also printed to stderr unless verbose = 0): e.g. a loss that explodes
  // without becoming NaN, which the divergence check cannot catch.
  std::vector<std::string> warnings;
};

struct FitOptions {
  int epochs = 1;
  int batch_size = 32;
  bool shuffle = true;
  std::uint64_t seed = 0;
  // Validation data {inputs, targets}, evaluated after each epoch.
  std::optional<std::pair<Tensor, Tensor>> validation;
  // Added to the loss each step (e.g. L2 regularisation of chosen weights).
  std::function<Tensor()> regularization;
  // Data augmentation: applied to every training batch's inputs (never to validation or evaluation),
  // on the prefetch thread, with a seed derived from (seed, epoch, batch), so a run and a resumed run
  // see the same batches. E.g. data::random_translate(x, 2, s).
  std::function<Tensor(const Tensor& inputs, std::uint64_t seed)> augment;
  std::vector<CallbackPtr> callbacks;
  // Progress bar on a terminal, plain lines otherwise; 0 = silent.
  int verbose = 1;
  int eval_batch_size = 1000;
  // Resume: the epoch to start from; batches already done in it are skipped, counted from the
  // optimizer's iterations (so a run resumed from a checkpoint replays exactly).
  int initial_epoch = 0;
  // > 0: stop after this many optimizer steps in total (the classic scripts count steps, not epochs).
  std::int64_t max_steps = 0;
  // Matrix products (dense, conv, matmul) in fp32 or bf16 (device.h: bf16 operands, fp32 accumulation;
  // weights, optimizer state and loss stay fp32), for training and evaluate(). bf16 needs AVX512-BF16:
  // the Trainer refuses it on a CPU without.
  MatmulPrecision precision = MatmulPrecision::fp32;
  // Under mpirun (dist::size() > 1, dist.h), fit trains data-parallel: rank 0's weights, optimizer state
  // and initial_epoch are broadcast first (so a rank 0 that resumed from a checkpoint resumes everyone),
  // each rank reads its own shard of every epoch's shuffled order (dist::shard) in batches of
  // batch_size (the global batch is size() x batch_size, as in Horovod), gradients are averaged by a
  // dist::DistributedOptimizer, a stop asked by a callback on any rank stops every rank, and the epoch's
  // logs (and evaluate()'s, over a shard of the rows each) are averaged over the ranks; per-batch logs
  // are the rank's own. Callbacks run on every rank: give the ones that write files or print to rank 0
  // only. false: this rank trains alone even under mpirun.
  bool distributed = true;
};

// Runs the training loop: for each epoch, shuffled batches -> forward -> loss (+ regularization) ->
// backward -> optimizer step; then validation; callbacks at each stage. A non-finite loss stops
// training with an Error naming the epoch, the batch and the first non-finite tensor (see NaNGuard).
// An epoch whose mean training loss ends above kDivergenceFactor times the run's first batch loss
// (finite, but exploding: too high a learning rate) adds a warning naming the epoch and the rate.
class Trainer {
 public:
  Trainer(nn::Module& model, optim::Optimizer& opt, Loss loss, FitOptions options);
  ~Trainer();
  History fit(const Tensor& inputs, const Tensor& targets);
  // Loss and accuracy over a data set, in inference mode, in batches.
  Logs evaluate(const Tensor& inputs, const Tensor& targets, int batch_size = 1000);

  nn::Module& model() { return model_; }
  optim::Optimizer& optimizer() { return opt_; }
  const FitOptions& options() const { return options_; }
  int epoch() const { return epoch_; }
  std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Steps of the current epoch the optimizer has already taken (a resumed run skips them).
  std::int64_t steps_done_in_epoch() const;
  // The steps this epoch will run: fewer than steps_per_epoch() when max_steps ends training inside it
  // or a resumed run has done some already (valid from on_epoch_begin on).
  std::int64_t steps_this_epoch() const;
  // The epochs this fit will run at most: fewer than options().epochs when max_steps ends it earlier.
  int planned_epochs() const;
  static constexpr double kDivergenceFactor = 10.0;
  std::int64_t global_step() const { return opt_.iterations(); }
  // A callback asks to stop: from on_batch_end, before the next batch (the epoch's validation and
  // on_epoch_end still run); from on_epoch_end, before the next epoch.
  void stop(std::string reason);
  bool stopping() const { return stop_; }
  History& history() { return history_; }
  // The gradient averaging's statistics of the last fit when it ran data-parallel (null otherwise).
  const dist::DistributedStats* distributed_stats() const { return dist_stats_ ? &*dist_stats_ : nullptr; }

 private:
  bool parallel() const;
  // The gradient averaging during a data-parallel fit (its gradient hook must not outlive the fit: a
  // later backward elsewhere would start reductions the other ranks never match).
  std::unique_ptr<dist::DistributedOptimizer> dist_;
  std::optional<dist::DistributedStats> dist_stats_;
  nn::Module& model_;
  optim::Optimizer& opt_;
  Loss loss_;
  FitOptions options_;
  Logs run_epoch(const Tensor& inputs, const Tensor& targets);
  [[noreturn]] void diverged(std::int64_t batch, float loss, const Tensor& xb, const Tensor& yb);
  void check_explosion(const Logs& logs);
  double first_loss_ = 0.0;  // the first batch's loss of this fit (0: none yet)
  bool warned_explosion_ = false;
  int epoch_ = 0;
  std::int64_t steps_per_epoch_ = 0;
  bool stop_ = false;
  History history_;
};

History fit(nn::Module& model, optim::Optimizer& opt, Loss loss, const Tensor& inputs, const Tensor& targets,
            FitOptions options = {});

// ---- inference in batches: the one evaluation loop (Trainer::evaluate, predict, the CLI, the report) ----
// Runs `forward` on rows [lo, hi) of `inputs` for consecutive batches of `batch_size` rows, without
// recording gradients, and hands each output to `consume(output, lo, hi)`.
void for_each_batch(const Tensor& inputs, std::int64_t batch_size, const std::function<Tensor(const Tensor&)>& forward,
                    const std::function<void(const Tensor& output, std::int64_t lo, std::int64_t hi)>& consume);
// The model's outputs for every row of `inputs` (Keras's model.predict), in inference mode (the
// model's training flag is restored afterwards), computed in batches and concatenated.
Tensor predict(nn::Module& model, const Tensor& inputs, std::int64_t batch_size = 1000);

// ---- training state in a checkpoint ----
// Model state as "model/<name>", optimizer state as "optimizer/<name>", step = optimizer iterations,
// epoch as given, and the default generator's state (dropout, shuffling) in metadata "rng".
io::Checkpoint capture_training_state(const nn::Module& model, const optim::Optimizer* opt, std::int64_t epoch);
// Restores what capture_training_state saved (the optimizer part only when `opt` is given). Errors name
// the missing tensor or the shape mismatch — e.g. a checkpoint of another model.
void restore_training_state(const io::Checkpoint& ckpt, nn::Module& model, optim::Optimizer* opt);

// ---- callbacks ----
namespace callbacks {
// Steps, ETA, running loss and accuracy; redraws in place on a terminal, one line per epoch otherwise.
CallbackPtr progress_bar();
// Stops when `monitor` ("val_loss", "val_accuracy", ...) has not improved by min_delta for `patience`
// epochs; restores the best weights when asked.
CallbackPtr early_stopping(std::string monitor = "val_loss", int patience = 3, double min_delta = 0.0,
                           bool restore_best_weights = true);
// Sets the learning rate at the start of each epoch: lr = fn(epoch, current lr).
CallbackPtr learning_rate_scheduler(std::function<double(int, double)> fn);
// Saves model + optimizer + step + epoch every `every_epochs` epochs (and/or `every_steps` steps)
// through io::CheckpointManager.
// `metadata` is stored in every checkpoint (e.g. {"model": "cnn"}, so the CLI can rebuild the model);
// `extra` are live tensors saved under their names beside the training state (e.g. EMA shadows as
// "ema/<name>"), read at each save.
CallbackPtr model_checkpoint(std::string dir, int every_epochs = 1, std::int64_t every_steps = 0, int max_to_keep = 5,
                             std::map<std::string, std::string> metadata = {}, io::TensorMap extra = {});
// Stops training once `minutes` of wall time have passed since fit began: after the current batch,
// with that epoch's validation and callbacks (History::stop_reason says so; not counted as early).
CallbackPtr time_limit(double minutes);
// Appends one line per epoch with every log value: CSV (header first) or JSON lines by extension.
CallbackPtr metrics_logger(std::string path);
// After each batch, checks the loss and every parameter and gradient; on the first non-finite value
// stops with an Error naming epoch, batch and tensor (and suggests normalising the inputs).
CallbackPtr nan_guard();
// Updates a weight moving average after every step (num_updates = the global step) and validates with
// the averaged weights, as the classic MNIST MLP does.
CallbackPtr moving_average(std::shared_ptr<optim::ExponentialMovingAverage> ema, bool use_num_updates = true);
// TensorBoard logs (synapse/tensorboard.h), laid out as Keras' TensorBoard callback does so the two runs
// overlay in one chart: logdir/train/events... with epoch_loss, epoch_accuracy, epoch_learning_rate per
// epoch, batch_loss and batch_accuracy every `update_every_steps` steps (0: none), a histogram of every
// parameter per epoch (`histograms`) and once the model's graph, traced op by op and grouped by layer
// (`graph`, input batch shape `input_shape`); logdir/validation/events... with epoch_loss and
// epoch_accuracy. Flushed every epoch.
CallbackPtr tensorboard(std::string logdir, std::int64_t update_every_steps = 100, bool histograms = true,
                        bool graph = true, Shape input_shape = {-1, 28, 28, 1});
// Profiles `steps` training steps after skipping the first `skip` of this fit (warm-up: caches,
// allocator, thread pool): a Profiler (synapse/profile.h) collects around them, and its table (ms per
// step and GFLOP/s per op, % of the CPU's measured peak on all threads) goes to `sink`. A fit that ends
// sooner reports the steps it profiled.
CallbackPtr profile_steps(std::int64_t steps, std::function<void(const std::string&)> sink, std::int64_t skip = 5);
}  // namespace callbacks

}  // namespace synapse::train
