// Convolution and pooling ops, NHWC images and HWIO filters (TensorFlow's layouts):
//
//   conv2d(x [N,H,W,C], filter [KH,KW,C,O] (, bias [O])) -> [N,OH,OW,O]
//   max_pool2d / avg_pool2d(x [N,H,W,C]) -> [N,OH,OW,C]
//
// Attributes: "strides" [sh, sw], "dilations" [dh, dw] (conv), "ksize" [kh, kw] (pools), and
// "padding" "SAME" or "VALID". SAME follows TensorFlow: out = ceil(in / stride) and
// pad_total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0), of which pad_total / 2 goes
// before and the rest after.
//
// The gradients are ops of their own, each with its own kernel, reference kernel and gradient:
//   conv2d_backprop_input(dy, filter) -> dx     (attribute "input_shape")
//   conv2d_backprop_filter(x, dy) -> dfilter    (attribute "filter_shape")
//   max_pool2d_grad(x, dy) -> dx, max_pool2d_grad_grad(x, gx) -> [N,OH,OW,C]
//   avg_pool2d_grad(dy) -> dx                   (attribute "input_shape")
// All of them are linear in their gradient argument, so their gradients are each other.
//
// Depthwise convolution (each input channel with its own M filters, TensorFlow's depthwise_conv2d_native):
//   depthwise_conv2d(x [N,H,W,C], filter [KH,KW,C,M] (, bias [C*M])) -> [N,OH,OW,C*M], channel c*M + m
//   depthwise_conv2d_backprop_input(dy, filter), depthwise_conv2d_backprop_filter(x, dy): as conv2d's.
#include <optional>

#include "backend/cpu/conv.h"
#include "backend/cpu/depthwise.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/pool.h"
#include "core/check.h"
#include "ops/families.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

using Metas = std::vector<TensorMeta>;

// ---- attributes and geometry ----

// A two-element attribute (h, w) of positive integers.
std::pair<std::int64_t, std::int64_t> hw_attr(const Attrs& a, const char* name) {
  const auto& v = a.ints(name);
  SYN_CHECK(v.size() == 2 && v[0] >= 1 && v[1] >= 1, "{} must be two positive integers (h, w), got [{}]", name,
            fmt::join(v, ","));
  return {v[0], v[1]};
}

bool same_padding(const Attrs& a) {
  const std::string& p = a.s("padding");
  SYN_CHECK(p == "SAME" || p == "VALID", "padding must be SAME or VALID, got '{}'", p);
  return p == "SAME";
}

// Output extent and padding before, along one spatial dimension; nullopt when a VALID window does not fit.
struct Extent {
  std::int64_t out, pad_before;
};
std::optional<Extent> spatial_extent(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t dilation,
                                     bool same) {
  const std::int64_t span = (k - 1) * dilation + 1;
  if (same) {
    const std::int64_t out = (in + stride - 1) / stride;
    const std::int64_t pad_total = std::max<std::int64_t>((out - 1) * stride + span - in, 0);
    return Extent{out, pad_total / 2};
  }
  if (in < span) return std::nullopt;
  return Extent{(in - span) / stride + 1, 0};
}

