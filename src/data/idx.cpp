// IDX reader/writer (the MNIST file format) and the MNIST loader.
//
// An IDX file is: a big-endian magic number 0x0000TTDD (TT = element type, DD = number of
// dimensions), DD big-endian uint32 extents, then the elements in row-major order, big-endian.
// Files may be gzip-compressed; we detect that by the gzip magic bytes 1f 8b.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <vector>

#include "core/budget.h"
#include "core/check.h"
#include "synapse/data.h"

namespace synapse::data {
namespace {

using ::synapse::detail::fail;

// ---- byte sources ----

// A file opened for reading, transparently decompressed when it starts with the gzip magic bytes.
class InFile {
 public:
  explicit InFile(const std::string& path) : path_(path) {
    raw_ = std::fopen(path.c_str(), "rb");
    if (!raw_) fail("read_idx: cannot open '{}': {}", path, std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    std::size_t n = std::fread(magic, 1, 2, raw_);
    if (std::ferror(raw_)) fail("read_idx: cannot read '{}': {}", path, std::strerror(errno));
    if (std::fseek(raw_, 0, SEEK_END) == 0) {
      const long end = std::ftell(raw_);
      if (end > 0) file_size_ = static_cast<std::uint64_t>(end);
    }
    if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
      std::fclose(raw_);
      raw_ = nullptr;
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) fail("read_idx: cannot open '{}': {}", path, std::strerror(errno));
      gzbuffer(gz_, 1 << 17);
    } else {
      std::rewind(raw_);
    }
  }
  ~InFile() {
    if (raw_) std::fclose(raw_);
    if (gz_) gzclose(gz_);
  }
  InFile(const InFile&) = delete;
  InFile& operator=(const InFile&) = delete;

  bool gzip() const { return gz_ != nullptr; }
  // The file's size on disk (compressed, for gzip files).
  std::uint64_t file_size() const { return file_size_; }
  // True when the gzip stream ended before its end marker.
  bool truncated() const { return truncated_; }

  // Reads up to n bytes; fewer only at the end of the data. Throws on read errors.
  std::size_t read(void* buf, std::size_t n) {
    if (!gz_) {
      std::size_t got = std::fread(buf, 1, n, raw_);
      if (got < n && std::ferror(raw_)) fail("read_idx: cannot read '{}': {}", path_, std::strerror(errno));
      return got;
    }
    std::size_t total = 0;
    auto* p = static_cast<unsigned char*>(buf);
    while (total < n) {
      unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - total, 1u << 30));
      int got = gzread(gz_, p + total, chunk);
      if (got < 0) gz_error();
      total += static_cast<std::size_t>(got);
      if (static_cast<unsigned>(got) < chunk) {
        gz_error();  // throws unless this is a clean or truncated end
        break;
      }
    }
    return total;
  }

  // Counts (and discards) the bytes left.
  std::size_t count_rest() {
    std::array<unsigned char, 1 << 16> buf;
    std::size_t total = 0;
    for (;;) {
      std::size_t got = read(buf.data(), buf.size());
      total += got;
      if (got < buf.size()) return total;
    }
  }

 private:
  // After a short gzread: a clean end of file, a truncated stream (recorded), or corrupt data (thrown).
  void gz_error() {
    int err = Z_OK;
    const char* msg = gzerror(gz_, &err);
    if (err == Z_OK) return;
    if (err == Z_BUF_ERROR) {
      truncated_ = true;
      return;
    }
    fail("read_idx: '{}': corrupt gzip data: {}", path_, msg ? msg : "unknown zlib error");
  }

  std::string path_;
  std::FILE* raw_ = nullptr;
  gzFile gz_ = nullptr;
  std::uint64_t file_size_ = 0;
  bool truncated_ = false;
};

// ---- element types ----

struct IdxType {
  unsigned code;
  const char* name;
  std::size_t file_size;  // bytes per element in the file
  DType dtype;            // what we return
};
constexpr std::array<IdxType, 6> kIdxTypes{{
    {0x08, "uint8", 1, DType::UInt8},
    {0x09, "int8", 1, DType::Int32},
    {0x0B, "int16", 2, DType::Int32},
    {0x0C, "int32", 4, DType::Int32},
    {0x0D, "float32", 4, DType::Float32},
    {0x0E, "float64", 8, DType::Float32},
}};

const IdxType* find_type(unsigned code) {
  for (const auto& t : kIdxTypes)
    if (t.code == code) return &t;
  return nullptr;
}

