// Short runs of floats. im2col and col2im move runs of C or KW*C floats; for the first layers of
// the MNIST models that is 1 to 30 floats, where a call to memmove per run costs more than the copy
// (measured: memmove was 15% of a LeNet-5 step). With AVX-512 a run of up to 16 floats is one masked
// load and store; otherwise, and for longer runs, plain loops the compiler vectorises.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace synapse::cpu {

// dst[0, n) = src[0, n); the ranges do not overlap.
inline void copy_floats(float* __restrict dst, const float* __restrict src, std::int64_t n) {
#ifdef __AVX512F__
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
  }
#else
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
#endif
}

// dst[0, n) = 0
inline void zero_floats(float* dst, std::int64_t n) {
#ifdef __AVX512F__
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_setzero_ps());
  if (i < n) _mm512_mask_storeu_ps(dst + i, static_cast<__mmask16>((1u << (n - i)) - 1u), _mm512_setzero_ps());
#else
  std::memset(dst, 0, static_cast<std::size_t>(n) * sizeof(float));
#endif
}

// dst[0, n) += src[0, n)
inline void add_floats(float* __restrict dst, const float* __restrict src, std::int64_t n) {
#ifdef __AVX512F__
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i), _mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + i), _mm512_maskz_loadu_ps(m, src + i)));
  }
#else
  for (std::int64_t i = 0; i < n; ++i) dst[i] += src[i];
#endif
}

// p[0, n) = max(p[0, n), 0): relu in place (a plain loop the compiler vectorises).
inline void relu_floats(float* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] < 0.0f ? 0.0f : p[i];
}

// Like copy_floats / zero_floats, but may write up to 15 floats past dst + n (garbage the caller
// overwrites next, or slack at the end of its buffer): full-width stores only. Masked stores are slow
// on some AVX-512 machines (measured on this project's AMD EPYC build machine: the masked store was a
// third of im2col's time), masked loads are not. Only for buffers private to the calling thread, written
// in increasing address order.
inline constexpr std::int64_t kOverrun = 16;
inline void copy_floats_overrun(float* __restrict dst, const float* __restrict src, std::int64_t n) {
#ifdef __AVX512F__
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) _mm512_storeu_ps(dst + i, _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (n - i)) - 1u), src + i));
#else
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
#endif
}
inline void zero_floats_overrun(float* dst, std::int64_t n) {
#ifdef __AVX512F__
  for (std::int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(dst + i, _mm512_setzero_ps());
#else
  std::memset(dst, 0, static_cast<std::size_t>(n) * sizeof(float));
#endif
}
// dst[0, n) += src[0, n), rewriting dst[n, 16) with its own values when that stays below `limit` (so
// only where no other thread writes): src is read masked, so nothing past src + n is touched.
inline void add_floats_within(float* __restrict dst, const float* __restrict src, std::int64_t n, const float* limit) {
#ifdef __AVX512F__
  if (n <= 16 && dst + 16 <= limit) {
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_maskz_loadu_ps(m, src)));
    return;
  }
#else
  (void)limit;
#endif
  add_floats(dst, src, n);
}

}  // namespace synapse::cpu
