// The model zoo: the classic MNIST models with the hyper-parameters of the tutorials they come from.
// Every model takes images [N, 28, 28, 1] scaled to [0, 1] and returns logits [N, 10].
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "synapse/io.h"
#include "synapse/nn.h"
#include "synapse/train.h"

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
  // Colour images (src/zoo/images.cpp):
  std::string data = "mnist";       // "mnist" (IDX files), "cifar10" (binary batches) or "image-folder"
  std::vector<std::string> l2_layers;  // non-empty: l2 only on the kernels of these layers
  // Built for the data's number of classes (image-folder models); when set, build() is build_classes(10).
  std::function<nn::ModulePtr(std::int64_t classes)> build_classes;
  // Augmentation of the training batches (on the prefetch thread), e.g. data::compose({...}).
  std::function<Tensor(const Tensor&, std::uint64_t)> augment;
  bool standardize = false;         // data::per_image_standardization of validation, test and predicted
                                    // images (training images: `augment` ends with it)
};

// Known names: softmax, mlp, cnn, lenet5, keras-small, cifar-cnn, small-cnn, resnet-small.
const Recipe& recipe(const std::string& name);
std::vector<std::string> names();

// ---- the zoo's data: MNIST-format IDX files ----
struct MnistSplit {
  Tensor train_x, train_y, val_x, val_y, test_x, test_y;  // images [N,28,28,1] in [0,1], labels int64
};
// Loads MNIST (or Fashion-MNIST) IDX files from `dir`; the last `validation` training images become
// the validation set (MNIST's classic 55,000 / 5,000), at most a tenth of a smaller set.
MnistSplit load_mnist_split(const std::string& dir, std::int64_t validation = 5000);
// uint8 images [N,H,W] -> float32 [N,H,W,1] / 255.
Tensor images_to_float(const Tensor& images);

// ---- training a recipe and reading the result back (what `synapse train`, `eval`, `export` run) ----
// What a run changes of the recipe's defaults: 0, -1 or an empty string keeps the recipe's value.
struct TrainRun {
  std::string data_dir = "data/mnist";
  std::string logdir;  // run folder (default runs/NAME): checkpoints/, metrics.csv, TensorBoard logs,
                       // history.json, model.syn and report.html
  int epochs = 0;
  int batch = 0;
  double learning_rate = 0;
  std::string optimizer;  // sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw
  std::uint64_t seed = 0;
  std::int64_t max_steps = -1;
  int augment_shift = -1;
  bool resume = false;  // continue from the newest checkpoint in LOGDIR/checkpoints
  std::int64_t checkpoint_steps = 0;  // > 0: a checkpoint every this many steps too (besides every epoch)
  std::int64_t profile_steps = 0;  // > 0: print a per-op profile of this many steps (after 5 warm-up steps)
  MatmulPrecision precision = MatmulPrecision::fp32;  // of the matrix products (train::FitOptions::precision)
  // Image folders (recipe data "image-folder"): the images' size and channels (1 grey, 3 RGB) and the
  // fraction held out for validation (seeded with `seed`).
  std::int64_t image_size = 32;
  int channels = 3;
  double validation_split = 0.2;
  // Where the run's one-line messages go (what it trains, on what data, resumed from where); the
  // progress bar prints to stdout. Default: stdout.
  std::function<void(const std::string&)> log;
};
struct TrainResult {
  train::History history;
  double test_accuracy = 0, test_loss = 0;  // of the saved model (the averaged weights when the recipe has EMA)
  std::int64_t steps = 0;
  double seconds = 0;
  std::string model_path;    // LOGDIR/model.syn
  std::string report_path;   // LOGDIR/report.html; empty when the report failed (report_error says why)
  std::string report_error;
  // Data-parallel runs (under mpirun, dist.h): the ranks, the fit's wall time and per step the time
  // rank 0 spent blocked on gradient averaging (dist::DistributedStats::wait_seconds) and packing.
  int ranks = 1;
  double fit_seconds = 0;
  std::int64_t images = 0;  // training images processed by all ranks together
  double comm_wait_ms_per_step = 0, comm_launch_ms_per_step = 0;
};
// Under mpirun every rank calls it and trains data-parallel (train::FitOptions::distributed); only rank
// 0 prints, writes checkpoints, logs, model.syn and the report (the other ranks' paths stay empty), and
// --resume reads the checkpoint on rank 0, which fit then broadcasts.
// The recipe's whole training policy: optimizer and schedules, L2 on the kernels, weight averaging,
// augmentation, early stopping, checkpoints every epoch (with the averages, so a resumed run continues
// them), metrics, TensorBoard logs, the final evaluation on the test set, model.syn and the report.
TrainResult train_recipe(const Recipe& recipe, const TrainRun& run);

