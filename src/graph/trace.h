// Graph mode's side of the dispatcher (internal): graph.cpp installs a trace hook (op.h) that hands an
// op call over here when any input is a graph tensor, or when an op without inputs runs inside a
// DefaultGraph scope.
#pragma once
#include <cstdint>
#include <vector>

#include "synapse/graph.h"

namespace synapse::graph::detail {

// True when apply() must add a node instead of running a kernel.
bool should_trace(const std::vector<Tensor>& inputs);
// Adds the op as a node of the inputs' graph (or of the default graph) and returns its symbolic outputs.
std::vector<Tensor> trace(const OpDef& op, const std::vector<Tensor>& inputs, const Attrs& attrs);

}  // namespace synapse::graph::detail
