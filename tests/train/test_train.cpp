#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "synapse/synapse.h"

using namespace synapse;
namespace fs = std::filesystem;

namespace {

// Two Gaussian blobs in 2-D, classes 0 and 1, seeded.
std::pair<Tensor, Tensor> blobs(std::int64_t n, std::uint64_t seed) {
  Generator g(seed);
  Tensor x = random_normal({n, 2}, 0.0f, 0.5f, &g);
  Tensor y = Tensor::empty({n}, DType::Int64);
  float* px = x.data<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = i % 2;
    y.data<std::int64_t>()[i] = c;
    px[2 * i] += c ? 2.0f : -2.0f;
    px[2 * i + 1] += c ? 1.0f : -1.0f;
  }
  return {x, y};
}

nn::ModulePtr small_model() {
  return nn::Sequential({nn::Dense(nn::DenseOptions(8).activation(nn::Activation::Tanh)), nn::Dropout(0.2f), nn::Dense(2)});
}

train::FitOptions options(int epochs, int batch, std::uint64_t seed = 0, std::int64_t max_steps = 0) {
  train::FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = batch;
  fo.seed = seed;
  fo.max_steps = max_steps;
  fo.verbose = 0;
  return fo;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("synapse_test_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Losses, ValuesByHand) {
  Tensor logits = tensor({{1, 2, 3}, {1, 1, 1}});
  Tensor labels = from_vector(std::vector<std::int64_t>{2, 0});
  // -log softmax: row 0 -> log(e^1+e^2+e^3) - 3 = 0.40760596; row 1 -> log 3 = 1.09861229
  EXPECT_NEAR(train::losses::sparse_categorical_crossentropy()(logits, labels).item(), (0.40760596 + 1.09861229) / 2, 1e-6);
  Tensor probs = tensor({{0.1f, 0.2f, 0.7f}, {0.5f, 0.25f, 0.25f}});
  EXPECT_NEAR(train::losses::sparse_categorical_crossentropy(false)(probs, labels).item(), -(std::log(0.7) + std::log(0.5)) / 2, 1e-6);
  Tensor onehot = tensor({{0, 0, 1}, {1, 0, 0}});
  EXPECT_NEAR(train::losses::categorical_crossentropy()(logits, onehot).item(), (0.40760596 + 1.09861229) / 2, 1e-6);
  EXPECT_NEAR(train::losses::categorical_crossentropy(false)(probs, onehot).item(), -(std::log(0.7) + std::log(0.5)) / 2, 1e-6);
  EXPECT_NEAR(train::losses::mean_squared_error()(tensor({1, 2}), tensor({2, 4})).item(), 2.5, 1e-6);
  EXPECT_NEAR(train::losses::mean_absolute_error()(tensor({1, 2}), tensor({2, 4})).item(), 1.5, 1e-6);
  // binary: p = sigmoid(0) = 0.5 -> log 2
  EXPECT_NEAR(train::losses::binary_crossentropy()(tensor({0.0f}), tensor({1.0f})).item(), std::log(2.0), 1e-6);
  EXPECT_NEAR(train::losses::binary_crossentropy(false)(tensor({0.8f}), tensor({1.0f})).item(), -std::log(0.8), 1e-6);
  // L2: 0.5 * 0.1 * (1 + 4 + 9)
  EXPECT_NEAR(train::l2_regularization({tensor({1, 2}), tensor({3})}, 0.1f).item(), 0.7, 1e-6);
  EXPECT_THROW(train::losses::sparse_categorical_crossentropy()(logits, from_vector(std::vector<std::int64_t>{1})), Error);
}

// Keras' SparseCategoricalCrossentropy(ignore_class=...): ignored targets neither count in the mean
// nor get a gradient; any ignore value works (also one outside [0, C)).
TEST(Losses, SparseIgnoreClassValuesAndGradient) {
  // Sequences [2, 2, 3]: targets 2, <pad>; 0, 0 (pad = 0) -> only the first step counts with ignore 0.
  Tensor logits = tensor({{1, 2, 3}, {1, 1, 1}, {3, 1, 1}, {0, 5, 1}}).reshape({2, 2, 3});
  logits.requires_grad_();
  const Tensor labels = from_vector(std::vector<std::int64_t>{2, 0, 1, 0}, {2, 2});
  const double l0 = 0.40760596;                                     // -log softmax([1,2,3])[2]
  const double l2 = std::log(std::exp(3.0) + 2 * std::exp(1.0)) - 1;  // -log softmax([3,1,1])[1]
  Tensor loss = train::losses::sparse_categorical_crossentropy(true, 0)(logits, labels);
  EXPECT_NEAR(loss.item(), (l0 + l2) / 2, 1e-6);
  loss.backward();
  const std::vector<float> g = logits.grad().to_vector<float>();
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(g[static_cast<std::size_t>(3 + j)], 0.0f);  // ignored rows: exactly zero
    EXPECT_EQ(g[static_cast<std::size_t>(9 + j)], 0.0f);
  }
  // Counted rows: (softmax - one_hot) / 2.
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(g[2], (std::exp(3.0) / z - 1) / 2, 1e-6);
  EXPECT_NEAR(g[0], std::exp(1.0) / z / 2, 1e-6);
  // Without ignore_class every target counts; an ignore value outside the classes ignores nothing.
  const Tensor x = logits.detach();
  const double all = train::losses::sparse_categorical_crossentropy()(x, labels).item();
  EXPECT_NEAR(train::losses::sparse_categorical_crossentropy(true, -1)(x, labels).item(), all, 1e-6);
  // Every target ignored: 0, not NaN.
  EXPECT_EQ(train::losses::sparse_categorical_crossentropy(true, 0)(x, zeros({2, 2}, DType::Int64)).item(), 0.0f);
  // Probabilities in, the same masking.
  const Tensor probs = softmax(x, -1);
  EXPECT_NEAR(train::losses::sparse_categorical_crossentropy(false, 0)(probs, labels).item(), (l0 + l2) / 2, 1e-5);
}

