// Optimizers, learning-rate schedules, gradient clipping and weight averaging, with the update rules
// of TensorFlow/Keras (tf.keras.optimizers, TF 2.11+). State is per parameter and named
// ("dense/kernel/m"), so it checkpoints by name.
//
//   optim::Adam opt(model->named_trainable_parameters(), {.learning_rate = 1e-3});
//   loss.backward(); opt.step(); opt.zero_grad();
//
// Updates write the parameters' storage in place (outside autograd), as fused, vectorised loops over
// the raw floats; after the first step (which creates the slots) a step allocates nothing.
//
// Deliberate differences from Keras, all documented where they apply:
//  - Clipping: Keras accepts only one of clipvalue / global_clipnorm; here both may be set, and the
//    value clip is applied first. Keras' per-variable `clipnorm` is not offered.
//  - SGD without momentum keeps no "momentum" slot (Keras creates a zero one that never matters).
//  - Scalar coefficients (bias corrections, 1 - rho, ...) are computed in double and then rounded to
//    float once; Keras computes them in float32. Results differ in the last bit at most.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "synapse/graph.h"
#include "synapse/tensor.h"

namespace synapse::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// ---- learning-rate schedules: lr as a function of the optimizer step (0-based) ----
// The optimizer evaluates its schedule at iterations() before the update, as Keras does.
class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double operator()(std::int64_t step) const = 0;
};
// lr · rate^(step / decay_steps), the exponent floored when staircase (keras ExponentialDecay).
std::shared_ptr<Schedule> exponential_decay(double lr, std::int64_t decay_steps, double rate, bool staircase = false);
// values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i],
// values.back() after the last boundary (keras PiecewiseConstantDecay); values has one more entry.
std::shared_ptr<Schedule> piecewise_constant(std::vector<std::int64_t> boundaries, std::vector<double> values);
// lr · ((1 - alpha) · 0.5 · (1 + cos(pi · min(step, decay_steps) / decay_steps)) + alpha) (keras CosineDecay).
std::shared_ptr<Schedule> cosine_decay(double lr, std::int64_t decay_steps, double alpha = 0.0);
// lr · factor^floor(step / step_size).
std::shared_ptr<Schedule> step_decay(double lr, std::int64_t step_size, double factor);

// ---- gradient clipping ----
struct Clipping {
  double clip_value = 0.0;  // > 0: each gradient element clipped to [-v, v] (first)
  double clip_norm = 0.0;   // > 0: all gradients scaled by clip_norm / max(global_norm, clip_norm)
};
// tf.clip_by_global_norm: replaces each (defined) gradient by g · clip_norm / max(global_norm, clip_norm)
// and returns the global norm sqrt(Σ ||g||²) before clipping. A non-finite global norm makes every
// gradient NaN, as in TensorFlow. The gradients are new tensors: the caller's storage is not touched.
double clip_by_global_norm(std::vector<Tensor>& grads, double clip_norm);
// tf.clip_by_value to [-clip_value, clip_value]; also returns new tensors.
void clip_by_value(std::vector<Tensor>& grads, double clip_value);

// ---- optimizers ----
class Optimizer {
 public:
  // `type` names the optimizer in messages ("Adam"). Parameters: float32 leaf tensors that require
  // gradients, with unique names.
  Optimizer(std::string type, NamedTensors params, double learning_rate);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (.grad(); parameters without one are skipped):
  // clipping (clip_value, then the global norm over the gradients present), lr from the schedule at
  // the current step, the update rule, then step += 1. Gradients are validated before anything changes.
  void step();
  // Same, with gradients given explicitly, one per parameter in order (undefined = skip).
  void apply_gradients(const std::vector<Tensor>& grads);
  void zero_grad();

  double learning_rate() const;  // at the current step
  void set_learning_rate(double lr);  // replaces a schedule by a constant
  void set_schedule(std::shared_ptr<Schedule> s);
  std::int64_t iterations() const { return step_; }
  Clipping clipping;
  // Global gradient norm of the last step when clip_norm was active (before clipping), else -1.
  double last_global_norm() const { return last_norm_; }

