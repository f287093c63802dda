// Depthwise convolution kernels (see depthwise.h), compiled once per instruction set (kernel_isa.h).
// The plain loops (any depth multiplier; the generic path's kernels) accumulate into the output
// pixel in memory, one tap at a time. With AVX2 / AVX-512 and depth multiplier 1 (MobileNet's case),
// each output pixel's taps are listed once and its channels run on the vector lanes, up to four
// vectors (independent FMA chains) at a time in registers.
#include "backend/cpu/depthwise.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"

#include "backend/cpu/isa_begin.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu::SYNAPSE_KERNEL_ISA {
namespace {

// The input row/column an output position reads for filter tap k; may fall in the padding.
inline std::int64_t in_pos(std::int64_t o, std::int64_t k, std::int64_t stride, std::int64_t dilation,
                           std::int64_t pad) {
  return o * stride - pad + k * dilation;
}

// acc[c*M + m] += x[c] * w[c*M + m] over one pixel's channels: the vectorised inner loop.
inline void tap(const float* __restrict x, const float* __restrict w, float* __restrict acc, std::int64_t c,
                std::int64_t m) {
  if (m == 1) {
    for (std::int64_t i = 0; i < c; ++i) acc[i] += x[i] * w[i];
  } else {
    for (std::int64_t i = 0; i < c; ++i)
      for (std::int64_t j = 0; j < m; ++j) acc[i * m + j] += x[i] * w[i * m + j];
  }
}

// The taps of one pixel: the other tensor's pixel (index in its image) and the filter tap (ky * KW + kx).
struct Taps {
  explicit Taps(const Conv2DGeometry& g)
      : src(static_cast<std::size_t>(g.kh * g.kw)), wt(static_cast<std::size_t>(g.kh * g.kw)) {}
  std::vector<std::int64_t> src, wt;
  int n = 0;
  void add(std::int64_t pixel, std::int64_t tap) {
    src[static_cast<std::size_t>(n)] = pixel;
    wt[static_cast<std::size_t>(n++)] = tap;
  }
};

// The forward pass's taps of output pixel (oy, ox): the input pixels in range.
void forward_taps(const Conv2DGeometry& g, Taps& t, std::int64_t oy, std::int64_t ox) {
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    const std::int64_t iy = in_pos(oy, ky, g.stride_h, g.dilation_h, g.pad_top);
    if (iy < 0 || iy >= g.h) continue;
    for (std::int64_t kx = 0; kx < g.kw; ++kx) {
      const std::int64_t ix = in_pos(ox, kx, g.stride_w, g.dilation_w, g.pad_left);
      if (ix >= 0 && ix < g.w) t.add(iy * g.w + ix, ky * g.kw + kx);
    }
  }
}

// The input gradient's taps of input pixel (iy, ix): the output pixels whose position is whole and in range.
void input_taps(const Conv2DGeometry& g, Taps& t, std::int64_t iy, std::int64_t ix) {
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    const std::int64_t ty = iy + g.pad_top - ky * g.dilation_h;
    if (ty < 0 || ty % g.stride_h) continue;
    const std::int64_t oy = ty / g.stride_h;
    if (oy >= g.oh) continue;
    for (std::int64_t kx = 0; kx < g.kw; ++kx) {
      const std::int64_t tx = ix + g.pad_left - kx * g.dilation_w;
      if (tx < 0 || tx % g.stride_w) continue;
      const std::int64_t ox = tx / g.stride_w;
      if (ox < g.ow) t.add(oy * g.ow + ox, ky * g.kw + kx);
    }
  }
}

// For each pixel (n, y, x) of a [N, height, width, *] output, in parallel over its rows (no two threads
// write one pixel): list(t, y, x) lists its taps, then write(t, n, pixel index n * height * width + ...).
template <class List, class Write>
void over_pixels(const Conv2DGeometry& g, std::int64_t height, std::int64_t width, List&& list, Write&& write) {
  const std::int64_t macs_per_row = width * g.kh * g.kw * g.c * g.o;
  parallel_for(0, g.n * height, std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(1, macs_per_row)),
               [&](std::int64_t r0, std::int64_t r1) {
                 Taps t(g);
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t n = r / height, y = r % height;
                   for (std::int64_t x = 0; x < width; ++x) {
                     t.n = 0;
                     list(g, t, y, x);
                     write(t, n, r * width + x);
                   }
                 }
               });
}

