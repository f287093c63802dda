// CIFAR-10/100 readers and the image-folder dataset, on files these tests write.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "synapse/data.h"
#include "tmp_dir.h"
#include "synapse/ops.h"

using namespace synapse;
using namespace synapse::data;
namespace fs = std::filesystem;

namespace {

using synapse::testing::TmpDir;

using synapse::testing::write_bytes;

// The pixel byte of record i, channel c, plane position p: distinct enough to catch any mix-up.
unsigned char pixel_byte(int i, int c, int p) { return static_cast<unsigned char>((i * 7 + c * 101 + p * 13) % 256); }

// `n` records with the given label bytes per record (label_of(i) gives them).
std::vector<unsigned char> cifar_records(int n, const std::vector<std::vector<unsigned char>>& labels) {
  std::vector<unsigned char> b;
  for (int i = 0; i < n; ++i) {
    for (unsigned char l : labels[static_cast<std::size_t>(i)]) b.push_back(l);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) b.push_back(pixel_byte(i, c, p));
  }
  return b;
}

template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void check_pixels(const Tensor& images, int n, int first_record = 0) {
  ASSERT_EQ(images.shape(), (Shape{n, 32, 32, 3}));
  ASSERT_EQ(images.dtype(), DType::Float32);
  const float* p = images.data<float>();
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        for (int c = 0; c < 3; ++c)
          ASSERT_EQ(p[((i * 32 + y) * 32 + x) * 3 + c], static_cast<float>(pixel_byte(i + first_record, c, y * 32 + x)) * (1.0f / 255.0f))
              << i << " " << y << " " << x << " " << c;
}

}  // namespace

TEST(Cifar, TenReadsPixelsChannelsLastAndLabels) {
  TmpDir d;
  write_bytes(d.file("b.bin"), cifar_records(3, {{3}, {9}, {0}}));
  const CifarData c = read_cifar10(d.file("b.bin"));
  check_pixels(c.images, 3);
  EXPECT_EQ(c.labels.dtype(), DType::Int64);
  EXPECT_EQ(c.labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{3, 9, 0}));
  EXPECT_FALSE(c.coarse_labels.defined());
}

TEST(Cifar, HundredReadsCoarseAndFineLabels) {
  TmpDir d;
  write_bytes(d.file("train.bin"), cifar_records(2, {{19, 99}, {4, 31}}));
  const CifarData c = read_cifar100(d.file("train.bin"));
  check_pixels(c.images, 2);
  EXPECT_EQ(c.labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{99, 31}));
  EXPECT_EQ(c.coarse_labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{19, 4}));
}

TEST(Cifar, BadFilesNameTheFileAndTheProblem) {
  TmpDir d;
  std::vector<unsigned char> cut = cifar_records(2, {{1}, {2}});
  cut.resize(cut.size() - 100);  // 6046 bytes
  write_bytes(d.file("cut.bin"), cut);
  std::string e = error_of([&] { read_cifar10(d.file("cut.bin")); });
  EXPECT_NE(e.find("cut.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("6046 bytes is not a whole number of 3073-byte records (1 records and 2973 bytes left over)"),
            std::string::npos)
      << e;
  // A CIFAR-100 file read as CIFAR-10: 2 records of 3074 bytes.
  write_bytes(d.file("c100.bin"), cifar_records(2, {{1, 2}, {3, 4}}));
  e = error_of([&] { read_cifar10(d.file("c100.bin")); });
  EXPECT_NE(e.find("6148 bytes is not a whole number of 3073-byte records"), std::string::npos) << e;
  write_bytes(d.file("label.bin"), cifar_records(2, {{1}, {10}}));
  e = error_of([&] { read_cifar10(d.file("label.bin")); });
  EXPECT_NE(e.find("label.bin': record 1 has label 10 (expected 0..9)"), std::string::npos) << e;
  write_bytes(d.file("empty.bin"), {});
  e = error_of([&] { read_cifar10(d.file("empty.bin")); });
  EXPECT_NE(e.find("empty.bin': it is empty (0 bytes)"), std::string::npos) << e;
  e = error_of([&] { read_cifar10(d.file("missing.bin")); });
  EXPECT_NE(e.find("missing.bin': no such file"), std::string::npos) << e;
  write_bytes(d.file("fine.bin"), cifar_records(1, {{20, 5}}));
  e = error_of([&] { read_cifar100(d.file("fine.bin")); });
  EXPECT_NE(e.find("record 0 has label 20 (expected 0..19)"), std::string::npos) << e;
}

TEST(Cifar, LoadsTheFiveBatchesInOrderFromTheTarballFolder) {
  TmpDir d;
  const fs::path sub = d.path() / "cifar-10-batches-bin";
  fs::create_directories(sub);
  // Batch b holds records 2b .. 2b + 1 of one numbering, so order mistakes change the pixels.
  for (int b = 1; b <= 5; ++b) {
    std::vector<unsigned char> bytes;
    for (int i = 0; i < 2; ++i) {
      const int r = 2 * (b - 1) + i;
      bytes.push_back(static_cast<unsigned char>(r % 10));
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p) bytes.push_back(pixel_byte(r, c, p));
    }
    write_bytes((sub / ("data_batch_" + std::to_string(b) + ".bin")).string(), bytes);
  }
  write_bytes((sub / "test_batch.bin").string(), cifar_records(1, {{7}}));
  const Cifar c = load_cifar10(d.path().string());
  check_pixels(c.train.images, 10);
  EXPECT_EQ(c.train.labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(c.test.labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{7}));
  fs::remove(sub / "data_batch_3.bin");
  const std::string e = error_of([&] { load_cifar10(d.path().string()); });
  EXPECT_NE(e.find("has test_batch.bin but no data_batch_3.bin"), std::string::npos) << e;
  const std::string none = error_of([&] { load_cifar10((d.path() / "nowhere").string()); });
  EXPECT_NE(none.find("nowhere' does not exist"), std::string::npos) << none;
}

