// synapse import-keras MODEL -o model.syn: a Keras / TF.js layers-model (model.json with its weight
// shards, or a plain Keras config without weights) into a Synapse checkpoint that carries the config;
// optionally its summary, an ONNX export and predictions on image files. MODEL may also be a .syn
// written before, so the checkpoint path serves summary, export and predict without the JSON.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "synapse/keras.h"
#include "synapse/onnx.h"

namespace synapse::cli {

namespace {

// uint8 [H, W, C] (C >= 3) -> float32 [h, w, 3] / 255 (the first three channels), bilinear as TensorFlow's resize_bilinear (no corner
// alignment, no half-pixel centres: source = destination * in / out), what TF.js models are fed.
Tensor resize_bilinear01(const Tensor& img, std::int64_t h, std::int64_t w) {
  const std::int64_t ih = img.dim(0), iw = img.dim(1), c = img.dim(2);
  Tensor out = zeros({h, w, 3});
  const std::uint8_t* src = img.data<std::uint8_t>();
  float* dst = out.data<float>();
  for (std::int64_t y = 0; y < h; ++y) {
    const float fy = static_cast<float>(y) * static_cast<float>(ih) / static_cast<float>(h);
    const std::int64_t y0 = static_cast<std::int64_t>(fy), y1 = std::min(y0 + 1, ih - 1);
    const float dy = fy - static_cast<float>(y0);
    for (std::int64_t x = 0; x < w; ++x) {
      const float fx = static_cast<float>(x) * static_cast<float>(iw) / static_cast<float>(w);
      const std::int64_t x0 = static_cast<std::int64_t>(fx), x1 = std::min(x0 + 1, iw - 1);
      const float dx = fx - static_cast<float>(x0);
      for (std::int64_t k = 0; k < 3; ++k) {
        auto at = [&](std::int64_t yy, std::int64_t xx) { return static_cast<float>(src[(yy * iw + xx) * c + k]); };
        const float top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * dx;
        const float bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * dx;
        dst[(y * w + x) * 3 + k] = (top + (bottom - top) * dy) / 255.0f;
      }
    }
  }
  return out;
}

}  // namespace

Command add_import_keras(CLI::App& app) {
  struct Args {
    std::string model, output, onnx;
    bool summary = false;
    std::vector<std::string> images;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("import-keras", "Import a Keras / TF.js layers-model (model.json + weight shards)");
  sub->add_option("model", a->model, "model.json (TF.js layers-model or a Keras model.to_json()), or a .syn from before")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--output", a->output, "The Synapse checkpoint to write (weights + the Keras config)");
  sub->add_flag("--summary", a->summary, "Print the model's summary");
  sub->add_option("--onnx", a->onnx, "Also export the model to this ONNX file (batch 1, batch norm folded)");
  sub->add_option("--predict", a->images, "Image files to classify (resized to the input size, scaled to [0, 1])")
      ->check(CLI::ExistingFile);
  return {sub, [a] {
            const bool syn = std::filesystem::path(a->model).extension() == ".syn";
            keras::Imported m;
            if (syn) {
              m = keras::load(a->model);
            } else {
              // Weights when the file has a manifest; otherwise the config alone (fresh weights).
              try {
                m = keras::load_tfjs(a->model);
              } catch (const Error& e) {
                if (std::string(e.what()).find("has no weightsManifest") == std::string::npos) throw;
                std::ifstream in(a->model);
                std::ostringstream ss;
                ss << in.rdbuf();
                m = keras::model_from_json(ss.str());
                fmt::print("note: {} has no weights (no weightsManifest): the model has fresh weights\n", a->model);
              }
            }
            m.model->eval();
            const Shape in = m.model->inputs()[0].shape();
            fmt::print("model: {} ({} layers, {} parameters, input {})\n", m.model->name(), m.model->children().size(),
                       m.model->count_parameters(), to_string(in));
            if (a->summary) m.model->summary();
            if (!a->output.empty()) {
              keras::save(a->output, m);
              fmt::print("wrote {}\n", a->output);
            }
            if (!a->onnx.empty()) {
              Shape one = in;
              one[0] = 1;
              // Batch normalisation folded into the convolutions before it (Model::fold_batch_norm).
              auto folded = m.model->fold_batch_norm();
              const onnx::ExportInfo info = onnx::export_model(*folded, one, a->onnx);
              fmt::print("wrote {}: {} nodes ({}), {} initializers\n", a->onnx, info.node_count,
                         fmt::join(info.op_types, ", "), info.initializer_count);
            }
            for (const auto& path : a->images) {
              if (in.size() != 4 || in[3] != 3)
                throw Error(fmt::format("--predict: the model's input {} is not an RGB image [N, H, W, 3]", to_string(in)));
              const Tensor img = data::read_image(path);
              if (img.ndim() != 3 || img.dim(2) < 3)
                throw Error(fmt::format("--predict: {} is not an RGB image ({})", path, to_string(img.shape())));
              const Tensor x = unsqueeze(resize_bilinear01(img, in[1], in[2]), 0);
              const auto p = (*m.model)(x).to_vector<float>();
              std::vector<std::size_t> order(p.size());
              for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
              std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return p[i] > p[j]; });
              std::string top;
              for (std::size_t k = 0; k < std::min<std::size_t>(3, order.size()); ++k)
                top += fmt::format("{}class {}: {:.4f}", k ? ", " : "", order[k], p[order[k]]);
              fmt::print("{}: {}\n", path, top);
            }
            return 0;
          }};
}

}  // namespace synapse::cli
