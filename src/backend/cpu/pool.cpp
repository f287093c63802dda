#include "backend/cpu/pool.h"

#include <algorithm>
#include <vector>

#include "core/parallel.h"

#include "backend/cpu/isa_begin.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu::SYNAPSE_KERNEL_ISA {
namespace {

// The real (unpadded) cells of the window of output pixel (oy, ox): rows [y0, y1), columns [x0, x1).
struct Window {
  std::int64_t y0, y1, x0, x1;
  std::int64_t count() const { return (y1 - y0) * (x1 - x0); }
};

Window window_of(const Pool2DGeometry& g, std::int64_t oy, std::int64_t ox) {
  const std::int64_t ty = oy * g.stride_h - g.pad_top, tx = ox * g.stride_w - g.pad_left;
  return {std::max<std::int64_t>(ty, 0), std::min(ty + g.kh, g.h), std::max<std::int64_t>(tx, 0),
          std::min(tx + g.kw, g.w)};
}

// Runs f(lo, hi) over output rows u = n * OH + oy, in parallel. A scatter kernel adds into the input
// rows of each window; when windows overlap vertically (stride_h < kh) two output rows share input
// rows, so threads then take whole images instead.
template <class F> void over_output_rows(const Pool2DGeometry& g, bool scatter, F&& f) {
  const std::int64_t per_row = std::max<std::int64_t>(1, g.ow * g.kh * g.kw * g.c);
  if (!scatter || g.stride_h >= g.kh) {
    parallel_for(0, g.n * g.oh, std::max<std::int64_t>(1, kElementwiseGrain / per_row), f);
    return;
  }
  parallel_for(0, g.n, std::max<std::int64_t>(1, kElementwiseGrain / (per_row * std::max<std::int64_t>(g.oh, 1))),
               [&](std::int64_t lo, std::int64_t hi) { f(lo * g.oh, hi * g.oh); });
}

void zero(float* p, std::int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) { std::fill(p + lo, p + hi, 0.0f); });
}

// idx[c] = flat index in x of the first maximum of channel c over the window (row-major window order).
// val is scratch of C floats.
void window_argmax(const Pool2DGeometry& g, const float* x, std::int64_t n, const Window& win, float* val,
                   std::int64_t* idx) {
  const std::int64_t C = g.c;
  const std::int64_t first = ((n * g.h + win.y0) * g.w + win.x0) * C;
  for (std::int64_t c = 0; c < C; ++c) {
    val[c] = x[first + c];
    idx[c] = first + c;
  }
  for (std::int64_t iy = win.y0; iy < win.y1; ++iy) {
    for (std::int64_t ix = win.x0; ix < win.x1; ++ix) {
      const std::int64_t base = ((n * g.h + iy) * g.w + ix) * C;
      const float* s = x + base;
      for (std::int64_t c = 0; c < C; ++c) {
        const bool better = s[c] > val[c];  // strict: the first maximum keeps the gradient
        val[c] = better ? s[c] : val[c];
        idx[c] = better ? base + c : idx[c];
      }
    }
  }
}

// Calls f(y_offset, idx) for every output pixel, idx[c] being the flat argmax of channel c in x.
template <class F> void for_each_argmax(const Pool2DGeometry& g, const float* x, bool scatter, F&& f) {
  over_output_rows(g, scatter, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> val(static_cast<std::size_t>(g.c));
    std::vector<std::int64_t> idx(static_cast<std::size_t>(g.c));
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t n = u / g.oh, oy = u % g.oh;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        window_argmax(g, x, n, window_of(g, oy, ox), val.data(), idx.data());
        f((u * g.ow + ox) * g.c, idx.data());
      }
    }
  });
}

}  // namespace

