// synapse export (placeholder until its issue lands).
#include "cli/commands.h"

namespace synapse::cli {

Command add_export(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "Export a trained model to ONNX");
  return {sub, [] { throw Error("synapse export: not implemented yet"); return 1; }};
}

}  // namespace synapse::cli
