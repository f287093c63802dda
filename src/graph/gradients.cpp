// Symbolic gradients: the reverse walk of autograd's engine, over graph nodes, calling each op's own
// gradient function on graph tensors (so the gradient is itself a part of the graph).
#include <algorithm>
#include <map>
#include <set>

#include "core/check.h"
#include "graph/graph_impl.h"
#include "synapse/ops.h"

namespace synapse::graph {

std::vector<Tensor> gradients(const Tensor& y, const std::vector<Tensor>& xs) {
  SYN_CHECK(is_symbolic(y), "gradients: y must be a graph tensor");
  Graph& g = *graph_of(y);
  Graph::Impl& G = g.impl();
  using Key = std::pair<int, int>;

  // Gradient functions see the internal extents (see graph.h: "Unknown extents").
  bool& trace_shapes = synapse::detail::symbolic_trace_shapes();
  const bool saved = trace_shapes;
  trace_shapes = true;
  struct Restore {
    bool& t;
    bool v;
    ~Restore() { t = v; }
  } restore{trace_shapes, saved};
  auto scope = g.name_scope("gradients");

  Tensor root = y;
  if (detail::ref(y).trace_shape.size() != 0) root = sum(y);  // d(sum y)/dx, as tf.gradients
  SYN_CHECK(is_floating(root.dtype()), "gradients: y must be a float tensor, got {}", dtype_name(root.dtype()));
  const auto [ynode, yout] = Graph::producer(root);

  // The xs as (node, output); an eager tensor counts when it was captured (a traced parameter).
  std::vector<Key> xkeys;
  for (const auto& x : xs) {
    SYN_CHECK(x.defined(), "gradients: an x is undefined");
    if (is_symbolic(x)) {
      SYN_CHECK(graph_of(x) == &g, "gradients: x '{}' belongs to another graph", x.name());
      xkeys.push_back(Graph::producer(x));
    } else {
      auto it = G.captured.find(x.impl());
      xkeys.push_back(it != G.captured.end() ? it->second : Key{g.variable_node_of(x), 0});  // -1: unused, zero
    }
  }

  // Values depending on some x (forward), among the nodes y depends on (backward).
  const auto n = static_cast<std::size_t>(ynode) + 1;
  std::vector<char> from_x(n, 0), to_y(n, 0);
  std::set<Key> xset(xkeys.begin(), xkeys.end());
  auto value_from_x = [&](const Tensor& in) {
    const auto& r = *in.impl()->symbolic;
    return xset.contains({r.node, r.output}) || (static_cast<std::size_t>(r.node) < n && from_x[static_cast<std::size_t>(r.node)]);
  };
  for (std::size_t i = 0; i < n; ++i) {
    const Node& nd = G.nodes[i];
    if (!G.extra[i].def) continue;
    for (const auto& in : nd.inputs) from_x[i] = from_x[i] || value_from_x(in);
  }
  to_y.back() = 1;  // y itself
  for (std::size_t i = n; i-- > 0;) {
    if (!to_y[i] || !G.extra[i].def) continue;
    for (const auto& in : G.nodes[i].inputs) to_y[static_cast<std::size_t>(in.impl()->symbolic->node)] = 1;
  }

  std::map<Key, Tensor> buf;
  buf[{ynode, yout}] = g.constant(ones(detail::ref(root).trace_shape, root.dtype()), "grad_ys");
  auto accumulate = [&](const Key& k, const Tensor& t) {
    auto [it, fresh] = buf.try_emplace(k, t);
    if (!fresh) it->second = add(it->second, t);
  };
  for (std::size_t i = n; i-- > 0;) {
    const NodeExtra& e = G.extra[i];
    if (!to_y[i] || !from_x[i] || !e.def) continue;
    const Node& nd = G.nodes[i];
    const int ii = static_cast<int>(i);
    if (!e.def->differentiable()) continue;  // piecewise constant (argmax, comparisons, masks): no gradient
    std::vector<Tensor> outs, dys;
    bool any = false;
    for (std::size_t k = 0; k < nd.outputs.size(); ++k) {
      outs.push_back(G.make_output(ii, static_cast<int>(k)));
      auto it = buf.find({ii, static_cast<int>(k)});
      any = any || it != buf.end();
      dys.push_back(it != buf.end() ? it->second : detail::zeros_like(g, outs.back()));
    }
    if (!any) continue;
    // Inputs as the gradient function expects them: requires_grad where a gradient is wanted.
    std::vector<Tensor> ins;
    for (const auto& in : nd.inputs) {
      auto impl = std::make_shared<TensorImpl>(*in.impl());
      impl->requires_grad = value_from_x(in) && is_floating(impl->dtype);
      ins.emplace_back(std::move(impl));
    }
    const GradCtx ctx{ins, outs, dys, e.trace_attrs};
    std::vector<Tensor> gx;
    try {
      gx = e.def->grad_fn()(ctx);
    } catch (const Error& err) {
      throw Error(fmt::format("gradients: gradient of node '{}' ({}): {}", nd.name, nd.op, err.what()));
    }
    SYN_CHECK(gx.size() == ins.size(), "gradients of '{}': gradient function returned {} gradients for {} inputs", nd.name,
              gx.size(), ins.size());
    for (std::size_t j = 0; j < gx.size(); ++j) {
      if (!ins[j].requires_grad() || !gx[j].defined()) continue;
      const auto& r = *ins[j].impl()->symbolic;
      Tensor gj = is_symbolic(gx[j]) ? gx[j] : g.constant(gx[j], "grad");
      SYN_CHECK(detail::ref(gj).trace_shape == r.trace_shape,
                "gradients of '{}': gradient for input {} has shape {}, input has {}", nd.name, j, to_string(gj.shape()),
                to_string(ins[j].impl()->shape));
      accumulate({r.node, r.output}, gj);
    }
  }

  std::vector<Tensor> out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    auto it = buf.find(xkeys[i]);
    if (it != buf.end()) {
      out.push_back(it->second);
    } else if (xkeys[i].first >= 0) {
      out.push_back(detail::zeros_like(g, G.make_output(xkeys[i].first, xkeys[i].second)));
    } else {
      out.push_back(g.constant(zeros(xs[i].shape(), xs[i].dtype()), "zeros"));
    }
  }
  return out;
}

}  // namespace synapse::graph
