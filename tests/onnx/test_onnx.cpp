// ONNX export and import: zoo models round-trip (export -> import -> Session equals eager), the
// exporter's layout handling and names, and the errors both directions give.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "../gradcheck.h"
#include "synapse/functional.h"
#include "synapse/graph.h"
#include "synapse/onnx.h"
#include "synapse/synapse.h"
#include "synapse/zoo.h"

using namespace synapse;
using synapse::testing::error_of;
namespace sx = synapse::onnx;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("synapse_onnx_test_{}", ::getpid());
  std::filesystem::create_directories(dir);
  return dir / name;
}

// A zoo model with seeded random parameters (so zero-initialised models give non-trivial outputs).
nn::ModulePtr seeded_model(const std::string& name, Generator& gen) {
  nn::ModulePtr model = zoo::recipe(name).build();
  model->set_generator(&gen);
  model->build_for({1, 28, 28, 1});
  for (auto& [pname, p] : model->named_parameters()) {
    Tensor v = random_uniform(p.shape(), -0.2f, 0.2f, &gen);
    std::copy_n(v.data<float>(), v.numel(), p.data<float>());
  }
  model->eval();
  return model;
}

::onnx::ModelProto read_model(const std::filesystem::path& path) {
  ::onnx::ModelProto m;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&in));
  return m;
}

// Imports the exported file and runs it on x in a Session: the values must be `expected` (eager's).
void expect_import_computes(const std::filesystem::path& path, const Tensor& x, const Tensor& expected) {
  sx::Model m = sx::import_model(path.string());
  graph::Session s(*m.graph);
  const auto got = s.run(m.outputs[0], {{m.inputs[0], x}}).to_vector<float>();
  const auto want = expected.to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f) << "at " << i;
}

// A model built with gen's initial values, in inference mode, exported for inputs [-1, dims...]; with
// eager's output on a random batch x of `batch` rows.
struct Exported {
  Tensor x, expected;
  std::filesystem::path path;
  ::onnx::ModelProto proto;
};
Exported export_for(nn::Module& model, Generator& gen, const Shape& dims, std::int64_t batch, const std::string& file) {
  Shape one{1}, any{-1}, xs{batch};
  for (auto d : dims) {
    one.push_back(d);
    any.push_back(d);
    xs.push_back(d);
  }
  model.set_generator(&gen);
  model.build_for(one);
  model.eval();
  Exported e;
  e.x = random_normal(xs, 0.0f, 1.0f, &gen);
  {
    NoGradGuard no_grad;
    e.expected = model(e.x);
  }
  e.path = temp_file(file);
  sx::export_model(model, any, e.path.string());
  e.proto = read_model(e.path);
  return e;
}

int count_ops(const ::onnx::ModelProto& m, const std::string& type) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == type;
  return n;
}

}  // namespace

class ZooRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooRoundTrip, ImportedGraphEqualsEager) {
  Generator gen(7);
  nn::ModulePtr model = seeded_model(GetParam(), gen);
  Tensor x = random_uniform({3, 28, 28, 1}, 0.0f, 1.0f, &gen);
  Tensor expected;
  {
    NoGradGuard no_grad;
    expected = (*model)(x);
  }
  const auto path = temp_file(GetParam() + ".onnx");
  const sx::ExportInfo info = sx::export_model(*model, {-1, 28, 28, 1}, path.string());
  EXPECT_EQ(info.input_names, std::vector<std::string>{"input"});
  EXPECT_EQ(info.output_names, std::vector<std::string>{"logits"});
  EXPECT_EQ(to_string(info.output_shapes[0]), "[-1,10]");

  sx::Model m = sx::import_model(path.string());
  ASSERT_EQ(m.inputs.size(), 1u);
  ASSERT_EQ(m.outputs.size(), 1u);
  EXPECT_EQ(m.input_names[0], "input");
  EXPECT_EQ(to_string(m.inputs[0].shape()), "[-1,28,28,1]");
  graph::Session s(*m.graph);
  Tensor got = s.run(m.outputs[0], {{m.inputs[0], x}});
  ASSERT_EQ(to_string(got.shape()), "[3,10]");
  const auto g = got.to_vector<float>(), e = expected.to_vector<float>();
  // Relative: Gemm with a transposed kernel sums in another order than the eager matmul.
  float worst = 0.0f;
  for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::fabs(g[i] - e[i]) / (1.0f + std::fabs(e[i])));
  EXPECT_LT(worst, 1e-5f) << GetParam();
  EXPECT_GT(std::fabs(e[0]) + std::fabs(e[1]), 1e-3f);  // a real output, not zeros

  // Float initializers come back as trainable variables, under the model's parameter names.
  EXPECT_EQ(m.graph->variables(true).size(), model->named_parameters().size());
}

