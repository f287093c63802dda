// Graph internals shared by graph.cpp, session.cpp and gradients.cpp.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "synapse/graph.h"

namespace synapse::graph {

// What a node needs beyond the public Node.
struct NodeExtra {
  const OpDef* def = nullptr;       // registry ops only
  Attrs trace_attrs;                // attrs with unknown extents as multiples of kUnknownExtent
  std::vector<Shape> trace_shapes;  // inferred output shapes, unknown extents as multiples of kUnknownExtent
  bool requires_grad = false;       // outputs depend on a trainable variable
  Tensor initial;                   // Variable: the value global_variables_initializer restores
  Tensor keep;                      // a captured eager tensor, kept alive (its address is a lookup key)
  std::function<void(const std::vector<Tensor>&)> host_fn;  // HostOp
  std::string scope;                // name scope at creation ("a/b"), for to_dot's clusters
};

struct Graph::Impl {
  Graph* self = nullptr;
  std::vector<Node> nodes;
  std::vector<NodeExtra> extra;
  std::vector<std::string> scopes;
  std::unordered_map<std::string, int> by_name;
  std::unordered_map<std::string, int> next_suffix;
  std::unordered_map<const TensorImpl*, std::pair<int, int>> captured;  // eager tensor -> (node, output)
  std::map<std::pair<const Storage*, std::size_t>, int> variable_storage;  // (storage, offset) -> Variable

  std::string scope_prefix() const;
  std::string unique_name(const std::string& base);
  int add(Node n, NodeExtra e);
  Tensor make_output(int node, int k) const;
  // A graph tensor for t: t itself when symbolic (of this graph), else its Const or Variable node.
  Tensor capture(const Tensor& t);
  const NodeExtra& ex(int i) const { return extra[static_cast<std::size_t>(i)]; }
  const Node& nd(int i) const { return nodes[static_cast<std::size_t>(i)]; }
};

namespace detail {
// Unknown extents: -1 (public) <-> multiples of kUnknownExtent (internal).
bool is_unknown(std::int64_t d);
Shape public_shape(const Shape& trace);
Shape trace_shape_of_public(const Shape& pub);
// Resolves multiples c·S^k in every int attribute (but "seed") to c·n^k; n < 0: throws naming `who`.
Attrs resolve_attrs(const Attrs& a, std::int64_t n, const std::string& who);
const SymbolicRef& ref(const Tensor& t);
// The thread's default graph (Session::run clears it while running ops).
Graph*& default_graph_slot();
// Zeros shaped like a graph tensor (unknown extents resolved at run time).
Tensor zeros_like(Graph& g, const Tensor& t);
// Ops whose kernel may write its output into a same-shape input (element i read before i is written).
bool elementwise_inplace_ok(const std::string& op);
}  // namespace detail

}  // namespace synapse::graph
