// The recurrent kernels' portable path: this binary compiles src/backend/cpu/rnn.cpp again without
// AVX-512 (tests/CMakeLists.txt), so its rnn_forward/rnn_backward are the one-lane code with std::exp
// that machines without AVX-512 run. They must agree with the references, forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/rnn.h"

using namespace synapse::cpu;

namespace {

struct Buffers {
  std::vector<float> v[6];
};

double largest_difference(const Buffers& a, const Buffers& b) {
  double m = 0.0;
  for (int k = 0; k < 6; ++k)
    for (std::size_t i = 0; i < a.v[k].size(); ++i)
      m = std::max(m, static_cast<double>(std::fabs(a.v[k][i] - b.v[k][i])));
  return m;
}

}  // namespace

TEST(RnnScalarPath, MatchesReferenceForwardAndBackward) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  auto random = [&](std::size_t n) {
    std::vector<float> v(n);
    for (auto& e : v) e = normal(rng);
    return v;
  };
  for (RnnCell cell : {RnnCell::Simple, RnnCell::LSTM, RnnCell::GRU}) {
    for (bool reverse : {false, true}) {
      for (bool reset_after : {true, false}) {
        RnnConfig c;
        c.cell = cell;
        c.reverse = reverse;
        c.reset_after = reset_after;
        c.B = 3, c.T = 4, c.I = 5, c.H = 19;
        const auto B = static_cast<std::size_t>(c.B), T = static_cast<std::size_t>(c.T), I = static_cast<std::size_t>(c.I),
                   H = static_cast<std::size_t>(c.H), GH = static_cast<std::size_t>(c.gates()) * H;
        const auto x = random(B * T * I), w = random(I * GH), u = random(H * GH), bias = random(2 * GH),
                   h0 = random(B * H), c0 = random(B * H), dy = random(B * T * H), dh = random(B * H), dc = random(B * H);
        const std::vector<std::int64_t> lengths{4, 2, 3};
        Buffers out[2], grads[2];
        for (int k = 0; k < 2; ++k) {  // 0: fast, 1: reference
          const std::size_t sizes[5] = {B * T * H, B * H, B * H, B * T * GH, B * T * H};
          for (int o = 0; o < 5; ++o) out[k].v[o].assign(sizes[o], 0.0f);
          RnnForwardArgs a{.x = x.data(), .w = w.data(), .u = u.data(), .bias = bias.data(), .h0 = h0.data(),
                           .c0 = c0.data(), .lengths = lengths.data(), .y = out[k].v[0].data(),
                           .h_last = out[k].v[1].data(), .c_last = out[k].v[2].data(), .gates = out[k].v[3].data(),
                           .extra = out[k].v[4].data()};
          if (k == 0) {
            rnn_forward(c, a);
          } else {
            rnn_forward_reference(c, a);
          }
        }
        SCOPED_TRACE(static_cast<int>(cell) * 100 + reverse * 10 + reset_after);
        EXPECT_LT(largest_difference(out[0], out[1]), 1e-5);
        for (int k = 0; k < 2; ++k) {
          const std::size_t sizes[6] = {B * T * I, I * GH, H * GH, 2 * GH, B * H, B * H};
          for (int o = 0; o < 6; ++o) grads[k].v[o].assign(sizes[o], 0.0f);
          RnnBackwardArgs a{.x = x.data(), .w = w.data(), .u = u.data(), .h0 = h0.data(), .c0 = c0.data(),
                            .lengths = lengths.data(), .y = out[1].v[0].data(), .gates = out[1].v[3].data(),
                            .extra = out[1].v[4].data(), .dy = dy.data(), .dh_last = dh.data(), .dc_last = dc.data(),
                            .dx = grads[k].v[0].data(), .dw = grads[k].v[1].data(), .du = grads[k].v[2].data(),
                            .dbias = grads[k].v[3].data(), .dh0 = grads[k].v[4].data(), .dc0 = grads[k].v[5].data()};
          if (k == 0) {
            rnn_backward(c, a);
          } else {
            rnn_backward_reference(c, a);
          }
        }
        EXPECT_LT(largest_difference(grads[0], grads[1]), 1e-4);
      }
    }
  }
}
