// Data-parallel training over MPI, the way Horovod and PyTorch DDP do it: every rank (process) holds
// a full copy of the model, reads its own shard of each epoch's shuffled examples, and the ranks
// average their gradients before every optimizer step, so they all take the same step.
//
//   int main(int argc, char** argv) {
//     dist::init(argc, argv);                        // started by `mpirun -np N`: N ranks; else 1
//     auto model = ...; model->build_for(...);
//     optim::Adam adam(model->named_trainable_parameters());
//     dist::broadcast_parameters(*model);            // everyone starts from rank 0's weights
//     dist::DistributedOptimizer opt(adam);          // averages gradients while backward runs
//     for (each batch of dist::shard(dataset)) { loss.backward(); opt.step(); opt.zero_grad(); }
//     dist::finalize();
//   }
//
// train::fit and `synapse train` do all of this by themselves when size() > 1 (see train.h).
//
// Built with MPI when CMake finds it (-DSYNAPSE_WITH_MPI=ON, the default then; SYNAPSE_HAS_MPI is
// defined); without it the same API works on one process: size() 1, rank() 0, every collective the
// identity.
//
// Failures never hang: every collective is non-blocking underneath and waited for with a deadline of
// SYNAPSE_DIST_TIMEOUT seconds (default 60); a rank that does not take part in time (it died, hung or
// left the training loop) makes the others throw an Error that says so. Programs then call
// dist::abort() (the synapse command does), which ends every rank of the job.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "synapse/data.h"
#include "synapse/nn.h"
#include "synapse/optim.h"
#include "synapse/tensor.h"

namespace synapse::dist {

// ---- the process group ----
// Was Synapse built with MPI?
bool available();
// Was this process started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE; PMI_SIZE for others)?
bool launched_by_mpirun();
// Initialises MPI when launched by mpirun (else nothing: one rank). Idempotent; argc/argv are passed to
// MPI_Init_thread, which may remove its own arguments. Errors (MPI's) are returned, not fatal: they
// become Errors naming the call.
void init(int& argc, char**& argv);
void init();
// True once init() has started MPI (false on one process without mpirun, and after finalize()).
bool initialized();
int rank();  // 0 .. size() - 1; 0 without MPI
int size();  // number of ranks; 1 without MPI
inline bool is_root() { return rank() == 0; }
// Ends MPI (once; later calls do nothing). Call it when every rank is done.
void finalize();
// Ends every rank of the job at once (MPI_Abort) with `code`; the way out after an Error, since
// finalize() would wait for ranks that may never come. Without MPI: std::exit(code).
[[noreturn]] void abort(int code = 1);
// The deadline of every collective, in seconds: SYNAPSE_DIST_TIMEOUT, default 60. Throws naming the
// variable when it is not a number > 0.
double timeout_seconds();

// ---- collectives (every rank must call them in the same order) ----
enum class ReduceOp { Sum, Average };
// Element-wise sum (or sum / size()) over the ranks of a float32, int32 or int64 tensor, in place in
// its storage. Average on integers rounds toward zero. Every rank passes the same shape.
void allreduce_(Tensor& t, ReduceOp op = ReduceOp::Average);
// The same, on a copy.
Tensor allreduce(const Tensor& t, ReduceOp op = ReduceOp::Average);
// The same on raw arrays of `n` elements, float64 included (metrics, counts); in place.
void allreduce(float* data, std::int64_t n, ReduceOp op = ReduceOp::Sum);
void allreduce(double* data, std::int64_t n, ReduceOp op = ReduceOp::Sum);
void allreduce(std::int32_t* data, std::int64_t n, ReduceOp op = ReduceOp::Sum);
void allreduce(std::int64_t* data, std::int64_t n, ReduceOp op = ReduceOp::Sum);
std::vector<double> allreduce(std::vector<double> values, ReduceOp op = ReduceOp::Sum);
// Copies root's values into every rank's tensor, in place (same shape and dtype everywhere).
void broadcast_(Tensor& t, int root = 0);
std::int64_t broadcast(std::int64_t value, int root = 0);
// Waits until every rank has arrived.
void barrier();
// Every rank's string, in rank order.
std::vector<std::string> allgather(const std::string& value);

// ---- model and optimizer state ----
// Checks that every rank has the same tensor names and shapes (a hash of "name shape" lines,
// allgathered). On a mismatch EVERY rank throws an Error naming `what`, the first differing entry and
// each rank's shape (or that a rank lacks it). Never hangs on a mismatch.
void check_agreement(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& what = "model");
// check_agreement over the module's state (parameters and buffers), then rank root's values copied into
// every rank's: all ranks start from the same weights.
void broadcast_parameters(nn::Module& model, int root = 0);
// The same for an optimizer: its slots (created if needed), its step count and learning rate.
void broadcast_optimizer_state(optim::Optimizer& opt, int root = 0);

// ---- sharded data ----
// Rank `index` of `num_shards` keeps the examples at positions index, index + num_shards, ... of each
// pass over `ds` (a pass over a shuffled dataset: its shuffled order, which is the same on every rank
// when every rank uses the same seed). Every shard gets size() / num_shards examples: the last
// size() % num_shards examples of each pass are dropped (with shuffling, different ones each epoch).
// The dataset's size must be known.
data::Dataset shard(const data::Dataset& ds, int num_shards = size(), int index = rank());

// ---- the optimizer wrapper ----
struct DistributedOptions {
  // Gradients are averaged in buckets of about this many bytes, filled in reverse parameter order
  // (the order backward produces them); each bucket's MPI_Iallreduce starts as soon as its last
  // gradient is final, while backward still runs.
  std::int64_t bucket_bytes = 4 << 20;
  // false: every bucket is reduced at step() (no overlap with backward; for measurements).
  bool overlap = true;
};

// Communication statistics, summed since construction (or reset_stats()).
struct DistributedStats {
  std::int64_t steps = 0;
  std::int64_t bytes = 0;           // gradient bytes reduced by this rank
  double wait_seconds = 0;          // blocked in step()/apply_gradients() waiting for reductions
  double launch_seconds = 0;        // packing buckets and starting reductions (inside backward)
};

// Wraps any optimizer: step() averages the parameters' gradients over the ranks, then runs the
// wrapped optimizer's step. Gradients whose backward hook fired were already in flight; the others
// (and parameters without a gradient, which count as zero so every rank reduces the same buckets)
// are reduced at step(). Start from the same weights (broadcast_parameters) and the same optimizer
// state: then every rank keeps identical weights. One backward per step (a second backward before
// step() makes the buckets it touches reduce again, correctly but without overlap).
class DistributedOptimizer {
 public:
  explicit DistributedOptimizer(optim::Optimizer& inner, DistributedOptions o = {});
  ~DistributedOptimizer();
  DistributedOptimizer(const DistributedOptimizer&) = delete;
  DistributedOptimizer& operator=(const DistributedOptimizer&) = delete;