INSTANTIATE_TEST_SUITE_P(Onnx, ZooRoundTrip, ::testing::Values("softmax", "mlp", "cnn", "lenet5", "keras-small"),
                         [](const auto& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Layers the zoo does not use: batch norm (exported as folded per-channel constants), average pooling,
// a strided SAME conv, sigmoid/tanh/softmax and dropout (gone in inference mode).
TEST(OnnxExport, ExtraLayersRoundTrip) {
  using nn::Activation;
  Generator gen(3);
  nn::ModulePtr model = nn::Sequential(
      {nn::Conv2D(nn::Conv2DOptions(8, {3, 3}).strides({2, 2}).padding(Padding::Same).name("conv")),
       nn::BatchNormalization(nn::BatchNormalizationOptions().name("bn")), nn::Tanh(),
       nn::AvgPool2D(nn::Pool2DOptions(2).padding(Padding::Same).name("avg")), nn::Flatten(), nn::Dropout(0.3f),
       nn::Dense(nn::DenseOptions(16).activation(Activation::Sigmoid)),
       nn::Dense(nn::DenseOptions(10).activation(Activation::Softmax))});
  model->set_generator(&gen);
  model->build_for({1, 28, 28, 1});
  for (auto& [name, b] : model->named_buffers()) {
    Tensor v = random_uniform(b.shape(), 0.5f, 1.5f, &gen);
    std::copy_n(v.data<float>(), v.numel(), b.data<float>());
  }
  model->eval();
  Tensor x = random_uniform({2, 28, 28, 1}, 0.0f, 1.0f, &gen);
  Tensor expected;
  {
    NoGradGuard no_grad;
    expected = (*model)(x);
  }
  const auto path = temp_file("extra.onnx");
  sx::export_model(*model, {-1, 28, 28, 1}, path.string());
  const auto proto = read_model(path);
  EXPECT_EQ(count_ops(proto, "Transpose"), 2);  // the per-channel constants were permuted, not the data
  EXPECT_EQ(count_ops(proto, "AveragePool"), 1);
  expect_import_computes(path, x, expected);
}

namespace {

// Seeded state with non-trivial batch norm statistics: kernels and biases in [-0.3, 0.3), gamma and
// moving_variance in [0.5, 1.5), beta and moving_mean in [-0.5, 0.5).
void randomize_state(nn::Module& model, Generator& gen) {
  for (auto& [name, t] : model.state_dict()) {
    const bool scale = name.ends_with("gamma") || name.ends_with("moving_variance");
    const bool shift = name.ends_with("beta") || name.ends_with("moving_mean");
    Tensor v = scale ? random_uniform(t.shape(), 0.5f, 1.5f, &gen)
                     : random_uniform(t.shape(), shift ? -0.5f : -0.3f, shift ? 0.5f : 0.3f, &gen);
    std::copy_n(v.data<float>(), v.numel(), t.data<float>());
  }
}

// The imported file's output on x against `expected`, relative to 1 + |expected| (1e-5).
void expect_import_matches(const std::filesystem::path& path, const Tensor& x, const Tensor& expected) {
  sx::Model m = sx::import_model(path.string());
  graph::Session s(*m.graph);
  const auto got = s.run(m.outputs[0], {{m.inputs[0], x}}).to_vector<float>();
  const auto want = expected.to_vector<float>();
  ASSERT_EQ(got.size(), want.size()) << path;
  float worst = 0.0f, largest = 0.0f;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (1.0f + std::fabs(want[i])));
    largest = std::max(largest, std::fabs(want[i]));
  }
  EXPECT_LT(worst, 1e-5f) << path;
  EXPECT_GT(largest, 0.1f) << path << ": a real output, not zeros";
}

std::vector<float> state_values(nn::Module& model) {
  std::vector<float> all;
  for (auto& [name, t] : model.state_dict()) {
    const auto v = t.to_vector<float>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

// Exports `model` with and without batch-norm folding; the folded file must compute eager's output
// (our importer) and have `folds` batch normalisations folded; the model must be left as it was.
void expect_batch_norm_folds(nn::Module& model, const Shape& dims, const Tensor& x, int folds, const std::string& file) {
  model.eval();
  Tensor expected;
  {
    NoGradGuard no_grad;
    expected = model(x);
  }
  const std::vector<float> before = state_values(model);
  const auto path = temp_file(file + ".onnx"), kept = temp_file(file + "_kept.onnx");
  const sx::ExportInfo info = sx::export_model(model, dims, path.string());
  sx::ExportOptions keep;
  keep.fold_batch_norm = false;
  const sx::ExportInfo plain = sx::export_model(model, dims, kept.string(), keep);
  EXPECT_EQ(info.folded_batch_norms, folds) << file;
  EXPECT_EQ(plain.folded_batch_norms, 0) << file;
  EXPECT_EQ(info.node_count, plain.node_count - 3 * folds) << file;  // Sub, Mul, Add each
  const auto proto = read_model(path), kept_proto = read_model(kept);
  EXPECT_EQ(count_ops(proto, "BatchNormalization"), 0) << file;
  EXPECT_EQ(count_ops(kept_proto, "Sub"), count_ops(proto, "Sub") + folds) << file;
  EXPECT_EQ(state_values(model), before) << file << ": the export changed the model";
  expect_import_matches(path, x, expected);
  expect_import_matches(kept, x, expected);
}

}  // namespace

// Inference-mode batch normalisation folded into the Conv, the depthwise (grouped) Conv and the Gemm
// before it: a Sequential model, bias-free convolutions included.
TEST(OnnxExport, BatchNormFoldsIntoConvDepthwiseAndDense) {
  Generator gen(11);
  auto bn = [](const std::string& name) { return nn::BatchNormalization(nn::BatchNormalizationOptions().name(name)); };
  nn::ModulePtr model = nn::Sequential(
      {nn::Conv2D(nn::Conv2DOptions(6, {3, 3}).use_bias(false).name("conv")), bn("bn1"), nn::ReLU(),
       nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).strides({2, 2}).padding(Padding::Same).name("dw")), bn("bn2"),
       nn::Flatten(), nn::Dense(nn::DenseOptions(10).name("fc")), bn("bn3"),
       nn::Dense(nn::DenseOptions(4).use_bias(false).name("out")), bn("bn4")});
  model->set_generator(&gen);
  model->build_for({1, 9, 9, 2});
  randomize_state(*model, gen);
  expect_batch_norm_folds(*model, {-1, 9, 9, 2}, random_normal({3, 9, 9, 2}, 0.0f, 1.0f, &gen), 4, "bn_sequential");
}

