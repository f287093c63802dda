// bf16 implicit-GEMM convolutions (conv_bf16.h explains the scheme). Compiled for AVX-512 + BF16
// whatever the build's -march, like gemm_bf16.cpp; conv.cpp calls them only in bf16 precision, which
// set_matmul_precision allows only where cpu_supports_bf16().
#include "backend/cpu/conv_bf16.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SYNAPSE_BF16_CONV 1
#include <immintrin.h>
#endif

#ifdef SYNAPSE_BF16_CONV
namespace synapse::cpu {
namespace {

constexpr std::int64_t kPanel = 64;  // output channels (forward) or patch columns (filter) per panel
constexpr std::int64_t kMaxPanelBytes = std::int64_t{512} << 10;  // a packed filter block stays in L2

std::int64_t even(std::int64_t c) { return (c + 1) / 2 * 2; }

// Dilation 1 (a filter row's taps are one contiguous run of the padded input), not pointwise (that is
// a plain gemm, bf16 already), nonnegative padding before.
bool implicit_geometry(const Conv2DGeometry& g) {
  return !g.pointwise() && g.dilation_h == 1 && g.dilation_w == 1 && g.stride_h >= 1 && g.stride_w >= 1 &&
         g.pad_top >= 0 && g.pad_left >= 0 && g.kh > 0 && g.kw > 0 && g.rows() > 0 && g.c > 0 && g.o > 0;
}

// The packed filter block of one panel: [KH][KW*C2/2][64] words.
bool filter_block_fits(const Conv2DGeometry& g) { return g.kh * g.kw * even(g.c) / 2 * kPanel * 4 <= kMaxPanelBytes; }

}  // namespace

bool conv2d_bf16_forward_supported(const Conv2DGeometry& g) { return implicit_geometry(g) && filter_block_fits(g); }

bool conv2d_bf16_backprop_input_supported(const Conv2DGeometry& g) {
  return implicit_geometry(g) && g.stride_h == 1 && g.stride_w == 1 && g.pad_top < g.kh && g.pad_left < g.kw &&
         filter_block_fits(transposed_conv_geometry(g));
}

// A thread's partial dw^T [O, K2 = KH * round16(KW*C2)] stays in L2, and at most a quarter of its
// columns are padding: with 3 channels (the cifar-cnn's conv1: K2 = 160 for 75 taps) this kernel
// measured 2.3x slower than in fp32, and there the input is padded anyway.
bool conv2d_bf16_backprop_filter_supported(const Conv2DGeometry& g) {
  const std::int64_t k2 = g.kh * ((g.kw * even(g.c) + 15) / 16 * 16);
  return implicit_geometry(g) && g.o * k2 * 4 <= kMaxPanelBytes && 4 * k2 <= 5 * g.patch();
}
}  // namespace synapse::cpu

// Everything below is compiled for AVX-512 + BF16. The region starts after all includes.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")
#endif
#include "backend/cpu/bf16_simd.h"
namespace synapse::cpu {
namespace {

// The images of x [N, H, W, C] that a thread's output pixels read, converted to bf16 and zero-padded
// to [PH, PW, C2] each (C2 = C rounded up to even; pad_top rows and pad_left columns before, cropped
// to the extent the windows read), one image at a time on demand: image(n) pads every image up to n
// first. As 32-bit words: a pixel is C2/2 words, each the bf16 pair of channels (2i, 2i + 1). Serial.
class PaddedBf16 {
 public:
  PaddedBf16(const Conv2DGeometry& g, const float* x, std::int64_t n0, std::int64_t n1, std::vector<std::uint32_t>& buf)
      : g_(g), x_(x), n0_(n0), next_(n0), ph_((g.oh - 1) * g.stride_h + g.kh), pw_((g.ow - 1) * g.stride_w + g.kw),
        c2_(even(g.c)) {
    buf.resize(static_cast<std::size_t>((n1 - n0) * image_words()));
    buf_ = buf.data();
  }
  std::int64_t image_words() const { return ph_ * pw_ * c2_ / 2; }
  std::int64_t pitch() const { return pw_ * c2_ / 2; }  // words per padded row
  // The first word of output pixel (n, oy, ox)'s window.
  const std::uint32_t* window(std::int64_t n, std::int64_t oy, std::int64_t ox) {
    for (; next_ <= n; ++next_) pad(next_);
    return buf_ + (n - n0_) * image_words() + oy * g_.stride_h * pitch() + ox * g_.stride_w * (c2_ / 2);
  }

