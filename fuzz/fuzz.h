// The fuzz targets' shared harness. Each target is one small file:
//
//   #include "fuzz.h"
//   SYNAPSE_FUZZ_TARGET(idx) {                       // (const std::uint8_t* data, std::size_t size)
//     const std::string path = synapse::fuzz::temp_file("idx", data, size);
//     synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_idx(path); });
//   }
//
// plus its name in fuzz/CMakeLists.txt's SYNAPSE_FUZZ_TARGETS and a seed corpus in fuzz/corpus/NAME/.
// With -DSYNAPSE_FUZZ=ON (clang) the macro defines LLVMFuzzerTestOneInput and each target is its own
// libFuzzer binary; in the normal build all targets register with one plain driver (fuzz/replay.cpp)
// that replays the committed corpus, so every input ever found stays a regression test without clang.
//
// The contract every parser must keep: for any bytes it returns normally or throws synapse::Error (whose
// message names the file); anything else (another exception, a crash, a leak, undefined behaviour, an
// allocation above the read budget) is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "synapse/error.h"

namespace synapse::fuzz {

using TargetFn = void (*)(const std::uint8_t* data, std::size_t size);
bool register_target(const char* name, TargetFn fn);

// Writes the bytes to this process's scratch file for `name` (in /dev/shm when it exists) and returns its
// path; the same path every call, so a long fuzzing run does not fill the disk.
std::string temp_file(std::string_view name, const void* data, std::size_t size);
std::string temp_file(std::string_view name, std::string_view bytes);

// This process's scratch folder for `name` (created once, removed at exit), for targets that read
// several files (a model.json and its weight shards), and a file written into it.
std::string temp_dir(std::string_view name);
void write_file(const std::string& path, const void* data, std::size_t size);

// The read budget the targets run under (64 MiB), set once before the first input.
void init_once();

// [[noreturn]]: prints the finding and aborts (libFuzzer then saves the input).
[[noreturn]] void finding(const std::string& what);

// Runs f; a synapse::Error whose message contains `needle` (the file's path, when non-empty) is fine.
template <class F> void expect_error_naming(const std::string& needle, F&& f) {
  try {
    f();
  } catch (const synapse::Error& e) {
    const std::string what = e.what();
    if (!needle.empty() && what.find(needle) == std::string::npos)
      finding("the error does not name '" + needle + "': " + what);
  }
}

}  // namespace synapse::fuzz

#ifdef SYNAPSE_LIBFUZZER
#define SYNAPSE_FUZZ_ENTRY(name)                                                          \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {    \
    ::synapse::fuzz::init_once();                                                         \
    fuzz_one_##name(data, size);                                                          \
    return 0;                                                                             \
  }
#else
#define SYNAPSE_FUZZ_ENTRY(name) \
  [[maybe_unused]] static const bool fuzz_registered_##name = ::synapse::fuzz::register_target(#name, fuzz_one_##name);
#endif

#define SYNAPSE_FUZZ_TARGET(name)                                          \
  static void fuzz_one_##name(const std::uint8_t* data, std::size_t size); \
  SYNAPSE_FUZZ_ENTRY(name)                                                 \
  static void fuzz_one_##name(const std::uint8_t* data, std::size_t size)
