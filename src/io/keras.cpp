// Keras JSON model configs and TF.js layers-model weights into functional nn::Models (see keras.h).
#include "synapse/keras.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
// GCC 12 reports "potential null pointer dereference" inside nlohmann::json's accessors when they are
// inlined here (a false positive: every access below is checked first).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/budget.h"
#include "core/check.h"
#include "synapse/io.h"

namespace synapse::keras {
namespace {

using nlohmann::json;

// The bytes of a regular file, its size checked against the read budget first (a manifest can name
// /dev/zero or a folder).
std::string read_text(const std::string& path) {
  std::error_code ec;
  SYN_CHECK(std::filesystem::is_regular_file(path, ec), "Keras import: cannot open '{}': {}", path,
            std::filesystem::exists(path, ec) ? "not a regular file" : "no such file");
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  SYN_CHECK(!ec, "Keras import: cannot read the size of '{}': {}", path, ec.message());
  detail::check_declared_size("Keras import", path, "the file", size);
  std::ifstream in(path, std::ios::binary);
  SYN_CHECK(in.good(), "Keras import: cannot open '{}'", path);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SYN_CHECK(in.gcount() == static_cast<std::streamsize>(bytes.size()), "Keras import: reading '{}' failed", path);
  return bytes;
}

// A JSON integer as int64 (nlohmann's get<int64_t> casts a float such as 1e300 with undefined behaviour).
std::int64_t int_of(const json& v, const std::string& what) {
  SYN_CHECK(v.is_number_integer() && !(v.is_number_unsigned() && v.get<std::uint64_t>() > (std::uint64_t{1} << 62)),
            "Keras import: {}: expected an integer, found {}", what, v.dump().substr(0, 100));
  return v.get<std::int64_t>();
}

// A JSON list of integers (a shape).
Shape shape_of(const json& v, const std::string& what) {
  SYN_CHECK(v.is_array(), "Keras import: {}: expected a list of integers, found {}", what, v.dump().substr(0, 100));
  Shape s;
  for (const json& d : v) s.push_back(int_of(d, what));
  return s;
}

// j[key] when it is a string, else the fallback (json::value() trips -Wnull-dereference in GCC 12).
std::string string_or(const json& j, const char* key, const std::string& fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return fallback;
  return *it->get_ptr<const std::string*>();
}

json parse(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    detail::fail("Keras import: {} is not valid JSON: {}", what, e.what());
  }
}

// One layer's config and the error context "layer 'Conv1' (Conv2D)".
struct LayerSpec {
  std::string name, cls;
  const json& cfg;

