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
#if defined(__clang__)  // clang ignores GCC's target pragmas (the fuzz build, scripts/fuzz, uses clang)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")
#endif
}  // namespace synapse::cpu
#include "backend/cpu/bf16_simd.h"
namespace synapse::cpu {
namespace {

constexpr std::int64_t kPanel = kBf16PanelCols;  // words per pair in a B panel
constexpr int kTileRows = 6;                      // rows of C per tile: 6 x 4 accumulators + 4 of B + 1 of A
constexpr std::int64_t kPairBlock = 256;          // pairs per k block: a 64 KB block of a B panel, in L2
// A product with op(B) stored [n, k] is turned around (gemm_bf16) when C has at most this many rows and
// 16 times as many columns: a dense layer's input gradient at a training batch (cnn fc1: [50, 3136]).
constexpr std::int64_t kTurnMaxRows = 64;

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

// Pairs [p0, p0 + np) of panel q of op(B) into out [np][kPanel] (64-byte aligned).
void pack_b_block(const GemmArgs& g, std::int64_t q, std::int64_t p0, std::int64_t np, std::uint32_t* out) {
  const std::int64_t j0 = q * kPanel, cols = std::min(kPanel, g.n - j0);
  if (!g.trans_b) {  // B [k, n]: two rows of 16 columns -> 16 words
    for (std::int64_t p = p0; p < p0 + np; ++p) {
      const float* lo_row = g.b + 2 * p * g.ldb + j0;
      const float* hi_row = lo_row + g.ldb;
      for (std::int64_t c = 0; c < kPanel; c += 16) {
        const __mmask16 m = lanes(std::max<std::int64_t>(0, cols - c));
        const __m512 lo = _mm512_maskz_loadu_ps(m, lo_row + c);
        const __m512 hi = 2 * p + 1 < g.k ? _mm512_maskz_loadu_ps(m, hi_row + c) : _mm512_setzero_ps();
        _mm512_store_si512(out + (p - p0) * kPanel + c, pair_words(lo, hi));
      }
    }
    return;
  }
  // B stored [n, k]: column j of op(B) is stored row j, a contiguous run along k (products with a wide
  // op(B) stored this way are turned around first: gemm_bf16).
  alignas(64) std::uint32_t run[kPairBlock + 16];
  const std::int64_t len = std::min(2 * np, g.k - 2 * p0);
  for (std::int64_t c = 0; c < kPanel; ++c) {
    if (c < cols) {
      pack_run(g.b + (j0 + c) * g.ldb + 2 * p0, len, run);
      for (std::int64_t p = 0; p < np; ++p) out[p * kPanel + c] = run[p];
    } else {
      for (std::int64_t p = 0; p < np; ++p) out[p * kPanel + c] = 0;
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

// Rows [i0, i1) and panels [q0, q1) of C, on the calling thread: A's rows packed once, then per k
// block and panel, the B block packed into L1/L2 and every row tile run over it.
void compute_block(const GemmArgs& g, std::int64_t i0, std::int64_t i1, std::int64_t q0, std::int64_t q1) {
  const std::int64_t pairs = (g.k + 1) / 2;
  thread_local std::vector<std::uint32_t> packed_a;
  packed_a.resize(static_cast<std::size_t>((i1 - i0) * pairs));
  std::uint32_t* a = packed_a.data();
  pack_a_rows(g, i0, i1, a);
  thread_local std::vector<std::uint32_t> block(static_cast<std::size_t>(kPairBlock * kPanel + 16));
  std::uint32_t* b = block.data() + (64 - reinterpret_cast<std::uintptr_t>(block.data()) % 64) % 64 / 4;  // aligned
  for (std::int64_t p0 = 0; p0 < pairs; p0 += kPairBlock) {
    const std::int64_t np = std::min(kPairBlock, pairs - p0);
    const float beta = p0 == 0 ? g.beta : 1.0f;  // later k blocks add onto the earlier ones
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t j0 = q * kPanel, cols = std::min(kPanel, g.n - j0);
      pack_b_block(g, q, p0, np, b);
      const std::int64_t v = (cols + 15) / 16 - 1;
      for (std::int64_t i = i0; i < i1; i += kTileRows) {
        const std::int64_t rows = std::min<std::int64_t>(kTileRows, i1 - i);
        kTiles[rows - 1][v](a + (i - i0) * pairs + p0, pairs, b, np, g.c + i * g.ldc + j0, g.ldc, cols, g.alpha, beta);
      }
    }
  }
}

}  // namespace

void gemm_bf16(const GemmArgs& g) {
  if (g.trans_b && !g.trans_a && g.m <= kTurnMaxRows && g.n >= 16 * g.m) {
    // A wide op(B) stored [n, k] (a dense layer's input gradient dY W^T): computed turned around,
    // C^T [n, m] = B_stored [n, k] x A^T, so that the large operand is the A side, packed from contiguous
    // rows; then C = alpha * (C^T)^T + beta * C.
    thread_local std::vector<float> turned;
    turned.resize(static_cast<std::size_t>(g.n * g.m));
    float* t = turned.data();  // the calling thread's (a thread_local name in the workers is their own)
    gemm_bf16({.trans_b = true, .m = g.n, .n = g.m, .k = g.k, .a = g.b, .lda = g.ldb, .b = g.a, .ldb = g.lda, .c = t,
               .ldc = g.m});
    parallel_for(0, g.m, std::max<std::int64_t>(1, kElementwiseGrain / g.n), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) {
        float* c = g.c + i * g.ldc;
        for (std::int64_t j = 0; j < g.n; ++j) c[j] = g.alpha * t[j * g.m + i] + (g.beta == 0.0f ? 0.0f : g.beta * c[j]);
      }
    });
    return;
  }
  const std::int64_t panels = (g.n + kPanel - 1) / kPanel, tiles = (g.m + kTileRows - 1) / kTileRows;
  // Split the longer side of C; each part is at least kMinMacsPerThread multiply-adds.
  if (g.m >= g.n) {
    const std::int64_t grain = std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(kTileRows * g.n * g.k, 1));
    parallel_for(0, tiles, grain, [&](std::int64_t lo, std::int64_t hi) {
      compute_block(g, lo * kTileRows, std::min(g.m, hi * kTileRows), 0, panels);
    });
  } else {
    const std::int64_t grain = std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(kPanel * g.m * g.k, 1));
    parallel_for(0, panels, grain, [&](std::int64_t lo, std::int64_t hi) { compute_block(g, 0, g.m, lo, hi); });
  }
}
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // no bf16 kernels on this compiler/architecture: cpu_supports_bf16() is false, never called

void gemm_bf16(const GemmArgs&) {}

#endif

}  // namespace synapse::cpu
