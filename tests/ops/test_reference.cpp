// Fast kernel against naive reference kernel for the ops whose references are the plain loops of
// src/ops/naive.h and their neighbours: elementwise arithmetic, math, activations, comparisons, cast,
// the fused gradient helpers, the sigmoid and sparse softmax losses' helpers, shape ops (concat, slice,
// pad, gather, one_hot), extremum_mask and dropout_mask. Shapes include odd extents (not multiples of
// 16), broadcasting and sizes large enough for the threaded paths; inputs are seeded. Integer, index
// and data-movement ops must agree exactly; float arithmetic that IEEE rounds once (add, mul, div,
// sqrt, ...) too; transcendental functions within a few float ulps of the double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;

namespace {
using I64 = std::vector<std::int64_t>;

// Seeded float32 normal values of `shape`.
Tensor normal(const Shape& shape, std::uint64_t seed, float stddev = 1.0f) {
  Generator g(seed);
  return random_normal(shape, 0.0f, stddev, &g);
}

// Seeded integers uniform in [lo, hi] of `shape`, as `dtype` (a value 0 replaced by `zero_as`, for divisors).
Tensor integers(const Shape& shape, std::int64_t lo, std::int64_t hi, DType dtype, std::uint64_t seed,
                std::int64_t zero_as = 0) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> d(lo, hi);
  I64 v(static_cast<std::size_t>(numel(shape)));
  for (auto& x : v) {
    x = d(rng);
    if (x == 0) x = zero_as;
  }
  Tensor t = from_vector(v, {static_cast<std::int64_t>(v.size())}).reshape(shape);
  return dtype == DType::Int64 ? t : cast(t, dtype);
}

struct Pair {
  Tensor fast, ref;
};

Pair run(const char* op, const std::vector<Tensor>& in, const Attrs& a = {}) {
  return {apply1(op_def(op), in, a), apply_reference(op_def(op), in, a)[0]};
}

// Same shape, dtype and bytes (NaN payloads included).
::testing::AssertionResult identical(const Pair& p) {
  if (p.fast.shape() != p.ref.shape() || p.fast.dtype() != p.ref.dtype())
    return ::testing::AssertionFailure() << "fast " << to_string(p.fast.shape()) << " " << dtype_name(p.fast.dtype())
                                         << " vs reference " << to_string(p.ref.shape()) << " "
                                         << dtype_name(p.ref.dtype());
  const auto n = static_cast<std::size_t>(p.fast.numel()) * dtype_size(p.fast.dtype());
  if (n != 0 && std::memcmp(p.fast.raw_data(), p.ref.raw_data(), n) != 0) {
    std::int64_t first = 0;
    const std::size_t es = dtype_size(p.fast.dtype());
    const auto* a = static_cast<const unsigned char*>(p.fast.raw_data());
    const auto* b = static_cast<const unsigned char*>(p.ref.raw_data());
    auto at = [&](const unsigned char* q) { return q + static_cast<std::size_t>(first) * es; };
    while (std::memcmp(at(a), at(b), es) == 0) ++first;
    return ::testing::AssertionFailure() << "first difference at flat index " << first << " of " << p.fast.numel();
  }
  return ::testing::AssertionSuccess();
}

// Float32 results within `rtol` relative (absolute below 1), NaN where the other is NaN.
::testing::AssertionResult close(const Pair& p, double rtol) {
  if (p.fast.shape() != p.ref.shape() || p.fast.dtype() != DType::Float32 || p.ref.dtype() != DType::Float32)
    return ::testing::AssertionFailure() << "shapes or dtypes differ";
  const float* a = p.fast.data<float>();
  const float* b = p.ref.data<float>();
  for (std::int64_t i = 0; i < p.fast.numel(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (std::isnan(a[i]) != std::isnan(b[i])) return ::testing::AssertionFailure() << "NaN mismatch at " << i;
      continue;
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return ::testing::AssertionFailure() << "at " << i << ": " << a[i] << " vs " << b[i];
      continue;
    }
    const double want = b[i];
    const double err = std::fabs(a[i] - want) / std::max(1.0, std::fabs(want));
    if (err > rtol) return ::testing::AssertionFailure() << "at " << i << ": fast " << a[i] << " reference " << b[i];
  }
  return ::testing::AssertionSuccess();
}

