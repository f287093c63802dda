// The steps of data::mnist_style (src/data/digits.cpp), exposed for tests and for tools that want to
// show them one by one. Images here are single-channel float planes, row-major.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "synapse/tensor.h"

namespace synapse::data::digits {

struct Plane {
  std::int64_t h = 0, w = 0;
  std::vector<float> v;  // h * w values
  float at(std::int64_t y, std::int64_t x) const { return v[static_cast<std::size_t>(y * w + x)]; }
  float& at(std::int64_t y, std::int64_t x) { return v[static_cast<std::size_t>(y * w + x)]; }
};

// Brightness in [0, 1] (1 = white) of uint8 / int32 (16-bit) [H, W] or [H, W, C] or float32 [H, W]:
// RGB by luminance (0.299 R + 0.587 G + 0.114 B); alpha composited over white when the opaque pixels
// are dark (ink on a transparent sheet), over black when they are light.
Plane to_grey(const Tensor& image);

struct Background {
  float level = 0;   // the paper's brightness: the median of the border pixels
  float noise = 0;   // its spread: 1.4826 x the median absolute deviation of the border pixels
  bool light = true; // light paper (dark ink) or dark paper (light ink)
};
// The border is a frame max(1, min(H, W) / 20) pixels wide: on a photo or scan of a digit it is paper.
Background estimate_background(const Plane& grey);

// Ink in [0, 1] (1 = the stroke's core): the difference from the paper in the ink's direction, zero
// below max(4 x noise, 20% of the strongest ink), divided by the typical stroke (the 75th percentile of
// the inked pixels) and capped at 1; ink pixels with no inked neighbour (speckles) are dropped.
// Throws Error for a blank image: the strongest ink is below max(0.1, 6 x noise).
Plane ink(const Plane& grey, const Background& bg);

struct Box {
  std::int64_t top = 0, left = 0, bottom = 0, right = 0;  // bottom and right exclusive
  std::int64_t height() const { return bottom - top; }
  std::int64_t width() const { return right - left; }
};
// The smallest box holding every non-zero pixel; throws for an all-zero plane.
Box bounding_box(const Plane& p);
Plane crop(const Plane& p, const Box& b);

// Resamples to h x w: each output pixel averages the source area it covers (exact fractional
// coverage) when shrinking; bilinear interpolation along an axis that grows.
Plane resize(const Plane& p, std::int64_t h, std::int64_t w);
// The size that fits `box` (a square of side `box`) keeping the aspect ratio: the longer side becomes
// `box`, the other rounds to at least 1.
std::pair<std::int64_t, std::int64_t> fit_size(std::int64_t h, std::int64_t w, std::int64_t box);

// (y, x) of the centre of mass, with pixel (r, c) covering [r, r+1) x [c, c+1) (its centre is r + 0.5).
std::pair<double, double> centre_of_mass(const Plane& p);
// p placed in a size x size black field, moved by whole pixels so that its centre of mass lands
// nearest the centre of pixel (size / 2, size / 2), i.e. at (size + 1) / 2 in the coordinates of
// centre_of_mass, as in MNIST; what falls outside is cut.
Plane place_by_centre_of_mass(const Plane& p, std::int64_t size);

}  // namespace synapse::data::digits
