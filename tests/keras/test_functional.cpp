// The functional API: a branch/merge model's values against the hand-written computation, shared
// layers, summary, named state and checkpoints, graph mode, ONNX export, gradients through merges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;

namespace {

// image [N, 6, 6, 2] -> conv (SAME, 4) -> { relu6 ; depthwise 3x3 } -> add -> concat with the conv
// -> global average -> dense 3.
struct TwoBranch {
  std::shared_ptr<nn::layers::Model> model;
  std::shared_ptr<nn::layers::Conv2D> conv;
  std::shared_ptr<nn::layers::DepthwiseConv2D> dw;
  std::shared_ptr<nn::layers::Dense> dense;
};

TwoBranch two_branch(Generator& gen) {
  TwoBranch t;
  t.conv = nn::Conv2D(nn::Conv2DOptions(4, 3).padding(Padding::Same).name("conv"));
  t.dw = nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).padding(Padding::Same).name("dw"));
  t.dense = nn::Dense(nn::DenseOptions(3).name("head"));
  for (nn::Module* m : std::vector<nn::Module*>{t.conv.get(), t.dw.get(), t.dense.get()}) m->set_generator(&gen);
  auto in = nn::Input({6, 6, 2}, "image");
  auto c = (*t.conv)(in);
  auto a = (*nn::ReLU6("relu6"))(c);
  auto b = (*t.dw)(c);
  auto s = (*nn::Add("add"))({a, b});
  auto j = (*nn::Concatenate(-1, "concat"))({s, c});
  auto out = (*t.dense)((*nn::GlobalAveragePooling2D(false, "gap"))(j));
  t.model = nn::Model({in}, {out}, "two_branch");
  return t;
}

Tensor by_hand(const TwoBranch& t, const Tensor& x) {
  const Tensor c = conv2d(x, t.conv->kernel(), t.conv->bias(), {.padding = Padding::Same});
  const Tensor s = clip(c, 0.0f, 6.0f) + depthwise_conv2d(c, t.dw->kernel(), t.dw->bias(), {.padding = Padding::Same});
  return dense(mean(concat({s, c}, -1), {1, 2}), t.dense->kernel(), t.dense->bias());
}

}  // namespace

TEST(Functional, TwoBranchModelEqualsTheHandWrittenComputation) {
  Generator gen(5);
  TwoBranch t = two_branch(gen);
  Tensor x = random_normal({3, 6, 6, 2}, 0, 1, &gen);
  Tensor y = (*t.model)(x);
  EXPECT_EQ(y.shape(), (Shape{3, 3}));
  EXPECT_LT(max_abs_diff(y, by_hand(t, x)), 1e-5);
  // Children: the layers in call order, InputLayer included; state under the layer names.
  std::vector<std::string> names;
  for (const auto& c : t.model->children()) names.push_back(c->name());
  EXPECT_EQ(names, (std::vector<std::string>{"image", "conv", "relu6", "dw", "add", "concat", "gap", "head"}));
  std::vector<std::string> state;
  for (const auto& [n, v] : t.model->state_dict()) state.push_back(n);
  EXPECT_EQ(state, (std::vector<std::string>{"conv/bias", "conv/kernel", "dw/bias", "dw/depthwise_kernel", "head/bias",
                                              "head/kernel"}));
  // Named intermediate outputs, and a sub-model sharing the layers.
  auto feats = t.model->outputs_of({"add", "conv"}, x);
  EXPECT_EQ(feats.at("add").shape(), (Shape{3, 6, 6, 4}));
  EXPECT_LT(max_abs_diff(feats.at("conv"), conv2d(x, t.conv->kernel(), t.conv->bias(), {.padding = Padding::Same})), 1e-6);
  auto sub = nn::Model(t.model->inputs(), {t.model->output_of("add"), t.model->output_of("gap")}, "features");
  auto outs = sub->call({x});
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_LT(max_abs_diff(outs[0], feats.at("add")), 1e-6);
  EXPECT_EQ(sub->count_parameters(), t.model->count_parameters() - 8 * 3 - 3);
}

