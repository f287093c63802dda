#include "backend/cpu/gemm.h"

#include <cblas.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/isa.h"
#include "core/parallel.h"
#include "synapse/device.h"
#include "synapse/error.h"

#include "backend/cpu/isa_begin.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu::SYNAPSE_KERNEL_ISA {
namespace {

// Fills in tight leading dimensions (BLAS requires each >= 1 even for empty matrices).
GemmArgs with_leading_dims(GemmArgs g) {
  if (g.lda == 0) g.lda = g.trans_a ? g.m : g.k;
  if (g.ldb == 0) g.ldb = g.trans_b ? g.k : g.n;
  if (g.ldc == 0) g.ldc = g.n;
  g.lda = std::max<std::int64_t>(g.lda, 1);
  g.ldb = std::max<std::int64_t>(g.ldb, 1);
  g.ldc = std::max<std::int64_t>(g.ldc, 1);
  return g;
}

// C = beta * C, the whole product when k == 0 (an empty sum).
void scale_c(const GemmArgs& g) {
  for (std::int64_t i = 0; i < g.m; ++i) {
    float* row = g.c + i * g.ldc;
    if (g.beta == 0.0f) {
      std::fill(row, row + g.n, 0.0f);
    } else {
      for (std::int64_t j = 0; j < g.n; ++j) row[j] *= g.beta;
    }
  }
}

// Runs a BLAS call on the calling thread alone. OpenBLAS's OpenMP build sizes its own threading from
// omp_get_max_threads() whenever it is called outside a parallel region, so a product too small for
// our split (run inline) was threaded inside OpenBLAS anyway: measured, batch-1 LeNet-5 inference
// took 45-50 us per image on 2 threads against 30-36 us on one, the difference in OpenBLAS's sgemv
// fork/join. Inside our parallel regions OpenBLAS already runs single-threaded.
template <class F> void on_this_thread(F&& f) {
#ifdef _OPENMP
  if (!omp_in_parallel()) {
    const int prev = omp_get_max_threads();
    if (prev > 1) {
      omp_set_num_threads(1);
      f();
      omp_set_num_threads(prev);
      return;
    }
  }
#endif
  f();
}

void sgemm(const GemmArgs& g) {
  on_this_thread([&] {
    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(g.m), static_cast<blasint>(g.n), static_cast<blasint>(g.k), g.alpha, g.a,
                static_cast<blasint>(g.lda), g.b, static_cast<blasint>(g.ldb), g.beta, g.c, static_cast<blasint>(g.ldc));
  });
}

// Switches OpenBLAS's own threads off, once: the process keeps a single pool of threads (OpenMP), and
// sgemm may be called from several of them at once. Two pools that each spin while waiting for work
// fight over the cores: on the 2-core build machine, an OpenMP kernel (max pooling) run right after
// BLAS-threaded GEMMs was several times slower than after GEMMs split over the OpenMP threads.
//
// The OpenMP build of OpenBLAS implements openblas_set_num_threads with omp_set_num_threads, which would
// also shrink Synapse's own pool to one thread: restore it.
void use_single_threaded_blas() {
  static const bool done = [] {
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(threads);
#else
    openblas_set_num_threads(1);
#endif
    return true;
  }();
  (void)done;
}

// Split granularity, in rows (or columns) of C (the least work worth a thread is kMinMacsPerThread).
constexpr std::int64_t kBlock = 16;

// Splits C into blocks of `row_block` rows (or of `col_block` columns, when it is wider than tall: a
// [50, 1024] dense layer output) over the OpenMP threads, each block one call of f on its part of
// the product. Runs on the calling thread alone when the product is small or the caller is already
// inside a parallel region.
template <class F> void split_c(const GemmArgs& g, std::int64_t row_block, std::int64_t col_block, F&& f) {
  const bool split_m = g.m >= g.n;
  const std::int64_t unit = split_m ? row_block : col_block;
  const std::int64_t extent = split_m ? g.m : g.n;
  const std::int64_t blocks = (extent + unit - 1) / unit;
  const std::int64_t macs_per_block = unit * (split_m ? g.n : g.m) * g.k;
  const std::int64_t grain = std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(macs_per_block, 1));
  parallel_for(0, blocks, grain, [&](std::int64_t lo, std::int64_t hi) {
    const std::int64_t i0 = lo * unit, i1 = std::min(extent, hi * unit);
    GemmArgs part = g;
    if (split_m) {
      part.m = i1 - i0;
      part.a = g.trans_a ? g.a + i0 : g.a + i0 * g.lda;
      part.c = g.c + i0 * g.ldc;
    } else {
      part.n = i1 - i0;
      part.b = g.trans_b ? g.b + i0 * g.ldb : g.b + i0;
      part.c = g.c + i0;
    }
    f(part);
  });
}

// Blocks of 16 rows or columns, each a single-threaded sgemm.
void parallel_gemm(const GemmArgs& g) { split_c(g, kBlock, kBlock, sgemm); }

#if SYNAPSE_AVX2
// The kernels below are written once for AVX-512 and AVX2 on vec.h's vf (kLanes = 16 or 8 floats;
// "16" in the comments is AVX-512's width). Only gemv_narrow and the vectorised list_nonzeros need
// AVX-512 (lane permutes, compress).
//
// The kernels' shared pieces: accumulators start at zero; a finished sum is stored as
// alpha * sum + beta * c (c not read when beta is 0), masked to the valid lanes, or with a streaming
// store (full vectors on 64-byte boundaries only).
template <int A, int B> void zero_accumulators(vf (&acc)[A][B]) {
#pragma GCC unroll 16
  for (int i = 0; i < A; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < B; ++j) acc[i][j] = vzero();
}
template <bool Stream = false>
void store_scaled(float* c, vf sum, vmask m, float alpha, float beta) {
  sum = vmul(sum, vset1(alpha));
  if (beta != 0.0f) sum = vfma(vset1(beta), vload(c, m), sum);
  if (Stream && all_lanes(m)) {
    vstream(c, sum);
  } else {
    vstore(c, sum, m);
  }
}

// Where a matrix-vector kernel finds row p of the matrix and the x value it is multiplied by: every
// row in order (AllRows), or only the rows listed (ListedRows: those whose x value is not zero).
struct AllRows {
  const float* mat;
  std::int64_t ld;
  const float* x;
  const float* row(std::int64_t p) const { return mat + p * ld; }
  float value(std::int64_t p) const { return x[p]; }
  AllRows columns_from(std::int64_t j) const { return {mat + j, ld, x}; }
};
struct ListedRows {
  const float* mat;
  std::int64_t ld;
  const std::int32_t* rows;  // kPrefetchRows valid entries past the last one, for the prefetches
  const float* values;
  const float* row(std::int64_t p) const { return mat + rows[p] * ld; }
  float value(std::int64_t p) const { return values[p]; }
  ListedRows columns_from(std::int64_t j) const { return {mat + j, ld, rows, values}; }
};

