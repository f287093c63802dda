// Tables in, a trained classifier or regressor out: encoding, split, normalisation, the MLP, early
// stopping, test metrics, the self-contained model file, loading and predicting.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include <fmt/ranges.h>

#include "core/check.h"
#include "synapse/autograd.h"
#include "synapse/dist.h"
#include "synapse/io.h"
#include "synapse/ops.h"
#include "synapse/report.h"
#include "synapse/solvers.h"
#include "synapse/tabular.h"
#include "synapse/train.h"
#include "synapse/data.h"

namespace synapse::apps {

namespace fs = std::filesystem;
using ::synapse::detail::fail;
using nlohmann::json;

Task parse_task(const std::string& s) {
  if (s == "auto") return Task::Auto;
  if (s == "classification") return Task::Classification;
  if (s == "regression") return Task::Regression;
  fail("--task: '{}' is not one of auto, classification, regression", s);
}

namespace {

constexpr std::size_t kMaxClasses = 20;  // whole-number targets with at most this many values are classes
constexpr int kStandardErrors = 2;       // how clearly the MLP must beat the linear model to be chosen

const char* task_name(Task t) { return t == Task::Regression ? "regression" : "classification"; }

Task decide_task(const data::Column& target, Task asked) {
  if (asked != Task::Auto) {
    SYN_CHECK(asked != Task::Regression || target.numeric,
              "--task regression: the target column '{}' holds text, not numbers", target.name);
    return asked;
  }
  if (!target.numeric) return Task::Classification;
  return target.integral() && target.distinct().size() <= kMaxClasses ? Task::Classification : Task::Regression;
}

// Labels int64 [rows] of a classification target, by class name.
Tensor class_labels(const data::Table& t, const std::string& target, const std::vector<std::string>& classes) {
  const data::Column& c = t.column(target);
  std::vector<std::int64_t> y(static_cast<std::size_t>(t.rows()));
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    const std::string v = c.cell(r);
    const auto it = std::find(classes.begin(), classes.end(), v);
    if (it == classes.end())
      fail("'{}': line {}, column {} ('{}'): expected one of the classes the model knows ({}), found '{}'", t.source,
           t.lines[static_cast<std::size_t>(r)], *t.index(target) + 1, target, fmt::join(classes, ", "), v);
    y[static_cast<std::size_t>(r)] = it - classes.begin();
  }
  return from_vector(y, {t.rows()});
}

std::vector<std::int64_t> range(std::int64_t lo, std::int64_t hi, const std::vector<std::int64_t>& order) {
  return {order.begin() + lo, order.begin() + hi};
}

nn::ModulePtr make_mlp(const std::vector<std::int64_t>& hidden, std::int64_t outputs) {
  std::vector<nn::ModulePtr> layers;
  for (std::size_t i = 0; i < hidden.size(); ++i)
    layers.push_back(nn::Dense(nn::DenseOptions(hidden[i]).activation(nn::Activation::ReLU).name(fmt::format("dense{}", i + 1))));
  layers.push_back(nn::Dense(nn::DenseOptions(outputs).name("output")));
  return nn::Sequential(layers, hidden.empty() ? "linear" : "mlp");
}

// Writes an exact linear fit into the linear model's Dense layer (kernel [F, K], bias [K]).
void set_linear_weights(nn::Module& linear, const optim::LinearFit& fit) {
  for (auto& [name, p] : linear.named_parameters()) {
    const std::vector<double>& v = name.ends_with("kernel") ? fit.weight : fit.bias;
    SYN_CHECK(static_cast<std::size_t>(p.numel()) == v.size(), "the linear model's '{}' {} does not fit {} values", name,
              to_string(p.shape()), v.size());
    float* dst = p.data<float>();
    for (std::size_t i = 0; i < v.size(); ++i) dst[i] = static_cast<float>(v[i]);
  }
}

// The NaN lesson: a diverged fit on unnormalised data names the features with the largest scale.
[[noreturn]] void explain_divergence(const Error& e, const Tensor& x, const std::vector<std::string>& names,
                                     data::NormalizeKind kind) {
  std::vector<std::pair<double, std::string>> scale;
  const float* p = x.data<float>();
  const std::int64_t n = x.dim(0), f = x.dim(1);
  for (std::int64_t j = 0; j < f; ++j) {
    double m = 0;
    for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(p[i * f + j])));
    scale.emplace_back(m, names[static_cast<std::size_t>(j)]);
  }
  std::sort(scale.begin(), scale.end(), std::greater<>());
  std::string largest;
  for (std::size_t i = 0; i < scale.size() && i < 3; ++i)
    largest += fmt::format("{}{} (up to {:.3g})", i ? ", " : "", scale[i].second, scale[i].first);
  if (kind == data::NormalizeKind::None)
    fail("{}\nThe feature columns with the largest scale: {}. Train with --normalize zscore (the default) so every "
         "feature has mean 0 and standard deviation 1.",
         e.what(), largest);
  fail("{}\nThe feature columns with the largest scale after --normalize {}: {}. Try a smaller --lr.", e.what(),
       data::to_string(kind), largest);
}

