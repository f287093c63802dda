// The plain driver of the fuzz targets (no libFuzzer): `fuzz_replay TARGET FILE_OR_DIR...` runs every input
// through the target, as libFuzzer would, and fails on the first finding. The normal test suite replays each
// target's committed corpus (fuzz/corpus/TARGET) this way; `fuzz_replay --list` prints the targets.
//
// `fuzz_replay TARGET DIR --mutate N [--seed S]` is a blind mutation fuzzer for builds without libFuzzer: N
// inputs made by mutating the inputs of DIR (bit flips, interesting bytes and integers, insertions, deletions,
// cuts, copied chunks), without coverage feedback. Each input is written to ./fuzz-current-TARGET before it
// runs, so after a crash that file is the finding; an uncaught exception is saved as ./fuzz-finding-TARGET.
#include <algorithm>
#include <cstdint>
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

namespace {

// xorshift64*: seeded, portable.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
};

std::string mutate(std::string b, Rng& r, const std::vector<std::string>& pool) {
  static const std::uint32_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000u,
                                               0xffffffffu, 64, 1000000, 0x100};
  const int n = 1 + static_cast<int>(r.below(6));
  for (int k = 0; k < n; ++k) {
    switch (r.below(b.empty() ? 1 : 8)) {
      case 0: b.insert(r.below(b.size() + 1), 1 + r.below(8), static_cast<char>(r.next())); break;
      case 1: b[r.below(b.size())] ^= static_cast<char>(1u << r.below(8)); break;
      case 2: b[r.below(b.size())] = static_cast<char>(kInteresting[r.below(5)]); break;
      case 3: {  // an interesting 32-bit integer, either endianness
        std::uint32_t v = kInteresting[r.below(std::size(kInteresting))];
        if (r.below(2)) v = __builtin_bswap32(v);
        const std::size_t at = r.below(b.size());
        for (std::size_t i = 0; i < 4 && at + i < b.size(); ++i) b[at + i] = static_cast<char>(v >> (8 * i));
        break;
      }
      case 4: b.erase(r.below(b.size()), 1 + r.below(16)); break;
      case 5: b.resize(r.below(b.size() + 1)); break;
      case 6: {  // copy a chunk of this or another input here
        const std::string& src = pool[r.below(pool.size())];
        if (src.empty()) break;
        const std::size_t from = r.below(src.size()), len = 1 + r.below(std::min<std::size_t>(64, src.size() - from));
        b.insert(r.below(b.size() + 1), src.substr(from, len));
        break;
      }
      default: b[r.below(b.size())] = static_cast<char>(r.next()); break;
    }
  }
  return b;
}

int run_mutations(const char* name, synapse::fuzz::TargetFn fn, const std::vector<std::string>& pool, long n,
                  std::uint64_t seed) {
  Rng r{seed * 0x9E3779B97F4A7C15ull + 1};
  const std::string current = std::string("fuzz-current-") + name;
  for (long i = 0; i < n; ++i) {
    const std::string input = mutate(pool[r.below(pool.size())], r, pool);
    {
      std::ofstream out(current, std::ios::binary | std::ios::trunc);
      out.write(input.data(), static_cast<std::streamsize>(input.size()));
    }
    try {
      fn(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    } catch (const std::exception& e) {
      std::rename(current.c_str(), (std::string("fuzz-finding-") + name).c_str());
      std::fprintf(stderr, "FINDING after %ld inputs: uncaught exception: %s (input saved as fuzz-finding-%s)\n", i + 1,
                   e.what(), name);
      return 1;
    }
  }
  std::remove(current.c_str());
  std::printf("%s: %ld mutated inputs, no findings\n", name, n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  auto& all = synapse::fuzz::targets();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, fn] : all) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc < 3 || !all.contains(argv[1])) {
    std::fprintf(stderr, "usage: fuzz_replay TARGET FILE_OR_DIR... [--mutate N [--seed S]] (fuzz_replay --list names "
                         "the targets)\n");
    return 2;
  }
  const auto fn = all.at(argv[1]);
  long mutations = 0;
  std::uint64_t seed = 1;
  std::vector<fs::path> inputs;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--mutate" && i + 1 < argc) {
      mutations = std::stol(argv[++i]);
      continue;
    }
    if (std::string(argv[i]) == "--seed" && i + 1 < argc) {
      seed = std::stoull(argv[++i]);
      continue;
    }
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else {
      inputs.emplace_back(argv[i]);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  synapse::fuzz::init_once();
  std::vector<std::string> pool;
  for (const auto& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    pool.push_back(ss.str());
  }
  if (mutations > 0 && !pool.empty()) return run_mutations(argv[1], fn, pool, mutations, seed);
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const auto& p = inputs[k];
    const std::string& bytes = pool[k];
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
