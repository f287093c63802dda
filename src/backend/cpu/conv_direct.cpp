// Direct convolution for single-channel inputs (the first layer of an image model: MNIST's 1 channel),
// with AVX-512. im2col would copy every input pixel KH*KW times into a column matrix only KH*KW wide
// and multiply it with a GEMM whose output has just O (6 for LeNet-5) columns: measured on LeNet-5,
// conv1's im2col and its narrow GEMMs were about a fifth of a training step. Here each output pixel is
// KH*KW broadcast-FMAs into O/16 vector registers, the filter gradient the same with the roles swapped
// (one register per tap and vector of O, summed over pixels in registers), reading a zero-padded copy
// of each image so the taps need no bounds checks. One source for AVX-512 and AVX2 (vec.h's vf of
// kLanes = 16 or 8 floats; "16" in the comments is AVX-512's width): up to 2 * kLanes outputs, so with
// AVX2 a first layer of 17..32 outputs (the cnn's conv1) stays on im2col + GEMM.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/conv.h"
#include "core/parallel.h"

#include "backend/cpu/isa_begin.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu::SYNAPSE_KERNEL_ISA {

bool conv2d_direct_supported(const Conv2DGeometry& g) {
#if SYNAPSE_AVX2
  return g.c == 1 && g.o >= 1 && g.o <= 2 * kLanes && g.kh * g.kw <= 64 && g.rows() > 0;
#else
  (void)g;
  return false;
#endif
}

#if SYNAPSE_AVX2
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


