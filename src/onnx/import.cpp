// ONNX -> Synapse. Each ONNX node is translated by calling Synapse's ops on the values of its inputs:
// on the placeholders' symbolic tensors this adds graph nodes, and where every input is a constant
// (shape computations, Constant nodes, integer initializers) the ops simply run at import time — so
// constant folding comes for free, and attribute-like inputs (Reshape's shape, Slice's starts, ...)
// are read from those folded constants.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/check.h"
#include "onnx/proto.h"
#include "synapse/graph.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse::onnx {
namespace internal {
namespace {

using ::onnx::AttributeProto;
using ::onnx::NodeProto;
using Ints = std::vector<std::int64_t>;

std::string describe(const NodeProto& n) {
  return fmt::format("{} node '{}'", n.op_type(), n.name().empty() ? (n.output_size() ? n.output(0) : "?") : n.name());
}

bool is_identity_perm(const Ints& p) {
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

bool fully_known(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](std::int64_t d) { return d >= 0; });
}

}  // namespace

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

namespace {

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

Tensor scalar_as(double v, DType dt) { return full({}, v, dt); }

// Variadic Max/Min/Sum/Mean fold left.
Outputs fold(Ctx& c, Tensor (*f)(const Tensor&, const Tensor&)) {
  Tensor acc = c.in(0);
  c.require_numeric(acc);
  for (int k = 1; k < c.num_inputs(); ++k) acc = f(acc, c.in(k));
  return {acc};
}

Tensor not_(const Tensor& b) { return where(b, full({}, 0, DType::Bool), full({}, 1, DType::Bool)); }

// Shapes used as attributes: Reshape's target (0 copies the input's extent unless allowzero).
Shape reshape_target(Ctx& c, const Shape& in, Ints target, bool allowzero) {
  for (std::size_t d = 0; d < target.size(); ++d) {
    if (target[d] == 0 && !allowzero) {
      if (d >= in.size()) c.unsupported("shape copies a dimension the input does not have");
      target[d] = in[d];
    }
  }
  const auto unknown = std::count(target.begin(), target.end(), -1);
  if (unknown > 1)
    c.unsupported(fmt::format("target shape [{}] has more than one unknown extent", fmt::join(target, ",")));
  return target;
}

// Normalised sorted axes for Squeeze/Unsqueeze and reductions.
Ints norm_axes(Ctx& c, Ints axes, std::int64_t rank) {
  for (auto& a : axes) a = c.axis(a, rank);
  std::sort(axes.begin(), axes.end());
  return axes;
}

// Axes of a reduction: the 'axes' input (ReduceSum from opset 13, all from 18) or attribute.
std::optional<Ints> reduce_axes(Ctx& c, bool axes_as_input) {
  if (axes_as_input && c.has(1)) return c.ints_in(1);
  if (c.has_attr("axes")) return c.ints("axes");
  return std::nullopt;
}

Outputs reduce(Ctx& c, const std::string& kind) {
  Tensor x = c.in(0);
  const bool axes_as_input = (kind == "sum" && c.im.opset() >= 13) || c.im.opset() >= 18;
  const bool keep = c.i("keepdims", 1) != 0;
  auto axes_opt = reduce_axes(c, axes_as_input);
  Ints axes = axes_opt ? norm_axes(c, *axes_opt, x.ndim()) : Ints{};
  if (axes.empty() && c.i("noop_with_empty_axes", 0)) return {x};
  if (axes.empty()) {
    axes.resize(static_cast<std::size_t>(x.ndim()));
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (kind == "max") return {synapse::max(x, axes, keep)};
  if (kind == "min") return {synapse::min(x, axes, keep)};
  if (kind == "sum") {
    c.require_numeric(x);
    return {synapse::sum(x, axes, keep)};
  }
  c.require_float(x);
  if (kind == "mean") return {synapse::mean(x, axes, keep)};
  if (kind == "sum_square") return {synapse::sum(square(x), axes, keep)};
  if (kind == "l1") return {synapse::sum(synapse::abs(x), axes, keep)};
  if (kind == "l2") return {synapse::sqrt(synapse::sum(square(x), axes, keep))};
  if (kind == "log_sum") return {synapse::log(synapse::sum(x, axes, keep))};
  if (kind == "log_sum_exp") {
    // max + log(sum(exp(x - max))), stable for large inputs.
    Tensor m = synapse::max(x, axes, true);
    Tensor r = m + synapse::log(synapse::sum(synapse::exp(x - m), axes, true));
    if (!keep) {
      for (auto it = axes.rbegin(); it != axes.rend(); ++it) r = squeeze(r, *it);
    }
    return {r};
  }
  c.unsupported("unknown reduction");
}

// Softmax family: from opset 13 along one axis; before, on the input coerced to 2-D at `axis`.
Outputs softmax_like(Ctx& c, bool log) {
  Tensor x = c.in(0);
  c.require_float(x);
  const std::int64_t r = x.ndim();
  if (c.im.opset() >= 13) {
    const std::int64_t a = c.axis(c.i("axis", -1), r);
    return {log ? log_softmax(x, a) : softmax(x, a)};
  }
  const std::int64_t a = c.axis(c.i("axis", 1), r);
  if (a == r - 1) return {log ? log_softmax(x, -1) : softmax(x, -1)};
  c.require_known(x);
  const Shape& s = x.shape();
  const std::int64_t rows = std::accumulate(s.begin(), s.begin() + a, std::int64_t{1}, std::multiplies<>());
  Tensor flat = reshape(x, {rows, -1});
  return {reshape(log ? log_softmax(flat, -1) : softmax(flat, -1), s)};
}

Outputs hardmax(Ctx& c) {
  Tensor x = c.in(0);
  c.require_float(x);
  const std::int64_t r = x.ndim();
  if (c.im.opset() < 13) c.unsupported("Hardmax before opset 13 (2-D coercion) is not supported");
  const std::int64_t a = c.axis(c.i("axis", -1), r);
  Ints to_last, back;
  for (std::int64_t d = 0; d < r; ++d)
    if (d != a) to_last.push_back(d);
  to_last.push_back(a);
  back.resize(static_cast<std::size_t>(r));
  for (std::int64_t d = 0; d < r; ++d) back[static_cast<std::size_t>(to_last[static_cast<std::size_t>(d)])] = d;
  Tensor moved = c.im.permute_tracked(x, to_last);
  return {c.im.permute_tracked(one_hot(argmax(moved, -1), x.dim(a)), back)};
}

// ---- convolution and pooling (ONNX NCHW, Synapse NHWC) ----

struct Window {
  Ints kernel, strides, dilations;
  Ints pad_begin{0, 0}, pad_end{0, 0};
  bool same_upper = false;  // TensorFlow's SAME: Synapse pads itself
};

// Resolves auto_pad / pads / ceil_mode for the two spatial dims of an NCHW input.
Window window(Ctx& c, const Tensor& x, Ints kernel, bool ceil_mode) {
  Window w;
  w.kernel = std::move(kernel);
  w.strides = c.ints("strides", {1, 1});
  w.dilations = c.ints("dilations", {1, 1});
  if (w.kernel.size() != 2 || w.strides.size() != 2 || w.dilations.size() != 2)
    c.unsupported("only 2-D windows are supported");
  const std::string auto_pad = c.s("auto_pad", "NOTSET");
  const Shape& s = x.shape();
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    if (auto_pad == "SAME_UPPER" && !ceil_mode) {
      w.same_upper = true;
      return w;
    }
    for (int d = 0; d < 2; ++d) {
      const std::int64_t in = s[static_cast<std::size_t>(d + 2)];
      if (in < 0) c.unsupported("SAME_LOWER padding needs known spatial extents");
      const std::int64_t out = (in + w.strides[d] - 1) / w.strides[d];
      const std::int64_t eff = (w.kernel[d] - 1) * w.dilations[d] + 1;
      const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * w.strides[d] + eff - in);
      w.pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.pad_end[d] = total - w.pad_begin[d];
    }
    return w;
  }
  if (auto_pad != "NOTSET" && auto_pad != "VALID") c.unsupported(fmt::format("auto_pad {}", auto_pad));
  if (auto_pad == "NOTSET") {
    const Ints pads = c.ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) c.unsupported("pads must have 4 values for a 2-D window");
    w.pad_begin = {pads[0], pads[1]};
    w.pad_end = {pads[2], pads[3]};
    for (auto p : pads)
      if (p < 0) c.unsupported("negative pads");
  }
  if (ceil_mode) {
    // Extra cells at the end so floor division gives ceil's output size.
    for (int d = 0; d < 2; ++d) {
      const std::int64_t in = s[static_cast<std::size_t>(d + 2)];
      if (in < 0) c.unsupported("ceil_mode needs known spatial extents");
      const std::int64_t eff = (w.kernel[d] - 1) * w.dilations[d] + 1;
      const std::int64_t span = in + w.pad_begin[d] + w.pad_end[d] - eff;
      const std::int64_t out = (span + w.strides[d] - 1) / w.strides[d] + 1;
      w.pad_end[d] += std::max<std::int64_t>(0, (out - 1) * w.strides[d] + eff - (in + w.pad_begin[d] + w.pad_end[d]));
    }
  }
  return w;
}

