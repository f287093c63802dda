// Checkpoints: the SYNCKPT1 file format (see synapse/io.h), atomic writes, CheckpointManager and
// restore-by-name. Also the shared file helpers of io/binary.h.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "core/budget.h"
#include "core/check.h"
#include "io/binary.h"
#include "io/temp_files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace synapse::io {
namespace detail {

// ---------------------------------------------------------------------------------------------------
// Shared helpers (declared in io/binary.h)
// ---------------------------------------------------------------------------------------------------

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, std::size_t{1} << 30));
    crc = static_cast<std::uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

InputFile::InputFile(std::string who, std::string path) : who_(std::move(who)), path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  SYN_CHECK(fd_ >= 0, "{}: cannot open '{}': {}", who_, path_, errno_text());
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file";
    ::close(fd_);
    fd_ = -1;
    detail::fail("{}: cannot read '{}': {}", who_, path_, why);
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(std::uint64_t offset, void* dst, std::size_t n) const {
  SYN_CHECK(offset <= size_ && n <= size_ - offset, "{}: '{}' is truncated: need bytes [{}, {}), file has {} bytes",
            who_, path_, offset, offset + n, size_);
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    const ssize_t got = ::pread(fd_, p, chunk, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    SYN_CHECK(got > 0, "{}: error reading '{}' at byte {}: {}", who_, path_, offset,
              got == 0 ? std::string("unexpected end of file (was it modified while reading?)") : errno_text());
    p += got;
    offset += static_cast<std::uint64_t>(got);
    n -= static_cast<std::size_t>(got);
  }
}

namespace {

// Best-effort fsync of the folder holding `path`, so the rename itself is durable. The rename has
// already happened, so a failure here is not reported (the new file is in place either way).
void fsync_parent(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_atomic(const char* who, const std::string& path,
                  const std::function<void(const ByteSink& sink)>& produce) {
  SYN_CHECK(!path.empty(), "{}: empty file path", who);
  {  // the first write into a folder clears what killed writers left there
    static std::mutex mutex;
    static std::set<std::string> cleaned;
    fs::path parent = fs::path(path).parent_path();
    if (parent.empty()) parent = ".";
    const std::lock_guard lock(mutex);
    if (cleaned.insert(parent.string()).second) remove_stale_temp_files(parent.string());
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    const std::string why = errno_text();
    const fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec))
      detail::fail("{}: cannot write '{}': folder '{}' does not exist", who, path, parent.string());
    detail::fail("{}: cannot write '{}': cannot create temporary file '{}': {}", who, path, tmp, why);
  }
  // Everything after this point removes the temporary file on failure.
  auto abandon = [&](const std::string& why) {
    if (f != nullptr) std::fclose(f);
    f = nullptr;
    std::remove(tmp.c_str());
    detail::fail("{}: cannot write '{}': {}", who, path, why);
  };
  try {
    produce([&](const void* data, std::size_t n) {
      if (n != 0 && std::fwrite(data, 1, n, f) != n) abandon("write to '" + tmp + "' failed: " + errno_text());
    });
  } catch (...) {
    if (f != nullptr) {
      std::fclose(f);
      std::remove(tmp.c_str());
    }
    throw;
  }
  if (std::fflush(f) != 0) abandon("flush of '" + tmp + "' failed: " + errno_text());
  if (::fsync(::fileno(f)) != 0) abandon("fsync of '" + tmp + "' failed: " + errno_text());
  const int closed = std::fclose(f);
  f = nullptr;
  if (closed != 0) abandon("close of '" + tmp + "' failed: " + errno_text());
  if (std::rename(tmp.c_str(), path.c_str()) != 0) abandon("rename of '" + tmp + "' failed: " + errno_text());
  fsync_parent(path);
}

}  // namespace detail

