// Synapse graph -> ONNX (opset 13). Walks the nodes the outputs need, in creation order (which is
// topological), and emits one or a few ONNX nodes per registry op; Variables and Consts become
// initializers when something uses them. Conv and pooling are wrapped in NHWC<->NCHW Transposes, which
// a final pass moves through elementwise ops and cancels in inverse pairs.
#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "core/check.h"
#include "onnx/proto.h"
#include "synapse/autograd.h"
#include "synapse/graph.h"
#include "synapse/nn.h"
#include "synapse/ops.h"
#include "synapse/version.h"

namespace synapse::onnx {
namespace {

using ::onnx::NodeProto;
using Ints = std::vector<std::int64_t>;
constexpr std::int64_t kOpset = 13;
constexpr std::int64_t kIrVersion = 7;  // what opset 13 pairs with (ONNX 1.8+)

const std::map<std::string, std::string>& simple_ops() {
  static const std::map<std::string, std::string> m{
      {"add", "Add"},     {"sub", "Sub"},     {"mul", "Mul"},     {"div", "Div"},         {"pow", "Pow"},
      {"maximum", "Max"}, {"minimum", "Min"}, {"equal", "Equal"}, {"greater", "Greater"}, {"less", "Less"},
      {"neg", "Neg"},     {"exp", "Exp"},     {"log", "Log"},     {"sqrt", "Sqrt"},       {"abs", "Abs"},
      {"sign", "Sign"},   {"tanh", "Tanh"},   {"relu", "Relu"},   {"sigmoid", "Sigmoid"}, {"where", "Where"}};
  return m;
}

void set_attr(NodeProto& n, const std::string& name, std::int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(v);
}
void set_attr(NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void set_attr(NodeProto& n, const std::string& name, const Ints& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
void set_attr(NodeProto& n, const std::string& name, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s(v);
}

void set_type(::onnx::ValueInfoProto& vi, const std::string& name, const TensorMeta& meta) {
  vi.set_name(name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(internal::onnx_type(meta.dtype));
  auto* shape = tt->mutable_shape();
  for (auto d : meta.shape) {
    auto* dim = shape->add_dim();
    if (d >= 0)
      dim->set_dim_value(d);
    else
      dim->set_dim_param("N");
  }
}

// TensorFlow's SAME padding (extra cell after) as explicit ONNX pads for one spatial dimension.
std::pair<std::int64_t, std::int64_t> same_pads(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t d) {
  const std::int64_t out = (in + s - 1) / s;
  const std::int64_t eff = (k - 1) * d + 1;
  const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * s + eff - in);
  return {total / 2, total - total / 2};
}

class Exporter {
 public:
  Exporter(const graph::Graph& g, ::onnx::GraphProto& gp) : g_(g), gp_(gp) {}

  void run(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const ExportOptions& opts,
           ExportInfo& info);

 private:
  std::string tensor_name(int node, int out) const {
    const std::string& n = g_.node(node).name;
    if (auto it = init_names_.find(n); it != init_names_.end() && out == 0) return it->second;
    return out == 0 ? n : fmt::format("{}:{}", n, out);
  }
  std::string fresh(const std::string& hint) {
    std::string name = hint;
    for (int k = 1; used_.contains(name); ++k) name = fmt::format("{}_{}", hint, k);
    used_.insert(name);
    return name;
  }
  // The ONNX name of a graph tensor, emitting the initializer of a Variable/Const on first use.
  std::string ref(const Tensor& t) {
    auto [node, out] = graph::Graph::producer(t);
    const std::string name = tensor_name(node, out);
    if (auto v = const_value(node); v && out == 0 && !emitted_.contains(name)) {
      emitted_.insert(name);
      *gp_.add_initializer() = internal::to_proto(*v, name);
    }
    auto it = renamed_.find(name);
    return it == renamed_.end() ? name : it->second;
  }
  std::string init(const Tensor& value, const std::string& hint) {
    const std::string name = fresh(hint);
    *gp_.add_initializer() = internal::to_proto(value, name);
    return name;
  }
  std::string ints_init(const Ints& v, const std::string& hint) { return init(from_vector(v), hint); }
  NodeProto& add(const std::string& op, const std::vector<std::string>& ins, const std::vector<std::string>& outs,
                 const std::string& name) {
    NodeProto& n = nodes_.emplace_back();
    n.set_op_type(op);
    n.set_name(fresh(name));
    for (const auto& i : ins) n.add_input(i);
    for (const auto& o : outs) n.add_output(o);
    return n;
  }
  std::string transpose(const std::string& in, const Ints& perm, const std::string& name) {
    const std::string out = fresh(name);
    set_attr(add("Transpose", {in}, {out}, name), "perm", perm);
    return out;
  }

  // The value of a Variable/Const node, or of a folded constant subgraph (empty for other nodes).
  std::optional<Tensor> const_value(int node) const {
    const graph::Node& n = g_.node(node);
    if (n.op == "Variable" || n.op == "Const") return n.value;
    if (auto it = folded_.find(node); it != folded_.end()) return it->second;
    return std::nullopt;
  }
  void fold_constants(std::vector<bool>& needed, const std::vector<Tensor>& outputs);
  // needed[i]: node i is reachable from the outputs (walking inputs; folded nodes end the walk).
  void mark_needed(std::vector<bool>& needed, const std::vector<Tensor>& outputs) const;
  void emit(int index, const std::string& out);
  // A batch normalisation folded into the conv2d / depthwise_conv2d / dense / matmul node before it:
  // that node's new kernel and bias, and the last node of the normalisation (whose output it writes).
  struct BnFold {
    int last = -1;
    Tensor kernel, bias;
  };
  // Finds the foldable batch normalisations (ExportOptions::fold_batch_norm) and marks their nodes fused.
  void find_bn_folds(const std::vector<bool>& needed);
  // Conv (depthwise: a grouped Conv, group = channels), MaxPool or AveragePool between NHWC<->NCHW Transposes.
  // With `fold`, the Conv's kernel and bias are the folded ones.
  void emit_window(const graph::Node& n, const std::string& out, const std::string& op_type, bool depthwise = false,
                   const BnFold* fold = nullptr);
  // A dense or matmul node with a folded batch normalisation: Gemm (2-D) or MatMul + Add.
  void emit_folded_linear(const graph::Node& n, const BnFold& fold, const std::string& out);
  // lstm, gru, simple_rnn as ONNX's LSTM, GRU, RNN (constant weights only).
  void emit_recurrent(int index, const std::string& out);
  // y = op(x) kernel + bias as a Gemm, x and kernel being node n's inputs 0 and 1.
  void emit_gemm(const graph::Node& n, bool trans_a, bool trans_b, const std::string& bias, const std::string& y);
  // A conv filter [kh,kw,in,out] as an OIHW initializer (constant filters) or a Transpose.
  // A depthwise filter [kh,kw,C,M] becomes the grouped Conv's [C*M, 1, kh, kw] (constant filters only).
  std::string oihw(const Tensor& w, const std::string& node_name, bool depthwise = false);
  void optimize_transposes(const std::set<std::string>& keep_names);

  const graph::Graph& g_;
  ::onnx::GraphProto& gp_;
  std::map<std::string, std::string> init_names_;
  std::vector<NodeProto> nodes_;
  std::set<std::string> used_, emitted_;
  std::map<std::string, std::string> renamed_;
  std::map<int, Tensor> folded_;  // nodes computed from Variables/Consts only, evaluated at export
  std::map<int, int> gemm_add_;   // matmul node -> the add node fused into its Gemm
  std::set<int> fused_;           // add nodes emitted as part of a Gemm, batch norm nodes folded away
  std::map<int, BnFold> bn_fold_;  // conv/dense/matmul node -> the batch normalisation folded into it
  std::vector<int> consumers_;
};

// A constant HWIO conv filter as ONNX's OIHW; a depthwise [kh,kw,C,M] one as the grouped [C*M,1,kh,kw].
Tensor oihw_value(const Tensor& w, bool depthwise) {
  NoGradGuard no_grad;
  Tensor hwio = w.detach();
  if (depthwise) hwio = reshape(hwio, {hwio.dim(0), hwio.dim(1), 1, hwio.dim(2) * hwio.dim(3)});
  return permute(hwio, {3, 2, 0, 1}).clone();
}

std::string Exporter::oihw(const Tensor& w, const std::string& node_name, bool depthwise) {
  auto [node, out] = graph::Graph::producer(w);
  if (auto v = const_value(node); v && out == 0) {
    Tensor value = oihw_value(*v, depthwise);
    const std::string name = tensor_name(node, 0);
    if (consumers_[static_cast<std::size_t>(node)] == 1 && !emitted_.contains(name)) {
      // The filter's only use: the initializer keeps the variable's name ("conv1/kernel").
      emitted_.insert(name);
      *gp_.add_initializer() = internal::to_proto(value, name);
      return name;
    }
    return init(value, name + "/oihw");
  }
  if (depthwise)
    throw Error(fmt::format("ONNX export: node '{}' (op 'depthwise_conv2d'): the filter must be a variable or constant",
                            node_name));
  return transpose(ref(w), {3, 2, 0, 1}, node_name + "/filter_oihw");
}

void Exporter::emit_window(const graph::Node& n, const std::string& out, const std::string& op_type, bool depthwise,
                           const BnFold* fold) {
  const Shape& xs = n.inputs[0].shape();  // NHWC
  const bool conv = op_type == "Conv";
  const Ints ksize = conv ? Ints{n.inputs[1].shape()[0], n.inputs[1].shape()[1]} : n.attrs.ints("ksize");
  const Ints strides = n.attrs.ints("strides");
  const Ints dil = conv ? n.attrs.ints("dilations") : Ints{1, 1};
  const std::string x = transpose(ref(n.inputs[0]), {0, 3, 1, 2}, n.name + "/to_nchw");
  std::vector<std::string> ins{x};
  if (fold) {
    const std::string k = tensor_name(graph::Graph::producer(n.inputs[1]).first, 0);
    ins.push_back(init(oihw_value(fold->kernel, depthwise), k + "/bn_folded"));
    ins.push_back(init(fold->bias, n.name + "/bias_bn_folded"));
  } else if (conv) {
    ins.push_back(oihw(n.inputs[1], n.name, depthwise));
    if (n.inputs.size() == 3) ins.push_back(ref(n.inputs[2]));
  }
  const std::string y = fresh(n.name + "/nchw");
  NodeProto& node = add(op_type, ins, {y}, n.name);
  set_attr(node, "kernel_shape", ksize);
  set_attr(node, "strides", strides);
  if (conv) set_attr(node, "dilations", dil);
  if (depthwise) set_attr(node, "group", xs[3]);
  if (n.attrs.s("padding") == "SAME") {
    if (xs[1] < 0 || xs[2] < 0) {
      set_attr(node, "auto_pad", std::string("SAME_UPPER"));
    } else {
      auto [t, b] = same_pads(xs[1], ksize[0], strides[0], dil[0]);
      auto [l, r] = same_pads(xs[2], ksize[1], strides[1], dil[1]);
      set_attr(node, "pads", Ints{t, l, b, r});
    }
  } else {
    set_attr(node, "pads", Ints{0, 0, 0, 0});
  }
  if (op_type == "AveragePool") set_attr(node, "count_include_pad", std::int64_t{0});
  std::string result = y;
  if (conv && n.attrs.has("relu") && n.attrs.b("relu")) {  // the relu fused into conv2d, in NCHW
    result = fresh(n.name + "/relu_nchw");
    add("Relu", {y}, {result}, n.name + "/relu");
  }
  set_attr(add("Transpose", {result}, {out}, n.name + "/to_nhwc"), "perm", Ints{0, 2, 3, 1});
}

void Exporter::emit_gemm(const graph::Node& n, bool trans_a, bool trans_b, const std::string& bias,
                         const std::string& y) {
  // A constant kernel [in, out] is stored transposed, [out, in] with transB=1: PyTorch's Linear
  // layout, the one every importer handles (OpenCV 4.6 misreads a Gemm without transB).
  auto [wi, wo] = graph::Graph::producer(n.inputs[1]);
  const std::string wname = tensor_name(wi, 0);
  const auto wv = const_value(wi);
  std::string b;
  if (!trans_b && wv && wo == 0 && consumers_[static_cast<std::size_t>(wi)] == 1 && !emitted_.contains(wname)) {
    NoGradGuard no_grad;
    emitted_.insert(wname);
    *gp_.add_initializer() = internal::to_proto(synapse::transpose(wv->detach()).clone(), wname);
    trans_b = true;
    b = wname;
  } else {
    b = ref(n.inputs[1]);
  }
  NodeProto& gm = add("Gemm", {ref(n.inputs[0]), b, bias}, {y}, n.name);
  if (trans_a) set_attr(gm, "transA", std::int64_t{1});
  if (trans_b) set_attr(gm, "transB", std::int64_t{1});
}

void Exporter::emit_folded_linear(const graph::Node& n, const BnFold& fold, const std::string& out) {
  NoGradGuard no_grad;
  const std::string k = tensor_name(graph::Graph::producer(n.inputs[1]).first, 0) + "/bn_folded";
  const std::string b = init(fold.bias, n.name + "/bias_bn_folded");
  if (n.inputs[0].ndim() == 2) {  // [out, in] with transB=1, as emit_gemm stores constant kernels
    const std::string w = init(synapse::transpose(fold.kernel).clone(), k);
    set_attr(add("Gemm", {ref(n.inputs[0]), w, b}, {out}, n.name), "transB", std::int64_t{1});
    return;
  }
  const std::string product = fresh(n.name + "/matmul");
  add("MatMul", {ref(n.inputs[0]), init(fold.kernel, k)}, {product}, n.name + "/matmul");
  add("Add", {product, b}, {out}, n.name + "/add");
}

void Exporter::emit(int index, const std::string& out) {
  const graph::Node& n = g_.node(index);
  const std::string& op = n.op;
  if (auto f = bn_fold_.find(index); f != bn_fold_.end()) {
    if (op == "dense" || op == "matmul")
      emit_folded_linear(n, f->second, out);
    else
      emit_window(n, out, "Conv", op == "depthwise_conv2d", &f->second);
    return;
  }
  auto in = [&](std::size_t i) { return ref(n.inputs.at(i)); };
  auto unsupported = [&](const std::string& why) {
    throw Error(fmt::format("ONNX export: node '{}' (op '{}'): {}", n.name, op, why));
  };
  if (auto it = simple_ops().find(op); it != simple_ops().end()) {
    std::vector<std::string> ins;
    for (std::size_t i = 0; i < n.inputs.size(); ++i) ins.push_back(in(i));
    add(it->second, ins, {out}, n.name);
  } else if (op == "square") {
    add("Mul", {in(0), in(0)}, {out}, n.name);
  } else if (op == "leaky_relu") {
    set_attr(add("LeakyRelu", {in(0)}, {out}, n.name), "alpha", static_cast<float>(n.attrs.f("alpha")));
  } else if (op == "clip") {
    const std::string lo = init(full({}, n.attrs.f("lo")), n.name + "/min");
    const std::string hi = init(full({}, n.attrs.f("hi")), n.name + "/max");
    add("Clip", {in(0), lo, hi}, {out}, n.name);
  } else if (op == "cast") {
    set_attr(add("Cast", {in(0)}, {out}, n.name), "to",
             static_cast<std::int64_t>(internal::onnx_type(n.outputs[0].dtype)));
  } else if (op == "matmul") {
    std::string a, b;
    auto swap_last = [&](const std::string& x, std::size_t rank, const std::string& suffix) {
      Ints perm(rank);
      for (std::size_t d = 0; d < rank; ++d) perm[d] = static_cast<std::int64_t>(d);
      std::swap(perm[rank - 1], perm[rank - 2]);
      return transpose(x, perm, n.name + suffix);
    };
    const bool ta = n.attrs.b("transpose_a"), tb = n.attrs.b("transpose_b");
    if (auto f = gemm_add_.find(index); f != gemm_add_.end()) {
      // matmul + bias add -> Gemm, which every runtime maps to a fully connected layer.
      const graph::Node& addn = g_.node(f->second);
      const Tensor& bias = graph::Graph::producer(addn.inputs[0]).first == index ? addn.inputs[1] : addn.inputs[0];
      emit_gemm(n, ta, tb, ref(bias), tensor_name(f->second, 0));
      return;
    }
    a = in(0);
    b = in(1);
    if (ta) a = swap_last(a, n.inputs[0].shape().size(), "/transpose_a");
    if (tb) b = swap_last(b, n.inputs[1].shape().size(), "/transpose_b");
    add("MatMul", {a, b}, {out}, n.name);
  } else if (op == "dense") {
    // x kernel + bias, then Relu: a Gemm for 2-D x, MatMul + Add for more dimensions.
    const bool relu = n.attrs.b("relu");
    const std::string y = relu ? fresh(n.name + "/linear") : out;
    if (n.inputs[0].ndim() == 2) {
      emit_gemm(n, false, false, in(2), y);
    } else {
      const std::string product = fresh(n.name + "/matmul");
      add("MatMul", {in(0), in(1)}, {product}, n.name + "/matmul");
      add("Add", {product, in(2)}, {y}, n.name + "/add");
    }
    if (relu) add("Relu", {y}, {out}, n.name + "/relu");
  } else if (op == "reshape") {
    Ints shape = n.attrs.ints("shape");
    if (std::count(shape.begin(), shape.end(), -1) > 1)
      unsupported(fmt::format("target shape {} has more than one unknown extent", to_string(shape)));
    if (std::count(shape.begin(), shape.end(), 0) > 0) unsupported("zero extents (ONNX Reshape reads 0 as 'copy')");
    add("Reshape", {in(0), ints_init(shape, n.name + "/shape")}, {out}, n.name);
  } else if (op == "permute") {
    set_attr(add("Transpose", {in(0)}, {out}, n.name), "perm", n.attrs.ints("perm"));
  } else if (op == "concat") {
    std::vector<std::string> ins;
    for (std::size_t i = 0; i < n.inputs.size(); ++i) ins.push_back(in(i));
    set_attr(add("Concat", ins, {out}, n.name), "axis", n.attrs.i("axis"));
  } else if (op == "slice") {
    const Ints begin = n.attrs.ints("begin"), size = n.attrs.ints("size");
    Ints ends(begin.size());
    for (std::size_t d = 0; d < begin.size(); ++d)
      ends[d] = size[d] < 0 ? std::numeric_limits<std::int64_t>::max() : begin[d] + size[d];
    add("Slice", {in(0), ints_init(begin, n.name + "/starts"), ints_init(ends, n.name + "/ends")}, {out}, n.name);
  } else if (op == "pad") {
    const Ints p = n.attrs.ints("paddings");
    Ints pads(p.size());
    const std::size_t r = p.size() / 2;
    for (std::size_t d = 0; d < r; ++d) {
      pads[d] = p[2 * d];
      pads[d + r] = p[2 * d + 1];
    }
    const std::string value = init(cast(full({}, n.attrs.f("value")), n.inputs[0].dtype()), n.name + "/value");
    add("Pad", {in(0), ints_init(pads, n.name + "/pads"), value}, {out}, n.name);
  } else if (op == "gather") {
    set_attr(add("Gather", {in(0), in(1)}, {out}, n.name), "axis", n.attrs.i("axis"));
  } else if (op == "one_hot") {
    const std::string depth = ints_init({n.attrs.i("depth")}, n.name + "/depth");
    const std::string values =
        init(from_vector(std::vector<float>{static_cast<float>(n.attrs.f("off")), static_cast<float>(n.attrs.f("on"))}),
             n.name + "/values");
    set_attr(add("OneHot", {in(0), depth, values}, {out}, n.name), "axis", std::int64_t{-1});
  } else if (op == "broadcast_to") {
    const Ints shape = n.attrs.ints("shape");
    if (std::count(shape.begin(), shape.end(), -1) > 0) unsupported("a target shape with unknown extents");
    add("Expand", {in(0), ints_init(shape, n.name + "/shape")}, {out}, n.name);
  } else if (op == "sum" || op == "max" || op == "min") {
    const Ints axes = n.attrs.ints("axes");
    const std::int64_t keep = n.attrs.b("keepdims") ? 1 : 0;
    if (op == "sum") {
      std::vector<std::string> ins{in(0)};
      if (!axes.empty()) ins.push_back(ints_init(axes, n.name + "/axes"));
      set_attr(add("ReduceSum", ins, {out}, n.name), "keepdims", keep);
    } else {
      NodeProto& r = add(op == "max" ? "ReduceMax" : "ReduceMin", {in(0)}, {out}, n.name);
      if (!axes.empty()) set_attr(r, "axes", axes);
      set_attr(r, "keepdims", keep);
    }
  } else if (op == "argmax") {
    NodeProto& a = add("ArgMax", {in(0)}, {out}, n.name);
    set_attr(a, "axis", n.attrs.i("axis"));
    set_attr(a, "keepdims", std::int64_t{0});
  } else if (op == "softmax" || op == "log_softmax") {
    set_attr(add(op == "softmax" ? "Softmax" : "LogSoftmax", {in(0)}, {out}, n.name), "axis", n.attrs.i("axis"));
  } else if (op == "conv2d") {
    emit_window(n, out, "Conv");
  } else if (op == "depthwise_conv2d") {
    emit_window(n, out, "Conv", /*depthwise=*/true);
  } else if (op == "max_pool2d") {
    emit_window(n, out, "MaxPool");
  } else if (op == "avg_pool2d") {
    emit_window(n, out, "AveragePool");
  } else if (op == "lrn") {
    // TF's lrn over the last axis of NHWC -> ONNX LRN over axis 1 of NCHW: size = 2 r + 1 channels, and
    // ONNX divides alpha by size.
    if (n.inputs[0].shape().size() != 4) unsupported("only 4-d (NHWC) inputs map to ONNX LRN");
    const std::int64_t size = 2 * n.attrs.i("depth_radius") + 1;
    const std::string x = transpose(in(0), {0, 3, 1, 2}, n.name + "/to_nchw");
    const std::string y = fresh(n.name + "/nchw");
    NodeProto& l = add("LRN", {x}, {y}, n.name);
    set_attr(l, "size", size);
    set_attr(l, "alpha", static_cast<float>(n.attrs.f("alpha") * static_cast<double>(size)));
    set_attr(l, "beta", static_cast<float>(n.attrs.f("beta")));
    set_attr(l, "bias", static_cast<float>(n.attrs.f("bias")));
    set_attr(add("Transpose", {y}, {out}, n.name + "/to_nhwc"), "perm", Ints{0, 2, 3, 1});
  } else if (op == "lstm" || op == "gru" || op == "simple_rnn") {
    emit_recurrent(index, out);
  } else if (op == "Assign" || op == "NoOp" || op == "HostOp") {
    unsupported("state updates have no place in an inference model");
  } else {
    unsupported("this op has no ONNX mapping");
  }
}

// lstm / gru / simple_rnn -> ONNX LSTM / GRU / RNN (one direction; the exact inverse of the importer's
// mapping, see import_recurrent.cpp): X and Y time-major, weights transposed to [1, G*H, in] with LSTM's
// column blocks i, f, c, o reordered to ONNX's i, o, f, c, B = [input bias, recurrent bias]. The weights
// must be constants (model variables); lengths of full sequences and an all-zero initial state are left out.
void Exporter::emit_recurrent(int index, const std::string& out) {
  const graph::Node& n = g_.node(index);
  const bool lstm_op = n.op == "lstm", gru_op = n.op == "gru";
  auto unsupported = [&](const std::string& why) {
    throw Error(fmt::format("ONNX export: node '{}' (op '{}'): {}", n.name, n.op, why));
  };
  auto constant = [&](std::size_t i) {
    auto [node, o] = graph::Graph::producer(n.inputs.at(i));
    auto v = const_value(node);
    if (!v || o != 0) unsupported(fmt::format("input {} must be a constant (a model variable)", i));
    return v->detach();
  };
  NoGradGuard no_grad;
  const Tensor kernel = constant(1), rec = constant(2), bias = constant(3);
  const std::int64_t H = rec.dim(0), GH = rec.dim(1);
  auto onnx_rows = [&](const Tensor& t) {  // [G*H, k] (or [G*H]) in ONNX's gate order
    if (!lstm_op) return t;
    std::vector<Tensor> blocks;
    for (std::int64_t g : {0, 3, 1, 2}) {
      std::vector<std::int64_t> begin(static_cast<std::size_t>(t.ndim()), 0), size(static_cast<std::size_t>(t.ndim()), -1);
      begin[0] = g * H;
      size[0] = H;
      blocks.push_back(slice(t, begin, size));
    }
    return concat(blocks, 0);
  };
  const std::string w = init(unsqueeze(onnx_rows(synapse::transpose(kernel)), 0).clone(), n.name + "/W");
  const std::string r = init(unsqueeze(onnx_rows(synapse::transpose(rec)), 0).clone(), n.name + "/R");
  const bool two_rows = bias.ndim() == 2;  // GRU reset_after: input row, recurrent row
  const Tensor wb = onnx_rows(two_rows ? squeeze(slice(bias, {0, 0}, {1, -1}), 0) : bias);
  const Tensor rb = two_rows ? squeeze(slice(bias, {1, 0}, {1, -1}), 0) : zeros({GH});
  const std::string b = init(unsqueeze(concat({wb, rb}, 0), 0).clone(), n.name + "/B");
  // sequence_lens: left out when constant and full; otherwise int32 [B].
  const Tensor& x = n.inputs[0];
  const std::int64_t T = x.shape()[1];
  const std::size_t len_i = lstm_op ? 6 : 5;
  std::string lens;
  {
    auto [ln, lo] = graph::Graph::producer(n.inputs[len_i]);
    auto lv = const_value(ln);
    bool full_length = false;
    if (lv && lo == 0) {
      const auto v = lv->to_vector<std::int64_t>();
      full_length = std::all_of(v.begin(), v.end(), [&](std::int64_t l) { return l == T; });
    }
    if (!full_length) {
      if (n.inputs[len_i].shape()[0] != x.shape()[0]) unsupported("lengths must be [batch]");
      lens = fresh(n.name + "/sequence_lens");
      set_attr(add("Cast", {ref(n.inputs[len_i])}, {lens}, n.name + "/lengths_int32"), "to",
               static_cast<std::int64_t>(::onnx::TensorProto::INT32));
    }
  }
  // initial_h / initial_c: left out when all zero; [B, H] gets the direction axis.
  auto initial = [&](std::size_t i) -> std::string {
    auto [sn, so] = graph::Graph::producer(n.inputs[i]);
    if (auto sv = const_value(sn); sv && so == 0) {
      const auto v = sv->to_vector<float>();
      if (std::all_of(v.begin(), v.end(), [](float e) { return e == 0.0f; })) return "";
    }
    if (n.inputs[i].shape()[0] != x.shape()[0]) unsupported("an initial state must be [batch, units] or zeros");
    const std::string s = fresh(n.name + "/initial_state");
    add("Unsqueeze", {ref(n.inputs[i]), ints_init({0}, n.name + "/axes0")}, {s}, n.name + "/initial_state");
    return s;
  };
  std::vector<std::string> ins{transpose(ref(x), {1, 0, 2}, n.name + "/time_major"), w, r, b, lens, initial(4)};
  if (lstm_op) ins.push_back(initial(5));
  while (!ins.empty() && ins.back().empty()) ins.pop_back();
  auto act = [&](const std::string& a) -> std::string {
    if (a == "sigmoid") return "Sigmoid";
    if (a == "tanh") return "Tanh";
    if (a == "relu") return "Relu";
    if (a == "hard_sigmoid") return "HardSigmoid";
    unsupported("activation '" + a + "' has no ONNX counterpart here");
    return "";
  };
  const std::string y4 = fresh(n.name + "/Y"), yh = fresh(n.name + "/Y_h"), yc = lstm_op ? fresh(n.name + "/Y_c") : "";
  std::vector<std::string> outs{y4, yh};
  if (lstm_op) outs.push_back(yc);
  NodeProto& node = add(lstm_op ? "LSTM" : gru_op ? "GRU" : "RNN", ins, outs, n.name);
  set_attr(node, "hidden_size", H);
  if (n.attrs.b("reverse")) set_attr(node, "direction", std::string("reverse"));
  const std::string f = act(n.attrs.s("recurrent_activation")), g = act(n.attrs.s("activation"));
  std::vector<std::string> acts = lstm_op ? std::vector<std::string>{f, g, g}
                                  : gru_op ? std::vector<std::string>{f, g}
                                           : std::vector<std::string>{g};
  auto* a = node.add_attribute();
  a->set_name("activations");
  a->set_type(::onnx::AttributeProto::STRINGS);
  for (const auto& s : acts) a->add_strings(s);
  if (gru_op) set_attr(node, "linear_before_reset", std::int64_t{two_rows ? 1 : 0});
  // Y [T, 1, B, H] -> [B, T, H]; Y_h, Y_c [1, B, H] -> [B, H].
  const std::string y3 = fresh(n.name + "/Y_squeezed");
  add("Squeeze", {y4, ints_init({1}, n.name + "/axes1")}, {y3}, n.name + "/squeeze_y");
  set_attr(add("Transpose", {y3}, {out}, n.name + "/batch_major"), "perm", Ints{1, 0, 2});
  add("Squeeze", {yh, ints_init({0}, n.name + "/axes0")}, {tensor_name(index, 1)}, n.name + "/squeeze_h");
  if (lstm_op) add("Squeeze", {yc, ints_init({0}, n.name + "/axes0")}, {tensor_name(index, 2)}, n.name + "/squeeze_c");
}

// Moves each Transpose after a single-consumer elementwise unary op (U(T(x)) = T(U(x))), then merges
// or cancels chains of Transposes, until nothing changes.
void Exporter::optimize_transposes(const std::set<std::string>& keep_names) {
  static const std::set<std::string> unary{"Relu", "Sigmoid", "Tanh", "Exp",       "Log",     "Neg",
                                           "Abs",  "Sqrt",    "Sign", "LeakyRelu", "Identity"};
  static const std::set<std::string> binary{"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"};
  auto perm_of = [](const NodeProto& n) {
    for (const auto& a : n.attribute())
      if (a.name() == "perm") return Ints(a.ints().begin(), a.ints().end());
    return Ints{};
  };
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<std::size_t>> users;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      for (const auto& x : nodes_[i].input()) users[x].push_back(i);
    auto sole_user = [&](const std::string& t) -> std::optional<std::size_t> {
      if (keep_names.contains(t)) return std::nullopt;
      auto it = users.find(t);
      if (it == users.end() || it->second.size() != 1) return std::nullopt;
      return it->second[0];
    };
    for (std::size_t i = 0; i < nodes_.size() && !changed; ++i) {
      if (nodes_[i].op_type() != "Transpose") continue;
      const std::string b = nodes_[i].output(0);
      auto u = sole_user(b);
      if (!u) continue;
      NodeProto& next = nodes_[*u];
      // A binary elementwise op whose other operand is an initializer used nowhere else: the
      // initializer is permuted instead (per-channel constants such as batch norm's).
      int x_pos = 0;
      ::onnx::TensorProto* constant = nullptr;
      if (binary.contains(next.op_type()) && next.input_size() == 2) {
        x_pos = next.input(0) == b ? 0 : 1;
        const std::string& other = next.input(1 - x_pos);
        if (other != b && users[other].size() == 1 && !keep_names.contains(other))
          for (auto& init : *gp_.mutable_initializer())
            if (init.name() == other) constant = &init;
        const Ints p = perm_of(nodes_[i]);
        if (constant && static_cast<std::size_t>(constant->dims_size()) > p.size()) constant = nullptr;
      }
      if (unary.contains(next.op_type()) || constant) {
        if (constant) {
          // U(T(x), C) = T(U(x, C')) with C' = C (rank-extended) permuted by T's inverse.
          const Ints p = perm_of(nodes_[i]);
          Ints inv(p.size());
          for (std::size_t d = 0; d < p.size(); ++d) inv[static_cast<std::size_t>(p[d])] = static_cast<std::int64_t>(d);
          NoGradGuard no_grad;
          Tensor v = internal::from_proto(*constant, constant->name());
          Shape full_shape(p.size() - v.shape().size(), 1);
          full_shape.insert(full_shape.end(), v.shape().begin(), v.shape().end());
          *constant = internal::to_proto(permute(reshape(v, full_shape), inv).clone(), constant->name());
        }
        // T: a -> b, U: b -> c   becomes   U: a -> b, T: b -> c (at the same two positions).
        NodeProto t = nodes_[i];
        NodeProto un = next;
        const std::string a = t.input(0), c = un.output(0);
        un.set_input(x_pos, a);
        un.set_output(0, b);
        t.set_input(0, b);
        t.set_output(0, c);
        nodes_[i] = un;
        nodes_[*u] = t;
        changed = true;
      } else if (next.op_type() == "Transpose") {
        const Ints p1 = perm_of(nodes_[i]), p2 = perm_of(next);
        Ints composed(p2.size());
        for (std::size_t d = 0; d < p2.size(); ++d) composed[d] = p1[static_cast<std::size_t>(p2[d])];
        const bool identity = [&] {
          for (std::size_t d = 0; d < composed.size(); ++d)
            if (composed[d] != static_cast<std::int64_t>(d)) return false;
          return true;
        }();
        const std::string a = nodes_[i].input(0), c = next.output(0);
        if (identity && !keep_names.contains(c)) {
          for (auto& n : nodes_)
            for (int k = 0; k < n.input_size(); ++k)
              if (n.input(k) == c) n.set_input(k, a);
          nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(std::max(i, *u)));
          nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(std::min(i, *u)));
        } else {
          next.set_input(0, a);
          next.clear_attribute();
          set_attr(next, "perm", composed);
          nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(i));
        }
        changed = true;
      }
    }
  }
}