TEST(Callbacks, TimeLimitStopsMidEpoch) {
  auto [x, y] = blobs(64, 3);
  manual_seed(0);
  auto model = nn::Sequential({nn::Dense(2)});
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  train::FitOptions fo;
  fo.epochs = 3;
  fo.batch_size = 8;
  fo.verbose = 0;
  fo.callbacks.push_back(train::callbacks::time_limit(1e-9));
  auto h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  EXPECT_EQ(opt.iterations(), 1);  // the first batch ends past the limit
  EXPECT_EQ(h.epochs.size(), 1u);
  EXPECT_NE(h.stop_reason.find("time limit"), std::string::npos);
  EXPECT_THROW(train::callbacks::time_limit(0), Error);
}

TEST(Metrics, AccuracyAndConfusionMatrix) {
  Tensor out = tensor({{0.9f, 0.1f}, {0.2f, 0.8f}, {0.6f, 0.4f}, {0.3f, 0.7f}});
  Tensor y = from_vector(std::vector<std::int64_t>{0, 1, 1, 1});
  train::Accuracy acc;
  acc.update(out, y);
  EXPECT_DOUBLE_EQ(acc.result(), 0.75);
  acc.update(out, tensor({{1, 0}, {0, 1}, {1, 0}, {0, 1}}));  // one-hot: all right
  EXPECT_DOUBLE_EQ(acc.result(), 7.0 / 8.0);
  train::ConfusionMatrix cm(2);
  cm.update(out, y);
  EXPECT_EQ(cm.count(0, 0), 1);
  EXPECT_EQ(cm.count(1, 0), 1);
  EXPECT_EQ(cm.count(1, 1), 2);
  EXPECT_EQ(cm.count(0, 1), 0);
  EXPECT_DOUBLE_EQ(cm.per_class_accuracy()[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(cm.result(), 0.75);
  train::Mean m;
  m.update(tensor({1, 2, 3}));
  EXPECT_DOUBLE_EQ(m.result(), 2.0);
}

TEST(Fit, LearnsSeparableBlobsWithValidation) {
  manual_seed(1);
  auto [x, y] = blobs(200, 3);
  auto [vx, vy] = blobs(100, 4);
  auto model = small_model();
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1, .momentum = 0.9});
  train::FitOptions fo = options(5, 20);
  fo.validation = std::make_pair(vx, vy);
  auto h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  ASSERT_EQ(h.epochs.size(), 5u);
  EXPECT_LT(h.epochs.back().at("loss"), h.epochs.front().at("loss"));
  EXPECT_GE(h.epochs.back().at("val_accuracy"), 0.99);
  EXPECT_EQ(opt.iterations(), 50);
  EXPECT_THROW(train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, slice(y, {0}, {10}), fo), Error);
}

