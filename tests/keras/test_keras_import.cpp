// Keras import: synthesised Keras JSON configs and TF.js weight files (float32, uint8 and uint16
// quantised, a group split over two shards), Sequential configs, errors naming the layer and option,
// the .syn round trip; and, when the data is there, nsfwjs' MobileNetV2 against TF.js on real photos,
// fine-tuning a new head on the frozen backbone and the ONNX round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("synapse_keras_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string float_bytes(const Tensor& t) { return {static_cast<const char*>(t.raw_data()), static_cast<std::size_t>(t.nbytes())}; }

// A Keras 2 functional config: pad -> conv (stride 2, no bias) -> bn -> relu6 -> {identity, depthwise}
// -> add -> global average -> dense softmax.
const char* kTopology = R"({"class_name": "Model", "config": {"name": "tiny", "layers": [
  {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 8, 8, 3], "dtype": "float32", "name": "input_1"}, "inbound_nodes": []},
  {"name": "pad", "class_name": "ZeroPadding2D", "config": {"name": "pad", "trainable": false, "padding": [[0, 1], [0, 1]], "data_format": "channels_last"}, "inbound_nodes": [[["input_1", 0, 0, {}]]]},
  {"name": "conv", "class_name": "Conv2D", "config": {"name": "conv", "trainable": false, "filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear", "use_bias": false, "kernel_regularizer": null}, "inbound_nodes": [[["pad", 0, 0, {}]]]},
  {"name": "bn", "class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1, "momentum": 0.999, "epsilon": 0.001, "center": true, "scale": true}, "inbound_nodes": [[["conv", 0, 0, {}]]]},
  {"name": "relu", "class_name": "ReLU", "config": {"name": "relu", "max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}, "inbound_nodes": [[["bn", 0, 0, {}]]]},
  {"name": "dw", "class_name": "DepthwiseConv2D", "config": {"name": "dw", "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "depth_multiplier": 1, "data_format": "channels_last", "activation": "linear", "use_bias": false}, "inbound_nodes": [[["relu", 0, 0, {}]]]},
  {"name": "add", "class_name": "Add", "config": {"name": "add"}, "inbound_nodes": [[["relu", 0, 0, {}], ["dw", 0, 0, {}]]]},
  {"name": "gap", "class_name": "GlobalAveragePooling2D", "config": {"name": "gap", "data_format": "channels_last"}, "inbound_nodes": [[["add", 0, 0, {}]]]},
  {"name": "fc", "class_name": "Dense", "config": {"name": "fc", "units": 2, "activation": "softmax", "use_bias": true}, "inbound_nodes": [[["gap", 0, 0, {}]]]}
], "input_layers": [["input_1", 0, 0]], "output_layers": [["fc", 0, 0]]}, "keras_version": "2.2.4", "backend": "tensorflow"})";

struct Weights {
  Tensor conv, gamma, beta, mean, var, dw, fc_w, fc_b;  // the dequantised values the model must hold
};

// Writes model.json + shards into `dir`: group 1 float32 (conv) and uint8 (bn), group 2 uint16 (dw) and
// float32 (fc) split over two shard files.
Weights write_tiny(const fs::path& dir) {
  Generator gen(17);
  Weights w;
  w.conv = random_normal({3, 3, 3, 4}, 0, 0.5f, &gen);
  std::string g1 = float_bytes(w.conv), g2;
  auto quantised = [&](const Shape& shape, int bits, double scale, double minimum, std::string& bytes) {
    Tensor t = zeros(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      const unsigned q = static_cast<unsigned>((i * 37 + 11) % (bits == 8 ? 256 : 65536));
      t.data<float>()[i] = static_cast<float>(q * scale + minimum);
      bytes.push_back(static_cast<char>(q & 0xff));
      if (bits == 16) bytes.push_back(static_cast<char>(q >> 8));
    }
    return t;
  };
  w.gamma = quantised({4}, 8, 0.01, 0.5, g1);
  w.beta = quantised({4}, 8, 0.02, -1.0, g1);
  w.mean = quantised({4}, 8, 0.01, -0.5, g1);
  w.var = quantised({4}, 8, 0.005, 0.2, g1);
  w.dw = quantised({3, 3, 4, 1}, 16, 1e-5, -0.3, g2);
  w.fc_w = random_normal({4, 2}, 0, 1, &gen);
  w.fc_b = from_vector(std::vector<float>{0.1f, -0.2f}, {2});
  g2 += float_bytes(w.fc_w) + float_bytes(w.fc_b);
  write_file(dir / "group1-shard1of1", g1);
  write_file(dir / "group2-shard1of2", g2.substr(0, 50));
  write_file(dir / "group2-shard2of2", g2.substr(50));
  const std::string manifest = R"([
    {"paths": ["group1-shard1of1"], "weights": [
      {"name": "conv/kernel", "shape": [3, 3, 3, 4], "dtype": "float32"},
      {"name": "bn/gamma", "shape": [4], "dtype": "float32", "quantization": {"min": 0.5, "scale": 0.01, "dtype": "uint8"}},
      {"name": "bn/beta", "shape": [4], "dtype": "float32", "quantization": {"min": -1.0, "scale": 0.02, "dtype": "uint8"}},
      {"name": "bn/moving_mean", "shape": [4], "dtype": "float32", "quantization": {"min": -0.5, "scale": 0.01, "dtype": "uint8"}},
      {"name": "bn/moving_variance", "shape": [4], "dtype": "float32", "quantization": {"min": 0.2, "scale": 0.005, "dtype": "uint8"}}]},
    {"paths": ["group2-shard1of2", "group2-shard2of2"], "weights": [
      {"name": "dw/depthwise_kernel", "shape": [3, 3, 4, 1], "dtype": "float32", "quantization": {"min": -0.3, "scale": 1e-05, "dtype": "uint16"}},
      {"name": "fc/kernel", "shape": [4, 2], "dtype": "float32"},
      {"name": "fc/bias:0", "shape": [2], "dtype": "float32"}]}])";
  write_file(dir / "model.json", std::string(R"({"format": "layers-model", "modelTopology": )") + kTopology +
                                     R"(, "weightsManifest": )" + manifest + "}");
  return w;
}

