// Writes, for each zoo model (seeded random weights), OUTDIR/<name>.onnx and OUTDIR/<name>.npz holding
// a seeded input batch ("input", NHWC [4,28,28,1]) and Synapse's eager output ("output", [4,10]), for
// check_onnx.py to compare with onnx.checker and OpenCV's dnn.
#include <cstdio>
#include <filesystem>

#include "synapse/io.h"
#include "synapse/onnx.h"
#include "synapse/synapse.h"
#include "synapse/functional.h"  // after synapse.h, which it needs

int main(int argc, char** argv) {
  using namespace synapse;
  if (argc != 2) {
    std::fprintf(stderr, "usage: export_zoo OUTDIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  try {
    // The zoo, plus one model with the layers the zoo does not use (batch norm, average pooling,
    // strided SAME conv, sigmoid/tanh/softmax, dropout), and one whose batch normalisations the
    // exporter folds into a bias-free Conv, a depthwise (grouped) Conv and a Gemm.
    std::vector<std::string> names = zoo::names();
    names.push_back("extra-layers");
    names.push_back("bn-folded");
    for (const auto& name : names) {
      Generator gen(42);
      using nn::Activation;
      auto bn = [](const char* n) { return nn::BatchNormalization(nn::BatchNormalizationOptions().name(n)); };
      nn::ModulePtr model =
          name == "bn-folded"
              ? nn::Sequential(
                    {nn::Conv2D(nn::Conv2DOptions(8, {3, 3}).padding(Padding::Same).use_bias(false).name("conv")),
                     bn("bn1"), nn::ReLU(),
                     nn::DepthwiseConv2D(nn::DepthwiseConv2DOptions(3).strides({2, 2}).padding(Padding::Same).name("dw")),
                     bn("bn2"), nn::ReLU(), nn::Flatten(), nn::Dense(nn::DenseOptions(16).name("fc")), bn("bn3"),
                     nn::Dense(nn::DenseOptions(10).name("out"))})
          : name != "extra-layers"
              ? zoo::recipe(name).build()
              : nn::Sequential(
                    {nn::Conv2D(nn::Conv2DOptions(8, {3, 3}).strides({2, 2}).padding(Padding::Same).name("conv")),
                     nn::BatchNormalization(nn::BatchNormalizationOptions().name("bn")), nn::Tanh(),
                     nn::AvgPool2D(nn::Pool2DOptions(2).padding(Padding::Same).name("avg")), nn::Flatten(),
                     nn::Dropout(0.3f), nn::Dense(nn::DenseOptions(16).activation(Activation::Sigmoid)),
                     nn::Dense(nn::DenseOptions(10).activation(Activation::Softmax))});
      // MNIST models take [28, 28, 1] images; the colour ones (cifar-cnn, small-cnn) [32, 32, 3].
      const bool colour = name != "extra-layers" && name != "bn-folded" && zoo::recipe(name).data != "mnist";
      const std::int64_t side = colour ? 32 : 28, channels = colour ? 3 : 1;
      model->set_generator(&gen);
      model->build_for({1, side, side, channels});
      // Zero-initialised models (softmax) would give a trivial output: draw every parameter.
      for (auto& [pname, p] : model->named_parameters()) {
        Tensor v = random_uniform(p.shape(), -0.2f, 0.2f, &gen);
        std::copy_n(v.data<float>(), v.numel(), p.data<float>());
      }
      for (auto& [bname, b] : model->named_buffers()) {  // moving statistics away from 0 and 1
        Tensor v = random_uniform(b.shape(), 0.5f, 1.5f, &gen);
        std::copy_n(v.data<float>(), v.numel(), b.data<float>());
      }
      model->eval();
      Tensor x = random_uniform({4, side, side, channels}, 0.0f, 1.0f, &gen);
      Tensor y;
      {
        NoGradGuard no_grad;
        y = (*model)(x);
      }
      const auto info = onnx::export_model(*model, {-1, side, side, channels}, (dir / (name + ".onnx")).string());
      io::save_npz((dir / (name + ".npz")).string(), {{"input", x}, {"output", y}});
      std::printf("%s: %d nodes, %d initializers, %d batch norms folded\n", name.c_str(), info.node_count,
                  info.initializer_count, info.folded_batch_norms);
      if (name == "bn-folded" && info.folded_batch_norms != 3) {
        std::fprintf(stderr, "export_zoo: bn-folded: expected 3 folded batch normalisations, got %d\n",
                     info.folded_batch_norms);
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_zoo: %s\n", e.what());
    return 1;
  }
  return 0;
}