// y[0, n) = alpha * (sum over p < k of value(p) * row(p)[0, n)) + beta * y, the rows from `r`, n <= 16 * NV:
// NV vectors of 16 outputs (the last one masked), KU rows of the matrix per step, each row into its
// own accumulators so that NV * KU chains of FMAs run side by side (the FMA's latency is 4 cycles and
// two issue per cycle: 8 chains keep the units busy). The matrix is read once, row by row, a
// contiguous run of n floats from each.
constexpr std::int64_t kPrefetchRows = 8;
// Batch-1 products skip the rows whose x value is zero when at most kListNumerator / kListDenominator
// of x is not zero and the matrix has at least kListMinColumns columns (gemv below).
constexpr std::int64_t kListNumerator = 3, kListDenominator = 4, kListMinColumns = 32;
template <int NV, int KU, class Rows>
void gemv_cols_block(const Rows& r, std::int64_t k, float* y, std::int64_t n, float alpha, float beta) {
  const vmask tail = vmask_first(n - kLanes * (NV - 1));
  vf acc[KU][NV];
  zero_accumulators(acc);
  const auto step = [&](int u, std::int64_t p) {
    // Every cache line of the row kPrefetchRows ahead is requested now: a thread's share of a wide
    // matrix is a short run of each row (1 KB of the 2 KB rows of the batch-1 mlp's 784x500 layer),
    // too short for the hardware prefetchers to get ahead (measured on that layer on two threads:
    // 12.9 -> 10.6 us per product; every 4th line only: 11.7), and listed rows are not in sequence.
    const float* ahead = r.row(p + kPrefetchRows);
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(ahead + kLanes * v), _MM_HINT_T0);
    const float* row = r.row(p);
    const vf xv = vset1(r.value(p));
#pragma GCC unroll 16
    for (int v = 0; v < NV - 1; ++v) acc[u][v] = vfma(xv, vload(row + kLanes * v), acc[u][v]);
    acc[u][NV - 1] = vfma(xv, vload(row + kLanes * (NV - 1), tail), acc[u][NV - 1]);
  };
  std::int64_t p = 0;
  for (; p + KU <= k; p += KU)
#pragma GCC unroll 16
    for (int u = 0; u < KU; ++u) step(u, p + u);
  for (; p < k; ++p) step(0, p);
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    vf sum = acc[0][v];
#pragma GCC unroll 16
    for (int u = 1; u < KU; ++u) sum = vadd(sum, acc[u][v]);
    store_scaled(y + kLanes * v, sum, v == NV - 1 ? tail : vmask_all(), alpha, beta);
  }
}

#if SYNAPSE_AVX512
// The same for a narrow matrix stored without gaps (N < 16 columns, ld == N: the 784x10 softmax
// layer), read as one flat run of floats. Row by row, each row would be one masked load of N floats
// that often straddles two cache lines; flat, every load is 16 whole floats. A period of P vectors
// covers R whole rows (16 P = N R), lane l of vector t holding column (16 t + l) % N of row
// (16 t + l) / N, so vector t is multiplied by the x values of those rows: x[R rows] permuted with a
// fixed index vector. After the last period each column's partial sums are gathered from the lanes.
template <int N>
void gemv_narrow(const float* mat, const float* x, std::int64_t k, float* y, float alpha, float beta) {
  constexpr int g = N % 16 == 0 ? 16 : (N % 8 == 0 ? 8 : (N % 4 == 0 ? 4 : (N % 2 == 0 ? 2 : 1)));  // gcd(N, 16)
  constexpr int P = N / g, R = 16 / g;
  alignas(64) static constexpr auto rows = [] {
    std::array<std::int32_t, 16 * P> r{};
    for (int i = 0; i < 16 * P; ++i) r[static_cast<std::size_t>(i)] = i / N;
    return r;
  }();
  __m512i idx[P];
  __m512 acc[1][P];
  zero_accumulators(acc);
#pragma GCC unroll 16
  for (int t = 0; t < P; ++t) idx[t] = _mm512_load_si512(rows.data() + 16 * t);
  const auto xmask = static_cast<__mmask16>(0xffffu >> (16 - R));
  std::int64_t p = 0;
  for (; p + R <= k; p += R) {
    const __m512 xs = _mm512_maskz_loadu_ps(xmask, x + p);
    const float* w = mat + p * N;
#pragma GCC unroll 16
    for (int t = 0; t < P; ++t)
      acc[0][t] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(0xffff, idx[t], xs), _mm512_loadu_ps(w + 16 * t), acc[0][t]);
  }
  alignas(64) float lanes[16 * P];
#pragma GCC unroll 16
  for (int t = 0; t < P; ++t) _mm512_store_ps(lanes + 16 * t, acc[0][t]);
  float sum[N] = {};
  for (int i = 0; i < 16 * P; ++i) sum[i % N] += lanes[i];
  for (; p < k; ++p)  // the rows after the last whole period
    for (int j = 0; j < N; ++j) sum[j] += x[p] * mat[p * N + j];
  for (int j = 0; j < N; ++j) y[j] = alpha * sum[j] + (beta == 0.0f ? 0.0f : beta * y[j]);
}
#endif

// The same for any n: blocks of 128 outputs (32 with AVX2's 16 registers), each a pass over the matrix's rows, two or more rows per
// step so that enough accumulators are in flight and each sums at most half of the k products (the
// rounding error of a float sum grows with its length: at k = 3136 one chain per output was 4e-4
// off the double-precision reference, against 3e-4 for OpenBLAS).
template <class Rows>
void gemv_cols(const Rows& r, std::int64_t k, float* y, std::int64_t n, float alpha, float beta) {
  constexpr std::int64_t block = (kVecRegs == 32 ? 8 : 4) * kLanes;
  for (std::int64_t j = 0; j < n; j += block) {
    const std::int64_t w = std::min<std::int64_t>(block, n - j);
    const Rows m = r.columns_from(j);
    switch ((w + kLanes - 1) / kLanes) {
      case 1: gemv_cols_block<1, 8>(m, k, y + j, w, alpha, beta); break;
      case 2: gemv_cols_block<2, 4>(m, k, y + j, w, alpha, beta); break;
      case 3: gemv_cols_block<3, 3>(m, k, y + j, w, alpha, beta); break;
      case 4: gemv_cols_block<4, 2>(m, k, y + j, w, alpha, beta); break;
      case 5: gemv_cols_block<5, 2>(m, k, y + j, w, alpha, beta); break;
      case 6: gemv_cols_block<6, 2>(m, k, y + j, w, alpha, beta); break;
      case 7: gemv_cols_block<7, 2>(m, k, y + j, w, alpha, beta); break;
      default: gemv_cols_block<8, 2>(m, k, y + j, w, alpha, beta); break;
    }
  }
}