cpu::Conv2DGeometry conv_geometry(const Shape& x, const Shape& w, const Attrs& a) {
  SYN_CHECK(x.size() == 4, "input must be 4-D [N,H,W,C], got {}", to_string(x));
  SYN_CHECK(w.size() == 4, "filter must be 4-D [KH,KW,C,O], got {}", to_string(w));
  SYN_CHECK(x[3] == w[2], "input channels differ: input {} has {}, filter {} expects {}", to_string(x), x[3],
            to_string(w), w[2]);
  SYN_CHECK(w[0] >= 1 && w[1] >= 1, "filter {} has an empty window", to_string(w));
  const auto [sh, sw] = hw_attr(a, "strides");
  const auto [dh, dw] = hw_attr(a, "dilations");
  const bool same = same_padding(a);
  const auto ey = spatial_extent(x[1], w[0], sh, dh, same);
  const auto ex = spatial_extent(x[2], w[1], sw, dw, same);
  SYN_CHECK(ey && ex, "filter {} (dilations [{},{}]) does not fit in input {} with VALID padding", to_string(w), dh,
            dw, to_string(x));
  cpu::Conv2DGeometry g{.n = x[0], .h = x[1], .w = x[2], .c = x[3], .kh = w[0], .kw = w[1], .o = w[3],
                        .oh = ey->out, .ow = ex->out, .stride_h = sh, .stride_w = sw, .dilation_h = dh,
                        .dilation_w = dw, .pad_top = ey->pad_before, .pad_left = ex->pad_before};
  SYN_CHECK(g.patch() <= cpu::kMaxGemmExtent && g.rows() <= cpu::kMaxGemmExtent && g.n * g.h * g.w <= cpu::kMaxGemmExtent,
            "input {} with filter {} is too large for BLAS (32-bit extents)", to_string(x), to_string(w));
  return g;
}

Shape conv_output_shape(const cpu::Conv2DGeometry& g) { return {g.n, g.oh, g.ow, g.o}; }

cpu::Pool2DGeometry pool_geometry(const Shape& x, const Attrs& a) {
  SYN_CHECK(x.size() == 4, "input must be 4-D [N,H,W,C], got {}", to_string(x));
  const auto [kh, kw] = hw_attr(a, "ksize");
  const auto [sh, sw] = hw_attr(a, "strides");
  const bool same = same_padding(a);
  const auto ey = spatial_extent(x[1], kh, sh, 1, same);
  const auto ex = spatial_extent(x[2], kw, sw, 1, same);
  SYN_CHECK(ey && ex, "window [{},{}] does not fit in input {} with VALID padding", kh, kw, to_string(x));
  return {.n = x[0], .h = x[1], .w = x[2], .c = x[3], .kh = kh, .kw = kw, .oh = ey->out, .ow = ex->out,
          .stride_h = sh, .stride_w = sw, .pad_top = ey->pad_before, .pad_left = ex->pad_before};
}

Shape pool_output_shape(const cpu::Pool2DGeometry& g) { return {g.n, g.oh, g.ow, g.c}; }

void require_floats(const Metas& in) {
  for (std::size_t i = 0; i < in.size(); ++i)
    SYN_CHECK(in[i].dtype == DType::Float32, "input {} must be float32, got {}", i, dtype_name(in[i].dtype));
}

// conv2d's optional "relu" attribute: max(y, 0) applied in the kernel. Absent (graphs and ONNX
// imports built before it, the convolutions inside gradients) means no relu.
bool fused_relu(const Attrs& a) { return a.has("relu") && a.b("relu"); }

// The attributes of a conv2d (dropping the backprops' extra shape attribute).
Attrs conv_attrs(const Attrs& a) {
  return Attrs().set("strides", a.ints("strides")).set("dilations", a.ints("dilations")).set("padding", a.s("padding"));
}
Attrs pool_attrs(const Attrs& a) {
  return Attrs().set("ksize", a.ints("ksize")).set("strides", a.ints("strides")).set("padding", a.s("padding"));
}

// ---- the ops, called from gradients ----

Tensor conv2d_op(const Tensor& x, const Tensor& w, const Attrs& a) {
  static const OpDef& op = op_def("conv2d");
  return apply1(op, {x, w}, conv_attrs(a));
}
Tensor conv2d_backprop_input(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Attrs& a) {
  static const OpDef& op = op_def("conv2d_backprop_input");
  return apply1(op, {dy, w}, conv_attrs(a).set("input_shape", x_shape));
}
Tensor conv2d_backprop_filter(const Tensor& x, const Tensor& dy, const Shape& w_shape, const Attrs& a) {
  static const OpDef& op = op_def("conv2d_backprop_filter");
  return apply1(op, {x, dy}, conv_attrs(a).set("filter_shape", w_shape));
}
Tensor max_pool2d_grad(const Tensor& x, const Tensor& dy, const Attrs& a) {
  static const OpDef& op = op_def("max_pool2d_grad");
  return apply1(op, {x, dy}, pool_attrs(a));
}
Tensor max_pool2d_grad_grad(const Tensor& x, const Tensor& gx, const Attrs& a) {
  static const OpDef& op = op_def("max_pool2d_grad_grad");
  return apply1(op, {x, gx}, pool_attrs(a));
}
Tensor avg_pool2d_op(const Tensor& x, const Attrs& a) {
  static const OpDef& op = op_def("avg_pool2d");
  return apply1(op, {x}, pool_attrs(a));
}
Tensor avg_pool2d_grad(const Tensor& dy, const Shape& x_shape, const Attrs& a) {
  static const OpDef& op = op_def("avg_pool2d_grad");
  return apply1(op, {dy}, pool_attrs(a).set("input_shape", x_shape));
}

