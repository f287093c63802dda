// NumPy .npz files: a zip archive of .npy members.
//
// Writing: stored (uncompressed) members, NPY format 1.0, each member's CRC32 computed from the tensor
// before its local header is written, then the central directory and the end record (no ZIP64, so
// archives must stay below 4 GiB). Reading: the central directory gives each member's sizes and CRC;
// members may be stored or deflate-compressed (numpy.savez_compressed) and are decoded straight into
// the tensor's memory.
#include <zlib.h>

#include <array>
#include <climits>
#include <optional>
#include <set>
#include <string_view>

#include "core/budget.h"
#include "core/check.h"
#include "io/binary.h"

namespace synapse::io {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr std::size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22;
constexpr std::uint16_t kVersionNeeded = 20;                   // 2.0: the usual value for stored/deflate
constexpr std::uint16_t kDosTime = 0, kDosDate = (1 << 5) | 1;  // 1980-01-01 00:00, for reproducible files
constexpr std::uint16_t kUtf8Flag = 1 << 11;
constexpr char kNpyMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

// NumPy's name of each dtype ('<' little-endian, '|' byte-sized).
std::string_view npy_descr(DType t) {
  switch (t) {
    case DType::Float32: return "<f4";
    case DType::Int32: return "<i4";
    case DType::Int64: return "<i8";
    case DType::UInt8: return "|u1";
    case DType::Bool: return "|b1";
  }
  return "?";
}

std::optional<DType> dtype_from_descr(std::string_view d) {
  for (DType t : {DType::Float32, DType::Int32, DType::Int64, DType::UInt8, DType::Bool})
    if (npy_descr(t) == d) return t;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------

// "()", "(3,)", "(2, 3)" — Python's repr of the shape tuple.
std::string shape_tuple(const Shape& s) {
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  return fmt::format("({})", fmt::join(s, ", "));
}

// The NPY 1.0 preamble: magic, version, u16 header length, and the header dict padded with spaces and a
// final '\n' so that the data starts at a multiple of 64 (as numpy writes it).
std::string npy_preamble(const Tensor& t, const std::string& path, const std::string& name) {
  std::string dict = "{'descr': '" + std::string(npy_descr(t.dtype())) +
                     "', 'fortran_order': False, 'shape': " + shape_tuple(t.shape()) + ", }";
  const std::size_t total = static_cast<std::size_t>(detail::align64(10 + dict.size() + 1));
  dict.append(total - 10 - dict.size() - 1, ' ');
  dict += '\n';
  SYN_CHECK(dict.size() <= 0xFFFF, "save_npz: '{}': the .npy header of '{}' is too long for NPY format 1.0", path,
            name);
  std::string out(kNpyMagic, sizeof(kNpyMagic));
  out += '\x01';
  out += '\x00';
  detail::put_le<std::uint16_t>(out, static_cast<std::uint16_t>(dict.size()));
  return out + dict;
}

struct OutMember {
  std::string name;      // "<tensor name>.npy"
  std::string preamble;  // the NPY header
  const Tensor* tensor = nullptr;
  std::uint32_t crc = 0;
  std::uint64_t size = 0;          // preamble + data
  std::uint64_t local_offset = 0;  // of the local file header
};

// The fields shared by local and central headers, from "version needed" to the name length.
void put_common(std::string& h, const OutMember& m) {
  const bool ascii = std::all_of(m.name.begin(), m.name.end(), [](char c) { return static_cast<unsigned char>(c) < 128; });
  detail::put_le<std::uint16_t>(h, kVersionNeeded);
  detail::put_le<std::uint16_t>(h, ascii ? 0 : kUtf8Flag);
  detail::put_le<std::uint16_t>(h, 0);  // method: stored
  detail::put_le<std::uint16_t>(h, kDosTime);
  detail::put_le<std::uint16_t>(h, kDosDate);
  detail::put_le<std::uint32_t>(h, m.crc);
  detail::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(m.size));  // compressed size
  detail::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(m.size));  // uncompressed size
  detail::put_le<std::uint16_t>(h, static_cast<std::uint16_t>(m.name.size()));
}

std::string local_header(const OutMember& m) {
  std::string h;
  detail::put_le<std::uint32_t>(h, kLocalSig);
  put_common(h, m);
  detail::put_le<std::uint16_t>(h, 0);  // extra length
  return h + m.name;
}

