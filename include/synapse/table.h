// Tables: a CSV file with a header row read into named columns (numbers or text), missing cells,
// one-hot encoding and a normaliser that fits and transforms by column name.
//
//   data::Table t = data::read_table("customers.csv");          // header row, named columns
//   t.column("income").missing_count();                          // empty, NA, N/A, NaN, null or ? cells
//   data::fill_missing(t.column("income"), data::statistic(t.column("income"), data::Impute::Median));
//   auto plan = data::OneHot::fit(t.column("city"));             // categories of a text column, sorted
//   std::vector<std::string> cols = plan.apply(t);               // adds "city=Paris", "city=Rome", ...
//   auto norm = data::ColumnNormalizer::fit(data::NormalizeKind::ZScore, t, {"age", "income"});
//   Tensor x = norm.transform(t);                                // float32 [rows, 2], by column name
//   checkpoint.tensors["normalizer/mean"] = norm.state().at("mean");
//
// Errors name the file, the line (1-based, counting the header), the column (its 1-based position and
// its name), what was expected and what was found.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "synapse/data.h"
#include "synapse/tensor.h"

namespace synapse::data {

// One named column: numbers (every present cell parses as one) or text.
struct Column {
  std::string name;
  bool numeric = true;
  std::vector<double> numbers;    // numeric columns: the values, NaN where missing
  std::vector<std::string> text;  // text columns: the cells, "" where missing
  std::vector<bool> missing;      // per row

  std::int64_t size() const { return static_cast<std::int64_t>(missing.size()); }
  std::int64_t missing_count() const;
  // Numeric and every present value a whole number (labels such as 0/1 or 1..10).
  bool integral() const;
  // The distinct present cells as text, sorted (numbers in numeric order, printed as in %g).
  std::vector<std::string> distinct() const;
  // Cell `row` as text ("" when missing).
  std::string cell(std::int64_t row) const;
};

class Table {
 public:
  std::string source;               // the file (or a description), for messages
  std::vector<Column> columns;
  std::vector<std::int64_t> lines;  // the file line of each row (1-based, the header is line 1)

  std::int64_t rows() const { return static_cast<std::int64_t>(lines.size()); }
  bool has(const std::string& name) const { return index(name).has_value(); }
  std::optional<std::size_t> index(const std::string& name) const;
  // Throws naming the file, the column and the columns the file has.
  const Column& column(const std::string& name) const;
  Column& column(const std::string& name);
  std::vector<std::string> names() const;
  // Adds a column (its size must equal rows(); the first column added to an empty table sets rows()).
  void add(Column c);
  // The rows `rows` (in that order) of every column.
  Table take(const std::vector<std::int64_t>& rows) const;
  // float32 [rows, names.size()] of numeric columns. A text column or a missing cell throws naming
  // the file, the line and the column.
  Tensor matrix(const std::vector<std::string>& names) const;
};

struct TableOptions {
  char delimiter = ',';
};

// Reads a CSV file whose first line names the columns. Cells may be quoted ("a, b" or "say ""hi"""),
// surrounded by spaces, and lines may end in "\r\n"; empty lines are skipped. A column is numeric when
// every present cell is a number. Missing cells: empty, NA, N/A, NaN, null, ? (any case). Throws
// naming the file and line for a row with the wrong number of cells, an empty or repeated column
// name, or a file with no rows.
Table read_table(const std::string& path, const TableOptions& options = {});
// Writes `t` as CSV (header row, numbers as %.17g would print them shortest, text quoted when it holds
// a comma, a quote or a newline, missing cells empty), atomically: read_table gives the same table back.
void write_table(const std::string& path, const Table& t);
// A cell for a CSV line: as it is, or quoted ("a, b" -> "\"a, b\"") when it needs to be.
std::string csv_cell(const std::string& text);

// ---- missing values ----
enum class Impute { None, Mean, Median };
// "none", "mean", "median" -> Impute; anything else throws naming the value and the choices.
Impute parse_impute(const std::string& s);
const char* to_string(Impute i);
// The mean or median of a numeric column's present values (throws for a text column, Impute::None,
// or a column with no present value).
double statistic(const Column& c, Impute how);
// Sets every missing cell of a numeric column to `value`.
void fill_missing(Column& c, double value);
// Throws for the first missing cell among `names`: "'FILE': line L, column C ('NAME'): expected a
// value, found a missing cell ('NA'); fill missing values with --impute mean|median".
void check_complete(const Table& t, const std::vector<std::string>& names);

// ---- one-hot encoding of a text column ----
struct OneHot {
  std::string column;
  std::vector<std::string> categories;
  // The categories of a column (sorted, missing cells left out).
  static OneHot fit(const Column& c);
  // "city=Paris", ... one per category.
  std::vector<std::string> names() const;
  // Adds one 0/1 numeric column per category (a value seen in no training row, or a missing cell,
  // gives all zeros) and returns their names.
  std::vector<std::string> apply(Table& t) const;
};

// ---- normalisation by column name ----
enum class NormalizeKind { None, ZScore, MinMax };
// "none", "zscore", "minmax" -> NormalizeKind; anything else throws naming the value and the choices.
NormalizeKind parse_normalize(const std::string& s);
const char* to_string(NormalizeKind k);

class ColumnNormalizer {
 public:
  ColumnNormalizer() = default;
  // Statistics of the numeric columns `columns` of `t` (population std; a column with no spread maps
  // to 0, never to NaN).
  static ColumnNormalizer fit(NormalizeKind kind, const Table& t, std::vector<std::string> columns);
  // From state() and the column names (the order of the statistics).
  static ColumnNormalizer from_state(NormalizeKind kind, std::vector<std::string> columns,
                                     const std::map<std::string, Tensor>& state);

  // t's columns, by name, in columns() order, normalised: float32 [t.rows(), columns().size()].
  // A column the table lacks throws naming it.
  Tensor transform(const Table& t) const;
  // A matrix whose columns are already in columns() order.
  Tensor transform(const Tensor& x) const;

  NormalizeKind kind() const { return kind_; }
  const std::vector<std::string>& columns() const { return columns_; }
  // {"mean", "std"} or {"min", "max"}: float32 [columns().size()]; {} for NormalizeKind::None.
  std::map<std::string, Tensor> state() const;

 private:
  NormalizeKind kind_ = NormalizeKind::None;
  std::vector<std::string> columns_;
  std::optional<Normalizer> norm_;
};

}  // namespace synapse::data
