// Test helper: a synthesised "real-world" digit suite from MNIST test digits.
//   make_digit_suite T10K_IMAGES T10K_LABELS COUNT SEED OUT_DIR
// writes OUT_DIR/real/NNNN-LABEL.{jpg,png}: each digit inverted (dark ink on paper), scaled 2-8x, placed
// off-centre on a larger page of grey paper (brightness 0.55-0.95, a gentle light gradient, Gaussian
// noise), saved in turn as grey JPEG, grey PNG, RGB JPEG (tinted paper, blue ink) and RGBA PNG (ink on a
// transparent sheet); and OUT_DIR/clean/NNNN-LABEL.png, the same digits as MNIST has them. Seeded: the
// same arguments give the same files.
#include <fmt/format.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "data/digits.h"
#include "synapse/data.h"
#include "synapse/random.h"

using namespace synapse;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: make_digit_suite T10K_IMAGES T10K_LABELS COUNT SEED OUT_DIR\n");
    return 2;
  }
  const Tensor images = data::read_idx(argv[1]), labels = data::read_idx(argv[2]);
  const std::int64_t count = std::stoll(argv[3]);
  const std::uint64_t seed = std::stoull(argv[4]);
  const std::filesystem::path out = argv[5];
  std::filesystem::create_directories(out / "real");
  std::filesystem::create_directories(out / "clean");
  const auto order = data::permutation(images.dim(0), seed);
  Generator g(seed);
  const auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * static_cast<double>(g.uniform()); };
  for (std::int64_t n = 0; n < count; ++n) {
    const std::int64_t i = order[static_cast<std::size_t>(n)];
    const std::uint8_t* src = images.data<std::uint8_t>() + i * 784;
    const int label = labels.data<std::uint8_t>()[i];
    const std::string name = fmt::format("{:04d}-{}", n, label);
    stbi_write_png((out / "clean" / (name + ".png")).c_str(), 28, 28, 1, src, 28);

    data::digits::Plane digit{28, 28, std::vector<float>(784)};
    for (int k = 0; k < 784; ++k) digit.v[static_cast<std::size_t>(k)] = static_cast<float>(src[k]) / 255.0f;
    const auto side = static_cast<std::int64_t>(std::lround(28.0 * uniform(2.0, 8.0)));
    const data::digits::Plane big = data::digits::resize(digit, side, side);
    const std::int64_t ph = side + static_cast<std::int64_t>(uniform(20, 160)), pw = side + static_cast<std::int64_t>(uniform(20, 240));
    const std::int64_t oy = static_cast<std::int64_t>(uniform(0, static_cast<double>(ph - side)));
    const std::int64_t ox = static_cast<std::int64_t>(uniform(0, static_cast<double>(pw - side)));
    const double paper = uniform(0.55, 0.95), ink = uniform(0.0, 0.25), sigma = uniform(0.005, 0.04);
    const double gy = uniform(-0.03, 0.03), gx = uniform(-0.03, 0.03);  // light falling across the page
    const int format = static_cast<int>(n % 4);
    const int channels = format < 2 ? 1 : format == 2 ? 3 : 4;
    std::vector<std::uint8_t> px(static_cast<std::size_t>(ph * pw * channels));
    const auto byte = [](double v) { return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); };
    for (std::int64_t y = 0; y < ph; ++y)
      for (std::int64_t x = 0; x < pw; ++x) {
        const std::int64_t by = y - oy, bx = x - ox;
        const double d = by >= 0 && by < side && bx >= 0 && bx < side ? big.at(by, bx) : 0.0;
        const double light = paper + gy * (static_cast<double>(y) / static_cast<double>(ph) - 0.5) * 2 +
                             gx * (static_cast<double>(x) / static_cast<double>(pw) - 0.5) * 2;
        const double v = light - (light - ink) * d + sigma * g.normal();
        std::uint8_t* p = &px[static_cast<std::size_t>((y * pw + x) * channels)];
        if (channels == 1) {
          p[0] = byte(v);
        } else if (channels == 3) {  // warm paper, blue ink
          p[0] = byte(v * (d > 0.5 ? 0.6 : 1.0)), p[1] = byte(v * (d > 0.5 ? 0.7 : 0.97)), p[2] = byte(v * (d > 0.5 ? 1.2 : 0.9));
        } else {  // dark ink on a transparent sheet: the digit is in the alpha channel
          p[0] = byte(ink), p[1] = byte(ink), p[2] = byte(ink + 0.1), p[3] = byte(d + sigma * g.normal());
        }
      }
    const int w = static_cast<int>(pw), h = static_cast<int>(ph);
    const std::string base = (out / "real" / name).string();
    const int ok = format == 0 || format == 2
                       ? stbi_write_jpg((base + ".jpg").c_str(), w, h, channels, px.data(), static_cast<int>(uniform(60, 95)))
                       : stbi_write_png((base + ".png").c_str(), w, h, channels, px.data(), w * channels);
    if (!ok) {
      std::fprintf(stderr, "make_digit_suite: cannot write %s\n", base.c_str());
      return 1;
    }
  }
  // A blank page (grey paper and its noise, no digit), for the error test.
  std::vector<std::uint8_t> blank(120 * 90);
  for (auto& b : blank) b = static_cast<std::uint8_t>(std::lround(std::clamp(0.8 + 0.02 * g.normal(), 0.0, 1.0) * 255.0));
  stbi_write_png((out / "blank.png").c_str(), 120, 90, 1, blank.data(), 120);
  std::printf("wrote %lld synthesised digits to %s\n", static_cast<long long>(count), (out / "real").c_str());
  return 0;
}
