#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "gradcheck.h"
#include "synapse/op.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::max_abs_diff;

namespace {

using Ints = std::vector<std::int64_t>;

Attrs conv_attrs(Ints strides, Ints dilations, const char* padding) {
  return Attrs().set("strides", std::move(strides)).set("dilations", std::move(dilations)).set("padding", padding);
}
Attrs pool_attrs(Ints ksize, Ints strides, const char* padding) {
  return Attrs().set("ksize", std::move(ksize)).set("strides", std::move(strides)).set("padding", padding);
}

Tensor run(const char* op, const std::vector<Tensor>& in, const Attrs& a) { return apply1(op_def(op), in, a); }
Tensor run_reference(const char* op, const std::vector<Tensor>& in, const Attrs& a) {
  return apply_reference(op_def(op), in, a)[0];
}

// Distinct values (a shuffled 0, 0.05, 0.1, ...) so that a max never ties within the gradcheck's eps.
Tensor distinct_values(const Shape& shape, std::uint64_t seed) {
  const std::int64_t n = numel(shape);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = 0.05f * static_cast<float>(i) - 1.0f;
  Generator gen(seed);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.next_u64() % i]);  // Fisher-Yates
  return from_vector(v, shape);
}

// 1..n as a float tensor of the given shape.
Tensor iota(const Shape& shape, float start = 1.0f) {
  std::vector<float> v(static_cast<std::size_t>(numel(shape)));
  std::iota(v.begin(), v.end(), start);
  return from_vector(v, shape);
}

struct ConvCase {
  Shape x, w;
  Conv2DAttrs opts;
};

std::string describe(const ConvCase& c) {
  return to_string(c.x) + " * " + to_string(c.w) + " strides " + to_string(c.opts.strides) + " dilations " +
         to_string(c.opts.dilation_rate) + (c.opts.padding == Padding::Same ? " SAME" : " VALID");
}

Attrs attrs_of(const Conv2DAttrs& o) {
  return conv_attrs(o.strides, o.dilation_rate, o.padding == Padding::Same ? "SAME" : "VALID");
}

}  // namespace

// ---- conv2d values ----

TEST(Conv2D, ValidAndSameHandComputed) {
  Tensor x = iota({1, 3, 3, 1});                                   // 1..9
  Tensor w = from_vector(std::vector<float>{1, 0, 0, 1}, {2, 2, 1, 1});  // y = x[i][j] + x[i+1][j+1]
  Tensor valid = conv2d(x, w);
  EXPECT_EQ(valid.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_EQ(valid.to_vector<float>(), (std::vector<float>{6, 8, 12, 14}));
  // SAME, 2x2 filter: the one padded row/column goes after (TensorFlow).
  Tensor same = conv2d(x, w, {.padding = Padding::Same});
  EXPECT_EQ(same.shape(), (Shape{1, 3, 3, 1}));
  EXPECT_EQ(same.to_vector<float>(), (std::vector<float>{6, 8, 3, 12, 14, 6, 7, 8, 9}));
  Tensor biased = conv2d(x, w, tensor({0.5f}), {.padding = Padding::Same});
  EXPECT_EQ(biased.to_vector<float>(), (std::vector<float>{6.5f, 8.5f, 3.5f, 12.5f, 14.5f, 6.5f, 7.5f, 8.5f, 9.5f}));
}

TEST(Conv2D, SameStride2PadsAfter) {
  // 4x4 input 0..15, 3x3 ones filter, stride 2: out 2x2, pad_total 1 -> 0 before, 1 after.
  Tensor x = iota({1, 4, 4, 1}, 0.0f);
  Tensor y = conv2d(x, ones({3, 3, 1, 1}), {.strides = {2, 2}, .padding = Padding::Same});
  EXPECT_EQ(y.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{45, 39, 66, 50}));
}

TEST(Conv2D, ChannelsAndBias) {
  // One pixel, 2 channels in, 3 out: y = [1,2] x [[1,2,3],[4,5,6]] + bias.
  Tensor x = from_vector(std::vector<float>{1, 2}, {1, 1, 1, 2});
  Tensor w = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {1, 1, 2, 3});
  EXPECT_EQ(conv2d(x, w).to_vector<float>(), (std::vector<float>{9, 12, 15}));
  EXPECT_EQ(conv2d(x, w, tensor({1, -1, 0})).to_vector<float>(), (std::vector<float>{10, 11, 15}));
  // An undefined bias means none.
  EXPECT_EQ(conv2d(x, w, Tensor()).to_vector<float>(), (std::vector<float>{9, 12, 15}));
}

