// micro_bench: the kernels behind the zoo models, in GFLOP/s next to this machine's measured FP32 peak.
//
//   micro_bench [--benchmark_filter=conv] [--benchmark_format=json]
//   micro_bench --benchmark_filter=depthwise     (MobileNetV2's depthwise layers; bench/torch_depthwise.py)
//
// The peak is measured, not read from /proc/cpuinfo: a loop of independent FMAs (16 accumulators,
// so latency never limits, on one or two FMA pipes) on one core and on every core, for 512-bit and
// 256-bit vectors where the CPU has them (synapse::peak_gflops_per_core, src/core/peak.cpp). Each kernel benchmark takes its thread count as its argument (set_num_threads)
// and reports GFLOP/s and "pct_peak" = GFLOP/s / (the best per-core peak x threads).
// Kernels are called through the public op registry (synapse::apply1 with the op's name), the path
// every layer takes, so the numbers include the dispatcher's shape checks and output allocation.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <thread>
#include <vector>

#include "backend/cpu/isa.h"
#include "synapse/synapse.h"

using namespace synapse;

namespace {

double g_peak_core = 0;  // FLOP/s of one core, the best vector width (set in main before the benchmarks)

// The library's FMA-chain loop (synapse::measure_fma_gflops, src/core/peak.cpp) on `threads` threads.
template <int Bits>
void BM_PeakFMA(benchmark::State& state) {
  if (!cpu_has_fma_width(Bits)) {
    state.SkipWithError("this CPU has no FMA on such vectors");
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  const std::int64_t iters = 2000000;  // ~10 ms per thread: thread start-up is noise
  double gflops = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    gflops = measure_fma_gflops(Bits, threads, iters);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["GFLOPS"] = gflops;
}

// The bf16 peak: the FMA loop's chains with AVX512-BF16's vdpbf16ps (16 lanes x 2 products = 64 FLOP per
// instruction, twice an fp32 FMA's; measure_bf16_gflops, src/core/peak.cpp), on one thread, timed in
// alternation with the fp32 FMA loop so that "ratio" (bf16 GFLOP/s / fp32 GFLOP/s) compares the two at
// the same clock.
void BM_PeakBf16(benchmark::State& state) {
  if (!cpu_supports_bf16()) {
    state.SkipWithError("this CPU lacks AVX512-BF16");
    return;
  }
  const std::int64_t iters = 2000000;
  double bf16 = 0, fp32 = 0;
  for (auto _ : state) {
    const double gflops = measure_bf16_gflops(iters);
    bf16 = std::max(bf16, gflops);
    fp32 = std::max(fp32, measure_fma_gflops(512, 1, iters));
    state.SetIterationTime(16.0 * 64.0 * static_cast<double>(iters) / (gflops * 1e9));
  }
  state.counters["GFLOPS"] = bf16;
  state.counters["fp32_GFLOPS"] = fp32;
  state.counters["ratio"] = bf16 / fp32;
}

// Reports GB/s for `bytes` moved per iteration.
void byte_counters(benchmark::State& state, double bytes) {
  state.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- roofline for streaming kernels: how fast a core reads a buffer that stays in its caches ----
// Each of `threads` threads sums its own `kb` KB buffer (aligned, 4 independent vector chains) `reps`
// times. A batch-1 dense layer reads its whole weight matrix per image, so no kernel can beat this
// rate: at 784 KB per thread it is the bound of the batch-1 mlp's 784x500 layer split over two cores.
__attribute__((noipa)) float sum_floats(const float* p, std::int64_t n) {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::int64_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  alignas(64) float v[16];
  _mm512_store_ps(v, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  float s = 0;
  for (float f : v) s += f;
  return s;
#else
  float s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += p[i];
  return s;
#endif
}
void BM_CacheRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const std::int64_t floats = state.range(1) * 1024 / 4, reps = 1000;
  for (auto _ : state) {
    std::vector<std::thread> pool;
    std::vector<double> seconds(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const Tensor buf = full({floats}, 1e-3f);  // 64-byte aligned, like every tensor
        const float* p = buf.data<float>();
        float sink = sum_floats(p, floats);  // warm: the buffer now sits in this core's caches
        const auto t0 = std::chrono::steady_clock::now();
        for (std::int64_t r = 0; r < reps; ++r) sink += sum_floats(p, floats);
        seconds[static_cast<std::size_t>(t)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        benchmark::DoNotOptimize(sink);
      });
    for (auto& th : pool) th.join();
    // The time of one read of the buffers (the slowest thread's); the benchmark is registered with a
    // fixed iteration count, as each iteration really takes `reps` reads.
    state.SetIterationTime(*std::max_element(seconds.begin(), seconds.end()) / static_cast<double>(reps));
  }
  byte_counters(state, 4.0 * static_cast<double>(floats) * threads);
}

// ---- kernels ----
// Reports GFLOP/s and the share of the measured peak for `flops` per iteration on `threads` threads.
void flop_counters(benchmark::State& state, double flops, int threads) {
  state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_peak"] =
      benchmark::Counter(100.0 * flops / (g_peak_core * threads), benchmark::Counter::kIsIterationInvariantRate);
}

int use_threads(const benchmark::State& state) {
  const int t = static_cast<int>(state.range(0));
  set_num_threads(t);
  return t;
}

Attrs conv_attrs(Padding p) {
  return Attrs()
      .set("strides", std::vector<std::int64_t>{1, 1})
      .set("dilations", std::vector<std::int64_t>{1, 1})
      .set("padding", p == Padding::Same ? "SAME" : "VALID");
}

struct ConvCase {
  const char* name;
  Shape x, w;  // NHWC input, HWIO filter; SAME padding, stride 1
};
// The cnn's two convolutions at its training batch of 50, and two of other zoo models.
const ConvCase kConvs[] = {
    {"cnn_conv2_14x14x32_to_64_5x5_b50", {50, 14, 14, 32}, {5, 5, 32, 64}},
    {"cnn_conv1_28x28x1_to_32_5x5_b50", {50, 28, 28, 1}, {5, 5, 1, 32}},
    // Few channels (LeNet-5's conv2 shape, SAME here) and 3 channels (the cifar-cnn's conv1).
    {"lenet5_conv2_14x14x6_to_16_5x5_b64", {64, 14, 14, 6}, {5, 5, 6, 16}},
    {"cifar_conv1_24x24x3_to_64_5x5_b128", {128, 24, 24, 3}, {5, 5, 3, 64}},
};
double conv_flops(const ConvCase& c) {  // 2 * output elements * patch
  return 2.0 * static_cast<double>(c.x[0] * c.x[1] * c.x[2] * c.w[3]) * static_cast<double>(c.w[0] * c.w[1] * c.w[2]);
}

void BM_ConvForward(benchmark::State& state, const ConvCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor x = random_normal(c.x), w = random_normal(c.w), b = random_normal({c.w[3]});
  const Conv2DAttrs o{.padding = Padding::Same};
  for (auto _ : state) benchmark::DoNotOptimize(conv2d(x, w, b, o));
  flop_counters(state, conv_flops(c), t);
}
void BM_ConvBackpropInput(benchmark::State& state, const ConvCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor w = random_normal(c.w), dy = random_normal({c.x[0], c.x[1], c.x[2], c.w[3]});
  const OpDef& op = op_def("conv2d_backprop_input");
  const Attrs a = conv_attrs(Padding::Same).set("input_shape", c.x);
  for (auto _ : state) benchmark::DoNotOptimize(apply1(op, {dy, w}, a));
  flop_counters(state, conv_flops(c), t);
}
void BM_ConvBackpropFilter(benchmark::State& state, const ConvCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor x = random_normal(c.x), dy = random_normal({c.x[0], c.x[1], c.x[2], c.w[3]});
  const OpDef& op = op_def("conv2d_backprop_filter");
  const Attrs a = conv_attrs(Padding::Same).set("filter_shape", c.w);
  for (auto _ : state) benchmark::DoNotOptimize(apply1(op, {x, dy}, a));
  flop_counters(state, conv_flops(c), t);
}

// MobileNetV2's depthwise 3x3 layers (SAME padding, depth multiplier 1), batch 1 and 8: GFLOP/s and
// GB/s (input, output and filter read or written once). bench/torch_depthwise.py times PyTorch on the
// same shapes. The *_generic rows run the plain kernels of the generic path (the pre-dispatch ones).
struct DepthwiseCase {
  const char* name;
  Shape x;
  std::int64_t stride;
  std::int64_t out(std::int64_t d) const { return (x[static_cast<std::size_t>(d)] + stride - 1) / stride; }
  Shape y() const { return {x[0], out(1), out(2), x[3]}; }
};
const DepthwiseCase kDepthwise[] = {
    {"mnv2_112x112x96_s2_b1", {1, 112, 112, 96}, 2}, {"mnv2_56x56x144_s1_b1", {1, 56, 56, 144}, 1},
    {"mnv2_14x14x576_s1_b1", {1, 14, 14, 576}, 1},   {"mnv2_7x7x960_s1_b1", {1, 7, 7, 960}, 1},
    {"mnv2_112x112x96_s2_b8", {8, 112, 112, 96}, 2}, {"mnv2_56x56x144_s1_b8", {8, 56, 56, 144}, 1},
    {"mnv2_14x14x576_s1_b8", {8, 14, 14, 576}, 1},   {"mnv2_7x7x960_s1_b8", {8, 7, 7, 960}, 1},
};
void depthwise_counters(benchmark::State& state, const DepthwiseCase& c, int threads) {
  const Shape y = c.y();
  flop_counters(state, 2.0 * 9.0 * static_cast<double>(y[0] * y[1] * y[2] * y[3]), threads);
  const double bytes = 4.0 * static_cast<double>(c.x[0] * c.x[1] * c.x[2] * c.x[3] + y[0] * y[1] * y[2] * y[3] + 9 * c.x[3]);
  state.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
Attrs depthwise_attrs(const DepthwiseCase& c) {
  return conv_attrs(Padding::Same).set("strides", std::vector<std::int64_t>{c.stride, c.stride});
}
void BM_DepthwiseForward(benchmark::State& state, const DepthwiseCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor x = random_normal(c.x), w = random_normal({3, 3, c.x[3], 1}), b = random_normal({c.x[3]});
  const Conv2DAttrs o{.strides = {c.stride, c.stride}, .padding = Padding::Same};
  for (auto _ : state) benchmark::DoNotOptimize(depthwise_conv2d(x, w, b, o));
  depthwise_counters(state, c, t);
}
void BM_DepthwiseBackpropInput(benchmark::State& state, const DepthwiseCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor w = random_normal({3, 3, c.x[3], 1}), dy = random_normal(c.y());
  const OpDef& op = op_def("depthwise_conv2d_backprop_input");
  const Attrs a = depthwise_attrs(c).set("input_shape", c.x);
  for (auto _ : state) benchmark::DoNotOptimize(apply1(op, {dy, w}, a));
  depthwise_counters(state, c, t);
}
void BM_DepthwiseBackpropFilter(benchmark::State& state, const DepthwiseCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor x = random_normal(c.x), dy = random_normal(c.y());
  const OpDef& op = op_def("depthwise_conv2d_backprop_filter");
  const Attrs a = depthwise_attrs(c).set("filter_shape", Shape{3, 3, c.x[3], 1});
  for (auto _ : state) benchmark::DoNotOptimize(apply1(op, {x, dy}, a));
  depthwise_counters(state, c, t);
}
// Fn on the generic kernel path (the plain loops), the active path restored afterwards.
template <auto Fn, class Case> void on_generic_path(benchmark::State& state, const Case& c) {
  const cpu::Isa saved = cpu::active_isa();
  cpu::set_isa(cpu::Isa::generic);
  Fn(state, c);
  cpu::set_isa(saved);
}

struct GemmCase {
  const char* name;
  std::int64_t m, n, k;
  bool ta, tb;
};
// The products of the zoo models' dense layers and the cnn's im2col GEMMs (training batch).
const GemmCase kGemms[] = {
    {"cnn_fc1_fwd_50x3136x1024", 50, 1024, 3136, false, false},
    {"cnn_fc1_dW_3136x50x1024", 3136, 1024, 50, true, false},
    {"cnn_fc1_dX_50x1024x3136", 50, 3136, 1024, false, true},
    {"cnn_conv2_im2col_9800x800x64", 9800, 64, 800, false, false},
    {"cnn_conv1_im2col_39200x25x32", 39200, 32, 25, false, false},
    {"mlp_fc1_fwd_100x784x500", 100, 500, 784, false, false},
    {"keras_dense_fwd_32x18928x128", 32, 128, 18928, false, false},
    // Batch-1 inference: the matrix is streamed once per image (GB/s counts its bytes). At 784x500,
    // half of it per core fits that core's 1 MB L2, so this is the L2 stream rate of both cores.
    {"mlp_fc1_b1_1x784x500", 1, 500, 784, false, false},
    {"softmax_b1_1x784x10", 1, 10, 784, false, false},
    // Batch 1 with the weights transposed (an input gradient dY W^T, or an imported Gemm with transB):
    // each output a dot product with a stored row of the matrix.
    {"mlp_fc1_dX_b1_1x500x784", 1, 784, 500, false, true},
    {"cnn_fc1_dX_b1_1x1024x3136", 1, 3136, 1024, false, true},
    {"square_1024", 1024, 1024, 1024, false, false},
    {"cnn_fc1_infer_1000x3136x1024", 1000, 1024, 3136, false, false},
};
void BM_Gemm(benchmark::State& state, const GemmCase& g) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor a = random_normal(g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k});
  const Tensor b = random_normal(g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n});
  const MatmulOptions o{.transpose_a = g.ta, .transpose_b = g.tb};
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b, o));
  flop_counters(state, 2.0 * static_cast<double>(g.m * g.n * g.k), t);
  if (g.m == 1) byte_counters(state, 4.0 * static_cast<double>(g.n * g.k));
}

