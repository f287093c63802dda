// CPU memory: 64-byte aligned blocks (one cache line, a full AVX-512 vector), with a cache of freed
// large blocks.
//
// Why a cache: a training step allocates the same tensors every step, most of them larger than
// glibc's mmap threshold, so without one every op output is a fresh mmap whose pages the kernel
// faults in and zeroes on first touch, then unmaps. Measured on LeNet-5 (one thread), page faults and
// the kernel's page clearing were ~5% of a step and made every elementwise op pay for first touch.
// Freed blocks of at least kCacheMin bytes are kept in exact-size free lists (sizes rounded up to
// 4 KiB) and handed out again; the steady state of a training loop then allocates nothing from the
// system. The cache is bounded (cache_limit(), 1 GiB by default) and empty_cache() returns it all.
//
// Small blocks are cached too, in free lists per multiple of 64 bytes: a 64-byte-aligned block from
// glibc (aligned_alloc, then free) cost ~70 ns, about a tenth of a small eager op such as the bias
// add of a batch-1 dense layer (measured: _int_memalign and _int_free were 15% of a 16x16 matmul).
#include <sys/mman.h>

#include <array>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/check.h"
#include "synapse/device.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace synapse {
namespace {

constexpr std::size_t kAlign = 64;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kCacheMin = 64 * 1024;  // below this, malloc's own free lists do well
// Blocks of at least kHuge bytes start on a 2 MiB boundary and ask for transparent huge pages
// (madvise; Debian's default THP mode is "madvise", so without asking they get 4 KiB pages). A dense
// layer's product reads its weights one row per 4 KiB page (the cnn's fc1: 3136 rows of 4 KiB), and
// with 4 KiB pages that is a TLB miss per row; one 2 MiB page covers 512 of them. PyTorch's CPU
// allocator does the same for large tensors.
constexpr std::size_t kHuge = std::size_t{2} << 20;
// ... up to kHugeMax. Larger blocks are data sets converted once at start (MNIST's training images as
// float32: 188 MB), read a batch at a time, where huge pages buy nothing. On the project's virtual
// machines, faulting in that many huge pages right after another process freed its memory stalled
// the start for 0.2-0.5 s (2 MiB blocks are the ones the guest had handed back to the hypervisor);
// with 4 KiB pages for them the cnn's start to its first trained batch, measured after a PyTorch run,
// went from 0.08-0.44 s to 0.11-0.12 s. The batch-1000 inference's 100 MB activations still get huge
// pages (1.5% faster with them).
constexpr std::size_t kHugeMax = std::size_t{128} << 20;

void* system_allocate(std::size_t size) {
  if (size < kHuge) return std::aligned_alloc(kAlign, size);  // size is a multiple of kAlign (rounded())
  // posix_memalign, not aligned_alloc: C11's aligned_alloc wants the size to be a multiple of the alignment
  // (glibc lets it pass; AddressSanitizer's allocator returns null, found by the image fuzz target on an
  // 11 MB bitmap). A huge block's size is a multiple of kPage only.
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, size) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
  if (p != nullptr && size <= kHugeMax) (void)madvise(p, size / kPage * kPage, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  return p;
}

class CpuAllocator final : public Allocator {
 public:
  ~CpuAllocator() override { release_all(); }

  void* allocate(std::size_t nbytes) override {
    const std::size_t size = rounded(nbytes);
    {
      std::lock_guard lock(mutex_);
      stats_.bytes_in_use += size;
      stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
      std::vector<void*>* list = nullptr;
      if (size >= kCacheMin) {
        auto it = free_.find(size);
        if (it != free_.end()) list = &it->second;
      } else {
        list = &small_[size / kAlign];
      }
      if (list != nullptr && !list->empty()) {
        void* p = list->back();
        list->pop_back();
        stats_.bytes_cached -= size;
        ++stats_.cache_hits;
        return p;
      }
      ++stats_.system_allocations;
    }
    void* p = system_allocate(size);
    if (p == nullptr) {  // give the cached blocks back and try once more
      empty_cache();
      p = system_allocate(size);
    }
    if (p == nullptr) {
      std::lock_guard lock(mutex_);
      stats_.bytes_in_use -= size;
    }
    SYN_CHECK(p != nullptr, "out of memory: could not allocate {} bytes", nbytes);
    return p;
  }

  void deallocate(void* p, std::size_t nbytes) noexcept override {
    if (p == nullptr) return;
    const std::size_t size = rounded(nbytes);
    {
      std::lock_guard lock(mutex_);
      stats_.bytes_in_use -= size;
      if (stats_.bytes_cached + size <= limit_) {
        try {
          (size >= kCacheMin ? free_[size] : small_[size / kAlign]).push_back(p);
          stats_.bytes_cached += size;
          return;
        } catch (const std::bad_alloc&) {  // no room to remember it: give it back below
        }
      }
    }
    std::free(p);
  }

  void empty_cache() {
    std::lock_guard lock(mutex_);
    release_all();
  }

  void set_limit(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    limit_ = bytes;
    if (stats_.bytes_cached > limit_) release_all();
  }
  std::size_t limit() const {
    std::lock_guard lock(mutex_);
    return limit_;
  }
  MemoryStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mutex_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

 private:
  static std::size_t rounded(std::size_t nbytes) {
    if (nbytes == 0) return kAlign;
    if (nbytes >= kCacheMin) return (nbytes + kPage - 1) / kPage * kPage;
    return (nbytes + kAlign - 1) / kAlign * kAlign;
  }
  void release_all() {  // caller holds the lock (or is the destructor)
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    for (auto& blocks : small_) {
      for (void* p : blocks) std::free(p);
      blocks.clear();
    }
    stats_.bytes_cached = 0;
  }

  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;               // blocks of >= kCacheMin bytes, by size
  std::array<std::vector<void*>, kCacheMin / kAlign> small_;      // smaller ones, by size / kAlign
  std::size_t limit_ = std::size_t{1} << 30;
  MemoryStats stats_;
};

CpuAllocator& cpu_allocator() {
  // Never destroyed: tensors in static storage may be freed after it would have been.
  static auto* a = new CpuAllocator();
  return *a;
}

}  // namespace

Allocator& allocator(Device d) {
  switch (d) {
    case Device::CPU: return cpu_allocator();
  }
  return cpu_allocator();
}

MemoryStats memory_stats(Device) { return cpu_allocator().stats(); }
void reset_peak_memory(Device) { cpu_allocator().reset_peak(); }
void empty_cache(Device) { cpu_allocator().empty_cache(); }
void set_cache_limit(std::size_t bytes, Device) { cpu_allocator().set_limit(bytes); }
std::size_t cache_limit(Device) { return cpu_allocator().limit(); }

Storage::Storage(std::size_t nbytes, Device device)
    : data_(allocator(device).allocate(nbytes)), nbytes_(nbytes), device_(device) {}

Storage::~Storage() { allocator(device_).deallocate(data_, nbytes_); }

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  SYN_CHECK(n >= 1, "set_num_threads: expected at least 1 thread, got {}", n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

}  // namespace synapse
