// ONNX -> Synapse. Each ONNX node is translated by calling Synapse's ops on the values of its inputs:
// on the placeholders' symbolic tensors this adds graph nodes, and where every input is a constant
// (shape computations, Constant nodes, integer initializers) the ops simply run at import time — so
// constant folding comes for free, and attribute-like inputs (Reshape's shape, Slice's starts, ...)
// are read from those folded constants.
//
// This file is the driver: table() joins the op types of the four families (import_math.cpp,
// import_shape.cpp, import_nn.cpp, import_recurrent.cpp; what they share is in import_internal.h),
// Importer::translate runs one node through its entry, import_proto the whole graph.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/budget.h"
#include "core/check.h"
#include "onnx/import_internal.h"
#include "onnx/proto.h"
#include "synapse/graph.h"
#include "synapse/onnx.h"

namespace synapse::onnx {
namespace internal {
namespace {

// ---- the table ----
// Every family adds its op types; an op type registered by two families is a programming error.
const OpTable& table() {
  static const OpTable t = [] {
    OpTable all;
    for (auto add : {add_math_ops, add_shape_ops, add_nn_ops, add_recurrent_ops}) {
      OpTable family;
      add(family);
      for (auto& [name, entry] : family) {
        const bool fresh = all.emplace(name, std::move(entry)).second;
        SYN_CHECK(fresh, "ONNX op type {} is registered by two families", name);
      }
    }
    return all;
  }();
  return t;
}

}  // namespace

void Importer::translate(const NodeProto& n) {
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    throw Unsupported(fmt::format("{}: domain '{}' is not supported", describe(n), n.domain()));
  const auto& t = table();
  auto it = t.find(n.op_type());
  if (it == t.end()) throw Unsupported(fmt::format("{}: op type {} is not supported", describe(n), n.op_type()));
  for (const auto& a : n.attribute())
    if (!it->second.attrs.contains(a.name()))
      throw Unsupported(fmt::format("{}: attribute '{}' is not supported", describe(n), a.name()));
  if (n.op_type() == "BatchNormalization" && n.attribute_size() > 0) {
    for (const auto& a : n.attribute())
      if (a.name() == "spatial" && a.i() != 1) throw Unsupported(fmt::format("{}: spatial=0", describe(n)));
  }
  Ctx c{*this, n};
  Outputs out;
  try {
    out = it->second.fn(c);
  } catch (const Unsupported&) {
    throw;
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", describe(n), e.what()));
  }
  for (int k = 0; k < n.output_size(); ++k) {
    if (n.output(k).empty()) continue;
    if (k >= static_cast<int>(out.size())) c.unsupported(fmt::format("output {} ('{}')", k, n.output(k)));
    env_[n.output(k)] = out[static_cast<std::size_t>(k)];
  }
}

static std::vector<std::string> table_ops() {
  std::vector<std::string> names;
  for (const auto& [k, v] : table()) names.push_back(k);
  return names;
}

// Shape of a graph input (-1 for dim_param / unknown extents); throws Unsupported for non-tensors.
static std::pair<Shape, DType> input_signature(const ::onnx::ValueInfoProto& vi) {
  if (!vi.type().has_tensor_type())
    throw Unsupported(
        fmt::format("input '{}' is not a tensor (sequences, maps and optionals are not supported)", vi.name()));
  const auto& tt = vi.type().tensor_type();
  const DType dt = synapse_type(tt.elem_type(), fmt::format("input '{}'", vi.name()));
  if (!tt.has_shape()) throw Unsupported(fmt::format("input '{}' has no shape (unknown rank)", vi.name()));
  Shape s;
  for (const auto& d : tt.shape().dim()) s.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return {s, dt};
}

static Model import_proto(const ::onnx::ModelProto& m, const ImportOptions& opts) {
  Model out;
  out.graph = std::make_shared<graph::Graph>();
  Importer im(m, out.graph.get(), opts);
  out.opset = im.opset();
  for (const auto& o : m.opset_import())
    if (!o.domain().empty() && o.domain() != "ai.onnx")
      for (const auto& n : m.graph().node())
        if (n.domain() == o.domain()) throw Unsupported(fmt::format("operator set '{}' is not supported", o.domain()));
  std::set<std::string> types;
  for (const auto& n : m.graph().node()) types.insert(n.op_type());
  out.op_types.assign(types.begin(), types.end());
  im.bind_initializers();
  for (const auto& vi : m.graph().input()) {
    if (im.is_initializer(vi.name())) continue;
    if (auto c = opts.constant_inputs.find(vi.name()); c != opts.constant_inputs.end()) {
      im.bind(vi.name(), c->second);
      continue;
    }
    auto [shape, dt] = input_signature(vi);
    Tensor p = out.graph->placeholder(vi.name(), shape, dt);
    im.bind_placeholder(vi.name(), p);
    out.inputs.push_back(p);
    out.input_names.push_back(vi.name());
  }
  for (const auto& n : m.graph().node()) {
    im.translate(n);
    for (const auto& name : n.output()) {
      if (name.empty()) continue;
      ::onnx::NodeProto none;
      out.values.emplace_back(name, im.value(name, none));
    }
  }
  for (const auto& vo : m.graph().output()) {
    ::onnx::NodeProto none;
    none.set_op_type("graph output");
    out.outputs.push_back(im.value(vo.name(), none));
    out.output_names.push_back(vo.name());
  }
  return out;
}

}  // namespace internal

Model import_model(const std::string& path, const ImportOptions& opts) {
  ::onnx::ModelProto m;
  internal::read_proto_file(path, m);
  // Constant folding computes tensors from what the file says: each within the read budget.
  const ::synapse::detail::ReadScope reading;
  try {
    return internal::import_proto(m, opts);
  } catch (const Unsupported& e) {
    throw Unsupported(fmt::format("'{}': {}", path, e.what()), e.constant_input());
  } catch (const Error& e) {
    throw Error(fmt::format("'{}': {}", path, e.what()));
  }
}

std::vector<std::string> supported_ops() { return internal::table_ops(); }

ModelInfo inspect(const std::string& path) {
  ::onnx::ModelProto m;
  internal::read_proto_file(path, m);
  ModelInfo info;
  info.ir_version = m.ir_version();
  info.producer = m.producer_name();
  for (const auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") info.opset = o.version();
  std::set<std::string> inits, types;
  for (const auto& i : m.graph().initializer()) inits.insert(i.name());
  for (const auto& vi : m.graph().input())
    if (!inits.contains(vi.name())) info.input_names.push_back(vi.name());
  for (const auto& vi : m.graph().output()) info.output_names.push_back(vi.name());
  for (const auto& n : m.graph().node()) types.insert(n.op_type());
  info.op_types.assign(types.begin(), types.end());
  info.node_count = m.graph().node_size();
  info.initializer_count = m.graph().initializer_size();
  return info;
}

}  // namespace synapse::onnx
