// Direct convolution for single-channel inputs (the first layer of an image model: MNIST's 1 channel),
// with AVX-512. im2col would copy every input pixel KH*KW times into a column matrix only KH*KW wide
// and multiply it with a GEMM whose output has just O (6 for LeNet-5) columns: measured on LeNet-5,
// conv1's im2col and its narrow GEMMs were about a fifth of a training step. Here each output pixel is
// KH*KW broadcast-FMAs into O/16 vector registers, the filter gradient the same with the roles swapped
// (one register per tap and vector of O, summed over pixels in registers), reading a zero-padded copy
// of each image so the taps need no bounds checks.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/conv.h"
#include "backend/cpu/parallel.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace synapse::cpu {

bool conv2d_direct_supported(const Conv2DGeometry& g) {
#ifdef __AVX512F__
  return g.c == 1 && g.o >= 1 && g.o <= 32 && g.kh * g.kw <= 64 && g.rows() > 0;
#else
  (void)g;
  return false;
#endif
}

#ifdef __AVX512F__
namespace {

// The input extent the windows read, from the padded origin: rows [0, ph), columns [0, pw).
struct Padded {
  std::int64_t ph, pw;
};
Padded padded_extent(const Conv2DGeometry& g) {
  return {(g.oh - 1) * g.stride_h + (g.kh - 1) * g.dilation_h + 1, (g.ow - 1) * g.stride_w + (g.kw - 1) * g.dilation_w + 1};
}

// out [ph, pw] = image n with pad_top / pad_left zeros before it and zeros after (cropped to the extent).
void pad_image(const Conv2DGeometry& g, const Padded& p, const float* x, std::int64_t n, float* out) {
  std::fill(out, out + p.ph * p.pw, 0.0f);
  for (std::int64_t iy = 0; iy < g.h; ++iy) {
    const std::int64_t py = iy + g.pad_top;
    if (py < 0 || py >= p.ph) continue;
    const std::int64_t x0 = std::max<std::int64_t>(0, -g.pad_left), x1 = std::min(g.w, p.pw - g.pad_left);
    if (x0 < x1) std::memcpy(out + py * p.pw + x0 + g.pad_left, x + (n * g.h + iy) * g.w + x0, (x1 - x0) * sizeof(float));
  }
}

std::vector<std::int64_t> tap_offsets(const Conv2DGeometry& g, const Padded& p) {
  std::vector<std::int64_t> off(static_cast<std::size_t>(g.kh * g.kw));
  for (std::int64_t ky = 0; ky < g.kh; ++ky)
    for (std::int64_t kx = 0; kx < g.kw; ++kx) off[ky * g.kw + kx] = ky * g.dilation_h * p.pw + kx * g.dilation_w;
  return off;
}

__mmask16 lanes(std::int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u); }

// NV vectors of 16 output channels.
template <int NV>
void forward_images(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    std::int64_t n0, std::int64_t n1) {
  const Padded p = padded_extent(g);
  const std::vector<std::int64_t> off = tap_offsets(g, p);
  const std::int64_t taps = g.kh * g.kw, O = g.o;
  const __mmask16 m[2] = {lanes(O), lanes(O - 16)};
  __m512 wv[64][NV];
  for (std::int64_t t = 0; t < taps; ++t)
    for (int v = 0; v < NV; ++v) wv[t][v] = _mm512_maskz_loadu_ps(m[v], w + t * O + v * 16);
  __m512 b[NV];
  for (int v = 0; v < NV; ++v) b[v] = bias != nullptr ? _mm512_maskz_loadu_ps(m[v], bias + v * 16) : _mm512_setzero_ps();
  std::vector<float> plane(static_cast<std::size_t>(p.ph * p.pw));
  for (std::int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x, n, plane.data());
    float* out = y + n * g.oh * g.ow * O;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      for (std::int64_t ox = 0; ox < g.ow; ++ox, out += O) {
        const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
        // Taps alternate between two sums per vector, so the FMAs form two dependency chains, not one.
        __m512 acc[2][NV];
        for (int v = 0; v < NV; ++v) {
          acc[0][v] = b[v];
          acc[1][v] = _mm512_setzero_ps();
        }
        std::int64_t t = 0;
        for (; t + 1 < taps; t += 2) {
          const __m512 x0 = _mm512_set1_ps(base[off[t]]), x1 = _mm512_set1_ps(base[off[t + 1]]);
          for (int v = 0; v < NV; ++v) {
            acc[0][v] = _mm512_fmadd_ps(x0, wv[t][v], acc[0][v]);
            acc[1][v] = _mm512_fmadd_ps(x1, wv[t + 1][v], acc[1][v]);
          }
        }
        if (t < taps) {
          const __m512 x0 = _mm512_set1_ps(base[off[t]]);
          for (int v = 0; v < NV; ++v) acc[0][v] = _mm512_fmadd_ps(x0, wv[t][v], acc[0][v]);
        }
        for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(out + v * 16, m[v], _mm512_add_ps(acc[0][v], acc[1][v]));
      }
    }
  }
}

