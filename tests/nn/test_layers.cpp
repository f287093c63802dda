// Modules and layers: names, state dictionaries, summary, initializers, each layer's values, and
// finite-difference gradient checks of models with respect to their parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;

namespace {

void expect_near(const Tensor& t, const std::vector<float>& want, float tol = 1e-5f) {
  const auto got = t.to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}


std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

// The classic MNIST CNN (TensorFlow's "Deep MNIST" tutorial).
std::shared_ptr<nn::layers::Sequential> classic_cnn() {
  using nn::Activation;
  return nn::Sequential({
      nn::Conv2D(nn::Conv2DOptions(32, {5, 5}).padding(Padding::Same).activation(Activation::ReLU).name("conv1")),
      nn::MaxPool2D(),
      nn::Conv2D(nn::Conv2DOptions(64, {5, 5}).padding(Padding::Same).activation(Activation::ReLU)),
      nn::MaxPool2D(2),
      nn::Flatten(),
      nn::Dense(nn::DenseOptions(1024).activation(Activation::ReLU)),
      nn::Dropout(0.5),
      nn::Dense(10),
  });
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / static_cast<double>(v.size());
}

double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

// A user-defined model, the Keras subclass way (as in the comment in nn.h).
class TwoLayer : public nn::Module {
 public:
  TwoLayer() : Module("TwoLayer") {
    hidden_ = add_module(nn::Dense(nn::DenseOptions(5).activation(nn::Activation::Tanh).name("hidden")));
    out_ = add_module(nn::Dense(2));
  }
  Tensor forward(const Tensor& x) override { return (*out_)((*hidden_)(x)); }
  const nn::layers::Dense& hidden() const { return *hidden_; }

 private:
  std::shared_ptr<nn::layers::Dense> hidden_, out_;
};

}  // namespace

// ---- names ----

TEST(Module, DefaultNamesAreKerasSnakeCase) {
  EXPECT_EQ(nn::snake_case("Conv2D"), "conv2d");
  EXPECT_EQ(nn::snake_case("BatchNormalization"), "batch_normalization");
  EXPECT_EQ(nn::snake_case("MaxPooling2D"), "max_pooling2d");
  EXPECT_EQ(nn::snake_case("ReLU"), "re_lu");  // Keras' own (odd) name for ReLU layers
  EXPECT_EQ(nn::snake_case("Dense"), "dense");
  EXPECT_EQ(nn::Conv2D(8, {3, 3})->name(), "conv2d");
  EXPECT_EQ(nn::BatchNormalization()->name(), "batch_normalization");
  EXPECT_EQ(nn::AvgPool2D()->name(), "average_pooling2d");
  EXPECT_EQ(nn::Sequential()->name(), "sequential");
  EXPECT_EQ(TwoLayer().name(), "two_layer");
  EXPECT_EQ(nn::Dropout(0.1, "drop")->name(), "drop");
}

TEST(Module, SequentialMakesDefaultNamesUnique) {
  auto model = nn::Sequential({nn::Dense(4), nn::ReLU(), nn::Dense(4), nn::ReLU(), nn::Dense(2)});
  std::vector<std::string> names;
  for (const auto& c : model->children()) names.push_back(c->name());
  EXPECT_EQ(names, (std::vector<std::string>{"dense", "re_lu", "dense_1", "re_lu_1", "dense_2"}));
  model->add(nn::Dense(1));
  EXPECT_EQ(model->children().back()->name(), "dense_3");
  EXPECT_EQ(model->child("dense_1")->type(), "Dense");
  EXPECT_EQ(error_of([&] { model->child("conv"); }),
            "Sequential 'sequential': no layer named 'conv' (layers: 'dense', 're_lu', 'dense_1', 're_lu_1', "
            "'dense_2', 'dense_3')");
  // An explicit name that is taken is an error, not silently renamed.
  EXPECT_EQ(error_of([&] { model->add(nn::Dense(nn::DenseOptions(3).name("dense"))); }),
            "Sequential 'sequential': duplicate layer name 'dense' (names must be unique)");
  EXPECT_THROW(nn::Dense(4)->set_name("a/b"), Error);
}

