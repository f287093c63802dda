// Session: plans (reachability, constant folding, lifetimes) and runs them with the eager kernels.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "backend/cpu/fused.h"
#include "core/check.h"
#include "graph/graph_impl.h"
#include "synapse/autograd.h"
#include "synapse/random.h"

namespace synapse::graph {

namespace {

using ValueKey = std::pair<int, int>;  // (node, output)

struct Step {
  int node;
  std::vector<ValueKey> release;  // values whose last consumer is this node
  int group = -1;                 // >= 0: runs the fused group (node is its root)
};

// A chain of elementwise nodes run as one pointwise program (backend/cpu/fused.h): the nodes'
// intermediates never become tensors. Built only from ops with a pointwise body, all float32, whose
// intermediates are used by the chain alone.
struct FusedGroup {
  std::vector<int> members;                           // nodes in execution order; the last is the root
  std::vector<ValueKey> inputs;                       // values read from outside the group
  std::vector<cpu::PointwiseInput::Layout> layouts;   // how each input spans the root's shape
  std::vector<std::int64_t> rows;                     // row length of Row inputs
  std::vector<std::unique_ptr<PointwiseFn>> fns;      // bound block bodies (stable addresses)
  std::vector<cpu::PointwiseInstr> code;
  int temps = 0;
  Shape shape;                                        // the root's shape when known at plan time
  int full_input = -1;                                // else: an input of the root's shape
};

struct Plan {
  std::vector<Step> steps;                            // nodes to execute, in topological order
  std::vector<int> placeholders;                      // placeholders the steps read
  std::unordered_map<int, std::vector<Tensor>> fixed;  // Const and folded nodes: their values
  std::unordered_set<int> variables;                   // Variable nodes the steps read
  std::vector<FusedGroup> groups;
  // Per node: the batch its resolved attributes are for, and them (filled while running).
  mutable std::unordered_map<int, std::pair<std::int64_t, Attrs>> attrs;
  std::int64_t folded = 0;
  bool uses_batch = false;
};

bool is_random(const NodeExtra& e) { return e.def && e.trace_attrs.has("seed"); }

bool known(const NodeExtra& e) {
  for (const auto& s : e.trace_shapes)
    for (auto d : s)
      if (detail::is_unknown(d)) return false;
  return true;
}

std::string key_of(const std::vector<ValueKey>& fetches, const std::vector<Op>& targets, bool optimize, bool fuse) {
  std::string k = optimize ? (fuse ? "f" : "o") : "p";
  for (const auto& [n, o] : fetches) k += fmt::format("{}:{},", n, o);
  k += "|";
  for (const auto& t : targets) k += fmt::format("{},", t.index);
  return k;
}

}  // namespace

struct Session::State {
  std::unordered_map<std::string, Plan> plans;
  std::unordered_map<int, Generator> rngs;  // random nodes: a seed per run from the node's generator
};

Session::Session(Graph& g) : g_(&g), state_(std::make_unique<State>()) {}
Session::~Session() = default;

namespace {

// Nodes needed by the roots, walking inputs and control inputs, stopping at `leaves`.
std::vector<char> reachable(const Graph::Impl& G, const std::vector<int>& roots,
                            const std::unordered_map<int, std::vector<Tensor>>& leaves) {
  std::vector<char> need(G.nodes.size(), 0);
  std::vector<int> stack = roots;
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    if (need[static_cast<std::size_t>(i)]) continue;
    need[static_cast<std::size_t>(i)] = 1;
    if (leaves.contains(i)) continue;
    const Node& n = G.nd(i);
    for (const auto& in : n.inputs) stack.push_back(in.impl()->symbolic->node);
    for (int c : n.control_inputs) stack.push_back(c);
  }
  return need;
}

void fuse_elementwise(const Graph::Impl& G, const std::set<ValueKey>& fetched, Plan& p);

ValueKey key_of_input(const Tensor& in) {
  const auto& r = *in.impl()->symbolic;
  return {r.node, r.output};
}

Plan make_plan(const Graph::Impl& G, const std::vector<ValueKey>& fetches, const std::vector<Op>& targets,
               bool optimize, bool fuse) {
  std::vector<int> roots;
  for (const auto& f : fetches) roots.push_back(f.first);
  for (const auto& t : targets) roots.push_back(t.index);
  Plan p;
  std::vector<char> need = reachable(G, roots, p.fixed);
  for (std::size_t i = 0; i < need.size(); ++i) {
    if (!need[i]) continue;
    const Node& n = G.nodes[i];
    if (n.op == "Const") p.fixed[static_cast<int>(i)] = {n.value};
  }
  if (optimize) {
    // Constant folding: an op whose inputs are all constants, that draws no random numbers and whose
    // shapes are known, is computed once here.
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < need.size(); ++i) {
      const NodeExtra& e = G.extra[i];
      const Node& n = G.nodes[i];
      if (!need[i] || !e.def || is_random(e) || !known(e) || n.inputs.empty() || !n.control_inputs.empty()) continue;
      bool all_const = true;
      std::vector<Tensor> ins;
      for (const auto& in : n.inputs) {
        const auto& r = *in.impl()->symbolic;
        auto it = p.fixed.find(r.node);
        if (it == p.fixed.end()) {
          all_const = false;
          break;
        }
        ins.push_back(it->second[static_cast<std::size_t>(r.output)]);
      }
      if (!all_const) continue;
      p.fixed[static_cast<int>(i)] = apply(*e.def, ins, e.trace_attrs);
      ++p.folded;
    }
    need = reachable(G, roots, p.fixed);
  }
  std::set<ValueKey> fetched(fetches.begin(), fetches.end());
  for (std::size_t i = 0; i < need.size(); ++i) {
    if (!need[i]) continue;
    const int ii = static_cast<int>(i);
    const Node& n = G.nodes[i];
    if (p.fixed.contains(ii)) continue;
    if (n.op == "Placeholder") {
      p.placeholders.push_back(ii);
      continue;
    }
    if (n.op == "Variable") {
      p.variables.insert(ii);
      continue;
    }
    for (const auto& [k, v] : G.extra[i].trace_attrs.items()) {
      if (k == "seed") continue;
      if (const auto* x = std::get_if<std::int64_t>(&v)) p.uses_batch = p.uses_batch || detail::is_unknown(*x);
      if (const auto* xs = std::get_if<std::vector<std::int64_t>>(&v))
        for (auto d : *xs) p.uses_batch = p.uses_batch || detail::is_unknown(d);
    }
    p.steps.push_back({ii, {}});
  }
  if (fuse) fuse_elementwise(G, fetched, p);
  // Last consumer of each value (a fused group reads its inputs at its root), so it is freed right after.
  std::map<ValueKey, int> last_use;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const Step& st = p.steps[k];
    if (st.group >= 0) {
      for (const auto& key : p.groups[static_cast<std::size_t>(st.group)].inputs) last_use[key] = static_cast<int>(k);
    } else {
      for (const auto& in : G.nd(st.node).inputs) last_use[key_of_input(in)] = static_cast<int>(k);
    }
  }
  for (const auto& [key, step] : last_use)
    if (!fetched.contains(key)) p.steps[static_cast<std::size_t>(step)].release.push_back(key);
  return p;
}

