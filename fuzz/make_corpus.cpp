// Writes the seed corpora of fuzz/corpus/ with the library's own writers (small valid files of every kind);
// fuzz/make_corpus.py adds what only Python writes (compressed .npz, JPEG/BMP/PNM/16-bit PNG images).
//   cmake --build build --target fuzz_make_corpus && build/fuzz/fuzz_make_corpus fuzz/corpus
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "synapse/data.h"
#include "synapse/io.h"
#include "synapse/random.h"
#include "synapse/tensor.h"

namespace fs = std::filesystem;
using namespace synapse;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A big-endian IDX header by hand (for the element types write_idx never writes).
std::string idx_by_hand(unsigned type, std::initializer_list<unsigned> dims, std::size_t element_bytes) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  std::size_t n = 1;
  for (unsigned d : dims) {
    s += {static_cast<char>(d >> 24), static_cast<char>(d >> 16), static_cast<char>(d >> 8), static_cast<char>(d)};
    n *= d;
  }
  for (std::size_t i = 0; i < n * element_bytes; ++i) s += static_cast<char>(i * 37 + 11);
  return s;
}

// A 28x28 uint8 "digit": a bright vertical bar on black.
Tensor digit() {
  Tensor t = zeros({28, 28}, DType::UInt8);
  auto* p = t.data<std::uint8_t>();
  for (int r = 5; r < 23; ++r)
    for (int c = 12; c < 16; ++c) p[r * 28 + c] = 255;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path out = argc > 1 ? argv[1] : "fuzz/corpus";
  Generator gen(25);

  // IDX: every element type, raw and gzip; idx_gz takes the raw content after one option byte (0: no cut).
  std::vector<std::uint8_t> pixels(18);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 14);
  const Tensor images = from_vector(pixels, {2, 3, 3});
  const Tensor labels = from_vector(std::vector<std::uint8_t>{1, 2, 3, 4, 5}, {5});
  const Tensor ints = from_vector(std::vector<std::int32_t>{-1, 0, 7, 1 << 20}, {2, 2});
  const Tensor floats = from_vector(std::vector<float>{0.5f, -2.0f, 3.25f}, {3});
  Tensor mask = zeros({3}, DType::Bool);
  mask.data<bool>()[1] = true;
  fs::create_directories(out / "idx");
  fs::create_directories(out / "idx_gz");
  int k = 0;
  for (const Tensor* t : {&images, &labels, &ints, &floats}) {
    const fs::path raw = out / "idx" / ("write_idx_" + std::to_string(k) + ".idx");
    data::write_idx(raw.string(), *t);
    data::write_idx((out / "idx" / ("write_idx_" + std::to_string(k) + ".idx.gz")).string(), *t, true);
    write(out / "idx_gz" / ("seed_" + std::to_string(k)), std::string(1, '\0') + read(raw));
    ++k;
  }
  write(out / "idx" / "int8.idx", idx_by_hand(0x09, {4}, 1));
  write(out / "idx" / "int16.idx", idx_by_hand(0x0B, {2, 2}, 2));
  write(out / "idx" / "float64.idx", idx_by_hand(0x0E, {3}, 8));
  write(out / "idx_gz" / "seed_int16", std::string(1, '\0') + idx_by_hand(0x0B, {2, 2}, 2));
  write(out / "idx_gz" / "seed_cut", std::string(1, '\xC0') + idx_by_hand(0x0D, {2, 4}, 4));

  // CSV: one option byte (bit 0 header, bits 1-2 label column + 1, bits 3-4 delimiter), then the text.
  fs::create_directories(out / "csv");
  write(out / "csv" / "labels", std::string(1, '\x03') + "label,a,b\n1,0.5,2\n0, 3 ,-4e2\r\n\n2,1,1\n");
  write(out / "csv" / "no_header", std::string(1, '\x00') + "1,2,3\n4,5,6\n");
  write(out / "csv" / "table", std::string(1, '\x01') + "name,age,city\n\"Doe, J\",41,Paris\nAnn,NA,\"say \"\"hi\"\"\"\n");
  write(out / "csv" / "semicolon", std::string(1, '\x0B') + "y;x1;x2\n0;1.5;?\n1;2;3\n");

  // NPZ and checkpoints with every dtype.
  io::TensorMap tensors{{"w", random_normal({2, 3}, 0.0f, 1.0f, &gen)},
                    {"step", from_vector(std::vector<std::int64_t>{42}, {1})},
                    {"i", ints},
                    {"px", labels},
                    {"mask", mask},
                    {"scalar", scalar(1.0f)}};
  fs::create_directories(out / "npz");
  io::save_npz((out / "npz" / "save_npz.npz").string(), tensors);
  io::save_npz((out / "npz" / "one.npz").string(), {{"x", floats}});
  fs::create_directories(out / "checkpoint");
  io::Checkpoint ckpt;
  ckpt.tensors = tensors;
  ckpt.step = 300;
  ckpt.epoch = 2;
  ckpt.metadata = {{"model", "cnn"}, {"synapse_version", "0.1.0"}};
  io::save_checkpoint((out / "checkpoint" / "save_checkpoint.syn").string(), ckpt);
  io::save_checkpoint((out / "checkpoint" / "empty.syn").string(), io::Checkpoint{});

  // Images as predict and serve see them.
  fs::create_directories(out / "image");
  fs::create_directories(out / "serve");
  write(out / "image" / "digit.png", data::encode_png(digit()));
  write(out / "serve" / "digit.png", data::encode_png(digit()));
  write(out / "image" / "rgb.png", data::encode_png(random_uniform({8, 8, 3}, 0.0f, 1.0f, &gen)));
  write(out / "image" / "gray_alpha.png", data::encode_png(random_uniform({6, 5, 2}, 0.0f, 1.0f, &gen)));

  // Text: UTF-8 with a BOM, and a tiny poem corpus.
  fs::create_directories(out / "text");
  write(out / "text" / "utf8.txt", "\xEF\xBB\xBFhello, \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80\n");
  write(out / "text" / "poems.json",
        "[{\"author\": \"\xE6\x9D\x8E\xE7\x99\xBD\", \"title\": \"t\", \"paragraphs\": "
        "[\"\xE5\xBA\x8A\xE5\x89\x8D\xE6\x98\x8E\xE6\x9C\x88\xE5\x85\x89\xEF\xBC\x8C\"]}]");
  return 0;
}
