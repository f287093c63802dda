#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "synapse/data.h"
#include "tmp_dir.h"
#include "synapse/random.h"

using namespace synapse;
using namespace synapse::data;
namespace fs = std::filesystem;

namespace {

// A fresh temporary directory per test, removed afterwards.
class TmpDir : public synapse::testing::TmpDir {
 public:
  TmpDir() : synapse::testing::TmpDir("synapse_data_") {}
};

using synapse::testing::write_bytes;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// IDX header bytes: magic 0x0000TTDD then the extents, big-endian.
std::vector<unsigned char> idx_header(unsigned type, const std::vector<std::uint32_t>& dims) {
  std::vector<unsigned char> b = {0, 0, static_cast<unsigned char>(type), static_cast<unsigned char>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  return b;
}

std::vector<unsigned char> idx_file(unsigned type, const std::vector<std::uint32_t>& dims,
                                    const std::vector<unsigned char>& body) {
  auto b = idx_header(type, dims);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

std::vector<unsigned char> iota_bytes(std::size_t n, unsigned char start = 0) {
  std::vector<unsigned char> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Runs `fn`, expecting a synapse::Error whose message contains every one of `parts`.
template <class Fn> void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error containing '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// All examples of one pass.
std::vector<Example> collect(const Dataset& ds) {
  std::vector<Example> out;
  auto it = ds.iterate();
  while (auto e = it->next()) out.push_back(std::move(*e));
  return out;
}

// The single int64 value of a 0-d example component.
std::int64_t value_of(const Tensor& t) { return t.item<std::int64_t>(); }

// Component `c` (a 0-d int64) of every example of one pass.
std::vector<std::int64_t> labels_of(const Dataset& ds, std::size_t c = 0) {
  std::vector<std::int64_t> out;
  for (const Example& e : ds) out.push_back(value_of(e[c]));
  return out;
}

Tensor int64_range(std::int64_t n) { return arange(n, DType::Int64); }

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

}  // namespace

// ================================ IDX ================================

TEST(Idx, ReadsHandWrittenImagesAndLabels) {
  TmpDir dir;
  write_bytes(dir.file("img"), idx_file(0x08, {2, 2, 3}, iota_bytes(12, 1)));
  write_bytes(dir.file("lbl"), idx_file(0x08, {3}, {7, 0, 255}));

  Tensor img = read_idx(dir.file("img"));
  EXPECT_EQ(img.dtype(), DType::UInt8);
  EXPECT_EQ(img.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(img.at<std::uint8_t>({0, 0, 0}), 1);
  EXPECT_EQ(img.at<std::uint8_t>({1, 1, 2}), 12);
  EXPECT_EQ(img.at<std::uint8_t>({1, 0, 1}), 8);

  Tensor lbl = read_idx(dir.file("lbl"));
  EXPECT_EQ(lbl.shape(), (Shape{3}));
  EXPECT_EQ(lbl.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{7, 0, 255}));
}

TEST(Idx, ReadsOtherElementTypesBigEndian) {
  TmpDir dir;
  // int32 [2]: 1 and -2; int16 [1]: -3; int8 [1]: -4; float32 [1]: 1.5 (0x3FC00000).
  write_bytes(dir.file("i32"), idx_file(0x0C, {2}, {0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE}));
  write_bytes(dir.file("i16"), idx_file(0x0B, {1}, {0xFF, 0xFD}));
  write_bytes(dir.file("i8"), idx_file(0x09, {1}, {0xFC}));
  write_bytes(dir.file("f32"), idx_file(0x0D, {1}, {0x3F, 0xC0, 0, 0}));
  write_bytes(dir.file("f64"), idx_file(0x0E, {1}, {0xC0, 0x04, 0, 0, 0, 0, 0, 0}));  // -2.5
  EXPECT_EQ(read_idx(dir.file("i32")).to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, -2}));
  EXPECT_EQ(read_idx(dir.file("i16")).to_vector<std::int32_t>(), (std::vector<std::int32_t>{-3}));
  EXPECT_EQ(read_idx(dir.file("i8")).to_vector<std::int32_t>(), (std::vector<std::int32_t>{-4}));
  EXPECT_EQ(read_idx(dir.file("f32")).to_vector<float>(), (std::vector<float>{1.5f}));
  EXPECT_EQ(read_idx(dir.file("f64")).to_vector<float>(), (std::vector<float>{-2.5f}));
}

TEST(Idx, WriteReadRoundTripRawAndGzip) {
  TmpDir dir;
  Generator gen(7);
  Tensor u8 = random_int({5, 4, 3}, 0, 256, DType::Int64, &gen);
  std::vector<std::uint8_t> bytes;
  for (auto v : u8.to_vector<std::int64_t>()) bytes.push_back(static_cast<std::uint8_t>(v));
  Tensor images = from_vector(bytes, {5, 4, 3});
  Tensor ints = from_vector(std::vector<std::int32_t>{-70000, 0, 3, 2147483647}, {2, 2});
  Tensor floats = random_normal({3, 2}, 0.0f, 1.0f, &gen);

  for (bool gz : {false, true}) {
    SCOPED_TRACE(gz ? "gzip" : "raw");
    const std::string suffix = gz ? ".gz" : "";
    write_idx(dir.file("images" + suffix), images, gz);
    write_idx(dir.file("ints" + suffix), ints, gz);
    write_idx(dir.file("floats" + suffix), floats, gz);
    EXPECT_TRUE(same_bytes(read_idx(dir.file("images" + suffix)), images));
    EXPECT_TRUE(same_bytes(read_idx(dir.file("ints" + suffix)), ints));
    EXPECT_TRUE(same_bytes(read_idx(dir.file("floats" + suffix)), floats));
  }
  // The gzip file really is gzip (magic 1f 8b), and the raw one starts with the IDX magic.
  std::ifstream gzf(dir.file("images.gz"), std::ios::binary), rawf(dir.file("images"), std::ios::binary);
  unsigned char g[2], r[4];
  gzf.read(reinterpret_cast<char*>(g), 2);
  rawf.read(reinterpret_cast<char*>(r), 4);
  EXPECT_EQ(g[0], 0x1f);
  EXPECT_EQ(g[1], 0x8b);
  EXPECT_EQ((std::vector<unsigned char>(r, r + 4)), (std::vector<unsigned char>{0, 0, 8, 3}));
}

TEST(Idx, ReadsFilesCompressedByTheGzipTool) {
  TmpDir dir;
  write_bytes(dir.file("lbl"), idx_file(0x08, {4}, {1, 2, 3, 4}));
  const std::string cmd = "gzip -c '" + dir.file("lbl") + "' > '" + dir.file("lbl.gz") + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "the gzip tool is not available";
  EXPECT_EQ(read_idx(dir.file("lbl.gz")).to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 2, 3, 4}));
}

