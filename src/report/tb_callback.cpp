// The TensorBoard training callback: scalars, weight histograms and the model graph, in Keras' layout
// (a "train" and a "validation" run under one log folder, tags epoch_loss, epoch_accuracy, ...).
#include <filesystem>
#include <memory>

#include "synapse/tensorboard.h"
#include "synapse/train.h"

namespace synapse::train::callbacks {
namespace {

class TensorBoardCallback : public Callback {
 public:
  TensorBoardCallback(std::string logdir, std::int64_t every, bool histograms, bool graph, Shape input_shape)
      : logdir_(std::move(logdir)),
        every_(every),
        histograms_(histograms),
        graph_(graph),
        input_shape_(std::move(input_shape)) {}

  void on_train_begin(Trainer& t) override {
    if (!train_)
      train_ = std::make_unique<tensorboard::SummaryWriter>((std::filesystem::path(logdir_) / "train").string());
    if (graph_ && !graph_written_) {
      train_->add_graph(tensorboard::traced_graph_of(t.model(), input_shape_));
      graph_written_ = true;
    }
    train_->flush();
  }

  void on_batch_end(Trainer& t, std::int64_t, Logs& logs) override {
    if (every_ <= 0 || t.global_step() % every_ != 0) return;
    // Running means over the epoch so far, as the progress bar shows them.
    for (const auto& [k, v] : logs) train_->add_scalar("batch_" + k, v, t.global_step());
  }

  void on_epoch_end(Trainer& t, int epoch, Logs& logs) override {
    for (const auto& [k, v] : logs) {
      if (k.starts_with("val_")) {
        if (!validation_)
          validation_ =
              std::make_unique<tensorboard::SummaryWriter>((std::filesystem::path(logdir_) / "validation").string());
        validation_->add_scalar("epoch_" + k.substr(4), v, epoch);
      } else {
        train_->add_scalar(k == "lr" ? "epoch_learning_rate" : "epoch_" + k, v, epoch);
      }
    }
    if (histograms_)
      for (const auto& [name, p] : t.model().named_parameters())
        if (p.dtype() == DType::Float32 && p.numel() > 0) train_->add_histogram(name, p, epoch);
    train_->flush();
    if (validation_) validation_->flush();
  }

  void on_train_end(Trainer&) override {
    if (train_) train_->flush();
    if (validation_) validation_->flush();
  }

 private:
  std::string logdir_;
  std::int64_t every_;
  bool histograms_, graph_;
  Shape input_shape_;
  bool graph_written_ = false;
  std::unique_ptr<tensorboard::SummaryWriter> train_, validation_;
};

}  // namespace

CallbackPtr tensorboard(std::string logdir, std::int64_t update_every_steps, bool histograms, bool graph,
                        Shape input_shape) {
  return std::make_shared<TensorBoardCallback>(std::move(logdir), update_every_steps, histograms, graph,
                                               std::move(input_shape));
}

}  // namespace synapse::train::callbacks
