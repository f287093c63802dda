// Keeps two promises: "every differentiable op has a numerical gradient check" (a new differentiable
// op fails until its gradient check is written and the op is listed here) and "every op has a naive
// reference kernel, or says why not".
#include <gtest/gtest.h>

#include <iostream>
#include <map>
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
      "lstm", "gru", "simple_rnn",
      // tests/images/test_lrn.cpp (its backward op lrn_grad has no gradient)
      "lrn",
      // tests/keras/test_cnn_layers.cpp
      "depthwise_conv2d", "depthwise_conv2d_backprop_input", "depthwise_conv2d_backprop_filter"};
  for (const auto* op : synapse::all_ops()) {
    if (op->differentiable()) {
      EXPECT_TRUE(checked.contains(op->name())) << "no gradient check listed for '" << op->name() << "'";
    }
  }
}

// Keeps the promise "a naive reference kernel for every op": each op has one (tests compare the fast
// kernel against it) or is marked .no_reference("why"), and apply_reference on a marked op throws
// instead of running the fast kernel twice. The marked ops are printed, so a reviewer sees them, and
// must stay few: a new entry means changing this list (and saying why in the op's definition).
TEST(Coverage, EveryOpHasAReferenceKernelOrSaysWhyNot) {
  const std::set<std::string> expected_without{
      "reshape",         // a view: no kernel moves data
      "random_uniform",  // one serial loop of the generator; test_reference.cpp checks its range and moments
  };
  std::map<std::string, std::string> without;
  std::size_t with = 0;
  for (const auto* op : synapse::all_ops()) {
    if (op->has_reference()) {
      ++with;
      EXPECT_TRUE(op->no_reference_reason().empty()) << op->name();
      // Not the fast kernel registered a second time (detectable when both are plain functions).
      using Fn = void (*)(const synapse::KernelContext&);
      const Fn* fast = op->kernel_for(synapse::Device::CPU).target<Fn>();
      const Fn* ref = op->reference_kernel().target<Fn>();
      EXPECT_FALSE(fast != nullptr && ref != nullptr && *fast == *ref) << op->name() << ": the reference is the kernel";
      continue;
    }
    EXPECT_FALSE(op->no_reference_reason().empty())
        << "'" << op->name() << "' has no reference kernel: add .reference(naive_kernel) beside its kernel, "
        << "or .no_reference(\"why\")";
    if (op->no_reference_reason().empty()) continue;
    without[op->name()] = op->no_reference_reason();
    EXPECT_THROW(synapse::apply_reference(*op, {}), synapse::Error) << op->name();
  }
  std::cout << with << " of " << synapse::all_ops().size() << " ops have a naive reference kernel; without one:\n";
  for (const auto& [name, why] : without) std::cout << "  " << name << ": " << why << "\n";
  ::testing::Test::RecordProperty("ops_without_reference", static_cast<int>(without.size()));
  std::set<std::string> names;
  for (const auto& [name, why] : without) names.insert(name);
  EXPECT_EQ(names, expected_without) << "the list of ops without a reference changed";
  EXPECT_LE(without.size(), 4u) << "the list of ops without a reference must stay short";
}
