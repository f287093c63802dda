// synapse onnx-conformance (placeholder until its issue lands).
#include "cli/commands.h"

namespace synapse::cli {

Command add_onnx_conformance(CLI::App& app) {
  auto* sub = app.add_subcommand("onnx-conformance", "Run ONNX's backend node tests");
  return {sub, [] { throw Error("synapse onnx-conformance: not implemented yet"); return 1; }};
}

}  // namespace synapse::cli