// ---- the plain kernels (any depth multiplier): each tap's products added to the pixel in memory ----

void plain_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  const std::int64_t cm = g.c * g.o;
  over_pixels(g, g.oh, g.ow, forward_taps, [&](const Taps& t, std::int64_t n, std::int64_t p) {
    float* acc = y + p * cm;
    if (bias)
      std::memcpy(acc, bias, static_cast<std::size_t>(cm) * sizeof(float));
    else
      std::fill(acc, acc + cm, 0.0f);
    const float* image = x + n * g.h * g.w * g.c;
    for (int k = 0; k < t.n; ++k) tap(image + t.src[k] * g.c, w + t.wt[k] * cm, acc, g.c, g.o);
  });
}

void plain_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  // dx[n, iy, ix, c] sums dy[n, oy, ox, c*M + m] * w[ky, kx, c, m] over the pixel's taps.
  const std::int64_t cm = g.c * g.o;
  over_pixels(g, g.h, g.w, input_taps, [&](const Taps& t, std::int64_t n, std::int64_t p) {
    float* __restrict out = dx + p * g.c;
    std::fill(out, out + g.c, 0.0f);
    const float* image = dy + n * g.oh * g.ow * cm;
    for (int k = 0; k < t.n; ++k) {
      const float* __restrict d = image + t.src[k] * cm;
      const float* __restrict wk = w + t.wt[k] * cm;
      if (g.o == 1) {
        for (std::int64_t c = 0; c < g.c; ++c) out[c] += d[c] * wk[c];
      } else {
        for (std::int64_t c = 0; c < g.c; ++c)
          for (std::int64_t m = 0; m < g.o; ++m) out[c] += d[c * g.o + m] * wk[c * g.o + m];
      }
    }
  });
}

void plain_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  // One filter tap per task: dw[ky, kx, :] = sum over output pixels of x[tap pixel, c] * dy[pixel, c*M + m].
  const std::int64_t cm = g.c * g.o;
  const std::int64_t taps = g.kh * g.kw;
  parallel_for(0, taps, 1, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t ky = t / g.kw, kx = t % g.kw;
      float* acc = dw + t * cm;
      std::fill(acc, acc + cm, 0.0f);
      for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          const std::int64_t iy = in_pos(oy, ky, g.stride_h, g.dilation_h, g.pad_top);
          if (iy < 0 || iy >= g.h) continue;
          for (std::int64_t ox = 0; ox < g.ow; ++ox) {
            const std::int64_t ix = in_pos(ox, kx, g.stride_w, g.dilation_w, g.pad_left);
            if (ix < 0 || ix >= g.w) continue;
            // acc[c*M + m] += x[c] * dy[c*M + m]: the same tap loop with dy in the filter's place.
            tap(x + ((n * g.h + iy) * g.w + ix) * g.c, dy + ((n * g.oh + oy) * g.ow + ox) * cm, acc, g.c, g.o);
          }
        }
    }
  });
}

#if SYNAPSE_AVX2
// ---- depth multiplier 1, channels on the vector lanes ----

