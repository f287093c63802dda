// history.json, the SVG charts and the HTML report, on a tiny model and a small MNIST-format data set.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "report/html.h"
#include "synapse/report.h"
#include "synapse/synapse.h"

using namespace synapse;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("synapse_test_report_" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST(Report, NiceTicks) {
  EXPECT_EQ(report::nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  const auto t = report::nice_ticks(0.88, 0.93, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t.front(), 0.88, 1e-12);
  EXPECT_NEAR(t.back(), 0.93, 1e-12);
  const auto big = report::nice_ticks(0, 6742, 5);
  EXPECT_EQ(big, (std::vector<double>{0, 2000, 4000, 6000, 8000}));
  // A single value gets a range around it.
  const auto one = report::nice_ticks(0.5, 0.5, 5);
  EXPECT_LE(one.front(), 0.45 + 1e-12);
  EXPECT_GE(one.back(), 0.55 - 1e-12);
}

TEST(Report, Base64AndEscaping) {
  EXPECT_EQ(report::base64(""), "");
  EXPECT_EQ(report::base64("f"), "Zg==");
  EXPECT_EQ(report::base64("fo"), "Zm8=");
  EXPECT_EQ(report::base64("foo"), "Zm9v");
  EXPECT_EQ(report::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(report::html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  const unsigned char px[4] = {0, 255, 128, 7};
  const std::string uri = report::png_data_uri(px, 2, 2);
  // The PNG signature, base64-encoded.
  EXPECT_EQ(uri.rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u);
}

TEST(Report, LineChartHasAxesPointsAndLegend) {
  report::Series train{"train", {1, 2, 3}, {0.5, 0.3, 0.2}, "#123456"};
  report::Series val{"validation", {1, 2, 3}, {0.6, 0.4, 0.35}, "#654321"};
  const std::string svg =
      report::line_chart_svg({train, val}, {.title = "Loss", .x_label = "epoch", .y_label = "loss"});
  EXPECT_EQ(svg.rfind("<svg class=\"chart line-chart\"", 0), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_EQ(count(svg, "<circle"), 6u);
  EXPECT_NE(svg.find(">train</text>"), std::string::npos);
  EXPECT_NE(svg.find(">validation</text>"), std::string::npos);
  EXPECT_NE(svg.find("<title>validation · epoch 3: 0.35</title>"), std::string::npos);
  // x ticks at the three epochs, y ticks from 0.2 to 0.6.
  for (const char* tick : {">1</text>", ">2</text>", ">3</text>", ">0.2</text>", ">0.6</text>"})
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  EXPECT_EQ(svg.substr(svg.size() - 6), "</svg>");
  const std::string bars = report::bar_chart_svg({"a", "b"}, {3, 5}, {.title = "Counts", .x_label = "", .y_label = ""});
  EXPECT_EQ(count(bars, "<rect class=\"bar\""), 2u);
  EXPECT_THROW(report::bar_chart_svg({"a"}, {1, 2}, {.title = "", .x_label = "", .y_label = ""}), Error);
}

TEST(Report, HistoryJsonAndReportOfATinyRun) {
  const fs::path run = fresh_dir("run"), data_dir = fresh_dir("data");
  // A small MNIST-format data set: class c images are bright in column band c, so a linear model learns it.
  manual_seed(5);
  auto make = [](std::int64_t n, std::uint64_t seed) {
    Generator g(seed);
    std::vector<std::uint8_t> px(static_cast<std::size_t>(n * 784)), lb(static_cast<std::size_t>(n));
    const Tensor noise = random_uniform({n * 784}, 0.0f, 60.0f, &g);
    for (std::int64_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % 10);
      lb[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(c);
      for (int r = 0; r < 28; ++r)
        for (int col = 0; col < 28; ++col) {
          const auto k = static_cast<std::size_t>(i * 784 + r * 28 + col);
          px[k] = static_cast<std::uint8_t>(noise.data<float>()[k] + (col / 2 == c + 2 ? 180.0f : 0.0f));
        }
    }
    return std::make_pair(from_vector(px, {n, 28, 28}), from_vector(lb, {n}));
  };
  const auto [train_x, train_y] = make(200, 1);
  const auto [test_x, test_y] = make(60, 2);
  data::write_idx((data_dir / "train-images-idx3-ubyte").string(), train_x);
  data::write_idx((data_dir / "train-labels-idx1-ubyte").string(), train_y);
  data::write_idx((data_dir / "t10k-images-idx3-ubyte").string(), test_x);
  data::write_idx((data_dir / "t10k-labels-idx1-ubyte").string(), test_y);

  auto model = nn::Sequential({nn::Flatten(), nn::Dense(nn::DenseOptions(10).name("out"))});
  model->build_for({1, 28, 28, 1});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.1});
  auto history = std::make_shared<report::HistoryLog>((run / "history.json").string());
  history->set("model", std::string("tiny"));
  history->set("batch", 20.0);
  const Tensor x = data::scale(train_x).reshape({200, 28, 28, 1}), y = cast(train_y, DType::Int64);
  train::FitOptions fo;
  fo.epochs = 3;
  fo.batch_size = 20;
  fo.verbose = 0;
  fo.validation = std::make_pair(x, y);
  fo.callbacks = {history};
  const auto h = train::fit(*model, opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);

  const report::RunHistory rh = report::read_history((run / "history.json").string());
  ASSERT_EQ(rh.epochs.size(), 3u);
  EXPECT_EQ(rh.epochs[2].at("epoch"), 3.0);
  EXPECT_EQ(rh.epochs[2].at("step"), 30.0);
  EXPECT_DOUBLE_EQ(rh.epochs[1].at("loss"), h.epochs[1].at("loss"));
  EXPECT_DOUBLE_EQ(rh.epochs[2].at("val_accuracy"), h.epochs[2].at("val_accuracy"));
  EXPECT_GE(rh.epochs[0].at("seconds"), 0.0);
  EXPECT_EQ(std::get<std::string>(rh.settings.at("model")), "tiny");
  EXPECT_EQ(std::get<double>(rh.settings.at("batch")), 20.0);
  EXPECT_TRUE(rh.settings.count("started") && rh.settings.count("finished"));
  EXPECT_FALSE(fs::exists(run / "history.json.tmp"));

  report::ReportOptions ro;
  ro.data_dir = data_dir.string();
  ro.model = model.get();
  ro.sample_images = 12;
  const std::string out = report::write_report(run.string(), ro);
  EXPECT_EQ(out, (run / "report.html").string());
  const std::string html = read_text(out);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "<svg class=\"chart line-chart\""), 3u);
  EXPECT_EQ(count(html, "<svg class=\"chart bar-chart\""), 1u);
  EXPECT_EQ(count(html, "<table class=\"confusion\""), 1u);
  EXPECT_EQ(count(html, "<td style=\"background:rgb"), 100u);
  EXPECT_GE(count(html, "<figure class=\"sample"), 12u);
  EXPECT_NE(html.find("<pre class=\"summary\">Model: "), std::string::npos);
  // The training labels: 20 of each class.
  EXPECT_EQ(count(html, "<title>3: 20</title>"), 1u);
  // The confusion matrix's cells add up to the 60 test images: recover them from the tooltips.
  std::regex cell(R"re(title="true (\d) predicted (\d): (\d+)")re");
  std::int64_t total = 0, diagonal = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), cell); it != std::sregex_iterator(); ++it) {
    total += std::stoll((*it)[3]);
    if ((*it)[1] == (*it)[2]) diagonal += std::stoll((*it)[3]);
  }
  EXPECT_EQ(total, 60);
  // Test accuracy shown on the page equals the diagonal share.
  EXPECT_NE(html.find(fmt::format("{:.2f}%", 100.0 * static_cast<double>(diagonal) / 60.0)), std::string::npos);
  EXPECT_GT(diagonal, 40);  // the bands are easy to learn
  // Nothing from the network.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
}

