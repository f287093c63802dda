// The runtime dispatch of the CPU kernels (backend/cpu/isa.h): the probe, SYNAPSE_ISA and set_isa, and
// every kernel path this machine supports against the naive references, in one process. ctest also
// re-runs this binary's kernel tests under SYNAPSE_ISA=generic|avx2|avx512 (kernels_on_<path>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/conv.h"
#include "backend/cpu/depthwise.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/isa.h"
#include "backend/cpu/pool.h"
#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::max_abs_diff;

namespace {

// Under ctest's per-path runs, a path this CPU lacks skips the whole binary (SKIP_RETURN_CODE 77).
const bool kSkipUnsupportedPath = [] {
  const char* env = std::getenv("SYNAPSE_ISA");
  if (env == nullptr) return false;
  try {
    if (!cpu::isa_supported(cpu::parse_isa(env))) {
      std::fprintf(stderr, "SYNAPSE_ISA=%s: this CPU does not support that path; skipped\n", env);
      std::exit(77);
    }
  } catch (const Error&) {  // an unknown name: left for the tests to report
  }
  return true;
}();

// Restores the active path when a test that switches paths ends.
struct KeepIsa {
  cpu::Isa saved = cpu::active_isa();
  ~KeepIsa() { cpu::set_isa(saved); }
};

// Restores the matrix-product route likewise.
struct KeepRoute {
  cpu::GemmRoute saved = cpu::gemm_route();
  ~KeepRoute() { cpu::set_gemm_route(saved); }
};

std::vector<float> random_floats(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  return random_normal({n}, 0.0f, 1.0f, &gen).to_vector<float>();
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = a.size() == b.size() ? 0.0 : 1e30;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  return d;
}

cpu::Conv2DGeometry conv_geometry(std::int64_t n, std::int64_t h, std::int64_t c, std::int64_t k, std::int64_t o,
                                  std::int64_t stride) {
  cpu::Conv2DGeometry g;
  g.n = n, g.h = h, g.w = h, g.c = c, g.kh = k, g.kw = k, g.o = o;
  g.stride_h = g.stride_w = stride;
  g.oh = g.ow = (h + stride - 1) / stride;  // SAME
  const std::int64_t pad = std::max<std::int64_t>((g.oh - 1) * stride + k - h, 0);
  g.pad_top = g.pad_left = pad / 2;
  return g;
}

}  // namespace

TEST(Isa, ProbeFindsTheBuildMachinesPaths) {
  const auto& info = cpu::cpu_info();
  const auto paths = cpu::supported_isas();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), cpu::Isa::generic);
  EXPECT_EQ(cpu::best_isa(), paths.back());
  // AVX-512 implies the AVX2 path's instructions; each path needs what its description names.
  if (cpu::isa_supported(cpu::Isa::avx512)) {
    EXPECT_TRUE(cpu::isa_supported(cpu::Isa::avx2));
    EXPECT_TRUE(info.avx512f && info.avx512bw && info.avx512vl && info.avx512dq);
  }
  if (cpu::isa_supported(cpu::Isa::avx2)) {
    EXPECT_TRUE(info.avx2 && info.fma && info.f16c && info.bmi2);
  }
#if defined(__x86_64__) && defined(__linux__)
  EXPECT_FALSE(info.model.empty());
  EXPECT_GE(info.l1d, 16 << 10);
  EXPECT_GE(info.l2, 128 << 10);
#endif
  const std::string report = cpu::cpu_report();
  EXPECT_NE(report.find("kernel path in use: " + std::string(cpu::isa_name(cpu::active_isa()))), std::string::npos)
      << report;
}

TEST(Isa, UnknownPathNamesTheValueAndTheKnownOnes) {
  try {
    cpu::parse_isa("avx9");
    FAIL() << "no error for avx9";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("SYNAPSE_ISA=avx9"), std::string::npos) << m;
    EXPECT_NE(m.find("generic, avx2, avx512"), std::string::npos) << m;
  }
  EXPECT_EQ(cpu::parse_isa("avx2"), cpu::Isa::avx2);
  EXPECT_STREQ(cpu::isa_name(cpu::Isa::avx512), "avx512");
}

