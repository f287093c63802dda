// gemm() in bf16 (device.h: MatmulPrecision::bf16): both operands rounded to bfloat16 (round to nearest
// even), multiplied with fp32 accumulation by AVX512-BF16's vdpbf16ps, C = alpha * sum + beta * C in
// fp32. gemm() calls gemm_bf16 when the calling thread's precision is bf16 and C has at least two rows
// and two columns (matrix-vector products stay fp32: converting the matrix would cost more than the
// product); the convolutions reach it through gemm() too (their im2col path; the direct single-channel
// kernels stay fp32).
//
// Each operand is converted once per product (B once per thread that needs it) into a packed panel laid
// out for vdpbf16ps, which sums pairs along k: a 32-bit word holds rows 2p (low half) and 2p + 1 (high
// half) of k.
//   A: op(A) as a row-major [m, ceil(k/2)] matrix of words (row i: its k values in order, in bf16);
//   B: op(B) in panels of 64 columns, each panel [ceil(k/2)][64] words (word (p, j): rows 2p, 2p + 1 of
//      column j), zero padding after the last pair and the last column.
// These are also AMX's layouts (TDPBF16PS reads A as rows of bf16 along k and B in the same k-pair
// interleaved "VNNI" form, 16 columns of a panel at a stride of 256 bytes), so an AMX tile kernel can
// replace the vdpbf16ps one (tile_kernel in gemm_bf16.cpp) without changing the packing.
//
// The kernels are compiled for AVX-512 + BF16 whatever the build's -march and run only where
// cpu_supports_bf16() (device.h); set_matmul_precision refuses bf16 elsewhere.
#pragma once
#include <cstdint>

#include "backend/cpu/gemm.h"

namespace synapse::cpu {

// Columns of a packed B panel.
inline constexpr std::int64_t kBf16PanelCols = 64;

// C = alpha * op(A) op(B) + beta * C in bf16, g's leading dims filled in, m, n, k > 0. Threads: C split
// in blocks of rows (or of panels, when it is wider than tall) like gemm(); each thread packs its rows
// of A once, then packs each k block of a B panel into its cache and runs all its row tiles over it.
void gemm_bf16(const GemmArgs& g);

// x rounded to the nearest bfloat16 as the hardware does (vcvtneps2bf16: round to nearest even, NaN kept
// quiet), returned as the float of that value.
float round_to_bf16(float x);

// gemm_reference with both operands rounded by round_to_bf16 (double accumulation): what gemm_bf16
// computes up to the rounding of its fp32 sums.
void gemm_bf16_reference(const GemmArgs& g);

}  // namespace synapse::cpu
