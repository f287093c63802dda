// Local response normalisation: the fast kernels against the references, hand-computed values, the
// numerical gradient check, and the layer; max-pool 3x3 stride 2 SAME (the CIFAR model's pooling).
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {
double max_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return m;
}
Attrs lrn_attrs(std::int64_t r, float bias, float alpha, float beta) {
  return Attrs().set("depth_radius", r).set("bias", bias).set("alpha", alpha).set("beta", beta);
}
}  // namespace

TEST(Lrn, MatchesHandComputedValues) {
  // One row of 4 channels, radius 1, bias 1, alpha 0.5, beta 0.75.
  Tensor x = Tensor::empty({1, 1, 1, 4}, DType::Float32);
  const float v[4] = {1, 2, -1, 3};
  std::copy(v, v + 4, x.data<float>());
  const Tensor y = lrn(x, 1, 1.0f, 0.5f, 0.75f);
  const float sums[4] = {1 + 4, 1 + 4 + 1, 4 + 1 + 9, 1 + 9};
  for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y.data<float>()[j], v[j] / std::pow(1.0f + 0.5f * sums[j], 0.75f)) << j;
}

TEST(Lrn, FastKernelsMatchTheReferences) {
  Generator gen(3);
  for (std::int64_t c : {1, 3, 7, 64}) {
    const Tensor x = random_normal({2, 3, 5, c}, 0.0f, 1.0f, &gen), dy = random_normal({2, 3, 5, c}, 0.0f, 1.0f, &gen);
    // Radii past the channel count (10 > 7) clip the window; the betas with closed forms (0.75, 0.5, 1)
    // and one through pow (0.6).
    for (std::int64_t r : {0, 2, 4, 10}) {
      for (float beta : {0.75f, 0.5f, 1.0f, 0.6f}) {
        const Attrs a = lrn_attrs(r, 1.0f, 0.001f / 9.0f * 50, beta);
        const OpDef& f = op_def("lrn");
        const OpDef& g = op_def("lrn_grad");
        EXPECT_LT(max_diff(apply(f, {x}, a)[0], apply_reference(f, {x}, a)[0]), 1e-5) << c << " " << r << " " << beta;
        EXPECT_LT(max_diff(apply(g, {x, dy}, a)[0], apply_reference(g, {x, dy}, a)[0]), 1e-5) << c << " " << r << " " << beta;
      }
    }
  }
}

TEST(Lrn, GradientCheck) {
  Generator gen(5);
  Tensor x = random_normal({2, 2, 2, 9}, 0.0f, 1.0f, &gen);
  EXPECT_GRAD_MATCHES([&] { return lrn(x, 2, 1.0f, 0.3f, 0.75f); }, {x});
  EXPECT_GRAD_MATCHES([&] { return lrn(x, 4, 2.0f, 1e-2f, 0.5f); }, {x});
}

TEST(Lrn, LayerAppliesItsOptionsAndRefusesBadOnes) {
  auto layer = nn::LocalResponseNormalization(
      nn::LocalResponseNormalizationOptions().depth_radius(4).bias(1.0f).alpha(0.001f / 9.0f).beta(0.75f).name("norm1"));
  EXPECT_EQ(layer->name(), "norm1");
  Generator gen(7);
  const Tensor x = random_normal({2, 4, 4, 16}, 0.0f, 3.0f, &gen);
  EXPECT_EQ((*layer)(x).to_vector<float>(), lrn(x, 4, 1.0f, 0.001f / 9.0f, 0.75f).to_vector<float>());
  EXPECT_EQ(layer->count_parameters(), 0);
  EXPECT_THROW(nn::LocalResponseNormalization(nn::LocalResponseNormalizationOptions().depth_radius(-1)), Error);
  EXPECT_THROW(lrn(Tensor::empty({2, 2}, DType::Int32)), Error);
}

TEST(Lrn, MaxPool3x3Stride2SameAsTensorFlow) {
  // TF SAME: out = ceil(in / 2); pad_total = max((out - 1) * 2 + 3 - in, 0), the smaller half before.
  for (std::int64_t in : {32, 16, 15}) {
    // Distinct values 0.01 apart: the finite differences (eps 1e-3) never change a window's maximum.
    Tensor x = Tensor::empty({2, in, in, 3}, DType::Float32);
    const auto perm = data::permutation(x.numel(), static_cast<std::uint64_t>(in));
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(perm[static_cast<std::size_t>(i)]) * 0.01f;
    Pool2DAttrs a;
    a.pool_size = {3, 3};
    a.strides = {2, 2};
    a.padding = Padding::Same;
    const Tensor y = max_pool2d(x, a);
    const std::int64_t out = (in + 1) / 2, pad = std::max<std::int64_t>((out - 1) * 2 + 3 - in, 0) / 2;
    ASSERT_EQ(y.shape(), (Shape{2, out, out, 3}));
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t i = 0; i < out; ++i)
        for (std::int64_t j = 0; j < out; ++j)
          for (std::int64_t c = 0; c < 3; ++c) {
            float m = -INFINITY;
            for (std::int64_t di = 0; di < 3; ++di)
              for (std::int64_t dj = 0; dj < 3; ++dj) {
                const std::int64_t r = i * 2 - pad + di, q = j * 2 - pad + dj;
                if (r >= 0 && r < in && q >= 0 && q < in) m = std::max(m, x.data<float>()[((n * in + r) * in + q) * 3 + c]);
              }
            ASSERT_EQ(y.data<float>()[((n * out + i) * out + j) * 3 + c], m) << in << " " << i << " " << j;
          }
    EXPECT_GRAD_MATCHES([&] { return max_pool2d(x, a); }, {x});
  }
}
