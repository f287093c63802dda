// Reads a TFRecord event file record by record, checking each length and both masked CRC32Cs with a
// bitwise CRC-32C written independently of Synapse's table-driven one. Shared by test_report and
// tb_decode.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace tbtest {

inline std::uint32_t crc32c_bitwise(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
inline std::uint32_t masked(std::uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

struct Records {
  std::vector<std::string> data;
  std::size_t trailing_bytes = 0;  // bytes of an incomplete last record (a crash mid-write)
};

// Throws std::runtime_error naming the file, the record and the offset of any inconsistency.
inline Records read_records(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::string bytes;
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) bytes.append(buf, n);
  std::fclose(f);
  Records out;
  std::size_t pos = 0;
  auto u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  while (pos < bytes.size()) {
    const std::string where = path + " record " + std::to_string(out.data.size()) + " at byte " + std::to_string(pos);
    if (bytes.size() - pos < 12) {
      out.trailing_bytes = bytes.size() - pos;
      break;
    }
    std::uint64_t len;
    std::memcpy(&len, bytes.data() + pos, 8);
    if (u32(pos + 8) != masked(crc32c_bitwise(bytes.data() + pos, 8)))
      throw std::runtime_error(where + ": length CRC mismatch");
    if (bytes.size() - pos - 12 < len + 4) {
      out.trailing_bytes = bytes.size() - pos;
      break;
    }
    std::string data = bytes.substr(pos + 12, len);
    if (u32(pos + 12 + len) != masked(crc32c_bitwise(data.data(), data.size())))
      throw std::runtime_error(where + ": data CRC mismatch");
    out.data.push_back(std::move(data));
    pos += 12 + len + 4;
  }
  return out;
}

// The event files of a folder, sorted by name.
inline std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().starts_with("events.out.tfevents.")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tbtest
