// data::mnist_style and its steps (src/data/digits.h), and the image readers and writers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "data/digits.h"
#include "synapse/data.h"
#include "synapse/error.h"
#include "synapse/random.h"

using namespace synapse;
using namespace synapse::data;
using namespace synapse::data::digits;

namespace {

using Size = std::pair<std::int64_t, std::int64_t>;

Plane filled(std::int64_t h, std::int64_t w, float v) { return Plane{h, w, std::vector<float>(static_cast<std::size_t>(h * w), v)}; }

void fill_box(Plane& p, std::int64_t top, std::int64_t left, std::int64_t bottom, std::int64_t right, float v) {
  for (std::int64_t y = top; y < bottom; ++y)
    for (std::int64_t x = left; x < right; ++x) p.at(y, x) = v;
}

Tensor to_uint8(const Plane& p) {
  Tensor t = Tensor::empty({p.h, p.w}, DType::UInt8);
  for (std::size_t i = 0; i < p.v.size(); ++i) t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(std::lround(p.v[i] * 255.0f));
  return t;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A "digit" for the end-to-end tests: an L of two bars, dark (0.1) on light paper (0.85) with seeded
// noise, in the lower right of a 120 x 160 page; the L's box is 60 tall and 30 wide.
Plane paper_with_an_l(float noise_sigma) {
  Plane p = filled(120, 160, 0.85f);
  Generator g(7);
  for (float& v : p.v) v += noise_sigma * g.normal();
  fill_box(p, 40, 100, 100, 108, 0.1f);  // the upright
  fill_box(p, 92, 100, 100, 130, 0.1f);  // the foot
  for (float& v : p.v) v = std::clamp(v, 0.0f, 1.0f);
  return p;
}

}  // namespace

TEST(Digits, GreyFromRgbByLuminanceAnd16Bit) {
  const Tensor rgb = from_vector(std::vector<std::uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255}, {2, 2, 3});
  const Plane g = to_grey(rgb);
  ASSERT_EQ(g.h, 2);
  ASSERT_EQ(g.w, 2);
  EXPECT_NEAR(g.v[0], 0.299f, 1e-6);
  EXPECT_NEAR(g.v[1], 0.587f, 1e-6);
  EXPECT_NEAR(g.v[2], 0.114f, 1e-6);
  EXPECT_NEAR(g.v[3], 1.0f, 1e-6);
  const Plane g16 = to_grey(from_vector(std::vector<std::int32_t>{0, 65535, 32768, 13107}, {2, 2}));
  EXPECT_FLOAT_EQ(g16.v[1], 1.0f);
  EXPECT_NEAR(g16.v[2], 0.500008f, 1e-6);
  EXPECT_NEAR(g16.v[3], 0.2f, 1e-6);
}

TEST(Digits, AlphaIsCompositedOverAContrastingSheet) {
  // Black ink (opaque) on a transparent sheet: the sheet becomes white; half-transparent ink is 0.5.
  const Tensor dark = from_vector(std::vector<std::uint8_t>{0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128}, {1, 3, 4});
  const Plane d = to_grey(dark);
  EXPECT_FLOAT_EQ(d.v[0], 0.0f);
  EXPECT_FLOAT_EQ(d.v[1], 1.0f);
  EXPECT_NEAR(d.v[2], 1.0f - 128.0f / 255.0f, 1e-6);
  // White ink on a transparent sheet: the sheet becomes black (grey + alpha, 2 channels).
  const Plane l = to_grey(from_vector(std::vector<std::uint8_t>{255, 255, 255, 0}, {1, 2, 2}));
  EXPECT_FLOAT_EQ(l.v[0], 1.0f);
  EXPECT_FLOAT_EQ(l.v[1], 0.0f);
}

TEST(Digits, BackgroundIsTheBorderMedianLightOrDark) {
  Plane p = filled(40, 40, 0.8f);
  fill_box(p, 5, 5, 35, 35, 0.1f);  // a dark area covering more than half the page: the border still decides
  p.at(0, 0) = 0.9f, p.at(0, 1) = 0.7f;  // two border pixels off by 0.1 among 156
  const Background b = estimate_background(p);
  EXPECT_FLOAT_EQ(b.level, 0.8f);
  EXPECT_FLOAT_EQ(b.noise, 0.0f);  // the median absolute deviation ignores two outliers
  EXPECT_TRUE(b.light);
  Plane dark = filled(40, 40, 0.1f);
  Generator g(3);
  for (float& v : dark.v) v += 0.02f * g.normal();
  const Background d = estimate_background(dark);
  EXPECT_FALSE(d.light);
  EXPECT_NEAR(d.level, 0.1f, 0.005f);
  EXPECT_NEAR(d.noise, 0.02f, 0.004f);  // 1.4826 x MAD estimates the noise's sigma
}

