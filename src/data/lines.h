// Line splitting shared by the CSV readers (csv.cpp: numeric matrices, table.cpp: named columns).
#pragma once
#include <cstdint>
#include <string_view>

namespace synapse::data::internal {

// s without leading spaces and tabs, and without trailing spaces, tabs and '\r'.
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Calls fn(line_number, line) for every line of `text` that is not blank; numbers are 1-based and
// count the blank lines too, so messages point at the right line of the file.
template <class F> void for_each_line(std::string_view text, F&& fn) {
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!trim(line).empty()) fn(line_no, line);
  }
}

}  // namespace synapse::data::internal