bool has_padding(const Window& w) { return w.pad_begin[0] || w.pad_begin[1] || w.pad_end[0] || w.pad_end[1]; }

// Pads an NHWC tensor's spatial dims.
Tensor pad_nhwc(const Tensor& x, const Window& w, float value) {
  return pad(x, {{0, 0}, {w.pad_begin[0], w.pad_end[0]}, {w.pad_begin[1], w.pad_end[1]}, {0, 0}}, value);
}

Ints kernel_of(Ctx& c, const Tensor& weight_or_none) {
  if (c.has_attr("kernel_shape")) return c.ints("kernel_shape");
  if (weight_or_none.defined()) return {weight_or_none.dim(2), weight_or_none.dim(3)};
  c.unsupported("kernel_shape is required");
}

Outputs conv(Ctx& c) {
  Tensor x = c.in(0), w = c.in(1);
  c.require_float(x);
  c.require_rank(x, 4);
  c.require_rank(w, 4);
  if (c.i("group", 1) != 1) c.unsupported(fmt::format("group={} (grouped convolution)", c.i("group", 1)));
  Window win = window(c, x, kernel_of(c, w), false);
  if (win.kernel[0] != w.dim(2) || win.kernel[1] != w.dim(3)) c.unsupported("kernel_shape differs from the weights'");
  Tensor xh = c.im.to_nhwc(x);
  Tensor filt = c.im.permute_tracked(w, {2, 3, 1, 0});  // OIHW -> HWIO
  Conv2DOptions o{
      .strides = win.strides, .dilations = win.dilations, .padding = win.same_upper ? Padding::Same : Padding::Valid};
  if (has_padding(win)) xh = pad_nhwc(xh, win, 0.0f);
  Tensor y = c.has(2) ? conv2d(xh, filt, c.in(2), o) : conv2d(xh, filt, o);
  return {c.im.to_nchw(y)};
}

// ConvTranspose is the adjoint of a VALID conv (Synapse's conv2d_backprop_input) over the full output
// (H-1)*s + (k-1)*d + 1 + output_padding, cropped by the pads.
Outputs conv_transpose(Ctx& c) {
  Tensor x = c.in(0), w = c.in(1);
  c.require_float(x);
  c.require_rank(x, 4);
  c.require_rank(w, 4);
  if (c.i("group", 1) != 1) c.unsupported(fmt::format("group={}", c.i("group", 1)));
  if (c.s("auto_pad", "NOTSET") != "NOTSET") c.unsupported(fmt::format("auto_pad {}", c.s("auto_pad", "")));
  if (c.has_attr("output_shape")) c.unsupported("output_shape");
  const Ints kernel = c.ints("kernel_shape", {w.dim(2), w.dim(3)});
  if (kernel != Ints{w.dim(2), w.dim(3)}) c.unsupported("kernel_shape differs from the weights'");
  const Ints strides = c.ints("strides", {1, 1}), dil = c.ints("dilations", {1, 1});
  const Ints pads = c.ints("pads", {0, 0, 0, 0}), out_pad = c.ints("output_padding", {0, 0});
  if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4 || out_pad.size() != 2)
    c.unsupported("only 2-D windows are supported");
  if (x.dim(0) < 0 || x.dim(2) < 0 || x.dim(3) < 0) c.unsupported("needs known batch and spatial extents");
  Shape full{x.dim(0), 0, 0, w.dim(1)};
  for (std::size_t d = 0; d < 2; ++d)
    full[d + 1] =
        (x.dim(static_cast<std::int64_t>(d) + 2) - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 + out_pad[d];
  static const OpDef& op = op_def("conv2d_backprop_input");
  Tensor filt = c.im.permute_tracked(w, {2, 3, 1, 0});  // [C, M, kh, kw] -> [kh, kw, M, C]
  Tensor y =
      apply1(op, {c.im.to_nhwc(x), filt},
             Attrs().set("strides", strides).set("dilations", dil).set("padding", "VALID").set("input_shape", full));
  if (pads[0] || pads[1] || pads[2] || pads[3])
    y = slice(y, {0, pads[0], pads[1], 0}, {-1, full[1] - pads[0] - pads[2], full[2] - pads[1] - pads[3], -1});
  if (c.has(2)) y = y + c.in(2);
  return {c.im.to_nchw(y)};
}

Outputs pool(Ctx& c, bool is_max, bool global) {
  Tensor x = c.in(0);
  c.require_float(x);
  if (global) {
    if (x.ndim() < 3) c.unsupported("needs an input of rank >= 3");
    Ints axes(static_cast<std::size_t>(x.ndim() - 2));
    std::iota(axes.begin(), axes.end(), 2);
    return {is_max ? synapse::max(x, axes, true) : synapse::mean(x, axes, true)};
  }
  c.require_rank(x, 4);
  if (is_max && c.n.output_size() > 1 && !c.n.output(1).empty()) c.unsupported("the Indices output");
  const bool ceil_mode = c.i("ceil_mode", 0) != 0;
  Window win = window(c, x, kernel_of(c, Tensor()), ceil_mode);
  if (win.dilations != Ints{1, 1}) c.unsupported("dilated pooling");
  Pool2DOptions o{
      .ksize = win.kernel, .strides = win.strides, .padding = win.same_upper ? Padding::Same : Padding::Valid};
  Tensor xh = c.im.to_nhwc(x);
  if (is_max) {
    if (has_padding(win)) xh = pad_nhwc(xh, win, -std::numeric_limits<float>::infinity());
    return {c.im.to_nchw(max_pool2d(xh, o))};
  }
  const bool include_pad = c.i("count_include_pad", 0) != 0;
  if (win.same_upper) {
    if (include_pad) c.unsupported("SAME_UPPER with count_include_pad=1");
    return {c.im.to_nchw(avg_pool2d(xh, o))};
  }
  if (!has_padding(win)) return {c.im.to_nchw(avg_pool2d(xh, o))};
  // Average over padded input, divided by the share of each window that counts: the original cells
  // (count_include_pad=0) or those plus the explicit pads (=1); ceil_mode's extra cells never count.
  if (x.dim(2) < 0 || x.dim(3) < 0) c.unsupported("explicit pads need known spatial extents");
  Window counted = win;
  if (!include_pad) {
    counted.pad_begin = {0, 0};
    counted.pad_end = {0, 0};
  } else if (ceil_mode) {
    Ints pads = c.ints("pads", {0, 0, 0, 0});
    if (c.s("auto_pad", "NOTSET") != "NOTSET") c.unsupported("auto_pad with ceil_mode and count_include_pad=1");
    counted.pad_begin = {pads[0], pads[1]};
    counted.pad_end = {pads[2], pads[3]};
  }
  const std::int64_t h = x.dim(2) + counted.pad_begin[0] + counted.pad_end[0];
  const std::int64_t wd = x.dim(3) + counted.pad_begin[1] + counted.pad_end[1];
  Window rest = win;
  for (int d = 0; d < 2; ++d) {
    rest.pad_begin[d] = win.pad_begin[d] - counted.pad_begin[d];
    rest.pad_end[d] = win.pad_end[d] - counted.pad_end[d];
  }
  Tensor mask = pad_nhwc(ones({1, h, wd, 1}), rest, 0.0f);
  Tensor share = avg_pool2d(mask, o);  // a constant, computed now
  return {c.im.to_nchw(avg_pool2d(pad_nhwc(xh, win, 0.0f), o) / share)};
}