TEST(Idx, WriteRefusesInt64) {
  TmpDir dir;
  expect_error([&] { write_idx(dir.file("x"), int64_range(3)); }, {"write_idx", dir.file("x"), "int64"});
}

TEST(IdxErrors, MissingFileNamesIt) {
  TmpDir dir;
  expect_error([&] { read_idx(dir.file("nope-idx3-ubyte")); },
               {"read_idx", dir.file("nope-idx3-ubyte"), "No such file"});
}

TEST(IdxErrors, WrongMagicNamesExpectedAndFound) {
  TmpDir dir;
  write_bytes(dir.file("bad"), {0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0});
  expect_error([&] { read_idx(dir.file("bad")); },
               {dir.file("bad"), "expected magic number 0x00000803", "0x00000801", "found 0x12345678"});
  // Two zero bytes but an unknown element type.
  write_bytes(dir.file("badtype"), {0, 0, 0x07, 1, 0, 0, 0, 1, 9});
  expect_error([&] { read_idx(dir.file("badtype")); }, {dir.file("badtype"), "found 0x00000701"});
  write_bytes(dir.file("short"), {0, 0});
  expect_error([&] { read_idx(dir.file("short")); }, {dir.file("short"), "too short", "2 bytes"});
}

TEST(IdxErrors, TruncatedFileGivesHeaderAndDataSizes) {
  TmpDir dir;
  // Header: 60000 images of 28x28; only 1000 bytes follow.
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_file(0x08, {60000, 28, 28}, std::vector<unsigned char>(1000)));
  expect_error([&] { read_idx(dir.file("train-images-idx3-ubyte")); },
               {dir.file("train-images-idx3-ubyte"),
                "header says 60000 images of 28x28 = 47040000 bytes, file has 1000 bytes of data"});
  // Labels with one byte too many.
  write_bytes(dir.file("labels"), idx_file(0x08, {3}, {1, 2, 3, 4}));
  expect_error([&] { read_idx(dir.file("labels")); },
               {dir.file("labels"), "header says 3 labels = 3 bytes, file has 4 bytes of data"});
  // A header cut inside the extents.
  auto h = idx_header(0x08, {5, 5, 5});
  h.resize(9);
  write_bytes(dir.file("cut"), h);
  expect_error([&] { read_idx(dir.file("cut")); }, {dir.file("cut"), "truncated header", "3 dimensions"});
}

