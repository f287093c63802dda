// synapse data show mnist|fashion-mnist: what is in a data set (counts, shapes, dtype, pixel statistics,
// label balance per split) and a PNG grid of random samples captioned with their labels.
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "cli/commands.h"
#include "core/check.h"
#include "synapse/report.h"

namespace synapse::cli {
namespace {

struct ShowArgs {
  std::string dataset;
  std::string data;
  std::string output = "grid.png";
  int count = 64;
  std::uint64_t seed = 0;
};

struct PixelStats {
  int min = 255, max = 0;
  double mean = 0, std = 0;
};

PixelStats pixel_stats(const Tensor& images) {
  const auto* p = images.data<std::uint8_t>();
  const std::int64_t n = images.numel();
  PixelStats s;
  double sum = 0, sq = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    s.min = std::min<int>(s.min, p[i]);
    s.max = std::max<int>(s.max, p[i]);
    sum += p[i];
    sq += static_cast<double>(p[i]) * p[i];
  }
  s.mean = n ? sum / static_cast<double>(n) : 0;
  s.std = n ? std::sqrt(std::max(0.0, sq / static_cast<double>(n) - s.mean * s.mean)) : 0;
  return s;
}

std::vector<std::int64_t> label_counts(const Tensor& labels, int classes) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(classes), 0);
  const auto* p = labels.data<std::uint8_t>();
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (p[i] < classes) ++c[p[i]];
  return c;
}

// Text drawn into a grayscale canvas with stb_easy_font (its quads are axis-aligned rectangles), `scale`
// times its natural 12-pixel line height.
void draw_text(std::vector<unsigned char>& img, int width, int height, int x, int y, const std::string& text, int scale,
               unsigned char value) {
  std::vector<char> buf(text.size() * 1024 + 1024);  // 64 bytes per quad, at most ~14 quads per glyph
  std::string copy = text;
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buf.data(), static_cast<int>(buf.size()));
  for (int q = 0; q < quads; ++q) {
    float v[4][4];  // per vertex: x, y, z and four colour bytes
    std::memcpy(v, buf.data() + static_cast<std::size_t>(q) * sizeof(v), sizeof(v));
    float qx0 = v[0][0], qx1 = v[0][0], qy0 = v[0][1], qy1 = v[0][1];
    for (const auto& p : v) {
      qx0 = std::min(qx0, p[0]);
      qx1 = std::max(qx1, p[0]);
      qy0 = std::min(qy0, p[1]);
      qy1 = std::max(qy1, p[1]);
    }
    const int x0 = x + static_cast<int>(std::lround(qx0 * static_cast<float>(scale)));
    const int x1 = x + static_cast<int>(std::lround(qx1 * static_cast<float>(scale)));
    const int y0 = y + static_cast<int>(std::lround(qy0 * static_cast<float>(scale)));
    const int y1 = y + static_cast<int>(std::lround(qy1 * static_cast<float>(scale)));
    for (int yy = std::max(0, y0); yy < std::min(height, y1); ++yy)
      for (int xx = std::max(0, x0); xx < std::min(width, x1); ++xx)
        img[static_cast<std::size_t>(yy * width + xx)] = value;
  }
}

int text_width(const std::string& text) {
  std::string copy = text;
  return stb_easy_font_width(copy.data());
}