// out[0, C) = init[0, C) (zeros when null) + sum over k < count of a(k)[c] * b(k)[c], the channels in
// vectors of kLanes, up to four vectors at a time (four independent FMA chains), the last one masked.
template <class A, class B>
inline void sum_of_products(std::int64_t count, A a, B b, const float* init, float* out, std::int64_t c) {
  std::int64_t cb = 0;
  for (; cb + 4 * kLanes <= c; cb += 4 * kLanes) {
    vf a0 = init ? vload(init + cb) : vzero(), a1 = init ? vload(init + cb + kLanes) : vzero();
    vf a2 = init ? vload(init + cb + 2 * kLanes) : vzero(), a3 = init ? vload(init + cb + 3 * kLanes) : vzero();
    for (std::int64_t k = 0; k < count; ++k) {
      const float* s = a(k) + cb;
      const float* f = b(k) + cb;
      a0 = vfma(vload(s), vload(f), a0);
      a1 = vfma(vload(s + kLanes), vload(f + kLanes), a1);
      a2 = vfma(vload(s + 2 * kLanes), vload(f + 2 * kLanes), a2);
      a3 = vfma(vload(s + 3 * kLanes), vload(f + 3 * kLanes), a3);
    }
    vstore(out + cb, a0);
    vstore(out + cb + kLanes, a1);
    vstore(out + cb + 2 * kLanes, a2);
    vstore(out + cb + 3 * kLanes, a3);
  }
  for (; cb + kLanes <= c; cb += kLanes) {
    vf acc = init ? vload(init + cb) : vzero();
    for (std::int64_t k = 0; k < count; ++k) acc = vfma(vload(a(k) + cb), vload(b(k) + cb), acc);
    vstore(out + cb, acc);
  }
  if (cb < c) {  // the last channels, masked
    const vmask m = vmask_first(c - cb);
    vf acc = init ? vload(init + cb, m) : vzero();
    for (std::int64_t k = 0; k < count; ++k) acc = vfma(vload(a(k) + cb, m), vload(b(k) + cb, m), acc);
    vstore(out + cb, acc, m);
  }
}

// One pixel of the forward pass or the input gradient: out = (bias or 0) + sum over the taps of
// src[tap pixel] * w[tap].
inline void pixel(const Taps& t, const float* src, const float* w, const float* bias, float* out, std::int64_t c) {
  sum_of_products(
      t.n, [&](std::int64_t k) { return src + t.src[static_cast<std::size_t>(k)] * c; },
      [&](std::int64_t k) { return w + t.wt[static_cast<std::size_t>(k)] * c; }, bias, out, c);
}

void fast_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  over_pixels(g, g.oh, g.ow, forward_taps, [&](const Taps& t, std::int64_t n, std::int64_t p) {
    pixel(t, x + n * g.h * g.w * g.c, w, bias, y + p * g.c, g.c);
  });
}

void fast_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  over_pixels(g, g.h, g.w, input_taps, [&](const Taps& t, std::int64_t n, std::int64_t p) {
    pixel(t, dy + n * g.oh * g.ow * g.c, w, nullptr, dx + p * g.c, g.c);
  });
}

void fast_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  // One filter tap per task; within it, one output row at a time: the columns whose tap pixel is in
  // range are a contiguous run [ox0, ox1), whose products are summed in registers.
  const std::int64_t c = g.c, taps = g.kh * g.kw;
  parallel_for(0, taps, 1, [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t ky = t / g.kw, kx = t % g.kw;
      float* acc = dw + t * c;
      std::fill(acc, acc + c, 0.0f);
      // ix = ox * sw - pad_left + kx * dw in [0, W): ox in [ox0, ox1).
      const std::int64_t base = kx * g.dilation_w - g.pad_left;
      const std::int64_t ox0 = std::min(g.ow, base >= 0 ? 0 : (-base + g.stride_w - 1) / g.stride_w);
      const std::int64_t ox1 = std::max(ox0, std::min(g.ow, base >= g.w ? 0 : (g.w - 1 - base) / g.stride_w + 1));
      if (ox1 <= ox0) continue;
      for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          const std::int64_t iy = in_pos(oy, ky, g.stride_h, g.dilation_h, g.pad_top);
          if (iy < 0 || iy >= g.h) continue;
          // acc += sum over the run of x[tap pixel] * dy[output pixel], summed in registers.
          const float* xs = x + ((n * g.h + iy) * g.w + ox0 * g.stride_w + base) * c;
          const float* ds = dy + ((n * g.oh + oy) * g.ow + ox0) * c;
          const std::int64_t x_step = g.stride_w * c;
          sum_of_products(
              ox1 - ox0, [&](std::int64_t k) { return xs + k * x_step; }, [&](std::int64_t k) { return ds + k * c; },
              acc, acc, c);
        }
    }
  });
}

bool fast_path(const Conv2DGeometry& g) { return g.o == 1; }
#endif

}  // namespace

void depthwise_conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y) {
#if SYNAPSE_AVX2
  if (fast_path(g)) return fast_forward(g, x, w, bias, y);
#endif
  plain_forward(g, x, w, bias, y);
}