// A functional model: the convolution whose output a second layer also reads keeps its normalisation.
TEST(OnnxExport, BatchNormFoldsInFunctionalModelsOnlyWhenExact) {
  Generator gen(12);
  auto in = nn::Input({8, 8, 3}, "x");
  auto c1 = (*nn::Conv2D(nn::Conv2DOptions(4, 3).padding(Padding::Same).name("c1")))(in);
  auto r = (*nn::ReLU6("r"))((*nn::BatchNormalization(nn::BatchNormalizationOptions().name("bn1")))(c1));
  auto d = (*nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).depth_multiplier(2).padding(Padding::Same).name("d")))(r);
  auto b2 = (*nn::BatchNormalization(nn::BatchNormalizationOptions().epsilon(1e-5f).name("bn2")))(d);
  auto c2 = (*nn::Conv2D(nn::Conv2DOptions(8, 1).name("c2")))(b2);
  auto b3 = (*nn::BatchNormalization(nn::BatchNormalizationOptions().name("bn3")))(c2);
  auto sum = (*nn::Add("add"))({b3, c2});  // c2 is read twice: bn3 stays
  auto model = nn::Model({in}, {(*nn::GlobalAveragePooling2D(false, "gap"))(sum)}, "m");
  randomize_state(*model, gen);
  expect_batch_norm_folds(*model, {-1, 8, 8, 3}, random_normal({2, 8, 8, 3}, 0.0f, 1.0f, &gen), 2, "bn_functional");
}