// A subgraph that depends on Variables and Consts only (batch norm's per-channel factors, a reshaped
// bias) is evaluated now and written as one initializer: runtimes then see plain constants, which
// they fold into their layers, and the layout pass can permute them.
void Exporter::fold_constants(std::vector<bool>& needed, const std::vector<Tensor>& outputs) {
  const auto n = static_cast<std::size_t>(g_.size());
  std::vector<bool> is_const(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    const graph::Node& nd = g_.node(static_cast<int>(i));
    if (nd.op == "Variable" || nd.op == "Const") {
      is_const[i] = true;
    } else if (nd.op != "Placeholder" && nd.op != "Assign" && nd.op != "NoOp" && nd.op != "HostOp" &&
               !nd.inputs.empty() && nd.outputs.size() == 1) {
      is_const[i] = std::all_of(nd.inputs.begin(), nd.inputs.end(), [&](const Tensor& t) {
        return is_const[static_cast<std::size_t>(graph::Graph::producer(t).first)];
      });
    }
  }
  std::set<int> boundary;
  for (const auto& t : outputs) boundary.insert(graph::Graph::producer(t).first);
  for (std::size_t i = 0; i < n; ++i) {
    if (!needed[i] || is_const[i]) continue;
    for (const auto& t : g_.node(static_cast<int>(i)).inputs) boundary.insert(graph::Graph::producer(t).first);
  }
  std::vector<Tensor> fetch;
  std::vector<int> which;
  for (int b : boundary) {
    const std::string& op = g_.node(b).op;
    if (!is_const[static_cast<std::size_t>(b)] || op == "Variable" || op == "Const") continue;
    fetch.push_back(g_.output(b, 0));
    which.push_back(b);
  }
  if (fetch.empty()) return;
  // Session::run reads the graph without changing its nodes.
  graph::Session session(const_cast<graph::Graph&>(g_));
  const std::vector<Tensor> values = session.run(fetch);
  for (std::size_t k = 0; k < which.size(); ++k) folded_[which[k]] = values[k];
  // Recompute what the outputs need, stopping at folded nodes.
  mark_needed(needed, outputs);
}

