// What a training run leaves for people to look at: history.json (settings and per-epoch numbers,
// written as training goes) and report.html, one self-contained page (inline CSS, SVG charts drawn by
// Synapse, images as data: URIs; nothing loaded from the network).
//
//   auto history = std::make_shared<report::HistoryLog>("runs/mine/history.json");
//   history->set("model", "mine");
//   fit.callbacks.push_back(history);
//   ... train::fit(...) ...
//   report::ReportOptions ro;
//   ro.data_dir = "data/mnist";
//   ro.model = model.get();                          // or leave it out: the zoo model in runs/mine/model.syn
//   report::write_report("runs/mine", ro);           // runs/mine/report.html
//
// history.json:
//   {"settings": {"model": "cnn", "epochs": 5, "batch": 50, "optimizer": "adam", "data": "data/mnist",
//                 "seed": 0, "started": "2026-01-02T10:00:00Z", "finished": "...", "seconds": 306.2, ...},
//    "epochs": [{"epoch": 1, "step": 1100, "seconds": 60.1, "loss": 0.2, "accuracy": 0.94,
//                "val_loss": 0.06, "val_accuracy": 0.98, "lr": 0.001}, ...]}
#pragma once
#include <chrono>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "synapse/train.h"

namespace synapse::report {

using SettingValue = std::variant<std::string, double>;

// A training callback keeping history.json up to date: rewritten atomically (temporary file + rename)
// after every epoch and at the end of training, so it is whole whenever it is read. When training resumes
// (initial_epoch > 0) the epochs already recorded before it are kept.
class HistoryLog : public train::Callback {
 public:
  explicit HistoryLog(std::string path);
  void set(const std::string& key, SettingValue value);
  void on_train_begin(train::Trainer& t) override;
  void on_epoch_begin(train::Trainer& t, int epoch) override;
  void on_epoch_end(train::Trainer& t, int epoch, train::Logs& logs) override;
  void on_train_end(train::Trainer& t) override;
  void write() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, SettingValue> settings_;
  std::vector<train::Logs> epochs_;
  std::chrono::steady_clock::time_point epoch_start_;
};

struct RunHistory {
  std::map<std::string, SettingValue> settings;
  std::vector<train::Logs> epochs;  // each with "epoch" (1-based) and whatever the logs held
};
// Reads history.json; throws Error naming the file when it is missing or malformed.
RunHistory read_history(const std::string& path);
// A setting as text (numbers as with {:g}; `fallback` when missing) or as a number (NaN when missing
// or text).
std::string setting_string(const RunHistory& h, const std::string& key, const std::string& fallback = "");
double setting_number(const RunHistory& h, const std::string& key);

struct ReportOptions {
  // The test data for the test-set sections (confusion matrix, predictions, label counts): MNIST-format
  // IDX files, or for a colour run (RUN_DIR/model.syn's metadata says so) the CIFAR-10 batches or image
  // folder, read as zoo::load_test_set reads them; empty: the "data" setting of history.json. Sections
  // needing data are left out when it cannot be read.
  std::string data_dir;
  // The trained model; nullptr: the zoo model named in RUN_DIR/model.syn, with its weights.
  nn::Module* model = nullptr;
  std::string output;      // default RUN_DIR/report.html
  int sample_images = 40;  // test images shown with their predictions
  // Class names for the tables and captions; empty: guessed from the data folder (Fashion-MNIST's
  // names when its path contains "fashion"), else the digits.
  std::vector<std::string> class_names;
};

// Writes the report of the run in `run_dir` (its history.json and, unless options.model is given, its
// model.syn) and returns the path of the HTML file, written atomically.
std::string write_report(const std::string& run_dir, const ReportOptions& options = {});

// ---- the report of any other run ----
// A workflow that is not the MNIST classifier (the language models of `synapse poem` and `synapse
// text`, ...) describes its page as data: the report draws the charts from history.json's epochs and
// adds the cards, text samples and model summary it is given, knowing nothing about the workflow.
//
//   report::RunReport r{.title = "Tang poems", .kind = "character language model"};
//   r.cards.push_back({"held-out perplexity", "165.3", "0.53x the bigram"});
//   r.charts.push_back({.title = "Held-out perplexity", .y_label = "per character",
//                       .series = {{"val_perplexity", "LSTM"}}, .baselines = {{"bigram", 312.0}}});
//   r.samples.push_back({"seed 0", "春眠不覺曉，處處聞啼鳥。..."});
//   report::write_run_report("runs/poem", r);
struct ReportCard {
  std::string label, value, sub;
};
struct ReportChart {
  std::string title, y_label;
  std::vector<std::pair<std::string, std::string>> series;  // {key of history.json's epochs, legend name}
  std::vector<std::pair<std::string, double>> baselines;    // {legend name, value}: dashed flat lines
  bool log_y = false;
};
struct ReportColumn {
  std::string key, header;  // key of history.json's epochs
  std::string format;       // fmt format of the value, e.g. "{:.4f}"
};
struct ReportText {
  std::string caption, text;  // shown preformatted, one block each
};
struct RunReport {
  std::string title;  // the page's heading (default: the "model" setting)
  std::string kind;   // a subtitle, e.g. "character language model"
  std::vector<ReportCard> cards;
  std::vector<ReportChart> charts;
  std::string charts_note;
  std::vector<ReportColumn> columns;  // the epoch table after epoch, step and time
  std::string samples_title, samples_note;
  std::vector<ReportText> samples;
  std::string model_summary;          // Module::summary() text
  std::string output;                 // default RUN_DIR/report.html
};
// Writes RUN_DIR/report.html (or r.output) for `r` and RUN_DIR/history.json (settings, epochs,
// timing); returns the path. The page has the same style and self-check as write_report's.
std::string write_run_report(const std::string& run_dir, const RunReport& r);

// The ten Fashion-MNIST class names, in label order.
const std::vector<std::string>& fashion_mnist_classes();

// ---- drawing helpers, exposed for the tests and for `synapse data` ----
struct Series {
  std::string name;
  std::vector<double> x, y;
  std::string color;  // CSS colour
  bool dashed = false;  // a reference line (a baseline), drawn dashed
};
struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 440, height = 290;
  bool log_y = false;
  bool integer_x = true;  // ticks at whole numbers only (epochs)
};
// An SVG line chart (<svg class="chart line-chart">) with axes, ticks, grid, a legend and a point marker
// per value, each with a <title> tooltip.
std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& options);
// An SVG bar chart (<svg class="chart bar-chart">) of labelled values.
std::string bar_chart_svg(const std::vector<std::string>& labels, const std::vector<double>& values,
                          const ChartOptions& options);
// "Nice" axis ticks covering [lo, hi] (1, 2 or 5 times a power of ten apart), about `count` of them.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);
// Pixels (rows x cols x channels, uint8: 1 grey, 3 RGB) as a PNG data: URI.
std::string png_data_uri(const unsigned char* pixels, int cols, int rows, int channels = 1);

}  // namespace synapse::report
