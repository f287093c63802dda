// Seeded, batched augmentation of float32 images [N, H, W, C], after tf.image and Keras's preprocessing
// layers. Every transform draws its random numbers per image, in image order, from Generator(seed):
// integers as next_u64() % choices, reals as lo + (hi - lo) * uniform(). One thread: these run on the
// trainer's prefetch thread, beside the training step's threads (see random_translate).
#include <algorithm>
#include <array>
#include <cmath>

#include "core/check.h"
#include "synapse/data.h"
#include "synapse/random.h"

namespace synapse::data {
namespace {

struct Batch {
  std::int64_t n, h, w, c;
  std::int64_t image() const { return h * w * c; }
};

Batch check_batch(const Tensor& x, const char* who, bool rgb = false) {
  SYN_CHECK(x.defined() && x.ndim() == 4 && x.dtype() == DType::Float32,
            "{}: expected float32 images [N, H, W, C], got {} {}", who, x.defined() ? dtype_name(x.dtype()) : "undefined",
            x.defined() ? to_string(x.shape()) : "");
  SYN_CHECK(!rgb || x.dim(3) == 3, "{}: expected RGB images (3 channels), got shape {}", who, to_string(x.shape()));
  return {x.dim(0), x.dim(1), x.dim(2), x.dim(3)};
}

void check_range(float lower, float upper, const char* who) {
  SYN_CHECK(lower <= upper, "{}: lower {} must not exceed upper {}", who, lower, upper);
}

// One real per image, uniform in [lo, hi].
std::vector<float> draws(std::int64_t n, float lo, float hi, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& d : v) d = lo + (hi - lo) * gen.uniform();
  return v;
}

// ---- RGB <-> HSV (tf.image.rgb_to_hsv / hsv_to_rgb; h in turns [0, 1)) ----
void rgb_to_hsv(const float* rgb, float& h, float& s, float& v) {
  const float r = rgb[0], g = rgb[1], b = rgb[2];
  const float mx = std::max({r, g, b}), mn = std::min({r, g, b}), range = mx - mn;
  v = mx;
  s = mx > 0.0f ? range / mx : 0.0f;
  if (range <= 0.0f) {
    h = 0.0f;
    return;
  }
  float hh;
  if (mx == r) {
    hh = (g - b) / range;
  } else if (mx == g) {
    hh = 2.0f + (b - r) / range;
  } else {
    hh = 4.0f + (r - g) / range;
  }
  hh /= 6.0f;
  h = hh < 0.0f ? hh + 1.0f : hh;
}

void hsv_to_rgb(float h, float s, float v, float* rgb) {
  // Each channel: v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6 for n = 5, 3, 1.
  for (int i = 0; i < 3; ++i) {
    const float k = std::fmod(static_cast<float>(5 - 2 * i) + 6.0f * h, 6.0f);
    rgb[i] = v - v * s * std::clamp(std::min(k, 4.0f - k), 0.0f, 1.0f);
  }
}

// Applies fn(h, s) to every pixel's hue and saturation, image i using param[i].
template <class Fn> Tensor map_hsv(const Tensor& images, const std::vector<float>& param, Fn fn) {
  Tensor out = images.clone();
  float* p = out.data<float>();
  const std::int64_t n = images.dim(0), px = images.dim(1) * images.dim(2);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < px; ++j) {
      float* rgb = p + (i * px + j) * 3;
      float h, s, v;
      rgb_to_hsv(rgb, h, s, v);
      fn(param[static_cast<std::size_t>(i)], h, s);
      hsv_to_rgb(h, s, v, rgb);
    }
  return out;
}

// Output pixel p of image i samples the input at m[i] (p - centre) + centre, bilinearly; neighbours
// outside the image count as 0. m holds a 2x2 matrix per image acting on (y, x).
Tensor affine(const Tensor& images, const std::vector<std::array<float, 4>>& m) {
  const Batch b{images.dim(0), images.dim(1), images.dim(2), images.dim(3)};
  Tensor out = Tensor::empty(images.shape(), DType::Float32);
  const float* in = images.data<float>();
  float* o = out.data<float>();
  const float cy = static_cast<float>(b.h - 1) * 0.5f, cx = static_cast<float>(b.w - 1) * 0.5f;
  for (std::int64_t i = 0; i < b.n; ++i) {
    const auto& a = m[static_cast<std::size_t>(i)];
    const float* src = in + i * b.image();
    auto at = [&](std::int64_t y, std::int64_t x, std::int64_t k) {
      return y < 0 || y >= b.h || x < 0 || x >= b.w ? 0.0f : src[(y * b.w + x) * b.c + k];
    };
    for (std::int64_t y = 0; y < b.h; ++y)
      for (std::int64_t x = 0; x < b.w; ++x) {
        const float dy = static_cast<float>(y) - cy, dx = static_cast<float>(x) - cx;
        const float sy = a[0] * dy + a[1] * dx + cy, sx = a[2] * dy + a[3] * dx + cx;
        const float fy0 = std::floor(sy), fx0 = std::floor(sx), fy = sy - fy0, fx = sx - fx0;
        const auto y0 = static_cast<std::int64_t>(fy0), x0 = static_cast<std::int64_t>(fx0);
        float* dst = o + ((i * b.h + y) * b.w + x) * b.c;
        for (std::int64_t k = 0; k < b.c; ++k) {
          const float top = at(y0, x0, k) * (1.0f - fx) + at(y0, x0 + 1, k) * fx;
          const float bottom = at(y0 + 1, x0, k) * (1.0f - fx) + at(y0 + 1, x0 + 1, k) * fx;
          dst[k] = top * (1.0f - fy) + bottom * fy;
        }
      }
  }
  return out;
}

