// The depthwise convolution op (fast kernels against the naive references, gradient checks) and the
// CNN layers of functional.h: DepthwiseConv2D, SeparableConv2D, ReLU(max_value, ...), ZeroPadding2D,
// global pooling, Reshape, Activation by name.
#include <gtest/gtest.h>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::fast_vs_reference;
using synapse::testing::max_abs_diff;

namespace {

Attrs dw_attrs(std::vector<std::int64_t> strides, std::vector<std::int64_t> dil, const char* padding) {
  return Attrs().set("strides", std::move(strides)).set("dilations", std::move(dil)).set("padding", padding);
}

struct Case {
  Shape x, w;
  std::vector<std::int64_t> strides, dilations;
  const char* padding;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c{
      {{2, 9, 8, 16}, {3, 3, 16, 1}, {1, 1}, {1, 1}, "SAME"},   // MobileNet's block: M = 1, stride 1
      {{1, 10, 11, 8}, {3, 3, 8, 1}, {2, 2}, {1, 1}, "SAME"},   // stride 2 (SAME pads after)
      {{2, 7, 7, 3}, {3, 2, 3, 2}, {1, 2}, {1, 1}, "VALID"},    // depth multiplier 2
      {{1, 9, 9, 5}, {3, 3, 5, 3}, {1, 1}, {2, 2}, "SAME"},     // dilation 2, M = 3
      {{3, 6, 5, 4}, {5, 5, 4, 1}, {2, 1}, {1, 1}, "SAME"},     // a window larger than the stride grid
  };
  return c;
}

}  // namespace

TEST(Depthwise, FastKernelsMatchTheReferences) {
  Generator gen(7);
  for (const auto& c : cases()) {
    const Attrs a = dw_attrs(c.strides, c.dilations, c.padding);
    Tensor x = random_normal(c.x, 0, 1, &gen), w = random_normal(c.w, 0, 1, &gen);
    Tensor b = random_normal({c.w[2] * c.w[3]}, 0, 1, &gen);
    EXPECT_LT(fast_vs_reference("depthwise_conv2d", {x, w}, a), 1e-4) << to_string(c.x);
    EXPECT_LT(fast_vs_reference("depthwise_conv2d", {x, w, b}, a), 1e-4) << to_string(c.x);
    const Tensor y = apply1(op_def("depthwise_conv2d"), {x, w}, a);
    Tensor dy = random_normal(y.shape(), 0, 1, &gen);
    EXPECT_LT(fast_vs_reference("depthwise_conv2d_backprop_input", {dy, w}, Attrs(a).set("input_shape", c.x)), 1e-4);
    EXPECT_LT(fast_vs_reference("depthwise_conv2d_backprop_filter", {x, dy}, Attrs(a).set("filter_shape", c.w)), 1e-3);
  }
}

TEST(Depthwise, ValuesByHand) {
  // One 3x3 image, 2 channels, a 2x2 filter per channel, VALID: each channel convolved on its own.
  Tensor x = from_vector(std::vector<float>{1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60, 7, 70, 8, 80, 9, 90}, {1, 3, 3, 2});
  Tensor w = from_vector(std::vector<float>{1, -1, 0, 0, 0, 0, 1, 2}, {2, 2, 2, 1});  // ch0: x00 + x11; ch1: -x00 + 2 x11 (channels interleaved)
  Tensor y = depthwise_conv2d(x, w);
  ASSERT_EQ(y.shape(), (Shape{1, 2, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{6, 90, 8, 100, 12, 120, 14, 130}));
  // The depth multiplier's channel order is c*M + m (TensorFlow's).
  Tensor w2 = from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2});
  EXPECT_EQ(depthwise_conv2d(slice(x, {0, 0, 0, 0}, {1, 1, 1, 2}), w2).to_vector<float>(),
            (std::vector<float>{1, 2, 30, 40}));
}

TEST(Depthwise, GradientsMatchFiniteDifferences) {
  Generator gen(11);
  for (const auto& c : cases()) {
    if (c.x[0] * c.x[1] * c.x[2] * c.x[3] > 400) continue;  // small cases keep the check quick
    Conv2DAttrs o{.strides = c.strides, .dilation_rate = c.dilations,
                  .padding = std::string(c.padding) == "SAME" ? Padding::Same : Padding::Valid};
    Tensor x = random_normal(c.x, 0, 1, &gen), w = random_normal(c.w, 0, 1, &gen);
    Tensor b = random_normal({c.w[2] * c.w[3]}, 0, 1, &gen);
    EXPECT_GRAD_MATCHES([&] { return depthwise_conv2d(x, w, b, o); }, {x, w, b});
  }
  // The backprops' own gradients (second derivatives).
  const Attrs a = dw_attrs({2, 1}, {1, 1}, "SAME");
  Tensor x = random_normal({1, 5, 4, 3}, 0, 1, &gen), w = random_normal({3, 3, 3, 2}, 0, 1, &gen);
  Tensor dy = random_normal(apply1(op_def("depthwise_conv2d"), {x, w}, a).shape(), 0, 1, &gen);
  EXPECT_GRAD_MATCHES(
      [&] { return apply1(op_def("depthwise_conv2d_backprop_input"), {dy, w}, Attrs(a).set("input_shape", x.shape())); },
      {dy, w});
  EXPECT_GRAD_MATCHES(
      [&] { return apply1(op_def("depthwise_conv2d_backprop_filter"), {x, dy}, Attrs(a).set("filter_shape", w.shape())); },
      {x, dy});
}