// NV vectors of 16 output channels.
template <int NV>
void forward_images(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    std::int64_t n0, std::int64_t n1) {
  const Padded p = padded_extent(g);
  const std::vector<std::int64_t> off = tap_offsets(g, p);
  const std::int64_t taps = g.kh * g.kw, O = g.o;
  const vmask m[2] = {vmask_first(O), vmask_first(O - kLanes)};
  vf wv[64][NV];
  for (std::int64_t t = 0; t < taps; ++t)
    for (int v = 0; v < NV; ++v) wv[t][v] = vload(w + t * O + v * kLanes, m[v]);
  vf b[NV];
  for (int v = 0; v < NV; ++v) b[v] = bias != nullptr ? vload(bias + v * kLanes, m[v]) : vzero();
  std::vector<float> plane(static_cast<std::size_t>(p.ph * p.pw));
  for (std::int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x, n, plane.data());
    float* out = y + n * g.oh * g.ow * O;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      std::int64_t ox = 0;
      // 8 pixels (one vector of outputs each) or 4 (two vectors) at a time: 8 independent FMA chains
      // (one pixel alone is latency-bound), each tap's weights loaded once for all of them. Named
      // accumulators, not an array: GCC keeps an array indexed in loops on the stack.
      if constexpr (NV == 1) {
        for (; ox + 8 <= g.ow; ox += 8, out += 8 * O) {
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          const std::int64_t sw = g.stride_w;
          vf a0 = b[0], a1 = b[0], a2 = b[0], a3 = b[0], a4 = b[0], a5 = b[0], a6 = b[0], a7 = b[0];
          for (std::int64_t t = 0; t < taps; ++t) {
            const float* src = base + off[t];
            const vf w0 = wv[t][0];
            a0 = vfma(vset1(src[0]), w0, a0);
            a1 = vfma(vset1(src[sw]), w0, a1);
            a2 = vfma(vset1(src[2 * sw]), w0, a2);
            a3 = vfma(vset1(src[3 * sw]), w0, a3);
            a4 = vfma(vset1(src[4 * sw]), w0, a4);
            a5 = vfma(vset1(src[5 * sw]), w0, a5);
            a6 = vfma(vset1(src[6 * sw]), w0, a6);
            a7 = vfma(vset1(src[7 * sw]), w0, a7);
          }
          vstore(out, a0, m[0]);
          vstore(out + O, a1, m[0]);
          vstore(out + 2 * O, a2, m[0]);
          vstore(out + 3 * O, a3, m[0]);
          vstore(out + 4 * O, a4, m[0]);
          vstore(out + 5 * O, a5, m[0]);
          vstore(out + 6 * O, a6, m[0]);
          vstore(out + 7 * O, a7, m[0]);
        }
        for (; ox + 4 <= g.ow; ox += 4, out += 4 * O) {  // the rest of the row (28 = 3 * 8 + 4)
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          const std::int64_t sw = g.stride_w;
          vf a0 = b[0], a1 = b[0], a2 = b[0], a3 = b[0];
          for (std::int64_t t = 0; t < taps; ++t) {
            const float* src = base + off[t];
            const vf w0 = wv[t][0];
            a0 = vfma(vset1(src[0]), w0, a0);
            a1 = vfma(vset1(src[sw]), w0, a1);
            a2 = vfma(vset1(src[2 * sw]), w0, a2);
            a3 = vfma(vset1(src[3 * sw]), w0, a3);
          }
          vstore(out, a0, m[0]);
          vstore(out + O, a1, m[0]);
          vstore(out + 2 * O, a2, m[0]);
          vstore(out + 3 * O, a3, m[0]);
        }
      } else {
        // 8 pixels x 2 vectors: 16 FMA chains, twice what the FMA latency times two pipes needs (the
        // 4-pixel loop below alone, 8 chains, ran the cnn's conv1 at 43% of peak). AVX-512 only: its 16
        // accumulators and 3 more registers do not fit in AVX2's 16.
        for (; kVecRegs == 32 && ox + 8 <= g.ow; ox += 8, out += 8 * O) {
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          const std::int64_t sw = g.stride_w;
          vf a0 = b[0], a1 = b[0], a2 = b[0], a3 = b[0], a4 = b[0], a5 = b[0], a6 = b[0], a7 = b[0];
          vf c0 = b[1], c1 = b[1], c2 = b[1], c3 = b[1], c4 = b[1], c5 = b[1], c6 = b[1], c7 = b[1];
          for (std::int64_t t = 0; t < taps; ++t) {
            const float* src = base + off[t];
            const vf w0 = wv[t][0], w1 = wv[t][1];
            vf xv = vset1(src[0]);
            a0 = vfma(xv, w0, a0);
            c0 = vfma(xv, w1, c0);
            xv = vset1(src[sw]);
            a1 = vfma(xv, w0, a1);
            c1 = vfma(xv, w1, c1);
            xv = vset1(src[2 * sw]);
            a2 = vfma(xv, w0, a2);
            c2 = vfma(xv, w1, c2);
            xv = vset1(src[3 * sw]);
            a3 = vfma(xv, w0, a3);
            c3 = vfma(xv, w1, c3);
            xv = vset1(src[4 * sw]);
            a4 = vfma(xv, w0, a4);
            c4 = vfma(xv, w1, c4);
            xv = vset1(src[5 * sw]);
            a5 = vfma(xv, w0, a5);
            c5 = vfma(xv, w1, c5);
            xv = vset1(src[6 * sw]);
            a6 = vfma(xv, w0, a6);
            c6 = vfma(xv, w1, c6);
            xv = vset1(src[7 * sw]);
            a7 = vfma(xv, w0, a7);
            c7 = vfma(xv, w1, c7);
          }
          const vf lo[8] = {a0, a1, a2, a3, a4, a5, a6, a7}, hi[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
#pragma GCC unroll 8
          for (int i = 0; i < 8; ++i) {
            vstore(out + i * O, lo[i]);
            vstore(out + i * O + kLanes, hi[i], m[1]);
          }
        }
        for (; ox + 4 <= g.ow; ox += 4, out += 4 * O) {
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          const std::int64_t sw = g.stride_w;
          vf a0 = b[0], a1 = b[0], a2 = b[0], a3 = b[0], c0 = b[1], c1 = b[1], c2 = b[1], c3 = b[1];
          for (std::int64_t t = 0; t < taps; ++t) {
            const float* src = base + off[t];
            const vf w0 = wv[t][0], w1 = wv[t][1];
            const vf x0 = vset1(src[0]), x1 = vset1(src[sw]), x2 = vset1(src[2 * sw]),
                         x3 = vset1(src[3 * sw]);
            a0 = vfma(x0, w0, a0);
            c0 = vfma(x0, w1, c0);
            a1 = vfma(x1, w0, a1);
            c1 = vfma(x1, w1, c1);
            a2 = vfma(x2, w0, a2);
            c2 = vfma(x2, w1, c2);
            a3 = vfma(x3, w0, a3);
            c3 = vfma(x3, w1, c3);
          }
          vstore(out, a0);
          vstore(out + kLanes, c0, m[1]);
          vstore(out + O, a1);
          vstore(out + O + kLanes, c1, m[1]);
          vstore(out + 2 * O, a2);
          vstore(out + 2 * O + kLanes, c2, m[1]);
          vstore(out + 3 * O, a3);
          vstore(out + 3 * O + kLanes, c3, m[1]);
        }
      }
      for (; ox < g.ow; ++ox, out += O) {
        const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
        // Taps alternate between two sums per vector, so the FMAs form two dependency chains, not one.
        vf acc[2][NV];
        for (int v = 0; v < NV; ++v) {
          acc[0][v] = b[v];
          acc[1][v] = vzero();
        }
        std::int64_t t = 0;
        for (; t + 1 < taps; t += 2) {
          const vf x0 = vset1(base[off[t]]), x1 = vset1(base[off[t + 1]]);
          for (int v = 0; v < NV; ++v) {
            acc[0][v] = vfma(x0, wv[t][v], acc[0][v]);
            acc[1][v] = vfma(x1, wv[t + 1][v], acc[1][v]);
          }
        }
        if (t < taps) {
          const vf x0 = vset1(base[off[t]]);
          for (int v = 0; v < NV; ++v) acc[0][v] = vfma(x0, wv[t][v], acc[0][v]);
        }
        for (int v = 0; v < NV; ++v) vstore(out + v * kLanes, vadd(acc[0][v], acc[1][v]), m[v]);
      }
    }
  }
}