TEST(IdxErrors, TruncatedGzipFile) {
  TmpDir dir;
  Tensor images = zeros({100, 28, 28}, DType::UInt8);
  write_idx(dir.file("img.gz"), images, /*gzip=*/true);
  // Cut the compressed stream in half.
  const auto size = fs::file_size(dir.file("img.gz"));
  fs::resize_file(dir.file("img.gz"), size / 2);
  try {
    read_idx(dir.file("img.gz"));
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.file("img.gz")), std::string::npos) << msg;
    EXPECT_NE(msg.find("(gzip)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("header says 100 images of 28x28 = 78400 bytes"), std::string::npos) << msg;
  }
}

namespace {
// A tiny MNIST-like directory: `n_train` training images of 2x2 and `n_train_labels` labels.
void write_fake_mnist(const TmpDir& dir, std::uint32_t n_train, std::uint32_t n_train_labels, bool gz) {
  const std::string s = gz ? ".gz" : "";
  std::vector<std::uint8_t> train_px(n_train * 4), train_lb(n_train_labels);
  std::iota(train_px.begin(), train_px.end(), 0);
  std::iota(train_lb.begin(), train_lb.end(), 0);
  write_idx(dir.file("train-images-idx3-ubyte" + s), from_vector(train_px, {std::int64_t{n_train}, 2, 2}), gz);
  write_idx(dir.file("train-labels-idx1-ubyte" + s), from_vector(train_lb, {std::int64_t{n_train_labels}}), gz);
  write_idx(dir.file("t10k-images-idx3-ubyte"), from_vector(std::vector<std::uint8_t>(8, 9), {2, 2, 2}));
  write_idx(dir.file("t10k-labels-idx1-ubyte"), from_vector(std::vector<std::uint8_t>{3, 4}, {2}));
}
}  // namespace

TEST(Mnist, LoadsRawAndGzippedFiles) {
  for (bool gz : {false, true}) {
    TmpDir dir;
    write_fake_mnist(dir, 3, 3, gz);
    Mnist m = load_mnist(dir.path().string());
    EXPECT_EQ(m.train_images.shape(), (Shape{3, 2, 2}));
    EXPECT_EQ(m.train_labels.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{0, 1, 2}));
    EXPECT_EQ(m.train_images.at<std::uint8_t>({2, 1, 1}), 11);
    EXPECT_EQ(m.test_images.shape(), (Shape{2, 2, 2}));
    EXPECT_EQ(m.test_labels.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{3, 4}));
  }
}

TEST(Mnist, CountMismatchNamesBothFilesAndCounts) {
  TmpDir dir;
  write_fake_mnist(dir, 3, 2, false);
  expect_error([&] { load_mnist(dir.path().string()); },
               {dir.file("train-images-idx3-ubyte"), "has 3 images", dir.file("train-labels-idx1-ubyte"),
                "has 2 labels"});
}

TEST(Mnist, MissingFileOrWrongKind) {
  TmpDir dir;
  expect_error([&] { load_mnist(dir.path().string()); }, {dir.path().string(), "train-images-idx3-ubyte", ".gz"});
  write_fake_mnist(dir, 3, 3, false);
  // Labels where images are expected.
  write_idx(dir.file("train-images-idx3-ubyte"), from_vector(std::vector<std::uint8_t>{1, 2, 3}, {3}));
  expect_error([&] { load_mnist(dir.path().string()); },
               {dir.file("train-images-idx3-ubyte"), "expected uint8 images", "shape [3]"});
}

TEST(Mnist, RealDataIfDownloaded) {
  // data/mnist under the repository root (this file is tests/data/test_data.cpp), or $SYNAPSE_MNIST_DIR.
  const char* env = std::getenv("SYNAPSE_MNIST_DIR");
  const fs::path dir = env ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path().parent_path() / "data" / "mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte") && !fs::exists(dir / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "MNIST not found in " << dir << "; run scripts/fetch-data mnist";
  Mnist m = load_mnist(dir.string());
  EXPECT_EQ(m.train_images.shape(), (Shape{60000, 28, 28}));
  EXPECT_EQ(m.train_labels.shape(), (Shape{60000}));
  EXPECT_EQ(m.test_images.shape(), (Shape{10000, 28, 28}));
  EXPECT_EQ(m.test_labels.shape(), (Shape{10000}));
  EXPECT_EQ(m.train_labels.at<std::uint8_t>({0}), 5);
  EXPECT_EQ(m.test_labels.at<std::uint8_t>({0}), 7);
}

// ================================ CSV ================================

TEST(Csv, HeaderAndLabelFirst) {
  TmpDir dir;
  write_text(dir.file("m.csv"), "label,p1,p2,p3\n5,0,128,255\n0, 1.5 ,-2,3e2\n+3,+4,12345678,-0.25\n");
  CsvData d = read_csv(dir.file("m.csv"));
  EXPECT_EQ(d.features.shape(), (Shape{3, 3}));
  EXPECT_EQ(d.features.dtype(), DType::Float32);
  EXPECT_EQ(d.features.to_vector<float>(), (std::vector<float>{0, 128, 255, 1.5f, -2, 300, 4, 12345678, -0.25f}));
  EXPECT_EQ(d.labels.dtype(), DType::Int64);
  EXPECT_EQ(d.labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{5, 0, 3}));
}

