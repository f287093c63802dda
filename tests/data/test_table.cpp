#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "gradcheck.h"
#include "synapse/table.h"

using namespace synapse;
using namespace synapse::data;
using synapse::testing::error_of;
namespace fs = std::filesystem;

namespace {

// Writes `text` to a file named after the running test (removed by the next run of the same test).
std::string csv_file(const std::string& text) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path p = fs::temp_directory_path() /
                     (std::string("synapse_table_") + std::to_string(::getpid()) + "_" + info->name() + ".csv");
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

}  // namespace

TEST(Table, ReadsNamedNumericAndTextColumns) {
  const std::string path = csv_file(
      "age, city ,income,label\r\n"
      "31,Paris,52000.5,yes\r\n"
      "\r\n"
      "45,\"Rome, Lazio\",NA,no\r\n"
      "  27 , \"say \"\"hi\"\"\" ,,yes\r\n");
  const Table t = read_table(path);
  EXPECT_EQ(t.names(), (std::vector<std::string>{"age", "city", "income", "label"}));
  ASSERT_EQ(t.rows(), 3);
  EXPECT_EQ(t.lines, (std::vector<std::int64_t>{2, 4, 5}));  // the empty line 3 is skipped
  const Column& age = t.column("age");
  EXPECT_TRUE(age.numeric);
  EXPECT_TRUE(age.integral());
  EXPECT_EQ(age.numbers, (std::vector<double>{31, 45, 27}));
  const Column& city = t.column("city");
  EXPECT_FALSE(city.numeric);
  EXPECT_EQ(city.text, (std::vector<std::string>{"Paris", "Rome, Lazio", "say \"hi\""}));
  const Column& income = t.column("income");
  EXPECT_TRUE(income.numeric);  // missing cells do not make a column text
  EXPECT_FALSE(income.integral());
  EXPECT_EQ(income.missing_count(), 2);
  EXPECT_DOUBLE_EQ(income.numbers[0], 52000.5);
  EXPECT_TRUE(std::isnan(income.numbers[1]));
  EXPECT_EQ(t.column("label").distinct(), (std::vector<std::string>{"no", "yes"}));
}

TEST(Table, NumbersSortNumericallyAndPrintShort) {
  const Table t = read_table(csv_file("y\n10\n2\n2\n-1.5\n"));
  EXPECT_EQ(t.column("y").distinct(), (std::vector<std::string>{"-1.5", "2", "10"}));
  EXPECT_EQ(t.column("y").cell(0), "10");
}

TEST(Table, ErrorsNameFileLineColumnExpectedAndFound) {
  const std::string ragged = csv_file("a,b\n1,2\n3\n");
  EXPECT_EQ(error_of([&] { read_table(ragged); }),
            "read_table: '" + ragged + "': line 3: expected 2 cells (one per column of the header), found 1");
  const std::string twice = csv_file("a,b,a\n1,2,3\n");
  EXPECT_EQ(error_of([&] { read_table(twice); }),
            "read_table: '" + twice + "': line 1, column 3: the column name 'a' appears twice");
  const std::string no_rows = csv_file("a,b\n");
  EXPECT_EQ(error_of([&] { read_table(no_rows); }), "read_table: '" + no_rows + "' has a header but no rows");
  EXPECT_EQ(error_of([] { read_table("/nonexistent/x.csv"); }), "read_table: cannot open '/nonexistent/x.csv'");

  const std::string gaps = csv_file("x,y,z\n1,2,3\n4,?,6\n7,8,\n");
  const Table t = read_table(gaps);
  EXPECT_EQ(error_of([&] { t.matrix({"x", "z", "y"}); }),
            "'" + gaps + "': line 3, column 2 ('y'): expected a value, found a missing cell (2 missing in all); fill "
            "missing values with --impute mean|median");
  EXPECT_EQ(error_of([&] { t.column("w"); }), "'" + gaps + "' has no column 'w'; its columns are: x, y, z");

  const std::string words = csv_file("n,colour\n1,\n2,red\n");
  EXPECT_EQ(error_of([&] { read_table(words).matrix({"colour"}); }),
            "'" + words + "': line 3, column 2 ('colour'): expected a number, found 'red' (a text column: one-hot "
            "encode it or leave it out of the features)");
}

TEST(Table, ImputesMeanOrMedian) {
  Table t = read_table(csv_file("v\n1\n\n2\nNaN\n10\nnull\n"));  // the empty line is skipped, not missing
  Column& v = t.column("v");
  EXPECT_EQ(v.missing_count(), 2);
  EXPECT_DOUBLE_EQ(statistic(v, Impute::Mean), 13.0 / 3);
  EXPECT_DOUBLE_EQ(statistic(v, Impute::Median), 2);
  fill_missing(v, statistic(v, Impute::Median));
  EXPECT_EQ(v.missing_count(), 0);
  EXPECT_EQ(v.numbers, (std::vector<double>{1, 2, 2, 10, 2}));
  EXPECT_NO_THROW(check_complete(t, {"v"}));
  EXPECT_EQ(parse_impute("median"), Impute::Median);
  EXPECT_EQ(error_of([] { parse_impute("mode"); }), "--impute: 'mode' is not one of none, mean, median");
}

