// Implicit-GEMM convolution for stride 1, dilation 1 (the cnn's conv2: [50, 14, 14, 32] * [5, 5, 32, 64]
// SAME), with AVX-512 or AVX2 (one source: vec.h's vf holds kLanes = 16 or 8 floats; "16" below is
// AVX-512's width). im2col copies every input pixel KH*KW times into a column matrix (for conv2 the
// 1.25 MB input becomes 31 MB of columns, written and read back, per pass); here the kernels read a
// zero-padded copy of the input instead (2 MB for conv2):
//
//   xpad [N, PH, PW, C], PH = OH + KH - 1, PW = OW + KW - 1 (pad_top / pad_left zeros before, the rest after)
//
// With stride 1 the KW*C patch values of filter row ky for output pixel (n, oy, ox) are contiguous in
// xpad, starting at xpad[n][oy + ky][ox][0], and those of consecutive output pixels start C floats
// apart. The HWIO filter for one ky is the row-major matrix [KW*C, O]. So the column matrix of im2col
// is read in place, one pointer per output pixel of a tile (tiles may wrap across output rows and
// images).
//
// - forward: y[p, :] = sum over ky, k of xpad[p + ky rows][k] * w[ky][k, :]; a register tile of R
//   output pixels x V vectors of 16 output channels.
// - input backprop: for stride 1 the transposed convolution is itself a stride-1 convolution of the
//   padded dy with the flipped, channel-swapped filter w'[ky][kx][o][c] = w[KH-1-ky][KW-1-kx][c][o] and
//   padding KH-1-pad_top / KW-1-pad_left before: the forward kernel runs it.
// - filter backprop: dw[ky][k, :] = sum over pixels p of xpad[p + ky rows][k] * dy[p, :]; a register
//   tile of R consecutive k x V vectors of O, summed over a chunk of pixels whose dy stays in L1.
//
// Each pass is one parallel region; threads take contiguous runs of output pixels and pad, just before
// their tiles reach it, each image they read into their own workspace (so it is still in cache).
#include <algorithm>
#include <memory>
#include <vector>

#include "backend/cpu/conv.h"
#include "core/parallel.h"

#include "backend/cpu/isa_begin.h"
#include "backend/cpu/vec.h"