TEST(Csv, LabelColumnInTheMiddleNoHeaderOtherDelimiterCrlf) {
  TmpDir dir;
  write_text(dir.file("a.csv"), "1;2;7;3\r\n\r\n4;5;8.0;6\r\n");
  CsvData d = read_csv(dir.file("a.csv"), {.header = false, .label_column = 2, .delimiter = ';'});
  EXPECT_EQ(d.features.shape(), (Shape{2, 3}));
  EXPECT_EQ(d.features.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(d.labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, 8}));
}

TEST(Csv, NoLabelColumn) {
  TmpDir dir;
  write_text(dir.file("a.csv"), "x,y\n1,2\n3,4");  // no final newline
  CsvData d = read_csv(dir.file("a.csv"), {.label_column = -1});
  EXPECT_EQ(d.features.shape(), (Shape{2, 2}));
  EXPECT_EQ(d.features.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_FALSE(d.labels.defined());
}

TEST(Csv, BadCellNamesFileLineAndColumn) {
  TmpDir dir;
  write_text(dir.file("bad.csv"), "label,a,b\n1,2,3\n4,abc,6\n");
  expect_error([&] { read_csv(dir.file("bad.csv")); },
               {dir.file("bad.csv"), "line 3, column 2", "cannot parse 'abc' as a number"});
  write_text(dir.file("badlabel.csv"), "label,a\n1.5,2\n");
  expect_error([&] { read_csv(dir.file("badlabel.csv")); },
               {dir.file("badlabel.csv"), "line 2, column 1", "'1.5' as an integer label"});
  write_text(dir.file("empty.csv"), "label,a,b\n1,,3\n");
  expect_error([&] { read_csv(dir.file("empty.csv")); }, {"line 2, column 2", "an empty cell"});
}

TEST(Csv, WrongCellCountNamesLine) {
  TmpDir dir;
  write_text(dir.file("short.csv"), "label,a,b\n1,2,3\n\n4,5\n");
  expect_error([&] { read_csv(dir.file("short.csv")); },
               {dir.file("short.csv"), "line 4", "expected 3 cells (as on line 1), found 2"});
  write_text(dir.file("lc.csv"), "1,2\n");
  expect_error([&] { read_csv(dir.file("lc.csv"), {.header = false, .label_column = 5}); },
               {dir.file("lc.csv"), "label_column 5 is out of range"});
  expect_error([&] { read_csv(dir.file("missing.csv")); }, {dir.file("missing.csv"), "No such file"});
}

// ================================ Dataset ================================

TEST(Dataset, FromTensorsYieldsRowViews) {
  Tensor x = arange(6).reshape({3, 2});
  Tensor y = int64_range(3);
  Dataset ds = Dataset::from_tensors({x, y});
  EXPECT_EQ(ds.size(), 3);
  auto ex = collect(ds);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[1][0].shape(), (Shape{2}));
  EXPECT_EQ(ex[1][0].to_vector<float>(), (std::vector<float>{2, 3}));
  EXPECT_EQ(ex[2][1].shape(), Shape{});
  EXPECT_EQ(value_of(ex[2][1]), 2);
}

TEST(Dataset, FromTensorsRejectsDisagreeingRows) {
  expect_error([] { Dataset::from_tensors({zeros({4, 2}), zeros({3})}); },
               {"from_tensors", "tensor 0 has shape [4,2] (4 rows)", "tensor 1 has shape [3] (3 rows)"});
  expect_error([] { Dataset::from_tensors({scalar(1.0f)}); }, {"from_tensors", "scalar"});
  expect_error([] { Dataset::from_tensors({}); }, {"from_tensors", "no tensors"});
  Dataset empty;
  expect_error([&] { empty.batch(2); }, {"empty (default-constructed) dataset"});
}