  const std::string& type() const { return type_; }
  const NamedTensors& params() const { return params_; }
  // Slots as "param_name/slot" (live handles to the optimizer's tensors: clone them for a snapshot),
  // plus "iterations" (int64 scalar) and "learning_rate" (float32 scalar, the current value).
  std::map<std::string, Tensor> state_dict() const;
  // Copies slots into the optimizer's tensors and restores the step, so training resumes exactly.
  // strict: every slot and "iterations" must be present and no unknown names; otherwise a subset is
  // fine and unknown names are ignored. Throws naming the missing or unexpected name, or the tensor
  // whose shape/dtype differs. "learning_rate" is optional and only restored when no schedule is set.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  // Per-parameter state an optimizer keeps, with its initial value; created on first use.
  struct SlotSpec {
    std::string name;
    float initial = 0.0f;
  };
  virtual std::vector<SlotSpec> slot_specs() const = 0;

  // How each gradient element is prepared before the update rule sees it: clipped to [-clip, clip],
  // then multiplied by the global-norm factor. Inline, so the update loops stay fused and vectorised
  // (NaN passes through).
  struct GradPrep {
    float clip = std::numeric_limits<float>::infinity();
    float scale = 1.0f;
    float operator()(float g) const { return std::min(std::max(g, -clip), clip) * scale; }
  };
  struct StepInfo {
    double lr;       // learning rate of this step
    std::int64_t t;  // 1-based step number (iterations() + 1), for bias corrections
    GradPrep prep;
  };
  // Updates `param` in place (its storage) from `grad` (same shape, float32; apply s.prep to each
  // element); `slots` holds this parameter's state in the order of slot_specs().
  virtual void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const StepInfo& s) = 0;

 private:
  void build_slots() const;
  void apply(const std::vector<Tensor>& grads);

  std::string type_;
  NamedTensors params_;
  mutable std::vector<std::vector<Tensor>> slots_;  // [param][slot], created on first use
  mutable std::vector<SlotSpec> specs_;
  double lr_;
  std::shared_ptr<Schedule> schedule_;
  std::int64_t step_ = 0;
  double last_norm_ = -1.0;
  std::vector<Tensor> grads_;  // step()'s gradient list, kept so a step does not allocate
};

struct SGDOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;  // in [0, 1]
  bool nesterov = false;
};
// Keras rule: v = momentum·v - lr·g; p += v (nesterov: p += momentum·v - lr·g). Slot "momentum" (when
// momentum > 0).
class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, SGDOptions o = {});
 protected:
  std::vector<SlotSpec> slot_specs() const override;
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& s, const StepInfo& info) override;
 private:
  SGDOptions o_;
};

struct AdagradOptions {
  double learning_rate = 0.001;
  double initial_accumulator = 0.1;
  double epsilon = 1e-7;
};
// Keras 2.11+ rule: acc += g²; p -= lr·g / sqrt(acc + eps). (The legacy optimizer and the Adagrad
// paper put eps outside the root, lr·g / (sqrt(acc) + eps); with acc >= 0.1 the two differ by ~1e-7
// relative.) Slot "accumulator".
class Adagrad : public Optimizer {
 public:
  Adagrad(NamedTensors params, AdagradOptions o = {});
 protected:
  std::vector<SlotSpec> slot_specs() const override;
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& s, const StepInfo& info) override;
 private:
  AdagradOptions o_;
};

struct AdadeltaOptions {
  double learning_rate = 0.001;
  double rho = 0.95;
  double epsilon = 1e-7;
};
// Keras rule: Eg² = rho·Eg² + (1-rho)·g²; d = sqrt(Ed² + eps) / sqrt(Eg² + eps) · g;
// Ed² = rho·Ed² + (1-rho)·d²; p -= lr·d. Slots "accumulated_grad", "accumulated_delta_var".
class Adadelta : public Optimizer {
 public:
  Adadelta(NamedTensors params, AdadeltaOptions o = {});
 protected:
  std::vector<SlotSpec> slot_specs() const override;
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& s, const StepInfo& info) override;
 private:
  AdadeltaOptions o_;
};

