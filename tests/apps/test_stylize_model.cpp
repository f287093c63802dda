// Style transfer on functional models (issue #23): a functional feature network (named layers, any image
// size, BatchNormalization folded, gradients w.r.t. the image through depthwise convolutions checked
// numerically), the MobileNetV2 default layers, loading a TF.js model.json by path, and the choice of the
// default network with and without a (tiny, written here) nsfwjs MobileNetV2 in the data folders.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "gradcheck.h"
#include "synapse/synapse.h"
#include "synapse/stylize.h"
#include "tmp_dir.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::grad_matches;
using synapse::testing::max_abs_diff;
using synapse::testing::TmpDir;
namespace fs = std::filesystem;

namespace {

// image -> conv -> bn -> tanh -> {identity, depthwise} -> add -> pad -> conv (stride 2) -> global average -> dense.
// Smooth activations (tanh), so central differences are exact enough everywhere.
std::shared_ptr<nn::layers::Model> small_cnn() {
  Generator gen(31);
  auto in = nn::Input({8, 8, 3}, "image");
  auto c = (*nn::Conv2D(nn::Conv2DOptions(4, 3).padding(Padding::Same).use_bias(false).name("conv")))(in);
  auto b = (*nn::BatchNormalization(nn::BatchNormalizationOptions().name("bn")))(c);
  auto a = (*nn::ActivationByName("tanh", "act"))(b);
  auto d = (*nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).padding(Padding::Same).name("dw")))(a);
  auto s = (*nn::Add("add"))({a, d});
  auto c2 = (*nn::Conv2D(nn::Conv2DOptions(5, 3).strides({2, 2}).activation(nn::Activation::Tanh).name("conv2")))(
      (*nn::ZeroPadding2D(1, "pad"))(s));
  auto out = (*nn::Dense(nn::DenseOptions(2).name("head")))((*nn::GlobalAveragePooling2D(false, "gap"))(c2));
  auto model = nn::Model({in}, {out}, "small_cnn");
  // Non-trivial weights and statistics.
  for (auto& [name, t] : model->state_dict()) {
    const bool variance = name.find("variance") != std::string::npos || name.find("gamma") != std::string::npos;
    Tensor v = variance ? random_uniform(t.shape(), 0.5f, 1.5f, &gen) : random_normal(t.shape(), 0.0f, 0.4f, &gen);
    std::memcpy(t.raw_data(), v.raw_data(), t.nbytes());
  }
  return model;
}

Tensor image(std::int64_t h, std::int64_t w, std::uint64_t seed) {
  Generator gen(seed);
  return random_uniform({1, h, w, 3}, 0.0f, 1.0f, &gen);
}

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A TF.js layers-model named as Keras' MobileNetV2 where the default layers are: Conv1 (3x3, stride 2,
// 4 filters, float32 weights) then a chain of ReLU layers. Returns the kernel written.
Tensor write_tiny_mobilenet(const fs::path& dir) {
  Generator gen(9);
  const Tensor kernel = random_normal({3, 3, 3, 4}, 0.0f, 0.5f, &gen);
  const Tensor bias = from_vector(std::vector<float>{0.1f, -0.1f, 0.2f, 0.0f}, {4});
  std::string shard(static_cast<const char*>(kernel.raw_data()), static_cast<std::size_t>(kernel.nbytes()));
  shard.append(static_cast<const char*>(bias.raw_data()), static_cast<std::size_t>(bias.nbytes()));
  write_file(dir / "group1-shard1of1", shard);
  std::string layers = R"(
    {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 16, 16, 3], "dtype": "float32", "name": "input_1"}, "inbound_nodes": []},
    {"name": "Conv1", "class_name": "Conv2D", "config": {"name": "Conv1", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "activation": "linear", "use_bias": true}, "inbound_nodes": [[["input_1", 0, 0, {}]]]})";
  std::string previous = "Conv1";
  for (const char* name : {"Conv1_relu", "block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu"}) {
    layers += fmt::format(R"(,
    {{"name": "{0}", "class_name": "ReLU", "config": {{"name": "{0}", "max_value": 6.0}}, "inbound_nodes": [[["{1}", 0, 0, {{}}]]]}})",
                          name, previous);
    previous = name;
  }
  write_file(dir / "model.json",
             R"({"format": "layers-model", "modelTopology": {"class_name": "Model", "config": {"name": "tiny_mobilenet", "layers": [)" +
                 layers + R"(], "input_layers": [["input_1", 0, 0]], "output_layers": [["block_13_expand_relu", 0, 0]]}},
  "weightsManifest": [{"paths": ["group1-shard1of1"], "weights": [
    {"name": "Conv1/kernel", "shape": [3, 3, 3, 4], "dtype": "float32"}, {"name": "Conv1/bias", "shape": [4], "dtype": "float32"}]}]})");
  return kernel;
}

}  // namespace