void max_pool2d(const Pool2DGeometry& g, const float* x, float* y) {
  const std::int64_t C = g.c;
#if SYNAPSE_AVX2
  // 2x2 windows at stride 2 without padding (the classic pooling): four masked vector loads per output
  // pixel and kLanes channels (vec.h's vf: AVX-512 or AVX2); a runtime-length loop over a few channels
  // (LeNet-5's 6) would stay scalar. Each later element replaces the running max only when greater,
  // exactly as the loop below (NaN too).
  if (g.kh == 2 && g.kw == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_top == 0 && g.pad_left == 0 &&
      2 * g.oh <= g.h && 2 * g.ow <= g.w) {
    over_output_rows(g, false, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t u = lo; u < hi; ++u) {
        const std::int64_t n = u / g.oh, oy = u % g.oh;
        const float* r0 = x + (n * g.h + 2 * oy) * g.w * C;
        const float* r1 = r0 + g.w * C;
        float* out = y + u * g.ow * C;
        for (std::int64_t ox = 0; ox < g.ow; ++ox, out += C)
          for (std::int64_t c0 = 0; c0 < C; c0 += kLanes) {
            const vmask m = vmask_first(C - c0);
            const std::int64_t a = 2 * ox * C + c0, b = a + C;
            vf v = vload(r0 + a, m);
            v = vgreater_of(vload(r0 + b, m), v);
            v = vgreater_of(vload(r1 + a, m), v);
            v = vgreater_of(vload(r1 + b, m), v);
            vstore(out + c0, v, m);
          }
      }
    });
    return;
  }
#endif
  over_output_rows(g, false, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t n = u / g.oh, oy = u % g.oh;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const Window win = window_of(g, oy, ox);
        float* out = y + (u * g.ow + ox) * C;
        const float* first = x + ((n * g.h + win.y0) * g.w + win.x0) * C;
        std::copy(first, first + C, out);
        for (std::int64_t iy = win.y0; iy < win.y1; ++iy) {
          for (std::int64_t ix = win.x0; ix < win.x1; ++ix) {
            const float* s = x + ((n * g.h + iy) * g.w + ix) * C;
            for (std::int64_t c = 0; c < C; ++c) out[c] = s[c] > out[c] ? s[c] : out[c];
          }
        }
      }
    }
  });
}

void avg_pool2d(const Pool2DGeometry& g, const float* x, float* y) {
  const std::int64_t C = g.c;
  over_output_rows(g, false, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t n = u / g.oh, oy = u % g.oh;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const Window win = window_of(g, oy, ox);
        float* out = y + (u * g.ow + ox) * C;
        std::fill(out, out + C, 0.0f);
        for (std::int64_t iy = win.y0; iy < win.y1; ++iy) {
          for (std::int64_t ix = win.x0; ix < win.x1; ++ix) {
            const float* s = x + ((n * g.h + iy) * g.w + ix) * C;
            for (std::int64_t c = 0; c < C; ++c) out[c] += s[c];
          }
        }
        const float inv = 1.0f / static_cast<float>(std::max<std::int64_t>(win.count(), 1));
        for (std::int64_t c = 0; c < C; ++c) out[c] *= inv;
      }
    }
  });
}

namespace {

// The windows tile the input: no padding and stride == window, so every input cell is in at most
// one window (the classic 2x2 / stride 2 pooling).
bool tiled(const Pool2DGeometry& g) {
  return g.stride_h == g.kh && g.stride_w == g.kw && g.pad_top == 0 && g.pad_left == 0 && g.oh * g.kh <= g.h &&
         g.ow * g.kw <= g.w && g.kh * g.kw <= 256;
}

// The window position (0 .. cells - 1, row-major) of the first maximum of each of a block's channels,
// the window's cells at s0 + offset[t].
#if SYNAPSE_AVX512
__m512i block_argmax(const float* s0, const std::int64_t* offset, std::int64_t cells, __mmask16 m) {
  __m512 best = _mm512_maskz_loadu_ps(m, s0);
  __m512i arg = _mm512_setzero_si512();
  for (std::int64_t t = 1; t < cells; ++t) {
    const __m512 v = _mm512_maskz_loadu_ps(m, s0 + offset[t]);
    const __mmask16 better = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);  // strict: first maximum wins
    best = _mm512_mask_mov_ps(best, better, v);
    arg = _mm512_mask_mov_epi32(arg, better, _mm512_set1_epi32(static_cast<int>(t)));
  }
  return arg;
}
#else
template <std::int64_t B>
void block_argmax(const float* s0, const std::int64_t* offset, std::int64_t cells, std::int64_t nb, std::int32_t* arg) {
  float best[B];
  for (std::int64_t c = 0; c < nb; ++c) {
    best[c] = s0[c];
    arg[c] = 0;
  }
  for (std::int64_t t = 1; t < cells; ++t) {
    const float* s = s0 + offset[t];
    for (std::int64_t c = 0; c < nb; ++c) {
      const bool better = s[c] > best[c];  // strict: the first maximum keeps the gradient
      best[c] = better ? s[c] : best[c];
      arg[c] = better ? static_cast<std::int32_t>(t) : arg[c];
    }
  }
}
#endif

