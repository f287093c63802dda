// dist_scaling: data-parallel training throughput over MPI ranks (dist.h), one JSON line from rank 0.
//
//   mpirun --oversubscribe -np 2 dist_scaling --model cnn --threads 1 --batch 50 --warmup 5 --steps 40
//
// Each rank trains the zoo model on its own synthetic MNIST-shaped batches (random images, random
// labels: the arithmetic of real data, without reading files), with the recipe's optimizer wrapped in
// a dist::DistributedOptimizer, in the Trainer's order: forward, loss, backward (buckets start during
// it), step. Printed:
//   images_per_s        global images (ranks x batch) per second over --steps steps after --warmup
//   ms_per_step         wall time of one step
//   comm_wait_ms        per step, rank 0's time blocked in step() waiting for the averaged gradients
//   comm_pack_ms        per step, packing buckets and starting the reductions (inside backward)
//   param_bytes         the float32 bytes of the gradients averaged per step
//   ring_bytes_per_rank 2 (N - 1) / N x param_bytes: what a ring allreduce sends and receives per rank
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>

#include "synapse/synapse.h"

using namespace synapse;

int main(int argc, char** argv) {
  dist::init(argc, argv);
  std::string model_name = "cnn";
  int threads = 1, batch = 50, warmup = 5, steps = 40;
  bool no_overlap = false;
  CLI::App app{"Data-parallel training throughput over MPI ranks"};
  app.add_option("--model", model_name, "Zoo model")->capture_default_str();
  app.add_option("--threads", threads, "Threads per rank")->capture_default_str();
  app.add_option("--batch", batch, "Batch per rank")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps")->capture_default_str();
  app.add_option("--steps", steps, "Timed steps")->capture_default_str();
  app.add_flag("--no-overlap", no_overlap, "Reduce every bucket at step() instead of during backward");
  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
    const zoo::Recipe& r = zoo::recipe(model_name);
    manual_seed(1);
    nn::ModulePtr model = r.build();
    model->build_for({1, 28, 28, 1});
    auto inner = optim::make_optimizer(r.optimizer, model->named_trainable_parameters(), r.learning_rate);
    dist::broadcast_parameters(*model);
    dist::DistributedOptimizer opt(*inner, {.overlap = !no_overlap});
    Generator gen(100 + static_cast<std::uint64_t>(dist::rank()));
    const Tensor x = random_uniform({batch, 28, 28, 1}, 0.0f, 1.0f, &gen);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>((i * 7 + static_cast<std::size_t>(dist::rank())) % 10);
    const Tensor y = from_vector(labels);
    const auto loss_fn = train::losses::sparse_categorical_crossentropy();
    model->train();
    auto one_step = [&] {
      Tensor loss = loss_fn((*model)(x), y);
      loss.backward();
      opt.step();
      opt.zero_grad();
    };
    for (int i = 0; i < warmup; ++i) one_step();
    dist::barrier();
    opt.reset_stats();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) one_step();
    dist::barrier();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::int64_t param_bytes = 0;
    for (const auto& [n, p] : model->named_trainable_parameters()) param_bytes += static_cast<std::int64_t>(p.nbytes());
    const int n = dist::size();
    if (dist::is_root())
      fmt::print("{{\"model\": \"{}\", \"ranks\": {}, \"threads\": {}, \"batch_per_rank\": {}, \"steps\": {}, "
                 "\"overlap\": {}, \"images_per_s\": {:.1f}, \"ms_per_step\": {:.2f}, \"comm_wait_ms\": {:.3f}, "
                 "\"comm_pack_ms\": {:.3f}, \"buckets\": {}, \"param_bytes\": {}, \"ring_bytes_per_rank\": {:.0f}}}\n",
                 model_name, n, threads, batch, steps, !no_overlap, static_cast<double>(n) * batch * steps / s,
                 1e3 * s / steps, 1e3 * opt.stats().wait_seconds / steps, 1e3 * opt.stats().launch_seconds / steps,
                 opt.num_buckets(), param_bytes, 2.0 * (n - 1) / n * static_cast<double>(param_bytes));
  } catch (const std::exception& e) {
    fmt::print(stderr, "dist_scaling: error on rank {}: {}\n", dist::rank(), e.what());
    dist::abort(1);
  }
  dist::finalize();
  return 0;
}
