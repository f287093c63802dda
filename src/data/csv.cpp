// Numeric CSV reader: features float32 [N, F] and an optional int64 label column.
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "data/lines.h"
#include "synapse/data.h"

namespace synapse::data {
namespace {

using ::synapse::detail::fail;
using internal::trim;

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("read_csv: cannot open '{}': {}", path, std::strerror(errno));
  std::string text;
  if (std::fseek(f, 0, SEEK_END) == 0) {  // one read of the known size when the file is seekable
    const long size = std::ftell(f);
    std::rewind(f);
    if (size > 0) text.reserve(static_cast<std::size_t>(size));
  }
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool bad = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (bad) fail("read_csv: cannot read '{}': {}", path, std::strerror(err));
  return text;
}

// Splits one line into its cells (no quoting: the file is numeric).
void split_cells(std::string_view line, char delimiter, std::vector<std::string_view>& cells) {
  cells.clear();
  std::size_t start = 0;
  for (;;) {
    std::size_t pos = line.find(delimiter, start);
    if (pos == std::string_view::npos) {
      cells.push_back(trim(line.substr(start)));
      return;
    }
    cells.push_back(trim(line.substr(start, pos - start)));
    start = pos + 1;
  }
}

bool parse_float(std::string_view s, float& out) {
  // Fast path for small integers such as pixel values (exact in float below 2^24).
  if (!s.empty() && s.size() <= 7) {
    const bool negative = s.front() == '-';
    std::size_t j = negative ? 1 : 0;
    if (j < s.size()) {
      std::int32_t v = 0;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') v = v * 10 + (s[j++] - '0');
      if (j == s.size()) {
        out = negative ? -static_cast<float>(v) : static_cast<float>(v);
        return true;
      }
    }
  }
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// An integer, also written as a float with no fractional part ("3.0").
bool parse_label(std::string_view s, std::int64_t& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc() && end == s.data() + s.size()) return true;
  double d;
  auto [end2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
  // NaN, infinities and values beyond int64 are no labels (and casting them would be undefined behaviour).
  if (ec2 != std::errc() || end2 != s.data() + s.size() || !(std::fabs(d) < 9.2e18) ||
      d != static_cast<double>(static_cast<std::int64_t>(d)))
    return false;
  out = static_cast<std::int64_t>(d);
  return true;
}

std::string shown(std::string_view cell) {
  if (cell.empty()) return "an empty cell";
  if (cell.size() > 40) return fmt::format("'{}...'", cell.substr(0, 40));
  return fmt::format("'{}'", cell);
}

}  // namespace

CsvData read_csv(const std::string& path, const CsvOptions& options) {
  SYN_CHECK(options.label_column >= -1, "read_csv: '{}': label_column must be >= 0 or -1 (none), got {}", path,
            options.label_column);
  const std::string text = read_file(path);
  const bool has_label = options.label_column >= 0;
  const auto label_col = static_cast<std::size_t>(options.label_column);

  std::vector<float> features;
  std::vector<std::int64_t> labels;
  std::vector<std::string_view> cells;
  std::size_t expected = 0;   // cells per line, from the header or the first row
  std::size_t defined_by = 0; // the line that set `expected`
  bool header_pending = options.header;
  std::size_t rows = 0;

  internal::for_each_line(text, [&](std::size_t line_no, std::string_view line) {
    split_cells(line, options.delimiter, cells);

    if (expected == 0) {
      expected = cells.size();
      defined_by = line_no;
      SYN_CHECK(!has_label || label_col < expected,
                "read_csv: '{}': line {}: label_column {} is out of range: the line has {} columns", path, line_no,
                options.label_column, expected);
    } else if (cells.size() != expected) {
      fail("read_csv: '{}': line {}: expected {} cells (as on line {}), found {}", path, line_no, expected,
           defined_by, cells.size());
    }
    if (header_pending) {
      header_pending = false;
      return;
    }

    if (rows == 0) {  // guess the row count from the first row's length to avoid regrowing
      const std::size_t guess = text.size() / (line.size() + 1) + 1;
      features.reserve(guess * (expected - (has_label ? 1 : 0)));
      labels.reserve(has_label ? guess : 0);
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (has_label && c == label_col) {
        std::int64_t v;
        if (!parse_label(cells[c], v))
          fail("read_csv: '{}': line {}, column {}: cannot parse {} as an integer label", path, line_no, c + 1,
               shown(cells[c]));
        labels.push_back(v);
      } else {
        float v;
        if (!parse_float(cells[c], v))
          fail("read_csv: '{}': line {}, column {}: cannot parse {} as a number", path, line_no, c + 1,
               shown(cells[c]));
        features.push_back(v);
      }
    }
    ++rows;
  });

  const auto n_features = static_cast<std::int64_t>(expected == 0 ? 0 : expected - (has_label ? 1 : 0));
  CsvData out;
  out.features = Tensor::empty({static_cast<std::int64_t>(rows), n_features}, DType::Float32);
  if (!features.empty()) std::memcpy(out.features.raw_data(), features.data(), features.size() * sizeof(float));
  if (has_label) {
    out.labels = Tensor::empty({static_cast<std::int64_t>(rows)}, DType::Int64);
    if (!labels.empty()) std::memcpy(out.labels.raw_data(), labels.data(), labels.size() * sizeof(std::int64_t));
  }
  return out;
}

}  // namespace synapse::data
