#include "backend/cpu/gemm_bf16.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "core/parallel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SYNAPSE_BF16_KERNELS 1
#include <immintrin.h>
#endif

namespace synapse::cpu {

float round_to_bf16(float x) {
  const auto u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::bit_cast<float>((u | 0x00400000u) & 0xffff0000u);  // NaN: quiet
  return std::bit_cast<float>((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}

void gemm_bf16_reference(const GemmArgs& g) {
  const std::int64_t lda = g.lda != 0 ? g.lda : (g.trans_a ? g.m : g.k);
  const std::int64_t ldb = g.ldb != 0 ? g.ldb : (g.trans_b ? g.k : g.n);
  const std::int64_t ldc = g.ldc != 0 ? g.ldc : g.n;
  for (std::int64_t i = 0; i < g.m; ++i) {
    for (std::int64_t j = 0; j < g.n; ++j) {
      double acc = 0.0;
      for (std::int64_t p = 0; p < g.k; ++p) {
        const float av = round_to_bf16(g.trans_a ? g.a[p * lda + i] : g.a[i * lda + p]);
        const float bv = round_to_bf16(g.trans_b ? g.b[j * ldb + p] : g.b[p * ldb + j]);
        acc += static_cast<double>(av) * static_cast<double>(bv);
      }
      float& c = g.c[i * ldc + j];
      c = static_cast<float>(g.alpha * acc + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
  }
}

#ifdef SYNAPSE_BF16_KERNELS
// Everything below is compiled for AVX-512 + BF16, whatever the build's -march (cpu_supports_bf16()
// guards every call). The region starts after all includes.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")
namespace {

constexpr std::int64_t kPanel = kBf16PanelCols;  // words per pair in a B panel
constexpr int kTileRows = 6;                      // rows of C per tile: 6 x 4 accumulators + 4 of B + 1 of A
constexpr std::int64_t kPairBlock = 256;          // pairs per k block: a 64 KB block of a B panel, in L2

__mmask16 lanes(std::int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// 16 words from two vectors of 16 floats: the low half of word l is bf16(lo[l]), the high half bf16(hi[l]).
// (The zero-masked forms: GCC 12 warns that the unmasked ones' undefined source may be uninitialised.)
constexpr __mmask16 kAll = 0xffff;
__m512i pair_words(__m512 lo, __m512 hi) {
  const __m512i l = _mm512_maskz_cvtepu16_epi32(kAll, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(lo)));
  const __m512i h = _mm512_maskz_cvtepu16_epi32(kAll, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(hi)));
  return _mm512_or_si512(l, _mm512_maskz_slli_epi32(kAll, h, 16));
}

// dst[0, ceil(k/2)) = the words of a contiguous run of k floats (pairs in order, the last one padded with 0).
void pack_run(const float* src, std::int64_t k, std::uint32_t* dst) {
  for (std::int64_t q = 0; q < k; q += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(lanes(k - q), src + q);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes(std::max<std::int64_t>(0, k - q - 16)), src + q + 16);
    // cvtne2ps_pbh(hi, lo): 32 bf16 in order, lo's first: word l = elements 2l, 2l + 1 of the run.
    const __m512i w = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
    _mm512_mask_storeu_epi32(dst + q / 2, lanes((k - q + 1) / 2), w);
  }
}

// Rows [i0, i1) of op(A) as rows of words, `pairs` apart, into dst.
void pack_a_rows(const GemmArgs& g, std::int64_t i0, std::int64_t i1, std::uint32_t* dst) {
  const std::int64_t pairs = (g.k + 1) / 2;
  if (!g.trans_a) {
    for (std::int64_t i = i0; i < i1; ++i) pack_run(g.a + i * g.lda, g.k, dst + (i - i0) * pairs);
    return;
  }
  // A stored [k, m]: 16 rows of op(A) at a time, two stored rows (one pair) per step.
  alignas(64) std::uint32_t w[16];
  for (std::int64_t i = i0; i < i1; i += 16) {
    const __mmask16 m = lanes(i1 - i);
    const int count = static_cast<int>(std::min<std::int64_t>(16, i1 - i));
    for (std::int64_t p = 0; p < pairs; ++p) {
      const __m512 lo = _mm512_maskz_loadu_ps(m, g.a + 2 * p * g.lda + i);
      const __m512 hi = 2 * p + 1 < g.k ? _mm512_maskz_loadu_ps(m, g.a + (2 * p + 1) * g.lda + i) : _mm512_setzero_ps();
      _mm512_store_si512(w, pair_words(lo, hi));
      for (int r = 0; r < count; ++r) dst[(i - i0 + r) * pairs + p] = w[r];
    }
  }
}

// Panels [q0, q1) of op(B) into out.
void pack_b_panels(const GemmArgs& g, std::int64_t q0, std::int64_t q1, std::uint32_t* out) {
  const std::int64_t pairs = (g.k + 1) / 2;
  for (std::int64_t q = q0; q < q1; ++q) {
    std::uint32_t* panel = out + q * pairs * kPanel;
    const std::int64_t j0 = q * kPanel, cols = std::min(kPanel, g.n - j0);
    if (!g.trans_b) {  // B [k, n]: two rows of 16 columns -> 16 words
      for (std::int64_t p = 0; p < pairs; ++p) {
        const float* lo_row = g.b + 2 * p * g.ldb + j0;
        const float* hi_row = lo_row + g.ldb;
        for (std::int64_t c = 0; c < kPanel; c += 16) {
          const __mmask16 m = lanes(std::max<std::int64_t>(0, cols - c));
          const __m512 lo = _mm512_maskz_loadu_ps(m, lo_row + c);
          const __m512 hi = 2 * p + 1 < g.k ? _mm512_maskz_loadu_ps(m, hi_row + c) : _mm512_setzero_ps();
          _mm512_store_si512(panel + p * kPanel + c, pair_words(lo, hi));
        }
      }
      continue;
    }
    // B stored [n, k]: column j of op(B) is stored row j, a contiguous run along k.
    thread_local std::vector<std::uint32_t> run;
    run.resize(static_cast<std::size_t>(pairs + 16));
    for (std::int64_t c = 0; c < kPanel; ++c) {
      if (c < cols) {
        pack_run(g.b + (j0 + c) * g.ldb, g.k, run.data());
        for (std::int64_t p = 0; p < pairs; ++p) panel[p * kPanel + c] = run[static_cast<std::size_t>(p)];
      } else {
        for (std::int64_t p = 0; p < pairs; ++p) panel[p * kPanel + c] = 0;
      }
    }
  }
}

// C[R, cols] = alpha * A[R rows of words, a_stride apart] . B panel block + beta * C (beta == 0: C not
// read), over `pairs` k-pairs; cols <= 16 * V.
template <int R, int V>
void tile_kernel(const std::uint32_t* a, std::int64_t a_stride, const std::uint32_t* b, std::int64_t pairs, float* c,
                 std::int64_t ldc, std::int64_t cols, float alpha, float beta) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (std::int64_t p = 0; p < pairs; ++p) {
    __m512bh bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = reinterpret_cast<__m512bh>(_mm512_load_si512(b + p * kPanel + 16 * v));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[r * a_stride + p])));
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __mmask16 m = v == V - 1 ? lanes(cols - 16 * v) : static_cast<__mmask16>(0xffff);
      float* dst = c + r * ldc + 16 * v;
      __m512 sum = _mm512_mul_ps(acc[r][v], va);
      if (beta != 0.0f) sum = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, dst), sum);
      _mm512_mask_storeu_ps(dst, m, sum);
    }
}

