// ONNX -> Synapse, the shape family: Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Concat, Slice, Pad,
// Split, Gather, GatherElements, OneHot, Expand, Tile, Shape, Size, Constant, ConstantOfShape, Range,
// Trilu, EyeLike and Identity. Most of their attribute-like inputs (shapes, starts, pads, ...) are read
// from constants folded at import time (Ctx::ints_in).
#include <algorithm>
#include <numeric>
#include <vector>

#include "onnx/import_internal.h"

namespace synapse::onnx::internal {
namespace {

Tensor scalar_as(double v, DType dt) { return full({}, v, dt); }

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

}  // namespace

void add_shape_ops(OpTable& m) {
  m["Identity"] = {{}, [](Ctx& c) -> Outputs { return {c.in(0)}; }};
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
  m["Trilu"] = {{"upper"}, trilu};
  m["EyeLike"] = {{"dtype", "k"}, eye_like};
  m["GatherElements"] = {{"axis"}, gather_elements};
}

}  // namespace synapse::onnx::internal
