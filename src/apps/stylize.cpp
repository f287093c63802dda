// Neural style transfer: feature networks (a Module's named layers, an ONNX file's named tensors by
// eager replay), the Gatys losses and the optimisation loop over the image (synapse/stylize.h).
#include "synapse/stylize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/graph.h"
#include "synapse/io.h"
#include "synapse/keras.h"
#include "synapse/onnx.h"
#include "synapse/op.h"
#include "synapse/ops.h"
#include "synapse/optim.h"
#include "synapse/random.h"
#include "synapse/zoo.h"

namespace synapse::apps {

Preprocess Preprocess::imagenet_nchw() {
  Preprocess p;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  p.channels_first = true;
  return p;
}

namespace {

std::string list(const std::vector<std::string>& names) {
  constexpr std::size_t kShown = 60;
  if (names.size() <= kShown) return fmt::format("{}", fmt::join(names, ", "));
  return fmt::format("{}, ... ({} in all)", fmt::join(names.begin(), names.begin() + kShown, ", "), names.size());
}

// Default layers by name (a module's children, a model's layers): each block's first convolution
// ("*_conv1") for style, else the first five layers that are not pools or the classifier's; content
// "block4_conv2" (Gatys' conv4_2) when there is one, else the middle layer.
void defaults_by_name(FeatureNetwork& net, const std::vector<std::string>& names) {
  std::vector<std::string> convs;
  for (const auto& n : names)
    if (n != "output" && n.find("pool") == std::string::npos && n.find("flatten") == std::string::npos &&
        n.find("dense") == std::string::npos && n.find("dropout") == std::string::npos)
      convs.push_back(n);
  if (convs.empty()) convs.push_back("output");
  for (const auto& n : convs)
    if (n.size() > 6 && n.compare(n.size() - 6, 6, "_conv1") == 0) net.default_style_layers.push_back(n);
  if (net.default_style_layers.empty())
    net.default_style_layers.assign(convs.begin(), convs.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(5, convs.size())));
  net.default_content_layers = {std::find(convs.begin(), convs.end(), "block4_conv2") != convs.end() ? std::string("block4_conv2")
                                                                                                     : convs[(convs.size() - 1) / 2]};
}

// Default layers spread over the network's activations (in network order): five from the first on for
// style, the one two thirds in for content.
void defaults_spread(FeatureNetwork& net, const std::vector<std::string>& activations) {
  SYN_CHECK(!activations.empty(), "{} computes no feature maps", net.describe());
  const std::size_t k = std::min<std::size_t>(5, activations.size());
  for (std::size_t i = 0; i < k; ++i)
    net.default_style_layers.push_back(activations[i * (activations.size() - 1) / std::max<std::size_t>(1, k - 1)]);
  net.default_content_layers = {activations[(activations.size() - 1) * 2 / 3]};
}

}  // namespace

std::map<std::string, Tensor> FeatureNetwork::features(const Tensor& image, const std::vector<std::string>& names) {
  SYN_CHECK(image.defined() && image.dtype() == DType::Float32 && image.ndim() == 4 && image.dim(0) == 1 && image.dim(3) == 3,
            "{}: expected an image float32 [1, H, W, 3], found {}", describe(),
            image.defined() ? fmt::format("{} {}", dtype_name(image.dtype()), to_string(image.shape())) : "undefined");
  const std::vector<std::string> known = layer_names();
  const std::set<std::string> known_set(known.begin(), known.end());
  for (const auto& n : names)
    SYN_CHECK(known_set.count(n), "{} has no layer '{}'; its layers are: {}", describe(), n, list(known));
  const Preprocess& p = preprocess;
  SYN_CHECK(p.mean.size() == 3 && p.std.size() == 3, "{}: preprocessing needs 3 means and 3 deviations, found {} and {}",
            describe(), p.mean.size(), p.std.size());
  Tensor x = p.scale == 1.0f ? image : image * p.scale;
  if (p.bgr) x = concat({slice(x, {0, 0, 0, 2}, {-1, -1, -1, 1}), slice(x, {0, 0, 0, 1}, {-1, -1, -1, 1}),
                         slice(x, {0, 0, 0, 0}, {-1, -1, -1, 1})}, 3);
  if (p.mean != std::vector<float>{0, 0, 0}) x = x - from_vector(p.mean, {3});
  if (p.std != std::vector<float>{1, 1, 1}) x = x / from_vector(p.std, {3});
  if (p.channels_first) x = permute(x, {0, 3, 1, 2});
  return run(x, names);
}