TEST(StylizeModel, NamedLayersOfAnyImageSizeWithBatchNormFolded) {
  auto model = small_cnn();
  auto folded = apps::model_features(model);  // fold_bn by default
  auto plain = apps::model_features(model, false);
  // The layers with image-shaped outputs, in call order; the folded batch normalisation is gone.
  EXPECT_EQ(folded->layer_names(), (std::vector<std::string>{"conv", "act", "dw", "add", "pad", "conv2"}));
  EXPECT_EQ(plain->layer_names(), (std::vector<std::string>{"conv", "bn", "act", "dw", "add", "pad", "conv2"}));
  // At the declared size the features are the model's own intermediate outputs.
  const Tensor x8 = image(8, 8, 1);
  const auto want = model->outputs_of({"add", "conv2"}, x8);
  for (auto* net : {folded.get(), plain.get()}) {
    const auto f = net->features(x8, {"add", "conv2"});
    EXPECT_LT(max_abs_diff(f.at("add"), want.at("add")), 1e-5);
    EXPECT_LT(max_abs_diff(f.at("conv2"), want.at("conv2")), 1e-5);
  }
  // Any other size: 11 x 6 pixels -> conv2 (stride 2, padded by 1) gives 6 x 3.
  const Tensor x = image(11, 6, 2);
  const auto a = folded->features(x, {"conv2"}), b = plain->features(x, {"conv2"});
  EXPECT_EQ(a.at("conv2").shape(), (Shape{1, 6, 3, 5}));
  EXPECT_LT(max_abs_diff(a.at("conv2"), b.at("conv2")), 1e-5);
  // Default layers of a network without known names: spread over its activations (here "act" only).
  EXPECT_EQ(folded->default_style_layers, (std::vector<std::string>{"act"}));
  EXPECT_EQ(folded->default_content_layers, (std::vector<std::string>{"act"}));
  // The model's own input check still holds outside the feature network... of a fresh model.
  EXPECT_NE(error_of([&] { (*small_cnn())(x); }).find("InputLayer 'image': expected inputs (None, 8, 8, 3)"), std::string::npos);
}

TEST(StylizeModel, GradientWrtTheImageThroughDepthwiseAndFoldedConvs) {
  auto net = apps::model_features(small_cnn());
  Tensor x = image(7, 6, 3);
  EXPECT_TRUE(grad_matches(
      [&] {
        const auto f = net->features(x, {"add", "conv2"});
        return concat({reshape(f.at("add"), {-1}), reshape(f.at("conv2"), {-1})}, 0);
      },
      {x}));
  // And the Gram matrix on top, as the style loss uses it (the loss itself: StyleLosses.*). Its entries
  // are sums over the pixels (~40), so float32 rounding needs a wider step than the default 1e-3.
  EXPECT_TRUE(grad_matches([&] { return apps::gram_matrix(net->features(x, {"dw"}).at("dw")); }, {x}, {.eps = 1e-2f}));
}