using TileFn = void (*)(const std::uint32_t*, std::int64_t, const std::uint32_t*, std::int64_t, float*, std::int64_t,
                        std::int64_t, float, float);
template <int R> constexpr TileFn kTileRow[4] = {tile_kernel<R, 1>, tile_kernel<R, 2>, tile_kernel<R, 3>, tile_kernel<R, 4>};
constexpr const TileFn* kTiles[kTileRows] = {kTileRow<1>, kTileRow<2>, kTileRow<3>, kTileRow<4>, kTileRow<5>, kTileRow<6>};

// Rows [i0, i1) and panels [q0, q1) of C, on the calling thread: A's rows packed once, then k blocks,
// panels, tiles of rows (a block of a panel stays in cache while the tiles pass over it).
void compute_block(const GemmArgs& g, const Bf16PackedB& b, std::int64_t i0, std::int64_t i1, std::int64_t q0,
                   std::int64_t q1) {
  const std::int64_t pairs = (g.k + 1) / 2;
  thread_local std::vector<std::uint32_t> packed_a;
  packed_a.resize(static_cast<std::size_t>((i1 - i0) * pairs));
  std::uint32_t* a = packed_a.data();
  pack_a_rows(g, i0, i1, a);
  for (std::int64_t p0 = 0; p0 < pairs; p0 += kPairBlock) {
    const std::int64_t np = std::min(kPairBlock, pairs - p0);
    const float beta = p0 == 0 ? g.beta : 1.0f;  // later k blocks add onto the earlier ones
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t j0 = q * kPanel, cols = std::min(kPanel, g.n - j0);
      const std::uint32_t* panel = b.words_begin() + (q * pairs + p0) * kPanel;
      const std::int64_t v = (cols + 15) / 16 - 1;
      for (std::int64_t i = i0; i < i1; i += kTileRows) {
        const std::int64_t rows = std::min<std::int64_t>(kTileRows, i1 - i);
        kTiles[rows - 1][v](a + (i - i0) * pairs + p0, pairs, panel, np, g.c + i * g.ldc + j0, g.ldc, cols, g.alpha,
                            beta);
      }
    }
  }
}

}  // namespace

