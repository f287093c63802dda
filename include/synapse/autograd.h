// Reverse-mode automatic differentiation.
//
// Every op applied to a tensor that requires gradients records a Node (the op, its attributes, the
// inputs and outputs it needs) — the tape. `loss.backward()` or `grad(loss, vars)` walks it in reverse
// topological order, calling each op's gradient function and summing gradients that meet (+=).
// The tape is freed after a backward pass unless it is retained.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "synapse/op.h"
#include "synapse/tensor.h"

namespace synapse {
namespace autograd {

// One recorded op application.
class Node {
 public:
  Node(const OpDef& op, Attrs attrs, std::vector<Tensor> inputs, std::vector<Tensor> outputs);
  const OpDef& op() const { return *op_; }
  const Attrs& attrs() const { return attrs_; }
  // The inputs as recorded (with their own history, so gradients can flow on).
  const std::vector<Tensor>& inputs() const { return inputs_; }
  // Detached aliases of the outputs (no reference cycle back to this node).
  const std::vector<Tensor>& outputs() const { return outputs_; }
  std::size_t num_outputs() const { return outputs_.size(); }
  // The outputs with their own history where they are still alive (for higher-order gradients).
  std::vector<Tensor> live_outputs() const;
  // Drops the saved tensors; backward through this node afterwards throws.
  void release();
  bool released() const { return released_; }

 private:
  const OpDef* op_;
  Attrs attrs_;
  std::vector<Tensor> inputs_;
  std::vector<Tensor> outputs_;
  std::vector<std::weak_ptr<TensorImpl>> live_;
  bool released_ = false;
  friend void record(const OpDef&, const Attrs&, const std::vector<Tensor>&, std::vector<Tensor>&);
};

void record(const OpDef& op, const Attrs& attrs, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);

// Gradient-ready hooks: during Tensor::backward, as soon as a leaf's gradient is final (every op that
// feeds it has run its gradient), the gradient is stored in leaf.grad() and each hook is called with
// the leaf, on the thread running backward, while the rest of the pass continues afterwards. A
// layer above uses this to start communicating gradients before backward ends (dist::
// DistributedOptimizer, as PyTorch DDP's autograd hooks). Returns an id for remove_grad_ready_hook.
// grad() (the functional form) calls no hook.
using GradReadyHook = std::function<void(const Tensor& leaf)>;
int add_grad_ready_hook(GradReadyHook hook);
void remove_grad_ready_hook(int id);

}  // namespace autograd

// Is autograd recording? (Per thread.)
bool grad_enabled();
void set_grad_enabled(bool on);

// Inference scope: nothing is recorded while it lives (like torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Records inside this scope even when an outer NoGradGuard is active.
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

struct GradOptions {
  // Keep the tape so backward can run through it again.
  bool retain_graph = false;
  // Record the backward pass itself, for higher-order gradients (implies retain_graph).
  bool create_graph = false;
  // Return zeros for inputs the outputs do not depend on, instead of throwing.
  bool allow_unused = false;
};

// Gradients of `output` (a scalar unless `grad_output` is given) with respect to each of `inputs`,
// returned rather than accumulated into .grad() — like tf.GradientTape.gradient or torch.autograd.grad.
std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const GradOptions& opts = {},
                         const Tensor& grad_output = Tensor());

// Anomaly mode: every op's outputs are checked for NaN/Inf, and the first non-finite value throws an
// Error naming the op, the output and its inputs' shapes — the way to find where NaNs come from.
// (anomaly_mode() and set_anomaly_mode() are declared with the dispatcher, in op.h.)
class AnomalyModeGuard {
 public:
  explicit AnomalyModeGuard(bool on = true) : prev_(anomaly_mode()) { set_anomaly_mode(on); }
  ~AnomalyModeGuard() { set_anomaly_mode(prev_); }
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace synapse
