// The ONNX API of a build configured with SYNAPSE_WITH_ONNX=OFF: every entry point throws.
#include "synapse/onnx.h"

namespace synapse::onnx {
namespace {
[[noreturn]] void off() {
  throw Error("ONNX support is not built in (configure Synapse with -DSYNAPSE_WITH_ONNX=ON, needs libonnx-dev)");
}
}  // namespace

ExportInfo export_model(const graph::Graph&, const std::vector<Tensor>&, const std::vector<Tensor>&, const std::string&,
                        const ExportOptions&) {
  off();
}
ExportInfo export_model(nn::Module&, const Shape&, const std::string&, ExportOptions) { off(); }
Model import_model(const std::string&, const ImportOptions&) { off(); }
std::vector<std::string> supported_ops() { return {}; }
ModelInfo inspect(const std::string&) { off(); }
Tensor load_tensor(const std::string&) { off(); }
void save_tensor(const Tensor&, const std::string&, const std::string&) { off(); }

}  // namespace synapse::onnx
