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

}  // namespace

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
    d.split.train_x = r.augment ? train[0] : standardized(train[0], r.standardize);
    d.split.train_y = train[1];
    d.split.val_x = standardized(valid[0], r.standardize);
    d.split.val_y = valid[1];
    d.split.test_x = standardized(c.test.images, r.standardize);
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
  const Tensor& x = d.split.train_x;
  d.input = Shape(x.shape().begin() + 1, x.shape().end());
  return d;
}

std::pair<Tensor, Tensor> load_test_set(const Trained& t, const std::string& dir) {
  const Recipe& r = recipe(t.name);
  const auto& meta = t.checkpoint.metadata;
  const auto get = [&](const std::string& key, const std::string& fallback) {
    auto it = meta.find(key);
    return it == meta.end() ? fallback : it->second;
  };
  const std::string format = get("data", r.data);
  if (format == "mnist") {
    const data::Mnist m = data::load_mnist(dir);
    return {images_to_float(m.test_images), cast(m.test_labels, DType::Int64)};
  }
  if (format == "cifar10") {
    const data::Cifar c = data::load_cifar10(dir);
    return {standardized(c.test.images, r.standardize), c.test.labels};
  }
  TrainRun run;
  run.image_size = std::stoll(get("image_size", "32"));
  run.channels = std::stoi(get("channels", "3"));
  run.validation_split = std::stod(get("validation_split", "0.2"));
  run.seed = std::stoull(get("seed", "0"));
  const bool tt = has_train_test(dir);
  data::ImageFolderOptions o = folder_options(run);
  if (tt) o.validation_split = 0;
  const data::ImageFolder folder(tt ? (fs::path(dir) / "test").string() : dir, o);
  const std::string names = fmt::format("{}", fmt::join(folder.class_names(), ","));
  SYN_CHECK(names == get("class_names", names), "'{}' has the classes {{{}}} but the model was trained on {{{}}}", dir, names,
            get("class_names", ""));
  return folder.load(tt ? data::Subset::All : data::Subset::Validation);
}

}  // namespace synapse::zoo