// Channel statistics [C] reshaped to broadcast against NC... inputs.
Tensor per_channel(const Tensor& v, std::int64_t rank) {
  Shape s(static_cast<std::size_t>(rank), 1);
  s[1] = v.numel();
  return reshape(v, s);
}

Outputs batch_norm(Ctx& c) {
  Tensor x = c.in(0);
  c.require_float(x);
  if (c.i("training_mode", 0)) c.unsupported("training_mode=1");
  for (int k = 1; k < c.n.output_size(); ++k)
    if (!c.n.output(k).empty()) c.unsupported("the running-statistics outputs (training mode)");
  if (x.ndim() < 2) c.unsupported("needs an input of rank >= 2");
  const float eps = c.f("epsilon", 1e-5f);
  const std::int64_t r = x.ndim();
  Tensor factor = per_channel(c.in(1), r) / synapse::sqrt(per_channel(c.in(4), r) + eps);
  return {(x - per_channel(c.in(3), r)) * factor + per_channel(c.in(2), r)};
}

Outputs instance_norm(Ctx& c) {
  Tensor x = c.in(0);
  c.require_float(x);
  if (x.ndim() < 3) c.unsupported("needs an input of rank >= 3");
  Ints axes(static_cast<std::size_t>(x.ndim() - 2));
  std::iota(axes.begin(), axes.end(), 2);
  const std::int64_t r = x.ndim();
  Tensor centered = x - synapse::mean(x, axes, true);
  Tensor var = synapse::mean(square(centered), axes, true);
  return {centered / synapse::sqrt(var + c.f("epsilon", 1e-5f)) * per_channel(c.in(1), r) + per_channel(c.in(2), r)};
}

Outputs layer_norm(Ctx& c) {
  Tensor x = c.in(0);
  c.require_float(x);
  const std::int64_t r = x.ndim();
  const std::int64_t a = c.axis(c.i("axis", -1), r);
  if (c.i("stash_type", 1) != 1) c.unsupported("stash_type other than float");
  Ints axes;
  for (std::int64_t d = a; d < r; ++d) axes.push_back(d);
  Tensor mean = synapse::mean(x, axes, true);
  Tensor centered = x - mean;
  Tensor inv_std = 1.0f / synapse::sqrt(synapse::mean(square(centered), axes, true) + c.f("epsilon", 1e-5f));
  Tensor y = centered * inv_std * c.in(1);
  if (c.has(2)) y = y + c.in(2);
  return {y, mean, inv_std};
}

Outputs gemm(Ctx& c) {
  Tensor a = c.in(0), b = c.in(1);
  c.require_float(a);
  c.require_rank(a, 2);
  c.require_rank(b, 2);
  Tensor y = matmul(a, b, {.transpose_a = c.i("transA", 0) != 0, .transpose_b = c.i("transB", 0) != 0});
  const float alpha = c.f("alpha", 1.0f), beta = c.f("beta", 1.0f);
  if (alpha != 1.0f) y = y * alpha;
  if (c.has(2)) {
    Tensor bias = c.in(2);
    y = beta == 1.0f ? y + bias : y + bias * beta;
  }
  return {y};
}

Outputs matmul_np(Ctx& c) {
  Tensor a = c.in(0), b = c.in(1);
  c.require_float(a);
  const bool a1 = a.ndim() == 1, b1 = b.ndim() == 1;
  if (a1) a = unsqueeze(a, 0);
  if (b1) b = unsqueeze(b, 1);
  Tensor y = matmul(a, b);
  if (a1) y = squeeze(y, -2);
  if (b1) y = squeeze(y, -1);
  return {y};
}

