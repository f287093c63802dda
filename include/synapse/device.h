// Devices, their memory and their threads (core). The backend interface is this plus op.h: a device owns
// an allocator, and every op registers one kernel per device. A CUDA backend adds Device::CUDA, an
// allocator, and kernels for the ops it supports; nothing that uses ops changes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace synapse {

enum class Device : std::uint8_t { CPU };
inline constexpr int kNumDevices = 1;

constexpr std::string_view device_name(Device d) {
  switch (d) {
    case Device::CPU: return "cpu";
  }
  return "?";
}

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory aligned to at least 64 bytes; never nullptr (throws Error when out of memory).
  virtual void* allocate(std::size_t nbytes) = 0;
  virtual void deallocate(void* p, std::size_t nbytes) noexcept = 0;
};

Allocator& allocator(Device d);

// What the device allocator holds. Sizes are as allocated (rounded up to the allocator's granularity).
struct MemoryStats {
  std::size_t bytes_in_use = 0;        // held by live tensors and workspaces
  std::size_t peak_bytes_in_use = 0;   // the most bytes_in_use has been (since reset_peak_memory)
  std::size_t bytes_cached = 0;        // freed blocks kept for reuse (not in use, still resident)
  std::uint64_t system_allocations = 0;  // blocks obtained from the system
  std::uint64_t cache_hits = 0;          // allocations served from the cache
};
MemoryStats memory_stats(Device d = Device::CPU);
void reset_peak_memory(Device d = Device::CPU);
// Freed blocks are cached for reuse (a training loop then allocates nothing from the system after
// its first step); the cache holds at most cache_limit() bytes (1 GiB by default).
void empty_cache(Device d = Device::CPU);
void set_cache_limit(std::size_t bytes, Device d = Device::CPU);
std::size_t cache_limit(Device d = Device::CPU);

// A block of device memory shared by every tensor that views it.
class Storage {
 public:
  Storage(std::size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t nbytes_;
  Device device_;
};

// Threads used by parallel kernels (OpenMP). Defaults to the number of cores.
int num_threads();
void set_num_threads(int n);

// ---- the CPU's arithmetic peak (measured; src/core/peak.cpp) ----
// Whether this CPU runs FMAs on vectors of `bits` (512: AVX-512, 256: AVX2 + FMA, 32: scalar).
bool cpu_has_fma_width(int bits);
// GFLOP/s of `threads` threads each running `iters` iterations of independent FMA chains on vectors of
// `bits` (0 when the CPU lacks that width). 400,000 iterations of 512-bit chains take ~3 ms.
double measure_fma_gflops(int bits, int threads, std::int64_t iters);
// The best of a few short runs over every width this CPU has, measured once per process (~100 ms; runs
// of 3 ms read 5-10% low, before the clock settles):
// what "% of peak" means everywhere in Synapse (the profiler, the benchmarks).
double peak_gflops_per_core();

// Precision of matrix products (gemm and the convolutions: every dense, conv and matmul op), like
// PyTorch's autocast. fp32: IEEE single precision throughout. bf16: the two operands of each product
// are rounded to bfloat16 (round to nearest even) and multiplied with fp32 accumulation (AVX512-BF16
// vdpbf16ps); the result, parameters, optimizer state, losses and every other op stay fp32. Except:
// matrix-vector products (one row or column of C: batch-1 dense layers) and single-channel
// convolutions (their direct kernels) stay fp32, where converting costs more than the product.
//
// The setting belongs to the calling thread and reaches the worker threads of every parallel kernel
// it starts (parallel_for copies it), so two threads may train in different precisions at once.
enum class MatmulPrecision : std::uint8_t { fp32, bf16 };

MatmulPrecision matmul_precision();
// Throws Error when bf16 is asked for on a CPU without AVX512-BF16 (cpu_supports_bf16()).
void set_matmul_precision(MatmulPrecision p);
// Does this CPU have bf16 matrix products (AVX512-BF16), and was the library built with them?
bool cpu_supports_bf16();
// GFLOP/s of one thread running `iters` iterations of 16 independent chains of AVX512-BF16's vdpbf16ps
// (64 FLOP each); 0 without AVX512-BF16.
double measure_bf16_gflops(std::int64_t iters);
// The bf16 dot product's rate against the fp32 FMA's on this core (GFLOP/s of 16 chains of vdpbf16ps
// over those of the FMA loop, measured once per process in ~20 ms; 0 without AVX512-BF16). About 2 where
// vdpbf16ps runs at the FMA's instruction rate (AMD Zen 5: 2.03), about 0.5 where it runs at half of it
// (Intel Emerald Rapids: 0.51); below 1, bf16 products are slower than fp32 ones (src/core/peak.cpp).
double bf16_peak_ratio();
// "fp32" / "bf16".
std::string_view precision_name(MatmulPrecision p);
// "fp32" or "bf16" -> the precision; anything else throws Error naming `what` (a flag or a field),
// the value and the allowed ones. Also throws for bf16 on a CPU without it, naming `what`.
MatmulPrecision parse_precision(std::string_view value, std::string_view what);

namespace detail {
// Without the CPU check: restores a value that was already checked (the guard, parallel_for's workers).
void set_thread_matmul_precision(MatmulPrecision p) noexcept;
}  // namespace detail

// Sets the calling thread's precision for a scope and restores the previous one.
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(MatmulPrecision p) : previous_(matmul_precision()) { set_matmul_precision(p); }
  ~MatmulPrecisionGuard() { detail::set_thread_matmul_precision(previous_); }
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  MatmulPrecision previous_;
};

}  // namespace synapse