#if SYNAPSE_AVX512
void gemv_narrow(const float* mat, const float* x, std::int64_t k, float* y, std::int64_t n, float alpha, float beta) {
  switch (n) {
    case 1: gemv_narrow<1>(mat, x, k, y, alpha, beta); return;
    case 2: gemv_narrow<2>(mat, x, k, y, alpha, beta); return;
    case 3: gemv_narrow<3>(mat, x, k, y, alpha, beta); return;
    case 4: gemv_narrow<4>(mat, x, k, y, alpha, beta); return;
    case 5: gemv_narrow<5>(mat, x, k, y, alpha, beta); return;
    case 6: gemv_narrow<6>(mat, x, k, y, alpha, beta); return;
    case 7: gemv_narrow<7>(mat, x, k, y, alpha, beta); return;
    case 8: gemv_narrow<8>(mat, x, k, y, alpha, beta); return;
    case 9: gemv_narrow<9>(mat, x, k, y, alpha, beta); return;
    case 10: gemv_narrow<10>(mat, x, k, y, alpha, beta); return;
    case 11: gemv_narrow<11>(mat, x, k, y, alpha, beta); return;
    case 12: gemv_narrow<12>(mat, x, k, y, alpha, beta); return;
    case 13: gemv_narrow<13>(mat, x, k, y, alpha, beta); return;
    case 14: gemv_narrow<14>(mat, x, k, y, alpha, beta); return;
    default: gemv_narrow<15>(mat, x, k, y, alpha, beta); return;
  }
}
#endif

// Lists the entries of x[0, k) that are not zero: their indices in `rows`, their values in `values`;
// returns how many. NaN is listed (it is not equal to zero), so a NaN input still reaches every output.
// Both buffers hold k + 16 entries (whole vectors are stored).
std::int64_t list_nonzeros(const float* x, std::int64_t k, std::int32_t* rows, float* values) {
#if !SYNAPSE_AVX512
  std::int64_t count = 0;
  for (std::int64_t p = 0; p < k; ++p) {
    if (x[p] == 0.0f) continue;  // NaN != 0: listed
    rows[count] = static_cast<std::int32_t>(p);
    values[count++] = x[p];
  }
  return count;
#else
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  std::int64_t count = 0;
  for (std::int64_t p = 0; p < k; p += 16) {
    const auto valid = static_cast<__mmask16>(k - p >= 16 ? 0xffffu : 0xffffu >> (16 - (k - p)));
    const __m512 v = _mm512_maskz_loadu_ps(valid, x + p);
    const __mmask16 nz = _mm512_mask_cmp_ps_mask(valid, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    // Compressed in a register and stored whole: a compressing store to memory is microcoded on Zen 4.
    _mm512_storeu_si512(rows + count, _mm512_maskz_compress_epi32(
                                          nz, _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<std::int32_t>(p)))));
    _mm512_storeu_ps(values + count, _mm512_maskz_compress_ps(nz, v));
    count += std::popcount(static_cast<unsigned>(nz));
  }
  return count;
#endif
}
#endif

#if SYNAPSE_AVX2
// GEMMs with few rows (m, a dense layer's batch) or a short sum (k, its weight gradient), B not
// transposed: our own AVX-512 kernel. Measured on the cnn's dense layer fc1 (batch 50, 3136 -> 1024),
// OpenBLAS's sgemm ran the forward product [50, 3136] x [3136, 1024] at 51-55% of peak: a third of
// its time (perf) went to packing the weights (sgemm_itcopy), each 64-byte run of a panel read from a
// new 4 KB page (a row of B is exactly 4 KB), past the hardware prefetchers. The weight gradient
// X^T [3136, 50] x dY [50, 1024] ran at 62-68%: k = 50 products per output leave it bound by the
// 12.8 MB of C, which sgemm zeroes first (memset, 9% of its time, for beta = 0), then reads and
// writes again.
//
// Here: C in tiles of up to 6 rows x 64 columns, 24 accumulators, each step of p one row of B (four
// vectors) times 6 broadcast values of A. B is copied in panels of kKc x 64 floats to a contiguous
// buffer by the first row tile as it computes (B's rows are 4 KB apart in fc1: read in place by every
// tile, they would compete for a few sets of L1), and the other row tiles read the panel from L1/L2.
// C is written once per k block; when the whole sum is one block (k <= kKc) and C is large, with
// streaming stores, which skip reading C's cache lines before writing them.
constexpr std::int64_t kKc = 256;   // rows of a B panel (k block) on AMD: 64 KB panels, in L2
constexpr std::int64_t kNc = 64;    // columns of a B panel and of a tile
constexpr int kTileRows = 6;        // rows of a tile: 6 x 4 accumulators + 4 of B + a broadcast
// Vectors of columns per tile: 4 with AVX-512 (a tile as wide as a panel), 2 with AVX2 (6 x 2
// accumulators of its 16 registers: a panel is then 4 tiles wide).
constexpr int kTileV = kVecRegs == 32 ? 4 : 2;
constexpr std::int64_t kTileCols = kTileV * kLanes;
constexpr std::int64_t kSmallDim = 64;  // m or k at most this: our kernel, when also
// at least 16 columns (a narrower C leaves too few accumulators: the 10-class layers of cnn and
// LeNet-5 ran 0.5-0.9x OpenBLAS's speed) and 2M multiply-adds (below, copying B's panels costs more
// than OpenBLAS's tuned small-matrix path: LeNet-5's 64x84x120 layer ran at 0.8x).
constexpr std::int64_t kSmallMinN = 16;
constexpr std::int64_t kSmallMinMacs = std::int64_t{2} << 20;

// Rows of a B panel on this CPU. AMD's Zen 4 and Zen 5 feed the tiles from L2 fast enough: 256 rows
// (64 KB, re-read from L2 by every row tile) measured faster there than 128 (fewer k blocks: C read and
// written, and panels copied, half as often; Zen 5, fc1 forward on two threads: 299 against 265-283
// GFLOP/s). On Intel's Golden Cove / Raptor Cove cores (Emerald Rapids, 48 KB L1d) the L1-resident
// panel wins: 128 rows (32 KB) ran fc1's forward product on two threads at 185-192 GFLOP/s against
// 149-180 with 256 (alternating runs; one thread was within the noise). So Intel CPUs get the largest
// power-of-two rows whose panel fits in two thirds of L1d, the others kKc.
std::int64_t panel_rows() {
  static const std::int64_t rows = [] {
    const CpuInfo& cpu = cpu_info();
    if (cpu.vendor != "GenuineIntel" || cpu.l1d <= 0) return kKc;
    std::int64_t r = kKc;
    while (r > 32 && r * kNc * static_cast<std::int64_t>(sizeof(float)) * 3 > cpu.l1d * 2) r /= 2;
    return r;
  }();
  return rows;
}