struct RMSPropOptions {
  double learning_rate = 0.001;
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
};
// Keras rule: v = rho·v + (1-rho)·g²; centered: mg = rho·mg + (1-rho)·g, denom = v - mg² + eps, else
// denom = v + eps; inc = lr·g / sqrt(denom); with momentum: mom = momentum·mom + inc, p -= mom; else
// p -= inc. (eps inside the root, as Keras.) Slots "velocity", "momentum" (momentum > 0),
// "average_gradient" (centered).
class RMSProp : public Optimizer {
 public:
  RMSProp(NamedTensors params, RMSPropOptions o = {});
 protected:
  std::vector<SlotSpec> slot_specs() const override;
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& s, const StepInfo& info) override;
 private:
  RMSPropOptions o_;
};

struct AdamOptions {
  double learning_rate = 0.001;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-7;
  double weight_decay = 0.0;  // > 0: decoupled decay p -= lr·wd·p before the step (= AdamW)
};
// Keras rule: m += (g - m)(1 - b1); v += (g² - v)(1 - b2); lr_t = lr·sqrt(1 - b2^t) / (1 - b1^t);
// p -= lr_t·m / (sqrt(v) + eps). Note the epsilon placement: eps is added to the root of the *raw*
// v, i.e. it is the paper's "epsilon hat" (Kingma & Ba, end of section 2); in the bias-corrected form
// the denominator is sqrt(v̂) + eps / sqrt(1 - b2^t), not sqrt(v̂) + eps as in PyTorch. Slots "m", "v".
// With weight_decay > 0, p -= lr·wd·p first (as every Keras 2.11+ optimizer's weight_decay does).
class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, AdamOptions o = {});
 protected:
  Adam(std::string type, NamedTensors params, AdamOptions o);
  std::vector<SlotSpec> slot_specs() const override;
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& s, const StepInfo& info) override;
  AdamOptions o_;
};

// AdamW's own options, so that {.learning_rate = 1e-3} keeps Keras' default weight_decay 0.004.
struct AdamWOptions {
  double learning_rate = 0.001;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-7;
  double weight_decay = 0.004;
};
// Keras AdamW: p -= lr·wd·p (decoupled, with the step's lr, applied to every parameter that has a
// gradient), then the Adam step above.
class AdamW : public Adam {
 public:
  AdamW(NamedTensors params, AdamWOptions o = {});
};

// By name: "sgd", "momentum" (SGD, momentum 0.9), "nesterov" (SGD, momentum 0.9, nesterov), "adagrad",
// "adadelta", "rmsprop", "adam", "adamw" (case-insensitive), other options at their defaults; throws
// listing the known names.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, NamedTensors params, double learning_rate);

// ---- L-BFGS (torch.optim.LBFGS) ----
// A quasi-Newton optimizer for full-batch problems (style transfer, small exact fits). Unlike the
// optimizers above it re-evaluates the loss inside a step, so step() takes a closure that zeroes the
// gradients, computes the loss, calls backward() and returns the loss:
//
//   optim::LBFGS opt({{"image", image}}, {.max_iterations = 20});
//   double loss = opt.step([&] { opt.zero_grad(); Tensor l = loss_of(image); l.backward(); return l; });
//
// Each step() runs up to max_iterations L-BFGS iterations (two-loop recursion over the last
// history_size correction pairs; the same iteration minimize_lbfgs in solvers.h runs, src/optim/
// lbfgs_core.h) with at most max_evaluations closure calls, and stops early when max |gradient| <=
// tolerance_grad, or when the step (max |Δx|) or the loss change is below tolerance_change. The line
// search is strong Wolfe (c1, c2; cubic interpolation, as PyTorch's line_search_fn="strong_wolfe") or
// backtracking (Armijo condition c1, halving from the full step). PyTorch without a line search takes
// fixed steps of lr instead; here learning_rate is the first trial step of each line search (the first
// iteration's direction is the gradient scaled to unit length). The history persists across step()
// calls. Parameters: float32 leaf tensors, contiguous, unique names; a parameter the closure's
// backward does not reach counts as a zero gradient. Values are kept as float32 (as the parameters),
// dot products accumulated in double.
enum class LineSearch { StrongWolfe, Backtracking };
struct LBFGSOptions {
  double learning_rate = 1.0;
  int max_iterations = 20;     // per step()
  int max_evaluations = 0;     // closure calls per step(); 0: max_iterations * 5 / 4 (PyTorch's default)
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  int history_size = 100;
  LineSearch line_search = LineSearch::StrongWolfe;
  double c1 = 1e-4, c2 = 0.9;  // sufficient decrease, curvature (strong Wolfe only)
};
class LBFGS {
 public:
  LBFGS(NamedTensors params, LBFGSOptions o = {});
  ~LBFGS();
  LBFGS(const LBFGS&) = delete;
  LBFGS& operator=(const LBFGS&) = delete;

