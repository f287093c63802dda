// Tables with named columns: the CSV reader, missing values, one-hot encoding, normalisation by name.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/ranges.h>

#include "core/check.h"
#include "data/lines.h"
#include "synapse/io.h"
#include "synapse/table.h"

namespace synapse::data {
namespace {

using ::synapse::detail::fail;

using internal::trim;

// One line -> cells; a cell may be quoted, with "" for a quote inside it.
std::vector<std::string> split_line(std::string_view line, char delimiter, const std::string& path,
                                    std::int64_t line_no) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell.push_back(c);
      }
    } else if (c == '"' && trim(cell).empty()) {
      quoted = was_quoted = true;
      cell.clear();
    } else if (c == delimiter) {
      cells.emplace_back(was_quoted ? cell : std::string(trim(cell)));
      cell.clear();
      was_quoted = false;
    } else if (!(was_quoted && (c == ' ' || c == '\t' || c == '\r'))) {
      cell.push_back(c);
    }
  }
  if (quoted) fail("read_table: '{}': line {}: a quoted cell is not closed (expected '\"', found the end of the line)", path, line_no);
  cells.emplace_back(was_quoted ? cell : std::string(trim(cell)));
  return cells;
}

bool is_missing(std::string_view s) {
  if (s.empty() || s == "?") return true;
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return lower == "na" || lower == "n/a" || lower == "nan" || lower == "null";
}

bool parse_number(std::string_view s, double& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

std::string number_text(double v) { return fmt::format("{:g}", v); }

std::string column_list(const Table& t) {
  std::string s;
  for (std::size_t i = 0; i < t.columns.size() && i < 40; ++i) {
    if (i) s += ", ";
    s += t.columns[i].name;
  }
  if (t.columns.size() > 40) s += fmt::format(", ... ({} in all)", t.columns.size());
  return s;
}

}  // namespace

// ---- Column ----
std::int64_t Column::missing_count() const { return std::count(missing.begin(), missing.end(), true); }

bool Column::integral() const {
  if (!numeric) return false;
  for (std::size_t i = 0; i < numbers.size(); ++i)
    if (!missing[i] && numbers[i] != std::floor(numbers[i])) return false;
  return true;
}

std::vector<std::string> Column::distinct() const {
  std::vector<std::string> out;
  if (numeric) {
    std::set<double> s;
    for (std::size_t i = 0; i < numbers.size(); ++i)
      if (!missing[i]) s.insert(numbers[i]);
    for (double v : s) out.push_back(number_text(v));
  } else {
    std::set<std::string> s;
    for (std::size_t i = 0; i < text.size(); ++i)
      if (!missing[i]) s.insert(text[i]);
    out.assign(s.begin(), s.end());
  }
  return out;
}

std::string Column::cell(std::int64_t row) const {
  const auto r = static_cast<std::size_t>(row);
  if (missing.at(r)) return "";
  return numeric ? number_text(numbers[r]) : text[r];
}

// ---- Table ----
std::optional<std::size_t> Table::index(const std::string& name) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == name) return i;
  return std::nullopt;
}

const Column& Table::column(const std::string& name) const {
  const auto i = index(name);
  if (!i) fail("'{}' has no column '{}'; its columns are: {}", source, name, column_list(*this));
  return columns[*i];
}

Column& Table::column(const std::string& name) {
  return const_cast<Column&>(static_cast<const Table&>(*this).column(name));
}

std::vector<std::string> Table::names() const {
  std::vector<std::string> n;
  for (const auto& c : columns) n.push_back(c.name);
  return n;
}

void Table::add(Column c) {
  SYN_CHECK(!has(c.name), "'{}' already has a column '{}'", source, c.name);
  if (columns.empty() && lines.empty())
    for (std::int64_t r = 0; r < c.size(); ++r) lines.push_back(r + 2);
  SYN_CHECK(c.size() == rows(), "'{}': column '{}' has {} rows, the table {}", source, c.name, c.size(), rows());
  columns.push_back(std::move(c));
}

Table Table::take(const std::vector<std::int64_t>& rows_) const {
  Table t;
  t.source = source;
  for (std::int64_t r : rows_) t.lines.push_back(lines.at(static_cast<std::size_t>(r)));
  for (const auto& c : columns) {
    Column out;
    out.name = c.name;
    out.numeric = c.numeric;
    for (std::int64_t r : rows_) {
      const auto i = static_cast<std::size_t>(r);
      out.missing.push_back(c.missing.at(i));
      if (c.numeric) out.numbers.push_back(c.numbers[i]);
      else out.text.push_back(c.text[i]);
    }
    t.columns.push_back(std::move(out));
  }
  return t;
}