void depthwise_conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
#if SYNAPSE_AVX2
  if (fast_path(g)) return fast_backprop_input(g, dy, w, dx);
#endif
  plain_backprop_input(g, dy, w, dx);
}

void depthwise_conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
#if SYNAPSE_AVX2
  if (fast_path(g)) return fast_backprop_filter(g, x, dy, dw);
#endif
  plain_backprop_filter(g, x, dy, dw);
}

}  // namespace synapse::cpu::SYNAPSE_KERNEL_ISA
#include "backend/cpu/isa_end.h"

#if SYNAPSE_KERNEL_DISPATCH
namespace synapse::cpu {
SYNAPSE_ISA_VARIANTS(depthwise_conv2d_forward)
SYNAPSE_ISA_VARIANTS(depthwise_conv2d_backprop_input)
SYNAPSE_ISA_VARIANTS(depthwise_conv2d_backprop_filter)

void depthwise_conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  SYNAPSE_DISPATCH(depthwise_conv2d_forward)(g, x, w, bias, y);
}
void depthwise_conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  SYNAPSE_DISPATCH(depthwise_conv2d_backprop_input)(g, dy, w, dx);
}
void depthwise_conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  SYNAPSE_DISPATCH(depthwise_conv2d_backprop_filter)(g, x, dy, dw);
}

// ---- references: one output element at a time, straight from the definition ----

namespace {
// x at (n, iy, ix, c), or 0 in the padding.
float at(const Conv2DGeometry& g, const float* x, std::int64_t n, std::int64_t iy, std::int64_t ix, std::int64_t c) {
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return 0.0f;
  return x[((n * g.h + iy) * g.w + ix) * g.c + c];
}
}  // namespace

void depthwise_conv2d_forward_reference(const Conv2DGeometry& g, const float* x, const float* w, const float* bias,
                                        float* y) {
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t c = 0; c < g.c; ++c)
          for (std::int64_t m = 0; m < g.o; ++m) {
            double s = bias ? bias[c * g.o + m] : 0.0;
            for (std::int64_t ky = 0; ky < g.kh; ++ky)
              for (std::int64_t kx = 0; kx < g.kw; ++kx)
                s += static_cast<double>(at(g, x, n, oy * g.stride_h - g.pad_top + ky * g.dilation_h,
                                            ox * g.stride_w - g.pad_left + kx * g.dilation_w, c)) *
                     w[((ky * g.kw + kx) * g.c + c) * g.o + m];
            y[((n * g.oh + oy) * g.ow + ox) * g.c * g.o + c * g.o + m] = static_cast<float>(s);
          }
}

void depthwise_conv2d_backprop_input_reference(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  std::fill(dx, dx + g.n * g.h * g.w * g.c, 0.0f);
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t c = 0; c < g.c; ++c)
          for (std::int64_t m = 0; m < g.o; ++m)
            for (std::int64_t ky = 0; ky < g.kh; ++ky)
              for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                const std::int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
                const std::int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                dx[((n * g.h + iy) * g.w + ix) * g.c + c] +=
                    dy[((n * g.oh + oy) * g.ow + ox) * g.c * g.o + c * g.o + m] * w[((ky * g.kw + kx) * g.c + c) * g.o + m];
              }
}

void depthwise_conv2d_backprop_filter_reference(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  for (std::int64_t ky = 0; ky < g.kh; ++ky)
    for (std::int64_t kx = 0; kx < g.kw; ++kx)
      for (std::int64_t c = 0; c < g.c; ++c)
        for (std::int64_t m = 0; m < g.o; ++m) {
          double s = 0.0;
          for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t oy = 0; oy < g.oh; ++oy)
              for (std::int64_t ox = 0; ox < g.ow; ++ox)
                s += static_cast<double>(at(g, x, n, oy * g.stride_h - g.pad_top + ky * g.dilation_h,
                                            ox * g.stride_w - g.pad_left + kx * g.dilation_w, c)) *
                     dy[((n * g.oh + oy) * g.ow + ox) * g.c * g.o + c * g.o + m];
          dw[((ky * g.kw + kx) * g.c + c) * g.o + m] = static_cast<float>(s);
        }
}

}  // namespace synapse::cpu
#endif