// ---------------------------------------------------------------- (a) modules
namespace {

class ModuleFeatures : public FeatureNetwork {
 public:
  explicit ModuleFeatures(nn::ModulePtr m) : m_(std::move(m)) {
    SYN_CHECK(m_ != nullptr, "module_features: no module given");
    m_->eval();
    for (auto& [name, t] : m_->named_parameters()) t.requires_grad_(false);
    seq_ = dynamic_cast<nn::layers::Sequential*>(m_.get());
    if (seq_)
      for (std::size_t i = 0; i < seq_->size(); ++i) names_.push_back((*seq_)[i]->name());
    names_.push_back("output");
    defaults_by_name(*this, names_);
  }
  std::vector<std::string> layer_names() const override { return names_; }
  std::string describe() const override { return fmt::format("the network '{}'", m_->name()); }

 protected:
  std::map<std::string, Tensor> run(const Tensor& x, const std::vector<std::string>& names) override {
    std::map<std::string, Tensor> out;
    if (!seq_) {
      out["output"] = (*m_)(x);
      return out;
    }
    const std::set<std::string> want(names.begin(), names.end());
    const std::size_t wanted_layers = want.size() - want.count("output");
    Tensor y = x;
    for (std::size_t i = 0; i < seq_->size() && (want.count("output") || out.size() < wanted_layers); ++i) {
      y = (*(*seq_)[i])(y);
      if (want.count((*seq_)[i]->name())) out[(*seq_)[i]->name()] = y;
    }
    if (want.count("output")) out["output"] = y;
    return out;
  }

 private:
  nn::ModulePtr m_;
  nn::layers::Sequential* seq_ = nullptr;
  std::vector<std::string> names_;
};

// ---------------------------------------------------------------- (b) ONNX files
class OnnxFeatures : public FeatureNetwork {
 public:
  explicit OnnxFeatures(std::string path) : path_(std::move(path)) {
    onnx::ImportOptions io;
    io.trainable_initializers = false;
    m_ = onnx::import_model(path_, io);
    SYN_CHECK(m_.inputs.size() == 1, "{} has {} inputs; a feature network takes one image", describe(), m_.inputs.size());
    const Shape& in = m_.inputs[0].shape();
    SYN_CHECK(in.size() == 4 && (in[1] == 3 || in[3] == 3),
              "{}: input '{}' is {}, expected an image batch [N, H, W, 3] or [N, 3, H, W]", describe(), m_.input_names[0],
              to_string(in));
    preprocess.channels_first = in[1] == 3 && in[3] != 3;
    std::vector<std::string> relus;
    for (const auto& [name, t] : m_.values) {
      // Feature maps only: rank-4 float tensors (NCHW, as ONNX's Conv computes them).
      if (!graph::is_symbolic(t) || t.ndim() != 4 || t.dtype() != DType::Float32) continue;
      names_.push_back(name);
      index_[name] = t;
      const auto [node, k] = graph::Graph::producer(t);
      if (m_.graph->node(node).op == "relu") relus.push_back(name);
    }
    defaults_spread(*this, relus.empty() ? names_ : relus);
  }
  std::vector<std::string> layer_names() const override { return names_; }
  std::string describe() const override { return fmt::format("the ONNX model '{}'", path_); }