TEST(Dataset, BatchStacksAndKeepsOrDropsTheRemainder) {
  Tensor x = arange(20).reshape({10, 2});
  Tensor y = int64_range(10);
  auto batches = collect(Dataset::from_tensors({x, y}).batch(4));
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0][0].shape(), (Shape{4, 2}));
  EXPECT_EQ(batches[0][1].shape(), (Shape{4}));
  EXPECT_EQ(batches[1][0].to_vector<float>(), (std::vector<float>{8, 9, 10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(batches[1][1].to_vector<std::int64_t>(), (std::vector<std::int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(batches[2][0].shape(), (Shape{2, 2}));
  EXPECT_EQ(batches[2][0].to_vector<float>(), (std::vector<float>{16, 17, 18, 19}));
  EXPECT_EQ(batches[2][1].to_vector<std::int64_t>(), (std::vector<std::int64_t>{8, 9}));
  EXPECT_EQ(Dataset::from_tensors({x, y}).batch(4).size(), 3);

  Dataset dropped = Dataset::from_tensors({x, y}).batch(4, /*drop_remainder=*/true);
  EXPECT_EQ(dropped.size(), 2);
  auto d = collect(dropped);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1][1].to_vector<std::int64_t>(), (std::vector<std::int64_t>{4, 5, 6, 7}));
}

TEST(Dataset, BatchRejectsDifferentShapes) {
  Dataset ds = Dataset::from_function(3, [](std::int64_t i) { return Example{zeros({i == 2 ? 3 : 2})}; });
  expect_error([&] { collect(ds.batch(3)); }, {"batch: component 0", "example 2 is float32 [3]",
                                               "example 0 is float32 [2]"});
}

TEST(Dataset, ShuffleIsAReproduciblePermutation) {
  const std::int64_t n = 100;
  Dataset base = Dataset::from_tensors({int64_range(n)});
  auto a = labels_of(base.shuffle(n, 42));
  auto b = labels_of(base.shuffle(n, 42));
  auto c = labels_of(base.shuffle(n, 43));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<std::int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(a, identity);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, identity);

  // Every epoch a new order, and the sequence of epochs is itself reproducible.
  Dataset s1 = base.shuffle(n, 42), s2 = base.shuffle(n, 42);
  auto e0 = labels_of(s1), e1 = labels_of(s1);
  EXPECT_NE(e0, e1);
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e1, identity);
  EXPECT_EQ(labels_of(s2), e0);
  EXPECT_EQ(labels_of(s2), labels_of(base.shuffle(n, 42).repeat(2).skip(n)));

  // Without reshuffling, every epoch repeats the first order.
  Dataset fixed = base.shuffle(n, 42, /*reshuffle_each_epoch=*/false);
  EXPECT_EQ(labels_of(fixed), a);
  EXPECT_EQ(labels_of(fixed), a);
}

