// synapse predict CHECKPOINT INPUT: the digit in a PNG/JPEG image or in one sample of an IDX file.
#include <stb/stb_image.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "cli/commands.h"
#include "core/check.h"

namespace synapse::cli {
namespace {

// A grayscale image file as float [1, 28, 28, 1] in [0, 1], white digit on black like MNIST: images
// with a light background are inverted; other sizes are resampled (box filter) to 28x28.
Tensor load_image(const std::string& path) {
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &channels, 1), stbi_image_free);
  SYN_CHECK(pixels != nullptr, "cannot read image '{}': {}", path, stbi_failure_reason());
  Tensor out = zeros({1, 28, 28, 1});
  float* o = out.data<float>();
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      const int y0 = y * h / 28, y1 = std::max(y0 + 1, (y + 1) * h / 28);
      const int x0 = x * w / 28, x1 = std::max(x0 + 1, (x + 1) * w / 28);
      double acc = 0;
      for (int yy = y0; yy < y1; ++yy)
        for (int xx = x0; xx < x1; ++xx) acc += pixels.get()[yy * w + xx];
      o[y * 28 + x] = static_cast<float>(acc / ((y1 - y0) * (x1 - x0)) / 255.0);
    }
  }
  float mean = 0;
  for (int i = 0; i < 784; ++i) mean += o[i];
  if (mean / 784.0f > 0.5f)
    for (int i = 0; i < 784; ++i) o[i] = 1.0f - o[i];
  return out;
}

}  // namespace

Command add_predict(CLI::App& app) {
  struct Args {
    std::string checkpoint, input;
    std::int64_t index = 0;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("predict", "Classify a digit: a PNG/JPEG image or one sample of an IDX file");
  sub->add_option("checkpoint", a->checkpoint, "A model file or a run folder (its model.syn)")->required();
  sub->add_option("input", a->input, "An image file (PNG, JPEG, ...) or an IDX images file")->required();
  sub->add_option("--index", a->index, "Which sample of an IDX file")
      ->capture_default_str()
      ->check(integer_in(0, std::numeric_limits<std::int64_t>::max()));
  return {sub, [a] {
            const zoo::Trained t = zoo::load_trained(a->checkpoint);
            Tensor x;
            const bool idx = a->input.find("idx") != std::string::npos || a->input.ends_with("-ubyte") ||
                             a->input.ends_with("-ubyte.gz");
            if (idx) {
              const Tensor images = data::read_idx(a->input);
              SYN_CHECK(images.ndim() == 3, "'{}' holds {} values, not images [N, H, W]", a->input, to_string(images.shape()));
              SYN_CHECK(a->index >= 0 && a->index < images.dim(0), "--index {} is outside the {} images of '{}'", a->index,
                        images.dim(0), a->input);
              x = zoo::images_to_float(slice(images, {a->index, 0, 0}, {1, -1, -1}));
            } else {
              x = load_image(a->input);
            }
            NoGradGuard no_grad;
            const Tensor p = softmax((*t.model)(x));
            const auto probs = p.to_vector<float>();
            const auto best = std::max_element(probs.begin(), probs.end()) - probs.begin();
            fmt::print("prediction: {} ({:.1f}%)\n", best, 100.0 * probs[static_cast<std::size_t>(best)]);
            for (std::size_t c = 0; c < probs.size(); ++c) fmt::print("  {}: {:.4f}\n", c, probs[c]);
            return 0;
          }};
}

}  // namespace synapse::cli