TEST(OnnxExport, ConvStackHasOneTransposeEachWay) {
  Generator gen(1);
  nn::ModulePtr model = seeded_model("cnn", gen);
  const auto path = temp_file("cnn_layout.onnx");
  sx::export_model(*model, {-1, 28, 28, 1}, path.string());
  const auto m = read_model(path);
  EXPECT_EQ(count_ops(m, "Transpose"), 2);  // NHWC -> NCHW once before conv1, back once before flatten
  EXPECT_EQ(count_ops(m, "Conv"), 2);
  EXPECT_EQ(count_ops(m, "Relu"), 3);  // conv1, conv2 (inside conv2d here, NCHW there) and fc1
  EXPECT_EQ(count_ops(m, "MaxPool"), 2);
  EXPECT_EQ(count_ops(m, "Gemm"), 2);
  EXPECT_EQ(m.opset_import(0).version(), 13);
  // conv1's HWIO kernel [5,5,1,32] is stored OIHW under its state-dict name.
  bool found = false;
  for (const auto& init : m.graph().initializer()) {
    if (init.name() != "conv1/kernel") continue;
    found = true;
    EXPECT_EQ(fmt::format("{}", fmt::join(init.dims(), ",")), "32,1,5,5");
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "N");
}

TEST(OnnxExport, ErrorsNameTheNodeAndOp) {
  graph::Graph g;
  Tensor x = g.placeholder("x", {-1, 10});
  Tensor labels = g.placeholder("labels", {-1}, DType::Int64);
  Tensor loss = sparse_softmax_cross_entropy(x, labels);
  const auto path = temp_file("bad.onnx").string();
  const std::string e1 = error_of([&] { sx::export_model(g, {x, labels}, {loss}, path); });
  EXPECT_NE(e1.find("sparse_softmax_cross_entropy"), std::string::npos) << e1;
  EXPECT_NE(e1.find("no ONNX mapping"), std::string::npos) << e1;
  const std::string e2 = error_of([&] { sx::export_model(g, {x}, {loss}, path); });
  EXPECT_NE(e2.find("need placeholder 'labels'"), std::string::npos) << e2;
}

TEST(OnnxImport, UnsupportedOpNamesTypeAndNode) {
  ::onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(::onnx::TensorProto::FLOAT);
  in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(3);
  auto* n = g->add_node();
  n->set_op_type("Erf");
  n->set_name("my_erf");
  n->add_input("x");
  n->add_output("y");
  g->add_output()->set_name("y");
  const auto path = temp_file("erf.onnx");
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(m.SerializeToOstream(&out));
  }
  try {
    sx::import_model(path.string());
    FAIL() << "expected sx::Unsupported";
  } catch (const sx::Unsupported& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Erf node 'my_erf'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("op type Erf is not supported"), std::string::npos) << msg;
  }
  // Replacing it with a supported op imports and runs.
  n->set_op_type("Relu");
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(m.SerializeToOstream(&out));
  }
  sx::Model model = sx::import_model(path.string());
  graph::Session s(*model.graph);
  Tensor y = s.run(model.outputs[0], {{model.inputs[0], tensor({-1.0f, 0.5f, 2.0f})}});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0.0f, 0.5f, 2.0f}));
}

TEST(OnnxImport, NotAnOnnxFile) {
  const auto path = temp_file("garbage.onnx");
  {
    std::ofstream out(path, std::ios::binary);
    out << "this is not protobuf \xff\xff\xff";
  }
  const std::string e = error_of([&] { sx::import_model(path.string()); });
  EXPECT_NE(e.find("garbage.onnx"), std::string::npos) << e;
}

TEST(OnnxTensor, SaveLoadRoundTrip) {
  const auto path = temp_file("t.pb").string();
  Tensor f = tensor({{1.5f, -2.0f}, {3.0f, 4.25f}});
  sx::save_tensor(f, path, "f");
  Tensor back = sx::load_tensor(path);
  EXPECT_EQ(to_string(back.shape()), "[2,2]");
  EXPECT_EQ(back.to_vector<float>(), f.to_vector<float>());
  Tensor i = from_vector(std::vector<std::int64_t>{5, -7, 9});
  sx::save_tensor(i, path);
  EXPECT_EQ(sx::load_tensor(path).to_vector<std::int64_t>(), (std::vector<std::int64_t>{5, -7, 9}));
}