TEST(Fit, LearningRateSchedulerAndMaxSteps) {
  manual_seed(2);
  auto [x, y] = blobs(40, 5);
  auto model = small_model();
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  train::FitOptions fo = options(3, 10);
  fo.callbacks.push_back(train::callbacks::learning_rate_scheduler([](int epoch, double lr) { return epoch == 0 ? lr : lr * 0.9; }));
  auto h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  EXPECT_NEAR(h.epochs[0].at("lr"), 0.1, 1e-12);
  EXPECT_NEAR(h.epochs[1].at("lr"), 0.09, 1e-12);
  EXPECT_NEAR(h.epochs[2].at("lr"), 0.081, 1e-12);

  // What each epoch will run, as the progress bar reports it: max_steps = 15 cuts the 4th epoch to 3.
  struct Planned : train::Callback {
    std::vector<std::int64_t> steps;
    std::vector<int> epochs;
    void on_epoch_begin(train::Trainer& t, int) override {
      steps.push_back(t.steps_this_epoch());
      epochs.push_back(t.planned_epochs());
    }
  };
  auto planned = std::make_shared<Planned>();
  train::FitOptions fs = options(10, 10, 0, 15);
  fs.callbacks.push_back(planned);
  optim::SGD opt2(model->named_trainable_parameters(), {.learning_rate = 0.1});
  auto h2 = train::fit(*model, opt2, train::losses::sparse_categorical_crossentropy(), x, y, fs);
  EXPECT_EQ(opt2.iterations(), 15);
  EXPECT_EQ(h2.epochs.size(), 4u);  // 4 + 4 + 4 + 3 steps
  EXPECT_EQ(planned->steps, (std::vector<std::int64_t>{4, 4, 4, 3}));
  EXPECT_EQ(planned->epochs, (std::vector<int>{4, 4, 4, 4}));  // not the 10 asked for
}

TEST(Fit, ExplodingLossWarnsWithTheEpochAndTheRate) {
  // A learning rate so large that the loss explodes without becoming NaN: fit finishes, but warns.
  // The labels are noise (no line separates them), so huge weights mean huge losses.
  Generator g(8);
  const Tensor x = random_normal({200, 2}, 0.0f, 1.0f, &g);
  Tensor y = Tensor::empty({200}, DType::Int64);
  for (std::int64_t i = 0; i < 200; ++i) y.data<std::int64_t>()[i] = i % 2;
  auto run = [&](double lr) {
    manual_seed(5);
    auto model = nn::Sequential({nn::Dense(2)});
    model->build_for({1, 2});
    optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = lr});
    return train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, options(3, 20));
  };
  const train::History bad = run(1e30);
  ASSERT_EQ(bad.epochs.size(), 3u);
  EXPECT_TRUE(std::isfinite(bad.epochs[0].at("loss")));
  EXPECT_GT(bad.epochs[0].at("loss"), 1e20);
  ASSERT_EQ(bad.warnings.size(), 1u);  // once, not every epoch
  const std::string& w = bad.warnings[0];
  EXPECT_NE(w.find("epoch 1: the training loss rose from "), std::string::npos) << w;
  EXPECT_NE(w.find(fmt::format("(first batch) to {:.4g} (epoch mean)", bad.epochs[0].at("loss"))), std::string::npos) << w;
  EXPECT_NE(w.find("learning rate (1e+30) is probably too high"), std::string::npos) << w;
  EXPECT_TRUE(run(0.1).warnings.empty());
}

TEST(Fit, EarlyStoppingRestoresTheBestWeights) {
  manual_seed(3);
  auto [x, y] = blobs(100, 6);
  // Validation labels are the opposite class: the better the model fits, the worse val_loss gets.
  Tensor flipped = cast(1 - cast(y, DType::Float32), DType::Int64);
  auto model = small_model();
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  train::FitOptions fo = options(20, 10);
  fo.validation = std::make_pair(x, flipped);
  fo.callbacks.push_back(train::callbacks::early_stopping("val_loss", 2));
  auto h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  EXPECT_TRUE(h.stopped_early);
  EXPECT_LT(h.epochs.size(), 20u);
  EXPECT_NE(h.stop_reason.find("val_loss did not improve for 2 epochs"), std::string::npos) << h.stop_reason;
  // Restored: the validation loss now is the best one seen.
  double best = 1e9;
  for (const auto& e : h.epochs) best = std::min(best, e.at("val_loss"));
  train::Trainer t(*model, opt, train::losses::sparse_categorical_crossentropy(), fo);
  EXPECT_NEAR(t.evaluate(x, flipped).at("loss"), best, 1e-5);
}

