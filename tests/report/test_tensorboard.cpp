// TensorBoard event files written by Synapse, decoded with the real protobuf library and TensorFlow's
// message definitions (tensorboard.proto).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "synapse/synapse.h"
#include "synapse/tensorboard.h"
#include "tb_reader.h"
#include "tensorboard.pb.h"

using namespace synapse;
namespace fs = std::filesystem;

namespace {

// The scratch folders of both test files, removed when the test program ends.
struct RemoveScratch {
  ~RemoveScratch() {
    std::error_code ec;
    fs::remove_all(fs::temp_directory_path() / ("synapse_test_report_" + std::to_string(getpid())), ec);
  }
} remove_scratch;

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("synapse_test_report_" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<tensorflow::Event> read_events(const std::string& path) {
  std::vector<tensorflow::Event> out;
  for (const std::string& r : tbtest::read_records(path).data) {
    tensorflow::Event e;
    EXPECT_TRUE(e.ParseFromString(r)) << path;
    out.push_back(e);
  }
  return out;
}

std::string only_event_file(const fs::path& dir) {
  const auto files = tbtest::event_files(dir.string());
  EXPECT_EQ(files.size(), 1u) << dir;
  return files.empty() ? std::string() : files[0];
}

}  // namespace

TEST(TensorBoard, Crc32cKnownAnswers) {
  EXPECT_EQ(tensorboard::crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(tensorboard::crc32c("", 0), 0u);
  // 32 zero bytes: the iSCSI test vector of RFC 3720.
  const std::string zeros(32, '\0');
  EXPECT_EQ(tensorboard::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(tbtest::crc32c_bitwise("123456789", 9), 0xE3069283u);
  // TensorFlow's mask: rotate right by 15, add 0xa282ead8.
  EXPECT_EQ(tensorboard::mask_crc(0), 0xa282ead8u);
  EXPECT_EQ(tensorboard::mask_crc(0x00008000u), 0xa282ead9u);
}

TEST(TensorBoard, RecordFraming) {
  const std::string r = tensorboard::tfrecord("abc");
  ASSERT_EQ(r.size(), 8u + 4 + 3 + 4);
  std::uint64_t len;
  std::memcpy(&len, r.data(), 8);
  EXPECT_EQ(len, 3u);
  std::uint32_t c1, c2;
  std::memcpy(&c1, r.data() + 8, 4);
  std::memcpy(&c2, r.data() + 15, 4);
  EXPECT_EQ(c1, tbtest::masked(tbtest::crc32c_bitwise(r.data(), 8)));
  EXPECT_EQ(c2, tbtest::masked(tbtest::crc32c_bitwise("abc", 3)));
  EXPECT_EQ(r.substr(12, 3), "abc");
}

TEST(TensorBoard, HistogramBuckets) {
  const std::vector<float> v{0.0f, 1.0f, 2.0f, 3.0f, 3.0f, -0.0f};
  const auto h = tensorboard::make_histogram(v, 3);
  EXPECT_DOUBLE_EQ(h.min, 0.0);
  EXPECT_DOUBLE_EQ(h.max, 3.0);
  EXPECT_DOUBLE_EQ(h.num, 6.0);
  EXPECT_DOUBLE_EQ(h.sum, 9.0);
  EXPECT_DOUBLE_EQ(h.sum_squares, 23.0);
  EXPECT_EQ(h.bucket_limit, (std::vector<double>{1.0, 2.0, 3.0}));
  EXPECT_EQ(h.bucket, (std::vector<double>{2.0, 1.0, 3.0}));
  const auto same = tensorboard::make_histogram(std::vector<float>{5.0f, 5.0f}, 10);
  EXPECT_EQ(same.bucket, std::vector<double>{2.0});
  EXPECT_EQ(same.bucket_limit, std::vector<double>{5.0});
}

TEST(TensorBoard, ScalarsHistogramsAndGraphDecode) {
  const fs::path dir = fresh_dir("writer");
  manual_seed(3);
  auto model =
      nn::Sequential({nn::Flatten(), nn::Dense(nn::DenseOptions(16).name("hidden")), nn::ReLU(), nn::Dense(10)});
  model->build_for({1, 28, 28, 1});
  std::string path;
  {
    tensorboard::SummaryWriter w(dir.string());
    path = w.path();
    EXPECT_TRUE(fs::path(path).filename().string().starts_with("events.out.tfevents."));
    w.add_scalar("epoch_loss", 0.5, 0, 1000.0);
    w.add_scalar("epoch_loss", 0.25, 1, 1001.0);
    w.add_scalar("epoch_accuracy", 0.0, 2, 1002.0);  // zero is still written (a oneof member)
    w.add_histogram("values", tensor({1.0f, 2.0f, 2.0f, 4.0f}), 7, 3);
    w.add_graph(tensorboard::graph_of(*model));
  }  // the destructor flushes and closes
  const auto events = read_events(path);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GT(events[0].wall_time(), 1.6e9);  // now, in seconds since 1970

  const float expected[] = {0.5f, 0.25f, 0.0f};
  const char* tags[] = {"epoch_loss", "epoch_loss", "epoch_accuracy"};
  for (int i = 0; i < 3; ++i) {
    const auto& e = events[static_cast<std::size_t>(i + 1)];
    ASSERT_TRUE(e.has_summary());
    EXPECT_EQ(e.step(), i);
    EXPECT_DOUBLE_EQ(e.wall_time(), 1000.0 + i);
    ASSERT_EQ(e.summary().value_size(), 1);
    EXPECT_EQ(e.summary().value(0).tag(), tags[i]);
    ASSERT_EQ(e.summary().value(0).value_case(), tensorflow::Summary::Value::kSimpleValue);
    EXPECT_EQ(e.summary().value(0).simple_value(), expected[i]);
  }

  const auto& hv = events[4].summary().value(0);
  EXPECT_EQ(events[4].step(), 7);
  EXPECT_EQ(hv.tag(), "values");
  ASSERT_TRUE(hv.has_histo());
  EXPECT_DOUBLE_EQ(hv.histo().min(), 1.0);
  EXPECT_DOUBLE_EQ(hv.histo().max(), 4.0);
  EXPECT_DOUBLE_EQ(hv.histo().num(), 4.0);
  EXPECT_DOUBLE_EQ(hv.histo().sum(), 9.0);
  EXPECT_DOUBLE_EQ(hv.histo().sum_squares(), 25.0);
  ASSERT_EQ(hv.histo().bucket_limit_size(), 3);
  EXPECT_DOUBLE_EQ(hv.histo().bucket_limit(0), 2.0);
  EXPECT_DOUBLE_EQ(hv.histo().bucket_limit(2), 4.0);
  ASSERT_EQ(hv.histo().bucket_size(), 3);
  EXPECT_DOUBLE_EQ(hv.histo().bucket(0), 1.0);  // 1
  EXPECT_DOUBLE_EQ(hv.histo().bucket(1), 2.0);  // 2, 2
  EXPECT_DOUBLE_EQ(hv.histo().bucket(2), 1.0);  // 4

  ASSERT_FALSE(events[5].graph_def().empty());
  tensorflow::GraphDef g;
  ASSERT_TRUE(g.ParseFromString(events[5].graph_def()));
  ASSERT_EQ(g.node_size(), 5);
  EXPECT_EQ(g.node(0).name(), "input");
  EXPECT_EQ(g.node(0).op(), "Placeholder");
  const auto& in_shape = g.node(0).attr().at("shape").shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).size(), -1);
  EXPECT_EQ(in_shape.dim(1).size(), 28);
  const std::vector<std::pair<std::string, std::string>> nodes{
      {"flatten", "Flatten"}, {"hidden", "Dense"}, {"re_lu", "ReLU"}, {"dense", "Dense"}};
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = g.node(static_cast<int>(i + 1));
    EXPECT_EQ(n.name(), nodes[i].first);
    EXPECT_EQ(n.op(), nodes[i].second);
    ASSERT_EQ(n.input_size(), 1);
    EXPECT_EQ(n.input(0), g.node(static_cast<int>(i)).name());
  }
  const auto& hidden = g.node(2);
  const auto& out_shapes = hidden.attr().at("_output_shapes").list();
  ASSERT_EQ(out_shapes.shape_size(), 1);
  ASSERT_EQ(out_shapes.shape(0).dim_size(), 2);
  EXPECT_EQ(out_shapes.shape(0).dim(0).size(), -1);
  EXPECT_EQ(out_shapes.shape(0).dim(1).size(), 16);
  const auto& kernel = hidden.attr().at("kernel").shape();
  ASSERT_EQ(kernel.dim_size(), 2);
  EXPECT_EQ(kernel.dim(0).size(), 784);
  EXPECT_EQ(kernel.dim(1).size(), 16);
  EXPECT_EQ(g.node(4).attr().at("bias").shape().dim(0).size(), 10);
}

