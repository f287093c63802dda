// bf16 matrix products (MatmulPrecision::bf16): gemm and the convolution kernels against naive
// references that round the operands to bf16 the same way and accumulate in double; bf16 against fp32
// within the bf16 error; the precision setting (parsing, the guard, the threads).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/conv.h"
#include "backend/cpu/conv_bf16.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "core/parallel.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {

#define SKIP_WITHOUT_BF16()                                                                              \
  if (!cpu_supports_bf16()) GTEST_SKIP() << "this CPU lacks AVX512-BF16 (avx512_bf16): no bf16 kernels to test"

std::vector<float> normals(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// sum over p of |op(A)(i, p) op(B)(p, j)| with the operands rounded: the scale of C(i, j)'s rounding error.
double abs_product(const cpu::GemmArgs& g, std::int64_t lda, std::int64_t ldb, std::int64_t i, std::int64_t j) {
  double s = 0.0;
  for (std::int64_t p = 0; p < g.k; ++p) {
    const float av = cpu::round_to_bf16(g.trans_a ? g.a[p * lda + i] : g.a[i * lda + p]);
    const float bv = cpu::round_to_bf16(g.trans_b ? g.b[j * ldb + p] : g.b[p * ldb + j]);
    s += std::abs(static_cast<double>(av) * bv);
  }
  return s;
}

struct GemmCase {
  std::int64_t m, n, k;
};

}  // namespace