std::string central_header(const OutMember& m) {
  std::string h;
  detail::put_le<std::uint32_t>(h, kCentralSig);
  detail::put_le<std::uint16_t>(h, kVersionNeeded);  // version made by (MS-DOS attributes)
  put_common(h, m);
  detail::put_le<std::uint16_t>(h, 0);  // extra length
  detail::put_le<std::uint16_t>(h, 0);  // comment length
  detail::put_le<std::uint16_t>(h, 0);  // disk number
  detail::put_le<std::uint16_t>(h, 0);  // internal attributes
  detail::put_le<std::uint32_t>(h, 0);  // external attributes
  detail::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(m.local_offset));
  return h + m.name;
}

std::string end_record(std::size_t count, std::uint64_t cd_size, std::uint64_t cd_offset) {
  std::string h;
  detail::put_le<std::uint32_t>(h, kEndSig);
  detail::put_le<std::uint16_t>(h, 0);  // this disk
  detail::put_le<std::uint16_t>(h, 0);  // disk of the central directory
  detail::put_le<std::uint16_t>(h, static_cast<std::uint16_t>(count));
  detail::put_le<std::uint16_t>(h, static_cast<std::uint16_t>(count));
  detail::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(cd_size));
  detail::put_le<std::uint32_t>(h, static_cast<std::uint32_t>(cd_offset));
  detail::put_le<std::uint16_t>(h, 0);  // comment length
  return h;
}

// Lays out every member (preamble, CRC, offsets) and checks the zip limits before anything is written.
std::vector<OutMember> plan_members(const std::string& path, const TensorMap& tensors, std::uint64_t& cd_offset,
                                    std::uint64_t& cd_size) {
  SYN_CHECK(tensors.size() < 0xFFFF, "save_npz: '{}': {} arrays, a zip without ZIP64 holds at most 65534", path,
            tensors.size());
  std::vector<OutMember> members;
  std::uint64_t pos = 0;
  cd_size = 0;
  for (const auto& [name, t] : tensors) {
    SYN_CHECK(t.defined(), "save_npz: '{}': tensor '{}' is undefined", path, name);
    SYN_CHECK(!name.empty(), "save_npz: '{}': empty array name", path);
    OutMember m;
    m.name = name + ".npy";
    SYN_CHECK(m.name.size() <= 0xFFFF, "save_npz: '{}': array name of {} bytes is too long", path, name.size());
    m.preamble = npy_preamble(t, path, name);
    m.tensor = &t;
    m.size = m.preamble.size() + t.nbytes();
    m.local_offset = pos;
    pos += kLocalSize + m.name.size() + m.size;
    cd_size += kCentralSize + m.name.size();
    members.push_back(std::move(m));
  }
  cd_offset = pos;
  const std::uint64_t total = pos + cd_size + kEndSize;
  SYN_CHECK(total < 0xFFFFFFFFull, "save_npz: '{}': the archive would be {} bytes; files of 4 GiB or more need ZIP64, "
            "which is not supported (save a checkpoint instead)", path, total);
  for (auto& m : members) {
    m.crc = detail::crc32_update(0, m.preamble.data(), m.preamble.size());
    m.crc = detail::crc32_update(m.crc, m.tensor->raw_data(), m.tensor->nbytes());
  }
  return members;
}

// ---------------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------------

struct ZipEntry {
  std::string name;
  std::uint16_t flags = 0, method = 0;
  std::uint32_t crc = 0;
  std::uint64_t csize = 0, usize = 0, local_offset = 0;
};

// The uncompressed bytes of one member, read in order; keeps the running CRC.
class MemberStream {
 public:
  MemberStream(const detail::InputFile& file, const ZipEntry& e, std::uint64_t data_start, std::string where)
      : file_(file), entry_(e), pos_(data_start), left_in_(e.csize), where_(std::move(where)) {
    if (e.method == Z_DEFLATED) {
      SYN_CHECK(inflateInit2(&z_, -MAX_WBITS) == Z_OK, "{}: zlib inflateInit2 failed", where_);
      inflating_ = true;
    }
  }
  ~MemberStream() {
    if (inflating_) inflateEnd(&z_);
  }
  MemberStream(const MemberStream&) = delete;
  MemberStream& operator=(const MemberStream&) = delete;

  std::uint64_t remaining() const { return entry_.usize - produced_; }

