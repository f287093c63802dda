// history.json and the HTML report of a run.
#include "synapse/report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/check.h"
#include "report/html.h"
#include "synapse/autograd.h"
#include "synapse/data.h"
#include "synapse/io.h"
#include "synapse/version.h"
#include "synapse/zoo.h"

namespace synapse::report {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json to_json(const SettingValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  const double d = std::get<double>(v);
  if (!std::isfinite(d)) return nullptr;
  if (d == std::round(d) && std::abs(d) < 1e15) return static_cast<std::int64_t>(d);
  return d;
}

json logs_json(const train::Logs& logs) {
  json j = json::object();
  for (const auto& [k, v] : logs) {
    if (!std::isfinite(v))
      j[k] = nullptr;
    else if ((k == "epoch" || k == "step") && v == std::round(v))
      j[k] = static_cast<std::int64_t>(v);
    else
      j[k] = v;
  }
  return j;
}

}  // namespace

// ================================ history.json ================================

HistoryLog::HistoryLog(std::string path) : path_(std::move(path)) {}

void HistoryLog::set(const std::string& key, SettingValue value) { settings_[key] = std::move(value); }

void HistoryLog::on_train_begin(train::Trainer& t) {
  epochs_.clear();
  // A resumed run keeps the epochs recorded before the one it starts from.
  if (t.options().initial_epoch > 0 && fs::exists(path_)) {
    try {
      RunHistory old = read_history(path_);
      for (auto& e : old.epochs)
        if (e.count("epoch") && e.at("epoch") <= t.options().initial_epoch) epochs_.push_back(std::move(e));
      if (auto it = old.settings.find("started"); it != old.settings.end() && !settings_.count("first_started"))
        settings_["first_started"] = it->second;
    } catch (const Error&) {  // an unreadable old history is replaced
    }
  }
  settings_["started"] = utc_now();
  settings_.erase("finished");
  write();
}

void HistoryLog::on_epoch_begin(train::Trainer&, int) { epoch_start_ = std::chrono::steady_clock::now(); }

void HistoryLog::on_epoch_end(train::Trainer& t, int epoch, train::Logs& logs) {
  train::Logs e = logs;
  e["epoch"] = epoch + 1;
  e["step"] = static_cast<double>(t.global_step());
  e["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  epochs_.push_back(std::move(e));
  write();
}

void HistoryLog::on_train_end(train::Trainer&) {
  settings_["finished"] = utc_now();
  write();
}

void HistoryLog::write() const {
  json j;
  j["settings"] = json::object();
  for (const auto& [k, v] : settings_) j["settings"][k] = to_json(v);
  j["epochs"] = json::array();
  for (const auto& e : epochs_) j["epochs"].push_back(logs_json(e));
  io::write_file_atomic(path_, j.dump(1) + "\n");
}

RunHistory read_history(const std::string& path) {
  std::ifstream f(path);
  SYN_CHECK(f.good(), "cannot read '{}' (a run folder written by `synapse train` has one)", path);
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    detail::fail("'{}' is not valid JSON: {}", path, e.what());
  }
  SYN_CHECK(j.is_object() && j.contains("epochs") && j["epochs"].is_array(),
            "'{}' is not a Synapse history (expected an object with an \"epochs\" array)", path);
  RunHistory h;
  if (j.contains("settings") && j["settings"].is_object())
    for (const auto& [k, v] : j["settings"].items()) {
      if (v.is_number())
        h.settings[k] = v.get<double>();
      else if (v.is_string())
        h.settings[k] = v.get<std::string>();
      else if (!v.is_null())
        h.settings[k] = v.dump();
    }
  for (const auto& e : j["epochs"]) {
    SYN_CHECK(e.is_object(), "'{}': every entry of \"epochs\" must be an object", path);
    train::Logs logs;
    for (const auto& [k, v] : e.items())
      logs[k] = v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
    h.epochs.push_back(std::move(logs));
  }
  return h;
}

std::string setting_string(const RunHistory& h, const std::string& key, const std::string& fallback) {
  auto it = h.settings.find(key);
  if (it == h.settings.end()) return fallback;
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  return fmt::format("{:g}", std::get<double>(it->second));
}

