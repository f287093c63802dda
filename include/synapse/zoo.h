// The model zoo: the classic MNIST models with the hyper-parameters of the tutorials they come from.
// Every model takes images [N, 28, 28, 1] scaled to [0, 1] and returns logits [N, 10].
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "synapse/nn.h"

namespace synapse::zoo {

struct Recipe {
  std::string name;
  std::string description;
  std::function<nn::ModulePtr()> build;
  // Training defaults (the CLI's flags override them).
  std::string optimizer = "adam";
  double learning_rate = 1e-3;
  double momentum = 0.0;            // for "momentum"/"nesterov"
  int batch_size = 50;
  int epochs = 1;
  std::int64_t max_steps = 0;       // > 0: stop after this many steps
  double lr_decay_per_epoch = 1.0;  // exponential decay lr·r^(step/steps_per_epoch) (continuous)
  double lr_epoch_factor = 1.0;     // per-epoch scheduler: lr ← lr·f at each epoch after the first
  float l2 = 0.0f;                  // L2 on every kernel: λ·Σ||w||²/2 added to the loss
  double ema_decay = 0.0;           // > 0: moving average of the weights, used for evaluation
  int early_stopping_patience = 0;  // > 0: early stopping on val_loss, restoring the best weights
  int augment_shift = 0;            // > 0: training images moved by up to this many pixels (data::random_translate)
};

// Known names: softmax, mlp, cnn, lenet5, keras-small.
const Recipe& recipe(const std::string& name);
std::vector<std::string> names();

}  // namespace synapse::zoo