  // Exactly n bytes of the member's content.
  void read(void* dst, std::size_t n) {
    SYN_CHECK(n <= remaining(), "{}: needs {} bytes but the member has only {} left", where_, n, remaining());
    if (inflating_) {
      inflate_into(static_cast<unsigned char*>(dst), n);
    } else {
      file_.read_at(pos_, dst, n);
      pos_ += n;
    }
    crc_ = detail::crc32_update(crc_, dst, n);
    produced_ += n;
  }

  // After the last byte: the compressed stream must end here and the CRC must match.
  void finish() {
    SYN_CHECK(remaining() == 0, "{}: {} unread bytes after the array data", where_, remaining());
    if (inflating_ && !ended_) {
      unsigned char extra = 0;
      inflate_step(&extra, 1);
      SYN_CHECK(ended_ && z_.avail_out == 1, "{}: the deflate stream holds more data than the member's size", where_);
    }
    SYN_CHECK(crc_ == entry_.crc, "{}: member is corrupt (CRC32 mismatch: zip says {:08x}, data has {:08x})", where_,
              entry_.crc, crc_);
  }

 private:
  void inflate_into(unsigned char* dst, std::size_t n) {
    while (n > 0) {
      SYN_CHECK(!ended_, "{}: the deflate stream ends before the member's size", where_);
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, UINT_MAX));
      const std::size_t got = inflate_step(dst, chunk);
      dst += got;
      n -= got;
    }
  }

  // One inflate call into [dst, dst + cap), refilling the input first; returns the bytes produced.
  std::size_t inflate_step(unsigned char* dst, uInt cap) {
    if (z_.avail_in == 0 && left_in_ > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left_in_, in_.size()));
      file_.read_at(pos_, in_.data(), n);
      pos_ += n;
      left_in_ -= n;
      z_.next_in = in_.data();
      z_.avail_in = static_cast<uInt>(n);
    }
    z_.next_out = dst;
    z_.avail_out = cap;
    const int rc = inflate(&z_, Z_NO_FLUSH);
    const std::size_t got = cap - z_.avail_out;
    if (rc == Z_STREAM_END) {
      ended_ = true;
    } else if (rc == Z_BUF_ERROR) {
      SYN_CHECK(got > 0 || z_.avail_in > 0 || left_in_ > 0, "{}: the deflate stream is truncated", where_);
    } else {
      SYN_CHECK(rc == Z_OK, "{}: member is corrupt (deflate error: {})", where_, z_.msg ? z_.msg : "unknown");
    }
    return got;
  }

  const detail::InputFile& file_;
  const ZipEntry& entry_;
  std::uint64_t pos_;      // next compressed (or stored) byte in the file
  std::uint64_t left_in_;  // compressed bytes not yet read
  std::uint64_t produced_ = 0;
  std::uint32_t crc_ = 0;
  std::string where_;
  bool inflating_ = false, ended_ = false;
  z_stream z_{};
  std::array<unsigned char, 1 << 16> in_{};
};

// A Python literal of the kind an NPY header holds: a dict of strings, booleans and tuples of ints.
struct PyValue {
  enum class Kind { Str, Bool, Int, Seq, None, Dict } kind = Kind::None;
  std::string str;
  bool b = false;
  std::int64_t i = 0;
  std::vector<PyValue> items;                           // Seq
  // Dict (string keys only): keys[i] -> values[i]. Two vectors, not one of pairs: a pair holding the still
  // incomplete PyValue is not allowed (clang rejects it; a vector of PyValue is fine).
  std::vector<std::string> keys;
  std::vector<PyValue> values;
};

class PyParser {
 public:
  PyParser(std::string_view s, std::string where) : s_(s), where_(std::move(where)) {}

  PyValue parse_all() {
    PyValue v = value(0);
    skip_ws();
    if (i_ != s_.size()) bad("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    detail::fail("{}: bad .npy header ({} at character {}): {}", where_, what, i_, std::string(s_.substr(0, 200)));
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  PyValue value(int depth) {
    if (depth > 8) bad("nested too deeply");
    skip_ws();
    if (i_ >= s_.size()) bad("unexpected end");
    PyValue v;
    const char c = s_[i_];
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Kind::Str;
      v.str = string_literal();
    } else if (c == '(' || c == '[') {
      v.kind = PyValue::Kind::Seq;
      v.items = sequence(c == '(' ? ')' : ']', depth);
    } else if (c == '{') {
      v.kind = PyValue::Kind::Dict;
      dict(v, depth);
    } else if (word("True")) {
      v.kind = PyValue::Kind::Bool;
      v.b = true;
    } else if (word("False")) {
      v.kind = PyValue::Kind::Bool;
    } else if (word("None")) {
      v.kind = PyValue::Kind::None;
    } else if (c >= '0' && c <= '9') {
      v.kind = PyValue::Kind::Int;
      v.i = integer();
    } else {
      bad("unexpected character");
    }
    return v;
  }

  std::string string_literal() {
    const char quote = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out += s_[i_++];
    }
    if (i_ >= s_.size()) bad("unterminated string");
    ++i_;
    return out;
  }