TEST(OnnxExport, DenseOnSequencesIsMatMulAddRelu) {
  // A dense layer on [N, 4, 8] inputs (more than two dimensions): MatMul + Add + Relu rather than Gemm.
  Generator gen(7);
  auto model = nn::Sequential({nn::Dense(nn::DenseOptions(5).activation(nn::Activation::ReLU).name("per_step"))});
  const Exported e = export_for(*model, gen, {4, 8}, 3, "dense_seq.onnx");
  EXPECT_EQ(count_ops(e.proto, "MatMul"), 1);
  EXPECT_EQ(count_ops(e.proto, "Add"), 1);
  EXPECT_EQ(count_ops(e.proto, "Relu"), 1);
  EXPECT_EQ(count_ops(e.proto, "Gemm"), 0);
  expect_import_computes(e.path, e.x, e.expected);
}

TEST(OnnxExport, RecurrentLayersRoundTrip) {
  // lstm, gru (both reset modes, one reversed inside Bidirectional) and simple_rnn as ONNX's LSTM, GRU
  // and RNN nodes; imported back, the Session computes what eager does.
  Generator gen(8);
  auto model = nn::Sequential({nn::LSTM(nn::LSTMOptions(6).return_sequences(true).name("lstm1")),
                               nn::GRU(nn::GRUOptions(5).return_sequences(true).reset_after(false)),
                               nn::SimpleRNN(nn::SimpleRNNOptions(4).activation("relu").return_sequences(true)),
                               nn::Bidirectional(nn::GRU(nn::GRUOptions(3).recurrent_activation("hard_sigmoid")))});
  const Exported e = export_for(*model, gen, {5, 3}, 2, "recurrent.onnx");
  EXPECT_EQ(count_ops(e.proto, "LSTM"), 1);
  EXPECT_EQ(count_ops(e.proto, "GRU"), 3);
  EXPECT_EQ(count_ops(e.proto, "RNN"), 1);
  expect_import_computes(e.path, e.x, e.expected);
}

TEST(OnnxExport, RecurrentLengthsAndInitialStateAreGraphInputs) {
  // sequence_lens and initial_h/_c from graph inputs (an unknown batch), through export and import.
  Generator gen(9);
  const Tensor w = random_normal({3, 16}, 0.0f, 0.5f, &gen), u = random_normal({4, 16}, 0.0f, 0.5f, &gen),
               b = random_normal({16}, 0.0f, 0.2f, &gen);
  graph::Graph g;
  Tensor x = g.placeholder("x", {-1, 5, 3}), len = g.placeholder("lengths", {-1}, DType::Int64),
         h0 = g.placeholder("h0", {-1, 4}), c0 = g.placeholder("c0", {-1, 4});
  RnnOpOptions reverse;
  reverse.reverse = true;
  Tensor y = lstm(x, g.constant(w), g.constant(u), g.constant(b), h0, c0, len, reverse).y;
  const auto path = temp_file("lstm_inputs.onnx");
  sx::export_model(g, {x, len, h0, c0}, {y}, path.string());
  const Tensor xv = random_normal({2, 5, 3}, 0.0f, 1.0f, &gen), hv = random_normal({2, 4}, 0.0f, 1.0f, &gen),
               cv = random_normal({2, 4}, 0.0f, 1.0f, &gen), lv = synapse::testing::lens({5, 3});
  const Tensor expected = lstm(xv, w, u, b, hv, cv, lv, reverse).y;
  sx::Model m = sx::import_model(path.string());
  graph::Session s(*m.graph);
  const Tensor got = s.run(m.outputs[0], {{m.inputs[0], xv}, {m.inputs[1], lv}, {m.inputs[2], hv}, {m.inputs[3], cv}});
  EXPECT_LT(synapse::testing::max_abs_diff(got, expected), 1e-5);
}