// Operand shapes for the binary ops: equal, odd, broadcast both ways, scalar, and large enough to be
// split over threads (with and without a broadcast operand).
const std::vector<std::pair<Shape, Shape>> kBinaryShapes{
    {{17}, {17}},        {{3, 1, 5}, {4, 1}}, {{33, 19}, {19}},     {{1}, {7, 13}},
    {{}, {5, 3}},        {{6, 0}, {1}},       {{129, 301}, {129, 1}}, {{257, 131}, {257, 131}},
};

const std::vector<DType> kNumeric{DType::Float32, DType::Int32, DType::Int64, DType::UInt8};

Tensor operand(const Shape& s, DType dt, std::uint64_t seed, bool divisor = false) {
  if (dt == DType::Float32) return normal(s, seed, 3.0f);
  if (dt == DType::UInt8) return integers(s, 0, 200, dt, seed, divisor ? 7 : 0);
  return integers(s, -50, 50, dt, seed, divisor ? -3 : 0);
}

}  // namespace

// ---- the marked ops and the refusal to compare a kernel with itself ----

TEST(Reference, AnOpMarkedWithoutAReferenceRefusesToRunOne) {
  const Tensor x = arange(12);
  EXPECT_EQ(error_of([&] { apply_reference(op_def("reshape"), {x}, Attrs().set("shape", I64{3, 4})); }),
            "reshape: has no reference kernel (a view: the dispatcher shares the input's storage and no kernel "
            "moves data)");
  const std::string msg = error_of([] {
    apply_reference(op_def("random_uniform"), {},
                    Attrs().set("shape", I64{2}).set("low", 0.0).set("high", 1.0).set("seed", std::int64_t{1}));
  });
  EXPECT_EQ(msg.rfind("random_uniform: has no reference kernel (its kernel is", 0), 0u) << msg;
  // The fast-vs-reference helper goes through apply_reference, so it cannot compare reshape with itself.
  EXPECT_THROW(synapse::testing::fast_vs_reference("reshape", {x}, Attrs().set("shape", I64{4, 3})), Error);
}

TEST(Reference, AnOpWithNeitherAReferenceNorAReasonThrowsToo) {
  OpDef unmarked("unmarked");
  unmarked.kernel(Device::CPU, [](const KernelContext&) {});
  EXPECT_EQ(error_of([&] { unmarked.reference_kernel(); }),
            "unmarked: has no reference kernel and is not marked .no_reference(\"why\")");
  EXPECT_FALSE(unmarked.has_reference());
  EXPECT_EQ(unmarked.no_reference_reason(), "");
  // A reason is required, and an op cannot have both.
  EXPECT_EQ(error_of([&] { unmarked.no_reference(""); }), "unmarked: .no_reference() needs a reason");
  OpDef both("both");
  both.reference([](const KernelContext&) {});
  EXPECT_EQ(error_of([&] { both.no_reference("why"); }), "both: has a reference kernel and is marked .no_reference()");
  OpDef marked("marked");
  marked.no_reference("a view");
  EXPECT_EQ(marked.no_reference_reason(), "a view");
  EXPECT_THROW(marked.reference([](const KernelContext&) {}), Error);
}

// ---- elementwise ----

TEST(Reference, BinaryArithmeticEveryNumericDtypeAndBroadcast) {
  std::uint64_t seed = 100;
  for (const char* op : {"add", "sub", "mul", "div", "maximum", "minimum"}) {
    for (DType dt : kNumeric) {
      for (const auto& [sa, sb] : kBinaryShapes) {
        const bool div = std::string(op) == "div";
        const Tensor a = operand(sa, dt, ++seed, div), b = operand(sb, dt, ++seed, div);  // div: no zeros either way
        // Exact: one IEEE operation per element (floats), or integer arithmetic.
        EXPECT_TRUE(identical(run(op, {a, b}))) << op << " " << dtype_name(dt) << " " << to_string(sa) << " "
                                                 << to_string(sb);
        EXPECT_TRUE(identical(run(op, {b, a}))) << op << " reversed " << dtype_name(dt) << " " << to_string(sa);
      }
    }
  }
}