// The same product with B (the weights) out of the caches, as in a training step, where the optimizer's
// update and the other layers' work pass between two uses of a layer's weights: each iteration reads
// the next of 8 copies of B (8 x 12.8 MB for the cnn's fc1: past the L2 caches and most of an L3 share).
void BM_GemmColdB(benchmark::State& state, const GemmCase& g) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const Tensor a = random_normal(g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k});
  std::vector<Tensor> bs;
  for (int i = 0; i < 8; ++i) bs.push_back(random_normal(g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n}));
  const MatmulOptions o{.transpose_a = g.ta, .transpose_b = g.tb};
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, bs[i++ % bs.size()], o));
  flop_counters(state, 2.0 * static_cast<double>(g.m * g.n * g.k), t);
}

// The same benchmark with the thread's matrix products in bf16 (device.h: bf16 operands, fp32
// accumulation). pct_peak stays relative to the fp32 FMA peak (vdpbf16ps does twice the multiply-adds).
template <auto Fn, class Case> void in_bf16(benchmark::State& state, const Case& c) {
  const MatmulPrecisionGuard bf16(MatmulPrecision::bf16);
  Fn(state, c);
}

// The batch-1 mlp's fc1 with `pct` percent of x not zero (an MNIST image: 19%): gemm reads only the
// matrix rows whose x value is not zero when at most 75% are. GB/s counts the rows read.
void BM_GemvNonzeros(benchmark::State& state) {
  use_threads(state);
  NoGradGuard no_grad;
  const std::int64_t k = 784, n = 500, pct = state.range(1);
  Tensor x = random_normal({1, k});
  const std::vector<float> u = random_uniform({k}).to_vector<float>();
  std::int64_t nonzero = 0;
  for (std::int64_t p = 0; p < k; ++p) {
    if (u[static_cast<std::size_t>(p)] * 100.0f >= static_cast<float>(pct)) {
      x.data<float>()[p] = 0.0f;
    } else {
      ++nonzero;
    }
  }
  const Tensor w = random_normal({k, n});
  for (auto _ : state) benchmark::DoNotOptimize(matmul(x, w));
  byte_counters(state, 4.0 * static_cast<double>(nonzero * n));
}

