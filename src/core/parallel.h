// Threading helpers shared by every layer (kernels, ops, optimizers, data): OpenMP under the hood.
// parallel_for: splits [begin, end) into chunks of at least `grain` iterations over the OpenMP threads;
// runs inline when the range is small (a parallel region costs microseconds) or already inside one.
// `f` must not throw: validate inputs before the parallel loop. The workers run with the calling
// thread's matmul_precision() (device.h), so a precision set on one thread reaches its kernels' threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>

#include "synapse/device.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace synapse {

// A good grain for cheap elementwise work: below this many elements one thread is faster.
inline constexpr std::int64_t kElementwiseGrain = 32768;

template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& f) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
#ifdef _OPENMP
  const std::int64_t max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const std::int64_t chunks = std::min<std::int64_t>(max_threads, (n + grain - 1) / std::max<std::int64_t>(grain, 1));
  if (chunks > 1) {
    const MatmulPrecision precision = matmul_precision();
#pragma omp parallel num_threads(static_cast<int>(chunks))
    {
      detail::set_thread_matmul_precision(precision);
      const std::int64_t t = omp_get_thread_num();
      const std::int64_t nt = omp_get_num_threads();
      const std::int64_t lo = begin + n * t / nt;
      const std::int64_t hi = begin + n * (t + 1) / nt;
      if (lo < hi) f(lo, hi);
    }
    return;
  }
#else
  (void)grain;
#endif
  f(begin, end);
}

// How many threads parallel_for would use for `n` iterations of at least `grain` each.
inline int threads_for(std::int64_t n, std::int64_t grain) {
#ifdef _OPENMP
  if (n <= 0 || omp_in_parallel()) return 1;
  const std::int64_t chunks = std::min<std::int64_t>(omp_get_max_threads(), (n + grain - 1) / std::max<std::int64_t>(grain, 1));
  return static_cast<int>(std::max<std::int64_t>(chunks, 1));
#else
  (void)n;
  (void)grain;
  return 1;
#endif
}

// Least multiply-adds worth a thread of its own: a parallel region costs microseconds.
inline constexpr std::int64_t kMinMacsPerThread = std::int64_t{1} << 20;

// Threads for `units` independent units of `macs_per_unit` multiply-adds each.
inline int threads_for_work(std::int64_t units, std::int64_t macs_per_unit) {
  return threads_for(units, std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(macs_per_unit, 1)));
}

// A scratch buffer of at least n floats owned by the calling thread, kept for its later calls (the same
// sizes come back every training step, and fresh buffers this large would be new pages each time; it
// never shrinks). Two independent slots, for a kernel that needs two buffers at once.
inline float* thread_scratch(int slot, std::int64_t n) {
  thread_local std::unique_ptr<float[]> buf[2];
  thread_local std::int64_t capacity[2] = {0, 0};
  if (n > capacity[slot]) {
    buf[slot] = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(n));
    capacity[slot] = n;
  }
  return buf[slot].get();
}

// Runs f(t, lo, hi) for each part t in [0, parts): [lo, hi) is the t-th of `parts` contiguous slices
// of [begin, end), each on its own thread (parts from threads_for). For kernels that keep a per-thread
// partial result and combine the parts afterwards.
template <class F>
void parallel_parts(std::int64_t begin, std::int64_t end, int parts, F&& f) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  if (parts <= 1) {
    f(0, begin, end);
    return;
  }
#ifdef _OPENMP
  const MatmulPrecision precision = matmul_precision();
#pragma omp parallel num_threads(parts)
  {
    detail::set_thread_matmul_precision(precision);
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    // With fewer threads than asked (nested or limited), each takes every nt-th part.
    for (std::int64_t part = t; part < parts; part += nt) {
      const std::int64_t lo = begin + n * part / parts, hi = begin + n * (part + 1) / parts;
      if (lo < hi) f(static_cast<int>(part), lo, hi);
    }
  }
#else
  for (int part = 0; part < parts; ++part) {
    const std::int64_t lo = begin + n * part / parts, hi = begin + n * (part + 1) / parts;
    if (lo < hi) f(part, lo, hi);
  }
#endif
}

}  // namespace synapse