TEST(Isa, TheForcedPathIsTheActiveOne) {
  const char* env = std::getenv("SYNAPSE_ISA");
  if (env == nullptr) {
    EXPECT_EQ(cpu::active_isa(), cpu::best_isa());
  } else {
    EXPECT_STREQ(cpu::isa_name(cpu::active_isa()), env);
  }
  KeepIsa keep;
  for (const cpu::Isa isa : cpu::supported_isas()) {
    cpu::set_isa(isa);
    EXPECT_EQ(cpu::active_isa(), isa);
  }
}

// Every supported path against the references, on the zoo's geometries: LeNet-5's and the cnn's first
// layers (direct kernels), their second layers (implicit GEMM), a strided conv (im2col + GEMM),
// 2x2 pooling, and the GEMM shapes of the dense layers (matrix-vector, few rows, few rows times B^T).
TEST(Isa, EveryPathMatchesTheReferences) {
  KeepIsa keep;
  const std::vector<cpu::Conv2DGeometry> convs = {
      conv_geometry(3, 28, 1, 5, 6, 1),  conv_geometry(3, 28, 1, 5, 32, 1), conv_geometry(2, 14, 32, 5, 64, 1),
      conv_geometry(3, 14, 6, 5, 16, 1), conv_geometry(2, 9, 20, 3, 24, 1), conv_geometry(2, 11, 3, 3, 8, 2)};
  for (const cpu::Isa isa : cpu::supported_isas()) {
    cpu::set_isa(isa);
    const std::string path = cpu::isa_name(isa);
    std::uint64_t seed = 1;
    for (const auto& g : convs) {
      const std::string what = path + " conv " + std::to_string(g.c) + "->" + std::to_string(g.o) + " on " +
                               std::to_string(g.h) + "x" + std::to_string(g.w);
      const auto x = random_floats(g.n * g.h * g.w * g.c, seed++), w = random_floats(g.patch() * g.o, seed++),
                 b = random_floats(g.o, seed++), dy = random_floats(g.rows() * g.o, seed++);
      std::vector<float> y(dy.size()), yr(dy.size()), dx(x.size()), dxr(x.size()), dw(w.size()), dwr(w.size());
      cpu::conv2d_forward(g, x.data(), w.data(), b.data(), y.data(), true);
      cpu::conv2d_forward_reference(g, x.data(), w.data(), b.data(), yr.data(), true);
      EXPECT_LT(max_diff(y, yr), 1e-3) << what;
      cpu::conv2d_backprop_input(g, dy.data(), w.data(), dx.data());
      cpu::conv2d_backprop_input_reference(g, dy.data(), w.data(), dxr.data());
      EXPECT_LT(max_diff(dx, dxr), 1e-3) << what << " backprop input";
      cpu::conv2d_backprop_filter(g, x.data(), dy.data(), dw.data());
      cpu::conv2d_backprop_filter_reference(g, x.data(), dy.data(), dwr.data());
      EXPECT_LT(max_diff(dw, dwr), 3e-3) << what << " backprop filter";
    }
    cpu::Pool2DGeometry p{.n = 2, .h = 28, .w = 28, .c = 6, .kh = 2, .kw = 2, .oh = 14, .ow = 14, .stride_h = 2,
                          .stride_w = 2};
    const auto x = random_floats(2 * 28 * 28 * 6, seed++), dy = random_floats(2 * 14 * 14 * 6, seed++);
    std::vector<float> y(dy.size()), yr(dy.size()), dx(x.size()), dxr(x.size());
    cpu::max_pool2d(p, x.data(), y.data());
    cpu::max_pool2d_reference(p, x.data(), yr.data());
    EXPECT_EQ(max_diff(y, yr), 0.0) << path << " max pool";
    cpu::max_pool2d_grad(p, x.data(), dy.data(), dx.data());
    cpu::max_pool2d_grad_reference(p, x.data(), dy.data(), dxr.data());
    EXPECT_EQ(max_diff(dx, dxr), 0.0) << path << " max pool gradient";
    // 3x3 stride 2 SAME (the CIFAR model's pooling): overlapping windows, the last row and column cut by
    // the padding, 16 + 4 channels, values in halves so that windows have tied maxima.
    cpu::Pool2DGeometry q{.n = 2, .h = 9, .w = 10, .c = 20, .kh = 3, .kw = 3, .oh = 5, .ow = 5, .stride_h = 2,
                          .stride_w = 2, .pad_top = 1, .pad_left = 0};
    auto xq = random_floats(2 * 9 * 10 * 20, seed++);
    for (float& v : xq) v = std::round(v * 4.0f) / 2.0f;
    const auto dyq = random_floats(2 * 5 * 5 * 20, seed++);
    std::vector<float> dxq(xq.size()), dxqr(xq.size());
    cpu::max_pool2d_grad(q, xq.data(), dyq.data(), dxq.data());
    cpu::max_pool2d_grad_reference(q, xq.data(), dyq.data(), dxqr.data());
    EXPECT_LT(max_diff(dxq, dxqr), 1e-6) << path << " max pool 3x3 stride 2 gradient";

    struct Mm {
      std::int64_t m, n, k;
      bool tb;
    };
    for (const Mm c : {Mm{1, 500, 784, false}, Mm{1, 10, 784, false}, Mm{50, 1024, 300, false},
                       Mm{300, 100, 50, false}, Mm{50, 1100, 64, true}, Mm{7, 9, 11, false}}) {
      const auto a = random_floats(c.m * c.k, seed++), bm = random_floats(c.k * c.n, seed++);
      std::vector<float> out(static_cast<std::size_t>(c.m * c.n), 1.0f), ref = out;
      cpu::GemmArgs args{.trans_b = c.tb, .m = c.m, .n = c.n, .k = c.k, .alpha = 0.5f, .a = a.data(), .b = bm.data(),
                         .beta = 0.25f, .c = out.data()};
      cpu::gemm(args);
      args.c = ref.data();
      cpu::gemm_reference(args);
      EXPECT_LT(max_diff(out, ref), 2e-3) << path << " gemm " << c.m << "x" << c.n << "x" << c.k;
    }
  }
}