TEST(Conv2D, Dilation2HandComputed) {
  // 5x5 input 1..25, 2x2 ones filter dilated by 2 (taps at offsets 0 and 2), VALID: 3x3 output,
  // y[i][j] = x[i][j] + x[i][j+2] + x[i+2][j] + x[i+2][j+2].
  Tensor x = iota({1, 5, 5, 1});
  Tensor y = conv2d(x, ones({2, 2, 1, 1}), {.dilation_rate = {2, 2}});
  EXPECT_EQ(y.shape(), (Shape{1, 3, 3, 1}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{28, 32, 36, 48, 52, 56, 68, 72, 76}));
}

TEST(Conv2D, ErrorsNameTheShapes) {
  try {
    conv2d(zeros({2, 7, 7, 3}), zeros({3, 3, 4, 4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "conv2d: input channels differ: input [2,7,7,3] has 3, filter [3,3,4,4] expects 4");
  }
  try {
    conv2d(zeros({1, 5, 5, 2}), zeros({3, 3, 2, 4}), zeros({3}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "conv2d: bias must have shape [4] to match filter [3,3,2,4], got [3]");
  }
  try {
    conv2d(zeros({1, 2, 2, 1}), zeros({3, 3, 1, 1}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "conv2d: filter [3,3,1,1] (dilations [1,1]) does not fit in input [1,2,2,1] with VALID padding");
  }
  EXPECT_THROW(conv2d(zeros({5, 5, 1}), zeros({3, 3, 1, 1})), Error);
  EXPECT_THROW(conv2d(zeros({1, 5, 5, 1}), zeros({3, 3, 1, 1}), {.strides = {0, 1}}), Error);
  EXPECT_THROW(conv2d(zeros({1, 5, 5, 1}), zeros({3, 3, 1, 1}), {.strides = {1}}), Error);
}

TEST(Conv2D, FastMatchesReference) {
  manual_seed(20);
  const Padding S = Padding::Same, V = Padding::Valid;
  const std::vector<ConvCase> cases = {
      {{2, 7, 7, 3}, {3, 3, 3, 4}, {{1, 1}, {1, 1}, S}},
      {{2, 7, 7, 3}, {3, 3, 3, 4}, {{2, 2}, {1, 1}, S}},
      {{2, 7, 7, 3}, {3, 3, 3, 4}, {{2, 2}, {1, 1}, V}},
      {{1, 9, 8, 2}, {3, 3, 2, 5}, {{1, 1}, {2, 2}, S}},
      {{1, 9, 8, 2}, {3, 2, 2, 5}, {{2, 1}, {2, 3}, V}},
      {{2, 6, 7, 2}, {3, 1, 2, 3}, {{1, 2}, {1, 1}, S}},   // padding on top only
      {{2, 7, 6, 2}, {2, 4, 2, 3}, {{2, 1}, {1, 2}, S}},   // padding on the left only
      {{3, 7, 7, 4}, {1, 1, 4, 6}, {{1, 1}, {1, 1}, S}},   // pointwise: no im2col
      {{3, 7, 7, 4}, {1, 1, 4, 6}, {{2, 2}, {1, 1}, V}},   // 1x1 but strided
      {{2, 6, 5, 1}, {5, 5, 1, 3}, {{1, 1}, {1, 1}, S}},   // window larger than the padding side
      {{2, 5, 5, 3}, {4, 4, 3, 2}, {{3, 3}, {1, 1}, S}},   // stride 3: rows of the input unused
      {{2, 9, 8, 3}, {3, 3, 3, 4}, {{2, 1}, {2, 1}, S}},   // unit stride along x only (scatter col2im)
      {{4, 32, 32, 32}, {5, 5, 32, 8}, {{1, 1}, {1, 1}, S}},  // several column blocks and threads
      {{1, 40, 40, 16}, {5, 5, 16, 4}, {{1, 1}, {1, 1}, S}},  // one image spans several blocks
      // The two above take the implicit-GEMM kernels (stride 1) in some passes; dilated, all passes
      // stay on im2col's blocks.
      {{4, 32, 32, 32}, {5, 5, 32, 8}, {{1, 1}, {2, 2}, S}},
      {{1, 40, 40, 16}, {5, 5, 16, 4}, {{1, 1}, {2, 1}, S}},
      // Single-channel inputs take the direct kernels: 2 vectors of outputs, a partial second vector,
      // strides and dilations, and more taps than one register chunk holds.
      {{3, 28, 28, 1}, {5, 5, 1, 32}, {{1, 1}, {1, 1}, S}},
      {{2, 9, 11, 1}, {3, 3, 1, 20}, {{2, 1}, {1, 2}, V}},
      {{4, 12, 12, 1}, {7, 7, 1, 6}, {{1, 1}, {1, 1}, S}},
      // Few outputs: the filter gradient vectorised over pixels (LeNet-5's conv1; rows of 28 = 16 + 12),
      // also with stride and dilation along y.
      {{3, 28, 28, 1}, {5, 5, 1, 6}, {{1, 1}, {1, 1}, S}},
      {{2, 13, 20, 1}, {3, 3, 1, 4}, {{2, 1}, {2, 1}, V}},
      {{2, 8, 8, 1}, {3, 3, 1, 33}, {{1, 1}, {1, 1}, S}},  // 33 outputs: back to im2col
      // Stride 1 with several channels takes the implicit-GEMM kernels (conv_implicit.cpp): the cnn's
      // conv2 and LeNet-5's conv2 at a small batch, then channel counts that are not multiples of 16
      // (masked vectors), rows of 7 and 5 pixels (tiles of 6, 8 or 12 pixels wrap across rows and
      // images), even kernels (asymmetric SAME: more padding after), VALID, and more than 64 outputs
      // (two blocks of columns).
      {{2, 14, 14, 32}, {5, 5, 32, 64}, {{1, 1}, {1, 1}, S}},
      {{3, 14, 14, 6}, {5, 5, 6, 16}, {{1, 1}, {1, 1}, V}},
      {{3, 9, 7, 20}, {3, 3, 20, 24}, {{1, 1}, {1, 1}, S}},
      {{2, 8, 10, 16}, {4, 4, 16, 40}, {{1, 1}, {1, 1}, S}},
      {{2, 6, 5, 17}, {2, 3, 17, 70}, {{1, 1}, {1, 1}, S}},
      {{1, 5, 11, 48}, {3, 5, 48, 16}, {{1, 1}, {1, 1}, V}},
      {{2, 7, 9, 33}, {4, 2, 33, 8}, {{1, 1}, {1, 1}, S}},
      // Many small images: each thread pads them into a ring of a few slots (as many as 64
      // consecutive pixels can span), which wraps around; with 70 outputs the second block of
      // columns finds the first images gone and pads them again.
      {{40, 3, 3, 16}, {3, 3, 16, 70}, {{1, 1}, {1, 1}, S}},
      {{64, 4, 2, 20}, {2, 2, 20, 24}, {{1, 1}, {1, 1}, V}},
  };
  for (const auto& c : cases) {
    Tensor x = random_normal(c.x), w = random_normal(c.w), b = random_normal({c.w[3]});
    const Attrs a = attrs_of(c.opts);
    Tensor y = conv2d(x, w, c.opts);
    EXPECT_LT(max_abs_diff(y, run_reference("conv2d", {x, w}, a)), 1e-3) << describe(c);
    Tensor yb = conv2d(x, w, b, c.opts);
    EXPECT_LT(max_abs_diff(yb, run_reference("conv2d", {x, w, b}, a)), 1e-3) << describe(c) << " with bias";
    // relu inside the kernel: equal to relu of the same convolution, and to the reference's.
    Conv2DAttrs with_relu = c.opts;
    with_relu.relu = true;
    Tensor yr = conv2d(x, w, b, with_relu);
    EXPECT_EQ(max_abs_diff(yr, relu(yb)), 0.0) << describe(c) << " with bias and relu";
    EXPECT_LT(max_abs_diff(yr, run_reference("conv2d", {x, w, b}, Attrs(a).set("relu", true))), 1e-3)
        << describe(c) << " with bias and relu (reference)";

    Tensor dy = random_normal(y.shape());
    const Attrs ai = Attrs(a).set("input_shape", c.x);
    EXPECT_LT(max_abs_diff(run("conv2d_backprop_input", {dy, w}, ai), run_reference("conv2d_backprop_input", {dy, w}, ai)),
              1e-3)
        << describe(c) << " backprop input";
    const Attrs af = Attrs(a).set("filter_shape", c.w);
    EXPECT_LT(max_abs_diff(run("conv2d_backprop_filter", {x, dy}, af), run_reference("conv2d_backprop_filter", {x, dy}, af)),
              3e-3)
        << describe(c) << " backprop filter";
  }
}

TEST(Conv2D, GradientOfFilterOnlyWhenInputIsData) {
  // x is data (no gradient wanted): d sum(conv(x, w)) / dw = the sum of each tap's input values.
  Tensor x = iota({1, 3, 3, 1});
  Tensor w = zeros({2, 2, 1, 1}).requires_grad_();
  auto g = grad(sum(conv2d(x, w)), {w});
  // Tap (0,0) sees x[0..1][0..1] = 1+2+4+5; (0,1): 2+3+5+6; (1,0): 4+5+7+8; (1,1): 5+6+8+9.
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{12, 16, 24, 28}));
}

// ---- conv2d gradients ----

TEST(Grad, Conv2DSameStride2) {
  manual_seed(21);
  Tensor x = random_normal({2, 7, 7, 3}), w = random_normal({3, 3, 3, 4}), b = random_normal({4});
  const Conv2DAttrs o{.strides = {2, 2}, .padding = Padding::Same};
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, o); }, {x, w});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, b, o); }, {x, w, b});
}

