// Image files in and out: stb_image decodes, stb_image_write encodes PNG (Debian's libstb).
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string_view>

#include "core/budget.h"
#include "core/check.h"
#include "data/file_bytes.h"
#include "synapse/data.h"

namespace synapse::data {
namespace {

// stb_image's reason for a failure, as printable ASCII: for an unknown critical PNG chunk it copies the chunk's
// four type bytes from the file into the message ("XXXX PNG chunk not known"), and they can be anything.
std::string failure_reason() {
  const char* r = stbi_failure_reason();
  std::string s = r != nullptr ? r : "unknown error";
  for (char& c : s)
    if (c < 0x20 || c > 0x7e) c = '?';
  return s;
}

std::uint32_t be32(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | std::uint32_t{p[3]};
}

// stb_image reports an unknown critical PNG chunk by writing the chunk's type into a static buffer ("XXXX PNG
// chunk not known", not thread-safe, as its source says): two threads decoding such files at once (synapse
// serve's workers) race on it. So the chunks are walked here first, in the order and with the lengths
// stb_image walks them, and such a file is refused before stb_image sees it.
void check_png_chunks(const unsigned char* b, std::size_t size, const std::string& name) {
  if (size < 8 || std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return;
  auto type_of = [](const char* t) { return be32(reinterpret_cast<const unsigned char*>(t)); };
  static const std::uint32_t known[] = {type_of("IHDR"), type_of("PLTE"), type_of("IDAT"), type_of("CgBI")};
  std::size_t pos = 8;
  while (size - pos >= 8) {
    const std::uint32_t length = be32(b + pos), type = be32(b + pos + 4);
    if (type == type_of("IEND")) return;
    std::string t(reinterpret_cast<const char*>(b + pos + 4), 4);
    for (char& ch : t)
      if (ch < 0x20 || ch > 0x7e) ch = '?';
    const bool critical = (type & (std::uint32_t{1} << 29)) == 0;
    if (critical && std::find(std::begin(known), std::end(known), type) == std::end(known))
      ::synapse::detail::fail("cannot read image '{}': PNG chunk '{}' at byte {} is critical and not known (not a PNG "
                              "stb_image can decode)", name, t, pos);
    // stb_image grows its buffer to an IDAT chunk's declared length before reading it (libFuzzer: a 1 GB
    // allocation from a 90-byte file), so every chunk must fit in the bytes the file has.
    ::synapse::detail::check_declared_size("read_image", name, fmt::format("PNG chunk '{}' at byte {}", t, pos), length,
                                           size - pos - 8);
    if (size - pos - 8 < std::uint64_t{length} + 4) return;  // no CRC after the last chunk: stb_image decides
    pos += 12 + std::size_t{length};
  }
}

// A small file cannot hold a huge image: stb_image fills a truncated raster with zeros instead of failing, so
// without this a 36-byte PNM header declaring 65305x363 pixels cost a 24 MB image and its decoding (libFuzzer,
// through serve's POST /predict). The most pixels each format can pack into one byte of the file:
//   PNG   rows come out of deflate (at most 1032:1) at one bit per pixel or more          8 x 1032
//   GIF   an LZW code of at most 12 bits expands to at most 4096 pixels                   4096
//   JPEG  a block of 64 pixels takes at least one bit (a progressive DC scan)             512
//   BMP   stb_image reads it uncompressed, at least one bit per pixel                     8
//   PNM   binary P5 / P6: the samples themselves, a byte or two each                      exact: w x h x c bytes
//   else  TGA, PSD, HDR, PIC: run-length packets of at most 128 pixels in two bytes       64
void check_raster_fits(const unsigned char* b, std::size_t size, int w, int h, int c, const std::string& name) {
  const auto starts = [&](std::string_view magic) {
    return size >= magic.size() && std::memcmp(b, magic.data(), magic.size()) == 0;
  };
  const std::uint64_t area = static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h);
  if (starts("\x89PNG\r\n\x1a\n")) {
    const std::uint64_t most = static_cast<std::uint64_t>(size) * 1032 + 1024;
    SYN_CHECK(area / 8 <= most,
              "cannot read image '{}': its header declares {}x{} pixels (at least {} bytes of rows), but {} bytes of PNG "
              "inflate to at most {}", name, w, h, area / 8, size, most);
    return;
  }
  if (starts("P5") || starts("P6")) {
    const std::uint64_t samples = area * static_cast<std::uint64_t>(c);
    SYN_CHECK(samples <= size,
              "cannot read image '{}': its PNM header declares {}x{} pixels of {} channel(s), {} samples, but the file "
              "has {} bytes", name, w, h, c, samples, size);
    return;
  }
  std::string_view format = "TGA/PSD/HDR/PIC";
  std::uint64_t per_byte = 64;
  if (starts("GIF8")) format = "GIF", per_byte = 4096;
  else if (starts("\xff\xd8")) format = "JPEG", per_byte = 512;
  else if (starts("BM")) format = "BMP", per_byte = 8;
  const std::uint64_t most = per_byte * size + 1024;
  SYN_CHECK(area <= most, "cannot read image '{}': its {} header declares {}x{} pixels, but {} bytes of {} hold at most {}",
            name, format, w, h, size, format, most);
}

// Decodes with stb_image; 16-bit images keep their 16 bits (int32 0..65535).
Tensor decode(const stbi_uc* bytes, int size, const std::string& name) {
  check_png_chunks(bytes, static_cast<std::size_t>(size), name);
  int w = 0, h = 0, c = 0;
  SYN_CHECK(stbi_info_from_memory(bytes, size, &w, &h, &c) != 0,
            "cannot read image '{}': not a PNG, JPEG, BMP, GIF, TGA or PNM image stb_image can decode ({})", name,
            failure_reason());
  SYN_CHECK(static_cast<std::int64_t>(w) * h <= (std::int64_t{1} << 28), "image '{}' is {}x{} pixels, more than 2^28", name, w, h);
  const Shape shape{h, w, c};
  const bool wide = stbi_is_16_bit_from_memory(bytes, size) != 0;
  // stb_image's pixels plus the tensor's, against the read budget, before stb_image allocates.
  const auto pixels = static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) * static_cast<std::uint64_t>(c);
  check_raster_fits(bytes, static_cast<std::size_t>(size), w, h, c, name);
  ::synapse::detail::check_declared_size("read_image", name, fmt::format("the header ({}x{} pixels, {} channels)", w, h, c),
                                         pixels * (wide ? 2 + 4 : 1 + 1));
  if (wide) {
    std::unique_ptr<stbi_us, void (*)(void*)> p(stbi_load_16_from_memory(bytes, size, &w, &h, &c, 0), stbi_image_free);
    SYN_CHECK(p != nullptr, "cannot decode image '{}': {}", name, failure_reason());
    Tensor t = Tensor::empty(shape, DType::Int32);
    std::copy(p.get(), p.get() + t.numel(), t.data<std::int32_t>());
    return t;
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> p(stbi_load_from_memory(bytes, size, &w, &h, &c, 0), stbi_image_free);
  SYN_CHECK(p != nullptr, "cannot decode image '{}': {}", name, failure_reason());
  Tensor t = Tensor::empty(shape, DType::UInt8);
  std::copy(p.get(), p.get() + t.numel(), t.data<std::uint8_t>());
  return t;
}

}  // namespace

Tensor decode_image(const void* bytes, std::size_t size, const std::string& name) {
  SYN_CHECK(size > 0, "cannot read image '{}': it is empty (0 bytes)", name);
  SYN_CHECK(size < (std::size_t{1} << 31), "cannot read image '{}': {} bytes is too large", name, size);
  try {
    return decode(static_cast<const stbi_uc*>(bytes), static_cast<int>(size), name);
  } catch (const Error& e) {  // e.g. the allocator's "out of memory" (libFuzzer found one that named no image)
    const std::string what = e.what();
    if (what.find(name) != std::string::npos) throw;
    ::synapse::detail::fail("cannot read image '{}': {}", name, what);
  }
}

Tensor read_image(const std::string& path) {
  const std::string bytes = internal::read_file_bytes(path, "image");
  return decode_image(bytes.data(), bytes.size(), path);
}

namespace {

// uint8 pixels of an image [H, W] or [H, W, C] (float32 in [0, 1] is scaled and rounded; NaN -> 0).
std::vector<unsigned char> pixels(const Tensor& image, const char* what) {
  std::vector<unsigned char> px(static_cast<std::size_t>(image.numel()));
  if (image.dtype() == DType::UInt8) {
    std::copy(image.data<std::uint8_t>(), image.data<std::uint8_t>() + image.numel(), px.begin());
  } else {
    SYN_CHECK(image.dtype() == DType::Float32, "{}: expected uint8 or float32 pixels, got {}", what, dtype_name(image.dtype()));
    const float* p = image.data<float>();
    for (std::size_t i = 0; i < px.size(); ++i)
      px[i] = static_cast<unsigned char>(std::lround(std::clamp(std::isfinite(p[i]) ? p[i] : 0.0f, 0.0f, 1.0f) * 255.0f));
  }
  return px;
}

}  // namespace

std::string encode_png(const Tensor& image) {
  SYN_CHECK(image.defined() && (image.ndim() == 2 || image.ndim() == 3),
            "encode_png: expected an image [H, W] or [H, W, C], got {}", image.defined() ? to_string(image.shape()) : "undefined");
  const int h = static_cast<int>(image.dim(0)), w = static_cast<int>(image.dim(1));
  const int c = image.ndim() == 3 ? static_cast<int>(image.dim(2)) : 1;
  SYN_CHECK(c >= 1 && c <= 4, "encode_png: {} channels, expected 1 to 4", c);
  const std::vector<unsigned char> px = pixels(image, "encode_png");
  std::string png;
  const int ok = stbi_write_png_to_func(
      [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size)); },
      &png, w, h, c, px.data(), w * c);
  SYN_CHECK(ok != 0, "encode_png: cannot encode a {}x{} image", w, h);
  return png;
}

