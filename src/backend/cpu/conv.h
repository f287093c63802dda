// 2-D convolution kernels, NHWC input and HWIO filter (TensorFlow's layout).
//
//   x [N, H, W, C] * w [KH, KW, C, O] (+ bias [O]) -> y [N, OH, OW, O]
//
// Fast path = im2col + one GEMM. In NHWC the patch of an output pixel (n, oy, ox) is KH*KW runs of C
// contiguous floats, and the HWIO filter is already the row-major matrix [KH*KW*C, O], so
//
//   col [N*OH*OW, KH*KW*C]  x  w [KH*KW*C, O]  =  y [N*OH*OW, O]   (the NHWC output, no reordering)
//
// The backprops are the two other products of the same matrices:
//   input:  dcol = dy [rows, O] x w^T [O, K], then col2im adds dcol back onto dx [N, H, W, C]
//   filter: dw [K, O] = col^T [K, rows] x dy [rows, O]
// A 1x1, stride-1, unpadded conv needs no im2col at all: x itself is the column matrix [N*H*W, C].
// Other stride-1 convs with enough channels skip im2col too: implicit-GEMM kernels (conv_implicit.cpp)
// read the column matrix in place from a zero-padded copy of the input.
//
// Threads: each kernel is one parallel region in which every thread takes its own blocks of output
// rows (whole images for the input backprop, whose col2im scatters across neighbouring rows) and, block
// by block, builds the columns in its own workspace and multiplies them with a single-threaded GEMM:
// the column block never leaves the thread's cache, and there is no barrier between im2col and GEMM.
// The filter backprop sums per-thread partials at the end. Blocks hold about kBlockFloats floats of
// columns; small convolutions (batch-1 inference) stay on one thread. Every function here trusts its geometry (validated by the
// op's shape rule) and never throws.
#pragma once
#include <cstdint>

namespace synapse::cpu {

struct Conv2DGeometry {
  std::int64_t n = 0, h = 0, w = 0, c = 0;  // input [N, H, W, C]
  std::int64_t kh = 0, kw = 0, o = 0;       // filter [KH, KW, C, O]
  std::int64_t oh = 0, ow = 0;              // output [N, OH, OW, O]
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t pad_top = 0, pad_left = 0;   // zeros before the first row / column (the rest go after)

  std::int64_t patch() const { return kh * kw * c; }  // K: one row of the column matrix
  std::int64_t rows() const { return n * oh * ow; }   // M: one row per output pixel
  // A 1x1 stride-1 unpadded conv: the input is already the column matrix.
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 && oh == h && ow == w;
  }
};

// Floats of column matrix per block (512 KiB): within a core's L2 cache, and still enough rows for an
// efficient GEMM. A block always holds at least one row, so a huge patch may exceed it.
inline constexpr std::int64_t kBlockFloats = std::int64_t{1} << 17;

// y = conv(x, w) (+ bias when non-null), then max(y, 0) when `relu`: applied to each block of output
// rows while it is still in cache, not as a pass of its own.
void conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    bool relu = false);
// dx = d conv / dx applied to dy (the transposed convolution); dx is overwritten.
void conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx);
// dw = d conv / dw applied to dy; dw is overwritten.
void conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

// Direct kernels for single-channel inputs (conv_direct.cpp); the two above use them when supported.
bool conv2d_direct_supported(const Conv2DGeometry& g);
void conv2d_direct_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                           bool relu = false);
void conv2d_direct_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

// Implicit-GEMM kernels for stride-1, undilated convolutions (conv_implicit.cpp): read a zero-padded
// copy of the input in place of im2col's column matrix. The three above use them when supported and
// measured faster than im2col + GEMM.
bool conv2d_implicit_forward_supported(const Conv2DGeometry& g);
bool conv2d_implicit_backprop_input_supported(const Conv2DGeometry& g);
bool conv2d_implicit_backprop_filter_supported(const Conv2DGeometry& g);
void conv2d_implicit_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                             bool relu = false);
void conv2d_implicit_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx);
void conv2d_implicit_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

// Calls f(x_index, w_index, y_index) for every product term of the convolution, in a fixed order (the
// reference kernels; tests build other references on it).
template <class F> void for_each_conv_term(const Conv2DGeometry& g, F&& f) {
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t ky = 0; ky < g.kh; ++ky)
          for (std::int64_t kx = 0; kx < g.kw; ++kx) {
            const std::int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
            const std::int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            for (std::int64_t c = 0; c < g.c; ++c)
              for (std::int64_t o = 0; o < g.o; ++o)
                f(((n * g.h + iy) * g.w + ix) * g.c + c, ((ky * g.kw + kx) * g.c + c) * g.o + o,
                  ((n * g.oh + oy) * g.ow + ox) * g.o + o);
          }
}

// Output pixel p = (n, oy, ox) of a geometry, stepped along without divisions (the implicit-GEMM kernels).
struct PixelIter {
  std::int64_t n, oy, ox;
  PixelIter(const Conv2DGeometry& g, std::int64_t p) : n(p / (g.oh * g.ow)), oy((p / g.ow) % g.oh), ox(p % g.ow) {}
  void next(const Conv2DGeometry& g) {
    if (++ox == g.ow) {
      ox = 0;
      if (++oy == g.oh) {
        oy = 0;
        ++n;
      }
    }
  }
};

// The input gradient of a stride-1, undilated convolution whose padding before is at most KH-1 / KW-1
// is itself a stride-1 convolution (conv_implicit.cpp, conv_bf16.cpp): dx = conv(dy, wf) with this
// geometry (input dy [N, OH, OW, O], KH-1-pad_top / KW-1-pad_left zeros before, output [N, H, W, C])
// and the flipped, channel-swapped filter wf [KH, KW, O, C] = w[KH-1-ky][KW-1-kx] transposed.
inline Conv2DGeometry transposed_conv_geometry(const Conv2DGeometry& g) {
  Conv2DGeometry t = g;
  t.h = g.oh;
  t.w = g.ow;
  t.c = g.o;
  t.o = g.c;
  t.oh = g.h;
  t.ow = g.w;
  t.pad_top = g.kh - 1 - g.pad_top;
  t.pad_left = g.kw - 1 - g.pad_left;
  return t;
}
inline void flip_filter(const Conv2DGeometry& g, const float* w, float* wf) {
  const std::int64_t KH = g.kh, KW = g.kw, C = g.c, O = g.o;
  for (std::int64_t ky = 0; ky < KH; ++ky)
    for (std::int64_t kx = 0; kx < KW; ++kx) {
      const float* src = w + ((KH - 1 - ky) * KW + (KW - 1 - kx)) * C * O;  // [C, O]
      float* dst = wf + (ky * KW + kx) * O * C;                             // [O, C]
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t o = 0; o < O; ++o) dst[o * C + c] = src[c * O + o];
    }
}

// Naive direct loops with the same contracts, for tests.
void conv2d_forward_reference(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                              bool relu = false);
void conv2d_backprop_input_reference(const Conv2DGeometry& g, const float* dy, const float* w, float* dx);
void conv2d_backprop_filter_reference(const Conv2DGeometry& g, const float* x, const float* dy, float* dw);

}  // namespace synapse::cpu
