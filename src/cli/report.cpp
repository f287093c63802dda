// synapse report RUN_DIR: the HTML report of a training run, one self-contained file. A zoo run
// (synapse train: MNIST, CIFAR-10 or an image folder) gets curves, confusion matrix, predictions, label
// counts, model summary and settings;
// a character language model run (synapse poem train / synapse text train) gets its loss and held-out
// perplexity next to the n-gram baselines, the model, timing and samples from the final model.
#include <filesystem>

#include "synapse/poem.h"
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
  sub->add_option("run_dir", a->run_dir,
                  "A run folder written by synapse train, poem train or text train (its history.json and model.syn)")
      ->required();
  sub->add_option("--data", a->data, "The test data: MNIST IDX files, CIFAR-10 batches or the image folder (default: the one the run was trained on)");
  sub->add_option("-o,--output", a->output, "Where to write the page (default RUN_DIR/report.html)");
  sub->add_option("--samples", a->samples,
                  "Test images shown with their predictions (poem runs: poems written; default 40 images, 4 poems)")
      ->check(integer_in(0, 10000));
  return {sub, [a, sub] {
            const report::RunHistory h =
                report::read_history((std::filesystem::path(a->run_dir) / "history.json").string());
            if (report::setting_string(h, "model") == "char_lm") {
              apps::LmReportOptions o;
              o.output = a->output;
              if (sub->count("--samples")) o.poems = a->samples;
              fmt::print("report: {}\n", apps::write_lm_report(a->run_dir, o));
              return 0;
            }
            report::ReportOptions o;
            o.data_dir = a->data;
            o.output = a->output;
            o.sample_images = a->samples;
            fmt::print("report: {}\n", report::write_report(a->run_dir, o));
            return 0;
          }};
}

}  // namespace synapse::cli