TEST(Functional, SharedLayersAndMultipleInputs) {
  Generator gen(9);
  auto shared = nn::Dense(nn::DenseOptions(4).name("shared"));
  shared->set_generator(&gen);
  auto a = nn::Input({5}, "a");
  auto b = nn::Input({5}, "b");
  auto y = (*nn::Multiply("mul"))({(*shared)(a), (*shared)(b)});
  auto model = nn::Model({a, b}, {y});
  Tensor xa = random_normal({2, 5}, 0, 1, &gen), xb = random_normal({2, 5}, 0, 1, &gen);
  Tensor got = model->call({xa, xb})[0];
  Tensor want = dense(xa, shared->kernel(), shared->bias()) * dense(xb, shared->kernel(), shared->bias());
  EXPECT_LT(max_abs_diff(got, want), 1e-6);
  EXPECT_EQ(model->count_parameters(), 24);  // the shared layer counts once
  std::ostringstream os;
  model->summary(os);
  EXPECT_NE(os.str().find("['a[0][0]', 'b[0][0]']"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("['shared[0][0]', 'shared[1][0]']"), std::string::npos) << os.str();
}

TEST(Functional, SummaryHasTheConnectedToColumn) {
  Generator gen(5);
  TwoBranch t = two_branch(gen);
  std::ostringstream os;
  t.model->summary(os);
  const std::string want =
      "Model: \"two_branch\"\n"
      "Layer (type)                     Output Shape          Param #     Connected to\n"
      "===================================================================================================\n"
      "image (InputLayer)               (None, 6, 6, 2)       0           []\n"
      "conv (Conv2D)                    (None, 6, 6, 4)       76          ['image[0][0]']\n"
      "relu6 (ReLU)                     (None, 6, 6, 4)       0           ['conv[0][0]']\n"
      "dw (DepthwiseConv2D)             (None, 6, 6, 4)       40          ['conv[0][0]']\n"
      "add (Add)                        (None, 6, 6, 4)       0           ['relu6[0][0]', 'dw[0][0]']\n"
      "concat (Concatenate)             (None, 6, 6, 8)       0           ['add[0][0]', 'conv[0][0]']\n"
      "gap (GlobalAveragePooling2D)     (None, 8)             0           ['concat[0][0]']\n"
      "head (Dense)                     (None, 3)             27          ['gap[0][0]']\n"
      "===================================================================================================\n"
      "Total params: 143\n"
      "Trainable params: 143\n"
      "Non-trainable params: 0\n";
  EXPECT_EQ(os.str(), want);
}

TEST(Functional, CheckpointRoundTrip) {
  Generator g1(1), g2(2);
  TwoBranch a = two_branch(g1), b = two_branch(g2);
  Tensor x = random_normal({2, 6, 6, 2}, 0, 1, &g1);
  const auto path = std::filesystem::temp_directory_path() / "synapse_functional_ckpt.syn";
  io::Checkpoint ckpt;
  ckpt.tensors = a.model->state_dict();
  io::save_checkpoint(path.string(), ckpt);
  EXPECT_GT(max_abs_diff((*a.model)(x), (*b.model)(x)), 1e-3);
  b.model->load_state_dict(io::load_checkpoint(path.string()).tensors);
  EXPECT_EQ(max_abs_diff((*a.model)(x), (*b.model)(x)), 0.0);
  std::filesystem::remove(path);
}

TEST(Functional, GraphModeAndOnnxExportRoundTrip) {
  Generator gen(5);
  TwoBranch t = two_branch(gen);
  Tensor x = random_normal({2, 6, 6, 2}, 0, 1, &gen);
  const Tensor eager = (*t.model)(x);
  graph::Graph g;
  Tensor px = g.placeholder("x", {-1, 6, 6, 2});
  Tensor py = (*t.model)(px);
  graph::Session s(g);
  EXPECT_LT(max_abs_diff(s.run(py, {{px, x}}), eager), 1e-5);

  const auto path = std::filesystem::temp_directory_path() / "synapse_functional.onnx";
  onnx::ExportInfo info = onnx::export_model(*t.model, {-1, 6, 6, 2}, path.string());
  EXPECT_EQ(info.output_shapes[0], (Shape{-1, 3}));
  onnx::Model m = onnx::import_model(path.string());
  graph::Session si(*m.graph);
  EXPECT_LT(max_abs_diff(si.run(m.outputs[0], {{m.inputs[0], x}}), eager), 1e-5);
  std::filesystem::remove(path);
}

TEST(Functional, GradientsFlowThroughBranchesToTheInputAndWeights) {
  Generator gen(5);
  TwoBranch t = two_branch(gen);
  Tensor x = random_normal({1, 6, 6, 2}, 0, 1, &gen);
  EXPECT_GRAD_MATCHES([&] { return (*t.model)(x); }, {x, t.conv->kernel(), t.dw->kernel()});
  // Frozen layers get no gradient and leave the trainable parameters.
  t.conv->set_trainable(false);
  EXPECT_EQ(t.model->trainable_parameters().size(), 4u);
  x.requires_grad_();
  Tensor dx = grad(sum((*t.model)(x)), {x})[0];
  EXPECT_EQ(dx.shape(), x.shape());
  EXPECT_FALSE(t.conv->kernel().requires_grad());
}

TEST(Functional, ErrorsNameTheProblem) {
  auto a = nn::Input({4}, "a");
  auto b = nn::Input({4}, "b");
  auto y = (*nn::Add("sum"))({a, b});
  EXPECT_EQ(error_of([&] { nn::Model({a}, {y}, "m"); }),
            "Model 'm': graph disconnected: the outputs need input 'b', which is not among the model's inputs");
  EXPECT_EQ(error_of([&] { (*nn::Dense(3))(std::vector<nn::SymbolicTensor>{a, b}); }),
            "Dense 'dense': called on 2 symbolic tensors; only merge layers (Add, Multiply, Concatenate) take several");
  auto c = nn::Input({5}, "c");
  const std::string e = error_of([&] { (*nn::Add("bad"))({a, c}); });
  EXPECT_NE(e.find("Add 'bad' called on (None, 4), (None, 5): Add 'bad': inputs must have one shape"), std::string::npos)
      << e;
  auto m = nn::Model({a, b}, {y}, "m2");
  EXPECT_EQ(error_of([&] { m->call({zeros({2, 4})}); }), "Model 'm2': expected 2 input(s), got 1");
  EXPECT_EQ(error_of([&] { m->call({zeros({2, 4}), zeros({2, 3})}); }),
            "InputLayer 'b': expected inputs (None, 4) (batch first), got shape [2,3]");
}

TEST(Functional, FoldBatchNormIntoTheConvolutions) {
  // conv -> bn -> relu6 -> depthwise -> bn -> add(relu6 output): both batch normalisations fold.
  Generator gen(21);
  auto in = nn::Input({7, 7, 3}, "x");
  auto c = (*nn::Conv2D(nn::Conv2DOptions(4, 3).strides({2, 2}).use_bias(false).name("c")))(in);
  auto r = (*nn::ReLU6("r"))((*nn::BatchNormalization(nn::BatchNormalizationOptions().name("bn1")))(c));
  auto d = (*nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).depth_multiplier(2).padding(Padding::Same).name("d")))(r);
  auto b2 = (*nn::BatchNormalization(nn::BatchNormalizationOptions().epsilon(1e-5f).name("bn2")))(d);
  auto model = nn::Model({in}, {(*nn::Add("add"))({b2, (*nn::Concatenate(-1, "cat"))({r, r})})}, "m");
  // Non-trivial statistics.
  for (auto& [name, t] : model->state_dict()) {
    Tensor v = random_uniform(t.shape(), 0.5f, 1.5f, &gen);
    std::memcpy(t.raw_data(), v.raw_data(), t.nbytes());
  }
  model->eval();
  auto folded = model->fold_batch_norm();
  folded->eval();
  std::vector<std::string> names;
  for (const auto& ch : folded->children()) names.push_back(ch->name());
  EXPECT_EQ(names, (std::vector<std::string>{"x", "c", "r", "d", "cat", "add"}));
  Tensor x = random_normal({2, 7, 7, 3}, 0, 1, &gen);
  EXPECT_LT(max_abs_diff((*folded)(x), (*model)(x)), 1e-5);
  // The export has no per-channel Sub/Mul/Add left for the batch normalisations.
  const auto path = std::filesystem::temp_directory_path() / "synapse_folded.onnx";
  onnx::ExportOptions keep_bn;  // the exporter folds by itself unless told not to
  keep_bn.fold_batch_norm = false;
  onnx::ExportInfo plain = onnx::export_model(*model, {-1, 7, 7, 3}, path.string(), keep_bn);
  onnx::ExportInfo info = onnx::export_model(*folded, {-1, 7, 7, 3}, path.string());
  EXPECT_LT(info.node_count, plain.node_count);
  EXPECT_EQ(std::count(info.op_types.begin(), info.op_types.end(), "Mul"), 0);
  onnx::Model m = onnx::import_model(path.string());
  graph::Session s(*m.graph);
  EXPECT_LT(max_abs_diff(s.run(m.outputs[0], {{m.inputs[0], x}}), (*model)(x)), 1e-5);
  std::filesystem::remove(path);
}
