// Keras / TF.js layers-models as `synapse import-keras` reads them (keras::load_tfjs): the input is the
// model.json text, then a NUL byte, then the bytes of its one weight shard "w.bin" (the seeds' manifests
// name it), so the fuzzer mutates the topology, the manifest and the weights together.
#include <cstring>

#include "fuzz.h"
#include "synapse/keras.h"

SYNAPSE_FUZZ_TARGET(keras) {
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  const std::size_t json_size = nul != nullptr ? static_cast<std::size_t>(nul - data) : size;
  const std::string dir = synapse::fuzz::temp_dir("keras");
  const std::string path = dir + "/model.json";
  synapse::fuzz::write_file(path, data, json_size);
  synapse::fuzz::write_file(dir + "/w.bin", data + json_size + (nul != nullptr), size - json_size - (nul != nullptr));
  synapse::fuzz::expect_error_naming(path, [&] { synapse::keras::load_tfjs(path); });
}
