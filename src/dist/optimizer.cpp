// DistributedOptimizer: gradients averaged over the ranks in buckets that start during backward
// (autograd's gradient-ready hook), then the wrapped optimizer's step.
//
// Buckets hold parameters in reverse order, the order backward finishes them (the last layer's
// gradients are final first). When a bucket's last gradient is final, the bucket is packed into one
// float32 buffer and its MPI_Iallreduce starts while backward goes on with the earlier layers. MPI
// matches collectives by the order they are started, so buckets start strictly in index order on
// every rank: a bucket that is ready early waits for the ones before it.
#include <chrono>
#include <cstring>

#include "core/check.h"
#include "dist/comm.h"
#include "synapse/autograd.h"
#include "synapse/dist.h"

namespace synapse::dist {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

DistributedOptimizer::DistributedOptimizer(optim::Optimizer& inner, DistributedOptions o) : inner_(inner), o_(o) {
  SYN_CHECK(o_.bucket_bytes > 0, "DistributedOptimizer: bucket_bytes must be > 0, got {}", o_.bucket_bytes);
  const optim::NamedTensors& params = inner_.params();
  check_agreement(params, "model (the parameters of the " + inner_.type() + " optimizer)");
  std::int64_t bytes = 0;
  for (std::size_t k = params.size(); k-- > 0;) {
    const Tensor& p = params[k].second;
    const auto nb = static_cast<std::int64_t>(p.nbytes());
    if (buckets_.empty() || (bytes > 0 && bytes + nb > o_.bucket_bytes)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.offsets.push_back(bytes / 4);
    b.params.push_back(k);
    bytes += nb;
    where_[p.impl()] = {static_cast<int>(buckets_.size() - 1), false};
  }
  for (Bucket& b : buckets_) {
    std::int64_t n = 0;
    for (std::size_t i : b.params) n += params[i].second.numel();
    b.buffer = Tensor::empty({n});
  }
  if (o_.overlap && size() > 1)
    hook_ = autograd::add_grad_ready_hook([this](const Tensor& leaf) { on_grad_ready(leaf); });
}

DistributedOptimizer::~DistributedOptimizer() {
  if (hook_) autograd::remove_grad_ready_hook(hook_);
}

void DistributedOptimizer::on_grad_ready(const Tensor& leaf) {
  auto it = where_.find(leaf.impl());
  if (it == where_.end()) return;
  Bucket& b = buckets_[static_cast<std::size_t>(it->second.first)];
  if (it->second.second) {  // a second backward before step(): the bucket must be reduced again
    b.dirty = b.request >= 0;
    return;
  }
  it->second.second = true;
  if (++b.ready == static_cast<int>(b.params.size())) launch_ready_buckets();
  // Let MPI move the buckets in flight along while backward runs (it progresses only inside calls).
  for (std::size_t k = 0; k < next_launch_; ++k) comm::progress(buckets_[k].request);
}

void DistributedOptimizer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == static_cast<int>(buckets_[next_launch_].params.size())) {
    launch(buckets_[next_launch_], nullptr);
    ++next_launch_;
  }
}

void DistributedOptimizer::launch(Bucket& b, const std::vector<Tensor>* grads) {
  const auto t0 = std::chrono::steady_clock::now();
  const optim::NamedTensors& params = inner_.params();
  float* buf = b.buffer.data<float>();
  for (std::size_t j = 0; j < b.params.size(); ++j) {
    const std::size_t i = b.params[j];
    const Tensor& p = params[i].second;
    const Tensor g = grads ? (*grads)[i] : p.grad();
    float* dst = buf + b.offsets[j];
    if (g.defined()) {
      SYN_CHECK(g.dtype() == DType::Float32 && g.shape() == p.shape(),
                "DistributedOptimizer: gradient of '{}' is {} {}, the parameter is float32 {}", params[i].first,
                dtype_name(g.dtype()), to_string(g.shape()), to_string(p.shape()));
      std::memcpy(dst, g.raw_data(), g.nbytes());
    } else {
      std::memset(dst, 0, p.nbytes());  // no gradient counts as zero, so every rank reduces the same buckets
    }
  }
  b.request = comm::iallreduce_sum(buf, b.buffer.numel(), comm::Elem::F32);
  stats_.bytes += static_cast<std::int64_t>(b.buffer.nbytes());
  stats_.launch_seconds += seconds_since(t0);
}

void DistributedOptimizer::finish(Bucket& b, std::vector<Tensor>* grads) {
  const std::size_t index = static_cast<std::size_t>(&b - buckets_.data());
  comm::wait(b.request, fmt::format("allreduce of gradient bucket {} of {} ({:.2f} MB, from parameter '{}')", index + 1,
                                    buckets_.size(), static_cast<double>(b.buffer.nbytes()) / 1e6,
                                    inner_.params()[b.params.front()].first));
  b.request = -1;
  const optim::NamedTensors& params = inner_.params();
  const float inv = 1.0f / static_cast<float>(size());
  const float* buf = b.buffer.data<float>();
  for (std::size_t j = 0; j < b.params.size(); ++j) {
    const std::size_t i = b.params[j];
    const Tensor& p = params[i].second;
    Tensor g = Tensor::empty(p.shape());  // a new tensor: the old gradient may share storage with another
    float* dst = g.data<float>();
    const float* src = buf + b.offsets[j];
    for (std::int64_t e = 0; e < g.numel(); ++e) dst[e] = src[e] * inv;
    if (grads) {
      (*grads)[i] = g;
    } else {
      Tensor param = p;
      param.set_grad(g);
    }
  }
}

void DistributedOptimizer::synchronize() {
  if (size() == 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  const double launched_before = stats_.launch_seconds;
  for (Bucket& b : buckets_) {
    if (b.request >= 0 && b.dirty) {  // reduced too early: drop that result, reduce the final gradients
      comm::wait(b.request, "allreduce of a gradient bucket");
      b.request = -1;
    }
    if (b.request < 0) launch(b, nullptr);
  }
  for (Bucket& b : buckets_) finish(b, nullptr);
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.dirty = false;
  }
  for (auto& [impl, w] : where_) w.second = false;
  next_launch_ = 0;
  ++stats_.steps;
  // The time blocked here, without the packing of buckets started here (counted as launch time).
  stats_.wait_seconds += seconds_since(t0) - (stats_.launch_seconds - launched_before);
}

void DistributedOptimizer::step() {
  synchronize();
  inner_.step();
}

void DistributedOptimizer::apply_gradients(const std::vector<Tensor>& grads) {
  SYN_CHECK(grads.size() == inner_.params().size(),
            "DistributedOptimizer: apply_gradients: expected {} gradients (one per parameter), found {}",
            inner_.params().size(), grads.size());
  if (size() == 1) {
    inner_.apply_gradients(grads);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double launched_before = stats_.launch_seconds;
  std::vector<Tensor> averaged(grads.size());
  for (Bucket& b : buckets_) launch(b, &grads);
  for (Bucket& b : buckets_) finish(b, &averaged);
  ++stats_.steps;
  stats_.wait_seconds += seconds_since(t0) - (stats_.launch_seconds - launched_before);
  inner_.apply_gradients(averaged);
}

graph::Op minimize(DistributedOptimizer& opt, const Tensor& loss, const std::string& name) {
  return optim::minimize(opt.params(), loss, [&opt](const std::vector<Tensor>& all) { opt.apply_gradients(all); },
                         name, "DistributedOptimizer(" + opt.optimizer().type() + ")");
}

}  // namespace synapse::dist