TEST(Dataset, FastRowPathMatchesTheGenericPath) {
  // from_tensors feeds shuffle and batch row indices (batches are memcpy'd from the source); a map
  // in between forces the generic example-by-example path. Both must give the same batches.
  Generator gen(11);
  Tensor x = random_normal({37, 4}, 0.0f, 1.0f, &gen);
  Tensor y = int64_range(37);
  Dataset rows = Dataset::from_tensors({x, y});
  Dataset examples = rows.map([](Example e) { return e; });
  for (std::int64_t buffer : {1, 8, 100}) {
    auto a = collect(rows.shuffle(buffer, 5).batch(6));
    auto b = collect(examples.shuffle(buffer, 5).batch(6));
    ASSERT_EQ(a.size(), 7u);
    ASSERT_EQ(b.size(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(same_bytes(a[i][0], b[i][0])) << "buffer " << buffer << " batch " << i;
      EXPECT_TRUE(same_bytes(a[i][1], b[i][1])) << "buffer " << buffer << " batch " << i;
    }
    EXPECT_EQ(labels_of(rows.shuffle(buffer, 5), 1), labels_of(examples.shuffle(buffer, 5), 1));
  }
}

TEST(Dataset, IteratorOutlivesTheDatasetHandles) {
  std::unique_ptr<Iterator> it;
  {
    Tensor x = int64_range(5);
    it = Dataset::from_tensors({x}).map([](Example e) { return e; }).shuffle(5, 1).batch(2).iterate();
  }
  std::int64_t total = 0, count = 0;
  while (auto b = it->next()) {
    for (auto v : (*b)[0].to_vector<std::int64_t>()) total += v;
    count += (*b)[0].dim(0);
  }
  EXPECT_EQ(count, 5);
  EXPECT_EQ(total, 0 + 1 + 2 + 3 + 4);
}

TEST(Dataset, ShuffleBufferLimitsHowFarExamplesMove) {
  const std::int64_t n = 50;
  Dataset base = Dataset::from_tensors({int64_range(n)});
  // A buffer of one keeps the order.
  std::vector<std::int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(labels_of(base.shuffle(1, 3)), identity);
  // With a buffer of 5, the example emitted at position i is one of the first i + 5 inputs.
  auto s = labels_of(base.shuffle(5, 3));
  for (std::size_t i = 0; i < s.size(); ++i) EXPECT_LT(s[i], static_cast<std::int64_t>(i) + 5) << "position " << i;
  auto sorted = s;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(s, identity);
}

TEST(Dataset, RepeatTakeSkipMap) {
  Dataset base = Dataset::from_tensors({int64_range(3)});
  EXPECT_EQ(labels_of(base.repeat(2)), (std::vector<std::int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(base.repeat(2).size(), 6);
  EXPECT_EQ(base.repeat().size(), Dataset::kInfinite);
  EXPECT_EQ(labels_of(base.repeat().take(7)), (std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(base.repeat().take(7).size(), 7);
  EXPECT_EQ(labels_of(base.skip(1)), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(labels_of(base.skip(5)), std::vector<std::int64_t>{});
  EXPECT_EQ(base.skip(5).size(), 0);
  EXPECT_EQ(labels_of(base.take(10)), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(base.take(10).size(), 3);
  // An empty dataset repeated forever ends instead of spinning.
  EXPECT_EQ(labels_of(base.take(0).repeat()), std::vector<std::int64_t>{});

  Dataset mapped = base.map([](Example e) {
    const std::int64_t v = e[0].item<std::int64_t>();
    return Example{from_vector(std::vector<std::int64_t>{v * 10}, Shape{}), from_vector(std::vector<float>{0.5f})};
  });
  auto ex = collect(mapped);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(value_of(ex[2][0]), 20);
  EXPECT_EQ(ex[2].size(), 2u);
  EXPECT_EQ(mapped.size(), 3);
}

TEST(Dataset, FromFunctionAndRangeFor) {
  Dataset ds = Dataset::from_function(4, [](std::int64_t i) {
    return Example{from_vector(std::vector<std::int64_t>{i * i}, Shape{})};
  });
  EXPECT_EQ(labels_of(ds), (std::vector<std::int64_t>{0, 1, 4, 9}));
  int count = 0;
  for (const Example& b : ds.batch(3)) {
    EXPECT_EQ(b[0].dim(0), count == 0 ? 3 : 1);
    ++count;
  }
  EXPECT_EQ(count, 2);
}

TEST(Dataset, PrefetchYieldsExactlyTheSameBatches) {
  Generator gen(5);
  Tensor x = random_normal({103, 3, 2}, 0.0f, 1.0f, &gen);
  Tensor y = int64_range(103);
  auto pipeline = [&] { return Dataset::from_tensors({x, y}).shuffle(40, 9).batch(10); };
  Dataset plain = pipeline(), fetched = pipeline().prefetch(3);
  EXPECT_EQ(fetched.size(), 11);
  for (int epoch = 0; epoch < 2; ++epoch) {
    auto a = collect(plain), b = collect(fetched);
    ASSERT_EQ(a.size(), 11u);
    ASSERT_EQ(b.size(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(same_bytes(a[i][0], b[i][0])) << "epoch " << epoch << " batch " << i;
      EXPECT_TRUE(same_bytes(a[i][1], b[i][1])) << "epoch " << epoch << " batch " << i;
    }
  }
}

TEST(Dataset, PrefetchStopsCleanlyMidEpoch) {
  Dataset ds = Dataset::from_tensors({zeros({100, 8})}).repeat().batch(4).prefetch(2);
  for (int trial = 0; trial < 20; ++trial) {
    int seen = 0;
    for (const Example& b : ds) {
      EXPECT_EQ(b[0].shape(), (Shape{4, 8}));
      if (++seen == 3) break;  // destroys the iterator while the producer is running
    }
    EXPECT_EQ(seen, 3);
  }
  auto it = ds.iterate();  // never read from
  it.reset();
}

TEST(Dataset, PrefetchRethrowsProducerErrors) {
  Dataset ds = Dataset::from_tensors({int64_range(5)})
                   .map([](Example e) {
                     if (e[0].item<std::int64_t>() == 3) throw Error("bad example 3");
                     return e;
                   })
                   .prefetch(2);
  auto it = ds.iterate();
  for (std::int64_t i = 0; i < 3; ++i) {
    auto e = it->next();
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(value_of((*e)[0]), i);
  }
  expect_error([&] { it->next(); }, {"bad example 3"});
  EXPECT_FALSE(it->next().has_value());
}

TEST(Dataset, SplitForTrainAndValidation) {
  Tensor x = arange(20).reshape({10, 2});
  Tensor y = int64_range(10);
  auto [train, valid] = split({x, y}, 7);
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[0].shape(), (Shape{7, 2}));
  EXPECT_EQ(train[1].shape(), (Shape{7}));
  EXPECT_EQ(valid[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(valid[0].to_vector<float>(), (std::vector<float>{14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(valid[1].to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, 8, 9}));
  EXPECT_EQ(Dataset::from_tensors(valid).size(), 3);
  expect_error([&] { split({x, y}, 11); }, {"split", "n_first 11 is out of range [0, 10]"});
  expect_error([&] { split({x, int64_range(9)}, 5); }, {"split", "tensor 1 has shape [9]"});
}

TEST(Dataset, StackRows) {
  Tensor s = stack_rows({tensor({1, 2}), tensor({3, 4}), tensor({5, 6})});
  EXPECT_EQ(s.shape(), (Shape{3, 2}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  expect_error([] { stack_rows({tensor({1, 2}), tensor({3})}); }, {"stack_rows", "tensor 1 is float32 [1]"});
}

TEST(Dataset, BatchingMnistSizedDataTakesMicroseconds) {
  // 60000 images of 28x28: one shuffled epoch of batches of 50.
  Tensor images = zeros({60000, 28, 28}, DType::UInt8);
  Tensor labels = zeros({60000}, DType::UInt8);
  Dataset ds = Dataset::from_tensors({images, labels}).shuffle(60000, 1).batch(50);
  const auto start = std::chrono::steady_clock::now();
  std::int64_t batches = 0;
  for (const Example& b : ds) batches += b[0].dim(0) == 50 ? 1 : 0;
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(batches, 1200);
  const double per_batch = us / static_cast<double>(batches);
  std::printf("[ info ] shuffled batch of 50 MNIST images: %.1f us\n", per_batch);
  EXPECT_LT(per_batch, 1000.0);  // generous bound for loaded CI machines; typically a few tens of us
}

// ================================ transforms ================================

TEST(Transforms, ScaleUint8ToUnitFloat) {
  Tensor px = from_vector(std::vector<std::uint8_t>{0, 51, 255}, {3});
  Tensor s = scale(px);
  EXPECT_EQ(s.dtype(), DType::Float32);
  EXPECT_FLOAT_EQ(s.at<float>({0}), 0.0f);
  EXPECT_FLOAT_EQ(s.at<float>({1}), 0.2f);
  EXPECT_FLOAT_EQ(s.at<float>({2}), 1.0f);
  EXPECT_EQ(scale(tensor({2, 4}), 2.0f).to_vector<float>(), (std::vector<float>{1, 2}));
}

// Every image of a batch moves by its own offset in [-2, 2]^2, zeros filling in: images of distinct
// nonzero pixels, each output compared with all 25 shifted copies of its input (exactly one matches);
// 400 images reach every offset; the seed alone decides; any dtype and channel count.
TEST(Transforms, RandomTranslateMovesEachImageByItsOwnOffset) {
  const std::int64_t n = 400, h = 5, w = 6, c = 2, shift = 2;
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * h * w * c));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(1 + i % 250);
  const Tensor x = from_vector(px, {n, h, w, c});
  const Tensor y = random_translate(x, shift, 7);
  ASSERT_EQ(y.shape(), x.shape());
  ASSERT_EQ(y.dtype(), DType::UInt8);
  const std::uint8_t* in = x.data<std::uint8_t>();
  const std::uint8_t* out = y.data<std::uint8_t>();
  std::set<std::pair<std::int64_t, std::int64_t>> seen;
  for (std::int64_t i = 0; i < n; ++i) {
    int matches = 0;
    for (std::int64_t dy = -shift; dy <= shift; ++dy) {
      for (std::int64_t dx = -shift; dx <= shift; ++dx) {
        bool same = true;
        for (std::int64_t r = 0; r < h && same; ++r)
          for (std::int64_t q = 0; q < w && same; ++q)
            for (std::int64_t k = 0; k < c && same; ++k) {
              const std::int64_t sr = r - dy, sq = q - dx;
              const std::uint8_t want =
                  sr < 0 || sr >= h || sq < 0 || sq >= w ? 0 : in[((i * h + sr) * w + sq) * c + k];
              same = out[((i * h + r) * w + q) * c + k] == want;
            }
        if (same) {
          ++matches;
          seen.insert({dy, dx});
        }
      }
    }
    EXPECT_EQ(matches, 1) << "image " << i;
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(random_translate(x, shift, 7).to_vector<std::uint8_t>(), y.to_vector<std::uint8_t>());
  EXPECT_NE(random_translate(x, shift, 8).to_vector<std::uint8_t>(), y.to_vector<std::uint8_t>());
  EXPECT_EQ(random_translate(x, 0, 7).to_vector<std::uint8_t>(), px);
  // Float images [N, H, W]: a shift past the whole image leaves zeros.
  const Tensor f = ones({3, 2, 2});
  const std::vector<float> moved = random_translate(f, 5, 1).to_vector<float>();
  EXPECT_EQ(moved.size(), 12u);
  for (float v : moved) EXPECT_TRUE(v == 0.0f || v == 1.0f);
}

TEST(Transforms, RandomTranslateRejectsBadArguments) {
  try {
    random_translate(zeros({4, 784}), 2, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "random_translate: expected images [N, H, W] or [N, H, W, C], got shape [4,784]");
  }
  EXPECT_THROW(random_translate(zeros({1, 28, 28}), -1, 0), Error);
}

TEST(Transforms, ZScoreStatisticsAndZeroStdColumn) {
  // Column 0: 1, 3, 5 -> mean 3, population std sqrt(8/3). Column 1: constant 2 -> std 0.
  Tensor train = tensor({{1, 2}, {3, 2}, {5, 2}});
  Normalizer norm = Normalizer::z_score(train);
  EXPECT_EQ(norm.kind(), Normalizer::Kind::ZScore);
  auto st = norm.state();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st.at("mean").to_vector<float>(), (std::vector<float>{3, 2}));
  EXPECT_FLOAT_EQ(st.at("std").at<float>({0}), std::sqrt(8.0f / 3.0f));
  EXPECT_FLOAT_EQ(st.at("std").at<float>({1}), 0.0f);

  Tensor y = norm(tensor({{3, 2}, {7, 5}}));
  EXPECT_FLOAT_EQ(y.at<float>({0, 0}), 0.0f);
  EXPECT_FLOAT_EQ(y.at<float>({0, 1}), 0.0f);
  EXPECT_FLOAT_EQ(y.at<float>({1, 0}), 4.0f / std::sqrt(8.0f / 3.0f));
  EXPECT_FLOAT_EQ(y.at<float>({1, 1}), 3.0f);  // zero std: only shifted, never NaN
  for (float v : norm(train).to_vector<float>()) EXPECT_FALSE(std::isnan(v));
}

TEST(Transforms, MinMaxStatistics) {
  Tensor train = tensor({{0, 10}, {5, 10}, {10, 10}});
  Normalizer norm = Normalizer::min_max(train);
  EXPECT_EQ(norm.state().at("min").to_vector<float>(), (std::vector<float>{0, 10}));
  EXPECT_EQ(norm.state().at("max").to_vector<float>(), (std::vector<float>{10, 10}));
  Tensor y = norm(tensor({{5, 10}, {20, 12}}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0.5f, 0.0f, 2.0f, 2.0f}));
}

TEST(Transforms, PerPixelAndGlobalStatisticsOnUint8Images) {
  // Two 1x2 "images": pixel 0 is 0 and 255, pixel 1 is 100 and 100.
  Tensor images = from_vector(std::vector<std::uint8_t>{0, 100, 255, 100}, {2, 1, 2});
  Normalizer per_pixel = Normalizer::z_score(images);
  EXPECT_EQ(per_pixel.state().at("mean").shape(), (Shape{1, 2}));
  EXPECT_EQ(per_pixel.state().at("mean").to_vector<float>(), (std::vector<float>{127.5f, 100.0f}));
  EXPECT_EQ(per_pixel.state().at("std").to_vector<float>(), (std::vector<float>{127.5f, 0.0f}));
  EXPECT_EQ(per_pixel(images).to_vector<float>(), (std::vector<float>{-1, 0, 1, 0}));
  // A single image [1, 2] is accepted too (trailing dimensions match).
  EXPECT_EQ(per_pixel(from_vector(std::vector<std::uint8_t>{255, 100}, {1, 2})).to_vector<float>(),
            (std::vector<float>{1, 0}));

  // One statistic over everything: mean (0+100+255+100)/4 = 113.75.
  Normalizer global = Normalizer::min_max(images, /*per_feature=*/false);
  EXPECT_EQ(global.state().at("min").shape(), Shape{});
  EXPECT_EQ(global.state().at("min").item<float>(), 0.0f);
  EXPECT_EQ(global.state().at("max").item<float>(), 255.0f);
  EXPECT_FLOAT_EQ(Normalizer::z_score(images, false).state().at("mean").item<float>(), 113.75f);
  expect_error([&] { per_pixel(zeros({3, 3})); }, {"Normalizer", "[3,3]", "[1,2]"});
}

TEST(Transforms, NormalizerSaveAndRestore) {
  Tensor train = tensor({{1, 4}, {2, 8}, {6, 0}});
  Tensor test = tensor({{3, 3}, {-1, 9}});
  for (bool zscore : {true, false}) {
    Normalizer a = zscore ? Normalizer::z_score(train) : Normalizer::min_max(train);
    std::map<std::string, Tensor> saved;
    for (const auto& [k, v] : a.state()) saved[k] = v.clone();
    Normalizer b = Normalizer::from_state(saved);
    EXPECT_EQ(b.kind(), a.kind());
    EXPECT_EQ(b(test).to_vector<float>(), a(test).to_vector<float>());
  }
  expect_error([] { Normalizer::from_state({{"mean", zeros({2})}}); },
               {"from_state", "{mean, std} or {min, max}", "found {mean}"});
  expect_error([] { Normalizer::from_state({{"mean", zeros({2})}, {"std", zeros({3})}}); },
               {"from_state", "'mean' has shape [2] but 'std' has shape [3]"});
}
