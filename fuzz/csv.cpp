// Numeric CSV (read_csv) and typed tables (read_table); the first byte picks the options.
#include "fuzz.h"
#include "synapse/data.h"
#include "synapse/table.h"

SYNAPSE_FUZZ_TARGET(csv) {
  if (size == 0) return;
  const unsigned o = data[0];
  const std::string path = synapse::fuzz::temp_file("csv", data + 1, size - 1);
  const char delimiters[4] = {',', ';', '\t', ' '};
  synapse::data::CsvOptions csv;
  csv.header = (o & 1) != 0;
  csv.label_column = static_cast<int>((o >> 1) & 3) - 1;
  csv.delimiter = delimiters[(o >> 3) & 3];
  synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_csv(path, csv); });
  synapse::data::TableOptions table;
  table.delimiter = csv.delimiter;
  synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_table(path, table); });
}
