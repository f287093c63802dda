// Size budgets (synapse/budget.h): every declared size is checked against the file's real bytes and the read
// budget before anything is allocated. Small files that declare gigabytes are errors naming the file, the field
// and both sizes; the no-allocation claim is checked in a child process whose address space is capped
// (RLIMIT_AS), so an allocation of the declared size would fail there with std::bad_alloc instead.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "gradcheck.h"
#include "synapse/budget.h"
#include "synapse/data.h"
#include "synapse/io.h"

namespace fs = std::filesystem;
using namespace synapse;
using synapse::testing::error_of;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

class Budget : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / (std::string("synapse_budget_") + info->name() + "_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    set_read_budget(0);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
// An IDX header of uint8 elements with these extents, then `body` bytes.
std::string idx(std::initializer_list<std::uint32_t> dims, std::size_t body) {
  std::string s = {0, 0, 8, static_cast<char>(dims.size())};
  for (auto d : dims) s += be32(d);
  return s + std::string(body, '\x07');
}
std::string gzip(const std::string& raw) {
  std::string out(compressBound(static_cast<uLong>(raw.size())) + 64, '\0');
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Runs f in a child whose address space may grow by only 256 MiB; returns f's error message ("(no error)" when
// it returned, "(child died ...)" when the child crashed or ran out of memory). Under AddressSanitizer (which
// reserves terabytes of shadow memory) the cap is left out and f runs in the child all the same.
std::string error_in_capped_child(const std::function<void()>& f) {
  int fds[2];
  if (pipe(fds) != 0) return "(pipe failed)";
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (!kAsan) {
      std::ifstream statm("/proc/self/statm");
      long pages = 0;
      statm >> pages;
      rlimit lim{};
      lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGE_SIZE)) + (256u << 20);
      setrlimit(RLIMIT_AS, &lim);
    }
    std::string msg;
    try {
      msg = error_of(f);
    } catch (const std::bad_alloc&) {
      msg = "(std::bad_alloc: the reader tried to allocate the declared size)";
    }
    const ssize_t n = write(fds[1], msg.data(), msg.size());
    _exit(n == static_cast<ssize_t>(msg.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "(child died, status " + std::to_string(status) + ")";
  return msg;
}

}  // namespace

TEST_F(Budget, DefaultIsPositiveAndSettable) {
  EXPECT_GT(read_budget(), std::uint64_t{1} << 20);
  set_read_budget(12345);
  EXPECT_EQ(read_budget(), 12345u);
  set_read_budget(0);
  EXPECT_NE(read_budget(), 12345u);
}

TEST_F(Budget, EnvironmentVariableSetsTheDefault) {
  ASSERT_EQ(setenv("SYNAPSE_READ_BUDGET", "64M", 1), 0);
  EXPECT_EQ(read_budget(), std::uint64_t{64} << 20);
  ASSERT_EQ(setenv("SYNAPSE_READ_BUDGET", "lots", 1), 0);
  EXPECT_EQ(error_of([] { read_budget(); }),
            "SYNAPSE_READ_BUDGET=lots: expected a positive number of bytes with an optional K, M or G suffix");
  unsetenv("SYNAPSE_READ_BUDGET");
}

// 100 bytes declaring 4 GB of images: the error comes from the header alone (the file size), in a child that
// could not even reserve the declared 4 GB.
TEST_F(Budget, IdxOfAHundredBytesDeclaringGigabytes) {
  const std::string p = path("huge-idx3-ubyte");
  write_bytes(p, idx({1000000, 64, 64}, 84));
  ASSERT_EQ(fs::file_size(p), 100u);
  EXPECT_EQ(error_in_capped_child([&] { data::read_idx(p); }),
            "read_idx: '" + p + "': header says 1000000 images of 64x64 = 4096000000 bytes, file has 84 bytes of data");
}

// The same through gzip: a few hundred compressed bytes cannot inflate to 4 GB (deflate's limit is 1032:1).
TEST_F(Budget, GzipIdxDeclaringGigabytes) {
  const std::string p = path("huge-idx3-ubyte.gz");
  write_bytes(p, gzip(idx({1000000, 64, 64}, 84)));
  const auto size = fs::file_size(p);
  EXPECT_EQ(error_in_capped_child([&] { data::read_idx(p); }),
            fmt::format("read_idx: '{}' (gzip): header says 1000000 images of 64x64 = 4096000000 bytes, but {} "
                        "compressed bytes inflate to at most {}", p, size, size * 1032 + 1024));
}

// A real file larger than the budget: named with the field and both sizes.
TEST_F(Budget, IdxAboveTheBudget) {
  const std::string p = path("big-idx3-ubyte");
  write_bytes(p, idx({3, 1000, 1000}, 3000000));
  set_read_budget(1 << 20);
  EXPECT_EQ(error_of([&] { data::read_idx(p); }),
            "read_idx: '" + p + "': header (shape [3,1000,1000], uint8) declares 3000000 bytes, more than the read "
            "budget of 1048576 bytes (raise it with SYNAPSE_READ_BUDGET=BYTES or synapse::set_read_budget)");
  set_read_budget(0);
  EXPECT_EQ(data::read_idx(p).numel(), 3000000);
}

// An .npz whose deflated member declares 4 GB from a few bytes of compressed data.
TEST_F(Budget, NpzMemberDeclaringGigabytes) {
  const std::string p = path("bomb.npz");
  io::save_npz(p, {{"x", zeros({4})}});
  std::string bytes = read_bytes(p);
  const auto cd = bytes.find("PK\x01\x02");
  ASSERT_NE(cd, std::string::npos);
  bytes[cd + 10] = 8;  // method: deflate
  const std::uint32_t usize = 0xF0000000u;
  std::memcpy(&bytes[cd + 24], &usize, 4);
  write_bytes(p, bytes);
  const std::string msg = error_in_capped_child([&] { io::load_npz(p); });
  EXPECT_NE(msg.find("load_npz: '" + p + "': member 'x.npy': corrupt zip: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("compressed bytes cannot inflate to the declared 4026531840 bytes (deflate expands at most 1032:1)"),
            std::string::npos) << msg;
}

TEST_F(Budget, CheckpointTensorAboveTheBudget) {
  const std::string p = path("big.syn");
  io::Checkpoint c;
  c.tensors["w"] = zeros({512, 1024});
  io::save_checkpoint(p, c);
  set_read_budget(1 << 20);
  EXPECT_EQ(error_of([&] { io::load_checkpoint(p); }),
            "load_checkpoint: '" + p + "': tensor 'w' declares 2097152 bytes, more than the read budget of 1048576 "
            "bytes (raise it with SYNAPSE_READ_BUDGET=BYTES or synapse::set_read_budget)");
}

// A 67-byte PNG whose header declares 60000x4000 pixels: deflate cannot produce that many rows from it.
TEST_F(Budget, PngDeclaringAHugeImage) {
  std::string png = data::encode_png(zeros({2, 2}, DType::UInt8));
  const std::string width = be32(60000), height = be32(4000);
  png.replace(16, 4, width);
  png.replace(20, 4, height);
  const std::string msg = error_in_capped_child([&] { data::decode_image(png.data(), png.size(), "tiny.png"); });
  EXPECT_EQ(msg, fmt::format("cannot read image 'tiny.png': its header declares 60000x4000 pixels (at least 30000000 "
                             "bytes of rows), but {} bytes of PNG inflate to at most {}",
                             png.size(), png.size() * 1032 + 1024));
}

// The other formats stb_image reads also fill a truncated raster with zeros: libFuzzer found a 36-byte PNM
// (through serve's POST /predict) that declared 65305x363 pixels and cost a 24 MB image and its decoding.
TEST_F(Budget, PnmDeclaringMoreSamplesThanItHas) {
  const std::string pnm = "P5\n4000 3000\n255\n" + std::string(10, '\x7f');
  EXPECT_EQ(error_in_capped_child([&] { data::decode_image(pnm.data(), pnm.size(), "tiny.pgm"); }),
            fmt::format("cannot read image 'tiny.pgm': its PNM header declares 4000x3000 pixels of 1 channel(s), "
                        "12000000 samples, but the file has {} bytes", pnm.size()));
  // A whole one decodes.
  const std::string whole = "P6\n3 2\n255\n" + std::string(18, '\x40');
  EXPECT_EQ(data::decode_image(whole.data(), whole.size(), "whole.ppm").shape(), (Shape{2, 3, 3}));
}

namespace {

std::string le32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// An uncompressed 24-bit BMP: its 54-byte header, then the rows (each padded to 4 bytes) of `rows` bytes.
std::string bmp(std::uint32_t w, std::uint32_t h, std::size_t rows) {
  std::string s = "BM" + le32(static_cast<std::uint32_t>(54 + rows)) + le32(0) + le32(54);
  s += le32(40) + le32(w) + le32(h) + std::string("\x01\x00\x18\x00", 4) + le32(0) + le32(0) + le32(2835) + le32(2835) +
       le32(0) + le32(0);
  return s + std::string(rows, '\x20');
}

}  // namespace

TEST_F(Budget, BmpDeclaringAHugeImage) {
  const std::string file = bmp(10000, 10000, 8);
  EXPECT_EQ(error_in_capped_child([&] { data::decode_image(file.data(), file.size(), "tiny.bmp"); }),
            "cannot read image 'tiny.bmp': its BMP header declares 10000x10000 pixels, but 62 bytes of BMP hold at most "
            "1520");
  const std::string whole = bmp(2, 2, 16);  // two rows of 2 x 3 bytes, padded to 8
  EXPECT_EQ(data::decode_image(whole.data(), whole.size(), "whole.bmp").shape(), (Shape{2, 2, 3}));
}

TEST_F(Budget, ImageAboveTheBudget) {
  const std::string png = data::encode_png(zeros({300, 300, 3}, DType::UInt8));
  set_read_budget(100000);
  EXPECT_EQ(error_of([&] { data::decode_image(png.data(), png.size(), "big.png"); }),
            "read_image: 'big.png': the header (300x300 pixels, 3 channels) declares 540000 bytes, more than the read "
            "budget of 100000 bytes (raise it with SYNAPSE_READ_BUDGET=BYTES or synapse::set_read_budget)");
}