json metrics_json(const TabularMetrics& m, Task task) {
  if (task == Task::Regression) return {{"rows", m.rows}, {"rmse", m.rmse}, {"mae", m.mae}, {"r2", m.r2}};
  return {{"rows", m.rows}, {"accuracy", m.accuracy}, {"precision", m.precision}, {"recall", m.recall},
          {"f1", m.f1}, {"auc", m.auc}};
}

}  // namespace

// ---- metrics ----
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  SYN_CHECK(scores.size() == labels.size(), "roc_auc: {} scores for {} labels", scores.size(), labels.size());
  std::vector<std::size_t> idx(scores.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U with mid-ranks for ties.
  double rank_sum = 0;
  std::int64_t pos = 0;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) ++j;
    const double mid = (static_cast<double>(i) + static_cast<double>(j) + 1) / 2;  // 1-based mid-rank
    for (std::size_t k = i; k < j; ++k)
      if (labels[idx[k]] == 1) rank_sum += mid;
    i = j;
  }
  for (int l : labels) pos += l == 1;
  const auto neg = static_cast<std::int64_t>(labels.size()) - pos;
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum - static_cast<double>(pos) * static_cast<double>(pos + 1) / 2) /
         (static_cast<double>(pos) * static_cast<double>(neg));
}

TabularMetrics classification_metrics(const Tensor& probs, const Tensor& labels) {
  SYN_CHECK(probs.ndim() == 2 && labels.ndim() == 1 && probs.dim(0) == labels.dim(0),
            "classification_metrics: probabilities {} and labels {}", to_string(probs.shape()), to_string(labels.shape()));
  const std::int64_t n = probs.dim(0), c = probs.dim(1);
  const std::vector<float> p = probs.to_vector<float>();
  const std::vector<std::int64_t> y = labels.to_vector<std::int64_t>();
  std::vector<std::int64_t> tp(static_cast<std::size_t>(c)), fp(tp.size()), fn(tp.size());
  TabularMetrics m;
  m.rows = n;
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = p.data() + i * c;
    const auto pred = static_cast<std::size_t>(std::max_element(row, row + c) - row);
    const auto truth = static_cast<std::size_t>(y[static_cast<std::size_t>(i)]);
    if (pred == truth) {
      ++correct;
      ++tp[pred];
    } else {
      ++fp[pred];
      ++fn[truth];
    }
  }
  m.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0;
  auto prf = [&](std::size_t k, double& pr, double& rc, double& f) {
    pr = tp[k] + fp[k] ? static_cast<double>(tp[k]) / static_cast<double>(tp[k] + fp[k]) : 0;
    rc = tp[k] + fn[k] ? static_cast<double>(tp[k]) / static_cast<double>(tp[k] + fn[k]) : 0;
    f = pr + rc > 0 ? 2 * pr * rc / (pr + rc) : 0;
  };
  if (c == 2) {
    prf(1, m.precision, m.recall, m.f1);
    std::vector<double> s;
    std::vector<int> l;
    for (std::int64_t i = 0; i < n; ++i) {
      s.push_back(p[static_cast<std::size_t>(i * c + 1)]);
      l.push_back(y[static_cast<std::size_t>(i)] == 1);
    }
    m.auc = roc_auc(s, l);
  } else {
    for (std::size_t k = 0; k < static_cast<std::size_t>(c); ++k) {
      double pr, rc, f;
      prf(k, pr, rc, f);
      m.precision += pr / static_cast<double>(c);
      m.recall += rc / static_cast<double>(c);
      m.f1 += f / static_cast<double>(c);
    }
  }
  return m;
}

TabularMetrics regression_metrics(const Tensor& values, const Tensor& targets) {
  const std::vector<float> v = values.to_vector<float>(), t = cast(targets, DType::Float32).to_vector<float>();
  SYN_CHECK(v.size() == t.size() && !v.empty(), "regression_metrics: {} values for {} targets", v.size(), t.size());
  TabularMetrics m;
  m.rows = static_cast<std::int64_t>(v.size());
  double mean = 0, se = 0, ae = 0, var = 0;
  for (float x : t) mean += x;
  mean /= static_cast<double>(t.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double d = static_cast<double>(v[i]) - t[i];
    se += d * d;
    ae += std::fabs(d);
    var += (t[i] - mean) * (t[i] - mean);
  }
  m.rmse = std::sqrt(se / static_cast<double>(v.size()));
  m.mae = ae / static_cast<double>(v.size());
  m.r2 = var > 0 ? 1 - se / var : 0;
  return m;
}