 private:
  void pad(std::int64_t n) {
    const std::int64_t C = g_.c, row = pitch();
    const std::int64_t left = g_.pad_left * c2_ / 2, cols = std::max<std::int64_t>(0, std::min(g_.w, pw_ - g_.pad_left));
    std::uint32_t* out = buf_ + (n - n0_) * image_words();
    for (std::int64_t py = 0; py < ph_; ++py, out += row) {
      const std::int64_t iy = py - g_.pad_top;
      if (iy < 0 || iy >= g_.h) {
        std::memset(out, 0, static_cast<std::size_t>(row) * 4);
        continue;
      }
      std::memset(out, 0, static_cast<std::size_t>(left) * 4);
      const float* src = x_ + (n * g_.h + iy) * g_.w * C;
      auto* dst = reinterpret_cast<std::uint16_t*>(out + left);
      if (C == c2_) {  // even channels: the row is one contiguous run
        const std::int64_t len = cols * C;
        for (std::int64_t i = 0; i < len; i += 16) {
          const __mmask16 m = lanes(len - i);
          _mm256_mask_storeu_epi16(dst + i, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i))));
        }
      } else {  // odd: each pixel's C values and a zero
        for (std::int64_t px = 0; px < cols; ++px, src += C, dst += c2_)
          for (std::int64_t c = 0; c < c2_; c += 16) {
            const __m256i v = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lanes(C - c), src + c)));
            _mm256_mask_storeu_epi16(dst + c, lanes(c2_ - c), v);
          }
      }
      const std::int64_t used = left + cols * c2_ / 2;
      std::memset(out + used, 0, static_cast<std::size_t>(row - used) * 4);
    }
  }
  const Conv2DGeometry& g_;
  const float* x_;
  std::int64_t n0_, next_;
  std::uint32_t* buf_ = nullptr;
  std::int64_t ph_, pw_, c2_;
};

// c[r, 0:cols) (rows ldc apart, r < rows, cols <= 16V) = init + sum over segments s < segs and pairs
// q < pairs of a[r][s * seg_stride + q] . b[s][q][0:16V) (words: vdpbf16ps, two products per lane),
// then relu. init: the bias (broadcast over rows), c itself (accumulate), or zero. R x V accumulators
// in registers; per pair, V loads of b and R broadcasts feed R*V vdpbf16ps. Rows past `rows` repeat
// a valid a row and are not stored.
template <int R, int V>
void tile(const std::uint32_t* const* a, std::int64_t segs, std::int64_t pairs, std::int64_t seg_stride,
          const std::uint32_t* b, const float* bias, bool accumulate, bool relu, float* c, std::int64_t ldc, int rows,
          std::int64_t cols) {
  __m512 acc[R][V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __mmask16 m = lanes(cols - 16 * v);
    const __m512 init = bias == nullptr ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, bias + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][v] = accumulate && r < rows ? _mm512_maskz_loadu_ps(m, c + r * ldc + 16 * v) : init;
  }
  for (std::int64_t s = 0; s < segs; ++s) {
    const std::uint32_t* ap[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) ap[r] = a[r] + s * seg_stride;
    const std::uint32_t* bs = b + s * pairs * kPanel;
    for (std::int64_t q = 0; q < pairs; ++q, bs += kPanel) {
      __m512bh bv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) bv[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(bs + 16 * v));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const auto av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(ap[r][q])));
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __m512 out = relu ? _mm512_maskz_max_ps(kAll, acc[r][v], _mm512_setzero_ps()) : acc[r][v];
      _mm512_mask_storeu_ps(c + r * ldc + 16 * v, lanes(cols - 16 * v), out);
    }
  }
}

