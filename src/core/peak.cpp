// The CPU's measured FP32 peak: a loop of independent FMA chains, timed. Measured, not read from a
// table: a core with one 512-bit FMA pipe (AMD Zen 4) and one with two (Intel Xeon, AMD Zen 5) differ by
// 2x at the same clock. 16 accumulators cover the FMA latency (4 cycles) times two pipes twice over, so
// latency never limits the loop. The vector width is chosen at run time (GCC target attributes, with
// cpuid checks), so a portable build measures the machine it runs on.
#include <immintrin.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "synapse/device.h"

namespace synapse {
namespace {

__attribute__((target("avx512f"), noinline)) float chains_512(std::int64_t iters) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(0.001f * static_cast<float>(j));
  const __m512 a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  for (int j = 1; j < 16; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  alignas(64) float v[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it (an undefined register)
  _mm512_store_ps(v, acc[0]);
  float sum = 0;
  for (float f : v) sum += f;
  return sum;
}

__attribute__((target("avx2,fma"), noinline)) float chains_256(std::int64_t iters) {
  __m256 acc[12];  // 12 accumulators + 2 constants fit AVX2's 16 ymm registers
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(0.001f * static_cast<float>(j));
  const __m256 a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  for (int j = 1; j < 12; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  alignas(32) float v[8];
  _mm256_store_ps(v, acc[0]);
  return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

// Scalar FMAs in 8 chains: the peak of a CPU without AVX2 (what the generic kernels can reach).
__attribute__((noinline)) float chains_scalar(std::int64_t iters) {
  float acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = 0.001f * static_cast<float>(j);
  for (std::int64_t i = 0; i < iters; ++i)
    for (float& x : acc) x = x * 0.9999999f + 1e-7f;
  float s = 0;
  for (float x : acc) s += x;
  return s;
}

// The same 16 chains with AVX512-BF16's vdpbf16ps: 16 lanes x 2 products, 64 FLOP per instruction.
__attribute__((target("avx512f,avx512bf16"), noinline)) float chains_bf16(std::int64_t iters) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(0.001f * static_cast<float>(j));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.25f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
  for (std::int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  for (int j = 1; j < 16; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  alignas(64) float v[16];
  _mm512_store_ps(v, acc[0]);
  float sum = 0;
  for (float f : v) sum += f;
  return sum;
}

volatile float g_sink = 0;  // keeps the chains' results alive

}  // namespace

bool cpu_has_fma_width(int bits) {
  __builtin_cpu_init();
  if (bits == 512) return __builtin_cpu_supports("avx512f");
  if (bits == 256) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return bits == 32;
}

double measure_fma_gflops(int bits, int threads, std::int64_t iters) {
  if (!cpu_has_fma_width(bits) || threads < 1 || iters < 1) return 0.0;
  const double flops_per_iter = bits == 512 ? 16.0 * 16 * 2 : bits == 256 ? 12.0 * 8 * 2 : 8.0 * 2;
  std::vector<std::thread> pool;
  std::vector<float> out(static_cast<std::size_t>(threads));
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      out[static_cast<std::size_t>(t)] = bits == 512 ? chains_512(iters) : bits == 256 ? chains_256(iters) : chains_scalar(iters);
    });
  for (auto& th : pool) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (float f : out) g_sink = g_sink + f;
  return flops_per_iter * static_cast<double>(iters) * threads / s * 1e-9;
}

double peak_gflops_per_core() {
  static const double peak = [] {
    double best = 0;
    for (int rep = 0; rep < 5; ++rep)
      for (int bits : {512, 256, 32}) best = std::max(best, measure_fma_gflops(bits, 1, bits == 32 ? 2000000 : 1500000));
    return best;
  }();
  return peak;
}

double measure_bf16_gflops(std::int64_t iters) {
  if (!cpu_supports_bf16() || iters < 1) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  g_sink = g_sink + chains_bf16(iters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 16.0 * 64.0 * static_cast<double>(iters) / s * 1e-9;
}

namespace {

// CPU time of the calling thread, in seconds: time the thread spends descheduled does not count.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

double bf16_peak_ratio() {
  // Both loops on the calling thread, timed by its CPU time: the ratio is measured once, under whatever
  // load the process starts with, and wall-clock runs of ~3 ms that lost the CPU for a time slice read
  // the ratio 3x too high (6.0 instead of 2.0 in a test run beside a compiler).
  static const double ratio = [] {
    if (!cpu_supports_bf16() || !cpu_has_fma_width(512)) return 0.0;
    constexpr std::int64_t kIters = 400000;  // ~3 ms of fp32 chains at 2.7 GHz
    double bf16 = 0, fp32 = 0;
    for (int rep = 0; rep < 3; ++rep) {  // alternating, best of each: both at the same clock
      double t0 = thread_cpu_seconds();
      g_sink = g_sink + chains_bf16(kIters);
      const double tb = thread_cpu_seconds() - t0;
      t0 = thread_cpu_seconds();
      g_sink = g_sink + chains_512(kIters);
      const double tf = thread_cpu_seconds() - t0;
      if (tb > 0) bf16 = std::max(bf16, 16.0 * 64.0 * static_cast<double>(kIters) / tb);  // FLOPs as in measure_bf16_gflops
      if (tf > 0) fp32 = std::max(fp32, 16.0 * 16.0 * 2.0 * static_cast<double>(kIters) / tf);
    }
    return fp32 > 0 ? bf16 / fp32 : 0.0;
  }();
  return ratio;
}

}  // namespace synapse