int remove_stale_temp_files(const std::string& dir) {
  std::error_code ec;
  int removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto dot = name.rfind(".tmp.");
    if (dot == std::string::npos || dot == 0) continue;
    const std::string digits = name.substr(dot + 5);
    if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    // Only a writer that no longer runs: kill(pid, 0) fails with ESRCH (EPERM means it runs as someone else).
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec)) continue;
    if (fs::remove(it->path(), file_ec)) ++removed;
  }
  return removed;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  detail::write_atomic("write_file_atomic", path,
                       [&](const ByteSink& sink) { sink(content.data(), content.size()); });
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink& sink)>& produce) {
  detail::write_atomic("write_file_atomic", path, produce);
}

// ---------------------------------------------------------------------------------------------------
// Checkpoint format
// ---------------------------------------------------------------------------------------------------
namespace {

constexpr char kMagic[8] = {'S', 'Y', 'N', 'C', 'K', 'P', 'T', '1'};
constexpr std::int64_t kVersion = 1;
constexpr std::uint64_t kPrefix = 16;  // magic + u64 header length
constexpr std::uint64_t kCrcBytes = 4;

std::optional<DType> dtype_from_name(std::string_view s) {
  for (DType t : {DType::Float32, DType::Int32, DType::Int64, DType::UInt8, DType::Bool})
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

// One tensor's entry of the header, as laid out in the data section.
struct Entry {
  std::string name;
  DType dtype = DType::Float32;
  Shape shape;
  std::uint64_t offset = 0;  // from the start of the data section
  std::uint64_t nbytes = 0;
};

// ---- save ----

// The JSON header; `order` receives the tensors in data-section order.
std::string build_header(const Checkpoint& ckpt, std::vector<const Tensor*>& order, const std::string& path) {
  json tensors = json::array();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : ckpt.tensors) {
    SYN_CHECK(t.defined(), "save_checkpoint: '{}': tensor '{}' is undefined", path, name);
    SYN_CHECK(t.device() == Device::CPU, "save_checkpoint: '{}': tensor '{}' is not on the CPU", path, name);
    offset = detail::align64(offset);
    tensors.push_back({{"name", name},
                       {"dtype", std::string(dtype_name(t.dtype()))},
                       {"shape", t.shape()},
                       {"offset", offset},
                       {"nbytes", static_cast<std::uint64_t>(t.nbytes())}});
    order.push_back(&t);
    offset += t.nbytes();
  }
  json header = {{"version", kVersion},
                 {"step", ckpt.step},
                 {"epoch", ckpt.epoch},
                 {"metadata", ckpt.metadata},
                 {"tensors", std::move(tensors)}};
  try {
    return header.dump();
  } catch (const json::exception& e) {  // e.g. a name or metadata value that is not valid UTF-8
    detail::fail("save_checkpoint: '{}': cannot encode the header: {}", path, e.what());
  }
}

// ---- load ----

// The reader of one checkpoint file: every error names the file.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& path) : file_("load_checkpoint", path) {}

  Checkpoint read() {
    const std::uint64_t header_len = read_prefix();
    const json header = parse_header(header_len);
    Checkpoint ckpt;
    ckpt.step = get_int(header, "step");
    ckpt.epoch = get_int(header, "epoch");
    ckpt.metadata = get_metadata(header);
    const std::uint64_t data_start = detail::align64(kPrefix + header_len);
    const std::vector<Entry> entries = get_entries(header, data_start);
    check_size(entries, data_start);
    read_data(entries, data_start, header_len, ckpt);
    return ckpt;
  }

 private:
  template <class... Args> [[noreturn]] void corrupt(fmt::format_string<Args...> f, Args&&... args) const {
    detail::fail("load_checkpoint: '{}': file is corrupt: {}", file_.path(),
                 fmt::format(f, std::forward<Args>(args)...));
  }

  // Magic and header length; returns H.
  std::uint64_t read_prefix() {
    const std::uint64_t size = file_.size();
    unsigned char prefix[kPrefix] = {};
    file_.read_at(0, prefix, static_cast<std::size_t>(std::min<std::uint64_t>(size, kPrefix)));
    SYN_CHECK(size >= sizeof(kMagic) && std::memcmp(prefix, kMagic, sizeof(kMagic)) == 0,
              "load_checkpoint: '{}' is not a Synapse checkpoint (bad magic: expected \"SYNCKPT1\" at the start of "
              "the file)",
              file_.path());
    SYN_CHECK(size >= kPrefix + kCrcBytes, "load_checkpoint: '{}' is truncated: {} bytes, shorter than the smallest "
              "checkpoint", file_.path(), size);
    const auto header_len = detail::get_le<std::uint64_t>(prefix + 8);
    SYN_CHECK(header_len <= size - kPrefix - kCrcBytes,
              "load_checkpoint: '{}' is truncated or corrupt: header length {} runs past the end of the file ({} bytes)",
              file_.path(), header_len, size);
    return header_len;
  }