// ---- the model's inputs ----
Tensor TabularModel::inputs(const data::Table& t) const {
  // Columns by name: every model column must be there; any column the training file did not have is refused.
  for (const auto& c : columns)
    if (!t.has(c))
      fail("'{}' has no column '{}', which the model was trained on (it needs: {})", t.source, c, fmt::join(columns, ", "));
  for (const auto& name : t.names())
    if (std::find(columns.begin(), columns.end(), name) == columns.end() &&
        std::find(known.begin(), known.end(), name) == known.end())
      fail("'{}' has a column '{}' that the model does not know (it was trained on: {})", t.source, name,
           fmt::join(columns, ", "));
  data::Table x;
  x.source = t.source;
  x.lines = t.lines;
  for (const auto& c : columns) x.columns.push_back(t.column(c));
  for (auto& c : x.columns) {
    if (const auto it = fill.find(c.name); it != fill.end() && c.numeric) data::fill_missing(c, it->second);
    const bool encoded = std::any_of(one_hot.begin(), one_hot.end(), [&](const data::OneHot& h) { return h.column == c.name; });
    if (!c.numeric && !encoded) {
      const auto r = std::find(c.missing.begin(), c.missing.end(), false) - c.missing.begin();
      fail("'{}': line {}, column {} ('{}'): expected a number, found '{}' (the model was trained on numbers here)",
           t.source, t.lines[static_cast<std::size_t>(r)], *t.index(c.name) + 1, c.name, c.text[static_cast<std::size_t>(r)]);
    }
  }
  for (const auto& h : one_hot) h.apply(x);
  return normalizer.transform(x);
}

Tensor TabularModel::predict(const data::Table& t) const {
  const Tensor x = inputs(t);
  NoGradGuard no_grad;
  model->eval();
  const Tensor out = (*model)(x);
  if (task == Task::Classification) return softmax(out);
  return out * static_cast<float>(target_std) + static_cast<float>(target_mean);
}

TabularMetrics TabularModel::evaluate(const data::Table& t) const {
  SYN_CHECK(t.has(target), "'{}' has no target column '{}' to evaluate on", t.source, target);
  data::check_complete(t, {target});
  const Tensor p = predict(t);
  if (task == Task::Classification) return classification_metrics(p, class_labels(t, target, classes));
  return regression_metrics(p, t.matrix({target}));
}

namespace {

// Per row of `t`: 1 or 0 (right or wrong class), or minus the squared error in the target's units;
// their mean is the accuracy, or the R^2 up to a shift and a scale.
std::vector<double> row_scores(const TabularModel& m, const data::Table& t) {
  const std::vector<float> p = m.predict(t).to_vector<float>();
  std::vector<double> s(static_cast<std::size_t>(t.rows()));
  if (m.task == Task::Classification) {
    const std::vector<std::int64_t> y = class_labels(t, m.target, m.classes).to_vector<std::int64_t>();
    const std::size_t c = m.classes.size();
    for (std::size_t i = 0; i < s.size(); ++i)
      s[i] = std::max_element(p.begin() + static_cast<std::ptrdiff_t>(i * c), p.begin() + static_cast<std::ptrdiff_t>((i + 1) * c)) -
                 (p.begin() + static_cast<std::ptrdiff_t>(i * c)) == y[i];
  } else {
    const std::vector<double>& y = t.column(m.target).numbers;
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = -(p[i] - y[i]) * (p[i] - y[i]);
  }
  return s;
}

}  // namespace

