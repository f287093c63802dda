// data::mnist_style: a real-world digit brought into MNIST's form, step by step (src/data/digits.h).
#include "data/digits.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "synapse/data.h"

namespace synapse::data {
namespace digits {
namespace {

// Median of a copy of `v` (the lower middle element for an even count).
float median(std::vector<float> v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>((v.size() - 1) / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// 1-D resampling weights: for every output index, (first source index, weights).
struct Taps {
  std::vector<std::int64_t> first;
  std::vector<std::vector<float>> w;
};

Taps taps(std::int64_t src, std::int64_t dst) {
  Taps t;
  const double f = static_cast<double>(src) / static_cast<double>(dst);
  for (std::int64_t i = 0; i < dst; ++i) {
    std::vector<float> w;
    std::int64_t first = 0;
    if (f >= 1.0) {  // shrinking: the output pixel covers source [i f, (i+1) f)
      const double a = static_cast<double>(i) * f, b = static_cast<double>(i + 1) * f;
      first = static_cast<std::int64_t>(std::floor(a));
      for (std::int64_t j = first; j < src && static_cast<double>(j) < b; ++j) {
        const double overlap = std::min(b, static_cast<double>(j + 1)) - std::max(a, static_cast<double>(j));
        w.push_back(static_cast<float>(std::max(0.0, overlap) / f));
      }
    } else {  // growing: linear interpolation at the output pixel's centre
      const double c = std::clamp((static_cast<double>(i) + 0.5) * f - 0.5, 0.0, static_cast<double>(src - 1));
      first = std::min(static_cast<std::int64_t>(std::floor(c)), src - 1);
      const double frac = c - static_cast<double>(first);
      w.push_back(static_cast<float>(1.0 - frac));
      if (first + 1 < src) w.push_back(static_cast<float>(frac));
    }
    t.first.push_back(first);
    t.w.push_back(std::move(w));
  }
  return t;
}

}  // namespace

Plane to_grey(const Tensor& image) {
  SYN_CHECK(image.defined(), "mnist_style: undefined image");
  SYN_CHECK(image.ndim() == 2 || image.ndim() == 3, "mnist_style: expected an image [H, W] or [H, W, C], got shape {}",
            to_string(image.shape()));
  const std::int64_t h = image.dim(0), w = image.dim(1), c = image.ndim() == 3 ? image.dim(2) : 1;
  SYN_CHECK(h >= 1 && w >= 1 && c >= 1 && c <= 4, "mnist_style: expected an image [H, W] or [H, W, C] with C from 1 to 4, got shape {}",
            to_string(image.shape()));
  const Tensor& x = image;
  std::vector<float> px(static_cast<std::size_t>(x.numel()));
  switch (x.dtype()) {
    case DType::UInt8: {
      const auto* p = x.data<std::uint8_t>();
      for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(p[i]) / 255.0f;
      break;
    }
    case DType::Int32: {
      const auto* p = x.data<std::int32_t>();
      for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(std::clamp(p[i], 0, 65535)) / 65535.0f;
      break;
    }
    case DType::Float32: {
      const auto* p = x.data<float>();
      for (std::size_t i = 0; i < px.size(); ++i) {
        SYN_CHECK(std::isfinite(p[i]), "mnist_style: a float image must hold finite values in [0, 1], found {}", p[i]);
        px[i] = std::clamp(p[i], 0.0f, 1.0f);
      }
      break;
    }
    default:
      detail::fail("mnist_style: expected uint8, int32 (16-bit) or float32 pixels, got {}", dtype_name(x.dtype()));
  }
  const bool alpha = c == 2 || c == 4;
  const std::int64_t colours = alpha ? c - 1 : c;
  Plane g{h, w, std::vector<float>(static_cast<std::size_t>(h * w))};
  std::vector<float> a(alpha ? g.v.size() : 0);
  for (std::size_t i = 0; i < g.v.size(); ++i) {
    const float* p = &px[i * static_cast<std::size_t>(c)];
    g.v[i] = colours == 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
    if (alpha) a[i] = p[colours];
  }
  if (alpha) {
    // Ink on a transparent sheet: the sheet becomes the colour that contrasts with the ink.
    double ink = 0, weight = 0;
    for (std::size_t i = 0; i < g.v.size(); ++i) ink += a[i] * g.v[i], weight += a[i];
    const float sheet = weight > 0 && ink / weight > 0.5 ? 0.0f : 1.0f;
    for (std::size_t i = 0; i < g.v.size(); ++i) g.v[i] = a[i] * g.v[i] + (1.0f - a[i]) * sheet;
  }
  return g;
}

Background estimate_background(const Plane& grey) {
  const std::int64_t frame = std::max<std::int64_t>(1, std::min(grey.h, grey.w) / 20);
  std::vector<float> border;
  for (std::int64_t y = 0; y < grey.h; ++y)
    for (std::int64_t x = 0; x < grey.w; ++x)
      if (y < frame || y >= grey.h - frame || x < frame || x >= grey.w - frame) border.push_back(grey.at(y, x));
  Background b;
  b.level = median(border);
  for (float& v : border) v = std::abs(v - b.level);
  b.noise = 1.4826f * median(border);
  b.light = b.level >= 0.5f;
  return b;
}

Plane ink(const Plane& grey, const Background& bg) {
  Plane r{grey.h, grey.w, std::vector<float>(grey.v.size())};
  float peak = 0;
  for (std::size_t i = 0; i < r.v.size(); ++i) {
    r.v[i] = std::max(0.0f, bg.light ? bg.level - grey.v[i] : grey.v[i] - bg.level);
    peak = std::max(peak, r.v[i]);
  }
  const float needed = std::max(0.1f, 6.0f * bg.noise);
  SYN_CHECK(peak >= needed,
            "mnist_style: no digit found: the image is blank ({} paper at {:.2f}, noise {:.3f}; the strongest ink differs "
            "from the paper by {:.3f}, below the {:.3f} a stroke needs)",
            bg.light ? "light" : "dark", bg.level, bg.noise, peak, needed);
  const float threshold = std::max(4.0f * bg.noise, 0.2f * peak);
  std::vector<float> inked;
  for (float v : r.v)
    if (v > threshold) inked.push_back(v);
  std::nth_element(inked.begin(), inked.begin() + static_cast<std::ptrdiff_t>(inked.size() * 3 / 4), inked.end());
  const float stroke = inked[inked.size() * 3 / 4];
  Plane out{r.h, r.w, std::vector<float>(r.v.size())};
  for (std::size_t i = 0; i < r.v.size(); ++i)
    out.v[i] = r.v[i] > threshold ? std::min(1.0f, r.v[i] / stroke) : 0.0f;
  // Speckles: an inked pixel none of whose 8 neighbours is inked.
  Plane kept = out;
  for (std::int64_t y = 0; y < out.h; ++y)
    for (std::int64_t x = 0; x < out.w; ++x) {
      if (out.at(y, x) <= 0) continue;
      bool neighbour = false;
      for (std::int64_t dy = -1; dy <= 1 && !neighbour; ++dy)
        for (std::int64_t dx = -1; dx <= 1 && !neighbour; ++dx) {
          const std::int64_t yy = y + dy, xx = x + dx;
          neighbour = (dy || dx) && yy >= 0 && yy < out.h && xx >= 0 && xx < out.w && out.at(yy, xx) > 0;
        }
      if (!neighbour) kept.at(y, x) = 0;
    }
  return kept;
}

Box bounding_box(const Plane& p) {
  Box b{p.h, p.w, 0, 0};
  for (std::int64_t y = 0; y < p.h; ++y)
    for (std::int64_t x = 0; x < p.w; ++x)
      if (p.at(y, x) > 0) {
        b.top = std::min(b.top, y), b.left = std::min(b.left, x);
        b.bottom = std::max(b.bottom, y + 1), b.right = std::max(b.right, x + 1);
      }
  SYN_CHECK(b.bottom > 0, "mnist_style: no digit found: no inked pixel in the {}x{} image", p.w, p.h);
  return b;
}

Plane crop(const Plane& p, const Box& b) {
  Plane c{b.height(), b.width(), std::vector<float>(static_cast<std::size_t>(b.height() * b.width()))};
  for (std::int64_t y = 0; y < c.h; ++y)
    for (std::int64_t x = 0; x < c.w; ++x) c.at(y, x) = p.at(b.top + y, b.left + x);
  return c;
}

Plane resize(const Plane& p, std::int64_t h, std::int64_t w) {
  SYN_CHECK(h >= 1 && w >= 1 && p.h >= 1 && p.w >= 1, "resize: cannot resample {}x{} to {}x{}", p.w, p.h, w, h);
  const Taps tx = taps(p.w, w), ty = taps(p.h, h);
  Plane rows{p.h, w, std::vector<float>(static_cast<std::size_t>(p.h * w))};
  for (std::int64_t y = 0; y < p.h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      float s = 0;
      const auto& wx = tx.w[static_cast<std::size_t>(x)];
      for (std::size_t k = 0; k < wx.size(); ++k) s += wx[k] * p.at(y, tx.first[static_cast<std::size_t>(x)] + static_cast<std::int64_t>(k));
      rows.at(y, x) = s;
    }
  Plane out{h, w, std::vector<float>(static_cast<std::size_t>(h * w))};
  for (std::int64_t y = 0; y < h; ++y) {
    const auto& wy = ty.w[static_cast<std::size_t>(y)];
    for (std::int64_t x = 0; x < w; ++x) {
      float s = 0;
      for (std::size_t k = 0; k < wy.size(); ++k) s += wy[k] * rows.at(ty.first[static_cast<std::size_t>(y)] + static_cast<std::int64_t>(k), x);
      out.at(y, x) = std::clamp(s, 0.0f, 1.0f);
    }
  }
  return out;
}

std::pair<std::int64_t, std::int64_t> fit_size(std::int64_t h, std::int64_t w, std::int64_t box) {
  if (h >= w) return {box, std::max<std::int64_t>(1, std::llround(static_cast<double>(w) * static_cast<double>(box) / static_cast<double>(h)))};
  return {std::max<std::int64_t>(1, std::llround(static_cast<double>(h) * static_cast<double>(box) / static_cast<double>(w))), box};
}

std::pair<double, double> centre_of_mass(const Plane& p) {
  double m = 0, my = 0, mx = 0;
  for (std::int64_t y = 0; y < p.h; ++y)
    for (std::int64_t x = 0; x < p.w; ++x) {
      const double v = p.at(y, x);
      m += v, my += v * (static_cast<double>(y) + 0.5), mx += v * (static_cast<double>(x) + 0.5);
    }
  SYN_CHECK(m > 0, "centre_of_mass: the {}x{} plane is all zero", p.w, p.h);
  return {my / m, mx / m};
}

Plane place_by_centre_of_mass(const Plane& p, std::int64_t size) {
  const auto [cy, cx] = centre_of_mass(p);
  // MNIST's centres of mass sit at pixel index 14 (the average over its test set is (14.49, 14.50) in
  // the coordinates above, where pixel 14 spans [14, 15)).
  const double centre = static_cast<double>(size) / 2.0 + 0.5;
  const auto oy = static_cast<std::int64_t>(std::llround(centre - cy)), ox = static_cast<std::int64_t>(std::llround(centre - cx));
  Plane out{size, size, std::vector<float>(static_cast<std::size_t>(size * size), 0.0f)};
  for (std::int64_t y = 0; y < p.h; ++y)
    for (std::int64_t x = 0; x < p.w; ++x) {
      const std::int64_t yy = y + oy, xx = x + ox;
      if (yy >= 0 && yy < size && xx >= 0 && xx < size) out.at(yy, xx) = p.at(y, x);
    }
  return out;
}

}  // namespace digits

Tensor mnist_style(const Tensor& image) {
  using namespace digits;
  const Plane grey = to_grey(image);
  const Plane inked = ink(grey, estimate_background(grey));
  const Plane digit = crop(inked, bounding_box(inked));
  const auto [h, w] = fit_size(digit.h, digit.w, 20);
  const Plane placed = place_by_centre_of_mass(resize(digit, h, w), 28);
  Tensor out = Tensor::empty({28, 28}, DType::Float32);
  std::copy(placed.v.begin(), placed.v.end(), out.data<float>());
  return out;
}

}  // namespace synapse::data