TEST(TensorBoard, TracedGraphDecodes) {
  manual_seed(3);
  auto model =
      nn::Sequential({nn::Flatten(), nn::Dense(nn::DenseOptions(16).name("hidden")), nn::Dropout(0.5f), nn::Dense(10)});
  model->build_for({1, 28, 28, 1});
  ASSERT_TRUE(model->is_training());
  tensorflow::GraphDef g;
  ASSERT_TRUE(g.ParseFromString(tensorboard::serialize(tensorboard::traced_graph_of(*model))));
  EXPECT_TRUE(model->is_training());  // traced in inference mode, the mode restored afterwards
  std::map<std::string, const tensorflow::NodeDef*> nodes;
  for (const auto& n : g.node()) nodes[n.name()] = &n;
  auto shape_of = [&](const std::string& name) {
    std::vector<std::int64_t> dims;
    for (const auto& d : nodes.at(name)->attr().at("_output_shapes").list().shape(0).dim()) dims.push_back(d.size());
    return dims;
  };
  ASSERT_TRUE(nodes.count("input"));
  EXPECT_EQ(nodes["input"]->op(), "Placeholder");
  ASSERT_TRUE(nodes.count("hidden/kernel"));
  EXPECT_EQ(nodes["hidden/kernel"]->op(), "Variable");
  EXPECT_EQ(shape_of("hidden/kernel"), (std::vector<std::int64_t>{784, 16}));
  // A dense layer is one op: the product, the bias (and relu when asked).
  ASSERT_TRUE(nodes.count("hidden/dense"));
  EXPECT_EQ(nodes["hidden/dense"]->op(), "dense");
  ASSERT_EQ(nodes["hidden/dense"]->input_size(), 3);
  EXPECT_EQ(nodes["hidden/dense"]->input(0), "flatten/reshape");
  EXPECT_EQ(nodes["hidden/dense"]->input(1), "hidden/kernel");
  EXPECT_EQ(nodes["hidden/dense"]->input(2), "hidden/bias");
  EXPECT_EQ(shape_of("hidden/dense"), (std::vector<std::int64_t>{-1, 16}));
  // Dropout is the identity in inference mode: no node under its scope; the last layer reads hidden's output.
  for (const auto& [name, n] : nodes) EXPECT_FALSE(name.starts_with("dropout/")) << name;
  ASSERT_TRUE(nodes.count("dense/dense"));
  EXPECT_EQ(nodes["dense/dense"]->input(0), "hidden/dense");
  EXPECT_EQ(shape_of("dense/dense"), (std::vector<std::int64_t>{-1, 10}));
}