TEST(Module, ParameterNamesAndShapesInsideSequential) {
  auto model = classic_cnn();
  EXPECT_TRUE(model->named_parameters().empty());  // built lazily
  model->build_for({1, 28, 28, 1});
  const auto params = model->named_parameters();
  EXPECT_EQ(names_of(params), (std::vector<std::string>{"conv1/kernel", "conv1/bias", "conv2d/kernel", "conv2d/bias",
                                                         "dense/kernel", "dense/bias", "dense_1/kernel",
                                                         "dense_1/bias"}));
  const std::vector<Shape> shapes{{5, 5, 1, 32}, {32}, {5, 5, 32, 64}, {64}, {3136, 1024}, {1024}, {1024, 10}, {10}};
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].second.shape(), shapes[i]) << params[i].first;
    EXPECT_EQ(params[i].second.dtype(), DType::Float32);
    EXPECT_TRUE(params[i].second.requires_grad()) << params[i].first;
    EXPECT_TRUE(params[i].second.is_leaf());
  }
  EXPECT_EQ(names_of(model->named_trainable_parameters()), names_of(params));
  EXPECT_TRUE(model->named_buffers().empty());
  // Biases start at zero (Keras' default), kernels do not.
  EXPECT_EQ(model->state_dict().at("conv1/bias").to_vector<float>(), std::vector<float>(32, 0.0f));
  EXPECT_NE(model->state_dict().at("conv1/kernel").to_vector<float>(), std::vector<float>(800, 0.0f));
}

TEST(Module, ClassicCnnParameterCount) {
  auto model = classic_cnn();
  model->build_for({2, 28, 28, 1});
  // 5*5*1*32+32, 5*5*32*64+64, 7*7*64*1024+1024, 1024*10+10
  EXPECT_EQ(model->count_parameters(), 832 + 51264 + 3212288 + 10250);
  EXPECT_EQ(model->count_parameters(), 3274634);
  EXPECT_EQ(model->count_parameters(/*trainable_only=*/true), 3274634);
  EXPECT_EQ(model->child("conv1")->count_parameters(), 832);
  EXPECT_EQ(model->child("dense")->output_shape(), (Shape{-1, 1024}));
  EXPECT_EQ(model->output_shape(), (Shape{-1, 10}));
  const Tensor y = (*model)(zeros({3, 28, 28, 1}));
  EXPECT_EQ(y.shape(), (Shape{3, 10}));
}

TEST(Module, SummaryText) {
  auto model = classic_cnn();
  model->build_for({1, 28, 28, 1});
  std::ostringstream os;
  model->summary(os);
  // Keras' columns (29 / 26 / 10), the name column widened by the longest row.
  const std::string want =
      "Model: \"sequential\"\n"
      "Layer (type)                   Output Shape              Param #\n"
      "===================================================================\n"
      "conv1 (Conv2D)                 (None, 28, 28, 32)        832\n"
      "max_pooling2d (MaxPooling2D)   (None, 14, 14, 32)        0\n"
      "conv2d (Conv2D)                (None, 14, 14, 64)        51,264\n"
      "max_pooling2d_1 (MaxPooling2D) (None, 7, 7, 64)          0\n"
      "flatten (Flatten)              (None, 3136)              0\n"
      "dense (Dense)                  (None, 1024)              3,212,288\n"
      "dropout (Dropout)              (None, 1024)              0\n"
      "dense_1 (Dense)                (None, 10)                10,250\n"
      "===================================================================\n"
      "Total params: 3,274,634\n"
      "Trainable params: 3,274,634\n"
      "Non-trainable params: 0\n";
  EXPECT_EQ(os.str(), want);
}

TEST(Module, SummaryCountsMovingStatisticsAsNonTrainable) {
  auto model = nn::Sequential({nn::Dense(nn::DenseOptions(4).name("fc")), nn::BatchNormalization()}, "small");
  std::ostringstream before;
  model->summary(before);  // not built yet: unknown shapes, no parameters
  EXPECT_NE(before.str().find("\nfc (Dense)                               ?                         0\n"),
            std::string::npos)
      << before.str();
  model->build_for({2, 3});
  std::ostringstream os;
  model->summary(os);
  // The long BatchNormalization row widens the name column; moving statistics count as non-trainable,
  // as in Keras.
  const std::string want =
      "Model: \"small\"\n"
      "Layer (type)                             Output Shape              Param #\n"
      "=============================================================================\n"
      "fc (Dense)                               (None, 4)                 16\n"
      "batch_normalization (BatchNormalization) (None, 4)                 16\n"
      "=============================================================================\n"
      "Total params: 32\n"
      "Trainable params: 24\n"
      "Non-trainable params: 8\n";
  EXPECT_EQ(os.str(), want);
}

