// The threaded parts of Synapse, exercised hard enough for ThreadSanitizer (scripts/tsan runs these under
// -fsanitize=thread; in the normal build they are quick correctness tests): the prefetch thread of a data
// pipeline, the parallel kernels (OpenMP) against one thread, and synapse serve's POST /predict handler
// called from several threads at once (decoding in parallel, inference under the model mutex), including
// the PNG whose failure message stb_image writes into a static buffer.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gradcheck.h"
#include "serve/server.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::max_abs_diff;
using synapse::data::Dataset;
using synapse::data::Example;

namespace {

// A 28x28 digit-like image: a bright bar on black.
Tensor digit() {
  Tensor t = zeros({28, 28}, DType::UInt8);
  for (int r = 5; r < 23; ++r)
    for (int c = 12; c < 16; ++c) t.data<std::uint8_t>()[r * 28 + c] = 255;
  return t;
}

struct ThreadCount {
  explicit ThreadCount(int n) : saved(num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
  int saved;
};

}  // namespace

TEST(Threads, PrefetchRunsTheMapOnItsThreadAndStopsEarly) {
  Generator gen(7);
  const Tensor x = random_normal({64, 5}, 0.0f, 1.0f, &gen);
  auto pipeline = [&] {
    return Dataset::from_tensors({x}).shuffle(16, 3).map([](Example e) { return Example{relu(e[0])}; }).batch(8);
  };
  const Dataset plain = pipeline(), fetched = pipeline().prefetch(3);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<Tensor> a, b;
    for (const Example& e : plain) a.push_back(e[0]);
    for (const Example& e : fetched) b.push_back(e[0]);
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(max_abs_diff(a[i], b[i]), 0.0) << "epoch " << epoch << " batch " << i;
  }
  for (int trial = 0; trial < 10; ++trial) {  // the consumer leaves while the producer runs
    int seen = 0;
    for (const Example& e : fetched.repeat()) {
      EXPECT_EQ(e[0].dim(0), 8);
      if (++seen == 2 + trial % 3) break;
    }
  }
}

TEST(Threads, ParallelKernelsMatchOneThread) {
  Generator gen(11);
  const Tensor a = random_normal({96, 80}, 0.0f, 1.0f, &gen), b = random_normal({80, 72}, 0.0f, 1.0f, &gen);
  const Tensor img = random_normal({4, 20, 20, 6}, 0.0f, 1.0f, &gen), filt = random_normal({3, 3, 6, 8}, 0.0f, 0.3f, &gen);
  const Tensor big = random_normal({300000}, 0.0f, 1.0f, &gen);
  auto run = [&] {
    Tensor f = filt.detach().requires_grad_();
    Tensor y = conv2d(img, f, Conv2DAttrs{.padding = Padding::Same});
    Tensor loss = sum(mul(relu(y), y));
    loss.backward();
    return std::vector<Tensor>{matmul(a, b), y, f.grad(), softmax(reshape(img, {80, 120})), add(relu(big), big),
                               sum(mul(big, big))};
  };
  std::vector<Tensor> one, many;
  {
    ThreadCount t(1);
    one = run();
  }
  {
    ThreadCount t(4);
    many = run();
  }
  ASSERT_EQ(one.size(), many.size());
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_LT(max_abs_diff(one[i], many[i]), 1e-3) << "result " << i;
}

TEST(Threads, ServePredictFromManyThreads) {
  zoo::Trained model;
  model.name = "softmax";
  model.model = zoo::recipe("softmax").build();
  std::mutex mutex;
  const std::string png = data::encode_png(digit());
  // The same PNG with an unknown critical chunk "Q\xffZZ" after IHDR (8-byte signature + 25-byte IHDR).
  std::string bad = png;
  bad.insert(33, std::string("\0\0\0\0Q\xffZZ\0\0\0\0", 12));
  const std::vector<std::string> bodies{png, bad, "not an image", png.substr(0, 40)};
  std::vector<serve::Reply> want;
  for (const auto& body : bodies) want.push_back(serve::predict(model, mutex, body));
  EXPECT_EQ(want[0].status, 200);
  EXPECT_EQ(want[1].status, 400);
  EXPECT_NE(want[1].body.find("PNG chunk 'Q?ZZ'"), std::string::npos) << want[1].body;
  EXPECT_EQ(want[2].status, 400);
  EXPECT_EQ(want[3].status, 400);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 12; ++k) {
        const std::size_t i = static_cast<std::size_t>(t + k) % bodies.size();
        const serve::Reply r = serve::predict(model, mutex, bodies[i]);
        if (r.status != want[i].status || r.body != want[i].body) ++mismatches[static_cast<std::size_t>(t)];
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0) << "thread " << t;
}
