#include "onnx/proto.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/budget.h"
#include "core/check.h"

namespace synapse::onnx::internal {

using ::onnx::TensorProto;

int onnx_type(DType t) {
  switch (t) {
    case DType::Float32:
      return TensorProto::FLOAT;
    case DType::Int32:
      return TensorProto::INT32;
    case DType::Int64:
      return TensorProto::INT64;
    case DType::UInt8:
      return TensorProto::UINT8;
    case DType::Bool:
      return TensorProto::BOOL;
  }
  return TensorProto::UNDEFINED;
}

const char* onnx_type_name(int t) {
  if (!TensorProto::DataType_IsValid(t)) return "UNKNOWN";
  return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(t)).c_str();
}

DType synapse_type(int t, const std::string& what) {
  switch (t) {
    case TensorProto::FLOAT:
      return DType::Float32;
    case TensorProto::INT32:
      return DType::Int32;
    case TensorProto::INT64:
      return DType::Int64;
    case TensorProto::UINT8:
      return DType::UInt8;
    case TensorProto::BOOL:
      return DType::Bool;
    default:
      break;
  }
  throw Unsupported(fmt::format("{}: element type {} is not supported (Synapse has float32, int32, int64, uint8, bool)",
                                what, onnx_type_name(t)));
}

TensorProto to_proto(const Tensor& t, const std::string& name) {
  TensorProto p;
  p.set_name(name);
  p.set_data_type(onnx_type(t.dtype()));
  for (auto d : t.shape()) p.add_dims(d);
  // Synapse tensors are contiguous, row-major and little-endian, as raw_data wants them.
  p.set_raw_data(std::string(static_cast<const char*>(t.raw_data()), t.nbytes()));
  return p;
}

namespace {
template <class T, class Field>
void copy_field(const Field& f, Tensor& out, const std::string& what) {
  SYN_CHECK(f.size() == out.numel(), "{}: holds {} values, its shape {} needs {}", what, f.size(),
            to_string(out.shape()), out.numel());
  T* dst = static_cast<T*>(out.raw_data());
  for (int i = 0; i < f.size(); ++i) dst[i] = static_cast<T>(f.Get(i));
}
}  // namespace

Tensor from_proto(const TensorProto& p, const std::string& what) {
  if (p.data_location() == TensorProto::EXTERNAL)
    throw Unsupported(fmt::format("{}: tensors with external data are not supported", what));
  if (p.has_segment()) throw Unsupported(fmt::format("{}: segmented tensors are not supported", what));
  const DType dt = synapse_type(p.data_type(), what);
  Shape shape(p.dims().begin(), p.dims().end());
  // Validate the element count against the data before allocating (a corrupt file must not ask for
  // exabytes).
  std::int64_t count = 1;
  for (auto d : shape) {
    SYN_CHECK(d >= 0 && (d == 0 || count <= (std::int64_t{1} << 40) / d), "{}: invalid shape {}", what,
              to_string(shape));
    count *= d;
  }
  const std::int64_t available =
      p.has_raw_data() ? static_cast<std::int64_t>(p.raw_data().size() / dtype_size(dt))
                       : std::max<std::int64_t>({p.float_data_size(), p.int32_data_size(), p.int64_data_size()});
  SYN_CHECK(count == available, "{}: shape {} needs {} values, the tensor holds {}", what, to_string(shape), count,
            available);
  ::synapse::detail::check_read_budget(what, fmt::format("shape {}", to_string(shape)), static_cast<std::uint64_t>(count) * dtype_size(dt));
  Tensor out = Tensor::empty(shape, dt);
  if (p.has_raw_data()) {
    SYN_CHECK(p.raw_data().size() == out.nbytes(), "{}: raw_data has {} bytes, shape {} of {} needs {}", what,
              p.raw_data().size(), to_string(shape), dtype_name(dt), out.nbytes());
    if (out.nbytes() > 0) std::memcpy(out.raw_data(), p.raw_data().data(), out.nbytes());
    return out;
  }
  switch (dt) {
    case DType::Float32:
      copy_field<float>(p.float_data(), out, what);
      break;
    case DType::Int64:
      copy_field<std::int64_t>(p.int64_data(), out, what);
      break;
    // INT32, UINT8 and BOOL all travel in int32_data.
    case DType::Int32:
      copy_field<std::int32_t>(p.int32_data(), out, what);
      break;
    case DType::UInt8:
      copy_field<std::uint8_t>(p.int32_data(), out, what);
      break;
    case DType::Bool:
      copy_field<bool>(p.int32_data(), out, what);
      break;
  }
  return out;
}

void read_proto_file(const std::string& path, google::protobuf::MessageLite& msg) {
  std::ifstream in(path, std::ios::binary);
  SYN_CHECK(in.good(), "cannot open '{}'", path);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) ::synapse::detail::check_read_budget(fmt::format("'{}'", path), "the protobuf file", size);
  std::ostringstream buf;
  buf << in.rdbuf();
  SYN_CHECK(msg.ParseFromString(buf.str()), "'{}' is not a valid {} (protobuf parse failed)", path, msg.GetTypeName());
}

void write_proto_file(const std::string& path, const google::protobuf::MessageLite& msg) {
  std::string bytes;
  SYN_CHECK(msg.SerializeToString(&bytes), "cannot serialize {} for '{}'", msg.GetTypeName(), path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  SYN_CHECK(out.good(), "cannot write '{}'", path);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SYN_CHECK(out.good(), "writing '{}' failed", path);
}

}  // namespace synapse::onnx::internal

namespace synapse::onnx {

Tensor load_tensor(const std::string& path) {
  ::onnx::TensorProto p;
  internal::read_proto_file(path, p);
  return internal::from_proto(p, fmt::format("'{}'", path));
}

void save_tensor(const Tensor& t, const std::string& path, const std::string& name) {
  internal::write_proto_file(path, internal::to_proto(t, name));
}

}  // namespace synapse::onnx
