// Keeps the promise "every differentiable op has a numerical gradient check": a new differentiable op
// fails this test until its gradient check is written and the op is listed here.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "synapse/synapse.h"

TEST(Coverage, EveryDifferentiableOpHasAGradientCheck) {
  // Op name -> where its EXPECT_GRAD_MATCHES lives (tests/ops unless noted).
  const std::set<std::string> checked{
      // test_elementwise.cpp
      "add", "sub", "mul", "div", "neg", "tanh", "square", "pow", "maximum", "minimum", "exp", "log", "sqrt", "abs",
      "relu", "leaky_relu", "leaky_relu_grad", "sigmoid", "clip", "clip_grad", "where", "cast",
      // test_reduce.cpp
      "sum", "broadcast_to", "max", "min",
      // test_shape.cpp
      "reshape", "permute", "concat", "slice", "pad", "gather", "gather_grad",
      // test_matmul.cpp, test_conv_pool.cpp
      "matmul", "dense", "conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "max_pool2d", "avg_pool2d",
      "max_pool2d_grad", "max_pool2d_grad_grad", "avg_pool2d_grad",
      // test_nn.cpp
      "softmax", "log_softmax", "softmax_cross_entropy", "sparse_softmax_cross_entropy",
      "sparse_softmax_cross_entropy_grad", "sigmoid_cross_entropy", "sigmoid_cross_entropy_grad",
      // test_rnn.cpp (their backward ops lstm_grad, gru_grad, simple_rnn_grad have no gradient)
      "lstm", "gru", "simple_rnn"};
  for (const auto* op : synapse::all_ops()) {
    if (op->differentiable()) {
      EXPECT_TRUE(checked.contains(op->name())) << "no gradient check listed for '" << op->name() << "'";
    }
  }
}
