// The profiler: per-op calls, time and the FLOPs each op declares; the measured CPU peak.
#include <gtest/gtest.h>

#include <thread>

#include "synapse/synapse.h"

using namespace synapse;

namespace {
const OpProfile* row(const std::vector<OpProfile>& rows, const std::string& op) {
  for (const auto& r : rows)
    if (r.op == op) return &r;
  return nullptr;
}
}  // namespace

TEST(Profiler, CountsCallsAndDeclaredFlops) {
  Tensor a = random_normal({8, 16}), b = random_normal({16, 4});
  Tensor x = random_normal({2, 9, 9, 3}), w = random_normal({3, 3, 3, 5});
  Profiler prof;
  (void)matmul(a, b);
  (void)matmul(a, b);
  (void)conv2d(x, w);        // valid: [2, 7, 7, 5]
  (void)relu(a);             // memory-bound: counted, 0 FLOPs
  prof.stop();
  (void)matmul(a, b);        // after stop: not counted
  const auto rows = prof.ops();
  const OpProfile* mm = row(rows, "matmul");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->calls, 2);
  EXPECT_DOUBLE_EQ(mm->flops, 2 * (2.0 * 8 * 4 * 16));
  const OpProfile* conv = row(rows, "conv2d");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->calls, 1);
  EXPECT_DOUBLE_EQ(conv->flops, 2.0 * (2 * 7 * 7) * (3 * 3 * 3) * 5);
  const OpProfile* r = row(rows, "relu");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->flops, 0.0);
  EXPECT_GT(mm->seconds, 0.0);
  EXPECT_DOUBLE_EQ(prof.flops(), mm->flops + conv->flops);
  EXPECT_LE(prof.kernel_seconds(), prof.elapsed_seconds());
  EXPECT_FALSE(prof.collecting());
}

TEST(Profiler, GradientOpsDeclareTheirFlops) {
  Tensor x = random_normal({2, 6, 6, 2}), w = random_normal({3, 3, 2, 4});
  x.requires_grad_();
  w.requires_grad_();
  Tensor y = conv2d(x, w, {.padding = Padding::Same});
  Profiler prof;
  sum(y).backward();
  prof.stop();
  const double each = 2.0 * (2 * 6 * 6) * (3 * 3 * 2) * 4;
  const auto rows = prof.ops();
  ASSERT_NE(row(rows, "conv2d_backprop_input"), nullptr);
  ASSERT_NE(row(rows, "conv2d_backprop_filter"), nullptr);
  EXPECT_DOUBLE_EQ(row(rows, "conv2d_backprop_input")->flops, each);
  EXPECT_DOUBLE_EQ(row(rows, "conv2d_backprop_filter")->flops, each);
}

TEST(Profiler, OneAtATimeAndOnlyItsThread) {
  Profiler prof;
  EXPECT_THROW(Profiler second, Error);
  Tensor a = random_normal({4, 4});
  std::thread other([&] { (void)matmul(a, a); });
  other.join();
  prof.stop();
  EXPECT_EQ(row(prof.ops(), "matmul"), nullptr);
  Profiler again;  // the first one stopped: a new one may collect
  (void)matmul(a, a);
  again.stop();
  ASSERT_NE(row(again.ops(), "matmul"), nullptr);
}

TEST(Profiler, TableNamesOpsTimeOutsideAndPeak) {
  Tensor a = random_normal({32, 32});
  Profiler prof;
  for (int i = 0; i < 4; ++i) (void)matmul(a, a);
  prof.stop();
  const std::string t = format_profile(prof, {.steps = 2, .peak_gflops = 100.0});
  EXPECT_NE(t.find("matmul"), std::string::npos) << t;
  EXPECT_NE(t.find("% of peak"), std::string::npos) << t;
  EXPECT_NE(t.find("(outside kernels)"), std::string::npos) << t;
  EXPECT_NE(t.find("total"), std::string::npos) << t;
  // Two calls per step over two steps.
  EXPECT_NE(t.find(" 2 "), std::string::npos) << t;
  EXPECT_THROW((void)format_profile(prof, {.steps = 0}), Error);
}

TEST(Peak, MeasuredOnEveryWidthTheCpuHas) {
  EXPECT_TRUE(cpu_has_fma_width(32));
  EXPECT_GT(measure_fma_gflops(32, 1, 100000), 0.1);
  for (int bits : {256, 512}) {
    if (cpu_has_fma_width(bits))
      EXPECT_GT(measure_fma_gflops(bits, 1, 100000), measure_fma_gflops(32, 1, 100000)) << bits;
    else
      EXPECT_EQ(measure_fma_gflops(bits, 1, 1000), 0.0) << bits;
  }
  EXPECT_EQ(measure_fma_gflops(64, 1, 1000), 0.0);  // no such width
  EXPECT_GE(peak_gflops_per_core(), measure_fma_gflops(32, 1, 10000) * 0.5);
}