TEST(Fit, DivergenceNamesEpochBatchAndCause) {
  manual_seed(4);
  // Un-normalised features in the millions and a large learning rate: the classic beginner's trap.
  Tensor x = random_uniform({64, 3}, 0.0f, 1e6f);
  Tensor y = random_uniform({64, 1}, 0.0f, 1.0f);
  auto model = nn::Sequential({nn::Dense(8), nn::Dense(1)});
  model->build_for({1, 3});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 1.0});
  train::FitOptions fo = options(5, 16);
  try {
    train::fit(*model, opt, train::losses::mean_squared_error(), x, y, fo);
    FAIL() << "expected divergence";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("training diverged at epoch 1, batch "), std::string::npos) << msg;
    EXPECT_NE(msg.find("not normalised"), std::string::npos) << msg;
  }
}

TEST(Fit, MetricsLoggerWritesCsvAndJsonLines) {
  const fs::path dir = temp_dir("logger");
  manual_seed(5);
  auto [x, y] = blobs(40, 7);
  auto model = small_model();
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  train::FitOptions fo = options(2, 10);
  fo.callbacks.push_back(train::callbacks::metrics_logger((dir / "m.csv").string()));
  fo.callbacks.push_back(train::callbacks::metrics_logger((dir / "m.jsonl").string()));
  train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  std::ifstream csv(dir / "m.csv");
  std::string header, l1, l2;
  std::getline(csv, header);
  std::getline(csv, l1);
  std::getline(csv, l2);
  EXPECT_EQ(header, "epoch,accuracy,loss,lr");
  EXPECT_EQ(l1.substr(0, 2), "1,");
  EXPECT_EQ(l2.substr(0, 2), "2,");
  std::ifstream js(dir / "m.jsonl");
  std::string j1;
  std::getline(js, j1);
  EXPECT_EQ(j1.substr(0, 24), "{\"epoch\": 1, \"accuracy\":");
  fs::remove_all(dir);
}

// The augment hook sees every training batch once (never the validation data), with a seed per
// (epoch, batch) that is the same in a second run; what it returns is what the model trains on.
TEST(Fit, AugmentTransformsEveryTrainingBatchWithItsOwnSeed) {
  auto [x, y] = blobs(40, 12);
  auto [vx, vy] = blobs(20, 13);
  auto run = [&, x = x, y = y, vx = vx, vy = vy](bool flip) {
    manual_seed(3);
    auto model = small_model();
    model->build_for({1, 2});
    optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1, .momentum = 0.9});
    train::FitOptions fo = options(3, 10, 5);
    fo.validation = std::make_pair(vx, vy);
    auto seeds = std::make_shared<std::vector<std::uint64_t>>();
    fo.augment = [seeds, flip](const Tensor& xb, std::uint64_t seed) {
      EXPECT_EQ(xb.dim(0), 10);
      seeds->push_back(seed);
      return flip ? neg(xb) : xb;  // flipped inputs: the model learns the classes the other way round
    };
    const train::History h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
    return std::make_pair(*seeds, h.epochs.back().at("val_accuracy"));
  };
  const auto [seeds, val_plain] = run(false);
  ASSERT_EQ(seeds.size(), 12u);  // 3 epochs of 4 batches
  EXPECT_EQ(std::set<std::uint64_t>(seeds.begin(), seeds.end()).size(), 12u);
  const auto [seeds_again, val_flipped] = run(true);
  EXPECT_EQ(seeds_again, seeds);
  EXPECT_GE(val_plain, 0.95);
  EXPECT_LE(val_flipped, 0.05);  // validation inputs are not flipped
}

TEST(Fit, ResumedRunEndsWithTheSameWeights) {
  const fs::path dir = temp_dir("resume");
  const auto data = blobs(60, 8);
  const Tensor x = data.first, y = data.second;  // not a structured binding: clang 14's lambdas cannot capture one
  auto run = [&](int epochs, bool resume, const fs::path& ckpt_dir) {
    manual_seed(9);
    auto model = small_model();  // with dropout: the generator state must be restored too
    model->build_for({1, 2});
    optim::Adam opt(model->named_trainable_parameters(), {.learning_rate = 0.01});
    train::FitOptions fo = options(epochs, 8, 11);
    if (resume) {
      const io::Checkpoint c = io::load_checkpoint(*io::latest_checkpoint(ckpt_dir.string()));
      train::restore_training_state(c, *model, &opt);
      fo.initial_epoch = static_cast<int>(c.epoch);
    } else {
      fo.callbacks.push_back(train::callbacks::model_checkpoint(ckpt_dir.string(), 1, 0, 2));
    }
    train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
    return model->state_dict();
  };
  const auto full = run(4, false, dir / "full");
  run(2, false, dir / "half");  // "interrupted" after 2 epochs
  const auto resumed = run(4, true, dir / "half");
  for (const auto& [name, t] : full) EXPECT_EQ(t.to_vector<float>(), resumed.at(name).to_vector<float>()) << name;
  fs::remove_all(dir);
}

