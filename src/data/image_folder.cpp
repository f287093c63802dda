// A folder of images per class (Keras's image_dataset_from_directory): listing, the seeded split, and
// the per-file decode -> channel conversion -> bilinear resize that runs when an example is produced.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "core/check.h"
#include "synapse/data.h"
#include "synapse/ops.h"

namespace synapse::data {
namespace {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif";
}

}  // namespace

Tensor resize_bilinear(const Tensor& image, std::int64_t height, std::int64_t width) {
  SYN_CHECK(image.defined() && image.ndim() == 3 && image.dtype() == DType::Float32,
            "resize_bilinear: expected float32 [H, W, C], got {}", image.defined() ? to_string(image.shape()) : "undefined");
  SYN_CHECK(height > 0 && width > 0, "resize_bilinear: size {}x{} must be positive", height, width);
  const std::int64_t h = image.dim(0), w = image.dim(1), c = image.dim(2);
  if (h == height && w == width) return image;
  Tensor out = Tensor::empty({height, width, c}, DType::Float32);
  const float* in = image.data<float>();
  float* o = out.data<float>();
  // Source coordinate of output pixel i: (i + 0.5) * in / out - 0.5, clamped to the image.
  auto axis = [](std::int64_t i, std::int64_t n_in, std::int64_t n_out, std::int64_t& i0, std::int64_t& i1, float& f) {
    const double s = std::clamp((static_cast<double>(i) + 0.5) * static_cast<double>(n_in) / static_cast<double>(n_out) - 0.5,
                                0.0, static_cast<double>(n_in - 1));
    i0 = static_cast<std::int64_t>(std::floor(s));
    i1 = std::min(i0 + 1, n_in - 1);
    f = static_cast<float>(s - static_cast<double>(i0));
  };
  for (std::int64_t y = 0; y < height; ++y) {
    std::int64_t y0, y1;
    float fy;
    axis(y, h, height, y0, y1, fy);
    for (std::int64_t x = 0; x < width; ++x) {
      std::int64_t x0, x1;
      float fx;
      axis(x, w, width, x0, x1, fx);
      for (std::int64_t k = 0; k < c; ++k) {
        const float a = in[(y0 * w + x0) * c + k], b = in[(y0 * w + x1) * c + k];
        const float d = in[(y1 * w + x0) * c + k], e = in[(y1 * w + x1) * c + k];
        const float top = a + (b - a) * fx, bottom = d + (e - d) * fx;
        o[(y * width + x) * c + k] = top + (bottom - top) * fy;
      }
    }
  }
  return out;
}

Tensor to_float_image(const Tensor& image, std::int64_t height, std::int64_t width, int channels, const std::string& name) {
  SYN_CHECK(channels == 1 || channels == 3, "image '{}': channels must be 1 (grayscale) or 3 (rgb), got {}", name, channels);
  SYN_CHECK(image.defined() && image.ndim() == 3 && image.dim(2) >= 1 && image.dim(2) <= 4,
            "image '{}': expected a decoded image [H, W, 1..4], got {}", name,
            image.defined() ? to_string(image.shape()) : "undefined");
  SYN_CHECK(image.dtype() == DType::UInt8 || image.dtype() == DType::Int32,
            "image '{}': expected uint8 or 16-bit (int32) pixels, got {}", name, dtype_name(image.dtype()));
  const std::int64_t h = image.dim(0), w = image.dim(1), c = image.dim(2), n = h * w;
  // v * (1 / 255), as data::scale computes it: a PNG gives the same floats as the IDX file it came from.
  const float inv = image.dtype() == DType::UInt8 ? 1.0f / 255.0f : 1.0f / 65535.0f;
  auto px = [&](std::int64_t i) {
    return image.dtype() == DType::UInt8 ? static_cast<float>(image.data<std::uint8_t>()[i]) * inv
                                         : static_cast<float>(image.data<std::int32_t>()[i]) * inv;
  };
  Tensor f = Tensor::empty({h, w, channels}, DType::Float32);
  float* o = f.data<float>();
  const bool colour = c >= 3;  // 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
  for (std::int64_t i = 0; i < n; ++i) {
    if (colour && channels == 3) {
      for (std::int64_t k = 0; k < 3; ++k) o[i * 3 + k] = px(i * c + k);
    } else if (colour) {
      o[i] = 0.2989f * px(i * c) + 0.587f * px(i * c + 1) + 0.114f * px(i * c + 2);
    } else {
      for (std::int64_t k = 0; k < channels; ++k) o[i * channels + k] = px(i * c);
    }
  }
  return resize_bilinear(f, height, width);
}

