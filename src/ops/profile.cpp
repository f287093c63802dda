// The profiler: the dispatcher times each kernel (invoke_kernel) while a Profiler collects.
#include "synapse/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/check.h"
#include "synapse/op.h"

namespace synapse {

using Clock = std::chrono::steady_clock;

struct Profiler::State {
  std::thread::id thread = std::this_thread::get_id();
  Clock::time_point start = Clock::now(), end{};
  bool collecting = true;
  mutable std::mutex mu;  // rows are written by the profiled thread and may be read from another
  std::unordered_map<const OpDef*, OpProfile> rows;
};

namespace {
std::atomic<Profiler::State*> g_active{nullptr};
}  // namespace

void invoke_kernel(const OpDef& op, const KernelFn& kernel, const KernelContext& ctx) {
  Profiler::State* st = g_active.load(std::memory_order_acquire);
  if (st == nullptr || st->thread != std::this_thread::get_id()) {
    kernel(ctx);
    return;
  }
  const auto t0 = Clock::now();
  kernel(ctx);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double f = op.flops_fn() ? op.flops_fn()(ctx) : 0.0;
  std::lock_guard lock(st->mu);
  OpProfile& row = st->rows[&op];
  if (row.op.empty()) row.op = op.name();
  ++row.calls;
  row.seconds += s;
  row.flops += f;
}

Profiler::Profiler() : state_(std::make_unique<State>()) {
  State* expected = nullptr;
  SYN_CHECK(g_active.compare_exchange_strong(expected, state_.get()),
            "Profiler: another profiler is already collecting (one at a time)");
}

Profiler::~Profiler() { stop(); }

void Profiler::stop() {
  if (!state_->collecting) return;
  State* self = state_.get();
  g_active.compare_exchange_strong(self, nullptr);
  std::lock_guard lock(state_->mu);
  state_->collecting = false;
  state_->end = Clock::now();
}

bool Profiler::collecting() const { return state_->collecting; }

std::vector<OpProfile> Profiler::ops() const {
  std::vector<OpProfile> out;
  {
    std::lock_guard lock(state_->mu);
    for (const auto& [def, row] : state_->rows) out.push_back(row);
  }
  std::sort(out.begin(), out.end(), [](const OpProfile& a, const OpProfile& b) {
    return a.seconds != b.seconds ? a.seconds > b.seconds : a.op < b.op;
  });
  return out;
}

double Profiler::kernel_seconds() const {
  double s = 0;
  for (const auto& r : ops()) s += r.seconds;
  return s;
}

double Profiler::flops() const {
  double f = 0;
  for (const auto& r : ops()) f += r.flops;
  return f;
}

double Profiler::elapsed_seconds() const {
  std::lock_guard lock(state_->mu);
  const auto end = state_->collecting ? Clock::now() : state_->end;
  return std::chrono::duration<double>(end - state_->start).count();
}

std::string format_profile(const Profiler& profiler, const ProfileFormat& f) {
  SYN_CHECK(f.steps >= 1, "format_profile: steps must be >= 1, got {}", f.steps);
  const auto rows = profiler.ops();
  const double steps = static_cast<double>(f.steps);
  const double elapsed = profiler.elapsed_seconds();
  const bool peak = f.peak_gflops > 0;
  std::string out = fmt::format("{:<34} {:>10} {:>10} {:>9} {:>9}{}\n", "op", "calls/step", "ms/step", "% of time",
                                "GFLOP/s", peak ? "  % of peak" : "");
  auto line = [&](const std::string& name, double calls, double seconds, double flops) {
    const double rate = seconds > 0 ? flops / seconds * 1e-9 : 0.0;
    std::string gf = flops > 0 ? fmt::format("{:.1f}", rate) : "-";
    std::string pk = peak ? (flops > 0 ? fmt::format("  {:>9.0f}%", 100.0 * rate / f.peak_gflops) : fmt::format("  {:>10}", "-")) : "";
    std::string c = calls >= 0 ? fmt::format("{:.4g}", calls / steps) : "";
    out += fmt::format("{:<34} {:>10} {:>10.3f} {:>8.1f}% {:>9}{}\n", name, c, 1e3 * seconds / steps,
                       elapsed > 0 ? 100.0 * seconds / elapsed : 0.0, gf, pk);
  };
  const std::size_t shown = std::min(rows.size(), static_cast<std::size_t>(std::max(f.max_rows, 0)));
  double kernel_s = 0, total_flops = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    kernel_s += rows[i].seconds;
    total_flops += rows[i].flops;
    if (i < shown) line(rows[i].op, static_cast<double>(rows[i].calls), rows[i].seconds, rows[i].flops);
  }
  if (rows.size() > shown) {
    double c = 0, s = 0, fl = 0;
    for (std::size_t i = shown; i < rows.size(); ++i) c += static_cast<double>(rows[i].calls), s += rows[i].seconds, fl += rows[i].flops;
    line(fmt::format("({} other ops)", rows.size() - shown), c, s, fl);
  }
  line("(outside kernels)", -1, std::max(0.0, elapsed - kernel_s), 0);
  line("total", -1, elapsed, total_flops);
  return out;
}

}  // namespace synapse
