// Graph construction: nodes, names and scopes, capture of eager tensors, the dispatcher hook, DOT.
#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/check.h"
#include "graph/graph_impl.h"
#include "synapse/ops.h"

namespace synapse::graph {

namespace {
thread_local Graph* g_default = nullptr;

std::string node_label(const Tensor& t) {
  if (!is_symbolic(t)) return "an eager tensor";
  const auto& r = detail::ref(t);
  return fmt::format("'{}'", r.graph->node(r.node).name);
}

// Shape-valued attributes where -1 means "the unknown extent" (reshape's single -1 means "infer").
bool is_shape_attr(const std::string& op, const std::string& attr) {
  if (attr == "input_shape" || attr == "filter_shape") return true;
  return attr == "shape" && op != "random_uniform";
}

Attrs to_trace_attrs(const std::string& op, const Attrs& attrs) {
  Attrs out;
  for (const auto& [k, v] : attrs.items()) {
    const auto* ints = std::get_if<std::vector<std::int64_t>>(&v);
    if (!ints || !is_shape_attr(op, k)) {
      out.set(k, v);
      continue;
    }
    std::vector<std::int64_t> s = *ints;
    const auto minus = std::count(s.begin(), s.end(), -1);
    if (op != "reshape" || minus > 1)
      for (auto& d : s)
        if (d == -1) d = kUnknownExtent;
    out.set(k, std::move(s));
  }
  return out;
}

Attrs to_public_attrs(const Attrs& attrs) {
  Attrs out;
  for (const auto& [k, v] : attrs.items()) {
    if (k == "seed") {
      out.set(k, v);
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      out.set(k, detail::is_unknown(*i) ? std::int64_t{-1} : *i);
    } else if (const auto* ints = std::get_if<std::vector<std::int64_t>>(&v)) {
      out.set(k, detail::public_shape(*ints));
    } else {
      out.set(k, v);
    }
  }
  return out;
}

// Shape errors raised during inference mention the stand-in extent; users should see -1.
std::string unsentinel(std::string msg) {
  const std::string s = std::to_string(kUnknownExtent);
  for (std::size_t p = msg.find(s); p != std::string::npos; p = msg.find(s, p + 2)) msg.replace(p, s.size(), "-1");
  return msg;
}

std::int64_t pow_i(std::int64_t b, int k) {
  std::int64_t r = 1;
  for (int i = 0; i < k; ++i) r *= b;
  return r;
}
}  // namespace

// ---- unknown extents ----
namespace detail {

bool is_unknown(std::int64_t d) { return d > 0 && d % kUnknownExtent == 0; }

Shape public_shape(const Shape& trace) {
  Shape s = trace;
  for (auto& d : s)
    if (is_unknown(d)) d = -1;
  return s;
}

Shape trace_shape_of_public(const Shape& pub) {
  Shape s = pub;
  for (auto& d : s)
    if (d == -1) d = kUnknownExtent;
  return s;
}

Attrs resolve_attrs(const Attrs& a, std::int64_t n, const std::string& who) {
  bool any = false;
  for (const auto& [k, v] : a.items()) {
    if (k == "seed") continue;
    if (const auto* i = std::get_if<std::int64_t>(&v)) any = any || is_unknown(*i);
    if (const auto* ints = std::get_if<std::vector<std::int64_t>>(&v))
      for (auto d : *ints) any = any || is_unknown(d);
  }
  if (!any) return a;
  SYN_CHECK(n >= 0, "Session::run: node '{}' has an attribute with an unknown extent ({}), but the fed placeholders "
            "do not give one batch size (feed the placeholders with -1 extents, with equal extents)",
            who, unsentinel(a.to_string()));
  auto resolve = [n](std::int64_t d) {
    if (!is_unknown(d)) return d;
    int k = 0;
    while (d % kUnknownExtent == 0) {
      d /= kUnknownExtent;
      ++k;
    }
    return d * pow_i(n, k);
  };
  Attrs out;
  for (const auto& [k, v] : a.items()) {
    if (k == "seed") {
      out.set(k, v);
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      out.set(k, resolve(*i));
    } else if (const auto* ints = std::get_if<std::vector<std::int64_t>>(&v)) {
      std::vector<std::int64_t> r = *ints;
      for (auto& d : r) d = resolve(d);
      out.set(k, std::move(r));
    } else {
      out.set(k, v);
    }
  }
  return out;
}

const SymbolicRef& ref(const Tensor& t) {
  SYN_CHECK(is_symbolic(t), "expected a graph tensor, got an eager one{}", t.defined() && !t.name().empty() ? " ('" + t.name() + "')" : "");
  return *t.impl()->symbolic;
}

Tensor zeros_like(Graph& g, const Tensor& t) {
  const Shape& ts = ref(t).trace_shape;
  const bool unknown = std::any_of(ts.begin(), ts.end(), is_unknown);
  if (!unknown) return g.constant(zeros(ts, t.dtype()), "zeros");
  Tensor z = g.constant(zeros(Shape(ts.size(), 1), t.dtype()), "zeros");
  return broadcast_to(z, ts);
}

bool elementwise_inplace_ok(const std::string& op) {
  static const char* const ok[] = {"add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "square", "abs",
                                   "relu", "sigmoid", "tanh", "leaky_relu", "clip", "maximum", "minimum"};
  return std::any_of(std::begin(ok), std::end(ok), [&](const char* s) { return op == s; });
}

// Graph mode's side of the dispatcher: the trace hook below hands an op call over here when any input
// is a graph tensor, or when an op without inputs runs inside a DefaultGraph scope.
// True when the call must add a node instead of running a kernel.
bool should_trace(const std::vector<Tensor>& inputs) {
  if (inputs.empty()) return g_default != nullptr;
  for (const auto& t : inputs)
    if (t.defined() && t.impl()->symbolic) return true;
  return false;
}

// Adds the op as a node of the inputs' graph (or of the default graph) and returns its symbolic outputs.
std::vector<Tensor> trace(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  Graph* g = nullptr;
  for (const auto& t : inputs) {
    if (!t.defined() || !t.impl()->symbolic) continue;
    Graph* tg = t.impl()->symbolic->graph;
    SYN_CHECK(g == nullptr || g == tg, "{}: inputs come from two different graphs", op.name());
    g = tg;
  }
  if (!g) g = g_default;
  SYN_CHECK(g != nullptr, "{}: no graph to add the op to", op.name());
  Graph::Impl& G = g->impl();
  if (op.num_inputs() >= 0)
    SYN_CHECK(static_cast<int>(inputs.size()) == op.num_inputs(), "{}: expected {} inputs, got {}", op.name(),
              op.num_inputs(), inputs.size());
  std::vector<Tensor> ins;
  std::vector<TensorMeta> metas;
  bool requires_grad = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SYN_CHECK(inputs[i].defined(), "{}: input {} is an undefined tensor", op.name(), i);
    Tensor t = G.capture(inputs[i]);
    const auto& r = ref(t);
    metas.push_back({r.trace_shape, t.dtype()});
    requires_grad = requires_grad || G.ex(r.node).requires_grad;
    ins.push_back(G.make_output(r.node, r.output));
  }
  SYN_CHECK(static_cast<bool>(op.shape_fn()), "{}: op has no shape rule", op.name());
  const Attrs ta = to_trace_attrs(op.name(), attrs);
  std::vector<TensorMeta> outs;
  try {
    outs = op.shape_fn()(metas, ta);
  } catch (const Error& e) {
    std::string msg = unsentinel(e.what());
    std::string names;
    for (const auto& t : ins) names += fmt::format("{}{} {}", names.empty() ? "" : ", ", node_label(t), to_string(t.shape()));
    if (msg.rfind(op.name() + ":", 0) != 0) msg = op.name() + ": " + msg;
    throw Error(msg + " (graph inputs: " + names + ")");
  }
  Node n;
  n.name = G.unique_name(op.name());
  n.op = op.name();
  n.attrs = to_public_attrs(ta);
  n.inputs = ins;
  NodeExtra e;
  e.def = &op;
  e.trace_attrs = ta;
  for (const auto& m : outs) {
    n.outputs.push_back({public_shape(m.shape), m.dtype});
    e.trace_shapes.push_back(m.shape);
  }
  e.requires_grad = requires_grad && op.differentiable();
  const int idx = G.add(std::move(n), std::move(e));
  std::vector<Tensor> result;
  for (std::size_t k = 0; k < outs.size(); ++k) result.push_back(G.make_output(idx, static_cast<int>(k)));
  return result;
}

// The dispatcher hands every op call to this hook first (ops know no graph: see op.h).
bool trace_hook(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs, std::vector<Tensor>& outputs) {
  if (!should_trace(inputs)) return false;
  outputs = trace(op, inputs, attrs);
  return true;
}
[[maybe_unused]] const bool g_trace_hook_installed = (set_trace_hook(&trace_hook), true);

}  // namespace detail