TEST(StylizeModel, UnknownLayerNamesTheLayerAndListsTheLayers) {
  auto net = apps::model_features(small_cnn());
  EXPECT_EQ(error_of([&] { net->features(image(8, 8, 1), {"block_99_relu"}); }),
            "the model 'small_cnn' has no layer 'block_99_relu'; its layers are: conv, act, dw, add, pad, conv2");
  apps::StylizeOptions o;
  o.size = 16;
  o.iterations = 1;
  o.style_layers = {"add", "nope"};
  EXPECT_NE(error_of([&] { apps::stylize(*net, zeros({16, 16, 3}, DType::UInt8), zeros({16, 16, 3}, DType::UInt8), o); })
                .find("has no layer 'nope'; its layers are: conv, act"),
            std::string::npos);
}

TEST(StylizeModel, DefaultNetworkIsTheMobileNetV2WhenPresentElseRandom) {
  TmpDir tmp;
  const fs::path empty = tmp.path() / "empty", data = tmp.path() / "data";
  fs::create_directories(empty);
  // Without the model: the random VGG, and the message says where it looked.
  apps::ChosenNetwork none = apps::default_feature_network({empty.string(), data.string()}, 3, {4, 8}, {1, 1});
  EXPECT_EQ(none.network->describe(), "the network 'random_vgg'");
  EXPECT_NE(none.reason.find("random weights (seed 3), as no pretrained network was found (looked for " +
                             (empty / "nsfwjs/mobilenet_v2/model.json").string() + ", " +
                             (data / "nsfwjs/mobilenet_v2/model.json").string()),
            std::string::npos)
      << none.reason;
  EXPECT_EQ(none.network->default_style_layers, (std::vector<std::string>{"block1_conv1", "block2_conv1"}));

  // With it (in the second folder): the imported model, its MobileNetV2 default layers.
  const fs::path dir = data / "nsfwjs" / "mobilenet_v2";
  const Tensor kernel = write_tiny_mobilenet(dir);
  apps::ChosenNetwork chosen = apps::default_feature_network({empty.string(), data.string()});
  EXPECT_EQ(chosen.network->describe(), "the model 'tiny_mobilenet'");
  EXPECT_NE(chosen.reason.find("nsfwjs' MobileNetV2, found at " + (dir / "model.json").string()), std::string::npos)
      << chosen.reason;
  EXPECT_EQ(chosen.network->default_style_layers,
            (std::vector<std::string>{"Conv1_relu", "block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
                                      "block_13_expand_relu"}));
  EXPECT_EQ(chosen.network->default_content_layers, (std::vector<std::string>{"block_6_expand_relu"}));
  EXPECT_EQ(chosen.network->default_style_weight, 3e7);  // and its loss weights (the random VGG has none)
  EXPECT_EQ(chosen.network->default_tv_weight, 3.0);
  EXPECT_EQ(none.network->default_style_weight, 0.0);
  // The weights were read: Conv1_relu = relu6(conv(x)) on a 10 x 12 image (not the declared 16 x 16).
  const Tensor x = image(10, 12, 5);
  const Tensor bias = from_vector(std::vector<float>{0.1f, -0.1f, 0.2f, 0.0f}, {4});
  const Tensor by_hand = clip(conv2d(x, kernel, bias, {.strides = {2, 2}, .padding = Padding::Same}), 0.0f, 6.0f);
  EXPECT_LT(max_abs_diff(chosen.network->features(x, {"Conv1_relu"}).at("Conv1_relu"), by_hand), 1e-5);
  // The same file by path (model.json or its folder), as --network takes it.
  for (const fs::path& p : {dir / "model.json", dir}) {
    auto net = apps::load_feature_network(p.string());
    EXPECT_LT(max_abs_diff(net->features(x, {"Conv1_relu"}).at("Conv1_relu"), by_hand), 1e-5) << p;
  }
  // The first folder that has one wins.
  write_tiny_mobilenet(empty / "nsfwjs" / "mobilenet_v2");
  EXPECT_NE(apps::default_feature_network({empty.string(), data.string()}).reason.find(empty.string()), std::string::npos);
}