// splitmix64 of (seed, stage): independent seeds for the stages of a composition.
std::uint64_t mix(std::uint64_t seed, std::uint64_t stage) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stage + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Transform compose(std::vector<Transform> stages) {
  return [stages = std::move(stages)](const Tensor& images, std::uint64_t seed) {
    Tensor x = images;
    for (std::size_t k = 0; k < stages.size(); ++k) x = stages[k](x, mix(seed, k));
    return x;
  };
}

Tensor random_crop(const Tensor& images, std::int64_t height, std::int64_t width, std::int64_t padding, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_crop");
  SYN_CHECK(padding >= 0, "random_crop: padding must be >= 0, got {}", padding);
  SYN_CHECK(height >= 1 && width >= 1 && height <= b.h + 2 * padding && width <= b.w + 2 * padding,
            "random_crop: a {}x{} window does not fit images {} padded by {}", height, width, to_string(images.shape()),
            padding);
  Generator gen(seed);
  const auto ch = static_cast<std::uint64_t>(b.h + 2 * padding - height + 1);
  const auto cw = static_cast<std::uint64_t>(b.w + 2 * padding - width + 1);
  Tensor out = zeros({b.n, height, width, b.c});
  const float* in = images.data<float>();
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < b.n; ++i) {
    const auto oy = static_cast<std::int64_t>(gen.next_u64() % ch) - padding;
    const auto ox = static_cast<std::int64_t>(gen.next_u64() % cw) - padding;
    // Output (y, x) is input (y + oy, x + ox) when inside.
    const std::int64_t x0 = std::clamp<std::int64_t>(-ox, 0, width), x1 = std::clamp<std::int64_t>(b.w - ox, 0, width);
    for (std::int64_t y = 0; y < height; ++y) {
      const std::int64_t sy = y + oy;
      if (sy < 0 || sy >= b.h || x1 <= x0) continue;
      std::copy(in + ((i * b.h + sy) * b.w + x0 + ox) * b.c, in + ((i * b.h + sy) * b.w + x1 + ox) * b.c,
                o + ((i * height + y) * width + x0) * b.c);
    }
  }
  return out;
}

Tensor random_flip(const Tensor& images, std::uint64_t seed, bool horizontal, bool vertical) {
  const Batch b = check_batch(images, "random_flip");
  Generator gen(seed);
  Tensor out = Tensor::empty(images.shape(), DType::Float32);
  const float* in = images.data<float>();
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < b.n; ++i) {
    const bool fh = horizontal && (gen.next_u64() & 1) != 0;
    const bool fv = vertical && (gen.next_u64() & 1) != 0;
    for (std::int64_t y = 0; y < b.h; ++y)
      for (std::int64_t x = 0; x < b.w; ++x) {
        const std::int64_t sy = fv ? b.h - 1 - y : y, sx = fh ? b.w - 1 - x : x;
        std::copy_n(in + ((i * b.h + sy) * b.w + sx) * b.c, b.c, o + ((i * b.h + y) * b.w + x) * b.c);
      }
  }
  return out;
}

Tensor random_brightness(const Tensor& images, float max_delta, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_brightness");
  SYN_CHECK(max_delta >= 0.0f, "random_brightness: max_delta must be >= 0, got {}", max_delta);
  const std::vector<float> delta = draws(b.n, -max_delta, max_delta, seed);
  Tensor out = images.clone();
  float* p = out.data<float>();
  for (std::int64_t i = 0; i < b.n; ++i)
    for (std::int64_t j = 0; j < b.image(); ++j) p[i * b.image() + j] += delta[static_cast<std::size_t>(i)];
  return out;
}

