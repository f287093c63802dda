// IDX files as read_idx reads them (raw; a file starting with the gzip magic takes the gzip path).
#include "fuzz.h"
#include "synapse/data.h"

SYNAPSE_FUZZ_TARGET(idx) {
  const std::string path = synapse::fuzz::temp_file("idx", data, size);
  synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_idx(path); });
}