// Gradients nobody asked for (an input that does not require them, e.g. the images fed to the first
// conv) are not computed: an undefined tensor means "no gradient".
template <class F> Tensor if_needed(const Tensor& input, F&& f) { return input.requires_grad() ? f() : Tensor(); }

// ---- conv2d and its backprops ----

using ConvForwardFn = void (*)(const cpu::Conv2DGeometry&, const float*, const float*, const float*, float*, bool);
using ConvBackpropFn = void (*)(const cpu::Conv2DGeometry&, const float*, const float*, float*);

KernelFn conv2d_kernel(ConvForwardFn fn) {
  return [fn](const KernelContext& c) {
    const auto g = conv_geometry(c.in(0).shape(), c.in(1).shape(), c.attrs);
    const float* bias = c.inputs.size() == 3 ? c.in(2).data<float>() : nullptr;
    fn(g, c.in(0).data<float>(), c.in(1).data<float>(), bias, c.out(0).data<float>(), fused_relu(c.attrs));
  };
}

// Inputs (dy, filter) -> dx.
KernelFn backprop_input_kernel(ConvBackpropFn fn) {
  return [fn](const KernelContext& c) {
    const auto g = conv_geometry(c.attrs.ints("input_shape"), c.in(1).shape(), c.attrs);
    fn(g, c.in(0).data<float>(), c.in(1).data<float>(), c.out(0).data<float>());
  };
}

// Inputs (x, dy) -> dfilter.
KernelFn backprop_filter_kernel(ConvBackpropFn fn) {
  return [fn](const KernelContext& c) {
    const auto g = conv_geometry(c.in(0).shape(), c.attrs.ints("filter_shape"), c.attrs);
    fn(g, c.in(0).data<float>(), c.in(1).data<float>(), c.out(0).data<float>());
  };
}

Metas conv2d_shape(const Metas& in, const Attrs& a) {
  SYN_CHECK(in.size() == 2 || in.size() == 3, "expects inputs (x, filter) or (x, filter, bias), got {} inputs",
            in.size());
  require_floats(in);
  const auto g = conv_geometry(in[0].shape, in[1].shape, a);
  if (in.size() == 3)
    SYN_CHECK(in[2].shape == Shape{g.o}, "bias must have shape [{}] to match filter {}, got {}", g.o,
              to_string(in[1].shape), to_string(in[2].shape));
  return one_output(conv_output_shape(g), DType::Float32);
}

// A convolution and its two backprops cost the same: one multiply-add per (output pixel, patch element,
// output channel).
double conv_flops(const cpu::Conv2DGeometry& g) {
  return 2.0 * static_cast<double>(g.rows()) * static_cast<double>(g.patch()) * static_cast<double>(g.o);
}

// Checks that dy has the conv's output shape for input x_shape and filter w_shape.
void check_dy(const Shape& dy, const cpu::Conv2DGeometry& g, const Shape& x_shape, const Shape& w_shape) {
  SYN_CHECK(dy == conv_output_shape(g), "gradient {} does not match the output {} of input {} and filter {}",
            to_string(dy), to_string(conv_output_shape(g)), to_string(x_shape), to_string(w_shape));
}