TEST(Report, MissingHistoryNamesTheFile) {
  const fs::path run = fresh_dir("empty");
  try {
    report::write_report(run.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("history.json"), std::string::npos) << e.what();
  }
}

TEST(Report, RunReportOfAnyRunIsDrawnFromItsHistory) {
  // A run that is not an MNIST classifier describes its page as data: cards, charts of history keys with
  // flat baselines, extra epoch columns, text samples (escaped) and a model summary.
  const fs::path run = fresh_dir("lm");
  {
    std::ofstream f(run / "history.json");
    f << R"({"settings": {"model": "char_lm", "seed": 0},
             "epochs": [{"epoch": 1, "step": 10, "seconds": 2.5, "loss": 5.0, "val_perplexity": 120.25},
                        {"epoch": 2, "step": 20, "seconds": 2.0, "loss": 4.0, "val_perplexity": 80.5}]})";
  }
  report::RunReport r;
  r.kind = "character language model";
  r.cards.push_back({"held-out perplexity", "80.5", "0.40x the bigram"});
  r.charts.push_back({.title = "Held-out perplexity",
                      .y_label = "per character",
                      .series = {{"val_perplexity", "LSTM"}, {"missing_key", "never"}},
                      .baselines = {{"bigram", 201.0}, {"not measured", std::nan("")}}});
  r.columns = {{"loss", "loss", "{:.3f}"}, {"val_perplexity", "held-out perplexity", "{:.2f}"},
               {"step_seconds", "s / step", "{:.3f}"}};
  r.samples_title = "Samples";
  r.samples.push_back({"seed 0", "春眠不覺曉，\n<b>&"});
  r.model_summary = "Model: char_lm";
  const std::string out = report::write_run_report(run.string(), r);
  EXPECT_EQ(out, (run / "report.html").string());
  const std::string html = read_text(out);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<h1>Training report: char_lm</h1><p>character language model &middot;"), std::string::npos);
  EXPECT_NE(html.find(R"(<div class="value">80.5</div>)"), std::string::npos);
  EXPECT_EQ(count(html, "<svg class=\"chart line-chart\""), 1u);
  // The LSTM's two points and the bigram's flat line from epoch 1 to 2; no series for what is missing.
  EXPECT_EQ(count(html, "<g class=\"series\""), 2u);
  EXPECT_NE(html.find("<title>LSTM · epoch 2: 80.5</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>bigram · epoch 1: 201</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>bigram · epoch 2: 201</title>"), std::string::npos);
  EXPECT_EQ(count(html, "stroke-dasharray"), 1u);
  EXPECT_EQ(html.find("never"), std::string::npos);
  EXPECT_EQ(html.find("not measured"), std::string::npos);
  // The epoch table: the given columns in their formats, "–" for a value the epochs lack.
  EXPECT_NE(html.find("<tr><td>2</td><td>20</td><td>2.0 s</td><td>4.000</td><td>80.50</td><td>–</td></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<pre>春眠不覺曉，\n&lt;b&gt;&amp;</pre>"), std::string::npos);
  EXPECT_NE(html.find("<pre class=\"summary\">Model: char_lm</pre>"), std::string::npos);
  EXPECT_NE(html.find("id=\"render-status\""), std::string::npos);
}