// ---- Graph::Impl ----
std::string Graph::Impl::scope_prefix() const {
  std::string p;
  for (const auto& s : scopes) p += s + "/";
  return p;
}

std::string Graph::Impl::unique_name(const std::string& base) {
  const std::string full = scope_prefix() + (base.empty() ? "node" : base);
  if (!by_name.contains(full)) return full;
  int& k = next_suffix[full];
  std::string name;
  do {
    name = fmt::format("{}_{}", full, ++k);
  } while (by_name.contains(name));
  return name;
}

int Graph::Impl::add(Node n, NodeExtra e) {
  const int idx = static_cast<int>(nodes.size());
  e.scope = scopes.empty() ? "" : scope_prefix().substr(0, scope_prefix().size() - 1);
  by_name.emplace(n.name, idx);
  nodes.push_back(std::move(n));
  extra.push_back(std::move(e));
  return idx;
}

Tensor Graph::Impl::make_output(int node, int k) const {
  const Node& n = nd(node);
  const NodeExtra& e = ex(node);
  SYN_CHECK(k >= 0 && k < static_cast<int>(n.outputs.size()), "graph node '{}' has {} outputs, asked for output {}",
            n.name, n.outputs.size(), k);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = n.outputs[static_cast<std::size_t>(k)].shape;
  impl->dtype = n.outputs[static_cast<std::size_t>(k)].dtype;
  impl->name = k == 0 ? n.name : fmt::format("{}:{}", n.name, k);
  impl->requires_grad = e.requires_grad && is_floating(impl->dtype);
  auto r = std::make_shared<SymbolicRef>();
  r->graph = self;
  r->node = node;
  r->output = k;
  r->trace_shape = e.trace_shapes[static_cast<std::size_t>(k)];
  impl->symbolic = std::move(r);
  return Tensor(std::move(impl));
}

