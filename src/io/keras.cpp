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

#include "core/check.h"
#include "synapse/io.h"

namespace synapse::keras {
namespace {

using nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SYN_CHECK(in.good(), "Keras import: cannot open '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
    } else if (p.is_array() && p.size() == 2 && p[0].is_number_integer()) {
      pads = {{p[0].get<std::int64_t>(), p[0].get<std::int64_t>()}, {p[1].get<std::int64_t>(), p[1].get<std::int64_t>()}};
    } else if (p.is_array() && p.size() == 2 && p[0].is_array() && p[0].size() == 2 && p[1].is_array() && p[1].size() == 2) {
      pads = {{p[0][0].get<std::int64_t>(), p[0][1].get<std::int64_t>()}, {p[1][0].get<std::int64_t>(), p[1][1].get<std::int64_t>()}};
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
    for (std::size_t i = 1; i < b.size(); ++i) {
      if (b[i].is_null()) L.fail(fmt::format("input shape {} has an unknown extent past the batch", b.dump()));
      s.push_back(b[i].get<std::int64_t>());
    }
    return s;
  }
  L.fail("needs batch_input_shape (the model's input shape)");
}

void check_dtype(const LayerSpec& L) {
  const std::string d = L.get<std::string>("dtype", "float32");
  if (d != "float32") L.fail(fmt::format("unsupported option dtype='{}' (float32 only)", d));
}

struct Built {
  std::vector<nn::SymbolicTensor> inputs, outputs;
  std::vector<std::pair<nn::ModulePtr, bool>> trainable;  // layers and their "trainable" flag
};

// Finds a layer's config name and class.
LayerSpec spec_of(const json& layer) {
  static const json empty = json::object();
  const json& cfg = layer.contains("config") ? layer.at("config") : empty;
  std::string name = layer.contains("name") ? layer.at("name").get<std::string>()
                                            : string_or(cfg, "name", "?");
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
  for (std::size_t i = first; i < layers.size(); ++i) {
    const LayerSpec L = spec_of(layers[i]);
    nn::ModulePtr m = make_layer(L);
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
    const auto node = r[1].get<std::size_t>();
    auto it = made.find(name);
    SYN_CHECK(it != made.end() && node < it->second.size(),
              "Keras import: {}: inbound layer '{}' (call {}) is not defined before it", who, name, node);
    SYN_CHECK(r[2].get<int>() == 0, "Keras import: {}: layer '{}' output {}: multi-output layers are not supported",
              who, name, r[2].get<int>());
    out.push_back(it->second[node]);
  }
  return out;
}

Built build_functional(const json& cfg) {
  SYN_CHECK(cfg.contains("layers") && cfg.at("layers").is_array(), "Keras import: the model config has no \"layers\"");
  Built b;
  std::map<std::string, std::vector<nn::SymbolicTensor>> made;  // layer -> the outputs of its calls
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

}  // namespace

Imported model_from_json(const std::string& json_text) {
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
  out.config = j.dump();
  return out;
}

std::map<std::string, Tensor> load_tfjs_weights(const std::string& model_json_path) {
  const json j = parse(read_text(model_json_path), "'" + model_json_path + "'");
  SYN_CHECK(j.contains("weightsManifest"), "Keras import: '{}' has no weightsManifest", model_json_path);
  const std::filesystem::path dir = std::filesystem::path(model_json_path).parent_path();
  std::map<std::string, Tensor> out;
  for (const json& group : j.at("weightsManifest")) {
    std::string bytes;
    for (const json& p : group.at("paths")) bytes += read_text((dir / p.get<std::string>()).string());
    std::size_t offset = 0;
    for (const json& w : group.at("weights")) {
      const std::string name = w.at("name").get<std::string>();
      const Shape shape = w.at("shape").get<Shape>();
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
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
      for (std::int64_t i = 0; i < n; ++i) {
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
}  // namespace

Imported load_tfjs(const std::string& model_json_path) {
  Imported m = model_from_json(read_text(model_json_path));
  const auto weights = load_tfjs_weights(model_json_path);
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