TEST(Bf16, RoundToNearestEvenMatchesTheHardware) {
  SKIP_WITHOUT_BF16();
  // Ties (exactly half an ulp of bf16) both ways, values just above and below, signs, extremes.
  std::vector<float> xs = {1.0f, -1.0f, 0.0f, -0.0f, 1.00390625f /* 1 + 2^-8: tie, to even 1 */,
                           1.01171875f /* 1 + 3*2^-8: tie, to even 1 + 2^-6 */, 1.0039063f, 1.0039062f,
                           3.14159265f, -2.71828f, 65504.0f, 1e30f, -1e-30f, std::numeric_limits<float>::max(),
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  for (float x : normals(1000, 7)) xs.push_back(x * 37.0f);
  const auto k = static_cast<std::int64_t>(xs.size());
  std::vector<float> ones(2, 1.0f), c(2 * xs.size());
  MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  // C [k, 2] = A [k, 1] x [1, 1]: each output is one operand rounded by the packing, times one.
  cpu::gemm({.m = k, .n = 2, .k = 1, .a = xs.data(), .b = ones.data(), .c = c.data()});
  for (std::size_t i = 0; i < xs.size(); ++i)
    EXPECT_EQ(c[2 * i], cpu::round_to_bf16(xs[i])) << "x=" << xs[i];
  EXPECT_EQ(cpu::round_to_bf16(1.00390625f), 1.0f);
  EXPECT_EQ(cpu::round_to_bf16(1.01171875f), 1.015625f);
  EXPECT_TRUE(std::isnan(cpu::round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
}

TEST(Bf16, GemmMatchesTheBf16Reference) {
  SKIP_WITHOUT_BF16();
  // Every transpose combination, padded leading dims, alpha and beta (beta 0 over NaN: not read);
  // tails of tiles (6 rows), panels (64 columns) and vectors (16), an odd k, more than one k block
  // (512 values), and shapes large enough to run on several threads.
  const std::vector<GemmCase> cases = {{2, 2, 1},      {2, 3, 1},    {7, 5, 3},       {13, 70, 33},
                                       {50, 130, 301}, {6, 64, 512}, {19, 200, 1101}, {300, 90, 257},
                                       {50, 1024, 313}, {2, 40, 77}, {40, 2, 77}};
  MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  std::uint32_t seed = 1;
  for (const auto& [m, n, k] : cases)
    for (int t = 0; t < 4; ++t)
      for (float beta : {0.0f, 0.75f}) {
        const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
        const std::int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
        const auto a = normals(static_cast<std::size_t>((ta ? k : m) * lda), seed++);
        const auto b = normals(static_cast<std::size_t>((tb ? n : k) * ldb), seed++);
        auto c0 = normals(static_cast<std::size_t>(m * ldc), seed++);
        if (beta == 0.0f) std::fill(c0.begin(), c0.end(), std::numeric_limits<float>::quiet_NaN());
        auto fast = c0, ref = c0;
        cpu::GemmArgs g{.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = 0.5f, .a = a.data(), .lda = lda,
                        .b = b.data(), .ldb = ldb, .beta = beta, .c = fast.data(), .ldc = ldc};
        cpu::gemm(g);
        g.c = ref.data();
        cpu::gemm_bf16_reference(g);
        double worst = 0.0;
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            // fp32 sums of exact products: at most k roundings of 2^-24 of the running sum.
            const double bound = 0.5 * (static_cast<double>(k) + 2.0) * std::ldexp(1.0, -24) * abs_product(g, lda, ldb, i, j) +
                                 std::ldexp(1.0, -24) * std::abs(beta * c0[static_cast<std::size_t>(i * ldc + j)]) + 1e-30;
            const double err = std::abs(static_cast<double>(fast[static_cast<std::size_t>(i * ldc + j)]) -
                                        ref[static_cast<std::size_t>(i * ldc + j)]);
            worst = std::max(worst, err / bound);
          }
        EXPECT_LE(worst, 1.0) << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " beta=" << beta;
        // Padding between rows of C is never written.
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = n; j < ldc; ++j) {
            const auto at = static_cast<std::size_t>(i * ldc + j);
            if (beta != 0.0f) {
              EXPECT_EQ(fast[at], c0[at]);
            }
          }
      }
}

TEST(Bf16, MatrixVectorProductsStayFp32) {
  SKIP_WITHOUT_BF16();
  // One row or one column of C: the fp32 kernels in either precision (bitwise the same results).
  for (const auto& [m, n] : {std::pair<std::int64_t, std::int64_t>{1, 300}, {300, 1}}) {
    const std::int64_t k = 200;
    const auto a = normals(static_cast<std::size_t>(m * k), 31), b = normals(static_cast<std::size_t>(k * n), 32);
    std::vector<float> c32(static_cast<std::size_t>(m * n)), c16(c32.size());
    cpu::gemm({.m = m, .n = n, .k = k, .a = a.data(), .b = b.data(), .c = c32.data()});
    MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
    cpu::gemm({.m = m, .n = n, .k = k, .a = a.data(), .b = b.data(), .c = c16.data()});
    EXPECT_EQ(c16, c32) << "m=" << m << " n=" << n;
  }
}

TEST(Bf16, GemmDiffersFromFp32WithinTheBf16Error) {
  SKIP_WITHOUT_BF16();
  const std::int64_t m = 64, n = 100, k = 800;
  const auto a = normals(static_cast<std::size_t>(m * k), 11), b = normals(static_cast<std::size_t>(k * n), 12);
  std::vector<float> c32(static_cast<std::size_t>(m * n)), c16(c32.size());
  cpu::GemmArgs g{.m = m, .n = n, .k = k, .a = a.data(), .b = b.data(), .c = c32.data()};
  cpu::gemm(g);
  {
    MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
    g.c = c16.data();
    cpu::gemm(g);
  }
  EXPECT_EQ(matmul_precision(), MatmulPrecision::fp32);  // the guard restored it
  double worst = 0.0, mean_rel = 0.0;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      // Each operand is within 2^-9 (relative) of its bf16 rounding, a product within 2^-8 + 2^-18.
      const double scale = abs_product(g, k, n, i, j);
      const double err = std::abs(static_cast<double>(c16[static_cast<std::size_t>(i * n + j)]) - c32[static_cast<std::size_t>(i * n + j)]);
      worst = std::max(worst, err / (std::ldexp(1.0, -8) * scale));
      mean_rel += err / scale;
    }
  mean_rel /= static_cast<double>(m * n);
  EXPECT_LE(worst, 1.0);
  // Random rounding errors of both signs: far below the bound on average, but not zero (bf16 was used).
  EXPECT_GT(mean_rel, 1e-5);
  EXPECT_LT(mean_rel, 1e-3);
}