Outputs slice_op(Ctx& c) {
  Tensor x = c.in(0);
  Ints starts, ends, axes, steps;
  if (c.im.opset() < 10) {
    starts = c.ints("starts");
    ends = c.ints("ends");
    axes = c.ints("axes");
  } else {
    starts = c.ints_in(1);
    ends = c.ints_in(2);
    if (c.has(3)) axes = c.ints_in(3);
    if (c.has(4)) steps = c.ints_in(4);
  }
  if (axes.empty()) {
    axes.resize(starts.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  for (auto st : steps)
    if (st != 1) c.unsupported(fmt::format("step {} (only 1 is supported)", st));
  const Shape& s = x.shape();
  Ints begin(s.size(), 0), size(s.size(), -1);
  for (std::size_t k = 0; k < axes.size(); ++k) {
    const auto d = static_cast<std::size_t>(c.axis(axes[k], x.ndim()));
    const std::int64_t n = s[d];
    if (n < 0) c.unsupported("slicing a dimension of unknown extent");
    auto clampi = [n](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + n : v, 0, n); };
    const std::int64_t b = clampi(starts[k]), e = clampi(ends[k]);
    begin[d] = b;
    size[d] = std::max<std::int64_t>(0, e - b);
  }
  return {slice(x, begin, size)};
}

Outputs pad_op(Ctx& c) {
  Tensor x = c.in(0);
  const std::string mode = c.s("mode", "constant");
  if (mode != "constant") c.unsupported(fmt::format("mode '{}'", mode));
  Ints pads;
  double value = 0.0;
  if (c.im.opset() < 11) {
    pads = c.ints("pads");
    value = c.f("value", 0.0f);
  } else {
    pads = c.ints_in(1);
    if (c.has(2)) value = c.scalar_in(2);
    if (c.has(3)) c.unsupported("the axes input");
  }
  const auto r = static_cast<std::size_t>(x.ndim());
  if (pads.size() != 2 * r)
    throw Error(fmt::format("{}: pads has {} values for rank {}", describe(c.n), pads.size(), r));
  std::vector<std::pair<std::int64_t, std::int64_t>> p;
  for (std::size_t d = 0; d < r; ++d) {
    if (pads[d] < 0 || pads[d + r] < 0) c.unsupported("negative pads (cropping)");
    p.emplace_back(pads[d], pads[d + r]);
  }
  return {pad(x, p, static_cast<float>(value))};
}

Outputs split_op(Ctx& c) {
  Tensor x = c.in(0);
  const std::int64_t a = c.axis(c.i("axis", 0), x.ndim());
  const std::int64_t n = x.dim(a);
  if (n < 0) c.unsupported("splitting a dimension of unknown extent");
  Ints parts = c.im.opset() >= 13 ? (c.has(1) ? c.ints_in(1) : Ints{}) : c.ints("split");
  const auto count = static_cast<std::int64_t>(c.n.output_size());
  if (parts.empty()) {
    if (n % count) c.unsupported("uneven split");
    parts.assign(static_cast<std::size_t>(count), n / count);
  }
  Outputs out;
  std::int64_t at = 0;
  for (auto len : parts) {
    Ints begin(static_cast<std::size_t>(x.ndim()), 0), size(static_cast<std::size_t>(x.ndim()), -1);
    begin[static_cast<std::size_t>(a)] = at;
    size[static_cast<std::size_t>(a)] = len;
    out.push_back(slice(x, begin, size));
    at += len;
  }
  return out;
}

Outputs gather_op(Ctx& c) {
  Tensor x = c.in(0), idx = c.in(1);
  const std::int64_t a = c.axis(c.i("axis", 0), x.ndim());
  if (idx.dtype() != DType::Int64 && idx.dtype() != DType::Int32) c.unsupported("indices must be int32 or int64");
  const std::int64_t n = x.dim(a);
  if (n < 0) c.unsupported("gathering along a dimension of unknown extent");
  // ONNX counts negative indices from the end.
  Tensor zero = scalar_as(0, idx.dtype());
  idx = where(less(idx, zero), idx + scalar_as(static_cast<double>(n), idx.dtype()), idx);
  return {gather(x, idx, a)};
}

Outputs onehot_op(Ctx& c) {
  Tensor idx = c.in(0);
  const auto depth = static_cast<std::int64_t>(c.scalar_in(1));
  Tensor values = c.cin(2);
  const DType out_type = values.dtype();
  if (out_type != DType::Float32 && out_type != DType::Int32 && out_type != DType::Int64)
    c.unsupported(fmt::format("values of type {}", dtype_name(out_type)));
  const auto v = cast(values, DType::Float32).to_vector<float>();
  if (v.size() != 2) throw Error(fmt::format("{}: values must hold [off, on]", describe(c.n)));
  if (idx.dtype() == DType::Float32) idx = cast(idx, DType::Int64);
  if (idx.dtype() != DType::Int64 && idx.dtype() != DType::Int32) c.unsupported("indices must be integers");
  Tensor zero = scalar_as(0, idx.dtype());
  idx = where(less(idx, zero), idx + scalar_as(static_cast<double>(depth), idx.dtype()), idx);
  Tensor y = one_hot(idx, depth, v[1], v[0]);
  const std::int64_t r = y.ndim();
  const std::int64_t a = c.axis(c.i("axis", -1), r);
  if (a != r - 1) {
    Ints perm;
    for (std::int64_t d = 0; d < r - 1; ++d) {
      if (d == a) perm.push_back(r - 1);
      perm.push_back(d);
    }
    y = permute(y, perm);
  }
  return {cast(y, out_type)};
}

Outputs constant_op(Ctx& c) {
  if (const auto* a = c.attr("value")) return {from_proto(a->t(), describe(c.n))};
  if (const auto* a = c.attr("value_float")) return {full({}, a->f())};
  if (const auto* a = c.attr("value_floats"))
    return {from_vector(std::vector<float>(a->floats().begin(), a->floats().end()))};
  if (const auto* a = c.attr("value_int")) return {full({}, static_cast<double>(a->i()), DType::Int64)};
  if (const auto* a = c.attr("value_ints")) return {from_vector(Ints(a->ints().begin(), a->ints().end()))};
  c.unsupported("only value, value_float(s) and value_int(s) are supported");
}

Outputs clip_op(Ctx& c) {
  Tensor x = c.in(0);
  c.require_float(x);
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (c.im.opset() < 11) {
    lo = c.f("min", lo);
    hi = c.f("max", hi);
  } else {
    if (c.has(1)) lo = static_cast<float>(c.scalar_in(1));
    if (c.has(2)) hi = static_cast<float>(c.scalar_in(2));
  }
  if (lo > hi) return {full(x.shape(), hi)};  // ONNX: every value becomes max
  return {clip(x, lo, hi)};
}

Outputs cast_to(Ctx& c, DType to) {
  Tensor x = c.in(0);
  return {cast(x, to)};
}

Outputs unary(Ctx& c, Tensor (*f)(const Tensor&)) {
  Tensor x = c.in(0);
  c.require_float(x);
  return {f(x)};
}

Outputs binary(Ctx& c, Tensor (*f)(const Tensor&, const Tensor&), bool float_only = false) {
  Tensor a = c.in(0), b = c.in(1);
  if (a.dtype() != b.dtype())
    c.unsupported(fmt::format("inputs of different types ({} and {})", dtype_name(a.dtype()), dtype_name(b.dtype())));
  if (float_only) c.require_float(a);
  return {f(a, b)};
}

Outputs arg_extreme(Ctx& c, bool is_max) {
  Tensor x = c.in(0);
  if (!is_max) c.require_float(x);
  const std::int64_t a = c.axis(c.i("axis", 0), x.ndim());
  const std::int64_t n = x.dim(a);
  const bool last = c.i("select_last_index", 0) != 0;
  if (last) {
    // The last extremum is the first one of the reversed axis: n - 1 - argmax(reverse(x)).
    if (n < 0) c.unsupported("select_last_index along an axis of unknown extent");
    x = gather(x, arange(static_cast<double>(n - 1), -1.0, -1.0, DType::Int64), a);
  }
  Tensor y = argmax(is_max ? x : neg(x), a);
  if (last) y = full({}, static_cast<double>(n - 1), DType::Int64) - y;
  if (c.i("keepdims", 1)) y = unsqueeze(y, a);
  return {y};
}

Outputs flatten_op(Ctx& c) {
  Tensor x = c.in(0);
  const std::int64_t r = x.ndim();
  std::int64_t a = c.i("axis", 1);
  if (a < 0) a += r;
  if (a < 0 || a > r) throw Error(fmt::format("{}: axis {} is out of range for rank {}", describe(c.n), a, r));
  const Shape& s = x.shape();
  auto prod = [&](std::size_t lo, std::size_t hi) {
    std::int64_t p = 1;
    for (std::size_t d = lo; d < hi; ++d) {
      if (s[d] < 0) return std::int64_t{-1};
      p *= s[d];
    }
    return p;
  };
  std::int64_t rows = prod(0, static_cast<std::size_t>(a)), cols = prod(static_cast<std::size_t>(a), s.size());
  if (rows < 0 && cols < 0) c.unsupported("both halves of the shape have unknown extents");
  return {reshape(x, {rows, cols})};
}

Outputs unsqueeze_op(Ctx& c) {
  Tensor x = c.in(0);
  Ints axes = c.im.opset() >= 13 ? c.ints_in(1) : c.ints("axes");
  const auto out_rank = x.ndim() + static_cast<std::int64_t>(axes.size());
  axes = norm_axes(c, axes, out_rank);
  Shape s = x.shape();
  for (auto a : axes) s.insert(s.begin() + a, 1);
  return {reshape(x, s)};
}

Outputs squeeze_op(Ctx& c) {
  Tensor x = c.in(0);
  Ints axes = c.im.opset() >= 13 ? (c.has(1) ? c.ints_in(1) : Ints{}) : c.ints("axes");
  Shape s = x.shape();
  if (axes.empty()) {
    for (std::int64_t d = 0; d < x.ndim(); ++d)
      if (s[static_cast<std::size_t>(d)] == 1) axes.push_back(d);
  }
  axes = norm_axes(c, axes, x.ndim());
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) s.erase(s.begin() + *it);
  return {reshape(x, s)};
}

Outputs tile_op(Ctx& c) {
  Tensor x = c.in(0);
  const Ints reps = c.ints_in(1);
  for (std::size_t d = 0; d < reps.size(); ++d) {
    if (reps[d] == 1) continue;
    if (reps[d] < 1) c.unsupported("repeats below 1");
    x = concat(std::vector<Tensor>(static_cast<std::size_t>(reps[d]), x), static_cast<std::int64_t>(d));
  }
  return {x};
}

Outputs dropout_op(Ctx& c) {
  Tensor x = c.in(0);
  const double ratio = c.has(1) ? c.scalar_in(1) : c.f("ratio", 0.5f);
  if (c.has(2) && c.scalar_in(2) != 0.0 && ratio != 0.0) c.unsupported("training_mode=true (random masks)");
  if (c.has_attr("is_test") && c.i("is_test", 0) == 0) c.unsupported("is_test=0 (training)");
  Outputs out{x};
  if (c.n.output_size() > 1 && !c.n.output(1).empty()) {
    if (c.im.opset() < 10) c.unsupported("a float mask (before opset 10)");
    if (!fully_known(x.shape())) c.unsupported("a mask for a tensor of unknown shape");
    out.push_back(full(x.shape(), 1, DType::Bool));
  }
  return out;
}