// ---- LSTM with peepholes (input P) ----
namespace {

// ONNX's LSTM equations written out with loops, on ONNX's layouts: X [T,B,I], W [D,4H,I] and
// R [D,4H,H] with gates i, o, f, c, B [D,8H], P [D,3H] (i, o, f), lens [B], h0/c0 [D,B,H]; direction
// d = 1 runs backwards. Returns Y [T,D,B,H] (0 at padded steps), Y_h and Y_c [D,B,H].
struct LstmRef {
  std::vector<float> y, yh, yc;
};
LstmRef lstm_reference(const std::vector<float>& X, const std::vector<float>& W, const std::vector<float>& R,
                       const std::vector<float>& Bv, const std::vector<float>& P, const std::vector<std::int64_t>& lens,
                       const std::vector<float>& h0, const std::vector<float>& c0, int T, int B, int I, int H, int D) {
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  LstmRef out{std::vector<float>(static_cast<std::size_t>(T * D * B * H), 0.0f),
              std::vector<float>(static_cast<std::size_t>(D * B * H)), std::vector<float>(static_cast<std::size_t>(D * B * H))};
  for (int d = 0; d < D; ++d)
    for (int b = 0; b < B; ++b) {
      std::vector<double> h(static_cast<std::size_t>(H)), c(static_cast<std::size_t>(H));
      for (int j = 0; j < H; ++j) {
        h[static_cast<std::size_t>(j)] = h0[static_cast<std::size_t>((d * B + b) * H + j)];
        c[static_cast<std::size_t>(j)] = c0[static_cast<std::size_t>((d * B + b) * H + j)];
      }
      const int len = static_cast<int>(lens[static_cast<std::size_t>(b)]);
      for (int s = 0; s < len; ++s) {
        const int t = d == 0 ? s : len - 1 - s;
        // pre[g][j] for the gates g = i, o, f, c
        std::vector<double> pre(static_cast<std::size_t>(4 * H));
        for (int g = 0; g < 4 * H; ++g) {
          double v = Bv[static_cast<std::size_t>(d * 8 * H + g)] + Bv[static_cast<std::size_t>(d * 8 * H + 4 * H + g)];
          for (int k = 0; k < I; ++k)
            v += X[static_cast<std::size_t>((t * B + b) * I + k)] * W[static_cast<std::size_t>((d * 4 * H + g) * I + k)];
          for (int k = 0; k < H; ++k) v += h[static_cast<std::size_t>(k)] * R[static_cast<std::size_t>((d * 4 * H + g) * H + k)];
          pre[static_cast<std::size_t>(g)] = v;
        }
        for (int j = 0; j < H; ++j) {
          auto p = [&](int which) { return static_cast<double>(P[static_cast<std::size_t>(d * 3 * H + which * H + j)]); };
          const auto J = static_cast<std::size_t>(j), HH = static_cast<std::size_t>(H);
          const double i = sig(pre[J] + p(0) * c[J]), f = sig(pre[2 * HH + J] + p(2) * c[J]);
          const double cn = f * c[J] + i * std::tanh(pre[3 * HH + J]);
          const double o = sig(pre[HH + J] + p(1) * cn);
          c[J] = cn;
          h[J] = o * std::tanh(cn);
          out.y[static_cast<std::size_t>(((t * D + d) * B + b) * H + j)] = static_cast<float>(h[J]);
        }
      }
      for (int j = 0; j < H; ++j) {
        out.yh[static_cast<std::size_t>((d * B + b) * H + j)] = static_cast<float>(h[static_cast<std::size_t>(j)]);
        out.yc[static_cast<std::size_t>((d * B + b) * H + j)] = static_cast<float>(c[static_cast<std::size_t>(j)]);
      }
    }
  return out;
}

// An LSTM node whose inputs are all graph inputs; `with_p` adds P.
std::filesystem::path lstm_model(int T, int B, int I, int H, const std::string& direction, bool with_p,
                                 const std::string& file) {
  const int D = direction == "bidirectional" ? 2 : 1;
  ::onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(14);
  auto* g = m.mutable_graph();
  auto input = [&](const std::string& name, std::vector<int> dims, int type = ::onnx::TensorProto::FLOAT) {
    auto* in = g->add_input();
    in->set_name(name);
    in->mutable_type()->mutable_tensor_type()->set_elem_type(type);
    for (int v : dims) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(v);
  };
  input("X", {T, B, I});
  input("W", {D, 4 * H, I});
  input("R", {D, 4 * H, H});
  input("B", {D, 8 * H});
  input("sequence_lens", {B}, ::onnx::TensorProto::INT32);
  input("initial_h", {D, B, H});
  input("initial_c", {D, B, H});
  if (with_p) input("P", {D, 3 * H});
  auto* n = g->add_node();
  n->set_op_type("LSTM");
  n->set_name("peepholes");
  for (const char* in : {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c"}) n->add_input(in);
  if (with_p) n->add_input("P");
  for (const char* out : {"Y", "Y_h", "Y_c"}) {
    n->add_output(out);
    g->add_output()->set_name(out);
  }
  auto* hs = n->add_attribute();
  hs->set_name("hidden_size");
  hs->set_type(::onnx::AttributeProto::INT);
  hs->set_i(H);
  auto* dir = n->add_attribute();
  dir->set_name("direction");
  dir->set_type(::onnx::AttributeProto::STRING);
  dir->set_s(direction);
  const auto path = temp_file(file);
  std::ofstream out(path, std::ios::binary);
  EXPECT_TRUE(m.SerializeToOstream(&out));
  return path;
}

}  // namespace

TEST(OnnxImport, LstmWithPeepholesMatchesOnnxEquations) {
  // Bidirectional, sequences of 4 and 2 steps in a batch of T = 4, random initial states: Y, Y_h and
  // Y_c of the imported (unrolled) graph against the equations written out with loops.
  const int T = 4, B = 2, I = 3, H = 5, D = 2;
  Generator gen(17);
  auto rnd = [&](std::vector<std::int64_t> shape, float sd) { return random_normal(shape, 0.0f, sd, &gen); };
  const Tensor X = rnd({T, B, I}, 1.0f), W = rnd({D, 4 * H, I}, 0.5f), R = rnd({D, 4 * H, H}, 0.5f),
               Bt = rnd({D, 8 * H}, 0.3f), P = rnd({D, 3 * H}, 0.8f), h0 = rnd({D, B, H}, 0.5f), c0 = rnd({D, B, H}, 0.5f);
  const std::vector<std::int64_t> lens{4, 2};
  const Tensor lens32 = from_vector(std::vector<std::int32_t>{4, 2});
  const LstmRef want = lstm_reference(X.to_vector<float>(), W.to_vector<float>(), R.to_vector<float>(),
                                      Bt.to_vector<float>(), P.to_vector<float>(), lens, h0.to_vector<float>(),
                                      c0.to_vector<float>(), T, B, I, H, D);
  sx::Model m = sx::import_model(lstm_model(T, B, I, H, "bidirectional", true, "lstm_peepholes.onnx").string());
  graph::Session s(*m.graph);
  graph::Feeds feeds;
  const std::vector<Tensor> values{X, W, R, Bt, lens32, h0, c0, P};
  for (std::size_t i = 0; i < values.size(); ++i) feeds.emplace_back(m.inputs[i], values[i]);
  const std::vector<Tensor> got = s.run(m.outputs, feeds);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].shape(), (Shape{T, D, B, H}));
  EXPECT_EQ(got[1].shape(), (Shape{D, B, H}));
  const std::vector<const std::vector<float>*> expected{&want.y, &want.yh, &want.yc};
  for (std::size_t k = 0; k < 3; ++k) {
    const auto g = got[k].to_vector<float>();
    ASSERT_EQ(g.size(), expected[k]->size());
    for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], (*expected[k])[i], 2e-5f) << "output " << k << " at " << i;
  }
  // The padded steps of the short sequence are 0 in Y (t = 2, 3 of batch row 1, both directions).
  for (int t = 2; t < T; ++t)
    for (int d = 0; d < D; ++d)
      for (int j = 0; j < H; ++j) EXPECT_EQ(got[0].at<float>({t, d, 1, j}), 0.0f);
}

