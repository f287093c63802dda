// The synapse command.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <exception>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace synapse::cli;
  CLI::App app{"Synapse: deep learning in modern C++", "synapse"};
  app.set_version_flag("--version", std::string("synapse ") + synapse::version());
  app.require_subcommand(1);
  const std::vector<Command> commands{add_train(app),  add_eval(app),   add_predict(app), add_summary(app),
                                      add_ops(app),    add_graph(app),  add_export(app),  add_run(app),
                                      add_onnx_conformance(app), add_report(app), add_data(app),
                                      add_poem(app),   add_text(app),   add_tabular(app), add_demo(app),
                                      add_serve(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run();
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "synapse: error: {}\n", e.what());
    return 1;
  }
}