// max_pool2d_grad for tiled windows: each window writes all its cells (dy at the first maximum, 0
// elsewhere), so there is no zero fill and no scatter, and output rows are independent. Channels go
// in blocks of 16, the argmax kept as the window position.
void max_pool2d_grad_tiled(const Pool2DGeometry& g, const float* x, const float* dy, float* dx) {
  constexpr std::int64_t B = 16;
  const std::int64_t C = g.c, cells = g.kh * g.kw;
  if (g.oh * g.kh < g.h || g.ow * g.kw < g.w) zero(dx, g.n * g.h * g.w * C);  // cells no window covers
  // Offsets of the window's cells from its first one (computed once: no divisions in the loops).
  std::int64_t offset[256];
  for (std::int64_t t = 0; t < cells; ++t) offset[t] = ((t / g.kw) * g.w + t % g.kw) * C;
  over_output_rows(g, false, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t n = u / g.oh, oy = u % g.oh;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const float* d = dy + (u * g.ow + ox) * C;
        const std::int64_t first = ((n * g.h + oy * g.kh) * g.w + ox * g.kw) * C;
        for (std::int64_t c0 = 0; c0 < C; c0 += B) {
          const std::int64_t nb = std::min(B, C - c0);
          const float* s0 = x + first + c0;
          float* o0 = dx + first + c0;
#if SYNAPSE_AVX512
          // In registers: one lane per channel, the argmax as a lane of window positions.
          const __mmask16 m = static_cast<__mmask16>((1u << nb) - 1u);
          const __m512i arg = block_argmax(s0, offset, cells, m);
          const __m512 dv = _mm512_maskz_loadu_ps(m, d + c0);
          for (std::int64_t t = 0; t < cells; ++t) {
            const __mmask16 hit = _mm512_cmpeq_epi32_mask(arg, _mm512_set1_epi32(static_cast<int>(t)));
            _mm512_mask_storeu_ps(o0 + offset[t], m, _mm512_maskz_mov_ps(hit, dv));
          }
#else
          std::int32_t arg[B];
          block_argmax<B>(s0, offset, cells, nb, arg);
          for (std::int64_t t = 0; t < cells; ++t) {
            float* o = o0 + offset[t];
            for (std::int64_t c = 0; c < nb; ++c) o[c] = arg[c] == t ? d[c0 + c] : 0.0f;
          }
#endif
        }
      }
    }
  });
}

