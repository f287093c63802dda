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
// A mask element is a function of (seed, index) alone, a counter-based draw (SplitMix64 of the
// index, offset by the seed): the mask is filled in parallel and vectorised, and is the same for any
// thread count. (Drawn serially from one mt19937_64 stream, the cnn's [50, 1024] mask was ~1.5% of its
// training step, on one thread while the other waited.)
#include <cstdint>

#include "core/parallel.h"
#include "core/check.h"
#include "ops/families.h"
#include "core/splitmix.h"
#include "synapse/op.h"
#include "synapse/random.h"

namespace synapse::ops {
namespace {

// SplitMix64's output function applied to the counter `i` of a stream keyed by `key`: a 64-bit
// value that passes BigCrush as a sequence in i. The top 24 bits make a float uniform in [0, 1).
inline float counter_uniform(std::uint64_t key, std::uint64_t i) {
  return static_cast<float>(detail::splitmix64(key + i * 0x9E3779B97F4A7C15ull) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace

void register_random_ops() {
  define_op("dropout_mask")
      .inputs(1)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& a) {
        const double rate = a.f("rate");
        SYN_CHECK(rate >= 0.0 && rate < 1.0, "rate must be in [0, 1), got {}", rate);
        return one_output(in[0].shape, DType::Float32);
      })
      .kernel(Device::CPU, [](const KernelContext& c) {
        // The key: the seed mixed once, so that neighbouring seeds give unrelated masks.
        const std::uint64_t key = Generator(static_cast<std::uint64_t>(c.attrs.i("seed"))).next_u64();
        const auto rate = static_cast<float>(c.attrs.f("rate"));
        const float scale = 1.0f / (1.0f - rate);
        float* m = c.out(0).data<float>();
        parallel_for(0, c.out(0).numel(), kElementwiseGrain, [=](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t i = lo; i < hi; ++i)
            m[i] = counter_uniform(key, static_cast<std::uint64_t>(i)) < rate ? 0.0f : scale;
        });
      })
      .reference([](const KernelContext& c) {
        // Serial, element by element: the parallel fill must give the same mask for any thread count.
        const std::uint64_t key = Generator(static_cast<std::uint64_t>(c.attrs.i("seed"))).next_u64();
        const double rate = c.attrs.f("rate");
        for (std::int64_t i = 0; i < c.out(0).numel(); ++i) {
          const bool drop = counter_uniform(key, static_cast<std::uint64_t>(i)) < static_cast<float>(rate);
          c.out(0).data<float>()[i] = drop ? 0.0f : static_cast<float>(1.0 / (1.0 - rate));
        }
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
      })
      .no_reference("its kernel is already one serial loop of Generator::uniform; tests check the range, the "
                    "moments and that a seed repeats");
}

}  // namespace synapse::ops
