// ONNX -> Synapse, the math family: elementwise and activation functions, comparisons and logic,
// Where, variadic Max/Min/Sum/Mean, Clip, Cast/CastLike, MatMul, Gemm, Softmax/LogSoftmax/Hardmax,
// reductions, ArgMax/ArgMin, IsNaN, IsInf and Shrink.
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string>

#include "onnx/import_internal.h"

namespace synapse::onnx::internal {
namespace {

// Variadic Max/Min/Sum/Mean fold left.
Outputs fold(Ctx& c, Tensor (*f)(const Tensor&, const Tensor&)) {
  Tensor acc = c.in(0);
  c.require_numeric(acc);
  for (int k = 1; k < c.num_inputs(); ++k) acc = f(acc, c.in(k));
  return {acc};
}

Tensor not_(const Tensor& b) { return where(b, full({}, 0, DType::Bool), full({}, 1, DType::Bool)); }

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

}  // namespace

void add_math_ops(OpTable& m) {
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
  m["MatMul"] = {{}, matmul_np};
  m["Gemm"] = {{"alpha", "beta", "transA", "transB"}, gemm};
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
}

}  // namespace synapse::onnx::internal
