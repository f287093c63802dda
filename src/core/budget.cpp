// The read budget (synapse/budget.h) and the declared-size check of every reader (core/budget.h).
#include "core/budget.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/check.h"

namespace synapse {
namespace {

std::atomic<std::uint64_t> g_budget{0};  // 0: not set, use the default

// SYNAPSE_READ_BUDGET=123, 64K, 512M, 2G; an unreadable value is an error naming the variable.
std::uint64_t budget_from_env(const char* text) {
  const std::string s(text);
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    used = std::string::npos;
  }
  std::uint64_t scale = 1;
  if (used != std::string::npos && used + 1 == s.size()) {
    switch (s[used]) {
      case 'K': case 'k': scale = 1ull << 10; break;
      case 'M': case 'm': scale = 1ull << 20; break;
      case 'G': case 'g': scale = 1ull << 30; break;
      default: used = std::string::npos;
    }
    if (used != std::string::npos) ++used;
  }
  SYN_CHECK(used == s.size() && v > 0 && v <= UINT64_MAX / scale,
            "SYNAPSE_READ_BUDGET={}: expected a positive number of bytes with an optional K, M or G suffix", s);
  return v * scale;
}

std::uint64_t default_budget() {
  if (const char* env = std::getenv("SYNAPSE_READ_BUDGET"); env != nullptr && *env != '\0') return budget_from_env(env);
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::uint64_t{4} << 30;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 2;
}

}  // namespace

std::uint64_t read_budget() {
  const std::uint64_t b = g_budget.load(std::memory_order_relaxed);
  return b != 0 ? b : default_budget();
}

void set_read_budget(std::uint64_t bytes) { g_budget.store(bytes, std::memory_order_relaxed); }

namespace detail {

void check_read_budget(std::string_view where, std::string_view field, std::uint64_t declared) {
  const std::uint64_t budget = read_budget();
  if (declared > budget)
    fail("{}: {} declares {} bytes, more than the read budget of {} bytes (raise it with SYNAPSE_READ_BUDGET=BYTES "
         "or synapse::set_read_budget)",
         where, field, declared, budget);
}

void check_declared_size(std::string_view who, std::string_view file, std::string_view field, std::uint64_t declared,
                         std::uint64_t available) {
  if (declared > available)
    fail("{}: '{}': {} declares {} bytes, but the file has only {} bytes left", who, file, field, declared, available);
  check_read_budget(fmt::format("{}: '{}'", who, file), field, declared);
}

namespace {
thread_local int t_read_scopes = 0;
}  // namespace

ReadScope::ReadScope() { ++t_read_scopes; }
ReadScope::~ReadScope() { --t_read_scopes; }

void check_tensor_in_read_scope(const Shape& shape, std::string_view dtype, std::uint64_t nbytes) {
  if (t_read_scopes > 0) check_read_budget("Tensor::empty", fmt::format("a tensor of shape {} ({})", to_string(shape), dtype), nbytes);
}

}  // namespace detail
}  // namespace synapse