// The cnn's first pooling: [50, 28, 28, 32] -> [50, 14, 14, 32].
const Shape kPoolIn{50, 28, 28, 32};
void BM_MaxPoolForward(benchmark::State& state) {
  use_threads(state);
  NoGradGuard no_grad;
  const Tensor x = random_normal(kPoolIn);
  for (auto _ : state) benchmark::DoNotOptimize(max_pool2d(x));
  byte_counters(state, 4.0 * static_cast<double>(x.numel()) * 1.25);  // read x, write a quarter
}
void BM_MaxPoolBackward(benchmark::State& state) {
  use_threads(state);
  NoGradGuard no_grad;
  const Tensor x = random_normal(kPoolIn), dy = random_normal({50, 14, 14, 32});
  const OpDef& op = op_def("max_pool2d_grad");
  const Attrs a = Attrs()
                      .set("ksize", std::vector<std::int64_t>{2, 2})
                      .set("strides", std::vector<std::int64_t>{2, 2})
                      .set("padding", "VALID");
  for (auto _ : state) benchmark::DoNotOptimize(apply1(op, {x, dy}, a));
  byte_counters(state, 4.0 * static_cast<double>(x.numel()) * 2.25);  // read x and dy, write dx
}

// Softmax cross-entropy over the logits of a training batch: [rows, 10] with integer labels.
void BM_SoftmaxXentForward(benchmark::State& state) {
  use_threads(state);
  NoGradGuard no_grad;
  const std::int64_t rows = state.range(1);
  const Tensor logits = random_normal({rows, 10}), labels = zeros({rows}, DType::Int64);
  for (auto _ : state) benchmark::DoNotOptimize(sparse_softmax_cross_entropy(logits, labels));
  byte_counters(state, 4.0 * static_cast<double>(rows) * 12);
}
void BM_SoftmaxXentBackward(benchmark::State& state) {
  use_threads(state);
  NoGradGuard no_grad;
  const std::int64_t rows = state.range(1);
  const Tensor logits = random_normal({rows, 10}), labels = zeros({rows}, DType::Int64);
  const OpDef& op = op_def("sparse_softmax_cross_entropy_grad");
  for (auto _ : state) benchmark::DoNotOptimize(apply1(op, {logits, labels}));
  byte_counters(state, 4.0 * static_cast<double>(rows) * 22);
}