 protected:
  // Replays the nodes the requested tensors need, in order, with the eager ops (so autograd records).
  std::map<std::string, Tensor> run(const Tensor& x, const std::vector<std::string>& names) override {
    const graph::Graph& g = *m_.graph;
    std::vector<bool> needed(static_cast<std::size_t>(g.size()), false);
    std::vector<int> stack;
    for (const auto& n : names) stack.push_back(graph::Graph::producer(index_.at(n)).first);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (needed[static_cast<std::size_t>(i)]) continue;
      needed[static_cast<std::size_t>(i)] = true;
      for (const auto& t : g.node(i).inputs) stack.push_back(graph::Graph::producer(t).first);
    }
    std::vector<std::vector<Tensor>> values(static_cast<std::size_t>(g.size()));
    const int input_node = graph::Graph::producer(m_.inputs[0]).first;
    for (int i = 0; i < g.size(); ++i) {
      if (!needed[static_cast<std::size_t>(i)]) continue;
      const graph::Node& nd = g.node(i);
      auto& out = values[static_cast<std::size_t>(i)];
      if (nd.op == "Placeholder") {
        SYN_CHECK(i == input_node, "{}: node '{}' is a second placeholder", describe(), nd.name);
        out = {x};
      } else if (nd.op == "Const" || nd.op == "Variable") {
        out = {nd.value};
      } else {
        std::vector<Tensor> in;
        in.reserve(nd.inputs.size());
        for (const auto& t : nd.inputs) {
          const auto [p, k] = graph::Graph::producer(t);
          in.push_back(values[static_cast<std::size_t>(p)].at(static_cast<std::size_t>(k)));
        }
        try {
          out = apply(op_def(nd.op), in, nd.attrs);
        } catch (const Error& e) {
          throw Error(fmt::format("{}: replaying node '{}' ({}) on an image {}: {}", describe(), nd.name, nd.op,
                                  to_string(x.shape()), e.what()));
        }
      }
    }
    std::map<std::string, Tensor> result;
    for (const auto& n : names) {
      const auto [p, k] = graph::Graph::producer(index_.at(n));
      result[n] = permute(values[static_cast<std::size_t>(p)].at(static_cast<std::size_t>(k)), {0, 2, 3, 1});  // -> NHWC
    }
    return result;
  }

 private:
  std::string path_;
  onnx::Model m_;
  std::vector<std::string> names_;
  std::map<std::string, Tensor> index_;
};

// ---------------------------------------------------------------- (c) functional models
// Keras' MobileNetV2 (as nsfwjs ships it): the ReLU6 after the stem and the expansion ReLU6 before each
// stride-2 block (1/2, 1/2, 1/4, 1/8, 1/16 of the image) for style, the one at 1/8 (as Gatys' conv4_2) for content.
const std::vector<std::string> kMobileNetV2Style = {"Conv1_relu", "block_1_expand_relu", "block_3_expand_relu",
                                                    "block_6_expand_relu", "block_13_expand_relu"};
const std::vector<std::string> kMobileNetV2Content = {"block_6_expand_relu"};

class ModelFeatures : public FeatureNetwork {
 public:
  ModelFeatures(std::shared_ptr<nn::layers::Model> m, bool fold_bn) {
    SYN_CHECK(m != nullptr, "model_features: no model given");
    SYN_CHECK(m->inputs().size() == 1, "the model '{}' has {} inputs; a feature network takes one image", m->name(),
              m->inputs().size());
    const Shape& in = m->inputs()[0].shape();
    SYN_CHECK(in.size() == 4 && in[3] == 3, "the model '{}': input '{}' is {}, expected an image batch [N, H, W, 3]", m->name(),
              m->inputs()[0].layer().name(), to_string(in));
    m_ = fold_bn ? m->fold_batch_norm() : std::move(m);
    m_->eval();
    for (auto& [name, t] : m_->named_parameters()) t.requires_grad_(false);
    dynamic_cast<nn::layers::InputLayer&>(m_->inputs()[0].layer()).set_any_spatial_size(true);
    std::vector<std::string> activations;
    for (const auto& layer : m_->children()) {
      if (layer->type() == "InputLayer" || m_->output_of(layer->name()).shape().size() != 4) continue;
      names_.push_back(layer->name());
      const std::string& t = layer->type();
      const std::string& n = layer->name();
      if (t == "ReLU" || t == "Activation" || (n.size() >= 4 && n.compare(n.size() - 4, 4, "relu") == 0))
        activations.push_back(layer->name());
    }
    const std::set<std::string> have(names_.begin(), names_.end());
    const auto has_all = [&](const std::vector<std::string>& want) {
      return std::all_of(want.begin(), want.end(), [&](const std::string& n) { return have.count(n) > 0; });
    };
    if (has_all(kMobileNetV2Style) && has_all(kMobileNetV2Content)) {
      default_style_layers = kMobileNetV2Style;
      default_content_layers = kMobileNetV2Content;
      default_style_weight = 3e7;  // chosen by eye on the README picture (china.jpg, The Starry Night)
      default_tv_weight = 3;
    } else if (have.count("block1_conv1")) {
      defaults_by_name(*this, names_);
    } else {
      defaults_spread(*this, activations.empty() ? names_ : activations);
    }
  }
  std::vector<std::string> layer_names() const override { return names_; }
  std::string describe() const override { return fmt::format("the model '{}'", m_->name()); }