// ---- elementwise fusion ----

const Shape& trace_shape_of(const Tensor& in) { return in.impl()->symbolic->trace_shape; }

// How a value of trace shape `s` spans a group of trace shape `S`; false when it can't be a block input.
bool classify(const Shape& s, const Shape& S, cpu::PointwiseInput::Layout& layout, std::int64_t& row) {
  using L = cpu::PointwiseInput::Layout;
  if (s == S) {
    layout = L::Full;
    return true;
  }
  if (std::all_of(s.begin(), s.end(), [](std::int64_t d) { return d == 1; })) {
    layout = L::One;
    return true;
  }
  // A row: s without its leading 1s equals the trailing dimensions of S, all known.
  std::size_t lead = 0;
  while (lead < s.size() && s[lead] == 1) ++lead;
  const std::size_t k = s.size() - lead;
  if (k > S.size()) return false;
  std::int64_t len = 1;
  for (std::size_t j = 0; j < k; ++j) {
    const std::int64_t d = s[lead + j];
    if (d != S[S.size() - k + j] || detail::is_unknown(d)) return false;
    len *= d;
  }
  if (len > (1 << 16)) return false;  // the tile would not stay in cache
  layout = L::Row;
  row = len;
  return true;
}

// Whether node i may be part of a fused group: an op with a pointwise body, float32 in and out, one
// output, no randomness and no control dependencies either way.
bool fusable(const Graph::Impl& G, int i, const std::unordered_set<int>& control_targets) {
  const NodeExtra& e = G.ex(i);
  const Node& n = G.nd(i);
  if (!e.def || !e.def->pointwise_fn() || is_random(e) || !n.control_inputs.empty() || control_targets.contains(i))
    return false;
  if (n.outputs.size() != 1 || n.outputs[0].dtype != DType::Float32 || n.inputs.size() > 3) return false;
  for (const auto& in : n.inputs)
    if (in.dtype() != DType::Float32) return false;
  return true;
}

