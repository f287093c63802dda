// Defining ops. An op is written once: its name, its shape rule, a kernel per device, a naive
// reference kernel (kept beside the fast one, for tests) or the reason it has none, and its gradient
// written with other ops — so the same definition serves eager execution, graph execution and every
// backend.
//
//   define_op("tanh")
//       .inputs(1)
//       .shape(same_as_input(0))
//       .kernel(Device::CPU, cpu::tanh)
//       .reference(tanh_reference)
//       .grad([](const GradCtx& g) { return grads(g.dy() * (1.0f - square(g.y()))); });
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "synapse/error.h"
#include "synapse/pointwise.h"
#include "synapse/tensor.h"

namespace synapse {

// ---- attributes: the op's non-tensor arguments (axes, strides, padding, ...) ----
using AttrValue = std::variant<std::int64_t, double, bool, std::string, std::vector<std::int64_t>,
                               std::vector<double>>;

class Attrs {
 public:
  Attrs() = default;
  Attrs& set(const std::string& name, AttrValue v);
  // One overload per C++ type, so `set("keepdims", true)` stores a bool and `set("axis", 1)` an int.
  Attrs& set(const std::string& name, bool v) { return set(name, AttrValue(v)); }
  Attrs& set(const std::string& name, int v) { return set(name, AttrValue(static_cast<std::int64_t>(v))); }
  Attrs& set(const std::string& name, std::int64_t v) { return set(name, AttrValue(v)); }
  Attrs& set(const std::string& name, float v) { return set(name, AttrValue(static_cast<double>(v))); }
  Attrs& set(const std::string& name, double v) { return set(name, AttrValue(v)); }
  Attrs& set(const std::string& name, const char* v) { return set(name, AttrValue(std::string(v))); }
  Attrs& set(const std::string& name, std::string v) { return set(name, AttrValue(std::move(v))); }
  Attrs& set(const std::string& name, std::vector<std::int64_t> v) { return set(name, AttrValue(std::move(v))); }
  Attrs& set(const std::string& name, std::vector<double> v) { return set(name, AttrValue(std::move(v))); }
  bool has(std::string_view name) const;
  std::int64_t i(std::string_view name) const;
  double f(std::string_view name) const;
  bool b(std::string_view name) const;
  const std::string& s(std::string_view name) const;
  const std::vector<std::int64_t>& ints(std::string_view name) const;
  const std::vector<double>& floats(std::string_view name) const;
  const std::vector<std::pair<std::string, AttrValue>>& items() const { return items_; }
  std::string to_string() const;

 private:
  const AttrValue& get(std::string_view name) const;
  std::vector<std::pair<std::string, AttrValue>> items_;
};

// Shape and dtype of a tensor, without data: what shape rules consume and produce.
struct TensorMeta {
  Shape shape;
  DType dtype = DType::Float32;
};

// Computes output metas from input metas; throws Error (the dispatcher prefixes the op's name).
using ShapeFn = std::function<std::vector<TensorMeta>(const std::vector<TensorMeta>&, const Attrs&)>;
// The metas of a single-output op, with the shape moved in (`std::vector<TensorMeta>{{shape, dtype}}`
// would copy it out of the initializer list: one more allocation on every op call).
inline std::vector<TensorMeta> one_output(Shape shape, DType dtype) {
  std::vector<TensorMeta> out;
  out.reserve(1);
  out.push_back(TensorMeta{std::move(shape), dtype});
  return out;
}

// A kernel reads `inputs` and writes into `outputs`, which the dispatcher has allocated with the
// shapes the shape rule gave. For ops marked `.view()` (one output, a new shape over the same data)
// the dispatcher makes output 0 share input 0's storage instead, and the kernel has nothing to do.
struct KernelContext {
  const std::vector<Tensor>& inputs;
  std::vector<Tensor>& outputs;
  const Attrs& attrs;
  const Tensor& in(std::size_t i) const { return inputs[i]; }
  Tensor& out(std::size_t i) const { return outputs[i]; }
};
using KernelFn = std::function<void(const KernelContext&)>;
// The floating-point operations one call performs (a multiply-add counts 2), from the call's inputs,
// outputs and attributes: what the profiler divides by the kernel's time. Declared by the ops whose
// cost is arithmetic (matrix products, convolutions, recurrent cells); the others are memory-bound
// and count 0.
using FlopsFn = std::function<double(const KernelContext&)>;

// What a gradient function sees. Gradients are written with ops, so they are themselves
// differentiable and work in graph mode too.
struct GradCtx {
  const std::vector<Tensor>& inputs;   // x(i)
  const std::vector<Tensor>& outputs;  // y(i)
  const std::vector<Tensor>& grads;    // dy(i): gradient w.r.t. each output (zeros where none flowed)
  const Attrs& attrs;
  const Tensor& x(std::size_t i = 0) const { return inputs[i]; }
  const Tensor& y(std::size_t i = 0) const { return outputs[i]; }
  const Tensor& dy(std::size_t i = 0) const { return grads[i]; }
};
// Returns one gradient per input; an undefined Tensor means "no gradient" (e.g. integer labels).
using GradFn = std::function<std::vector<Tensor>(const GradCtx&)>;

// Binds the op's attributes once and returns the block body.
using PointwiseFactory = std::function<PointwiseFn(const Attrs&)>;
template <class... T> std::vector<Tensor> grads(T&&... g) { return {Tensor(std::forward<T>(g))...}; }

class OpDef {
 public:
  explicit OpDef(std::string name) : name_(std::move(name)) {}

