#include "backend/cpu/conv.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "backend/cpu/conv_bf16.h"
#include "backend/cpu/gemm.h"
#include "core/parallel.h"
#include "synapse/device.h"

#include "backend/cpu/isa_begin.h"
#include "backend/cpu/epilogue.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu::SYNAPSE_KERNEL_ISA {
namespace {

// The thread's column workspace (blocking keeps it at about kBlockFloats floats), with slack for
// full-width stores past the last run (vec.h).
float* workspace(std::int64_t n) { return thread_scratch(0, n + kOverrun); }

// col[r - r0, :] = the patch of output pixel r, for r in [r0, r1): KH*KW runs of C floats (zeros
// where the window hangs over the padding). col is [r1 - r0, K] plus kOverrun floats of slack (runs
// are written with full-width stores). Serial: the conv kernels call it from their own threads.
void im2col(const Conv2DGeometry& g, const float* x, std::int64_t r0, std::int64_t r1, float* col) {
  const std::int64_t K = g.patch(), C = g.c, run = g.kw * C;
  {
    const std::int64_t lo = r0, hi = r1;
    // The pixel (n, oy, ox) of row lo, then stepped along: no divisions per row (with small patches,
    // three 64-bit divisions per row cost as much as the copies).
    std::int64_t n = lo / (g.oh * g.ow), oy = (lo / g.ow) % g.oh, ox = lo % g.ow;
    float* dst = col + (lo - r0) * K;
    for (std::int64_t r = lo; r < hi; ++r) {
      const std::int64_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
      // The KW*C run of one filter row is contiguous in x when it is undilated and fully inside.
      const bool contiguous = g.dilation_w == 1 && ix0 >= 0 && ix0 + g.kw <= g.w;
      for (std::int64_t ky = 0; ky < g.kh; ++ky, dst += run) {
        const std::int64_t iy = iy0 + ky * g.dilation_h;
        if (iy < 0 || iy >= g.h) {
          zero_floats_overrun(dst, run);
          continue;
        }
        const float* xrow = x + (n * g.h + iy) * g.w * C;
        if (contiguous) {
          copy_floats_overrun(dst, xrow + ix0 * C, run);
          continue;
        }
        for (std::int64_t kx = 0; kx < g.kw; ++kx) {
          const std::int64_t ix = ix0 + kx * g.dilation_w;
          float* d = dst + kx * C;
          if (ix < 0 || ix >= g.w) {
            zero_floats_overrun(d, C);
          } else {
            copy_floats_overrun(d, xrow + ix * C, C);
          }
        }
      }
      if (++ox == g.ow) {
        ox = 0;
        if (++oy == g.oh) {
          oy = 0;
          ++n;
        }
      }
    }
  }
}

// Along one spatial axis: for each input position i, the (filter tap, output position) pairs that
// read it, i.e. out * stride - pad + tap * dilation == i. Built once per call, so col2im's inner
// loops do no division.
struct TapTable {
  std::vector<std::int64_t> start;  // pairs of input i are [start[i], start[i + 1])
  std::vector<std::int64_t> tap, out;
};

TapTable tap_table(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride, std::int64_t dilation,
                   std::int64_t pad) {
  TapTable t;
  t.start.reserve(static_cast<std::size_t>(in + 1));
  for (std::int64_t i = 0; i < in; ++i) {
    t.start.push_back(static_cast<std::int64_t>(t.tap.size()));
    for (std::int64_t kk = 0; kk < k; ++kk) {
      const std::int64_t p = i + pad - kk * dilation;  // = o * stride
      if (p < 0 || p % stride != 0 || p / stride >= out) continue;
      t.tap.push_back(kk);
      t.out.push_back(p / stride);
    }
  }
  t.start.push_back(static_cast<std::int64_t>(t.tap.size()));
  return t;
}

// dx += the patches dcol of output pixels [r0, r1) put back where im2col took them from, as a gather
// over input rows (n, iy): each input pixel sums the patch entries (of rows in [r0, r1)) that were
// copied from it. dcol is [r1 - r0, K]. Serial; the calling thread owns dx up to dx_limit (full-width
// adds may rewrite elements up to there with their own values).
void col2im(const Conv2DGeometry& g, const TapTable& ys, const TapTable& xs, const float* dcol, std::int64_t r0,
            std::int64_t r1, float* dx, const float* dx_limit) {
  const std::int64_t K = g.patch(), C = g.c;
  // The input rows this chunk of output rows can touch.
  const std::int64_t n0 = r0 / (g.oh * g.ow), oy0 = (r0 / g.ow) % g.oh;
  const std::int64_t n1 = (r1 - 1) / (g.oh * g.ow), oy1 = ((r1 - 1) / g.ow) % g.oh;
  const std::int64_t u0 = n0 * g.h + std::max<std::int64_t>(0, oy0 * g.stride_h - g.pad_top);
  const std::int64_t u1 =
      n1 * g.h + std::min<std::int64_t>(g.h, oy1 * g.stride_h - g.pad_top + (g.kh - 1) * g.dilation_h + 1);
  if (g.stride_w == 1 && g.dilation_w == 1) {
    // Unit stride along x: one (output pixel, ky) pair adds a contiguous run of kw * C floats of its
    // column row to a contiguous run of dx (the kx taps land on adjacent pixels). A scatter, so each
    // add is a few full vectors instead of kh * kw adds of C floats per input pixel.
    (void)dx_limit;
    const std::int64_t per_image = g.oh * g.ow;
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t n = r / per_image, oy = (r / g.ow) % g.oh, ox = r % g.ow;
      const std::int64_t x0 = ox - g.pad_left;
      const std::int64_t kx0 = std::max<std::int64_t>(0, -x0), kx1 = std::min<std::int64_t>(g.kw, g.w - x0);
      if (kx0 >= kx1) continue;
      const std::int64_t len = (kx1 - kx0) * C;
      for (std::int64_t ky = 0; ky < g.kh; ++ky) {
        const std::int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
        if (iy < 0 || iy >= g.h) continue;
        const float* src = dcol + (r - r0) * K + (ky * g.kw + kx0) * C;
        float* dst = dx + ((n * g.h + iy) * g.w + x0 + kx0) * C;
        for (std::int64_t j = 0; j < len; ++j) dst[j] += src[j];
      }
    }
    return;
  }
  const std::int64_t *y_start = ys.start.data(), *y_tap = ys.tap.data(), *y_out = ys.out.data();
  const std::int64_t *x_start = xs.start.data(), *x_tap = xs.tap.data(), *x_out = xs.out.data();
  {
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t n = u / g.h, iy = u % g.h;
      for (std::int64_t ix = 0; ix < g.w; ++ix) {
        float* d = dx + (u * g.w + ix) * C;
        for (std::int64_t a = y_start[iy]; a < y_start[iy + 1]; ++a) {
          const std::int64_t row0 = (n * g.oh + y_out[a]) * g.ow;  // first output row of this output line
          for (std::int64_t b = x_start[ix]; b < x_start[ix + 1]; ++b) {
            const std::int64_t r = row0 + x_out[b];
            if (r < r0 || r >= r1) continue;
            add_floats_within(d, dcol + (r - r0) * K + (y_tap[a] * g.kw + x_tap[b]) * C, C, dx_limit);
          }
        }
      }
    }
  }
}

}  // namespace

