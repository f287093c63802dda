// The Dataset pipeline: sources (tensors, functions) and the transformations that wrap them
// (shuffle, batch, repeat, map, take, skip, prefetch). Each transformation is a Source whose
// iterate() wraps its input's iterator; a Dataset is a shared handle to the outermost Source.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/check.h"
#include "core/splitmix.h"
#include "data/rows.h"
#include "synapse/data.h"
#include "synapse/random.h"

namespace synapse::data {
namespace {

using ::synapse::detail::fail;
using SourcePtr = std::shared_ptr<const Source>;

// Stacks rows of equal shape and dtype into [rows.size(), ...shape]. Errors read
// "<who>: <noun> 3 is uint8 [2], but <noun> 0 is uint8 [3]".
Tensor stack(const std::vector<const Tensor*>& rows, const std::string& who, const char* noun) {
  const Tensor& first = *rows[0];
  Shape shape(first.shape().size() + 1);  // [rows, ...first.shape]
  shape[0] = static_cast<std::int64_t>(rows.size());
  std::copy(first.shape().begin(), first.shape().end(), shape.begin() + 1);
  Tensor out = Tensor::empty(shape, first.dtype());
  const std::size_t bytes = first.nbytes();
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Tensor& r = *rows[i];
    if (r.shape() != first.shape() || r.dtype() != first.dtype())
      fail("{}: {} {} is {} {}, but {} 0 is {} {}", who, noun, i, dtype_name(r.dtype()), to_string(r.shape()), noun,
           dtype_name(first.dtype()), to_string(first.shape()));
    std::memcpy(dst + i * bytes, r.raw_data(), bytes);
  }
  return out;
}

// ---- sources ----

// An iterator over rows of source tensors, identified by index. Its consumers (shuffle, batch)
// recognise it and work on indices: shuffle permutes indices, batch memcpys rows straight from the
// source tensors into the batch, so no per-example tensors are created on the fast path.
class RowIterator : public Iterator {
 public:
  explicit RowIterator(const std::vector<Tensor>& tensors) : tensors_(tensors) {}
  // The index of the next row, or nullopt at the end.
  virtual std::optional<std::int64_t> next_index() = 0;
  const std::vector<Tensor>& tensors() const { return tensors_; }

  std::optional<Example> next() final {
    auto i = next_index();
    if (!i) return std::nullopt;
    Example e;
    e.reserve(tensors_.size());
    for (const Tensor& t : tensors_) e.push_back(internal::row_view(t, *i));
    return e;
  }

 private:
  const std::vector<Tensor>& tensors_;  // owned by the TensorSource, kept alive by the pipeline
};

class TensorSource final : public Source {
 public:
  explicit TensorSource(std::vector<Tensor> tensors) : tensors_(std::move(tensors)), n_(tensors_[0].dim(0)) {}
  std::int64_t size() const override { return n_; }
  std::unique_ptr<Iterator> iterate() const override {
    struct It final : RowIterator {
      std::int64_t i = 0, n;
      It(const std::vector<Tensor>& t, std::int64_t rows) : RowIterator(t), n(rows) {}
      std::optional<std::int64_t> next_index() override {
        if (i >= n) return std::nullopt;
        return i++;
      }
    };
    return std::make_unique<It>(tensors_, n_);
  }

 private:
  std::vector<Tensor> tensors_;
  std::int64_t n_;
};

class FunctionSource final : public Source {
 public:
  FunctionSource(std::int64_t n, std::function<Example(std::int64_t)> fn) : n_(n), fn_(std::move(fn)) {}
  std::int64_t size() const override { return n_; }
  std::unique_ptr<Iterator> iterate() const override {
    struct It final : Iterator {
      const FunctionSource* src;
      std::int64_t i = 0;
      explicit It(const FunctionSource* s) : src(s) {}
      std::optional<Example> next() override {
        if (i >= src->n_) return std::nullopt;
        return src->fn_(i++);
      }
    };
    return std::make_unique<It>(this);
  }

 private:
  std::int64_t n_;
  std::function<Example(std::int64_t)> fn_;
};

// ---- transformations ----

// Lifetimes: each iterator keeps a shared_ptr to its input Source, and Dataset::iterate() keeps the
// outermost Source alive, so an iterator may outlive the Dataset handles it came from and may use
// its own Source's members through `this`.

// Uniform in [0, n) without modulo bias.
std::size_t uniform_index(Generator& gen, std::size_t n) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t r;
  do r = gen.next_u64();
  while (r >= limit);
  return static_cast<std::size_t>(r % n);
}

