// The op registry and the dispatcher: the single place where an op is run eagerly.
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "core/check.h"
#include "ops/families.h"
#include "synapse/op.h"

namespace synapse {

// ---- Attrs ----
Attrs& Attrs::set(const std::string& name, AttrValue v) {
  for (auto& [k, val] : items_) {
    if (k == name) {
      val = std::move(v);
      return *this;
    }
  }
  if (items_.empty()) items_.reserve(4);  // one allocation for the usual one to four attributes
  items_.emplace_back(name, std::move(v));
  return *this;
}

// Attributes are looked up by name on every eager op (matmul's kernel and shape rule read its two
// flags six times): names arrive as string views of literals, no std::string is built per lookup.
bool Attrs::has(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (std::string_view(k) == name) return true;
  return false;
}

const AttrValue& Attrs::get(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (std::string_view(k) == name) return v;
  detail::fail("missing attribute '{}'", name);
}

namespace {
template <class T> const T& attr_as(const AttrValue& v, std::string_view name, const char* type) {
  const T* p = std::get_if<T>(&v);
  SYN_CHECK(p != nullptr, "attribute '{}' is not of type {}", name, type);
  return *p;
}
}  // namespace

std::int64_t Attrs::i(std::string_view n) const { return attr_as<std::int64_t>(get(n), n, "int"); }
double Attrs::f(std::string_view n) const {
  const AttrValue& v = get(n);
  if (const auto* iv = std::get_if<std::int64_t>(&v)) return static_cast<double>(*iv);
  return attr_as<double>(v, n, "float");
}
bool Attrs::b(std::string_view n) const { return attr_as<bool>(get(n), n, "bool"); }
const std::string& Attrs::s(std::string_view n) const { return attr_as<std::string>(get(n), n, "string"); }
const std::vector<std::int64_t>& Attrs::ints(std::string_view n) const {
  return attr_as<std::vector<std::int64_t>>(get(n), n, "int list");
}
const std::vector<double>& Attrs::floats(std::string_view n) const {
  return attr_as<std::vector<double>>(get(n), n, "float list");
}

std::string Attrs::to_string() const {
  std::string out;
  for (const auto& [k, v] : items_) {
    if (!out.empty()) out += ", ";
    out += k + "=";
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            out += x;
          } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>> || std::is_same_v<T, std::vector<double>>) {
            out += fmt::format("[{}]", fmt::join(x, ","));
          } else {
            out += fmt::format("{}", x);
          }
        },
        v);
  }
  return out;
}

// ---- registry ----
namespace {

struct Registry {
  std::map<std::string, std::unique_ptr<OpDef>> by_name;
  std::vector<const OpDef*> in_order;
};

Registry& raw_registry() {
  static Registry r;
  return r;
}

Registry& registry() {
  static std::once_flag once;
  std::call_once(once, [] {
    ops::register_elementwise_ops();
    ops::register_reduce_ops();
    ops::register_shape_ops();
    ops::register_matmul_ops();
    ops::register_conv_pool_ops();
    ops::register_nn_ops();
    ops::register_random_ops();
    ops::register_rnn_ops();
    ops::register_lrn_ops();
  });
  return raw_registry();
}

}  // namespace

OpDef& define_op(const std::string& name) {
  Registry& r = raw_registry();
  SYN_CHECK(!r.by_name.contains(name), "define_op: an op named '{}' is already registered", name);
  auto def = std::make_unique<OpDef>(name);
  OpDef& ref = *def;
  r.by_name.emplace(name, std::move(def));
  r.in_order.push_back(&ref);
  return ref;
}

const OpDef& op_def(const std::string& name) {
  Registry& r = registry();
  auto it = r.by_name.find(name);
  SYN_CHECK(it != r.by_name.end(), "unknown op '{}'", name);
  return *it->second;
}

std::vector<const OpDef*> all_ops() { return registry().in_order; }

// ---- shape rules ----
ShapeFn same_as_input(int i) {
  return [i](const std::vector<TensorMeta>& in, const Attrs&) {
    const TensorMeta& m = in[static_cast<std::size_t>(i)];
    return one_output(m.shape, m.dtype);
  };
}

ShapeFn broadcast_binary(bool bool_output) {
  return [bool_output](const std::vector<TensorMeta>& in, const Attrs&) {
    SYN_CHECK(in[0].dtype == in[1].dtype, "dtypes differ: {} and {}", dtype_name(in[0].dtype), dtype_name(in[1].dtype));
    Shape s = broadcast_shapes(in[0].shape, in[1].shape);
    return one_output(std::move(s), bool_output ? DType::Bool : in[0].dtype);
  };
}