// The depthwise kernels on every path against their references: odd channel counts (one masked
// vector, a full and a masked one, several full ones), 3x3 and 5x3 filters, stride 1 and 2, SAME and
// VALID padding, a dilation, and depth multiplier 2 (the plain kernels on every path).
TEST(Isa, DepthwiseEveryPathMatchesTheReferences) {
  KeepIsa keep;
  struct Case {
    std::int64_t n, h, w, c, kh, kw, m, stride, dilation;
    bool same;
  };
  const std::vector<Case> cases = {{2, 9, 9, 3, 3, 3, 1, 1, 1, true},    {2, 10, 9, 17, 3, 3, 1, 2, 1, true},
                                   {1, 11, 12, 40, 3, 3, 1, 2, 1, false}, {1, 8, 7, 70, 5, 3, 1, 1, 1, true},
                                   {1, 9, 9, 17, 3, 3, 1, 1, 2, true},    {2, 7, 7, 5, 3, 3, 2, 1, 1, true},
                                   {1, 6, 6, 96, 3, 3, 1, 2, 1, true}};
  for (const cpu::Isa isa : cpu::supported_isas()) {
    cpu::set_isa(isa);
    std::uint64_t seed = 100;
    for (const Case& k : cases) {
      cpu::Conv2DGeometry g;
      g.n = k.n, g.h = k.h, g.w = k.w, g.c = k.c, g.kh = k.kh, g.kw = k.kw, g.o = k.m;
      g.stride_h = g.stride_w = k.stride;
      g.dilation_h = g.dilation_w = k.dilation;
      const std::int64_t eh = (k.kh - 1) * k.dilation + 1, ew = (k.kw - 1) * k.dilation + 1;
      g.oh = k.same ? (k.h + k.stride - 1) / k.stride : (k.h - eh) / k.stride + 1;
      g.ow = k.same ? (k.w + k.stride - 1) / k.stride : (k.w - ew) / k.stride + 1;
      g.pad_top = k.same ? std::max<std::int64_t>((g.oh - 1) * k.stride + eh - k.h, 0) / 2 : 0;
      g.pad_left = k.same ? std::max<std::int64_t>((g.ow - 1) * k.stride + ew - k.w, 0) / 2 : 0;
      const std::string what = std::string(cpu::isa_name(isa)) + " depthwise C=" + std::to_string(k.c) + " " +
                               std::to_string(k.kh) + "x" + std::to_string(k.kw) + " M=" + std::to_string(k.m) +
                               " stride " + std::to_string(k.stride) + " dilation " + std::to_string(k.dilation) +
                               (k.same ? " SAME" : " VALID");
      const std::int64_t cm = k.c * k.m;
      const auto x = random_floats(g.n * g.h * g.w * g.c, seed++), w = random_floats(g.kh * g.kw * cm, seed++),
                 b = random_floats(cm, seed++), dy = random_floats(g.n * g.oh * g.ow * cm, seed++);
      std::vector<float> y(dy.size()), yr(dy.size()), dx(x.size(), 7.0f), dxr(x.size()), dw(w.size(), 7.0f),
          dwr(w.size());
      for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
        cpu::depthwise_conv2d_forward(g, x.data(), w.data(), bias, y.data());
        cpu::depthwise_conv2d_forward_reference(g, x.data(), w.data(), bias, yr.data());
        EXPECT_LT(max_diff(y, yr), 1e-4) << what << (bias ? " with bias" : "");
      }
      cpu::depthwise_conv2d_backprop_input(g, dy.data(), w.data(), dx.data());
      cpu::depthwise_conv2d_backprop_input_reference(g, dy.data(), w.data(), dxr.data());
      EXPECT_LT(max_diff(dx, dxr), 1e-4) << what << " backprop input";
      cpu::depthwise_conv2d_backprop_filter(g, x.data(), dy.data(), dw.data());
      cpu::depthwise_conv2d_backprop_filter_reference(g, x.data(), dy.data(), dwr.data());
      EXPECT_LT(max_diff(dw, dwr), 1e-3) << what << " backprop filter";
    }
  }
}