TEST(Bf16, ThePrecisionReachesTheWorkerThreads) {
  SKIP_WITHOUT_BF16();
  // A product large enough for every thread; each one's rows must be bf16 (equal to the bf16
  // reference, not to fp32).
  const std::int64_t m = 512, n = 256, k = 256;
  const auto a = normals(static_cast<std::size_t>(m * k), 21), b = normals(static_cast<std::size_t>(k * n), 22);
  std::vector<float> fast(static_cast<std::size_t>(m * n)), ref(fast.size()), f32(fast.size());
  cpu::GemmArgs g{.m = m, .n = n, .k = k, .a = a.data(), .b = b.data(), .c = f32.data()};
  cpu::gemm(g);
  std::thread worker([&] {  // a thread of its own: fp32 there until it sets bf16
    EXPECT_EQ(matmul_precision(), MatmulPrecision::fp32);
    MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
    cpu::GemmArgs h = g;
    h.c = fast.data();
    cpu::gemm(h);
  });
  worker.join();
  g.c = ref.data();
  cpu::gemm_bf16_reference(g);
  for (std::int64_t i = 0; i < m; i += 61) {
    const auto at = static_cast<std::size_t>(i * n + 7);
    EXPECT_NEAR(fast[at], ref[at], 1e-4) << "row " << i;
    EXPECT_GT(std::abs(fast[at] - f32[at]), 0.0f) << "row " << i;
  }
}

TEST(Bf16, PrecisionNamesAndErrors) {
  EXPECT_EQ(parse_precision("fp32", "--precision"), MatmulPrecision::fp32);
  EXPECT_EQ(precision_name(MatmulPrecision::bf16), "bf16");
  try {
    parse_precision("fp16", "--precision");
    FAIL() << "fp16 accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--precision: unknown precision 'fp16' (expected fp32 or bf16)");
  }
  if (cpu_supports_bf16()) {
    EXPECT_EQ(parse_precision("bf16", "--precision"), MatmulPrecision::bf16);
  } else {
    EXPECT_THROW(parse_precision("bf16", "--precision"), Error);
    EXPECT_THROW(set_matmul_precision(MatmulPrecision::bf16), Error);
  }
}

// ---- convolutions ----
namespace {

cpu::Conv2DGeometry same_conv(std::int64_t n, std::int64_t hw, std::int64_t c, std::int64_t k, std::int64_t o) {
  return {.n = n, .h = hw, .w = hw, .c = c, .kh = k, .kw = k, .o = o, .oh = hw, .ow = hw, .pad_top = (k - 1) / 2,
          .pad_left = (k - 1) / 2};
}

// The three products of a convolution with bf16-rounded operands, in double: out[oi] += u[ui] * v[vi]
// for the pairs `pick` chooses, plus the error scale sum |u v| per output.
struct Bf16Conv {
  std::vector<double> value, scale;
};
template <class Pick>
Bf16Conv reference(const cpu::Conv2DGeometry& g, const std::vector<float>& u, const std::vector<float>& v, std::size_t outputs,
                   Pick pick) {
  Bf16Conv r{std::vector<double>(outputs), std::vector<double>(outputs)};
  cpu::for_each_conv_term(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
    const auto [ui, vi, oi] = pick(xi, wi, yi);
    const double t = static_cast<double>(cpu::round_to_bf16(u[static_cast<std::size_t>(ui)])) *
                     cpu::round_to_bf16(v[static_cast<std::size_t>(vi)]);
    r.value[static_cast<std::size_t>(oi)] += t;
    r.scale[static_cast<std::size_t>(oi)] += std::abs(t);
  });
  return r;
}

