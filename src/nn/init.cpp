// Initializers with Keras' fan rules, and the activation functions layers apply.
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "synapse/nn.h"

namespace synapse::nn {

std::pair<double, double> compute_fans(const Shape& shape) {
  // Keras' _compute_fans: scalars count as 1, vectors as [n] -> (n, n), matrices [in, out], and
  // conv kernels [..receptive field.., in, out] multiply both by the receptive field size.
  if (shape.empty()) return {1.0, 1.0};
  if (shape.size() == 1) return {static_cast<double>(shape[0]), static_cast<double>(shape[0])};
  double receptive = 1.0;
  for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive *= static_cast<double>(shape[i]);
  return {receptive * static_cast<double>(shape[shape.size() - 2]),
          receptive * static_cast<double>(shape[shape.size() - 1])};
}

namespace {

// Standard deviation of a standard normal truncated to [-2, 2]: Keras divides by it so that the
// truncated values have the intended variance.
constexpr double kTruncatedStd = .87962566103423978;

enum class FanMode { In, Avg };

double fan(const Shape& shape, FanMode mode) {
  const auto [fan_in, fan_out] = compute_fans(shape);
  const double f = mode == FanMode::In ? fan_in : (fan_in + fan_out) / 2.0;
  return std::max(1.0, f);
}

// Keras' VarianceScaling: uniform in [-sqrt(3 scale / fan), sqrt(...)) or a truncated normal of
// stddev sqrt(scale / fan) / kTruncatedStd.
Tensor variance_scaling(const Shape& shape, double scale, FanMode mode, bool uniform, Generator& gen) {
  const double variance = scale / fan(shape, mode);
  if (uniform) {
    const auto limit = static_cast<float>(std::sqrt(3.0 * variance));
    return random_uniform(shape, -limit, limit, &gen);
  }
  return truncated_normal(shape, 0.0f, static_cast<float>(std::sqrt(variance) / kTruncatedStd), &gen);
}

// Keras' Orthogonal (see nn.h): modified Gram-Schmidt on the columns of a [n, k] normal matrix, n >= k
// (a QR whose R has a positive diagonal, which is what Keras' sign correction makes of numpy's QR).
Tensor orthogonal_matrix(const Shape& shape, float gain, Generator& gen) {
  SYN_CHECK(shape.size() >= 2, "Initializer::orthogonal: needs a shape of rank >= 2, got {}", to_string(shape));
  const std::int64_t cols = shape.back(), rows = numel(shape) / std::max<std::int64_t>(cols, 1);
  const std::int64_t n = std::max(rows, cols), k = std::min(rows, cols);
  Tensor a = random_normal({n, k}, 0.0f, 1.0f, &gen);
  float* q = a.data<float>();
  for (std::int64_t j = 0; j < k; ++j) {
    for (std::int64_t p = 0; p < j; ++p) {  // remove the components along the earlier columns
      double dot = 0.0;
      for (std::int64_t i = 0; i < n; ++i) dot += static_cast<double>(q[i * k + j]) * q[i * k + p];
      for (std::int64_t i = 0; i < n; ++i) q[i * k + j] -= static_cast<float>(dot) * q[i * k + p];
    }
    double norm = 0.0;
    for (std::int64_t i = 0; i < n; ++i) norm += static_cast<double>(q[i * k + j]) * q[i * k + j];
    const double inv = norm > 0.0 ? 1.0 / std::sqrt(norm) : 0.0;
    for (std::int64_t i = 0; i < n; ++i) q[i * k + j] = static_cast<float>(q[i * k + j] * inv);
  }
  Tensor out = rows < cols ? transpose(a).clone() : a;
  return reshape(out * gain, shape).clone();
}

}  // namespace

Tensor Initializer::operator()(const Shape& shape, Generator& gen) const {
  switch (kind) {
    case Kind::Zeros: return synapse::zeros(shape);
    case Kind::Constant: return synapse::full(shape, a);
    case Kind::Uniform:
      SYN_CHECK(a <= b, "Initializer::uniform: low {} is above high {}", a, b);
      return synapse::random_uniform(shape, a, b, &gen);
    case Kind::Normal:
      SYN_CHECK(b >= 0.0f, "Initializer::normal: negative stddev {}", b);
      return synapse::random_normal(shape, a, b, &gen);
    case Kind::TruncatedNormal:
      SYN_CHECK(b >= 0.0f, "Initializer::truncated_normal: negative stddev {}", b);
      return synapse::truncated_normal(shape, a, b, &gen);
    case Kind::Orthogonal: return orthogonal_matrix(shape, a, gen);
    case Kind::GlorotUniform: return variance_scaling(shape, 1.0, FanMode::Avg, true, gen);
    case Kind::GlorotNormal: return variance_scaling(shape, 1.0, FanMode::Avg, false, gen);
    case Kind::HeUniform: return variance_scaling(shape, 2.0, FanMode::In, true, gen);
    case Kind::HeNormal: return variance_scaling(shape, 2.0, FanMode::In, false, gen);
  }
  detail::fail("Initializer: unknown kind {}", static_cast<int>(kind));
}

Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::None: return x;
    case Activation::ReLU: return synapse::relu(x);
    case Activation::Sigmoid: return synapse::sigmoid(x);
    case Activation::Tanh: return synapse::tanh(x);
    case Activation::Softmax: return synapse::softmax(x, -1);
  }
  detail::fail("activate: unknown activation {}", static_cast<int>(a));
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None: return "linear";
    case Activation::ReLU: return "relu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
    case Activation::Softmax: return "softmax";
  }
  return "unknown";
}

}  // namespace synapse::nn
