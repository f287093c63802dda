// The read budget: the most bytes a reader may allocate for what one file (or request) declares.
//
// Every reader (IDX, NPZ, checkpoints, ONNX, images) checks each declared size against the bytes the
// file really has left and against this budget BEFORE it allocates, so a 100-byte file that declares
// gigabytes is an error naming the file, the field and both sizes, never a giant allocation.
//
//   synapse::set_read_budget(64 << 20);   // 64 MiB per declared block; 0 restores the default
//
// The default is SYNAPSE_READ_BUDGET (bytes, with an optional K, M or G suffix) when it is set, else
// half of the machine's physical memory.
#pragma once
#include <cstdint>

namespace synapse {

std::uint64_t read_budget();
void set_read_budget(std::uint64_t bytes);

}  // namespace synapse