Tensor random_contrast(const Tensor& images, float lower, float upper, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_contrast");
  check_range(lower, upper, "random_contrast");
  const std::vector<float> f = draws(b.n, lower, upper, seed);
  Tensor out = images.clone();
  float* p = out.data<float>();
  const std::int64_t px = b.h * b.w;
  for (std::int64_t i = 0; i < b.n; ++i)
    for (std::int64_t k = 0; k < b.c; ++k) {
      float* img = p + i * b.image() + k;
      double mean = 0.0;
      for (std::int64_t j = 0; j < px; ++j) mean += img[j * b.c];
      const auto m = static_cast<float>(mean / static_cast<double>(px));
      for (std::int64_t j = 0; j < px; ++j) img[j * b.c] = (img[j * b.c] - m) * f[static_cast<std::size_t>(i)] + m;
    }
  return out;
}

Tensor random_saturation(const Tensor& images, float lower, float upper, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_saturation", true);
  check_range(lower, upper, "random_saturation");
  SYN_CHECK(lower >= 0.0f, "random_saturation: lower must be >= 0, got {}", lower);
  return map_hsv(images, draws(b.n, lower, upper, seed), [](float f, float&, float& s) { s = std::clamp(s * f, 0.0f, 1.0f); });
}

Tensor random_hue(const Tensor& images, float max_delta, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_hue", true);
  SYN_CHECK(max_delta >= 0.0f && max_delta <= 0.5f, "random_hue: max_delta must be in [0, 0.5], got {}", max_delta);
  return map_hsv(images, draws(b.n, -max_delta, max_delta, seed), [](float d, float& h, float&) {
    h = std::fmod(h + d, 1.0f);
    if (h < 0.0f) h += 1.0f;
  });
}

Tensor per_image_standardization(const Tensor& images) {
  const Batch b = check_batch(images, "per_image_standardization");
  Tensor out = images.clone();
  float* p = out.data<float>();
  const std::int64_t m = b.image();
  for (std::int64_t i = 0; i < b.n; ++i) {
    float* img = p + i * m;
    double sum = 0.0, sq = 0.0;
    for (std::int64_t j = 0; j < m; ++j) sum += img[j], sq += static_cast<double>(img[j]) * img[j];
    const double mean = sum / static_cast<double>(m);
    const double sd = std::sqrt(std::max(0.0, sq / static_cast<double>(m) - mean * mean));
    const double inv = 1.0 / std::max(sd, 1.0 / std::sqrt(static_cast<double>(m)));
    for (std::int64_t j = 0; j < m; ++j) img[j] = static_cast<float>((img[j] - mean) * inv);
  }
  return out;
}

Tensor random_rotation(const Tensor& images, float max_radians, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_rotation");
  SYN_CHECK(max_radians >= 0.0f, "random_rotation: max_radians must be >= 0, got {}", max_radians);
  std::vector<std::array<float, 4>> m;
  for (float t : draws(b.n, -max_radians, max_radians, seed)) {
    const float c = std::cos(t), s = std::sin(t);
    m.push_back({c, -s, s, c});  // the source of output offset (dy, dx) from the centre
  }
  return affine(images, m);
}

Tensor random_zoom(const Tensor& images, float lower, float upper, std::uint64_t seed) {
  const Batch b = check_batch(images, "random_zoom");
  check_range(lower, upper, "random_zoom");
  SYN_CHECK(lower > 0.0f, "random_zoom: factors must be > 0, got lower {}", lower);
  std::vector<std::array<float, 4>> m;
  for (float z : draws(b.n, lower, upper, seed)) m.push_back({1.0f / z, 0.0f, 0.0f, 1.0f / z});
  return affine(images, m);
}

namespace augment {
Transform random_crop(std::int64_t height, std::int64_t width, std::int64_t padding) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_crop(x, height, width, padding, s); };
}
Transform random_flip(bool horizontal, bool vertical) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_flip(x, s, horizontal, vertical); };
}
Transform random_brightness(float max_delta) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_brightness(x, max_delta, s); };
}
Transform random_contrast(float lower, float upper) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_contrast(x, lower, upper, s); };
}
Transform random_saturation(float lower, float upper) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_saturation(x, lower, upper, s); };
}
Transform random_hue(float max_delta) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_hue(x, max_delta, s); };
}
Transform per_image_standardization() {
  return [](const Tensor& x, std::uint64_t) { return data::per_image_standardization(x); };
}
Transform random_rotation(float max_radians) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_rotation(x, max_radians, s); };
}
Transform random_zoom(float lower, float upper) {
  return [=](const Tensor& x, std::uint64_t s) { return data::random_zoom(x, lower, upper, s); };
}
}  // namespace augment

}  // namespace synapse::data