TEST(OnnxImport, LstmWithZeroPeepholesEqualsTheFusedOp) {
  // P = 0 goes through the unrolled graph, no P through the fused lstm op: the same numbers, reversed
  // and with padding.
  const int T = 5, B = 3, I = 2, H = 4;
  Generator gen(18);
  auto rnd = [&](std::vector<std::int64_t> shape, float sd) { return random_normal(shape, 0.0f, sd, &gen); };
  const std::vector<Tensor> values{rnd({T, B, I}, 1.0f), rnd({1, 4 * H, I}, 0.5f), rnd({1, 4 * H, H}, 0.5f),
                                   rnd({1, 8 * H}, 0.3f), from_vector(std::vector<std::int32_t>{5, 1, 3}),
                                   rnd({1, B, H}, 0.5f), rnd({1, B, H}, 0.5f), zeros({1, 3 * H})};
  auto run = [&](bool with_p) {
    sx::Model m = sx::import_model(lstm_model(T, B, I, H, "reverse", with_p, with_p ? "zero_p.onnx" : "no_p.onnx").string());
    graph::Session s(*m.graph);
    graph::Feeds feeds;
    for (std::size_t i = 0; i < m.inputs.size(); ++i) feeds.emplace_back(m.inputs[i], values[i]);
    return s.run(m.outputs, feeds);
  };
  const std::vector<Tensor> unrolled = run(true), fused = run(false);
  for (std::size_t k = 0; k < 3; ++k) EXPECT_LT(synapse::testing::max_abs_diff(unrolled[k], fused[k]), 1e-5) << k;
}