// |fast - ref| within the fp32 rounding of sums of `terms` exact products, relative to scale.
void expect_close(const std::vector<float>& fast, const Bf16Conv& ref, std::int64_t terms, const char* what) {
  double worst = 0.0;
  for (std::size_t i = 0; i < fast.size(); ++i) {
    const double bound = (static_cast<double>(terms) + 2.0) * std::ldexp(1.0, -24) * ref.scale[i] + 1e-30;
    worst = std::max(worst, std::abs(fast[i] - ref.value[i]) / bound);
  }
  EXPECT_LE(worst, 1.0) << what;
}

}  // namespace

TEST(Bf16, ConvolutionsMatchTheBf16Reference) {
  SKIP_WITHOUT_BF16();
  const std::vector<cpu::Conv2DGeometry> geometries = {
      same_conv(3, 14, 32, 5, 64),  // the cnn's conv2
      same_conv(2, 12, 3, 5, 8),    // an odd patch (75)
      same_conv(2, 9, 6, 1, 10),    // pointwise
      {.n = 2, .h = 11, .w = 10, .c = 3, .kh = 3, .kw = 2, .o = 5, .oh = 5, .ow = 4, .stride_h = 2, .stride_w = 2,
       .dilation_h = 1, .dilation_w = 2, .pad_top = 1, .pad_left = 0}};
  MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  std::uint32_t seed = 100;
  for (const auto& g : geometries) {
    const auto xs = static_cast<std::size_t>(g.n * g.h * g.w * g.c), ws = static_cast<std::size_t>(g.patch() * g.o),
               ys = static_cast<std::size_t>(g.rows() * g.o);
    const auto x = normals(xs, seed++), w = normals(ws, seed++), dy = normals(ys, seed++), bias = normals(static_cast<std::size_t>(g.o), seed++);
    std::vector<float> y(ys), dx(xs), dw(ws);
    cpu::conv2d_forward(g, x.data(), w.data(), bias.data(), y.data());
    auto fwd = reference(g, x, w, ys, [](auto xi, auto wi, auto yi) { return std::array{xi, wi, yi}; });
    for (std::size_t i = 0; i < ys; ++i) {
      fwd.value[i] += bias[i % static_cast<std::size_t>(g.o)];
      fwd.scale[i] += std::abs(bias[i % static_cast<std::size_t>(g.o)]);
    }
    expect_close(y, fwd, g.patch() + 1, "forward");
    cpu::conv2d_backprop_input(g, dy.data(), w.data(), dx.data());
    expect_close(dx, reference(g, dy, w, xs, [](auto xi, auto wi, auto yi) { return std::array{yi, wi, xi}; }),
                 g.kh * g.kw * g.o, "backprop input");
    cpu::conv2d_backprop_filter(g, x.data(), dy.data(), dw.data());
    expect_close(dw, reference(g, x, dy, ws, [](auto xi, auto wi, auto yi) { return std::array{xi, yi, wi}; }),
                 g.rows(), "backprop filter");
  }
}

