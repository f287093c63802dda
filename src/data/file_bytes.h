// Reading a whole file into memory, with errors that name it (image.cpp: image files, cifar.cpp: CIFAR batches).
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include "core/check.h"

namespace synapse::data::internal {

// The bytes of `path`; throws "cannot read WHAT 'path': no such file / it is a folder / ...".
inline std::string read_file_bytes(const std::string& path, const char* what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  SYN_CHECK(fs::exists(path, ec), "cannot read {} '{}': no such file", what, path);
  SYN_CHECK(!fs::is_directory(path, ec), "cannot read {} '{}': it is a folder", what, path);
  std::ifstream in(path, std::ios::binary);
  SYN_CHECK(in.good(), "cannot read {} '{}': cannot open it", what, path);
  std::string bytes(static_cast<std::size_t>(fs::file_size(path, ec)), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SYN_CHECK(!ec && in.gcount() == static_cast<std::streamsize>(bytes.size()), "cannot read {} '{}': reading it failed", what,
            path);
  return bytes;
}

}  // namespace synapse::data::internal
