// The augmentation transforms, pixel by pixel: each test redraws the documented random numbers
// (per image, in order, from Generator(seed)) and computes the expected pixels independently.
#include <gtest/gtest.h>

#include <cmath>
#include <array>
#include <string>
#include <vector>

#include "synapse/data.h"
#include "synapse/random.h"

using namespace synapse;
using namespace synapse::data;

namespace {

// float32 [n, h, w, c] with distinct values f(i, y, x, k).
template <class F> Tensor batch(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, F f) {
  Tensor t = Tensor::empty({n, h, w, c}, DType::Float32);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        for (std::int64_t k = 0; k < c; ++k) p[((i * h + y) * w + x) * c + k] = static_cast<float>(f(i, y, x, k));
  return t;
}

float at(const Tensor& t, std::int64_t i, std::int64_t y, std::int64_t x, std::int64_t k) {
  return t.data<float>()[((i * t.dim(1) + y) * t.dim(2) + x) * t.dim(3) + k];
}

Tensor distinct(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c) {
  return batch(n, h, w, c, [](auto i, auto y, auto x, auto k) { return 1 + i * 1000 + y * 100 + x * 10 + k; });
}

std::vector<float> uniforms(std::int64_t n, float lo, float hi, std::uint64_t seed) {
  Generator g(seed);
  std::vector<float> v;
  for (std::int64_t i = 0; i < n; ++i) v.push_back(lo + (hi - lo) * g.uniform());
  return v;
}

}  // namespace

TEST(Augment, RandomCropPadsWithZerosAndCutsTheDrawnWindow) {
  const Tensor x = distinct(6, 5, 4, 2);
  const Tensor y = random_crop(x, 3, 4, 2, 11);
  ASSERT_EQ(y.shape(), (Shape{6, 3, 4, 2}));
  Generator g(11);
  int moved = 0;
  for (std::int64_t i = 0; i < 6; ++i) {
    const auto oy = static_cast<std::int64_t>(g.next_u64() % (5 + 4 - 3 + 1)) - 2;
    const auto ox = static_cast<std::int64_t>(g.next_u64() % (4 + 4 - 4 + 1)) - 2;
    moved += oy != 0 || ox != 0;
    for (std::int64_t r = 0; r < 3; ++r)
      for (std::int64_t c = 0; c < 4; ++c)
        for (std::int64_t k = 0; k < 2; ++k) {
          const std::int64_t sy = r + oy, sx = c + ox;
          const float want = sy >= 0 && sy < 5 && sx >= 0 && sx < 4 ? at(x, i, sy, sx, k) : 0.0f;
          ASSERT_EQ(at(y, i, r, c, k), want) << i << " " << r << " " << c << " " << k;
        }
  }
  EXPECT_GT(moved, 0);
  EXPECT_EQ(random_crop(x, 3, 4, 2, 11).to_vector<float>(), y.to_vector<float>());  // same seed, same batch
}

TEST(Augment, RandomFlipMirrorsTheDrawnImages) {
  const Tensor x = distinct(8, 3, 4, 2);
  const Tensor y = random_flip(x, 3, true, true);
  Generator g(3);
  int flipped = 0;
  for (std::int64_t i = 0; i < 8; ++i) {
    const bool fh = (g.next_u64() & 1) != 0, fv = (g.next_u64() & 1) != 0;
    flipped += fh + fv;
    for (std::int64_t r = 0; r < 3; ++r)
      for (std::int64_t c = 0; c < 4; ++c)
        for (std::int64_t k = 0; k < 2; ++k)
          ASSERT_EQ(at(y, i, r, c, k), at(x, i, fv ? 2 - r : r, fh ? 3 - c : c, k)) << i;
  }
  EXPECT_GT(flipped, 0);
  EXPECT_LT(flipped, 16);
}

TEST(Augment, BrightnessAndContrastPerImage) {
  const Tensor x = batch(3, 2, 3, 3, [](auto i, auto r, auto q, auto k) { return 0.1 * i + 0.05 * r + 0.02 * q + 0.3 * k; });
  const Tensor b = random_brightness(x, 0.2f, 4);
  const auto d = uniforms(3, -0.2f, 0.2f, 4);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 18; ++j)
      ASSERT_FLOAT_EQ(b.data<float>()[i * 18 + j], x.data<float>()[i * 18 + j] + d[static_cast<std::size_t>(i)]);
  const Tensor c = random_contrast(x, 0.2f, 1.8f, 5);
  const auto f = uniforms(3, 0.2f, 1.8f, 5);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t k = 0; k < 3; ++k) {
      double mean = 0;
      for (std::int64_t y = 0; y < 2; ++y)
        for (std::int64_t xx = 0; xx < 3; ++xx) mean += at(x, i, y, xx, k);
      mean /= 6;
      for (std::int64_t y = 0; y < 2; ++y)
        for (std::int64_t xx = 0; xx < 3; ++xx)
          ASSERT_NEAR(at(c, i, y, xx, k), (at(x, i, y, xx, k) - mean) * f[static_cast<std::size_t>(i)] + mean, 1e-6);
    }
}

