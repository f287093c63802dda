// The harness of fuzz/fuzz.h: scratch files, the read budget, findings.
#include "fuzz.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "synapse/budget.h"

namespace synapse::fuzz {

namespace {
// The scratch files of this process, removed at exit (registered after g_scratch exists, so before it goes).
std::set<std::string> g_scratch;
void remove_scratch() {
  std::error_code ec;
  for (const auto& f : g_scratch) std::filesystem::remove_all(f, ec);
}
std::string scratch_path(std::string_view name) {
  static const std::string dir = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string path = dir + "/synapse-fuzz-" + std::to_string(::getpid()) + "-" + std::string(name);
  if (g_scratch.insert(path).second && g_scratch.size() == 1) std::atexit(remove_scratch);
  return path;
}
}  // namespace

void write_file(const std::string& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) finding("cannot write the scratch file " + path);
}

std::string temp_file(std::string_view name, const void* data, std::size_t size) {
  std::string path = scratch_path(name);
  write_file(path, data, size);
  return path;
}

std::string temp_dir(std::string_view name) {
  std::string path = scratch_path(name);
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) finding("cannot create the scratch folder " + path + ": " + ec.message());
  return path;
}

std::string temp_file(std::string_view name, std::string_view bytes) { return temp_file(name, bytes.data(), bytes.size()); }

void init_once() {
  static const bool done = [] {
    synapse::set_read_budget(std::uint64_t{64} << 20);
    return true;
  }();
  (void)done;
}

void finding(const std::string& what) {
  std::fprintf(stderr, "synapse fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace synapse::fuzz
