// The plain driver of the fuzz targets (no libFuzzer): `fuzz_replay TARGET FILE_OR_DIR...` runs every input
// through the target, as libFuzzer would, and fails on the first finding. The normal test suite replays each
// target's committed corpus (fuzz/corpus/TARGET) this way; `fuzz_replay --list` prints the targets.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz.h"

namespace synapse::fuzz {
namespace {
std::map<std::string, TargetFn>& targets() {
  static std::map<std::string, TargetFn> t;
  return t;
}
}  // namespace

bool register_target(const char* name, TargetFn fn) {
  targets()[name] = fn;
  return true;
}

}  // namespace synapse::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  auto& all = synapse::fuzz::targets();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, fn] : all) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc < 3 || !all.contains(argv[1])) {
    std::fprintf(stderr, "usage: fuzz_replay TARGET FILE_OR_DIR... (fuzz_replay --list names the targets)\n");
    return 2;
  }
  const auto fn = all.at(argv[1]);
  std::vector<fs::path> inputs;
  for (int i = 2; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else {
      inputs.emplace_back(argv[i]);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  synapse::fuzz::init_once();
  for (const auto& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    std::fprintf(stderr, "%s: %s (%zu bytes)\n", argv[1], p.filename().c_str(), bytes.size());
    try {
      fn(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FINDING: %s: uncaught exception: %s\n", p.c_str(), e.what());
      return 1;
    }
  }
  std::printf("%s: %zu inputs replayed, no findings\n", argv[1], inputs.size());
  return inputs.empty() ? 1 : 0;
}