// The matrix-product routes (gemm.h's GemmRoute): on every kernel path, Synapse's kernels for every
// product (own) and OpenBLAS where it is specialised (blas) against the reference, on shapes that
// reach each branch of the own route: B not transposed with many rows, a long sum (several k blocks)
// and a C narrower than a vector; B transposed with few rows (small_gemm_nt) and with many (the copy
// to [k, n]); A transposed; leading dimensions wider than the matrices; beta 0 over a NaN C; and the
// matrix-vector products that are dot products with the matrix's rows.
TEST(GemmRoute, EveryRouteAndPathMatchesTheReference) {
  KeepIsa keep;
  KeepRoute keep_route;
  struct Mm {
    std::int64_t m, n, k;
    bool ta, tb;
    std::int64_t pad;  // extra elements per row of A, B and C
    float beta;
  };
  const Mm cases[] = {{130, 70, 300, false, false, 0, 0.0f},  {1000, 64, 600, false, false, 3, 0.25f},
                      {97, 10, 1030, false, false, 0, 0.0f},  {50, 1100, 64, false, true, 0, 0.25f},
                      {100, 500, 300, false, true, 5, 0.0f},  {70, 33, 17, true, false, 1, -1.0f},
                      {65, 40, 129, true, true, 0, 0.5f},     {2, 3, 4, false, false, 0, 0.0f},
                      {300, 2, 700, false, true, 2, 0.0f},
                      // A B past half of L2 (the next panel prefetched, the packing tile reading ahead):
                      // 5 k blocks, the last of 8 rows; 11 panels, the last of 60 columns.
                      {20, 700, 520, false, false, 1, 0.5f},
                      // The transposed product with few rows (fc1's input gradient): A^T transposed on
                      // both threads (19 blocks of 16 k rows), 48 columns on tiles and 2 as dot products.
                      {50, 1030, 300, false, true, 2, 0.5f},
                      // Matrix-vector products whose outputs are dot products with stored rows
                      // (8 rows at a time and a remainder; a row of C, then a column).
                      {1, 300, 517, false, true, 3, 0.0f},    {1, 13, 40, false, true, 0, 0.5f},
                      {70, 1, 33, false, false, 0, -1.0f}};
  std::uint64_t seed = 100;
  for (const cpu::Isa isa : cpu::supported_isas()) {
    cpu::set_isa(isa);
    for (const cpu::GemmRoute route : {cpu::GemmRoute::own, cpu::GemmRoute::blas}) {
      cpu::set_gemm_route(route);
      EXPECT_EQ(cpu::own_gemm_for_all(), route == cpu::GemmRoute::own && isa != cpu::Isa::generic);
      for (const Mm& c : cases) {
        const std::int64_t lda = (c.ta ? c.m : c.k) + c.pad, ldb = (c.tb ? c.k : c.n) + c.pad, ldc = c.n + c.pad;
        const auto a = random_floats((c.ta ? c.k : c.m) * lda, seed++), b = random_floats((c.tb ? c.n : c.k) * ldb, seed++);
        std::vector<float> out = random_floats(c.m * ldc, seed++);
        if (c.beta == 0.0f) std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
        std::vector<float> ref = out;
        cpu::GemmArgs args{.trans_a = c.ta, .trans_b = c.tb, .m = c.m, .n = c.n, .k = c.k, .alpha = 0.75f,
                           .a = a.data(), .lda = lda, .b = b.data(), .ldb = ldb, .beta = c.beta, .c = out.data(),
                           .ldc = ldc};
        cpu::gemm(args);
        args.c = ref.data();
        cpu::gemm_reference(args);
        double diff = 0.0;  // over the n columns of each row: the padding past them is left alone by both
        for (std::int64_t i = 0; i < c.m; ++i)
          for (std::int64_t j = 0; j < c.n; ++j) {
            const auto at = static_cast<std::size_t>(i * ldc + j);
            diff = std::max(diff, std::isnan(out[at]) ? 1e30 : std::abs(double(out[at]) - double(ref[at])));
          }
        EXPECT_LT(diff, 1e-4 * std::sqrt(double(c.k))) << cpu::isa_name(isa) << " route " << cpu::gemm_route_name(route)
                                                    << " gemm " << c.m << "x" << c.n << "x" << c.k << " ta=" << c.ta
                                                    << " tb=" << c.tb << " pad=" << c.pad;
      }
    }
  }
}

