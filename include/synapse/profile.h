// Where the time goes: per-op kernel time, call counts and arithmetic rate (like torch.profiler's
// key_averages table), measured around every kernel the dispatcher runs, eager or in a graph.
//
//   synapse::Profiler prof;                 // collecting from here ...
//   for (int i = 0; i < 20; ++i) step();
//   prof.stop();                            // ... to here
//   std::cout << format_profile(prof, {.steps = 20, .peak_gflops = num_threads() * peak_gflops_per_core()});
//
// `synapse train MODEL --profile N` prints this table for N training steps.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace synapse {

struct OpProfile {
  std::string op;
  std::int64_t calls = 0;
  double seconds = 0;  // wall time inside the op's kernels (their OpenMP workers included)
  double flops = 0;    // what the op declared (OpDef::flops); 0 for memory-bound ops
  double gflops() const { return seconds > 0 ? flops / seconds * 1e-9 : 0.0; }
};

// Collects from construction to stop() (or destruction). One profiler collects at a time: a second
// throws Error. Counts the kernels called on the thread that created it; work on other threads (the
// data pipeline's prefetch thread) is not in the table, and shows as time outside kernels only when the
// profiled thread waits for it.
class Profiler {
 public:
  Profiler();
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  void stop();
  bool collecting() const;
  // One row per op, the longest total time first.
  std::vector<OpProfile> ops() const;
  double kernel_seconds() const;   // the sum of the rows' times
  double flops() const;            // the sum of the rows' FLOPs
  double elapsed_seconds() const;  // wall time from construction to stop() (or to now)

  struct State;

 private:
  std::unique_ptr<State> state_;
};

struct ProfileFormat {
  std::int64_t steps = 1;    // divides the times: "ms per step" when the profile covers several steps
  double peak_gflops = 0;    // > 0 adds a "% of peak" column (e.g. threads x peak_gflops_per_core())
  int max_rows = 12;         // the rest are summed into one "N other ops" row
};
// A plain-text table: op | calls/step | ms/step | % of time | GFLOP/s | [% of peak], then the time
// outside kernels (framework, optimizer loops, waiting for data) and the total with the overall rate.
std::string format_profile(const Profiler& profiler, const ProfileFormat& format = {});

}  // namespace synapse