 protected:
  std::map<std::string, Tensor> run(const Tensor& x, const std::vector<std::string>& names) override {
    try {
      return m_->outputs_of(names, x);
    } catch (const Error& e) {
      throw Error(fmt::format("{} on an image {}: {}", describe(), to_string(x.shape()), e.what()));
    }
  }

 private:
  std::shared_ptr<nn::layers::Model> m_;
  std::vector<std::string> names_;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  std::string tail = s.substr(s.size() - suffix.size());
  for (auto& c : tail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return tail == suffix;
}

}  // namespace

std::unique_ptr<FeatureNetwork> module_features(nn::ModulePtr module) { return std::make_unique<ModuleFeatures>(std::move(module)); }

std::unique_ptr<FeatureNetwork> onnx_features(const std::string& path) { return std::make_unique<OnnxFeatures>(path); }

std::unique_ptr<FeatureNetwork> model_features(std::shared_ptr<nn::layers::Model> model, bool fold_bn) {
  return std::make_unique<ModelFeatures>(std::move(model), fold_bn);
}

std::unique_ptr<FeatureNetwork> load_feature_network(const std::string& path, bool fold_bn) {
  namespace fs = std::filesystem;
  if (ends_with(path, ".onnx")) return onnx_features(path);
  if (ends_with(path, ".json")) return model_features(keras::load_tfjs(path).model, fold_bn);
  if (fs::is_directory(path) && fs::is_regular_file(fs::path(path) / "model.json"))
    return model_features(keras::load_tfjs((fs::path(path) / "model.json").string()).model, fold_bn);
  if (fs::is_regular_file(path) && io::load_checkpoint(path).metadata.count("keras_config"))
    return model_features(keras::load(path).model, fold_bn);
  return module_features(zoo::load_trained(path).model);
}

ChosenNetwork default_feature_network(const std::vector<std::string>& data_dirs, std::uint64_t seed,
                                      std::vector<std::int64_t> widths, std::vector<int> convs) {
  namespace fs = std::filesystem;
  for (const auto& dir : data_dirs) {
    const fs::path model = fs::path(dir) / "nsfwjs" / "mobilenet_v2" / "model.json";
    if (!fs::is_regular_file(model)) continue;
    return {load_feature_network(model.string()),
            fmt::format("nsfwjs' MobileNetV2, found at {} (a pretrained network comes before the random one)", model.string())};
  }
  std::vector<std::string> looked;
  for (const auto& dir : data_dirs) looked.push_back((fs::path(dir) / "nsfwjs" / "mobilenet_v2" / "model.json").string());
  return {module_features(random_vgg(seed, std::move(widths), std::move(convs))),
          fmt::format("a VGG-shaped network with random weights (seed {}), as no pretrained network was found (looked for {}; "
                      "scripts/fetch-data nsfwjs fetches one, or name one with --network)",
                      seed, looked.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(looked, ", ")))};
}

nn::ModulePtr random_vgg(std::uint64_t seed, std::vector<std::int64_t> widths, std::vector<int> convs) {
  SYN_CHECK(!widths.empty() && widths.size() == convs.size(),
            "random_vgg: expected as many blocks in widths ({}) as in convs ({}), at least one", widths.size(), convs.size());
  auto model = nn::Sequential({}, "random_vgg");
  for (std::size_t b = 0; b < widths.size(); ++b) {
    SYN_CHECK(widths[b] >= 1 && convs[b] >= 1, "random_vgg: block {} has width {} and {} convolutions, expected >= 1", b + 1,
              widths[b], convs[b]);
    for (int c = 0; c < convs[b]; ++c)
      model->add(nn::Conv2D(nn::Conv2DOptions(widths[b], 3)
                                .padding(nn::Padding::Same)
                                .activation(nn::Activation::ReLU)
                                .name(fmt::format("block{}_conv{}", b + 1, c + 1))));
    if (b + 1 < widths.size()) model->add(nn::AvgPool2D(nn::Pool2DOptions(2).name(fmt::format("block{}_pool", b + 1))));
  }
  model->build_for({1, 32, 32, 3});
  // He-normal kernels from our own generator (so the weights depend on the seed alone), zero biases.
  Generator gen(seed);
  for (auto& [name, t] : model->named_parameters()) {
    const Tensor v = ends_with(name, "kernel") ? nn::Initializer::he_normal()(t.shape(), gen) : zeros(t.shape());
    std::copy_n(v.data<float>(), v.numel(), t.data<float>());
  }
  return model;
}

