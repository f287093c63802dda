// Convolutions in bf16 (device.h: MatmulPrecision::bf16) without im2col: implicit-GEMM kernels on
// AVX512-BF16's vdpbf16ps (conv_bf16.cpp), bf16 operands, fp32 accumulation, fp32 outputs.
//
// - forward: the input is converted once per call into a zero-padded bf16 copy [N, PH, PW, C2] (C2 = C
//   rounded up to even, the extra channel zero), read in place: with dilation 1 the KW*C2 patch values
//   of filter row ky for output pixel (n, oy, ox) are contiguous there, and as 32-bit words they are the
//   k-pairs vdpbf16ps multiplies. The filter is packed once per call into panels of 64 output channels
//   [KH][KW*C2/2][64] words (pair (c, c+1) of one tap in a word). Register tiles of R pixels x V vectors
//   of 16 output channels, bias and relu applied on the way out. Any stride.
// - input gradient (stride 1): the transposed convolution is a stride-1 convolution of the padded dy
//   with the flipped, channel-swapped filter (conv.h: transposed_conv_geometry): the forward kernel.
// - filter gradient: dw^T [O, K] = dy^T [O, P] x patches [P, K], summed over pixel pairs (vdpbf16ps
//   pairs along the pixels): per chunk of 128 pixels, dy^T is packed as pairs of pixels and the patch
//   rows of the padded bf16 input as 64-column panels of pixel pairs; threads keep partial dw^T and the
//   end adds them and transposes.
//
// Called by conv.cpp's kernels when the precision is bf16 (set only where cpu_supports_bf16()); each
// *_supported says whether the geometry is one these kernels handle (else im2col + gemm_bf16).
#pragma once
#include "backend/cpu/conv.h"

namespace synapse::cpu {

bool conv2d_bf16_forward_supported(const Conv2DGeometry& g);
bool conv2d_bf16_backprop_input_supported(const Conv2DGeometry& g);
bool conv2d_bf16_backprop_filter_supported(const Conv2DGeometry& g);
void conv2d_bf16_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y, bool relu);
void conv2d_bf16_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx);
void conv2d_bf16_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

}  // namespace synapse::cpu