namespace {

// Output rows per block: a block's column matrix (rows x K) stays within kBlockFloats, so im2col writes
// it into the thread's cache and the GEMM reads it from there, and there are enough blocks for every
// thread.
std::int64_t block_rows(const Conv2DGeometry& g, std::int64_t rows) {
  const std::int64_t by_cache = std::max<std::int64_t>(1, kBlockFloats / std::max<std::int64_t>(g.patch(), 1));
  const std::int64_t threads = std::max(1, threads_for(rows, 1));
  return std::max<std::int64_t>(1, std::min(by_cache, (rows + threads - 1) / threads));
}


// In bf16 (device.h) the convolutions take the bf16 implicit-GEMM kernels (conv_bf16.h) where they
// apply, else the im2col path, whose gemm() calls multiply in bf16. Single-channel convolutions stay
// fp32 in either precision and on every kernel path (the direct kernels where the path has them, the
// fp32 implicit or im2col ones elsewhere): their 25-tap sums are too short for bf16 to pay (cnn conv1
// through im2col + bf16 GEMM: 2.8x slower).
bool fp32_kernels(const Conv2DGeometry& g) { return g.c == 1 || matmul_precision() == MatmulPrecision::fp32; }

}  // namespace

// One parallel region: each thread takes a contiguous run of row blocks and, block by block, builds
// the columns into its own workspace and multiplies them with single-threaded GEMMs.
void conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y, bool relu) {
  if (conv2d_direct_supported(g)) {
    conv2d_direct_forward(g, x, w, bias, y, relu);
    return;
  }
  if (fp32_kernels(g) && conv2d_implicit_forward_supported(g)) {
    conv2d_implicit_forward(g, x, w, bias, y, relu);
    return;
  }
  if (!fp32_kernels(g) && conv2d_bf16_forward_supported(g)) {
    conv2d_bf16_forward(g, x, w, bias, y, relu);
    return;
  }
  const MatmulPrecisionGuard precision(fp32_kernels(g) ? MatmulPrecision::fp32 : matmul_precision());
  const std::int64_t rows = g.rows(), K = g.patch(), O = g.o;
  const float beta = bias != nullptr ? 1.0f : 0.0f;  // the GEMM adds onto the bias
  if (g.pointwise()) {  // the input rows are the columns: one GEMM, threaded inside
    if (bias != nullptr) parallel_fill_rows(y, bias, rows, O);
    gemm({.m = rows, .n = O, .k = K, .a = x, .b = w, .beta = beta, .c = y});
    if (relu) relu_in_place(y, rows * O);
    return;
  }
  const std::int64_t block = block_rows(g, rows);
  const std::int64_t blocks = (rows + block - 1) / block;
  parallel_parts(0, blocks, threads_for_work(blocks, block * K * O), [&](int, std::int64_t b0, std::int64_t b1) {
    float* col = workspace(block * K);
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
      if (bias != nullptr) fill_rows(y + r0 * O, bias, r1 - r0, O);
      im2col(g, x, r0, r1, col);
      gemm({.m = r1 - r0, .n = O, .k = K, .a = col, .b = w, .beta = beta, .c = y + r0 * O});
      if (relu) relu_floats(y + r0 * O, (r1 - r0) * O);
    }
  });
}