Tensor Graph::Impl::capture(const Tensor& t) {
  if (t.impl()->symbolic) {
    SYN_CHECK(t.impl()->symbolic->graph == self, "graph tensor {} belongs to another graph", node_label(t));
    return t;
  }
  if (auto it = captured.find(t.impl()); it != captured.end()) return make_output(it->second.first, it->second.second);
  const bool var = t.requires_grad() && t.is_leaf();
  if (var) {
    auto it = variable_storage.find({t.impl()->storage.get(), t.impl()->offset});
    if (it != variable_storage.end() && nd(it->second).outputs[0].shape == t.shape()) return make_output(it->second, 0);
  }
  Node n;
  NodeExtra e;
  n.outputs.push_back({t.shape(), t.dtype()});
  e.trace_shapes.push_back(t.shape());
  e.keep = t;
  if (var) {
    // A parameter: the node shares its storage, so running the graph trains the eager tensor itself.
    n.name = unique_name(t.name().empty() ? "Variable" : t.name());
    n.op = "Variable";
    n.value = t;
    n.trainable = true;
    e.initial = t.clone();
    e.requires_grad = true;
  } else {
    n.name = unique_name(t.name().empty() ? "Const" : t.name());
    n.op = "Const";
    n.value = t.detach();
  }
  const int idx = add(std::move(n), std::move(e));
  captured.emplace(t.impl(), std::make_pair(idx, 0));
  if (var) variable_storage.emplace(std::make_pair(t.impl()->storage.get(), t.impl()->offset), idx);
  return make_output(idx, 0);
}

// ---- Graph ----
const std::string& Op::name() const {
  SYN_CHECK(defined(), "Op::name: undefined op");
  return graph->node(index).name;
}

Graph::Graph() : impl_(std::make_unique<Impl>()) { impl_->self = this; }
Graph::~Graph() = default;

