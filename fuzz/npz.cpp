// NumPy .npz archives (load_npz): zip directory, local headers, deflate, .npy headers.
#include "fuzz.h"
#include "synapse/io.h"

SYNAPSE_FUZZ_TARGET(npz) {
  const std::string path = synapse::fuzz::temp_file("npz", data, size);
  synapse::fuzz::expect_error_naming(path, [&] { synapse::io::load_npz(path); });
}
