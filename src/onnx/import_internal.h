// Internal to the ONNX importer: what its driver (import.cpp) and the per-family op mappings
// (import_math.cpp, import_shape.cpp, import_nn.cpp, import_recurrent.cpp) share: the translation state
// (Importer), what a translator sees (Ctx), the op table's entries and one registration function per
// family. A helper used by a single family stays in that family's file.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/check.h"
#include "onnx/proto.h"
#include "synapse/graph.h"
#include "synapse/ops.h"

namespace synapse::onnx::internal {

using ::onnx::AttributeProto;
using ::onnx::NodeProto;
using Ints = std::vector<std::int64_t>;

inline std::string describe(const NodeProto& n) {
  return fmt::format("{} node '{}'", n.op_type(), n.name().empty() ? (n.output_size() ? n.output(0) : "?") : n.name());
}

inline bool is_identity_perm(const Ints& p) {
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

inline bool fully_known(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](std::int64_t d) { return d >= 0; });
}

// ---- the translation state ----
class Importer {
 public:
  Importer(const ::onnx::ModelProto& m, graph::Graph* g, const ImportOptions& opts) : m_(m), g_(g), opts_(opts) {
    for (const auto& o : m.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  }

  std::int64_t opset() const { return opset_; }

  // Binds initializers: float ones become Variables (graph mode, trainable) or constants.
  void bind_initializers() {
    for (const auto& init : m_.graph().initializer()) {
      Tensor v = from_proto(init, fmt::format("initializer '{}'", init.name()));
      if (g_ && opts_.trainable_initializers && v.dtype() == DType::Float32) {
        Tensor var = g_->variable(init.name(), v);
        known_[var.impl()] = v;
        env_[init.name()] = var;
      } else {
        env_[init.name()] = v;
      }
    }
    for (const auto& s : m_.graph().sparse_initializer())
      throw Unsupported(fmt::format("sparse initializer '{}' is not supported", s.values().name()));
  }

  bool is_initializer(const std::string& name) const {
    for (const auto& init : m_.graph().initializer())
      if (init.name() == name) return true;
    return false;
  }

  void bind(const std::string& name, const Tensor& t) { env_[name] = t; }
  void bind_placeholder(const std::string& name, const Tensor& t) {
    env_[name] = t;
    placeholders_.insert(t.impl());
  }
  bool is_placeholder(const Tensor& t) const { return placeholders_.contains(t.impl()); }

  Tensor value(const std::string& name, const NodeProto& n) const {
    auto it = env_.find(name);
    SYN_CHECK(it != env_.end(), "{}: input '{}' is not produced by any earlier node, input or initializer", describe(n),
              name);
    return it->second;
  }

  // The constant value behind a tensor: itself when it is a real tensor, a Variable's initial value.
  std::optional<Tensor> constant(const Tensor& t) const {
    if (!graph::is_symbolic(t)) return t;
    auto it = known_.find(t.impl());
    if (it != known_.end()) return it->second;
    return std::nullopt;
  }

  void translate(const NodeProto& n);

  // Layout helpers: permute with memory of where a tensor came from, so inverse pairs cancel.
  Tensor permute_tracked(const Tensor& x, const Ints& perm) {
    auto it = permuted_.find(x.impl());
    if (it != permuted_.end()) {
      const auto& [src, p1] = it->second;
      Ints composed(perm.size());
      for (std::size_t i = 0; i < perm.size(); ++i) composed[i] = p1[static_cast<std::size_t>(perm[i])];
      if (is_identity_perm(composed)) return src;
    }
    if (is_identity_perm(perm)) return x;
    Tensor y = synapse::permute(x, perm);
    permuted_[y.impl()] = {x, perm};
    keep_.push_back(y);  // keeps the impl alive, so its address is never reused while tracked
    return y;
  }
  Tensor to_nhwc(const Tensor& x) { return permute_tracked(x, {0, 2, 3, 1}); }
  Tensor to_nchw(const Tensor& x) { return permute_tracked(x, {0, 3, 1, 2}); }

 private:
  const ::onnx::ModelProto& m_;
  graph::Graph* g_;
  ImportOptions opts_;
  std::int64_t opset_ = 1;
  std::map<std::string, Tensor> env_;
  std::unordered_map<const TensorImpl*, Tensor> known_;
  std::set<const TensorImpl*> placeholders_;
  std::unordered_map<const TensorImpl*, std::pair<Tensor, Ints>> permuted_;
  std::vector<Tensor> keep_;
};

// What an op translator sees.
struct Ctx {
  Importer& im;
  const NodeProto& n;