  // Number of tensor inputs (-1: any number, as in concat).
  OpDef& inputs(int n) { num_inputs_ = n; return *this; }
  OpDef& shape(ShapeFn fn) { shape_ = std::move(fn); return *this; }
  OpDef& kernel(Device d, KernelFn fn) { kernels_[static_cast<int>(d)] = std::move(fn); return *this; }
  // The naive reference kernel: plain loops, obviously correct, that tests run against the fast one.
  OpDef& reference(KernelFn fn) {
    if (!no_reference_.empty()) throw Error(name_ + ": has a reference kernel and is marked .no_reference()");
    reference_ = std::move(fn);
    return *this;
  }
  // Marks the op as having no reference kernel, and says why (a view, a serial loop of a generator):
  // apply_reference then throws naming the op and the reason, instead of comparing a kernel with itself.
  OpDef& no_reference(std::string why) {
    if (why.empty()) throw Error(name_ + ": .no_reference() needs a reason");
    if (reference_) throw Error(name_ + ": has a reference kernel and is marked .no_reference()");
    no_reference_ = std::move(why);
    return *this;
  }
  OpDef& grad(GradFn fn) { grad_ = std::move(fn); return *this; }
  OpDef& flops(FlopsFn fn) { flops_ = std::move(fn); return *this; }
  // Outputs alias the first input's storage (reshape): the kernel assigns them.
  OpDef& view() { view_ = true; return *this; }
  // The float32 block body (elementwise ops only; built from the same scalar function as the kernel).
  OpDef& pointwise(PointwiseFactory f) { pointwise_ = std::move(f); return *this; }

  const std::string& name() const { return name_; }
  int num_inputs() const { return num_inputs_; }
  const ShapeFn& shape_fn() const { return shape_; }
  const KernelFn& kernel_for(Device d) const { return kernels_[static_cast<int>(d)]; }
  // The naive kernel. Never the device kernel: throws Error naming the op (and the recorded reason)
  // when it has none, so a fast-vs-reference test cannot compare a kernel with itself.
  const KernelFn& reference_kernel() const {
    if (reference_) return reference_;
    if (!no_reference_.empty()) throw Error(name_ + ": has no reference kernel (" + no_reference_ + ")");
    throw Error(name_ + ": has no reference kernel and is not marked .no_reference(\"why\")");
  }
  bool has_reference() const { return static_cast<bool>(reference_); }
  // Why the op has no reference kernel; empty when it has one (or when it was never said).
  const std::string& no_reference_reason() const { return no_reference_; }
  const GradFn& grad_fn() const { return grad_; }
  const FlopsFn& flops_fn() const { return flops_; }
  bool differentiable() const { return static_cast<bool>(grad_); }
  bool is_view() const { return view_; }
  const PointwiseFactory& pointwise_fn() const { return pointwise_; }

 private:
  std::string name_;
  int num_inputs_ = 1;
  ShapeFn shape_;
  KernelFn kernels_[kNumDevices];
  KernelFn reference_;
  std::string no_reference_;
  GradFn grad_;
  FlopsFn flops_;
  PointwiseFactory pointwise_;
  bool view_ = false;
};

// Registers a new op (throws if the name is taken). The returned definition lives forever.
OpDef& define_op(const std::string& name);
// Looks an op up by name; throws Error listing nothing but the unknown name.
const OpDef& op_def(const std::string& name);
// Every registered op, in registration order.
std::vector<const OpDef*> all_ops();

// Runs an op: checks inputs, infers shapes, runs the kernel, then hands the call to the record hook
// (autograd keeps history when an input requires gradients); a call the trace hook claims (graph mode)
// runs no kernel. The one entry point eager execution uses.
std::vector<Tensor> apply(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs = {});
Tensor apply1(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs = {});
// Runs the op's naive reference kernel instead of the device kernel (no autograd); for tests. Throws
// Error naming the op and the reason when the op is marked .no_reference(...).
std::vector<Tensor> apply_reference(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs = {});
// Runs a device kernel on outputs the caller allocated (graph execution's in-place path); timed when a
// Profiler (synapse/profile.h) is collecting. apply() and apply_reference() run kernels through it.
void invoke_kernel(const OpDef& op, const KernelFn& kernel, const KernelContext& ctx);

// ---- what the layers above add to a call ----
// The dispatcher knows neither the autograd tape nor graphs: those layers install a hook at start-up
// (src/autograd/engine.cpp, src/graph/graph.cpp), so dependencies point one way, down to ops.
// Trace hook: returns true when the call became a graph node, its symbolic outputs in `outputs`.
using TraceHook = bool (*)(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs,
                           std::vector<Tensor>& outputs);
// Record hook: called after every eager kernel run (autograd records it when an input needs gradients).
using RecordHook = void (*)(const OpDef& op, const Attrs& attrs, const std::vector<Tensor>& inputs,
                            std::vector<Tensor>& outputs);
void set_trace_hook(TraceHook hook);
void set_record_hook(RecordHook hook);

// Anomaly mode (per thread): every op's float outputs are checked for NaN/Inf, and the first
// non-finite value throws an Error naming the op, the output and the inputs' names and shapes.
// AnomalyModeGuard (autograd.h) scopes it.
bool anomaly_mode();
void set_anomaly_mode(bool on);

// ---- common shape rules ----
ShapeFn same_as_input(int i);
// NumPy broadcast of inputs 0 and 1, both of one dtype; output dtype = `out` (or the inputs' dtype).
ShapeFn broadcast_binary(bool bool_output = false);

}  // namespace synapse
