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
// weight gradient). Handles the empty cases BLAS rejects (m, n or k == 0). Extents must fit in a 32-bit int (BLAS's index type): callers validate
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

// Largest extent gemm() accepts (BLAS indexes with int).
inline constexpr std::int64_t kMaxGemmExtent = 2147483647;

}  // namespace synapse::cpu
