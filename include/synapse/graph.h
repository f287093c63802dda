// Graph mode (define-then-run, as in TensorFlow 1) on the eager op set.
//
// A graph tensor is an ordinary Tensor whose TensorImpl is *symbolic*: it has no storage and names
// output k of node n of a Graph; shape() is the inferred shape, with -1 for an unknown extent (the
// batch). apply() (the op dispatcher) sees a symbolic input and adds a node instead of running a
// kernel, so every function of ops.h, every gradient function and every layer of nn.h works on graph
// tensors unchanged: calling a model on a placeholder traces it. An eager tensor used by a graph op
// becomes a Const node, except a leaf that requires gradients (a layer's parameter), which becomes a
// Variable node sharing that tensor's storage — a traced model trains its own parameters.
//
//   graph::Graph g;
//   Tensor x = g.placeholder("x", {-1, 784});
//   Tensor w = g.variable("w", truncated_normal({784, 10}, 0, 0.1f));
//   Tensor loss = mean(sparse_softmax_cross_entropy(matmul(x, w), g.placeholder("y", {-1}, DType::Int64)));
//   optim::SGD opt(g.named_variables(), {.learning_rate = 0.5});
//   graph::Op train = optim::minimize(opt, loss);
//   graph::Session s(g);
//   s.run(g.global_variables_initializer());
//   s.run({loss}, {{x, images}, {y, labels}}, {train});
//
// Unknown extents. Shape rules need real numbers, so during inference every unknown extent is the
// same large prime S (kUnknownExtent): a placeholder [-1, 784] is inferred as [S, 784]; an inferred
// extent divisible by S (S, 10·S, S²) reads back as -1. All unknown extents are therefore assumed to
// be one symbol, the batch N, while a graph is built (two placeholders [-1, 10] can be added). A
// shape-valued attribute (broadcast_to's "shape", conv2d_backprop_input's "input_shape", ...) that
// contains a multiple c·S^k (or -1, read as S) is resolved at run time to c·N^k, with N taken from
// the fed placeholders' unknown extents (which must then agree). Gradient functions see the
// internal extents (so a gradient through a reshape that merged the batch with other extents is
// exact); a Node's public `attrs` show -1 where the internal value is a multiple of S.
//
// Session::run evaluates only the nodes its fetches and targets need, with a plan cached per fetch
// set: constant folding (nodes whose inputs are all constants and whose shapes are known), each
// intermediate freed right after its last consumer, and buffer reuse: an elementwise op whose
// same-shape float input dies at that op writes its result into the input's buffer (the kernels read
// element i before writing element i). stats() reports the peak bytes of intermediates.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "synapse/op.h"
#include "synapse/tensor.h"

namespace synapse::graph {

class Graph;

// The internal stand-in for an unknown extent during shape inference (a prime).
inline constexpr std::int64_t kUnknownExtent = 1000003;

// A handle to a node (what Session::run can target: a train op, a group, an initializer).
struct Op {
  Graph* graph = nullptr;
  int index = -1;
  bool defined() const { return graph != nullptr && index >= 0; }
  const std::string& name() const;
};
using Feeds = std::vector<std::pair<Tensor, Tensor>>;  // placeholder -> value

struct Node {
  std::string name;            // unique, with name scopes: "layer1/weight", "layer1/matmul_1"
  std::string op;              // a registry op name ("matmul", "conv2d", ...) or one of the graph kinds:
                               // "Placeholder", "Variable", "Const", "Assign", "NoOp" (group), "HostOp"
  Attrs attrs;                 // the op's attributes as apply() received them (-1 for an unknown extent)
  std::vector<Tensor> inputs;  // symbolic tensors of this graph
  std::vector<int> control_inputs;  // nodes that must run first
  std::vector<TensorMeta> outputs;  // inferred shapes (-1 = unknown) and dtypes
  Tensor value;                // Const: the constant; Variable: its current value (real tensor)
  bool trainable = false;      // Variable: included in variables(true) and in gradients by minimize
};

class Graph {
 public:
  Graph();
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // A value fed at run time; -1 marks an unknown extent.
  Tensor placeholder(const std::string& name, const Shape& shape, DType dtype = DType::Float32);
  // A variable holding a copy of initial_value (usable at once; global_variables_initializer() copies
  // the initial value in again). Trainable float variables require gradients.
  Tensor variable(const std::string& name, const Tensor& initial_value, bool trainable = true);
  Tensor constant(const Tensor& value, const std::string& name = "");
  // Copies value's result into the variable's storage when run.
  Op assign(const Tensor& variable, const Tensor& value, const std::string& name = "assign");
  // A NoOp that runs `ops` first (in creation order).
  Op group(const std::vector<Op>& ops, const std::string& name = "group");
  // `t`, evaluated only after `deps` have run (an identity node with control inputs): how a traced
  // layer ties a state update (BatchNormalization's moving statistics) to its output.
  Tensor with_dependencies(const std::vector<Op>& deps, const Tensor& t);
  // The graph tensor standing for an eager tensor: a parameter's Variable (created on first use,
  // sharing its storage), else a Const. What the dispatcher does with eager inputs of graph ops.
  Tensor capture(const Tensor& t);
  // A non-trainable Variable sharing an eager tensor's storage (a layer's buffer), so that an
  // assign run in the graph updates the eager tensor itself.
  Tensor state(const Tensor& value, const std::string& name = "");
  // A node that runs C++ on its inputs' values (how optimizers apply updates; no outputs).
  Op host_op(const std::string& name, const std::vector<Tensor>& inputs,
             std::function<void(const std::vector<Tensor>&)> fn);
  // Re-initialises every variable to its initial value (traced parameters: their value when traced).
  Op global_variables_initializer();