TEST(Grad, Conv2DWithRelu) {
  manual_seed(24);
  Tensor x = random_normal({2, 6, 5, 2}), w = random_normal({3, 2, 2, 3}), b = random_normal({3});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, b, {.padding = Padding::Same, .relu = true}); }, {x, w, b});
  Tensor x1 = random_normal({2, 7, 7, 1}), w1 = random_normal({3, 3, 1, 4});  // the direct single-channel path
  EXPECT_GRAD_MATCHES([&] { return conv2d(x1, w1, {.relu = true}); }, {x1, w1});
}

TEST(Grad, Conv2DValidWithBias) {
  manual_seed(22);
  Tensor x = random_normal({2, 6, 5, 2}), w = random_normal({3, 2, 2, 3}), b = random_normal({3});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, b); }, {x, w, b});
  Tensor w1 = random_normal({1, 1, 2, 3});  // pointwise path
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w1, b); }, {x, w1, b});
}

TEST(Grad, Conv2DDilated) {
  manual_seed(23);
  Tensor x = random_normal({1, 8, 7, 2}), w = random_normal({3, 3, 2, 3});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, {.dilation_rate = {2, 2}, .padding = Padding::Same}); }, {x, w});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, {.strides = {1, 2}, .dilation_rate = {2, 1}}); }, {x, w});
  Tensor w31 = random_normal({3, 1, 2, 3});  // pads rows but not columns
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w31, {.strides = {1, 2}, .padding = Padding::Same}); }, {x, w31});
}

