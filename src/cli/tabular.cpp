// synapse tabular train | predict: a CSV in, a trained classifier or regressor out (the workflow lives in
// apps, synapse/tabular.h).
#include <charconv>

#include "cli/commands.h"
#include "synapse/tabular.h"

namespace synapse::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// "64,32" (each from 1 to 65536), "none" or "auto".
CLI::Validator hidden_sizes() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value == "none" || value == "auto") return {};
        const auto parts = split_list(value);
        if (parts.empty()) return "'" + value + "' is not a list of layer sizes such as 64,32 (or none, or auto)";
        for (const auto& p : parts) {
          std::int64_t v = 0;
          const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
          if (ec != std::errc() || end != p.data() + p.size() || v < 1 || v > 65536)
            return "Value " + p + " in '" + value + "' is not a layer size from 1 to 65536 (e.g. 64,32, or none)";
        }
        return {};
      },
      "SIZES|none|auto");
}

// The CSV cell separator: one character (, ; |), or "tab".
CLI::Validator delimiter_check() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value == "tab" || value == "\\t" || value == "\t") return {};
        if (value.size() != 1 || value == "\"" || value == "\n" || value == "\r")
          return "'" + value + "' is not one character such as , or ; (or tab) that cannot be part of a quote or a line end";
        return {};
      },
      "CHAR|tab");
}
data::TableOptions table_options(const std::string& delimiter) {
  data::TableOptions t;
  t.delimiter = delimiter == "tab" || delimiter == "\\t" ? '\t' : delimiter[0];
  return t;
}

struct TrainArgs {
  std::string delimiter = ",";
  std::string data, test, features, impute = "none", normalize = "zscore", hidden = "auto", task = "auto";
  apps::TabularOptions o;
  TrainArgs() { o.logdir = "runs/tabular"; }
};

int run_train(TrainArgs a) {
  a.o.features = split_list(a.features);
  a.o.impute = data::parse_impute(a.impute);
  a.o.normalize = data::parse_normalize(a.normalize);
  a.o.task = apps::parse_task(a.task);
  // auto: the linear model, or a 32-unit MLP when it clearly beats it; otherwise exactly the one asked for.
  a.o.compare_linear = a.hidden == "auto";
  a.o.hidden.clear();
  if (a.hidden == "auto") a.o.hidden = {32};
  else if (a.hidden != "none")
    for (const auto& p : split_list(a.hidden)) a.o.hidden.push_back(std::stoll(p));
  const data::Table t = data::read_table(a.data, table_options(a.delimiter));
  const data::Table test = a.test.empty() ? data::Table{} : data::read_table(a.test, table_options(a.delimiter));
  apps::train_tabular(t, a.o, test);
  return 0;
}

struct PredictArgs {
  std::string run, data, output, delimiter = ",";
};

int run_predict(const PredictArgs& a) {
  const apps::TabularModel m = apps::load_tabular(a.run);
  const data::Table t = data::read_table(a.data, table_options(a.delimiter));
  const Tensor p = m.predict(t);
  apps::write_predictions(a.output, m, p);
  fmt::print("wrote {} predictions ({}) to {}\n", p.dim(0),
             m.task == apps::Task::Classification ? fmt::format("probabilities of {}", fmt::join(m.classes, ", "))
                                                  : "values of " + m.target,
             a.output);
  if (t.has(m.target) && t.column(m.target).missing_count() == 0) {
    const apps::TabularMetrics r = m.evaluate(t);
    if (m.task == apps::Task::Classification)
      fmt::print("accuracy on the {} rows (the file has the target '{}'): {:.2f}%\n", r.rows, m.target, 100 * r.accuracy);
    else
      fmt::print("RMSE on the {} rows (the file has the target '{}'): {:.4g}, R2 {:.3f}\n", r.rows, m.target, r.rmse, r.r2);
  }
  return 0;
}

}  // namespace