// ---- recurrent layers: one lstm op over a whole sequence, and its fused backward ----
struct LstmCase {
  const char* name;
  std::int64_t B, T, I, H;
};
// A training batch of a character model, and one generation step at batch 1 (one character).
const LstmCase kLstms[] = {{"train_b32_t20_256_to_256", 32, 20, 256, 256}, {"generate_b1_t1_256_to_512", 1, 1, 256, 512}};
double lstm_flops(const LstmCase& c) {  // the products: 2 * B*T * (I + H) * 4H
  return 2.0 * static_cast<double>(c.B * c.T) * static_cast<double>(c.I + c.H) * static_cast<double>(4 * c.H);
}
Attrs lstm_attrs() {
  return Attrs().set("activation", "tanh").set("recurrent_activation", "sigmoid").set("reverse", false);
}
// A nonzero initial state: with zeros, the batch-1 product would skip the recurrent kernel's rows.
std::vector<Tensor> lstm_inputs(const LstmCase& c) {
  return {random_normal({c.B, c.T, c.I}, 0.0f, 0.5f), random_normal({c.I, 4 * c.H}, 0.0f, 0.05f),
          random_normal({c.H, 4 * c.H}, 0.0f, 0.05f), zeros({4 * c.H}), random_normal({c.B, c.H}, 0.0f, 0.5f),
          random_normal({c.B, c.H}, 0.0f, 0.5f), full({c.B}, static_cast<double>(c.T), DType::Int64)};
}
void BM_LstmForward(benchmark::State& state, const LstmCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const std::vector<Tensor> in = lstm_inputs(c);
  const OpDef& op = op_def("lstm");
  const Attrs at = lstm_attrs();
  for (auto _ : state) benchmark::DoNotOptimize(apply(op, in, at));
  flop_counters(state, lstm_flops(c), t);
}
void BM_LstmBackward(benchmark::State& state, const LstmCase& c) {
  const int t = use_threads(state);
  NoGradGuard no_grad;
  const std::vector<Tensor> in = lstm_inputs(c);
  const Attrs at = lstm_attrs();
  const std::vector<Tensor> out = apply(op_def("lstm"), in, at);
  // x, kernel, recurrent_kernel, h0, c0, lengths, y, gates, cells, dy, dh, dc
  const std::vector<Tensor> bin{in[0], in[1], in[2], in[4], in[5], in[6], out[0], out[3], out[4],
                                random_normal({c.B, c.T, c.H}), random_normal({c.B, c.H}), random_normal({c.B, c.H})};
  const OpDef& op = op_def("lstm_grad");
  for (auto _ : state) benchmark::DoNotOptimize(apply(op, bin, at));
  flop_counters(state, 2.0 * lstm_flops(c), t);
}