std::string encode_jpeg(const Tensor& image, int quality) {
  SYN_CHECK(image.defined() && (image.ndim() == 2 || image.ndim() == 3),
            "encode_jpeg: expected an image [H, W] or [H, W, C], got {}", image.defined() ? to_string(image.shape()) : "undefined");
  SYN_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in 1..100, found {}", quality);
  const int h = static_cast<int>(image.dim(0)), w = static_cast<int>(image.dim(1));
  const int c = image.ndim() == 3 ? static_cast<int>(image.dim(2)) : 1;
  SYN_CHECK(c == 1 || c == 3, "encode_jpeg: {} channels, expected 1 or 3", c);
  const std::vector<unsigned char> px = pixels(image, "encode_jpeg");
  std::string jpg;
  const int ok = stbi_write_jpg_to_func(
      [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size)); },
      &jpg, w, h, c, px.data(), quality);
  SYN_CHECK(ok != 0, "encode_jpeg: cannot encode a {}x{} image", w, h);
  return jpg;
}

void write_image(const std::string& path, const Tensor& image, int jpeg_quality) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  SYN_CHECK(ext == ".png" || ext == ".jpg" || ext == ".jpeg",
            "cannot write image '{}': unknown extension '{}', expected .png, .jpg or .jpeg", path, ext);
  const std::string bytes = ext == ".png" ? encode_png(image) : encode_jpeg(image, jpeg_quality);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SYN_CHECK(out.good(), "cannot write '{}'", path);
}

void write_png(const std::string& path, const Tensor& image) {
  const std::string png = encode_png(image);
  std::ofstream out(path, std::ios::binary);
  out.write(png.data(), static_cast<std::streamsize>(png.size()));
  SYN_CHECK(out.good(), "cannot write '{}'", path);
}

}  // namespace synapse::data
