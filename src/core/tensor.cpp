#include "synapse/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "core/budget.h"
#include "core/check.h"

namespace synapse {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) { return empty(Shape(shape), dtype, device); }

Tensor Tensor::empty(Shape&& shape, DType dtype, Device device) {
  // Extents checked, and their product, so that no shape overflows (a file or a model can declare any shape).
  std::uint64_t count = 1;
  for (auto d : shape) {
    SYN_CHECK(d >= 0, "Tensor::empty: negative extent in shape {}", synapse::to_string(shape));
    SYN_CHECK(d == 0 || count <= (std::uint64_t{1} << 56) / static_cast<std::uint64_t>(d),
              "Tensor::empty: shape {} has more than 2^56 elements", synapse::to_string(shape));
    count *= static_cast<std::uint64_t>(d);
  }
  detail::check_tensor_in_read_scope(shape, dtype_name(dtype), count * dtype_size(dtype));
  auto impl = std::make_shared<TensorImpl>();
  const std::size_t nbytes = static_cast<std::size_t>(count) * dtype_size(dtype);
  impl->shape = std::move(shape);
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(nbytes, device);
  return Tensor(std::move(impl));
}

const TensorImpl& Tensor::checked() const {
  if (!impl_) throw Error("use of an undefined tensor");
  return *impl_;
}

namespace detail {
bool& symbolic_trace_shapes() {
  thread_local bool on = false;
  return on;
}
}  // namespace detail

const Shape& Tensor::shape() const {
  const auto& t = checked();
  if (t.symbolic && detail::symbolic_trace_shapes()) return t.symbolic->trace_shape;
  return t.shape;
}
std::int64_t Tensor::numel() const { return synapse::numel(shape()); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const {
  const auto& t = checked();
  return t.storage ? t.storage->device() : Device::CPU;  // a graph tensor runs where its inputs live: the CPU
}

std::int64_t Tensor::dim(std::int64_t d) const {
  return shape()[static_cast<std::size_t>(normalize_axis(d, ndim(), "Tensor::dim"))];
}

void* Tensor::raw_data() const {
  const auto& t = checked();
  if (t.symbolic)
    detail::fail("tensor{} is a graph tensor (shape {}) and has no data; evaluate it with graph::Session::run",
                 t.name.empty() ? "" : " '" + t.name + "'", synapse::to_string(t.shape));
  return static_cast<char*>(t.storage->data()) + t.offset;
}

template <class T> T Tensor::item() const {
  SYN_CHECK(numel() == 1, "Tensor::item: expected a tensor with one element, got shape {}", synapse::to_string(shape()));
  return data<T>()[0];
}

template <class T> T Tensor::at(std::initializer_list<std::int64_t> index) const {
  SYN_CHECK(static_cast<std::int64_t>(index.size()) == ndim(), "Tensor::at: {} indices for a tensor of shape {}",
            index.size(), synapse::to_string(shape()));
  std::int64_t flat = 0;
  std::size_t d = 0;
  for (auto i : index) {
    SYN_CHECK(i >= 0 && i < shape()[d], "Tensor::at: index {} out of range for dimension {} of shape {}", i, d,
              synapse::to_string(shape()));
    flat = flat * shape()[d] + i;
    ++d;
  }
  return data<T>()[flat];
}

template <class T> std::vector<T> Tensor::to_vector() const {
  const T* p = data<T>();
  return std::vector<T>(p, p + numel());
}

#define SYNAPSE_INSTANTIATE(T)                                          \
  template T Tensor::item<T>() const;                                   \
  template T Tensor::at<T>(std::initializer_list<std::int64_t>) const;  \
  template std::vector<T> Tensor::to_vector<T>() const;
SYNAPSE_INSTANTIATE(float)
SYNAPSE_INSTANTIATE(std::int32_t)
SYNAPSE_INSTANTIATE(std::int64_t)
SYNAPSE_INSTANTIATE(std::uint8_t)
SYNAPSE_INSTANTIATE(bool)
#undef SYNAPSE_INSTANTIATE

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  std::memcpy(out.raw_data(), raw_data(), nbytes());
  return out;
}

Tensor Tensor::detach() const {
  const auto& t = checked();
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = t.shape;
  impl->dtype = t.dtype;
  impl->storage = t.storage;
  impl->offset = t.offset;
  impl->name = t.name;
  impl->symbolic = t.symbolic;
  return Tensor(std::move(impl));
}

const std::string& Tensor::name() const { return checked().name; }
Tensor& Tensor::set_name(std::string n) {
  checked();
  impl_->name = std::move(n);
  return *this;
}

bool Tensor::requires_grad() const { return checked().requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  const auto& t = checked();
  SYN_CHECK(t.grad_fn == nullptr, "requires_grad_: tensor{} is the result of an op; only leaf tensors can be "
            "marked (use detach() first)", name().empty() ? "" : " '" + name() + "'");
  SYN_CHECK(!on || is_floating(t.dtype), "requires_grad_: only float tensors can require gradients, tensor{} is {}",
            name().empty() ? "" : " '" + name() + "'", dtype_name(t.dtype));
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }

Tensor Tensor::grad() const { return Tensor(checked().grad); }

void Tensor::set_grad(const Tensor& g) {
  checked();
  if (g.defined())
    SYN_CHECK(g.shape() == shape(), "set_grad: gradient shape {} differs from tensor shape {}", synapse::to_string(g.shape()),
              synapse::to_string(shape()));
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  checked();
  impl_->grad.reset();
}

// ---- printing ----
namespace {

template <class T> void print_value(std::ostream& os, T v) {
  if constexpr (std::is_same_v<T, float>) {
    os << fmt::format("{:.4g}", v);
  } else if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "true" : "false");
  } else {
    os << +v;
  }
}

