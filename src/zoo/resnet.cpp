// resnet-small: a CIFAR ResNet (He et al. 2016, section 4.2; ResNet-20 with n = 3) for 32x32 colour
// images or any other size: conv3x3x16 + BN + ReLU, three stages of n basic blocks (16, 32, 64 filters;
// the first block of stages 2 and 3 has stride 2), global average pooling, one output per class. A block
// is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1 projection + BN where the
// shape changes (the paper's option B), else the identity. Blocks are Modules (ResidualBlock below), so
// the model builds for whatever input shape it first sees (image folders of any --image-size, grey or
// RGB), saves its state as "stage2_block1/conv1/kernel", ... and exports to ONNX like any Module (the
// export traces the ops).
#include <fmt/format.h>

#include "synapse/data.h"
#include "synapse/ops.h"
#include "synapse/zoo.h"

namespace synapse::zoo {
namespace {

nn::BatchNormalizationOptions bn(const char* name) {
  // PyTorch's momentum (0.1 there, 0.9 in Keras' convention), so the moving statistics settle within a
  // short run.
  return nn::BatchNormalizationOptions().momentum(0.9f).epsilon(1e-5f).name(name);
}

std::shared_ptr<nn::Module> conv(std::int64_t filters, std::int64_t size, std::int64_t stride, const char* name) {
  return nn::Conv2D(nn::Conv2DOptions(filters, {size, size})
                        .strides({stride, stride})
                        .padding(Padding::Same)
                        .use_bias(false)  // BN follows
                        .kernel_initializer(nn::Initializer::he_normal())
                        .name(name));
}

class ResidualBlock : public nn::Module {
 public:
  ResidualBlock(std::int64_t in_channels, std::int64_t filters, std::int64_t stride) : Module("ResidualBlock") {
    conv1_ = add_module(conv(filters, 3, stride, "conv1"));
    bn1_ = add_module(nn::BatchNormalization(bn("bn1")));
    conv2_ = add_module(conv(filters, 3, 1, "conv2"));
    bn2_ = add_module(nn::BatchNormalization(bn("bn2")));
    if (stride != 1 || in_channels != filters) {
      proj_ = add_module(conv(filters, 1, stride, "shortcut"));
      proj_bn_ = add_module(nn::BatchNormalization(bn("shortcut_bn")));
    }
  }
  Tensor forward(const Tensor& x) override {
    const Tensor h = relu((*bn1_)((*conv1_)(x)));
    const Tensor shortcut = proj_ ? (*proj_bn_)((*proj_)(x)) : x;
    return relu(add((*bn2_)((*conv2_)(h)), shortcut));
  }

 private:
  nn::ModulePtr conv1_, bn1_, conv2_, bn2_, proj_, proj_bn_;
};

// Global average pooling as one H x W average pool and a reshape: ONNX AveragePool, which OpenCV's dnn
// reads (GlobalAveragePooling2D's mean exports as opset 13's ReduceSum, which OpenCV 4.6 cannot import).
class GlobalAveragePool : public nn::Module {
 public:
  GlobalAveragePool() : Module("GlobalAveragePool") {}
  Tensor forward(const Tensor& x) override {
    const Tensor pooled = avg_pool2d(x, {.pool_size = {x.dim(1), x.dim(2)}, .strides = {1, 1}});
    return reshape(pooled, {-1, x.dim(3)});
  }
};

}  // namespace

nn::ModulePtr resnet_small(std::int64_t classes, int blocks_per_stage) {
  std::vector<nn::ModulePtr> layers{conv(16, 3, 1, "conv1"), nn::BatchNormalization(bn("bn1")), nn::ReLU("relu1")};
  std::int64_t in = 16;
  for (int stage = 0; stage < 3; ++stage) {
    const std::int64_t filters = std::int64_t{16} << stage;
    for (int b = 0; b < blocks_per_stage; ++b) {
      auto block = std::make_shared<ResidualBlock>(in, filters, stage > 0 && b == 0 ? 2 : 1);
      block->set_name(fmt::format("stage{}_block{}", stage + 1, b + 1));
      layers.push_back(block);
      in = filters;
    }
  }
  auto pool = std::make_shared<GlobalAveragePool>();
  pool->set_name("pool");
  layers.push_back(pool);
  layers.push_back(nn::Dense(nn::DenseOptions(classes).name("logits")));
  return nn::Sequential(std::move(layers));
}

void add_resnet_recipe(std::vector<Recipe>& r) {
  Recipe res;
  res.name = "resnet-small";
  res.description = "ResNet-20: conv3x3x16 -> 3 stages x 3 residual blocks (16/32/64, BN, 1x1 projections) -> global avg pool -> fcN";
  res.data = "cifar10";  // `train image-folder --model resnet-small` trains it on folders of any number of classes
  res.build_classes = [](std::int64_t classes) { return resnet_small(classes, 3); };
  res.build = [f = res.build_classes] { return f(10); };
  // He et al.'s CIFAR schedule, shortened: SGD momentum 0.9, lr 0.1, batch 128, weight decay 1e-4 on the
  // kernels; the learning rate falls by 0.9 per epoch instead of the two tenfold steps of 164 epochs.
  res.optimizer = "momentum";
  res.momentum = 0.9;
  res.learning_rate = 0.1;
  res.batch_size = 128;
  res.epochs = 30;
  res.lr_epoch_factor = 0.9;
  res.l2 = 1e-4f;
  // The paper's augmentation (4-pixel padded random crop, left-right flip) at the batch's own size, then
  // per-image standardisation, which validation, test, eval and predict apply too.
  res.augment = [](const Tensor& x, std::uint64_t seed) {
    return data::compose({data::augment::random_crop(x.dim(1), x.dim(2), 4), data::augment::random_flip(),
                          data::augment::per_image_standardization()})(x, seed);
  };
  res.standardize = true;
  r.push_back(res);
}

}  // namespace synapse::zoo
