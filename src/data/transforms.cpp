// Transforms: pixel scaling and per-feature normalisation with learnt, named statistics.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "core/parallel.h"
#include "core/check.h"
#include "synapse/data.h"
#include "synapse/random.h"

namespace synapse::data {
namespace {

using ::synapse::detail::fail;

// Calls fn(const T* data) with x's elements in their C++ type.
template <class Fn> void visit(const Tensor& x, const char* who, Fn&& fn) {
  switch (x.dtype()) {
    case DType::Float32: fn(x.data<float>()); break;
    case DType::Int32: fn(x.data<std::int32_t>()); break;
    case DType::Int64: fn(x.data<std::int64_t>()); break;
    case DType::UInt8: fn(x.data<std::uint8_t>()); break;
    case DType::Bool: fn(x.data<bool>()); break;
    default: fail("{}: unsupported dtype {}", who, dtype_name(x.dtype()));
  }
}

// A spread below this is treated as zero (scikit-learn's rule): the feature is only shifted.
constexpr float kTinySpread = 10.0f * std::numeric_limits<float>::epsilon();

// Rows and features of a training tensor: [N, ...] -> (N, numel / N), or (1, numel) for one
// statistic over everything.
struct Layout {
  std::size_t rows, features;
  Shape stat_shape;
};

Layout layout_of(const Tensor& train, bool per_feature, const char* who) {
  SYN_CHECK(train.defined(), "{}: undefined training tensor", who);
  SYN_CHECK(train.ndim() >= 1 && train.dim(0) >= 1, "{}: need at least one training example, got shape {}", who,
            to_string(train.shape()));
  if (!per_feature) return {static_cast<std::size_t>(train.numel()), 1, {}};
  return {static_cast<std::size_t>(train.dim(0)), static_cast<std::size_t>(train.numel() / train.dim(0)),
          Shape(train.shape().begin() + 1, train.shape().end())};
}

Tensor to_tensor(const std::vector<double>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::Float32);
  float* p = t.data<float>();
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  return t;
}

}  // namespace

Tensor scale(const Tensor& x, float divisor) {
  SYN_CHECK(divisor != 0.0f, "scale: divisor must not be 0");
  Tensor out = Tensor::empty(x.shape(), DType::Float32);
  float* y = out.data<float>();
  const float inv = 1.0f / divisor;
  const auto n = static_cast<std::size_t>(x.numel());
  visit(x, "scale", [&](const auto* p) {
    parallel_for(0, static_cast<std::int64_t>(n), kElementwiseGrain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) y[i] = static_cast<float>(p[i]) * inv;
    });
  });
  return out;
}

Tensor random_translate(const Tensor& images, std::int64_t max_shift, std::uint64_t seed) {
  SYN_CHECK(images.defined(), "random_translate: undefined images tensor");
  SYN_CHECK(images.ndim() == 3 || images.ndim() == 4,
            "random_translate: expected images [N, H, W] or [N, H, W, C], got shape {}", to_string(images.shape()));
  SYN_CHECK(max_shift >= 0, "random_translate: max_shift must be >= 0, got {}", max_shift);
  const Tensor& src = images;
  const std::int64_t n = src.dim(0), h = src.dim(1), w = src.dim(2);
  const std::size_t pixel = dtype_size(src.dtype()) * static_cast<std::size_t>(src.ndim() == 4 ? src.dim(3) : 1);
  const std::size_t row = pixel * static_cast<std::size_t>(w), image = row * static_cast<std::size_t>(h);
  // Offsets drawn up front, two per image in order, so they depend on the seed only.
  Generator gen(seed);
  const std::uint64_t choices = 2 * static_cast<std::uint64_t>(max_shift) + 1;
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(2 * n));
  for (auto& o : offsets) o = static_cast<std::int64_t>(gen.next_u64() % choices) - max_shift;
  Tensor out = Tensor::empty(src.shape(), src.dtype());
  const auto* in = static_cast<const unsigned char*>(src.raw_data());
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  // One thread: a batch is a few hundred KB of copies (64 MNIST images: ~20 us), and this usually runs on
  // the trainer's prefetch thread, where a parallel region would start a second pool of threads
  // competing with the training step's for the same cores.
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t dy = offsets[static_cast<std::size_t>(2 * i)], dx = offsets[static_cast<std::size_t>(2 * i + 1)];
    // Output columns [c0, c1) come from input columns [c0 - dx, c1 - dx); the others are 0.
    const std::int64_t c0 = std::clamp<std::int64_t>(dx, 0, w), c1 = std::clamp<std::int64_t>(w + dx, 0, w);
    for (std::int64_t r = 0; r < h; ++r) {
      unsigned char* o = dst + static_cast<std::size_t>(i) * image + static_cast<std::size_t>(r) * row;
      const std::int64_t sr = r - dy;
      if (sr < 0 || sr >= h || c1 <= c0) {
        std::memset(o, 0, row);
        continue;
      }
      const unsigned char* s = in + static_cast<std::size_t>(i) * image + static_cast<std::size_t>(sr) * row;
      std::memset(o, 0, static_cast<std::size_t>(c0) * pixel);
      std::memcpy(o + static_cast<std::size_t>(c0) * pixel, s + static_cast<std::size_t>(c0 - dx) * pixel,
                  static_cast<std::size_t>(c1 - c0) * pixel);
      std::memset(o + static_cast<std::size_t>(c1) * pixel, 0, static_cast<std::size_t>(w - c1) * pixel);
    }
  }
  return out;
}