TEST(Reference, MaximumMinimumPropagateNaNAndDivByZeroThrows) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor a = from_vector(std::vector<float>{nan, 1.0f, -0.0f, 2.0f, nan}, {5});
  const Tensor b = from_vector(std::vector<float>{1.0f, nan, 0.0f, 2.0f, nan}, {5});
  for (const char* op : {"maximum", "minimum"}) {
    const Pair p = run(op, {a, b});
    EXPECT_TRUE(identical(p)) << op;
    const auto v = p.ref.to_vector<float>();
    EXPECT_TRUE(std::isnan(v[0]) && std::isnan(v[1]) && std::isnan(v[4])) << op;
    EXPECT_EQ(v[3], 2.0f);
  }
  const Tensor i = integers({9}, 1, 9, DType::Int32, 3), z = integers({9}, 0, 0, DType::Int32, 4);
  EXPECT_THROW(apply_reference(op_def("div"), {i, z}), Error);
  EXPECT_THROW(div(i, z), Error);
}

TEST(Reference, UnaryNumericOps) {
  std::uint64_t seed = 200;
  for (const char* op : {"neg", "abs", "sign"}) {
    for (DType dt : kNumeric) {
      for (const Shape& s : {Shape{}, Shape{17}, Shape{5, 0}, Shape{3, 7, 11}, Shape{171, 211}}) {
        const Tensor x = operand(s, dt, ++seed);
        EXPECT_TRUE(identical(run(op, {x}))) << op << " " << dtype_name(dt) << " " << to_string(s);
      }
    }
  }
  // The most negative integer wraps under neg and abs.
  const Tensor lowest = from_vector(I64{std::numeric_limits<std::int64_t>::min(), -1, 0, 5}, {4});
  EXPECT_TRUE(identical(run("neg", {lowest})));
  EXPECT_TRUE(identical(run("abs", {lowest})));
  EXPECT_EQ(run("sign", {lowest}).ref.to_vector<std::int64_t>(), (I64{-1, -1, 0, 1}));
}

TEST(Reference, UnaryFloatOpsAgainstDoublePrecision) {
  std::uint64_t seed = 300;
  for (const Shape& s : {Shape{}, Shape{19}, Shape{3, 7, 11}, Shape{171, 211}}) {
    const Tensor x = normal(s, ++seed, 3.0f);
    const Tensor pos = abs(x) + 0.01f;
    // Rounded once in both: exact.
    EXPECT_TRUE(identical(run("sqrt", {pos}))) << to_string(s);
    EXPECT_TRUE(identical(run("square", {x}))) << to_string(s);
    EXPECT_TRUE(identical(run("relu", {x}))) << to_string(s);
    // libm's float functions against double ones rounded: a couple of ulps.
    EXPECT_TRUE(close(run("exp", {x}), 1e-6)) << to_string(s);
    EXPECT_TRUE(close(run("log", {pos}), 1e-6)) << to_string(s);
    EXPECT_TRUE(close(run("tanh", {x}), 1e-6)) << to_string(s);
    EXPECT_TRUE(close(run("sigmoid", {x}), 1e-6)) << to_string(s);
  }
  // Far tails: sigmoid saturates without overflow in both; log of 0 and of a negative number.
  const Tensor tails = from_vector(std::vector<float>{-200.0f, -90.0f, -20.0f, 0.0f, 20.0f, 90.0f, 200.0f}, {7});
  EXPECT_TRUE(close(run("sigmoid", {tails}), 1e-7));
  EXPECT_TRUE(close(run("exp", {tails}), 1e-6));
  EXPECT_TRUE(close(run("log", {from_vector(std::vector<float>{0.0f, -1.0f, 1.0f}, {3})}), 0.0));
}