Outputs shape_op(Ctx& c) {
  Tensor x = c.in(0);
  Shape s = x.shape();
  const auto r = static_cast<std::int64_t>(s.size());
  std::int64_t lo = c.i("start", 0), hi = c.i("end", r);
  lo = std::clamp<std::int64_t>(lo < 0 ? lo + r : lo, 0, r);
  hi = std::clamp<std::int64_t>(hi < 0 ? hi + r : hi, 0, r);
  Shape part(s.begin() + lo, s.begin() + std::max(lo, hi));
  if (!fully_known(part)) c.unsupported(fmt::format("the shape {} has unknown extents", to_string(s)));
  return {from_vector(part)};
}

Outputs trilu(Ctx& c) {
  Tensor x = c.in(0);
  if (x.ndim() < 2) c.unsupported("needs an input of rank >= 2");
  const std::int64_t rows = x.dim(-2), cols = x.dim(-1);
  if (rows < 0 || cols < 0) c.unsupported("needs known extents in the last two dimensions");
  const std::int64_t k = c.has(1) ? static_cast<std::int64_t>(c.scalar_in(1)) : 0;
  const bool upper = c.i("upper", 1) != 0;
  Tensor mask = Tensor::empty({rows, cols}, DType::Bool);
  bool* m = mask.data<bool>();
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) m[i * cols + j] = upper ? j - i >= k : j - i <= k;
  return {where(mask, x, full({}, 0, x.dtype()))};
}

Outputs eye_like(Ctx& c) {
  Tensor x = c.in(0);
  c.require_rank(x, 2);
  c.require_known(x);
  const DType dt = c.has_attr("dtype") ? synapse_type(static_cast<int>(c.i("dtype", 1)), describe(c.n)) : x.dtype();
  const std::int64_t k = c.i("k", 0), rows = x.dim(0), cols = x.dim(1);
  Tensor eye = zeros({rows, cols});
  float* e = eye.data<float>();
  for (std::int64_t i = 0; i < rows; ++i)
    if (i + k >= 0 && i + k < cols) e[i * cols + i + k] = 1.0f;
  return {cast(eye, dt)};
}

// DepthToSpace / SpaceToDepth: a reshape, a permute and a reshape (static shapes).
Outputs depth_space(Ctx& c, bool to_space) {
  Tensor x = c.in(0);
  c.require_rank(x, 4);
  c.require_known(x);
  const std::int64_t b = c.i("blocksize", 0);
  if (b <= 0) throw Error(fmt::format("{}: blocksize must be positive", describe(c.n)));
  const std::int64_t n = x.dim(0), ch = x.dim(1), h = x.dim(2), w = x.dim(3);
  if (to_space) {
    const std::string mode = c.s("mode", "DCR");
    if (mode == "DCR") {
      Tensor t = permute(reshape(x, {n, b, b, ch / (b * b), h, w}), {0, 3, 4, 1, 5, 2});
      return {reshape(t, {n, ch / (b * b), h * b, w * b})};
    }
    if (mode != "CRD") c.unsupported(fmt::format("mode '{}'", mode));
    Tensor t = permute(reshape(x, {n, ch / (b * b), b, b, h, w}), {0, 1, 4, 2, 5, 3});
    return {reshape(t, {n, ch / (b * b), h * b, w * b})};
  }
  Tensor t = permute(reshape(x, {n, ch, h / b, b, w / b, b}), {0, 3, 5, 1, 2, 4});
  return {reshape(t, {n, ch * b * b, h / b, w / b})};
}

Outputs mvn(Ctx& c) {
  Tensor x = c.in(0);
  c.require_float(x);
  const Ints axes = norm_axes(c, c.ints("axes", {0, 2, 3}), x.ndim());
  Tensor centered = x - synapse::mean(x, axes, true);
  Tensor sd = synapse::sqrt(synapse::mean(square(centered), axes, true));
  return {centered / (sd + 1e-9f)};
}

// GatherElements with one_hot: the picked element is sum_k(one_hot(index)_k * x_k) along the axis
// (float data; the other dimensions of x are cut to the indices' extents).
Outputs gather_elements(Ctx& c) {
  Tensor x = c.in(0), idx = c.in(1);
  c.require_float(x);
  c.require_known(x);
  c.require_known(idx);
  if (idx.dtype() != DType::Int64 && idx.dtype() != DType::Int32) c.unsupported("indices must be int32 or int64");
  if (idx.ndim() != x.ndim()) throw Error(fmt::format("{}: indices and data ranks differ", describe(c.n)));
  const std::int64_t r = x.ndim(), a = c.axis(c.i("axis", 0), r), n = x.dim(a);
  Ints begin(static_cast<std::size_t>(r), 0), size = idx.shape();
  size[static_cast<std::size_t>(a)] = n;
  x = slice(x, begin, size);
  idx = where(less(idx, scalar_as(0, idx.dtype())), idx + scalar_as(static_cast<double>(n), idx.dtype()), idx);
  // x moved so the axis is last, then broadcast against one_hot(idx) [..., m, n] along a new axis.
  Ints to_last;
  for (std::int64_t d = 0; d < r; ++d)
    if (d != a) to_last.push_back(d);
  to_last.push_back(a);
  Ints back(static_cast<std::size_t>(r));
  for (std::int64_t d = 0; d < r; ++d) back[static_cast<std::size_t>(to_last[static_cast<std::size_t>(d)])] = d;
  Tensor xl = unsqueeze(permute(x, to_last), -2);      // [..., 1, n]
  Tensor oh = one_hot(permute(idx, to_last), n);       // [..., m, n]
  Tensor picked = synapse::sum(oh * xl, {-1}, false);  // [..., m]
  return {permute(picked, back)};
}

// ---- recurrent layers ----
// ONNX's LSTM, GRU and RNN (forward, reverse or bidirectional) onto lstm, gru and simple_rnn.
// ONNX: X [T,B,I] (layout 1: [B,T,I]), W [D,G*H,I], R [D,G*H,H], B [D,2*G*H] (input then recurrent
// bias), sequence_lens [B], initial_h/_c [D,B,H]; Y [T,D,B,H] (layout 1: [B,T,D,H]), Y_h/Y_c [D,B,H]
// ([B,D,H]). ONNX's LSTM gates are i, o, f, c (Keras': i, f, c, o); GRU z, r, h and RNN's one gate are
// in Keras' order already. Weights are stored transposed ([G*H, I]). GRU linear_before_reset=1 is
// reset_after (two bias rows), 0 sums the two biases. An LSTM with peepholes (input P) becomes an
// unrolled graph of existing ops (peephole_lstm below). Clip, input_forget, activation parameters and
// activations other than Sigmoid, Tanh, Relu and HardSigmoid are Unsupported.
Tensor rows_of(const Tensor& t, std::int64_t from, std::int64_t n) {  // rows [from, from + n) of axis 0
  std::vector<std::int64_t> begin(static_cast<std::size_t>(t.ndim()), 0), size(static_cast<std::size_t>(t.ndim()), -1);
  begin[0] = from;
  size[0] = n;
  return slice(t, begin, size);
}
Tensor cols_of(const Tensor& t, std::int64_t from, std::int64_t n) {  // columns [from, from + n) of a [B, N] tensor
  return slice(t, {0, from}, {-1, n});
}

Tensor rnn_activation(const std::string& name, const Tensor& x) {  // the RnnOpOptions names
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return synapse::tanh(x);
  if (name == "relu") return relu(x);
  return clip(x * 0.2f + 0.5f, 0.0f, 1.0f);  // hard_sigmoid, ONNX's default alpha and beta
}