  std::int64_t integer() {
    std::int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (INT64_MAX - 9) / 10) bad("integer too large");
      v = v * 10 + (s_[i_++] - '0');
    }
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long, in old files
    return v;
  }

  std::vector<PyValue> sequence(char close, int depth) {
    ++i_;
    std::vector<PyValue> items;
    while (!eat(close)) {
      items.push_back(value(depth + 1));
      if (!eat(',')) {
        if (!eat(close)) bad("expected ',' or closing bracket");
        break;
      }
    }
    return items;
  }

  void dict(PyValue& v, int depth) {
    ++i_;
    while (!eat('}')) {
      skip_ws();
      if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) bad("expected a string key");
      std::string key = string_literal();
      if (!eat(':')) bad("expected ':'");
      v.values.push_back(value(depth + 1));
      v.keys.push_back(std::move(key));
      if (!eat(',')) {
        if (!eat('}')) bad("expected ',' or '}'");
        break;
      }
    }
  }

  std::string_view s_;
  std::string where_;
  std::size_t i_ = 0;
};

const PyValue* field(const PyValue& dict, std::string_view key) {
  for (std::size_t i = 0; i < dict.keys.size(); ++i)
    if (dict.keys[i] == key) return &dict.values[i];
  return nullptr;
}

class NpzReader {
 public:
  explicit NpzReader(const std::string& path) : file_("load_npz", path) {}

  TensorMap read() {
    TensorMap out;
    for (const ZipEntry& e : read_directory()) {
      const std::string where = fmt::format("load_npz: '{}': member '{}'", file_.path(), e.name);
      SYN_CHECK(e.name.size() > 4 && e.name.ends_with(".npy"), "{}: not an .npy file", where);
      const std::string name = e.name.substr(0, e.name.size() - 4);
      SYN_CHECK(!out.contains(name), "{}: appears twice in the archive", where);
      out.emplace(name, read_member(e, where));
    }
    return out;
  }

 private:
  template <class... Args> [[noreturn]] void bad(fmt::format_string<Args...> f, Args&&... args) const {
    detail::fail("load_npz: '{}': {}", file_.path(), fmt::format(f, std::forward<Args>(args)...));
  }

  // Finds the end record (searching back over a possible archive comment); returns its offset.
  std::uint64_t find_end_record() const {
    const std::uint64_t size = file_.size();
    if (size < kEndSize) bad("not a zip file ({} bytes, too short)", size);
    const auto tail_len = static_cast<std::size_t>(std::min<std::uint64_t>(size, kEndSize + 0xFFFF));
    std::vector<unsigned char> tail(tail_len);
    file_.read_at(size - tail_len, tail.data(), tail_len);
    for (std::size_t p = tail_len - kEndSize + 1; p-- > 0;) {
      if (detail::get_le<std::uint32_t>(&tail[p]) != kEndSig) continue;
      const auto comment = detail::get_le<std::uint16_t>(&tail[p + 20]);
      if (p + kEndSize + comment == tail_len) return size - tail_len + p;
    }
    bad("not a zip file, or truncated (no end-of-central-directory record)");
  }