TEST(Reference, ActivationsWithAttributesAndTheirGradientHelpers) {
  std::uint64_t seed = 400;
  for (const Shape& s : {Shape{1}, Shape{17}, Shape{5, 9, 3}, Shape{211, 171}}) {
    Tensor x = normal(s, ++seed, 2.0f);
    if (x.numel() > 4) {  // values exactly on the clip bounds and at 0
      x.data<float>()[0] = -1.0f;
      x.data<float>()[1] = 1.5f;
      x.data<float>()[2] = 0.0f;
      x.data<float>()[3] = -0.0f;
    }
    const Tensor dy = normal(s, ++seed);
    for (double alpha : {0.0, 0.2, 1.7}) {
      const Attrs a = Attrs().set("alpha", alpha);
      EXPECT_TRUE(identical(run("leaky_relu", {x}, a))) << to_string(s) << " alpha " << alpha;
      EXPECT_TRUE(identical(run("leaky_relu_grad", {x, dy}, a))) << to_string(s) << " alpha " << alpha;
    }
    const Attrs c = Attrs().set("lo", -1.0).set("hi", 1.5);
    EXPECT_TRUE(identical(run("clip", {x}, c))) << to_string(s);
    EXPECT_TRUE(identical(run("clip_grad", {x, dy}, c))) << to_string(s);
  }
  // By hand: the bounds themselves pass the gradient.
  const Tensor x = from_vector(std::vector<float>{-2.0f, -1.0f, 0.0f, 1.5f, 3.0f}, {5});
  const Tensor dy = from_vector(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f, 5.0f}, {5});
  EXPECT_EQ(run("clip_grad", {x, dy}, Attrs().set("lo", -1.0).set("hi", 1.5)).ref.to_vector<float>(),
            (std::vector<float>{0.0f, 2.0f, 3.0f, 4.0f, 0.0f}));
  EXPECT_EQ(run("leaky_relu_grad", {x, dy}, Attrs().set("alpha", 0.5)).ref.to_vector<float>(),
            (std::vector<float>{0.5f, 1.0f, 1.5f, 4.0f, 5.0f}));
}

TEST(Reference, ComparisonsEveryDtypeAndBroadcast) {
  std::uint64_t seed = 500;
  for (const char* op : {"equal", "greater", "less"}) {
    for (DType dt : {DType::Float32, DType::Int32, DType::Int64, DType::UInt8, DType::Bool}) {
      for (const auto& [sa, sb] : kBinaryShapes) {
        // Few distinct values, so that equal is often true.
        const Tensor a = dt == DType::Float32 ? cast(integers(sa, -3, 3, DType::Int64, ++seed), dt)
                                              : integers(sa, 0, dt == DType::Bool ? 1 : 3, dt, ++seed);
        const Tensor b = dt == DType::Float32 ? cast(integers(sb, -3, 3, DType::Int64, ++seed), dt)
                                              : integers(sb, 0, dt == DType::Bool ? 1 : 3, dt, ++seed);
        EXPECT_TRUE(identical(run(op, {a, b}))) << op << " " << dtype_name(dt) << " " << to_string(sa);
      }
    }
  }
}

TEST(Reference, CastBetweenEveryPairOfDtypes) {
  const std::vector<DType> all{DType::Float32, DType::Int32, DType::Int64, DType::UInt8, DType::Bool};
  // Floats with NaN, infinities, values out of every integer range and fractions of both signs.
  std::vector<float> fv{std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(), 3e9f, -3e9f, 1e20f, 255.5f, 256.0f, -0.7f, 0.7f,
                        -0.0f, 0.0f};
  const Tensor special = from_vector(fv, {static_cast<std::int64_t>(fv.size())});
  std::uint64_t seed = 600;
  for (DType from : all) {
    for (const Shape& s : {Shape{}, Shape{23}, Shape{171, 211}}) {
      const Tensor x = from == DType::Float32 ? normal(s, ++seed, 300.0f)
                                              : integers(s, from == DType::Bool || from == DType::UInt8 ? 0 : -300,
                                                         from == DType::Bool ? 1 : 300, from, ++seed);
      for (DType to : all) {
        if (to == from) continue;  // cast() returns x itself; the op is only run across dtypes
        const Attrs a = Attrs().set("dtype", std::string(dtype_name(to)));
        EXPECT_TRUE(identical(run("cast", {x}, a))) << dtype_name(from) << " -> " << dtype_name(to) << " " << to_string(s);
      }
    }
  }
  for (DType to : all) {
    if (to == DType::Float32) continue;
    EXPECT_TRUE(identical(run("cast", {special}, Attrs().set("dtype", std::string(dtype_name(to)))))) << dtype_name(to);
  }
  // By hand: truncation toward zero, saturation, NaN to 0.
  EXPECT_EQ(cast(special, DType::UInt8).to_vector<std::uint8_t>(),
            (std::vector<std::uint8_t>{0, 255, 0, 255, 0, 255, 255, 255, 0, 0, 0, 0}));
}

// ---- losses' helpers ----