TEST(OnnxImport, LstmPeepholeShapeErrorNamesTheNode) {
  const auto path = lstm_model(2, 1, 2, 3, "forward", true, "bad_p.onnx");
  sx::Model m = sx::import_model(path.string());  // shapes are checked when P's shape is known: here it is
  (void)m;
  ::onnx::ModelProto proto = read_model(path);
  auto* p = proto.mutable_graph()->mutable_input(7)->mutable_type()->mutable_tensor_type()->mutable_shape();
  p->mutable_dim(1)->set_dim_value(4);  // [1, 4] instead of [1, 9]
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(proto.SerializeToOstream(&out));
  }
  const std::string e = error_of([&] { sx::import_model(path.string()); });
  EXPECT_NE(e.find("LSTM node 'peepholes'"), std::string::npos) << e;
  EXPECT_NE(e.find("P (peepholes) must have shape [1, 9]"), std::string::npos) << e;
  EXPECT_NE(e.find("got [1,4]"), std::string::npos) << e;
}

TEST(OnnxImport, LstmWithPeepholesGradientsMatchFiniteDifferences) {
  // The unrolled graph is differentiable, so an imported peephole LSTM fine-tunes: the symbolic
  // gradients of a weighted sum of Y, Y_h and Y_c with respect to P, W and initial_c against central
  // differences (bidirectional, one sequence padded).
  const int T = 3, B = 2, I = 2, H = 3, D = 2;
  Generator gen(19);
  auto rnd = [&](std::vector<std::int64_t> shape, float sd) { return random_normal(shape, 0.0f, sd, &gen); };
  std::vector<Tensor> values{rnd({T, B, I}, 1.0f), rnd({D, 4 * H, I}, 0.5f), rnd({D, 4 * H, H}, 0.5f),
                             rnd({D, 8 * H}, 0.3f), from_vector(std::vector<std::int32_t>{3, 2}),
                             rnd({D, B, H}, 0.5f), rnd({D, B, H}, 0.5f), rnd({D, 3 * H}, 0.8f)};
  sx::Model m = sx::import_model(lstm_model(T, B, I, H, "bidirectional", true, "lstm_peepholes_grad.onnx").string());
  graph::Graph& g = *m.graph;
  const Tensor loss = synapse::sum(m.outputs[0] * g.constant(rnd({T, D, B, H}, 1.0f))) +
                      synapse::sum(m.outputs[1] * g.constant(rnd({D, B, H}, 1.0f))) +
                      synapse::sum(m.outputs[2] * g.constant(rnd({D, B, H}, 1.0f)));
  const std::vector<std::size_t> wrt{7, 1, 6};  // P, W, initial_c
  const std::vector<Tensor> grads = graph::gradients(loss, {m.inputs[7], m.inputs[1], m.inputs[6]});
  graph::Session s(g);
  auto feeds = [&](const std::vector<Tensor>& v) {
    graph::Feeds f;
    for (std::size_t i = 0; i < v.size(); ++i) f.emplace_back(m.inputs[i], v[i]);
    return f;
  };
  const std::vector<Tensor> analytic = s.run(grads, feeds(values));
  const float eps = 1e-2f;
  for (std::size_t k = 0; k < wrt.size(); ++k) {
    const auto a = analytic[k].to_vector<float>();
    std::vector<float> base = values[wrt[k]].to_vector<float>();
    ASSERT_EQ(a.size(), base.size());
    double norm = 0;
    for (float v : a) norm += std::abs(v);
    EXPECT_GT(norm, 0.1) << "input " << wrt[k] << ": the loss must depend on it";
    for (std::size_t e = 0; e < base.size(); ++e) {
      auto at = [&](float delta) {
        std::vector<Tensor> v = values;
        std::vector<float> moved = base;
        moved[e] += delta;
        v[wrt[k]] = from_vector(moved, values[wrt[k]].shape());
        return static_cast<double>(s.run(loss, feeds(v)).item<float>());
      };
      const double numeric = (at(eps) - at(-eps)) / (2.0 * eps);
      EXPECT_NEAR(a[e], numeric, 3e-3 * std::max(1.0, std::abs(numeric))) << "input " << wrt[k] << " element " << e;
    }
  }
}