// The tiny model's computation written out with ops.
Tensor by_hand(const Weights& w, const Tensor& x) {
  Tensor p = pad(x, {{0, 0}, {0, 1}, {0, 1}, {0, 0}});
  Tensor c = conv2d(p, w.conv, {.strides = {2, 2}});
  Tensor bn = (c - w.mean) / sqrt(w.var + 0.001f) * w.gamma + w.beta;
  Tensor r = clip(bn, 0.0f, 6.0f);
  Tensor s = r + depthwise_conv2d(r, w.dw, {}, {.padding = Padding::Same});
  return softmax(dense(mean(s, {1, 2}), w.fc_w, w.fc_b), -1);
}

}  // namespace

TEST(KerasImport, TfjsLayersModelWithQuantisedWeights) {
  const fs::path dir = fresh_dir("tiny");
  const Weights w = write_tiny(dir);
  const auto weights = keras::load_tfjs_weights((dir / "model.json").string());
  EXPECT_EQ(weights.size(), 8u);
  // Dequantised as TF.js does: q * scale + min.
  EXPECT_EQ(weights.at("bn/gamma").to_vector<float>(), w.gamma.to_vector<float>());
  EXPECT_EQ(weights.at("dw/depthwise_kernel").to_vector<float>(), w.dw.to_vector<float>());
  EXPECT_EQ(weights.at("bn/gamma").to_vector<float>()[1], static_cast<float>(48 * 0.01 + 0.5));

  keras::Imported m = keras::load_tfjs((dir / "model.json").string());
  EXPECT_EQ(m.model->name(), "tiny");
  Generator gen(3);
  Tensor x = random_uniform({2, 8, 8, 3}, 0, 1, &gen);
  m.model->eval();
  EXPECT_LT(max_abs_diff((*m.model)(x), by_hand(w, x)), 1e-5);
  // "trainable": false froze conv (pad has no weights).
  EXPECT_FALSE(m.model->child("conv")->state_dict().at("kernel").requires_grad());
  EXPECT_EQ(m.model->count_parameters(true), 4 + 4 + 9 * 4 + 8 + 2);

  // The .syn file holds the config and the weights.
  const fs::path syn = dir / "tiny.syn";
  keras::save(syn.string(), m);
  keras::Imported again = keras::load(syn.string());
  again.model->eval();
  EXPECT_EQ(max_abs_diff((*again.model)(x), (*m.model)(x)), 0.0);
  fs::remove_all(dir);
}