// ---- training ----
TabularResult train_tabular(const data::Table& t, const TabularOptions& o, const data::Table& test_in) {
  // Its linear fits, cross-validation folds and file writes are not rank-aware yet: one process only.
  SYN_CHECK(dist::size() == 1,
            "synapse tabular train runs as one process, but mpirun started {} ranks; run it without mpirun (data-parallel "
            "training over MPI: synapse train, synapse poem train)", dist::size());
  SYN_CHECK(!o.target.empty(), "--target: name the column to predict (the file's columns: {})", fmt::join(t.names(), ", "));
  SYN_CHECK(o.epochs >= 1 && o.batch >= 1 && o.patience >= 1, "epochs {}, batch {} and patience {} must be at least 1",
            o.epochs, o.batch, o.patience);
  SYN_CHECK(std::isfinite(o.lr) && o.lr > 0, "--lr: {} is not allowed; it must be above 0", o.lr);
  SYN_CHECK(o.test_fraction > 0 && o.test_fraction < 1 && o.valid_fraction > 0 && o.valid_fraction < 1,
            "test and validation fractions must be in (0, 1), got {} and {}", o.test_fraction, o.valid_fraction);
  for (std::int64_t h : o.hidden) SYN_CHECK(h >= 1, "--hidden: layer sizes must be at least 1, got {}", h);
  const data::Column& target = t.column(o.target);
  data::check_complete(t, {o.target});

  TabularModel m;
  m.target = o.target;
  m.task = decide_task(target, o.task);
  if (o.features.empty()) {
    for (const auto& n : t.names())
      if (n != o.target) m.columns.push_back(n);
  } else {
    for (const auto& f : o.features) {
      t.column(f);  // throws naming the file's columns
      SYN_CHECK(f != o.target, "--features: '{}' is the target; a model cannot take its answer as an input", f);
      SYN_CHECK(std::count(o.features.begin(), o.features.end(), f) == 1, "--features: '{}' is listed twice", f);
    }
    m.columns = o.features;
  }
  SYN_CHECK(!m.columns.empty(), "'{}' has no column besides the target '{}' to learn from", t.source, o.target);
  for (const auto& n : t.names())
    if (std::find(m.columns.begin(), m.columns.end(), n) == m.columns.end()) m.known.push_back(n);
  if (m.task == Task::Classification) {
    m.classes = target.distinct();
    SYN_CHECK(m.classes.size() >= 2, "the target '{}' has a single value ('{}'): there is nothing to classify", o.target,
              m.classes.empty() ? "" : m.classes[0]);
  }
  if (o.impute == data::Impute::None) {
    std::vector<std::string> numeric;
    for (const auto& c : m.columns)
      if (t.column(c).numeric) numeric.push_back(c);
    data::check_complete(t, numeric);
    if (test_in.rows() > 0)
      for (const auto& c : numeric)
        if (test_in.has(c)) data::check_complete(test_in, {c});
  }

  // The split: test rows first (unless a test file is given), then validation, from one seeded order.
  const std::int64_t n = t.rows();
  const auto order = data::permutation(n, o.seed);
  const bool own_test = test_in.rows() == 0;
  const std::int64_t n_test = own_test ? std::max<std::int64_t>(1, std::llround(static_cast<double>(n) * o.test_fraction)) : 0;
  const std::int64_t n_valid = std::max<std::int64_t>(1, std::llround(static_cast<double>(n - n_test) * o.valid_fraction));
  SYN_CHECK(n - n_test - n_valid >= 1, "'{}' has {} rows: too few to split into training, validation and test rows",
            t.source, n);
  const data::Table test = own_test ? t.take(range(0, n_test, order)) : test_in;
  const data::Table valid = t.take(range(n_test, n_test + n_valid, order));
  data::Table train_t = t.take(range(n_test + n_valid, n, order));
  // A test file must be usable before any training is spent on it.
  SYN_CHECK(test.has(o.target), "'{}' has no target column '{}' to test on", test.source, o.target);
  data::check_complete(test, {o.target});
  if (m.task == Task::Classification) class_labels(test, o.target, m.classes);  // names a class the model cannot know

  // The encoding (imputed values, one-hot categories, normaliser statistics, the regression target's
  // scale) is fitted on `rows`: the training rows, and again on training + validation rows for the refit.
  std::vector<std::string> features;
  auto fit_encoding = [&](data::Table rows) {
    features.clear();
    m.fill.clear();
    m.one_hot.clear();
    for (const auto& c : m.columns) {
      data::Column& col = rows.column(c);
      if (col.numeric) {
        if (o.impute != data::Impute::None && col.missing_count() < col.size()) m.fill[c] = data::statistic(col, o.impute);
        features.push_back(c);
      } else {
        m.one_hot.push_back(data::OneHot::fit(col));
        const auto names = m.one_hot.back().names();
        features.insert(features.end(), names.begin(), names.end());
      }
    }
    data::Table enc;  // the rows encoded, to fit the normaliser on
    enc.source = rows.source;
    enc.lines = rows.lines;
    for (const auto& c : m.columns) enc.columns.push_back(rows.column(c));
    for (auto& c : enc.columns)
      if (m.fill.contains(c.name)) data::fill_missing(c, m.fill.at(c.name));
    for (const auto& h : m.one_hot) h.apply(enc);
    m.normalizer = data::ColumnNormalizer::fit(o.normalize, enc, features);
    if (m.task == Task::Regression) {
      const data::Column& y = rows.column(o.target);
      m.target_mean = data::statistic(y, data::Impute::Mean);
      double var = 0;
      for (double v : y.numbers) var += (v - m.target_mean) * (v - m.target_mean);
      m.target_std = std::sqrt(var / static_cast<double>(y.numbers.size()));
      if (!(m.target_std > 0)) m.target_std = 1;
    }
  };
  fit_encoding(train_t);

  TabularResult r;
  r.task = m.task;
  r.classes = m.classes;
  r.features = features;
  r.train_rows = train_t.rows();
  r.valid_rows = valid.rows();
  r.test_rows = test.rows();

  auto targets = [&](const data::Table& d) {
    if (m.task == Task::Classification) return class_labels(d, o.target, m.classes);
    return (d.matrix({o.target}) - static_cast<float>(m.target_mean)) / static_cast<float>(m.target_std);
  };

  const Tensor x_train = m.inputs(train_t), y_train = targets(train_t);
  const Tensor x_valid = m.inputs(valid), y_valid = targets(valid);
  const std::int64_t outputs = m.task == Task::Classification ? static_cast<std::int64_t>(m.classes.size()) : 1;
  if (o.verbose)
    fmt::print("{}: {} rows; target '{}': {}{}; {} features{}; {} training, {} validation, {} test rows{}\n", t.source, n,
               o.target, task_name(m.task),
               m.task == Task::Classification ? fmt::format(" ({} classes: {})", m.classes.size(), fmt::join(m.classes, ", "))
                                              : "",
               features.size(), m.one_hot.empty() ? "" : fmt::format(" ({} text column{} one-hot encoded)", m.one_hot.size(), m.one_hot.size() > 1 ? "s" : ""),
               r.train_rows, r.valid_rows, r.test_rows, own_test ? "" : fmt::format(" (from '{}')", test.source));
  std::fflush(stdout);  // before any error on stderr

  // A fresh model and optimizer from the seed (the refit starts from the same weights).
  auto fresh = [&](const std::vector<std::int64_t>& hidden) -> std::unique_ptr<optim::Optimizer> {
    manual_seed(o.seed);
    m.model = make_mlp(hidden, outputs);
    m.model->build_for({1, static_cast<std::int64_t>(features.size())});
    if (o.optimizer == "adamw")
      return std::make_unique<optim::AdamW>(m.model->named_trainable_parameters(),
                                            optim::AdamWOptions{.learning_rate = o.lr, .weight_decay = o.weight_decay});
    return optim::make_optimizer(o.optimizer, m.model->named_trainable_parameters(), o.lr);
  };
  // The linear model, solved exactly on (x, y): least squares, or logistic / softmax regression with
  // scikit-learn's default penalty (C = 1).
  auto solve_linear = [&](const Tensor& x, const Tensor& y) {
    manual_seed(o.seed);
    m.model = make_mlp({}, outputs);
    m.model->build_for({1, static_cast<std::int64_t>(features.size())});
    const optim::LinearFit fit = m.task == Task::Classification ? optim::logistic_regression(x, y, outputs)
                                                                : optim::least_squares(x, y);
    set_linear_weights(*m.model, fit);
    return fit;
  };

  // A fresh MLP trained for a fixed number of epochs (the refit, and the cross-validation's folds).
  const train::Loss loss = m.task == Task::Classification ? train::losses::sparse_categorical_crossentropy()
                                                          : train::losses::mean_squared_error();
  auto fit_mlp = [&](const Tensor& x, const Tensor& y, int epochs) {
    std::unique_ptr<optim::Optimizer> opt = fresh(o.hidden);
    train::FitOptions fo;
    fo.epochs = epochs;
    fo.batch_size = o.batch;
    fo.seed = o.seed;
    fo.verbose = 0;
    try {
      train::fit(*m.model, *opt, loss, x, y, fo);
    } catch (const Error& e) {
      explain_divergence(e, x, features, o.normalize);
    }
  };

  // The model file: weights + everything needed to encode a table (the chosen model's layers).
  auto describe = [&](const std::vector<std::int64_t>& hidden, std::map<std::string, std::string>& meta,
                      io::TensorMap& extra) {
    json spec;
    spec["columns"] = m.columns;
    spec["known"] = m.known;
    spec["classes"] = m.classes;
    spec["features"] = features;
    spec["hidden"] = hidden;
    spec["fill"] = m.fill;
    spec["normalize"] = data::to_string(o.normalize);
    spec["target_mean"] = m.target_mean;
    spec["target_std"] = m.target_std;
    for (const auto& h : m.one_hot) spec["one_hot"][h.column] = h.categories;
    meta = {{"model", "tabular"}, {"task", task_name(m.task)}, {"target", o.target}, {"tabular", spec.dump()}};
    extra.clear();
    for (const auto& [k, v] : m.normalizer.state()) extra["normalizer/" + k] = v;
  };
  std::map<std::string, std::string> meta;
  io::TensorMap extra;
  describe(o.hidden, meta, extra);

  const fs::path logdir(o.logdir);
  std::shared_ptr<report::HistoryLog> history;
  if (!o.logdir.empty()) {
    fs::create_directories(logdir);
    history = std::make_shared<report::HistoryLog>((logdir / "history.json").string());
    for (const auto& [k, v] : meta)
      if (k != "tabular") history->set(k, v);
    history->set("epochs", static_cast<double>(o.epochs));
    history->set("batch", static_cast<double>(o.batch));
    history->set("learning_rate", o.lr);
    history->set("seed", static_cast<double>(o.seed));
    history->set("normalize", std::string(data::to_string(o.normalize)));
  }
  // The validation score that chooses between the models: accuracy, or R^2 (higher is better).
  auto score = [&](const TabularMetrics& v) { return m.task == Task::Classification ? v.accuracy : v.r2; };
  const char* score_name = m.task == Task::Classification ? "accuracy" : "R2";

  // Candidate 1: the linear model (always when --hidden none; with hidden layers when compare_linear).
  std::optional<TabularMetrics> linear_valid;
  std::optional<optim::LinearFit> linear_fit;
  std::vector<double> linear_rows;
  if (o.hidden.empty() || o.compare_linear) {
    linear_fit = solve_linear(x_train, y_train);
    linear_valid = m.evaluate(valid);
    linear_rows = row_scores(m, valid);
    r.candidates["linear"] = score(*linear_valid);
    if (o.verbose)
      fmt::print("linear model ({}): validation {} {:.4f}\n",
                 m.task == Task::Classification
                     ? fmt::format("L2-regularised {} regression, {} L-BFGS iterations{}",
                                   outputs == 2 ? "logistic" : "softmax", linear_fit->iterations,
                                   linear_fit->converged ? "" : ", not fully converged")
                     : std::string("least squares"),
                 score_name, score(*linear_valid));
  }

  // Candidate 2: the MLP, with Adam(W) and early stopping on the validation loss.
  int last_epoch = 0;
  bool use_linear = o.hidden.empty();
  if (!o.hidden.empty()) {
    std::unique_ptr<optim::Optimizer> opt = fresh(o.hidden);
    train::FitOptions fo;
    fo.epochs = o.epochs;
    fo.batch_size = o.batch;
    fo.seed = o.seed;
    fo.verbose = 0;
    fo.validation = std::pair{x_valid, y_valid};
    fo.callbacks.push_back(train::callbacks::early_stopping("val_loss", o.patience, 0.0, true));
    if (!o.logdir.empty()) {
      fo.callbacks.push_back(train::callbacks::model_checkpoint((logdir / "checkpoints").string(), 10, 0, 3, meta, extra));
      fo.callbacks.push_back(train::callbacks::metrics_logger((logdir / "metrics.csv").string()));
      fo.callbacks.push_back(history);
      // TensorBoard: logdir/train and logdir/validation, as synapse train writes them.
      fo.callbacks.push_back(train::callbacks::tensorboard(o.logdir, 100, true, true,
                                                           {-1, static_cast<std::int64_t>(features.size())}));
    }
    train::Trainer trainer(*m.model, *opt, loss, fo);
    train::History h;
    try {
      h = trainer.fit(x_train, y_train);
    } catch (const Error& e) {
      explain_divergence(e, x_train, features, o.normalize);
    }
    last_epoch = trainer.epoch();
    r.epochs_run = static_cast<int>(h.epochs.size());
    for (int e = 0; e < r.epochs_run; ++e)
      if (h.epochs[static_cast<std::size_t>(e)].at("val_loss") < h.epochs[static_cast<std::size_t>(r.best_epoch - 1)].at("val_loss"))
        r.best_epoch = e + 1;
    const TabularMetrics mlp_valid = m.evaluate(valid);
    r.candidates["mlp"] = score(mlp_valid);
    if (o.verbose)
      fmt::print("MLP ({}): trained {} epochs{}; validation loss {:.4f} (best at epoch {}), validation {} {:.4f}\n",
                 fmt::join(o.hidden, "-"), r.epochs_run, h.stopped_early ? " (" + h.stop_reason + ")" : "",
                 h.epochs.back().at("val_loss"), r.best_epoch, score_name, score(mlp_valid));
    r.valid = mlp_valid;
    if (linear_valid) {
      // The MLP's validation score is optimistic (those rows also chose its epoch), and on a small table a
      // few rows' luck decides. So on tables of up to choice_max_rows labelled rows (when refitting), both
      // models are cross-validated on the training + validation rows (k folds, the MLP for its best epoch
      // count); else the validation rows judge. Either way the MLP must win by more than two standard
      // errors of the per-row difference (a paired one-sided test at about the 2.5% level): ties and
      // near-ties stay linear.
      std::vector<double> lin = linear_rows, mlp = row_scores(m, valid);
      std::string judge = "validation rows";
      if (o.refit && o.choice_folds >= 2 && n - n_test <= o.choice_max_rows) {
        const data::Table all = t.take(range(n_test, n, order));
        fit_encoding(all);
        lin.clear();
        mlp.clear();
        for (int k = 0; k < o.choice_folds; ++k) {
          std::vector<std::int64_t> in, out;
          for (std::int64_t i = 0; i < all.rows(); ++i) (i % o.choice_folds == k ? out : in).push_back(i);
          const data::Table a = all.take(in), b = all.take(out);
          const Tensor xa = m.inputs(a), ya = targets(a);
          solve_linear(xa, ya);
          const auto l = row_scores(m, b);
          fit_mlp(xa, ya, r.best_epoch);
          const auto p = row_scores(m, b);
          lin.insert(lin.end(), l.begin(), l.end());
          mlp.insert(mlp.end(), p.begin(), p.end());
        }
        judge = fmt::format("{}-fold cross-validation on the {} training and validation rows", o.choice_folds, all.rows());
      }
      const auto rows = static_cast<double>(mlp.size());
      double mean = 0, var = 0, lin_mean = 0, mlp_mean = 0;
      for (std::size_t i = 0; i < mlp.size(); ++i) {
        mean += (mlp[i] - lin[i]) / rows;
        lin_mean += lin[i] / rows;
        mlp_mean += mlp[i] / rows;
      }
      for (std::size_t i = 0; i < mlp.size(); ++i) var += (mlp[i] - lin[i] - mean) * (mlp[i] - lin[i] - mean);
      const double se = rows > 1 ? std::sqrt(var / (rows - 1) / rows) : 0.0;
      use_linear = !(mean > kStandardErrors * se);
      const bool cls = m.task == Task::Classification;
      if (o.verbose)
        fmt::print("chose the {}: {} {:.4f} (linear) against {:.4f} (MLP) on the {}; the MLP {} the linear model by "
                   "more than {} standard errors of the per-row difference\n",
                   use_linear ? "linear model" : "MLP", cls ? "accuracy" : "RMSE",
                   cls ? lin_mean : std::sqrt(-lin_mean), cls ? mlp_mean : std::sqrt(-mlp_mean), judge,
                   use_linear ? "does not beat" : "beats", kStandardErrors);
    }
  }
  const std::vector<std::int64_t> hidden = use_linear ? std::vector<std::int64_t>{} : o.hidden;
  r.hidden = hidden;
  if (use_linear) {
    r.valid = *linear_valid;
    if (!o.refit) solve_linear(x_train, y_train);  // the MLP replaced it in m.model
  }

  if (o.refit) {
    // The validation rows have chosen the model and the epoch count; now they teach too (as sklearn's
    // final fit on the whole training file would), with the encoding fitted on all of them.
    const data::Table all = t.take(range(n_test, n, order));
    fit_encoding(all);
    r.features = features;
    const Tensor x_all = m.inputs(all), y_all = targets(all);
    if (use_linear)
      solve_linear(x_all, y_all);
    else
      fit_mlp(x_all, y_all, r.best_epoch);
    if (o.verbose)
      fmt::print("refitted the {} on the {} training and validation rows{}\n", use_linear ? "linear model" : "MLP",
                 all.rows(), use_linear ? "" : fmt::format(" for {} epochs", r.best_epoch));
  }
  describe(hidden, meta, extra);
  r.test = m.evaluate(test);
  if (o.verbose) {
    if (m.task == Task::Classification) {
      fmt::print("test accuracy: {:.2f}% on {} rows\n", 100 * r.test.accuracy, r.test.rows);
      fmt::print("test precision {:.3f}, recall {:.3f}, F1 {:.3f}{}\n", r.test.precision, r.test.recall, r.test.f1,
                 m.classes.size() == 2 ? fmt::format(" (class '{}'); ROC AUC {:.3f}", m.classes[1], r.test.auc)
                                       : " (means over the classes)");
    } else {
      fmt::print("test RMSE {:.4g}, MAE {:.4g}, R2 {:.3f} on {} rows\n", r.test.rmse, r.test.mae, r.test.r2, r.test.rows);
    }
  }
  if (!o.logdir.empty()) {
    io::Checkpoint ckpt = train::capture_training_state(*m.model, nullptr, last_epoch);
    ckpt.metadata.insert(meta.begin(), meta.end());
    for (const auto& [k, v] : extra) ckpt.tensors[k] = v;
    r.model_path = (logdir / "model.syn").string();
    io::save_checkpoint(r.model_path, ckpt);
    json metrics{{"task", task_name(m.task)}, {"target", o.target}, {"epochs", r.epochs_run},
                 {"model", use_linear ? "linear" : "mlp"}, {"hidden", hidden},
                 {"train_rows", r.train_rows}, {"test", metrics_json(r.test, m.task)},
                 {"validation", metrics_json(r.valid, m.task)}};
    for (const auto& [k, v] : r.candidates) metrics["candidates"][k] = {{std::string("validation_") + score_name, v}};
    io::write_file_atomic((logdir / "test_metrics.json").string(), metrics.dump(2) + "\n");
    history->set("model", std::string(use_linear ? "linear" : "mlp"));
    history->set("test_" + std::string(m.task == Task::Classification ? "accuracy" : "rmse"),
                 m.task == Task::Classification ? r.test.accuracy : r.test.rmse);
    history->write();
    if (o.verbose) fmt::print("saved {}\n", r.model_path);
  }
  return r;
}

