// synapse run (placeholder until its issue lands).
#include "cli/commands.h"

namespace synapse::cli {

Command add_run(CLI::App& app) {
  auto* sub = app.add_subcommand("run", "Evaluate an ONNX model on a data set");
  return {sub, [] { throw Error("synapse run: not implemented yet"); return 1; }};
}

}  // namespace synapse::cli