// Rows of a tile for V vectors: R*V accumulators of the 32 registers, room left for V of b and one of a.
template <int V> constexpr int kRows = V == 4 ? 6 : V == 3 ? 8 : 12;

// ---- forward ----

// w [KH, KW, C, O] as panels of 64 output channels, each [KH][KW*C2/2][64] words (pair (c, c + 1) of a
// tap in a word, a zero high half for the last of an odd C, zero columns past O).
void pack_filter(const Conv2DGeometry& g, const float* w, std::vector<std::uint32_t>& out) {
  const std::int64_t C = g.c, O = g.o, taps = g.kh * g.kw, half = even(C) / 2;
  const std::int64_t panels = (O + kPanel - 1) / kPanel, panel_words = taps * half * kPanel;
  out.resize(static_cast<std::size_t>(panels * panel_words));
  for (std::int64_t q = 0; q < panels; ++q)
    for (std::int64_t t = 0; t < taps; ++t)
      for (std::int64_t i = 0; i < half; ++i) {
        const float* lo = w + (t * C + 2 * i) * O + q * kPanel;
        const bool has_hi = 2 * i + 1 < C;
        std::uint32_t* dst = out.data() + q * panel_words + (t * half + i) * kPanel;
        for (std::int64_t v = 0; v < kPanel; v += 16) {
          const __mmask16 m = lanes(O - q * kPanel - v);
          const __m512 l = _mm512_maskz_loadu_ps(m, lo + v);
          const __m512 h = has_hi ? _mm512_maskz_loadu_ps(m, lo + O + v) : _mm512_setzero_ps();
          _mm512_storeu_si512(dst + v, pair_words(l, h));
        }
      }
}

// Output pixels [r0, r1), the output channels of panel j0 (width of them), in tiles of R pixels.
template <int V>
void forward_pixels(const Conv2DGeometry& g, PaddedBf16& xp, const std::uint32_t* wp, const float* bias, bool relu,
                    float* y, std::int64_t r0, std::int64_t r1, std::int64_t j0, std::int64_t width) {
  constexpr int R = kRows<V>;
  const std::int64_t run = g.kw * even(g.c) / 2;
  PixelIter it(g, r0);
  for (std::int64_t p0 = r0; p0 < r1; p0 += R) {
    const int rows = static_cast<int>(std::min<std::int64_t>(R, r1 - p0));
    const std::uint32_t* a[R];
    for (int r = 0; r < rows; ++r, it.next(g)) a[r] = xp.window(it.n, it.oy, it.ox);
    for (int r = rows; r < R; ++r) a[r] = a[rows - 1];
    tile<R, V>(a, g.kh, run, xp.pitch(), wp, bias == nullptr ? nullptr : bias + j0, false, relu, y + p0 * g.o + j0,
               g.o, rows, width);
  }
}

// y = conv(x, w) + bias, relu. Threads take contiguous runs of output pixels; panels of 64 outputs.
void forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y, bool relu) {
  thread_local std::vector<std::uint32_t> packed;  // the calling thread's; the workers read it
  pack_filter(g, w, packed);
  const std::uint32_t* wp = packed.data();
  const std::int64_t rows = g.rows(), per_image = g.oh * g.ow, panel_words = g.kh * g.kw * even(g.c) / 2 * kPanel;
  const int threads = threads_for_work(rows, g.patch() * g.o);
  parallel_parts(0, rows, threads, [&](int, std::int64_t r0, std::int64_t r1) {
    thread_local std::vector<std::uint32_t> images;
    PaddedBf16 xp(g, x, r0 / per_image, (r1 - 1) / per_image + 1, images);
    for (std::int64_t j0 = 0; j0 < g.o; j0 += kPanel) {
      const std::int64_t width = std::min(kPanel, g.o - j0);
      const std::uint32_t* wj = wp + j0 / kPanel * panel_words;
      switch ((width + 15) / 16) {
        case 1: forward_pixels<1>(g, xp, wj, bias, relu, y, r0, r1, j0, width); break;
        case 2: forward_pixels<2>(g, xp, wj, bias, relu, y, r0, r1, j0, width); break;
        case 3: forward_pixels<3>(g, xp, wj, bias, relu, y, r0, r1, j0, width); break;
        default: forward_pixels<4>(g, xp, wj, bias, relu, y, r0, r1, j0, width); break;
      }
    }
  });
}