Command add_tabular(CLI::App& app) {
  auto* sub = app.add_subcommand("tabular", "Tables: train a classifier or regressor on a CSV file, then predict");
  sub->require_subcommand(1);

  auto t = std::make_shared<TrainArgs>();
  auto* tr = sub->add_subcommand("train", "Train on a CSV file with a header row; prints test metrics, saves RUN/model.syn");
  tr->add_option("data", t->data, "CSV file (first line: the column names)")->required();
  tr->add_option("--target", t->o.target, "The column to predict")->required();
  tr->add_option("--delimiter", t->delimiter, "The cell separator of DATA and --test: one character (; |), or tab")
      ->capture_default_str()->check(delimiter_check());
  tr->add_option("--features", t->features, "Input columns, comma-separated (default: every other column)");
  tr->add_option("--impute", t->impute, "Missing numbers: refuse them (none), or fill in the training rows' mean or median")
      ->capture_default_str()->check(CLI::IsMember({"none", "mean", "median"}));
  tr->add_option("--normalize", t->normalize, "Feature scaling, fitted on the training rows")
      ->capture_default_str()->check(CLI::IsMember({"zscore", "minmax", "none"}));
  tr->add_option("--hidden", t->hidden, "auto: fit the linear model (exactly) and an MLP with 32 ReLU units, keep the MLP only when "
                             "it beats the linear model by more than two standard errors in cross-validation; SIZES "
                             "(e.g. 64,32): that MLP only; none: the linear model only")
      ->capture_default_str()->check(hidden_sizes());
  tr->add_option("--task", t->task, "auto: text or at most 20 whole-number values = classes, else regression")
      ->capture_default_str()->check(CLI::IsMember({"auto", "classification", "regression"}));
  tr->add_option("--test", t->test, "Test rows from another CSV file (default: a seeded 20% of DATA)");
  tr->add_option("--out,--logdir", t->o.logdir, "Run folder: model.syn, checkpoints, metrics.csv, test_metrics.json")
      ->capture_default_str();
  tr->add_option("--epochs", t->o.epochs, "Epochs at most (early stopping ends sooner)")->capture_default_str()
      ->check(integer_in(1, 100000));
  tr->add_option("--patience", t->o.patience, "Epochs without a better validation loss before stopping")
      ->capture_default_str()->check(integer_in(1, 100000));
  tr->add_flag("!--no-refit", t->o.refit, "Keep the early-stopped model instead of training again on training + "
                                          "validation rows for the best epoch count");
  tr->add_option("--batch", t->o.batch, "Rows per batch")->capture_default_str()->check(integer_in(1, 1 << 20));
  tr->add_option("--lr", t->o.lr, "Learning rate")->capture_default_str()->check(positive_number());
  tr->add_option("--weight-decay", t->o.weight_decay, "AdamW's weight decay")->capture_default_str()
      ->check(non_negative_number());
  tr->add_option("--optimizer", t->o.optimizer, "sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"}));
  tr->add_option("--seed", t->o.seed, "Random seed (split, initialisation, shuffling)")->capture_default_str()
      ->check(unsigned_integer());

  auto p = std::make_shared<PredictArgs>();
  auto* pr = sub->add_subcommand("predict", "Predict every row of a CSV file with a trained model");
  pr->add_option("run", p->run, "Run folder (or model file) of 'synapse tabular train'")->required();
  pr->add_option("data", p->data, "CSV file with the model's columns (the target column may be there too)")->required();
  pr->add_option("-o,--output", p->output, "Where to write the predictions (CSV, written atomically)")->required();
  pr->add_option("--delimiter", p->delimiter, "The cell separator of DATA: one character (; |), or tab")
      ->capture_default_str()->check(delimiter_check());

  return {sub, [sub, tr, t, p] { return sub->got_subcommand(tr) ? run_train(*t) : run_predict(*p); }};
}

}  // namespace synapse::cli