std::uint32_t load_be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint64_t load_be64(const unsigned char* p) {
  return (std::uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}
void store_be32(unsigned char* p, std::uint32_t v) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

// Converts `n` big-endian file elements of type `t` in `src` into the tensor's buffer `dst`.
void convert_elements(const IdxType& t, const unsigned char* src, std::size_t n, void* dst) {
  switch (t.code) {
    case 0x09: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int8_t>(src[i]);
      break;
    }
    case 0x0B: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::int16_t>(static_cast<std::uint16_t>((src[2 * i] << 8) | src[2 * i + 1]));
      break;
    }
    case 0x0C: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int32_t>(load_be32(src + 4 * i));
      break;
    }
    case 0x0D: {
      auto* out = static_cast<float*>(dst);
      for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t bits = load_be32(src + 4 * i);
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    }
    case 0x0E: {
      auto* out = static_cast<float*>(dst);
      for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t bits = load_be64(src + 8 * i);
        double v;
        std::memcpy(&v, &bits, 8);
        out[i] = static_cast<float>(v);
      }
      break;
    }
    default: std::memcpy(dst, src, n); break;  // uint8
  }
}

// "60000 images of 28x28", "60000 labels", "4 items of shape [2,3] (int32)".
std::string describe(const Shape& dims, const IdxType& t) {
  if (t.code == 0x08 && dims.size() == 3) return fmt::format("{} images of {}x{}", dims[0], dims[1], dims[2]);
  if (t.code == 0x08 && dims.size() == 1) return fmt::format("{} labels", dims[0]);
  Shape item(dims.begin() + 1, dims.end());
  return fmt::format("{} items of shape {} ({}, {} bytes each)", dims[0], to_string(item), t.name, t.file_size);
}

}  // namespace

Tensor read_idx(const std::string& path) {
  InFile in(path);
  const char* how = in.gzip() ? " (gzip)" : "";

  unsigned char head[4];
  std::size_t got = in.read(head, 4);
  if (got < 4) fail("read_idx: '{}'{}: file is too short for an IDX header ({} bytes)", path, how, got);
  const std::uint32_t magic = load_be32(head);
  const IdxType* type = find_type((magic >> 8) & 0xFF);
  const unsigned ndim = magic & 0xFF;
  if ((magic >> 16) != 0 || !type || ndim == 0)
    fail("read_idx: '{}'{}: not an IDX file: expected magic number 0x00000803 (images) or 0x00000801 (labels) "
         "or another IDX magic 0x0000TTDD (TT = element type 08, 09, 0B, 0C, 0D or 0E; DD = dimensions), "
         "found 0x{:08X}",
         path, how, magic);

  std::vector<unsigned char> dim_bytes(4 * ndim);
  got = in.read(dim_bytes.data(), dim_bytes.size());
  if (got < dim_bytes.size())
    fail("read_idx: '{}'{}: truncated header: magic 0x{:08X} announces {} dimensions, the file ends after {} of them",
         path, how, magic, ndim, got / 4);
  Shape dims(ndim);
  // The product of the non-zero extents is bounded too: a zero extent makes the element count 0, but
  // [2, 2^31, 2^32-1, 0] is still no shape a tensor can have (Tensor::empty refuses it, without the file).
  constexpr std::uint64_t kMost = std::uint64_t{1} << 40;
  std::uint64_t count = 1, extents = 1;
  for (unsigned d = 0; d < ndim; ++d) {
    dims[d] = load_be32(&dim_bytes[4 * d]);
    const auto e = static_cast<std::uint64_t>(dims[d]);
    count *= e;
    if (e != 0 && extents > kMost / e)
      fail("read_idx: '{}'{}: implausible header: the extents of shape {} multiply to more than 2^40", path, how,
           to_string(dims));
    if (e != 0) extents *= e;
  }

  // Read the elements straight into the tensor when no conversion is needed.
  const std::size_t n = static_cast<std::size_t>(count);
  const std::size_t data_bytes = n * type->file_size;
  // The declared data against the bytes the file can hold and the read budget, before allocating.
  const std::uint64_t header_bytes = 4 + 4 * std::uint64_t{ndim};
  const std::string field = fmt::format("header (shape {}, {})", to_string(dims), type->name);
  if (in.gzip()) {
    // Deflate expands at most 1032:1, so a small .gz file cannot hold a large IDX body.
    const std::uint64_t most = in.file_size() * 1032 + 1024;
    if (data_bytes + header_bytes > most)
      fail("read_idx: '{}'{}: header says {} = {} bytes, but {} compressed bytes inflate to at most {}", path, how,
           describe(dims, *type), data_bytes, in.file_size(), most);
    detail::check_declared_size("read_idx", path, field, data_bytes + (type->code != 0x08 ? n * dtype_size(type->dtype) : 0));
  } else {
    const std::uint64_t left = in.file_size() > header_bytes ? in.file_size() - header_bytes : 0;
    if (data_bytes > left)
      fail("read_idx: '{}': header says {} = {} bytes, file has {} bytes of data", path, describe(dims, *type),
           data_bytes, left);
    detail::check_declared_size("read_idx", path, field, data_bytes + (type->code != 0x08 ? n * dtype_size(type->dtype) : 0));
  }
  Tensor out = Tensor::empty(dims, type->dtype);
  std::vector<unsigned char> buffer;
  unsigned char* dst = static_cast<unsigned char*>(out.raw_data());
  if (type->code != 0x08) {
    buffer.resize(data_bytes);
    dst = buffer.data();
  }
  got = in.read(dst, data_bytes);
  std::size_t have = got;
  if (got == data_bytes) have += in.count_rest();
  if (have != data_bytes)
    fail("read_idx: '{}'{}: header says {} = {} bytes, file has {} bytes of data{}", path, how,
         describe(dims, *type), data_bytes, have, in.truncated() ? " (the gzip stream is truncated)" : "");
  if (type->code != 0x08) convert_elements(*type, buffer.data(), n, out.raw_data());
  return out;
}

