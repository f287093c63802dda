// ONNX models: inspect and import_model (protobuf parse, graph checks, initializers, shape rules).
#include "fuzz.h"
#include "synapse/onnx.h"

SYNAPSE_FUZZ_TARGET(onnx) {
  const std::string path = synapse::fuzz::temp_file("onnx", data, size);
  synapse::fuzz::expect_error_naming("", [&] { synapse::onnx::inspect(path); });
  synapse::fuzz::expect_error_naming("", [&] { synapse::onnx::import_model(path); });
  synapse::fuzz::expect_error_naming("", [&] { synapse::onnx::load_tensor(path); });
}