  [[noreturn]] void unsupported(const std::string& why) const {
    throw Unsupported(fmt::format("{}: {}", describe(n), why));
  }
  int num_inputs() const { return n.input_size(); }
  bool has(int i) const { return i < n.input_size() && !n.input(i).empty(); }
  Tensor in(int i) const {
    SYN_CHECK(has(i), "{}: missing input {}", describe(n), i);
    return im.value(n.input(i), n);
  }
  // An input whose value must be known at import time (a shape, axes, pads, ...).
  Tensor cin(int i) const {
    Tensor t = in(i);
    auto c = im.constant(t);
    if (!c) {
      const bool graph_input = im.is_placeholder(t);
      throw Unsupported(fmt::format("{}: input {} ('{}') must be a constant, but it is {}", describe(n), i, n.input(i),
                                    graph_input ? "a graph input" : "computed at run time"),
                        graph_input ? n.input(i) : std::string());
    }
    return *c;
  }
  Ints ints_in(int i) const {
    Tensor t = cin(i);
    if (t.dtype() == DType::Int64) return t.to_vector<std::int64_t>();
    if (t.dtype() == DType::Int32) {
      auto v = t.to_vector<std::int32_t>();
      return Ints(v.begin(), v.end());
    }
    unsupported(fmt::format("input {} must be int64, got {}", i, dtype_name(t.dtype())));
  }
  double scalar_in(int i) const {
    Tensor t = cin(i);
    if (t.numel() != 1) unsupported(fmt::format("input {} must hold one value, has shape {}", i, to_string(t.shape())));
    switch (t.dtype()) {
      case DType::Float32:
        return t.to_vector<float>()[0];
      case DType::Int64:
        return static_cast<double>(t.to_vector<std::int64_t>()[0]);
      case DType::Int32:
        return t.to_vector<std::int32_t>()[0];
      case DType::UInt8:
        return t.to_vector<std::uint8_t>()[0];
      case DType::Bool:
        return t.to_vector<bool>()[0];
    }
    return 0;
  }

  const AttributeProto* attr(const std::string& name) const {
    for (const auto& a : n.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  bool has_attr(const std::string& name) const { return attr(name) != nullptr; }
  std::int64_t i(const std::string& name, std::int64_t def) const {
    const auto* a = attr(name);
    return a ? a->i() : def;
  }
  float f(const std::string& name, float def) const {
    const auto* a = attr(name);
    return a ? a->f() : def;
  }
  std::string s(const std::string& name, const std::string& def) const {
    const auto* a = attr(name);
    return a ? a->s() : def;
  }
  Ints ints(const std::string& name, Ints def = {}) const {
    const auto* a = attr(name);
    return a ? Ints(a->ints().begin(), a->ints().end()) : def;
  }

  void require_float(const Tensor& t, const char* what = "input") const {
    if (t.dtype() != DType::Float32)
      unsupported(fmt::format("{} of type {} (Synapse computes this op in float32 only)", what, dtype_name(t.dtype())));
  }
  void require_numeric(const Tensor& t) const {
    if (t.dtype() == DType::Bool) unsupported("bool inputs are not supported");
  }
  void require_rank(const Tensor& t, std::int64_t r) const {
    if (t.ndim() != r)
      unsupported(fmt::format("only rank-{} inputs are supported, got shape {}", r, to_string(t.shape())));
  }
  void require_known(const Tensor& t) const {
    if (!fully_known(t.shape()))
      unsupported(fmt::format("needs a fully known input shape, got {}", to_string(t.shape())));
  }
  std::int64_t axis(std::int64_t a, std::int64_t rank) const {
    if (a < -rank || a >= std::max<std::int64_t>(rank, 1))
      throw Error(fmt::format("{}: axis {} is out of range for rank {}", describe(n), a, rank));
    return a < 0 ? a + rank : a;
  }
};

using Outputs = std::vector<Tensor>;
using Translator = std::function<Outputs(Ctx&)>;

struct OpEntry {
  std::set<std::string> attrs;  // attributes the translator understands; any other one is Unsupported
  Translator fn;
};

// The op types a family translates (ONNX op type -> entry); the driver's table() joins the four.
using OpTable = std::map<std::string, OpEntry>;

// Normalised sorted axes for Squeeze/Unsqueeze and reductions.
inline Ints norm_axes(Ctx& c, Ints axes, std::int64_t rank) {
  for (auto& a : axes) a = c.axis(a, rank);
  std::sort(axes.begin(), axes.end());
  return axes;
}

void add_math_ops(OpTable& m);
void add_shape_ops(OpTable& m);
void add_nn_ops(OpTable& m);
void add_recurrent_ops(OpTable& m);

}  // namespace synapse::onnx::internal
