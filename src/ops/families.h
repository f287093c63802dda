// Each op family registers its ops here; the registry calls these once, on first use.
#pragma once

#include "synapse/tensor.h"

namespace synapse::ops {
// The gradient through a relu, read from its output y: dy where y > 0, else 0 (TensorFlow's ReluGrad).
// relu's own gradient and those of the ops with a relu inside (dense, conv2d) use it.
Tensor relu_grad_from_output(const Tensor& y, const Tensor& dy);

void register_elementwise_ops();
void register_reduce_ops();
void register_shape_ops();
void register_matmul_ops();
void register_conv_pool_ops();
void register_nn_ops();
void register_random_ops();
void register_rnn_ops();
void register_lrn_ops();  // lrn.cpp: local response normalisation (colour images, issue 24)
}  // namespace synapse::ops