// dw_part [taps, O] += the filter gradient of images [n0, n1). Taps in chunks of 26 / NV, each
// chunk's sums held in registers over all pixels of an image.
void filter_grad_images_one_vector(const Conv2DGeometry& g, const float* x, const float* dy, float* dw_part,
                                   std::int64_t n0, std::int64_t n1) {
  constexpr int NV = 1;  // up to 16 output channels (17..32: filter_grad_images_two_vectors)
  // accumulators + the dy vectors fit in the vector registers (26 of AVX-512's 32, 12 of AVX2's 16)
  constexpr int kChunk = (kVecRegs == 32 ? 26 : 12) / NV;
  const Padded p = padded_extent(g);
  const std::vector<std::int64_t> off = tap_offsets(g, p);
  const std::int64_t taps = g.kh * g.kw, O = g.o;
  const vmask m[2] = {vmask_first(O), vmask_first(O - kLanes)};
  std::vector<float> plane(static_cast<std::size_t>(p.ph * p.pw));
  for (std::int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x, n, plane.data());
    const float* d_img = dy + n * g.oh * g.ow * O;
    for (std::int64_t t0 = 0; t0 < taps; t0 += kChunk) {
      const std::int64_t count = std::min<std::int64_t>(kChunk, taps - t0);
      std::int64_t o[kChunk];
      vf acc[kChunk][NV];
      for (int t = 0; t < kChunk; ++t) {
        o[t] = t < count ? off[t0 + t] : 0;
        for (int v = 0; v < NV; ++v) acc[t][v] = vzero();
      }
      const float* d = d_img;
      for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        for (std::int64_t ox = 0; ox < g.ow; ++ox, d += O) {
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          vf dv[NV];
          for (int v = 0; v < NV; ++v) dv[v] = vload(d + v * kLanes, m[v]);
#pragma GCC unroll 26
          for (int t = 0; t < kChunk; ++t) {  // taps past `count` read base[0] and are never stored
            const vf xv = vset1(base[o[t]]);
            for (int v = 0; v < NV; ++v) acc[t][v] = vfma(xv, dv[v], acc[t][v]);
          }
        }
      }
      for (std::int64_t t = 0; t < count; ++t)
        for (int v = 0; v < NV; ++v) {
          float* dst = dw_part + (t0 + t) * O + v * kLanes;
          vstore(dst, vadd(vload(dst, m[v]), acc[t][v]), m[v]);
        }
    }
  }
}

