// Short runs of floats. im2col and col2im move runs of C or KW*C floats; for the first layers of
// the MNIST models that is 1 to 30 floats, where a call to memmove per run costs more than the copy
// (measured: memmove was 15% of a LeNet-5 step). With AVX-512 a run of up to 16 floats is one masked
// load and store (AVX2: 8-float moves, masked loads); otherwise, and for longer runs, plain loops the compiler
// vectorises.
//
// The helpers have internal linkage and follow the instruction set of the region they are compiled in:
// a per-ISA kernel file includes this header after isa_begin.h (kernel_isa.h), so each of its copies
// gets its own helpers; any other file gets the ones its compiler flags allow.
#pragma once
#define SYNAPSE_VEC_H
#include <cstdint>
#include <cstring>

#if defined(SYNAPSE_KERNEL_LEVEL)
#if SYNAPSE_AVX512
#define SYNAPSE_VEC_BITS 512
#elif SYNAPSE_AVX2
#define SYNAPSE_VEC_BITS 256
#else
#define SYNAPSE_VEC_BITS 0
#endif
#elif defined(__AVX512F__)
#define SYNAPSE_VEC_BITS 512
#elif defined(__AVX2__) && defined(__FMA__)
#define SYNAPSE_VEC_BITS 256
#else
#define SYNAPSE_VEC_BITS 0
#endif

#if SYNAPSE_VEC_BITS > 0
#include <immintrin.h>
#endif

namespace synapse::cpu {
namespace {

#if SYNAPSE_VEC_BITS == 256
// Lanes [0, n) of 8 set (n < 8), for _mm256_maskload_ps / _mm256_maskstore_ps.
inline __m256i lanes8(std::int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

// ---- one vector of floats at the region's width, for kernels written once for AVX2 and AVX-512 ----
// vf holds kLanes floats (16 with AVX-512, 8 with AVX2); vmask selects lanes (a __mmask16, or an
// integer vector for AVX2's maskload / maskstore). kVecRegs is how many vector registers a kernel's
// register tile may plan for. Loads and stores with a mask touch only the masked lanes (loads give 0
// in the others). Only in the per-ISA kernel files.
#if SYNAPSE_VEC_BITS == 512 && defined(SYNAPSE_KERNEL_LEVEL)
constexpr int kLanes = 16, kVecRegs = 32;
using vf = __m512;
using vmask = __mmask16;
inline vmask vmask_first(std::int64_t n) {
  return static_cast<vmask>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
}
inline vmask vmask_all() { return 0xFFFF; }
inline bool all_lanes(vmask m) { return m == 0xFFFF; }
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float s) { return _mm512_set1_ps(s); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline vf vload(const float* p, vmask m) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline void vstore(float* p, vf v, vmask m) { _mm512_mask_storeu_ps(p, m, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline void vstream(float* p, vf v) { _mm512_stream_ps(p, v); }  // p 64-byte aligned
inline vf vmax0(vf a) { return _mm512_maskz_max_ps(0xFFFF, a, _mm512_setzero_ps()); }
// s > v ? s : v per lane (v kept on NaN: a running max updated only by greater values).
inline vf vgreater_of(vf s, vf v) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s, v, _CMP_GT_OQ), v, s); }
#elif SYNAPSE_VEC_BITS == 256 && defined(SYNAPSE_KERNEL_LEVEL)
constexpr int kLanes = 8, kVecRegs = 16;
using vf = __m256;
using vmask = __m256i;
inline vmask vmask_first(std::int64_t n) { return lanes8(n >= 8 ? 8 : n <= 0 ? 0 : n); }
inline vmask vmask_all() { return _mm256_set1_epi32(-1); }
inline bool all_lanes(vmask m) { return _mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xFF; }
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float s) { return _mm256_set1_ps(s); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline vf vload(const float* p, vmask m) { return _mm256_maskload_ps(p, m); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline void vstore(float* p, vf v, vmask m) { _mm256_maskstore_ps(p, m, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline void vstream(float* p, vf v) { _mm256_stream_ps(p, v); }  // p 32-byte aligned
inline vf vmax0(vf a) { return _mm256_max_ps(a, _mm256_setzero_ps()); }
inline vf vgreater_of(vf s, vf v) { return _mm256_blendv_ps(v, s, _mm256_cmp_ps(s, v, _CMP_GT_OQ)); }
#endif

// dst[0, n) = src[0, n); the ranges do not overlap.
inline void copy_floats(float* __restrict dst, const float* __restrict src, std::int64_t n) {
#if SYNAPSE_VEC_BITS == 512
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
  }
#elif SYNAPSE_VEC_BITS == 256
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];  // a scalar tail: AVX2 masked stores are slow on some AMD cores
#else
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
#endif
}

// dst[0, n) = 0
inline void zero_floats(float* dst, std::int64_t n) {
#if SYNAPSE_VEC_BITS == 512
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_setzero_ps());
  if (i < n) _mm512_mask_storeu_ps(dst + i, static_cast<__mmask16>((1u << (n - i)) - 1u), _mm512_setzero_ps());
#else
  std::memset(dst, 0, static_cast<std::size_t>(n) * sizeof(float));
#endif
}

// dst[0, n) += src[0, n)
inline void add_floats(float* __restrict dst, const float* __restrict src, std::int64_t n) {
#if SYNAPSE_VEC_BITS == 512
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i), _mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + i), _mm512_maskz_loadu_ps(m, src + i)));
  }
#elif SYNAPSE_VEC_BITS == 256
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
  for (; i < n; ++i) dst[i] += src[i];
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
#if SYNAPSE_VEC_BITS == 512
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) _mm512_storeu_ps(dst + i, _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (n - i)) - 1u), src + i));
#elif SYNAPSE_VEC_BITS == 256
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  if (i < n) _mm256_storeu_ps(dst + i, _mm256_maskload_ps(src + i, lanes8(n - i)));
#else
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
#endif
}
inline void zero_floats_overrun(float* dst, std::int64_t n) {
#if SYNAPSE_VEC_BITS == 512
  for (std::int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(dst + i, _mm512_setzero_ps());
#elif SYNAPSE_VEC_BITS == 256
  for (std::int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(dst + i, _mm256_setzero_ps());
#else
  std::memset(dst, 0, static_cast<std::size_t>(n) * sizeof(float));
#endif
}
// dst[0, n) += src[0, n), rewriting dst[n, 16) with its own values when that stays below `limit` (so
// only where no other thread writes): src is read masked, so nothing past src + n is touched.
inline void add_floats_within(float* __restrict dst, const float* __restrict src, std::int64_t n, const float* limit) {
#if SYNAPSE_VEC_BITS == 512
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

}  // namespace
}  // namespace synapse::cpu
