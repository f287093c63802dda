// The process group, collectives on tensors, model agreement, state broadcast and data sharding
// (dist.h), over the transport of comm.h.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "core/check.h"
#include "dist/comm.h"
#include "synapse/dist.h"

namespace synapse::dist {

bool available() { return comm::available(); }

bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (const char* v = std::getenv(var); v && *v) return true;
  return false;
}

void init(int& argc, char**& argv) { comm::init(&argc, &argv); }
void init() { comm::init(nullptr, nullptr); }
bool initialized() { return comm::active(); }
int rank() { return comm::rank(); }
int size() { return comm::size(); }
void finalize() { comm::finalize(); }
void abort(int code) { comm::abort(code); }

double timeout_seconds() {
  const char* v = std::getenv("SYNAPSE_DIST_TIMEOUT");
  if (!v || !*v) return 60.0;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  SYN_CHECK(end != v && *end == '\0' && s > 0 && s < 1e9,
            "SYNAPSE_DIST_TIMEOUT='{}': expected a number of seconds > 0 (the deadline of every collective)", v);
  return s;
}

// ---- collectives ----

namespace {

template <class T> constexpr comm::Elem elem_of() {
  if constexpr (std::is_same_v<T, float>) return comm::Elem::F32;
  if constexpr (std::is_same_v<T, double>) return comm::Elem::F64;
  if constexpr (std::is_same_v<T, std::int32_t>) return comm::Elem::I32;
  return comm::Elem::I64;
}
template <class T> constexpr const char* elem_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  if constexpr (std::is_same_v<T, std::int32_t>) return "int32";
  return "int64";
}

// Sums over the ranks in place, then divides for an average (integers round toward zero).
template <class T> void reduce(T* data, std::int64_t n, ReduceOp op, const std::string& what) {
  const int ranks = size();
  if (ranks == 1 || n == 0) return;
  comm::wait(comm::iallreduce_sum(data, n, elem_of<T>()), what);
  if (op != ReduceOp::Average) return;
  if constexpr (std::is_same_v<T, float>) {
    const float inv = 1.0f / static_cast<float>(ranks);
    for (std::int64_t i = 0; i < n; ++i) data[i] *= inv;
  } else {
    for (std::int64_t i = 0; i < n; ++i) data[i] /= static_cast<T>(ranks);
  }
}

template <class T> void reduce_raw(T* data, std::int64_t n, ReduceOp op) {
  SYN_CHECK(n >= 0 && (data != nullptr || n == 0), "dist::allreduce: {} elements at {}", n, static_cast<void*>(data));
  reduce(data, n, op, fmt::format("allreduce of {} {} values", n, elem_name<T>()));
}

}  // namespace

void allreduce_(Tensor& t, ReduceOp op) {
  SYN_CHECK(t.defined(), "dist::allreduce: undefined tensor");
  const DType dt = t.dtype();
  const std::string what = fmt::format("allreduce of {} {}{}", dtype_name(dt), to_string(t.shape()),
                                       t.name().empty() ? "" : " '" + t.name() + "'");
  switch (dt) {
    case DType::Float32: return reduce(t.data<float>(), t.numel(), op, what);
    case DType::Int32: return reduce(t.data<std::int32_t>(), t.numel(), op, what);
    case DType::Int64: return reduce(t.data<std::int64_t>(), t.numel(), op, what);
    default: break;
  }
  detail::fail("dist::allreduce: tensor{} is {}; supported: float32, int32, int64 (float64 arrays: the raw overload)",
               t.name().empty() ? "" : " '" + t.name() + "'", dtype_name(dt));
}

void allreduce(float* data, std::int64_t n, ReduceOp op) { reduce_raw(data, n, op); }
void allreduce(double* data, std::int64_t n, ReduceOp op) { reduce_raw(data, n, op); }
void allreduce(std::int32_t* data, std::int64_t n, ReduceOp op) { reduce_raw(data, n, op); }
void allreduce(std::int64_t* data, std::int64_t n, ReduceOp op) { reduce_raw(data, n, op); }