// ---- loading ----
TabularModel load_tabular(const std::string& path) {
  const std::string file = fs::is_directory(path) ? (fs::path(path) / "model.syn").string() : path;
  SYN_CHECK(fs::exists(file), "no model at '{}' (train one with: synapse tabular train DATA.csv --target COLUMN)", file);
  const io::Checkpoint c = io::load_checkpoint(file);
  auto it = c.metadata.find("model");
  SYN_CHECK(it != c.metadata.end() && it->second == "tabular" && c.metadata.contains("tabular"),
            "'{}' holds no tabular model (model '{}')", file, it == c.metadata.end() ? std::string("?") : it->second);
  TabularModel m;
  m.metadata = c.metadata;
  std::vector<std::int64_t> hidden;
  data::NormalizeKind kind{};
  try {
    const json spec = json::parse(c.metadata.at("tabular"));
    m.task = c.metadata.at("task") == "regression" ? Task::Regression : Task::Classification;
    m.target = c.metadata.at("target");
    m.columns = spec.at("columns").get<std::vector<std::string>>();
    m.known = spec.at("known").get<std::vector<std::string>>();
    m.classes = spec.at("classes").get<std::vector<std::string>>();
    m.fill = spec.at("fill").get<std::map<std::string, double>>();
    m.target_mean = spec.at("target_mean").get<double>();
    m.target_std = spec.at("target_std").get<double>();
    hidden = spec.at("hidden").get<std::vector<std::int64_t>>();
    kind = data::parse_normalize(spec.at("normalize").get<std::string>());
    if (spec.contains("one_hot"))
      for (const auto& [col, cats] : spec.at("one_hot").items())
        m.one_hot.push_back({col, cats.get<std::vector<std::string>>()});
    // Keep the encoders in column order (the order the features were made in).
    std::stable_sort(m.one_hot.begin(), m.one_hot.end(), [&](const data::OneHot& a, const data::OneHot& b) {
      return std::find(m.columns.begin(), m.columns.end(), a.column) < std::find(m.columns.begin(), m.columns.end(), b.column);
    });
    std::map<std::string, Tensor> state;
    for (const auto& [k, v] : c.tensors)
      if (k.starts_with("normalizer/")) state[k.substr(11)] = v;
    m.normalizer = data::ColumnNormalizer::from_state(kind, spec.at("features").get<std::vector<std::string>>(), state);
  } catch (const json::exception& e) {
    fail("'{}': the tabular model's description is damaged: {}", file, e.what());
  } catch (const std::out_of_range&) {
    fail("'{}': the tabular model's metadata is incomplete", file);
  }
  const auto outputs = m.task == Task::Classification ? static_cast<std::int64_t>(m.classes.size()) : 1;
  m.model = make_mlp(hidden, outputs);
  m.model->build_for({1, static_cast<std::int64_t>(m.normalizer.columns().size())});
  try {
    train::restore_training_state(c, *m.model, nullptr);
  } catch (const Error& e) {
    fail("'{}' does not fit its model: {}", file, e.what());
  }
  m.model->eval();
  return m;
}

void write_predictions(const std::string& path, const TabularModel& m, const Tensor& predictions) {
  const std::vector<float> p = predictions.to_vector<float>();
  const std::int64_t n = predictions.dim(0), c = predictions.dim(1);
  std::string out;
  if (m.task == Task::Classification) {
    for (const auto& k : m.classes) {
      out += data::csv_cell("p(" + k + ")");
      out += ',';
    }
    out += "prediction\n";
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = p.data() + i * c;
      for (std::int64_t k = 0; k < c; ++k) out += fmt::format("{:.6g},", row[k]);
      out += data::csv_cell(m.classes[static_cast<std::size_t>(std::max_element(row, row + c) - row)]);
      out += '\n';
    }
  } else {
    out += data::csv_cell(m.target);
    out += '\n';
    for (std::int64_t i = 0; i < n; ++i) out += fmt::format("{:.7g}\n", p[static_cast<std::size_t>(i)]);
  }
  io::write_file_atomic(path, out);
}

}  // namespace synapse::apps