void Exporter::find_bn_folds(const std::vector<bool>& needed) {
  // Readers of each node's output among the nodes written.
  std::vector<std::vector<int>> readers(static_cast<std::size_t>(g_.size()));
  for (int i = 0; i < g_.size(); ++i) {
    if (!needed[static_cast<std::size_t>(i)] || folded_.contains(i)) continue;
    for (const auto& t : g_.node(i).inputs) readers[static_cast<std::size_t>(graph::Graph::producer(t).first)].push_back(i);
  }
  // The node reading node i's output, when it is the only reader (and i is no graph output).
  auto only_reader = [&](int i) {
    const auto& r = readers[static_cast<std::size_t>(i)];
    return r.size() == 1 && consumers_[static_cast<std::size_t>(i)] == 1 ? r[0] : -1;
  };
  auto constant = [&](const Tensor& t) -> std::optional<Tensor> {
    auto [node, out] = graph::Graph::producer(t);
    if (out != 0) return std::nullopt;
    auto v = const_value(node);
    if (v && v->dtype() != DType::Float32) return std::nullopt;
    return v;
  };
  // A constant [1, ..., 1, c] (or [c]) that broadcasts along the last axis of a rank-`rank` tensor: as [c].
  auto per_channel = [&](const Tensor& t, std::int64_t c, std::size_t rank) -> std::optional<Tensor> {
    auto v = constant(t);
    if (!v || v->shape().empty() || v->shape().size() > rank || v->shape().back() != c || v->numel() != c)
      return std::nullopt;
    return reshape(v->detach(), {c});
  };
  // The other input of a binary node, when one input is node `from`'s output.
  auto other_input = [&](const graph::Node& n, int from) -> const Tensor* {
    if (n.inputs.size() != 2) return nullptr;
    for (int side = 0; side < 2; ++side)
      if (graph::Graph::producer(n.inputs[static_cast<std::size_t>(side)]) == std::pair<int, int>{from, 0})
        return &n.inputs[static_cast<std::size_t>(1 - side)];
    return nullptr;
  };
  for (int p = 0; p < g_.size(); ++p) {
    const graph::Node& n = g_.node(p);
    if (!needed[static_cast<std::size_t>(p)] || folded_.contains(p) || n.outputs.size() != 1) continue;
    const bool conv = n.op == "conv2d" || n.op == "depthwise_conv2d";
    const bool linear = n.op == "dense" ||
                        (n.op == "matmul" && !n.attrs.b("transpose_a") && !n.attrs.b("transpose_b") &&
                         n.inputs[0].ndim() == 2 && n.inputs[1].ndim() == 2);
    if (!(conv || linear) || (n.attrs.has("relu") && n.attrs.b("relu"))) continue;
    if (n.outputs[0].dtype != DType::Float32 || n.outputs[0].shape.empty()) continue;
    const std::size_t rank = n.outputs[0].shape.size();
    const std::int64_t c = n.outputs[0].shape.back();
    const auto kernel = constant(n.inputs[1]);
    std::optional<Tensor> bias = n.inputs.size() == 3 ? constant(n.inputs[2]) : std::optional<Tensor>(zeros({c}));
    if (!kernel || !bias || bias->numel() != c || kernel->numel() % c != 0) continue;
    // y = ((x - mean) * factor) (+ beta): BatchNormalization's inference trace (nn/layers.cpp).
    const int s = only_reader(p);
    if (s < 0 || g_.node(s).op != "sub" || graph::Graph::producer(g_.node(s).inputs[0]) != std::pair<int, int>{p, 0})
      continue;
    const auto mean = per_channel(g_.node(s).inputs[1], c, rank);
    const int m = only_reader(s);
    if (!mean || m < 0 || g_.node(m).op != "mul") continue;
    const Tensor* f = other_input(g_.node(m), s);
    const auto factor = f ? per_channel(*f, c, rank) : std::nullopt;
    if (!factor) continue;
    int last = m;
    Tensor beta = zeros({c});
    if (const int a = only_reader(m); a >= 0 && g_.node(a).op == "add") {
      const Tensor* b = other_input(g_.node(a), m);
      if (auto v = b ? per_channel(*b, c, rank) : std::nullopt) {
        beta = *v;
        last = a;
      }
    }
    NoGradGuard no_grad;
    // Output channels are the kernel's last axis (the depthwise filter's last two: c*M + m).
    BnFold fold;
    fold.last = last;
    fold.kernel = reshape(reshape(kernel->detach(), {-1, c}) * *factor, kernel->shape()).clone();
    fold.bias = ((reshape(bias->detach(), {c}) - *mean) * *factor + beta).clone();
    for (int k : {s, m, last}) fused_.insert(k);
    bn_fold_[p] = std::move(fold);
  }
}