TEST(KerasImport, SequentialConfig) {
  const char* json = R"({"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "Dense", "config": {"name": "d1", "units": 3, "activation": "relu", "batch_input_shape": [null, 4]}},
    {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}},
    {"class_name": "Reshape", "config": {"name": "r", "target_shape": [3, 1]}},
    {"class_name": "Flatten", "config": {"name": "f"}},
    {"class_name": "Dense", "config": {"name": "d2", "units": 2}},
    {"class_name": "Activation", "config": {"name": "act", "activation": "tanh"}}]}})";
  keras::Imported m = keras::model_from_json(json);
  std::vector<std::string> names;
  for (const auto& c : m.model->children()) names.push_back(c->name() + ":" + c->type());
  EXPECT_EQ(names, (std::vector<std::string>{"input_layer:InputLayer", "d1:Dense", "drop:Dropout", "r:Reshape", "f:Flatten",
                                              "d2:Dense", "act:Activation"}));
  const auto s = m.model->state_dict();
  Tensor x = from_vector(std::vector<float>{1, -2, 3, 0.5f}, {1, 4});
  m.model->eval();
  Tensor want = tanh(dense(relu(dense(x, s.at("d1/kernel"), s.at("d1/bias"))), s.at("d2/kernel"), s.at("d2/bias")));
  EXPECT_LT(max_abs_diff((*m.model)(x), want), 1e-6);
}

TEST(KerasImport, UnsupportedLayersAndOptionsNameTheLayer) {
  auto one_layer = [](const std::string& layer) {
    return R"({"class_name": "Sequential", "config": [{"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 6, 6, 2]}}, )" +
           layer + "]}";
  };
  EXPECT_EQ(error_of([&] { keras::model_from_json(one_layer(R"({"class_name": "LSTM", "config": {"name": "lstm_1"}})")); }),
            "Keras import: layer 'lstm_1': class 'LSTM' is not supported (supported: Activation, Add, AveragePooling2D, "
            "BatchNormalization, Concatenate, Conv2D, Dense, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D, "
            "GlobalMaxPooling2D, InputLayer, MaxPooling2D, Multiply, ReLU, Reshape, SeparableConv2D, Softmax, ZeroPadding2D)");
  EXPECT_EQ(error_of([&] {
              keras::model_from_json(one_layer(
                  R"({"class_name": "Conv2D", "config": {"name": "c1", "filters": 2, "kernel_size": 3, "data_format": "channels_first"}})"));
            }),
            "Keras import: layer 'c1' (Conv2D): unsupported option data_format='channels_first' (supported: channels_last)");
  EXPECT_EQ(error_of([&] {
              keras::model_from_json(one_layer(
                  R"({"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "elu"}})"));
            }),
            "Keras import: layer 'd' (Dense): unsupported option activation='elu' (supported: linear, relu, sigmoid, softmax, tanh)");
  EXPECT_EQ(error_of([&] {
              keras::model_from_json(one_layer(R"({"class_name": "Conv2D", "config": {"name": "c2", "filters": 2, "kernel_size": 3, "groups": 2}})"));
            }),
            "Keras import: layer 'c2' (Conv2D): unsupported option groups=2");
  // Weights that do not fit name the tensor.
  const fs::path dir = fresh_dir("bad");
  write_tiny(dir);
  std::ifstream in(dir / "model.json");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  text.replace(text.find(R"("fc/kernel", "shape": [4, 2])"), 28, R"("fc/kernel", "shape": [2, 4])");
  write_file(dir / "model.json", text);
  const std::string e = error_of([&] { keras::load_tfjs((dir / "model.json").string()); });
  EXPECT_NE(e.find("shape mismatch for 'fc/kernel': expected [4,2], found [2,4]"), std::string::npos) << e;
  fs::remove_all(dir);
}