  json parse_header(std::uint64_t header_len) {
    header_text_.resize(static_cast<std::size_t>(header_len));
    file_.read_at(kPrefix, header_text_.data(), header_text_.size());
    json header;
    try {
      header = json::parse(header_text_);
    } catch (const json::exception& e) {
      corrupt("header is not valid JSON ({})", e.what());
    }
    if (!header.is_object()) corrupt("header is not a JSON object");
    if (!header.contains("version") || !header["version"].is_number_integer())
      corrupt("header has no integer \"version\"");
    const auto version = header["version"].get<std::int64_t>();
    SYN_CHECK(version == kVersion, "load_checkpoint: '{}': unsupported checkpoint version {} (this build reads "
              "version {})", file_.path(), version, kVersion);
    return header;
  }

  // A signed 64-bit integer field.
  std::int64_t get_int(const json& j, const char* key) const {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) corrupt("header field \"{}\" is missing or not an integer", key);
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
      corrupt("header field \"{}\" is out of range", key);
    return it->get<std::int64_t>();
  }

  // A non-negative integer field of a tensor entry.
  std::uint64_t get_uint(const json& j, const char* key, const std::string& name) const {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned())
      corrupt("tensor '{}': \"{}\" is missing or not a non-negative integer", name, key);
    return it->get<std::uint64_t>();
  }

  std::map<std::string, std::string> get_metadata(const json& header) const {
    const auto it = header.find("metadata");
    if (it == header.end() || !it->is_object()) corrupt("header field \"metadata\" is missing or not an object");
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) corrupt("metadata value \"{}\" is not a string", k);
      out[k] = v.get<std::string>();
    }
    return out;
  }

  Entry get_entry(const json& j, std::uint64_t data_start) const {
    if (!j.is_object()) corrupt("a \"tensors\" entry is not an object");
    const auto name_it = j.find("name");
    if (name_it == j.end() || !name_it->is_string()) corrupt("a tensor entry has no string \"name\"");
    Entry e;
    e.name = name_it->get<std::string>();
    const auto dt = j.find("dtype");
    if (dt == j.end() || !dt->is_string()) corrupt("tensor '{}': \"dtype\" is missing or not a string", e.name);
    const auto parsed = dtype_from_name(dt->get<std::string>());
    SYN_CHECK(parsed.has_value(), "load_checkpoint: '{}': tensor '{}' has unknown dtype '{}' (known: float32 int32 "
              "int64 uint8 bool)", file_.path(), e.name, dt->get<std::string>());
    e.dtype = *parsed;
    const auto sh = j.find("shape");
    if (sh == j.end() || !sh->is_array()) corrupt("tensor '{}': \"shape\" is missing or not an array", e.name);
    // numel is bounded by the file size below, so the product is checked for overflow as it grows.
    std::uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        corrupt("tensor '{}': shape {} has an extent that is not a non-negative integer", e.name, sh->dump());
      const auto extent = d.get<std::uint64_t>();
      if (extent != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 8 / extent)
        corrupt("tensor '{}': shape {} is too large", e.name, sh->dump());
      numel *= extent;
      e.shape.push_back(static_cast<std::int64_t>(extent));
    }
    e.offset = get_uint(j, "offset", e.name);
    e.nbytes = get_uint(j, "nbytes", e.name);
    if (e.nbytes != numel * dtype_size(e.dtype))
      corrupt("tensor '{}': nbytes {} does not match shape {} of {} ({} bytes)", e.name, e.nbytes,
              to_string(e.shape), dtype_name(e.dtype), numel * dtype_size(e.dtype));
    if (e.offset % 64 != 0) corrupt("tensor '{}': offset {} is not a multiple of 64", e.name, e.offset);
    const std::uint64_t size = file_.size();
    if (e.offset > size || e.nbytes > size || data_start + e.offset + e.nbytes > size)
      detail::fail("load_checkpoint: '{}' is truncated: header says tensor '{}' ends at byte {}, file has {} bytes",
                   file_.path(), e.name, data_start + e.offset + e.nbytes, size);
    return e;
  }

  std::vector<Entry> get_entries(const json& header, std::uint64_t data_start) const {
    const auto it = header.find("tensors");
    if (it == header.end() || !it->is_array()) corrupt("header field \"tensors\" is missing or not an array");
    std::vector<Entry> entries;
    std::set<std::string> seen;
    for (const auto& j : *it) {
      entries.push_back(get_entry(j, data_start));
      if (!seen.insert(entries.back().name).second) corrupt("tensor '{}' appears twice", entries.back().name);
    }
    // The data is read in one forward pass (for the CRC), so tensors must not overlap.
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.offset < b.offset; });
    for (std::size_t i = 1; i < entries.size(); ++i)
      if (entries[i].offset < entries[i - 1].offset + entries[i - 1].nbytes)
        corrupt("tensors '{}' and '{}' overlap", entries[i - 1].name, entries[i].name);
    return entries;
  }

  // The file must be exactly data section + CRC.
  void check_size(const std::vector<Entry>& entries, std::uint64_t data_start) const {
    const std::uint64_t data_end = data_start + (entries.empty() ? 0 : entries.back().offset + entries.back().nbytes);
    const std::uint64_t expected = data_end + kCrcBytes;
    const std::uint64_t size = file_.size();
    SYN_CHECK(size >= expected, "load_checkpoint: '{}' is truncated: data ends at byte {} and a 4-byte CRC32 follows, "
              "so the file should have {} bytes, it has {}", file_.path(), data_end, expected, size);
    if (size > expected) corrupt("{} unexpected bytes after the data (expected {} bytes, found {})",
                                 size - expected, expected, size);
  }

  // Reads the padding and every tensor in file order, computing the CRC on the way.
  void read_data(const std::vector<Entry>& entries, std::uint64_t data_start, std::uint64_t header_len,
                 Checkpoint& ckpt) {
    std::uint32_t crc = 0;
    unsigned char prefix[kPrefix];
    file_.read_at(0, prefix, kPrefix);
    crc = detail::crc32_update(crc, prefix, kPrefix);
    crc = detail::crc32_update(crc, header_text_.data(), header_text_.size());
    std::uint64_t pos = kPrefix + header_len;
    auto skip_to = [&](std::uint64_t target) {  // padding: only hashed
      unsigned char buf[4096];
      while (pos < target) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(target - pos, sizeof(buf)));
        file_.read_at(pos, buf, n);
        crc = detail::crc32_update(crc, buf, n);
        pos += n;
      }
    };
    for (const Entry& e : entries) {
      skip_to(data_start + e.offset);
      ::synapse::detail::check_declared_size("load_checkpoint", file_.path(), fmt::format("tensor '{}'", e.name), e.nbytes);
      Tensor t = Tensor::empty(e.shape, e.dtype);
      auto* dst = static_cast<unsigned char*>(t.raw_data());
      file_.read_at(pos, dst, static_cast<std::size_t>(e.nbytes));
      crc = detail::crc32_update(crc, dst, static_cast<std::size_t>(e.nbytes));
      if (e.dtype == DType::Bool) detail::normalize_bools(dst, static_cast<std::size_t>(e.nbytes));
      pos += e.nbytes;
      ckpt.tensors.emplace(e.name, std::move(t));
    }
    skip_to(std::max(pos, data_start));
    unsigned char stored_bytes[kCrcBytes];
    file_.read_at(pos, stored_bytes, kCrcBytes);
    const auto stored = detail::get_le<std::uint32_t>(stored_bytes);
    if (stored != crc) corrupt("CRC32 mismatch (stored {:08x}, computed {:08x})", stored, crc);
  }

  detail::InputFile file_;
  std::string header_text_;
};

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  std::vector<const Tensor*> order;
  const std::string header = build_header(ckpt, order, path);
  detail::write_atomic("save_checkpoint", path, [&](const ByteSink& sink) {
    std::uint32_t crc = 0;
    auto emit = [&](const void* p, std::size_t n) {
      crc = detail::crc32_update(crc, p, n);
      sink(p, n);
    };
    static constexpr char zeros[64] = {};
    std::string prefix(kMagic, sizeof(kMagic));
    detail::put_le<std::uint64_t>(prefix, header.size());
    emit(prefix.data(), prefix.size());
    emit(header.data(), header.size());
    std::uint64_t pos = kPrefix + header.size();
    const std::uint64_t data_start = detail::align64(pos);
    for (const Tensor* t : order) {
      const std::uint64_t at = detail::align64(pos);
      emit(zeros, static_cast<std::size_t>(at - pos));
      emit(t->raw_data(), t->nbytes());
      pos = at + t->nbytes();
    }
    if (order.empty()) {  // the data section still starts at a multiple of 64
      emit(zeros, static_cast<std::size_t>(data_start - pos));
      pos = data_start;
    }
    std::string trailer;
    detail::put_le<std::uint32_t>(trailer, crc);
    sink(trailer.data(), trailer.size());
  });
}