// Groups chains of elementwise steps: a producer joins its consumer's group when the consumer is its
// only user, it is not fetched, it has the group's shape, and no Assign or host op runs in between.
// Groups of one node stay ordinary steps.
void fuse_elementwise(const Graph::Impl& G, const std::set<ValueKey>& fetched, Plan& p) {
  using L = cpu::PointwiseInput::Layout;
  std::map<ValueKey, int> uses;
  std::unordered_set<int> control_targets;
  std::vector<int> barriers_before(p.steps.size() + 1, 0);  // Assign / host-op steps before step k
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const int i = p.steps[k].node;
    for (const auto& in : G.nd(i).inputs) ++uses[key_of_input(in)];
    for (int c : G.nd(i).control_inputs) control_targets.insert(c);
    barriers_before[k + 1] = barriers_before[k] + (G.ex(i).def ? 0 : 1);
  }
  struct Building {
    std::vector<int> members;
    std::vector<std::size_t> steps;  // step index of each member
    std::int64_t rows = 1;            // lcm of the row lengths
  };
  std::unordered_map<int, Building> group_of;  // root node -> its group so far
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const int i = p.steps[k].node;
    if (!fusable(G, i, control_targets)) continue;
    const Shape& S = G.ex(i).trace_shapes[0];
    Building b;
    bool ok = true;
    for (const auto& in : G.nd(i).inputs) {
      L layout;
      std::int64_t row = 0;
      const ValueKey key = key_of_input(in);
      auto producer = group_of.find(key.first);
      const bool joins = producer != group_of.end() && key.second == 0 && !fetched.contains(key) &&
                         G.ex(key.first).trace_shapes[0] == S &&
                         barriers_before[k] == barriers_before[producer->second.steps.front()];
      if (joins) {
        int here = 0;
        for (const auto& j : G.nd(i).inputs) here += key_of_input(j) == key ? 1 : 0;
        if (uses[key] == here && std::lcm(b.rows, producer->second.rows) <= (1 << 16)) {
          auto& pb = producer->second;
          // A producer shared by two inputs (x * x) joins once.
          if (std::find(b.members.begin(), b.members.end(), pb.members.back()) == b.members.end()) {
            b.members.insert(b.members.end(), pb.members.begin(), pb.members.end());
            b.steps.insert(b.steps.end(), pb.steps.begin(), pb.steps.end());
            b.rows = std::lcm(b.rows, pb.rows);
          }
          continue;
        }
      }
      if (!classify(trace_shape_of(in), S, layout, row)) {
        ok = false;
        break;
      }
      if (layout == L::Row) b.rows = std::lcm(b.rows, row);
    }
    if (!ok || b.rows > (1 << 16)) continue;
    for (const int m : b.members) group_of.erase(m);
    b.members.push_back(i);
    b.steps.push_back(k);
    group_of[i] = std::move(b);
  }

  // Materialise the groups of two or more nodes, and rewrite the step list.
  std::unordered_map<int, int> root_group;  // root node -> index in p.groups
  std::unordered_set<int> absorbed;
  for (auto& [root, b] : group_of) {
    if (b.members.size() < 2) continue;
    // Members in step order, so every producer comes before its consumer.
    std::vector<std::pair<std::size_t, int>> order;
    for (std::size_t j = 0; j < b.members.size(); ++j) order.emplace_back(b.steps[j], b.members[j]);
    std::sort(order.begin(), order.end());
    FusedGroup g;
    const Shape& S = G.ex(root).trace_shapes[0];
    std::unordered_map<int, int> temp_of;
    for (const auto& [st, m] : order) g.members.push_back(m);
    for (std::size_t j = 0; j + 1 < g.members.size(); ++j) temp_of[g.members[j]] = static_cast<int>(j);
    for (const int m : g.members) {
      const NodeExtra& e = G.ex(m);
      g.fns.push_back(std::make_unique<PointwiseFn>(e.def->pointwise_fn()(e.trace_attrs)));
      cpu::PointwiseInstr ins;
      ins.fn = g.fns.back().get();
      ins.nin = static_cast<int>(G.nd(m).inputs.size());
      for (int j = 0; j < ins.nin; ++j) {
        const Tensor& in = G.nd(m).inputs[static_cast<std::size_t>(j)];
        const ValueKey key = key_of_input(in);
        if (auto t = temp_of.find(key.first); t != temp_of.end() && key.second == 0) {
          ins.in[j] = -1 - t->second;
          continue;
        }
        auto at = std::find(g.inputs.begin(), g.inputs.end(), key);
        if (at == g.inputs.end()) {
          L layout = L::Full;
          std::int64_t row = 0;
          classify(trace_shape_of(in), S, layout, row);
          g.inputs.push_back(key);
          g.layouts.push_back(layout);
          g.rows.push_back(row);
          if (layout == L::Full && g.full_input < 0) g.full_input = static_cast<int>(g.inputs.size()) - 1;
          at = g.inputs.end() - 1;
        }
        ins.in[j] = static_cast<int>(at - g.inputs.begin());
      }
      ins.out = m == root ? -1 : temp_of.at(m);
      g.code.push_back(ins);
    }
    // Scratch slots: a temporary's slot is free again after its last reader, which may write its own
    // result there (elementwise, in place); a chain needs one or two slots, which stay in L1.
    {
      std::vector<int> last_read(g.code.size(), -1);  // per temporary (member index)
      for (std::size_t k = 0; k < g.code.size(); ++k)
        for (int j = 0; j < g.code[k].nin; ++j)
          if (g.code[k].in[j] < 0) last_read[static_cast<std::size_t>(-1 - g.code[k].in[j])] = static_cast<int>(k);
      std::vector<int> slot_of(g.code.size(), -1), free_slots;
      int slots = 0;
      for (std::size_t k = 0; k < g.code.size(); ++k) {
        auto& ins = g.code[k];
        for (int j = 0; j < ins.nin; ++j) {
          if (ins.in[j] >= 0) continue;
          const auto t = static_cast<std::size_t>(-1 - ins.in[j]);
          ins.in[j] = -1 - slot_of[t];
          if (last_read[t] == static_cast<int>(k) &&
              std::find(free_slots.begin(), free_slots.end(), slot_of[t]) == free_slots.end())
            free_slots.push_back(slot_of[t]);
        }
        if (ins.out < 0) continue;
        int slot = slots;
        if (!free_slots.empty()) {
          slot = free_slots.back();
          free_slots.pop_back();
        } else {
          ++slots;
        }
        slot_of[static_cast<std::size_t>(ins.out)] = slot;
        ins.out = slot;
      }
      g.temps = slots;
    }
    const bool shape_known = std::none_of(S.begin(), S.end(), [](std::int64_t d) { return detail::is_unknown(d); });
    if (!shape_known && g.full_input < 0) continue;  // no way to know the output's extent at run time
    if (shape_known) g.shape = S;
    for (const int m : g.members)
      if (m != root) absorbed.insert(m);
    root_group[root] = static_cast<int>(p.groups.size());
    p.groups.push_back(std::move(g));
  }
  if (p.groups.empty()) return;
  std::vector<Step> steps;
  for (auto& st : p.steps) {
    if (absorbed.contains(st.node)) continue;
    if (auto it = root_group.find(st.node); it != root_group.end()) st.group = it->second;
    steps.push_back(std::move(st));
  }
  p.steps = std::move(steps);
}