// nsfwjs' MobileNetV2 (scripts/fetch-data nsfwjs) against TF.js's own outputs on scikit-learn's two
// sample photos (written by scripts/keras/tfjs-predict.js; the ctest fixture runs it).
class Nsfwjs : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* model = std::getenv("SYNAPSE_NSFWJS_MODEL");
    const char* out = std::getenv("SYNAPSE_TFJS_OUT");
    if (!model || !out || !fs::exists(model) || !fs::exists(fs::path(out) / "outputs.f32"))
      GTEST_SKIP() << "no nsfwjs model or TF.js outputs (scripts/fetch-data nsfwjs; ctest runs tfjs-predict.js)";
    model_ = model;
    out_ = out;
  }
  Tensor read(const std::string& file, const Shape& shape) {
    Tensor t = zeros(shape);
    std::ifstream in(fs::path(out_) / file, std::ios::binary);
    in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
    EXPECT_EQ(in.gcount(), static_cast<std::streamsize>(t.nbytes())) << file;
    return t;
  }
  std::string model_, out_;
};

TEST_F(Nsfwjs, MobileNetV2MatchesTfjsOnRealPhotos) {
  keras::Imported m = keras::load_tfjs(model_);
  m.model->eval();
  Tensor x = read("inputs.f32", {2, 224, 224, 3});
  Tensor want = read("outputs.f32", {2, 5});
  Tensor got = (*m.model)(x);
  const double diff = max_abs_diff(got, want);
  std::cout << "nsfwjs MobileNetV2 vs TF.js: max |difference| " << diff << " over " << got.numel() << " outputs\n";
  EXPECT_LT(diff, 1e-4);
  EXPECT_EQ(argmax(got, -1).to_vector<std::int64_t>(), (std::vector<std::int64_t>{2, 2}));  // both "Neutral"
  // Its 52 batch normalisations folded into the convolutions before them: the same outputs.
  auto folded = m.model->fold_batch_norm();
  folded->eval();
  EXPECT_EQ(folded->children().size(), m.model->children().size() - 52);
  const double fdiff = max_abs_diff((*folded)(x), want);
  std::cout << "with batch normalisation folded: max |difference| " << fdiff << "\n";
  EXPECT_LT(fdiff, 1e-4);
}

TEST_F(Nsfwjs, FineTuneANewHeadOnTheFrozenBackboneThenOnnxRoundTrip) {
  keras::Imported m = keras::load_tfjs(model_);
  m.model->set_trainable(false);
  auto head = nn::Dense(nn::DenseOptions(2).name("new_head"));
  Generator gen(1);
  head->set_generator(&gen);
  auto net = nn::Model(m.model->inputs(), {(*head)(m.model->output_of("flatten_1"))}, "finetuned");
  // Training mode: as in Keras, the frozen backbone's batch normalisations run on their moving
  // statistics and leave them alone.
  net->train();
  std::map<std::string, std::vector<float>> stats_before;
  for (const auto& [name, t] : m.model->named_buffers()) stats_before[name] = t.to_vector<float>();
  EXPECT_EQ(net->count_parameters(true), 1280 * 2 + 2);
  // A tiny task: tell the two photos apart.
  Tensor x = read("inputs.f32", {2, 224, 224, 3});
  Tensor y = from_vector(std::vector<std::int64_t>{0, 1}, {2});
  optim::Adam opt(net->named_trainable_parameters(), {.learning_rate = 1e-2});
  std::vector<float> losses;
  for (int step = 0; step < 5; ++step) {
    Tensor loss = mean(sparse_softmax_cross_entropy((*net)(x), y));
    opt.zero_grad();
    loss.backward();
    opt.step();
    losses.push_back(loss.item<float>());
  }
  EXPECT_LT(losses.back(), losses.front() * 0.5f) << losses.front() << " -> " << losses.back();
  ASSERT_EQ(stats_before.size(), 52u * 2);
  for (const auto& [name, t] : m.model->named_buffers()) EXPECT_EQ(t.to_vector<float>(), stats_before[name]) << name;
  net->eval();
  const fs::path path = fs::temp_directory_path() / "synapse_keras_finetuned.onnx";
  // A fixed batch: with a symbolic one the first convolution exceeds the 32-bit extents check.
  onnx::export_model(*net, {2, 224, 224, 3}, path.string());
  onnx::Model o = onnx::import_model(path.string());
  graph::Session s(*o.graph);
  const double diff = max_abs_diff(s.run(o.outputs[0], {{o.inputs[0], x}}), (*net)(x));
  std::cout << "fine-tuned MobileNetV2: loss " << losses.front() << " -> " << losses.back()
            << ", ONNX re-import max |difference| " << diff << "\n";
  EXPECT_LT(diff, 1e-4);
  fs::remove(path);
}
