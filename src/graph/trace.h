// The dispatcher's entry into graph mode (internal): apply() hands an op over here when any input is
// a graph tensor, or when an op without inputs runs inside a DefaultGraph scope.
#pragma once
#include <cstdint>
#include <vector>

#include "synapse/graph.h"

namespace synapse::graph::detail {

// True when apply() must add a node instead of running a kernel.
bool should_trace(const std::vector<Tensor>& inputs);
// Adds the op as a node of the inputs' graph (or of the default graph) and returns its symbolic outputs.
std::vector<Tensor> trace(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs);
// mean() of a graph tensor (the element count is computed in the graph when an extent is unknown).
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims);

}  // namespace synapse::graph::detail
