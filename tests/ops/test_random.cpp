// Random ops: dropout_mask (what dropout() and nn::Dropout use) and random_uniform.
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {
Tensor mask_of(const Tensor& x, double rate, std::int64_t seed) {
  return apply1(op_def("dropout_mask"), {x}, Attrs().set("rate", rate).set("seed", seed));
}
}  // namespace

TEST(Random, DropoutMaskIsSeededAndScaled) {
  const Tensor x = zeros({4000});
  const auto a = mask_of(x, 0.25, 5).to_vector<float>();
  EXPECT_EQ(a, mask_of(x, 0.25, 5).to_vector<float>());
  EXPECT_NE(a, mask_of(x, 0.25, 6).to_vector<float>());
  int dropped = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 0.0f || std::fabs(v - 1.0f / 0.75f) < 1e-6f) << v;
    dropped += v == 0.0f;
  }
  EXPECT_NEAR(dropped, 1000, 90);
  EXPECT_FALSE(op_def("dropout_mask").differentiable());  // x is read for its shape only
  EXPECT_THROW(mask_of(x, 1.0, 1), Error);
}

TEST(Random, DropoutMaskIsTheSameOnAnyThreadCountAndUncorrelated) {
  // Large enough for several parallel blocks; each element depends on (seed, index) only.
  const Tensor x = zeros({300000});
  const int threads = num_threads();
  set_num_threads(1);
  const auto one = mask_of(x, 0.5, 11).to_vector<float>();
  set_num_threads(2);
  const auto two = mask_of(x, 0.5, 11).to_vector<float>();
  set_num_threads(threads);
  EXPECT_EQ(one, two);
  // Rate 0.5: about half dropped, and neighbours independent (pairs of equal neighbours ~ 1/2).
  std::int64_t dropped = 0, same = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    dropped += one[i] == 0.0f;
    if (i > 0) same += (one[i] == 0.0f) == (one[i - 1] == 0.0f);
  }
  EXPECT_NEAR(static_cast<double>(dropped) / 300000.0, 0.5, 0.005);
  EXPECT_NEAR(static_cast<double>(same) / 299999.0, 0.5, 0.005);
  // Consecutive seeds (what a training loop draws) give unrelated masks: ~half the elements agree.
  const auto next = mask_of(x, 0.5, 12).to_vector<float>();
  std::int64_t agree = 0;
  for (std::size_t i = 0; i < one.size(); ++i) agree += one[i] == next[i];
  EXPECT_NEAR(static_cast<double>(agree) / 300000.0, 0.5, 0.005);
}

TEST(Random, RandomUniformRangeAndSeed) {
  auto draw = [](std::int64_t seed) {
    return apply1(op_def("random_uniform"), {},
                  Attrs().set("shape", std::vector<std::int64_t>{3, 50}).set("low", -2.0).set("high", 3.0).set("seed", seed));
  };
  const Tensor a = draw(1);
  EXPECT_EQ(to_string(a.shape()), "[3,50]");
  EXPECT_EQ(a.to_vector<float>(), draw(1).to_vector<float>());
  for (float v : a.to_vector<float>()) EXPECT_TRUE(v >= -2.0f && v < 3.0f);
}

// dropout(x) = x * dropout_mask(x): the gradient is dy * mask (through mul).
TEST(RandomGrad, DropoutThroughTheMaskOp) {
  Generator init(3);
  Tensor x = random_normal({5, 7}, 0.0f, 1.0f, &init);
  EXPECT_GRAD_MATCHES(
      [&] {
        Generator gen(42);  // the same mask at every evaluation
        return dropout(x, 0.3f, true, &gen);
      },
      {x});
}
