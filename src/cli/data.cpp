// synapse data (placeholder until its issue lands).
#include "cli/commands.h"

namespace synapse::cli {

Command add_data(CLI::App& app) {
  auto* sub = app.add_subcommand("data", "Explore a data set");
  return {sub, [] { throw Error("synapse data: not implemented yet"); return 1; }};
}

}  // namespace synapse::cli