void pack_b_bf16(const GemmArgs& g, Bf16PackedB& out) {
  const std::int64_t pairs = (g.k + 1) / 2, panels = (g.n + kPanel - 1) / kPanel;
  out.k = g.k;
  out.n = g.n;
  std::uint32_t* words = out.resize(static_cast<std::size_t>(panels * pairs * kPanel));
  parallel_for(0, panels, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(pairs * kPanel, 1)),
               [&](std::int64_t lo, std::int64_t hi) { pack_b_panels(g, lo, hi, words); });
}

void gemm_bf16_packed(const GemmArgs& g, const Bf16PackedB& b) {
  const std::int64_t panels = (g.n + kPanel - 1) / kPanel, tiles = (g.m + kTileRows - 1) / kTileRows;
  // Split the longer side of C; each part is at least kMinMacsPerThread multiply-adds.
  if (g.m >= g.n) {
    const std::int64_t grain = std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(kTileRows * g.n * g.k, 1));
    parallel_for(0, tiles, grain, [&](std::int64_t lo, std::int64_t hi) {
      compute_block(g, b, lo * kTileRows, std::min(g.m, hi * kTileRows), 0, panels);
    });
  } else {
    const std::int64_t grain = std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(kPanel * g.m * g.k, 1));
    parallel_for(0, panels, grain, [&](std::int64_t lo, std::int64_t hi) { compute_block(g, b, 0, g.m, lo, hi); });
  }
}

void gemm_bf16(const GemmArgs& g) {
  thread_local Bf16PackedB packed;
  const Bf16PackedB* b = &packed;  // the calling thread's (a thread_local name in the workers is their own)
  pack_b_bf16(g, packed);
  gemm_bf16_packed(g, *b);
}
#pragma GCC pop_options

#else  // no bf16 kernels on this compiler/architecture: cpu_supports_bf16() is false, never called

void pack_b_bf16(const GemmArgs&, Bf16PackedB&) {}
void gemm_bf16_packed(const GemmArgs&, const Bf16PackedB&) {}
void gemm_bf16(const GemmArgs&) {}

#endif

}  // namespace synapse::cpu