TEST(Fit, ResumeMidEpochFromAStepCheckpoint) {
  const fs::path dir = temp_dir("resume_steps");
  auto [x, y] = blobs(48, 12);
  auto make = [] {
    manual_seed(13);
    auto m = small_model();
    m->build_for({1, 2});
    return m;
  };
  auto full_model = make();
  optim::SGD full_opt(full_model->named_trainable_parameters(), {.learning_rate = 0.05, .momentum = 0.9});
  train::FitOptions fo = options(2, 8, 1);
  train::fit(*full_model, full_opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);

  auto half_model = make();
  optim::SGD half_opt(half_model->named_trainable_parameters(), {.learning_rate = 0.05, .momentum = 0.9});
  train::FitOptions fh = fo;
  fh.max_steps = 9;  // stops in the middle of epoch 2 (6 steps per epoch)
  fh.callbacks.push_back(train::callbacks::model_checkpoint(dir.string(), 0, 9, 2));
  train::fit(*half_model, half_opt, train::losses::sparse_categorical_crossentropy(), x, y, fh);

  auto resumed = make();
  optim::SGD resumed_opt(resumed->named_trainable_parameters(), {.learning_rate = 0.05, .momentum = 0.9});
  const io::Checkpoint c = io::load_checkpoint(*io::latest_checkpoint(dir.string()));
  EXPECT_EQ(c.step, 9);
  EXPECT_EQ(c.epoch, 1);
  train::restore_training_state(c, *resumed, &resumed_opt);
  train::FitOptions fr = fo;
  fr.initial_epoch = static_cast<int>(c.epoch);
  train::fit(*resumed, resumed_opt, train::losses::sparse_categorical_crossentropy(), x, y, fr);
  EXPECT_EQ(resumed_opt.iterations(), 12);
  for (const auto& [name, t] : full_model->state_dict())
    EXPECT_EQ(t.to_vector<float>(), resumed->state_dict().at(name).to_vector<float>()) << name;
  fs::remove_all(dir);
}

TEST(Fit, CheckpointOfAnotherModelIsRejected) {
  auto a = nn::Sequential({nn::Dense(4), nn::Dense(2)});
  a->build_for({1, 3});
  auto b = nn::Sequential({nn::Dense(5), nn::Dense(2)});
  b->build_for({1, 3});
  const io::Checkpoint c = train::capture_training_state(*a, nullptr, 0);
  try {
    train::restore_training_state(c, *b, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape mismatch for 'dense/"), std::string::npos) << e.what();
  }
}

TEST(Fit, NanHuntNamesTheLayerAndTheOp) {
  // A layer that takes the log of its input: negative inputs give NaN inside it, weights stay finite.
  class LogLayer : public nn::Module {
   public:
    LogLayer() : Module("LogLayer") {}
    Tensor forward(const Tensor& x) override { return log(x); }
  };
  auto model = nn::Sequential(
      {nn::Dense(nn::DenseOptions(2).kernel_initializer(nn::Initializer::constant(1.0f)).name("dense")),
       std::make_shared<LogLayer>()});
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  Tensor x = full({4, 2}, -1.0);
  Tensor y = zeros({4, 2});
  try {
    train::fit(*model, opt, train::losses::mean_squared_error(), x, y, options(1, 4));
    FAIL() << "expected divergence";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("training diverged at epoch 1, batch 1: the loss is NaN (layer 'log_layer' (LogLayer): "
                       "anomaly: op 'log' produced NaN"),
              std::string::npos)
        << msg;
  }
}