// ---- filter gradient ----

// Output pixels per chunk (64 pairs): the chunk's packed dy^T (O x 64 words) and one packed panel of
// patch columns (64 x 64 words, 16 KB) stay in L1 while every row tile of dw^T passes over them.
constexpr std::int64_t kChunk = 128;

// dw^T [O, K2] (K2 = KH * run16, run16 = KW*C2 rounded up to 16; column ky * run16 + kx * C2 + c) +=
// dy^T x patches over the np pixels starting at p0 (window pointers `win`, dy rows from dy).
void filter_chunk(const Conv2DGeometry& g, std::int64_t pitch, const std::uint32_t* const* win, const float* dy,
                  std::int64_t np, float* dwt, std::uint32_t* dyt, std::uint32_t* panel) {
  const std::int64_t O = g.o, run = g.kw * even(g.c), run16 = (run + 15) / 16 * 16, K2 = g.kh * run16;
  const std::int64_t pairs = (np + 1) / 2;
  // dy^T as pairs of pixels: dyt[o][i] = (dy[2i][o], dy[2i + 1][o]).
  alignas(64) std::uint32_t w16[16];
  for (std::int64_t i = 0; i < pairs; ++i) {
    const float* lo = dy + 2 * i * O;
    const bool has_hi = 2 * i + 1 < np;
    for (std::int64_t o = 0; o < O; o += 16) {
      const __mmask16 m = lanes(O - o);
      const __m512 h = has_hi ? _mm512_maskz_loadu_ps(m, lo + O + o) : _mm512_setzero_ps();
      _mm512_store_si512(w16, pair_words(_mm512_maskz_loadu_ps(m, lo + o), h));
      const std::int64_t n = std::min<std::int64_t>(16, O - o);
      for (std::int64_t l = 0; l < n; ++l) dyt[(o + l) * pairs + i] = w16[l];
    }
  }
  constexpr int R = kRows<4>;
  for (std::int64_t k0 = 0; k0 < K2; k0 += kPanel) {
    const std::int64_t cols = std::min(kPanel, K2 - k0);
    // The panel: panel[i][j] = (patch of pixel 2i, patch of pixel 2i + 1) at column k0 + j.
    for (std::int64_t i = 0; i < pairs; ++i) {
      const auto* lo = reinterpret_cast<const std::uint16_t*>(win[2 * i]);
      const auto* hi = 2 * i + 1 < np ? reinterpret_cast<const std::uint16_t*>(win[2 * i + 1]) : nullptr;
      for (std::int64_t v = 0; v < kPanel; v += 16) {
        const std::int64_t k = k0 + v;
        __m512i words = _mm512_setzero_si512();
        if (k < K2) {
          const std::int64_t ky = k / run16, j = k % run16;
          const __mmask16 m = lanes(run - j);
          const std::int64_t at = ky * pitch * 2 + j;
          const __m256i l = _mm256_maskz_loadu_epi16(m, lo + at);
          const __m256i h = hi != nullptr ? _mm256_maskz_loadu_epi16(m, hi + at) : _mm256_setzero_si256();
          words = pair_words_bf16(l, h);
        }
        _mm512_store_si512(panel + i * kPanel + v, words);
      }
    }
    const std::int64_t vecs = (cols + 15) / 16;
    for (std::int64_t o0 = 0; o0 < O; o0 += R) {
      const int rows = static_cast<int>(std::min<std::int64_t>(R, O - o0));
      const std::uint32_t* a[R];
      for (int r = 0; r < R; ++r) a[r] = dyt + (o0 + std::min(r, rows - 1)) * pairs;
      float* c = dwt + o0 * K2 + k0;
      switch (vecs) {
        case 1: tile<R, 1>(a, 1, pairs, 0, panel, nullptr, true, false, c, K2, rows, cols); break;
        case 2: tile<R, 2>(a, 1, pairs, 0, panel, nullptr, true, false, c, K2, rows, cols); break;
        case 3: tile<R, 3>(a, 1, pairs, 0, panel, nullptr, true, false, c, K2, rows, cols); break;
        default: tile<R, 4>(a, 1, pairs, 0, panel, nullptr, true, false, c, K2, rows, cols); break;
      }
    }
  }
}

void backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  const std::int64_t rows = g.rows(), per_image = g.oh * g.ow, O = g.o, C = g.c, c2 = even(C);
  const std::int64_t run16 = (g.kw * c2 + 15) / 16 * 16, K2 = g.kh * run16;
  const int threads = threads_for_work(rows, g.patch() * O);
  std::vector<float> partial(static_cast<std::size_t>(threads * O * K2), 0.0f);  // dw^T per thread
  parallel_parts(0, rows, threads, [&](int t, std::int64_t r0, std::int64_t r1) {
    thread_local std::vector<std::uint32_t> images, dyt, panel;
    PaddedBf16 xp(g, x, r0 / per_image, (r1 - 1) / per_image + 1, images);
    dyt.resize(static_cast<std::size_t>(O * kChunk / 2));
    panel.resize(static_cast<std::size_t>(kChunk / 2 * kPanel + 16));
    std::uint32_t* aligned = panel.data() + (64 - reinterpret_cast<std::uintptr_t>(panel.data()) % 64) % 64 / 4;
    const std::uint32_t* win[kChunk];
    PixelIter it(g, r0);
    for (std::int64_t p0 = r0; p0 < r1; p0 += kChunk) {
      const std::int64_t np = std::min(kChunk, r1 - p0);
      for (std::int64_t i = 0; i < np; ++i, it.next(g)) win[i] = xp.window(it.n, it.oy, it.ox);
      filter_chunk(g, xp.pitch(), win, dy + p0 * O, np, partial.data() + t * O * K2, dyt.data(), aligned);
    }
  });
  // dw [KH, KW, C, O] = the sum of the partial dw^T, transposed (padding columns dropped).
  const std::int64_t taps = g.kh * g.kw;
  parallel_for(0, taps * C, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(O * threads, 1)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t k = lo; k < hi; ++k) {
                   const std::int64_t tap = k / C, c = k % C, ky = tap / g.kw, kx = tap % g.kw;
                   const std::int64_t col = ky * run16 + kx * c2 + c;
                   for (std::int64_t o = 0; o < O; ++o) {
                     float s = 0.0f;
                     for (int t = 0; t < threads; ++t) s += partial[static_cast<std::size_t>((t * O + o) * K2 + col)];
                     dw[k * O + o] = s;
                   }
                 }
               });
}

}  // namespace

void conv2d_bf16_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y, bool relu) {
  forward(g, x, w, bias, y, relu);
}

void conv2d_bf16_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  thread_local std::vector<float> wf;
  wf.resize(static_cast<std::size_t>(g.kh * g.kw * g.o * g.c));
  flip_filter(g, w, wf.data());
  forward(transposed_conv_geometry(g), dy, wf.data(), nullptr, dx, false);
}

void conv2d_bf16_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  backprop_filter(g, x, dy, dw);
}

}  // namespace synapse::cpu
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // no bf16 kernels on this compiler/architecture: the *_supported above say no, never called

namespace synapse::cpu {
bool conv2d_bf16_forward_supported(const Conv2DGeometry&) { return false; }
bool conv2d_bf16_backprop_input_supported(const Conv2DGeometry&) { return false; }
bool conv2d_bf16_backprop_filter_supported(const Conv2DGeometry&) { return false; }
void conv2d_bf16_forward(const Conv2DGeometry&, const float*, const float*, const float*, float*, bool) {}
void conv2d_bf16_backprop_input(const Conv2DGeometry&, const float*, const float*, float*) {}
void conv2d_bf16_backprop_filter(const Conv2DGeometry&, const float*, const float*, float*) {}
}  // namespace synapse::cpu
#endif