ImageFolder::ImageFolder(std::string root, ImageFolderOptions options) : root_(std::move(root)), options_(options) {
  std::error_code ec;
  SYN_CHECK(fs::is_directory(root_, ec), "image folder '{}' does not exist", root_);
  SYN_CHECK(options_.height > 0 && options_.width > 0, "image folder '{}': image size {}x{} must be positive", root_,
            options_.height, options_.width);
  SYN_CHECK(options_.channels == 1 || options_.channels == 3, "image folder '{}': channels must be 1 or 3, got {}", root_,
            options_.channels);
  SYN_CHECK(options_.validation_split >= 0.0 && options_.validation_split < 1.0,
            "image folder '{}': validation_split must be in [0, 1), got {}", root_, options_.validation_split);
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root_))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  SYN_CHECK(!dirs.empty(), "image folder '{}' has no class folders (expected ROOT/CLASS/IMAGE.png|jpg)", root_);
  for (const auto& d : dirs) {
    std::vector<fs::path> images;
    for (const auto& e : fs::directory_iterator(d))
      if (e.is_regular_file() && is_image_file(e.path())) images.push_back(e.path());
    SYN_CHECK(!images.empty(), "image folder '{}': class folder '{}' has no .png, .jpg, .jpeg, .bmp or .gif files", root_,
              d.string());
    std::sort(images.begin(), images.end());
    for (const auto& p : images) {
      files_.push_back(p.string());
      labels_.push_back(static_cast<std::int64_t>(classes_.size()));
    }
    classes_.push_back(d.filename().string());
  }
}

std::vector<std::size_t> ImageFolder::indices(Subset s) const {
  const auto n = static_cast<std::int64_t>(files_.size());
  std::vector<std::size_t> idx;
  if (s == Subset::All) {
    for (std::int64_t i = 0; i < n; ++i) idx.push_back(static_cast<std::size_t>(i));
    return idx;
  }
  const auto n_val = static_cast<std::int64_t>(std::llround(static_cast<double>(n) * options_.validation_split));
  const std::vector<std::int64_t> perm = permutation(n, options_.seed);
  const std::int64_t lo = s == Subset::Training ? 0 : n - n_val, hi = s == Subset::Training ? n - n_val : n;
  for (std::int64_t i = lo; i < hi; ++i) idx.push_back(static_cast<std::size_t>(perm[static_cast<std::size_t>(i)]));
  return idx;
}

std::vector<std::string> ImageFolder::files(Subset s) const {
  std::vector<std::string> out;
  for (auto i : indices(s)) out.push_back(files_[i]);
  return out;
}

std::vector<std::int64_t> ImageFolder::labels(Subset s) const {
  std::vector<std::int64_t> out;
  for (auto i : indices(s)) out.push_back(labels_[i]);
  return out;
}

Dataset ImageFolder::dataset(Subset s) const {
  auto files = std::make_shared<const std::vector<std::string>>(this->files(s));
  auto labels = std::make_shared<const std::vector<std::int64_t>>(this->labels(s));
  const ImageFolderOptions o = options_;
  return Dataset::from_function(static_cast<std::int64_t>(files->size()), [files, labels, o](std::int64_t i) {
    const std::string& path = (*files)[static_cast<std::size_t>(i)];
    Tensor label = Tensor::empty({}, DType::Int64);
    label.data<std::int64_t>()[0] = (*labels)[static_cast<std::size_t>(i)];
    return Example{to_float_image(read_image(path), o.height, o.width, o.channels, path), label};
  });
}

std::pair<Tensor, Tensor> ImageFolder::load(Subset s) const {
  std::vector<Tensor> images, labels;
  for (const Example& b : dataset(s).batch(256).prefetch(2)) {
    images.push_back(b[0]);
    labels.push_back(b[1]);
  }
  SYN_CHECK(!images.empty(), "image folder '{}': the {} subset is empty", root_,
            s == Subset::Validation ? "validation" : "training");
  if (images.size() == 1) return {images[0], labels[0]};
  return {concat(images, 0), concat(labels, 0)};
}

}  // namespace synapse::data
