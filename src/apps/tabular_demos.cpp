// The tutorials' small tabular lessons as seeded demos: XOR, the ">5 years worked" rule and the
// premium-member classifier whose training returns NaN until its inputs are normalised.
#include <cmath>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/ops.h"
#include "synapse/tabular.h"
#include "synapse/train.h"

namespace synapse::apps {

namespace {

// Trains a one-output model with sigmoid cross-entropy on 0/1 targets, full batch, and returns its
// accuracy on (x, y) (output > 0 means class 1).
double fit_binary(nn::Module& model, const Tensor& x, const std::vector<float>& y, int epochs, double lr,
                  const Tensor& test_x = {}, const std::vector<float>& test_y = {}) {
  const Tensor targets = from_vector(y, {static_cast<std::int64_t>(y.size()), 1});
  auto opt = optim::make_optimizer("adam", model.named_trainable_parameters(), lr);
  train::FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = static_cast<int>(y.size());
  fo.shuffle = false;
  fo.verbose = 0;
  train::fit(model, *opt, train::losses::binary_crossentropy(true), x, targets, fo);
  const Tensor& ex = test_x.defined() ? test_x : x;
  const std::vector<float>& ey = test_x.defined() ? test_y : y;
  NoGradGuard no_grad;
  const std::vector<float> out = model(ex).to_vector<float>();
  std::int64_t right = 0;
  for (std::size_t i = 0; i < out.size(); ++i) right += (out[i] > 0) == (ey[i] > 0.5f);
  return static_cast<double>(right) / static_cast<double>(out.size());
}

DemoResult xor_demo(std::uint64_t seed) {
  const Tensor x = from_vector(std::vector<float>{0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  const std::vector<float> y{0, 1, 1, 0};
  manual_seed(seed);
  auto logistic = nn::Sequential({nn::Dense(nn::DenseOptions(1).name("logistic"))});
  logistic->build_for({1, 2});
  const double lin = fit_binary(*logistic, x, y, 1000, 0.1);
  manual_seed(seed);
  auto net = nn::Sequential({nn::Dense(nn::DenseOptions(4).activation(nn::Activation::Tanh).name("hidden")),
                             nn::Dense(nn::DenseOptions(1).name("output"))});
  net->build_for({1, 2});
  const double mlp = fit_binary(*net, x, y, 1000, 0.1);
  DemoResult r;
  r.numbers = {{"logistic regression accuracy", lin}, {"2-4-1 network accuracy", mlp}};
  r.text = fmt::format(
      "XOR: (0,0)->0, (0,1)->1, (1,0)->1, (1,1)->0, 1000 full-batch Adam steps (lr 0.1) each\n"
      "logistic regression (2-1):      {:.0f}% accuracy  (no line separates XOR's classes: at most 75%)\n"
      "2-4-1 network (tanh hidden):    {:.0f}% accuracy  (the hidden layer bends the boundary)\n",
      100 * lin, 100 * mlp);
  return r;
}

DemoResult years_demo(std::uint64_t seed) {
  // Years worked 0..15 as [year, 1]: the constant 1 lets a bias-free linear model place its threshold.
  Generator g(seed);
  auto make = [&](std::int64_t n, std::vector<float>& y) {
    std::vector<float> x;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto year = static_cast<float>(g.next_u64() % 16);
      x.insert(x.end(), {year, 1.0f});
      y.push_back(year > 5 ? 1.0f : 0.0f);
    }
    return from_vector(x, {n, 2});
  };
  std::vector<float> y_train, y_test;
  const Tensor x_train = make(200, y_train), x_test = make(100, y_test);
  manual_seed(seed);
  auto model = nn::Sequential({nn::Dense(nn::DenseOptions(1).use_bias(false).name("rule"))});
  model->build_for({1, 2});
  const double acc = fit_binary(*model, x_train, y_train, 2000, 0.05, x_test, y_test);
  const std::vector<float> w = model->named_parameters().begin()->second.to_vector<float>();
  DemoResult r;
  r.numbers = {{"test accuracy", acc}, {"threshold", -w[1] / w[0]}};
  r.text = fmt::format(
      "\">5 years worked\" from [year, 1]: 200 training and 100 test employees, years 0..15\n"
      "learned: w = [{:.3f}, {:.3f}], so the boundary is at year {:.2f} (the rule: 5 < year < 6)\n"
      "test accuracy: {:.0f}%\n",
      w[0], w[1], -w[1] / w[0], 100 * acc);
  return r;
}

DemoResult premium_demo(std::uint64_t seed) {
  const data::Table t = premium_members(2000, seed);
  TabularOptions o;
  o.target = "premium";
  o.logdir = "";
  o.verbose = 0;
  o.seed = seed;
  o.hidden = {64, 32};  // the tutorial's network and its plain gradient descent (not the linear model)
  o.compare_linear = false;
  o.optimizer = "sgd";
  o.lr = 0.1;
  o.refit = false;  // one training run, as in the tutorial
  o.normalize = data::NormalizeKind::None;
  std::string failure;
  try {
    train_tabular(t, o);
    failure = "(trained without NaN)";
  } catch (const Error& e) {
    failure = e.what();
  }
  o.normalize = data::NormalizeKind::ZScore;
  const TabularResult ok = train_tabular(t, o);
  DemoResult r;
  r.numbers = {{"diverged without normalisation", failure.find("NaN") != std::string::npos ? 1.0 : 0.0},
               {"test accuracy with zscore", ok.test.accuracy},
               {"test AUC with zscore", ok.test.auc}};
  r.text = fmt::format(
      "premium members: 2000 generated customers, 11 features (income, balance, order values, ... on skewed scales)\n"
      "plain gradient descent (lr 0.1) on the raw features:\n  {}\n"
      "the same with --normalize zscore: test accuracy {:.1f}%, ROC AUC {:.3f} on {} rows ({} epochs)\n",
      failure, 100 * ok.test.accuracy, ok.test.auc, ok.test.rows, ok.epochs_run);
  return r;
}

}  // namespace

data::Table premium_members(std::int64_t rows, std::uint64_t seed) {
  SYN_CHECK(rows >= 1, "premium_members: rows must be at least 1, got {}", rows);
  Generator g(seed);
  const std::vector<std::string> names{"age", "income", "balance", "days_since_signup", "orders_last_year",
                                       "avg_order_value", "visits_per_month", "support_tickets", "newsletter",
                                       "mobile_app", "referrals", "premium"};
  std::vector<std::vector<double>> cols(names.size());
  auto n = [&] { return static_cast<double>(g.normal()); };
  auto u = [&] { return static_cast<double>(g.uniform()); };
  for (std::int64_t i = 0; i < rows; ++i) {
    const double age = std::floor(18 + 57 * u());
    const double log_income = 10.6 + 0.5 * n();  // median ~40,000, a long right tail
    // Account balance: median ~5,000, up to millions, and 15% overdrawn.
    const double balance = u() < 0.15 ? -std::round(std::exp(7 + n())) : std::round(std::exp(8.5 + 1.5 * n()));
    const double days = std::floor(3650 * u());
    const double orders = std::floor(std::exp(1.5 + 0.8 * n()));
    const double log_aov = 3.8 + 0.6 * n();
    const double visits = std::floor(std::exp(1.2 + 0.9 * n()));
    const double tickets = std::floor(4 * u() * u() * u());
    const double newsletter = u() < 0.4 ? 1 : 0;
    const double app = u() < 0.5 ? 1 : 0;
    const double referrals = std::max(0.0, std::floor(std::exp(0.3 + 0.9 * n()) - 1));
    const double score = 1.6 * (log_income - 10.6) / 0.5 + 1.2 * (std::log(orders + 1) - 1.7) / 0.7 +
                         0.8 * (log_aov - 3.8) / 0.6 + 0.7 * newsletter + 0.6 * app - 0.5 * tickets +
                         0.4 * (age - 46) / 16 + 0.3 * (days / 3650 - 0.5) + 0.4 * std::log1p(visits) - 1.0;
    const double premium = score + 0.5 * n() > 0 ? 1 : 0;  // ~93% for a model that knew the score
    const double row[] = {age, std::round(std::exp(log_income)), balance, days, orders,
                          std::round(100 * std::exp(log_aov)) / 100, visits, tickets, newsletter, app, referrals, premium};
    for (std::size_t c = 0; c < names.size(); ++c) cols[c].push_back(row[c]);
  }
  data::Table t;
  t.source = fmt::format("premium_members(rows={}, seed={})", rows, seed);
  for (std::size_t c = 0; c < names.size(); ++c) {
    data::Column col;
    col.name = names[c];
    col.numbers = std::move(cols[c]);
    col.missing.assign(col.numbers.size(), false);
    t.add(std::move(col));
  }
  return t;
}

std::vector<std::string> demo_names() { return {"xor", "years", "premium"}; }

DemoResult run_demo(const std::string& name, std::uint64_t seed) {
  if (name == "xor") return xor_demo(seed);
  if (name == "years") return years_demo(seed);
  if (name == "premium") return premium_demo(seed);
  detail::fail("unknown demo '{}'; the demos are: xor, years, premium", name);
}

}  // namespace synapse::apps
