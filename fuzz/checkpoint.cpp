// Synapse checkpoints (.syn, load_checkpoint): prefix, JSON header, tensor table, data, CRC.
#include "fuzz.h"
#include "synapse/io.h"

SYNAPSE_FUZZ_TARGET(checkpoint) {
  const std::string path = synapse::fuzz::temp_file("syn", data, size);
  synapse::fuzz::expect_error_naming(path, [&] { synapse::io::load_checkpoint(path); });
}
