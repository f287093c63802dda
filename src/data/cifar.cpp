// CIFAR-10 / CIFAR-100 binary files: fixed-size records (label byte(s) + 3072 channels-first pixel
// bytes), converted to float32 NHWC in [0, 1] and int64 labels.
#include <filesystem>

#include "core/check.h"
#include "data/file_bytes.h"
#include "synapse/data.h"
#include "synapse/ops.h"

namespace synapse::data {
namespace {

namespace fs = std::filesystem;
constexpr std::int64_t kSide = 32, kPlane = kSide * kSide, kPixels = 3 * kPlane;


// `label_bytes` label bytes per record; label k must be below limits[k]. The last label byte is the
// one returned in `labels` (CIFAR-100's fine label), the first, if two, in `coarse_labels`.
CifarData read_records(const std::string& path, std::int64_t label_bytes, const std::vector<std::int64_t>& limits,
                       const char* format) {
  const std::string bytes = internal::read_file_bytes(path, "CIFAR file");
  const std::int64_t record = label_bytes + kPixels;
  const auto size = static_cast<std::int64_t>(bytes.size());
  SYN_CHECK(size > 0, "cannot read {} file '{}': it is empty (0 bytes)", format, path);
  SYN_CHECK(size % record == 0,
            "{} file '{}' is truncated or not a {} file: {} bytes is not a whole number of {}-byte records "
            "({} records and {} bytes left over)",
            format, path, format, size, record, size / record, size % record);
  const std::int64_t n = size / record;
  CifarData d;
  d.images = Tensor::empty({n, kSide, kSide, 3}, DType::Float32);
  d.labels = Tensor::empty({n}, DType::Int64);
  if (label_bytes == 2) d.coarse_labels = Tensor::empty({n}, DType::Int64);
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  float* img = d.images.data<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    const unsigned char* r = src + i * record;
    for (std::int64_t k = 0; k < label_bytes; ++k)
      SYN_CHECK(r[k] < limits[static_cast<std::size_t>(k)], "{} file '{}': record {} has label {} (expected 0..{})", format,
                path, i, static_cast<int>(r[k]), limits[static_cast<std::size_t>(k)] - 1);
    d.labels.data<std::int64_t>()[i] = r[label_bytes - 1];
    if (label_bytes == 2) d.coarse_labels.data<std::int64_t>()[i] = r[0];
    const unsigned char* px = r + label_bytes;
    float* out = img + i * kPixels;
    for (std::int64_t p = 0; p < kPlane; ++p)
      for (std::int64_t c = 0; c < 3; ++c) out[p * 3 + c] = static_cast<float>(px[c * kPlane + p]) * (1.0f / 255.0f);  // as data::scale
  }
  return d;
}

// `dir` itself when it holds `probe`, else its subfolder `sub` when that does.
std::string find_dir(const std::string& dir, const std::string& sub, const std::string& probe, const char* format) {
  std::error_code ec;
  SYN_CHECK(fs::is_directory(dir, ec), "{} folder '{}' does not exist", format, dir);
  if (fs::exists(fs::path(dir) / probe, ec)) return dir;
  if (fs::exists(fs::path(dir) / sub / probe, ec)) return (fs::path(dir) / sub).string();
  detail::fail("{} folder '{}' has no {} (nor has {}/{}); the binary version of the data set is expected", format, dir,
               probe, dir, sub);
}

CifarData concat_batches(const std::vector<CifarData>& parts) {
  std::vector<Tensor> images, labels;
  for (const auto& p : parts) images.push_back(p.images), labels.push_back(p.labels);
  return {concat(images, 0), concat(labels, 0), Tensor()};
}

}  // namespace

CifarData read_cifar10(const std::string& path) { return read_records(path, 1, {10}, "CIFAR-10"); }
CifarData read_cifar100(const std::string& path) { return read_records(path, 2, {20, 100}, "CIFAR-100"); }

Cifar load_cifar10(const std::string& dir) {
  const std::string d = find_dir(dir, "cifar-10-batches-bin", "test_batch.bin", "CIFAR-10");
  std::vector<CifarData> parts;
  for (int i = 1; i <= 5; ++i) {
    const auto path = fs::path(d) / fmt::format("data_batch_{}.bin", i);
    SYN_CHECK(fs::exists(path), "CIFAR-10 folder '{}' has test_batch.bin but no {}", d, path.filename().string());
    parts.push_back(read_cifar10(path.string()));
  }
  return {concat_batches(parts), read_cifar10((fs::path(d) / "test_batch.bin").string())};
}

Cifar load_cifar100(const std::string& dir) {
  const std::string d = find_dir(dir, "cifar-100-binary", "test.bin", "CIFAR-100");
  return {read_cifar100((fs::path(d) / "train.bin").string()), read_cifar100((fs::path(d) / "test.bin").string())};
}

}  // namespace synapse::data
