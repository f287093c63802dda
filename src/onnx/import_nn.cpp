// ONNX -> Synapse, the neural-network family: Conv, ConvTranspose, pooling, BatchNormalization,
// InstanceNormalization, LayerNormalization, Dropout, DepthToSpace/SpaceToDepth and
// MeanVarianceNormalization. ONNX's images are NCHW, Synapse's convolutions and pools NHWC: the
// translators permute with Importer::to_nhwc / to_nchw, so inverse pairs between layers cancel.
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "onnx/import_internal.h"
#include "synapse/op.h"

namespace synapse::onnx::internal {
namespace {

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
  // Before any division by a stride (libFuzzer: strides [0, 0] divided by zero below).
  for (int d = 0; d < 2; ++d)
    if (w.kernel[d] < 1 || w.strides[d] < 1 || w.dilations[d] < 1)
      throw Error(fmt::format("{}: kernel_shape, strides and dilations must be at least 1, got kernel {}x{}, strides "
                              "{}x{}, dilations {}x{}",
                              describe(c.n), w.kernel[0], w.kernel[1], w.strides[0], w.strides[1], w.dilations[0],
                              w.dilations[1]));
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
  // group 1, or depthwise: one group per input channel (weights [C*M, 1, kh, kw]).
  const std::int64_t group = c.i("group", 1);
  const bool depthwise = group != 1 && group == x.dim(1) && w.dim(1) == 1 && w.dim(0) % group == 0;
  if (group != 1 && !depthwise)
    c.unsupported(fmt::format("group={} (grouped convolution other than depthwise)", group));
  Window win = window(c, x, kernel_of(c, w), false);
  if (win.kernel[0] != w.dim(2) || win.kernel[1] != w.dim(3)) c.unsupported("kernel_shape differs from the weights'");
  Tensor xh = c.im.to_nhwc(x);
  Tensor filt = c.im.permute_tracked(w, {2, 3, 1, 0});  // OIHW -> HWIO
  Conv2DAttrs o{
      .strides = win.strides, .dilation_rate = win.dilations, .padding = win.same_upper ? Padding::Same : Padding::Valid};
  if (has_padding(win)) xh = pad_nhwc(xh, win, 0.0f);
  if (depthwise) {
    filt = reshape(filt, {w.dim(2), w.dim(3), group, w.dim(0) / group});  // [kh, kw, 1, C*M] -> [kh, kw, C, M]
    return {c.im.to_nchw(depthwise_conv2d(xh, filt, c.has(2) ? c.in(2) : Tensor(), o))};
  }
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
  Pool2DAttrs o{
      .pool_size = win.kernel, .strides = win.strides, .padding = win.same_upper ? Padding::Same : Padding::Valid};
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

}  // namespace

void add_nn_ops(OpTable& m) {
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
  m["DepthToSpace"] = {{"blocksize", "mode"}, [](Ctx& c) { return depth_space(c, true); }};
  m["SpaceToDepth"] = {{"blocksize"}, [](Ctx& c) { return depth_space(c, false); }};
  m["MeanVarianceNormalization"] = {{"axes"}, mvn};
}

}  // namespace synapse::onnx::internal
