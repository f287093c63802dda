// Each op family registers its ops here; the registry calls these once, on first use.
#pragma once

namespace synapse::ops {
void register_elementwise_ops();
void register_reduce_ops();
void register_shape_ops();
void register_matmul_ops();
void register_conv_pool_ops();
void register_nn_ops();
void register_random_ops();
}  // namespace synapse::ops