template <class T>
void print_rec(std::ostream& os, const T* p, const Shape& s, const std::vector<std::int64_t>& st, std::size_t d,
               std::int64_t max_per_dim, int indent) {
  if (s.empty()) {
    print_value(os, p[0]);
    return;
  }
  os << '[';
  const std::int64_t n = s[d];
  const bool cut = n > max_per_dim;
  const std::int64_t head = cut ? max_per_dim / 2 : n;
  auto item = [&](std::int64_t i) {
    if (d + 1 == s.size()) {
      print_value(os, p[i * st[d]]);
    } else {
      print_rec(os, p + i * st[d], s, st, d + 1, max_per_dim, indent + 1);
    }
  };
  const char* sep = d + 1 == s.size() ? ", " : ",\n";
  for (std::int64_t i = 0; i < head; ++i) {
    if (i) os << sep << (d + 1 == s.size() ? "" : std::string(static_cast<std::size_t>(indent + 1), ' '));
    item(i);
  }
  if (cut) {
    os << sep << (d + 1 == s.size() ? "" : std::string(static_cast<std::size_t>(indent + 1), ' ')) << "...";
    for (std::int64_t i = n - (max_per_dim - head); i < n; ++i) {
      os << sep << (d + 1 == s.size() ? "" : std::string(static_cast<std::size_t>(indent + 1), ' '));
      item(i);
    }
  }
  os << ']';
}

}  // namespace

std::string Tensor::to_string(std::int64_t max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  if (impl_->symbolic)
    return fmt::format("Tensor(graph node {} output {}, shape={}, dtype={})", impl_->symbolic->node,
                       impl_->symbolic->output, synapse::to_string(impl_->shape), dtype_name(impl_->dtype));
  os << "Tensor(shape=" << synapse::to_string(shape()) << ", dtype=" << dtype_name(dtype());
  if (!name().empty()) os << ", name=" << name();
  if (requires_grad()) os << ", requires_grad";
  os << ")\n";
  const auto st = contiguous_strides(shape());
  switch (dtype()) {
    case DType::Float32: print_rec(os, data<float>(), shape(), st, 0, max_per_dim, 0); break;
    case DType::Int32: print_rec(os, data<std::int32_t>(), shape(), st, 0, max_per_dim, 0); break;
    case DType::Int64: print_rec(os, data<std::int64_t>(), shape(), st, 0, max_per_dim, 0); break;
    case DType::UInt8: print_rec(os, data<std::uint8_t>(), shape(), st, 0, max_per_dim, 0); break;
    case DType::Bool: print_rec(os, data<bool>(), shape(), st, 0, max_per_dim, 0); break;
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

// ---- creation ----
namespace {
template <class T> void fill_as(Tensor& t, double v) {
  T* p = t.data<T>();
  std::fill(p, p + t.numel(), static_cast<T>(v));
}
void fill(Tensor& t, double v) {
  switch (t.dtype()) {
    case DType::Float32: fill_as<float>(t, v); break;
    case DType::Int32: fill_as<std::int32_t>(t, v); break;
    case DType::Int64: fill_as<std::int64_t>(t, v); break;
    case DType::UInt8: fill_as<std::uint8_t>(t, v); break;
    case DType::Bool: fill_as<bool>(t, v); break;
  }
}
template <class T> Tensor from_values(const std::vector<T>& v, const Shape& shape) {
  const Shape s = shape.empty() ? Shape{static_cast<std::int64_t>(v.size())} : shape;
  SYN_CHECK(numel(s) == static_cast<std::int64_t>(v.size()), "from_vector: {} values do not fill shape {} ({} elements)",
            v.size(), synapse::to_string(s), numel(s));
  Tensor t = Tensor::empty(s, dtype_v<T>);
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}
}  // namespace

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor scalar(float value) { return full({}, value, DType::Float32); }

Tensor arange(double start, double stop, double step, DType dtype) {
  SYN_CHECK(step != 0.0, "arange: step must not be zero");
  const auto n = static_cast<std::int64_t>(std::max(0.0, std::ceil((stop - start) / step)));
  Tensor t = Tensor::empty({n}, dtype);
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = start + static_cast<double>(i) * step;
    switch (dtype) {
      case DType::Float32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::Int32: t.data<std::int32_t>()[i] = static_cast<std::int32_t>(v); break;
      case DType::Int64: t.data<std::int64_t>()[i] = static_cast<std::int64_t>(v); break;
      case DType::UInt8: t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(v); break;
      case DType::Bool: t.data<bool>()[i] = v != 0.0; break;
    }
  }
  return t;
}
Tensor arange(std::int64_t n, DType dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

Tensor from_vector(const std::vector<float>& v, const Shape& s) { return from_values(v, s); }
Tensor from_vector(const std::vector<std::int32_t>& v, const Shape& s) { return from_values(v, s); }
Tensor from_vector(const std::vector<std::int64_t>& v, const Shape& s) { return from_values(v, s); }
Tensor from_vector(const std::vector<std::uint8_t>& v, const Shape& s) { return from_values(v, s); }

Tensor tensor(std::initializer_list<float> values) { return from_values(std::vector<float>(values), {}); }

Tensor tensor(std::initializer_list<std::vector<float>> rows) {
  const auto r = static_cast<std::int64_t>(rows.size());
  const auto c = r ? static_cast<std::int64_t>(rows.begin()->size()) : 0;
  std::vector<float> v;
  v.reserve(static_cast<std::size_t>(r * c));
  for (const auto& row : rows) {
    SYN_CHECK(static_cast<std::int64_t>(row.size()) == c, "tensor: ragged rows ({} and {} values)", c, row.size());
    v.insert(v.end(), row.begin(), row.end());
  }
  return from_values(v, {r, c});
}

}  // namespace synapse