// max_pool2d_grad for windows that overlap or are cut by the padding (the CIFAR model's 3x3 stride 2
// SAME): dx is zeroed, then each window adds dy at its first maximum. Whole windows go as in the tiled
// kernel (16 channels at a time, the argmax kept as the window position, only the lanes that hit read
// and write dx); windows cut by the padding take window_argmax. Threads take whole images when windows
// overlap vertically (over_output_rows).
void max_pool2d_grad_accumulate(const Pool2DGeometry& g, const float* x, const float* dy, float* dx) {
  constexpr std::int64_t B = 16;
  const std::int64_t C = g.c, cells = g.kh * g.kw;
  zero(dx, g.n * g.h * g.w * C);
  std::int64_t offset[256];
  for (std::int64_t t = 0; t < cells; ++t) offset[t] = ((t / g.kw) * g.w + t % g.kw) * C;
  over_output_rows(g, /*scatter=*/true, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> val(static_cast<std::size_t>(C));
    std::vector<std::int64_t> idx(static_cast<std::size_t>(C));
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t n = u / g.oh, oy = u % g.oh;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const float* d = dy + (u * g.ow + ox) * C;
        const Window win = window_of(g, oy, ox);
        if (win.count() != cells) {
          window_argmax(g, x, n, win, val.data(), idx.data());
          for (std::int64_t c = 0; c < C; ++c) dx[idx[c]] += d[c];
          continue;
        }
        const std::int64_t first = ((n * g.h + win.y0) * g.w + win.x0) * C;
        for (std::int64_t c0 = 0; c0 < C; c0 += B) {
          const std::int64_t nb = std::min(B, C - c0);
          const float* s0 = x + first + c0;
          float* o0 = dx + first + c0;
#if SYNAPSE_AVX512
          const __mmask16 m = static_cast<__mmask16>((1u << nb) - 1u);
          const __m512i arg = block_argmax(s0, offset, cells, m);
          const __m512 dv = _mm512_maskz_loadu_ps(m, d + c0);
          for (std::int64_t t = 0; t < cells; ++t) {
            const __mmask16 hit = m & _mm512_cmpeq_epi32_mask(arg, _mm512_set1_epi32(static_cast<int>(t)));
            if (hit == 0) continue;
            float* o = o0 + offset[t];
            _mm512_mask_storeu_ps(o, hit, _mm512_add_ps(_mm512_maskz_loadu_ps(hit, o), dv));
          }
#else
          std::int32_t arg[B];
          block_argmax<B>(s0, offset, cells, nb, arg);
          for (std::int64_t c = 0; c < nb; ++c) o0[offset[arg[c]] + c] += d[c0 + c];
#endif
        }
      }
    }
  });
}

}  // namespace

void max_pool2d_grad(const Pool2DGeometry& g, const float* x, const float* dy, float* dx) {
  if (tiled(g)) {
    max_pool2d_grad_tiled(g, x, dy, dx);
    return;
  }
  if (g.kh * g.kw <= 256) {
    max_pool2d_grad_accumulate(g, x, dy, dx);
    return;
  }
  zero(dx, g.n * g.h * g.w * g.c);
  for_each_argmax(g, x, /*scatter=*/true, [&](std::int64_t yo, const std::int64_t* idx) {
    for (std::int64_t c = 0; c < g.c; ++c) dx[idx[c]] += dy[yo + c];
  });
}

void max_pool2d_grad_grad(const Pool2DGeometry& g, const float* x, const float* gx, float* out) {
  for_each_argmax(g, x, /*scatter=*/false, [&](std::int64_t yo, const std::int64_t* idx) {
    for (std::int64_t c = 0; c < g.c; ++c) out[yo + c] = gx[idx[c]];
  });
}

void avg_pool2d_grad(const Pool2DGeometry& g, const float* dy, float* dx) {
  const std::int64_t C = g.c;
  zero(dx, g.n * g.h * g.w * C);
  over_output_rows(g, /*scatter=*/true, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t n = u / g.oh, oy = u % g.oh;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const Window win = window_of(g, oy, ox);
        const float inv = 1.0f / static_cast<float>(std::max<std::int64_t>(win.count(), 1));
        const float* d = dy + (u * g.ow + ox) * C;
        for (std::int64_t iy = win.y0; iy < win.y1; ++iy) {
          for (std::int64_t ix = win.x0; ix < win.x1; ++ix) {
            float* t = dx + ((n * g.h + iy) * g.w + ix) * C;
            for (std::int64_t c = 0; c < C; ++c) t[c] += d[c] * inv;
          }
        }
      }
    }
  });
}

}  // namespace synapse::cpu::SYNAPSE_KERNEL_ISA
#include "backend/cpu/isa_end.h"