  // Waits for every bucket and replaces each parameter's .grad() by the average over the ranks.
  void synchronize();
  // synchronize(), then the wrapped optimizer's step().
  void step();
  // Graph mode and explicit gradients: averages `grads` (one per parameter, undefined = zero) over the
  // ranks, then the wrapped optimizer's apply_gradients().
  void apply_gradients(const std::vector<Tensor>& grads);
  void zero_grad() { inner_.zero_grad(); }

  optim::Optimizer& optimizer() { return inner_; }
  const optim::NamedTensors& params() const { return inner_.params(); }
  std::int64_t iterations() const { return inner_.iterations(); }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  const DistributedStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct Bucket {
    std::vector<std::size_t> params;  // indices into params(), in reverse order
    std::vector<std::int64_t> offsets;
    Tensor buffer;                    // float32, the packed gradients
    int ready = 0;                    // gradients final in this backward
    int request = -1;                 // in-flight reduction, or -1
    bool dirty = false;               // a gradient changed after the bucket was sent
  };
  void on_grad_ready(const Tensor& leaf);
  void launch_ready_buckets();
  void launch(Bucket& b, const std::vector<Tensor>* grads);
  void finish(Bucket& b, std::vector<Tensor>* grads);

  optim::Optimizer& inner_;
  DistributedOptions o_;
  std::vector<Bucket> buckets_;
  std::map<const void*, std::pair<int, bool>> where_;  // parameter impl -> (bucket, ready this step)
  std::size_t next_launch_ = 0;                        // buckets start strictly in order on every rank
  int hook_ = 0;
  DistributedStats stats_;
};

// tf.train.Optimizer.minimize (optim::minimize) for graph mode: the gradients of `loss` averaged over
// the ranks before the wrapped optimizer applies them, when the returned host op runs in a Session.
graph::Op minimize(DistributedOptimizer& opt, const Tensor& loss, const std::string& name = "train");

}  // namespace synapse::dist