TEST(Digits, InkIsThresholdedStretchedAndDespeckled) {
  Plane p = filled(10, 10, 0.8f);
  fill_box(p, 4, 4, 7, 7, 0.2f);  // the stroke: 0.6 darker than the paper
  p.at(5, 3) = 0.65f;             // a faint edge pixel beside it: ink 0.15 -> 0.15 / 0.6 of the stroke
  p.at(5, 2) = 0.7f;              // ink 0.1, below the threshold 0.2 x 0.6 = 0.12: paper
  p.at(0, 9) = 0.5f;              // a speckle: ink 0.3 but no inked neighbour
  const Plane k = ink(p, Background{0.8f, 0.0f, true});
  EXPECT_FLOAT_EQ(k.at(5, 5), 1.0f);
  EXPECT_FLOAT_EQ(k.at(4, 4), 1.0f);
  EXPECT_NEAR(k.at(5, 3), 0.25f, 1e-6);
  EXPECT_FLOAT_EQ(k.at(5, 2), 0.0f);
  EXPECT_FLOAT_EQ(k.at(0, 9), 0.0f);
  EXPECT_FLOAT_EQ(k.at(0, 0), 0.0f);
  // Dark paper: ink is brighter than the paper.
  Plane q = filled(10, 10, 0.1f);
  fill_box(q, 2, 2, 4, 4, 0.9f);
  const Plane l = ink(q, Background{0.1f, 0.0f, false});
  EXPECT_FLOAT_EQ(l.at(3, 3), 1.0f);
  EXPECT_FLOAT_EQ(l.at(5, 5), 0.0f);
  // Noise raises the threshold to 4 sigma (20% of the strongest ink 0.3 is 0.06): 0.8 - 0.7 = 0.1 is
  // ink with sigma 0.02 (threshold 0.08)...
  Plane n = filled(10, 10, 0.8f);
  fill_box(n, 2, 2, 8, 8, 0.5f);
  n.at(1, 1) = 0.7f, n.at(1, 2) = 0.7f;
  EXPECT_GT(ink(n, Background{0.8f, 0.02f, true}).at(1, 1), 0.0f);
  // ...and not with sigma 0.03 (threshold 0.12).
  EXPECT_FLOAT_EQ(ink(n, Background{0.8f, 0.03f, true}).at(1, 1), 0.0f);
}

TEST(Digits, BlankImagesAreAnErrorNotAGuess) {
  const std::string blank = error_of([] { (void)ink(filled(8, 8, 0.9f), Background{0.9f, 0.0f, true}); });
  EXPECT_NE(blank.find("no digit found: the image is blank (light paper at 0.90, noise 0.000; the strongest ink differs from the paper by 0.000, below the 0.100"), std::string::npos) << blank;
  // Faint marks within the paper's noise are not a digit either: 0.1 below paper with noise 0.02 needs 0.12.
  Plane faint = filled(8, 8, 0.9f);
  faint.at(4, 4) = 0.8f;
  EXPECT_NE(error_of([&] { (void)ink(faint, Background{0.9f, 0.02f, true}); }).find("below the 0.120 a stroke needs"), std::string::npos);
  EXPECT_NE(error_of([] { (void)mnist_style(zeros({30, 30}, DType::UInt8)); }).find("no digit found"), std::string::npos);
  EXPECT_NE(error_of([] { (void)mnist_style(zeros({3, 3, 5}, DType::UInt8)); }).find("C from 1 to 4, got shape [3,3,5]"),
            std::string::npos);
}

TEST(Digits, BoundingBoxAndCrop) {
  Plane p = filled(10, 12, 0.0f);
  p.at(2, 3) = 0.5f;
  p.at(5, 7) = 1.0f;
  const Box b = bounding_box(p);
  EXPECT_EQ(b.top, 2);
  EXPECT_EQ(b.left, 3);
  EXPECT_EQ(b.bottom, 6);
  EXPECT_EQ(b.right, 8);
  const Plane c = crop(p, b);
  EXPECT_EQ(c.h, 4);
  EXPECT_EQ(c.w, 5);
  EXPECT_FLOAT_EQ(c.at(0, 0), 0.5f);
  EXPECT_FLOAT_EQ(c.at(3, 4), 1.0f);
  EXPECT_NE(error_of([] { (void)bounding_box(filled(3, 4, 0.0f)); }).find("no inked pixel in the 4x3 image"), std::string::npos);
}

