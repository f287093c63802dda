// synapse run MODEL.onnx --data DIR: imports an ONNX classifier and measures its MNIST test accuracy.
// The input layout is read from the model's input shape: NHWC [N,28,28,1], NCHW [N,1,28,28] or flat
// [N,784] float32.
#include "cli/commands.h"
#include "core/check.h"
#include "data/rows.h"
#include "synapse/graph.h"
#include "synapse/onnx.h"

namespace synapse::cli {

namespace {

enum class Layout { NHWC, NCHW, Flat };

Layout layout_of(const Tensor& input, const std::string& name) {
  const Shape& s = input.shape();
  SYN_CHECK(input.dtype() == DType::Float32, "model input '{}' is {}, expected float32 images", name,
            dtype_name(input.dtype()));
  if (s.size() == 4 && s[1] == 28 && s[2] == 28 && s[3] == 1) return Layout::NHWC;
  if (s.size() == 4 && s[1] == 1 && s[2] == 28 && s[3] == 28) return Layout::NCHW;
  if (s.size() == 2 && s[1] == 784) return Layout::Flat;
  throw Error(fmt::format("model input '{}' has shape {}; expected MNIST images as [N,28,28,1] (NHWC), [N,1,28,28] "
                          "(NCHW) or [N,784]",
                          name, to_string(s)));
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::NHWC: return "NHWC [N,28,28,1]";
    case Layout::NCHW: return "NCHW [N,1,28,28]";
    case Layout::Flat: return "flat [N,784]";
  }
  return "?";
}

}  // namespace

Command add_run(CLI::App& app) {
  struct Args {
    std::string model;
    std::string data = "data/mnist";
    std::int64_t batch = 1000;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("run", "Evaluate an ONNX model on the MNIST test set");
  sub->add_option("model", a->model, "An .onnx file (a classifier of 28x28 images into 10 classes)")->required();
  sub->add_option("--data", a->data, "Folder with the MNIST IDX files")->capture_default_str();
  sub->add_option("--batch", a->batch, "Images per run (when the model's batch is not fixed)")
      ->capture_default_str()
      ->check(integer_in(1, std::int64_t{1} << 20));
  return {sub, [a] {
            onnx::Model m = onnx::import_model(a->model);
            SYN_CHECK(m.inputs.size() == 1 && m.outputs.size() >= 1,
                      "'{}' has {} inputs and {} outputs; synapse run needs one image input and a logits output",
                      a->model, m.inputs.size(), m.outputs.size());
            const Layout layout = layout_of(m.inputs[0], m.input_names[0]);
            const std::int64_t fixed = m.inputs[0].shape()[0];
            const std::int64_t batch = fixed > 0 ? fixed : a->batch;
            const data::Mnist mnist = data::load_mnist(a->data);
            const Tensor x = zoo::images_to_float(mnist.test_images);
            const Tensor y = cast(mnist.test_labels, DType::Int64);
            const std::int64_t n = x.dim(0) - x.dim(0) % batch;
            SYN_CHECK(n > 0, "the model's fixed batch {} exceeds the {} test images", batch, x.dim(0));
            fmt::print("model: {} (opset {}, {} op types: {})\n", a->model, m.opset, m.op_types.size(),
                       fmt::join(m.op_types, ", "));
            fmt::print("input: {} {}\n", m.input_names[0], layout_name(layout));
            graph::Session session(*m.graph);
            train::ConfusionMatrix cm(10);
            const auto forward = [&](const Tensor& images) {
              const std::int64_t rows = images.dim(0);
              Tensor xb = images;
              if (layout == Layout::NCHW) xb = permute(xb, {0, 3, 1, 2});
              if (layout == Layout::Flat) xb = reshape(xb, {rows, 784});
              Tensor logits = graph::is_symbolic(m.outputs[0]) ? session.run(m.outputs[0], {{m.inputs[0], xb}}) : m.outputs[0];
              SYN_CHECK(logits.ndim() == 2 && logits.dim(0) == rows && logits.dim(1) == 10,
                        "output '{}' has shape {} for a batch of {}; expected [{}, 10] class scores", m.output_names[0],
                        to_string(logits.shape()), rows, rows);
              return logits;
            };
            train::for_each_batch(data::internal::rows_view(x, 0, n), batch, forward,
                                  [&](const Tensor& logits, std::int64_t lo, std::int64_t hi) {
                                    cm.update(logits, data::internal::rows_view(y, lo, hi));
                                  });
            fmt::print("test accuracy: {:.2f}% on {} images\n", 100.0 * cm.result(), n);
            return 0;
          }};
}

}  // namespace synapse::cli