Tensor Table::matrix(const std::vector<std::string>& names_) const {
  for (const auto& name : names_) {
    const Column& c = column(name);
    if (!c.numeric) {
      const auto r = std::find(c.missing.begin(), c.missing.end(), false) - c.missing.begin();
      fail("'{}': line {}, column {} ('{}'): expected a number, found '{}' (a text column: one-hot encode it or leave it "
           "out of the features)",
           source, lines[static_cast<std::size_t>(r)], *index(c.name) + 1, c.name, c.text[static_cast<std::size_t>(r)]);
    }
  }
  check_complete(*this, names_);
  const std::int64_t n = rows(), f = static_cast<std::int64_t>(names_.size());
  Tensor x = Tensor::empty({n, f}, DType::Float32);
  float* p = x.data<float>();
  for (std::int64_t j = 0; j < f; ++j) {
    const Column& c = column(names_[static_cast<std::size_t>(j)]);
    for (std::int64_t i = 0; i < n; ++i) p[i * f + j] = static_cast<float>(c.numbers[static_cast<std::size_t>(i)]);
  }
  return x;
}

Table read_table(const std::string& path, const TableOptions& options) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("read_table: cannot open '{}'", path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();

  Table t;
  t.source = path;
  std::vector<std::vector<std::string>> cells;  // per column
  bool header = true;
  internal::for_each_line(text, [&](std::size_t line_no, std::string_view line) {
    std::vector<std::string> row = split_line(line, options.delimiter, path, static_cast<std::int64_t>(line_no));
    if (header) {
      header = false;
      std::set<std::string> seen;
      for (std::size_t c = 0; c < row.size(); ++c) {
        if (row[c].empty()) fail("read_table: '{}': line {}, column {}: expected a column name, found an empty cell", path, line_no, c + 1);
        if (!seen.insert(row[c]).second)
          fail("read_table: '{}': line {}, column {}: the column name '{}' appears twice", path, line_no, c + 1, row[c]);
        Column col;
        col.name = row[c];
        t.columns.push_back(std::move(col));
      }
      cells.resize(row.size());
      return;
    }
    if (row.size() != t.columns.size())
      fail("read_table: '{}': line {}: expected {} cells (one per column of the header), found {}", path, line_no,
           t.columns.size(), row.size());
    for (std::size_t c = 0; c < row.size(); ++c) cells[c].push_back(std::move(row[c]));
    t.lines.push_back(static_cast<std::int64_t>(line_no));
  });
  if (header) fail("read_table: '{}' is empty: expected a header row with the column names", path);
  if (t.lines.empty()) fail("read_table: '{}' has a header but no rows", path);

  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    Column& col = t.columns[c];
    const auto n = cells[c].size();
    col.missing.resize(n);
    col.numbers.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
      col.missing[r] = is_missing(cells[c][r]);
      if (col.missing[r]) col.numbers[r] = std::nan("");
      else if (col.numeric && !parse_number(cells[c][r], col.numbers[r])) col.numeric = false;
    }
    if (!col.numeric) {
      col.numbers.clear();
      col.text = std::move(cells[c]);
      for (std::size_t r = 0; r < n; ++r)
        if (col.missing[r]) col.text[r].clear();
    }
  }
  return t;
}

std::string csv_cell(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos && text == trim(text)) return text;
  std::string q = "\"";
  for (char ch : text) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

void write_table(const std::string& path, const Table& t) {
  std::string out;
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    if (c) out += ',';
    out += csv_cell(t.columns[c].name);
  }
  out += "\n";
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      const Column& col = t.columns[c];
      const auto i = static_cast<std::size_t>(r);
      if (c) out += ",";
      if (col.missing[i]) continue;
      out += col.numeric ? fmt::format("{}", col.numbers[i]) : csv_cell(col.text[i]);
    }
    out += "\n";
  }
  io::write_file_atomic(path, out);
}

// ---- missing values ----
Impute parse_impute(const std::string& s) {
  if (s == "none") return Impute::None;
  if (s == "mean") return Impute::Mean;
  if (s == "median") return Impute::Median;
  fail("--impute: '{}' is not one of none, mean, median", s);
}

const char* to_string(Impute i) { return i == Impute::Mean ? "mean" : i == Impute::Median ? "median" : "none"; }

double statistic(const Column& c, Impute how) {
  SYN_CHECK(c.numeric, "column '{}' holds text: only numeric columns can be imputed with a mean or median", c.name);
  SYN_CHECK(how != Impute::None, "statistic: choose Impute::Mean or Impute::Median");
  std::vector<double> v;
  for (std::size_t i = 0; i < c.numbers.size(); ++i)
    if (!c.missing[i]) v.push_back(c.numbers[i]);
  SYN_CHECK(!v.empty(), "column '{}' has no value to compute a {} from", c.name, to_string(how));
  if (how == Impute::Mean) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  }
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void fill_missing(Column& c, double value) {
  SYN_CHECK(c.numeric, "fill_missing: column '{}' holds text", c.name);
  for (std::size_t i = 0; i < c.numbers.size(); ++i)
    if (c.missing[i]) {
      c.numbers[i] = value;
      c.missing[i] = false;
    }
}