// dw_part [taps, O] += the filter gradient of images [n0, n1). Taps in chunks of 26 / NV, each
// chunk's sums held in registers over all pixels of an image.
template <int NV>
void filter_grad_images(const Conv2DGeometry& g, const float* x, const float* dy, float* dw_part, std::int64_t n0,
                        std::int64_t n1) {
  constexpr int kChunk = 26 / NV;  // accumulators + the dy vectors fit in the 32 vector registers
  const Padded p = padded_extent(g);
  const std::vector<std::int64_t> off = tap_offsets(g, p);
  const std::int64_t taps = g.kh * g.kw, O = g.o;
  const __mmask16 m[2] = {lanes(O), lanes(O - 16)};
  std::vector<float> plane(static_cast<std::size_t>(p.ph * p.pw));
  for (std::int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x, n, plane.data());
    const float* d_img = dy + n * g.oh * g.ow * O;
    for (std::int64_t t0 = 0; t0 < taps; t0 += kChunk) {
      const std::int64_t count = std::min<std::int64_t>(kChunk, taps - t0);
      std::int64_t o[kChunk];
      __m512 acc[kChunk][NV];
      for (int t = 0; t < kChunk; ++t) {
        o[t] = t < count ? off[t0 + t] : 0;
        for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_setzero_ps();
      }
      const float* d = d_img;
      for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        for (std::int64_t ox = 0; ox < g.ow; ++ox, d += O) {
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          __m512 dv[NV];
          for (int v = 0; v < NV; ++v) dv[v] = _mm512_maskz_loadu_ps(m[v], d + v * 16);
#pragma GCC unroll 26
          for (int t = 0; t < kChunk; ++t) {  // taps past `count` read base[0] and are never stored
            const __m512 xv = _mm512_set1_ps(base[o[t]]);
            for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_fmadd_ps(xv, dv[v], acc[t][v]);
          }
        }
      }
      for (std::int64_t t = 0; t < count; ++t)
        for (int v = 0; v < NV; ++v) {
          float* dst = dw_part + (t0 + t) * O + v * 16;
          _mm512_mask_storeu_ps(dst, m[v], _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], dst), acc[t][v]));
        }
    }
  }
}

// Least multiply-adds worth a thread.
constexpr std::int64_t kMinMacsPerThread = std::int64_t{1} << 20;
int image_threads(const Conv2DGeometry& g) {
  const std::int64_t per_image = std::max<std::int64_t>(1, g.oh * g.ow * g.kh * g.kw * g.o);
  return threads_for(g.n, std::max<std::int64_t>(1, kMinMacsPerThread / per_image));
}

}  // namespace

void conv2d_direct_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  parallel_parts(0, g.n, image_threads(g), [&](int, std::int64_t n0, std::int64_t n1) {
    if (g.o <= 16) {
      forward_images<1>(g, x, w, bias, y, n0, n1);
    } else {
      forward_images<2>(g, x, w, bias, y, n0, n1);
    }
  });
}

void conv2d_direct_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  const std::int64_t size = g.kh * g.kw * g.o;
  const int threads = image_threads(g);
  std::vector<float> parts(static_cast<std::size_t>(threads * size), 0.0f);
  parallel_parts(0, g.n, threads, [&](int t, std::int64_t n0, std::int64_t n1) {
    if (g.o <= 16) {
      filter_grad_images<1>(g, x, dy, parts.data() + t * size, n0, n1);
    } else {
      filter_grad_images<2>(g, x, dy, parts.data() + t * size, n0, n1);
    }
  });
  for (std::int64_t i = 0; i < size; ++i) {
    float s = 0.0f;
    for (int t = 0; t < threads; ++t) s += parts[static_cast<std::size_t>(t * size + i)];
    dw[i] = s;
  }
}
#else
void conv2d_direct_forward(const Conv2DGeometry&, const float*, const float*, const float*, float*) {}
void conv2d_direct_backprop_filter(const Conv2DGeometry&, const float*, const float*, float*) {}
#endif

}  // namespace synapse::cpu
