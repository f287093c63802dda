// AVX-512 BF16 helpers shared by the bf16 kernels (gemm_bf16.cpp, conv_bf16.cpp). Include it inside
// the file's AVX-512 + BF16 target region (after <immintrin.h> and every other header): the functions
// have internal linkage, so no copy compiled for BF16 is ever shared with code that runs elsewhere.
#pragma once

namespace synapse::cpu {
namespace {

// The first n of 16 lanes.
inline __mmask16 lanes(std::int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1u);
}

// 16 words from two vectors of 16 floats: the low half of word l is bf16(lo[l]), the high half bf16(hi[l]).
// (The zero-masked forms: GCC 12 warns that the unmasked ones' undefined source may be uninitialised.)
constexpr __mmask16 kAll = 0xffff;
inline __m512i pair_words(__m512 lo, __m512 hi) {
  const __m512i l = _mm512_maskz_cvtepu16_epi32(kAll, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(lo)));
  const __m512i h = _mm512_maskz_cvtepu16_epi32(kAll, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(hi)));
  return _mm512_or_si512(l, _mm512_maskz_slli_epi32(kAll, h, 16));
}

// The same from 16 bf16 values each (already rounded).
inline __m512i pair_words_bf16(__m256i lo, __m256i hi) {
  return _mm512_or_si512(_mm512_maskz_cvtepu16_epi32(kAll, lo),
                         _mm512_maskz_slli_epi32(kAll, _mm512_maskz_cvtepu16_epi32(kAll, hi), 16));
}

// dst[0, ceil(k/2)) = the words of a contiguous run of k floats (pairs in order, the last one padded with 0).
inline void pack_run(const float* src, std::int64_t k, std::uint32_t* dst) {
  for (std::int64_t q = 0; q < k; q += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(lanes(k - q), src + q);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes(k - q - 16), src + q + 16);
    // cvtne2ps_pbh(hi, lo): 32 bf16 in order, lo's first: word l = elements 2l, 2l + 1 of the run.
    const __m512i w = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
    _mm512_mask_storeu_epi32(dst + q / 2, lanes((k - q + 1) / 2), w);
  }
}

}  // namespace
}  // namespace synapse::cpu