// Threads take whole images, so each writes only its own images' dx (col2im adds every patch back
// where it came from, and patches of neighbouring output rows overlap). Per block of images: zero
// their dx, dcol = dy_rows x w^T into the thread's workspace, col2im.
void conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  if (fp32_kernels(g) && conv2d_implicit_backprop_input_supported(g)) {
    conv2d_implicit_backprop_input(g, dy, w, dx);
    return;
  }
  if (!fp32_kernels(g) && conv2d_bf16_backprop_input_supported(g)) {
    conv2d_bf16_backprop_input(g, dy, w, dx);
    return;
  }
  const MatmulPrecisionGuard precision(fp32_kernels(g) ? MatmulPrecision::fp32 : matmul_precision());
  const std::int64_t rows = g.rows(), K = g.patch(), O = g.o;
  if (g.pointwise()) {  // dx [rows, C] = dy [rows, O] x w^T
    gemm({.trans_b = true, .m = rows, .n = K, .k = O, .a = dy, .b = w, .c = dx});
    return;
  }
  const std::int64_t per_image = g.oh * g.ow, image_floats = g.h * g.w * g.c;
  if (g.n == 0 || per_image == 0) {
    std::fill(dx, dx + g.n * image_floats, 0.0f);
    return;
  }
  const TapTable ys = tap_table(g.h, g.oh, g.kh, g.stride_h, g.dilation_h, g.pad_top);
  const TapTable xs = tap_table(g.w, g.ow, g.kw, g.stride_w, g.dilation_w, g.pad_left);
  // Rows per GEMM: whole images when they fit the block budget, else part of one image.
  const std::int64_t step = std::max<std::int64_t>(1, std::min(rows, kBlockFloats / std::max<std::int64_t>(K, 1)));
  const int threads = threads_for_work(g.n, per_image * K * O);
  parallel_parts(0, g.n, threads, [&](int, std::int64_t n0, std::int64_t n1) {
    std::fill(dx + n0 * image_floats, dx + n1 * image_floats, 0.0f);
    const std::int64_t end = n1 * per_image;
    float* dcol = workspace(std::min(step, end - n0 * per_image) * K);
    for (std::int64_t r0 = n0 * per_image; r0 < end; r0 += step) {
      const std::int64_t r1 = std::min(end, r0 + step);
      gemm({.trans_b = true, .m = r1 - r0, .n = K, .k = O, .a = dy + r0 * O, .b = w, .c = dcol});
      col2im(g, ys, xs, dcol, r0, r1, dx, dx + n1 * image_floats);
    }
  });
}