// ---------------------------------------------------------------- losses
Tensor gram_matrix(const Tensor& features) {
  SYN_CHECK(features.ndim() == 4 && features.dim(0) == 1, "gram_matrix: expected features [1, H, W, C], found {}",
            to_string(features.shape()));
  const Tensor f = reshape(features, {features.dim(1) * features.dim(2), features.dim(3)});
  return matmul(transpose(f), f);
}

Tensor style_loss(const Tensor& features, const Tensor& target_gram) {
  const Tensor g = gram_matrix(features);
  SYN_CHECK(g.shape() == target_gram.shape(), "style_loss: the features' Gram matrix is {} but the target is {}",
            to_string(g.shape()), to_string(target_gram.shape()));
  const double c = static_cast<double>(features.dim(3)), hw = static_cast<double>(features.dim(1) * features.dim(2));
  return sum(square(g - target_gram)) * static_cast<float>(1.0 / (4.0 * c * c * hw * hw));
}

Tensor content_loss(const Tensor& features, const Tensor& target) {
  SYN_CHECK(features.shape() == target.shape(), "content_loss: the features are {} but the target is {}",
            to_string(features.shape()), to_string(target.shape()));
  return sum(square(features - target));
}

Tensor total_variation_loss(const Tensor& image) {
  SYN_CHECK(image.ndim() == 4 && image.dim(1) >= 2 && image.dim(2) >= 2,
            "total_variation_loss: expected an image [N, H, W, C] with H, W >= 2, found {}", to_string(image.shape()));
  const std::int64_t h = image.dim(1), w = image.dim(2);
  const Tensor dy = slice(image, {0, 1, 0, 0}, {-1, h - 1, -1, -1}) - slice(image, {0, 0, 0, 0}, {-1, h - 1, -1, -1});
  const Tensor dx = slice(image, {0, 0, 1, 0}, {-1, -1, w - 1, -1}) - slice(image, {0, 0, 0, 0}, {-1, -1, w - 1, -1});
  return sum(square(dy)) + sum(square(dx));
}

// ---------------------------------------------------------------- images
namespace {

// Resamples n_in samples (stride `stride` apart, `channels` interleaved... handled by the caller) to
// n_out with a triangle filter widened by the shrink factor: weights[o] = (first input, weights).
struct Taps {
  std::int64_t first;
  std::vector<float> w;
};
std::vector<Taps> filter_taps(std::int64_t n_in, std::int64_t n_out) {
  const double scale = static_cast<double>(n_in) / static_cast<double>(n_out);
  const double support = std::max(1.0, scale);  // triangle half-width, in input samples
  std::vector<Taps> taps(static_cast<std::size_t>(n_out));
  for (std::int64_t o = 0; o < n_out; ++o) {
    const double centre = (static_cast<double>(o) + 0.5) * scale - 0.5;
    const auto lo = static_cast<std::int64_t>(std::floor(centre - support)) + 1;
    const auto hi = static_cast<std::int64_t>(std::ceil(centre + support)) - 1;
    Taps& t = taps[static_cast<std::size_t>(o)];
    t.first = std::max<std::int64_t>(0, lo);
    double total = 0;
    std::vector<double> w;
    for (std::int64_t i = t.first; i <= std::min(hi, n_in - 1); ++i) {
      const double v = std::max(0.0, 1.0 - std::fabs(static_cast<double>(i) - centre) / support);
      w.push_back(v);
      total += v;
    }
    if (total <= 0) {  // (cannot happen for n_in >= 1, but keep a valid tap)
      t.first = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::lround(centre)), 0, n_in - 1);
      w = {1.0};
      total = 1.0;
    }
    for (double v : w) t.w.push_back(static_cast<float>(v / total));
  }
  return taps;
}

}  // namespace