TEST(Depthwise, BadShapesNameTheProblem) {
  const std::string e = error_of([] { depthwise_conv2d(zeros({1, 5, 5, 3}), zeros({3, 3, 4, 1})); });
  EXPECT_NE(e.find("input channels differ"), std::string::npos) << e;
  const std::string b = error_of([] { depthwise_conv2d(zeros({1, 5, 5, 3}), zeros({3, 3, 3, 2}), zeros({3})); });
  EXPECT_NE(b.find("bias must have shape [6]"), std::string::npos) << b;
}

TEST(CnnLayers, DepthwiseAndSeparableLayers) {
  Generator gen(3);
  auto dw = nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).depth_multiplier(2).padding(Padding::Same).strides({2, 2}));
  dw->set_generator(&gen);
  Tensor x = random_normal({2, 8, 8, 4}, 0, 1, &gen);
  Tensor y = (*dw)(x);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 4, 8}));
  EXPECT_EQ(dw->name(), "depthwise_conv2d");
  EXPECT_EQ(dw->state_dict().at("depthwise_kernel").shape(), (Shape{3, 3, 4, 2}));
  EXPECT_EQ(dw->state_dict().at("bias").shape(), (Shape{8}));

  auto sep = nn::SeparableConv2D(nn::SeparableConv2DOptions(5, 3).padding(Padding::Same));
  sep->set_generator(&gen);
  Tensor s = (*sep)(x);
  EXPECT_EQ(s.shape(), (Shape{2, 8, 8, 5}));
  // = depthwise then a 1x1 convolution plus bias.
  const auto st = sep->state_dict();
  Tensor want = conv2d(depthwise_conv2d(x, st.at("depthwise_kernel"), {}, {.padding = Padding::Same}),
                       st.at("pointwise_kernel"), st.at("bias"));
  EXPECT_LT(max_abs_diff(s, want), 1e-6);
  EXPECT_GRAD_MATCHES([&] { return (*sep)(x); }, {x, st.at("depthwise_kernel"), st.at("pointwise_kernel")});
}

TEST(CnnLayers, ReLUVariants) {
  Tensor x = from_vector(std::vector<float>{-3, -1, 0.5f, 2, 7}, {5});
  EXPECT_EQ((*nn::ReLU6())(x).to_vector<float>(), (std::vector<float>{0, 0, 0.5f, 2, 6}));
  auto leaky = nn::ReLU(nn::ReLUOptions().negative_slope(0.5f).threshold(1.0f).max_value(5.0f));
  EXPECT_EQ((*leaky)(x).to_vector<float>(), (std::vector<float>{-2, -1, -0.25f, 2, 5}));
  EXPECT_EQ(nn::ReLU6()->type(), "ReLU");
  Tensor xs = from_vector(std::vector<float>{-2.5f, -0.7f, 0.3f, 1.9f, 3.3f, 6.4f}, {6});
  EXPECT_GRAD_MATCHES([&] { return (*leaky)(xs); }, {xs});
  EXPECT_GRAD_MATCHES([&] { return (*nn::ReLU6())(xs); }, {xs});
  auto swish = nn::ActivationByName("swish");
  EXPECT_NEAR((*swish)(x).to_vector<float>()[3], 2.0f / (1.0f + std::exp(-2.0f)), 1e-6);
  EXPECT_EQ((*nn::ActivationByName("relu6"))(x).to_vector<float>(), (std::vector<float>{0, 0, 0.5f, 2, 6}));
  EXPECT_EQ(error_of([] { nn::ActivationByName("gelu"); }),
            "Activation: unsupported activation 'gelu' (supported: linear, relu, relu6, sigmoid, tanh, softmax, swish)");
}

TEST(CnnLayers, PaddingPoolingReshape) {
  Tensor x = arange(0, 2 * 2 * 3 * 2).reshape({2, 2, 3, 2});
  Tensor p = (*nn::ZeroPadding2D({{1, 0}, {0, 2}}))(x);
  EXPECT_EQ(p.shape(), (Shape{2, 3, 5, 2}));
  EXPECT_EQ(sum(p).item<float>(), sum(x).item<float>());
  EXPECT_EQ(p.to_vector<float>()[0], 0.0f);
  Tensor g = (*nn::GlobalAveragePooling2D())(x);
  EXPECT_EQ(g.shape(), (Shape{2, 2}));
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{5, 6, 17, 18}));
  EXPECT_EQ((*nn::GlobalMaxPooling2D(true))(x).shape(), (Shape{2, 1, 1, 2}));
  EXPECT_EQ((*nn::GlobalMaxPooling2D())(x).to_vector<float>(), (std::vector<float>{10, 11, 22, 23}));
  EXPECT_EQ((*nn::Reshape({3, -1}))(x).shape(), (Shape{2, 3, 4}));
  const std::string e = error_of([&] { (*nn::Reshape({5}, "r"))(x); });
  EXPECT_EQ(e, "Reshape 'r': cannot reshape [2,2,3,2] to (None, 5): 12 elements per example, target has 5");
}
