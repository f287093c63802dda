// Losses (output, target) -> scalar batch mean, and metrics.
#include <cmath>

#include "core/check.h"
#include "synapse/ops.h"
#include "synapse/train.h"

namespace synapse::train {
namespace losses {

namespace {
// Probabilities are clipped away from 0 and 1 before the log, as Keras does (epsilon 1e-7).
constexpr float kEps = 1e-7f;

void check_batch(const char* loss, const Tensor& output, const Tensor& target) {
  SYN_CHECK(output.ndim() >= 1 && target.ndim() >= 1 && output.dim(0) == target.dim(0),
            "{}: output {} and target {} have different batch sizes", loss, to_string(output.shape()),
            to_string(target.shape()));
}
}  // namespace

Loss sparse_categorical_crossentropy(bool from_logits, std::optional<std::int64_t> ignore_class) {
  return [from_logits, ignore_class](const Tensor& output, const Tensor& target) {
    check_batch("sparse_categorical_crossentropy", output, target);
    Tensor logits = from_logits ? output : log(clip(output, kEps, 1.0f - kEps));
    if (!ignore_class) return mean(sparse_softmax_cross_entropy(logits, target));
    // Ignored targets are replaced by class 0 (so any ignore_class value is a valid label) and
    // multiplied by a zero weight; the sum is divided by the number of counted targets.
    const Tensor ignored = equal(target, full({}, static_cast<double>(*ignore_class), target.dtype()));
    const Tensor labels = where(ignored, zeros({}, target.dtype()), target);
    const Tensor weight = 1.0f - cast(ignored, DType::Float32);
    const Tensor count = maximum(sum(weight), scalar(1.0f));
    return sum(sparse_softmax_cross_entropy(logits, labels) * weight) / count;
  };
}

Loss categorical_crossentropy(bool from_logits) {
  return [from_logits](const Tensor& output, const Tensor& target) {
    check_batch("categorical_crossentropy", output, target);
    if (from_logits) return mean(softmax_cross_entropy(output, target));
    return mean(-sum(target * log(clip(output, kEps, 1.0f - kEps)), {-1}));
  };
}

Loss binary_crossentropy(bool from_logits) {
  return [from_logits](const Tensor& output, const Tensor& target) {
    check_batch("binary_crossentropy", output, target);
    if (from_logits) return mean(sigmoid_cross_entropy(output, target));
    const Tensor p = clip(output, kEps, 1.0f - kEps);
    return mean(-(target * log(p) + (1.0f - target) * log(1.0f - p)));
  };
}

Loss mean_squared_error() {
  return [](const Tensor& output, const Tensor& target) { return synapse::mean_squared_error(output, target); };
}

Loss mean_absolute_error() {
  return [](const Tensor& output, const Tensor& target) {
    SYN_CHECK(output.shape() == target.shape(), "mean_absolute_error: output {} and target {} differ in shape",
              to_string(output.shape()), to_string(target.shape()));
    return mean(abs(output - target));
  };
}

}  // namespace losses

Tensor l2_regularization(const std::vector<Tensor>& weights, float lambda) {
  SYN_CHECK(!weights.empty(), "l2_regularization: no weights given");
  Tensor total;
  for (const auto& w : weights) {
    Tensor t = sum(square(w));
    total = total.defined() ? total + t : t;
  }
  return total * (0.5f * lambda);
}

// ---- metrics ----
void Mean::update(const Tensor& values, const Tensor&) {
  const float* p = values.data<float>();
  for (std::int64_t i = 0; i < values.numel(); ++i) sum_ += p[i];
  count_ += values.numel();
}

namespace {
// Predicted and true class per example: output [N, C]; target [N] integer or [N, C] one-hot.
void classes(const Tensor& output, const Tensor& target, std::vector<std::int64_t>& pred, std::vector<std::int64_t>& truth) {
  SYN_CHECK(output.ndim() == 2, "accuracy: expected output [N, C], got {}", to_string(output.shape()));
  const Tensor p = argmax(output.detach(), -1);
  pred = p.to_vector<std::int64_t>();
  Tensor t = target.detach();
  if (t.ndim() == 2) t = argmax(t, -1);
  SYN_CHECK(t.ndim() == 1 && t.dim(0) == output.dim(0), "accuracy: target {} does not match output {}",
            to_string(target.shape()), to_string(output.shape()));
  t = cast(t, DType::Int64);
  truth = t.to_vector<std::int64_t>();
}
}  // namespace

void Accuracy::update(const Tensor& output, const Tensor& target) {
  std::vector<std::int64_t> pred, truth;
  classes(output, target, pred, truth);
  for (std::size_t i = 0; i < pred.size(); ++i) correct_ += pred[i] == truth[i];
  total_ += static_cast<std::int64_t>(pred.size());
}

void ConfusionMatrix::update(const Tensor& output, const Tensor& target) {
  std::vector<std::int64_t> pred, truth;
  classes(output, target, pred, truth);
  for (std::size_t i = 0; i < pred.size(); ++i) {
    SYN_CHECK(truth[i] >= 0 && truth[i] < n_ && pred[i] < n_, "confusion_matrix: class {} outside [0, {})", truth[i], n_);
    ++counts_[static_cast<std::size_t>(truth[i] * n_ + pred[i])];
  }
}

double ConfusionMatrix::result() const {
  std::int64_t correct = 0, total = 0;
  for (int i = 0; i < n_; ++i)
    for (int j = 0; j < n_; ++j) {
      total += count(i, j);
      if (i == j) correct += count(i, j);
    }
  return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

std::int64_t ConfusionMatrix::count(int truth, int predicted) const {
  return counts_[static_cast<std::size_t>(truth * n_ + predicted)];
}

std::vector<double> ConfusionMatrix::per_class_accuracy() const {
  std::vector<double> acc(static_cast<std::size_t>(n_));
  for (int i = 0; i < n_; ++i) {
    std::int64_t row = 0;
    for (int j = 0; j < n_; ++j) row += count(i, j);
    acc[static_cast<std::size_t>(i)] = row ? static_cast<double>(count(i, i)) / static_cast<double>(row) : 0.0;
  }
  return acc;
}

std::string ConfusionMatrix::to_string() const {
  std::string out = "true\\pred";
  for (int j = 0; j < n_; ++j) out += fmt::format("{:>7}", j);
  out += "   accuracy\n";
  const auto acc = per_class_accuracy();
  for (int i = 0; i < n_; ++i) {
    out += fmt::format("{:>9}", i);
    for (int j = 0; j < n_; ++j) out += fmt::format("{:>7}", count(i, j));
    out += fmt::format("   {:.4f}\n", acc[static_cast<std::size_t>(i)]);
  }
  return out;
}

}  // namespace synapse::train