namespace synapse::cpu::SYNAPSE_KERNEL_ISA {

namespace {

// Stride 1, no dilation, and padding before of at most KH-1 / KW-1 (SAME or VALID), so that both the
// convolution and its transposed form read a padded input with non-negative padding. Not pointwise
// (1x1): that is a plain GEMM already, without im2col. The kernels need AVX2 or AVX-512 (vec.h's vf:
// one source for both widths, the register tiles sized for each).
bool unit_stride(const Conv2DGeometry& g) {
#if SYNAPSE_AVX2
  return !g.pointwise() && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.pad_top >= 0 && g.pad_left >= 0 && g.pad_top < g.kh && g.pad_left < g.kw && g.rows() > 0 && g.c > 0 &&
         g.o > 0;
#else
  (void)g;
  return false;
#endif
}

// A forward tile streams the filter block [K, 64] from L2 (each tile reads all of it once), and a
// thread's partial filter gradient [K, O] is added to per chunk: both must stay well within L2.
bool fits_l2(std::int64_t k, std::int64_t o) { return k * o <= kBlockFloats; }

}  // namespace

// The conditions beyond unit_stride are where the kernels measured faster than im2col + GEMM (one
// vector of 16 outputs at least half used: with 4 outputs the forward ran at 23% of peak against
// im2col's 35%; the input backprop's outputs are the C input channels, and with 6 of them, LeNet-5's
// conv2, it ran at 17% against 40%).
bool conv2d_implicit_forward_supported(const Conv2DGeometry& g) {
  return unit_stride(g) && g.o >= 8 && fits_l2(g.patch(), std::min<std::int64_t>(g.o, 64));
}

bool conv2d_implicit_backprop_input_supported(const Conv2DGeometry& g) {
  return unit_stride(g) && g.c >= 16 && fits_l2(g.kh * g.kw * g.o, std::min<std::int64_t>(g.c, 64));
}

bool conv2d_implicit_backprop_filter_supported(const Conv2DGeometry& g) {
  return unit_stride(g) && g.o >= 8 && fits_l2(g.patch(), g.o);
}

#if SYNAPSE_AVX2
namespace {

// Floats of zeros after the padded images: a tile that runs past the end of a window reads them (and
// discards the products).
constexpr std::int64_t kSlack = 64;


// Output channels per block: kMaxV vectors, the widest register tile (4 x 16 with AVX-512's 32
// registers, 3 x 8 with AVX2's 16).
constexpr int kMaxV = kVecRegs == 32 ? 4 : 3;
constexpr std::int64_t kBlockCols = kMaxV * kLanes;

// Output channels per block for o channels. AVX2 balances the blocks (32 channels as 2 + 2 vectors,
// not 3 + 1: a 1-vector tile needs a broadcast per FMA); AVX-512 takes whole blocks of 64.
std::int64_t block_cols(std::int64_t o) {
  if (kVecRegs == 32) return kBlockCols;
  const std::int64_t vecs = (o + kLanes - 1) / kLanes, blocks = (vecs + kMaxV - 1) / kMaxV;
  return (vecs + blocks - 1) / blocks * kLanes;
}

// Consecutive output pixels a kernel reads at once: a forward tile (at most 12) or a filter chunk (64).
constexpr std::int64_t kPixelsAtOnce = 64;

// The images [n0, n1) of x [N, H, W, C], zero-padded to [PH, PW, C] each (pad_top rows and pad_left
// columns before, the rest after, cropped to the extent the windows read), one image at a time on
// demand, into a ring of slots(): as few as the kPixelsAtOnce consecutive pixels of a tile or a chunk
// can span, so a thread's padded images stay in its L2 (conv2's input gradient: 3 slots of 83 KB where
// one slot per image was 2 MB per thread, the whole L2, each line of it a miss from L3 when written).
// Measured on the Intel host of session 15 (two threads, 8 alternating runs): input gradient median
// 228 against 211 GFLOP/s, forward 252 against 246, both within that host's noise. Images a second
// block of output columns reads again (O > 64) are padded again. Serial; each thread owns one.
class PaddedImages {
 public:
  PaddedImages(const Conv2DGeometry& g, const float* x, std::int64_t n0, std::int64_t n1)
      : g_(g), x_(x), n0_(n0), ph_(g.oh + g.kh - 1), pw_(g.ow + g.kw - 1),
        slots_(std::min(n1 - n0, (kPixelsAtOnce + g.oh * g.ow - 1) / (g.oh * g.ow) + 1)),
        held_(static_cast<std::size_t>(slots_), -1),
        buf_(thread_scratch(0, slots_ * image_floats() + kSlack)) {
    zero_floats(buf_ + slots_ * image_floats(), kSlack);
  }
  std::int64_t image_floats() const { return ph_ * pw_ * g_.c; }
  std::int64_t pitch() const { return pw_ * g_.c; }  // floats per padded row
  const float* base() const { return buf_; }         // the slots' start (offsets of image() from here are stable)
  const float* image(std::int64_t n) {
    const std::int64_t slot = (n - n0_) % slots_;
    float* out = buf_ + slot * image_floats();
    if (held_[static_cast<std::size_t>(slot)] != n) {
      pad(n, out);
      held_[static_cast<std::size_t>(slot)] = n;
    }
    return out;
  }

