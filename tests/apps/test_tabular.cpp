#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "gradcheck.h"
#include "synapse/tabular.h"

using namespace synapse;
using namespace synapse::apps;
using synapse::testing::error_of;
namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path d = fs::temp_directory_path() / ("synapse_tabular_" + std::to_string(::getpid()) + "_" + info->name());
  fs::create_directories(d);
  return d;
}

std::string write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Customers: a shop ("north"/"south", text), two numbers on different scales, and whether they
// bought: bought = 1 when 0.002 * spend + visits + (shop == north) > 5.
std::string customers_csv(int rows, std::uint64_t seed, bool with_target = true) {
  Generator g(seed);
  std::string s = with_target ? "shop,spend,visits,bought\n" : "shop,spend,visits\n";
  for (int i = 0; i < rows; ++i) {
    const bool north = g.uniform() < 0.5f;
    const double spend = std::floor(2000 * g.uniform());
    const double visits = std::floor(6 * g.uniform());
    const int bought = 0.002 * spend + visits + (north ? 1 : 0) > 5 ? 1 : 0;
    s += fmt::format("{},{},{}", north ? "north" : "south", spend, visits);
    s += with_target ? fmt::format(",{}\n", bought) : "\n";
  }
  return s;
}

// Options that save nothing and print nothing.
TabularOptions quiet(const std::string& target) {
  TabularOptions o;
  o.target = target;
  o.logdir = "";
  o.verbose = 0;
  return o;
}

}  // namespace

TEST(TabularMetrics, RocAucCountsPairsAndTies) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);  // sklearn's example
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5}, {0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.1}, {0, 1}), 0.0);
}

TEST(TabularMetrics, ClassificationAndRegression) {
  // Rows predicted 1, 1, 0, 1 for labels 1, 0, 0, 1: accuracy 3/4, precision 2/3, recall 1.
  const Tensor p = from_vector(std::vector<float>{0.2f, 0.8f, 0.4f, 0.6f, 0.9f, 0.1f, 0.3f, 0.7f}, {4, 2});
  const TabularMetrics m = classification_metrics(p, from_vector(std::vector<std::int64_t>{1, 0, 0, 1}, {4}));
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.8);
  EXPECT_DOUBLE_EQ(m.auc, 1.0);
  const TabularMetrics r = regression_metrics(from_vector(std::vector<float>{1, 2, 5}, {3, 1}),
                                              from_vector(std::vector<float>{1, 3, 5}, {3}));
  EXPECT_NEAR(r.rmse, std::sqrt(1.0 / 3), 1e-6);
  EXPECT_NEAR(r.mae, 1.0 / 3, 1e-6);
  EXPECT_NEAR(r.r2, 1 - 1.0 / 8, 1e-6);
}

