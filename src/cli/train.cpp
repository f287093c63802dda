// synapse train MODEL: trains a zoo model on MNIST (or Fashion-MNIST) and reports its test accuracy.
#include <chrono>
#include <filesystem>

#include "cli/commands.h"
#include "core/check.h"
#include "synapse/report.h"

namespace synapse::cli {
namespace {

struct TrainArgs {
  std::string model;
  std::string data = "data/mnist";
  std::string logdir;
  int epochs = 0;
  int batch = 0;
  double lr = 0;
  std::string optimizer;
  std::uint64_t seed = 0;
  std::int64_t steps = -1;
  int augment = -1;
  bool resume = false;
  int threads = 0;
};

int run_train(const TrainArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const zoo::Recipe& r = zoo::recipe(a.model);
  if (a.threads > 0) set_num_threads(a.threads);
  const int epochs = a.epochs > 0 ? a.epochs : r.epochs;
  const int batch = a.batch > 0 ? a.batch : r.batch_size;
  const double lr = a.lr > 0 ? a.lr : r.learning_rate;
  const std::string opt_name = a.optimizer.empty() ? r.optimizer : a.optimizer;
  const std::int64_t max_steps = a.steps >= 0 ? a.steps : r.max_steps;
  const int shift = a.augment >= 0 ? a.augment : r.augment_shift;
  const std::string logdir = a.logdir.empty() ? "runs/" + r.name : a.logdir;
  std::filesystem::create_directories(logdir);

  MnistSplit d = load_mnist_split(a.data);
  fmt::print("{}: {}\n", r.name, r.description);
  fmt::print("data: {} train, {} validation, {} test images from {}\n", d.train_x.dim(0), d.val_x.dim(0), d.test_x.dim(0),
             a.data);

  manual_seed(a.seed);
  nn::ModulePtr model = r.build();
  model->set_name(r.name);
  model->build_for({1, 28, 28, 1});

  std::unique_ptr<optim::Optimizer> opt;
  if (opt_name == "momentum" || opt_name == "nesterov") {
    opt = std::make_unique<optim::SGD>(model->named_trainable_parameters(),
                                       optim::SGDOptions{.learning_rate = lr, .momentum = r.momentum > 0 ? r.momentum : 0.9,
                                                         .nesterov = opt_name == "nesterov"});
  } else {
    opt = optim::make_optimizer(opt_name, model->named_trainable_parameters(), lr);
  }
  const std::int64_t steps_per_epoch = (d.train_x.dim(0) + batch - 1) / batch;
  if (r.lr_decay_per_epoch != 1.0) opt->set_schedule(optim::exponential_decay(lr, steps_per_epoch, r.lr_decay_per_epoch));

  train::FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = batch;
  fo.seed = a.seed;
  fo.max_steps = max_steps;
  fo.validation = std::make_pair(d.val_x, d.val_y);
  fo.callbacks.push_back(train::callbacks::progress_bar());
  if (shift > 0) {
    fo.augment = [shift](const Tensor& x, std::uint64_t seed) { return data::random_translate(x, shift, seed); };
    fmt::print("augmentation: each training image moved by up to {} pixel{} (--augment 0: off)\n", shift, shift == 1 ? "" : "s");
  }
  if (r.l2 > 0) {
    std::vector<Tensor> kernels;
    for (const auto& [name, t] : model->named_trainable_parameters())
      if (name.ends_with("/kernel")) kernels.push_back(t);
    const float l2 = r.l2;
    fo.regularization = [kernels, l2] { return train::l2_regularization(kernels, l2); };
  }
  std::shared_ptr<optim::ExponentialMovingAverage> ema;
  if (r.ema_decay > 0) {
    ema = std::make_shared<optim::ExponentialMovingAverage>(model->named_trainable_parameters(), r.ema_decay);
    fo.callbacks.push_back(train::callbacks::moving_average(ema));
  }
  if (r.lr_epoch_factor != 1.0) {
    const double f = r.lr_epoch_factor;
    fo.callbacks.push_back(train::callbacks::learning_rate_scheduler(
        [f, lr](int epoch, double) { return epoch == 0 ? lr : lr * std::pow(f, epoch); }));
  }
  if (r.early_stopping_patience > 0)
    fo.callbacks.push_back(train::callbacks::early_stopping("val_loss", r.early_stopping_patience));
  const std::string ckpt_dir = (std::filesystem::path(logdir) / "checkpoints").string();
  io::TensorMap ema_state;  // the shadows, saved as "ema/<name>" so --resume continues the average
  if (ema)
    for (const auto& [name, t] : ema->state_dict()) ema_state["ema/" + name] = t;
  fo.callbacks.push_back(train::callbacks::model_checkpoint(ckpt_dir, 1, 0, 3, {{"model", r.name}}, ema_state));
  fo.callbacks.push_back(train::callbacks::metrics_logger((std::filesystem::path(logdir) / "metrics.csv").string()));
  // TensorBoard logs in LOGDIR/train and LOGDIR/validation; history.json feeds the HTML report. A fresh
  // run replaces the event files of an earlier one in the same folder (TensorBoard would draw both over
  // each other); --resume adds a new file that continues the curves.
  if (!a.resume) {
    for (const char* run : {"train", "validation"}) {
      const auto dir = std::filesystem::path(logdir) / run;
      if (!std::filesystem::is_directory(dir)) continue;
      for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().starts_with("events.out.tfevents.")) std::filesystem::remove(e.path());
    }
  }
  fo.callbacks.push_back(train::callbacks::tensorboard(logdir));
  auto history = std::make_shared<report::HistoryLog>((std::filesystem::path(logdir) / "history.json").string());
  history->set("model", r.name);
  history->set("description", r.description);
  history->set("epochs", static_cast<double>(epochs));
  history->set("batch", static_cast<double>(batch));
  history->set("optimizer", opt_name);
  history->set("learning_rate", lr);
  history->set("data", a.data);
  history->set("seed", static_cast<double>(a.seed));
  if (max_steps > 0) history->set("max_steps", static_cast<double>(max_steps));
  if (shift > 0) history->set("augment_shift", static_cast<double>(shift));
  history->set("threads", static_cast<double>(num_threads()));
  history->set("synapse", std::string(version()));
  fo.callbacks.push_back(history);

