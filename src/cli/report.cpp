// synapse report RUN_DIR: the HTML report of a training run (curves, confusion matrix, predictions,
// label counts, model summary, settings), one self-contained file.
#include "synapse/report.h"
#include "cli/commands.h"

namespace synapse::cli {

Command add_report(CLI::App& app) {
  struct Args {
    std::string run_dir, data, output;
    int samples = 40;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("report", "Write the HTML report of a run (RUN_DIR/report.html)");
  sub->add_option("run_dir", a->run_dir, "A run folder written by synapse train (its history.json and model.syn)")
      ->required();
  sub->add_option("--data", a->data, "Folder with the MNIST IDX files (default: the one the run was trained on)");
  sub->add_option("-o,--output", a->output, "Where to write the page (default RUN_DIR/report.html)");
  sub->add_option("--samples", a->samples, "Test images shown with their predictions")
      ->capture_default_str()
      ->check(integer_in(0, 10000));
  return {sub, [a] {
            report::ReportOptions o;
            o.data_dir = a->data;
            o.output = a->output;
            o.sample_images = a->samples;
            fmt::print("report: {}\n", report::write_report(a->run_dir, o));
            return 0;
          }};
}

}  // namespace synapse::cli
