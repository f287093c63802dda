#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;

namespace {
using F = std::vector<float>;
using I64 = std::vector<std::int64_t>;


// The fast kernel of `name` against its naive reference, on float input x.
double fast_vs_reference(const char* name, const Tensor& x, const I64& axes, bool keepdims = false) {
  const Attrs a = Attrs().set("axes", axes).set("keepdims", keepdims);
  const Tensor fast = apply1(op_def(name), {x}, a);
  const Tensor ref = apply_reference(op_def(name), {x}, a)[0];
  return max_abs_diff(fast, ref);
}
}  // namespace

TEST(Reduce, SumOverAxes) {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  EXPECT_FLOAT_EQ(sum(a).item(), 21.0f);
  EXPECT_EQ(sum(a, {0}).to_vector<float>(), (F{5, 7, 9}));
  EXPECT_EQ(sum(a, {-1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(a, {1}).to_vector<float>(), (F{6, 15}));
  EXPECT_THROW(sum(a, {2}), Error);
}

TEST(Reduce, SumNonAdjacentAxesAndIntegers) {
  Tensor x = arange(24).reshape({2, 3, 4});  // x[i,j,k] = 12i + 4j + k
  // Over axes 0 and 2: sum_{i,k} = 2*4*4j + (0+12)*4 + 2*(0+1+2+3) = 32j + 60.
  EXPECT_EQ(sum(x, {0, -1}).to_vector<float>(), (F{60, 92, 124}));
  EXPECT_EQ(sum(x, {0, 2}, true).shape(), (Shape{1, 3, 1}));
  // Over axis 1: 3*(12i + k) + 12.
  EXPECT_EQ(sum(x, {1}).to_vector<float>(), (F{12, 15, 18, 21, 48, 51, 54, 57}));
  Tensor n = from_vector(std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(n, {0}).dtype(), DType::Int64);
  EXPECT_EQ(sum(n, {0}).to_vector<std::int64_t>(), (I64{5, 7, 9}));
  // Extent-1 axes only: a copy; an empty reduced axis sums to 0.
  EXPECT_EQ(sum(tensor({{1, 2}}), {0}).to_vector<float>(), (F{1, 2}));
  EXPECT_EQ(sum(zeros({0, 3}), {0}).to_vector<float>(), (F{0, 0, 0}));
}

TEST(Reduce, SumErrorsNameTheOp) {
  EXPECT_EQ(error_of([] { sum(zeros({2, 3}), {2}); }), "sum: axis 2 is out of range for a tensor of rank 2");
  EXPECT_EQ(error_of([] { sum(zeros({2, 3}), {1, -1}); }), "sum: repeated axis in [1,-1]");
}

// Shapes that take each path of the parallel kernel: long rows, a bias gradient over a big batch,
// a middle axis, non-adjacent axes, and full sums.
TEST(Reduce, FastSumMatchesReference) {
  manual_seed(11);
  struct Case {
    Shape shape;
    I64 axes;
  };
  const std::vector<Case> cases = {
      {{3, 200000}, {1}},      {{300, 500}, {1}},       {{100000, 10}, {0}}, {{64, 1000}, {0}},
      {{2000, 300}, {0}},      {{7, 300, 200}, {1}},    {{4, 5, 6, 700}, {0, 2}}, {{500, 300}, {}},
      {{16, 8, 8, 32}, {0, 1, 2}}, {{5, 1, 7}, {1}},   {{20000, 3}, {0}},   {{7, 40, 5}, {1}},
  };
  for (const auto& c : cases) {
    Tensor x = random_normal(c.shape);
    const double scale = std::sqrt(static_cast<double>(x.numel()));  // float rounding grows with the count
    EXPECT_LT(fast_vs_reference("sum", x, c.axes), 1e-5 * scale) << to_string(c.shape);
  }
  // Integers: exact.
  Tensor n = random_int({40000, 3}, -5, 5);
  const Attrs a = Attrs().set("axes", I64{0}).set("keepdims", false);
  EXPECT_EQ(sum(n, {0}).to_vector<std::int64_t>(), apply_reference(op_def("sum"), {n}, a)[0].to_vector<std::int64_t>());
}

TEST(Reduce, Mean) {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  EXPECT_FLOAT_EQ(mean(a).item(), 3.5f);
  EXPECT_EQ(mean(a, {0}).to_vector<float>(), (F{2.5f, 3.5f, 4.5f}));
  Tensor m = mean(a, {-1}, true);
  EXPECT_EQ(m.shape(), (Shape{2, 1}));
  EXPECT_EQ(m.to_vector<float>(), (F{2, 5}));
  EXPECT_EQ(mean(arange(24).reshape({2, 3, 4}), {0, 2}).to_vector<float>(), (F{7.5f, 11.5f, 15.5f}));
  EXPECT_TRUE(std::isnan(mean(zeros({0})).item()));
  EXPECT_EQ(error_of([] { mean(zeros({2}), {1}); }), "mean: axis 1 is out of range for a tensor of rank 1");
  // mean's divisor when a graph's batch is unknown until it runs: the element count over the axes.
  const OpDef& count = op_def("element_count");
  const Tensor x = zeros({2, 3, 4});
  EXPECT_FLOAT_EQ(apply1(count, {x}, Attrs().set("axes", std::vector<std::int64_t>{0, 2})).item(), 8.0f);
  EXPECT_FLOAT_EQ(apply1(count, {x}, Attrs().set("axes", std::vector<std::int64_t>{})).item(), 24.0f);
  EXPECT_FALSE(count.differentiable());
  for (const auto& axes : std::vector<std::vector<std::int64_t>>{{0, 2}, {}, {1}, {-1}, {0, 1, 2}})
    EXPECT_EQ(apply_reference(count, {x}, Attrs().set("axes", axes))[0].item(),
              apply1(count, {x}, Attrs().set("axes", axes)).item());
}

TEST(Reduce, MaxAndMin) {
  Tensor a = tensor({{1, 7, 3}, {4, -5, 7}});
  EXPECT_FLOAT_EQ(max(a).item(), 7.0f);
  EXPECT_FLOAT_EQ(min(a).item(), -5.0f);
  EXPECT_EQ(max(a, {0}).to_vector<float>(), (F{4, 7, 7}));
  EXPECT_EQ(min(a, {-1}).to_vector<float>(), (F{1, -5}));
  Tensor k = max(a, {1}, true);
  EXPECT_EQ(k.shape(), (Shape{2, 1}));
  EXPECT_EQ(k.to_vector<float>(), (F{7, 7}));
  Tensor x = arange(24).reshape({2, 3, 4});
  EXPECT_EQ(max(x, {0, 2}).to_vector<float>(), (F{15, 19, 23}));
  EXPECT_EQ(min(x, {-2}).to_vector<float>(), (F{0, 1, 2, 3, 12, 13, 14, 15}));
  Tensor n = from_vector(std::vector<std::int32_t>{3, -9, 4, 2}, {2, 2});
  EXPECT_EQ(max(n, {1}).to_vector<std::int32_t>(), (std::vector<std::int32_t>{3, 4}));
  EXPECT_EQ(min(n).item<std::int32_t>(), -9);
  // NaN propagates, as in NumPy.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(max(tensor({1, nan, 3})).item()));
  EXPECT_TRUE(std::isnan(min(tensor({nan, 1, 3})).item()));
  EXPECT_EQ(error_of([] { max(zeros({2, 0}), {1}); }), "max: cannot reduce the empty axis 1 of shape [2,0]");
}

TEST(Reduce, FastMaxMinMatchReference) {
  manual_seed(12);
  for (const auto& [shape, axes] : std::vector<std::pair<Shape, I64>>{
           {{3, 100000}, {1}}, {{50000, 12}, {0}}, {{6, 400, 300}, {1}}, {{9, 10, 11, 12}, {1, 3}}, {{300, 400}, {}}}) {
    Tensor x = random_normal(shape);
    EXPECT_EQ(fast_vs_reference("max", x, axes), 0.0) << to_string(shape);
    EXPECT_EQ(fast_vs_reference("min", x, axes, true), 0.0) << to_string(shape);
  }
}

TEST(Reduce, ArgmaxFirstIndexOnTies) {
  Tensor a = tensor({{1, 7, 7}, {9, 2, 9}, {0, 0, 0}});
  Tensor r = argmax(a);
  EXPECT_EQ(r.dtype(), DType::Int64);
  EXPECT_EQ(r.shape(), (Shape{3}));
  EXPECT_EQ(r.to_vector<std::int64_t>(), (I64{1, 0, 0}));
  EXPECT_EQ(argmax(a, 0).to_vector<std::int64_t>(), (I64{1, 0, 1}));
  // Middle axis of a 3-D tensor: x[i,j,k] = (j == 2 - k) ? 5 : k, so column k peaks at j = 2 - k.
  Tensor x = zeros({2, 3, 3});
  float* p = x.data<float>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) p[(i * 3 + j) * 3 + k] = (j == 2 - k) ? 5.0f : static_cast<float>(k);
  Tensor m = argmax(x, -2);
  EXPECT_EQ(m.shape(), (Shape{2, 3}));
  EXPECT_EQ(m.to_vector<std::int64_t>(), (I64{2, 1, 0, 2, 1, 0}));
  EXPECT_EQ(argmax(from_vector(std::vector<std::int32_t>{4, 8, 8, 1})).item<std::int64_t>(), 1);
  EXPECT_EQ(error_of([] { argmax(zeros({2, 3}), 2); }), "argmax: axis 2 is out of range for a tensor of rank 2");
  // Not differentiable: the result carries no history.
  Tensor v = tensor({1, 2}).requires_grad_();
  EXPECT_FALSE(argmax(v).requires_grad());
}

TEST(Reduce, FastArgmaxMatchesReference) {
  manual_seed(13);
  for (const auto& [shape, axis] : std::vector<std::pair<Shape, std::int64_t>>{
           {{2000, 50}, 1}, {{5000, 20}, 0}, {{8, 300, 40}, 1}}) {
    Tensor x = random_int(shape, 0, 4, DType::Int64);  // many ties
    const Attrs a = Attrs().set("axis", axis);
    EXPECT_EQ(argmax(x, axis).to_vector<std::int64_t>(),
              apply_reference(op_def("argmax"), {x}, a)[0].to_vector<std::int64_t>())
        << to_string(shape);
  }
}

TEST(Reduce, BroadcastToAndSumTo) {
  Tensor a = tensor({1, 2});
  Tensor b = broadcast_to(a, {3, 2});
  EXPECT_EQ(b.to_vector<float>(), (F{1, 2, 1, 2, 1, 2}));
  EXPECT_EQ(sum_to(b, {1, 2}).to_vector<float>(), (F{3, 6}));
  EXPECT_EQ(sum_to(b, {2}).to_vector<float>(), (F{3, 6}));
}

TEST(Reduce, FastBroadcastMatchesReference) {
  manual_seed(14);
  for (const auto& [from, to] : std::vector<std::pair<Shape, Shape>>{
           {{3, 1, 5}, {4, 3, 200, 5}}, {{200, 1}, {50, 200, 300}}, {{1}, {1000, 70}}, {{7}, {7}}, {{}, {2, 3}}}) {
    Tensor x = random_normal(from);
    const Attrs a = Attrs().set("shape", to);
    EXPECT_EQ(max_abs_diff(broadcast_to(x, to), apply_reference(op_def("broadcast_to"), {x}, a)[0]), 0.0)
        << to_string(from) << " -> " << to_string(to);
  }
  Tensor n = from_vector(I64{1, 2}, {2, 1});
  EXPECT_EQ(broadcast_to(n, {2, 3}).to_vector<std::int64_t>(), (I64{1, 1, 1, 2, 2, 2}));
}

TEST(Grad, SumAndBroadcast) {
  manual_seed(3);
  Tensor x = random_normal({2, 3, 4});
  EXPECT_GRAD_MATCHES([&] { return sum(x, {1}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return sum(x, {0, 2}, true); }, {x});
  Tensor y = random_normal({3, 1});
  EXPECT_GRAD_MATCHES([&] { return broadcast_to(y, {2, 3, 5}); }, {y});
}

TEST(Grad, Mean) {
  manual_seed(5);
  Tensor x = random_normal({3, 4, 5});
  EXPECT_GRAD_MATCHES([&] { return mean(x); }, {x});
  EXPECT_GRAD_MATCHES([&] { return mean(x, {-1}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return mean(x, {0, 2}, true); }, {x});
  Tensor b = random_normal({5});
  EXPECT_GRAD_MATCHES([&] { return mean(x * b, {0}); }, {x, b});  // through a broadcast
}

TEST(Grad, MaxMin) {
  manual_seed(6);
  Tensor x = random_normal({3, 4, 5});  // distinct values: no ties to straddle
  EXPECT_GRAD_MATCHES([&] { return max(x); }, {x});
  EXPECT_GRAD_MATCHES([&] { return max(x, {1}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return max(x, {0, -1}, true); }, {x});
  EXPECT_GRAD_MATCHES([&] { return min(x, {2}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return min(x, {0, 1}, true); }, {x});
}

TEST(Grad, MaxSplitsEvenlyBetweenTies) {
  Tensor x = tensor({{1, 3, 3}, {2, 0, 2}, {5, 5, 5}}).requires_grad_();
  Tensor w = tensor({1, 2, 3});
  sum(max(x, {1}) * w).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (F{0, 0.5f, 0.5f, 1, 0, 1, 1, 1, 1}));
  Tensor y = tensor({{4, -1}, {-1, 0}}).requires_grad_();
  min(y).backward();
  EXPECT_EQ(y.grad().to_vector<float>(), (F{0, 0.5f, 0.5f, 0}));
}