TEST(Table, OneHotEncodesTextColumns) {
  Table t = read_table(csv_file("colour,n\nred,1\nblue,2\nred,3\n,4\n"));
  const OneHot h = OneHot::fit(t.column("colour"));
  EXPECT_EQ(h.categories, (std::vector<std::string>{"blue", "red"}));
  EXPECT_EQ(h.apply(t), (std::vector<std::string>{"colour=blue", "colour=red"}));
  EXPECT_EQ(t.column("colour=blue").numbers, (std::vector<double>{0, 1, 0, 0}));
  EXPECT_EQ(t.column("colour=red").numbers, (std::vector<double>{1, 0, 1, 0}));  // missing: all zeros
  // A colour never seen in training encodes as all zeros too.
  Table other = read_table(csv_file("colour,n\ngreen,1\nblue,2\n"));
  h.apply(other);
  EXPECT_EQ(other.column("colour=blue").numbers, (std::vector<double>{0, 1}));
  EXPECT_EQ(other.column("colour=red").numbers, (std::vector<double>{0, 0}));
}

TEST(Table, NormalizerFitsAndTransformsByColumnName) {
  const Table train = read_table(csv_file("a,b,c\n1,10,5\n3,30,5\n"));
  const ColumnNormalizer z = ColumnNormalizer::fit(NormalizeKind::ZScore, train, {"b", "a", "c"});
  EXPECT_EQ(z.transform(train).to_vector<float>(), (std::vector<float>{-1, -1, 0, 1, 1, 0}));  // c has no spread: 0
  // Another file with the columns in another order and an extra column: matched by name.
  const Table other = read_table(csv_file("c,extra,a,b\n5,0,2,40\n"));
  EXPECT_EQ(z.transform(other).to_vector<float>(), (std::vector<float>{2, 0, 0}));
  // Saved as named tensors and restored.
  const auto state = z.state();
  ASSERT_TRUE(state.contains("mean") && state.contains("std"));
  EXPECT_EQ(state.at("mean").to_vector<float>(), (std::vector<float>{20, 2, 5}));
  EXPECT_EQ(state.at("std").to_vector<float>(), (std::vector<float>{10, 1, 0}));
  const ColumnNormalizer back = ColumnNormalizer::from_state(NormalizeKind::ZScore, z.columns(), state);
  EXPECT_EQ(back.transform(other).to_vector<float>(), (std::vector<float>{2, 0, 0}));

  const ColumnNormalizer mm = ColumnNormalizer::fit(NormalizeKind::MinMax, train, {"a", "b"});
  EXPECT_EQ(mm.transform(other).to_vector<float>(), (std::vector<float>{0.5f, 1.5f}));
  EXPECT_TRUE(mm.state().contains("min") && mm.state().contains("max"));
  const ColumnNormalizer none = ColumnNormalizer::fit(NormalizeKind::None, train, {"b"});
  EXPECT_EQ(none.transform(other).to_vector<float>(), (std::vector<float>{40}));
  EXPECT_TRUE(none.state().empty());

  const Table lacking = read_table(csv_file("a,c\n1,2\n"));
  EXPECT_EQ(error_of([&] { z.transform(lacking); }),
            "'" + lacking.source + "' has no column 'b' (the normaliser was fitted on: b, a, c)");
  EXPECT_EQ(error_of([] { parse_normalize("l2"); }), "--normalize: 'l2' is not one of zscore, minmax, none");
}

TEST(Table, ReadsSemicolonAndTabSeparatedFiles) {
  // European CSV: ';' between cells, so a ',' is part of a cell (here a decimal comma stays text).
  const Table s = read_table(csv_file("city;price;note\nParis;1.5;\"a;b\"\nRome;2;3,5\n"), {.delimiter = ';'});
  EXPECT_EQ(s.names(), (std::vector<std::string>{"city", "price", "note"}));
  EXPECT_EQ(s.column("price").numbers, (std::vector<double>{1.5, 2}));
  EXPECT_EQ(s.column("note").text, (std::vector<std::string>{"a;b", "3,5"}));
  const Table t = read_table(csv_file("a\tb\n1\tx y\n2\tz\n"), {.delimiter = '\t'});
  EXPECT_EQ(t.column("a").numbers, (std::vector<double>{1, 2}));
  EXPECT_EQ(t.column("b").text, (std::vector<std::string>{"x y", "z"}));
}
