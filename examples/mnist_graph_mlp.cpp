// The classic TensorFlow 1 MNIST script, in Synapse's graph mode: a 784-500-10 ReLU network built as a
// graph on placeholders, trained by running a train op in a Session.
//
//   mnist_graph_mlp [--steps N] [DATA_DIR]      (DATA_DIR defaults to the source tree's data/mnist)
//
// Hyper-parameters of the original: truncated-normal(0.1) weights and 0.1 biases, cross-entropy plus
// L2 (1e-4) on the weights, learning rate 0.8 decaying by 0.99 per epoch (55,000 / 100 steps), batches
// of 100, a 0.99 moving average of every variable updated with each step (num_updates = step), and
// evaluation with the averaged weights (swapped in for the validation and test runs).
#include <chrono>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "synapse/synapse.h"

#ifndef SYNAPSE_SOURCE_DIR
#define SYNAPSE_SOURCE_DIR "."
#endif

using namespace synapse;

int main(int argc, char** argv) try {
  std::int64_t steps = 30000;
  std::string data_dir = std::string(SYNAPSE_SOURCE_DIR) + "/data/mnist";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--steps" && i + 1 < argc) {
      steps = std::stoll(argv[++i]);
    } else if (arg == "-h" || arg == "--help") {
      fmt::print("usage: mnist_graph_mlp [--steps N] [DATA_DIR]\n");
      return 0;
    } else {
      data_dir = arg;
    }
  }
  constexpr std::int64_t kTrain = 55000, kBatch = 100, kInput = 784, kHidden = 500, kClasses = 10;

  // ---- data: 55,000 training images, the last 5,000 for validation, 10,000 for the test ----
  const data::Mnist m = data::load_mnist(data_dir);
  const Tensor all_x = data::scale(m.train_images).reshape({-1, kInput});
  const Tensor all_y = cast(m.train_labels, DType::Int64);
  const Tensor train_x = slice(all_x, {0, 0}, {kTrain, -1}), train_y = slice(all_y, {0}, {kTrain});
  const Tensor val_x = slice(all_x, {kTrain, 0}, {-1, -1}), val_y = slice(all_y, {kTrain}, {-1});
  const Tensor test_x = data::scale(m.test_images).reshape({-1, kInput});
  const Tensor test_y = cast(m.test_labels, DType::Int64);

  // ---- the graph ----
  manual_seed(0);
  graph::Graph g;
  Tensor x = g.placeholder("x-input", {-1, kInput});
  Tensor y_ = g.placeholder("y-input", {-1}, DType::Int64);
  Tensor w1, b1, w2, b2, y;
  {
    auto scope = g.name_scope("layer1");
    w1 = g.variable("weights", truncated_normal({kInput, kHidden}, 0.0f, 0.1f));
    b1 = g.variable("biases", full({kHidden}, 0.1));
  }
  {
    auto scope = g.name_scope("layer2");
    w2 = g.variable("weights", truncated_normal({kHidden, kClasses}, 0.0f, 0.1f));
    b2 = g.variable("biases", full({kClasses}, 0.1));
  }
  {
    auto scope = g.name_scope("inference");
    y = matmul(relu(matmul(x, w1) + b1), w2) + b2;
  }
  Tensor loss, accuracy;
  {
    auto scope = g.name_scope("loss");
    const Tensor cross_entropy = mean(sparse_softmax_cross_entropy(y, y_));
    // tf.contrib.layers.l2_regularizer(1e-4)(w) = 1e-4 * sum(w^2) / 2
    const Tensor regularization = (sum(square(w1)) + sum(square(w2))) * (1e-4f / 2.0f);
    loss = cross_entropy + regularization;
  }
  {
    auto scope = g.name_scope("accuracy");
    accuracy = mean(cast(equal(argmax(y, 1), y_), DType::Float32));
  }

  // The optimizer and the moving average hold the variables' real tensors; the graph runs them as
  // host ops, the optimizer step first.
  optim::SGD opt(g.named_variables(), {.learning_rate = 0.8});
  opt.set_schedule(optim::exponential_decay(0.8, kTrain / kBatch, 0.99));
  optim::ExponentialMovingAverage ema(g.named_variables(), 0.99);
  graph::Op train_step = optim::minimize(opt, loss, "train_step");
  graph::Op train_op = g.group({train_step, optim::moving_average_op(ema, g, &opt)}, "train");

  graph::Session sess(g);
  sess.run(g.global_variables_initializer());
  auto averaged_accuracy = [&](const Tensor& images, const Tensor& labels) {
    ema.swap();  // evaluate with the averaged weights
    const float acc = sess.run(accuracy, {{x, images}, {y_, labels}}).item<float>();
    ema.swap();
    return acc;
  };

  const auto start = std::chrono::steady_clock::now();
  Generator shuffle_gen(1);
  Tensor order;
  for (std::int64_t step = 0; step < steps; ++step) {
    const std::int64_t offset = (step * kBatch) % kTrain;
    if (offset == 0) {  // a new epoch: a new order (mnist.train.next_batch shuffles each epoch)
      std::vector<std::int64_t> idx(static_cast<std::size_t>(kTrain));
      for (std::int64_t i = 0; i < kTrain; ++i) idx[static_cast<std::size_t>(i)] = i;
      for (std::int64_t i = kTrain - 1; i > 0; --i)
        std::swap(idx[static_cast<std::size_t>(i)],
                  idx[static_cast<std::size_t>(shuffle_gen.next_u64() % static_cast<std::uint64_t>(i + 1))]);
      order = from_vector(idx);
    }
    const Tensor pick = slice(order, {offset}, {kBatch});
    const Tensor xb = gather(train_x, pick), yb = gather(train_y, pick);
    if (step % 500 == 0) {
      fmt::print("step {:5d}: validation accuracy (averaged weights) {:.2f}%, learning rate {:.4f}\n", step,
                 100.0f * averaged_accuracy(val_x, val_y), opt.learning_rate());
      std::fflush(stdout);
    }
    sess.run(train_op, {{x, xb}, {y_, yb}});
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("after {} steps ({:.1f} s, {:.2f} ms/step): validation accuracy {:.2f}%\n", steps, seconds,
             1000.0 * seconds / static_cast<double>(std::max<std::int64_t>(steps, 1)),
             100.0f * averaged_accuracy(val_x, val_y));
  fmt::print("test accuracy: {:.2f}% (averaged weights), {:.2f}% (last weights)\n",
             100.0f * averaged_accuracy(test_x, test_y),
             100.0f * sess.run(accuracy, {{x, test_x}, {y_, test_y}}).item<float>());
  fmt::print("peak intermediate memory of the last run: {:.1f} MiB\n",
             static_cast<double>(sess.stats().peak_bytes) / (1024.0 * 1024.0));
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "mnist_graph_mlp: error: {}\n", e.what());
  return 1;
}
