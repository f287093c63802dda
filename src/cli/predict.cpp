// synapse predict RUN INPUT...: image files (or a folder of them), or one sample of an IDX file. MNIST
// models get data::mnist_style's digit; colour runs (cifar-cnn, image folders) the image resized to the
// model's H x W and channels, standardised as in training (zoo::image_for_model, zoo::model_ready), with
// the run's class names as labels. --show writes what the model saw.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "cli/commands.h"
#include "core/check.h"

namespace synapse::cli {
namespace {

namespace fs = std::filesystem;

bool is_idx(const std::string& path) {
  return path.find("idx") != std::string::npos || path.ends_with("-ubyte") || path.ends_with("-ubyte.gz");
}

bool is_image_name(const fs::path& p) {
  static const std::set<std::string> kinds{".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".pgm", ".ppm", ".pnm"};
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return kinds.contains(ext);
}

// The files named on the command line, a folder standing for its image files (sorted by name).
std::vector<std::string> expand(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(in))
      if (e.is_regular_file() && is_image_name(e.path())) found.push_back(e.path().string());
    SYN_CHECK(!found.empty(), "folder '{}' holds no image files (.png, .jpg, .jpeg, .bmp, .gif, .tga, .pgm, .ppm, .pnm)", in);
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// The old path, for comparison (--raw): the whole image box-filtered to 28x28 and inverted when light.
Tensor raw_28x28(const Tensor& image) {
  const std::int64_t h = image.dim(0), w = image.dim(1), c = image.ndim() == 3 ? image.dim(2) : 1;
  Tensor out = zeros({28, 28});
  float* o = out.data<float>();
  const auto grey = [&](std::int64_t y, std::int64_t x) {
    const std::int64_t i = (y * w + x) * c;
    const double scale = image.dtype() == DType::Int32 ? 65535.0 : 255.0;
    const auto px = [&](std::int64_t k) {
      return image.dtype() == DType::Int32 ? static_cast<double>(image.data<std::int32_t>()[i + k])
                                           : static_cast<double>(image.data<std::uint8_t>()[i + k]);
    };
    return (c >= 3 ? 0.299 * px(0) + 0.587 * px(1) + 0.114 * px(2) : px(0)) / scale;
  };
  for (std::int64_t y = 0; y < 28; ++y)
    for (std::int64_t x = 0; x < 28; ++x) {
      const std::int64_t y0 = y * h / 28, y1 = std::max(y0 + 1, (y + 1) * h / 28);
      const std::int64_t x0 = x * w / 28, x1 = std::max(x0 + 1, (x + 1) * w / 28);
      double acc = 0;
      for (std::int64_t yy = y0; yy < y1; ++yy)
        for (std::int64_t xx = x0; xx < x1; ++xx) acc += grey(yy, xx);
      o[y * 28 + x] = static_cast<float>(acc / static_cast<double>((y1 - y0) * (x1 - x0)));
    }
  float mean = 0;
  for (int i = 0; i < 784; ++i) mean += o[i];
  if (mean / 784.0f > 0.5f)
    for (int i = 0; i < 784; ++i) o[i] = 1.0f - o[i];
  return out;
}

// --show's file for `input`: DIR/STEM-HxW.png, numbered when two inputs share a stem.
std::string shown_path(const std::string& dir, const std::string& input, const Shape& shape, std::map<std::string, int>& used) {
  const std::string stem = fs::path(input).stem().string();
  const std::string size = fmt::format("{}x{}", shape[0], shape[1]);
  const int n = used[stem]++;
  return (fs::path(dir) / (n == 0 ? fmt::format("{}-{}.png", stem, size) : fmt::format("{}-{}-{}.png", stem, n + 1, size)))
      .string();
}

// float32 [H, W, C] in [0, 1] -> uint8 [H, W, C] for write_png.
Tensor to_bytes(const Tensor& image) {
  Tensor out = Tensor::empty(image.shape(), DType::UInt8);
  const float* f = image.data<float>();
  for (std::int64_t i = 0; i < image.numel(); ++i)
    out.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(std::lround(std::clamp(f[i], 0.0f, 1.0f) * 255.0f));
  return out;
}

}  // namespace

Command add_predict(CLI::App& app) {
  struct Args {
    std::string checkpoint, show;
    std::vector<std::string> inputs;
    std::int64_t index = 0;
    bool json = false, raw = false;
    std::string precision = "fp32";
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("predict",
                                 "Classify images (PNG, JPEG, ...), folders of them, or one sample of an IDX file");
  sub->add_option("checkpoint", a->checkpoint, "A model file or a run folder (its model.syn)")->required();
  sub->add_option("inputs", a->inputs, "Image files, folders of images, or an IDX images file (MNIST models)")->required();
  sub->add_option("--index", a->index, "Which sample of an IDX file")
      ->capture_default_str()
      ->check(integer_in(0, std::numeric_limits<std::int64_t>::max()));
  sub->add_option("--show", a->show, "Write the image the model saw for each input to this folder (STEM-HxW.png)");
  sub->add_flag("--json", a->json, "Print the results as one JSON document");
  sub->add_flag("--raw", a->raw, "MNIST models: skip the MNIST-style preprocessing, only resize to 28x28 (and invert a light image)");
  add_precision_option(sub, a->precision, "of the model");
  return {sub, [a] {
            const MatmulPrecisionGuard precision(precision_flag(a->precision));
            const zoo::Trained t = zoo::load_trained(a->checkpoint);
            const zoo::ModelInput in = zoo::model_input(t.checkpoint);
            const bool mnist = in.data == "mnist";
            const std::string takes = fmt::format("{}x{} {} images", in.shape[0], in.shape[1], in.shape[2] == 1 ? "grey" : "RGB");
            SYN_CHECK(mnist || !a->raw, "--raw is for MNIST models (it skips the digit preprocessing); model '{}' ({}) takes {}, "
                      "resized from any image", t.name, t.path, takes);
            if (!a->show.empty()) {
              std::error_code ec;
              fs::create_directories(a->show, ec);
              SYN_CHECK(fs::is_directory(a->show), "--show: cannot create the folder '{}'{}", a->show,
                        ec ? ": " + ec.message() : "");
            }
            // Every input's image as the model sees it, or why it has none.
            struct Item {
              std::string file, error, shown;
              Tensor seen;  // float [H, W, C] in [0, 1]
            };
            std::vector<Item> items;
            for (const auto& file : expand(a->inputs)) {
              Item it{file, {}, {}, {}};
              try {
                if (is_idx(file)) {
                  SYN_CHECK(mnist, "'{}' is an IDX file (MNIST digits); model '{}' takes {}: give image files (PNG, JPEG, ...)",
                            file, t.name, takes);
                  const Tensor images = data::read_idx(file);
                  SYN_CHECK(images.ndim() == 3, "'{}' holds {} values, not images [N, H, W]", file, to_string(images.shape()));
                  SYN_CHECK(a->index >= 0 && a->index < images.dim(0), "--index {} is outside the {} images of '{}'", a->index,
                            images.dim(0), file);
                  it.seen = reshape(zoo::images_to_float(slice(images, {a->index, 0, 0}, {1, -1, -1})), {28, 28, 1});
                } else {
                  const Tensor image = data::read_image(file);
                  if (a->raw) {
                    try {
                      it.seen = reshape(raw_28x28(image), {28, 28, 1});
                    } catch (const std::exception& e) {
                      throw Error(fmt::format("'{}': {}", file, e.what()));
                    }
                  } else {
                    it.seen = zoo::image_for_model(in, image, file);
                  }
                }
              } catch (const std::exception& e) {
                it.error = e.what();
              }
              items.push_back(std::move(it));
            }
            std::vector<Tensor> rows;
            for (const auto& it : items)
              if (it.seen.defined()) rows.push_back(it.seen);
            const std::size_t classes = in.class_names.size();
            std::vector<float> probs;
            if (!rows.empty())
              probs = softmax(train::predict(*t.model, zoo::model_ready(in, data::stack_rows(rows)), 256)).to_vector<float>();

            std::map<std::string, int> used;
            nlohmann::json results = nlohmann::json::array();
            std::size_t row = 0;
            int failed = 0;
            const bool one = items.size() == 1;
            for (auto& it : items) {
              if (!it.error.empty()) {
                ++failed;
                fmt::print(stderr, "synapse: error: {}\n", it.error);
                results.push_back({{"file", it.file}, {"error", it.error}});
                continue;
              }
              if (!a->show.empty()) {
                it.shown = shown_path(a->show, it.file, in.shape, used);
                data::write_png(it.shown, it.seen.dim(2) == 1 ? reshape(it.seen, {it.seen.dim(0), it.seen.dim(1)}) : to_bytes(it.seen));
              }
              const std::vector<float> p(probs.begin() + static_cast<std::ptrdiff_t>(row * classes),
                                         probs.begin() + static_cast<std::ptrdiff_t>((row + 1) * classes));
              ++row;
              const auto best = std::max_element(p.begin(), p.end()) - p.begin();
              const float confidence = p[static_cast<std::size_t>(best)];
              const std::string& label = in.class_names[static_cast<std::size_t>(best)];
              nlohmann::json r{{"file", it.file}, {"prediction", best}, {"label", label}, {"confidence", confidence},
                               {"probabilities", p}};
              if (!it.shown.empty()) r["shown"] = it.shown;
              results.push_back(r);
              if (a->json) continue;
              if (one) {
                fmt::print("prediction: {} ({:.1f}%)\n", label, 100.0 * confidence);
                for (std::size_t c = 0; c < p.size(); ++c) fmt::print("  {}: {:.4f}\n", in.class_names[c], p[c]);
              } else {
                fmt::print("{}: prediction: {} ({:.1f}%)\n", it.file, label, 100.0 * confidence);
              }
              if (!it.shown.empty()) fmt::print("  the model saw: {}\n", it.shown);
            }
            const std::string preprocessing =
                mnist ? (a->raw ? "raw" : "mnist_style")
                      : fmt::format("resized to {}{}", takes, in.standardize ? ", standardised per image" : "");
            if (a->json)
              fmt::print("{}\n", nlohmann::json{{"model", t.path}, {"preprocessing", preprocessing}, {"classes", in.class_names},
                                                {"results", results}}.dump(1));
            if (failed > 0 && !one) fmt::print(stderr, "synapse: {} of {} inputs could not be read\n", failed, items.size());
            return failed > 0 ? 1 : 0;
          }};
}

}  // namespace synapse::cli
