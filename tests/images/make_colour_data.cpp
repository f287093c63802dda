// Writes the colour-image test data the CLI tests train on (CIFAR-10 cannot be downloaded here):
//   make_colour_data cifar DIR PER_BATCH           data_batch_1..5.bin + test_batch.bin, PER_BATCH records each
//   make_colour_data folders DIR PER_CLASS SIZE    DIR/{train,test}/class_K/*.png, 3 classes, SIZE x SIZE RGB
//   make_colour_data idx-folders IDX_DIR OUT N_TRAIN N_TEST
//       the first N_TRAIN / N_TEST images of an MNIST-format data set as OUT/png/{train,test}/LABEL/*.png,
//       and the same images as IDX files in OUT/idx (the image-folder path against the IDX path)
// The synthetic images are learnable: class k is a bright horizontal band at a class-specific height in
// a class-specific channel, over seeded noise.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "synapse/data.h"
#include "synapse/ops.h"
#include "synapse/random.h"

using namespace synapse;
namespace fs = std::filesystem;

namespace {

// Pixel (y, x, c) of a synthetic image of class k, 0..255.
unsigned char synthetic(int k, int y, int /*x*/, int c, int side, Generator& g) {
  const int band = side / 6, top = (k % 5) * band;
  const bool lit = y >= top && y < top + band && c == (k / 5) % 3;
  const int noise = static_cast<int>(g.next_u64() % 80);
  return static_cast<unsigned char>(lit ? 170 + noise : noise);
}

int cifar(const std::string& dir, int per_batch) {
  fs::create_directories(dir);
  Generator g(42);
  for (int b = 0; b <= 5; ++b) {
    const std::string name = b == 0 ? "test_batch.bin" : "data_batch_" + std::to_string(b) + ".bin";
    std::vector<unsigned char> bytes;
    for (int i = 0; i < per_batch; ++i) {
      const int k = static_cast<int>(g.next_u64() % 10);
      bytes.push_back(static_cast<unsigned char>(k));
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x) bytes.push_back(synthetic(k, y, x, c, 32, g));
    }
    std::ofstream(fs::path(dir) / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                                 static_cast<std::streamsize>(bytes.size()));
  }
  return 0;
}

int folders(const std::string& dir, int per_class, int side) {
  Generator g(7);
  for (const char* part : {"train", "test"})
    for (int k = 0; k < 3; ++k) {
      const fs::path cls = fs::path(dir) / part / ("class_" + std::to_string(k));
      fs::create_directories(cls);
      const int n = std::string(part) == "train" ? per_class : per_class / 2;
      for (int i = 0; i < n; ++i) {
        Tensor img = Tensor::empty({side, side, 3}, DType::UInt8);
        for (int y = 0; y < side; ++y)
          for (int x = 0; x < side; ++x)
            for (int c = 0; c < 3; ++c) img.data<std::uint8_t>()[(y * side + x) * 3 + c] = synthetic(k * 2, y, x, c, side, g);
        data::write_png((cls / (std::to_string(i) + ".png")).string(), img);
      }
    }
  return 0;
}

int idx_folders(const std::string& idx_dir, const std::string& out, std::int64_t n_train, std::int64_t n_test) {
  const data::Mnist m = data::load_mnist(idx_dir);
  fs::create_directories(fs::path(out) / "idx");
  const auto write = [&](const Tensor& images, const Tensor& labels, std::int64_t n, const char* part, const char* prefix) {
    const Tensor x = slice(images, {0, 0, 0}, {n, -1, -1}).clone(), y = slice(labels, {0}, {n}).clone();
    data::write_idx((fs::path(out) / "idx" / (std::string(prefix) + "-images-idx3-ubyte")).string(), x);
    data::write_idx((fs::path(out) / "idx" / (std::string(prefix) + "-labels-idx1-ubyte")).string(), y);
    for (std::int64_t i = 0; i < n; ++i) {
      const fs::path cls = fs::path(out) / "png" / part / std::to_string(y.data<std::uint8_t>()[i]);
      fs::create_directories(cls);
      char name[32];
      std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(i));
      data::write_png((cls / name).string(), slice(x, {i, 0, 0}, {1, -1, -1}).reshape({x.dim(1), x.dim(2)}).clone());
    }
  };
  write(m.train_images, m.train_labels, n_train, "train", "train");
  write(m.test_images, m.test_labels, n_test, "test", "t10k");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 3 && a[0] == "cifar") return cifar(a[1], std::stoi(a[2]));
    if (a.size() == 4 && a[0] == "folders") return folders(a[1], std::stoi(a[2]), std::stoi(a[3]));
    if (a.size() == 5 && a[0] == "idx-folders") return idx_folders(a[1], a[2], std::stoll(a[3]), std::stoll(a[4]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_colour_data: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: make_colour_data cifar DIR PER_BATCH | folders DIR PER_CLASS SIZE | idx-folders IDX_DIR OUT N_TRAIN N_TEST\n");
  return 2;
}