TEST(Digits, ResizeAveragesAreasWhenShrinkingAndInterpolatesWhenGrowing) {
  Plane p = filled(4, 4, 0.0f);
  fill_box(p, 0, 0, 2, 2, 1.0f);
  const Plane half = resize(p, 2, 2);
  EXPECT_FLOAT_EQ(half.at(0, 0), 1.0f);
  EXPECT_FLOAT_EQ(half.at(0, 1), 0.0f);
  EXPECT_FLOAT_EQ(half.at(1, 1), 0.0f);
  // 3 -> 2: the first output pixel covers source [0, 1.5): (1 x 1 + 0.5 x 0) / 1.5.
  Plane row = filled(1, 3, 0.0f);
  row.at(0, 0) = 1.0f;
  const Plane two = resize(row, 1, 2);
  EXPECT_NEAR(two.at(0, 0), 2.0f / 3.0f, 1e-6);
  EXPECT_FLOAT_EQ(two.at(0, 1), 0.0f);
  // A thin line keeps its ink: a 1-pixel line of 1.0 shrunk 3x becomes 1/3 (nearest would drop or keep it whole).
  Plane line = filled(6, 6, 0.0f);
  fill_box(line, 0, 1, 6, 2, 1.0f);
  EXPECT_NEAR(resize(line, 2, 2).at(0, 0), 1.0f / 3.0f, 1e-6);
  // 2 -> 4: linear interpolation at the centres -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  Plane ramp = filled(1, 2, 0.0f);
  ramp.at(0, 1) = 1.0f;
  const Plane four = resize(ramp, 1, 4);
  EXPECT_FLOAT_EQ(four.at(0, 0), 0.0f);
  EXPECT_FLOAT_EQ(four.at(0, 1), 0.25f);
  EXPECT_FLOAT_EQ(four.at(0, 2), 0.75f);
  EXPECT_FLOAT_EQ(four.at(0, 3), 1.0f);
}

TEST(Digits, FitSizeKeepsTheAspectRatio) {
  EXPECT_EQ(fit_size(40, 10, 20), Size(20, 5));
  EXPECT_EQ(fit_size(10, 40, 20), Size(5, 20));
  EXPECT_EQ(fit_size(30, 30, 20), Size(20, 20));
  EXPECT_EQ(fit_size(7, 3, 20), Size(20, 9));  // 8.57 rounds to 9
  EXPECT_EQ(fit_size(100, 1, 20), Size(20, 1));
}

TEST(Digits, CentreOfMassAndPlacement) {
  Plane p = filled(3, 4, 0.0f);
  p.at(2, 3) = 1.0f;
  EXPECT_EQ(centre_of_mass(p), std::make_pair(2.5, 3.5));
  Plane q = filled(1, 3, 0.0f);
  q.at(0, 0) = 1.0f, q.at(0, 2) = 3.0f;  // x = (0.5 x 1 + 2.5 x 3) / 4
  EXPECT_EQ(centre_of_mass(q), std::make_pair(0.5, 2.0));
  // A 3x3 block (centre of mass (1.5, 1.5)) lands on pixels 13-15: its centre pixel is (14, 14), where
  // MNIST's centres of mass are.
  const Plane placed = place_by_centre_of_mass(filled(3, 3, 1.0f), 28);
  EXPECT_FLOAT_EQ(placed.at(13, 13), 1.0f);
  EXPECT_FLOAT_EQ(placed.at(15, 15), 1.0f);
  EXPECT_FLOAT_EQ(placed.at(12, 13), 0.0f);
  EXPECT_FLOAT_EQ(placed.at(16, 13), 0.0f);
  EXPECT_EQ(centre_of_mass(placed), std::make_pair(14.5, 14.5));
  // A lopsided digit: a heavy left column moves the box right of the centre.
  Plane l = filled(20, 10, 0.0f);
  fill_box(l, 0, 0, 20, 2, 1.0f);
  fill_box(l, 18, 2, 20, 10, 1.0f);
  const auto [cy, cx] = centre_of_mass(place_by_centre_of_mass(l, 28));
  EXPECT_NEAR(cy, 14.5, 0.5);
  EXPECT_NEAR(cx, 14.5, 0.5);
}