TEST(TensorBoard, FlushedRecordsSurviveATruncatedTail) {
  const fs::path dir = fresh_dir("crash");
  tensorboard::SummaryWriter w(dir.string());
  w.add_scalar("a", 1.0, 1);
  w.add_scalar("a", 2.0, 2);
  w.flush();
  // The writer is still open (as in a running or crashed process): what was flushed reads back.
  auto before = tbtest::read_records(w.path());
  ASSERT_EQ(before.data.size(), 3u);
  EXPECT_EQ(before.trailing_bytes, 0u);
  // A record cut short by a crash leaves the earlier ones readable.
  {
    std::ofstream f(w.path(), std::ios::binary | std::ios::app);
    const std::string r = tensorboard::tfrecord(std::string(40, 'x'));
    f.write(r.data(), 30);
  }
  const auto after = tbtest::read_records(w.path());
  ASSERT_EQ(after.data.size(), 3u);
  EXPECT_EQ(after.trailing_bytes, 30u);
  tensorflow::Event e;
  ASSERT_TRUE(e.ParseFromString(after.data[2]));
  EXPECT_EQ(e.summary().value(0).simple_value(), 2.0f);
}

TEST(TensorBoard, TwoWritersInOneFolderGetTwoFiles) {
  const fs::path dir = fresh_dir("two");
  tensorboard::SummaryWriter a(dir.string()), b(dir.string());
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(tbtest::event_files(dir.string()).size(), 2u);
}