Tensor prepare_image(const Tensor& image, std::int64_t longer_side, std::int64_t min_side, const std::string& name) {
  SYN_CHECK(image.defined() && (image.ndim() == 2 || image.ndim() == 3), "{}: expected an image [H, W] or [H, W, C], found {}",
            name, image.defined() ? to_string(image.shape()) : "undefined");
  const std::int64_t h = image.dim(0), w = image.dim(1), c = image.ndim() == 3 ? image.dim(2) : 1;
  SYN_CHECK(c >= 1 && c <= 4, "{}: {} channels, expected 1 to 4", name, c);
  SYN_CHECK(longer_side >= 0, "{}: the size must be >= 0, found {}", name, longer_side);
  const float unit = image.dtype() == DType::Int32 ? 65535.0f : 255.0f;  // read_image: 16-bit as int32
  const std::vector<float> px = cast(image, DType::Float32).to_vector<float>();
  // RGB floats in [0, 1] (grey replicated, alpha dropped).
  std::vector<float> rgb(static_cast<std::size_t>(h * w * 3));
  for (std::int64_t i = 0; i < h * w; ++i)
    for (std::int64_t k = 0; k < 3; ++k)
      rgb[static_cast<std::size_t>(i * 3 + k)] = px[static_cast<std::size_t>(i * c + (c >= 3 ? k : 0))] / unit;
  std::int64_t oh = h, ow = w;
  if (longer_side > 0) {
    const double f = static_cast<double>(longer_side) / static_cast<double>(std::max(h, w));
    oh = std::max<std::int64_t>(1, std::llround(static_cast<double>(h) * f));
    ow = std::max<std::int64_t>(1, std::llround(static_cast<double>(w) * f));
  }
  SYN_CHECK(std::min(oh, ow) >= min_side, "{}: {}x{} pixels (width x height){} is too small: the shorter side must be >= {}",
            name, ow, oh, longer_side > 0 ? fmt::format(" at --size {}", longer_side) : "", min_side);
  // Rows, then columns.
  const std::vector<Taps> ty = filter_taps(h, oh), tx = filter_taps(w, ow);
  std::vector<float> mid(static_cast<std::size_t>(oh * w * 3), 0.0f);
  for (std::int64_t o = 0; o < oh; ++o) {
    const Taps& t = ty[static_cast<std::size_t>(o)];
    float* dst = mid.data() + o * w * 3;
    for (std::size_t k = 0; k < t.w.size(); ++k) {
      const float* src = rgb.data() + (t.first + static_cast<std::int64_t>(k)) * w * 3;
      for (std::int64_t j = 0; j < w * 3; ++j) dst[j] += t.w[k] * src[j];
    }
  }
  Tensor out = zeros({1, oh, ow, 3});
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < oh; ++i)
    for (std::int64_t j = 0; j < ow; ++j) {
      const Taps& t = tx[static_cast<std::size_t>(j)];
      for (std::size_t k = 0; k < t.w.size(); ++k)
        for (std::int64_t ch = 0; ch < 3; ++ch)
          o[(i * ow + j) * 3 + ch] += t.w[k] * mid[static_cast<std::size_t>((i * w + t.first + static_cast<std::int64_t>(k)) * 3 + ch)];
    }
  return out;
}

Tensor to_picture(const Tensor& image) {
  SYN_CHECK(image.ndim() == 4 && image.dim(0) == 1, "to_picture: expected an image [1, H, W, C], found {}", to_string(image.shape()));
  NoGradGuard ng;
  return clip(reshape(image.detach(), {image.dim(1), image.dim(2), image.dim(3)}), 0.0f, 1.0f).clone();
}

