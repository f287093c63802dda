// The tape and the backward pass.
#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/ops.h"

namespace synapse {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

namespace autograd {

Node::Node(const OpDef& op, Attrs attrs, std::vector<Tensor> inputs, std::vector<Tensor> outputs)
    : op_(&op), attrs_(std::move(attrs)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {}

std::vector<Tensor> Node::live_outputs() const {
  std::vector<Tensor> out = outputs_;
  for (std::size_t i = 0; i < out.size() && i < live_.size(); ++i)
    if (auto p = live_[i].lock()) out[i] = Tensor(std::move(p));
  return out;
}

void Node::release() {
  inputs_.clear();
  outputs_.clear();
  released_ = true;
}

void record(const OpDef& op, const Attrs& attrs, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  if (!grad_enabled() || !op.differentiable()) return;
  bool any = false;
  for (const auto& t : inputs) any = any || t.requires_grad();
  if (!any) return;
  std::vector<Tensor> saved_out;
  saved_out.reserve(outputs.size());
  for (const auto& o : outputs) saved_out.push_back(o.detach());
  auto node = std::make_shared<Node>(op, attrs, inputs, std::move(saved_out));
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    node->live_.push_back(outputs[i].impl_ptr());
    if (!is_floating(outputs[i].dtype())) continue;
    TensorImpl* impl = outputs[i].impl();
    impl->requires_grad = true;
    impl->grad_fn = node;
    impl->output_index = static_cast<int>(i);
  }
}

namespace {
std::mutex g_hooks_mutex;
std::vector<std::pair<int, GradReadyHook>> g_hooks;
int g_next_hook = 1;
}  // namespace

int add_grad_ready_hook(GradReadyHook hook) {
  SYN_CHECK(hook != nullptr, "add_grad_ready_hook: empty hook");
  const std::lock_guard lock(g_hooks_mutex);
  g_hooks.emplace_back(g_next_hook, std::move(hook));
  return g_next_hook++;
}

void remove_grad_ready_hook(int id) {
  const std::lock_guard lock(g_hooks_mutex);
  std::erase_if(g_hooks, [id](const auto& h) { return h.first == id; });
}

// The dispatcher calls record() after every eager kernel run (ops know no autograd: see op.h).
[[maybe_unused]] const bool g_record_hook_installed = (set_record_hook(&record), true);

namespace {

// Where a gradient lands: the output slot of a node, or a leaf tensor.
struct Slot {
  Node* node;
  int index;
  TensorImpl* leaf;
  bool operator==(const Slot&) const = default;
};
struct SlotHash {
  std::size_t operator()(const Slot& s) const {
    return std::hash<const void*>()(s.node ? static_cast<const void*>(s.node) : s.leaf) * 31u +
           static_cast<std::size_t>(s.index);
  }
};

Slot slot_of(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return {impl->grad_fn.get(), impl->output_index, nullptr};
  return {nullptr, 0, impl};
}

void accumulate(std::unordered_map<Slot, Tensor, SlotHash>& buf, const Slot& s, const Tensor& g) {
  auto [it, inserted] = buf.try_emplace(s, g);
  if (!inserted) it->second = add(it->second, g);
}

Tensor default_root_grad(const Tensor& root, const Tensor& given) {
  if (given.defined()) {
    SYN_CHECK(given.shape() == root.shape(), "backward: grad_output shape {} differs from output shape {}",
              to_string(given.shape()), to_string(root.shape()));
    return given;
  }
  SYN_CHECK(root.numel() == 1, "backward: output{} has shape {}; gradients can be taken implicitly only of a "
            "scalar, pass grad_output", root.name().empty() ? "" : " '" + root.name() + "'", to_string(root.shape()));
  return ones(root.shape());
}

// Runs the backward pass from `roots`; returns gradients of every reached slot in `buf`.
// Leaves' gradients are left in buf (the caller decides whether to accumulate into .grad()).
// `leaf_final`, when given, is called with each leaf (requiring gradients) once its gradient in `buf`
// is complete: after the last node with an edge into it has run.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads, bool retain_graph,
                  bool create_graph, std::unordered_map<Slot, Tensor, SlotHash>& buf,
                  const std::unordered_set<Slot, SlotHash>& capture,
                  const std::function<void(const Tensor&)>& leaf_final = nullptr) {
  for (const auto& r : roots)
    SYN_CHECK(r.defined() && r.requires_grad(), "backward: output{} does not require gradients (no input it was "
              "computed from requires them, or it was computed under NoGradGuard)",
              r.defined() && !r.name().empty() ? " '" + r.name() + "'" : "");

  // Collect the nodes reachable from the roots and count, for each, the edges into it from other nodes.
  // `alive` owns every reached node until the pass ends: releasing a node drops its inputs, which
  // may hold the last reference to the node that produced them.
  std::unordered_map<Node*, int> pending;
  std::unordered_map<TensorImpl*, int> leaf_pending;  // edges into each leaf (only with leaf_final)
  std::vector<std::shared_ptr<Node>> alive;
  std::vector<Node*> stack;
  for (const auto& r : roots) {
    Node* n = r.impl()->grad_fn.get();
    if (n && pending.try_emplace(n, 0).second) {
      stack.push_back(n);
      alive.push_back(r.impl()->grad_fn);
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    SYN_CHECK(!n->released(), "backward: the graph through op '{}' was already freed by an earlier backward pass; "
              "pass retain_graph to backward through it twice", n->op().name());
    for (const auto& in : n->inputs()) {
      Node* p = in.impl()->grad_fn.get();
      if (!p && leaf_final && in.requires_grad()) ++leaf_pending[in.impl()];
      if (!p || !in.requires_grad()) continue;
      auto [it, inserted] = pending.try_emplace(p, 0);
      ++it->second;
      if (inserted) {
        stack.push_back(p);
        alive.push_back(in.impl()->grad_fn);
      }
    }
  }

  {
    EnableGradGuard record_or_not;
    set_grad_enabled(create_graph);
    for (std::size_t i = 0; i < roots.size(); ++i)
      accumulate(buf, slot_of(roots[i]), default_root_grad(roots[i], i < root_grads.size() ? root_grads[i] : Tensor()));
  }

  std::vector<Node*> ready;
  for (const auto& r : roots) {
    Node* n = r.impl()->grad_fn.get();
    if (n && pending[n] == 0 && std::find(ready.begin(), ready.end(), n) == ready.end()) ready.push_back(n);
  }

  const bool prev = grad_enabled();
  set_grad_enabled(create_graph);
  try {
    while (!ready.empty()) {
      Node* n = ready.back();
      ready.pop_back();
      std::vector<Tensor> dys(n->num_outputs());
      for (std::size_t o = 0; o < dys.size(); ++o) {
        const Slot s{n, static_cast<int>(o), nullptr};
        auto it = buf.find(s);
        if (it != buf.end()) {
          dys[o] = it->second;
          if (!capture.contains(s)) buf.erase(it);
        } else {
          dys[o] = zeros(n->outputs()[o].shape(), n->outputs()[o].dtype());
        }
      }
      // With create_graph the gradient must see the outputs with their history, so that a gradient
      // written with y (tanh, sigmoid, exp) is itself differentiable through y.
      const std::vector<Tensor> outs = create_graph ? n->live_outputs() : n->outputs();
      const GradCtx ctx{n->inputs(), outs, dys, n->attrs()};
      std::vector<Tensor> gx = n->op().grad_fn()(ctx);
      SYN_CHECK(gx.size() == n->inputs().size(), "backward of '{}': gradient function returned {} gradients for {} inputs",
                n->op().name(), gx.size(), n->inputs().size());
      for (std::size_t i = 0; i < gx.size(); ++i) {
        const Tensor& in = n->inputs()[i];
        if (!in.requires_grad()) continue;
        if (gx[i].defined()) {
          SYN_CHECK(gx[i].shape() == in.shape(), "backward of '{}': gradient for input {} has shape {}, input has {}",
                    n->op().name(), i, to_string(gx[i].shape()), to_string(in.shape()));
          accumulate(buf, slot_of(in), gx[i]);
        }
        if (Node* p = in.impl()->grad_fn.get()) {
          if (--pending[p] == 0) ready.push_back(p);
        } else if (leaf_final && --leaf_pending[in.impl()] == 0) {
          leaf_final(in);
        }
      }
      if (!retain_graph && !create_graph) n->release();
    }
  } catch (...) {
    set_grad_enabled(prev);
    throw;
  }
  set_grad_enabled(prev);
}

}  // namespace

// Accumulates d(roots)/d(leaf) into the .grad() of every leaf that requires gradients (Tensor::backward).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads, bool retain_graph) {
  std::unordered_map<Slot, Tensor, SlotHash> buf;
  auto store = [](TensorImpl* leaf, const Tensor& g) {
    if (leaf->grad) {
      leaf->grad = add(Tensor(leaf->grad), g).impl_ptr();
    } else {
      // Own the memory: g may alias a buffer another leaf also received.
      leaf->grad = g.detach().impl_ptr();
    }
  };
  std::vector<GradReadyHook> hooks;
  {
    const std::lock_guard lock(g_hooks_mutex);
    for (const auto& h : g_hooks) hooks.push_back(h.second);
  }
  // With hooks, each leaf's gradient is stored (and announced) as soon as it is final.
  std::function<void(const Tensor&)> leaf_final;
  if (!hooks.empty()) {
    leaf_final = [&](const Tensor& leaf) {
      auto it = buf.find(Slot{nullptr, 0, leaf.impl()});
      if (it == buf.end()) return;  // no gradient reached it (every path returned an undefined one)
      store(leaf.impl(), it->second);
      buf.erase(it);
      for (const auto& h : hooks) h(leaf);
    };
  }
  run_backward(roots, root_grads, retain_graph, false, buf, {}, leaf_final);
  for (auto& [slot, g] : buf) {
    if (!slot.leaf || !slot.leaf->requires_grad) continue;
    store(slot.leaf, g);
  }
}

}  // namespace autograd