TEST(Tabular, TrainsSavesLoadsAndPredictsAClassifier) {
  const fs::path d = scratch();
  const data::Table t = data::read_table(write(d / "customers.csv", customers_csv(600, 1)));
  TabularOptions o = quiet("bought");
  o.logdir = (d / "run").string();
  const TabularResult r = train_tabular(t, o);
  EXPECT_EQ(r.task, Task::Classification);
  EXPECT_EQ(r.classes, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(r.features, (std::vector<std::string>{"shop=north", "shop=south", "spend", "visits"}));
  EXPECT_EQ(r.test_rows, 120);
  EXPECT_EQ(r.valid_rows, 96);
  EXPECT_EQ(r.train_rows, 384);
  EXPECT_GE(r.test.accuracy, 0.95);
  EXPECT_GE(r.test.auc, 0.98);
  for (const char* f : {"model.syn", "metrics.csv", "history.json", "test_metrics.json", "checkpoints"})
    EXPECT_TRUE(fs::exists(d / "run" / f)) << f;
  // The MLP's TensorBoard logs, as synapse train writes them.
  for (const char* run : {"train", "validation"}) {
    ASSERT_TRUE(fs::is_directory(d / "run" / run)) << run;
    int events = 0;
    for (const auto& e : fs::directory_iterator(d / "run" / run))
      events += e.path().filename().string().starts_with("events.out.tfevents.") && fs::file_size(e.path()) > 100;
    EXPECT_EQ(events, 1) << run;
  }

  // The model file is self-contained: the same test metrics from a fresh load, on rows in another
  // column order (by name) without the target.
  const TabularModel m = load_tabular(o.logdir);
  EXPECT_EQ(m.columns, (std::vector<std::string>{"shop", "spend", "visits"}));
  EXPECT_TRUE(m.normalizer.state().contains("mean"));
  const data::Table fresh = data::read_table(write(d / "new.csv", "visits,shop,spend\n5,north,1900\n0,south,10\n"));
  const std::vector<float> p = m.predict(fresh).to_vector<float>();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_GT(p[1], 0.9f);  // certainly buys
  EXPECT_LT(p[3], 0.1f);  // certainly does not
  write_predictions((d / "out.csv").string(), m, m.predict(fresh));
  const std::string out = slurp((d / "out.csv").string());
  EXPECT_EQ(out.substr(0, out.find('\n')), "p(0),p(1),prediction");
  EXPECT_NE(out.find(",1\n"), std::string::npos);
  EXPECT_NE(out.find(",0\n"), std::string::npos);

  // Columns that do not match are named.
  const data::Table lacking = data::read_table(write(d / "lacking.csv", "shop,visits\nnorth,1\n"));
  EXPECT_EQ(error_of([&] { m.predict(lacking); }),
            "'" + lacking.source + "' has no column 'spend', which the model was trained on (it needs: shop, spend, visits)");
  const data::Table extra = data::read_table(write(d / "extra.csv", "shop,spend,visits,age\nnorth,1,1,30\n"));
  EXPECT_EQ(error_of([&] { m.predict(extra); }),
            "'" + extra.source + "' has a column 'age' that the model does not know (it was trained on: shop, spend, visits)");
  // A failed prediction never leaves a half-written file.
  EXPECT_THROW(write_predictions((d / "no-such-dir" / "out.csv").string(), m, m.predict(fresh)), Error);
  EXPECT_FALSE(fs::exists(d / "no-such-dir"));
  fs::remove_all(d);
}

TEST(Tabular, KeepsTheMlpOnlyWhenItClearlyBeatsTheLinearModel) {
  // Inside or outside a circle: no straight line separates the classes, an MLP does.
  Generator g(7);
  std::string csv = "x,y,inside\n";
  for (int i = 0; i < 500; ++i) {
    const double x = 4 * g.uniform() - 2, y = 4 * g.uniform() - 2;
    csv += fmt::format("{:.4f},{:.4f},{}\n", x, y, x * x + y * y < 1.5 ? "yes" : "no");
  }
  const fs::path d = scratch();
  const data::Table t = data::read_table(write(d / "circle.csv", csv));
  TabularOptions o = quiet("inside");
  const TabularResult r = train_tabular(t, o);
  EXPECT_EQ(r.hidden, (std::vector<std::int64_t>{32}));
  ASSERT_TRUE(r.candidates.contains("linear") && r.candidates.contains("mlp"));
  EXPECT_LT(r.candidates.at("linear"), 0.8);
  EXPECT_GE(r.test.accuracy, 0.9);
  // A straight line plus noise: the MLP cannot clearly beat least squares, so the linear model stays.
  std::string line = "a,b,y\n";
  for (int i = 0; i < 300; ++i) {
    const double a = g.normal(), b = g.normal();
    line += fmt::format("{:.4f},{:.4f},{:.4f}\n", a, b, 3 * a - 2 * b + 1 + g.normal());
  }
  TabularOptions l = quiet("y");
  const TabularResult straight = train_tabular(data::read_table(write(d / "line.csv", line)), l);
  EXPECT_TRUE(straight.hidden.empty());
  EXPECT_GE(straight.test.r2, 0.85);
  const data::Table c = data::read_table(write(d / "customers.csv", customers_csv(400, 6)));
  TabularOptions q = quiet("bought");
  // --hidden none fits only the linear model; compare_linear = false only the MLP.
  q.hidden = {};
  const TabularResult lin = train_tabular(c, q);
  EXPECT_TRUE(lin.hidden.empty());
  EXPECT_FALSE(lin.candidates.contains("mlp"));
  q.hidden = {8};
  q.compare_linear = false;
  q.epochs = 5;
  const TabularResult mlp = train_tabular(c, q);
  EXPECT_EQ(mlp.hidden, (std::vector<std::int64_t>{8}));
  EXPECT_FALSE(mlp.candidates.contains("linear"));
  fs::remove_all(d);
}

TEST(Tabular, SameSeedSameModel) {
  const fs::path d = scratch();
  const data::Table t = data::read_table(write(d / "customers.csv", customers_csv(200, 2)));
  TabularOptions o = quiet("bought");
  o.epochs = 20;
  const TabularResult a = train_tabular(t, o), b = train_tabular(t, o);
  EXPECT_EQ(a.test.accuracy, b.test.accuracy);
  EXPECT_EQ(a.valid.auc, b.valid.auc);
  EXPECT_EQ(a.epochs_run, b.epochs_run);
  fs::remove_all(d);
}

TEST(Tabular, RegressionFromAWholeNumberTargetWithManyValues) {
  // price = 3 * area - 20 * age + 100 + noise (whole numbers, hundreds of values: a regression).
  Generator g(5);
  std::string csv = "area,age,price\n";
  for (int i = 0; i < 400; ++i) {
    const double area = std::floor(40 + 100 * g.uniform()), age = std::floor(30 * g.uniform());
    csv += fmt::format("{},{},{}\n", area, age, std::round(3 * area - 20 * age + 100 + 5 * g.normal()));
  }
  const fs::path d = scratch();
  const data::Table t = data::read_table(write(d / "houses.csv", csv));
  TabularOptions o = quiet("price");
  o.logdir = (d / "run").string();
  o.hidden = {};  // linear regression
  const TabularResult r = train_tabular(t, o);
  EXPECT_EQ(r.task, Task::Regression);
  EXPECT_GE(r.test.r2, 0.98);
  EXPECT_LE(r.test.rmse, 8.0);
  const TabularModel m = load_tabular(o.logdir);
  const data::Table one = data::read_table(write(d / "one.csv", "area,age\n100,10\n"));
  EXPECT_NEAR(m.predict(one).item<float>(), 3 * 100 - 20 * 10 + 100, 6.0);
  write_predictions((d / "out.csv").string(), m, m.predict(one));
  EXPECT_EQ(slurp((d / "out.csv").string()).substr(0, 6), "price\n");
  fs::remove_all(d);
}

TEST(Tabular, MissingValuesAreReportedOrImputed) {
  const fs::path d = scratch();
  std::string csv = customers_csv(300, 3);
  // Blank the spend of the 5th data row (file line 6).
  std::size_t pos = 0;
  for (int i = 0; i < 5; ++i) pos = csv.find('\n', pos) + 1;
  const std::size_t c1 = csv.find(',', pos), c2 = csv.find(',', c1 + 1);
  csv.replace(c1 + 1, c2 - c1 - 1, "NA");
  const data::Table t = data::read_table(write(d / "gaps.csv", csv));
  TabularOptions o = quiet("bought");
  EXPECT_EQ(error_of([&] { train_tabular(t, o); }),
            "'" + t.source + "': line 6, column 2 ('spend'): expected a value, found a missing cell (1 missing in all); "
            "fill missing values with --impute mean|median");
  o.impute = data::Impute::Median;
  o.logdir = (d / "run").string();
  EXPECT_GE(train_tabular(t, o).test.accuracy, 0.9);
  // The imputed value is part of the model: a missing cell at prediction time is filled the same way.
  const TabularModel m = load_tabular(o.logdir);
  ASSERT_TRUE(m.fill.contains("spend"));
  EXPECT_NEAR(m.fill.at("spend"), 1000, 150);
  const data::Table row = data::read_table(write(d / "row.csv", "shop,spend,visits\nnorth,,5\n"));
  EXPECT_EQ(m.predict(row).dim(0), 1);
  fs::remove_all(d);
}

TEST(Tabular, RefusesWhatItCannotLearn) {
  const fs::path d = scratch();
  const data::Table t = data::read_table(write(d / "c.csv", customers_csv(50, 4)));
  TabularOptions o = quiet("price");
  EXPECT_EQ(error_of([&] { train_tabular(t, o); }),
            "'" + t.source + "' has no column 'price'; its columns are: shop, spend, visits, bought");
  o.target = "bought";
  o.features = {"spend", "bought"};
  EXPECT_EQ(error_of([&] { train_tabular(t, o); }),
            "--features: 'bought' is the target; a model cannot take its answer as an input");
  // A test file with a class the training rows never had is refused before training.
  const data::Table other = data::read_table(write(d / "other.csv", "shop,spend,visits,bought\nnorth,1,1,2\n"));
  o.features = {};
  EXPECT_EQ(error_of([&] { train_tabular(t, o, other); }),
            "'" + other.source + "': line 2, column 4 ('bought'): expected one of the classes the model knows (0, 1), found '2'");
  o.task = Task::Regression;
  o.target = "shop";
  EXPECT_EQ(error_of([&] { train_tabular(t, o); }), "--task regression: the target column 'shop' holds text, not numbers");
  fs::remove_all(d);
}

// The NaN lesson: unnormalised skewed features and plain gradient descent give a NaN loss; the error
// names the epoch, the batch, the op, the largest-scale columns and the cure.
TEST(Tabular, NanOnUnnormalisedDataNamesEpochBatchOpColumnsAndTheCure) {
  TabularOptions o = quiet("premium");
  o.hidden = {64, 32};
  o.optimizer = "sgd";
  o.lr = 0.1;
  o.normalize = data::NormalizeKind::None;
  const std::string e = error_of([&] { train_tabular(premium_members(2000, 0), o); });
  EXPECT_NE(e.find("training diverged at epoch 1, batch "), std::string::npos) << e;
  EXPECT_NE(e.find("the loss is NaN"), std::string::npos) << e;
  EXPECT_NE(e.find("op '"), std::string::npos) << e;
  EXPECT_NE(e.find("The feature columns with the largest scale: balance (up to "), std::string::npos) << e;
  EXPECT_NE(e.find("Train with --normalize zscore"), std::string::npos) << e;
}

TEST(TabularDemos, XorNeedsAHiddenLayer) {
  const DemoResult r = run_demo("xor");
  ASSERT_EQ(r.numbers.size(), 2u);
  EXPECT_GE(r.numbers[0].second, 0.5);
  EXPECT_LE(r.numbers[0].second, 0.75);
  EXPECT_EQ(r.numbers[1].second, 1.0);
}

TEST(TabularDemos, YearsRuleIsLearnedExactly) {
  const DemoResult r = run_demo("years");
  EXPECT_EQ(r.numbers[0].second, 1.0);
  EXPECT_GT(r.numbers[1].second, 5.0);
  EXPECT_LT(r.numbers[1].second, 6.0);
}

TEST(TabularDemos, PremiumMembersNeedNormalisation) {
  const DemoResult r = run_demo("premium");
  EXPECT_EQ(r.numbers[0].second, 1.0) << r.text;  // NaN without normalisation
  EXPECT_GE(r.numbers[1].second, 0.87) << r.text;
  EXPECT_NE(r.text.find("--normalize zscore"), std::string::npos) << r.text;
  EXPECT_EQ(error_of([] { run_demo("mnist"); }), "unknown demo 'mnist'; the demos are: xor, years, premium");
}
