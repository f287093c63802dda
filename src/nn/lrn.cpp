// The LocalResponseNormalization layer: synapse::lrn with the layer's options.
#include "core/check.h"
#include "synapse/nn.h"
#include "synapse/ops.h"

namespace synapse::nn {
namespace layers {

LocalResponseNormalization::LocalResponseNormalization(LocalResponseNormalizationOptions o)
    : Module("LocalResponseNormalization"), o_(std::move(o)) {
  SYN_CHECK(o_.depth_radius() >= 0, "LocalResponseNormalization: depth_radius must be >= 0, got {}", o_.depth_radius());
  if (!o_.name().empty()) set_name(o_.name());
}

Tensor LocalResponseNormalization::forward(const Tensor& x) {
  return lrn(x, o_.depth_radius(), o_.bias(), o_.alpha(), o_.beta());
}

}  // namespace layers

std::shared_ptr<layers::LocalResponseNormalization> LocalResponseNormalization(LocalResponseNormalizationOptions o) {
  return std::make_shared<layers::LocalResponseNormalization>(std::move(o));
}

}  // namespace synapse::nn
