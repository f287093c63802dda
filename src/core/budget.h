// Internal: the size checks behind synapse/budget.h, used by every reader before it allocates.
#pragma once
#include <cstdint>
#include <limits>
#include <string_view>

#include "synapse/budget.h"
#include "synapse/shape.h"

namespace synapse::detail {

constexpr std::uint64_t kUnknownSize = std::numeric_limits<std::uint64_t>::max();

// Throws Error "WHO: 'FILE': FIELD declares N bytes, but the file has only M bytes left" when
// `declared` > `available` (pass kUnknownSize when the reader cannot know, e.g. a compressed stream),
// and "... more than the read budget of B bytes (SYNAPSE_READ_BUDGET ...)" when declared > read_budget().
void check_declared_size(std::string_view who, std::string_view file, std::string_view field, std::uint64_t declared,
                         std::uint64_t available = kUnknownSize);
// The budget half alone, for callers whose `where` already names the file: "WHERE: FIELD declares N bytes, more
// than the read budget of B bytes (...)".
void check_read_budget(std::string_view where, std::string_view field, std::uint64_t declared);

// While a ReadScope lives on this thread, Tensor::empty refuses any tensor above the read budget (an Error naming
// its shape and size): for readers that compute tensors from what a file says, such as the ONNX importer's
// constant folding (a 100-byte model can ask ConstantOfShape for [100000, 100000]). Scopes nest.
class ReadScope {
 public:
  ReadScope();
  ~ReadScope();
  ReadScope(const ReadScope&) = delete;
  ReadScope& operator=(const ReadScope&) = delete;
};
// Called by Tensor::empty: throws when a ReadScope is active and `nbytes` is above the read budget.
void check_tensor_in_read_scope(const Shape& shape, std::string_view dtype, std::uint64_t nbytes);

}  // namespace synapse::detail