int run_show(const ShowArgs& a) {
  const bool fashion = a.dataset == "fashion-mnist" || a.dataset == "fashion_mnist";
  SYN_CHECK(fashion || a.dataset == "mnist", "unknown data set '{}'; known: mnist, fashion-mnist", a.dataset);
  const std::string dir = a.data.empty() ? "data/" + std::string(fashion ? "fashion-mnist" : "mnist") : a.data;
  SYN_CHECK(std::filesystem::is_directory(dir),
            "data folder '{}' does not exist (fetch it with: scripts/fetch-data {})", dir,
            fashion ? "fashion-mnist" : "mnist");
  const data::Mnist m = data::load_mnist(dir);
  std::vector<std::string> names;
  if (fashion)
    names = report::fashion_mnist_classes();
  else
    for (int c = 0; c < 10; ++c) names.push_back(std::to_string(c));
  const int classes = static_cast<int>(names.size());

  fmt::print("{} in {}\n\n", fashion ? "Fashion-MNIST" : "MNIST", dir);
  fmt::print("{:<7}{:>8}  {:<10}{:<7}{:>10}{:>9}{:>9}\n", "split", "images", "shape", "dtype", "pixels", "mean", "std");
  const std::pair<const char*, const Tensor*> splits[] = {{"train", &m.train_images}, {"test", &m.test_images}};
  for (const auto& [name, t] : splits) {
    const PixelStats s = pixel_stats(*t);
    fmt::print("{:<7}{:>8}  {:<10}{:<7}{:>10}{:>9.2f}{:>9.2f}\n", name, t->dim(0),
               fmt::format("{}x{}", t->dim(1), t->dim(2)), dtype_name(t->dtype()), fmt::format("{}..{}", s.min, s.max),
               s.mean, s.std);
  }
  fmt::print(
      "(training uses the first {} training images and validates on the last 5000; pixels are scaled to [0, 1])\n\n",
      m.train_images.dim(0) - 5000);

  const auto train_c = label_counts(m.train_labels, classes), test_c = label_counts(m.test_labels, classes);
  const auto width = std::max<std::size_t>(
      5, std::max_element(names.begin(), names.end(), [](auto& x, auto& y) { return x.size() < y.size(); })->size());
  fmt::print("{:<{}}  {:>14}  {:>14}\n", "label", width + 4, "train", "test");
  for (int c = 0; c < classes; ++c) {
    const auto i = static_cast<std::size_t>(c);
    fmt::print("{:<{}}  {:>7} {:>5.1f}%  {:>7} {:>5.1f}%\n", fmt::format("{} {}", c, fashion ? names[i] : ""),
               width + 4, train_c[i],
               100.0 * static_cast<double>(train_c[i]) / static_cast<double>(m.train_labels.numel()), test_c[i],
               100.0 * static_cast<double>(test_c[i]) / static_cast<double>(m.test_labels.numel()));
  }
  const auto [lo, hi] = std::minmax_element(train_c.begin(), train_c.end());
  fmt::print("balance (train): smallest class {} images, largest {} (ratio {:.2f})\n", *lo, *hi,
             *lo ? static_cast<double>(*hi) / static_cast<double>(*lo) : 0.0);

  // The grid: `count` random training images (seeded), each enlarged 2x above its label.
  std::mt19937_64 rng(a.seed);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(m.train_images.dim(0)));
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), rng);
  idx.resize(static_cast<std::size_t>(a.count));
  const int cols = std::min(a.count, fashion ? 8 : 10), rows = (a.count + cols - 1) / cols;
  const int scale = fashion ? 1 : 2;  // digits drawn large; class names at the font's own size
  const int img = 56, cell_w = fashion ? 76 : 64, cell_h = img + 8 + 12 * scale, pad = 4;
  const int W = cols * cell_w + pad, H = rows * cell_h + pad;
  std::vector<unsigned char> canvas(static_cast<std::size_t>(W * H), 40);
  const auto* px = m.train_images.data<std::uint8_t>();
  const auto* lb = m.train_labels.data<std::uint8_t>();
  for (int k = 0; k < a.count; ++k) {
    const std::int64_t s = idx[static_cast<std::size_t>(k)];
    const int cx = pad + (k % cols) * cell_w + (cell_w - pad - img) / 2, cy = pad + (k / cols) * cell_h;
    for (int y = 0; y < img; ++y)
      for (int x = 0; x < img; ++x)
        canvas[static_cast<std::size_t>((cy + y) * W + cx + x)] = px[s * 784 + (y / 2) * 28 + x / 2];
    const std::string label = fashion ? names[lb[s]] : std::to_string(lb[s]);
    const int tx = pad + (k % cols) * cell_w + (cell_w - pad - scale * text_width(label)) / 2;
    draw_text(canvas, W, H, tx, cy + img + 4, label, scale, 235);
  }
  SYN_CHECK(stbi_write_png(a.output.c_str(), W, H, 1, canvas.data(), W) != 0, "cannot write '{}'", a.output);
  fmt::print("\nwrote {} ({} random training images, seed {}, {}x{} pixels)\n", a.output, a.count, a.seed, W, H);
  return 0;
}

}  // namespace

Command add_data(CLI::App& app) {
  auto a = std::make_shared<ShowArgs>();
  auto* sub = app.add_subcommand("data", "Explore a data set");
  sub->require_subcommand(1);
  auto* show = sub->add_subcommand("show", "Counts, shapes, pixel statistics, label balance and a PNG grid of samples");
  show->add_option("dataset", a->dataset, "mnist or fashion-mnist")->required();
  show->add_option("--data", a->data, "Folder with the IDX files (default data/DATASET)");
  show->add_option("-o,--output", a->output, "PNG grid of random training samples")->capture_default_str();
  show->add_option("--count", a->count, "Samples in the grid")->capture_default_str()->check(integer_in(1, 10000));
  show->add_option("--seed", a->seed, "Seed of the random choice")->capture_default_str()->check(unsigned_integer());
  return {sub, [a] { return run_show(*a); }};
}

}  // namespace synapse::cli
