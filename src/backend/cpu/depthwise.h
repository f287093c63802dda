// Depthwise 2-D convolution kernels, NHWC input and filter [KH, KW, C, M] (TensorFlow's layout):
//
//   y[n, oy, ox, c*M + m] = sum_{ky,kx} x[n, oy*sh - pad_top + ky*dh, ox*sw - pad_left + kx*dw, c] * w[ky, kx, c, m]
//                           (+ bias[c*M + m])
//
// Each input channel is convolved with its own M filters (the depth multiplier), no sum over channels.
// The geometry is conv's (Conv2DGeometry with o = M: the output has c*o channels). In NHWC the fast
// kernels' innermost loops run over the C*M contiguous channels of one pixel, which vectorise; the
// forward and input backprop run in parallel over output (input) rows, the filter backprop over the
// filter taps. Every function trusts its geometry (validated by the op's shape rule) and never throws.
// Compiled once per kernel path (kernel_isa.h): the generic path runs plain loops for any depth
// multiplier; the AVX2 and AVX-512 paths have register-blocked kernels for depth multiplier 1 (any
// KH x KW up to 64 taps, any stride, dilation and padding) and the plain loops otherwise.
#pragma once
#include "backend/cpu/conv.h"

namespace synapse::cpu {

void depthwise_conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y);
// dx [N, H, W, C] from dy [N, OH, OW, C*M]; overwritten.
void depthwise_conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx);
// dw [KH, KW, C, M] from x and dy; overwritten.
void depthwise_conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

// Naive per-element loops with the same contracts, for tests.
void depthwise_conv2d_forward_reference(const Conv2DGeometry& g, const float* x, const float* w, const float* bias,
                                        float* y);
void depthwise_conv2d_backprop_input_reference(const Conv2DGeometry& g, const float* dy, const float* w, float* dx);
void depthwise_conv2d_backprop_filter_reference(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

}  // namespace synapse::cpu
