// Matrix multiplication on the CPU: the one place that calls BLAS. Every kernel that multiplies
// matrices (matmul, conv2d and its backprops, dense layers) goes through gemm() below.
//
// All matrices are row-major. With op(X) = X or X^T:
//
//   C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C[m, n]
//
// A is stored as [m, k] (or [k, m] when trans_a), with `lda` elements between consecutive rows;
// likewise B is [k, n] (or [n, k] when trans_b) with `ldb`, and C is [m, n] with `ldc`. A leading
// dimension lets a kernel multiply a sub-block of a larger row-major matrix without copying it.
// Transposes are flags, never copies: BLAS reads the operand in whichever order it is stored.
#pragma once
#include <cstdint>
#include <string>

namespace synapse::cpu {

struct GemmArgs {
  bool trans_a = false;
  bool trans_b = false;
  std::int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  std::int64_t lda = 0;  // 0: the tight value (k for A [m,k], m for A^T stored [k,m])
  const float* b = nullptr;
  std::int64_t ldb = 0;  // 0: the tight value (n for B [k,n], k for B^T stored [n,k])
  float beta = 0.0f;     // 0 overwrites C (whatever it held, NaN included)
  float* c = nullptr;
  std::int64_t ldc = 0;  // 0: n
};

// C = alpha * op(A) op(B) + beta * C: through OpenBLAS cblas_sgemm, except for the shapes where our
// own AVX-512 kernels measured faster (gemm.cpp: one row of C, the matrix-vector products of batch-1
// dense layers; few rows or a short sum with B not transposed, a dense layer's forward product and
// weight gradient), and except on a CPU whose OpenBLAS kernels are narrower than ours (GemmRoute
// below), where our kernels run every product. Handles the empty cases BLAS rejects (m, n or k == 0). Extents must fit in a 32-bit int (BLAS's index type): callers validate
// shapes first, this function never throws.
//
// Threads: a large product is split into blocks of rows (or columns) of C over the OpenMP threads of
// parallel_for, each block one single-threaded sgemm. OpenBLAS's own thread pool is switched off
// (openblas_set_num_threads(1)) on the first call, so the process has one pool of threads rather than
// two that spin against each other; set_num_threads() therefore governs GEMMs too. Safe to call from
// inside a parallel region (it then runs on the calling thread).
void gemm(const GemmArgs& g);

// The same contract, computed with a naive triple loop (double accumulation): the reference that
// tests compare the fast kernels against.
void gemm_reference(const GemmArgs& g);

// Which kernels run the fp32 products that Synapse's own kernels are not specialised for (many rows,
// a long sum, B transposed with many rows). OpenBLAS picks its kernels from the CPU model when it
// loads, and a CPU newer than the OpenBLAS build gets its oldest x86-64 kernels: Debian 12's OpenBLAS
// 0.3.21 runs SSE3 "Prescott" kernels on an Intel Xeon of 2023 (Emerald Rapids), measured 16-42 GFLOP/s
// on a 1024^3 product where Synapse's AVX-512 kernel ran 112-226. So by default (automatic) gemm() uses
// OpenBLAS only where its kernels are at least as wide as the active kernel path (isa.h), and its own
// kernels for every product otherwise. SYNAPSE_GEMM=auto|blas|own (environment) or set_gemm_route()
// chooses.
enum class GemmRoute : int { automatic = 0, blas = 1, own = 2 };
// The route in use: SYNAPSE_GEMM on the first call (throws synapse::Error naming an unknown value), or
// the last set_gemm_route().
GemmRoute gemm_route();
void set_gemm_route(GemmRoute route);  // tests and benchmarks; not while products run on other threads
GemmRoute parse_gemm_route(const char* name, const char* what = "SYNAPSE_GEMM");
const char* gemm_route_name(GemmRoute route);  // "auto", "blas", "own"
// OpenBLAS's kernel family for this CPU ("SkylakeX", "Haswell", "Prescott", ...) and the kernel path
// its vectors correspond to (AVX-512 families: avx512; AVX2 families: avx2; the rest: generic).
const char* blas_core();
int blas_core_level();  // 0 generic, 1 avx2, 2 avx512 (isa.h's Isa values)
// Does gemm() run every product on Synapse's kernels under the active kernel path and route?
bool own_gemm_for_all();
// One line for `synapse --version`: the BLAS, its kernels, and who runs the products.
std::string gemm_report();

// Largest extent gemm() accepts (BLAS indexes with int).
inline constexpr std::int64_t kMaxGemmExtent = 2147483647;

}  // namespace synapse::cpu