// Cache lines of a block of rows of B to request into L2 while a tile computes, one every `every`
// steps of its k loop: rows [0, rows) of `at` (row stride ld), `lines` lines of 16 floats each.
struct LinePrefetch {
  const float* at = nullptr;
  std::int64_t ld = 0, rows = 0;
  int lines = 0, every = 1;
};

// Where a tile reads B's rows from when it also copies them into its panel: rows of `src`, stride ld,
// each requested into L1 `ahead` steps before its use (0: not), copied to `panel` (the tile's b).
struct PanelPack {
  const float* src = nullptr;
  std::int64_t ld = 0;
  std::int64_t ahead = 0;
  float* panel = nullptr;
};

// C[R, w] = alpha * (op(A) B)[R, w] + beta * C (beta == 0: C not read), w <= 16 * V; op(A)(r, p) =
// a[r * ars + p * aks]; B [k, w] with ldb (with `pack`: read from pack.src and written to b as it goes).
template <int R, int V, bool Stream>
void small_tile(const float* a, std::int64_t ars, std::int64_t aks, const float* b, std::int64_t ldb, std::int64_t k,
                float* c, std::int64_t ldc, std::int64_t w, float alpha, float beta, LinePrefetch pf = {},
                PanelPack pack = {}) {
  const vmask tail = vmask_first(w - kLanes * (V - 1));
  vf acc[R][V];
  zero_accumulators(acc);
  std::int64_t pf_row = 0;
  int pf_line = 0, pf_wait = 1;
  for (std::int64_t p = 0; p < k; ++p) {
    if (pf_row < pf.rows && --pf_wait == 0) {
      pf_wait = pf.every;
      _mm_prefetch(reinterpret_cast<const char*>(pf.at + pf_row * pf.ld + pf_line * 16), _MM_HINT_T1);
      if (++pf_line == pf.lines) {
        pf_line = 0;
        ++pf_row;
      }
    }
    vf bv[V];
    if (pack.src != nullptr) {  // the first row tile copies B's rows into the panel (b) as it goes
      if (pack.ahead > 0 && p + pack.ahead < k) {
        const float* ahead = pack.src + (p + pack.ahead) * pack.ld;
        for (int v = 0; v < V; ++v) _mm_prefetch(reinterpret_cast<const char*>(ahead + kLanes * v), _MM_HINT_T0);
      }
#pragma GCC unroll 16
      for (int v = 0; v < V - 1; ++v) {
        bv[v] = vload(pack.src + p * pack.ld + kLanes * v);
        vstore(pack.panel + p * ldb + kLanes * v, bv[v]);
      }
      bv[V - 1] = vload(pack.src + p * pack.ld + kLanes * (V - 1), tail);
      vstore(pack.panel + p * ldb + kLanes * (V - 1), bv[V - 1], tail);
    } else {
#pragma GCC unroll 16
      for (int v = 0; v < V - 1; ++v) bv[v] = vload(b + p * ldb + kLanes * v);
      bv[V - 1] = vload(b + p * ldb + kLanes * (V - 1), tail);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vf av = vset1(a[r * ars + p * aks]);
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[r][v] = vfma(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v)
      store_scaled<Stream>(c + r * ldc + kLanes * v, acc[r][v], v == V - 1 ? tail : vmask_all(), alpha,
                           beta);
}

template <int R, bool Stream>
void small_tile_rows(const float* a, std::int64_t ars, std::int64_t aks, const float* b, std::int64_t ldb,
                     std::int64_t k, float* c, std::int64_t ldc, std::int64_t w, float alpha, float beta,
                     LinePrefetch pf = {}, PanelPack pack = {}) {
  switch ((w + kLanes - 1) / kLanes) {
    case 1: small_tile<R, 1, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    case 2: small_tile<R, 2, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    case 3: small_tile<R, 3, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    default: small_tile<R, kTileV, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
  }
}

template <bool Stream>
void small_tile_any(int rows, const float* a, std::int64_t ars, std::int64_t aks, const float* b, std::int64_t ldb,
                    std::int64_t k, float* c, std::int64_t ldc, std::int64_t w, float alpha, float beta,
                    LinePrefetch pf, PanelPack pack) {
  switch (rows) {
    case 1: small_tile_rows<1, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    case 2: small_tile_rows<2, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    case 3: small_tile_rows<3, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    case 4: small_tile_rows<4, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    case 5: small_tile_rows<5, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
    default: small_tile_rows<6, Stream>(a, ars, aks, b, ldb, k, c, ldc, w, alpha, beta, pf, pack); break;
  }
}

// One thread's block of C (g with trans_b false): k blocks, then B panels, then tiles of rows. The m
// rows are cut into equal tiles of at most 6 (50 = 5 x 6 + 4 x 5: a last tile of 2 rows ran at half
// the speed of the others).
void small_gemm_block(const GemmArgs& g) {
  const std::int64_t kc = panel_rows();
  static thread_local std::vector<float> panel;
  panel.resize(static_cast<std::size_t>(kc * kNc));
  const std::int64_t ars = g.trans_a ? 1 : g.lda, aks = g.trans_a ? g.lda : 1;
  const std::int64_t tiles = (g.m + kTileRows - 1) / kTileRows;
  // Streaming stores: measured on the fc1 weight gradient (one k block, 12.8 MB of C), 3.0 ms
  // against 3.8 ms with ordinary stores on one thread. Only for a C larger than the L2 caches (the
  // stores leave it in memory) and 64-byte aligned rows (the instruction's requirement).
  const bool stream = g.k <= kc && g.m * g.n >= (std::int64_t{1} << 20) && g.ldc % 16 == 0 &&
                      reinterpret_cast<std::uintptr_t>(g.c) % 64 == 0;
  // A B larger than half of L2 (the cnn's fc1 weights: 12.8 MB) comes from L3 or memory in a training
  // step (the optimizer's update and the other layers ran since its last use): its next panel is
  // requested into L2 while this panel's tiles compute, a few lines per tile, spread over the tile's
  // steps (one prefetch per `every` of them), and the packing tile asks for its rows 8 steps ahead.
  // A burst of a tile's share of prefetches before each tile stalled on the line-fill buffers (perf:
  // half of small_gemm_block's samples on the prefetch instructions). In-process alternation on the
  // fc1 forward product, Emerald Rapids, weights rotated over 8 copies: spread against burst +15%
  // (one thread) and +6% (two). A small B (the weight gradient's dY, 200 KB) stays in the caches and
  // is not prefetched: +1% without.
  const std::int64_t l2 = cpu_info().l2;
  const bool prefetch = l2 <= 0 || g.k * g.n * static_cast<std::int64_t>(sizeof(float)) > l2 / 2;
  for (std::int64_t p0 = 0; p0 < g.k; p0 += kc) {
    const std::int64_t kb = std::min(kc, g.k - p0);
    const float beta = p0 == 0 ? g.beta : 1.0f;  // later k blocks add to the earlier ones
    for (std::int64_t j0 = 0; j0 < g.n; j0 += kNc) {
      const std::int64_t w = std::min(kNc, g.n - j0);
      const float* src = g.b + p0 * g.ldb + j0;
      // The next panel: the next columns, or the next k block's first ones.
      const bool last_cols = j0 + kNc >= g.n;
      const std::int64_t np0 = last_cols ? p0 + kc : p0, nj0 = last_cols ? 0 : j0 + kNc;
      const std::int64_t nkb = prefetch && np0 < g.k ? std::min(kc, g.k - np0) : 0, nw = std::min(kNc, g.n - nj0);
      const float* next = nkb > 0 ? g.b + np0 * g.ldb + nj0 : g.b;
      const int nlines = static_cast<int>((nw + 15) / 16);
      const std::int64_t col_tiles = (w + kTileCols - 1) / kTileCols;
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t pf0 = nkb * t / tiles, pf1 = nkb * (t + 1) / tiles;
        const std::int64_t i0 = g.m * t / tiles, rows = g.m * (t + 1) / tiles - i0;
        const float* a = g.a + i0 * ars + p0 * aks;
        float* c = g.c + i0 * g.ldc + j0;
        for (std::int64_t jj = 0; jj < w; jj += kTileCols) {
          const std::int64_t cols = std::min(kTileCols, w - jj);
          float* bp = panel.data() + jj;
          const std::int64_t q = jj / kTileCols, r0 = pf0 + (pf1 - pf0) * q / col_tiles,
                             r1 = pf0 + (pf1 - pf0) * (q + 1) / col_tiles;
          const std::int64_t lines = std::max<std::int64_t>(1, (r1 - r0) * nlines);
          const LinePrefetch pf{.at = next + r0 * g.ldb, .ld = g.ldb, .rows = r1 - r0, .lines = nlines,
                                .every = static_cast<int>(std::max<std::int64_t>(1, kb / lines))};
          // The first row tile reads B's rows itself and copies them into the panel for the others: a
          // separate copy before the tiles was 18% of fc1's forward time (perf), its loads waiting on
          // L2 and L3 with no multiply-adds to overlap them. In-process alternation (bench/ab_inprocess),
          // fc1 forward, Emerald Rapids: +10-15% (one thread and two, weights warm or cold), +4-5% on the
          // AVX2 path; the cnn's training step 1.7-1.9% faster.
          const PanelPack pack =
              t == 0 ? PanelPack{.src = src + jj, .ld = g.ldb, .ahead = prefetch ? 8 : 0, .panel = bp} : PanelPack{};
          const int r = static_cast<int>(rows);
          if (stream) {
            small_tile_any<true>(r, a, ars, aks, bp, w, kb, c + jj, g.ldc, cols, g.alpha, beta, pf, pack);
          } else {
            small_tile_any<false>(r, a, ars, aks, bp, w, kb, c + jj, g.ldc, cols, g.alpha, beta, pf, pack);
          }
        }
      }
    }
  }
  if (stream) _mm_sfence();  // streaming stores are weakly ordered: complete them before the join
}

// Splits C over the threads like parallel_gemm, columns in whole vectors of 16 (streaming stores and
// aligned loads of B stay aligned on every thread).
void small_gemm(const GemmArgs& g) { split_c(g, 1, 16, small_gemm_block); }

// C = alpha * A B^T + beta * C with few rows of A (B stored [n, k]: a dense layer's input gradient
// dY W^T, W [in, units]), through the transposed product C^T = B A^T: B's rows are then the rows of
// the product, each read once and in order, where OpenBLAS packed them into panels first (for the
// cnn's fc1, [50, 1024] x [3136, 1024]^T, 41% of its time, at 48% of peak on two threads). A^T and
// the product C^T are small ([k, m] and [n, m]) and transposed on the way in and out.
//
// The m columns of C^T (the batch) are not a multiple of the vector width in general: 50 = 3 x 16 + 2.
// Padding them to whole vectors (4 x 16, 64 lanes for 50 values) capped fc1's input gradient at 78%
// of the lanes (measured 56-68% of peak). Here the first m16 = 16 floor(m / 16) columns run on the
// forward product's register tiles (rows of B broadcast, A^T's vectors loaded), and a few columns
// left over (at most kNtDotColumns) as dot products along k of B's rows with A's rows (both
// contiguous), on the same rows of B while they are still in the caches: every lane does useful work.
// More columns left over than that are padded as before.
constexpr std::int64_t kNtDotColumns = 4;
// Rows of B per tile: the accumulators are rows x vectors; more than 8 rows of B, each a stream at
// the same offset of a 4 KB-strided matrix (fc1: k = 1024 floats), compete for one set of L1's ways.
constexpr int nt_tile_rows(int v) { return kVecRegs == 32 ? (v >= 4 ? 6 : 8) : (v >= 2 ? 6 : 8); }

float hsum(vf v) {
  alignas(64) float lanes[kLanes];
  vstore(lanes, v);
  float s = 0.0f;
  for (float x : lanes) s += x;
  return s;
}

// ct[R, j] = dot(B row r, A row j) for the columns j in [j0, j1) (at most kNtDotPair): R x
// (j1 - j0) accumulators along k, the A rows lda apart.
constexpr std::int64_t kNtDotPair = 2;
template <int R>
void nt_dot_columns(const float* b, std::int64_t ldb, const float* a, std::int64_t lda, std::int64_t k, float* ct,
                    std::int64_t ldct, std::int64_t j0, std::int64_t j1) {
  constexpr int J = static_cast<int>(kNtDotPair);
  vf acc[R][J];
  zero_accumulators(acc);
  const int cols = static_cast<int>(j1 - j0);
  const auto step = [&](std::int64_t p, vmask m) {
    vf av[J];
#pragma GCC unroll 16
    for (int j = 0; j < J; ++j) av[j] = j < cols ? vload(a + (j0 + j) * lda + p, m) : vzero();
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vf bv = vload(b + r * ldb + p, m);
#pragma GCC unroll 16
      for (int j = 0; j < J; ++j)
        if (j < cols) acc[r][j] = vfma(bv, av[j], acc[r][j]);
    }
  };
  std::int64_t p = 0;
  for (; p + kLanes <= k; p += kLanes) step(p, vmask_all());
  if (p < k) step(p, vmask_first(k - p));
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < cols; ++j) ct[r * ldct + j0 + j] = hsum(acc[r][j]);
}