TEST(Reference, SigmoidCrossEntropyAndItsGradientBroadcast) {
  std::uint64_t seed = 700;
  for (const auto& [sx, sz] : std::vector<std::pair<Shape, Shape>>{
           {{17}, {17}}, {{5, 7}, {7}}, {{3, 1, 5}, {4, 1}}, {{129, 301}, {129, 301}}, {{}, {3, 2}}}) {
    const Tensor x = normal(sx, ++seed, 4.0f);
    const Tensor z = cast(integers(sz, 0, 1, DType::Int64, ++seed), DType::Float32);  // hard labels
    EXPECT_TRUE(close(run("sigmoid_cross_entropy", {x, z}), 2e-6)) << to_string(sx) << " " << to_string(sz);
    EXPECT_TRUE(close(run("sigmoid_cross_entropy_grad", {x, z}), 1e-6)) << to_string(sx) << " " << to_string(sz);
    const Tensor soft = sigmoid(normal(sz, ++seed));  // soft labels
    EXPECT_TRUE(close(run("sigmoid_cross_entropy", {x, soft}), 2e-6)) << to_string(sx);
    EXPECT_TRUE(close(run("sigmoid_cross_entropy_grad", {x, soft}), 1e-6)) << to_string(sx);
  }
  // Large logits: log(1 + e^x) - x z stays finite in both.
  const Tensor big = from_vector(std::vector<float>{-80.0f, -30.0f, 30.0f, 80.0f}, {4});
  const Tensor ones4 = from_vector(std::vector<float>{1.0f, 0.0f, 1.0f, 0.0f}, {4});
  const Pair p = run("sigmoid_cross_entropy", {big, ones4});
  EXPECT_TRUE(close(p, 1e-6));
  const auto v = p.ref.to_vector<float>();
  EXPECT_NEAR(v[0], 80.0f, 1e-4f);  // z = 1, x = -80: -log sigmoid(-80) = 80
  EXPECT_NEAR(v[3], 80.0f, 1e-4f);  // z = 0, x = 80: -log(1 - sigmoid(80)) = 80
}

TEST(Reference, SparseSoftmaxCrossEntropyGradient) {
  std::uint64_t seed = 800;
  for (const Shape& s : {Shape{1, 1}, Shape{3, 10}, Shape{2, 3, 17}, Shape{67, 129}}) {
    const Tensor x = normal(s, ++seed, 3.0f);
    Shape rows(s.begin(), s.end() - 1);
    for (DType dt : {DType::Int32, DType::Int64}) {
      const Tensor labels = integers(rows, 0, s.back() - 1, dt, ++seed);
      EXPECT_TRUE(close(run("sparse_softmax_cross_entropy_grad", {x, labels}), 1e-6)) << to_string(s);
    }
  }
  // Rows of the gradient sum to 0; a label out of range throws in both.
  const Tensor x = normal({2, 3}, 1);
  const Tensor bad = from_vector(I64{0, 3}, {2});
  EXPECT_THROW(apply_reference(op_def("sparse_softmax_cross_entropy_grad"), {x, bad}), Error);
  EXPECT_THROW(apply1(op_def("sparse_softmax_cross_entropy_grad"), {x, bad}), Error);
}

// ---- shape ops ----

TEST(Reference, ConcatAlongEveryAxisEveryWidth) {
  std::uint64_t seed = 900;
  for (DType dt : {DType::Float32, DType::Int64, DType::UInt8, DType::Bool}) {
    auto make = [&](const Shape& s) { return dt == DType::Float32 ? normal(s, ++seed) : integers(s, 0, 1, dt, ++seed); };
    for (std::int64_t axis : {0, 1, 2, -1}) {
      std::vector<Tensor> xs;
      for (std::int64_t e : {3, 0, 5, 1}) {
        Shape s{3, 7, 5};
        s[static_cast<std::size_t>(axis < 0 ? axis + 3 : axis)] = e;
        xs.push_back(make(s));
      }
      EXPECT_TRUE(identical(run("concat", xs, Attrs().set("axis", axis)))) << dtype_name(dt) << " axis " << axis;
    }
    // Large rows, threaded copy.
    EXPECT_TRUE(identical(run("concat", {make({129, 301}), make({129, 17})}, Attrs().set("axis", 1)))) << dtype_name(dt);
    EXPECT_TRUE(identical(run("concat", {make({301, 129}), make({17, 129})}, Attrs().set("axis", 0)))) << dtype_name(dt);
  }
  // By hand.
  const Tensor a = from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}), b = from_vector(std::vector<float>{5, 6}, {2, 1});
  EXPECT_EQ(run("concat", {a, b}, Attrs().set("axis", 1)).ref.to_vector<float>(), (std::vector<float>{1, 2, 5, 3, 4, 6}));
}