TEST(Grad, Conv2DImplicitGemm) {
  // Stride 1 with 16 input and 8 output channels: all three passes take the implicit-GEMM kernels; an
  // even kernel height pads more rows after than before.
  manual_seed(25);
  Tensor x = random_normal({2, 4, 5, 16}), w = random_normal({2, 3, 16, 8}), b = random_normal({8});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w, b, {.padding = Padding::Same, .relu = true}); }, {x, w, b});
  EXPECT_GRAD_MATCHES([&] { return conv2d(x, w); }, {x, w});
}

TEST(Grad, Conv2DBackpropOps) {
  // The backprops are linear ops with gradients of their own (each other and conv2d).
  manual_seed(24);
  const Attrs a = conv_attrs({2, 2}, {1, 1}, "SAME");
  const Shape xs{2, 5, 5, 3}, ws{3, 3, 3, 2};
  Tensor dy = random_normal({2, 3, 3, 2}), w = random_normal(ws), x = random_normal(xs);
  const Attrs ai = Attrs(a).set("input_shape", xs);
  EXPECT_GRAD_MATCHES([&] { return run("conv2d_backprop_input", {dy, w}, ai); }, {dy, w});
  const Attrs af = Attrs(a).set("filter_shape", ws);
  EXPECT_GRAD_MATCHES([&] { return run("conv2d_backprop_filter", {x, dy}, af); }, {x, dy});
}

// ---- pooling values ----

TEST(Pool2D, ValidHandComputed) {
  Tensor x = iota({1, 4, 4, 1}, 0.0f);  // 0..15
  EXPECT_EQ(max_pool2d(x).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  EXPECT_EQ(avg_pool2d(x).to_vector<float>(), (std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f}));
  // Overlapping 3x3 windows, stride 1.
  Tensor m = max_pool2d(x, {.pool_size = {3, 3}, .strides = {1, 1}});
  EXPECT_EQ(m.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{10, 11, 14, 15}));
}