TEST(Fit, CheckpointsCarryMetadataAndExtraTensors) {
  const fs::path dir = temp_dir("extra");
  manual_seed(14);
  auto [x, y] = blobs(40, 15);
  auto model = small_model();
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  auto ema = std::make_shared<optim::ExponentialMovingAverage>(model->named_trainable_parameters(), 0.9);
  io::TensorMap extra;
  for (const auto& [name, t] : ema->state_dict()) extra["ema/" + name] = t;
  train::FitOptions fo = options(2, 10);
  fo.callbacks.push_back(train::callbacks::moving_average(ema));
  fo.callbacks.push_back(train::callbacks::model_checkpoint(dir.string(), 1, 0, 5, {{"model", "blobs"}}, extra));
  train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  const io::Checkpoint c = io::load_checkpoint(*io::latest_checkpoint(dir.string()));
  EXPECT_EQ(c.metadata.at("model"), "blobs");
  EXPECT_EQ(c.epoch, 2);
  EXPECT_EQ(c.step, 8);
  // The saved shadows are the EMA's values at save time, not the initial ones.
  const std::string key = "ema/dense/kernel/ExponentialMovingAverage";
  ASSERT_TRUE(c.tensors.contains(key));
  EXPECT_EQ(c.tensors.at(key).to_vector<float>(), ema->shadow("dense/kernel").to_vector<float>());
  EXPECT_NE(c.tensors.at(key).to_vector<float>(), c.tensors.at("model/dense/kernel").to_vector<float>());
  fs::remove_all(dir);
}

TEST(Predict, BatchesEqualOneForwardAndRestoreTheTrainingFlag) {
  manual_seed(3);
  const auto data = blobs(23, 6);  // 23 rows: batches of 5 leave a last batch of 3
  const Tensor x = data.first, y = data.second;  // not a structured binding: clang 14's lambdas cannot capture one
  auto model = small_model();
  model->build_for({1, 2});
  model->train();
  const Tensor p = train::predict(*model, x, 5);
  EXPECT_TRUE(model->is_training());
  model->eval();
  Tensor whole;
  {
    NoGradGuard no_grad;
    whole = (*model)(x);
  }
  ASSERT_EQ(p.shape(), (Shape{23, 2}));
  EXPECT_LT(max(abs(p - whole)).item(), 1e-6f);  // dropout was off in every batch
  EXPECT_FALSE(p.requires_grad());

  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  train::for_each_batch(x, 10, [](const Tensor& b) { return b * 2.0f; },
                        [&](const Tensor& out, std::int64_t lo, std::int64_t hi) {
                          ranges.emplace_back(lo, hi);
                          EXPECT_EQ(out.dim(0), hi - lo);
                          EXPECT_FLOAT_EQ(out.data<float>()[0], 2.0f * x.data<float>()[2 * lo]);
                        });
  EXPECT_EQ(ranges, (std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 10}, {10, 20}, {20, 23}}));
  EXPECT_THROW(train::for_each_batch(x, 0, [](const Tensor& b) { return b; }, [](const Tensor&, std::int64_t, std::int64_t) {}),
               Error);
}

TEST(Fit, ShufflesEveryEpochWithTheDataPipelinesOrder) {
  // The trainer's batches come from data::Dataset (from_tensors -> shuffle(seed of (seed, epoch)) ->
  // batch): each epoch sees every row once, in a new order, and the same seed gives the same orders.
  const std::int64_t n = 12;
  Tensor x = Tensor::empty({n, 1});
  Tensor y = Tensor::empty({n}, DType::Int64);
  for (std::int64_t i = 0; i < n; ++i) {
    x.data<float>()[i] = static_cast<float>(i);
    y.data<std::int64_t>()[i] = i % 2;
  }
  auto orders = [&](std::uint64_t seed) {
    auto model = nn::Sequential({nn::Dense(2)});
    model->build_for({1, 1});
    optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.0});
    std::vector<std::vector<float>> seen(2);
    train::FitOptions fo = options(2, 4, seed);
    auto batches = std::make_shared<int>(0);  // 3 batches of 4 per epoch
    fo.augment = [&seen, batches](const Tensor& xb, std::uint64_t) {
      for (float v : xb.to_vector<float>()) seen[static_cast<std::size_t>((*batches) / 3)].push_back(v);
      ++*batches;
      return xb;
    };
    train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
    return seen;
  };
  const auto a = orders(7), b = orders(7), c = orders(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a[0], a[1]);
  for (const auto& epoch : a) {
    std::set<float> rows(epoch.begin(), epoch.end());
    EXPECT_EQ(rows.size(), static_cast<std::size_t>(n));
  }
}