namespace {

// The three passes of one geometry through the given kernels, against the bf16 references.
using ConvForwardFn = void (*)(const cpu::Conv2DGeometry&, const float*, const float*, const float*, float*, bool);
using ConvInputFn = void (*)(const cpu::Conv2DGeometry&, const float*, const float*, float*);
using ConvFilterFn = void (*)(const cpu::Conv2DGeometry&, const float*, const float*, float*);
void check_conv_passes(const cpu::Conv2DGeometry& g, std::uint32_t seed, bool relu, ConvForwardFn fwd_fn, ConvInputFn in_fn,
                       ConvFilterFn filter_fn) {
  const auto xs = static_cast<std::size_t>(g.n * g.h * g.w * g.c), ws = static_cast<std::size_t>(g.patch() * g.o),
             ys = static_cast<std::size_t>(g.rows() * g.o);
  const auto x = normals(xs, seed), w = normals(ws, seed + 1), dy = normals(ys, seed + 2),
             bias = normals(static_cast<std::size_t>(g.o), seed + 3);
  const std::string where = "n=" + std::to_string(g.n) + " " + std::to_string(g.h) + "x" + std::to_string(g.w) + "x" +
                            std::to_string(g.c) + " -> " + std::to_string(g.o) + " " + std::to_string(g.kh) + "x" +
                            std::to_string(g.kw) + " stride " + std::to_string(g.stride_h) + "," +
                            std::to_string(g.stride_w) + " pad " + std::to_string(g.pad_top) + "," + std::to_string(g.pad_left);
  if (fwd_fn != nullptr) {
    std::vector<float> y(ys, std::numeric_limits<float>::quiet_NaN());
    fwd_fn(g, x.data(), w.data(), bias.data(), y.data(), relu);
    auto ref = reference(g, x, w, ys, [](auto xi, auto wi, auto yi) { return std::array{xi, wi, yi}; });
    for (std::size_t i = 0; i < ys; ++i) {
      ref.value[i] += bias[i % static_cast<std::size_t>(g.o)];
      ref.scale[i] += std::abs(bias[i % static_cast<std::size_t>(g.o)]);
      if (relu && ref.value[i] < 0.0) ref.value[i] = 0.0;  // within the bound of 0 either way
    }
    expect_close(y, ref, g.patch() + 1, ("forward " + where).c_str());
  }
  if (in_fn != nullptr) {
    std::vector<float> dx(xs, std::numeric_limits<float>::quiet_NaN());
    in_fn(g, dy.data(), w.data(), dx.data());
    expect_close(dx, reference(g, dy, w, xs, [](auto xi, auto wi, auto yi) { return std::array{yi, wi, xi}; }),
                 g.kh * g.kw * g.o, ("backprop input " + where).c_str());
  }
  std::vector<float> dw(ws, std::numeric_limits<float>::quiet_NaN());
  filter_fn(g, x.data(), dy.data(), dw.data());
  expect_close(dw, reference(g, x, dy, ws, [](auto xi, auto wi, auto yi) { return std::array{xi, yi, wi}; }),
               g.rows(), ("backprop filter " + where).c_str());
}

}  // namespace