 private:
  void pad(std::int64_t n, float* out) const {
    const std::int64_t C = g_.c, row = pw_ * C;
    const std::int64_t left = g_.pad_left * C, cols = std::min(g_.w, pw_ - g_.pad_left) * C;
    for (std::int64_t py = 0; py < ph_; ++py, out += row) {
      const std::int64_t iy = py - g_.pad_top;
      if (iy < 0 || iy >= g_.h) {
        zero_floats(out, row);
        continue;
      }
      zero_floats(out, left);
      copy_floats(out + left, x_ + (n * g_.h + iy) * g_.w * C, cols);
      zero_floats(out + left + cols, row - left - cols);
    }
  }
  const Conv2DGeometry& g_;
  const float* x_;
  std::int64_t n0_, ph_, pw_, slots_;
  std::vector<std::int64_t> held_;  // the image in each slot (-1: none yet)
  float* buf_;
};

// One step of an R x V register tile: acc[r][0, V) += s(r) * row[0, 16V), the last vector of the row
// masked by `tail`. V loads of the row and R broadcasts feed R*V FMAs. The forward and the filter
// gradient tiles below run it once per k and per pixel.
template <int R, int V, class Scalar>
[[gnu::always_inline]] inline void tile_step(vf (&acc)[R][V], const float* row, vmask tail, Scalar s) {
  vf rv[V];
#pragma GCC unroll 16
  for (int v = 0; v < V - 1; ++v) rv[v] = vload(row + kLanes * v);
  rv[V - 1] = vload(row + kLanes * (V - 1), tail);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const vf sv = vset1(s(r));
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[r][v] = vfma(sv, rv[v], acc[r][v]);
  }
}

// ---- forward ----

// Rows of a forward tile for V vectors of outputs: R*V accumulators of the 32 registers (24 for V >= 2),
// leaving room for the V filter vectors and the broadcast pixel value.
template <int V>
constexpr int kFwdRows = kVecRegs == 32 ? (V == 4 ? 6 : V == 3 ? 8 : 12) : (V >= 3 ? 4 : V == 2 ? 6 : 12);

// y[r, 0:16V) (rows ldy apart) = sum over ky < kh, k < run of a[r][ky * pitch + k] * w[ky * run + k, 0:16V)
// (w rows ldw apart; the last vector masked by `tail`), plus bias, then relu. The R x V accumulators
// stay in registers for the whole K = kh * run; per k, V filter loads and R broadcasts feed R*V FMAs.
// The filter (K x 16V floats, 200 KB for conv2) streams from L2 in address order.
template <int R, int V>
void forward_tile(const float* const* a, std::int64_t kh, std::int64_t run, std::int64_t pitch, const float* w,
                  std::int64_t ldw, vmask tail, const float* bias, bool relu, float* y, std::int64_t ldy) {
  vf acc[R][V];
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) {
    const vf b = bias == nullptr ? vzero()
                                     : vload(bias + kLanes * v, v == V - 1 ? tail : vmask_all());
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (std::int64_t ky = 0; ky < kh; ++ky) {
    const float* p[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) p[r] = a[r] + ky * pitch;
    const float* wk = w + ky * run * ldw;
    for (std::int64_t k = 0; k < run; ++k, wk += ldw) tile_step(acc, wk, tail, [&p, k](int r) { return p[r][k]; });
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      const vf out = relu ? vmax0(acc[r][v]) : acc[r][v];
      if (v < V - 1 || all_lanes(tail)) {
        vstore(y + r * ldy + kLanes * v, out);
      } else {
        vstore(y + r * ldy + kLanes * v, out, tail);
      }
    }
}

// Output pixels [r0, r1), output channels [j0, j0 + 16V) (the last vector masked by tail), in tiles of
// R pixels; a last partial tile repeats its last pixel and goes through a scratch tile.
template <int V>
void forward_pixels(const Conv2DGeometry& g, PaddedImages& xp, const float* w, const float* bias, bool relu, float* y,
                    std::int64_t r0, std::int64_t r1, std::int64_t j0, vmask tail) {
  constexpr int R = kFwdRows<V>;
  const std::int64_t O = g.o, run = g.kw * g.c, C = g.c, pitch = xp.pitch();
  const float* wj = w + j0;
  const float* bj = bias == nullptr ? nullptr : bias + j0;
  PixelIter it(g, r0);
  for (std::int64_t p0 = r0; p0 < r1; p0 += R) {
    const int rows = static_cast<int>(std::min<std::int64_t>(R, r1 - p0));
    const float* a[R];
    for (int r = 0; r < rows; ++r, it.next(g)) a[r] = xp.image(it.n) + it.oy * pitch + it.ox * C;
    for (int r = rows; r < R; ++r) a[r] = a[rows - 1];
    if (rows == R) {
      forward_tile<R, V>(a, g.kh, run, pitch, wj, O, tail, bj, relu, y + p0 * O + j0, O);
    } else {
      alignas(64) float tmp[R * kLanes * V];
      forward_tile<R, V>(a, g.kh, run, pitch, wj, O, tail, bj, relu, tmp, kLanes * V);
      const std::int64_t width = std::min<std::int64_t>(kLanes * V, O - j0);
      for (int r = 0; r < rows; ++r) copy_floats(y + (p0 + r) * O + j0, tmp + r * kLanes * V, width);
    }
  }
}

// y = conv(x, w) + bias, relu, for a geometry unit_stride accepts. Threads take contiguous runs of
// output pixels; blocks of 64 output channels (one block for O <= 64).
void implicit_conv(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y, bool relu) {
  const std::int64_t rows = g.rows(), per_image = g.oh * g.ow;
  const int threads = threads_for_work(rows, g.patch() * g.o);
  parallel_parts(0, rows, threads, [&](int, std::int64_t r0, std::int64_t r1) {
    const std::int64_t n0 = r0 / per_image, n1 = (r1 - 1) / per_image + 1;
    PaddedImages xp(g, x, n0, n1);
    const std::int64_t cols = block_cols(g.o);
    for (std::int64_t j0 = 0; j0 < g.o; j0 += cols) {
      const std::int64_t width = std::min<std::int64_t>(cols, g.o - j0);
      const vmask tail = vmask_first(width - (width - 1) / kLanes * kLanes);
      switch ((width + kLanes - 1) / kLanes) {
        case 1: forward_pixels<1>(g, xp, w, bias, relu, y, r0, r1, j0, tail); break;
        case 2: forward_pixels<2>(g, xp, w, bias, relu, y, r0, r1, j0, tail); break;
        case 3: forward_pixels<3>(g, xp, w, bias, relu, y, r0, r1, j0, tail); break;
        default: forward_pixels<kMaxV>(g, xp, w, bias, relu, y, r0, r1, j0, tail); break;
      }
    }
  });
}

// ---- filter backprop ----

// Rows (consecutive k) of a filter tile for V vectors of outputs.
template <int V> constexpr int kFilterRows = kFwdRows<V>;

// Output pixels summed per chunk: the chunk's dy (64 x 64 floats for conv2, 16 KB) and the padded
// input rows it reads stay in L1 while every tile of the filter passes over them.
constexpr std::int64_t kFilterChunk = 64;

// dw[r, 0:16V) (rows lddw apart, r < rows) += sum over the np pixels i of xk[base[i] + r] * dy[i, 0:16V)
// (dy rows ldy apart, last vector masked by tail). R x V accumulators in registers for the whole chunk;
// per pixel, V loads of dy and R broadcasts of consecutive input values feed R*V FMAs.
template <int R, int V>
void filter_tile(const float* xk, const std::int64_t* base, const float* dy, std::int64_t ldy, std::int64_t np,
                 vmask tail, float* dw, std::int64_t lddw, int rows) {
  vf acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[r][v] = vzero();
  for (std::int64_t i = 0; i < np; ++i, dy += ldy) {
    const float* xi = xk + base[i];
    tile_step(acc, dy, tail, [xi](int r) { return xi[r]; });
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      float* d = dw + r * lddw + kLanes * v;
      const vmask m = v == V - 1 ? tail : vmask_all();
      if (all_lanes(m)) {
        vstore(d, vadd(vload(d), acc[r][v]));
      } else {
        vstore(d, vadd(vload(d, m), acc[r][v]), m);
      }
    }
  }
}