// ---- image folders ----

namespace {

// A uint8 RGB image h x w whose pixels are f(y, x, c).
template <class F> Tensor rgb_image(std::int64_t h, std::int64_t w, F f) {
  Tensor t = Tensor::empty({h, w, 3}, DType::UInt8);
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x)
      for (std::int64_t c = 0; c < 3; ++c) t.data<std::uint8_t>()[(y * w + x) * 3 + c] = static_cast<std::uint8_t>(f(y, x, c));
  return t;
}

// root/{a_cat: 3, b_dog: 2, c: 4} images of 4x4 (each pixel encodes class and file), plus a text file.
void make_folder(const fs::path& root) {
  const std::vector<std::pair<std::string, int>> classes{{"b_dog", 2}, {"a_cat", 3}, {"c", 4}};
  for (const auto& cls : classes) {
    const std::string& name = cls.first;  // not a structured binding: clang 14's lambdas cannot capture one
    const int n = cls.second;
    fs::create_directories(root / name);
    for (int i = 0; i < n; ++i)
      write_png((root / name / (std::to_string(i) + (i % 2 ? ".PNG" : ".png"))).string(),
                rgb_image(4, 4, [&](auto y, auto x, auto c) { return name[0] * 2 + i * 10 + y * 4 + x + c * 50; }));
  }
  std::ofstream(root / "a_cat" / "notes.txt") << "not an image";
}

}  // namespace

TEST(ImageFolder, ClassesAreSortedFolderNamesAndFilesAreSortedWithinThem) {
  TmpDir d;
  make_folder(d.path());
  const ImageFolder f(d.path().string(), {.height = 4, .width = 4});
  EXPECT_EQ(f.class_names(), (std::vector<std::string>{"a_cat", "b_dog", "c"}));
  EXPECT_EQ(f.labels(), (std::vector<std::int64_t>{0, 0, 0, 1, 1, 2, 2, 2, 2}));
  const auto files = f.files();
  ASSERT_EQ(files.size(), 9u);
  EXPECT_EQ(fs::path(files[0]).parent_path().filename(), "a_cat");
  EXPECT_EQ(fs::path(files[1]).filename(), "1.PNG");
  // Decoded exactly (no resize at 4x4): label and pixels of b_dog/1.PNG.
  auto [x, y] = f.load();
  ASSERT_EQ(x.shape(), (Shape{9, 4, 4, 3}));
  EXPECT_EQ(y.to_vector<std::int64_t>(), f.labels());
  const float* p = x.data<float>();
  for (int yy = 0; yy < 4; ++yy)
    for (int xx = 0; xx < 4; ++xx)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(p[((4 * 4 + yy) * 4 + xx) * 3 + c],
                  static_cast<float>(static_cast<std::uint8_t>('b' * 2 + 10 + yy * 4 + xx + c * 50)) * (1.0f / 255.0f));
}