// ct[R, 0 : vec_cols) for R rows of B (op(A) of the forward kernel's tiles, whole rows along k):
// column tiles of up to kTileV vectors (the last one masked when vec_cols is not whole vectors).
template <int R>
void nt_tiles(const float* b, std::int64_t ldb, const float* at, std::int64_t ld, std::int64_t k, float* ct,
              std::int64_t ldct, std::int64_t vec_cols) {
  for (std::int64_t j = 0; j < vec_cols; j += kTileCols)
    small_tile_rows<R, false>(b, ldb, 1, at + j, ld, k, ct + j, ldct, std::min(kTileCols, vec_cols - j), 1.0f, 0.0f);
}

// Rows [r0, r1) of C^T = B A^T (C^T [n, m]): its first vec_cols columns from A^T (at) on the vector
// tiles, the rest as dot products with A's rows.
template <int R>
void nt_rows(const float* b, std::int64_t ldb, const float* at, std::int64_t ld, const float* a, std::int64_t lda,
             std::int64_t k, float* ct, std::int64_t m, std::int64_t vec_cols, std::int64_t r0, std::int64_t r1) {
  const auto rows_tile = [&]<int RR>(std::int64_t r) {
    nt_tiles<RR>(b + r * ldb, ldb, at, ld, k, ct + r * m, m, vec_cols);
    for (std::int64_t j = vec_cols; j < m; j += kNtDotPair)
      nt_dot_columns<RR>(b + r * ldb, ldb, a, lda, k, ct + r * m, m, j, std::min(m, j + kNtDotPair));
  };
  std::int64_t r = r0;
  for (; r + R <= r1; r += R) rows_tile.template operator()<R>(r);
  for (; r < r1; ++r) rows_tile.template operator()<1>(r);
}

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols, in blocks of 16 x 16 (each block read along
// src's rows and written along dst's, both within a few cache lines).
void transpose_into(const float* src, std::int64_t lds, std::int64_t rows, std::int64_t cols, float* dst,
                    std::int64_t ldd) {
  constexpr std::int64_t kT = 16;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kT) {
    const std::int64_t r1 = std::min(rows, r0 + kT);
    for (std::int64_t c0 = 0; c0 < cols; c0 += kT) {
      const std::int64_t c1 = std::min(cols, c0 + kT);
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c) dst[c * ldd + r] = src[r * lds + c];
    }
  }
}