  [[noreturn]] void fail(const std::string& what) const {
    detail::fail("Keras import: layer '{}' ({}): {}", name, cls, what);
  }
  bool has(const char* key) const { return cfg.contains(key) && !cfg.at(key).is_null(); }
  template <class T> T get(const char* key, T fallback) const {
    if (!has(key)) return fallback;
    if constexpr (std::is_same_v<T, std::int64_t>) {
      if (!cfg.at(key).is_number_integer()) fail(fmt::format("option {}={}: expected an integer", key, cfg.at(key).dump()));
    } else if constexpr (std::is_same_v<T, Shape>) {
      return shape_of(cfg.at(key), fmt::format("layer '{}' ({}): option {}", name, cls, key));
    }
    try {
      return cfg.at(key).get<T>();
    } catch (const json::exception&) {
      fail(fmt::format("option {}={} has an unexpected type", key, cfg.at(key).dump()));
    }
  }
  // An (h, w) option given as one number or a list of two.
  std::vector<std::int64_t> pair(const char* key, std::vector<std::int64_t> fallback) const {
    if (!has(key)) return fallback;
    const json& v = cfg.at(key);
    if (v.is_number_integer()) return {v.get<std::int64_t>(), v.get<std::int64_t>()};
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
      return {v[0].get<std::int64_t>(), v[1].get<std::int64_t>()};
    fail(fmt::format("option {}={}: expected one or two integers", key, v.dump()));
  }
  // A string option that must take one of `allowed` values.
  std::string choice(const char* key, const std::string& fallback, const std::set<std::string>& allowed) const {
    const std::string v = get<std::string>(key, fallback);
    if (!allowed.contains(v))
      fail(fmt::format("unsupported option {}='{}' (supported: {})", key, v, fmt::join(allowed, ", ")));
    return v;
  }
  void channels_last() const { choice("data_format", "channels_last", {"channels_last"}); }
  Padding padding() const { return choice("padding", "valid", {"valid", "same"}) == "same" ? Padding::Same : Padding::Valid; }
  nn::Activation activation() const {
    const std::string a = choice("activation", "linear", {"linear", "relu", "sigmoid", "tanh", "softmax"});
    if (a == "relu") return nn::Activation::ReLU;
    if (a == "sigmoid") return nn::Activation::Sigmoid;
    if (a == "tanh") return nn::Activation::Tanh;
    if (a == "softmax") return nn::Activation::Softmax;
    return nn::Activation::None;
  }
};

const std::set<std::string>& supported_classes() {
  static const std::set<std::string> s{"InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
                                       "BatchNormalization", "ReLU", "Activation", "Dense", "Dropout", "Flatten",
                                       "Reshape", "ZeroPadding2D", "MaxPooling2D", "AveragePooling2D",
                                       "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Add", "Concatenate",
                                       "Multiply", "Softmax"};
  return s;
}

// The options every convolution shares (Conv2D, DepthwiseConv2D, SeparableConv2D), from the config.
template <class O> O conv_options(O o, const LayerSpec& L) {
  L.channels_last();
  o.strides(L.pair("strides", {1, 1}))
      .padding(L.padding())
      .dilation_rate(L.pair("dilation_rate", {1, 1}))
      .activation(L.activation())
      .use_bias(L.get<bool>("use_bias", true))
      .name(L.name);
  return o;
}

// The Synapse layer of a Keras layer config (not an InputLayer).
nn::ModulePtr make_layer(const LayerSpec& L) {
  const std::string& c = L.cls;
  if (c == "Conv2D") {
    L.channels_last();
    if (L.get<std::int64_t>("groups", 1) != 1) L.fail(fmt::format("unsupported option groups={}", L.cfg["groups"].dump()));
    return nn::Conv2D(conv_options(nn::Conv2DOptions(L.get<std::int64_t>("filters", 0), L.pair("kernel_size", {})), L));
  }
  if (c == "DepthwiseConv2D") {
    L.channels_last();
    return nn::DepthwiseConv2D(conv_options(
        nn::DepthwiseConv2DOptions(L.pair("kernel_size", {})).depth_multiplier(L.get<std::int64_t>("depth_multiplier", 1)), L));
  }
  if (c == "SeparableConv2D") {
    L.channels_last();
    return nn::SeparableConv2D(
        conv_options(nn::SeparableConv2DOptions(L.get<std::int64_t>("filters", 0), L.pair("kernel_size", {}))
                         .depth_multiplier(L.get<std::int64_t>("depth_multiplier", 1)),
                     L));
  }
  if (c == "BatchNormalization") {
    std::int64_t axis = -1;
    if (L.has("axis")) {
      const json& a = L.cfg.at("axis");
      if (a.is_number_integer()) axis = a.get<std::int64_t>();
      else if (a.is_array() && a.size() == 1 && a[0].is_number_integer()) axis = a[0].get<std::int64_t>();
      else L.fail(fmt::format("unsupported option axis={} (one axis only)", a.dump()));
    }
    if (L.get<bool>("renorm", false)) L.fail("unsupported option renorm=true");
    return nn::BatchNormalization(nn::BatchNormalizationOptions()
                                      .axis(axis)
                                      .momentum(L.get<float>("momentum", 0.99f))
                                      .epsilon(L.get<float>("epsilon", 1e-3f))
                                      .center(L.get<bool>("center", true))
                                      .scale(L.get<bool>("scale", true))
                                      .name(L.name));
  }
  if (c == "ReLU") {
    nn::ReLUOptions o;
    if (L.has("max_value")) o.max_value(L.get<float>("max_value", 0.0f));
    return nn::ReLU(o.negative_slope(L.get<float>("negative_slope", 0.0f)).threshold(L.get<float>("threshold", 0.0f)).name(L.name));
  }
  if (c == "Activation")
    return nn::ActivationByName(L.choice("activation", "linear", {"linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "swish"}),
                                L.name);
  if (c == "Softmax") {
    if (L.get<std::int64_t>("axis", -1) != -1) L.fail(fmt::format("unsupported option axis={} (only -1)", L.cfg["axis"].dump()));
    return nn::ActivationByName("softmax", L.name);
  }
  if (c == "Dense") {
    return nn::Dense(nn::DenseOptions(L.get<std::int64_t>("units", 0)).activation(L.activation()).use_bias(L.get<bool>("use_bias", true)).name(L.name));
  }
  if (c == "Dropout") {
    if (L.has("noise_shape")) L.fail("unsupported option noise_shape");
    return nn::Dropout(L.get<float>("rate", 0.0f), L.name);
  }
  if (c == "Flatten") {
    L.channels_last();
    return nn::Flatten(L.name);
  }
  if (c == "Reshape") return nn::Reshape(L.get<Shape>("target_shape", {}), L.name);
  if (c == "ZeroPadding2D") {
    L.channels_last();
    const json& p = L.cfg.contains("padding") ? L.cfg.at("padding") : json(1);
    std::vector<std::pair<std::int64_t, std::int64_t>> pads;
    if (p.is_number_integer()) {
      pads = {{p.get<std::int64_t>(), p.get<std::int64_t>()}, {p.get<std::int64_t>(), p.get<std::int64_t>()}};
    } else if (p.is_array() && p.size() == 2 && p[0].is_number_integer() && p[1].is_number_integer()) {
      pads = {{p[0].get<std::int64_t>(), p[0].get<std::int64_t>()}, {p[1].get<std::int64_t>(), p[1].get<std::int64_t>()}};
    } else if (p.is_array() && p.size() == 2 && p[0].is_array() && p[0].size() == 2 && p[1].is_array() && p[1].size() == 2) {
      const std::string what = fmt::format("layer '{}' ({}): option padding", L.name, L.cls);
      pads = {{int_of(p[0][0], what), int_of(p[0][1], what)}, {int_of(p[1][0], what), int_of(p[1][1], what)}};
    } else {
      L.fail(fmt::format("unsupported option padding={}", p.dump()));
    }
    return nn::ZeroPadding2D(pads, L.name);
  }
  if (c == "MaxPooling2D" || c == "AveragePooling2D") {
    L.channels_last();
    const auto pool = L.pair("pool_size", {2, 2});
    nn::Pool2DOptions o(pool[0], pool[1]);
    o.strides(L.pair("strides", pool)).padding(L.padding()).name(L.name);
    if (c == "MaxPooling2D") return nn::MaxPool2D(o);
    return nn::AvgPool2D(o);
  }
  if (c == "GlobalAveragePooling2D" || c == "GlobalMaxPooling2D") {
    L.channels_last();
    const bool keep = L.get<bool>("keepdims", false);
    if (c == "GlobalAveragePooling2D") return nn::GlobalAveragePooling2D(keep, L.name);
    return nn::GlobalMaxPooling2D(keep, L.name);
  }
  if (c == "Add") return nn::Add(L.name);
  if (c == "Multiply") return nn::Multiply(L.name);
  if (c == "Concatenate") return nn::Concatenate(L.get<std::int64_t>("axis", -1), L.name);
  detail::fail("Keras import: layer '{}': class '{}' is not supported (supported: {})", L.name, c,
               fmt::join(supported_classes(), ", "));
}

// The input shape (without the batch) of an InputLayer or of a Sequential's first layer.
Shape input_shape_of(const LayerSpec& L) {
  Shape s;
  if (L.has("batch_input_shape") || L.has("batch_shape")) {
    const json& b = L.cfg.at(L.has("batch_input_shape") ? "batch_input_shape" : "batch_shape");
    if (!b.is_array() || b.empty()) L.fail(fmt::format("input shape {}: expected a list [batch, extents...]", b.dump()));
    for (std::size_t i = 1; i < b.size(); ++i) {
      if (b[i].is_null()) L.fail(fmt::format("input shape {} has an unknown extent past the batch", b.dump()));
      const std::int64_t d = int_of(b[i], fmt::format("layer '{}' ({}): input shape", L.name, L.cls));
      if (d < 1) L.fail(fmt::format("input shape {}: extent {} (expected >= 1)", b.dump(), d));
      s.push_back(d);
    }
    return s;
  }
  L.fail("needs batch_input_shape (the model's input shape)");
}

void check_dtype(const LayerSpec& L) {
  const std::string d = L.get<std::string>("dtype", "float32");
  if (d != "float32") L.fail(fmt::format("unsupported option dtype='{}' (float32 only)", d));
}

// What one layer call may cost, checked before it runs: building the model runs every layer once on a zero
// batch of one (to find its output shape), so a config can ask for any amount of work. Each tensor is
// bounded by the read budget (a ReadScope is active while a model is built); on top of that, one layer's
// multiply-adds must not exceed the budget's number of bytes (4 Gi with 8 GiB of memory; nsfwjs'
// MobileNetV2 needs at most 0.03 Gi in a layer) and all layers' parameters together (as float32) must fit it.
void check_cost(const LayerSpec& L, const std::vector<nn::SymbolicTensor>& xs, double& params_total) {
  const Shape& s = xs.at(0).shape();
  auto at_least_1 = [](double v) { return std::max(v, 1.0); };
  double in = 1;  // elements of the first input, batch of one
  for (std::size_t i = 1; i < s.size(); ++i) in *= at_least_1(static_cast<double>(s[i]));
  const double channels = s.size() > 1 ? at_least_1(static_cast<double>(s.back())) : 1.0;
  const double spatial = in / channels;
  auto area = [&](const char* key) {
    double a = 1;
    if (L.has(key))
      for (auto v : L.pair(key, {1, 1})) a *= at_least_1(static_cast<double>(v));
    return a;
  };
  auto count = [&](const char* key) { return at_least_1(static_cast<double>(L.get<std::int64_t>(key, 1))); };
  double params = 0, macs = in;
  const std::string& c = L.cls;
  if (c == "Dense") {
    params = channels * count("units");
    macs = spatial * params;
  } else if (c == "Conv2D") {
    params = area("kernel_size") * channels * count("filters");
    macs = spatial * params;
  } else if (c == "DepthwiseConv2D") {
    params = area("kernel_size") * channels * count("depth_multiplier");
    macs = spatial * params;
  } else if (c == "SeparableConv2D") {
    const double mid = channels * count("depth_multiplier");
    params = area("kernel_size") * mid + mid * count("filters");
    macs = spatial * params;
  } else if (c == "MaxPooling2D" || c == "AveragePooling2D") {
    macs = in * area("pool_size");
  }
  const double budget = static_cast<double>(read_budget());
  if (macs > budget)
    L.fail(fmt::format("on an input of shape {} it needs {:.3g} multiply-adds, more than the read budget allows ({:.3g}; "
                       "raise it with SYNAPSE_READ_BUDGET=BYTES)", to_string(s), macs, budget));
  params_total += params;
  if (4 * params_total > budget)
    L.fail(fmt::format("the model's parameters reach {:.3g} bytes here, more than the read budget of {:.3g} bytes (raise "
                       "it with SYNAPSE_READ_BUDGET=BYTES)", 4 * params_total, budget));
}

struct Built {
  std::vector<nn::SymbolicTensor> inputs, outputs;
  std::vector<std::pair<nn::ModulePtr, bool>> trainable;  // layers and their "trainable" flag
};

// Finds a layer's config name and class.
LayerSpec spec_of(const json& layer) {
  static const json empty = json::object();
  const json& cfg = layer.contains("config") ? layer.at("config") : empty;
  std::string name = string_or(layer, "name", string_or(cfg, "name", "?"));
  return LayerSpec{name, string_or(layer, "class_name", "?"), cfg};
}

Built build_sequential(const json& layers) {
  SYN_CHECK(layers.is_array() && !layers.empty(), "Keras import: a Sequential model needs a list of layers");
  Built b;
  std::size_t first = 0;
  const LayerSpec l0 = spec_of(layers[0]);
  if (l0.cls == "InputLayer") {
    check_dtype(l0);
    b.inputs.push_back(nn::Input(input_shape_of(l0), l0.name));
    first = 1;
  } else {
    b.inputs.push_back(nn::Input(input_shape_of(l0)));
  }
  nn::SymbolicTensor x = b.inputs[0];
  double params = 0;
  for (std::size_t i = first; i < layers.size(); ++i) {
    const LayerSpec L = spec_of(layers[i]);
    nn::ModulePtr m = make_layer(L);
    check_cost(L, {x}, params);
    x = (*m)(x);
    b.trainable.emplace_back(m, L.get<bool>("trainable", true));
  }
  b.outputs.push_back(x);
  return b;
}

// [["name", node, tensor], ...] or [["name", node, tensor, {}], ...] -> the symbolic tensors.
std::vector<nn::SymbolicTensor> resolve(const json& refs, const std::map<std::string, std::vector<nn::SymbolicTensor>>& made,
                                        const std::string& who) {
  std::vector<nn::SymbolicTensor> out;
  for (const json& r : refs) {
    SYN_CHECK(r.is_array() && r.size() >= 3 && r[0].is_string(), "Keras import: {}: malformed inbound node {}", who,
              r.dump());
    if (r.size() >= 4 && r[3].is_object() && !r[3].empty())
      detail::fail("Keras import: {}: unsupported call arguments {}", who, r[3].dump());
    const std::string name = r[0].get<std::string>();
    const std::int64_t node = int_of(r[1], who + ": inbound node " + r.dump());
    const std::int64_t output = int_of(r[2], who + ": inbound node " + r.dump());
    auto it = made.find(name);
    SYN_CHECK(it != made.end() && node >= 0 && static_cast<std::uint64_t>(node) < it->second.size(),
              "Keras import: {}: inbound layer '{}' (call {}) is not defined before it", who, name, node);
    SYN_CHECK(output == 0, "Keras import: {}: layer '{}' output {}: multi-output layers are not supported", who, name,
              output);
    out.push_back(it->second[static_cast<std::size_t>(node)]);
  }
  return out;
}

Built build_functional(const json& cfg) {
  SYN_CHECK(cfg.contains("layers") && cfg.at("layers").is_array(), "Keras import: the model config has no \"layers\"");
  Built b;
  std::map<std::string, std::vector<nn::SymbolicTensor>> made;  // layer -> the outputs of its calls
  double params = 0;
  for (const json& layer : cfg.at("layers")) {
    const LayerSpec L = spec_of(layer);
    if (L.cls == "InputLayer") {
      check_dtype(L);
      made[L.name].push_back(nn::Input(input_shape_of(L), L.name));
      continue;
    }
    nn::ModulePtr m = make_layer(L);
    const json& inbound = layer.contains("inbound_nodes") ? layer.at("inbound_nodes") : json::array();
    SYN_CHECK(!inbound.empty(), "Keras import: layer '{}' ({}) has no inbound nodes", L.name, L.cls);
    for (const json& node : inbound) {
      SYN_CHECK(node.is_array(), "Keras import: layer '{}' ({}): unsupported inbound node format {} (Keras 2's "
                "[[\"layer\", node, tensor, {{}}]] lists are read)", L.name, L.cls, node.dump().substr(0, 200));
      const auto xs = resolve(node, made, fmt::format("layer '{}' ({})", L.name, L.cls));
      SYN_CHECK(!xs.empty(), "Keras import: layer '{}' ({}) has an empty inbound node", L.name, L.cls);
      check_cost(L, xs, params);
      made[L.name].push_back(xs.size() == 1 && !dynamic_cast<nn::layers::MergeLayer*>(m.get()) ? (*m)(xs[0]) : (*m)(xs));
    }
    b.trainable.emplace_back(m, L.get<bool>("trainable", true));
  }
  auto ends = [&](const char* key) {
    SYN_CHECK(cfg.contains(key), "Keras import: the model config has no \"{}\"", key);
    return resolve(cfg.at(key), made, key);
  };
  b.inputs = ends("input_layers");
  b.outputs = ends("output_layers");
  return b;
}

// Runs f with a ReadScope (no tensor above the read budget), turning nlohmann's exceptions (a key missing, a
// value of the wrong type) into an Error that says where.
template <class F> auto guarded(const std::string& what, F&& f) {
  const detail::ReadScope reading;
  try {
    return f();
  } catch (const json::exception& e) {
    detail::fail("Keras import: {}: unexpected structure: {}", what, e.what());
  }
}

Imported model_from_config(const std::string& json_text) {
  json j = parse(json_text, "the model config");
  if (j.contains("modelTopology")) j = j.at("modelTopology");
  if (j.contains("model_config")) j = j.at("model_config");
  SYN_CHECK(j.contains("class_name") && j.contains("config"),
            "Keras import: expected a model config {{\"class_name\": ..., \"config\": ...}}");
  const std::string cls = j.at("class_name").get<std::string>();
  const json& cfg = j.at("config");
  Built b;
  std::string name;
  if (cls == "Sequential") {
    b = build_sequential(cfg.is_array() ? cfg : cfg.at("layers"));
    if (cfg.is_object()) name = string_or(cfg, "name", "");
  } else if (cls == "Model" || cls == "Functional") {
    b = build_functional(cfg);
    name = string_or(cfg, "name", "");
  } else {
    detail::fail("Keras import: model class '{}' is not supported (Sequential, Model or Functional)", cls);
  }
  Imported out;
  out.model = nn::Model(b.inputs, b.outputs, name);
  for (auto& [m, on] : b.trainable)
    if (!on) m->set_trainable(false);
  out.config = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

std::map<std::string, Tensor> tfjs_weights(const std::string& model_json_path) {
  const json j = parse(read_text(model_json_path), "'" + model_json_path + "'");
  SYN_CHECK(j.contains("weightsManifest"), "Keras import: '{}' has no weightsManifest", model_json_path);
  const std::filesystem::path dir = std::filesystem::path(model_json_path).parent_path();
  const std::uint64_t budget = read_budget();
  std::uint64_t total = 0;  // bytes of the weights read so far
  std::map<std::string, Tensor> out;
  for (const json& group : j.at("weightsManifest")) {
    std::string bytes;
    for (const json& p : group.at("paths")) {
      // A shard is a file beside model.json (or below it), never an absolute path nor one that climbs out.
      const std::filesystem::path rel(p.get<std::string>());
      bool climbs = false;
      for (const auto& part : rel) climbs = climbs || part == "..";
      SYN_CHECK(!rel.empty() && rel.is_relative() && !climbs,
                "Keras import: '{}': weight shard path '{}' must be a relative path inside the model's folder",
                model_json_path, rel.string());
      const std::string shard = read_text((dir / rel).string());
      detail::check_read_budget(fmt::format("Keras import: '{}'", model_json_path), "the shards of a weight group",
                                bytes.size() + shard.size());
      bytes += shard;
    }
    std::size_t offset = 0;
    for (const json& w : group.at("weights")) {
      const std::string name = w.at("name").get<std::string>();
      const Shape shape = shape_of(w.at("shape"), "weight '" + name + "': shape");
      std::uint64_t n = 1;
      double declared = 4;  // bytes, as float32
      for (auto d : shape) {
        SYN_CHECK(d >= 0, "Keras import: weight '{}': shape {} has a negative extent", name, to_string(shape));
        n = d == 0 ? 0 : n <= budget / static_cast<std::uint64_t>(d) ? n * static_cast<std::uint64_t>(d) : budget + 1;
        declared *= static_cast<double>(d);
      }
      SYN_CHECK(n <= budget / 4, "Keras import: '{}': weight '{}' {} declares {:.4g} bytes, more than the read budget of {} "
                "bytes (raise it with SYNAPSE_READ_BUDGET=BYTES or synapse::set_read_budget)", model_json_path, name,
                to_string(shape), declared, budget);
      total += n * 4;
      detail::check_read_budget(fmt::format("Keras import: '{}'", model_json_path),
                                fmt::format("weight '{}' {} (with the weights before it)", name, to_string(shape)), total);
      const std::string dtype = string_or(w, "dtype", "float32");
      SYN_CHECK(dtype == "float32", "Keras import: weight '{}': dtype '{}' (float32 weights only)", name, dtype);
      std::string qtype = "float32";
      double scale = 1.0, minimum = 0.0;
      if (w.contains("quantization")) {
        const json& q = w.at("quantization");
        qtype = string_or(q, "dtype", "?");
        SYN_CHECK(qtype == "uint8" || qtype == "uint16",
                  "Keras import: weight '{}': quantization dtype '{}' is not supported (uint8, uint16)", name, qtype);
        SYN_CHECK(q.contains("scale") && q.contains("min"),
                  "Keras import: weight '{}' is quantised ({}) without min and scale", name, qtype);
        scale = q.at("scale").get<double>();
        minimum = q.at("min").get<double>();
      }
      const std::size_t width = qtype == "uint8" ? 1 : qtype == "uint16" ? 2 : 4;
      const std::size_t need = static_cast<std::size_t>(n) * width;
      SYN_CHECK(offset + need <= bytes.size(),
                "Keras import: weight '{}' {} ({}) needs bytes [{}, {}) but the shards of its group hold {}", name,
                to_string(shape), qtype, offset, offset + need, bytes.size());
      Tensor t = zeros(shape);
      float* dst = t.data<float>();
      const auto* src = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
      for (std::size_t i = 0; i < n; ++i) {
        if (width == 4) {
          std::memcpy(dst + i, src + 4 * i, 4);
        } else {
          const double v = width == 1 ? src[i] : static_cast<double>(src[2 * i] | (src[2 * i + 1] << 8));
          dst[i] = static_cast<float>(v * scale + minimum);
        }
      }
      offset += need;
      out[name] = t;
    }
  }
  return out;
}

}  // namespace

Imported model_from_json(const std::string& json_text) {
  return guarded("the model config", [&] { return model_from_config(json_text); });
}

std::map<std::string, Tensor> load_tfjs_weights(const std::string& model_json_path) {
  return guarded("the weightsManifest of '" + model_json_path + "'", [&] { return tfjs_weights(model_json_path); });
}

namespace {
// "Conv1/kernel", "Conv1/kernel:0" or "model/Conv1/kernel" -> the model's "Conv1/kernel" when it has it.
std::string state_name(const std::string& weight, const std::map<std::string, Tensor>& state) {
  std::string n = weight;
  if (auto colon = n.rfind(':'); colon != std::string::npos) n = n.substr(0, colon);
  if (state.contains(n)) return n;
  auto last = n.rfind('/');
  if (last != std::string::npos && last > 0) {
    auto prev = n.rfind('/', last - 1);
    std::string tail = prev == std::string::npos ? n : n.substr(prev + 1);
    if (state.contains(tail)) return tail;
  }
  return n;
}

// Runs f; an Error whose message does not name `path` is thrown again with it in front.
template <class F> auto naming(const std::string& path, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find(path) != std::string::npos) throw;
    detail::fail("'{}': {}", path, what);
  }
}
}  // namespace

Imported load_tfjs(const std::string& model_json_path) {
  Imported m = naming(model_json_path, [&] { return model_from_json(read_text(model_json_path)); });
  const auto weights = naming(model_json_path, [&] { return load_tfjs_weights(model_json_path); });
  const auto state = m.model->state_dict();
  std::map<std::string, Tensor> mapped;
  for (const auto& [name, t] : weights) mapped[state_name(name, state)] = t;
  try {
    m.model->load_state_dict(mapped);
  } catch (const Error& e) {
    detail::fail("Keras import: the weights of '{}' do not fit the model: {}", model_json_path, e.what());
  }
  return m;
}

void save(const std::string& path, const Imported& m) {
  io::Checkpoint c;
  c.tensors = m.model->state_dict();
  c.metadata["model"] = "keras";
  c.metadata["keras_config"] = m.config;
  io::save_checkpoint(path, c);
}

Imported load(const std::string& path) {
  const io::Checkpoint c = io::load_checkpoint(path);
  auto it = c.metadata.find("keras_config");
  SYN_CHECK(it != c.metadata.end(), "'{}' holds no Keras model (no keras_config in its metadata)", path);
  Imported m = model_from_json(it->second);
  m.model->load_state_dict(c.tensors);
  return m;
}

}  // namespace synapse::keras