Tensor allreduce(const Tensor& t, ReduceOp op) {
  Tensor out = t.clone();
  allreduce_(out, op);
  return out;
}

std::vector<double> allreduce(std::vector<double> values, ReduceOp op) {
  allreduce(values.data(), static_cast<std::int64_t>(values.size()), op);
  return values;
}

void broadcast_(Tensor& t, int root) {
  SYN_CHECK(t.defined(), "dist::broadcast: undefined tensor");
  if (size() == 1) return;
  comm::wait(comm::ibroadcast(t.raw_data(), static_cast<std::int64_t>(t.nbytes()), root),
             fmt::format("broadcast of {} {}{} from rank {}", dtype_name(t.dtype()), to_string(t.shape()),
                         t.name().empty() ? "" : " '" + t.name() + "'", root));
}

std::int64_t broadcast(std::int64_t value, int root) {
  if (size() == 1) return value;
  comm::wait(comm::ibroadcast(&value, sizeof value, root), fmt::format("broadcast of a number from rank {}", root));
  return value;
}

void barrier() {
  if (size() == 1) return;
  comm::wait(comm::ibarrier(), "barrier");
}

std::vector<std::string> allgather(const std::string& value) {
  const int n = size();
  if (n == 1) return {value};
  std::int64_t len = static_cast<std::int64_t>(value.size());
  std::vector<std::int64_t> lens(static_cast<std::size_t>(n));
  comm::wait(comm::iallgather(&len, sizeof len, lens.data()), "allgather of string lengths");
  const std::int64_t width = *std::max_element(lens.begin(), lens.end());
  std::string padded = value;
  padded.resize(static_cast<std::size_t>(width));
  std::string all(static_cast<std::size_t>(width * n), '\0');
  comm::wait(comm::iallgather(padded.data(), width, all.data()), "allgather of strings");
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r)
    out.push_back(all.substr(static_cast<std::size_t>(r * width), static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

// ---- model agreement and state broadcast ----
namespace {

// One line per tensor: "name dtype [shape]".
std::vector<std::string> describe(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::vector<std::string> lines;
  for (const auto& [name, t] : tensors)
    lines.push_back(fmt::format("{}\t{} {}", name, dtype_name(t.dtype()), to_string(t.shape())));
  return lines;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    const std::size_t end = s.find('\n', start);
    out.push_back(s.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string entry_name(const std::string& line) { return line.substr(0, line.find('\t')); }
std::string entry_kind(const std::string& line) {
  const auto tab = line.find('\t');
  return tab == std::string::npos ? "" : line.substr(tab + 1);
}

}  // namespace

void check_agreement(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& what) {
  const int n = size();
  if (n == 1) return;
  std::string mine;
  for (const auto& line : describe(tensors)) mine += line + "\n";
  // First the hashes (8 bytes per rank); the full descriptions only when they differ.
  std::uint64_t h = fnv1a(mine);
  std::vector<std::uint64_t> hashes(static_cast<std::size_t>(n));
  comm::wait(comm::iallgather(&h, sizeof h, hashes.data()), "allgather of the " + what + " hashes");
  if (std::all_of(hashes.begin(), hashes.end(), [&](std::uint64_t x) { return x == hashes[0]; })) return;
  const std::vector<std::string> all = allgather(mine);
  const std::vector<std::string> ref = split_lines(all[0]);
  for (int r = 1; r < n; ++r) {
    const std::vector<std::string> other = split_lines(all[static_cast<std::size_t>(r)]);
    if (other == ref) continue;
    std::size_t i = 0;
    while (i < ref.size() && i < other.size() && ref[i] == other[i]) ++i;
    if (i < ref.size() && i < other.size() && entry_name(ref[i]) == entry_name(other[i]))
      detail::fail("dist: the ranks disagree on the {}: '{}' is {} on rank 0 but {} on rank {} (entry {} of {})", what,
                   entry_name(ref[i]), entry_kind(ref[i]), entry_kind(other[i]), r, i + 1, ref.size());
    if (i < ref.size() && i < other.size())
      detail::fail("dist: the ranks disagree on the {}: entry {} is '{}' ({}) on rank 0 but '{}' ({}) on rank {}", what,
                   i + 1, entry_name(ref[i]), entry_kind(ref[i]), entry_name(other[i]), entry_kind(other[i]), r);
    if (i < ref.size())
      detail::fail("dist: the ranks disagree on the {}: rank 0 has {} entries, rank {} has {}; rank {} lacks '{}' ({})",
                   what, ref.size(), r, other.size(), r, entry_name(ref[i]), entry_kind(ref[i]));
    detail::fail("dist: the ranks disagree on the {}: rank 0 has {} entries, rank {} has {}; rank 0 lacks '{}' ({})", what,
                 ref.size(), r, other.size(), entry_name(other[i]), entry_kind(other[i]));
  }
  detail::fail("dist: the ranks disagree on the {} (their descriptions hash differently)", what);
}

void broadcast_parameters(nn::Module& model, int root) {
  if (size() == 1) return;
  const std::map<std::string, Tensor> state = model.state_dict();
  const std::vector<std::pair<std::string, Tensor>> tensors(state.begin(), state.end());
  check_agreement(tensors, "model");
  for (auto [name, t] : tensors) broadcast_(t, root);
}

void broadcast_optimizer_state(optim::Optimizer& opt, int root) {
  if (size() == 1) return;
  std::map<std::string, Tensor> state = opt.state_dict();  // slots are live handles, the rest copies
  const std::vector<std::pair<std::string, Tensor>> tensors(state.begin(), state.end());
  check_agreement(tensors, opt.type() + " optimizer state");
  for (auto [name, t] : tensors) broadcast_(t, root);
  std::map<std::string, Tensor> scalars{{"iterations", state.at("iterations")}, {"learning_rate", state.at("learning_rate")}};
  opt.load_state_dict(scalars, false);
}

// ---- sharded data ----
namespace {

class ShardSource final : public data::Source {
 public:
  ShardSource(std::shared_ptr<const data::Source> in, int shards, int index, std::int64_t per_shard)
      : in_(std::move(in)), shards_(shards), index_(index), per_shard_(per_shard) {}
  std::int64_t size() const override { return per_shard_; }
  std::unique_ptr<data::Iterator> iterate() const override {
    struct It final : data::Iterator {
      std::shared_ptr<const data::Source> keep;
      std::unique_ptr<data::Iterator> in;
      int shards, index;
      std::int64_t left;
      It(std::shared_ptr<const data::Source> k, int s, int i, std::int64_t n)
          : keep(std::move(k)), in(keep->iterate()), shards(s), index(i), left(n) {}
      std::optional<data::Example> next() override {
        if (left <= 0) return std::nullopt;
        // Positions index, index + shards, ...: of each group of `shards` examples, keep number `index`.
        std::optional<data::Example> e;
        for (int k = 0; k < shards; ++k) {
          std::optional<data::Example> x = in->next();
          SYN_CHECK(x.has_value(), "dist::shard: the dataset ended early (fewer examples than its size)");
          if (k == index) e = std::move(x);
        }
        --left;
        return e;
      }
    };
    return std::make_unique<It>(in_, shards_, index_, per_shard_);
  }

 private:
  std::shared_ptr<const data::Source> in_;
  int shards_, index_;
  std::int64_t per_shard_;
};

}  // namespace

data::Dataset shard(const data::Dataset& ds, int num_shards, int index) {
  SYN_CHECK(num_shards >= 1 && index >= 0 && index < num_shards, "dist::shard: shard {} of {} does not exist", index,
            num_shards);
  const std::int64_t n = ds.size();
  SYN_CHECK(n >= 0, "dist::shard: the dataset's size must be known (it is {})", n == data::Dataset::kInfinite ? "infinite" : "unknown");
  SYN_CHECK(n >= num_shards, "dist::shard: {} examples cannot give each of {} ranks one", n, num_shards);
  if (num_shards == 1) return ds;
  return data::Dataset(std::make_shared<ShardSource>(ds.source(), num_shards, index, n / num_shards));
}

}  // namespace synapse::dist
