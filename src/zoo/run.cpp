// Running the zoo's recipes: the training policy `synapse train` applies, and reading a trained model
// back. The CLI only parses flags into a TrainRun and prints the TrainResult.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/check.h"
#include "io/temp_files.h"
#include "synapse/data.h"
#include "synapse/dist.h"
#include "synapse/report.h"
#include "synapse/version.h"
#include "synapse/zoo.h"

namespace synapse::zoo {
namespace fs = std::filesystem;

Tensor images_to_float(const Tensor& images) {
  SYN_CHECK(images.ndim() == 3, "expected images [N, H, W], got {}", to_string(images.shape()));
  return data::scale(images).reshape({images.dim(0), images.dim(1), images.dim(2), 1});
}

MnistSplit load_mnist_split(const std::string& dir, std::int64_t validation) {
  SYN_CHECK(fs::is_directory(dir), "data folder '{}' does not exist (fetch MNIST with: scripts/fetch-data mnist {})",
            dir, dir);
  data::Mnist m = data::load_mnist(dir);
  const Tensor x = images_to_float(m.train_images);
  const Tensor y = cast(m.train_labels, DType::Int64);
  const std::int64_t n = x.dim(0);
  validation = std::min(validation, n / 10);  // a small subset (tests, image-folder comparisons) keeps 90%
  SYN_CHECK(validation >= 0 && validation < n, "validation size {} must be below the {} training images", validation, n);
  auto [train, val] = data::split({x, y}, n - validation);
  MnistSplit s;
  s.train_x = train[0];
  s.train_y = train[1];
  s.val_x = val[0];
  s.val_y = val[1];
  s.test_x = images_to_float(m.test_images);
  s.test_y = cast(m.test_labels, DType::Int64);
  return s;
}

Trained load_trained(const std::string& path) {
  Trained t;
  t.path = fs::is_directory(path) ? (fs::path(path) / "model.syn").string() : path;
  t.checkpoint = io::load_checkpoint(t.path);
  auto it = t.checkpoint.metadata.find("model");
  SYN_CHECK(it != t.checkpoint.metadata.end(), "'{}' does not say which model it holds (no 'model' metadata)", t.path);
  t.name = it->second;
  const Recipe& r = recipe(t.name);
  // Colour-image runs record their input shape and classes (images.cpp); MNIST runs are 28x28x1, 10.
  const ModelInput in = model_input(t.checkpoint);
  t.model = build_model(r, static_cast<std::int64_t>(in.class_names.size()));
  Shape shape{1};
  shape.insert(shape.end(), in.shape.begin(), in.shape.end());
  t.model->build_for(shape);
  try {
    train::restore_training_state(t.checkpoint, *t.model, nullptr);
  } catch (const Error& e) {
    detail::fail("'{}' does not fit model '{}': {}", t.path, r.name, e.what());
  }
  t.model->eval();
  return t;
}

namespace {

std::unique_ptr<optim::Optimizer> make_optimizer(const Recipe& r, const std::string& name, nn::Module& model, double lr,
                                                 std::int64_t steps_per_epoch) {
  std::unique_ptr<optim::Optimizer> opt;
  if (name == "momentum" || name == "nesterov") {
    opt = std::make_unique<optim::SGD>(model.named_trainable_parameters(),
                                       optim::SGDOptions{.learning_rate = lr, .momentum = r.momentum > 0 ? r.momentum : 0.9,
                                                         .nesterov = name == "nesterov"});
  } else {
    opt = optim::make_optimizer(name, model.named_trainable_parameters(), lr);
  }
  if (r.lr_decay_per_epoch != 1.0) opt->set_schedule(optim::exponential_decay(lr, steps_per_epoch, r.lr_decay_per_epoch));
  return opt;
}

// A fresh run replaces the event files of an earlier one in the same folder (TensorBoard would draw
// both over each other); a resumed run adds a new file that continues the curves.
void remove_old_events(const std::string& logdir) {
  for (const char* run : {"train", "validation"}) {
    const auto dir = fs::path(logdir) / run;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().starts_with("events.out.tfevents.")) fs::remove(e.path());
  }
}

}  // namespace