int g_max_threads = 1;  // Synapse's default thread count (all cores)

// Thread counts 1, 2, 4, ... up to all cores, as the benchmark's argument; wall-clock time.
void thread_counts(benchmark::internal::Benchmark* b) {
  b->ArgName("threads");
  for (int t = 1; t <= g_max_threads; t *= 2) b->Arg(t);
  if ((g_max_threads & (g_max_threads - 1)) != 0) b->Arg(g_max_threads);
  b->Unit(benchmark::kMicrosecond);
}
void thread_args(benchmark::internal::Benchmark* b) {
  thread_counts(b);
  b->UseRealTime();
}

void register_all(int max_threads) {
  g_max_threads = max_threads;
  benchmark::RegisterBenchmark("peak_fma_avx512", BM_PeakFMA<512>)->Apply(thread_counts)->UseManualTime();
  benchmark::RegisterBenchmark("peak_fma_avx2", BM_PeakFMA<256>)->Apply(thread_counts)->UseManualTime();
  if (cpu_supports_bf16()) benchmark::RegisterBenchmark("peak_bf16_dpbf16ps", BM_PeakBf16)->UseManualTime()->Iterations(5);
  // Per thread: half of the batch-1 mlp's fc1 (784 KB), all of it (1568 KB: past one core's 1 MB
  // L2), and the softmax layer's 31 KB (L1).
  for (std::int64_t kb : {784, 1568, 31})
    for (int t = 1; t <= max_threads; t *= 2)
      benchmark::RegisterBenchmark(fmt::format("cache_read/{}KB_per_thread", kb).c_str(), BM_CacheRead)
          ->ArgNames({"threads", "kb"})->Args({t, kb})->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
  for (const auto& c : kConvs) {
    benchmark::RegisterBenchmark(fmt::format("conv_fwd/{}", c.name).c_str(), BM_ConvForward, c)->Apply(thread_args);
    benchmark::RegisterBenchmark(fmt::format("conv_bwd_input/{}", c.name).c_str(), BM_ConvBackpropInput, c)
        ->Apply(thread_args);
    benchmark::RegisterBenchmark(fmt::format("conv_bwd_filter/{}", c.name).c_str(), BM_ConvBackpropFilter, c)
        ->Apply(thread_args);
  }
  for (const auto& g : kGemms)
    benchmark::RegisterBenchmark(fmt::format("gemm/{}", g.name).c_str(), BM_Gemm, g)->Apply(thread_args);
  for (const auto& g : {kGemms[0], kGemms[2]})  // the cnn's fc1 products that read its weights
    benchmark::RegisterBenchmark(fmt::format("gemm_coldb/{}", g.name).c_str(), BM_GemmColdB, g)->Apply(thread_args);
  for (const auto& c : kDepthwise) {  // each row beside its generic-path twin (interleaved under the same load)
    benchmark::RegisterBenchmark(fmt::format("depthwise_fwd/{}", c.name).c_str(), BM_DepthwiseForward, c)
        ->Apply(thread_args);
    benchmark::RegisterBenchmark(fmt::format("depthwise_fwd_generic/{}", c.name).c_str(),
                                 on_generic_path<BM_DepthwiseForward, DepthwiseCase>, c)
        ->Apply(thread_args);
  }
  for (const auto& c : kDepthwise) {
    if (c.x[0] == 1) continue;  // the gradients at the training batch only
    benchmark::RegisterBenchmark(fmt::format("depthwise_bwd_input/{}", c.name).c_str(), BM_DepthwiseBackpropInput, c)
        ->Apply(thread_args);
    benchmark::RegisterBenchmark(fmt::format("depthwise_bwd_input_generic/{}", c.name).c_str(),
                                 on_generic_path<BM_DepthwiseBackpropInput, DepthwiseCase>, c)
        ->Apply(thread_args);
    benchmark::RegisterBenchmark(fmt::format("depthwise_bwd_filter/{}", c.name).c_str(), BM_DepthwiseBackpropFilter, c)
        ->Apply(thread_args);
    benchmark::RegisterBenchmark(fmt::format("depthwise_bwd_filter_generic/{}", c.name).c_str(),
                                 on_generic_path<BM_DepthwiseBackpropFilter, DepthwiseCase>, c)
        ->Apply(thread_args);
  }
  if (cpu_supports_bf16()) {  // bf16 rows of the cnn's products, beside the fp32 ones above
    for (const auto& c : kConvs) {
      benchmark::RegisterBenchmark(fmt::format("conv_fwd_bf16/{}", c.name).c_str(), in_bf16<BM_ConvForward, ConvCase>, c)
          ->Apply(thread_args);
      benchmark::RegisterBenchmark(fmt::format("conv_bwd_input_bf16/{}", c.name).c_str(),
                                   in_bf16<BM_ConvBackpropInput, ConvCase>, c)
          ->Apply(thread_args);
      benchmark::RegisterBenchmark(fmt::format("conv_bwd_filter_bf16/{}", c.name).c_str(),
                                   in_bf16<BM_ConvBackpropFilter, ConvCase>, c)
          ->Apply(thread_args);
    }
    for (const auto& g : kGemms)
      if (std::string_view(g.name).starts_with("cnn_"))
        benchmark::RegisterBenchmark(fmt::format("gemm_bf16/{}", g.name).c_str(), in_bf16<BM_Gemm, GemmCase>, g)
            ->Apply(thread_args);
  }
  for (std::int64_t pct : {19, 50, 75, 100})
    for (int t = 1; t <= max_threads; t *= 2)
      benchmark::RegisterBenchmark("gemv_nonzeros/mlp_fc1_b1_1x784x500", BM_GemvNonzeros)
          ->ArgNames({"threads", "pct"})->Args({t, pct})->UseRealTime()->Unit(benchmark::kMicrosecond);
  for (const auto& c : kLstms) {
    benchmark::RegisterBenchmark(fmt::format("lstm_fwd/{}", c.name).c_str(), BM_LstmForward, c)->Apply(thread_args);
    if (c.T > 1)
      benchmark::RegisterBenchmark(fmt::format("lstm_bwd/{}", c.name).c_str(), BM_LstmBackward, c)->Apply(thread_args);
  }
  benchmark::RegisterBenchmark("maxpool_fwd/cnn_pool1_50x28x28x32", BM_MaxPoolForward)->Apply(thread_args);
  benchmark::RegisterBenchmark("maxpool_bwd/cnn_pool1_50x28x28x32", BM_MaxPoolBackward)->Apply(thread_args);
  for (std::int64_t rows : {50, 1000}) {
    for (int t = 1; t <= max_threads; t *= 2) {
      benchmark::RegisterBenchmark("softmax_xent_fwd", BM_SoftmaxXentForward)
          ->ArgNames({"threads", "rows"})->Args({t, rows})->UseRealTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark("softmax_xent_bwd", BM_SoftmaxXentBackward)
          ->ArgNames({"threads", "rows"})->Args({t, rows})->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int max_threads = num_threads();
  g_peak_core = peak_gflops_per_core() * 1e9;  // best of a few short runs, every vector width
  benchmark::AddCustomContext("peak_gflops_per_core", fmt::format("{:.1f}", g_peak_core * 1e-9));
  benchmark::AddCustomContext("synapse_threads", std::to_string(max_threads));
  register_all(max_threads);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