  using Closure = std::function<Tensor()>;
  // Runs the iterations and returns the loss at the parameters it leaves (PyTorch returns the loss
  // of the first evaluation instead). Throws naming the parameter when a gradient has the wrong
  // shape, or when the first loss is not a finite scalar.
  double step(const Closure& closure);
  void zero_grad();

  const NamedTensors& params() const { return params_; }
  std::int64_t iterations() const { return iterations_; }    // over all steps
  std::int64_t evaluations() const { return evaluations_; }  // closure calls over all steps
  // Why the last step() ended: "tolerance_grad", "tolerance_change", "max_iterations", "max_evaluations"
  // or "no_decrease" (the line search found no lower loss).
  const std::string& stop_reason() const { return stop_reason_; }
  const LBFGSOptions& options() const { return o_; }
  // Called after each iteration of step() with the new loss; the parameters hold the new point then.
  std::function<void(double loss)> on_iteration;

  // "s" and "y" [k, N] float32 (the k <= history_size newest correction pairs, oldest first, over the
  // parameters flattened in order), "iterations" and "evaluations" (int64 scalars). Copies.
  std::map<std::string, Tensor> state_dict() const;
  // strict: all four names present and no others. Throws naming the slot whose shape differs.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 private:
  struct State;
  NamedTensors params_;
  LBFGSOptions o_;
  std::unique_ptr<State> st_;
  std::int64_t numel_ = 0, iterations_ = 0, evaluations_ = 0;
  std::string stop_reason_;
};

// ---- exponential moving average of weights (tf.train.ExponentialMovingAverage) ----
// shadow -= (1 - decay')·(shadow - value), with decay' = min(decay, (1 + n) / (10 + n)) when
// num_updates n >= 0 is given, else decay' = decay. Shadows start as copies of the values.
class ExponentialMovingAverage {
 public:
  // Any float32 tensors (parameters or buffers), unique names; decay in [0, 1].
  ExponentialMovingAverage(NamedTensors params, double decay);
  void update(std::int64_t num_updates = -1);
  const Tensor& shadow(const std::string& name) const;
  // Exchanges shadow values and parameter values in place (for evaluation with averaged weights);
  // calling it again swaps back. The parameters keep their storage, so optimizers keep working.
  void swap();
  // "name/ExponentialMovingAverage" (live handles to the shadows).
  std::map<std::string, Tensor> state_dict() const;
  // Copies into the shadows; same strictness rules as Optimizer::load_state_dict.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 private:
  NamedTensors params_;
  std::vector<Tensor> shadows_;
  double decay_;
};

// ---- graph mode (graph.h) ----
// tf.train.Optimizer.minimize: adds graph::gradients(loss, params) for the optimizer's parameters
// (graph variables, or the parameters of a model traced into loss's graph) and returns a host op that
// applies them with apply_gradients() when run. Parameters the loss does not use get no update.
graph::Op minimize(Optimizer& opt, const Tensor& loss, const std::string& name = "train");
// The same with the update given: each time the host op runs, `apply` receives one gradient per entry
// of `params` (undefined where the loss does not use it). `owner` names the parameters' owner in
// errors. dist::minimize averages the gradients over MPI ranks this way.
graph::Op minimize(const NamedTensors& params, const Tensor& loss, std::function<void(const std::vector<Tensor>&)> apply,
                   const std::string& name, const std::string& owner);
// A host op of graph `g` running ema.update() — with num_updates = steps->iterations() when `steps`
// is given (tf.train.ExponentialMovingAverage(decay, global_step)). Group it with the train op:
// g.group({train, ema_op}) runs the optimizer step first.
graph::Op moving_average_op(ExponentialMovingAverage& ema, graph::Graph& g, const Optimizer* steps = nullptr,
                            const std::string& name = "ema");

}  // namespace synapse::optim