// tf.data's shuffle buffer: emit a random buffered item, refill from the input. `Item` is an Example
// (generic path) or a row index (when the input is a RowIterator); both draw the same random numbers,
// so both paths give the same order.
template <class Item> class ShuffleBuffer {
 public:
  ShuffleBuffer(std::size_t capacity, std::uint64_t seed) : capacity_(capacity), gen_(seed) {}

  template <class Pull> std::optional<Item> next(Pull&& pull) {
    while (!in_done_ && buffer_.size() < capacity_) {
      std::optional<Item> item = pull();
      if (!item) {
        in_done_ = true;
        break;
      }
      buffer_.push_back(std::move(*item));
    }
    if (buffer_.empty()) return std::nullopt;
    const std::size_t k = uniform_index(gen_, buffer_.size());
    Item out = std::move(buffer_[k]);
    if (k + 1 != buffer_.size()) buffer_[k] = std::move(buffer_.back());
    buffer_.pop_back();
    return out;
  }

 private:
  std::size_t capacity_;
  Generator gen_;
  std::vector<Item> buffer_;
  bool in_done_ = false;
};

class ShuffleSource final : public Source {
 public:
  ShuffleSource(SourcePtr in, std::int64_t buffer, std::uint64_t seed, bool reshuffle)
      : in_(std::move(in)), buffer_(static_cast<std::size_t>(buffer)), seed_(seed), reshuffle_(reshuffle) {}
  std::int64_t size() const override { return in_->size(); }
  std::unique_ptr<Iterator> iterate() const override {
    const std::uint64_t epoch = reshuffle_ ? epoch_.fetch_add(1) : 0;
    const std::uint64_t seed = ::synapse::detail::splitmix64(seed_ ^ ::synapse::detail::splitmix64(epoch));
    std::unique_ptr<Iterator> in = in_->iterate();
    if (auto* rows = dynamic_cast<RowIterator*>(in.get())) {
      in.release();
      return std::make_unique<Rows>(in_, std::unique_ptr<RowIterator>(rows), buffer_, seed);
    }
    return std::make_unique<Examples>(in_, std::move(in), buffer_, seed);
  }

 private:
  struct Examples final : Iterator {
    SourcePtr keep;
    std::unique_ptr<Iterator> in;
    ShuffleBuffer<Example> buffer;
    Examples(SourcePtr k, std::unique_ptr<Iterator> i, std::size_t cap, std::uint64_t seed)
        : keep(std::move(k)), in(std::move(i)), buffer(cap, seed) {}
    std::optional<Example> next() override {
      return buffer.next([&] { return in->next(); });
    }
  };
  struct Rows final : RowIterator {
    SourcePtr keep;
    std::unique_ptr<RowIterator> in;
    ShuffleBuffer<std::int64_t> buffer;
    Rows(SourcePtr k, std::unique_ptr<RowIterator> i, std::size_t cap, std::uint64_t seed)
        : RowIterator(i->tensors()), keep(std::move(k)), in(std::move(i)), buffer(cap, seed) {}
    std::optional<std::int64_t> next_index() override {
      return buffer.next([&] { return in->next_index(); });
    }
  };

  SourcePtr in_;
  std::size_t buffer_;
  std::uint64_t seed_;
  bool reshuffle_;
  mutable std::atomic<std::uint64_t> epoch_{0};
};

class BatchSource final : public Source {
 public:
  BatchSource(SourcePtr in, std::int64_t size, bool drop) : in_(std::move(in)), size_(size), drop_(drop) {}
  std::int64_t size() const override {
    std::int64_t n = in_->size();
    if (n < 0) return n;
    return drop_ ? n / size_ : (n + size_ - 1) / size_;
  }
  std::unique_ptr<Iterator> iterate() const override {
    return std::make_unique<It>(in_, static_cast<std::size_t>(size_), drop_);
  }

 private:
  struct It final : Iterator {
    SourcePtr keep;
    std::unique_ptr<Iterator> in;
    RowIterator* rows;  // `in` when it iterates rows of tensors (the fast path), else null
    std::size_t size;
    bool drop;
    std::vector<Example> pending;
    std::vector<std::int64_t> indices;

    It(SourcePtr src, std::size_t s, bool d)
        : keep(std::move(src)), in(keep->iterate()), rows(dynamic_cast<RowIterator*>(in.get())), size(s), drop(d) {}

    bool complete(std::size_t n) const { return n > 0 && (n == size || !drop); }

    std::optional<Example> next() override { return rows ? next_rows() : next_examples(); }