// ONNX's LSTM with peepholes, one direction, unrolled over the (known) T steps into ops that exist:
// one GEMM for the input projection of every step, then per step a matmul with the recurrent kernel,
// sigmoid/tanh and elementwise products (ONNX's equations, gates i, f, c, o here in Keras' order):
//   i = f(x W_i + h R_i + P_i * c_prev + b_i)    f = f(x W_f + h R_f + P_f * c_prev + b_f)
//   c = f * c_prev + i * g(x W_c + h R_c + b_c)  o = f(x W_o + h R_o + P_o * c + b_o)   h = o * h(c)
// P is [3H] in ONNX's order i, o, f. With `lengths`, steps t >= lengths[b] keep the state and output
// 0, and a reversed sequence runs from its last valid step down to 0, as the fused lstm op does.
//
// Why not a peephole option on the fused lstm op: peepholes exist only in imported ONNX models (Keras'
// and PyTorch's LSTMs have none, and the exporter never writes P), so the fused forward and backward
// kernels, their AVX-512 and scalar paths and the layer would all grow a rarely used branch on the
// hot loop of every LSTM. Unrolled, the import reuses ops that already have kernels, references and
// gradient checks, so an imported peephole LSTM runs, traces and fine-tunes with no new kernel code;
// the price (one graph node per gate per step) only falls on these rare models.
RnnOutputs peephole_lstm(const Tensor& x, const Tensor& kernel, const Tensor& rec, const Tensor& bias,
                         const Tensor& peep, Tensor h, Tensor c, const Tensor& lengths, const RnnOpOptions& o) {
  const std::int64_t T = x.dim(1), H = rec.dim(0);
  const Tensor p_i = rows_of(peep, 0, H), p_o = rows_of(peep, H, H), p_f = rows_of(peep, 2 * H, H);
  const Tensor xw = matmul(x, kernel) + bias;                          // [B, T, 4H]
  const Tensor len = lengths.defined() ? unsqueeze(lengths, 1) : Tensor();  // [B, 1]
  std::vector<Tensor> ys(static_cast<std::size_t>(T));
  for (std::int64_t s = 0; s < T; ++s) {
    const std::int64_t t = o.reverse ? T - 1 - s : s;
    const Tensor z = squeeze(slice(xw, {0, t, 0}, {-1, 1, -1}), 1) + matmul(h, rec);  // [B, 4H]
    const Tensor gi = rnn_activation(o.recurrent_activation, cols_of(z, 0, H) + p_i * c);
    const Tensor gf = rnn_activation(o.recurrent_activation, cols_of(z, H, H) + p_f * c);
    const Tensor cn = gf * c + gi * rnn_activation(o.activation, cols_of(z, 2 * H, H));
    const Tensor go = rnn_activation(o.recurrent_activation, cols_of(z, 3 * H, H) + p_o * cn);
    const Tensor hn = go * rnn_activation(o.activation, cn);
    if (len.defined()) {
      const Tensor valid = greater(len, full({}, static_cast<double>(t), DType::Int64));  // [B, 1]
      ys[static_cast<std::size_t>(t)] = unsqueeze(where(valid, hn, zeros({})), 1);
      h = where(valid, hn, h);
      c = where(valid, cn, c);
    } else {
      ys[static_cast<std::size_t>(t)] = unsqueeze(hn, 1);
      h = hn;
      c = cn;
    }
  }
  return {concat(ys, 1), h, c};
}

Outputs recurrent(Ctx& c, const std::string& kind) {
  const bool lstm_node = kind == "LSTM", gru_node = kind == "GRU";
  const std::int64_t G = lstm_node ? 4 : gru_node ? 3 : 1;
  if (c.has_attr("clip")) c.unsupported("clip");
  if (c.i("input_forget", 0) != 0) c.unsupported("input_forget");
  if (c.has_attr("activation_alpha") || c.has_attr("activation_beta")) c.unsupported("activation parameters");
  const bool peepholes = lstm_node && c.has(7);
  const bool layout1 = c.i("layout", 0) != 0;
  Tensor x = c.in(0);
  c.require_float(x);
  c.require_rank(x, 3);
  if (!layout1) x = permute(x, {1, 0, 2});  // [B, T, I]
  const Tensor W = c.in(1), R = c.in(2);
  const std::int64_t H = c.i("hidden_size", R.dim(2)), T = x.dim(1);
  const std::string dir = c.s("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional") c.unsupported("direction '" + dir + "'");
  const std::int64_t D = dir == "bidirectional" ? 2 : 1;
  Tensor P;
  if (peepholes) {
    P = c.in(7);
    c.require_float(P, "P (peepholes)");
    if (P.ndim() != 2 || P.dim(0) != D || P.dim(1) != 3 * H)
      throw Error(fmt::format("{}: P (peepholes) must have shape [{}, {}] (num_directions, 3 * hidden_size), got {}",
                              describe(c.n), D, 3 * H, to_string(P.shape())));
    if (T < 0) c.unsupported("peepholes (input P) with an unknown sequence length");
  }
  // Activations per direction: LSTM f, g, h; GRU f, g; RNN f.
  std::vector<std::string> acts;
  if (const auto* a = c.attr("activations"))
    for (const auto& v : a->strings()) acts.push_back(v);
  const std::vector<std::string> defaults = lstm_node ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                            : gru_node ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                       : std::vector<std::string>{"Tanh"};
  if (acts.empty())
    for (std::int64_t d = 0; d < D; ++d) acts.insert(acts.end(), defaults.begin(), defaults.end());
  if (acts.size() != defaults.size() * static_cast<std::size_t>(D))
    c.unsupported(fmt::format("{} activations for {} direction(s)", acts.size(), D));
  auto act_name = [&](const std::string& a) -> std::string {
    if (a == "Sigmoid") return "sigmoid";
    if (a == "Tanh") return "tanh";
    if (a == "Relu") return "relu";
    if (a == "HardSigmoid") return "hard_sigmoid";  // ONNX's default alpha 0.2, beta 0.5
    c.unsupported("activation " + a);
  };
  const Tensor lengths = c.has(4) ? cast(c.in(4), DType::Int64) : full({1}, static_cast<double>(T), DType::Int64);
  if (!c.has(4) && T < 0) c.unsupported("an unknown sequence length without sequence_lens");
  auto keras_order = [&](const Tensor& t) {  // LSTM rows i, o, f, c -> i, f, c, o
    if (!lstm_node) return t;
    return concat({rows_of(t, 0, H), rows_of(t, 2 * H, H), rows_of(t, 3 * H, H), rows_of(t, H, H)}, 0);
  };
  auto state = [&](int i, std::int64_t d) {  // initial_h / initial_c of direction d, or zeros for every row
    return c.has(i) ? squeeze(rows_of(c.in(i), d, 1), 0) : zeros({1, H});
  };
  std::vector<Tensor> ys, hs, cs;
  for (std::int64_t d = 0; d < D; ++d) {
    const std::size_t a0 = defaults.size() * static_cast<std::size_t>(d);
    RnnOpOptions o;
    o.reverse = dir == "reverse" || d == 1;
    o.recurrent_activation = act_name(acts[a0]);
    o.activation = act_name(acts[a0 + (G == 1 ? 0 : 1)]);
    if (G == 1) o.recurrent_activation = "sigmoid";  // unused by simple_rnn
    if (lstm_node && acts[a0 + 1] != acts[a0 + 2])
      c.unsupported("different cell (g) and output (h) activations: " + acts[a0 + 1] + ", " + acts[a0 + 2]);
    const Tensor kernel = transpose(keras_order(squeeze(rows_of(W, d, 1), 0)));
    const Tensor rec = transpose(keras_order(squeeze(rows_of(R, d, 1), 0)));
    const Tensor b = c.has(3) ? squeeze(rows_of(c.in(3), d, 1), 0) : zeros({2 * G * H});
    const Tensor wb = keras_order(rows_of(b, 0, G * H)), rb = keras_order(rows_of(b, G * H, G * H));
    RnnOutputs r;
    if (peepholes) {
      r = peephole_lstm(x, kernel, rec, wb + rb, squeeze(rows_of(P, d, 1), 0), state(5, d), state(6, d),
                        c.has(4) ? lengths : Tensor(), o);
    } else if (lstm_node) {
      r = lstm(x, kernel, rec, wb + rb, state(5, d), state(6, d), lengths, o);
    } else if (gru_node) {
      o.reset_after = c.i("linear_before_reset", 0) != 0;
      const Tensor bias = o.reset_after ? concat({unsqueeze(wb, 0), unsqueeze(rb, 0)}, 0) : wb + rb;
      r = gru(x, kernel, rec, bias, state(5, d), lengths, o);
    } else {
      r = simple_rnn(x, kernel, rec, wb + rb, state(5, d), lengths, o);
    }
    ys.push_back(layout1 ? unsqueeze(r.y, 2) : unsqueeze(permute(r.y, {1, 0, 2}), 1));
    hs.push_back(unsqueeze(r.h, layout1 ? 1 : 0));
    if (lstm_node) cs.push_back(unsqueeze(r.c, layout1 ? 1 : 0));
  }
  const std::int64_t state_axis = layout1 ? 1 : 0;
  Outputs out{concat(ys, layout1 ? 2 : 1), concat(hs, state_axis)};
  if (lstm_node) out.push_back(concat(cs, state_axis));
  return out;
}

