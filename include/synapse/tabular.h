// Apps: tables in, a trained classifier or regressor out (synapse tabular train | predict), and the
// small lessons of the tutorials as demos (synapse demo xor | years | premium).
//
//   data::Table t = data::read_table("customers.csv");
//   apps::TabularOptions o;
//   o.target = "premium";                                    // the column to predict
//   o.logdir = "runs/premium";
//   apps::TabularResult r = apps::train_tabular(t, o);       // r.metrics.accuracy, r.metrics.auc, ...
//   apps::TabularModel m = apps::load_tabular("runs/premium");
//   Tensor p = m.predict(data::read_table("new.csv"));       // [rows, classes] probabilities or [rows, 1]
//
// The workflow: the target decides the task (text, or whole numbers with at most 20 distinct values:
// classification; otherwise regression); rows are split train / validation / test with a seed; missing
// cells are refused (naming file, line and column) or imputed with the training rows' mean or median;
// text features are one-hot encoded and features normalised with the training rows' statistics. The
// linear model is solved exactly (least squares, or logistic / softmax regression with scikit-learn's L2
// penalty: optim::least_squares / logistic_regression), an MLP (ReLU layers) trained with Adam and early
// stopping; the MLP is kept only when it beats the linear model by more than two standard errors (5-fold
// cross-validation on small tables, else the validation rows); the choice is refitted on the training +
// validation rows, encoding too. The model file holds the weights, the feature columns, the encoders, the
// imputed values, the normaliser's statistics (named tensors) and the task: predict needs nothing else.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "synapse/nn.h"
#include "synapse/table.h"

namespace synapse::apps {

enum class Task { Auto, Classification, Regression };
Task parse_task(const std::string& s);  // "auto", "classification", "regression"

struct TabularOptions {
  std::string target;                          // required
  std::vector<std::string> features;           // empty: every column but the target
  data::Impute impute = data::Impute::None;
  data::NormalizeKind normalize = data::NormalizeKind::ZScore;
  std::vector<std::int64_t> hidden{32};        // the MLP's hidden layers; empty: the linear model only
  // With hidden layers: also fit the linear model, and keep the MLP only when it clearly scores better
  // (accuracy or squared error, as below; ties go to the linear model). false: the MLP only.
  bool compare_linear = true;
  // How the two are compared: by k-fold cross-validation on the training + validation rows when there are
  // at most choice_max_rows of them (and refit is on), else on the validation rows. The MLP must win by
  // more than two standard errors of the per-row difference (accuracy, or squared error).
  int choice_folds = 5;                        // < 2: always the validation rows
  std::int64_t choice_max_rows = 5000;
  Task task = Task::Auto;
  double test_fraction = 0.2;                  // of the rows, unless test data is given
  double valid_fraction = 0.2;                 // of the remaining training rows
  int epochs = 300;
  int batch = 32;
  double lr = 3e-3;
  double weight_decay = 1e-4;                  // AdamW's decoupled weight decay
  std::string optimizer = "adamw";             // any name optim::make_optimizer knows
  int patience = 30;                           // epochs without a better validation loss
  // After early stopping, train a fresh model (same seed) on the training + validation rows for the
  // best epoch count: every labelled row teaches, and the validation rows have still chosen when to stop.
  bool refit = true;
  std::uint64_t seed = 0;
  std::string logdir = "runs/tabular";         // "" = save nothing
  int verbose = 1;
};

struct TabularMetrics {
  std::int64_t rows = 0;
  // Classification (precision, recall and F1 of the second class for binary targets, the mean over
  // classes otherwise; auc only for binary targets).
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, auc = 0;
  // Regression, in the target's units.
  double rmse = 0, mae = 0, r2 = 0;
};

struct TabularResult {
  Task task = Task::Classification;
  std::vector<std::string> classes;   // classification: the target's values, in output order
  std::vector<std::string> features;  // the model's input columns after encoding
  TabularMetrics test, valid;
  std::int64_t train_rows = 0, valid_rows = 0, test_rows = 0;
  int epochs_run = 0;
  int best_epoch = 1;                 // the epoch of the lowest validation loss
  std::vector<std::int64_t> hidden;   // the chosen model's hidden layers (empty: the linear model)
  std::map<std::string, double> candidates;  // validation accuracy or R^2 of "linear" and "mlp", as fitted
  std::string model_path;
};

// Trains on `t` (and tests on `test` when it has rows; then `t` is split into train / validation only).
TabularResult train_tabular(const data::Table& t, const TabularOptions& o, const data::Table& test = {});

// A trained model and everything needed to turn a table into its inputs.
struct TabularModel {
  nn::ModulePtr model;
  Task task = Task::Classification;
  std::string target;
  std::vector<std::string> classes;
  std::vector<std::string> columns;       // the raw input columns a table must have
  std::vector<std::string> known;         // columns of the training file the model ignores (the target...)
  std::map<std::string, std::string> metadata;
  // Raw columns (as in the file) -> float32 features [rows, F], normalised.
  Tensor inputs(const data::Table& t) const;
  // [rows, classes] probabilities, or [rows, 1] values in the target's units.
  Tensor predict(const data::Table& t) const;
  // Test metrics of `t` (it must have the target column).
  TabularMetrics evaluate(const data::Table& t) const;

  // Filled by load_tabular / train_tabular:
  std::vector<data::OneHot> one_hot;
  std::map<std::string, double> fill;     // imputed value per numeric column
  data::ColumnNormalizer normalizer;
  double target_mean = 0, target_std = 1; // regression targets are z-scored for training
};
// Reads RUN/model.syn (or a model file) written by train_tabular.
TabularModel load_tabular(const std::string& path);
// Writes predictions as CSV atomically (temporary file, then rename): "p(CLASS)" per class and
// "prediction" (the likeliest class) for a classifier, the target's name for a regressor.
void write_predictions(const std::string& path, const TabularModel& m, const Tensor& predictions);

// ---- metrics ----
// probs [N, C], labels [N] int64.
TabularMetrics classification_metrics(const Tensor& probs, const Tensor& labels);
// values, targets [N] or [N, 1] in the same units.
TabularMetrics regression_metrics(const Tensor& values, const Tensor& targets);
// Area under the ROC curve of scores for labels 0/1 (ties count one half).
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

// ---- demos: the tutorials' small tabular lessons, seeded ----
struct DemoResult {
  std::vector<std::pair<std::string, double>> numbers;  // e.g. {"logistic regression accuracy", 0.75}
  std::string text;                                     // what to print
};
// "xor", "years", "premium"; throws for another name, naming the choices.
DemoResult run_demo(const std::string& name, std::uint64_t seed = 0);
std::vector<std::string> demo_names();
// The premium-member table: 11 features with the skewed scales of real customer data (income,
// balance, days since signup, ...) and a 0/1 "premium" column.
data::Table premium_members(std::int64_t rows, std::uint64_t seed);

}  // namespace synapse::apps