    // Copies the rows straight from the source tensors: component k is [n, ...tensor_k.shape[1:]].
    std::optional<Example> next_rows() {
      indices.clear();
      while (indices.size() < size) {
        auto i = rows->next_index();
        if (!i) break;
        indices.push_back(*i);
      }
      if (!complete(indices.size())) return std::nullopt;
      Example batch;
      batch.reserve(rows->tensors().size());
      for (const Tensor& t : rows->tensors()) {
        Shape shape = t.shape();
        shape[0] = static_cast<std::int64_t>(indices.size());
        Tensor out = Tensor::empty(shape, t.dtype());
        const std::size_t bytes = internal::row_bytes(t);
        const auto* src = static_cast<const unsigned char*>(t.raw_data());
        auto* dst = static_cast<unsigned char*>(out.raw_data());
        for (std::size_t r = 0; r < indices.size(); ++r)
          std::memcpy(dst + r * bytes, src + static_cast<std::size_t>(indices[r]) * bytes, bytes);
        batch.push_back(std::move(out));
      }
      return batch;
    }

    std::optional<Example> next_examples() {
      pending.clear();
      while (pending.size() < size) {
        auto e = in->next();
        if (!e) break;
        pending.push_back(std::move(*e));
      }
      if (!complete(pending.size())) return std::nullopt;
      const std::size_t components = pending[0].size();
      std::vector<const Tensor*> parts(pending.size());
      Example batch;
      batch.reserve(components);
      for (std::size_t c = 0; c < components; ++c) {
        for (std::size_t i = 0; i < pending.size(); ++i) {
          if (pending[i].size() != components)
            fail("batch: example {} has {} components, example 0 has {}", i, pending[i].size(), components);
          parts[i] = &pending[i][c];
        }
        batch.push_back(stack(parts, fmt::format("batch: component {}", c), "example"));
      }
      return batch;
    }
  };

  SourcePtr in_;
  std::int64_t size_;
  bool drop_;
};

class RepeatSource final : public Source {
 public:
  RepeatSource(SourcePtr in, std::int64_t count) : in_(std::move(in)), count_(count) {}
  std::int64_t size() const override {
    std::int64_t n = in_->size();
    if (n == 0 || count_ == 0) return 0;
    if (n < 0) return n;
    return count_ < 0 ? kInfinite : n * count_;
  }
  std::unique_ptr<Iterator> iterate() const override {
    struct It final : Iterator {
      SourcePtr keep;
      std::int64_t count, pass = 0;
      std::unique_ptr<Iterator> current;
      bool produced = false;  // in the current pass
      It(SourcePtr src, std::int64_t c) : keep(std::move(src)), count(c) {}
      std::optional<Example> next() override {
        for (;;) {
          if (!current) {
            if (count >= 0 && pass >= count) return std::nullopt;
            current = keep->iterate();
            ++pass;
            produced = false;
          }
          if (auto e = current->next()) {
            produced = true;
            return e;
          }
          current.reset();
          if (!produced) {  // an empty pass: repeating it would never yield anything
            count = pass;
            return std::nullopt;
          }
        }
      }
    };
    return std::make_unique<It>(in_, count_);
  }

 private:
  SourcePtr in_;
  std::int64_t count_;
};

class MapSource final : public Source {
 public:
  MapSource(SourcePtr in, std::function<Example(Example)> fn) : in_(std::move(in)), fn_(std::move(fn)) {}
  std::int64_t size() const override { return in_->size(); }
  std::unique_ptr<Iterator> iterate() const override {
    struct It final : Iterator {
      SourcePtr keep;
      const MapSource* src;
      std::unique_ptr<Iterator> in;
      It(SourcePtr k, const MapSource* s) : keep(std::move(k)), src(s), in(keep->iterate()) {}
      std::optional<Example> next() override {
        auto e = in->next();
        if (!e) return std::nullopt;
        return src->fn_(std::move(*e));
      }
    };
    return std::make_unique<It>(in_, this);
  }

 private:
  SourcePtr in_;
  std::function<Example(Example)> fn_;
};

class TakeSource final : public Source {
 public:
  TakeSource(SourcePtr in, std::int64_t n) : in_(std::move(in)), n_(n) {}
  std::int64_t size() const override {
    std::int64_t m = in_->size();
    if (m == kInfinite) return n_;
    return m < 0 ? m : std::min(m, n_);
  }
  std::unique_ptr<Iterator> iterate() const override {
    struct It final : Iterator {
      SourcePtr keep;
      std::unique_ptr<Iterator> in;
      std::int64_t left;
      It(SourcePtr k, std::int64_t n) : keep(std::move(k)), in(keep->iterate()), left(n) {}
      std::optional<Example> next() override {
        if (left <= 0) return std::nullopt;
        --left;
        return in->next();
      }
    };
    return std::make_unique<It>(in_, n_);
  }