void Exporter::mark_needed(std::vector<bool>& needed, const std::vector<Tensor>& outputs) const {
  needed.assign(static_cast<std::size_t>(g_.size()), false);
  std::vector<int> stack;
  for (const auto& t : outputs) stack.push_back(graph::Graph::producer(t).first);
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    if (needed[static_cast<std::size_t>(i)]) continue;
    needed[static_cast<std::size_t>(i)] = true;
    if (folded_.contains(i)) continue;
    for (const auto& t : g_.node(i).inputs) stack.push_back(graph::Graph::producer(t).first);
  }
}

void Exporter::run(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const ExportOptions& opts,
                   ExportInfo& info) {
  SYN_CHECK(!outputs.empty(), "ONNX export: no outputs given");
  for (const auto& t : inputs)
    SYN_CHECK(graph::graph_of(t) == &g_, "ONNX export: input '{}' is not a tensor of this graph", t.name());
  for (const auto& t : outputs)
    SYN_CHECK(graph::graph_of(t) == &g_, "ONNX export: output '{}' is not a tensor of this graph", t.name());
  // The nodes the outputs need.
  std::vector<bool> needed;
  consumers_.assign(static_cast<std::size_t>(g_.size()), 0);
  mark_needed(needed, outputs);  // nothing is folded yet: the whole reachable graph
  fold_constants(needed, outputs);
  for (int i = 0; i < g_.size(); ++i) {
    if (!needed[static_cast<std::size_t>(i)] || folded_.contains(i)) continue;
    for (const auto& t : g_.node(i).inputs) ++consumers_[static_cast<std::size_t>(graph::Graph::producer(t).first)];
  }
  std::set<int> output_nodes;
  for (const auto& t : outputs) output_nodes.insert(graph::Graph::producer(t).first);
  for (int i : output_nodes) ++consumers_[static_cast<std::size_t>(i)];

  // Reserve every node's name so helper names never collide with them.
  init_names_ = opts.initializer_names;
  for (int i = 0; i < g_.size(); ++i) used_.insert(g_.node(i).name);
  for (const auto& [node, name] : init_names_) used_.insert(name);

  // Inputs.
  std::map<int, std::string> input_name;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    auto [node, out] = graph::Graph::producer(inputs[k]);
    const graph::Node& n = g_.node(node);
    SYN_CHECK(n.op == "Placeholder", "ONNX export: input {} is node '{}' (op '{}'), not a placeholder", k, n.name,
              n.op);
    const std::string name = k < opts.input_names.size() ? opts.input_names[k] : n.name;
    used_.insert(name);
    input_name[node] = name;
    renamed_[tensor_name(node, 0)] = name;
    set_type(*gp_.add_input(), name, n.outputs[0]);
    info.input_names.push_back(name);
    info.input_shapes.push_back(n.outputs[0].shape);
  }
  for (int i = 0; i < g_.size(); ++i)
    if (needed[static_cast<std::size_t>(i)] && g_.node(i).op == "Placeholder" && !input_name.contains(i))
      throw Error(fmt::format("ONNX export: the outputs need placeholder '{}', which is not among the inputs",
                              g_.node(i).name));

  // Output names: the producing tensors are renamed (an Identity when the output is an input or
  // initializer, or is listed twice).
  std::vector<std::string> out_names;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    std::string name = k < opts.output_names.size() ? opts.output_names[k]
                                                    : (k == 0 ? std::string("output") : fmt::format("output_{}", k));
    SYN_CHECK(!std::count(out_names.begin(), out_names.end(), name), "ONNX export: output name '{}' is used twice",
              name);
    used_.insert(name);
    out_names.push_back(name);
  }
  std::vector<std::pair<Tensor, std::string>> identities;  // (source tensor, output name)
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    auto [node, out] = graph::Graph::producer(outputs[k]);
    const std::string t = tensor_name(node, out);
    const std::string& kind = g_.node(node).op;
    if (renamed_.contains(t) || kind == "Variable" || kind == "Const" || kind == "Placeholder" ||
        folded_.contains(node)) {
      identities.emplace_back(outputs[k], out_names[k]);
    } else {
      renamed_[t] = out_names[k];
    }
  }

  if (opts.fold_batch_norm) find_bn_folds(needed);
  info.folded_batch_norms = static_cast<int>(bn_fold_.size());

  // Gemm fusion: a 2-D matmul whose only consumer is an add of a 1-D bias of its width.
  for (int i = 0; i < g_.size(); ++i) {
    const graph::Node& n = g_.node(i);
    if (!needed[static_cast<std::size_t>(i)] || n.op != "add" || folded_.contains(i) || fused_.contains(i)) continue;
    for (int side = 0; side < 2; ++side) {
      auto [mi, mo] = graph::Graph::producer(n.inputs[static_cast<std::size_t>(side)]);
      const graph::Node& m = g_.node(mi);
      const Tensor& bias = n.inputs[static_cast<std::size_t>(1 - side)];
      if (m.op != "matmul" || mo != 0 || consumers_[static_cast<std::size_t>(mi)] != 1 || gemm_add_.contains(mi) ||
          bn_fold_.contains(mi))
        continue;
      if (m.inputs[0].ndim() != 2 || m.inputs[1].ndim() != 2 || bias.ndim() != 1) continue;
      if (bias.dim(0) != m.outputs[0].shape[1] || m.outputs[0].dtype != DType::Float32) continue;
      gemm_add_[mi] = i;
      fused_.insert(i);
      break;
    }
  }

  for (int i = 0; i < g_.size(); ++i) {
    if (!needed[static_cast<std::size_t>(i)]) continue;
    const graph::Node& n = g_.node(i);
    if (n.op == "Placeholder" || n.op == "Variable" || n.op == "Const" || fused_.contains(i) || folded_.contains(i))
      continue;
    // The recurrent ops' outputs past y and the final states are what their gradient reads; an
    // inference graph never uses them.
    const bool recurrent = n.op == "lstm" || n.op == "gru" || n.op == "simple_rnn";
    if (n.outputs.size() != 1 && !recurrent)
      throw Error(fmt::format("ONNX export: node '{}' (op '{}') has {} outputs; only single-output ops are mapped",
                              n.name, n.op, n.outputs.size()));
    const auto f = bn_fold_.find(i);
    emit(i, tensor_name(f == bn_fold_.end() ? i : f->second.last, 0));
  }
  // Renames apply to node outputs too (ref() renamed inputs already).
  for (auto& nd : nodes_)
    for (int k = 0; k < nd.output_size(); ++k)
      if (auto it = renamed_.find(nd.output(k)); it != renamed_.end()) nd.set_output(k, it->second);
  for (const auto& [src, name] : identities) add("Identity", {ref(src)}, {name}, name);
  if (opts.cancel_transposes) optimize_transposes(std::set<std::string>(out_names.begin(), out_names.end()));

  for (auto& nd : nodes_) *gp_.add_node() = std::move(nd);
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    auto [node, out] = graph::Graph::producer(outputs[k]);
    const TensorMeta& meta = g_.node(node).outputs[static_cast<std::size_t>(out)];
    set_type(*gp_.add_output(), out_names[k], meta);
    info.output_names.push_back(out_names[k]);
    info.output_shapes.push_back(meta.shape);
  }
  std::set<std::string> types;
  for (const auto& nd : gp_.node()) types.insert(nd.op_type());
  info.op_types.assign(types.begin(), types.end());
  info.node_count = gp_.node_size();
  info.initializer_count = gp_.initializer_size();
}

}  // namespace