void small_gemm_nt(const GemmArgs& g) {
  const std::int64_t m = g.m, n = g.n, k = g.k;
  // Columns of C^T on vector tiles: whole vectors, or all m (the last vector padded) when more than
  // kNtDotColumns would be left over.
  const std::int64_t whole = m / kLanes * kLanes;
  const std::int64_t vec_cols = m - whole <= kNtDotColumns ? whole : m;
  const std::int64_t vecs = (vec_cols + kLanes - 1) / kLanes;
  // Kept per thread: the same sizes come back every step, and fresh buffers this large would be
  // new pages from the system each time.
  static thread_local std::vector<float> at, ct;
  const std::int64_t ld = std::max<std::int64_t>(vecs * kLanes, 1);
  at.resize(static_cast<std::size_t>(k * ld));
  ct.resize(static_cast<std::size_t>(n * m));
  // A^T in blocks of 16 of its k rows over the threads (on the calling thread alone, the other core
  // waited for it: fc1's input gradient on two threads 1.0-1.4% faster, 25-34 of 40 rounds in process).
  float* at_data = at.data();
  parallel_for(0, (k + 15) / 16, 8, [&](std::int64_t lo, std::int64_t hi) {
    const std::int64_t p0 = lo * 16, p1 = std::min(k, hi * 16);
    transpose_into(g.a + p0, g.lda, vec_cols, p1 - p0, at_data + p0 * ld, ld);
  });
  // (Pointers, not the names, inside the parallel loops: a thread_local name means each thread's own.)
  const float* a_t = at.data();
  float* product = ct.data();
  // Rows of C^T over the threads, in whole row tiles (a last partial tile runs row by row). Each thread
  // writes its rows of C^T into C (columns r0..r1 of every row) itself, a block of 4 row tiles at a time
  // right after computing it, while the block is in its L1 (fc1: 32 x 50 floats): a separate pass over all
  // of C^T afterwards read half of it from the other core's cache, at a stride of m floats.
  const bool wide = vec_cols > kLanes * (kTileV - 1);  // a tile of kTileV vectors: fewer rows fit
  const std::int64_t rows = wide ? nt_tile_rows(kTileV) : nt_tile_rows(1);
  const std::int64_t tile = 4 * rows;
  const std::int64_t blocks = (n + tile - 1) / tile;
  const std::int64_t grain = std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(tile * m * k, 1));
  parallel_for(0, blocks, grain, [&](std::int64_t lo, std::int64_t hi) {
    const std::int64_t end = std::min(n, hi * tile);
    for (std::int64_t r0 = lo * tile; r0 < end; r0 += tile) {
      const std::int64_t r1 = std::min(end, r0 + tile);
      if (wide) {
        nt_rows<nt_tile_rows(kTileV)>(g.b, g.ldb, a_t, ld, g.a, g.lda, k, product, m, vec_cols, r0, r1);
      } else {
        nt_rows<nt_tile_rows(1)>(g.b, g.ldb, a_t, ld, g.a, g.lda, k, product, m, vec_cols, r0, r1);
      }
      for (std::int64_t i = 0; i < m; ++i) {
        float* c = g.c + i * g.ldc;
        const float* src = product + i;
        for (std::int64_t j = r0; j < r1; ++j) c[j] = g.alpha * src[j * m] + (g.beta == 0.0f ? 0.0f : g.beta * c[j]);
      }
    }
  });
}
#endif