Tensor Graph::placeholder(const std::string& name, const Shape& shape, DType dtype) {
  for (auto d : shape)
    SYN_CHECK(d >= -1, "placeholder '{}': extents must be >= 0 or -1 (unknown), got {}", name, to_string(shape));
  Node n;
  n.name = impl_->unique_name(name);
  n.op = "Placeholder";
  n.attrs.set("shape", shape).set("dtype", std::string(dtype_name(dtype)));
  n.outputs.push_back({shape, dtype});
  NodeExtra e;
  e.trace_shapes.push_back(detail::trace_shape_of_public(shape));
  return impl_->make_output(impl_->add(std::move(n), std::move(e)), 0);
}

namespace {

// Adds a Variable node whose value is `value` (its storage shared), registered so that capturing
// `value` (or anything on its storage) finds this node.
Tensor add_variable_node(Graph::Impl& G, const std::string& name, const Tensor& value, const Tensor& initial,
                         bool trainable) {
  Node n;
  n.name = G.unique_name(name);
  n.op = "Variable";
  n.value = value;
  n.trainable = trainable;
  n.outputs.push_back({value.shape(), value.dtype()});
  NodeExtra e;
  e.trace_shapes.push_back(value.shape());
  e.initial = initial;
  e.keep = value;
  e.requires_grad = trainable;
  const int idx = G.add(std::move(n), std::move(e));
  G.captured.insert_or_assign(value.impl(), std::make_pair(idx, 0));
  G.variable_storage.emplace(std::make_pair(value.impl()->storage.get(), value.impl()->offset), idx);
  return G.make_output(idx, 0);
}

}  // namespace

Tensor Graph::variable(const std::string& name, const Tensor& initial_value, bool trainable) {
  SYN_CHECK(initial_value.defined() && !is_symbolic(initial_value),
            "variable '{}': the initial value must be an eager tensor", name);
  Tensor value = initial_value.detach().clone();
  value.set_name(name);
  trainable = trainable && is_floating(value.dtype());
  if (trainable) value.requires_grad_();
  return add_variable_node(*impl_, name, value, initial_value.detach().clone(), trainable);
}

Tensor Graph::constant(const Tensor& value, const std::string& name) {
  SYN_CHECK(value.defined() && !is_symbolic(value), "constant{}: the value must be an eager tensor",
            name.empty() ? "" : " '" + name + "'");
  Node n;
  n.name = impl_->unique_name(name.empty() ? "Const" : name);
  n.op = "Const";
  n.value = value.detach().clone();
  n.outputs.push_back({value.shape(), value.dtype()});
  NodeExtra e;
  e.trace_shapes.push_back(value.shape());
  return impl_->make_output(impl_->add(std::move(n), std::move(e)), 0);
}

Op Graph::assign(const Tensor& variable, const Tensor& value, const std::string& name) {
  Tensor var = impl_->capture(variable);
  const auto& r = detail::ref(var);
  SYN_CHECK(node(r.node).op == "Variable", "assign '{}': {} is not a variable", name, node_label(var));
  Tensor v = impl_->capture(value);
  SYN_CHECK(detail::ref(v).trace_shape == r.trace_shape && v.dtype() == var.dtype(),
            "assign '{}': value {} {} does not match variable {} {} {}", name, node_label(v), to_string(v.shape()),
            node_label(var), to_string(var.shape()), dtype_name(var.dtype()));
  Node n;
  n.name = impl_->unique_name(name);
  n.op = "Assign";
  n.inputs = {var, v};
  return {this, impl_->add(std::move(n), NodeExtra{})};
}

Op Graph::group(const std::vector<Op>& ops, const std::string& name) {
  Node n;
  n.name = impl_->unique_name(name);
  n.op = "NoOp";
  for (const auto& o : ops) {
    SYN_CHECK(o.graph == this, "group '{}': an op belongs to another graph (or is undefined)", name);
    n.control_inputs.push_back(o.index);
  }
  return {this, impl_->add(std::move(n), NodeExtra{})};
}

