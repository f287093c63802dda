// synapse report (placeholder until its issue lands).
#include "cli/commands.h"

namespace synapse::cli {

Command add_report(CLI::App& app) {
  auto* sub = app.add_subcommand("report", "Write the HTML report of a run");
  return {sub, [] { throw Error("synapse report: not implemented yet"); return 1; }};
}

}  // namespace synapse::cli