// Each thread sums col^T x dy over its own row blocks into a partial [K, O] (the first thread straight
// into dw), and the partials are added at the end.
void conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  if (conv2d_direct_supported(g)) {
    conv2d_direct_backprop_filter(g, x, dy, dw);
    return;
  }
  if (fp32_kernels(g) && conv2d_implicit_backprop_filter_supported(g)) {
    conv2d_implicit_backprop_filter(g, x, dy, dw);
    return;
  }
  if (!fp32_kernels(g) && conv2d_bf16_backprop_filter_supported(g)) {
    conv2d_bf16_backprop_filter(g, x, dy, dw);
    return;
  }
  const MatmulPrecisionGuard precision(fp32_kernels(g) ? MatmulPrecision::fp32 : matmul_precision());
  const std::int64_t rows = g.rows(), K = g.patch(), O = g.o;
  if (rows == 0) {
    std::fill(dw, dw + K * O, 0.0f);
    return;
  }
  const bool pointwise = g.pointwise();
  const std::int64_t block = pointwise ? rows : block_rows(g, rows);
  const std::int64_t blocks = (rows + block - 1) / block;
  const int threads = pointwise ? 1 : threads_for_work(blocks, block * K * O);
  if (threads <= 1) {  // one thread (or a pointwise conv: one GEMM, threaded inside)
    float* col = pointwise ? nullptr : workspace(std::min(block, rows) * K);
    for (std::int64_t r0 = 0; r0 < rows; r0 += block) {
      const std::int64_t r1 = std::min(rows, r0 + block);
      const float* a = x + r0 * K;
      if (!pointwise) {
        im2col(g, x, r0, r1, col);
        a = col;
      }
      gemm({.trans_a = true, .m = K, .n = O, .k = r1 - r0, .a = a, .lda = K, .b = dy + r0 * O,
            .beta = r0 == 0 ? 0.0f : 1.0f, .c = dw});
    }
    return;
  }
  std::vector<float> partials(static_cast<std::size_t>((threads - 1) * K * O));
  parallel_parts(0, blocks, threads, [&](int t, std::int64_t b0, std::int64_t b1) {
    float* acc = t == 0 ? dw : partials.data() + (t - 1) * K * O;
    float* col = workspace(block * K);
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
      im2col(g, x, r0, r1, col);
      gemm({.trans_a = true, .m = K, .n = O, .k = r1 - r0, .a = col, .lda = K, .b = dy + r0 * O,
            .beta = b == b0 ? 0.0f : 1.0f, .c = acc});
    }
  });
  parallel_for(0, K * O, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (int t = 1; t < threads; ++t) add_floats(dw + lo, partials.data() + (t - 1) * K * O + lo, hi - lo);
  });
}

}  // namespace synapse::cpu::SYNAPSE_KERNEL_ISA
#include "backend/cpu/isa_end.h"

#if SYNAPSE_KERNEL_DISPATCH
namespace synapse::cpu {

SYNAPSE_ISA_VARIANTS(conv2d_forward)
SYNAPSE_ISA_VARIANTS(conv2d_backprop_input)
SYNAPSE_ISA_VARIANTS(conv2d_backprop_filter)

void conv2d_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y, bool relu) {
  SYNAPSE_DISPATCH(conv2d_forward)(g, x, w, bias, y, relu);
}
void conv2d_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  SYNAPSE_DISPATCH(conv2d_backprop_input)(g, dy, w, dx);
}
void conv2d_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  SYNAPSE_DISPATCH(conv2d_backprop_filter)(g, x, dy, dw);
}

// ---- reference kernels (compiled once): direct loops over every (output pixel, filter tap, channel) ----

void conv2d_forward_reference(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                              bool relu) {
  for (std::int64_t i = 0; i < g.rows(); ++i)
    for (std::int64_t o = 0; o < g.o; ++o) y[i * g.o + o] = bias != nullptr ? bias[o] : 0.0f;
  for_each_conv_term(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) { y[yi] += x[xi] * w[wi]; });
  if (relu)
    for (std::int64_t i = 0; i < g.rows() * g.o; ++i) y[i] = y[i] < 0.0f ? 0.0f : y[i];
}

void conv2d_backprop_input_reference(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  std::fill(dx, dx + g.n * g.h * g.w * g.c, 0.0f);
  for_each_conv_term(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) { dx[xi] += dy[yi] * w[wi]; });
}

void conv2d_backprop_filter_reference(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  std::fill(dw, dw + g.patch() * g.o, 0.0f);
  for_each_conv_term(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) { dw[wi] += x[xi] * dy[yi]; });
}

}  // namespace synapse::cpu
#endif  // SYNAPSE_KERNEL_DISPATCH