// Live bytes of intermediates, counted once per storage.
struct MemoryMeter {
  std::unordered_map<const Storage*, std::pair<std::int64_t, int>> live;  // bytes, references
  std::unordered_set<const Storage*> external;                          // variables, constants, feeds
  std::int64_t now = 0, peak = 0, total = 0;
  void acquire(const Tensor& t) {
    const Storage* s = t.impl()->storage.get();
    if (!s || external.contains(s)) return;
    auto [it, fresh] = live.try_emplace(s, static_cast<std::int64_t>(t.impl()->storage->nbytes()), 0);
    if (fresh) {
      now += it->second.first;
      total += it->second.first;
      peak = std::max(peak, now);
    }
    ++it->second.second;
  }
  void release(const Tensor& t) {
    const Storage* s = t.impl()->storage.get();
    auto it = live.find(s);
    if (it == live.end()) return;
    if (--it->second.second == 0) {
      now -= it->second.first;
      live.erase(it);
    }
  }
};

}  // namespace

std::vector<Tensor> Session::run(const std::vector<Tensor>& fetches, const Feeds& feeds, const std::vector<Op>& targets) {
  Graph::Impl& G = g_->impl();
  std::vector<ValueKey> fkeys;
  for (const auto& f : fetches) {
    SYN_CHECK(is_symbolic(f) && graph_of(f) == g_, "Session::run: fetch {} is not a tensor of this session's graph",
              f.defined() && !f.name().empty() ? "'" + f.name() + "'" : "");
    const auto& r = detail::ref(f);
    fkeys.emplace_back(r.node, r.output);
  }
  for (const auto& t : targets)
    SYN_CHECK(t.graph == g_ && t.index >= 0 && t.index < g_->size(), "Session::run: a target is not an op of this graph");

  // Anomaly mode checks every op's output by name: it runs the plan without fused groups.
  const bool fuse = optimize_ && fuse_ && !anomaly_mode();
  const std::string key = key_of(fkeys, targets, optimize_, fuse);
  auto pit = state_->plans.find(key);
  if (pit == state_->plans.end()) {
    pit = state_->plans.emplace(key, make_plan(G, fkeys, targets, optimize_, fuse)).first;
    ++stats_.plans;
  }
  const Plan& plan = pit->second;

  // Feeds: placeholders only, dtype and known extents checked; the batch N from the unknown extents.
  std::unordered_map<int, Tensor> fed;
  std::int64_t batch = -1;
  bool batch_conflict = false;
  for (const auto& [ph, value] : feeds) {
    SYN_CHECK(is_symbolic(ph) && graph_of(ph) == g_, "Session::run: a feed key is not a tensor of this graph");
    const auto& r = detail::ref(ph);
    const Node& n = G.nd(r.node);
    SYN_CHECK(n.op == "Placeholder", "Session::run: '{}' is a {} node; only placeholders can be fed", n.name, n.op);
    SYN_CHECK(value.defined() && !is_symbolic(value), "Session::run: the value fed to placeholder '{}' must be an eager tensor",
              n.name);
    const Shape& want = n.outputs[0].shape;
    bool ok = want.size() == value.shape().size();
    for (std::size_t d = 0; ok && d < want.size(); ++d) ok = want[d] == -1 || want[d] == value.shape()[d];
    SYN_CHECK(ok, "Session::run: placeholder '{}' expects shape {}, fed a tensor of shape {}", n.name, to_string(want),
              to_string(value.shape()));
    SYN_CHECK(value.dtype() == n.outputs[0].dtype, "Session::run: placeholder '{}' expects dtype {}, fed {}", n.name,
              dtype_name(n.outputs[0].dtype), dtype_name(value.dtype()));
    for (std::size_t d = 0; d < want.size(); ++d) {
      if (want[d] != -1) continue;
      if (batch < 0) batch = value.shape()[d];
      else if (batch != value.shape()[d]) batch_conflict = true;
    }
    fed[r.node] = value;
  }
  if (batch_conflict) batch = -1;
  for (int p : plan.placeholders)
    SYN_CHECK(fed.contains(p), "Session::run: placeholder '{}' (shape {}) must be fed: the fetches depend on it",
              G.nd(p).name, to_string(G.nd(p).outputs[0].shape));

  std::vector<std::vector<Tensor>> vals(G.nodes.size());
  MemoryMeter mem;
  for (const auto& [i, v] : plan.fixed) {
    vals[static_cast<std::size_t>(i)] = v;
    for (const auto& t : v) mem.external.insert(t.impl()->storage.get());
  }
  for (const auto& [i, v] : fed) {
    vals[static_cast<std::size_t>(i)] = {v};
    mem.external.insert(v.impl()->storage.get());
  }
  // Values can only alias the storage of the variables this plan reads.
  for (int v : plan.variables) {
    vals[static_cast<std::size_t>(v)] = {G.nd(v).value};
    mem.external.insert(G.nd(v).value.impl()->storage.get());
  }

  // Ops run eagerly here: no tracing into a default graph, no autograd history.
  NoGradGuard no_grad;
  Graph*& dflt = detail::default_graph_slot();
  Graph* saved_default = dflt;
  dflt = nullptr;
  bool& trace_shapes = synapse::detail::symbolic_trace_shapes();
  const bool saved_trace = trace_shapes;
  trace_shapes = false;
  struct Restore {
    Graph*& d;
    Graph* v;
    bool& t;
    bool tv;
    ~Restore() {
      d = v;
      t = tv;
    }
  } restore{dflt, saved_default, trace_shapes, saved_trace};

  std::int64_t reused = 0, nodes_run = 0, nodes_fused = 0;
  const bool may_reuse = optimize_ && !anomaly_mode();
  // A dying input that can take an output of the same shape (its buffer is nobody else's).
  auto donor_ok = [&](const Tensor& v, const ValueKey& k, const Step& step) {
    const bool dies = std::find(step.release.begin(), step.release.end(), k) != step.release.end();
    const auto& st = v.impl()->storage;
    return dies && !mem.external.contains(st.get()) && st.use_count() == 1 && v.impl()->offset == 0 &&
           v.dtype() == DType::Float32;
  };
  // One node with the eager kernels (and buffer reuse for elementwise ops).
  auto run_node = [&](const Step& step) {
    const int i = step.node;
    const Node& n = G.nd(i);
    const NodeExtra& e = G.ex(i);
    std::vector<Tensor> ins;
    ins.reserve(n.inputs.size());
    for (const auto& in : n.inputs) {
      const auto& r = *in.impl()->symbolic;
      const Tensor& v = vals[static_cast<std::size_t>(r.node)].at(static_cast<std::size_t>(r.output));
      SYN_CHECK(v.defined(), "Session::run: internal error: value of '{}' is missing for '{}'", G.nd(r.node).name, n.name);
      ins.push_back(v);
    }
    if (e.def) {
      // Attributes with the batch resolved, cached per plan for the last batch size.
      auto at = plan.attrs.find(i);
      if (at == plan.attrs.end() || (plan.uses_batch && at->second.first != batch))
        at = plan.attrs.insert_or_assign(i, std::pair{batch, detail::resolve_attrs(e.trace_attrs, batch, n.name)}).first;
      Attrs attrs = at->second.second;
      if (is_random(e)) {
        auto [it, fresh] = state_->rngs.try_emplace(i, static_cast<std::uint64_t>(e.trace_attrs.i("seed")));
        attrs.set("seed", static_cast<std::int64_t>(it->second.next_u64()));
      }
      std::vector<Tensor> outs;
      // Buffer reuse: a same-shape input that dies here (and is nobody else's storage) takes the output.
      int donor = -1;
      if (may_reuse && detail::elementwise_inplace_ok(n.op)) {
        for (std::size_t j = 0; j < n.inputs.size() && donor < 0; ++j) {
          const auto& r = *n.inputs[j].impl()->symbolic;
          const ValueKey k{r.node, r.output};
          if (donor_ok(ins[j], k, step)) donor = static_cast<int>(j);
        }
        if (donor >= 0) {
          std::vector<TensorMeta> metas;
          for (const auto& t : ins) metas.push_back({t.shape(), t.dtype()});
          const auto out_meta = e.def->shape_fn()(metas, attrs);
          const Tensor& d = ins[static_cast<std::size_t>(donor)];
          if (out_meta.size() == 1 && out_meta[0].shape == d.shape() && out_meta[0].dtype == d.dtype()) {
            outs = {d.detach()};
            invoke_kernel(*e.def, e.def->kernel_for(Device::CPU), KernelContext{ins, outs, attrs});
            ++reused;
          } else {
            donor = -1;
          }
        }
      }
      if (donor < 0) {
        try {
          outs = apply(*e.def, ins, attrs);
        } catch (const Error& err) {
          throw Error(fmt::format("Session::run: node '{}': {}", n.name, err.what()));
        }
      }
      for (const auto& t : outs) mem.acquire(t);
      vals[static_cast<std::size_t>(i)] = std::move(outs);
      ++nodes_run;
    } else if (n.op == "Assign") {
      const Tensor& var = ins[0];
      const Tensor& v = ins[1];
      SYN_CHECK(v.shape() == var.shape(), "Session::run: assign '{}': value shape {} differs from the variable's {}",
                n.name, to_string(v.shape()), to_string(var.shape()));
      if (v.raw_data() != var.raw_data()) std::memmove(var.raw_data(), v.raw_data(), var.nbytes());
    } else if (n.op == "HostOp") {
      e.host_fn(ins);
    }
  };
  for (const Step& step : plan.steps) {
    const int i = step.node;
    const Node& n = G.nd(i);
    if (step.group >= 0) {
      const FusedGroup& grp = plan.groups[static_cast<std::size_t>(step.group)];
      std::vector<cpu::PointwiseInput> pin(grp.inputs.size());
      Tensor out;
      const Shape& shape =
          grp.full_input >= 0 ? vals[static_cast<std::size_t>(grp.inputs[static_cast<std::size_t>(grp.full_input)].first)]
                                    .at(static_cast<std::size_t>(grp.inputs[static_cast<std::size_t>(grp.full_input)].second))
                                    .shape()
                              : grp.shape;
      for (std::size_t j = 0; j < grp.inputs.size(); ++j) {
        const auto& [node, o] = grp.inputs[j];
        const Tensor& v = vals[static_cast<std::size_t>(node)].at(static_cast<std::size_t>(o));
        const auto layout = grp.layouts[j];
        const std::int64_t want = layout == cpu::PointwiseInput::Layout::Full  ? numel(shape)
                                  : layout == cpu::PointwiseInput::Layout::Row ? grp.rows[j]
                                                                               : 1;
        SYN_CHECK(v.defined() && v.dtype() == DType::Float32 && v.numel() == want,
                  "Session::run: internal error: fused input '{}' of '{}' has shape {}", G.nd(node).name, n.name,
                  v.defined() ? to_string(v.shape()) : "none");
        pin[j] = {v.data<float>(), layout, grp.rows[j]};
        if (!out.defined() && may_reuse && layout == cpu::PointwiseInput::Layout::Full && donor_ok(v, grp.inputs[j], step)) {
          out = v.detach();
          ++reused;
        }
      }
      if (!out.defined()) out = Tensor::empty(shape);
      cpu::run_pointwise_program(pin, grp.code, grp.temps, out.data<float>(), out.numel());
      mem.acquire(out);
      vals[static_cast<std::size_t>(i)] = {out};
      ++nodes_run;
      nodes_fused += static_cast<std::int64_t>(grp.members.size());
    } else {
      run_node(step);
    }
    for (const auto& k : step.release) {
      auto& slot = vals[static_cast<std::size_t>(k.first)];
      if (G.nd(k.first).op == "Variable" || G.nd(k.first).op == "Placeholder" || plan.fixed.contains(k.first)) continue;
      if (static_cast<std::size_t>(k.second) < slot.size() && slot[static_cast<std::size_t>(k.second)].defined()) {
        mem.release(slot[static_cast<std::size_t>(k.second)]);
        slot[static_cast<std::size_t>(k.second)] = Tensor();
      }
    }
  }

  std::vector<Tensor> out;
  for (const auto& [node, o] : fkeys) {
    Tensor v = vals[static_cast<std::size_t>(node)].at(static_cast<std::size_t>(o));
    // Never hand out an alias of a variable or constant: later runs would change it under the caller.
    if (mem.external.contains(v.impl()->storage.get()) && !fed.contains(node)) v = v.clone();
    out.push_back(v);
  }
  ++stats_.runs;
  stats_.nodes_run = nodes_run;
  stats_.nodes_folded = plan.folded;
  stats_.buffers_reused = reused;
  stats_.nodes_fused = nodes_fused;
  stats_.fused_groups = static_cast<std::int64_t>(plan.groups.size());
  stats_.peak_bytes = mem.peak;
  stats_.total_bytes = mem.total;
  return out;
}

Tensor Session::run(const Tensor& fetch, const Feeds& feeds) { return run(std::vector<Tensor>{fetch}, feeds)[0]; }

void Session::run(const Op& target, const Feeds& feeds) { run(std::vector<Tensor>{}, feeds, {target}); }

}  // namespace synapse::graph
