// TensorBoard event files: scalars, histograms and a model graph, readable by TensorBoard and by any
// TFRecord/protobuf reader.
//
//   tensorboard::SummaryWriter w("runs/cnn/train");      // runs/cnn/train/events.out.tfevents.<secs>.<host>
//   w.add_scalar("epoch_loss", 0.31, /*step=*/0);
//   w.add_histogram("conv1/kernel", model->state_dict().at("conv1/kernel"), 0);
//   w.add_graph(tensorboard::graph_of(*model));
//   w.flush();
//
// File format. An event file is a sequence of TFRecords, each
//   u64 length (little-endian) | u32 masked CRC32C of the 8 length bytes | data | u32 masked CRC32C of data
// where mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (TensorFlow's record format). Each record's data
// is a serialized tensorflow.Event protocol buffer (tensorflow/core/util/event.proto); the first one
// carries file_version "brain.Event:2". Records are appended and never rewritten, so a crash leaves every
// record written before it readable (readers stop at a truncated last record).
//
// The protocol buffers are encoded by a small wire-format writer inside Synapse (no libprotobuf
// dependency); tests decode the files with the real protobuf library and TensorFlow's message
// definitions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "synapse/shape.h"
#include "synapse/tensor.h"

namespace synapse::nn {
class Module;
}

namespace synapse::tensorboard {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecords use: crc32c("123456789") = 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t n);
// TensorFlow's masking of a CRC stored next to the data it covers.
inline std::uint32_t mask_crc(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
std::string tfrecord(const std::string& data);

// ---- a GraphDef (tensorflow/core/framework/graph.proto), the subset TensorBoard's graph view uses ----
// A list of ints (list(int) in TensorFlow's AttrValue), told apart from a shape.
struct IntList {
  std::vector<std::int64_t> values;
};
// An attr value: a string, an int, a float, a bool, a shape, a list of shapes or a list of ints.
using AttrValue = std::variant<std::string, std::int64_t, float, bool, Shape, std::vector<Shape>, IntList>;
struct NodeDef {
  std::string name;                        // "conv1"; '/' builds TensorBoard's name scopes
  std::string op;                          // "Conv2D"
  std::vector<std::string> inputs;         // names of the nodes feeding this one
  std::map<std::string, AttrValue> attrs;  // "_output_shapes" (list of shapes) is drawn on the edges
};
struct GraphDef {
  std::vector<NodeDef> nodes;
};
// Serialized tensorflow.GraphDef.
std::string serialize(const GraphDef& g);

// A layer-level graph of a built model: an "input" Placeholder of `input_shape` (batch -1), then one
// node per leaf layer in creation order, op = the layer's type ("Dense", "Conv2D"), each fed by the one
// before (the order in which Sequential runs them), with the layer's output shape as "_output_shapes"
// and each parameter's shape as an attr ("kernel", "bias"). Nested modules become name scopes
// ("block/conv"). A model whose forward is not a chain is drawn as the chain of its layers.
GraphDef graph_of(const nn::Module& model, const Shape& input_shape = {-1, 28, 28, 1});
// The same chain of leaf layers traced op by op in graph mode (synapse/graph.h), in inference mode:
// every op a node (op = the registry's name, "conv2d", "matmul"), grouped by layer in name scopes
// ("conv1/conv2d"), parameters as Variable nodes, the op's attributes and "_output_shapes" as attrs.
// Falls back to graph_of when the model cannot be traced.
GraphDef traced_graph_of(nn::Module& model, const Shape& input_shape = {-1, 28, 28, 1});

// Bucketed values of a histogram summary (tensorflow.HistogramProto).
struct Histogram {
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit;  // right edge of each bucket
  std::vector<double> bucket;        // count in each bucket
};
// `bins` equal-width buckets over [min, max] (one bucket when all values are equal).
Histogram make_histogram(std::span<const float> values, int bins = 30);

// Writes one event file in `logdir` (created when missing): events.out.tfevents.<secs>.<host>, with a
// numeric suffix when that name is taken. Not thread-safe.
class SummaryWriter {
 public:
  explicit SummaryWriter(const std::string& logdir);
  ~SummaryWriter();
  SummaryWriter(const SummaryWriter&) = delete;
  SummaryWriter& operator=(const SummaryWriter&) = delete;

  // wall_time < 0: now (seconds since the epoch).
  void add_scalar(const std::string& tag, double value, std::int64_t step, double wall_time = -1);
  void add_histogram(const std::string& tag, const Histogram& h, std::int64_t step, double wall_time = -1);
  void add_histogram(const std::string& tag, const Tensor& values, std::int64_t step, int bins = 30);
  void add_graph(const GraphDef& graph, double wall_time = -1);
  // Pushes buffered records to the file and the file to the disk (fsync).
  void flush();
  void close();
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace synapse::tensorboard