#if SYNAPSE_KERNEL_DISPATCH
namespace synapse::cpu {
SYNAPSE_ISA_VARIANTS(max_pool2d)
SYNAPSE_ISA_VARIANTS(avg_pool2d)
SYNAPSE_ISA_VARIANTS(max_pool2d_grad)
SYNAPSE_ISA_VARIANTS(max_pool2d_grad_grad)
SYNAPSE_ISA_VARIANTS(avg_pool2d_grad)

void max_pool2d(const Pool2DGeometry& g, const float* x, float* y) { SYNAPSE_DISPATCH(max_pool2d)(g, x, y); }
void avg_pool2d(const Pool2DGeometry& g, const float* x, float* y) { SYNAPSE_DISPATCH(avg_pool2d)(g, x, y); }
void max_pool2d_grad(const Pool2DGeometry& g, const float* x, const float* dy, float* dx) {
  SYNAPSE_DISPATCH(max_pool2d_grad)(g, x, dy, dx);
}
void max_pool2d_grad_grad(const Pool2DGeometry& g, const float* x, const float* gx, float* out) {
  SYNAPSE_DISPATCH(max_pool2d_grad_grad)(g, x, gx, out);
}
void avg_pool2d_grad(const Pool2DGeometry& g, const float* dy, float* dx) { SYNAPSE_DISPATCH(avg_pool2d_grad)(g, dy, dx); }

// ---- reference kernels (compiled once): one output element at a time, every window tap tested against the bounds ----
namespace {

// Calls f(x_index) for each real cell of the window of output element (n, oy, ox, c), row-major.
template <class F> void for_each_cell(const Pool2DGeometry& g, std::int64_t n, std::int64_t oy, std::int64_t ox,
                                      std::int64_t c, F&& f) {
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    for (std::int64_t kx = 0; kx < g.kw; ++kx) {
      const std::int64_t iy = oy * g.stride_h - g.pad_top + ky, ix = ox * g.stride_w - g.pad_left + kx;
      if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) f(((n * g.h + iy) * g.w + ix) * g.c + c);
    }
  }
}

// Calls f(y_index, argmax x_index) for every output element.
template <class F> void for_each_output_argmax(const Pool2DGeometry& g, const float* x, F&& f) {
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t c = 0; c < g.c; ++c) {
          std::int64_t best = -1;
          for_each_cell(g, n, oy, ox, c, [&](std::int64_t i) {
            if (best < 0 || x[i] > x[best]) best = i;
          });
          f(((n * g.oh + oy) * g.ow + ox) * g.c + c, best);
        }
}

template <class F> void for_each_output(const Pool2DGeometry& g, F&& f) {
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox)
        for (std::int64_t c = 0; c < g.c; ++c) f(((n * g.oh + oy) * g.ow + ox) * g.c + c, n, oy, ox, c);
}

}  // namespace

void max_pool2d_reference(const Pool2DGeometry& g, const float* x, float* y) {
  for_each_output_argmax(g, x, [&](std::int64_t yi, std::int64_t xi) { y[yi] = xi >= 0 ? x[xi] : 0.0f; });
}

void avg_pool2d_reference(const Pool2DGeometry& g, const float* x, float* y) {
  for_each_output(g, [&](std::int64_t yi, std::int64_t n, std::int64_t oy, std::int64_t ox, std::int64_t c) {
    double acc = 0.0;
    std::int64_t count = 0;
    for_each_cell(g, n, oy, ox, c, [&](std::int64_t i) {
      acc += x[i];
      ++count;
    });
    y[yi] = count > 0 ? static_cast<float>(acc / static_cast<double>(count)) : 0.0f;
  });
}

void max_pool2d_grad_reference(const Pool2DGeometry& g, const float* x, const float* dy, float* dx) {
  std::fill(dx, dx + g.n * g.h * g.w * g.c, 0.0f);
  for_each_output_argmax(g, x, [&](std::int64_t yi, std::int64_t xi) {
    if (xi >= 0) dx[xi] += dy[yi];
  });
}

void max_pool2d_grad_grad_reference(const Pool2DGeometry& g, const float* x, const float* gx, float* out) {
  for_each_output_argmax(g, x, [&](std::int64_t yi, std::int64_t xi) { out[yi] = xi >= 0 ? gx[xi] : 0.0f; });
}

void avg_pool2d_grad_reference(const Pool2DGeometry& g, const float* dy, float* dx) {
  std::fill(dx, dx + g.n * g.h * g.w * g.c, 0.0f);
  for_each_output(g, [&](std::int64_t yi, std::int64_t n, std::int64_t oy, std::int64_t ox, std::int64_t c) {
    std::int64_t count = 0;
    for_each_cell(g, n, oy, ox, c, [&](std::int64_t) { ++count; });
    for_each_cell(g, n, oy, ox, c, [&](std::int64_t i) { dx[i] += dy[yi] / static_cast<float>(count); });
  });
}

}  // namespace synapse::cpu
#endif  // SYNAPSE_KERNEL_DISPATCH
