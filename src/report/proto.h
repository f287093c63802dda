// A minimal protocol-buffer wire-format writer: enough for TensorBoard's Event, Summary, HistogramProto
// and GraphDef messages (https://protobuf.dev/programming-guides/encoding/). Fields are written in the
// order the caller gives; nested messages are built in their own ProtoWriter and added as bytes.
#pragma once
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace synapse::tensorboard::detail {

class ProtoWriter {
 public:
  enum WireType : std::uint32_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

  // int32/int64/uint64/bool/enum; negative values take ten bytes (two's complement), as protobuf does.
  ProtoWriter& varint_field(int field, std::int64_t v) {
    tag(field, Varint);
    varint(static_cast<std::uint64_t>(v));
    return *this;
  }
  ProtoWriter& double_field(int field, double v) {
    tag(field, Fixed64);
    fixed(v);
    return *this;
  }
  ProtoWriter& float_field(int field, float v) {
    tag(field, Fixed32);
    fixed(v);
    return *this;
  }
  // string, bytes and embedded messages.
  ProtoWriter& bytes_field(int field, const std::string& bytes) {
    tag(field, LengthDelimited);
    varint(bytes.size());
    out_ += bytes;
    return *this;
  }
  ProtoWriter& message_field(int field, const ProtoWriter& m) { return bytes_field(field, m.str()); }
  // repeated double [packed = true].
  ProtoWriter& packed_doubles(int field, std::span<const double> v) {
    tag(field, LengthDelimited);
    varint(v.size() * sizeof(double));
    for (double d : v) fixed(d);
    return *this;
  }
  // repeated int64 [packed = true].
  ProtoWriter& packed_varints(int field, std::span<const std::int64_t> v) {
    ProtoWriter body;
    for (std::int64_t x : v) body.varint(static_cast<std::uint64_t>(x));
    return bytes_field(field, body.str());
  }
  const std::string& str() const { return out_; }

 private:
  void tag(int field, WireType w) { varint((static_cast<std::uint64_t>(field) << 3) | w); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  // Little-endian fixed-width value (the machines Synapse builds for are little-endian).
  template <class T>
  void fixed(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  std::string out_;
};

}  // namespace synapse::tensorboard::detail