TEST(Bf16, ImplicitConvolutionsMatchTheBf16Reference) {
  SKIP_WITHOUT_BF16();
  // The bf16 implicit-GEMM kernels (conv_bf16.h) called directly: the zoo's multi-channel convolutions
  // (cnn conv2, lenet5 conv2 VALID, cifar-cnn conv1 with 3 channels and conv2), odd channel counts,
  // more than one 64-wide panel, padding after larger and smaller than before, stride 2 (forward and
  // filter gradient; the input gradient takes stride 1 only), batches whose pixels split over threads.
  auto strided = [](std::int64_t hw, std::int64_t c, std::int64_t k, std::int64_t o, std::int64_t s, std::int64_t pad) {
    const std::int64_t out = (hw + 2 * pad - k) / s + 1;
    return cpu::Conv2DGeometry{.n = 2, .h = hw, .w = hw + 1, .c = c, .kh = k, .kw = k, .o = o, .oh = out,
                               .ow = (hw + 1 + 2 * pad - k) / s + 1, .stride_h = s, .stride_w = s, .pad_top = pad,
                               .pad_left = pad};
  };
  const std::vector<cpu::Conv2DGeometry> geometries = {
      same_conv(3, 14, 32, 5, 64),   // cnn conv2
      {.n = 3, .h = 14, .w = 14, .c = 6, .kh = 5, .kw = 5, .o = 16, .oh = 10, .ow = 10},  // lenet5 conv2 (VALID)
      same_conv(2, 24, 3, 5, 64),    // cifar-cnn conv1: 3 channels
      same_conv(2, 12, 64, 5, 64),   // cifar-cnn conv2
      same_conv(2, 9, 5, 3, 7),      // odd channels in and out
      same_conv(2, 8, 33, 3, 130),   // odd C, three panels of outputs (the last 2 wide)
      same_conv(1, 7, 96, 3, 20),    // C > 64: the transposed conv has 3 panels
      {.n = 2, .h = 10, .w = 9, .c = 4, .kh = 4, .kw = 2, .o = 24, .oh = 9, .ow = 9, .pad_top = 2, .pad_left = 1},  // pads 2+1, 1+0
      strided(11, 8, 3, 16, 2, 1),   // stride 2, padding
      strided(12, 3, 5, 10, 2, 0),   // stride 2, odd C, VALID (the last input rows unread)
  };
  std::uint32_t seed = 400;
  for (std::size_t i = 0; i < geometries.size(); ++i) {
    const auto& g = geometries[i];
    ASSERT_TRUE(cpu::conv2d_bf16_forward_supported(g));
    // The filter gradient kernel is chosen only where little of its patch is padding (the cnn's,
    // lenet5's and the cifar-cnn's conv2, not 3 channels), but it must be right everywhere.
    if (i <= 3) {
      EXPECT_EQ(cpu::conv2d_bf16_backprop_filter_supported(g), i != 2) << i;
    }
    const bool unit = g.stride_h == 1 && g.stride_w == 1;
    EXPECT_EQ(cpu::conv2d_bf16_backprop_input_supported(g), unit);
    check_conv_passes(g, seed += 10, i % 2 == 1, &cpu::conv2d_bf16_forward,
                      unit ? &cpu::conv2d_bf16_backprop_input : nullptr, &cpu::conv2d_bf16_backprop_filter);
  }
  // Through conv2d_* in bf16 precision (the dispatch: these kernels, im2col for the strided input
  // gradient), and with one thread.
  MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  for (const auto& g : {geometries[2], geometries[8]})
    check_conv_passes(g, 900, true, &cpu::conv2d_forward, &cpu::conv2d_backprop_input, &cpu::conv2d_backprop_filter);
  const int threads = num_threads();
  set_num_threads(1);
  check_conv_passes(geometries[1], 950, false, &cpu::conv2d_forward, &cpu::conv2d_backprop_input,
                    &cpu::conv2d_backprop_filter);
  set_num_threads(threads);
}

TEST(Bf16, SingleChannelConvolutionsStayFp32) {
  SKIP_WITHOUT_BF16();
  // The cnn's conv1: its direct kernels in either precision (bitwise the same results).
  const auto g = same_conv(2, 28, 1, 5, 32);
  const auto x = normals(static_cast<std::size_t>(g.n * g.h * g.w), 41), w = normals(static_cast<std::size_t>(25 * 32), 42);
  const auto dy = normals(static_cast<std::size_t>(g.rows() * g.o), 43);
  std::vector<float> y32(dy.size()), y16(dy.size()), dw32(w.size()), dw16(w.size());
  cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y32.data());
  cpu::conv2d_backprop_filter(g, x.data(), dy.data(), dw32.data());
  MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y16.data());
  cpu::conv2d_backprop_filter(g, x.data(), dy.data(), dw16.data());
  EXPECT_EQ(y16, y32);
  EXPECT_EQ(dw16, dw32);
}

// The measured rate of bf16 dot products against fp32 FMAs: 0 without AVX512-BF16; otherwise within what
// real cores do (Emerald Rapids 0.51, Zen 5 2.03), the same value on every call (measured once).
TEST(Bf16, PeakRatioIsMeasuredOnceAndPlausible) {
  const double r = bf16_peak_ratio();
  if (!cpu_supports_bf16()) {
    EXPECT_EQ(r, 0.0);
    return;
  }
  EXPECT_GT(r, 0.2);
  EXPECT_LT(r, 4.0);
  EXPECT_EQ(bf16_peak_ratio(), r);
}