// The method form lives here, with the engine, so that core knows no autograd.
void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  SYN_CHECK(defined(), "backward: undefined tensor");
  SYN_CHECK(!impl()->symbolic, "backward: tensor{} is a graph tensor; use graph::gradients",
            name().empty() ? "" : " '" + name() + "'");
  autograd::backward({*this}, {grad_output}, retain_graph);
}

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const GradOptions& opts,
                         const Tensor& grad_output) {
  std::unordered_set<autograd::Slot, autograd::SlotHash> capture;
  for (const auto& in : inputs) {
    SYN_CHECK(in.defined() && in.requires_grad(), "grad: input{} does not require gradients",
              in.defined() && !in.name().empty() ? " '" + in.name() + "'" : "");
    capture.insert(autograd::slot_of(in));
  }
  std::unordered_map<autograd::Slot, Tensor, autograd::SlotHash> buf;
  autograd::run_backward({output}, {grad_output}, opts.retain_graph || opts.create_graph, opts.create_graph, buf,
                         capture);
  std::vector<Tensor> out;
  out.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto it = buf.find(autograd::slot_of(inputs[i]));
    if (it != buf.end()) {
      out.push_back(it->second);
    } else {
      SYN_CHECK(opts.allow_unused, "grad: input {}{} is not used to compute the output (pass allow_unused)", i,
                inputs[i].name().empty() ? "" : " '" + inputs[i].name() + "'");
      out.push_back(zeros_like(inputs[i]));
    }
  }
  return out;
}

}  // namespace synapse