 private:
  SourcePtr in_;
  std::int64_t n_;
};

class SkipSource final : public Source {
 public:
  SkipSource(SourcePtr in, std::int64_t n) : in_(std::move(in)), n_(n) {}
  std::int64_t size() const override {
    std::int64_t m = in_->size();
    return m < 0 ? m : std::max<std::int64_t>(0, m - n_);
  }
  std::unique_ptr<Iterator> iterate() const override {
    struct It final : Iterator {
      SourcePtr keep;
      std::unique_ptr<Iterator> in;
      std::int64_t skip;
      It(SourcePtr k, std::int64_t n) : keep(std::move(k)), in(keep->iterate()), skip(n) {}
      std::optional<Example> next() override {
        for (; skip > 0; --skip)
          if (!in->next()) {
            skip = 0;
            return std::nullopt;
          }
        return in->next();
      }
    };
    return std::make_unique<It>(in_, n_);
  }

 private:
  SourcePtr in_;
  std::int64_t n_;
};

// Runs the input iterator on a background thread, keeping up to `capacity` examples ready.
class PrefetchIterator final : public Iterator {
 public:
  PrefetchIterator(SourcePtr src, std::size_t capacity)
      : keep_(std::move(src)), in_(keep_->iterate()), capacity_(capacity) {
    thread_ = std::thread([this] { produce(); });
  }
  ~PrefetchIterator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  PrefetchIterator(const PrefetchIterator&) = delete;
  PrefetchIterator& operator=(const PrefetchIterator&) = delete;

  std::optional<Example> next() override {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty() || done_; });
    if (!queue_.empty()) {
      Example e = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      cv_.notify_all();
      return e;
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return std::nullopt;
  }

 private:
  void produce() {
    std::exception_ptr error;
    try {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(mutex_);
          cv_.wait(lock, [&] { return stop_ || queue_.size() < capacity_; });
          if (stop_) return;
        }
        std::optional<Example> e = in_->next();  // the slow part, outside the lock
        std::lock_guard<std::mutex> lock(mutex_);
        if (!e) {
          done_ = true;
          cv_.notify_all();
          return;
        }
        queue_.push_back(std::move(*e));
        cv_.notify_all();
      }
    } catch (...) {
      error = std::current_exception();
    }
    // Published after the catch block has released this thread's hold on the exception, so the
    // consumer owns it alone once it is rethrown.
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::move(error);
    done_ = true;
    cv_.notify_all();
  }

  SourcePtr keep_;
  std::unique_ptr<Iterator> in_;  // used only by the producer thread once it runs
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Example> queue_;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

class PrefetchSource final : public Source {
 public:
  PrefetchSource(SourcePtr in, std::int64_t n) : in_(std::move(in)), n_(n) {}
  std::int64_t size() const override { return in_->size(); }
  std::unique_ptr<Iterator> iterate() const override {
    return std::make_unique<PrefetchIterator>(in_, static_cast<std::size_t>(n_));
  }

 private:
  SourcePtr in_;
  std::int64_t n_;
};

// Checks that every tensor has a dimension 0 and that all agree on it.
void check_rows_agree(const std::vector<Tensor>& tensors, const char* who) {
  SYN_CHECK(!tensors.empty(), "{}: no tensors given", who);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    SYN_CHECK(tensors[i].defined(), "{}: tensor {} is undefined", who, i);
    SYN_CHECK(tensors[i].ndim() >= 1, "{}: tensor {} is a scalar (shape []): it has no rows to slice", who, i);
    SYN_CHECK(tensors[i].dim(0) == tensors[0].dim(0),
              "{}: tensors disagree on dimension 0: tensor 0 has shape {} ({} rows), tensor {} has shape {} ({} rows)",
              who, to_string(tensors[0].shape()), tensors[0].dim(0), i, to_string(tensors[i].shape()),
              tensors[i].dim(0));
  }
}

}  // namespace

// ---- Dataset ----

Dataset::Dataset(std::shared_ptr<const Source> source) : source_(std::move(source)) {
  SYN_CHECK(source_ != nullptr, "Dataset: null source");
}

const std::shared_ptr<const Source>& Dataset::checked() const {
  SYN_CHECK(source_ != nullptr, "Dataset: use of an empty (default-constructed) dataset");
  return source_;
}

