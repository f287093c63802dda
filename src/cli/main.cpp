// The synapse command.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/isa.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace synapse::cli;
  namespace dist = synapse::dist;
  dist::init(argc, argv);  // under mpirun: this process is one rank of a data-parallel job (dist.h)
  CLI::App app{"Synapse: deep learning in modern C++", "synapse"};
  // The version, then the CPU: its model, instruction sets, caches and the kernel path in use, and the
  // BLAS: its kernels for this CPU and which products it runs.
  app.set_version_flag("--version", [] { return std::string("synapse ") + synapse::version() + "\n" + synapse::cpu::cpu_report() + synapse::cpu::gemm_report(); });
  app.require_subcommand(1);
  const std::vector<Command> commands{add_train(app),  add_eval(app),   add_predict(app), add_summary(app),
                                      add_ops(app),    add_graph(app),  add_export(app),  add_run(app),
                                      add_onnx_conformance(app), add_report(app), add_data(app),
                                      add_poem(app),   add_text(app),   add_tabular(app), add_demo(app),
                                      add_serve(app),  add_stylize(app), add_import_keras(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    dist::finalize();
    return rc;
  }
  try {
    synapse::cpu::active_isa();  // a bad SYNAPSE_ISA or SYNAPSE_GEMM is an error before any work starts
    synapse::cpu::gemm_route();
    int rc = 0;
    for (const auto& c : commands)
      if (c.app->parsed()) rc = c.run();
    dist::finalize();
    return rc;
  } catch (const std::exception& e) {
    if (dist::size() > 1) {  // the other ranks may wait for this one: end the whole job
      fmt::print(stderr, "synapse: error on rank {} of {}: {}\n", dist::rank(), dist::size(), e.what());
      std::fflush(stderr);
      dist::abort(1);
    }
    fmt::print(stderr, "synapse: error: {}\n", e.what());
    return 1;
  }
}