void register_conv2d() {
  define_op("conv2d")
      .inputs(-1)
      .shape(conv2d_shape)
      .kernel(Device::CPU, conv2d_kernel(cpu::conv2d_forward))
      .reference(conv2d_kernel(cpu::conv2d_forward_reference))
      .flops([](const KernelContext& c) { return conv_flops(conv_geometry(c.in(0).shape(), c.in(1).shape(), c.attrs)); })
      .grad([](const GradCtx& g) {
        const Tensor &x = g.x(0), &w = g.x(1);
        // With the relu inside: dz = dy where y > 0, as relu's own gradient (read from the output).
        const Tensor dz = fused_relu(g.attrs) ? relu_grad_from_output(g.y(), g.dy()) : g.dy();
        std::vector<Tensor> out{if_needed(x, [&] { return conv2d_backprop_input(dz, w, x.shape(), g.attrs); }),
                                if_needed(w, [&] { return conv2d_backprop_filter(x, dz, w.shape(), g.attrs); })};
        if (g.inputs.size() == 3) out.push_back(if_needed(g.x(2), [&] { return sum(dz, {0, 1, 2}); }));
        return out;
      });

  // dx = B(dy, w), the adjoint of x -> conv(x, w). For an incoming gradient G on dx:
  // d/d(dy) = conv(G, w) and d/dw = conv2d_backprop_filter(G, dy).
  define_op("conv2d_backprop_input")
      .inputs(2)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        const Shape& xs = a.ints("input_shape");
        const auto g = conv_geometry(xs, in[1].shape, a);
        check_dy(in[0].shape, g, xs, in[1].shape);
        return Metas{{xs, DType::Float32}};
      })
      .kernel(Device::CPU, backprop_input_kernel(cpu::conv2d_backprop_input))
      .reference(backprop_input_kernel(cpu::conv2d_backprop_input_reference))
      .flops([](const KernelContext& c) {
        return conv_flops(conv_geometry(c.attrs.ints("input_shape"), c.in(1).shape(), c.attrs));
      })
      .grad([](const GradCtx& g) {
        const Tensor &dy = g.x(0), &w = g.x(1);
        return grads(if_needed(dy, [&] { return conv2d_op(g.dy(), w, g.attrs); }),
                     if_needed(w, [&] { return conv2d_backprop_filter(g.dy(), dy, w.shape(), g.attrs); }));
      });

  // dw = B(x, dy), the adjoint of w -> conv(x, w). For an incoming gradient G on dw:
  // d/dx = conv2d_backprop_input(dy, G) and d/d(dy) = conv(x, G).
  define_op("conv2d_backprop_filter")
      .inputs(2)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        const Shape& ws = a.ints("filter_shape");
        const auto g = conv_geometry(in[0].shape, ws, a);
        check_dy(in[1].shape, g, in[0].shape, ws);
        return Metas{{ws, DType::Float32}};
      })
      .kernel(Device::CPU, backprop_filter_kernel(cpu::conv2d_backprop_filter))
      .reference(backprop_filter_kernel(cpu::conv2d_backprop_filter_reference))
      .flops([](const KernelContext& c) {
        return conv_flops(conv_geometry(c.in(0).shape(), c.attrs.ints("filter_shape"), c.attrs));
      })
      .grad([](const GradCtx& g) {
        const Tensor &x = g.x(0), &dy = g.x(1);
        return grads(if_needed(x, [&] { return conv2d_backprop_input(dy, g.dy(), x.shape(), g.attrs); }),
                     if_needed(dy, [&] { return conv2d_op(x, g.dy(), g.attrs); }));
      });
}

// ---- depthwise_conv2d and its backprops (the geometry is conv's with o = M, the depth multiplier) ----

Shape depthwise_output_shape(const cpu::Conv2DGeometry& g) { return {g.n, g.oh, g.ow, g.c * g.o}; }

void check_depthwise_dy(const Shape& dy, const cpu::Conv2DGeometry& g, const Shape& x_shape, const Shape& w_shape) {
  SYN_CHECK(dy == depthwise_output_shape(g), "gradient {} does not match the output {} of input {} and filter {}",
            to_string(dy), to_string(depthwise_output_shape(g)), to_string(x_shape), to_string(w_shape));
}