Checkpoint load_checkpoint(const std::string& path) { return CheckpointReader(path).read(); }

// ---------------------------------------------------------------------------------------------------
// CheckpointManager
// ---------------------------------------------------------------------------------------------------
namespace {

constexpr const char* kIndexName = "checkpoint";

// The step of a file named "ckpt-<step>.syn", or nullopt for any other name.
std::optional<std::int64_t> step_of(const std::string& file) {
  constexpr std::string_view pre = "ckpt-", post = ".syn";
  if (file.size() <= pre.size() + post.size() || !file.starts_with(pre) || !file.ends_with(post)) return std::nullopt;
  const std::string_view digits(file.data() + pre.size(), file.size() - pre.size() - post.size());
  const bool negative = digits.front() == '-';
  const auto body = negative ? digits.substr(1) : digits;
  if (body.empty() || body.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : body) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return negative ? -v : v;
}

std::string file_in(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

// Checkpoint file names from the index, oldest first; nullopt when there is no usable index. Only names
// of the form ckpt-<step>.syn are accepted, so a damaged index can never point outside the folder.
std::optional<std::vector<std::string>> read_index(const std::string& dir) {
  std::error_code ec;
  const std::string path = file_in(dir, kIndexName);
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  try {
    detail::InputFile f("checkpoint index", path);
    std::string text(static_cast<std::size_t>(f.size()), '\0');
    f.read_at(0, text.data(), text.size());
    const json j = json::parse(text);
    std::vector<std::string> names;
    for (const auto& n : j.at("all")) {
      const auto name = n.get<std::string>();
      if (step_of(name) && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    return names;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable index: the caller scans the folder instead
  }
}

// Checkpoint file names found in the folder, by increasing step.
std::vector<std::string> scan_folder(const std::string& dir) {
  std::vector<std::pair<std::int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (const auto step = step_of(name); step && entry.is_regular_file(ec)) found.emplace_back(*step, name);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (auto& f : found) names.push_back(std::move(f.second));
  return names;
}

// Names of checkpoints that exist, oldest first (index order, or by step when scanning).
std::vector<std::string> existing_checkpoints(const std::string& dir) {
  auto index = read_index(dir);
  std::vector<std::string> names = index ? std::move(*index) : scan_folder(dir);
  std::error_code ec;
  std::erase_if(names, [&](const std::string& n) { return !fs::is_regular_file(file_in(dir, n), ec); });
  return names;
}

void write_index(const std::string& dir, const std::vector<std::string>& names) {
  const json j = {{"latest", names.empty() ? json(nullptr) : json(names.back())}, {"all", names}};
  const std::string text = j.dump(2) + "\n";
  detail::write_atomic("CheckpointManager", file_in(dir, kIndexName),
                       [&](const ByteSink& sink) { sink(text.data(), text.size()); });
}

}  // namespace

CheckpointManager::CheckpointManager(std::string dir, int max_to_keep) : dir_(std::move(dir)), max_to_keep_(max_to_keep) {
  SYN_CHECK(!dir_.empty(), "CheckpointManager: empty folder name");
  SYN_CHECK(max_to_keep_ >= 0, "CheckpointManager: max_to_keep must be >= 0 (0 keeps all), got {}", max_to_keep_);
  std::error_code ec, ec2;
  fs::create_directories(dir_, ec);
  SYN_CHECK(fs::is_directory(dir_, ec2), "CheckpointManager: cannot create folder '{}': {}", dir_,
            ec ? ec.message() : std::string("a file with that name exists"));
}

std::string CheckpointManager::save(const Checkpoint& ckpt) {
  const std::string name = "ckpt-" + std::to_string(ckpt.step) + ".syn";
  const std::string path = file_in(dir_, name);
  std::vector<std::string> names = existing_checkpoints(dir_);
  save_checkpoint(path, ckpt);
  std::erase(names, name);
  names.push_back(name);
  std::vector<std::string> dropped;
  if (max_to_keep_ > 0 && names.size() > static_cast<std::size_t>(max_to_keep_)) {
    const auto excess = static_cast<std::ptrdiff_t>(names.size() - static_cast<std::size_t>(max_to_keep_));
    dropped.assign(names.begin(), names.begin() + excess);
    names.erase(names.begin(), names.begin() + excess);
  }
  // Index first, then deletions: a crash in between leaves stray files, never a dangling index.
  write_index(dir_, names);
  for (const auto& d : dropped) {
    std::error_code ec;
    fs::remove(file_in(dir_, d), ec);
  }
  return path;
}

std::vector<std::string> CheckpointManager::all() const {
  std::vector<std::string> paths;
  for (const auto& n : existing_checkpoints(dir_)) paths.push_back(file_in(dir_, n));
  return paths;
}

std::optional<std::string> CheckpointManager::latest() const { return latest_checkpoint(dir_); }

std::optional<std::string> latest_checkpoint(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  const auto names = existing_checkpoints(dir);
  if (names.empty()) return std::nullopt;
  return file_in(dir, names.back());
}

// ---------------------------------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------------------------------
namespace {

std::string describe(const Tensor& t) { return to_string(t.shape()) + " " + std::string(dtype_name(t.dtype())); }

// "a, b, c" (at most 8 names, then "...").
std::string some_names(const TensorMap& m) {
  std::string s;
  int n = 0;
  for (const auto& kv : m) {
    if (n++ == 8) return s + ", ...";
    s += (s.empty() ? "'" : ", '") + kv.first + "'";
  }
  return s.empty() ? "none" : s;
}

}  // namespace

void restore(TensorMap& into, const TensorMap& from, const std::vector<std::string>& names) {
  std::vector<std::string> wanted = names;
  if (wanted.empty())
    for (const auto& kv : into) wanted.push_back(kv.first);
  // Check everything first, so a failed restore changes nothing.
  for (const auto& name : wanted) {
    const auto dst = into.find(name);
    SYN_CHECK(dst != into.end() && dst->second.defined(), "restore: no tensor named '{}' to restore into (have {})",
              name, some_names(into));
    const auto src = from.find(name);
    SYN_CHECK(src != from.end() && src->second.defined(), "restore: tensor '{}' not found in the source (it has {})",
              name, some_names(from));
    const Tensor& d = dst->second;
    const Tensor& s = src->second;
    SYN_CHECK(d.shape() == s.shape() && d.dtype() == s.dtype(), "restore: tensor '{}': expected {}, found {}", name,
              describe(d), describe(s));
  }
  for (const auto& name : wanted) {
    const Tensor& s = from.at(name);
    Tensor& d = into.at(name);
    if (d.raw_data() != s.raw_data()) std::memmove(d.raw_data(), s.raw_data(), s.nbytes());
  }
}

}  // namespace synapse::io