double setting_number(const RunHistory& h, const std::string& key) {
  auto it = h.settings.find(key);
  return it != h.settings.end() && std::holds_alternative<double>(it->second) ? std::get<double>(it->second)
                                                                              : std::numeric_limits<double>::quiet_NaN();
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

// ================================ report.html ================================

namespace {

constexpr const char* kTrainColor = "#2563eb";
constexpr const char* kValColor = "#ea580c";

const char* kStyle = R"CSS(
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --card:#ffffff; --bg:#f3f4f6; --accent:#2563eb; --bad:#dc2626; --good:#16a34a; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
header { background:linear-gradient(120deg,#1e3a8a,#2563eb 60%,#0ea5e9); color:#fff; padding:28px 40px 66px; }
header .inner { max-width:1152px; margin:0 auto; }
header h1 { margin:0 0 4px; font-size:26px; font-weight:650; letter-spacing:-0.01em; }
header p { margin:0; opacity:.85; }
main { max-width:1200px; margin:0 auto; padding:24px 24px 40px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:14px; margin:-46px 0 22px; }
.card { background:var(--card); border-radius:12px; padding:14px 18px; box-shadow:0 1px 3px rgba(0,0,0,.08),0 4px 14px rgba(0,0,0,.05); }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.06em; }
.card .value { font-size:24px; font-weight:650; margin-top:2px; }
.card .sub { color:var(--muted); font-size:12px; }
section { background:var(--card); border-radius:12px; padding:18px 22px 20px; margin-bottom:20px; box-shadow:0 1px 3px rgba(0,0,0,.08); }
section h2 { margin:0 0 4px; font-size:18px; font-weight:620; }
section p.note { margin:0 0 12px; color:var(--muted); }
.charts { display:grid; grid-template-columns:repeat(auto-fit,minmax(340px,1fr)); gap:10px 18px; }
svg.chart { width:100%; height:auto; font-size:12px; }
svg.chart .chart-title { font-size:14px; font-weight:600; fill:var(--ink); }
svg.chart .grid line { stroke:var(--line); }
svg.chart .axis text, svg.chart .bar-label, svg.chart .legend text { fill:#4b5563; }
svg.chart .axis line, svg.chart .axis-line { stroke:#9ca3af; }
svg.chart .axis-label { fill:var(--muted); font-size:12px; }
svg.chart .bar { fill:#3b82f6; } svg.chart .bar:hover { fill:#1d4ed8; }
svg.chart .bar-value { fill:#374151; font-size:11px; }
svg.chart circle:hover { r:6; }
table { border-collapse:collapse; }
table.data { width:100%; font-variant-numeric:tabular-nums; }
table.data th, table.data td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:right; }
table.data th:first-child, table.data td:first-child { text-align:left; }
table.data th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
table.confusion { font-variant-numeric:tabular-nums; font-size:12.5px; }
table.confusion td, table.confusion th { width:52px; height:34px; text-align:center; padding:0 4px; }
table.confusion td { border:1px solid #fff; border-radius:4px; }
table.confusion th { color:var(--muted); font-weight:600; }
table.confusion th.corner { font-size:11px; line-height:1.2; }
table.confusion td.acc { background:none !important; color:var(--ink); font-weight:600; width:70px; }
.cm-wrap { display:flex; gap:28px; align-items:flex-start; flex-wrap:wrap; }
.legend-scale { display:flex; align-items:center; gap:6px; color:var(--muted); font-size:12px; margin-top:8px; }
.legend-scale span.bar { width:120px; height:10px; border-radius:5px; background:linear-gradient(90deg,#eff6ff,#1e40af); }
.samples { display:grid; grid-template-columns:repeat(auto-fill,minmax(92px,1fr)); gap:10px; }
figure.sample { margin:0; padding:6px; border-radius:10px; border:2px solid var(--line); text-align:center; background:#fafafa; }
figure.sample img { width:72px; height:72px; image-rendering:pixelated; border-radius:4px; display:block; margin:0 auto 4px; background:#000; }
figure.sample figcaption { font-size:11.5px; line-height:1.35; color:#374151; }
figure.sample.wrong { border-color:var(--bad); background:#fef2f2; }
figure.sample.wrong figcaption b { color:var(--bad); }
figure.sample.right figcaption b { color:var(--good); }
pre.summary { background:#0f172a; color:#e2e8f0; padding:14px 16px; border-radius:10px; overflow-x:auto; font-size:12.5px; line-height:1.45; margin:8px 0 0; }
.two { display:grid; grid-template-columns:repeat(auto-fit,minmax(380px,1fr)); gap:20px; }
table.kv { width:100%; }
table.kv td { padding:4px 12px 4px 0; border-bottom:1px solid var(--line); vertical-align:top; }
table.kv td:first-child { color:var(--muted); white-space:nowrap; }
.text-samples { display:grid; grid-template-columns:repeat(auto-fill,minmax(220px,1fr)); gap:12px; }
figure.text-sample:only-child { grid-column:1 / -1; }
figure.text-sample { margin:0; padding:10px 14px; border-radius:10px; border:1px solid var(--line); background:#fafafa; }
figure.text-sample figcaption { color:var(--muted); font-size:12px; margin-bottom:4px; }
figure.text-sample pre { margin:0; white-space:pre-wrap; word-break:break-word; font:16px/1.6 "Noto Serif CJK SC","Noto Sans CJK SC","DejaVu Sans Mono",serif; }
footer { text-align:center; color:var(--muted); font-size:12px; padding:10px 0 30px; }
)CSS";

// The page checks itself: #render-status says "ok" only when no script error happened and every chart,
// table and image is in the document (the browser test reads it).
const char* kScript = R"JS(
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message || e)); });
  document.addEventListener('DOMContentLoaded', function () {
    var charts = document.querySelectorAll('svg.chart').length;
    var images = document.querySelectorAll('figure.sample img');
    var broken = 0;
    images.forEach(function (img) { if (img.complete && img.naturalWidth === 0) broken++; });
    var status = document.getElementById('render-status');
    status.dataset.charts = charts;
    status.dataset.images = images.length;
    status.dataset.errors = errors.length + broken;
    status.textContent = (errors.length === 0 && broken === 0) ? 'render-ok' : 'render-failed: ' + errors.join('; ');
  });
})();
)JS";

struct Eval {
  bool ok = false;
  std::string note;
  std::vector<std::int64_t> truth, pred;
  std::vector<std::int64_t> confusion;  // [C, C], rows true
  Tensor images;                        // uint8 [N, 28, 28] (MNIST) or [N, H, W, C] (colour runs)
  std::vector<std::int64_t> train_counts;
  std::int64_t train_total = 0;
  std::string counted = "training file";  // whose labels train_counts counts
};

// The label counts, confusion matrix and predictions of `pred` against `truth` (int64 [N]).
void tally(Eval& e, const Tensor& truth, const Tensor& pred, int classes) {
  e.confusion.assign(static_cast<std::size_t>(classes * classes), 0);
  const std::int64_t* tp = truth.data<std::int64_t>();
  const std::int64_t* pp = pred.data<std::int64_t>();
  for (std::int64_t i = 0; i < truth.numel(); ++i) {
    const std::int64_t t = tp[i], q = pp[i];
    e.truth.push_back(t);
    e.pred.push_back(q);
    if (t >= 0 && t < classes && q >= 0 && q < classes) ++e.confusion[static_cast<std::size_t>(t * classes + q)];
  }
}

// A colour run (CIFAR-10 or an image folder; model.syn's metadata says how it was trained): the test set
// read as in training, shown as the images in [0, 1] and predicted as the model takes them.
Eval evaluate_colour(nn::Module& model, const io::Checkpoint& saved, const std::string& data_dir, int classes) {
  Eval e;
  const zoo::ModelInput in = zoo::model_input(saved);
  const auto [x, y] = zoo::load_test_set(saved, data_dir, false);
  e.images = Tensor::empty(x.shape(), DType::UInt8);
  const float* src = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i)
    e.images.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(std::lround(std::clamp(src[i], 0.0f, 1.0f) * 255.0f));
  tally(e, y, cast(argmax(train::predict(model, zoo::model_ready(in, x)), 1), DType::Int64), classes);
  e.counted = "test set";  // the report does not read the training images again
  e.train_counts.assign(static_cast<std::size_t>(classes), 0);
  for (std::int64_t t : e.truth)
    if (t >= 0 && t < classes) ++e.train_counts[static_cast<std::size_t>(t)];
  e.train_total = static_cast<std::int64_t>(e.truth.size());
  e.ok = true;
  return e;
}

Eval evaluate(nn::Module& model, const std::string& data_dir, int classes) {
  Eval e;
  const data::Mnist m = data::load_mnist(data_dir);
  e.images = m.test_images;
  const Tensor x = data::scale(m.test_images).reshape({m.test_images.dim(0), 28, 28, 1});
  tally(e, cast(m.test_labels, DType::Int64), cast(argmax(train::predict(model, x), 1), DType::Int64), classes);
  e.train_counts.assign(static_cast<std::size_t>(classes), 0);
  const std::uint8_t* tl = m.train_labels.data<std::uint8_t>();
  for (std::int64_t i = 0; i < m.train_labels.numel(); ++i)
    if (tl[i] < classes) ++e.train_counts[tl[i]];
  e.train_total = m.train_labels.numel();
  e.ok = true;
  return e;
}

std::string setting_text(const SettingValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return fmt::format("{:g}", std::get<double>(v));
}

RunHistory run_history(const std::string& run_dir) {
  SYN_CHECK(fs::is_directory(run_dir), "report: run folder '{}' does not exist", run_dir);
  return read_history((fs::path(run_dir) / "history.json").string());
}

std::string duration_text(double s) {
  if (s < 60) return fmt::format("{:.1f} s", s);
  if (s < 3600) return fmt::format("{}m {:02}s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return fmt::format("{}h {:02}m", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
}

std::string thousands(std::int64_t v) {
  const std::string digits = std::to_string(v < 0 ? -v : v);
  std::string s = v < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string card(const std::string& label, const std::string& value, const std::string& sub) {
  return fmt::format(
      R"(<div class="card"><div class="label">{}</div><div class="value">{}</div><div class="sub">{}</div></div>)",
      html_escape(label), html_escape(value), html_escape(sub));
}

// Blue scale for the confusion matrix: white (0) to deep blue (the largest count), on a square-root
// scale so small confusions stay visible next to the diagonal.
std::string cell_style(double frac) {
  frac = std::sqrt(std::clamp(frac, 0.0, 1.0));
  auto mix = [frac](int a, int b) { return static_cast<int>(std::lround(a + (b - a) * frac)); };
  return fmt::format("background:rgb({},{},{});color:{}", mix(239, 30), mix(246, 64), mix(255, 175),
                     frac > 0.55 ? "#fff" : "#1f2937");
}

std::string sample_figure(const Eval& e, std::int64_t i, const std::vector<std::string>& names) {
  const bool colour = e.images.ndim() == 4;
  const int rows = static_cast<int>(e.images.dim(1)), cols = static_cast<int>(e.images.dim(2));
  const int channels = colour ? static_cast<int>(e.images.dim(3)) : 1;
  const auto* px = e.images.data<std::uint8_t>() + i * rows * cols * channels;
  const bool right = e.truth[static_cast<std::size_t>(i)] == e.pred[static_cast<std::size_t>(i)];
  auto name = [&](std::int64_t c) {
    return c >= 0 && c < static_cast<std::int64_t>(names.size()) ? names[static_cast<std::size_t>(c)]
                                                                 : std::to_string(c);
  };
  return fmt::format(
      R"(<figure class="sample {}"><img alt="test image {}" src="{}"><figcaption>#{} true {}<br>predicted <b>{}</b></figcaption></figure>)",
      right ? "right" : "wrong", i, png_data_uri(px, cols, rows, channels), i,
      html_escape(name(e.truth[static_cast<std::size_t>(i)])), html_escape(name(e.pred[static_cast<std::size_t>(i)])));
}

// The page up to the header (title, style, self-check script) and after the last section; the MNIST
// report and the run reports share them.
std::string page_start(const std::string& title, const std::string& description, const std::string& run_dir,
                       const std::string& when) {
  std::string html;
  html.reserve(1 << 20);
  html += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  html += fmt::format("<title>Synapse report: {}</title><style>{}</style><script>{}</script></head><body>\n",
                      html_escape(title), kStyle, kScript);
  html += fmt::format(
      "<header><div class=\"inner\"><h1>Training report: {}</h1><p>{} &middot; run folder <code>{}</code> &middot; "
      "{}</p></div></header>\n",
      html_escape(title), html_escape(description), html_escape(run_dir), html_escape(when));
  return html;
}

std::string page_end() {
  return fmt::format(
      "</main><footer>Written by Synapse {} on {} &middot; <span id=\"render-status\">render-pending</span></footer>\n"
      "</body></html>\n",
      version(), utc_now());
}

std::string settings_section(const RunHistory& h) {
  std::string html = "<section id=\"settings\"><h2>Settings</h2><table class=\"kv\">";
  for (const auto& [k, v] : h.settings)
    html += fmt::format("<tr><td>{}</td><td>{}</td></tr>", html_escape(k), html_escape(setting_text(v)));
  return html + "</table></section>";
}

}  // namespace

std::string write_report(const std::string& run_dir, const ReportOptions& options) {
  const RunHistory h = run_history(run_dir);
  auto setting = [&](const std::string& k, const std::string& fallback = "") { return setting_string(h, k, fallback); };
  auto number = [&](const std::string& k) { return setting_number(h, k); };
  std::string model_name = setting("model", fs::path(run_dir).filename().string());

  // The model and the test-set evaluation; each missing piece leaves its sections out with a note.
  nn::ModulePtr owned;
  nn::Module* model = options.model;
  std::string model_note;
  // model.syn's metadata says what the model was trained on (MNIST when it says nothing).
  io::Checkpoint saved;
  const std::string path = (fs::path(run_dir) / "model.syn").string();
  if (!model) {
    try {
      zoo::Trained t = zoo::load_trained(path);
      model_name = t.name;
      owned = std::move(t.model);
      model = owned.get();
      saved = std::move(t.checkpoint);
    } catch (const Error& e) {
      model_note = fmt::format("The trained model could not be loaded: {}", e.what());
    }
  } else if (fs::is_regular_file(path)) {
    try {
      saved = io::load_checkpoint(path);
    } catch (const Error&) {  // not a zoo model file: the MNIST sections as before
    }
  }
  zoo::ModelInput input;
  try {
    input = zoo::model_input(saved);
  } catch (const Error&) {  // a model the zoo does not know: MNIST
  }
  const std::string data_dir = options.data_dir.empty() ? setting("data", "data/mnist") : options.data_dir;
  std::vector<std::string> names = options.class_names;
  if (names.empty()) {
    if (input.data != "mnist")
      names = input.class_names;
    else if (data_dir.find("fashion") != std::string::npos)
      names = fashion_mnist_classes();
    else
      for (int c = 0; c < 10; ++c) names.push_back(std::to_string(c));
  }
  const int classes = static_cast<int>(names.size());
  Eval ev;
  if (model) {
    try {
      ev = input.data == "mnist" ? evaluate(*model, data_dir, classes) : evaluate_colour(*model, saved, data_dir, classes);
    } catch (const Error& e) {
      ev.note = fmt::format("The test set could not be evaluated: {}", e.what());
    }
  } else {
    ev.note = model_note;
  }

  // ---- per-epoch series ----
  auto series = [&](const std::string& key, const std::string& name, const char* color) {
    Series s{name, {}, {}, color};
    for (const auto& e : h.epochs)
      if (auto it = e.find(key); it != e.end() && e.count("epoch")) {
        s.x.push_back(e.at("epoch"));
        s.y.push_back(it->second);
      }
    return s;
  };
  std::vector<Series> loss{series("loss", "train", kTrainColor), series("val_loss", "validation", kValColor)};
  std::vector<Series> acc{series("accuracy", "train", kTrainColor), series("val_accuracy", "validation", kValColor)};
  std::vector<Series> lr{series("lr", "learning rate", "#7c3aed")};
  std::erase_if(loss, [](const Series& s) { return s.x.empty(); });
  std::erase_if(acc, [](const Series& s) { return s.x.empty(); });

  // ---- headline numbers ----
  double best_val = -1;
  int best_epoch = 0;
  double train_secs = 0;
  for (const auto& e : h.epochs) {
    if (auto it = e.find("val_accuracy"); it != e.end() && it->second > best_val) {
      best_val = it->second;
      best_epoch = static_cast<int>(e.count("epoch") ? e.at("epoch") : 0);
    }
    if (auto it = e.find("seconds"); it != e.end() && std::isfinite(it->second)) train_secs += it->second;
  }
  double test_acc = number("test_accuracy");
  if (ev.ok) {
    std::int64_t right = 0;
    for (std::size_t i = 0; i < ev.truth.size(); ++i) right += ev.truth[i] == ev.pred[i];
    test_acc = static_cast<double>(right) / static_cast<double>(ev.truth.size());
  }

  std::string html = page_start(model_name, setting("description", "Synapse"), run_dir,
                                setting("finished", setting("started", "")));
  html += "<main>\n<div class=\"cards\">";
  html += card("test accuracy", std::isfinite(test_acc) ? fmt::format("{:.2f}%", 100 * test_acc) : "–",
               ev.ok ? fmt::format("{} test images", ev.truth.size()) : "not evaluated");
  html += card("best validation", best_val >= 0 ? fmt::format("{:.2f}%", 100 * best_val) : "–",
               best_val >= 0 ? fmt::format("at epoch {}", best_epoch) : "no validation data");
  html += card(
      "epochs", std::to_string(h.epochs.size()),
      h.epochs.empty() || !h.epochs.back().count("step") ? "" : fmt::format("{:g} steps", h.epochs.back().at("step")));
  const double total = number("seconds");
  html += card("time", duration_text(std::isfinite(total) ? total : train_secs),
               fmt::format("{} training", duration_text(train_secs)));
  if (model) html += card("parameters", thousands(model->count_parameters()), model_name);
  html += "</div>\n";

  // ---- curves ----
  html +=
      "<section id=\"curves\"><h2>Learning curves</h2><p class=\"note\">Per epoch; training values are means over "
      "the epoch's batches, validation values are measured after it. Hover a point for its value.</p>"
      "<div class=\"charts\">";
  html += line_chart_svg(loss, {.title = "Loss", .x_label = "epoch", .y_label = "cross-entropy"});
  html += line_chart_svg(acc, {.title = "Accuracy", .x_label = "epoch", .y_label = "accuracy"});
  bool lr_spread = false;
  if (!lr[0].y.empty()) {
    const auto [lo, hi] = std::minmax_element(lr[0].y.begin(), lr[0].y.end());
    lr_spread = *lo > 0 && *hi / *lo > 20;
  }
  html += line_chart_svg(
      lr, {.title = "Learning rate", .x_label = "epoch", .y_label = "learning rate", .log_y = lr_spread});
  html += "</div></section>\n";

  // ---- test set ----
  if (ev.ok) {
    std::int64_t cmax = 1;
    for (int t = 0; t < classes; ++t)
      for (int p = 0; p < classes; ++p) cmax = std::max(cmax, ev.confusion[static_cast<std::size_t>(t * classes + p)]);
    html +=
        "<section id=\"confusion\"><h2>Confusion matrix</h2><p class=\"note\">Test set: rows are the true class, "
        "columns the predicted one; the diagonal holds the correct predictions.</p><div class=\"cm-wrap\"><div>"
        "<table class=\"confusion\"><tr><th class=\"corner\">true &darr;<br>pred &rarr;</th>";
    for (int p = 0; p < classes; ++p)
      html += fmt::format("<th title=\"{0}\">{1}</th>", html_escape(names[static_cast<std::size_t>(p)]),
                          classes == 10 && names[0] == "0" ? names[static_cast<std::size_t>(p)] : std::to_string(p));
    html += "<th>recall</th></tr>";
    for (int t = 0; t < classes; ++t) {
      std::int64_t row = 0;
      for (int p = 0; p < classes; ++p) row += ev.confusion[static_cast<std::size_t>(t * classes + p)];
      html += fmt::format("<tr><th title=\"{}\">{}</th>", html_escape(names[static_cast<std::size_t>(t)]),
                          html_escape(names[static_cast<std::size_t>(t)]));
      for (int p = 0; p < classes; ++p) {
        const std::int64_t c = ev.confusion[static_cast<std::size_t>(t * classes + p)];
        html += fmt::format(R"(<td style="{}" title="true {} predicted {}: {}">{}</td>)",
                            cell_style(static_cast<double>(c) / static_cast<double>(cmax)),
                            html_escape(names[static_cast<std::size_t>(t)]),
                            html_escape(names[static_cast<std::size_t>(p)]), c, c ? std::to_string(c) : "");
      }
      html += fmt::format("<td class=\"acc\">{:.1f}%</td></tr>",
                          row ? 100.0 * static_cast<double>(ev.confusion[static_cast<std::size_t>(t * classes + t)]) /
                                    static_cast<double>(row)
                              : 0.0);
    }
    html +=
        "</table><div class=\"legend-scale\">0 <span class=\"bar\"></span> " + std::to_string(cmax) + "</div></div>";
    // The most frequent mistakes.
    std::vector<std::tuple<std::int64_t, int, int>> mistakes;
    for (int t = 0; t < classes; ++t)
      for (int p = 0; p < classes; ++p)
        if (t != p && ev.confusion[static_cast<std::size_t>(t * classes + p)] > 0)
          mistakes.emplace_back(ev.confusion[static_cast<std::size_t>(t * classes + p)], t, p);
    std::sort(mistakes.rbegin(), mistakes.rend());
    html += "<div><table class=\"data\" style=\"width:auto\"><tr><th>most frequent mistakes</th><th>count</th></tr>";
    for (std::size_t i = 0; i < std::min<std::size_t>(8, mistakes.size()); ++i) {
      const auto& [c, t, p] = mistakes[i];
      html += fmt::format("<tr><td>{} mistaken for {}</td><td>{}</td></tr>",
                          html_escape(names[static_cast<std::size_t>(t)]),
                          html_escape(names[static_cast<std::size_t>(p)]), c);
    }
    html += "</table></div></div></section>\n";

    const std::int64_t n = std::min<std::int64_t>(options.sample_images, static_cast<std::int64_t>(ev.truth.size()));
    html += fmt::format(
        "<section id=\"predictions\"><h2>Test images and predictions</h2><p class=\"note\">The first {} "
        "test images; wrong predictions are outlined in red.</p><div class=\"samples\">",
        n);
    for (std::int64_t i = 0; i < n; ++i) html += sample_figure(ev, i, names);
    html += "</div>";
    std::vector<std::int64_t> wrong;
    for (std::size_t i = 0; i < ev.truth.size() && wrong.size() < 20; ++i)
      if (ev.truth[i] != ev.pred[i]) wrong.push_back(static_cast<std::int64_t>(i));
    if (!wrong.empty()) {
      const auto wrong_total = std::inner_product(ev.truth.begin(), ev.truth.end(), ev.pred.begin(), std::int64_t{0},
                                                  std::plus<>(), std::not_equal_to<>());
      html += fmt::format(
          "<h2 style=\"margin-top:18px\">Misclassified</h2><p class=\"note\">The first {} of the "
          "{} test images the model gets wrong.</p><div class=\"samples\">",
          wrong.size(), wrong_total);
      for (std::int64_t i : wrong) html += sample_figure(ev, i, names);
      html += "</div>";
    }
    html += "</section>\n";
  } else {
    html += fmt::format("<section id=\"test-set\"><h2>Test set</h2><p class=\"note\">{}</p></section>\n",
                        html_escape(ev.note));
  }

  // ---- data, model, settings ----
  html += "<div class=\"two\">";
  if (ev.ok) {
    std::vector<double> counts(ev.train_counts.begin(), ev.train_counts.end());
    html += fmt::format(
        "<section id=\"labels\"><h2>{} labels</h2><p class=\"note\">How often each class occurs "
        "among the {} images of the {} in <code>{}</code>{}.</p>",
        ev.counted == "test set" ? "Test" : "Training", ev.train_total, ev.counted, html_escape(data_dir),
        ev.counted == "test set" ? "" : " (the validation images held out of it included)");
    html += bar_chart_svg(
        names, counts,
        {.title = "Label distribution", .x_label = "class", .y_label = "images", .width = 540, .height = 320});
    html += "</section>";
  }
  if (model) {
    std::ostringstream os;
    model->summary(os);
    html += fmt::format("<section id=\"model\"><h2>Model</h2><pre class=\"summary\">{}</pre></section>",
                        html_escape(os.str()));
  }
  html += "</div>\n";

  html += "<div class=\"two\">" + settings_section(h);
  html +=
      "<section id=\"epochs\"><h2>Epochs</h2><table class=\"data\"><tr><th>epoch</th><th>step</th><th>time</th>"
      "<th>loss</th><th>accuracy</th><th>val loss</th><th>val acc.</th><th>lr</th></tr>";
  for (const auto& e : h.epochs) {
    auto cellv = [&](const char* k, const char* f) {
      auto it = e.find(k);
      return it == e.end() || !std::isfinite(it->second) ? std::string("–") : fmt::format(fmt::runtime(f), it->second);
    };
    html +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    cellv("epoch", "{:g}"), cellv("step", "{:g}"), cellv("seconds", "{:.1f} s"),
                    cellv("loss", "{:.4f}"), cellv("accuracy", "{:.4f}"), cellv("val_loss", "{:.4f}"),
                    cellv("val_accuracy", "{:.4f}"), cellv("lr", "{:.3g}"));
  }
  html += "</table></section></div>\n";
  html += page_end();

  const std::string out = options.output.empty() ? (fs::path(run_dir) / "report.html").string() : options.output;
  io::write_file_atomic(out, html);
  return out;
}

std::string write_run_report(const std::string& run_dir, const RunReport& r) {
  const RunHistory h = run_history(run_dir);
  auto setting = [&](const std::string& k, const std::string& fallback = "") { return setting_string(h, k, fallback); };
  const std::string title = r.title.empty() ? setting("model", fs::path(run_dir).filename().string()) : r.title;
  std::string html = page_start(title, r.kind.empty() ? setting("description", "Synapse") : r.kind, run_dir,
                                setting("finished", setting("started", "")));

  html += "<main>\n<div class=\"cards\">";
  for (const auto& c : r.cards) html += card(c.label, c.value, c.sub);
  html += "</div>\n";

  // ---- charts: series from the epochs, baselines as dashed flat lines over the same epochs ----
  static constexpr const char* kPalette[] = {kTrainColor, kValColor, "#16a34a", "#7c3aed", "#db2777", "#0891b2"};
  static constexpr const char* kBaselineColors[] = {"#9ca3af", "#6b7280", "#374151", "#a16207"};
  if (!r.charts.empty()) {
    html += "<section id=\"curves\"><h2>Learning curves</h2><p class=\"note\">";
    html += html_escape(r.charts_note.empty() ? "Per epoch. Hover a point for its value." : r.charts_note);
    html += "</p><div class=\"charts\">";
    for (const auto& chart : r.charts) {
      std::vector<Series> lines;
      double first = std::numeric_limits<double>::infinity(), last = -first;
      for (std::size_t i = 0; i < chart.series.size(); ++i) {
        Series s{chart.series[i].second, {}, {}, kPalette[i % std::size(kPalette)]};
        for (const auto& e : h.epochs)
          if (auto it = e.find(chart.series[i].first); it != e.end() && e.count("epoch") && std::isfinite(it->second)) {
            s.x.push_back(e.at("epoch"));
            s.y.push_back(it->second);
            first = std::min(first, s.x.back());
            last = std::max(last, s.x.back());
          }
        if (!s.x.empty()) lines.push_back(std::move(s));
      }
      if (!std::isfinite(first)) first = last = 1;
      for (std::size_t i = 0; i < chart.baselines.size(); ++i) {
        const auto& [name, value] = chart.baselines[i];
        if (!std::isfinite(value)) continue;
        Series s{name, {first, last}, {value, value}, kBaselineColors[i % std::size(kBaselineColors)], true};
        if (first == last) s.x = {first}, s.y = {value};
        lines.push_back(std::move(s));
      }
      // Wide enough for the title and the legend (drawn from the top right, ~7 px per character).
      double legend = 40 + 8.0 * static_cast<double>(chart.title.size());
      for (const auto& l : lines) legend += 32 + 7.2 * static_cast<double>(l.name.size());
      html += line_chart_svg(lines, {.title = chart.title, .x_label = "epoch", .y_label = chart.y_label,
                                     .width = std::max(440, static_cast<int>(legend)), .log_y = chart.log_y});
    }
    html += "</div></section>\n";
  }

  // ---- samples ----
  if (!r.samples.empty()) {
    html += fmt::format("<section id=\"samples\"><h2>{}</h2><p class=\"note\">{}</p><div class=\"text-samples\">",
                        html_escape(r.samples_title.empty() ? "Samples" : r.samples_title), html_escape(r.samples_note));
    for (const auto& t : r.samples)
      html += fmt::format("<figure class=\"text-sample\"><figcaption>{}</figcaption><pre>{}</pre></figure>",
                          html_escape(t.caption), html_escape(t.text));
    html += "</div></section>\n";
  }

  // ---- model, settings, epochs ----
  html += "<div class=\"two\">";
  if (!r.model_summary.empty())
    html += fmt::format("<section id=\"model\"><h2>Model</h2><pre class=\"summary\">{}</pre></section>",
                        html_escape(r.model_summary));
  html += settings_section(h) + "</div>\n";
  html += "<section id=\"epochs\"><h2>Epochs</h2><table class=\"data\"><tr><th>epoch</th><th>step</th><th>time</th>";
  for (const auto& c : r.columns) html += fmt::format("<th>{}</th>", html_escape(c.header));
  html += "</tr>";
  for (const auto& e : h.epochs) {
    auto cellv = [&](const std::string& k, const std::string& f) {
      auto it = e.find(k);
      return it == e.end() || !std::isfinite(it->second) ? std::string("–") : fmt::format(fmt::runtime(f), it->second);
    };
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>", cellv("epoch", "{:g}"), cellv("step", "{:g}"),
                        cellv("seconds", "{:.1f} s"));
    for (const auto& c : r.columns) html += "<td>" + cellv(c.key, c.format) + "</td>";
    html += "</tr>";
  }
  html += "</table></section>\n";
  html += page_end();

  const std::string out = r.output.empty() ? (fs::path(run_dir) / "report.html").string() : r.output;
  io::write_file_atomic(out, html);
  return out;
}

}  // namespace synapse::report
