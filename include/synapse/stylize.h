// Neural style transfer (Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style", 2015): an
// image is optimised so that its features in a convolutional network match a content image's at the
// content layers, and the Gram matrices of its features (which channels fire together, wherever they
// fire) match a style image's at the style layers.
//
//   auto net = apps::load_feature_network("vgg19.onnx");          // or apps::random_vgg(seed), any Module
//   apps::StylizeOptions o;  o.size = 384;  o.iterations = 200;
//   apps::StylizeResult r = apps::stylize(*net, data::read_image("photo.jpg"), data::read_image("art.jpg"), o);
//   data::write_image("out.jpg", r.image);
//
// The feature network is the abstraction: given an image [1, H, W, 3] (RGB in [0, 1]) it returns named
// feature maps, differentiable with respect to the image (eager autograd). Three kinds exist: an
// nn::Module (a Sequential taps the outputs of its children by name), a functional nn::Model such as an
// imported Keras network (any layer's output by name), and an ONNX file (any named tensor of the file,
// computed by replaying the imported graph's ops eagerly on the image, so the image may have any size a
// fully convolutional prefix allows). Preprocessing (scale, mean, std, RGB/BGR, NCHW) belongs to the
// network, as its options.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "synapse/nn.h"
#include "synapse/tensor.h"

namespace synapse::apps {

// What the network expects: x = ((rgb · scale) [reversed to BGR] - mean) / std, per channel in the
// network's order, then NCHW when channels_first. Defaults: the image as it is.
struct Preprocess {
  float scale = 1.0f;
  std::vector<float> mean{0.0f, 0.0f, 0.0f};
  std::vector<float> std{1.0f, 1.0f, 1.0f};
  bool bgr = false;
  bool channels_first = false;
  // ImageNet's torchvision/ONNX-zoo convention: RGB in [0, 1], mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), NCHW.
  static Preprocess imagenet_nchw();
};

class FeatureNetwork {
 public:
  virtual ~FeatureNetwork() = default;
  // The tensors that can be tapped, in network order.
  virtual std::vector<std::string> layer_names() const = 0;
  // A short description for messages ("ONNX model vgg19.onnx", "Sequential 'random_vgg'").
  virtual std::string describe() const = 0;
  // The named feature maps [1, h, w, c] of `image` [1, H, W, 3] float32, differentiable w.r.t. it. Throws for an
  // unknown name, listing the available ones, and for a wrong image shape.
  std::map<std::string, Tensor> features(const Tensor& image, const std::vector<std::string>& names);
  // Default layers when the user names none. A module: each block's first convolution ("*_conv1") for
  // style and "block4_conv2" (Gatys' conv4_2) or else the middle layer for content; an ONNX file: five
  // ReLU outputs spread over the network for style, the one two thirds in for content.
  std::vector<std::string> default_content_layers;
  std::vector<std::string> default_style_layers;
  // Loss weights that suit the default layers' feature scale (MobileNetV2's features are far smaller than
  // VGG's: style 3e7, total variation 3), which `synapse stylize` uses when --style-weight / --tv-weight
  // are not given; 0: StylizeOptions' defaults.
  double default_style_weight = 0, default_tv_weight = 0;
  Preprocess preprocess;