TEST(Reference, SliceAndPad) {
  std::uint64_t seed = 1000;
  for (DType dt : {DType::Float32, DType::Int32, DType::UInt8, DType::Bool}) {
    const Tensor x = dt == DType::Float32 ? normal({5, 7, 9}, ++seed) : integers({5, 7, 9}, 0, 1, dt, ++seed);
    for (const auto& [begin, size] : std::vector<std::pair<I64, I64>>{
             {{0, 0, 0}, {5, 7, 9}},
             {{1, 2, 3}, {3, 4, 5}},
             {{4, 0, 8}, {1, -1, 1}},
             {{2, 6, 0}, {-1, 1, -1}},
             {{0, 3, 2}, {5, 0, 3}}}) {
      EXPECT_TRUE(identical(run("slice", {x}, Attrs().set("begin", begin).set("size", size))))
          << dtype_name(dt) << " begin " << begin[0] << "," << begin[1] << "," << begin[2];
    }
    for (const I64& p : {I64{0, 0, 0, 0, 0, 0}, I64{1, 2, 0, 3, 5, 0}, I64{0, 0, 17, 1, 2, 2}}) {
      EXPECT_TRUE(identical(run("pad", {x}, Attrs().set("paddings", p).set("value", 1.0)))) << dtype_name(dt);
    }
  }
  const Tensor big = normal({211, 171}, 7);
  EXPECT_TRUE(identical(run("slice", {big}, Attrs().set("begin", I64{3, 5}).set("size", I64{201, 161}))));
  EXPECT_TRUE(identical(run("pad", {big}, Attrs().set("paddings", I64{2, 1, 0, 7}).set("value", -2.5))));
  // By hand.
  const Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(run("slice", {x}, Attrs().set("begin", I64{0, 1}).set("size", I64{2, 2})).ref.to_vector<float>(),
            (std::vector<float>{2, 3, 5, 6}));
  EXPECT_EQ(run("pad", {x}, Attrs().set("paddings", I64{0, 1, 1, 0}).set("value", 9.0)).ref.to_vector<float>(),
            (std::vector<float>{9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9}));
}

TEST(Reference, GatherEveryAxisAndIndexShape) {
  std::uint64_t seed = 1100;
  for (DType dt : {DType::Float32, DType::Int64, DType::UInt8}) {
    const Tensor params = dt == DType::Float32 ? normal({7, 5, 3}, ++seed) : integers({7, 5, 3}, 0, 200, dt, ++seed);
    for (std::int64_t axis : {0, 1, 2, -1}) {
      const std::int64_t extent = params.shape()[static_cast<std::size_t>(axis < 0 ? axis + 3 : axis)];
      for (const Shape& is : {Shape{}, Shape{4}, Shape{2, 3}, Shape{0}, Shape{19}}) {
        for (DType it : {DType::Int32, DType::Int64}) {
          const Tensor idx = integers(is, 0, extent - 1, it, ++seed);  // repeats included
          EXPECT_TRUE(identical(run("gather", {params, idx}, Attrs().set("axis", axis))))
              << dtype_name(dt) << " axis " << axis << " indices " << to_string(is);
        }
      }
    }
  }
  // An embedding-sized table, threaded; and an index out of range throws in both.
  const Tensor table = normal({1001, 67}, 3);
  const Tensor ids = integers({33, 17}, 0, 1000, DType::Int64, 4);
  EXPECT_TRUE(identical(run("gather", {table, ids}, Attrs().set("axis", std::int64_t{0}))));
  const Tensor bad = from_vector(I64{0, 7}, {2});
  EXPECT_THROW(apply_reference(op_def("gather"), {normal({7, 2}, 5), bad}, Attrs().set("axis", std::int64_t{0})), Error);
  // By hand.
  const Tensor p = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  EXPECT_EQ(run("gather", {p, from_vector(I64{2, 0, 2}, {3})}, Attrs().set("axis", std::int64_t{0})).ref.to_vector<float>(),
            (std::vector<float>{5, 6, 1, 2, 5, 6}));
}

