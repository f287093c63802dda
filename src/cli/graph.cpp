// synapse graph (placeholder until its issue lands).
#include "cli/commands.h"

namespace synapse::cli {

Command add_graph(CLI::App& app) {
  auto* sub = app.add_subcommand("graph", "Write a model's graph as Graphviz DOT and SVG");
  return {sub, [] { throw Error("synapse graph: not implemented yet"); return 1; }};
}

}  // namespace synapse::cli