Tensor Graph::with_dependencies(const std::vector<Op>& deps, const Tensor& t) {
  Tensor x = impl_->capture(t);
  // An identity (a reshape to the same trace shape, unknown extents included) with control inputs.
  Tensor id = reshape(x, detail::ref(x).trace_shape);
  Node& n = impl_->nodes[static_cast<std::size_t>(detail::ref(id).node)];
  for (const auto& o : deps) {
    SYN_CHECK(o.graph == this, "with_dependencies: an op belongs to another graph (or is undefined)");
    n.control_inputs.push_back(o.index);
  }
  return id;
}

Tensor Graph::capture(const Tensor& t) {
  SYN_CHECK(t.defined(), "capture: the tensor is undefined");
  return impl_->capture(t);
}

Tensor Graph::state(const Tensor& value, const std::string& name) {
  SYN_CHECK(value.defined() && !is_symbolic(value), "state '{}': the value must be an eager tensor", name);
  if (auto it = impl_->variable_storage.find({value.impl()->storage.get(), value.impl()->offset});
      it != impl_->variable_storage.end() && impl_->nd(it->second).outputs[0].shape == value.shape())
    return impl_->make_output(it->second, 0);
  // Shares the buffer's storage, so an assign updates the eager tensor.
  return add_variable_node(*impl_, !name.empty() ? name : value.name().empty() ? "state" : value.name(),
                           value.detach(), value.detach().clone(), false);
}

Op Graph::host_op(const std::string& name, const std::vector<Tensor>& inputs,
                  std::function<void(const std::vector<Tensor>&)> fn) {
  Node n;
  n.name = impl_->unique_name(name);
  n.op = "HostOp";
  for (const auto& t : inputs) {
    SYN_CHECK(t.defined(), "host_op '{}': an input is undefined", name);
    n.inputs.push_back(impl_->capture(t));
  }
  NodeExtra e;
  e.host_fn = std::move(fn);
  return {this, impl_->add(std::move(n), std::move(e))};
}

Op Graph::global_variables_initializer() {
  Impl* g = impl_.get();
  return host_op("init", {}, [g](const std::vector<Tensor>&) {
    for (std::size_t i = 0; i < g->nodes.size(); ++i) {
      if (g->nodes[i].op != "Variable") continue;
      const Tensor& v = g->nodes[i].value;
      const Tensor& init = g->extra[i].initial;
      std::memcpy(v.raw_data(), init.raw_data(), v.nbytes());
    }
  });
}

Graph::NameScope::NameScope(Graph& g, const std::string& name) : g_(&g), prev_size_(g.impl_->scopes.size()) {
  SYN_CHECK(!name.empty() && name.find('/') == std::string::npos, "name_scope: '{}' must be non-empty and without '/'",
            name);
  g.impl_->scopes.push_back(name);
}
Graph::NameScope::~NameScope() { g_->impl_->scopes.resize(prev_size_); }

std::vector<Tensor> Graph::variables(bool trainable_only) const {
  std::vector<Tensor> out;
  for (int i = 0; i < size(); ++i)
    if (node(i).op == "Variable" && (node(i).trainable || !trainable_only)) out.push_back(output(i));
  return out;
}

std::vector<std::pair<std::string, Tensor>> Graph::named_variables(bool trainable_only) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (int i = 0; i < size(); ++i)
    if (node(i).op == "Variable" && (node(i).trainable || !trainable_only)) out.emplace_back(node(i).name, node(i).value);
  return out;
}

Tensor Graph::value_of(const Tensor& variable) const {
  if (!is_symbolic(variable)) {
    const int i = variable_node_of(variable);
    SYN_CHECK(i >= 0, "value_of: the eager tensor is not a variable of this graph");
    return node(i).value;
  }
  const auto& r = detail::ref(variable);
  SYN_CHECK(r.graph == this, "value_of: {} belongs to another graph", node_label(variable));
  SYN_CHECK(node(r.node).op == "Variable", "value_of: {} is a {} node, not a variable", node_label(variable),
            node(r.node).op);
  return node(r.node).value;
}

int Graph::variable_node_of(const Tensor& value) const {
  if (!value.defined() || is_symbolic(value)) return -1;
  auto it = impl_->variable_storage.find({value.impl()->storage.get(), value.impl()->offset});
  return it == impl_->variable_storage.end() ? -1 : it->second;
}

int Graph::size() const { return static_cast<int>(impl_->nodes.size()); }