Tensor depthwise_op(const Tensor& x, const Tensor& w, const Attrs& a) {
  static const OpDef& op = op_def("depthwise_conv2d");
  return apply1(op, {x, w}, conv_attrs(a));
}
Tensor depthwise_backprop_input(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Attrs& a) {
  static const OpDef& op = op_def("depthwise_conv2d_backprop_input");
  return apply1(op, {dy, w}, conv_attrs(a).set("input_shape", x_shape));
}
Tensor depthwise_backprop_filter(const Tensor& x, const Tensor& dy, const Shape& w_shape, const Attrs& a) {
  static const OpDef& op = op_def("depthwise_conv2d_backprop_filter");
  return apply1(op, {x, dy}, conv_attrs(a).set("filter_shape", w_shape));
}

KernelFn depthwise_kernel(ConvForwardFn fn) { return conv2d_kernel(fn); }

double depthwise_flops(const cpu::Conv2DGeometry& g) {
  return 2.0 * static_cast<double>(g.rows()) * static_cast<double>(g.kh * g.kw) * static_cast<double>(g.c * g.o);
}

// The depthwise kernels take no relu flag; adapters give them conv's function types.
template <void (*F)(const cpu::Conv2DGeometry&, const float*, const float*, const float*, float*)>
void no_relu(const cpu::Conv2DGeometry& g, const float* x, const float* w, const float* b, float* y, bool) {
  F(g, x, w, b, y);
}

void register_depthwise() {
  define_op("depthwise_conv2d")
      .inputs(-1)
      .shape([](const Metas& in, const Attrs& a) {
        SYN_CHECK(in.size() == 2 || in.size() == 3, "expects inputs (x, filter) or (x, filter, bias), got {} inputs",
                  in.size());
        require_floats(in);
        const auto g = conv_geometry(in[0].shape, in[1].shape, a);
        if (in.size() == 3)
          SYN_CHECK(in[2].shape == Shape{g.c * g.o}, "bias must have shape [{}] to match filter {}, got {}", g.c * g.o,
                    to_string(in[1].shape), to_string(in[2].shape));
        return one_output(depthwise_output_shape(g), DType::Float32);
      })
      .kernel(Device::CPU, depthwise_kernel(no_relu<cpu::depthwise_conv2d_forward>))
      .reference(depthwise_kernel(no_relu<cpu::depthwise_conv2d_forward_reference>))
      .flops([](const KernelContext& c) {
        return depthwise_flops(conv_geometry(c.in(0).shape(), c.in(1).shape(), c.attrs));
      })
      .grad([](const GradCtx& g) {
        const Tensor &x = g.x(0), &w = g.x(1);
        std::vector<Tensor> out{if_needed(x, [&] { return depthwise_backprop_input(g.dy(), w, x.shape(), g.attrs); }),
                                if_needed(w, [&] { return depthwise_backprop_filter(x, g.dy(), w.shape(), g.attrs); })};
        if (g.inputs.size() == 3) out.push_back(if_needed(g.x(2), [&] { return sum(g.dy(), {0, 1, 2}); }));
        return out;
      });

  define_op("depthwise_conv2d_backprop_input")
      .inputs(2)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        const Shape& xs = a.ints("input_shape");
        const auto g = conv_geometry(xs, in[1].shape, a);
        check_depthwise_dy(in[0].shape, g, xs, in[1].shape);
        return Metas{{xs, DType::Float32}};
      })
      .kernel(Device::CPU, backprop_input_kernel(cpu::depthwise_conv2d_backprop_input))
      .reference(backprop_input_kernel(cpu::depthwise_conv2d_backprop_input_reference))
      .flops([](const KernelContext& c) {
        return depthwise_flops(conv_geometry(c.attrs.ints("input_shape"), c.in(1).shape(), c.attrs));
      })
      .grad([](const GradCtx& g) {
        const Tensor &dy = g.x(0), &w = g.x(1);
        return grads(if_needed(dy, [&] { return depthwise_op(g.dy(), w, g.attrs); }),
                     if_needed(w, [&] { return depthwise_backprop_filter(g.dy(), dy, w.shape(), g.attrs); }));
      });

  define_op("depthwise_conv2d_backprop_filter")
      .inputs(2)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        const Shape& ws = a.ints("filter_shape");
        const auto g = conv_geometry(in[0].shape, ws, a);
        check_depthwise_dy(in[1].shape, g, in[0].shape, ws);
        return Metas{{ws, DType::Float32}};
      })
      .kernel(Device::CPU, backprop_filter_kernel(cpu::depthwise_conv2d_backprop_filter))
      .reference(backprop_filter_kernel(cpu::depthwise_conv2d_backprop_filter_reference))
      .flops([](const KernelContext& c) {
        return depthwise_flops(conv_geometry(c.in(0).shape(), c.attrs.ints("filter_shape"), c.attrs));
      })
      .grad([](const GradCtx& g) {
        const Tensor &x = g.x(0), &dy = g.x(1);
        return grads(if_needed(x, [&] { return depthwise_backprop_input(dy, g.dy(), x.shape(), g.attrs); }),
                     if_needed(dy, [&] { return depthwise_op(x, g.dy(), g.attrs); }));
      });
}