TEST(Pool2D, SamePaddingIgnoresPaddedCells) {
  // 3x3 input, 2x2 windows, stride 2, SAME: one padded row/column after.
  const Pool2DAttrs same{.padding = Padding::Same};
  Tensor neg = iota({1, 3, 3, 1}) * -1.0f;  // -1..-9: a padded zero would win a max
  EXPECT_EQ(max_pool2d(neg, same).to_vector<float>(), (std::vector<float>{-1, -3, -7, -9}));
  // Averages count real cells only: {1,2,4,5}/4, {3,6}/2, {7,8}/2, {9}/1.
  EXPECT_EQ(avg_pool2d(iota({1, 3, 3, 1}), same).to_vector<float>(), (std::vector<float>{3, 4.5f, 7.5f, 9}));
}

TEST(Pool2D, ChannelsPoolIndependently) {
  Tensor x = from_vector(std::vector<float>{1, 8, 2, 7, 3, 6, 4, 5}, {1, 2, 2, 2});
  EXPECT_EQ(max_pool2d(x).to_vector<float>(), (std::vector<float>{4, 8}));
  EXPECT_EQ(avg_pool2d(x).to_vector<float>(), (std::vector<float>{2.5f, 6.5f}));
}

TEST(Pool2D, MaxGradientGoesToTheFirstMaximum) {
  Tensor x = from_vector(std::vector<float>{1, 3, 3, 2}, {1, 2, 2, 1}).requires_grad_();
  auto g = grad(sum(max_pool2d(x)), {x});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{0, 1, 0, 0}));
}

TEST(Pool2D, AvgGradientSpreadsOverRealCells) {
  Tensor x = iota({1, 3, 3, 1}).requires_grad_();
  auto g = grad(sum(avg_pool2d(x, {.padding = Padding::Same})), {x});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{0.25f, 0.25f, 0.5f, 0.25f, 0.25f, 0.5f, 0.5f, 0.5f, 1.0f}));
}