void check_complete(const Table& t, const std::vector<std::string>& names) {
  // The first missing cell in file order.
  std::optional<std::pair<std::size_t, std::size_t>> first;  // (row, column index)
  for (const auto& name : names) {
    const Column& c = t.column(name);
    const auto it = std::find(c.missing.begin(), c.missing.end(), true);
    if (it == c.missing.end()) continue;
    const auto row = static_cast<std::size_t>(it - c.missing.begin());
    const std::size_t col = *t.index(name);
    if (!first || row < first->first || (row == first->first && col < first->second)) first = {row, col};
  }
  if (!first) return;
  const Column& c = t.columns[first->second];
  std::int64_t total = 0;
  for (const auto& name : names) total += t.column(name).missing_count();
  fail("'{}': line {}, column {} ('{}'): expected a value, found a missing cell ({} missing in all); fill missing "
       "values with --impute mean|median",
       t.source, t.lines[first->first], first->second + 1, c.name, total);
}

// ---- one-hot ----
OneHot OneHot::fit(const Column& c) {
  OneHot o;
  o.column = c.name;
  o.categories = c.distinct();
  SYN_CHECK(!o.categories.empty(), "column '{}' has no values to encode", c.name);
  return o;
}

std::vector<std::string> OneHot::names() const {
  std::vector<std::string> n;
  for (const auto& cat : categories) n.push_back(column + "=" + cat);
  return n;
}

std::vector<std::string> OneHot::apply(Table& t) const {
  const Column& src = t.column(column);
  std::vector<std::string> out = names();
  std::vector<Column> added(categories.size());
  for (std::size_t k = 0; k < categories.size(); ++k) {
    added[k].name = out[k];
    added[k].numbers.assign(static_cast<std::size_t>(t.rows()), 0.0);
    added[k].missing.assign(static_cast<std::size_t>(t.rows()), false);
  }
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    const std::string v = src.cell(r);
    const auto it = std::lower_bound(categories.begin(), categories.end(), v);
    // Categories are sorted as text for text columns and numerically for numeric ones: search both ways.
    auto k = (it != categories.end() && *it == v) ? it - categories.begin()
                                                  : std::find(categories.begin(), categories.end(), v) - categories.begin();
    if (!src.missing[static_cast<std::size_t>(r)] && static_cast<std::size_t>(k) < categories.size())
      added[static_cast<std::size_t>(k)].numbers[static_cast<std::size_t>(r)] = 1.0;
  }
  for (auto& c : added)
    if (!t.has(c.name)) t.add(std::move(c));
  return out;
}

// ---- normalisation ----
NormalizeKind parse_normalize(const std::string& s) {
  if (s == "none") return NormalizeKind::None;
  if (s == "zscore") return NormalizeKind::ZScore;
  if (s == "minmax") return NormalizeKind::MinMax;
  fail("--normalize: '{}' is not one of zscore, minmax, none", s);
}

const char* to_string(NormalizeKind k) {
  return k == NormalizeKind::ZScore ? "zscore" : k == NormalizeKind::MinMax ? "minmax" : "none";
}

ColumnNormalizer ColumnNormalizer::fit(NormalizeKind kind, const Table& t, std::vector<std::string> columns) {
  ColumnNormalizer n;
  n.kind_ = kind;
  const Tensor x = t.matrix(columns);
  n.columns_ = std::move(columns);
  if (kind == NormalizeKind::ZScore) n.norm_ = Normalizer::z_score(x);
  if (kind == NormalizeKind::MinMax) n.norm_ = Normalizer::min_max(x);
  return n;
}

ColumnNormalizer ColumnNormalizer::from_state(NormalizeKind kind, std::vector<std::string> columns,
                                              const std::map<std::string, Tensor>& state) {
  ColumnNormalizer n;
  n.kind_ = kind;
  n.columns_ = std::move(columns);
  if (kind != NormalizeKind::None) {
    n.norm_ = Normalizer::from_state(state);
    SYN_CHECK((n.norm_->kind() == Normalizer::Kind::ZScore) == (kind == NormalizeKind::ZScore),
              "normalizer state does not hold {} statistics", to_string(kind));
    const Tensor& s = state.begin()->second;
    SYN_CHECK(s.ndim() == 1 && s.dim(0) == static_cast<std::int64_t>(n.columns_.size()),
              "normalizer state has statistics of shape {} for {} columns", synapse::to_string(s.shape()), n.columns_.size());
  }
  return n;
}

Tensor ColumnNormalizer::transform(const Table& t) const {
  for (const auto& c : columns_)
    if (!t.has(c)) fail("'{}' has no column '{}' (the normaliser was fitted on: {})", t.source, c, fmt::join(columns_, ", "));
  return transform(t.matrix(columns_));
}

Tensor ColumnNormalizer::transform(const Tensor& x) const {
  SYN_CHECK(x.ndim() == 2 && x.dim(1) == static_cast<std::int64_t>(columns_.size()),
            "ColumnNormalizer: expected [rows, {}] for columns {}, got {}", columns_.size(), fmt::join(columns_, ", "),
            synapse::to_string(x.shape()));
  return norm_ ? norm_->apply(x) : x;
}

std::map<std::string, Tensor> ColumnNormalizer::state() const { return norm_ ? norm_->state() : std::map<std::string, Tensor>{}; }

}  // namespace synapse::data
