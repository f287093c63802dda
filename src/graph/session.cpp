// Session: plans (reachability, constant folding, lifetimes) and runs them with the eager kernels.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

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
};

struct Plan {
  std::vector<Step> steps;                            // nodes to execute, in topological order
  std::vector<int> placeholders;                      // placeholders the steps read
  std::unordered_map<int, std::vector<Tensor>> fixed;  // Const and folded nodes: their values
  std::unordered_set<int> variables;                   // Variable nodes the steps read
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

std::string key_of(const std::vector<ValueKey>& fetches, const std::vector<Op>& targets, bool optimize) {
  std::string k = optimize ? "o" : "p";
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

Plan make_plan(const Graph::Impl& G, const std::vector<ValueKey>& fetches, const std::vector<Op>& targets,
               bool optimize) {
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
  // Last consumer of each value, so it is freed right after.
  std::map<ValueKey, int> last_use;
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
    for (const auto& in : n.inputs) {
      const auto& r = *in.impl()->symbolic;
      last_use[{r.node, r.output}] = static_cast<int>(p.steps.size());
    }
    for (const auto& [k, v] : G.extra[i].trace_attrs.items()) {
      if (k == "seed") continue;
      if (const auto* x = std::get_if<std::int64_t>(&v)) p.uses_batch = p.uses_batch || detail::is_unknown(*x);
      if (const auto* xs = std::get_if<std::vector<std::int64_t>>(&v))
        for (auto d : *xs) p.uses_batch = p.uses_batch || detail::is_unknown(d);
    }
    p.steps.push_back({ii, {}});
  }
  for (const auto& [key, step] : last_use)
    if (!fetched.contains(key)) p.steps[static_cast<std::size_t>(step)].release.push_back(key);
  return p;
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

  const std::string key = key_of(fkeys, targets, optimize_);
  auto pit = state_->plans.find(key);
  if (pit == state_->plans.end()) {
    pit = state_->plans.emplace(key, make_plan(G, fkeys, targets, optimize_)).first;
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
  std::unordered_set<const Storage*> var_storage;
  for (std::size_t i = 0; i < G.nodes.size(); ++i)
    if (G.nodes[i].op == "Variable") var_storage.insert(G.nodes[i].value.impl()->storage.get());
  for (int v : plan.variables) vals[static_cast<std::size_t>(v)] = {G.nd(v).value};
  mem.external.insert(var_storage.begin(), var_storage.end());

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

  std::int64_t reused = 0, nodes_run = 0;
  const bool may_reuse = optimize_ && !anomaly_mode();
  std::set<ValueKey> fetched(fkeys.begin(), fkeys.end());
  for (const Step& step : plan.steps) {
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
      Attrs attrs = detail::resolve_attrs(e.trace_attrs, batch, n.name);
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
          const Tensor& v = ins[j];
          const bool dies = std::find(step.release.begin(), step.release.end(), k) != step.release.end();
          const auto& st = v.impl()->storage;
          if (dies && !mem.external.contains(st.get()) && st.use_count() == 1 && v.impl()->offset == 0 &&
              v.dtype() == DType::Float32)
            donor = static_cast<int>(j);
        }
        if (donor >= 0) {
          std::vector<TensorMeta> metas;
          for (const auto& t : ins) metas.push_back({t.shape(), t.dtype()});
          const auto out_meta = e.def->shape_fn()(metas, attrs);
          const Tensor& d = ins[static_cast<std::size_t>(donor)];
          if (out_meta.size() == 1 && out_meta[0].shape == d.shape() && out_meta[0].dtype == d.dtype()) {
            outs = {d.detach()};
            e.def->kernel_for(Device::CPU)(KernelContext{ins, outs, attrs});
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
  stats_.peak_bytes = mem.peak;
  stats_.total_bytes = mem.total;
  return out;
}

Tensor Session::run(const Tensor& fetch, const Feeds& feeds) { return run(std::vector<Tensor>{fetch}, feeds)[0]; }

void Session::run(const Op& target, const Feeds& feeds) { run(std::vector<Tensor>{}, feeds, {target}); }

}  // namespace synapse::graph