TEST(TensorBoard, CallbackWritesTrainAndValidationRuns) {
  const fs::path dir = fresh_dir("fit");
  manual_seed(1);
  // y = class of the larger of two features: learnable in a few steps.
  Tensor x = random_normal({64, 2});
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < 64; ++i) labels.push_back(x.data<float>()[2 * i] > x.data<float>()[2 * i + 1] ? 1 : 0);
  Tensor y = from_vector(labels);
  auto model = nn::Sequential({nn::Dense(nn::DenseOptions(2).name("out"))});
  model->build_for({1, 2});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.5});
  train::FitOptions fo;
  fo.epochs = 2;
  fo.batch_size = 16;
  fo.verbose = 0;
  fo.validation = std::make_pair(x, y);
  fo.callbacks = {train::callbacks::tensorboard(dir.string(), 2, true, true, {-1, 2})};
  const auto h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);
  ASSERT_EQ(h.epochs.size(), 2u);

  const auto train_events = read_events(only_event_file(dir / "train"));
  std::map<std::string, std::vector<std::pair<std::int64_t, float>>> scalars;
  std::map<std::string, int> histos;
  int graphs = 0;
  for (const auto& e : train_events) {
    if (!e.graph_def().empty()) ++graphs;
    for (const auto& v : e.summary().value()) {
      if (v.has_histo())
        ++histos[v.tag()];
      else
        scalars[v.tag()].emplace_back(e.step(), v.simple_value());
    }
  }
  EXPECT_EQ(train_events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(graphs, 1);
  EXPECT_EQ(histos["out/kernel"], 2);
  EXPECT_EQ(histos["out/bias"], 2);
  ASSERT_EQ(scalars["epoch_loss"].size(), 2u);
  EXPECT_EQ(scalars["epoch_loss"][0].first, 0);
  EXPECT_EQ(scalars["epoch_loss"][1].first, 1);
  EXPECT_FLOAT_EQ(scalars["epoch_loss"][1].second, static_cast<float>(h.epochs[1].at("loss")));
  EXPECT_FLOAT_EQ(scalars["epoch_accuracy"][0].second, static_cast<float>(h.epochs[0].at("accuracy")));
  EXPECT_FLOAT_EQ(scalars["epoch_learning_rate"][0].second, 0.5f);
  // 4 steps per epoch, batch scalars every 2 steps: global steps 2, 4, 6, 8.
  ASSERT_EQ(scalars["batch_loss"].size(), 4u);
  EXPECT_EQ(scalars["batch_loss"][3].first, 8);

  const auto val_events = read_events(only_event_file(dir / "validation"));
  std::map<std::string, std::vector<float>> val;
  for (const auto& e : val_events)
    for (const auto& v : e.summary().value()) val[v.tag()].push_back(v.simple_value());
  ASSERT_EQ(val["epoch_loss"].size(), 2u);
  EXPECT_FLOAT_EQ(val["epoch_loss"][1], static_cast<float>(h.epochs[1].at("val_loss")));
  EXPECT_FLOAT_EQ(val["epoch_accuracy"][0], static_cast<float>(h.epochs[0].at("val_accuracy")));
  EXPECT_EQ(val.count("epoch_learning_rate"), 0u);
}