TEST(Pool2D, ErrorsNameTheShapes) {
  try {
    max_pool2d(zeros({1, 1, 3, 2}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "max_pool2d: window [2,2] does not fit in input [1,1,3,2] with VALID padding");
  }
  EXPECT_THROW(avg_pool2d(zeros({4, 4, 1})), Error);
  EXPECT_THROW(avg_pool2d(zeros({1, 4, 4, 1}), {.pool_size = {2, 0}}), Error);
}

TEST(Pool2D, MaxPoolNaNFollowsTheReference) {
  // A NaN first in its window stays; a NaN later in a window never replaces the running maximum.
  std::vector<float> v(static_cast<std::size_t>(2 * 4 * 6), 1.0f);
  v[0] = std::nanf("");       // window 0, first element, channel 0
  v[6 + 1] = std::nanf("");   // window 0, second element, channel 1
  v[12 + 2] = 5.0f;           // window 1, first element, channel 2
  Tensor x = from_vector(v).reshape({1, 2, 4, 6});
  const Attrs a = pool_attrs({2, 2}, {2, 2}, "VALID");
  const auto fast = run("max_pool2d", {x}, a).to_vector<float>();
  const auto ref = run_reference("max_pool2d", {x}, a).to_vector<float>();
  ASSERT_EQ(fast.size(), ref.size());
  for (std::size_t i = 0; i < fast.size(); ++i)
    EXPECT_TRUE(fast[i] == ref[i] || (std::isnan(fast[i]) && std::isnan(ref[i]))) << i << ": " << fast[i] << " vs " << ref[i];
  EXPECT_TRUE(std::isnan(fast[0]));
  EXPECT_EQ(fast[1], 1.0f);
  EXPECT_EQ(fast[6 + 2], 5.0f);
}

TEST(Pool2D, FastMatchesReference) {
  manual_seed(30);
  struct Case {
    Shape x;
    Ints ksize, strides;
    const char* padding;
  };
  const std::vector<Case> cases = {
      {{2, 7, 7, 3}, {2, 2}, {2, 2}, "SAME"},  {{2, 7, 7, 3}, {2, 2}, {2, 2}, "VALID"},
      {{2, 8, 9, 5}, {3, 3}, {2, 2}, "SAME"},  {{2, 8, 9, 5}, {3, 3}, {1, 1}, "VALID"},
      {{1, 6, 7, 4}, {3, 2}, {1, 3}, "SAME"},  {{3, 5, 5, 1}, {5, 5}, {1, 1}, "SAME"},
      {{50, 28, 28, 32}, {2, 2}, {2, 2}, "SAME"},  // MNIST size: threaded over output rows
      {{8, 16, 16, 16}, {3, 3}, {2, 2}, "SAME"},   // overlapping windows: gradients threaded over images
      {{3, 4, 7, 20}, {2, 3}, {2, 3}, "VALID"},    // tiling windows, 16 + 4 channels, a column uncovered
      {{4, 28, 28, 6}, {2, 2}, {2, 2}, "VALID"},   // LeNet-5: the vectorised 2x2 path, 6 of 16 lanes
      {{2, 9, 8, 20}, {2, 2}, {2, 2}, "VALID"},    // 2x2, 16 + 4 channels, the last row uncovered
  };
  for (const auto& c : cases) {
    // Truncated to halves: windows with tied maxima, where the first one must get the gradient.
    Tensor x = cast(cast(random_normal(c.x) * 2.0f, DType::Int32), DType::Float32) / 2.0f;
    const Attrs a = pool_attrs(c.ksize, c.strides, c.padding);
    const std::string what = to_string(c.x) + " ksize " + to_string(c.ksize) + " strides " + to_string(c.strides) + " " +
                             c.padding;
    Tensor ym = run("max_pool2d", {x}, a);
    EXPECT_EQ(max_abs_diff(ym, run_reference("max_pool2d", {x}, a)), 0.0) << what;
    Tensor ya = run("avg_pool2d", {x}, a);
    EXPECT_LT(max_abs_diff(ya, run_reference("avg_pool2d", {x}, a)), 1e-5) << what;

    Tensor dy = random_normal(ym.shape()), gx = random_normal(c.x);
    EXPECT_LT(max_abs_diff(run("max_pool2d_grad", {x, dy}, a), run_reference("max_pool2d_grad", {x, dy}, a)), 1e-5)
        << what;
    EXPECT_EQ(max_abs_diff(run("max_pool2d_grad_grad", {x, gx}, a), run_reference("max_pool2d_grad_grad", {x, gx}, a)),
              0.0)
        << what;
    const Attrs ai = Attrs(a).set("input_shape", c.x);
    EXPECT_LT(max_abs_diff(run("avg_pool2d_grad", {dy}, ai), run_reference("avg_pool2d_grad", {dy}, ai)), 1e-5) << what;
  }
}

// ---- pooling gradients ----

TEST(Grad, MaxPool2D) {
  Tensor x = distinct_values({2, 7, 7, 3}, 31);
  EXPECT_GRAD_MATCHES([&] { return max_pool2d(x, {.padding = Padding::Same}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return max_pool2d(x, {.padding = Padding::Valid}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return max_pool2d(x, {.pool_size = {3, 3}, .strides = {2, 2}, .padding = Padding::Same}); },
                      {x});
}

TEST(Grad, AvgPool2D) {
  manual_seed(32);
  Tensor x = random_normal({2, 7, 7, 3});
  EXPECT_GRAD_MATCHES([&] { return avg_pool2d(x, {.padding = Padding::Same}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return avg_pool2d(x, {.padding = Padding::Valid}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return avg_pool2d(x, {.pool_size = {3, 3}, .strides = {2, 2}, .padding = Padding::Same}); },
                      {x});
}

TEST(Grad, PoolGradientOps) {
  // The pooling gradients are linear in dy and differentiable in it (second-order gradients).
  manual_seed(33);
  const Attrs a = pool_attrs({3, 3}, {2, 2}, "SAME");
  Tensor x = distinct_values({1, 5, 5, 2}, 34);
  Tensor dy = random_normal({1, 3, 3, 2}), gx = random_normal({1, 5, 5, 2});
  EXPECT_GRAD_MATCHES([&] { return run("max_pool2d_grad", {x.detach(), dy}, a); }, {dy});
  EXPECT_GRAD_MATCHES([&] { return run("max_pool2d_grad_grad", {x.detach(), gx}, a); }, {gx});
  const Attrs ai = Attrs(a).set("input_shape", Shape{1, 5, 5, 2});
  EXPECT_GRAD_MATCHES([&] { return run("avg_pool2d_grad", {dy}, ai); }, {dy});
}