// The filter gradient for 17..32 output channels (the cnn's first layer): chunks of 6 taps, their
// 12 accumulators (two vectors of channels each) named so they stay in registers (the array version of
// an earlier array version was spilled to the stack by GCC: 32-37% of peak).
void filter_grad_images_two_vectors(const Conv2DGeometry& g, const float* x, const float* dy, float* dw_part,
                                    std::int64_t n0, std::int64_t n1) {
  constexpr int kChunk = 6;
  const Padded p = padded_extent(g);
  const std::vector<std::int64_t> off = tap_offsets(g, p);
  const std::int64_t taps = g.kh * g.kw, O = g.o;
  const vmask m1 = vmask_first(O - kLanes);
  std::vector<float> plane(static_cast<std::size_t>(p.ph * p.pw));
  for (std::int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x, n, plane.data());
    const float* d_img = dy + n * g.oh * g.ow * O;
    for (std::int64_t t0 = 0; t0 < taps; t0 += kChunk) {
      const std::int64_t count = std::min<std::int64_t>(kChunk, taps - t0);
      auto at = [&](int t) { return t < count ? off[static_cast<std::size_t>(t0 + t)] : 0; };
      const std::int64_t f0 = at(0), f1 = at(1), f2 = at(2), f3 = at(3), f4 = at(4), f5 = at(5);
      vf a0 = vzero(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
      vf c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0;
      const float* d = d_img;
      for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        for (std::int64_t ox = 0; ox < g.ow; ++ox, d += O) {
          const float* base = plane.data() + oy * g.stride_h * p.pw + ox * g.stride_w;
          const vf d0 = vload(d), d1 = vload(d + kLanes, m1);
          vf xv = vset1(base[f0]);
          a0 = vfma(xv, d0, a0);
          c0 = vfma(xv, d1, c0);
          xv = vset1(base[f1]);
          a1 = vfma(xv, d0, a1);
          c1 = vfma(xv, d1, c1);
          xv = vset1(base[f2]);
          a2 = vfma(xv, d0, a2);
          c2 = vfma(xv, d1, c2);
          xv = vset1(base[f3]);
          a3 = vfma(xv, d0, a3);
          c3 = vfma(xv, d1, c3);
          xv = vset1(base[f4]);
          a4 = vfma(xv, d0, a4);
          c4 = vfma(xv, d1, c4);
          xv = vset1(base[f5]);
          a5 = vfma(xv, d0, a5);
          c5 = vfma(xv, d1, c5);
        }
      }
      const vf lo[kChunk] = {a0, a1, a2, a3, a4, a5}, hi[kChunk] = {c0, c1, c2, c3, c4, c5};
      for (std::int64_t t = 0; t < count; ++t) {  // taps past `count` read offset 0 and are dropped here
        float* dst = dw_part + (t0 + t) * O;
        vstore(dst, vadd(vload(dst), lo[t]));
        vstore(dst + kLanes, vadd(vload(dst + kLanes, m1), hi[t]), m1);
      }
    }
  }
}

// The filter gradient for few output channels (LeNet-5's 6) along unit-stride rows: vectorised over
// 16 output pixels instead of over the channels (6 of 16 lanes), so it takes O * ceil(ow / 16) FMAs per
// tap and row instead of ow. dy is transposed per image to [O, oh, 16 * ceil(ow / 16)] (zero tail);
// each (channel, chunk of taps) sums in registers over the whole image.
bool pixel_vectorised_filter_grad(const Conv2DGeometry& g) {
  return g.stride_w == 1 && g.dilation_w == 1 && g.o * ((g.ow + kLanes - 1) / kLanes) < g.ow;
}

void filter_grad_images_by_pixels(const Conv2DGeometry& g, const float* x, const float* dy, float* dw_part,
                                  std::int64_t n0, std::int64_t n1) {
  constexpr int kChunk = 8;
  const Padded p = padded_extent(g);
  const std::vector<std::int64_t> off = tap_offsets(g, p);
  const std::int64_t taps = g.kh * g.kw, O = g.o, vecs = (g.ow + kLanes - 1) / kLanes, row = vecs * kLanes;
  std::vector<float> plane(static_cast<std::size_t>(p.ph * p.pw + kLanes), 0.0f);
  std::vector<float> dyt(static_cast<std::size_t>(O * g.oh * row), 0.0f);
  std::vector<float> sums(static_cast<std::size_t>(O * taps * kLanes), 0.0f);  // kLanes lanes per (o, tap)
  vmask tail[64];
  for (std::int64_t v = 0; v < vecs && v < 64; ++v) tail[v] = vmask_first(g.ow - v * kLanes);
  for (std::int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x, n, plane.data());
    const float* d_img = dy + n * g.oh * g.ow * O;
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t o = 0; o < O; ++o) dyt[(o * g.oh + oy) * row + ox] = d_img[(oy * g.ow + ox) * O + o];
    for (std::int64_t o = 0; o < O; ++o) {
      for (std::int64_t t0 = 0; t0 < taps; t0 += kChunk) {
        const std::int64_t count = std::min<std::int64_t>(kChunk, taps - t0);
        // Named accumulators and offsets (an array indexed in the loop would live on the stack);
        // taps past `count` read offset 0 and are never stored.
        auto at = [&](int t) { return t < count ? off[static_cast<std::size_t>(t0 + t)] : 0; };
        const std::int64_t f0 = at(0), f1 = at(1), f2 = at(2), f3 = at(3), f4 = at(4), f5 = at(5), f6 = at(6), f7 = at(7);
        vf a0 = vzero(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          const float* xrow = plane.data() + oy * g.stride_h * p.pw;
          const float* drow = dyt.data() + (o * g.oh + oy) * row;
          for (std::int64_t v = 0; v < vecs; ++v) {
            const vf dv = vload(drow + v * kLanes);  // zero past ow
            const float* xv = xrow + v * kLanes;
            const vmask mk = tail[v];
            a0 = vfma(vload(xv + f0, mk), dv, a0);
            a1 = vfma(vload(xv + f1, mk), dv, a1);
            a2 = vfma(vload(xv + f2, mk), dv, a2);
            a3 = vfma(vload(xv + f3, mk), dv, a3);
            a4 = vfma(vload(xv + f4, mk), dv, a4);
            a5 = vfma(vload(xv + f5, mk), dv, a5);
            a6 = vfma(vload(xv + f6, mk), dv, a6);
            a7 = vfma(vload(xv + f7, mk), dv, a7);
          }
        }
        const vf acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (std::int64_t t = 0; t < count; ++t) {
          float* sum = sums.data() + (o * taps + t0 + t) * kLanes;
          vstore(sum, vadd(vload(sum), acc[t]));
        }
      }
    }
  }
  for (std::int64_t o = 0; o < O; ++o)
    for (std::int64_t t = 0; t < taps; ++t)
      for (int l = 0; l < kLanes; ++l) dw_part[t * O + o] += sums[static_cast<std::size_t>((o * taps + t) * kLanes + l)];
}