// ---- the table ----
const std::map<std::string, OpEntry>& table() {
  static const std::map<std::string, OpEntry> t = [] {
    std::map<std::string, OpEntry> m;
    auto un = [&](const char* name, Tensor (*f)(const Tensor&)) {
      m[name] = {{}, [f](Ctx& c) { return unary(c, f); }};
    };
    un("Exp", synapse::exp);
    un("Log", synapse::log);
    un("Sqrt", synapse::sqrt);
    un("Relu", relu);
    un("Sigmoid", sigmoid);
    un("Tanh", synapse::tanh);
    un("Sign", sign);
    m["Abs"] = {{}, [](Ctx& c) -> Outputs {
                  c.require_numeric(c.in(0));
                  return {synapse::abs(c.in(0))};
                }};
    m["Neg"] = {{}, [](Ctx& c) -> Outputs {
                  c.require_numeric(c.in(0));
                  return {neg(c.in(0))};
                }};
    m["Reciprocal"] = {{}, [](Ctx& c) -> Outputs {
                         c.require_float(c.in(0));
                         return {1.0f / c.in(0)};
                       }};
    m["Identity"] = {{}, [](Ctx& c) -> Outputs { return {c.in(0)}; }};
    m["LeakyRelu"] = {{"alpha"}, [](Ctx& c) -> Outputs {
                        c.require_float(c.in(0));
                        return {leaky_relu(c.in(0), c.f("alpha", 0.01f))};
                      }};
    m["Elu"] = {{"alpha"}, [](Ctx& c) -> Outputs {
                  Tensor x = c.in(0);
                  c.require_float(x);
                  return {where(greater(x, zeros({})), x, (synapse::exp(x) - 1.0f) * c.f("alpha", 1.0f))};
                }};
    m["Celu"] = {{"alpha"}, [](Ctx& c) -> Outputs {
                   Tensor x = c.in(0);
                   c.require_float(x);
                   const float a = c.f("alpha", 1.0f);
                   return {relu(x) + minimum(zeros({}), (synapse::exp(x / a) - 1.0f) * a)};
                 }};
    m["Selu"] = {{"alpha", "gamma"}, [](Ctx& c) -> Outputs {
                   Tensor x = c.in(0);
                   c.require_float(x);
                   const float a = c.f("alpha", 1.67326319217681884765625f),
                               g = c.f("gamma", 1.05070102214813232421875f);
                   return {where(greater(x, zeros({})), x, (synapse::exp(x) - 1.0f) * a) * g};
                 }};
    m["ThresholdedRelu"] = {{"alpha"}, [](Ctx& c) -> Outputs {
                              Tensor x = c.in(0);
                              c.require_float(x);
                              return {where(greater(x, full({}, c.f("alpha", 1.0f))), x, zeros({}))};
                            }};
    m["HardSigmoid"] = {{"alpha", "beta"}, [](Ctx& c) -> Outputs {
                          Tensor x = c.in(0);
                          c.require_float(x);
                          return {clip(x * c.f("alpha", 0.2f) + c.f("beta", 0.5f), 0.0f, 1.0f)};
                        }};
    m["HardSwish"] = {{}, [](Ctx& c) -> Outputs {
                        Tensor x = c.in(0);
                        c.require_float(x);
                        return {x * clip(x * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f)};
                      }};
    m["Softplus"] = {{}, [](Ctx& c) -> Outputs {
                       Tensor x = c.in(0);
                       c.require_float(x);
                       return {relu(x) + synapse::log(synapse::exp(-synapse::abs(x)) + 1.0f)};
                     }};
    m["Softsign"] = {{}, [](Ctx& c) -> Outputs {
                       Tensor x = c.in(0);
                       c.require_float(x);
                       return {x / (synapse::abs(x) + 1.0f)};
                     }};
    m["PRelu"] = {{}, [](Ctx& c) -> Outputs {
                    Tensor x = c.in(0);
                    c.require_float(x);
                    return {where(less(x, zeros({})), x * c.in(1), x)};
                  }};
    auto bin = [&](const char* name, Tensor (*f)(const Tensor&, const Tensor&), bool float_only) {
      m[name] = {{}, [f, float_only](Ctx& c) { return binary(c, f, float_only); }};
    };
    bin("Add", synapse::add, false);
    bin("Sub", synapse::sub, false);
    bin("Mul", synapse::mul, false);
    bin("Div", synapse::div, false);
    m["Pow"] = {{}, [](Ctx& c) -> Outputs {
                  Tensor a = c.in(0), b = c.in(1);
                  c.require_float(a);  // integer powers need integer results, which Synapse's float pow cannot promise
                  if (b.dtype() == DType::Bool) c.unsupported("a bool exponent");
                  return {synapse::pow(a, cast(b, DType::Float32))};
                }};
    bin("Equal", equal, false);
    bin("Greater", greater, false);
    bin("Less", less, false);
    m["GreaterOrEqual"] = {{}, [](Ctx& c) -> Outputs { return {not_(binary(c, less)[0])}; }};
    m["LessOrEqual"] = {{}, [](Ctx& c) -> Outputs { return {not_(binary(c, greater)[0])}; }};
    m["Not"] = {{}, [](Ctx& c) -> Outputs { return {not_(c.in(0))}; }};
    m["And"] = {{}, [](Ctx& c) -> Outputs { return {where(c.in(0), c.in(1), full({}, 0, DType::Bool))}; }};
    m["Or"] = {{}, [](Ctx& c) -> Outputs { return {where(c.in(0), full({}, 1, DType::Bool), c.in(1))}; }};
    m["Xor"] = {{}, [](Ctx& c) -> Outputs { return {where(c.in(0), not_(c.in(1)), c.in(1))}; }};
    m["Where"] = {{}, [](Ctx& c) -> Outputs { return {where(c.in(0), c.in(1), c.in(2))}; }};
    m["Max"] = {{}, [](Ctx& c) { return fold(c, maximum); }};
    m["Min"] = {{}, [](Ctx& c) { return fold(c, minimum); }};
    m["Sum"] = {{}, [](Ctx& c) { return fold(c, synapse::add); }};
    m["Mean"] = {{}, [](Ctx& c) -> Outputs {
                   c.require_float(c.in(0));
                   return {fold(c, synapse::add)[0] / static_cast<float>(c.num_inputs())};
                 }};
    m["Clip"] = {{"min", "max"}, clip_op};
    m["Cast"] = {{"to", "saturate"},
                 [](Ctx& c) { return cast_to(c, synapse_type(static_cast<int>(c.i("to", 0)), describe(c.n))); }};
    m["CastLike"] = {{"saturate"}, [](Ctx& c) { return cast_to(c, c.in(1).dtype()); }};
    for (const char* kind : {"LSTM", "GRU", "RNN"})
      m[kind] = {{"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
                  "input_forget", "layout", "linear_before_reset"},
                 [k = std::string(kind)](Ctx& c) { return recurrent(c, k); }};
    m["MatMul"] = {{}, matmul_np};
    m["Gemm"] = {{"alpha", "beta", "transA", "transB"}, gemm};
    m["Reshape"] = {{"allowzero"}, [](Ctx& c) -> Outputs {
                      Tensor x = c.in(0);
                      return {reshape(x, reshape_target(c, x.shape(), c.ints_in(1), c.i("allowzero", 0) != 0))};
                    }};
    m["Flatten"] = {{"axis"}, flatten_op};
    m["Transpose"] = {{"perm"}, [](Ctx& c) -> Outputs {
                        Tensor x = c.in(0);
                        Ints perm = c.ints("perm");
                        if (perm.empty()) {
                          perm.resize(static_cast<std::size_t>(x.ndim()));
                          std::iota(perm.rbegin(), perm.rend(), 0);
                        }
                        return {c.im.permute_tracked(x, perm)};
                      }};
    m["Squeeze"] = {{"axes"}, squeeze_op};
    m["Unsqueeze"] = {{"axes"}, unsqueeze_op};
    m["Concat"] = {{"axis"}, [](Ctx& c) -> Outputs {
                     std::vector<Tensor> xs;
                     for (int k = 0; k < c.num_inputs(); ++k) xs.push_back(c.in(k));
                     return {concat(xs, c.axis(c.i("axis", 0), xs[0].ndim()))};
                   }};
    m["Slice"] = {{"starts", "ends", "axes"}, slice_op};
    m["Pad"] = {{"mode", "pads", "value"}, pad_op};
    m["Split"] = {{"axis", "split"}, split_op};
    m["Gather"] = {{"axis"}, gather_op};
    m["OneHot"] = {{"axis"}, onehot_op};
    m["Expand"] = {{}, [](Ctx& c) -> Outputs {
                     Tensor x = c.in(0);
                     return {broadcast_to(x, broadcast_shapes(x.shape(), c.ints_in(1), "Expand"))};
                   }};
    m["Tile"] = {{}, tile_op};
    m["Shape"] = {{"start", "end"}, shape_op};
    m["Size"] = {{}, [](Ctx& c) -> Outputs {
                   Tensor x = c.in(0);
                   if (!fully_known(x.shape())) c.unsupported("size of a tensor of unknown shape");
                   return {full({}, static_cast<double>(x.numel()), DType::Int64)};
                 }};
    m["Constant"] = {{"value", "value_float", "value_floats", "value_int", "value_ints"}, constant_op};
    m["ConstantOfShape"] = {{"value"}, [](Ctx& c) -> Outputs {
                              const Ints shape = c.ints_in(0);
                              if (const auto* a = c.attr("value")) {
                                Tensor v = from_proto(a->t(), describe(c.n));
                                return {broadcast_to(reshape(v, {}), shape).clone()};
                              }
                              return {zeros(shape)};
                            }};
    m["Range"] = {{}, [](Ctx& c) -> Outputs {
                    const DType dt = c.cin(0).dtype();
                    if (dt != DType::Float32 && dt != DType::Int64 && dt != DType::Int32) c.unsupported("element type");
                    return {arange(c.scalar_in(0), c.scalar_in(1), c.scalar_in(2), dt)};
                  }};
    m["Softmax"] = {{"axis"}, [](Ctx& c) { return softmax_like(c, false); }};
    m["LogSoftmax"] = {{"axis"}, [](Ctx& c) { return softmax_like(c, true); }};
    m["Hardmax"] = {{"axis"}, hardmax};
    const std::set<std::string> red{"axes", "keepdims", "noop_with_empty_axes"};
    auto reduction = [&](const char* name, const char* kind) {
      m[name] = {red, [kind = std::string(kind)](Ctx& c) { return reduce(c, kind); }};
    };
    reduction("ReduceSum", "sum");
    reduction("ReduceMean", "mean");
    reduction("ReduceMax", "max");
    reduction("ReduceMin", "min");
    reduction("ReduceSumSquare", "sum_square");
    reduction("ReduceL1", "l1");
    reduction("ReduceL2", "l2");
    reduction("ReduceLogSum", "log_sum");
    reduction("ReduceLogSumExp", "log_sum_exp");
    const std::set<std::string> arg{"axis", "keepdims", "select_last_index"};
    m["ArgMax"] = {arg, [](Ctx& c) { return arg_extreme(c, true); }};
    m["ArgMin"] = {arg, [](Ctx& c) { return arg_extreme(c, false); }};
    m["Conv"] = {{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}, conv};
    m["ConvTranspose"] = {
        {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"},
        conv_transpose};
    m["MaxPool"] = {{"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"},
                    [](Ctx& c) { return pool(c, true, false); }};
    m["AveragePool"] = {{"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"},
                        [](Ctx& c) { return pool(c, false, false); }};
    m["GlobalMaxPool"] = {{}, [](Ctx& c) { return pool(c, true, true); }};
    m["GlobalAveragePool"] = {{}, [](Ctx& c) { return pool(c, false, true); }};
    m["BatchNormalization"] = {{"epsilon", "momentum", "training_mode", "spatial"}, batch_norm};
    m["InstanceNormalization"] = {{"epsilon"}, instance_norm};
    m["LayerNormalization"] = {{"axis", "epsilon", "stash_type"}, layer_norm};
    m["Dropout"] = {{"ratio", "seed", "is_test"}, dropout_op};
    m["Trilu"] = {{"upper"}, trilu};
    m["EyeLike"] = {{"dtype", "k"}, eye_like};
    m["DepthToSpace"] = {{"blocksize", "mode"}, [](Ctx& c) { return depth_space(c, true); }};
    m["SpaceToDepth"] = {{"blocksize"}, [](Ctx& c) { return depth_space(c, false); }};
    m["MeanVarianceNormalization"] = {{"axes"}, mvn};
    m["GatherElements"] = {{"axis"}, gather_elements};
    m["IsNaN"] = {{}, [](Ctx& c) -> Outputs {
                    c.require_float(c.in(0));
                    return {not_(equal(c.in(0), c.in(0)))};
                  }};
    m["IsInf"] = {{"detect_negative", "detect_positive"}, [](Ctx& c) -> Outputs {
                    Tensor x = c.in(0);
                    c.require_float(x);
                    const float inf = std::numeric_limits<float>::infinity();
                    Tensor pos = equal(x, full({}, inf)), negi = equal(x, full({}, -inf));
                    const bool p = c.i("detect_positive", 1) != 0, ng = c.i("detect_negative", 1) != 0;
                    if (p && ng) return {where(pos, full({}, 1, DType::Bool), negi)};
                    if (p) return {pos};
                    if (ng) return {negi};
                    return {full(x.shape(), 0, DType::Bool)};
                  }};
    m["Shrink"] = {
        {"bias", "lambd"}, [](Ctx& c) -> Outputs {
          Tensor x = c.in(0);
          c.require_float(x);
          const float bias = c.f("bias", 0.0f), lambd = c.f("lambd", 0.5f);
          return {where(less(x, full({}, -lambd)), x + bias, where(greater(x, full({}, lambd)), x - bias, zeros({})))};
        }};
    return m;
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
  for (const auto& n : m.graph().node()) im.translate(n);
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