const Node& Graph::node(int i) const {
  SYN_CHECK(i >= 0 && i < size(), "graph node {} does not exist (the graph has {})", i, size());
  return impl_->nd(i);
}

int Graph::find(const std::string& name) const {
  auto it = impl_->by_name.find(name);
  return it == impl_->by_name.end() ? -1 : it->second;
}

Op Graph::op_of(const Tensor& t) const {
  const auto& r = detail::ref(t);
  SYN_CHECK(r.graph == this, "op_of: {} belongs to another graph", node_label(t));
  return {const_cast<Graph*>(this), r.node};
}

std::pair<int, int> Graph::producer(const Tensor& t) {
  const auto& r = detail::ref(t);
  return {r.node, r.output};
}

Tensor Graph::output(int node_index, int index) const {
  node(node_index);
  return impl_->make_output(node_index, index);
}

// ---- DOT ----
namespace {
std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

struct ScopeTree {
  std::vector<int> nodes;
  std::map<std::string, ScopeTree> children;
};
}  // namespace

std::string Graph::to_dot() const {
  ScopeTree root;
  for (int i = 0; i < size(); ++i) {
    ScopeTree* t = &root;
    std::stringstream ss(impl_->ex(i).scope);
    for (std::string part; std::getline(ss, part, '/');)
      if (!part.empty()) t = &t->children[part];
    t->nodes.push_back(i);
  }
  std::ostringstream os;
  os << "digraph synapse {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, "
        "fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=8];\n";
  int cluster = 0;
  std::function<void(const ScopeTree&, const std::string&, int)> emit = [&](const ScopeTree& t, const std::string& label,
                                                                            int depth) {
    const std::string ind(static_cast<std::size_t>(2 * depth + 2), ' ');
    if (!label.empty()) {
      os << ind << "subgraph cluster_" << cluster++ << " {\n" << ind << "  label=\"" << dot_escape(label)
         << "\"; style=\"rounded,filled\"; fillcolor=\"#f4f4f8\";\n";
    }
    for (int i : t.nodes) {
      const Node& n = node(i);
      const std::string short_name = n.name.substr(n.name.rfind('/') == std::string::npos ? 0 : n.name.rfind('/') + 1);
      std::string fill = "white";
      if (n.op == "Variable") fill = "#dbe9ff";
      else if (n.op == "Placeholder") fill = "#ffe9c7";
      else if (n.op == "Const") fill = "#eeeeee";
      else if (n.op == "HostOp" || n.op == "NoOp" || n.op == "Assign") fill = "#e3f5e1";
      const bool leaf = n.op == "Variable" || n.op == "Placeholder" || n.op == "Const";
      os << ind << "  n" << i << " [label=\"" << dot_escape(short_name)
         << (short_name == n.op ? "" : "\\n(" + dot_escape(n.op) + ")")
         << (leaf ? "\\n" + to_string(n.outputs[0].shape) : "") << "\", fillcolor=\"" << fill << "\"];\n";
    }
    for (const auto& [name, child] : t.children) emit(child, name, depth + (label.empty() ? 0 : 1));
    if (!label.empty()) os << ind << "}\n";
  };
  emit(root, "", 0);
  for (int i = 0; i < size(); ++i) {
    const Node& n = node(i);
    for (const auto& in : n.inputs) {
      const auto& r = detail::ref(in);
      os << "  n" << r.node << " -> n" << i << " [label=\"" << to_string(in.shape()) << "\"];\n";
    }
    for (int c : n.control_inputs) os << "  n" << c << " -> n" << i << " [style=dashed];\n";
  }
  os << "}\n";
  return os.str();
}

// ---- scopes and queries ----
DefaultGraph::DefaultGraph(Graph& g) : prev_(g_default) { g_default = &g; }
DefaultGraph::~DefaultGraph() { g_default = prev_; }
Graph* default_graph() { return g_default; }

bool is_symbolic(const Tensor& t) { return t.defined() && t.impl()->symbolic != nullptr; }
Graph* graph_of(const Tensor& t) { return is_symbolic(t) ? t.impl()->symbolic->graph : nullptr; }

namespace detail {
// Session::run clears the default graph while it runs ops (so input-less ops run eagerly).
Graph*& default_graph_slot() { return g_default; }
}  // namespace detail

}  // namespace synapse::graph