// The automatic route uses OpenBLAS only where its kernels are as wide as the active path's, and the
// report says which kernels OpenBLAS chose and who runs the products.
TEST(GemmRoute, AutomaticFollowsTheWidthOfOpenBlasKernels) {
  KeepIsa keep;
  KeepRoute keep_route;
  cpu::set_gemm_route(cpu::GemmRoute::automatic);
  const std::string core = cpu::blas_core();
  const int level = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids" ? 2
                    : core == "Haswell" || core == "Zen"                                       ? 1
                                                                                               : 0;
  EXPECT_EQ(cpu::blas_core_level(), level) << core;
  for (const cpu::Isa isa : cpu::supported_isas()) {
    cpu::set_isa(isa);
    EXPECT_EQ(cpu::own_gemm_for_all(), level < static_cast<int>(isa)) << core << " on " << cpu::isa_name(isa);
    const std::string report = cpu::gemm_report();
    EXPECT_NE(report.find("(" + core + " kernels"), std::string::npos) << report;
    EXPECT_EQ(report.find("Synapse's kernels run every matrix product") != std::string::npos, level < static_cast<int>(isa))
        << report;
  }
}

// A route chosen in code is reported as such (not as the environment variable).
TEST(GemmRoute, ReportNamesWhereTheRouteWasChosen) {
  KeepIsa keep;
  KeepRoute keep_route;
  cpu::set_isa(cpu::best_isa());
  cpu::set_gemm_route(cpu::GemmRoute::blas);
  const std::string blas = cpu::gemm_report();
  EXPECT_NE(blas.find("; set_gemm_route(blas)"), std::string::npos) << blas;
  EXPECT_EQ(blas.find("SYNAPSE_GEMM"), std::string::npos) << blas;
  cpu::set_gemm_route(cpu::GemmRoute::own);
  const std::string own = cpu::gemm_report();
  if (cpu::best_isa() != cpu::Isa::generic) {
    EXPECT_NE(own.find("; set_gemm_route(own): Synapse's kernels run every matrix product"), std::string::npos) << own;
  }
}

TEST(GemmRoute, UnknownRouteNamesTheValueAndTheKnownOnes) {
  try {
    cpu::parse_gemm_route("mkl");
    FAIL() << "no error for mkl";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "SYNAPSE_GEMM=mkl: unknown matrix-product route (expected auto, blas or own)");
  }
  EXPECT_EQ(cpu::parse_gemm_route("own"), cpu::GemmRoute::own);
  EXPECT_EQ(cpu::parse_gemm_route("auto"), cpu::GemmRoute::automatic);
}