 protected:
  // x preprocessed; `names` already checked.
  virtual std::map<std::string, Tensor> run(const Tensor& x, const std::vector<std::string>& names) = 0;
};

// (a) A module. A Sequential taps its children's outputs by name (and "output"); any other module only
// "output". The module is put in inference mode and its parameters are not trained.
std::unique_ptr<FeatureNetwork> module_features(nn::ModulePtr module);
// (b) An ONNX model: any rank-4 float node output by its ONNX tensor name, read as NCHW (ONNX's Conv
// layout, also inside the files Synapse exports) and returned NHWC like every feature here. The input may
// be NHWC or NCHW (preprocess.channels_first is set from its shape). The initializers are constants.
std::unique_ptr<FeatureNetwork> onnx_features(const std::string& path);
// (c) A functional model (nn::Model: an imported Keras network, the .syn of `synapse import-keras`): the
// output of any layer whose output is an image batch [N, h, w, c], by the layer's name (Model::outputs_of
// computes only what the requested layers need). Its input accepts images of any size (a convolutional
// prefix does not care; the model's InputLayer is switched to that, set_any_spatial_size). The model is put
// in inference mode and its parameters are not trained. fold_bn: every BatchNormalization after a
// convolution is folded into it first (Model::fold_batch_norm: the same features with one op less per
// convolution; the folded BatchNormalization layers are then not among the names). Default layers: for
// Keras' MobileNetV2 names, style Conv1_relu, block_1_expand_relu (both 1/2 of the image),
// block_3_expand_relu (1/4), block_6_expand_relu (1/8), block_13_expand_relu (1/16) and content
// block_6_expand_relu, with loss weights style 3e7, tv 3; for Keras' VGG names, the module rule above;
// otherwise the ONNX rule over the ReLU/activation layers.
std::unique_ptr<FeatureNetwork> model_features(std::shared_ptr<nn::layers::Model> model, bool fold_bn = true);
// By file: *.onnx as (b); a TF.js layers-model (model.json, or a folder holding one) or a .syn holding a
// Keras config (`synapse import-keras`) as (c); otherwise a model file or run folder of the zoo
// (zoo::load_trained) as (a).
std::unique_ptr<FeatureNetwork> load_feature_network(const std::string& path, bool fold_bn = true);

// The network `synapse stylize` uses when none is named: the best one on the machine, and why it was
// chosen. In order: nsfwjs' MobileNetV2, an ImageNet-trained CNN (`scripts/fetch-data nsfwjs` puts it in
// data/nsfwjs), at <dir>/nsfwjs/mobilenet_v2/model.json for the first of `data_dirs` that has it (the
// command passes $SYNAPSE_DATA when set, then ./data); else random_vgg(seed, widths, convs).
struct ChosenNetwork {
  std::unique_ptr<FeatureNetwork> network;
  std::string reason;  // one line: which network and why
};
ChosenNetwork default_feature_network(const std::vector<std::string>& data_dirs, std::uint64_t seed = 1,
                                      std::vector<std::int64_t> widths = {32, 64, 128, 128},
                                      std::vector<int> convs = {2, 2, 2, 2});
// A VGG-shaped network with seeded random weights (He-normal, zero biases): blocks of 3x3 ReLU convs
// ("block1_conv1", "block1_conv2", "block1_pool", ... as Keras' VGG19 names them) of `widths[b]` filters
// each (convs[b] of them in block b), average pooling between blocks. widths {64, 128, 256, 512, 512} and
// convs {2, 2, 4, 4, 4} give VGG19's convolutional shape. Random features still carry texture statistics (Ulyanov et al.,
// "Texture Networks", 2016; He, Wang & Hopcroft, "A Powerful Generative Model Using Random Weights", 2016),
// so it serves when no pretrained network is at hand.
nn::ModulePtr random_vgg(std::uint64_t seed = 1, std::vector<std::int64_t> widths = {32, 64, 128, 128},
                         std::vector<int> convs = {2, 2, 2, 2});

// ---- the losses (eager ops, so autograd differentiates them) ----
// F [1, H, W, C] -> G = Fᵀ F [C, C], F seen as an (H·W) x C matrix (the Keras example's gram_matrix).
Tensor gram_matrix(const Tensor& features);
// Gatys' E_l: Σ (G(x) - G(s))² / (4 C² (H W)²), for features x [1, H, W, C] and a target Gram matrix.
Tensor style_loss(const Tensor& features, const Tensor& target_gram);
// Σ (F - P)² (the Keras example; Gatys writes 1/2 Σ (F - P)²).
Tensor content_loss(const Tensor& features, const Tensor& target);
// Σ over pixels and channels of (x[i+1, j] - x[i, j])² + (x[i, j+1] - x[i, j])² (the squared form, as
// neural-style; the Keras example raises each term to the power 1.25).
Tensor total_variation_loss(const Tensor& image);

// ---- images ----
// Any image from data::read_image ([H, W] or [H, W, 1|3|4], uint8 or 16-bit) as float32 RGB [1, h, w, 3] in
// [0, 1], resized (separable linear filter, widened when shrinking, i.e. area-like) so that its longer
// side is `longer_side` (0: unchanged). Throws when the result would be smaller than min_side.
Tensor prepare_image(const Tensor& image, std::int64_t longer_side, std::int64_t min_side = 16,
                     const std::string& name = "image");
// [1, H, W, 3] float -> [H, W, 3] clamped to [0, 1], for data::write_image.
Tensor to_picture(const Tensor& image);

struct StylizeOptions {
  std::int64_t size = 256;  // the output's longer side (the content image is resized to it; the style image too)
  int iterations = 100;     // L-BFGS iterations (or Adam steps)
  double content_weight = 1.0;
  double style_weight = 1e4;
  double tv_weight = 1e-3;
  std::vector<std::string> content_layers;  // empty: the network's defaults
  std::vector<std::string> style_layers;
  std::string optimizer = "lbfgs";  // "lbfgs" (strong Wolfe, history 100) or "adam"
  double learning_rate = 0.02;      // adam only: the step in pixel units ([0, 1] scale)
  std::string init = "content";     // start from "content" or from "noise" (seeded)
  std::uint64_t seed = 1;
  // Called after each iteration (1-based) with the image so far; for progress and intermediate images.
  std::function<void(int iteration, double loss, const Tensor& image)> on_iteration;
};

struct StylizeResult {
  Tensor image;                     // [H, W, 3] float32 in [0, 1] (to_picture: for data::write_image)
  std::vector<double> losses;       // total loss after each iteration (losses[0]: at the start)
  double content = 0, style = 0, tv = 0;  // weighted parts of the last evaluated loss
  std::int64_t evaluations = 0;     // forward + backward passes
  double seconds = 0;               // optimisation time (without loading, resizing and the targets)
};

// content, style: images as data::read_image gives them. The losses are summed as content_weight ·
// Σ content_loss / |content layers| + style_weight · Σ style_loss / |style layers| + tv_weight · tv.
// L-BFGS optimises the raw pixels (clamped to [0, 1] only when the picture is taken, as neural-style
// and the Keras example); Adam clamps after each step.
StylizeResult stylize(FeatureNetwork& net, const Tensor& content, const Tensor& style, const StylizeOptions& o);

}  // namespace synapse::apps