// acc [K, O] += the filter gradient of the np pixels of one chunk (dy rows from dy, input offsets base)
// for output channels [j0, j0 + 16V).
template <int V>
void filter_chunk(const Conv2DGeometry& g, const float* xbuf, std::int64_t pitch, const std::int64_t* base,
                  const float* dy, std::int64_t np, std::int64_t j0, vmask tail, float* acc) {
  constexpr int R = kFilterRows<V>;
  const std::int64_t run = g.kw * g.c, O = g.o;
  for (std::int64_t ky = 0; ky < g.kh; ++ky)
    for (std::int64_t k = 0; k < run; k += R)
      filter_tile<R, V>(xbuf + ky * pitch + k, base, dy + j0, O, np, tail, acc + (ky * run + k) * O + j0, O,
                        static_cast<int>(std::min<std::int64_t>(R, run - k)));
}

}  // namespace

void conv2d_implicit_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                             bool relu) {
  implicit_conv(g, x, w, bias, y, relu);
}

// dx = conv(pad(dy), w') with w'[ky][kx][o][c] = w[KH-1-ky][KW-1-kx][c][o]: dx[iy] = sum over ky of
// dy[iy + pad_top - ky] w[ky] = sum over ky' of dy[iy - (KH-1-pad_top) + ky'] w'[ky'], a stride-1
// convolution of dy [N, OH, OW, O] with padding KH-1-pad_top before (and whatever after makes H rows).
void conv2d_implicit_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  // The flipped filter [KH, KW, O, C], kept on the calling thread.
  float* wf = thread_scratch(1, g.kh * g.kw * g.o * g.c);
  flip_filter(g, w, wf);
  const Conv2DGeometry t = transposed_conv_geometry(g);
  implicit_conv(t, dy, wf, nullptr, dx, false);
}

