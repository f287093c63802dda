// TensorBoard event files: TFRecord framing, CRC32C and the Event / Summary / GraphDef messages.
// Field numbers are those of TensorFlow's event.proto, summary.proto, graph.proto, node_def.proto,
// attr_value.proto and tensor_shape.proto.
#include "synapse/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/check.h"
#include "report/proto.h"
#include "synapse/autograd.h"
#include "synapse/graph.h"
#include "synapse/nn.h"

namespace synapse::tensorboard {

using detail::ProtoWriter;

namespace {

// Field numbers, named as in TensorFlow's .proto files.
namespace event {
constexpr int wall_time = 1, step = 2, file_version = 3, graph_def = 4, summary = 5;
}
namespace summary {
constexpr int value = 1;                             // Summary
constexpr int tag = 1, simple_value = 2, histo = 5;  // Summary.Value
}  // namespace summary
namespace histo {
constexpr int min = 1, max = 2, num = 3, sum = 4, sum_squares = 5, bucket_limit = 6, bucket = 7;
}
namespace gdef {
constexpr int node = 1;                                         // GraphDef
constexpr int name = 1, op = 2, input = 3, attr = 5;            // NodeDef
constexpr int map_key = 1, map_value = 2;                       // map<string, AttrValue> entries
constexpr int list = 1, s = 2, i = 3, f = 4, b = 5, shape = 7;  // AttrValue
constexpr int list_i = 3, list_shape = 7;                       // AttrValue.ListValue
constexpr int dim = 2, dim_size = 1;                            // TensorShapeProto, .Dim
}  // namespace gdef

// Table-driven CRC-32C over the reflected Castagnoli polynomial.
constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ProtoWriter shape_proto(const Shape& s) {
  ProtoWriter p;
  for (std::int64_t d : s) p.message_field(gdef::dim, ProtoWriter().varint_field(gdef::dim_size, d));
  return p;
}

ProtoWriter attr_proto(const AttrValue& v) {
  ProtoWriter p;
  if (const auto* s = std::get_if<std::string>(&v))
    p.bytes_field(gdef::s, *s);
  else if (const auto* i = std::get_if<std::int64_t>(&v))
    p.varint_field(gdef::i, *i);
  else if (const auto* f = std::get_if<float>(&v))
    p.float_field(gdef::f, *f);
  else if (const auto* b = std::get_if<bool>(&v))
    p.varint_field(gdef::b, *b ? 1 : 0);
  else if (const auto* sh = std::get_if<Shape>(&v))
    p.message_field(gdef::shape, shape_proto(*sh));
  else if (const auto* il = std::get_if<IntList>(&v)) {
    ProtoWriter list;
    list.packed_varints(gdef::list_i, il->values);
    p.message_field(gdef::list, list);
  } else {
    ProtoWriter list;
    for (const Shape& one : std::get<std::vector<Shape>>(v)) list.message_field(gdef::list_shape, shape_proto(one));
    p.message_field(gdef::list, list);
  }
  return p;
}

ProtoWriter event_header(double wall_time, std::int64_t step) {
  ProtoWriter e;
  e.double_field(event::wall_time, wall_time < 0 ? now_seconds() : wall_time);
  e.varint_field(event::step, step);
  return e;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

void collect_leaves(nn::Module& m, const std::string& scope, std::vector<std::pair<std::string, nn::Module*>>& out) {
  for (const auto& child : m.children()) {
    if (child->children().empty())
      out.emplace_back(scope + child->name(), child.get());
    else
      collect_leaves(*child, scope + child->name() + "/", out);
  }
}

// Attr keys must match [a-z][a-z0-9_]+ for TensorFlow; others are kept with '_' for the odd characters.
std::string attr_key(const std::string& name) {
  std::string key;
  for (char c : name) key += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  return key;
}

GraphDef graph_to_graphdef(const synapse::graph::Graph& g) {
  GraphDef out;
  auto input_name = [&g](const Tensor& t) {
    const auto [node, index] = synapse::graph::Graph::producer(t);
    const std::string& name = g.node(node).name;
    return index == 0 ? name : fmt::format("{}:{}", name, index);
  };
  for (int i = 0; i < g.size(); ++i) {
    const synapse::graph::Node& n = g.node(i);
    NodeDef d;
    d.name = n.name;
    d.op = n.op;
    for (const Tensor& t : n.inputs) d.inputs.push_back(input_name(t));
    for (int c : n.control_inputs) d.inputs.push_back("^" + g.node(c).name);
    for (const auto& [key, value] : n.attrs.items()) {
      const std::string k = attr_key(key);
      if (const auto* iv = std::get_if<std::int64_t>(&value))
        d.attrs[k] = *iv;
      else if (const auto* dv = std::get_if<double>(&value))
        d.attrs[k] = static_cast<float>(*dv);
      else if (const auto* bv = std::get_if<bool>(&value))
        d.attrs[k] = *bv;
      else if (const auto* sv = std::get_if<std::string>(&value))
        d.attrs[k] = *sv;
      else if (const auto* lv = std::get_if<std::vector<std::int64_t>>(&value))
        d.attrs[k] = IntList{*lv};
      else
        d.attrs[k] = fmt::format("{}", fmt::join(std::get<std::vector<double>>(value), ", "));
    }
    std::vector<Shape> shapes;
    for (const auto& m : n.outputs) shapes.push_back(m.shape);
    if (!shapes.empty()) d.attrs["_output_shapes"] = shapes;
    out.nodes.push_back(std::move(d));
  }
  return out;
}

void leaf_nodes(const nn::Module& m, const std::string& scope, std::string& previous, GraphDef& g) {
  for (const auto& child : m.children()) {
    const std::string name = scope + child->name();
    if (!child->children().empty()) {
      leaf_nodes(*child, name + "/", previous, g);
      continue;
    }
    NodeDef n;
    n.name = name;
    n.op = child->type();
    n.inputs = {previous};
    if (child->has_output_shape()) n.attrs["_output_shapes"] = std::vector<Shape>{child->output_shape()};
    for (const auto& [pname, t] : child->named_parameters()) {
      const std::string key = attr_key(pname);
      if (!key.empty() && std::isalpha(static_cast<unsigned char>(key[0]))) n.attrs[key] = t.shape();
    }
    previous = name;
    g.nodes.push_back(std::move(n));
  }
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string tfrecord(const std::string& data) {
  std::string r;
  r.reserve(data.size() + 16);
  const std::uint64_t len = data.size();
  char lenb[8];
  std::memcpy(lenb, &len, 8);
  r.append(lenb, 8);
  auto put_u32 = [&r](std::uint32_t v) {
    char b[4];
    std::memcpy(b, &v, 4);
    r.append(b, 4);
  };
  put_u32(mask_crc(crc32c(lenb, 8)));
  r += data;
  put_u32(mask_crc(crc32c(data.data(), data.size())));
  return r;
}

std::string serialize(const GraphDef& g) {
  ProtoWriter out;
  for (const NodeDef& n : g.nodes) {
    ProtoWriter node;
    node.bytes_field(gdef::name, n.name).bytes_field(gdef::op, n.op);
    for (const auto& in : n.inputs) node.bytes_field(gdef::input, in);
    for (const auto& [key, value] : n.attrs) {
      ProtoWriter entry;
      entry.bytes_field(gdef::map_key, key).message_field(gdef::map_value, attr_proto(value));
      node.message_field(gdef::attr, entry);
    }
    out.message_field(gdef::node, node);
  }
  return out.str();
}

GraphDef graph_of(const nn::Module& model, const Shape& input_shape) {
  GraphDef g;
  NodeDef input;
  input.name = "input";
  for (const auto& c : model.children())
    if (c->name() == input.name) input.name = "input_0";
  input.op = "Placeholder";
  input.attrs["shape"] = input_shape;
  input.attrs["_output_shapes"] = std::vector<Shape>{input_shape};
  g.nodes.push_back(input);
  std::string previous = input.name;
  if (model.children().empty()) {
    // A single layer used as a model.
    NodeDef n{model.name(), model.type(), {previous}, {}};
    if (model.has_output_shape()) n.attrs["_output_shapes"] = std::vector<Shape>{model.output_shape()};
    g.nodes.push_back(std::move(n));
  } else {
    leaf_nodes(model, "", previous, g);
  }
  return g;
}

GraphDef traced_graph_of(nn::Module& model, const Shape& input_shape) {
  std::vector<std::pair<std::string, nn::Module*>> leaves;
  if (model.children().empty())
    leaves.emplace_back(model.name(), &model);
  else
    collect_leaves(model, "", leaves);
  // Inference mode while tracing (no dropout node), each module's own mode restored afterwards.
  std::vector<std::pair<nn::Module*, bool>> modes{{&model, model.is_training()}};
  for (const auto& [name, m] : leaves) modes.emplace_back(m, m->is_training());
  model.eval();
  try {
    synapse::graph::Graph g;
    Tensor x = g.placeholder("input", input_shape);
    for (const auto& [name, m] : leaves) {
      auto scope = g.name_scope(name);
      x = (*m)(x);
    }
    GraphDef out = graph_to_graphdef(g);
    for (const auto& [m, on] : modes) m->train(on);
    return out;
  } catch (const Error&) {
    for (const auto& [m, on] : modes) m->train(on);
    return graph_of(model, input_shape);
  }
}

Histogram make_histogram(std::span<const float> values, int bins) {
  SYN_CHECK(bins >= 1, "make_histogram: bins must be at least 1, got {}", bins);
  Histogram h;
  if (values.empty()) return h;
  h.min = std::numeric_limits<double>::infinity();
  h.max = -h.min;
  for (float f : values) {
    const double v = f;
    SYN_CHECK(std::isfinite(v), "make_histogram: the values contain {}", v);
    h.min = std::min(h.min, v);
    h.max = std::max(h.max, v);
    h.sum += v;
    h.sum_squares += v * v;
  }
  h.num = static_cast<double>(values.size());
  const int n = h.max > h.min ? bins : 1;
  const double width = (h.max - h.min) / n;
  h.bucket.assign(static_cast<std::size_t>(n), 0.0);
  for (int k = 0; k < n; ++k) h.bucket_limit.push_back(k + 1 == n ? h.max : h.min + width * (k + 1));
  for (float f : values) {
    int k = width > 0 ? static_cast<int>((f - h.min) / width) : 0;
    h.bucket[static_cast<std::size_t>(std::clamp(k, 0, n - 1))] += 1;
  }
  return h;
}

SummaryWriter::SummaryWriter(const std::string& logdir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(logdir, ec);
  SYN_CHECK(fs::is_directory(logdir), "SummaryWriter: cannot create the folder '{}': {}", logdir, ec.message());
  const auto secs = static_cast<long long>(now_seconds());
  const std::string base = (fs::path(logdir) / fmt::format("events.out.tfevents.{}.{}", secs, host_name())).string();
  path_ = base;
  // Two writers started in the same second in one folder get distinct files ("x" = exclusive create).
  for (int k = 1; (file_ = std::fopen(path_.c_str(), "wbx")) == nullptr; ++k) {
    SYN_CHECK(fs::exists(path_) && k < 1000, "SummaryWriter: cannot create '{}'", path_);
    path_ = fmt::format("{}.{}", base, k);
  }
  ProtoWriter e = event_header(-1, 0);
  e.bytes_field(event::file_version, "brain.Event:2");
  write_event(e.str());
  flush();
}

SummaryWriter::~SummaryWriter() {
  try {
    close();
  } catch (...) {  // a destructor must not throw; flush() reports errors to callers who ask
  }
}

void SummaryWriter::write_event(const std::string& event) {
  SYN_CHECK(file_ != nullptr, "SummaryWriter: '{}' is closed", path_);
  const std::string r = tfrecord(event);
  SYN_CHECK(std::fwrite(r.data(), 1, r.size(), file_) == r.size(), "SummaryWriter: cannot write to '{}'", path_);
}

void SummaryWriter::add_scalar(const std::string& tag, double value, std::int64_t step, double wall_time) {
  ProtoWriter v;
  v.bytes_field(summary::tag, tag).float_field(summary::simple_value, static_cast<float>(value));
  ProtoWriter s;
  s.message_field(summary::value, v);
  write_event(event_header(wall_time, step).message_field(event::summary, s).str());
}

void SummaryWriter::add_histogram(const std::string& tag, const Histogram& h, std::int64_t step, double wall_time) {
  ProtoWriter hp;
  hp.double_field(histo::min, h.min).double_field(histo::max, h.max).double_field(histo::num, h.num);
  hp.double_field(histo::sum, h.sum).double_field(histo::sum_squares, h.sum_squares);
  hp.packed_doubles(histo::bucket_limit, h.bucket_limit).packed_doubles(histo::bucket, h.bucket);
  ProtoWriter v;
  v.bytes_field(summary::tag, tag).message_field(summary::histo, hp);
  ProtoWriter s;
  s.message_field(summary::value, v);
  write_event(event_header(wall_time, step).message_field(event::summary, s).str());
}

void SummaryWriter::add_histogram(const std::string& tag, const Tensor& values, std::int64_t step, int bins) {
  SYN_CHECK(values.dtype() == DType::Float32, "SummaryWriter::add_histogram('{}'): expected float32 values, got {}",
            tag, dtype_name(values.dtype()));
  add_histogram(tag, make_histogram({values.data<float>(), static_cast<std::size_t>(values.numel())}, bins), step);
}

void SummaryWriter::add_graph(const GraphDef& graph, double wall_time) {
  write_event(event_header(wall_time, 0).bytes_field(event::graph_def, serialize(graph)).str());
}

void SummaryWriter::flush() {
  if (!file_) return;
  SYN_CHECK(std::fflush(file_) == 0, "SummaryWriter: cannot write to '{}'", path_);
  fsync(fileno(file_));
}

void SummaryWriter::close() {
  if (!file_) return;
  flush();
  std::fclose(file_);
  file_ = nullptr;
}

}  // namespace synapse::tensorboard