// ---- pooling ----

using PoolFn = void (*)(const cpu::Pool2DGeometry&, const float*, float*);
using PoolPairFn = void (*)(const cpu::Pool2DGeometry&, const float*, const float*, float*);

// Inputs (x) -> y, or (dy) -> dx with the "input_shape" attribute when `from_attr`.
KernelFn pool_kernel(PoolFn fn, bool from_attr = false) {
  return [fn, from_attr](const KernelContext& c) {
    const auto g = pool_geometry(from_attr ? c.attrs.ints("input_shape") : c.in(0).shape(), c.attrs);
    fn(g, c.in(0).data<float>(), c.out(0).data<float>());
  };
}
// Inputs (x, t) -> out.
KernelFn pool_pair_kernel(PoolPairFn fn) {
  return [fn](const KernelContext& c) {
    const auto g = pool_geometry(c.in(0).shape(), c.attrs);
    fn(g, c.in(0).data<float>(), c.in(1).data<float>(), c.out(0).data<float>());
  };
}

Metas pool_shape(const Metas& in, const Attrs& a) {
  require_floats(in);
  return one_output(pool_output_shape(pool_geometry(in[0].shape, a)), DType::Float32);
}

void check_pool_dy(const Shape& dy, const cpu::Pool2DGeometry& g, const Shape& x_shape) {
  SYN_CHECK(dy == pool_output_shape(g), "gradient {} does not match the output {} of input {}", to_string(dy),
            to_string(pool_output_shape(g)), to_string(x_shape));
}

void register_max_pool() {
  define_op("max_pool2d")
      .inputs(1)
      .shape(pool_shape)
      .kernel(Device::CPU, pool_kernel(cpu::max_pool2d))
      .reference(pool_kernel(cpu::max_pool2d_reference))
      .grad([](const GradCtx& g) { return grads(max_pool2d_grad(g.x(), g.dy(), g.attrs)); });

  // (x, dy) -> dx: dy routed to each window's argmax in x. Linear in dy; piecewise constant in x
  // (no gradient flows to x).
  define_op("max_pool2d_grad")
      .inputs(2)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        check_pool_dy(in[1].shape, pool_geometry(in[0].shape, a), in[0].shape);
        return Metas{in[0]};
      })
      .kernel(Device::CPU, pool_pair_kernel(cpu::max_pool2d_grad))
      .reference(pool_pair_kernel(cpu::max_pool2d_grad_reference))
      .grad([](const GradCtx& g) {
        return grads(Tensor(), if_needed(g.x(1), [&] { return max_pool2d_grad_grad(g.x(0), g.dy(), g.attrs); }));
      });

  // (x, gx) -> gx read at each window's argmax, [N,OH,OW,C]: the adjoint of max_pool2d_grad.
  define_op("max_pool2d_grad_grad")
      .inputs(2)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        SYN_CHECK(in[1].shape == in[0].shape, "gradient {} does not match the input {}", to_string(in[1].shape),
                  to_string(in[0].shape));
        return Metas{{pool_output_shape(pool_geometry(in[0].shape, a)), DType::Float32}};
      })
      .kernel(Device::CPU, pool_pair_kernel(cpu::max_pool2d_grad_grad))
      .reference(pool_pair_kernel(cpu::max_pool2d_grad_grad_reference))
      .grad([](const GradCtx& g) {
        return grads(Tensor(), if_needed(g.x(1), [&] { return max_pool2d_grad(g.x(0), g.dy(), g.attrs); }));
      });
}