// Threads take contiguous runs of output pixels, each summing into its own partial dw (the first
// thread straight into dw), added at the end; per chunk of kFilterChunk pixels, every tile of dw.
void conv2d_implicit_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  const std::int64_t rows = g.rows(), per_image = g.oh * g.ow, K = g.patch(), O = g.o;
  const int threads = threads_for_work(rows, K * O);
  std::vector<float> partials(static_cast<std::size_t>((threads - 1) * K * O));
  parallel_parts(0, rows, threads, [&](int t, std::int64_t r0, std::int64_t r1) {
    float* acc = t == 0 ? dw : partials.data() + (t - 1) * K * O;
    std::fill(acc, acc + K * O, 0.0f);
    const std::int64_t n0 = r0 / per_image, n1 = (r1 - 1) / per_image + 1;
    PaddedImages xp(g, x, n0, n1);
    const float* xbuf = xp.base();
    std::int64_t base[kFilterChunk];
    PixelIter it(g, r0);
    for (std::int64_t p0 = r0; p0 < r1; p0 += kFilterChunk) {
      const std::int64_t np = std::min(kFilterChunk, r1 - p0);
      for (std::int64_t i = 0; i < np; ++i, it.next(g))
        base[i] = (xp.image(it.n) - xbuf) + (it.oy * xp.pitch()) + it.ox * g.c;
      const std::int64_t cols = block_cols(O);
      for (std::int64_t j0 = 0; j0 < O; j0 += cols) {
        const std::int64_t width = std::min<std::int64_t>(cols, O - j0);
        const vmask tail = vmask_first(width - (width - 1) / kLanes * kLanes);
        const float* d = dy + p0 * O;
        switch ((width + kLanes - 1) / kLanes) {
          case 1: filter_chunk<1>(g, xbuf, xp.pitch(), base, d, np, j0, tail, acc); break;
          case 2: filter_chunk<2>(g, xbuf, xp.pitch(), base, d, np, j0, tail, acc); break;
          case 3: filter_chunk<3>(g, xbuf, xp.pitch(), base, d, np, j0, tail, acc); break;
          default: filter_chunk<kMaxV>(g, xbuf, xp.pitch(), base, d, np, j0, tail, acc); break;
        }
      }
    }
  });
  if (threads > 1)
    parallel_for(0, K * O, kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (int t = 1; t < threads; ++t) add_floats(dw + lo, partials.data() + (t - 1) * K * O + lo, hi - lo);
    });
}
#else
void conv2d_implicit_forward(const Conv2DGeometry&, const float*, const float*, const float*, float*, bool) {}
void conv2d_implicit_backprop_input(const Conv2DGeometry&, const float*, const float*, float*) {}
void conv2d_implicit_backprop_filter(const Conv2DGeometry&, const float*, const float*, float*) {}
#endif

}  // namespace synapse::cpu::SYNAPSE_KERNEL_ISA
#include "backend/cpu/isa_end.h"

#if SYNAPSE_KERNEL_DISPATCH
namespace synapse::cpu {
SYNAPSE_ISA_VARIANTS(conv2d_implicit_forward_supported)
SYNAPSE_ISA_VARIANTS(conv2d_implicit_backprop_input_supported)
SYNAPSE_ISA_VARIANTS(conv2d_implicit_backprop_filter_supported)
SYNAPSE_ISA_VARIANTS(conv2d_implicit_forward)
SYNAPSE_ISA_VARIANTS(conv2d_implicit_backprop_input)
SYNAPSE_ISA_VARIANTS(conv2d_implicit_backprop_filter)

bool conv2d_implicit_forward_supported(const Conv2DGeometry& g) {
  return SYNAPSE_DISPATCH(conv2d_implicit_forward_supported)(g);
}
bool conv2d_implicit_backprop_input_supported(const Conv2DGeometry& g) {
  return SYNAPSE_DISPATCH(conv2d_implicit_backprop_input_supported)(g);
}
bool conv2d_implicit_backprop_filter_supported(const Conv2DGeometry& g) {
  return SYNAPSE_DISPATCH(conv2d_implicit_backprop_filter_supported)(g);
}
void conv2d_implicit_forward(const Conv2DGeometry& g, const float* x, const float* w, const float* bias, float* y,
                             bool relu) {
  SYNAPSE_DISPATCH(conv2d_implicit_forward)(g, x, w, bias, y, relu);
}
void conv2d_implicit_backprop_input(const Conv2DGeometry& g, const float* dy, const float* w, float* dx) {
  SYNAPSE_DISPATCH(conv2d_implicit_backprop_input)(g, dy, w, dx);
}
void conv2d_implicit_backprop_filter(const Conv2DGeometry& g, const float* x, const float* dy, float* dw) {
  SYNAPSE_DISPATCH(conv2d_implicit_backprop_filter)(g, x, dy, dw);
}
}  // namespace synapse::cpu
#endif  // SYNAPSE_KERNEL_DISPATCH