// ---- Normalizer ----

Normalizer::Normalizer(Kind kind, Tensor shift, Tensor spread)
    : kind_(kind), shift_(std::move(shift)), spread_(std::move(spread)) {}

Normalizer Normalizer::min_max(const Tensor& train, bool per_feature) {
  const Layout l = layout_of(train, per_feature, "Normalizer::min_max");
  std::vector<double> lo(l.features, std::numeric_limits<double>::infinity());
  std::vector<double> hi(l.features, -std::numeric_limits<double>::infinity());
  visit(train, "Normalizer::min_max", [&](const auto* p) {
    for (std::size_t r = 0; r < l.rows; ++r)
      for (std::size_t f = 0; f < l.features; ++f) {
        const double v = static_cast<double>(p[r * l.features + f]);
        lo[f] = std::min(lo[f], v);
        hi[f] = std::max(hi[f], v);
      }
  });
  return Normalizer(Kind::MinMax, to_tensor(lo, l.stat_shape), to_tensor(hi, l.stat_shape));
}

Normalizer Normalizer::z_score(const Tensor& train, bool per_feature) {
  const Layout l = layout_of(train, per_feature, "Normalizer::z_score");
  std::vector<double> mean(l.features, 0.0), var(l.features, 0.0);
  visit(train, "Normalizer::z_score", [&](const auto* p) {
    for (std::size_t r = 0; r < l.rows; ++r)
      for (std::size_t f = 0; f < l.features; ++f) mean[f] += static_cast<double>(p[r * l.features + f]);
    for (auto& m : mean) m /= static_cast<double>(l.rows);
    for (std::size_t r = 0; r < l.rows; ++r)
      for (std::size_t f = 0; f < l.features; ++f) {
        const double d = static_cast<double>(p[r * l.features + f]) - mean[f];
        var[f] += d * d;
      }
  });
  for (auto& v : var) v = std::sqrt(v / static_cast<double>(l.rows));  // population std
  return Normalizer(Kind::ZScore, to_tensor(mean, l.stat_shape), to_tensor(var, l.stat_shape));
}

Normalizer Normalizer::from_state(const std::map<std::string, Tensor>& state) {
  std::set<std::string> keys;
  for (const auto& [k, v] : state) keys.insert(k);
  Kind kind;
  const char *a, *b;
  if (keys == std::set<std::string>{"mean", "std"}) {
    kind = Kind::ZScore, a = "mean", b = "std";
  } else if (keys == std::set<std::string>{"min", "max"}) {
    kind = Kind::MinMax, a = "min", b = "max";
  } else {
    fail("Normalizer::from_state: expected the keys {{mean, std}} or {{min, max}}, found {{{}}}",
         fmt::join(keys, ", "));
  }
  const Tensor &s = state.at(a), &t = state.at(b);
  SYN_CHECK(s.defined() && t.defined(), "Normalizer::from_state: '{}' or '{}' is undefined", a, b);
  SYN_CHECK(s.dtype() == DType::Float32 && t.dtype() == DType::Float32,
            "Normalizer::from_state: statistics must be float32, found '{}' {} and '{}' {}", a,
            dtype_name(s.dtype()), b, dtype_name(t.dtype()));
  SYN_CHECK(s.shape() == t.shape(), "Normalizer::from_state: '{}' has shape {} but '{}' has shape {}", a,
            to_string(s.shape()), b, to_string(t.shape()));
  return Normalizer(kind, s.clone(), t.clone());
}

std::map<std::string, Tensor> Normalizer::state() const {
  if (kind_ == Kind::MinMax) return {{"min", shift_}, {"max", spread_}};
  return {{"mean", shift_}, {"std", spread_}};
}

Tensor Normalizer::apply(const Tensor& x) const {
  const Shape& stat = shift_.shape();
  const bool trailing_match =
      x.ndim() >= static_cast<std::int64_t>(stat.size()) && std::equal(stat.rbegin(), stat.rend(), x.shape().rbegin());
  SYN_CHECK(trailing_match, "Normalizer: input of shape {} does not end with the statistics' shape {}",
            to_string(x.shape()), to_string(stat));

  // y = (x - shift) * inv per feature, inv = 1 / spread (1 when the spread is ~0).
  const auto features = static_cast<std::size_t>(shift_.numel());
  const float* shift = shift_.data<float>();
  const float* spread = spread_.data<float>();
  std::vector<float> inv(features);
  for (std::size_t f = 0; f < features; ++f) {
    const float s = kind_ == Kind::MinMax ? spread[f] - shift[f] : spread[f];
    inv[f] = s < kTinySpread ? 1.0f : 1.0f / s;
  }
  Tensor out = Tensor::empty(x.shape(), DType::Float32);
  float* y = out.data<float>();
  const std::size_t rows = features == 0 ? 0 : static_cast<std::size_t>(x.numel()) / features;
  visit(x, "Normalizer", [&](const auto* p) {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t f = 0; f < features; ++f)
        y[r * features + f] = (static_cast<float>(p[r * features + f]) - shift[f]) * inv[f];
  });
  return out;
}

}  // namespace synapse::data
