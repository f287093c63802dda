// The zoo's colour-image recipes (TensorFlow's CIFAR-10 tutorial model; a small CNN for a user's own
// image folders) and their data: CIFAR-10 binary batches or an image folder.
#include <cmath>
#include <filesystem>

#include "core/check.h"
#include "synapse/data.h"
#include "synapse/zoo.h"

namespace synapse::zoo {
namespace fs = std::filesystem;
using nn::Activation;

void add_resnet_recipe(std::vector<Recipe>& r);  // resnet.cpp

void add_colour_image_recipes(std::vector<Recipe>& r) {
  // TensorFlow's CIFAR-10 tutorial (models/tutorials/image/cifar10/cifar10.py): conv 5x5x64, max-pool
  // 3x3/2, LRN, conv 5x5x64, LRN, max-pool 3x3/2, fc384, fc192, fc10; weight decay 0.004 on fc384 and
  // fc192; SGD 0.1, batch 128, a 0.9999 moving average of the weights for evaluation. The tutorial crops
  // 24x24 windows; here the model keeps the 32x32 image (zero-padded crop by up to 4 pixels), so fc384
  // sees 8x8x64 inputs instead of 6x6x64.
  Recipe cifar;
  cifar.name = "cifar-cnn";
  cifar.description = "conv5x5x64 -> pool3/2 -> LRN -> conv5x5x64 -> LRN -> pool3/2 -> fc384 -> fc192 -> fc10 (TF CIFAR-10 tutorial)";
  cifar.data = "cifar10";
  cifar.build = [] {
    const auto conv_w = nn::Initializer::truncated_normal(0.0f, 5e-2f);
    const auto fc_w = nn::Initializer::truncated_normal(0.0f, 0.04f);
    const auto pool = [](const char* name) {
      return nn::MaxPool2D(nn::Pool2DOptions(3).strides({2, 2}).padding(Padding::Same).name(name));
    };
    const auto norm = [](const char* name) {
      return nn::LocalResponseNormalization(
          nn::LocalResponseNormalizationOptions().depth_radius(4).bias(1.0f).alpha(0.001f / 9.0f).beta(0.75f).name(name));
    };
    return nn::Sequential(
        {nn::Conv2D(nn::Conv2DOptions(64, {5, 5}).padding(Padding::Same).activation(Activation::ReLU).kernel_initializer(conv_w).name("conv1")),
         pool("pool1"), norm("norm1"),
         nn::Conv2D(nn::Conv2DOptions(64, {5, 5})
                        .padding(Padding::Same)
                        .activation(Activation::ReLU)
                        .kernel_initializer(conv_w)
                        .bias_initializer(nn::Initializer::constant(0.1f))
                        .name("conv2")),
         norm("norm2"), pool("pool2"), nn::Flatten(),
         nn::Dense(nn::DenseOptions(384).activation(Activation::ReLU).kernel_initializer(fc_w).bias_initializer(nn::Initializer::constant(0.1f)).name("local3")),
         nn::Dense(nn::DenseOptions(192).activation(Activation::ReLU).kernel_initializer(fc_w).bias_initializer(nn::Initializer::constant(0.1f)).name("local4")),
         nn::Dense(nn::DenseOptions(10).kernel_initializer(nn::Initializer::truncated_normal(0.0f, 1.0f / 192.0f)).name("softmax_linear"))});
  };
  cifar.optimizer = "sgd";
  cifar.learning_rate = 0.1;
  cifar.batch_size = 128;
  cifar.epochs = 30;  // the tutorial's 86% needs ~256 epochs (100k steps); see the README
  cifar.l2 = 0.004f;
  cifar.l2_layers = {"local3", "local4"};
  cifar.ema_decay = 0.9999;
  // The tutorial's distortions (brightness +-63/255, contrast 0.2..1.8, random crop, flip), then
  // per-image standardisation, which evaluation applies too.
  cifar.augment = data::compose({data::augment::random_crop(32, 32, 4), data::augment::random_flip(),
                                 data::augment::random_brightness(63.0f / 255.0f), data::augment::random_contrast(0.2f, 1.8f),
                                 data::augment::per_image_standardization()});
  cifar.standardize = true;
  r.push_back(cifar);

  // A small CNN for a user's own image folders (Keras's image-classification tutorial, without its
  // rescaling layer: images arrive in [0, 1]).
  Recipe small;
  small.name = "small-cnn";
  small.description = "conv3x3x16 -> pool -> conv3x3x32 -> pool -> conv3x3x64 -> pool -> fc128 -> fcN (image folders)";
  small.data = "image-folder";
  small.build_classes = [](std::int64_t classes) {
    const auto conv = [](std::int64_t f, const char* name) {
      return nn::Conv2D(nn::Conv2DOptions(f, {3, 3}).padding(Padding::Same).activation(Activation::ReLU).name(name));
    };
    return nn::Sequential({conv(16, "conv1"), nn::MaxPool2D(nn::Pool2DOptions(2).name("pool1")), conv(32, "conv2"),
                           nn::MaxPool2D(nn::Pool2DOptions(2).name("pool2")), conv(64, "conv3"),
                           nn::MaxPool2D(nn::Pool2DOptions(2).name("pool3")), nn::Flatten(),
                           nn::Dense(nn::DenseOptions(128).activation(Activation::ReLU).name("fc1")),
                           nn::Dense(nn::DenseOptions(classes).name("logits"))});
  };
  small.build = [f = small.build_classes] { return f(10); };
  small.optimizer = "adam";
  small.learning_rate = 1e-3;
  small.batch_size = 32;
  small.epochs = 10;
  r.push_back(small);
  add_resnet_recipe(r);
}

nn::ModulePtr build_model(const Recipe& recipe, std::int64_t classes) {
  return recipe.build_classes ? recipe.build_classes(classes) : recipe.build();
}

namespace {

data::ImageFolderOptions folder_options(const TrainRun& run) {
  SYN_CHECK(run.image_size >= 1, "--image-size must be >= 1, got {}", run.image_size);
  return {.height = run.image_size, .width = run.image_size, .channels = run.channels,
          .validation_split = run.validation_split, .seed = run.seed};
}

// DIR/train and DIR/test when both are there, else DIR alone.
bool has_train_test(const std::string& dir) {
  return fs::is_directory(fs::path(dir) / "train") && fs::is_directory(fs::path(dir) / "test");
}

Tensor standardized(const Tensor& x, bool on) { return on ? data::per_image_standardization(x) : x; }

std::string meta_value(const io::Checkpoint& c, const std::string& key, const std::string& fallback) {
  auto it = c.metadata.find(key);
  return it == c.metadata.end() ? fallback : it->second;
}

std::vector<std::string> split_names(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= s.size();) {
    const std::size_t comma = std::min(s.find(sep, at), s.size());
    out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

}  // namespace

std::function<Tensor(const Tensor&, std::uint64_t)> training_augmentation(const Recipe& r, const TrainRun& run) {
  if (run.augment_shift == 0) return {};  // --augment 0: the training images as they are
  const int shift = run.augment_shift > 0 ? run.augment_shift : r.augment_shift;
  std::function<Tensor(const Tensor&, std::uint64_t)> translate;
  if (shift > 0) translate = [shift](const Tensor& x, std::uint64_t seed) { return data::random_translate(x, shift, seed); };
  if (!r.augment) return translate;
  if (!translate) return r.augment;
  return data::compose({translate, r.augment});  // moved first, then the recipe's own (ending with standardisation)
}

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names{"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

ModelInput model_input(const io::Checkpoint& c) {
  ModelInput in;
  const std::string model = meta_value(c, "model", "");
  in.data = meta_value(c, "data", "mnist");
  if (in.data != "mnist") {
    const std::string shape = meta_value(c, "input_shape", "");
    SYN_CHECK(!shape.empty(), "the model's metadata has data '{}' but no input_shape", in.data);
    in.shape.clear();
    for (const std::string& d : split_names(shape, 'x')) in.shape.push_back(std::stoll(d));
    SYN_CHECK(in.shape.size() == 3, "the model's input_shape '{}' is not HxWxC", shape);
  }
  if (!model.empty()) in.standardize = recipe(model).standardize;
  const std::string names = meta_value(c, "class_names", "");
  const std::int64_t classes = std::stoll(meta_value(c, "classes", "10"));
  if (!names.empty()) {
    in.class_names = split_names(names);
  } else if (in.data == "cifar10" && classes == 10) {
    in.class_names = cifar10_class_names();
  } else {
    for (std::int64_t k = 0; k < classes; ++k) in.class_names.push_back(std::to_string(k));
  }
  return in;
}

Tensor image_for_model(const ModelInput& in, const Tensor& image, const std::string& name) {
  if (in.data == "mnist") {
    try {
      return reshape(data::mnist_style(image), {28, 28, 1});
    } catch (const std::exception& e) {
      detail::fail("'{}': {}", name, e.what());
    }
  }
  return data::to_float_image(image, in.shape[0], in.shape[1], static_cast<int>(in.shape[2]), name);
}

Tensor model_ready(const ModelInput& in, const Tensor& images) { return standardized(images, in.standardize); }

RecipeData load_recipe_data(const Recipe& r, const TrainRun& run) {
  RecipeData d;
  if (r.data == "mnist") {
    d.split = load_mnist_split(run.data_dir);
  } else if (r.data == "cifar10") {
    SYN_CHECK(fs::is_directory(run.data_dir),
              "data folder '{}' does not exist (CIFAR-10 cannot be fetched here: unpack cifar-10-binary.tar.gz and pass "
              "--data with its folder)",
              run.data_dir);
    const data::Cifar c = data::load_cifar10(run.data_dir);
    const std::int64_t n = c.train.images.dim(0), val = std::min<std::int64_t>(5000, n / 10);
    auto [train, valid] = data::split({c.train.images, c.train.labels}, n - val);
    d.split.train_x = train[0];
    d.split.train_y = train[1];
    d.split.val_x = valid[0];
    d.split.val_y = valid[1];
    d.split.test_x = c.test.images;
    d.split.test_y = c.test.labels;
  } else {
    SYN_CHECK(r.data == "image-folder", "recipe '{}': unknown data format '{}'", r.name, r.data);
    const bool tt = has_train_test(run.data_dir);
    const data::ImageFolder folder(tt ? (fs::path(run.data_dir) / "train").string() : run.data_dir, folder_options(run));
    std::tie(d.split.train_x, d.split.train_y) = folder.load(data::Subset::Training);
    if (run.validation_split > 0) std::tie(d.split.val_x, d.split.val_y) = folder.load(data::Subset::Validation);
    if (tt) {
      data::ImageFolderOptions o = folder_options(run);
      o.validation_split = 0;
      const data::ImageFolder test((fs::path(run.data_dir) / "test").string(), o);
      SYN_CHECK(test.class_names() == folder.class_names(), "'{}/test' has the classes {{{}}} but '{}/train' has {{{}}}",
                run.data_dir, fmt::join(test.class_names(), ", "), run.data_dir, fmt::join(folder.class_names(), ", "));
      std::tie(d.split.test_x, d.split.test_y) = test.load();
    } else {
      SYN_CHECK(run.validation_split > 0, "image folder '{}' has no train/ and test/ folders: --validation-split must be > 0",
                run.data_dir);
      d.split.test_x = d.split.val_x, d.split.test_y = d.split.val_y;
    }
    d.class_names = folder.class_names();
    d.classes = static_cast<std::int64_t>(d.class_names.size());
    SYN_CHECK(r.build_classes || d.classes == 10, "model '{}' has 10 outputs but image folder '{}' has {} classes ({}); "
              "use --model small-cnn", r.name, run.data_dir, d.classes, fmt::join(d.class_names, ", "));
  }
  // Per-image standardisation (the recipe's): validation and test images always; the training images
  // here only when no augmentation runs (the recipe's own ends with it).
  if (r.standardize) {
    if (!(r.augment && training_augmentation(r, run))) d.split.train_x = standardized(d.split.train_x, true);
    if (d.split.val_x.defined()) d.split.val_x = standardized(d.split.val_x, true);
    d.split.test_x = standardized(d.split.test_x, true);
  }
  const Tensor& x = d.split.train_x;
  d.input = Shape(x.shape().begin() + 1, x.shape().end());
  return d;
}

std::pair<Tensor, Tensor> load_test_set(const io::Checkpoint& c, const std::string& dir, bool prepared) {
  const ModelInput in = model_input(c);
  const auto ready = [&](std::pair<Tensor, Tensor> xy) {
    if (prepared) xy.first = model_ready(in, xy.first);
    return xy;
  };
  if (in.data == "mnist") {
    const data::Mnist m = data::load_mnist(dir);
    return {images_to_float(m.test_images), cast(m.test_labels, DType::Int64)};
  }
  if (in.data == "cifar10") {
    const data::Cifar cifar = data::load_cifar10(dir);
    return ready({cifar.test.images, cifar.test.labels});
  }
  TrainRun run;
  run.image_size = std::stoll(meta_value(c, "image_size", "32"));
  run.channels = std::stoi(meta_value(c, "channels", "3"));
  run.validation_split = std::stod(meta_value(c, "validation_split", "0.2"));
  run.seed = std::stoull(meta_value(c, "seed", "0"));
  const bool tt = has_train_test(dir);
  data::ImageFolderOptions o = folder_options(run);
  if (tt) o.validation_split = 0;
  const data::ImageFolder folder(tt ? (fs::path(dir) / "test").string() : dir, o);
  const std::string names = fmt::format("{}", fmt::join(folder.class_names(), ","));
  SYN_CHECK(names == meta_value(c, "class_names", names), "'{}' has the classes {{{}}} but the model was trained on {{{}}}",
            dir, names, meta_value(c, "class_names", ""));
  return ready(folder.load(tt ? data::Subset::All : data::Subset::Validation));
}

}  // namespace synapse::zoo
