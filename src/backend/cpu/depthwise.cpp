// Depthwise convolution kernels (see depthwise.h).
#include "backend/cpu/depthwise.h"

#include <algorithm>
#include <cstring>

#include "core/parallel.h"

namespace synapse::cpu {
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

}  // namespace

void depthwise_conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  const std::int64_t cm = g.c * g.o;
  const std::int64_t rows = g.n * g.oh;
  const std::int64_t macs_per_row = g.ow * g.kh * g.kw * cm;
  parallel_for(0, rows, std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(1, macs_per_row)),
               [&](std::int64_t r0, std::int64_t r1) {
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t n = r / g.oh, oy = r % g.oh;
                   for (std::int64_t ox = 0; ox < g.ow; ++ox) {
                     float* acc = y + (r * g.ow + ox) * cm;
                     if (bias)
                       std::memcpy(acc, bias, static_cast<std::size_t>(cm) * sizeof(float));
                     else
                       std::fill(acc, acc + cm, 0.0f);
                     for (std::int64_t ky = 0; ky < g.kh; ++ky) {
                       const std::int64_t iy = in_pos(oy, ky, g.stride_h, g.dilation_h, g.pad_top);
                       if (iy < 0 || iy >= g.h) continue;
                       for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                         const std::int64_t ix = in_pos(ox, kx, g.stride_w, g.dilation_w, g.pad_left);
                         if (ix < 0 || ix >= g.w) continue;
                         tap(x + ((n * g.h + iy) * g.w + ix) * g.c, w + (ky * g.kw + kx) * cm, acc, g.c, g.o);
                       }
                     }
                   }
                 }
               });
}

void depthwise_conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  // Gathered per input pixel (no two threads write one element): dx[n, iy, ix, c] sums
  // dy[n, oy, ox, c*M + m] * w[ky, kx, c, m] over the taps whose output position is whole and in range.
  const std::int64_t cm = g.c * g.o;
  const std::int64_t rows = g.n * g.h;
  const std::int64_t macs_per_row = g.w * g.kh * g.kw * cm;
  parallel_for(0, rows, std::max<std::int64_t>(1, kMinMacsPerThread / std::max<std::int64_t>(1, macs_per_row)),
               [&](std::int64_t r0, std::int64_t r1) {
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t n = r / g.h, iy = r % g.h;
                   for (std::int64_t ix = 0; ix < g.w; ++ix) {
                     float* __restrict out = dx + (r * g.w + ix) * g.c;
                     std::fill(out, out + g.c, 0.0f);
                     for (std::int64_t ky = 0; ky < g.kh; ++ky) {
                       const std::int64_t ty = iy + g.pad_top - ky * g.dilation_h;
                       if (ty < 0 || ty % g.stride_h) continue;
                       const std::int64_t oy = ty / g.stride_h;
                       if (oy >= g.oh) continue;
                       for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                         const std::int64_t tx = ix + g.pad_left - kx * g.dilation_w;
                         if (tx < 0 || tx % g.stride_w) continue;
                         const std::int64_t ox = tx / g.stride_w;
                         if (ox >= g.ow) continue;
                         const float* __restrict d = dy + ((n * g.oh + oy) * g.ow + ox) * cm;
                         const float* __restrict wk = w + (ky * g.kw + kx) * cm;
                         if (g.o == 1) {
                           for (std::int64_t c = 0; c < g.c; ++c) out[c] += d[c] * wk[c];
                         } else {
                           for (std::int64_t c = 0; c < g.c; ++c)
                             for (std::int64_t m = 0; m < g.o; ++m) out[c] += d[c * g.o + m] * wk[c * g.o + m];
                         }
                       }
                     }
                   }
                 }
               });
}

void depthwise_conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
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