  std::vector<ZipEntry> read_directory() {
    const std::uint64_t end_at = find_end_record();
    unsigned char end[kEndSize];
    file_.read_at(end_at, end, kEndSize);
    const auto disk = detail::get_le<std::uint16_t>(end + 4), cd_disk = detail::get_le<std::uint16_t>(end + 6);
    const auto count = detail::get_le<std::uint16_t>(end + 10);
    const std::uint64_t cd_size = detail::get_le<std::uint32_t>(end + 12);
    const std::uint64_t cd_offset = detail::get_le<std::uint32_t>(end + 16);
    if (disk != 0 || cd_disk != 0) bad("multi-disk zip archives are not supported");
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) bad("ZIP64 archives are not supported");
    if (cd_offset > end_at || cd_size > end_at - cd_offset)
      bad("corrupt or truncated zip: the central directory [{}, {}) runs past its end record at byte {}", cd_offset,
          cd_offset + cd_size, end_at);
    std::vector<unsigned char> cd(static_cast<std::size_t>(cd_size));
    file_.read_at(cd_offset, cd.data(), cd.size());
    std::vector<ZipEntry> entries;
    std::size_t p = 0;
    for (std::uint16_t k = 0; k < count; ++k) {
      if (cd.size() - p < kCentralSize || detail::get_le<std::uint32_t>(&cd[p]) != kCentralSig)
        bad("corrupt zip: central directory entry {} of {} is damaged", k + 1, count);
      const unsigned char* h = &cd[p];
      ZipEntry e;
      e.flags = detail::get_le<std::uint16_t>(h + 8);
      e.method = detail::get_le<std::uint16_t>(h + 10);
      e.crc = detail::get_le<std::uint32_t>(h + 16);
      e.csize = detail::get_le<std::uint32_t>(h + 20);
      e.usize = detail::get_le<std::uint32_t>(h + 24);
      const std::size_t name_len = detail::get_le<std::uint16_t>(h + 28);
      const std::size_t var_len = name_len + detail::get_le<std::uint16_t>(h + 30) + detail::get_le<std::uint16_t>(h + 32);
      e.local_offset = detail::get_le<std::uint32_t>(h + 42);
      if (cd.size() - p - kCentralSize < var_len) bad("corrupt zip: central directory entry {} is truncated", k + 1);
      e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_len);
      if (e.csize == 0xFFFFFFFF || e.usize == 0xFFFFFFFF || e.local_offset == 0xFFFFFFFF)
        bad("member '{}' needs ZIP64, which is not supported", e.name);
      entries.push_back(std::move(e));
      p += kCentralSize + var_len;
    }
    cd_offset_ = cd_offset;
    return entries;
  }

  // Offset of the member's data, after its local header.
  std::uint64_t data_start(const ZipEntry& e, const std::string& where) const {
    unsigned char h[kLocalSize];
    SYN_CHECK(e.local_offset <= cd_offset_ && cd_offset_ - e.local_offset >= kLocalSize,
              "{}: local header at byte {} is outside the archive's data", where, e.local_offset);
    file_.read_at(e.local_offset, h, kLocalSize);
    SYN_CHECK(detail::get_le<std::uint32_t>(h) == kLocalSig, "{}: corrupt zip (bad local header signature)", where);
    const std::uint64_t start = e.local_offset + kLocalSize + detail::get_le<std::uint16_t>(h + 26) +
                                detail::get_le<std::uint16_t>(h + 28);
    SYN_CHECK(start <= cd_offset_ && e.csize <= cd_offset_ - start,
              "{}: truncated or corrupt: its {} bytes of data at byte {} run into the central directory at byte {}",
              where, e.csize, start, cd_offset_);
    return start;
  }

  Tensor read_member(const ZipEntry& e, const std::string& where) {
    SYN_CHECK((e.flags & 1) == 0, "{}: encrypted members are not supported", where);
    SYN_CHECK(e.method == 0 || e.method == Z_DEFLATED,
              "{}: compression method {} is not supported (only stored and deflate)", where, e.method);
    SYN_CHECK(e.method != 0 || e.csize == e.usize, "{}: corrupt zip (stored member with compressed size {} and size {})",
              where, e.csize, e.usize);
    // Deflate expands at most 1032:1: a member cannot declare more than its compressed bytes can hold.
    SYN_CHECK(e.method != Z_DEFLATED || e.usize <= e.csize * 1032 + 1024,
              "{}: corrupt zip: {} compressed bytes cannot inflate to the declared {} bytes (deflate expands at most "
              "1032:1)", where, e.csize, e.usize);
    MemberStream in(file_, e, data_start(e, where), where);
    const auto [dtype, shape] = read_npy_header(in, where);
    const std::uint64_t nbytes = static_cast<std::uint64_t>(synapse::numel(shape)) * dtype_size(dtype);
    SYN_CHECK(nbytes == in.remaining(), "{}: header says shape {} {} ({} bytes) but the member has {} bytes of data",
              where, to_string(shape), npy_descr(dtype), nbytes, in.remaining());
    ::synapse::detail::check_declared_size("load_npz", file_.path(),
                                           fmt::format("member '{}' (shape {} {})", e.name, to_string(shape), npy_descr(dtype)),
                                           nbytes);
    Tensor t = Tensor::empty(shape, dtype);
    in.read(t.raw_data(), static_cast<std::size_t>(nbytes));
    in.finish();
    if (dtype == DType::Bool) detail::normalize_bools(static_cast<unsigned char*>(t.raw_data()), nbytes);
    return t;
  }

  std::pair<DType, Shape> read_npy_header(MemberStream& in, const std::string& where) const {
    unsigned char pre[12];
    SYN_CHECK(in.remaining() >= 10, "{}: too short for an .npy file", where);
    in.read(pre, 10);
    SYN_CHECK(std::memcmp(pre, kNpyMagic, sizeof(kNpyMagic)) == 0, "{}: not an .npy file (bad magic)", where);
    const int major = pre[6];
    SYN_CHECK(major >= 1 && major <= 3, "{}: unsupported .npy format version {}.{}", where, major, int(pre[7]));
    std::uint64_t header_len = detail::get_le<std::uint16_t>(pre + 8);
    if (major >= 2) {
      SYN_CHECK(in.remaining() >= 2, "{}: truncated .npy header", where);
      in.read(pre + 10, 2);
      header_len = detail::get_le<std::uint32_t>(pre + 8);
    }
    SYN_CHECK(header_len <= in.remaining() && header_len <= (1u << 20), "{}: .npy header length {} is invalid",
              where, header_len);
    std::string text(static_cast<std::size_t>(header_len), '\0');
    in.read(text.data(), text.size());
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0')) text.pop_back();
    const PyValue dict = PyParser(text, where).parse_all();
    SYN_CHECK(dict.kind == PyValue::Kind::Dict, "{}: the .npy header is not a dict: {}", where, text);
    const PyValue* descr = field(dict, "descr");
    const PyValue* fortran = field(dict, "fortran_order");
    const PyValue* shape = field(dict, "shape");
    SYN_CHECK(descr && fortran && shape, "{}: the .npy header lacks 'descr', 'fortran_order' or 'shape': {}", where,
              text);
    SYN_CHECK(descr->kind == PyValue::Kind::Str, "{}: structured dtypes are not supported (descr is not a string)",
              where);
    const auto dtype = dtype_from_descr(descr->str);
    SYN_CHECK(dtype.has_value(), "{}: unsupported dtype '{}' (supported: <f4 <i4 <i8 |u1 |b1)", where, descr->str);
    SYN_CHECK(fortran->kind == PyValue::Kind::Bool, "{}: 'fortran_order' is not True or False", where);
    SYN_CHECK(!fortran->b, "{}: the array is in Fortran order; only C order is supported (save "
              "numpy.ascontiguousarray(a) instead)", where);
    SYN_CHECK(shape->kind == PyValue::Kind::Seq, "{}: 'shape' is not a tuple", where);
    Shape dims;
    std::uint64_t numel = 1;
    for (const PyValue& d : shape->items) {
      SYN_CHECK(d.kind == PyValue::Kind::Int, "{}: 'shape' holds something other than integers", where);
      const auto extent = static_cast<std::uint64_t>(d.i);
      SYN_CHECK(extent == 0 || numel <= (std::uint64_t{1} << 40) / extent, "{}: shape is too large", where);
      numel *= extent;
      dims.push_back(d.i);
    }
    return {*dtype, dims};
  }

  detail::InputFile file_;
  std::uint64_t cd_offset_ = 0;
};

}  // namespace

void save_npz(const std::string& path, const TensorMap& tensors) {
  std::uint64_t cd_offset = 0, cd_size = 0;
  const std::vector<OutMember> members = plan_members(path, tensors, cd_offset, cd_size);
  detail::write_atomic("save_npz", path, [&](const ByteSink& sink) {
    for (const OutMember& m : members) {
      const std::string h = local_header(m);
      sink(h.data(), h.size());
      sink(m.preamble.data(), m.preamble.size());
      sink(m.tensor->raw_data(), m.tensor->nbytes());
    }
    for (const OutMember& m : members) {
      const std::string h = central_header(m);
      sink(h.data(), h.size());
    }
    const std::string end = end_record(members.size(), cd_size, cd_offset);
    sink(end.data(), end.size());
  });
}

TensorMap load_npz(const std::string& path) { return NpzReader(path).read(); }

}  // namespace synapse::io