TEST(Reference, OneHotWithIndicesOutOfRange) {
  std::uint64_t seed = 1200;
  for (DType dt : {DType::Int32, DType::Int64, DType::UInt8}) {
    for (const Shape& s : {Shape{}, Shape{17}, Shape{3, 5}, Shape{1031}}) {
      const std::int64_t lo = dt == DType::UInt8 ? 0 : -2;
      const Tensor idx = integers(s, lo, 9, dt, ++seed);  // some below 0 and at or above depth 7
      const Attrs a = Attrs().set("depth", std::int64_t{7}).set("on", 2.0).set("off", -0.5);
      EXPECT_TRUE(identical(run("one_hot", {idx}, a))) << dtype_name(dt) << " " << to_string(s);
    }
  }
  EXPECT_EQ(run("one_hot", {from_vector(I64{1, -1, 3}, {3})}, Attrs().set("depth", std::int64_t{3}).set("on", 1.0).set("off", 0.0))
                .ref.to_vector<float>(),
            (std::vector<float>{0, 1, 0, 0, 0, 0, 0, 0, 0}));
}

// ---- reduce and random helpers ----

TEST(Reference, ExtremumMaskWithTies) {
  std::uint64_t seed = 1300;
  for (DType dt : {DType::Float32, DType::Int32, DType::Int64, DType::UInt8}) {
    for (const auto& [s, axes] : std::vector<std::pair<Shape, I64>>{
             {{17}, {0}}, {{4, 5, 6}, {1}}, {{4, 5, 6}, {0, 2}}, {{3, 7}, {0, 1}}, {{129, 301}, {1}}}) {
      // Few distinct values: ties everywhere.
      const Tensor x = dt == DType::Float32 ? cast(integers(s, 0, 4, DType::Int64, ++seed), dt) : integers(s, 0, 4, dt, ++seed);
      const Tensor y = max(x, axes, true);
      EXPECT_TRUE(identical(run("extremum_mask", {x, y}))) << dtype_name(dt) << " " << to_string(s);
    }
  }
  const Tensor x = from_vector(std::vector<float>{1, 3, 3, 2, 0, 2}, {2, 3});
  EXPECT_EQ(run("extremum_mask", {x, max(x, {1}, true)}).ref.to_vector<float>(), (std::vector<float>{0, 1, 1, 1, 0, 1}));
}

TEST(Reference, DropoutMaskSerialAgainstParallel) {
  for (const Shape& s : {Shape{}, Shape{17}, Shape{1000}, Shape{129, 301}, Shape{3, 257, 131}}) {
    for (double rate : {0.0, 0.3, 0.9}) {
      const Attrs a = Attrs().set("rate", rate).set("seed", std::int64_t{42});
      const Pair p = run("dropout_mask", {zeros(s)}, a);
      ASSERT_EQ(p.fast.numel(), p.ref.numel());
      const float* f = p.fast.data<float>();
      const float* r = p.ref.data<float>();
      for (std::int64_t i = 0; i < p.fast.numel(); ++i) {
        ASSERT_EQ(f[i] == 0.0f, r[i] == 0.0f) << "element " << i << " of " << to_string(s) << ", rate " << rate;
        ASSERT_NEAR(f[i], r[i], 1e-6 * r[i]) << "element " << i;
      }
    }
  }
}

TEST(Reference, RandomUniformMoments) {
  // No reference (one serial loop of the generator): its values are checked by their moments instead.
  const Tensor u = apply1(op_def("random_uniform"), {},
                          Attrs().set("shape", I64{101, 99}).set("low", -2.0).set("high", 3.0).set("seed", std::int64_t{9}));
  double s = 0.0, s2 = 0.0;
  for (float v : u.to_vector<float>()) {
    ASSERT_TRUE(v >= -2.0f && v < 3.0f) << v;
    s += v;
    s2 += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(u.numel()), mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.05);         // (low + high) / 2; the mean's sd is ~0.015
  EXPECT_NEAR(var, 25.0 / 12.0, 0.1);   // (high - low)^2 / 12
}
