// synapse train MODEL: trains a zoo model on MNIST (or Fashion-MNIST) and reports its test accuracy. The
// training policy is the zoo's (zoo::train_recipe); this file parses the flags and prints the result.
#include <algorithm>
#include <cstdlib>

#include "cli/commands.h"

namespace synapse::cli {
namespace {

struct TrainArgs {
  std::string model;
  zoo::TrainRun run;
  int threads = 0;
  std::string precision = "fp32";
  std::string architecture = "small-cnn";  // image-folder's --model
  bool grayscale = false;
};

int run_train(const TrainArgs& a) {
  // `train image-folder --model M`: the user's own folders (DIR/CLASS/*.png) with an image-folder recipe.
  // Any zoo model can train on folders (those but small-cnn need 10 classes).
  zoo::Recipe r = zoo::recipe(a.model == "image-folder" ? a.architecture : a.model);
  if (a.model == "image-folder") r.data = "image-folder";
  if (a.threads > 0) {
    set_num_threads(a.threads);
  } else if (dist::size() > 1) {  // ranks on one machine share its cores
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int ranks_here = local ? std::max(1, std::atoi(local)) : 1;
    set_num_threads(std::max(1, num_threads() / ranks_here));
  }
  zoo::TrainRun run = a.run;
  run.channels = a.grayscale ? 1 : 3;
  run.precision = precision_flag(a.precision);
  const zoo::TrainResult res = zoo::train_recipe(r, run);
  if (!dist::is_root()) return 0;  // data-parallel: rank 0 reports
  if (res.history.stopped_early) fmt::print("{}\n", res.history.stop_reason);
  fmt::print("saved {}\n", res.model_path);
  if (res.report_path.empty()) {
    fmt::print(stderr, "synapse: warning: no report: {}\n", res.report_error);
  } else {
    fmt::print("report: {}\n", res.report_path);
  }
  fmt::print("test accuracy: {:.2f}% (loss {:.4f}) after {} steps in {:.0f}s\n", 100.0 * res.test_accuracy, res.test_loss,
             res.steps, res.seconds);
  if (res.ranks > 1)
    fmt::print("data-parallel: {} ranks x {} threads, {:.0f} images/s in training, gradient averaging {:.2f} ms per step "
               "waiting + {:.2f} ms packing\n",
               res.ranks, num_threads(), static_cast<double>(res.images) / res.fit_seconds, res.comm_wait_ms_per_step,
               res.comm_launch_ms_per_step);
  return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "Train a zoo model on MNIST and print its test accuracy");
  sub->add_option("model", a->model, fmt::format("Zoo model: {}, or image-folder", fmt::join(zoo::names(), ", ")))->required();
  sub->add_option("--model", a->architecture, "image-folder: the model to train on the folders")->capture_default_str();
  sub->add_option("--image-size", a->run.image_size, "image-folder: images are resized to N x N")
      ->capture_default_str()
      ->check(integer_in(1, 4096));
  sub->add_flag("--grayscale", a->grayscale, "image-folder: read the images as grey (default RGB)");
  sub->add_option("--validation-split", a->run.validation_split, "image-folder: the fraction held out for validation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--data", a->run.data_dir, "Folder with the MNIST IDX files, the CIFAR-10 binary batches (cifar-cnn) or the class folders (image-folder)")->capture_default_str();
  sub->add_option("--logdir", a->run.logdir, "Run folder for checkpoints, metrics and the model (default runs/MODEL)");
  sub->add_option("--epochs", a->run.epochs, "Epochs (default: the model's)")->check(integer_in(1, 100000));
  sub->add_option("--batch", a->run.batch, "Batch size, per rank under mpirun (default: the model's)")->check(integer_in(1, 1 << 20));
  sub->add_option("--lr", a->run.learning_rate, "Learning rate (default: the model's)")->check(positive_number());
  sub->add_option("--optimizer", a->run.optimizer, "sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw");
  sub->add_option("--seed", a->run.seed, "Random seed (initialisation, shuffling, dropout)")
      ->capture_default_str()
      ->check(unsigned_integer());
  sub->add_option("--steps", a->run.max_steps, "Stop after this many steps (default: the model's)")
      ->check(integer_in(1, std::int64_t{1} << 40));
  sub->add_option("--augment", a->run.augment_shift,
                  "Move each training image by up to N pixels, a new random offset every time (default: the model's; 0: no augmentation at all, cifar-cnn's and resnet-small's own included)")
      ->check(integer_in(0, 100));
  sub->add_option("--threads", a->threads, "Threads (default: all cores)")->check(integer_in(1, 1024));
  sub->add_option("--profile", a->run.profile_steps,
                  "Print where the time goes (ms and GFLOP/s per op) over N steps, after 5 warm-up steps")
      ->check(integer_in(1, 1000000));
  add_precision_option(sub, a->precision, "in training and the final evaluation");
  sub->add_flag("--resume", a->run.resume, "Continue from the newest checkpoint in LOGDIR/checkpoints");
  sub->add_option("--checkpoint-every", a->run.checkpoint_steps,
                  "Also save a checkpoint every N steps (default: once per epoch only)")
      ->check(integer_in(1, std::int64_t{1} << 40));
  return {sub, [a] { return run_train(*a); }};
}

}  // namespace synapse::cli