int image_threads(const Conv2DGeometry& g) { return threads_for_work(g.n, g.oh * g.ow * g.kh * g.kw * g.o); }

}  // namespace

void conv2d_direct_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                           bool relu) {
  const std::int64_t per_image = g.oh * g.ow * g.o;
  parallel_parts(0, g.n, image_threads(g), [&](int, std::int64_t n0, std::int64_t n1) {
    // A few images at a time, so that relu finds their outputs still in L2.
    for (std::int64_t a = n0; a < n1; a += 4) {
      const std::int64_t b = std::min(n1, a + 4);
      if (g.o <= kLanes) {
        forward_images<1>(g, x, w, bias, y, a, b);
      } else {
        forward_images<2>(g, x, w, bias, y, a, b);
      }
      if (relu) relu_floats(y + a * per_image, (b - a) * per_image);
    }
  });
}

void conv2d_direct_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  const std::int64_t size = g.kh * g.kw * g.o;
  const int threads = image_threads(g);
  std::vector<float> parts(static_cast<std::size_t>(threads * size), 0.0f);
  const bool by_pixels = pixel_vectorised_filter_grad(g) && g.ow <= 64 * kLanes;
  parallel_parts(0, g.n, threads, [&](int t, std::int64_t n0, std::int64_t n1) {
    if (by_pixels) {
      filter_grad_images_by_pixels(g, x, dy, parts.data() + t * size, n0, n1);
    } else if (g.o <= kLanes) {
      filter_grad_images_one_vector(g, x, dy, parts.data() + t * size, n0, n1);
    } else {
      filter_grad_images_two_vectors(g, x, dy, parts.data() + t * size, n0, n1);
    }
  });
  for (std::int64_t i = 0; i < size; ++i) {
    float s = 0.0f;
    for (int t = 0; t < threads; ++t) s += parts[static_cast<std::size_t>(t * size + i)];
    dw[i] = s;
  }
}
#else
void conv2d_direct_forward(const Conv2DGeometry&, const float*, const float*, const float*, float*, bool) {}
void conv2d_direct_backprop_filter(const Conv2DGeometry&, const float*, const float*, float*) {}
#endif

}  // namespace synapse::cpu::SYNAPSE_KERNEL_ISA
#include "backend/cpu/isa_end.h"

#if SYNAPSE_KERNEL_DISPATCH
namespace synapse::cpu {
SYNAPSE_ISA_VARIANTS(conv2d_direct_supported)
SYNAPSE_ISA_VARIANTS(conv2d_direct_forward)
SYNAPSE_ISA_VARIANTS(conv2d_direct_backprop_filter)

bool conv2d_direct_supported(const Conv2DGeometry& g) { return SYNAPSE_DISPATCH(conv2d_direct_supported)(g); }
void conv2d_direct_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                           bool relu) {
  SYNAPSE_DISPATCH(conv2d_direct_forward)(g, x, w, bias, y, relu);
}
void conv2d_direct_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  SYNAPSE_DISPATCH(conv2d_direct_backprop_filter)(g, x, dy, dw);
}
}  // namespace synapse::cpu
#endif  // SYNAPSE_KERNEL_DISPATCH
