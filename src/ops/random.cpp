// Random ops: their values come from a Generator seeded by the op's "seed" attribute, so one seed
// always gives one result. Eager callers draw a fresh seed per call from their generator; a graph
// node redraws its seed from a per-node generator (seeded by the traced seed) at every Session::run,
// so a traced dropout layer draws a new mask per step exactly as it does eagerly.
//
//   dropout_mask(x; rate, seed)           float32 mask shaped like x: 0 with probability rate, else
//                                         1/(1-rate) (inverted dropout: dropout(x) = x * mask). x is
//                                         read only for its shape, so the mask has no gradient.
//   random_uniform(; shape, low, high, seed)  float32 uniform in [low, high), no inputs.
//
// Masks are drawn serially on the host (the mask is cheap next to the layer it follows).
#include <cstdint>

#include "core/check.h"
#include "ops/families.h"
#include "synapse/op.h"
#include "synapse/random.h"

namespace synapse::ops {

void register_random_ops() {
  define_op("dropout_mask")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        const double rate = a.f("rate");
        SYN_CHECK(rate >= 0.0 && rate < 1.0, "rate must be in [0, 1), got {}", rate);
        return one_output(in[0].shape, DType::Float32);
      })
      .kernel(Device::CPU, [](const KernelContext& c) {
        Generator g(static_cast<std::uint64_t>(c.attrs.i("seed")));
        const auto rate = static_cast<float>(c.attrs.f("rate"));
        const float scale = 1.0f / (1.0f - rate);
        float* m = c.out(0).data<float>();
        for (std::int64_t i = 0, n = c.out(0).numel(); i < n; ++i) m[i] = g.uniform() < rate ? 0.0f : scale;
      });

  define_op("random_uniform")
      .inputs(0)
      .shape([](const std::vector<TensorMeta>&, const Attrs& a) {
        const Shape& s = a.ints("shape");
        for (auto d : s) SYN_CHECK(d >= 0, "negative extent in shape {}", to_string(s));
        SYN_CHECK(a.f("low") <= a.f("high"), "low {} is above high {}", a.f("low"), a.f("high"));
        return one_output(std::move(s), DType::Float32);
      })
      .kernel(Device::CPU, [](const KernelContext& c) {
        Generator g(static_cast<std::uint64_t>(c.attrs.i("seed")));
        const auto low = static_cast<float>(c.attrs.f("low")), high = static_cast<float>(c.attrs.f("high"));
        float* p = c.out(0).data<float>();
        for (std::int64_t i = 0, n = c.out(0).numel(); i < n; ++i) p[i] = low + (high - low) * g.uniform();
      });
}

}  // namespace synapse::ops