TrainResult train_recipe(const Recipe& r, const TrainRun& run) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool root = dist::rank() == 0;  // data-parallel: only rank 0 prints and writes
  std::function<void(const std::string&)> log = [](const std::string&) {};
  if (root) log = run.log ? run.log : [](const std::string& line) { fmt::print("{}\n", line); };
  const int epochs = run.epochs > 0 ? run.epochs : r.epochs;
  const int batch = run.batch > 0 ? run.batch : r.batch_size;
  const double lr = run.learning_rate > 0 ? run.learning_rate : r.learning_rate;
  const std::string opt_name = run.optimizer.empty() ? r.optimizer : run.optimizer;
  const std::int64_t max_steps = run.max_steps >= 0 ? run.max_steps : r.max_steps;
  const int shift = run.augment_shift >= 0 ? run.augment_shift : r.augment_shift;
  const std::string logdir = run.logdir.empty() ? "runs/" + r.name : run.logdir;
  if (root) fs::create_directories(logdir);

  const RecipeData data = load_recipe_data(r, run);
  const MnistSplit& d = data.split;
  log(fmt::format("{}: {}", r.name, r.description));
  log(fmt::format("data: {} train, {} validation, {} test images from {}", d.train_x.dim(0), d.val_x.dim(0),
                  d.test_x.dim(0), run.data_dir));

  manual_seed(run.seed);
  nn::ModulePtr model = build_model(r, data.classes);
  model->set_name(r.name);
  Shape input{1};
  input.insert(input.end(), data.input.begin(), data.input.end());
  model->build_for(input);
  // What load_trained needs to rebuild the model, and eval to read the test set as in training.
  std::map<std::string, std::string> data_meta;
  if (r.data != "mnist") {
    data_meta["data"] = r.data;
    data_meta["input_shape"] = fmt::format("{}", fmt::join(data.input, "x"));
    data_meta["classes"] = std::to_string(data.classes);
  }
  if (r.data == "image-folder") {
    data_meta["class_names"] = fmt::format("{}", fmt::join(data.class_names, ","));
    data_meta["image_size"] = std::to_string(run.image_size);
    data_meta["channels"] = std::to_string(run.channels);
    data_meta["validation_split"] = fmt::format("{}", run.validation_split);
    data_meta["seed"] = std::to_string(run.seed);
    log(fmt::format("classes: {}", fmt::join(data.class_names, ", ")));
  }
  const std::int64_t steps_per_epoch = (d.train_x.dim(0) + batch - 1) / batch;
  std::unique_ptr<optim::Optimizer> opt = make_optimizer(r, opt_name, *model, lr, steps_per_epoch);

  train::FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = batch;
  fo.seed = run.seed;
  fo.max_steps = max_steps;
  fo.precision = run.precision;
  log(run.precision == MatmulPrecision::bf16
          ? "precision: bf16 matrix products (bf16 operands, fp32 accumulation; weights, optimizer and loss in fp32)"
          : "precision: fp32");
  if (run.precision == MatmulPrecision::bf16 && bf16_peak_ratio() > 0 && bf16_peak_ratio() < 1.0)
    log(fmt::format("note: this CPU's bf16 dot products (vdpbf16ps) measure {:.2f}x the rate of its fp32 FMAs, so bf16 "
                    "will train slower than fp32 here (no AMX kernels yet)",
                    bf16_peak_ratio()));
  if (d.val_x.defined()) fo.validation = std::make_pair(d.val_x, d.val_y);
  if (dist::size() > 1)
    log(fmt::format("data-parallel over {} MPI ranks: batch {} per rank, {} in all; each rank reads 1/{} of every "
                    "epoch", dist::size(), batch, batch * dist::size(), dist::size()));
  fo.verbose = root ? 1 : 0;
  if (root) fo.callbacks.push_back(train::callbacks::progress_bar());
  if (root && run.profile_steps > 0) fo.callbacks.push_back(train::callbacks::profile_steps(run.profile_steps, log));
  fo.augment = training_augmentation(r, run);
  if (shift > 0)
    log(fmt::format("augmentation: each training image moved by up to {} pixel{} (--augment 0: off)", shift,
                    shift == 1 ? "" : "s"));
  if (r.augment && fo.augment)
    log(fmt::format("augmentation: the recipe's ({}; --augment 0: off)",
                    r.standardize ? "ending with per-image standardisation" : "as is"));
  if (run.augment_shift == 0 && (r.augment || r.augment_shift > 0))
    log(r.standardize ? "augmentation: off (--augment 0); the training images are only standardised per image"
                      : "augmentation: off (--augment 0)");
  if (r.l2 > 0) {  // on the kernels (weights), not on biases or normalisation parameters
    std::vector<Tensor> kernels;
    const auto chosen = [&](const std::string& name) {
      if (r.l2_layers.empty()) return true;
      for (const auto& l : r.l2_layers)
        if (name.starts_with(l + "/")) return true;
      return false;
    };
    for (const auto& [name, t] : model->named_trainable_parameters())
      if (name.ends_with("/kernel") && chosen(name)) kernels.push_back(t);
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
  const std::string ckpt_dir = (fs::path(logdir) / "checkpoints").string();
  std::map<std::string, std::string> ckpt_meta = data_meta;
  ckpt_meta["model"] = r.name;
  ckpt_meta["precision"] = std::string(precision_name(run.precision));
  io::TensorMap ema_state;  // the shadows, saved as "ema/<name>" so a resumed run continues the average
  if (ema)
    for (const auto& [name, t] : ema->state_dict()) ema_state["ema/" + name] = t;
  // The writers run on rank 0 only; the callbacks above (averages, schedules, stopping) on every rank.
  std::shared_ptr<report::HistoryLog> history;
  if (root) {
    fo.callbacks.push_back(train::callbacks::model_checkpoint(ckpt_dir, 1, run.checkpoint_steps, 3, ckpt_meta, ema_state));
    fo.callbacks.push_back(train::callbacks::metrics_logger((fs::path(logdir) / "metrics.csv").string()));
    // TensorBoard logs in LOGDIR/train and LOGDIR/validation; history.json feeds the HTML report.
    if (!run.resume) remove_old_events(logdir);
    fo.callbacks.push_back(train::callbacks::tensorboard(logdir));
    history = std::make_shared<report::HistoryLog>((fs::path(logdir) / "history.json").string());
    history->set("model", r.name);
    history->set("description", r.description);
    history->set("epochs", static_cast<double>(epochs));
    history->set("batch", static_cast<double>(batch));
    history->set("optimizer", opt_name);
    history->set("learning_rate", lr);
    history->set("data", run.data_dir);
    history->set("seed", static_cast<double>(run.seed));
    if (max_steps > 0) history->set("max_steps", static_cast<double>(max_steps));
    if (shift > 0) history->set("augment_shift", static_cast<double>(shift));
    history->set("threads", static_cast<double>(num_threads()));
    if (dist::size() > 1) history->set("mpi_ranks", static_cast<double>(dist::size()));
    history->set("precision", std::string(precision_name(run.precision)));
    history->set("synapse", std::string(version()));
    fo.callbacks.push_back(history);
  }

  if (run.resume && root) {  // rank 0 reads the checkpoint; fit broadcasts what it restored
    for (const std::string& dir : {logdir, ckpt_dir})  // what a kill -9 left behind
      if (const int n = io::remove_stale_temp_files(dir); n > 0)
        log(fmt::format("removed {} temporary file(s) of killed runs from {}", n, dir));
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
      log(fmt::format("resumed from {} (epoch {}, step {})", *latest, c.epoch, c.step));
    } else {
      log(fmt::format("no checkpoint in {}; starting from scratch", ckpt_dir));
    }
  }
  if (ema && dist::size() > 1)  // the averages too start from rank 0's (fresh or resumed)
    for (auto [name, t] : ema->state_dict()) dist::broadcast_(t);

  train::Trainer trainer(*model, *opt, train::losses::sparse_categorical_crossentropy(), fo);
  TrainResult result;
  const auto fit_start = std::chrono::steady_clock::now();
  result.history = trainer.fit(d.train_x, d.train_y);
  result.fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();
  result.ranks = dist::size();
  if (const dist::DistributedStats* stats = trainer.distributed_stats()) {
    const dist::DistributedStats& st = *stats;
    if (st.steps > 0) {
      result.comm_wait_ms_per_step = 1e3 * st.wait_seconds / static_cast<double>(st.steps);
      result.comm_launch_ms_per_step = 1e3 * st.launch_seconds / static_cast<double>(st.steps);
    }
    result.images = st.steps * batch * dist::size();
  }

  if (ema) ema->swap();  // evaluate and save the averaged weights
  const train::Logs test = trainer.evaluate(d.test_x, d.test_y);
  result.test_accuracy = test.at("accuracy");
  result.test_loss = test.at("loss");
  result.steps = opt->iterations();
  if (!root) return result;  // rank 0 saves the model, the history and the report
  io::Checkpoint final_ckpt = train::capture_training_state(*model, nullptr, trainer.epoch());
  final_ckpt.step = opt->iterations();
  for (const auto& [k, v] : data_meta) final_ckpt.metadata[k] = v;
  final_ckpt.metadata["model"] = r.name;
  final_ckpt.metadata["precision"] = std::string(precision_name(run.precision));  // what it was trained with
  final_ckpt.metadata["test_accuracy"] = fmt::format("{:.4f}", result.test_accuracy);
  result.model_path = (fs::path(logdir) / "model.syn").string();
  io::save_checkpoint(result.model_path, final_ckpt);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  history->set("test_accuracy", result.test_accuracy);
  history->set("test_loss", result.test_loss);
  history->set("steps", static_cast<double>(result.steps));
  history->set("seconds", result.seconds);
  history->write();
  try {
    report::ReportOptions ro;
    ro.data_dir = run.data_dir;
    ro.model = model.get();
    result.report_path = report::write_report(logdir, ro);
  } catch (const Error& e) {  // the trained model is saved; a report that fails is only a warning
    result.report_error = e.what();
  }
  return result;
}

}  // namespace synapse::zoo
