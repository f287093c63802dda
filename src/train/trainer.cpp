// The fit loop.
#include <cmath>

#include "core/check.h"
#include "core/splitmix.h"
#include "data/rows.h"
#include "synapse/autograd.h"
#include "synapse/data.h"
#include "synapse/dist.h"
#include "synapse/train.h"

namespace synapse::train {

namespace {

bool all_finite(const Tensor& t) {
  if (t.dtype() != DType::Float32) return true;
  const float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// Classification outputs [N, C] with integer [N] or one-hot [N, C] targets (C > 1: a single output
// column is a regression) get an accuracy.
bool is_classification(const Tensor& out, const Tensor& target) {
  return out.ndim() == 2 &&
         ((target.ndim() == 1 && !is_floating(target.dtype())) || (target.shape() == out.shape() && out.dim(1) > 1));
}

}  // namespace

Trainer::Trainer(nn::Module& model, optim::Optimizer& opt, Loss loss, FitOptions options)
    : model_(model), opt_(opt), loss_(std::move(loss)), options_(std::move(options)) {
  SYN_CHECK(options_.batch_size > 0, "fit: batch_size must be positive, got {}", options_.batch_size);
  SYN_CHECK(options_.epochs >= 0, "fit: epochs must not be negative, got {}", options_.epochs);
  SYN_CHECK(options_.precision != MatmulPrecision::bf16 || cpu_supports_bf16(),
            "fit: FitOptions::precision is bf16, but this CPU lacks AVX512-BF16 (avx512_bf16), which bf16 matrix "
            "products need; use MatmulPrecision::fp32");
}

Trainer::~Trainer() = default;

bool Trainer::parallel() const { return options_.distributed && dist::size() > 1; }

void Trainer::stop(std::string reason) {
  stop_ = true;
  history_.stopped_early = true;
  history_.stop_reason = std::move(reason);
}

void Trainer::diverged(std::int64_t batch, float loss, const Tensor& xb, const Tensor& yb) {
  std::string where;
  if (!all_finite(xb)) {
    where = "the input batch itself contains NaN or Inf";
  } else {
    for (const auto& [name, p] : model_.named_parameters()) {
      if (!all_finite(p)) {
        where = fmt::format("parameter '{}' contains NaN or Inf", name);
        break;
      }
    }
  }
  if (where.empty()) {
    // Replay the batch with every op's output checked: the error names the first op (and layer) to
    // produce a non-finite value.
    try {
      NoGradGuard no_grad;
      AnomalyModeGuard anomaly;
      loss_(model_(xb), yb);
      where = "the non-finite value could not be reproduced";
    } catch (const Error& e) {
      where = e.what();
    }
  }
  synapse::detail::fail("training diverged at epoch {}, batch {}: the loss is {} ({}). Usual causes: inputs that are "
               "not normalised (scale pixels to [0, 1], z-score tabular features) or a learning rate that is too "
               "high",
               epoch_ + 1, batch + 1, std::isnan(loss) ? "NaN" : (loss > 0 ? "Inf" : "-Inf"), where);
}

std::int64_t Trainer::steps_done_in_epoch() const {
  return std::clamp<std::int64_t>(opt_.iterations() - static_cast<std::int64_t>(epoch_) * steps_per_epoch_, 0,
                                  steps_per_epoch_);
}

std::int64_t Trainer::steps_this_epoch() const {
  std::int64_t n = steps_per_epoch_ - steps_done_in_epoch();
  if (options_.max_steps > 0) n = std::clamp<std::int64_t>(options_.max_steps - opt_.iterations(), 0, n);
  return n;
}

int Trainer::planned_epochs() const {
  if (options_.max_steps <= 0 || steps_per_epoch_ <= 0) return options_.epochs;
  const std::int64_t needed = (options_.max_steps + steps_per_epoch_ - 1) / steps_per_epoch_;
  return static_cast<int>(std::min<std::int64_t>(options_.epochs, needed));
}

void Trainer::check_explosion(const Logs& logs) {
  auto it = logs.find("loss");
  if (warned_explosion_ || first_loss_ <= 0.0 || it == logs.end()) return;
  if (!(it->second > kDivergenceFactor * first_loss_)) return;
  warned_explosion_ = true;
  const double lr = opt_.learning_rate();
  std::string msg = fmt::format(
      "epoch {}: the training loss rose from {:.4g} (first batch) to {:.4g} (epoch mean): training is diverging "
      "without reaching NaN. The learning rate ({:.3g}) is probably too high: try one 10x or 100x smaller",
      epoch_ + 1, first_loss_, it->second, lr);
  if (options_.verbose > 0) fmt::print(stderr, "warning: {}\n", msg);
  history_.warnings.push_back(std::move(msg));
}

Logs Trainer::run_epoch(const Tensor& x, const Tensor& y) {
  using ::synapse::detail::splitmix64;
  const std::int64_t n = x.dim(0);
  const std::uint64_t epoch = static_cast<std::uint64_t>(epoch_);
  // On resume, skip the batches of this epoch that the optimizer has already taken.
  const std::int64_t first = steps_done_in_epoch();

  // The data pipeline's one batching path: a full shuffle of the rows with a seed of (seed, epoch), so
  // a resumed run sees the same order; rows gathered into batches; prepared on a background thread
  // (prefetch) while the current step runs.
  data::Dataset batches = data::Dataset::from_tensors({x, y});
  if (options_.shuffle) batches = batches.shuffle(n, splitmix64(options_.seed ^ splitmix64(epoch)), false);
  // Data-parallel: this rank's positions r, r + N, ... of the epoch's order (the same on every rank).
  if (dist_) batches = dist::shard(batches);
  batches = batches.batch(options_.batch_size);
  if (first > 0) batches = batches.skip(first);
  if (options_.augment) {  // a seed of (seed, epoch, batch) for each batch
    auto batch_index = std::make_shared<std::uint64_t>(static_cast<std::uint64_t>(first));
    batches = batches.map([augment = options_.augment, seed = options_.seed, epoch, batch_index](data::Example e) {
      e[0] = augment(e[0], splitmix64(splitmix64(seed ^ epoch) ^ (*batch_index)++));
      return e;
    });
  }
  batches = batches.prefetch(2);
  auto it = batches.iterate();

  model_.train();
  double loss_sum = 0.0;
  std::int64_t seen = 0;
  Accuracy acc;
  bool classification = false;
  Logs logs;
  for (std::int64_t b = first; b < steps_per_epoch_; ++b) {
    if (stop_) break;  // a callback's on_batch_end asked to stop (e.g. a time limit)
    if (options_.max_steps > 0 && opt_.iterations() >= options_.max_steps) {
      stop(fmt::format("reached max_steps = {}", options_.max_steps));
      history_.stopped_early = false;
      break;
    }
    for (auto& cb : options_.callbacks) cb->on_batch_begin(*this, b);
    const std::optional<data::Example> batch = it->next();
    const Tensor& xb = (*batch)[0];
    const Tensor& yb = (*batch)[1];
    const Tensor out = model_(xb);
    Tensor loss = loss_(out, yb);
    if (options_.regularization) loss = loss + options_.regularization();
    const float lv = loss.item<float>();
    if (!std::isfinite(lv)) diverged(b, lv, xb, yb);
    if (first_loss_ == 0.0) first_loss_ = static_cast<double>(lv);
    loss.backward();
    if (dist_) {
      dist_->step();
    } else {
      opt_.step();
    }
    opt_.zero_grad();

    loss_sum += static_cast<double>(lv) * static_cast<double>(xb.dim(0));
    seen += xb.dim(0);
    classification = is_classification(out, yb);
    if (classification) acc.update(out, yb);
    logs["loss"] = loss_sum / static_cast<double>(seen);
    if (classification) logs["accuracy"] = acc.result();
    for (auto& cb : options_.callbacks) cb->on_batch_end(*this, b, logs);
    // A stop asked on any rank (a time limit runs out at different steps) stops every rank here.
    if (dist_ && dist::allreduce(std::vector<double>{stop_ ? 1.0 : 0.0})[0] > 0 && !stop_)
      stop("another rank stopped training");
  }
  if (dist_) {  // the epoch's logs over every rank's examples
    const double correct = classification ? std::round(acc.result() * static_cast<double>(seen)) : 0.0;
    const std::vector<double> sums = dist::allreduce({loss_sum, static_cast<double>(seen), correct});
    if (sums[1] > 0) {
      logs["loss"] = sums[0] / sums[1];
      if (classification) logs["accuracy"] = sums[2] / sums[1];
    }
  }
  logs["lr"] = opt_.learning_rate();
  return logs;
}

History Trainer::fit(const Tensor& x, const Tensor& y) {
  SYN_CHECK(x.ndim() >= 1 && y.ndim() >= 1 && x.dim(0) == y.dim(0),
            "fit: inputs {} and targets {} hold different numbers of examples", to_string(x.shape()), to_string(y.shape()));
  SYN_CHECK(x.dim(0) > 0, "fit: no training examples");
  const MatmulPrecisionGuard precision(options_.precision);
  dist_.reset();
  dist_stats_.reset();
  struct EndDistributed {  // on every way out of fit, keep the statistics and drop the hook
    Trainer& t;
    ~EndDistributed() {
      if (t.dist_) t.dist_stats_ = t.dist_->stats();
      t.dist_.reset();
    }
  } end_distributed{*this};
  std::int64_t rows = x.dim(0);
  if (parallel()) {  // everyone starts where rank 0 is (fresh or resumed), then averages gradients
    dist::broadcast_parameters(model_);
    dist::broadcast_optimizer_state(opt_);
    options_.initial_epoch = static_cast<int>(dist::broadcast(options_.initial_epoch));
    dist_ = std::make_unique<dist::DistributedOptimizer>(opt_);
    SYN_CHECK(rows >= dist::size(), "fit: {} training examples cannot give each of {} ranks one", rows, dist::size());
    rows /= dist::size();
  }
  steps_per_epoch_ = (rows + options_.batch_size - 1) / options_.batch_size;
  history_ = History{};
  stop_ = false;
  first_loss_ = 0.0;
  warned_explosion_ = false;
  for (auto& cb : options_.callbacks) cb->on_train_begin(*this);
  for (epoch_ = options_.initial_epoch; epoch_ < options_.epochs && !stop_; ++epoch_) {
    if (options_.max_steps > 0 && opt_.iterations() >= options_.max_steps) break;
    for (auto& cb : options_.callbacks) cb->on_epoch_begin(*this, epoch_);
    Logs logs = run_epoch(x, y);
    if (options_.validation) {
      for (auto& cb : options_.callbacks) cb->on_test_begin(*this);
      const Logs v = evaluate(options_.validation->first, options_.validation->second, options_.eval_batch_size);
      for (const auto& [k, val] : v) logs["val_" + k] = val;
      for (auto& cb : options_.callbacks) cb->on_test_end(*this);
    }
    for (auto& cb : options_.callbacks) cb->on_epoch_end(*this, epoch_, logs);
    check_explosion(logs);
    history_.epochs.push_back(logs);
  }
  for (auto& cb : options_.callbacks) cb->on_train_end(*this);
  return history_;
}

Logs Trainer::evaluate(const Tensor& x, const Tensor& y, int batch_size) {
  SYN_CHECK(x.ndim() >= 1 && y.ndim() >= 1 && x.dim(0) == y.dim(0),
            "evaluate: inputs {} and targets {} hold different numbers of examples", to_string(x.shape()),
            to_string(y.shape()));
  SYN_CHECK(batch_size > 0, "evaluate: batch_size must be positive, got {}", batch_size);
  const MatmulPrecisionGuard precision(options_.precision);
  const bool was_training = model_.is_training();
  model_.eval();
  double loss_sum = 0.0;
  Accuracy acc;
  bool classification = false;
  // Data-parallel: each rank evaluates its own contiguous share of the rows, the sums are combined.
  std::int64_t begin = 0, end = x.dim(0);
  if (parallel()) {
    begin = x.dim(0) * dist::rank() / dist::size();
    end = x.dim(0) * (dist::rank() + 1) / dist::size();
  }
  const Tensor xs = data::internal::rows_view(x, begin, end);
  for_each_batch(xs, batch_size, std::ref(model_), [&](const Tensor& out, std::int64_t lo, std::int64_t hi) {
    const Tensor yb = data::internal::rows_view(y, begin + lo, begin + hi);
    loss_sum += static_cast<double>(loss_(out, yb).item<float>()) * static_cast<double>(hi - lo);
    classification = is_classification(out, yb);
    if (classification) acc.update(out, yb);
  });
  model_.train(was_training);
  if (parallel()) {
    const std::vector<double> sums =
        dist::allreduce({loss_sum, std::round(acc.result() * static_cast<double>(end - begin)), classification ? 1.0 : 0.0});
    Logs logs{{"loss", sums[0] / static_cast<double>(x.dim(0))}};
    if (sums[2] > 0) logs["accuracy"] = sums[1] / static_cast<double>(x.dim(0));
    return logs;
  }
  Logs logs{{"loss", loss_sum / static_cast<double>(x.dim(0))}};
  if (classification) logs["accuracy"] = acc.result();
  return logs;
}

void for_each_batch(const Tensor& x, std::int64_t batch_size, const std::function<Tensor(const Tensor&)>& forward,
                    const std::function<void(const Tensor&, std::int64_t, std::int64_t)>& consume) {
  SYN_CHECK(x.defined() && x.ndim() >= 1, "for_each_batch: inputs must have a batch dimension");
  SYN_CHECK(batch_size > 0, "for_each_batch: batch_size must be positive, got {}", batch_size);
  NoGradGuard no_grad;
  const std::int64_t n = x.dim(0);
  for (std::int64_t lo = 0; lo < n; lo += batch_size) {
    const std::int64_t hi = std::min<std::int64_t>(n, lo + batch_size);
    consume(forward(data::internal::rows_view(x, lo, hi)), lo, hi);
  }
}

Tensor predict(nn::Module& model, const Tensor& x, std::int64_t batch_size) {
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> parts;
  try {
    for_each_batch(x, batch_size, std::ref(model), [&](const Tensor& out, std::int64_t, std::int64_t) { parts.push_back(out); });
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  SYN_CHECK(!parts.empty(), "predict: no inputs (shape {})", to_string(x.shape()));
  return parts.size() == 1 ? parts[0] : concat(parts, 0);
}

History fit(nn::Module& model, optim::Optimizer& opt, Loss loss, const Tensor& inputs, const Tensor& targets,
            FitOptions options) {
  Trainer t(model, opt, std::move(loss), std::move(options));
  return t.fit(inputs, targets);
}

}  // namespace synapse::train