std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  SYN_CHECK(n >= 0, "permutation: n must not be negative, got {}", n);
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  Generator g(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(g.next_u64() % static_cast<std::uint64_t>(i + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

Dataset Dataset::from_tensors(const std::vector<Tensor>& tensors) {
  check_rows_agree(tensors, "from_tensors");
  std::vector<Tensor> detached;
  for (const Tensor& t : tensors) detached.push_back(t.detach());
  return Dataset(std::make_shared<TensorSource>(std::move(detached)));
}

Dataset Dataset::from_function(std::int64_t size, std::function<Example(std::int64_t)> fn) {
  SYN_CHECK(size >= 0, "from_function: size must be >= 0, got {}", size);
  SYN_CHECK(fn != nullptr, "from_function: empty function");
  return Dataset(std::make_shared<FunctionSource>(size, std::move(fn)));
}

Dataset Dataset::shuffle(std::int64_t buffer_size, std::uint64_t seed, bool reshuffle_each_epoch) const {
  SYN_CHECK(buffer_size >= 1, "shuffle: buffer_size must be >= 1, got {}", buffer_size);
  return Dataset(std::make_shared<ShuffleSource>(checked(), buffer_size, seed, reshuffle_each_epoch));
}

Dataset Dataset::batch(std::int64_t size, bool drop_remainder) const {
  SYN_CHECK(size >= 1, "batch: size must be >= 1, got {}", size);
  return Dataset(std::make_shared<BatchSource>(checked(), size, drop_remainder));
}

Dataset Dataset::repeat(std::int64_t count) const {
  SYN_CHECK(count >= -1, "repeat: count must be >= 0 or -1 (forever), got {}", count);
  return Dataset(std::make_shared<RepeatSource>(checked(), count));
}

Dataset Dataset::map(std::function<Example(Example)> fn) const {
  SYN_CHECK(fn != nullptr, "map: empty function");
  return Dataset(std::make_shared<MapSource>(checked(), std::move(fn)));
}

Dataset Dataset::take(std::int64_t n) const {
  SYN_CHECK(n >= 0, "take: n must be >= 0, got {}", n);
  return Dataset(std::make_shared<TakeSource>(checked(), n));
}

Dataset Dataset::skip(std::int64_t n) const {
  SYN_CHECK(n >= 0, "skip: n must be >= 0, got {}", n);
  return Dataset(std::make_shared<SkipSource>(checked(), n));
}

Dataset Dataset::prefetch(std::int64_t n) const {
  SYN_CHECK(n >= 1, "prefetch: n must be >= 1, got {}", n);
  return Dataset(std::make_shared<PrefetchSource>(checked(), n));
}

std::unique_ptr<Iterator> Dataset::iterate() const {
  // Keeps the outermost Source alive for as long as the iterator runs.
  struct KeepAlive final : Iterator {
    std::shared_ptr<const Source> source;
    std::unique_ptr<Iterator> it;
    KeepAlive(std::shared_ptr<const Source> s, std::unique_ptr<Iterator> i) : source(std::move(s)), it(std::move(i)) {}
    std::optional<Example> next() override { return it->next(); }
  };
  std::unique_ptr<Iterator> it = checked()->iterate();
  SYN_CHECK(it != nullptr, "Dataset::iterate: the source returned no iterator");
  return std::make_unique<KeepAlive>(source_, std::move(it));
}

Dataset::iterator::iterator(std::shared_ptr<Iterator> it) : it_(std::move(it)) {
  current_ = it_->next();
  if (!current_) it_.reset();
}

Dataset::iterator& Dataset::iterator::operator++() {
  current_ = it_ ? it_->next() : std::nullopt;
  if (!current_) it_.reset();  // ends the pass (joins a prefetch thread)
  return *this;
}

// ---- helpers ----

std::pair<std::vector<Tensor>, std::vector<Tensor>> split(const std::vector<Tensor>& tensors, std::int64_t n_first) {
  check_rows_agree(tensors, "split");
  const std::int64_t n = tensors[0].dim(0);
  SYN_CHECK(n_first >= 0 && n_first <= n, "split: n_first {} is out of range [0, {}] for tensors of shape {}", n_first,
            n, to_string(tensors[0].shape()));
  std::pair<std::vector<Tensor>, std::vector<Tensor>> out;
  for (const Tensor& t : tensors) {
    out.first.push_back(internal::rows_view(t, 0, n_first));
    out.second.push_back(internal::rows_view(t, n_first, n));
  }
  return out;
}

Tensor stack_rows(const std::vector<Tensor>& rows) {
  SYN_CHECK(!rows.empty(), "stack_rows: no tensors given");
  std::vector<const Tensor*> ptrs;
  ptrs.reserve(rows.size());
  for (const Tensor& r : rows) ptrs.push_back(&r);
  return stack(ptrs, "stack_rows", "tensor");
}

}  // namespace synapse::data
