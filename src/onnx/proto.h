// Internal: conversions between Synapse tensors and ONNX protobuf messages, shared by the exporter,
// the importer and the conformance runner.
#pragma once
#include <onnx/onnx_pb.h>

#include <string>

#include "synapse/onnx.h"
#include "synapse/tensor.h"

namespace synapse::onnx::internal {

// ONNX element type of a dtype (FLOAT, INT32, INT64, UINT8, BOOL).
int onnx_type(DType t);
// The dtype of an ONNX element type; throws Unsupported naming the type (and `what`) for the others.
DType synapse_type(int onnx_elem_type, const std::string& what);
const char* onnx_type_name(int onnx_elem_type);

// A tensor's values as a TensorProto (raw_data, little-endian).
::onnx::TensorProto to_proto(const Tensor& t, const std::string& name);
// A TensorProto's values (raw_data or the typed fields) as a fresh tensor; `what` names it in errors.
Tensor from_proto(const ::onnx::TensorProto& p, const std::string& what);

// Reads a whole binary protobuf file into `msg`; throws Error naming the file.
void read_proto_file(const std::string& path, google::protobuf::MessageLite& msg);
void write_proto_file(const std::string& path, const google::protobuf::MessageLite& msg);

}  // namespace synapse::onnx::internal