TEST(Augment, SaturationScalesTheDistanceFromGrey) {
  // Pixels: grey (unchanged), pure red, and (0.5, 0.25, 0): hue 1/12, saturation 1, value 0.5.
  const std::vector<std::vector<float>> px{{0.3f, 0.3f, 0.3f}, {1, 0, 0}, {0.5f, 0.25f, 0}};
  const Tensor x = batch(2, 1, 3, 3, [&](auto, auto, auto xx, auto k) { return px[static_cast<std::size_t>(xx)][static_cast<std::size_t>(k)]; });
  const Tensor y = random_saturation(x, 0.1f, 0.9f, 8);
  const auto f = uniforms(2, 0.1f, 0.9f, 8);
  for (std::int64_t i = 0; i < 2; ++i) {
    const float s = f[static_cast<std::size_t>(i)];
    const std::vector<std::vector<float>> want{{0.3f, 0.3f, 0.3f}, {1, 1 - s, 1 - s}, {0.5f, 0.5f - 0.25f * s, 0.5f - 0.5f * s}};
    for (std::int64_t xx = 0; xx < 3; ++xx)
      for (std::int64_t k = 0; k < 3; ++k)
        ASSERT_NEAR(at(y, i, 0, xx, k), want[static_cast<std::size_t>(xx)][static_cast<std::size_t>(k)], 1e-6) << i << xx << k;
  }
  // Above 1 the saturation is clipped: pure red stays pure red.
  EXPECT_EQ(random_saturation(x, 2.0f, 3.0f, 8).to_vector<float>()[3], 1.0f);
}

TEST(Augment, HueRotatesAroundTheColourWheel) {
  // Pure red shifted by d turns has hue d (mod 1); the textbook sector formula for s = v = 1.
  auto wheel = [](float h) -> std::vector<float> {
    const float t = h * 6;
    const int sector = static_cast<int>(std::floor(t)) % 6;
    const float f = t - std::floor(t);
    switch (sector) {
      case 0: return {1, f, 0};
      case 1: return {1 - f, 1, 0};
      case 2: return {0, 1, f};
      case 3: return {0, 1 - f, 1};
      case 4: return {f, 0, 1};
      default: return {1, 0, 1 - f};
    }
  };
  const Tensor x = batch(5, 1, 1, 3, [](auto, auto, auto, auto k) { return k == 0 ? 1.0 : 0.0; });
  const Tensor y = random_hue(x, 0.5f, 21);
  const auto d = uniforms(5, -0.5f, 0.5f, 21);
  for (std::int64_t i = 0; i < 5; ++i) {
    const float h = d[static_cast<std::size_t>(i)] < 0 ? d[static_cast<std::size_t>(i)] + 1 : d[static_cast<std::size_t>(i)];
    const auto want = wheel(h);
    for (std::int64_t k = 0; k < 3; ++k) ASSERT_NEAR(at(y, i, 0, 0, k), want[static_cast<std::size_t>(k)], 1e-5) << i << " " << h;
  }
  EXPECT_EQ(random_hue(x, 0.0f, 21).to_vector<float>(), x.to_vector<float>());
}

TEST(Augment, PerImageStandardization) {
  const Tensor x = batch(2, 3, 2, 2, [](auto i, auto r, auto xx, auto k) { return i == 1 ? 0.7 : 0.1 * r + 0.3 * xx * xx + 0.05 * k; });
  const Tensor y = per_image_standardization(x);
  double mean = 0, sq = 0;
  for (int j = 0; j < 12; ++j) mean += x.data<float>()[j], sq += x.data<float>()[j] * x.data<float>()[j];
  mean /= 12;
  const double sd = std::max(std::sqrt(sq / 12 - mean * mean), 1 / std::sqrt(12.0));  // TF's floor
  for (int j = 0; j < 12; ++j) ASSERT_NEAR(y.data<float>()[j], (x.data<float>()[j] - mean) / sd, 1e-5);
  for (int j = 12; j < 24; ++j) ASSERT_EQ(y.data<float>()[j], 0.0f);  // a flat image: std floored at 1/sqrt(12)
}