ExportInfo export_model(const graph::Graph& g, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                        const std::string& path, const ExportOptions& opts) {
  ::onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("synapse");
  model.set_producer_version(version());
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  auto* gp = model.mutable_graph();
  gp->set_name(opts.graph_name);
  ExportInfo info;
  Exporter(g, *gp).run(inputs, outputs, opts, info);
  internal::write_proto_file(path, model);
  return info;
}

ExportInfo export_model(nn::Module& model, const Shape& input_shape, const std::string& path, ExportOptions opts) {
  const bool was_training = model.is_training();
  model.eval();
  try {
    if (!model.built()) {
      Shape concrete = input_shape;
      for (auto& d : concrete) d = d < 0 ? 1 : d;
      model.build_for(concrete);
    }
    graph::Graph g;
    Tensor x = g.placeholder("input", input_shape);
    Tensor y = model(x);
    if (opts.input_names.empty()) opts.input_names = {"input"};
    if (opts.output_names.empty()) opts.output_names = {"logits"};
    if (opts.graph_name == "synapse") opts.graph_name = model.name();
    auto name_state = [&](const std::vector<std::pair<std::string, Tensor>>& state) {
      for (const auto& [name, value] : state) {
        const int node = g.variable_node_of(value);
        if (node >= 0 && !opts.initializer_names.contains(g.node(node).name))
          opts.initializer_names[g.node(node).name] = name;
      }
    };
    name_state(model.named_parameters());
    name_state(model.named_buffers());
    ExportInfo info = export_model(g, {x}, {y}, path, opts);
    model.train(was_training);
    return info;
  } catch (...) {
    model.train(was_training);
    throw;
  }
}

}  // namespace synapse::onnx