// ---------------------------------------------------------------- the optimisation
StylizeResult stylize(FeatureNetwork& net, const Tensor& content, const Tensor& style, const StylizeOptions& o) {
  SYN_CHECK(o.iterations >= 1, "stylize: iterations must be >= 1, found {}", o.iterations);
  SYN_CHECK(o.content_weight >= 0 && o.style_weight >= 0 && o.tv_weight >= 0,
            "stylize: the weights must be >= 0, found content {}, style {}, tv {}", o.content_weight, o.style_weight, o.tv_weight);
  SYN_CHECK(o.optimizer == "lbfgs" || o.optimizer == "adam", "stylize: unknown optimizer '{}', expected lbfgs or adam", o.optimizer);
  SYN_CHECK(o.init == "content" || o.init == "noise", "stylize: unknown init '{}', expected content or noise", o.init);
  const std::vector<std::string> content_layers = o.content_layers.empty() ? net.default_content_layers : o.content_layers;
  const std::vector<std::string> style_layers = o.style_layers.empty() ? net.default_style_layers : o.style_layers;
  SYN_CHECK(!content_layers.empty() && !style_layers.empty(), "stylize: {} has no default layers; name them", net.describe());
  const Tensor c = prepare_image(content, o.size, 16, "content image");
  const Tensor s = prepare_image(style, o.size, 16, "style image");
  std::vector<std::string> all = content_layers;
  for (const auto& n : style_layers)
    if (std::find(all.begin(), all.end(), n) == all.end()) all.push_back(n);
  // The targets: the content's features and the style's Gram matrices, computed once.
  std::map<std::string, Tensor> content_targets, style_targets;
  {
    NoGradGuard ng;
    const auto fc = net.features(c, content_layers);
    for (const auto& n : content_layers) content_targets[n] = fc.at(n).detach();
    const auto fs = net.features(s, style_layers);
    for (const auto& n : style_layers) style_targets[n] = gram_matrix(fs.at(n)).detach();
  }
  Tensor x;
  if (o.init == "content") {
    x = c.clone();
  } else {
    Generator gen(o.seed);
    x = random_uniform(c.shape(), 0.0f, 1.0f, &gen);
  }
  x.requires_grad_();
  StylizeResult r;
  const auto cw = static_cast<float>(o.content_weight / static_cast<double>(content_layers.size()));
  const auto sw = static_cast<float>(o.style_weight / static_cast<double>(style_layers.size()));
  const auto tw = static_cast<float>(o.tv_weight);
  auto loss_of = [&] {
    const auto f = net.features(x, all);
    Tensor lc = scalar(0.0f), ls = scalar(0.0f);
    for (const auto& n : content_layers) lc = lc + content_loss(f.at(n), content_targets.at(n));
    for (const auto& n : style_layers) ls = ls + style_loss(f.at(n), style_targets.at(n));
    lc = lc * cw;
    ls = ls * sw;
    const Tensor lt = total_variation_loss(x) * tw;
    r.content = lc.item<float>();
    r.style = ls.item<float>();
    r.tv = lt.item<float>();
    ++r.evaluations;
    return lc + ls + lt;
  };
  const auto start = std::chrono::steady_clock::now();
  int done = 0;
  if (o.optimizer == "lbfgs") {
    optim::LBFGS opt({{"image", x}}, {.max_iterations = o.iterations,
                                       .max_evaluations = o.iterations * 5 / 4 + 10,
                                       .tolerance_grad = 0.0,
                                       .tolerance_change = 0.0,
                                       .history_size = 100});
    opt.on_iteration = [&](double loss) {
      r.losses.push_back(loss);
      ++done;
      if (o.on_iteration) o.on_iteration(done, loss, x);
    };
    bool first = true;
    opt.step([&] {
      opt.zero_grad();
      Tensor l = loss_of();
      l.backward();
      if (first) r.losses.push_back(l.item<float>()), first = false;
      return l;
    });
  } else {
    optim::Adam opt({{"image", x}}, {.learning_rate = o.learning_rate});
    for (int i = 0; i < o.iterations; ++i) {
      opt.zero_grad();
      Tensor l = loss_of();
      l.backward();
      if (r.losses.empty()) r.losses.push_back(l.item<float>());
      opt.step();
      {
        NoGradGuard ng;
        float* p = x.data<float>();
        for (std::int64_t k = 0; k < x.numel(); ++k) p[k] = std::clamp(p[k], 0.0f, 1.0f);
      }
      ++done;
      // The loss after the step is measured at the next evaluation; report the one just taken.
      r.losses.push_back(l.item<float>());
      if (o.on_iteration) o.on_iteration(done, l.item<float>(), x);
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.image = to_picture(x);
  return r;
}

}  // namespace synapse::apps