TEST(ImageFolder, ResizesBilinearlyWithHalfPixelCentres) {
  // 2x2 -> 4x4: output i samples input (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped to [0, 1]).
  Tensor in = Tensor::empty({2, 2, 1}, DType::Float32);
  const float v[4] = {0.0f, 1.0f, 2.0f, 4.0f};
  std::copy(v, v + 4, in.data<float>());
  const Tensor out = resize_bilinear(in, 4, 4);
  const float w[4] = {0.0f, 0.25f, 0.75f, 1.0f};  // weight of the second row/column
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const float top = v[0] + (v[1] - v[0]) * w[x], bottom = v[2] + (v[3] - v[2]) * w[x];
      EXPECT_FLOAT_EQ(out.data<float>()[y * 4 + x], top + (bottom - top) * w[y]) << y << " " << x;
    }
  // Shrinking 4x4 -> 2x2 samples 0.5 and 2.5: the mean of each 2x2 block for a linear ramp.
  Tensor ramp = Tensor::empty({4, 4, 1}, DType::Float32);
  for (int i = 0; i < 16; ++i) ramp.data<float>()[i] = static_cast<float>(i);
  EXPECT_EQ(resize_bilinear(ramp, 2, 2).to_vector<float>(), (std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f}));
}

TEST(ImageFolder, ConvertsToGreyOrRgb) {
  const Tensor rgb = rgb_image(1, 2, [](auto, auto x, auto c) { return x == 0 ? (c == 0 ? 255 : 0) : 100 + c; });
  const Tensor grey = to_float_image(rgb, 1, 2, 1);
  ASSERT_EQ(grey.shape(), (Shape{1, 2, 1}));
  const float inv = 1.0f / 255.0f;
  EXPECT_FLOAT_EQ(grey.data<float>()[0], 0.2989f);
  EXPECT_FLOAT_EQ(grey.data<float>()[1], 0.2989f * (100 * inv) + 0.587f * (101 * inv) + 0.114f * (102 * inv));
  Tensor g = Tensor::empty({1, 1, 2}, DType::UInt8);  // grey + alpha -> RGB repeats the grey, drops alpha
  g.data<std::uint8_t>()[0] = 51;
  g.data<std::uint8_t>()[1] = 7;
  EXPECT_EQ(to_float_image(g, 1, 1, 3).to_vector<float>(), (std::vector<float>(3, 51 * inv)));
  Tensor deep = Tensor::empty({1, 1, 1}, DType::Int32);  // a 16-bit PNG's pixel
  deep.data<std::int32_t>()[0] = 65535;
  EXPECT_EQ(to_float_image(deep, 1, 1, 1).to_vector<float>(), (std::vector<float>{1.0f}));
}

TEST(ImageFolder, TheValidationSplitIsSeededAndDisjoint) {
  TmpDir d;
  make_folder(d.path());
  ImageFolderOptions o{.height = 4, .width = 4, .channels = 1, .validation_split = 0.3, .seed = 5};
  const ImageFolder a(d.path().string(), o), b(d.path().string(), o);
  const auto train = a.files(Subset::Training), val = a.files(Subset::Validation);
  EXPECT_EQ(val.size(), 3u);  // round(9 * 0.3)
  EXPECT_EQ(train.size(), 6u);
  EXPECT_EQ(train, b.files(Subset::Training));
  EXPECT_EQ(val, b.files(Subset::Validation));
  std::set<std::string> all(train.begin(), train.end());
  all.insert(val.begin(), val.end());
  EXPECT_EQ(all.size(), 9u);
  o.seed = 6;
  EXPECT_NE(ImageFolder(d.path().string(), o).files(Subset::Training), train);
  // The labels follow the files.
  const auto labels = a.labels(Subset::Validation);
  for (std::size_t i = 0; i < val.size(); ++i) {
    const std::string cls = fs::path(val[i]).parent_path().filename().string();
    EXPECT_EQ(a.class_names()[static_cast<std::size_t>(labels[i])], cls);
  }
  auto [x, y] = a.load(Subset::Validation);
  EXPECT_EQ(x.shape(), (Shape{3, 4, 4, 1}));
}

TEST(ImageFolder, ACorruptFileIsNamedWhenItIsDecoded) {
  TmpDir d;
  make_folder(d.path());
  std::ofstream(d.path() / "b_dog" / "9.png") << "this is not a png";
  const ImageFolder f(d.path().string(), {.height = 4, .width = 4});  // listing does not decode
  const std::string e = error_of([&] {
    for (const Example& b : f.dataset().batch(4).prefetch(2)) (void)b;  // decoded on the prefetch thread
  });
  EXPECT_NE(e.find("b_dog/9.png"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot read image"), std::string::npos) << e;
}

TEST(ImageFolder, ErrorsNameTheFolder) {
  TmpDir d;
  std::string e = error_of([&] { ImageFolder((d.path() / "none").string()); });
  EXPECT_NE(e.find("none' does not exist"), std::string::npos) << e;
  e = error_of([&] { ImageFolder(d.path().string()); });
  EXPECT_NE(e.find("has no class folders"), std::string::npos) << e;
  fs::create_directories(d.path() / "empty_class");
  e = error_of([&] { ImageFolder(d.path().string()); });
  EXPECT_NE(e.find("empty_class' has no .png"), std::string::npos) << e;
}