// ---- dispatch ----
namespace {

// The input metas handed to shape rules: per thread, one reused vector for each input count up to
// four, so that copying the input shapes into it allocates nothing once its shapes have grown to the
// usual ranks (an eager op otherwise built a vector and a Shape per input on every call). A shape rule
// that ran an op itself would find the vector in use and get one of its own.
struct MetaScratch {
  std::vector<TensorMeta> metas;
  bool in_use = false;
};

std::vector<TensorMeta> infer(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  if (op.num_inputs() >= 0)
    SYN_CHECK(static_cast<int>(inputs.size()) == op.num_inputs(), "{}: expected {} inputs, got {}", op.name(),
              op.num_inputs(), inputs.size());
  static thread_local std::array<MetaScratch, 5> scratch;
  MetaScratch* s = inputs.size() < scratch.size() && !scratch[inputs.size()].in_use ? &scratch[inputs.size()] : nullptr;
  std::vector<TensorMeta> own;
  std::vector<TensorMeta>& metas = s != nullptr ? s->metas : own;
  metas.resize(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SYN_CHECK(inputs[i].defined(), "{}: input {} is an undefined tensor", op.name(), i);
    metas[i].shape = inputs[i].shape();
    metas[i].dtype = inputs[i].dtype();
  }
  struct InUse {
    MetaScratch* s;
    explicit InUse(MetaScratch* p) : s(p) {
      if (s != nullptr) s->in_use = true;
    }
    ~InUse() {
      if (s != nullptr) s->in_use = false;
    }
    InUse(const InUse&) = delete;
    InUse& operator=(const InUse&) = delete;
  } in_use(s);
  SYN_CHECK(static_cast<bool>(op.shape_fn()), "{}: op has no shape rule", op.name());
  try {
    return op.shape_fn()(metas, attrs);
  } catch (const Error& e) {
    // Name the op (and the tensors, when named) in every shape error.
    const std::string msg = e.what();
    if (msg.rfind(op.name() + ":", 0) == 0) throw;
    std::string names;
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (!inputs[i].name().empty()) names += fmt::format("{}{}", names.empty() ? " (inputs: " : ", ", inputs[i].name());
    if (!names.empty()) names += ")";
    throw Error(op.name() + ": " + msg + names);
  }
}

std::vector<Tensor> run_kernel(const OpDef& op, const KernelFn& kernel, const std::vector<Tensor>& inputs,
                               const Attrs& attrs) {
  std::vector<TensorMeta> metas = infer(op, inputs, attrs);
  std::vector<Tensor> outputs(metas.size());
  const Device dev = inputs.empty() ? Device::CPU : inputs[0].device();
  if (op.is_view()) {  // the new shape over input 0's data (no copy; the kernel has nothing to do)
    const TensorImpl& in = *inputs[0].impl();
    auto view = std::make_shared<TensorImpl>();
    view->shape = std::move(metas[0].shape);
    view->dtype = metas[0].dtype;
    view->storage = in.storage;
    view->offset = in.offset;
    outputs[0] = Tensor(std::move(view));
  } else {
    for (std::size_t i = 0; i < metas.size(); ++i) outputs[i] = Tensor::empty(std::move(metas[i].shape), metas[i].dtype, dev);
  }
  SYN_CHECK(static_cast<bool>(kernel), "{}: no kernel for device {}", op.name(), device_name(dev));
  invoke_kernel(op, kernel, KernelContext{inputs, outputs, attrs});
  return outputs;
}

void check_finite(const OpDef& op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) {
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o].dtype() != DType::Float32) continue;
    const float* p = outputs[o].data<float>();
    for (std::int64_t i = 0, n = outputs[o].numel(); i < n; ++i) {
      if (!std::isfinite(p[i])) {
        std::string ins;
        for (const auto& t : inputs)
          ins += fmt::format("{}{}{}", ins.empty() ? "" : ", ", t.name().empty() ? "" : t.name() + " ", to_string(t.shape()));
        detail::fail("anomaly: op '{}' produced {} in output {} (shape {}) at flat index {}; inputs: {}", op.name(),
                     std::isnan(p[i]) ? "NaN" : "Inf", o, to_string(outputs[o].shape()), i, ins);
      }
    }
  }
}

}  // namespace

namespace {
constinit TraceHook g_trace_hook = nullptr;
constinit RecordHook g_record_hook = nullptr;
thread_local bool g_anomaly = false;
}  // namespace

void set_trace_hook(TraceHook hook) { g_trace_hook = hook; }
void set_record_hook(RecordHook hook) { g_record_hook = hook; }
bool anomaly_mode() { return g_anomaly; }
void set_anomaly_mode(bool on) { g_anomaly = on; }

std::vector<Tensor> apply(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  std::vector<Tensor> outputs;
  // Graph mode: a symbolic input (or an input-less op in a DefaultGraph scope) adds a node instead.
  if (g_trace_hook && g_trace_hook(op, inputs, attrs, outputs)) return outputs;
  const Device dev = inputs.empty() ? Device::CPU : inputs[0].device();
  outputs = run_kernel(op, op.kernel_for(dev), inputs, attrs);
  if (anomaly_mode()) check_finite(op, inputs, outputs);
  if (g_record_hook) g_record_hook(op, attrs, inputs, outputs);
  return outputs;
}

Tensor apply1(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  auto out = apply(op, inputs, attrs);
  SYN_CHECK(out.size() == 1, "{}: expected one output, op has {}", op.name(), out.size());
  return std::move(out[0]);
}

std::vector<Tensor> apply_reference(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  return run_kernel(op, op.reference_kernel(), inputs, attrs);
}

}  // namespace synapse