// A trained zoo model read back: `path` is a model file or a run folder (its model.syn). Builds the
// model named in the file's metadata and restores its weights; errors name the file.
struct Trained {
  nn::ModulePtr model;
  io::Checkpoint checkpoint;
  std::string path;  // the model file read
  std::string name;  // the recipe's name
};
Trained load_trained(const std::string& path);

// ---- colour images (src/zoo/images.cpp) ----
// A recipe's data: MNIST IDX files, CIFAR-10 binary batches (the last 5,000 training images validate) or
// an image folder (DIR/CLASS/*.png; with DIR/train and DIR/test sub-folders those are the training and
// test sets, else the held-out part of DIR is both validation and test set).
struct RecipeData {
  MnistSplit split;                      // images [N, H, W, C] float32, labels int64
  std::int64_t classes = 10;
  std::vector<std::string> class_names;  // image folders: the class folders' names
  Shape input;                           // one image's shape [H, W, C]
};
RecipeData load_recipe_data(const Recipe& recipe, const TrainRun& run);
// The model a recipe trains on `classes` classes.
nn::ModulePtr build_model(const Recipe& recipe, std::int64_t classes);
// The test images and labels of `dir` for the model saved in `checkpoint`, read as it was trained (its
// metadata names the data format, image size and classes); `prepared`: as the model takes them
// (model_ready: standardised when the recipe says so), else in [0, 1] (for showing them).
std::pair<Tensor, Tensor> load_test_set(const io::Checkpoint& checkpoint, const std::string& dir, bool prepared = true);

// What a trained model takes, from the metadata train_recipe records (MNIST runs record none: digits
// [28, 28, 1]). predict, export, serve, eval and the report read images through it.
struct ModelInput {
  std::string data = "mnist";            // "mnist", "cifar10" or "image-folder"
  Shape shape{28, 28, 1};                // one image [H, W, C]
  bool standardize = false;              // per-image standardisation before the model (the recipe's)
  std::vector<std::string> class_names;  // one per output: the class folders, CIFAR-10's classes, or "0", "1", ...
};
ModelInput model_input(const io::Checkpoint& checkpoint);
// A decoded image file (data::read_image's [H, W, C]) as the model sees it, float32 [H, W, C] in [0, 1]:
// MNIST models get data::mnist_style's digit; the others the image converted to their channels (grey
// with TF's luminance weights, or RGB) and resized bilinearly to their H x W, as the image-folder reader
// does. Errors name `name`.
Tensor image_for_model(const ModelInput& input, const Tensor& image, const std::string& name);
// Images [N, H, W, C] in [0, 1] as the model takes them (per-image standardisation when the recipe has it).
Tensor model_ready(const ModelInput& input, const Tensor& images);
const std::vector<std::string>& cifar10_class_names();  // airplane, automobile, ..., truck

// The transform train_recipe applies to the training batches: the recipe's own augmentation (cifar-cnn's
// distortions, resnet-small's crop and flip), --augment N's random shifts, both, or none; empty when
// there is none. --augment 0 (run.augment_shift == 0) switches all of it off: the batches are the
// training images as loaded (standardised by load_recipe_data when the recipe standardises).
std::function<Tensor(const Tensor&, std::uint64_t)> training_augmentation(const Recipe& recipe, const TrainRun& run);

// resnet-small's network (src/zoo/resnet.cpp), a CIFAR ResNet-(6n+2): n basic blocks per stage (3:
// ResNet-20), `classes` outputs; it builds for any input size and channel count.
nn::ModulePtr resnet_small(std::int64_t classes, int blocks_per_stage = 3);

}  // namespace synapse::zoo
