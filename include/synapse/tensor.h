// Tensor: a cheap, shared handle to a dense, contiguous, row-major n-d array.
//
// Copying a Tensor copies the handle, not the data (like torch::Tensor or a NumPy view); `clone()`
// copies the data. A tensor that requires gradients records the ops applied to it (see autograd.h).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "synapse/device.h"
#include "synapse/dtype.h"
#include "synapse/error.h"
#include "synapse/shape.h"

namespace synapse {

namespace autograd {
class Node;
}
namespace graph {
class Graph;
}

// What a graph tensor names: output `output` of node `node` of `graph` (see graph.h). `trace_shape` is
// the shape used for inference, with graph::kUnknownExtent standing for an unknown extent.
struct SymbolicRef {
  graph::Graph* graph = nullptr;
  int node = -1;
  int output = 0;
  Shape trace_shape;
};
namespace detail {
// While true (graph::gradients sets it on its thread), shape() of a graph tensor is its trace_shape.
bool& symbolic_trace_shapes();
}  // namespace detail

// Internal state of a tensor. Users hold Tensor handles; ops and the autograd engine read this.
struct TensorImpl {
  Shape shape;
  DType dtype = DType::Float32;
  std::shared_ptr<Storage> storage;  // shared by views (reshape)
  std::size_t offset = 0;            // in bytes, into storage
  std::string name;                  // optional, used in error messages

  // Autograd state.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;          // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;   // the op that produced this tensor (non-leaf)
  int output_index = 0;                      // which output of grad_fn this is

  // Graph mode: set for a symbolic tensor (which has no storage; `shape` has -1 for unknown extents).
  std::shared_ptr<const SymbolicRef> symbolic;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // An uninitialised tensor of the given shape and type (use zeros() for a zeroed one).
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
  static Tensor empty(Shape&& shape, DType dtype = DType::Float32, Device device = Device::CPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::int64_t ndim() const { return static_cast<std::int64_t>(shape().size()); }
  // Extent of dimension `d`; negative counts from the end.
  std::int64_t dim(std::int64_t d) const;
  std::int64_t numel() const;
  DType dtype() const;
  Device device() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }

  // Typed access to the elements; throws when T does not match the dtype.
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data() const;
  // The single value of a one-element tensor.
  template <class T = float> T item() const;
  // Element at a multi-index, e.g. t.at<float>({1, 2}).
  template <class T = float> T at(std::initializer_list<std::int64_t> index) const;
  template <class T = float> std::vector<T> to_vector() const;

  // A view with a new shape (one extent may be -1); shares storage, differentiable.
  Tensor reshape(const Shape& shape) const;  // the reshape op (defined with it, in src/ops/shape.cpp)
  // A copy of the data (no autograd history).
  Tensor clone() const;
  // Same data, cut off from autograd history.
  Tensor detach() const;

  // Naming, for messages (anomaly mode, NaN guard, checkpoint errors).
  const std::string& name() const;
  Tensor& set_name(std::string name);

  // ---- autograd ----
  bool requires_grad() const;
  // Marks a leaf tensor as a variable whose gradient is wanted.
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;
  // The accumulated gradient (undefined until a backward pass reaches this tensor).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad();
  // Back-propagates from this tensor (a scalar unless `grad_output` is given), adding into the .grad()
  // of every leaf that requires gradients. The recorded graph is freed unless retain_graph. Defined
  // by the autograd engine (src/autograd/engine.cpp): core knows no autograd.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  // "Tensor(shape=[2,3], dtype=float32)\n[[...]]", values truncated for large tensors.
  std::string to_string(std::int64_t max_per_dim = 6) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // True when both handles refer to the same tensor.
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- creation ----
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// A 0-d (shape {}) tensor.
Tensor scalar(float value);
// [start, stop) with the given step; float32 unless dtype says otherwise.
Tensor arange(double start, double stop, double step = 1.0, DType dtype = DType::Float32);
Tensor arange(std::int64_t n, DType dtype = DType::Float32);

// From values; shape defaults to 1-D. Throws when the count does not match the shape.
Tensor from_vector(const std::vector<float>& values, const Shape& shape = {});
Tensor from_vector(const std::vector<std::int32_t>& values, const Shape& shape = {});
Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape = {});
Tensor from_vector(const std::vector<std::uint8_t>& values, const Shape& shape = {});
// tensor({1, 2, 3}) or tensor({{1, 2}, {3, 4}}) (float32). A single column {{1}, {2}} reads as 1-D
// (C++ brace rules): use from_vector(values, {2, 1}) for it.
Tensor tensor(std::initializer_list<float> values);
Tensor tensor(std::initializer_list<std::vector<float>> rows);

// ---- element access (templates) ----
template <class T> T* Tensor::data() {
  if (dtype() != dtype_v<T>)
    throw Error("Tensor::data: tensor" + (name().empty() ? std::string() : " '" + name() + "'") +
                " has dtype " + std::string(dtype_name(dtype())) + ", requested " +
                std::string(dtype_name(dtype_v<T>)));
  return static_cast<T*>(raw_data());
}
template <class T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }

}  // namespace synapse
