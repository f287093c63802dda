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