void write_idx(const std::string& path, const Tensor& t, bool gzip) {
  unsigned code = 0;
  switch (t.dtype()) {
    case DType::UInt8:
    case DType::Bool: code = 0x08; break;
    case DType::Int32: code = 0x0C; break;
    case DType::Float32: code = 0x0D; break;
    default:
      fail("write_idx: '{}': IDX has no {} element type (convert to int32 or float32 first)", path,
           dtype_name(t.dtype()));
  }
  SYN_CHECK(t.ndim() >= 1 && t.ndim() <= 255, "write_idx: '{}': IDX needs 1 to 255 dimensions, got shape {}", path,
            to_string(t.shape()));
  for (auto d : t.shape())
    SYN_CHECK(d <= UINT32_MAX, "write_idx: '{}': extent {} does not fit IDX's 32-bit header", path, d);

  // Header and big-endian elements in one buffer.
  const std::size_t esize = dtype_size(t.dtype());
  std::vector<unsigned char> bytes(4 + 4 * static_cast<std::size_t>(t.ndim()) + t.nbytes());
  store_be32(bytes.data(), (code << 8) | static_cast<std::uint32_t>(t.ndim()));
  for (std::int64_t d = 0; d < t.ndim(); ++d)
    store_be32(&bytes[4 + 4 * static_cast<std::size_t>(d)], static_cast<std::uint32_t>(t.dim(d)));
  unsigned char* body = bytes.data() + 4 + 4 * t.ndim();
  const auto* src = static_cast<const unsigned char*>(t.raw_data());
  if (esize == 1) {
    std::memcpy(body, src, t.nbytes());
  } else {
    for (std::size_t i = 0; i < static_cast<std::size_t>(t.numel()); ++i) {
      std::uint32_t v;
      std::memcpy(&v, src + 4 * i, 4);
      store_be32(body + 4 * i, v);
    }
  }

  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) fail("write_idx: cannot create '{}': {}", path, std::strerror(errno));
    std::size_t done = 0;
    bool ok = true;
    while (ok && done < bytes.size()) {
      unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
      ok = gzwrite(f, bytes.data() + done, chunk) == static_cast<int>(chunk);
      done += chunk;
    }
    if (gzclose(f) != Z_OK || !ok) fail("write_idx: cannot write '{}'", path);
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("write_idx: cannot create '{}': {}", path, std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) fail("write_idx: cannot write '{}': {}", path, std::strerror(errno));
}

namespace {

// dir/name, else dir/name.gz, else an error naming both.
std::string find_mnist_file(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  fs::path raw = fs::path(dir) / name;
  if (fs::exists(raw)) return raw.string();
  fs::path gz = fs::path(dir) / (name + ".gz");
  if (fs::exists(gz)) return gz.string();
  fail("load_mnist: '{}' has no {} (nor {}.gz){}", dir, name, name,
       fs::is_directory(dir) ? "" : "; the directory does not exist (scripts/fetch-data mnist downloads MNIST)");
}

std::pair<Tensor, Tensor> load_pair(const std::string& dir, const std::string& images_name,
                                    const std::string& labels_name) {
  const std::string ip = find_mnist_file(dir, images_name), lp = find_mnist_file(dir, labels_name);
  Tensor images = read_idx(ip), labels = read_idx(lp);
  SYN_CHECK(images.ndim() == 3 && images.dtype() == DType::UInt8,
            "load_mnist: '{}': expected uint8 images [N, rows, cols] (magic 0x00000803), found {} of shape {}", ip,
            dtype_name(images.dtype()), to_string(images.shape()));
  SYN_CHECK(labels.ndim() == 1 && labels.dtype() == DType::UInt8,
            "load_mnist: '{}': expected uint8 labels [N] (magic 0x00000801), found {} of shape {}", lp,
            dtype_name(labels.dtype()), to_string(labels.shape()));
  SYN_CHECK(images.dim(0) == labels.dim(0), "load_mnist: '{}' has {} images but '{}' has {} labels", ip,
            images.dim(0), lp, labels.dim(0));
  return {images, labels};
}

}  // namespace

Mnist load_mnist(const std::string& dir) {
  Mnist m;
  std::tie(m.train_images, m.train_labels) = load_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
  std::tie(m.test_images, m.test_labels) = load_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
  return m;
}

}  // namespace synapse::data