  // RAII name scope: nodes created while it lives are named "scope/...". Scopes nest.
  class NameScope {
   public:
    NameScope(Graph& g, const std::string& name);
    ~NameScope();
    NameScope(const NameScope&) = delete;
    NameScope& operator=(const NameScope&) = delete;

   private:
    Graph* g_;
    std::size_t prev_size_;
  };
  [[nodiscard]] NameScope name_scope(const std::string& name) { return NameScope(*this, name); }

  std::vector<Tensor> variables(bool trainable_only = true) const;  // symbolic handles
  // (node name, real value) of each variable: what an optimizer is constructed with.
  std::vector<std::pair<std::string, Tensor>> named_variables(bool trainable_only = true) const;
  Tensor value_of(const Tensor& variable) const;  // the real tensor behind a Variable
  // The Variable node whose value shares `value`'s storage (-1 when none).
  int variable_node_of(const Tensor& value) const;

  int size() const;
  const Node& node(int i) const;  // nodes in creation (topological) order
  int find(const std::string& name) const;  // node index by name, -1 when absent
  Op op_of(const Tensor& t) const;  // producing node
  static std::pair<int, int> producer(const Tensor& t);  // (node index, output index) of a graph tensor
  Tensor output(int node, int index = 0) const;  // symbolic handle of a node's output
  // Graphviz: name scopes as clusters, shapes on edges, control edges dashed.
  std::string to_dot() const;

  // ---- used by the dispatcher and Session (not needed by users) ----
  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Ops with no tensor inputs (random_uniform) go to the graph of the innermost live scope.
class DefaultGraph {
 public:
  explicit DefaultGraph(Graph& g);
  ~DefaultGraph();
  DefaultGraph(const DefaultGraph&) = delete;
  DefaultGraph& operator=(const DefaultGraph&) = delete;

 private:
  Graph* prev_;
};
Graph* default_graph();  // null outside a DefaultGraph scope

struct SessionStats {
  std::int64_t runs = 0;
  std::int64_t nodes_run = 0;            // op nodes executed in the last run (a fused group counts once)
  std::int64_t nodes_folded = 0;         // nodes replaced by constants in the last plan
  std::int64_t buffers_reused = 0;       // outputs written into a dying input's buffer, last run
  std::int64_t nodes_fused = 0;          // elementwise nodes run inside fused groups, last run
  std::int64_t fused_groups = 0;         // fused elementwise chains in the last run's plan
  std::int64_t peak_bytes = 0;           // peak bytes of intermediate values alive at once, last run
  std::int64_t total_bytes = 0;          // bytes of all intermediate values produced, last run
  std::int64_t plans = 0;                // plans built (one per distinct fetch/target set)
};

class Session {
 public:
  explicit Session(Graph& g);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Evaluates only what the fetches and targets need; errors name a missing feed or a fed shape that
  // does not match the placeholder's. Fetched values are never aliases of variables.
  std::vector<Tensor> run(const std::vector<Tensor>& fetches, const Feeds& feeds = {},
                          const std::vector<Op>& targets = {});
  Tensor run(const Tensor& fetch, const Feeds& feeds = {});
  void run(const Op& target, const Feeds& feeds = {});

  const SessionStats& stats() const { return stats_; }
  // Turns the optimisations off (for tests comparing against the plain schedule).
  void set_optimize(bool on) { optimize_ = on; }
  // Turns elementwise fusion alone off (the other optimisations stay), for tests and benchmarks.
  void set_fusion(bool on) { fuse_ = on; }

  struct State;

 private:
  Graph* g_;
  std::unique_ptr<State> state_;
  SessionStats stats_;
  bool optimize_ = true;
  bool fuse_ = true;
};

// Symbolic gradients of a scalar y: adds gradient nodes (the ops' own gradient functions, run on
// graph tensors) under the name scope "gradients". xs: any tensors of y's graph (variables,
// placeholders, intermediates); a gradient is zeros where y does not depend on x.
std::vector<Tensor> gradients(const Tensor& y, const std::vector<Tensor>& xs);
bool is_symbolic(const Tensor& t);
Graph* graph_of(const Tensor& t);  // null for an eager tensor

}  // namespace synapse::graph
