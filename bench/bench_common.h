// What every training benchmark process reports about itself, read from /proc so that Synapse and the
// libtorch reference measure the same way (bench/torch_ref.py does the same in Python):
//   - the BLAS and OpenMP libraries actually mapped into the process (not what the linker was told),
//   - peak resident memory (VmHWM),
//   - seconds since the process started, from a CLOCK_MONOTONIC timestamp the harness took just before
//     spawning us (--t0-ns), or else from /proc/self/stat's start time (10 ms resolution).
// Header-only, standard library only, so the libtorch reference does not link Synapse.
#pragma once
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

inline std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Seconds from process start to now. t0_ns > 0: the harness's CLOCK_MONOTONIC stamp taken before the
// fork; otherwise /proc/self/stat field 22 (start time in clock ticks after boot, CLOCK_BOOTTIME).
inline double seconds_since_start(std::int64_t t0_ns) {
  if (t0_ns > 0) return static_cast<double>(monotonic_ns() - t0_ns) * 1e-9;
  std::ifstream f("/proc/self/stat");
  std::string stat;
  std::getline(f, stat);
  // The command name (field 2) may contain spaces; fields after it follow the last ')'.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  const double start = std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9 - start;
}

// Peak resident set size in MiB (VmHWM of /proc/self/status).
inline double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

// Files mapped into this process whose name contains one of `keys`, without duplicates.
inline std::vector<std::string> mapped_libraries(const std::vector<std::string>& keys) {
  std::ifstream f("/proc/self/maps");
  std::string line;
  std::vector<std::string> out;
  while (std::getline(f, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string base = path.substr(path.rfind('/') + 1);
    for (const auto& k : keys)
      if (base.find(k) != std::string::npos && std::find(out.begin(), out.end(), path) == out.end()) out.push_back(path);
  }
  return out;
}
// BLAS and OpenMP runtimes: which one each process really loads is half of a fair comparison.
inline std::vector<std::string> blas_libraries() {
  return mapped_libraries({"blas", "mkl", "blis", "dnnl", "XNNPACK"});
}
inline std::vector<std::string> openmp_libraries() { return mapped_libraries({"gomp", "libomp", "iomp"}); }

// Minimal JSON writing for one flat line.
inline std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}
inline std::string json_list(const std::vector<std::string>& v) {
  std::string o = "[";
  for (std::size_t i = 0; i < v.size(); ++i) o += (i ? "," : "") + json_string(v[i]);
  return o + "]";
}

}  // namespace bench
