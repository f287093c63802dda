// The zoo's colour-image pieces: resnet-small's structure and residual wiring, what a trained model's
// metadata says about its input (predict / serve / export / report read images through it), and
// --augment 0 switching off a recipe's own augmentation.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "synapse/synapse.h"
#include "tmp_dir.h"

using namespace synapse;
namespace fs = std::filesystem;

namespace {

void expect_equal(const Tensor& a, const Tensor& b, float tol = 0.0f) {
  ASSERT_EQ(to_string(a.shape()), to_string(b.shape()));
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  for (std::size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], tol) << "element " << i;
}

// Draws every parameter and moving statistic, so BN is not the identity and every path counts.
void randomise(nn::Module& m, Generator& gen) {
  for (auto& [name, p] : m.named_parameters()) {
    Tensor v = random_uniform(p.shape(), -0.3f, 0.3f, &gen);
    std::copy_n(v.data<float>(), v.numel(), p.data<float>());
  }
  for (auto& [name, b] : m.named_buffers()) {
    Tensor v = random_uniform(b.shape(), 0.5f, 1.5f, &gen);
    std::copy_n(v.data<float>(), v.numel(), b.data<float>());
  }
}

}  // namespace

TEST(ResnetSmall, IsResNet20WithProjectionShortcuts) {
  manual_seed(3);
  nn::ModulePtr m = zoo::recipe("resnet-small").build();
  m->build_for({1, 32, 32, 3});
  // He et al.'s ResNet-20 has 0.27M parameters: 272,474 trainable here (option B shortcuts: 1x1 convs
  // 16->32 and 32->64 with BN), plus 1,568 BN moving statistics.
  EXPECT_EQ(m->count_parameters(true), 272474);
  EXPECT_EQ(m->count_parameters(), 272474 + 1568);
  const auto state = m->state_dict();
  EXPECT_EQ(to_string(state.at("stage2_block1/shortcut/kernel").shape()), "[1,1,16,32]");
  EXPECT_EQ(to_string(state.at("stage3_block1/shortcut/kernel").shape()), "[1,1,32,64]");
  EXPECT_EQ(state.count("stage1_block1/shortcut/kernel"), 0u);  // identity shortcuts where the shape stays
  EXPECT_EQ(state.count("stage2_block2/shortcut/kernel"), 0u);
  EXPECT_EQ(to_string(state.at("logits/kernel").shape()), "[64,10]");
  EXPECT_EQ(to_string(m->child("stage3_block3")->output_shape()), "[-1,8,8,64]");
  // Any image size and channel count, any number of classes (image folders).
  nn::ModulePtr grey = zoo::resnet_small(3, 1);
  NoGradGuard ng;
  grey->eval();
  EXPECT_EQ(to_string((*grey)(zeros({2, 20, 12, 1})).shape()), "[2,3]");
}

TEST(ResnetSmall, BlocksAddTheirShortcutBeforeTheLastReLU) {
  Generator gen(5);
  nn::ModulePtr m = zoo::resnet_small(10, 1);
  m->set_generator(&gen);
  m->build_for({1, 8, 8, 3});
  randomise(*m, gen);
  NoGradGuard ng;
  for (bool training : {false, true}) {
    m->train(training);
    for (const char* name : {"stage1_block1", "stage2_block1"}) {  // identity, then projection shortcut
      SCOPED_TRACE(std::string(name) + (training ? " training" : " inference"));
      nn::Module& block = *m->child(name);
      const bool projects = std::string(name) == "stage2_block1";
      const Tensor x = random_uniform({2, 8, 8, 16}, -1.0f, 1.0f, &gen);
      // Each sub-layer applied by hand (BN's batch statistics make training mode a separate case).
      const auto layer = [&](const char* l, const Tensor& t) { return (*block.child(l))(t); };
      const Tensor h = relu(layer("bn1", layer("conv1", x)));
      const Tensor shortcut = projects ? layer("shortcut_bn", layer("shortcut", x)) : x;
      const Tensor expected = relu(add(layer("bn2", layer("conv2", h)), shortcut));
      expect_equal(block(x), expected, 1e-6f);
      EXPECT_EQ(to_string(block(x).shape()), projects ? "[2,4,4,32]" : "[2,8,8,16]");
    }
  }
}