TEST(Digits, MnistStyleOfANoisyOffCentrePhoto) {
  const Tensor out = mnist_style(to_uint8(paper_with_an_l(0.03f)));
  ASSERT_EQ(out.shape(), (Shape{28, 28}));
  Plane o{28, 28, out.to_vector<float>()};
  const Box b = bounding_box(o);
  EXPECT_EQ(b.height(), 20);  // 60 x 30 -> 20 x 10
  EXPECT_EQ(b.width(), 10);
  const auto [cy, cx] = centre_of_mass(o);
  EXPECT_NEAR(cy, 14.5, 0.5);
  EXPECT_NEAR(cx, 14.5, 0.5);
  EXPECT_FLOAT_EQ(*std::max_element(o.v.begin(), o.v.end()), 1.0f);
  // The upright (8 of 30 columns -> 2.67 of 10) is solid ink in its first two columns.
  EXPECT_FLOAT_EQ(o.at(b.top + 5, b.left), 1.0f);
  EXPECT_FLOAT_EQ(o.at(b.top + 5, b.left + 1), 1.0f);
  EXPECT_NEAR(o.at(b.top + 5, b.left + 2), 2.0f / 3.0f, 0.05f);
  EXPECT_FLOAT_EQ(o.at(b.top + 5, b.left + 5), 0.0f);
  // The same page as dark paper with light ink, as RGB and as 16-bit give the same digit.
  Plane inverted = paper_with_an_l(0.03f);
  for (float& v : inverted.v) v = 1.0f - v;
  const auto dark = mnist_style(to_uint8(inverted)).to_vector<float>();
  for (std::size_t i = 0; i < dark.size(); ++i) ASSERT_NEAR(dark[i], o.v[i], 0.02f) << i;
  const Tensor grey8 = to_uint8(paper_with_an_l(0.03f));
  Tensor rgb = Tensor::empty({120, 160, 3}, DType::UInt8);
  Tensor g16 = Tensor::empty({120, 160}, DType::Int32);
  for (std::int64_t i = 0; i < grey8.numel(); ++i) {
    for (int c = 0; c < 3; ++c) rgb.data<std::uint8_t>()[i * 3 + c] = grey8.data<std::uint8_t>()[i];
    g16.data<std::int32_t>()[i] = grey8.data<std::uint8_t>()[i] * 257;
  }
  EXPECT_EQ(mnist_style(rgb).to_vector<float>(), o.v);
  EXPECT_EQ(mnist_style(g16).to_vector<float>(), o.v);
}

TEST(Digits, MnistStyleKeepsAnMnistDigitInPlace) {
  // An MNIST-like digit (white on black, 20 tall, its centre of mass at pixel (14, 14)) comes back unchanged:
  // a bar 20 x 7 whose top row is half-inked (centre of mass row 4 + 10.24, column 11 + 3.5).
  Plane p = filled(28, 28, 0.0f);
  fill_box(p, 4, 11, 24, 18, 1.0f);
  fill_box(p, 4, 11, 5, 18, 0.5f);
  const auto out = mnist_style(to_uint8(p)).to_vector<float>();
  for (std::size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], p.v[i], 0.003f) << i;
}

TEST(Images, PngRoundTripAndErrorsNameTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("synapse_digits_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "x.png").string();
  const Tensor img = from_vector(std::vector<std::uint8_t>{0, 64, 128, 255, 10, 20}, {2, 3});
  write_png(path, img);
  const Tensor back = read_image(path);
  EXPECT_EQ(back.shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(back.to_vector<std::uint8_t>(), img.to_vector<std::uint8_t>());
  const Tensor f = read_image((write_png((dir / "f.png").string(), from_vector(std::vector<float>{0.0f, 0.5f, 1.0f}, {1, 3})),
                               (dir / "f.png").string()));
  EXPECT_EQ(f.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{0, 128, 255}));
  std::ofstream((dir / "junk.png").string()) << "not a picture";
  EXPECT_NE(error_of([&] { (void)read_image((dir / "junk.png").string()); }).find("junk.png': not a PNG, JPEG"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)read_image((dir / "none.png").string()); }).find("none.png': no such file"), std::string::npos);
  EXPECT_NE(error_of([] { (void)decode_image("", 0, "upload"); }).find("'upload': it is empty"), std::string::npos);
  std::filesystem::remove_all(dir);
}