// ---- user-defined models ----

TEST(Module, UserDefinedModel) {
  manual_seed(3);
  TwoLayer model;
  model.build_for({1, 3});
  EXPECT_EQ(names_of(model.named_parameters()),
            (std::vector<std::string>{"hidden/kernel", "hidden/bias", "dense/kernel", "dense/bias"}));
  EXPECT_EQ(model.hidden().kernel().shape(), (Shape{3, 5}));
  EXPECT_EQ(model.count_parameters(), 3 * 5 + 5 + 5 * 2 + 2);
  const Tensor x = tensor({{0.5f, -1.0f, 2.0f}, {1.0f, 0.0f, -0.5f}});
  EXPECT_EQ(model(x).shape(), (Shape{2, 2}));
  std::ostringstream os;
  model.summary(os);
  EXPECT_NE(os.str().find("Model: \"two_layer\"\n"), std::string::npos);
  EXPECT_NE(os.str().find("hidden (Dense)               (None, 5)                 20\n"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("dense (Dense)                (None, 2)                 12\n"), std::string::npos) << os.str();
  // Its loss is differentiable with respect to every parameter.
  const Tensor target = tensor({{1.0f, 0.0f}, {0.0f, 1.0f}});
  EXPECT_GRAD_MATCHES([&] { return mean_squared_error(model(x), target); }, model.trainable_parameters());
}

TEST(Module, TrainEvalIsRecursiveAndBuildForKeepsModes) {
  auto inner = nn::Sequential({nn::Dropout(0.5)});
  auto model = nn::Sequential({nn::Dense(3), inner});
  EXPECT_TRUE(inner->children()[0]->is_training());
  model->eval();
  EXPECT_FALSE(inner->children()[0]->is_training());
  model->train();
  EXPECT_TRUE(inner->is_training());
  inner->eval();  // a mixed state survives build_for
  model->build_for({2, 4});
  EXPECT_TRUE(model->is_training());
  EXPECT_FALSE(inner->children()[0]->is_training());
  EXPECT_TRUE(model->built());
}

// ---- state dictionaries ----

TEST(Module, StateDictRoundTripCopiesIntoExistingTensors) {
  auto make = [](std::uint64_t seed) {
    manual_seed(seed);
    auto m = nn::Sequential({nn::Dense(4), nn::BatchNormalization(), nn::Tanh(), nn::Dense(2)});
    m->build_for({1, 3});
    return m;
  };
  auto a = make(1), b = make(2);
  const Tensor x = tensor({{0.5f, -1.0f, 2.0f}, {1.0f, 0.0f, -0.5f}, {0.1f, 0.2f, 0.3f}});
  (*a)(x);  // one training step moves a's moving statistics
  a->eval();
  b->eval();
  const auto names = std::vector<std::string>{"batch_normalization/beta", "batch_normalization/gamma",
                                              "batch_normalization/moving_mean",
                                              "batch_normalization/moving_variance", "dense/bias", "dense/kernel",
                                              "dense_1/bias", "dense_1/kernel"};
  std::vector<std::string> keys;
  for (const auto& [n, t] : a->state_dict()) keys.push_back(n);
  EXPECT_EQ(keys, names);

  const Tensor b_kernel = b->state_dict().at("dense/kernel");  // a handle, as an optimizer holds
  const void* storage = b_kernel.raw_data();
  EXPECT_GT(max_abs_diff((*a)(x), (*b)(x)), 1e-3);
  b->load_state_dict(a->state_dict());
  EXPECT_EQ(max_abs_diff((*a)(x), (*b)(x)), 0.0);
  EXPECT_EQ(b_kernel.raw_data(), storage);
  EXPECT_EQ(b_kernel.to_vector<float>(), a->state_dict().at("dense/kernel").to_vector<float>());
  // The values were copied: changing a afterwards leaves b alone.
  a->state_dict().at("dense/bias").data<float>()[0] = 42.0f;
  EXPECT_EQ(b->state_dict().at("dense/bias").to_vector<float>()[0], 0.0f);
}

TEST(Module, LoadStateDictErrors) {
  auto model = nn::Sequential({nn::Dense(4), nn::Dense(2)});
  model->build_for({1, 3});
  auto state = model->state_dict();
  const Tensor kernel_before = state.at("dense/kernel").clone();

  auto missing = state;
  missing.erase("dense_1/bias");
  EXPECT_EQ(error_of([&] { model->load_state_dict(missing); }),
            "load_state_dict: Sequential 'sequential': missing 'dense_1/bias'");
  model->load_state_dict(missing, /*strict=*/false);  // a subset is fine when not strict

  auto extra = state;
  extra["dense_2/kernel"] = zeros({2, 2});
  EXPECT_EQ(error_of([&] { model->load_state_dict(extra); }),
            "load_state_dict: Sequential 'sequential': unexpected 'dense_2/kernel'");

  auto wrong = state;
  wrong["dense/kernel"] = zeros({4, 3});
  wrong["dense/bias"] = full({4}, 7.0);
  EXPECT_EQ(error_of([&] { model->load_state_dict(wrong); }),
            "load_state_dict: shape mismatch for 'dense/kernel': expected [3,4], found [4,3]");
  // Nothing was copied by the failed load (the bias checked fine but comes later).
  EXPECT_EQ(model->state_dict().at("dense/bias").to_vector<float>(), std::vector<float>(4, 0.0f));
  EXPECT_EQ(model->state_dict().at("dense/kernel").to_vector<float>(), kernel_before.to_vector<float>());

  auto wrong_dtype = state;
  wrong_dtype["dense_1/bias"] = zeros({2}, DType::Int32);
  EXPECT_EQ(error_of([&] { model->load_state_dict(wrong_dtype); }),
            "load_state_dict: dtype mismatch for 'dense_1/bias': expected float32, found int32");

  auto unbuilt = nn::Sequential({nn::Dense(4)});
  EXPECT_EQ(error_of([&] { unbuilt->load_state_dict(state); }),
            "load_state_dict: Sequential 'sequential': unexpected 'dense/bias', 'dense/kernel', 'dense_1/bias', "
            "'dense_1/kernel' (the model has no state yet: build it first, e.g. with build_for)");
}

// ---- initializers ----

TEST(Initializer, FansFollowKeras) {
  EXPECT_EQ(nn::compute_fans({100, 200}), (std::pair<double, double>{100, 200}));
  EXPECT_EQ(nn::compute_fans({5, 5, 1, 32}), (std::pair<double, double>{25, 800}));
  EXPECT_EQ(nn::compute_fans({7}), (std::pair<double, double>{7, 7}));
  EXPECT_EQ(nn::compute_fans({}), (std::pair<double, double>{1, 1}));
}

TEST(Initializer, GlorotUniformLimits) {
  Generator gen(5);
  const Tensor w = nn::Initializer::glorot_uniform()({100, 200}, gen);
  const auto v = w.to_vector<float>();
  const float limit = std::sqrt(6.0f / 300.0f);  // 0.1414
  float lo = 1, hi = -1;
  for (float x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_GE(lo, -limit);
  EXPECT_LT(hi, limit);
  EXPECT_LT(lo, -0.99f * limit);  // 20000 draws reach the ends
  EXPECT_GT(hi, 0.99f * limit);
  EXPECT_NEAR(mean_of(v), 0.0, 0.003);
  EXPECT_NEAR(std_of(v), limit / std::sqrt(3.0), 0.002);  // 0.0816
}

TEST(Initializer, HeNormalIsTruncatedWithKerasStddev) {
  Generator gen(6);
  // conv kernel: fan_in = 3*3*64 = 576, target stddev sqrt(2/576) = 0.05893
  const Tensor w = nn::Initializer::he_normal()({3, 3, 64, 128}, gen);
  const auto v = w.to_vector<float>();
  const double target = std::sqrt(2.0 / 576.0);
  EXPECT_NEAR(std_of(v), target, 0.01 * target);
  EXPECT_NEAR(mean_of(v), 0.0, 0.001);
  // Drawn from N(0, s) truncated at 2s, s = target / 0.8796: nothing beyond 0.134, and values near it.
  const double bound = 2.0 * target / 0.87962566103423978;
  double largest = 0;
  for (float x : v) largest = std::max(largest, std::fabs(static_cast<double>(x)));
  EXPECT_LE(largest, bound + 1e-6);
  EXPECT_GT(largest, 0.99 * bound);
}

TEST(Initializer, OtherKinds) {
  Generator gen(7);
  const auto gn = nn::Initializer::glorot_normal()({300, 100}, gen).to_vector<float>();
  EXPECT_NEAR(std_of(gn), std::sqrt(2.0 / 400.0), 0.0015);  // 0.0707
  const auto hu = nn::Initializer::he_uniform()({50, 400}, gen).to_vector<float>();
  EXPECT_NEAR(std_of(hu), std::sqrt(6.0 / 50.0) / std::sqrt(3.0), 0.003);  // limit sqrt(6/fan_in)
  for (float x : hu) ASSERT_LT(std::fabs(x), std::sqrt(6.0f / 50.0f));
  const auto u = nn::Initializer::uniform(2.0f, 3.0f)({1000}, gen).to_vector<float>();
  for (float x : u) ASSERT_TRUE(x >= 2.0f && x < 3.0f);
  const auto n = nn::Initializer::normal(1.0f, 0.5f)({20000}, gen).to_vector<float>();
  EXPECT_NEAR(mean_of(n), 1.0, 0.02);
  EXPECT_NEAR(std_of(n), 0.5, 0.01);
  const auto tn = nn::Initializer::truncated_normal(0.0f, 0.1f)({5000}, gen).to_vector<float>();
  for (float x : tn) ASSERT_LE(std::fabs(x), 0.2f + 1e-6f);
  EXPECT_EQ(nn::Initializer::constant(0.25f)({3}, gen).to_vector<float>(), (std::vector<float>{0.25f, 0.25f, 0.25f}));
  EXPECT_EQ(nn::Initializer::zeros()({2}, gen).to_vector<float>(), (std::vector<float>{0, 0}));
}

TEST(Initializer, SeedReproducibility) {
  Generator g1(42), g2(42), g3(43);
  const auto a = nn::Initializer::glorot_uniform()({4, 5}, g1).to_vector<float>();
  EXPECT_EQ(a, nn::Initializer::glorot_uniform()({4, 5}, g2).to_vector<float>());
  EXPECT_NE(a, nn::Initializer::glorot_uniform()({4, 5}, g3).to_vector<float>());
  // Whole models: the same seed gives the same weights, through the default generator or a model's own.
  auto model_kernel = [](std::uint64_t seed, Generator* gen) {
    manual_seed(seed);
    auto m = nn::Sequential({nn::Dense(3), nn::Dense(2)});
    if (gen) m->set_generator(gen);
    m->build_for({1, 4});
    return m->state_dict().at("dense_1/kernel").to_vector<float>();
  };
  EXPECT_EQ(model_kernel(11, nullptr), model_kernel(11, nullptr));
  EXPECT_NE(model_kernel(11, nullptr), model_kernel(12, nullptr));
  Generator own_a(99), own_b(99);
  EXPECT_EQ(model_kernel(1, &own_a), model_kernel(2, &own_b));  // the default seed no longer matters
}

// ---- layers ----

TEST(Layers, DenseForwardByHand) {
  auto dense = nn::Dense(nn::DenseOptions(2).activation(nn::Activation::ReLU));
  dense->build_for({1, 3});
  dense->load_state_dict({{"kernel", tensor({{1.0f, -1.0f}, {2.0f, 0.0f}, {0.5f, 1.0f}})},
                          {"bias", tensor({0.5f, -1.0f})}});
  const Tensor y = (*dense)(tensor({{1.0f, 2.0f, 3.0f}, {-4.0f, 5.0f, -6.0f}}));
  // [1, 2, 3]:   [1 + 4 + 1.5 + 0.5, -1 + 0 + 3 - 1] = [7, 1]
  // [-4, 5, -6]: [-4 + 10 - 3 + 0.5, 4 + 0 - 6 - 1] = [3.5, -3] -> relu [3.5, 0]
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  expect_near(y, {7.0f, 1.0f, 3.5f, 0.0f});
  // Rank-3 inputs use the last axis, as in Keras.
  EXPECT_EQ((*dense)(zeros({4, 5, 3})).shape(), (Shape{4, 5, 2}));
  EXPECT_EQ(error_of([&] { (*dense)(zeros({2, 4})); }), "Dense 'dense': expected inputs [batch, ..., 3], got shape [2,4]");

  auto no_bias = nn::Dense(nn::DenseOptions(3).use_bias(false).kernel_initializer(nn::Initializer::ones()));
  expect_near((*no_bias)(tensor({{1.0f, 2.0f}})), {3.0f, 3.0f, 3.0f});
  EXPECT_EQ(names_of(no_bias->named_parameters()), (std::vector<std::string>{"kernel"}));
}

TEST(Layers, Conv2DMatchesTheOpWithBiasAndActivation) {
  manual_seed(21);
  auto conv = nn::Conv2D(nn::Conv2DOptions(4, 3).strides({2, 2}).padding(Padding::Same).activation(nn::Activation::ReLU)
                             .bias_initializer(nn::Initializer::constant(0.1f)));
  const Tensor x = random_normal({2, 7, 7, 3});
  const Tensor y = (*conv)(x);
  EXPECT_EQ(conv->kernel().shape(), (Shape{3, 3, 3, 4}));
  EXPECT_EQ(y.shape(), (Shape{2, 4, 4, 4}));
  const Tensor want = relu(conv2d(x, conv->kernel(), {.strides = {2, 2}, .padding = Padding::Same}) + conv->bias());
  EXPECT_LT(max_abs_diff(y, want), 1e-5);
  EXPECT_EQ(error_of([] { nn::Conv2D(nn::Conv2DOptions(4, {3, 3, 3})); }),
            "Conv2D: kernel_size must have 1 or 2 entries (h, w), got 3");
}

TEST(Layers, Pooling) {
  // 4x4 image 0..15, one channel.
  const Tensor x = arange(16).reshape({1, 4, 4, 1});
  auto maxp = nn::MaxPool2D();
  expect_near((*maxp)(x), {5, 7, 13, 15});
  auto avgp = nn::AvgPool2D();
  expect_near((*avgp)(x), {2.5f, 4.5f, 10.5f, 12.5f});
  // Strides default to the pool size; explicit strides and padding pass through.
  EXPECT_EQ((*nn::MaxPool2D(3))(zeros({1, 6, 6, 2})).shape(), (Shape{1, 2, 2, 2}));
  auto overlapping = nn::MaxPool2D(nn::Pool2DOptions(2).strides({1, 1}).padding(Padding::Same));
  EXPECT_EQ((*overlapping)(x).shape(), (Shape{1, 4, 4, 1}));
}

TEST(Layers, FlattenAndActivations) {
  EXPECT_EQ((*nn::Flatten())(zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  const Tensor x = tensor({{-1.0f, 0.0f, 2.0f}});
  expect_near((*nn::ReLU())(x), {0.0f, 0.0f, 2.0f});
  expect_near((*nn::Sigmoid())(x), {0.26894142f, 0.5f, 0.88079708f});
  expect_near((*nn::Tanh())(x), {-0.76159416f, 0.0f, 0.96402758f});
  // softmax([-1, 0, 2]) = e^x / (e^-1 + 1 + e^2)
  expect_near((*nn::Softmax())(x), {0.04201007f, 0.1141952f, 0.84379473f});
  EXPECT_EQ(nn::Softmax()->type(), "Softmax");
}

TEST(Layers, DropoutOnlyInTraining) {
  Generator gen(8);
  auto drop = nn::Dropout(0.25);
  drop->set_generator(&gen);
  const Tensor x = ones({4000});
  const auto y = (*drop)(x).to_vector<float>();
  int zeros_count = 0;
  for (float v : y) {
    ASSERT_TRUE(v == 0.0f || std::fabs(v - 1.0f / 0.75f) < 1e-6f) << v;
    zeros_count += v == 0.0f;
  }
  EXPECT_NEAR(zeros_count / 4000.0, 0.25, 0.03);
  // The same generator state gives the same mask.
  gen.seed(8);
  EXPECT_EQ((*drop)(x).to_vector<float>(), y);
  drop->eval();
  EXPECT_EQ((*drop)(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_THROW(nn::Dropout(1.0f), Error);
}

TEST(Layers, BatchNormalizationTrainingThenInference) {
  auto bn = nn::BatchNormalization();
  // x [4, 2]: channel 0 = {1, 2, 3, 6} (mean 3, biased var 3.5); channel 1 = {0, 0, 4, 4} (mean 2, var 4)
  const Tensor x = tensor({{1.0f, 0.0f}, {2.0f, 0.0f}, {3.0f, 4.0f}, {6.0f, 4.0f}});
  bn->build_for({4, 2});
  EXPECT_EQ(names_of(bn->named_parameters()), (std::vector<std::string>{"gamma", "beta"}));
  EXPECT_EQ(names_of(bn->named_buffers()), (std::vector<std::string>{"moving_mean", "moving_variance"}));
  expect_near(bn->moving_mean(), {0.0f, 0.0f});  // build_for did not touch the statistics
  expect_near(bn->moving_variance(), {1.0f, 1.0f});
  bn->load_state_dict({{"gamma", tensor({2.0f, 0.5f})}, {"beta", tensor({1.0f, -1.0f})}}, /*strict=*/false);

  const Tensor y = (*bn)(x);
  const float s0 = 2.0f / std::sqrt(3.5f + 1e-3f), s1 = 0.5f / std::sqrt(4.0f + 1e-3f);
  expect_near(y, {-2 * s0 + 1, -2 * s1 - 1, -1 * s0 + 1, -2 * s1 - 1, 0 * s0 + 1, 2 * s1 - 1, 3 * s0 + 1, 2 * s1 - 1});
  // moving = 0.99 * moving + 0.01 * batch statistic
  expect_near(bn->moving_mean(), {0.03f, 0.02f});
  expect_near(bn->moving_variance(), {0.99f + 0.035f, 0.99f + 0.04f});
  EXPECT_FALSE(bn->moving_mean().requires_grad());

  bn->eval();
  const Tensor z = (*bn)(x);
  const float e0 = 2.0f / std::sqrt(1.025f + 1e-3f), e1 = 0.5f / std::sqrt(1.03f + 1e-3f);
  expect_near(z, {(1 - 0.03f) * e0 + 1, (0 - 0.02f) * e1 - 1, (2 - 0.03f) * e0 + 1, (0 - 0.02f) * e1 - 1,
                  (3 - 0.03f) * e0 + 1, (4 - 0.02f) * e1 - 1, (6 - 0.03f) * e0 + 1, (4 - 0.02f) * e1 - 1});
  expect_near(bn->moving_mean(), {0.03f, 0.02f});  // inference leaves them alone
}

TEST(Layers, FrozenBatchNormalizationRunsInInferenceModeAsInKeras) {
  // Keras: a BatchNormalization with trainable = False normalises with its moving statistics even in
  // training, and does not update them. Frozen before it is built, so its gamma and beta are created frozen.
  auto bn = nn::BatchNormalization();
  bn->set_trainable(false);
  EXPECT_FALSE(bn->trainable());
  const Tensor x = tensor({{1.0f, 0.0f}, {2.0f, 0.0f}, {3.0f, 4.0f}, {6.0f, 4.0f}});
  bn->build_for({4, 2});
  bn->load_state_dict({{"gamma", tensor({2.0f, 0.5f})},
                       {"beta", tensor({1.0f, -1.0f})},
                       {"moving_mean", tensor({1.0f, 2.0f})},
                       {"moving_variance", tensor({4.0f, 0.25f})}});
  EXPECT_TRUE(bn->is_training());
  EXPECT_TRUE(bn->trainable_parameters().empty());
  const float s0 = 2.0f / std::sqrt(4.0f + 1e-3f), s1 = 0.5f / std::sqrt(0.25f + 1e-3f);
  const std::vector<float> expected{0 * s0 + 1,  -2 * s1 - 1, 1 * s0 + 1, -2 * s1 - 1,
                                    2 * s0 + 1, 2 * s1 - 1,  5 * s0 + 1, 2 * s1 - 1};
  expect_near((*bn)(x), expected);
  expect_near(bn->moving_mean(), {1.0f, 2.0f});  // not updated
  expect_near(bn->moving_variance(), {4.0f, 0.25f});
  // The same in a traced training graph: no update nodes, the moving statistics used.
  graph::Graph g;
  Tensor px = g.placeholder("x", {-1, 2});
  Tensor py = (*bn)(px);
  graph::Session s(g);
  expect_near(s.run(py, {{px, x}}), expected);
  expect_near(bn->moving_mean(), {1.0f, 2.0f});
  // Unfrozen, it is back to batch statistics (mean 3 / 2, biased variance 3.5 / 4) and updates them.
  bn->set_trainable(true);
  EXPECT_EQ(bn->trainable_parameters().size(), 2u);
  const float b0 = 2.0f / std::sqrt(3.5f + 1e-3f);
  EXPECT_NEAR((*bn)(x).to_vector<float>()[0], -2 * b0 + 1, 1e-5f);
  expect_near(bn->moving_mean(), {0.99f * 1.0f + 0.01f * 3.0f, 0.99f * 2.0f + 0.01f * 2.0f});
}

TEST(Layers, BatchNormalizationNHWCNormalisesEachChannel) {
  manual_seed(9);
  auto bn = nn::BatchNormalization(nn::BatchNormalizationOptions().momentum(0.9f).epsilon(1e-5f));
  const Tensor x = random_normal({3, 4, 4, 2}, 5.0f, 2.0f);
  const Tensor y = (*bn)(x);
  EXPECT_EQ(bn->gamma().shape(), (Shape{2}));
  const Tensor m = mean(y, {0, 1, 2});
  const Tensor v = mean(square(y), {0, 1, 2});
  expect_near(m, {0.0f, 0.0f}, 1e-5f);
  expect_near(v, {1.0f, 1.0f}, 1e-3f);
  // Moving mean after one step with momentum 0.9: 0.1 * batch mean.
  expect_near(bn->moving_mean(), (mean(x, {0, 1, 2}) * 0.1f).to_vector<float>(), 1e-5f);
  // Channels first (axis 1) also works.
  auto bn1 = nn::BatchNormalization(nn::BatchNormalizationOptions().axis(1));
  (*bn1)(zeros({2, 3, 5}));
  EXPECT_EQ(bn1->moving_mean().shape(), (Shape{3}));
}

TEST(Layers, EmbeddingLookup) {
  auto emb = nn::Embedding(5, 3);
  emb->build_for({1, 1}, DType::Int64);
  EXPECT_EQ(emb->embeddings().shape(), (Shape{5, 3}));
  for (float v : emb->embeddings().to_vector<float>()) EXPECT_LE(std::fabs(v), 0.05f);  // Keras' uniform default
  emb->load_state_dict({{"embeddings", arange(15).reshape({5, 3})}});
  const Tensor ids = from_vector(std::vector<std::int64_t>{0, 4, 2, 2}, {2, 2});
  const Tensor y = (*emb)(ids);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  expect_near(y, {0, 1, 2, 12, 13, 14, 6, 7, 8, 6, 7, 8});
  EXPECT_EQ(emb->output_shape(), (Shape{-1, 2, 3}));
  EXPECT_EQ(error_of([&] { (*emb)(zeros({2})); }), "Embedding 'embedding': expected int32 or int64 indices, got float32");
  // Rows used twice get both gradients.
  EXPECT_GRAD_MATCHES([&] { return (*emb)(ids); }, {emb->embeddings()});
}

// ---- gradient checks of models with respect to their parameters ----

TEST(LayersGrad, DenseTanhDenseLoss) {
  manual_seed(10);
  auto model = nn::Sequential({nn::Dense(4), nn::Tanh(), nn::Dense(2)});
  const Tensor x = random_normal({3, 5});
  const Tensor target = random_normal({3, 2});
  model->build_for({1, 5});
  EXPECT_GRAD_MATCHES([&] { return mean_squared_error((*model)(x), target); }, model->trainable_parameters());
}

TEST(LayersGrad, SmallCnn) {
  manual_seed(11);
  auto model = nn::Sequential({nn::Conv2D(nn::Conv2DOptions(3, {3, 3}).padding(Padding::Same)), nn::ReLU(),
                               nn::MaxPool2D(), nn::Flatten(), nn::Dense(nn::DenseOptions(2).activation(nn::Activation::Sigmoid))});
  const Tensor x = random_normal({2, 4, 4, 2});
  model->build_for({1, 4, 4, 2});
  EXPECT_GRAD_MATCHES([&] { return (*model)(x); }, model->trainable_parameters());
}

TEST(LayersGrad, BatchNormalizationTraining) {
  manual_seed(12);
  auto bn = nn::BatchNormalization();
  Tensor x = random_normal({4, 2, 2, 3});
  bn->build_for({1, 2, 2, 3});
  bn->load_state_dict({{"gamma", tensor({1.5f, -0.5f, 2.0f})}, {"beta", tensor({0.1f, 0.2f, 0.3f})}}, false);
  ASSERT_TRUE(bn->is_training());
  // Through the batch statistics: the gradient w.r.t. x is not just gamma / sqrt(var + eps).
  EXPECT_GRAD_MATCHES([&] { return (*bn)(x); }, {x, bn->gamma(), bn->beta()});
  bn->eval();
  EXPECT_GRAD_MATCHES([&] { return (*bn)(x); }, {x, bn->gamma(), bn->beta()});
}