TEST(ModelInput, ReadsShapeClassesAndStandardisationFromTheMetadata) {
  io::Checkpoint mnist;
  mnist.metadata = {{"model", "cnn"}};
  zoo::ModelInput in = zoo::model_input(mnist);
  EXPECT_EQ(in.data, "mnist");
  EXPECT_EQ(to_string(in.shape), "[28,28,1]");
  EXPECT_FALSE(in.standardize);
  EXPECT_EQ(in.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));

  io::Checkpoint cifar;
  cifar.metadata = {{"model", "cifar-cnn"}, {"data", "cifar10"}, {"input_shape", "32x32x3"}, {"classes", "10"}};
  in = zoo::model_input(cifar);
  EXPECT_EQ(to_string(in.shape), "[32,32,3]");
  EXPECT_TRUE(in.standardize);
  EXPECT_EQ(in.class_names.front(), "airplane");
  EXPECT_EQ(in.class_names.back(), "truck");

  io::Checkpoint folder;
  folder.metadata = {{"model", "small-cnn"},       {"data", "image-folder"}, {"input_shape", "6x5x1"},
                     {"classes", "2"},             {"class_names", "cat,dog"}};
  in = zoo::model_input(folder);
  EXPECT_EQ(to_string(in.shape), "[6,5,1]");
  EXPECT_FALSE(in.standardize);
  EXPECT_EQ(in.class_names, (std::vector<std::string>{"cat", "dog"}));
  // An RGB file of another size: converted to grey and resized as the image-folder reader does.
  Tensor rgb = Tensor::empty({4, 3, 3}, DType::UInt8);
  for (std::int64_t i = 0; i < rgb.numel(); ++i) rgb.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 7 % 256);
  const Tensor seen = zoo::image_for_model(in, rgb, "x.png");
  expect_equal(seen, data::to_float_image(rgb, 6, 5, 1, "x.png"));
  // model_ready standardises only for recipes that train on standardised images.
  const Tensor batch = random_uniform({2, 6, 5, 1});
  expect_equal(zoo::model_ready(in, batch), batch);
  expect_equal(zoo::model_ready(zoo::model_input(cifar), batch), data::per_image_standardization(batch));

  folder.metadata["input_shape"] = "6x5";
  try {
    zoo::model_input(folder);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input_shape '6x5' is not HxWxC"), std::string::npos) << e.what();
  }
}

TEST(ColourAugment, AugmentZeroTrainsOnTheImagesAsLoaded) {
  // Two training batches of 8 records and a test batch of 4, in CIFAR-10's binary format.
  synapse::testing::TmpDir d;
  Generator gen(11);
  const auto batch_file = [&](const std::string& name, int n) {
    std::vector<unsigned char> b;
    for (int i = 0; i < n; ++i) {
      b.push_back(static_cast<unsigned char>(i % 10));
      const Tensor px = random_uniform({3072}, 0.0f, 255.0f, &gen);
      for (float v : px.to_vector<float>()) b.push_back(static_cast<unsigned char>(v));
    }
    synapse::testing::write_bytes((d.path() / name).string(), b);
  };
  for (int k = 1; k <= 5; ++k) batch_file("data_batch_" + std::to_string(k) + ".bin", 8);
  batch_file("test_batch.bin", 4);
  const data::Cifar raw = data::load_cifar10(d.path().string());
  const Tensor raw_train = slice(raw.train.images, {0, 0, 0, 0}, {36, -1, -1, -1});  // the last 4 validate

  for (const char* name : {"cifar-cnn", "resnet-small"}) {
    SCOPED_TRACE(name);
    const zoo::Recipe& r = zoo::recipe(name);
    zoo::TrainRun run;
    run.data_dir = d.path().string();
    // Default: the recipe's distortions run on the batches, so the loaded images are the raw ones.
    ASSERT_TRUE(zoo::training_augmentation(r, run));
    zoo::RecipeData data = zoo::load_recipe_data(r, run);
    expect_equal(data.split.train_x, raw_train);
    const Tensor distorted = zoo::training_augmentation(r, run)(raw_train, 1);
    EXPECT_GT(max(abs(sub(distorted, data::per_image_standardization(raw_train)))).item<float>(), 0.1f);
    // --augment 0: no transform at all, and the training images are the raw ones standardised per image
    // (as validation, test and predict see them) -- the batches equal the data.
    run.augment_shift = 0;
    EXPECT_FALSE(zoo::training_augmentation(r, run));
    data = zoo::load_recipe_data(r, run);
    expect_equal(data.split.train_x, data::per_image_standardization(raw_train));
    expect_equal(data.split.test_x, data::per_image_standardization(raw.test.images));
    // --augment 2: the shifts, then the recipe's own.
    run.augment_shift = 2;
    const auto both = zoo::training_augmentation(r, run);
    ASSERT_TRUE(both);
    expect_equal(both(raw_train, 9), data::compose({[](const Tensor& x, std::uint64_t s) { return data::random_translate(x, 2, s); },
                                                    r.augment})(raw_train, 9));
  }
  // A recipe without its own augmentation: --augment 0 and the default both give none (lenet5 shifts).
  zoo::TrainRun run;
  EXPECT_FALSE(zoo::training_augmentation(zoo::recipe("small-cnn"), run));
  EXPECT_TRUE(zoo::training_augmentation(zoo::recipe("lenet5"), run));
  run.augment_shift = 0;
  EXPECT_FALSE(zoo::training_augmentation(zoo::recipe("lenet5"), run));
}