  if (a.resume) {
    if (auto latest = io::latest_checkpoint(ckpt_dir)) {
      const io::Checkpoint c = io::load_checkpoint(*latest);
      train::restore_training_state(c, *model, opt.get());
      if (ema) {
        std::map<std::string, Tensor> shadows;
        for (const auto& [name, t] : c.tensors)
          if (name.starts_with("ema/")) shadows[name.substr(4)] = t;
        ema->load_state_dict(shadows);
      }
      fo.initial_epoch = static_cast<int>(c.epoch);
      fmt::print("resumed from {} (epoch {}, step {})\n", *latest, c.epoch, c.step);
    } else {
      fmt::print("no checkpoint in {}; starting from scratch\n", ckpt_dir);
    }
  }

  train::Trainer trainer(*model, *opt, train::losses::sparse_categorical_crossentropy(), fo);
  const train::History h = trainer.fit(d.train_x, d.train_y);
  if (h.stopped_early) fmt::print("{}\n", h.stop_reason);

  if (ema) ema->swap();  // evaluate and save the averaged weights
  const train::Logs test = trainer.evaluate(d.test_x, d.test_y);
  io::Checkpoint final_ckpt = train::capture_training_state(*model, nullptr, trainer.epoch());
  final_ckpt.step = opt->iterations();
  final_ckpt.metadata["model"] = r.name;
  final_ckpt.metadata["test_accuracy"] = fmt::format("{:.4f}", test.at("accuracy"));
  const std::string out = (std::filesystem::path(logdir) / "model.syn").string();
  io::save_checkpoint(out, final_ckpt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("saved {}\n", out);
  history->set("test_accuracy", test.at("accuracy"));
  history->set("test_loss", test.at("loss"));
  history->set("steps", static_cast<double>(opt->iterations()));
  history->set("seconds", secs);
  history->write();
  try {
    report::ReportOptions ro;
    ro.data_dir = a.data;
    ro.model = model.get();
    fmt::print("report: {}\n", report::write_report(logdir, ro));
  } catch (const Error& e) {  // the trained model is saved; a report that fails is only a warning
    fmt::print(stderr, "synapse: warning: no report: {}\n", e.what());
  }
  fmt::print("test accuracy: {:.2f}% (loss {:.4f}) after {} steps in {:.0f}s\n", 100.0 * test.at("accuracy"),
             test.at("loss"), opt->iterations(), secs);
  return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "Train a zoo model on MNIST and print its test accuracy");
  sub->add_option("model", a->model, fmt::format("Zoo model: {}", fmt::join(zoo::names(), ", ")))->required();
  sub->add_option("--data", a->data, "Folder with the MNIST IDX files")->capture_default_str();
  sub->add_option("--logdir", a->logdir, "Run folder for checkpoints, metrics and the model (default runs/MODEL)");
  sub->add_option("--epochs", a->epochs, "Epochs (default: the model's)")->check(integer_in(1, 100000));
  sub->add_option("--batch", a->batch, "Batch size (default: the model's)")->check(integer_in(1, 1 << 20));
  sub->add_option("--lr", a->lr, "Learning rate (default: the model's)")->check(positive_number());
  sub->add_option("--optimizer", a->optimizer, "sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw");
  sub->add_option("--seed", a->seed, "Random seed (initialisation, shuffling, dropout)")
      ->capture_default_str()
      ->check(unsigned_integer());
  sub->add_option("--steps", a->steps, "Stop after this many steps (default: the model's)")
      ->check(integer_in(1, std::int64_t{1} << 40));
  sub->add_option("--augment", a->augment,
                  "Move each training image by up to N pixels, a new random offset every time (default: the model's; 0: off)")
      ->check(integer_in(0, 100));
  sub->add_option("--threads", a->threads, "Threads (default: all cores)")->check(integer_in(1, 1024));
  sub->add_flag("--resume", a->resume, "Continue from the newest checkpoint in LOGDIR/checkpoints");
  return {sub, [a] { return run_train(*a); }};
}

}  // namespace synapse::cli
