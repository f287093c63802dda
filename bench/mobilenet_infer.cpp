// mobilenet_infer: inference time of the imported Keras MobileNetV2 (data/nsfwjs, scripts/fetch-data
// nsfwjs), 224x224, batch 1 and 8, interleaved in one process:
//   - with the batch normalisations as they are, and folded into the convolutions (Model::fold_batch_norm);
//   - the time inside the depthwise_conv2d kernels (synapse::Profiler) on the active kernel path and on
//     the generic one (the plain loops the depthwise op had before its per-ISA kernels), and the whole
//     forward pass with the generic path's depthwise time in place of the active path's.
//
//   mobilenet_infer [MODEL_JSON] [--rounds 5]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/isa.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {

struct Timing {
  double total = 0, depthwise = 0;  // seconds per forward pass
};

// Keeps the output alive and read, so the pass is not optimised away.
void sink(const Tensor& y) {
  volatile float v = y.data<float>()[0];
  (void)v;
}

Timing time_forward(nn::Module& model, const Tensor& x, int reps) {
  NoGradGuard no_grad;
  sink(model(x));  // warm-up: buffers, caches
  Profiler prof;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) sink(model(x));
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  prof.stop();
  Timing t{total / reps, 0};
  for (const auto& op : prof.ops())
    if (op.op == "depthwise_conv2d") t.depthwise = op.seconds / reps;
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "data/nsfwjs/mobilenet_v2/model.json";
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = std::max(1, std::atoi(argv[++i]));
    else
      path = argv[i];
  }
  try {
    keras::Imported m = keras::load_tfjs(path);
    m.model->eval();
    auto folded = m.model->fold_batch_norm();
    folded->eval();
    const cpu::Isa best = cpu::active_isa();
    fmt::print("MobileNetV2 {} on {} ({} threads), kernel path {}; medians of {} rounds\n", path, cpu::cpu_info().model,
               num_threads(), cpu::isa_name(best), rounds);
    for (std::int64_t batch : {1, 8}) {
      Generator gen(1);
      const Tensor x = random_uniform({batch, 224, 224, 3}, 0.0f, 1.0f, &gen);
      const int reps = batch == 1 ? 4 : 1;
      std::vector<double> plain, fold, dw_best, dw_generic;
      for (int r = 0; r < rounds; ++r) {
        cpu::set_isa(best);
        plain.push_back(time_forward(*m.model, x, reps).total);
        const Timing f = time_forward(*folded, x, reps);
        fold.push_back(f.total);
        dw_best.push_back(f.depthwise);
        cpu::set_isa(cpu::Isa::generic);
        dw_generic.push_back(time_forward(*folded, x, reps).depthwise);
      }
      cpu::set_isa(best);
      const double f = median(fold), db = median(dw_best), dg = median(dw_generic);
      fmt::print("batch {}: {:.1f} ms unfolded, {:.1f} ms batch norm folded; depthwise kernels {:.1f} ms ({}) vs "
                 "{:.1f} ms (generic): the folded pass with the generic depthwise would take {:.1f} ms\n",
                 batch, 1e3 * median(plain), 1e3 * f, 1e3 * db, cpu::isa_name(best), 1e3 * dg, 1e3 * (f - db + dg));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "mobilenet_infer: {}\n", e.what());
    return 1;
  }
  return 0;
}