// A linear ramp is reproduced exactly by bilinear sampling: rotation and zoom are checked against the
// ramp at the mapped coordinates, and against 0 where the source lies wholly outside.
void check_affine(const Tensor& x, const Tensor& y, const std::vector<std::array<float, 4>>& m) {
  const std::int64_t h = x.dim(1), w = x.dim(2);
  const float cy = static_cast<float>(h - 1) / 2, cx = static_cast<float>(w - 1) / 2;
  int inside = 0, outside = 0;
  for (std::size_t i = 0; i < m.size(); ++i)
    for (std::int64_t r = 0; r < h; ++r)
      for (std::int64_t c = 0; c < w; ++c) {
        const float dy = static_cast<float>(r) - cy, dx = static_cast<float>(c) - cx;
        const float sy = m[i][0] * dy + m[i][1] * dx + cy, sx = m[i][2] * dy + m[i][3] * dx + cx;
        const float got = at(y, static_cast<std::int64_t>(i), r, c, 0);
        if (sy >= 0 && sy <= static_cast<float>(h - 1) - 1e-3f && sx >= 0 && sx <= static_cast<float>(w - 1) - 1e-3f) {
          ++inside;
          ASSERT_NEAR(got, 1 + 2 * sy + 0.5f * sx, 2e-4) << i << " " << r << " " << c;
        } else if (sy <= -1 || sy >= static_cast<float>(h) || sx <= -1 || sx >= static_cast<float>(w)) {
          ++outside;
          ASSERT_EQ(got, 0.0f);
        }
      }
  EXPECT_GT(inside, 0);
}

TEST(Augment, RotationTurnsAboutTheCentre) {
  const Tensor x = batch(4, 9, 7, 1, [](auto, auto y, auto xx, auto) { return 1 + 2 * y + 0.5 * xx; });
  const Tensor y = random_rotation(x, 0.6f, 13);
  std::vector<std::array<float, 4>> m;
  for (float t : uniforms(4, -0.6f, 0.6f, 13)) m.push_back({std::cos(t), -std::sin(t), std::sin(t), std::cos(t)});
  check_affine(x, y, m);
  EXPECT_EQ(random_rotation(x, 0.0f, 13).to_vector<float>(), x.to_vector<float>());
}

TEST(Augment, ZoomScalesAboutTheCentre) {
  const Tensor x = batch(4, 8, 8, 1, [](auto, auto y, auto xx, auto) { return 1 + 2 * y + 0.5 * xx; });
  const Tensor y = random_zoom(x, 0.5f, 2.0f, 17);
  std::vector<std::array<float, 4>> m;
  for (float z : uniforms(4, 0.5f, 2.0f, 17)) m.push_back({1 / z, 0, 0, 1 / z});
  check_affine(x, y, m);
}

TEST(Augment, ComposeChainsStagesWithTheirOwnSeeds) {
  const Tensor x = distinct(4, 6, 6, 3);
  const Transform t = compose({augment::random_crop(6, 6, 2), augment::random_flip(), augment::random_brightness(0.1f)});
  const Tensor a = t(x, 9), b = t(x, 9), c = t(x, 10);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  // Stage k runs with its own seed: redo the chain by hand with the same seeds and get the same pixels.
  const Transform crop_only = compose({augment::random_crop(6, 6, 2)});
  EXPECT_EQ(crop_only(x, 9).to_vector<float>(), compose({augment::random_crop(6, 6, 2), augment::random_flip(false, false)})(x, 9).to_vector<float>());
}

TEST(Augment, BadArgumentsNameTheTransformAndTheValue) {
  const Tensor x = distinct(1, 4, 4, 1);
  EXPECT_THROW(random_crop(x, 9, 4, 2, 0), Error);
  EXPECT_THROW(random_saturation(x, 0.5f, 1.5f, 0), Error);  // 1 channel
  EXPECT_THROW(random_hue(distinct(1, 2, 2, 3), 0.7f, 0), Error);
  try {
    random_contrast(x, 2.0f, 1.0f, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("random_contrast: lower 2 must not exceed upper 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(random_flip(Tensor::empty({2, 2}, DType::Float32), 0), Error);
}
