// synapse export CHECKPOINT -o model.onnx: traces a trained zoo model (inference mode) and writes ONNX.
#include "cli/commands.h"
#include "synapse/onnx.h"

namespace synapse::cli {

namespace {
std::string shape_str(const Shape& s) {
  std::vector<std::string> dims;
  for (auto d : s) dims.push_back(d < 0 ? "N" : std::to_string(d));
  return fmt::format("[{}]", fmt::join(dims, ", "));
}
}  // namespace

Command add_export(CLI::App& app) {
  struct Args {
    std::string checkpoint;
    std::string output = "model.onnx";
    bool no_fold_bn = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("export", "Export a trained model to ONNX (opset 13, NHWC input, batch N)");
  sub->add_option("checkpoint", a->checkpoint, "A model file or a run folder (its model.syn)")->required();
  sub->add_option("-o,--output", a->output, "The .onnx file to write")->capture_default_str();
  sub->add_flag("--no-fold-bn", a->no_fold_bn,
                "Keep batch normalisation as per-channel Sub/Mul/Add (default: folded into the Conv/Gemm before it)");
  return {sub, [a] {
            const zoo::Trained t = zoo::load_trained(a->checkpoint);
            onnx::ExportOptions opts;
            opts.fold_batch_norm = !a->no_fold_bn;
            const zoo::ModelInput in = zoo::model_input(t.checkpoint);  // [28, 28, 1] for MNIST runs
            const onnx::ExportInfo info =
                onnx::export_model(*t.model, {-1, in.shape[0], in.shape[1], in.shape[2]}, a->output, opts);
            fmt::print("model: {} ({})\n", t.name, t.path);
            for (std::size_t i = 0; i < info.input_names.size(); ++i)
              fmt::print("input:  {} float32 {}\n", info.input_names[i], shape_str(info.input_shapes[i]));
            for (std::size_t i = 0; i < info.output_names.size(); ++i)
              fmt::print("output: {} float32 {}\n", info.output_names[i], shape_str(info.output_shapes[i]));
            fmt::print("wrote {}: {} nodes ({}), {} initializers, opset 13\n", a->output, info.node_count,
                       fmt::join(info.op_types, ", "), info.initializer_count);
            if (info.folded_batch_norms > 0)
              fmt::print("folded {} batch normalisations into the layers before them\n", info.folded_batch_norms);
            if (in.data != "mnist")
              fmt::print("the input: images in [0, 1]{}; outputs: {}\n",
                         in.standardize ? ", each standardised first as in training ((x - mean) / max(std, 1/sqrt(H*W*C)), "
                                          "tf.image.per_image_standardization)" : "",
                         fmt::join(in.class_names, ", "));
            return 0;
          }};
}

}  // namespace synapse::cli