// A product with a single row or column of C is a matrix-vector product. sgemm would pack the whole
// matrix operand into its panel format first (measured: 67% of a batch-1 cnn inference went to
// packing the 3136x1024 dense weights), while a matrix-vector product reads it once. The output
// vector is split in blocks over the threads; each thread gets the same block on every call, so a
// matrix that fits in the two cores' caches together (batch-1 mlp: 1.57 MB of 784x500 weights, half
// per 1 MB L2) stays there from one image to the next.
//
// When each output is a sum over the matrix's rows (y = x W, W stored [k, n]: every dense layer at
// batch 1) and the vectors are contiguous, our own AVX-512 kernel runs (gemv_cols): OpenBLAS's sgemv
// for that case works in columns of 4 and ran the 784x10 softmax layer at 5 GFLOP/s (1.5 us, the
// larger part of a batch-1 inference). Dot products with stored rows go to OpenBLAS's sgemv, or to
// small_gemm_nt's dot kernel where OpenBLAS's kernels are narrower than ours (own_gemm_for_all()).
void gemv(const GemmArgs& g) {
  // y[len] = alpha * M x + beta * y, M being op(B)^T (one row of C) or op(A) (one column of C).
  const bool row = g.m == 1;
  const std::int64_t len = row ? g.n : g.m;
  const float* mat = row ? g.b : g.a;
  const std::int64_t ld = row ? g.ldb : g.lda;
  // Is y[i] a dot product with a stored row of the matrix (true) or with a stored column (false)?
  const bool by_rows = row ? g.trans_b : !g.trans_a;
  const float* x = row ? g.a : g.b;
  const std::int64_t incx = row ? (g.trans_a ? g.lda : 1) : (g.trans_b ? 1 : g.ldb);
  const std::int64_t incy = row ? 1 : g.ldc;
  // A quarter of a GEMM's least work per thread: a matrix-vector product streams its matrix, and two
  // cores read it faster (batch-1 mlp: the 784x500 layer split in two).
  const auto grain_for = [](std::int64_t rows_read) {
    return std::max<std::int64_t>(kBlock, kMinMacsPerThread / 4 / std::max<std::int64_t>(rows_read, 1));
  };
  const std::int64_t grain = grain_for(g.k);
#if SYNAPSE_AVX2
  if (!by_rows && incx == 1 && incy == 1) {
    // x is read one float per matrix row, a new cache line every 16 rows: at batch 1 it is a fresh
    // input (an image from L3 or memory) and each line's miss stalled the FMAs that broadcast it
    // (measured: the 784x10 softmax layer spent most of its time waiting on them). Requesting all of
    // its lines up front lets the misses overlap.
    for (std::int64_t p = 0; p < g.k; p += 16) _mm_prefetch(reinterpret_cast<const char*>(x + p), _MM_HINT_T0);
#if SYNAPSE_AVX512
    if (len < 16 && ld == len) {  // narrow, stored without gaps: read flat, on this thread (one vector of outputs)
      gemv_narrow(mat, x, g.k, g.c, len, g.alpha, g.beta);
      return;
    }
#endif
    // Rows whose x value is zero add nothing (0 * w), so when x is mostly zeros only the others are
    // read: 81% of an MNIST image's pixels are 0, and about half of a relu layer's outputs (measured,
    // batch-1 mlp inference: 74-79k -> 141-188k images/s). The one difference from the full product:
    // an Inf or NaN weight in a skipped row does not turn its output into NaN (0 * Inf is NaN); a NaN
    // or Inf in x is listed and reaches every output as before.
    struct Listed {
      std::vector<std::int32_t> rows;
      std::vector<float> values;
    };
    thread_local Listed listed;
    std::int64_t nonzeros = g.k;
    if (len >= kListMinColumns) {
      const auto size = static_cast<std::size_t>(g.k + 16 + kPrefetchRows);
      if (listed.rows.size() < size) {
        listed.rows.resize(size);
        listed.values.resize(size);
      }
      nonzeros = list_nonzeros(x, g.k, listed.rows.data(), listed.values.data());
      std::fill_n(listed.rows.begin() + nonzeros, kPrefetchRows, 0);  // valid rows for the prefetches
    }
    const std::int64_t rows_read = nonzeros * kListDenominator <= g.k * kListNumerator ? nonzeros : g.k;
    // Split in whole vectors of 16 outputs, so every thread's loads start on the same lanes, by the
    // multiply-adds done: the listed rows of a sparse x are little work for a fork and join (batch-1
    // mlp, ~150 of 784 rows: one thread 135-184k images/s, median 160k; split in two 73-195k, median
    // 184k but a long slow tail, mean 152k; ten alternating runs each).
    const std::int64_t vectors = (len + 15) / 16;
    const auto split = [&](const auto& r, std::int64_t rows) {
      parallel_for(0, vectors, std::max<std::int64_t>(1, grain_for(rows) / 16), [&](std::int64_t lo, std::int64_t hi) {
        const std::int64_t j0 = lo * 16, j1 = std::min(len, hi * 16);
        gemv_cols(r.columns_from(j0), rows, g.c + j0, j1 - j0, g.alpha, g.beta);
      });
    };
    if (rows_read < g.k) {
      split(ListedRows{mat, ld, listed.rows.data(), listed.values.data()}, rows_read);
      return;
    }
    split(AllRows{mat, ld, x}, g.k);
    return;
  }
  if (by_rows && incx == 1 && ::synapse::cpu::own_gemm_for_all()) {
    // Dot products of the matrix's rows with x, 8 rows at a time on small_gemm_nt's dot kernel (where
    // OpenBLAS's sgemv would run its SSE3 kernels: own_gemm_for_all()).
    parallel_for(0, len, grain, [&](std::int64_t lo, std::int64_t hi) {
      constexpr int kRows = 8;
      float dots[kRows];
      for (std::int64_t r0 = lo; r0 < hi; r0 += kRows) {
        const std::int64_t rows = std::min<std::int64_t>(kRows, hi - r0);
        if (rows == kRows) {
          nt_dot_columns<kRows>(mat + r0 * ld, ld, x, 0, g.k, dots, 1, 0, 1);
        } else {
          for (std::int64_t r = 0; r < rows; ++r) nt_dot_columns<1>(mat + (r0 + r) * ld, ld, x, 0, g.k, dots + r, 1, 0, 1);
        }
        for (std::int64_t r = 0; r < rows; ++r) {
          float& y = g.c[(r0 + r) * incy];
          y = g.alpha * dots[r] + (g.beta == 0.0f ? 0.0f : g.beta * y);
        }
      }
    });
    return;
  }
#endif
  parallel_for(0, len, grain, [&](std::int64_t lo, std::int64_t hi) {
    const std::int64_t n = hi - lo;
    on_this_thread([&] {
      if (by_rows) {  // y[lo:hi] = mat[lo:hi, :] x, mat stored [len, k]
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(g.k), g.alpha,
                    mat + lo * ld, static_cast<blasint>(ld), x, static_cast<blasint>(incx), g.beta, g.c + lo * incy,
                    static_cast<blasint>(incy));
      } else {  // y[lo:hi] = mat[:, lo:hi]^T x, mat stored [k, len]
        cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<blasint>(g.k), static_cast<blasint>(n), g.alpha, mat + lo,
                    static_cast<blasint>(ld), x, static_cast<blasint>(incx), g.beta, g.c + lo * incy,
                    static_cast<blasint>(incy));
      }
    });
  });
}

#if SYNAPSE_AVX2
// Every product on our kernels (own_gemm_for_all(): OpenBLAS's kernels are narrower than ours). B not
// transposed: small_gemm's tiles, which take any m, n and k (a narrow C in masked vectors). B
// transposed: with few rows small_gemm_nt, as on the default route; otherwise B is copied to [k, n]
// first (n k floats moved for m n k multiply-adds).
void own_gemm(const GemmArgs& g) {
  if (!g.trans_b) {
    small_gemm(g);
    return;
  }
  if (!g.trans_a && g.m >= kSmallMinN && g.m <= kSmallDim && g.n >= 16 * kSmallDim) {
    small_gemm_nt(g);
    return;
  }
  thread_local std::vector<float> bt;  // kept: a training loop transposes the same shapes every step
  bt.resize(static_cast<std::size_t>(g.k * g.n));
  transpose_into(g.b, g.ldb, g.n, g.k, bt.data(), g.n);
  GemmArgs h = g;
  h.trans_b = false;
  h.b = bt.data();
  h.ldb = g.n;
  small_gemm(h);
}
#endif  // SYNAPSE_AVX2

}  // namespace