void register_avg_pool() {
  define_op("avg_pool2d")
      .inputs(1)
      .shape(pool_shape)
      .kernel(Device::CPU, pool_kernel(cpu::avg_pool2d))
      .reference(pool_kernel(cpu::avg_pool2d_reference))
      .grad([](const GradCtx& g) { return grads(avg_pool2d_grad(g.dy(), g.x().shape(), g.attrs)); });

  // dy -> dx: each output's gradient spread evenly over its window's real cells. Its adjoint is
  // avg_pool2d itself.
  define_op("avg_pool2d_grad")
      .inputs(1)
      .shape([](const Metas& in, const Attrs& a) {
        require_floats(in);
        const Shape& xs = a.ints("input_shape");
        check_pool_dy(in[0].shape, pool_geometry(xs, a), xs);
        return Metas{{xs, DType::Float32}};
      })
      .kernel(Device::CPU, pool_kernel(cpu::avg_pool2d_grad, /*from_attr=*/true))
      .reference(pool_kernel(cpu::avg_pool2d_grad_reference, /*from_attr=*/true))
      .grad([](const GradCtx& g) { return grads(avg_pool2d_op(g.dy(), g.attrs)); });
}

}  // namespace

void register_conv_pool_ops() {
  register_conv2d();
  register_depthwise();
  register_max_pool();
  register_avg_pool();
}

}  // namespace ops

namespace {
const char* padding_name(Padding p) { return p == Padding::Same ? "SAME" : "VALID"; }

Attrs conv_options(const Conv2DAttrs& o) {
  Attrs a = Attrs().set("strides", o.strides).set("dilations", o.dilation_rate).set("padding", padding_name(o.padding));
  if (o.relu) a.set("relu", true);
  return a;
}
Attrs pool_options(const Pool2DAttrs& o) {
  return Attrs().set("ksize", o.pool_size).set("strides", o.strides).set("padding", padding_name(o.padding));
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& filter, const Conv2DAttrs& opts) {
  static const OpDef& op = op_def("conv2d");
  return apply1(op, {x, filter}, conv_options(opts));
}

// An undefined bias means none (so a layer can pass its optional bias straight through).
Tensor conv2d(const Tensor& x, const Tensor& filter, const Tensor& bias, const Conv2DAttrs& opts) {
  if (!bias.defined()) return conv2d(x, filter, opts);
  static const OpDef& op = op_def("conv2d");
  return apply1(op, {x, filter, bias}, conv_options(opts));
}

Tensor depthwise_conv2d(const Tensor& x, const Tensor& filter, const Tensor& bias, const Conv2DAttrs& opts) {
  SYN_CHECK(!opts.relu, "depthwise_conv2d: the relu flag is not supported (apply relu after)");
  static const OpDef& op = op_def("depthwise_conv2d");
  if (!bias.defined()) return apply1(op, {x, filter}, conv_options(opts));
  return apply1(op, {x, filter, bias}, conv_options(opts));
}

Tensor max_pool2d(const Tensor& x, const Pool2DAttrs& opts) {
  static const OpDef& op = op_def("max_pool2d");
  return apply1(op, {x}, pool_options(opts));
}

Tensor avg_pool2d(const Tensor& x, const Pool2DAttrs& opts) {
  static const OpDef& op = op_def("avg_pool2d");
  return apply1(op, {x}, pool_options(opts));
}

}  // namespace synapse
