// A zoo model traced in training mode on MNIST-shaped placeholders, with Adam's train op: the setup
// the graph tests that train a whole zoo model share.
#pragma once
#include <memory>
#include <string>

#include "synapse/graph.h"
#include "synapse/synapse.h"
#include "synapse/zoo.h"

namespace synapse::testing {

struct TracedTraining {
  // Builds the recipe's model (with the current global seed) and traces loss and train op.
  explicit TracedTraining(const std::string& recipe, double learning_rate = 1e-3)
      : TracedTraining(zoo::recipe(recipe).build(), learning_rate) {}
  // The same for any model taking MNIST images.
  explicit TracedTraining(nn::ModulePtr m, double learning_rate = 1e-3) : model(std::move(m)) {
    model->build_for({1, 28, 28, 1});
    model->train();
    x = g.placeholder("images", {-1, 28, 28, 1});
    y = g.placeholder("labels", {-1}, DType::Int64);
    loss = mean(sparse_softmax_cross_entropy((*model)(x), y));
    opt = std::make_unique<optim::Adam>(model->named_trainable_parameters(), optim::AdamOptions{.learning_rate = learning_rate});
    step = optim::minimize(*opt, loss);
  }
  nn::ModulePtr model;
  graph::Graph g;
  Tensor x, y, loss;
  std::unique_ptr<optim::Adam> opt;
  graph::Op step;
};

}  // namespace synapse::testing