void gemm(const GemmArgs& args) {
  const GemmArgs g = with_leading_dims(args);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    scale_c(g);
    return;
  }
  use_single_threaded_blas();
  if (g.m == 1 || g.n == 1) {  // fp32 in either precision: converting the matrix would cost more than the product

    if (g.beta == 0.0f) scale_c(g);  // BLAS may read y even when beta is 0: never let NaN through
    gemv(g);
    return;
  }
  if (matmul_precision() == MatmulPrecision::bf16) {  // set only where cpu_supports_bf16()
    gemm_bf16(g);
    return;
  }
#if SYNAPSE_AVX2
  if (::synapse::cpu::own_gemm_for_all()) {
    own_gemm(g);
    return;
  }
  if (!g.trans_b && (g.m <= kSmallDim || g.k <= kSmallDim) && g.n >= kSmallMinN && g.m * g.n * g.k >= kSmallMinMacs) {
    small_gemm(g);
    return;
  }
  if (g.trans_b && !g.trans_a && g.m >= kSmallMinN && g.m <= kSmallDim && g.n >= 16 * kSmallDim &&
      g.m * g.n * g.k >= kSmallMinMacs) {
    small_gemm_nt(g);
    return;
  }
#endif
  parallel_gemm(g);
}

}  // namespace synapse::cpu::SYNAPSE_KERNEL_ISA
#include "backend/cpu/isa_end.h"

#if SYNAPSE_KERNEL_DISPATCH
namespace synapse::cpu {
SYNAPSE_ISA_VARIANTS(gemm)

void gemm(const GemmArgs& g) { SYNAPSE_DISPATCH(gemm)(g); }

// Compiled once: the reference.
void gemm_reference(const GemmArgs& args) {
  const GemmArgs g = generic::with_leading_dims(args);
  for (std::int64_t i = 0; i < g.m; ++i) {
    for (std::int64_t j = 0; j < g.n; ++j) {
      double acc = 0.0;
      for (std::int64_t p = 0; p < g.k; ++p) {
        const float av = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const float bv = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
        acc += static_cast<double>(av) * static_cast<double>(bv);
      }
      float& c = g.c[i * g.ldc + j];
      c = static_cast<float>(g.alpha * acc + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
  }
}

namespace {

// OpenBLAS's kernel families by the vectors their sgemm kernels use (OpenBLAS's driver/others/
// dynamic.c names; families not listed are older than AVX2 or not x86).
int core_level(std::string_view core) {
  for (const char* c : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    if (core == c) return static_cast<int>(Isa::avx512);
  for (const char* c : {"Haswell", "Zen"})
    if (core == c) return static_cast<int>(Isa::avx2);
  return static_cast<int>(Isa::generic);
}

int gemm_route_cache = -1;  // -1 until the first gemm_route()
int gemm_route_from_env = 0;  // 1 when the cached route came from SYNAPSE_GEMM (for gemm_report)

void store_gemm_route(GemmRoute route, bool from_env) {
  __atomic_store_n(&gemm_route_from_env, from_env ? 1 : 0, __ATOMIC_RELAXED);
  __atomic_store_n(&gemm_route_cache, static_cast<int>(route), __ATOMIC_RELAXED);
}

}  // namespace

const char* blas_core() {
  static const std::string core = [] {
    const char* c = openblas_get_corename();
    return std::string(c != nullptr ? c : "unknown");
  }();
  return core.c_str();
}

int blas_core_level() {
  static const int level = core_level(blas_core());
  return level;
}

const char* gemm_route_name(GemmRoute route) {
  switch (route) {
    case GemmRoute::blas: return "blas";
    case GemmRoute::own: return "own";
    default: return "auto";
  }
}

GemmRoute parse_gemm_route(const char* name, const char* what) {
  for (const GemmRoute r : {GemmRoute::automatic, GemmRoute::blas, GemmRoute::own})
    if (std::string_view(name) == gemm_route_name(r)) return r;
  throw Error(fmt::format("{}={}: unknown matrix-product route (expected auto, blas or own)", what, name));
}

void set_gemm_route(GemmRoute route) { store_gemm_route(route, false); }

GemmRoute gemm_route() {
  const int cached = __atomic_load_n(&gemm_route_cache, __ATOMIC_RELAXED);
  if (cached >= 0) return static_cast<GemmRoute>(cached);
  GemmRoute route = GemmRoute::automatic;
  const char* env = std::getenv("SYNAPSE_GEMM");
  const bool from_env = env != nullptr && *env != '\0';
  if (from_env) route = parse_gemm_route(env);
  store_gemm_route(route, from_env);
  return route;
}

bool own_gemm_for_all() {
#if defined(__x86_64__)
  switch (gemm_route()) {
    case GemmRoute::own: return active_isa() != Isa::generic;  // the generic path has no kernels of its own
    case GemmRoute::blas: return false;
    default: return blas_core_level() < static_cast<int>(active_isa());
  }
#else
  return false;
#endif
}

std::string gemm_report() {
  GemmRoute route = GemmRoute::automatic;
  try {
    route = gemm_route();
    (void)active_isa();
  } catch (const Error& e) {
    return fmt::format("blas: {} ({} kernels); products: none: {}\n", openblas_get_config(), blas_core(), e.what());
  }
  // Where a route other than auto came from: the environment, or a call of set_gemm_route.
  const std::string chosen = __atomic_load_n(&gemm_route_from_env, __ATOMIC_RELAXED) != 0
                                 ? fmt::format("SYNAPSE_GEMM={}", gemm_route_name(route))
                                 : fmt::format("set_gemm_route({})", gemm_route_name(route));
  std::string who;
  if (route == GemmRoute::own) {
    who = own_gemm_for_all() ? "; " + chosen + ": Synapse's kernels run every matrix product" : "";
  } else if (route == GemmRoute::blas) {
    who = "; " + chosen;
  } else if (own_gemm_for_all()) {
    who = fmt::format("; narrower than the {} path, so Synapse's kernels run every matrix product",
                      isa_name(active_isa()));
  }
  return fmt::format("blas: {} ({} kernels, {} vectors){}\n", openblas_get_config(), blas_core(),
                     isa_name(static_cast<Isa>(blas_core_level())), who);
}

}  // namespace synapse::cpu
#endif  // SYNAPSE_KERNEL_DISPATCH
