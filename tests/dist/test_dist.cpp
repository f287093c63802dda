// dist.h: collectives, model agreement, sharding and the data-parallel equivalence. ctest runs this
// binary twice: as one process (the one-rank path) and under `mpirun -np 2` (dist_mpi_2_ranks), where
// every test runs on both ranks and checks what that rank must see.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>

#include "synapse/autograd.h"
#include "synapse/dist.h"
#include "synapse/graph.h"
#include "synapse/ops.h"
#include "synapse/random.h"
#include "synapse/train.h"

using namespace synapse;

namespace {


// Every rank's value in element i: 3 (rank + 1)(i + 1); the sum over n ranks is 3 (i + 1) n(n+1)/2.
template <class T> T expected_sum(int i) { return static_cast<T>((i + 1) * 3 * dist::size() * (dist::size() + 1) / 2); }

// The raw-array overload (every dtype, float64 included).
template <class T> void check_allreduce_raw(const char* name) {
  const int r = dist::rank();
  for (auto op : {dist::ReduceOp::Sum, dist::ReduceOp::Average}) {
    std::vector<T> v(5);
    for (int i = 0; i < 5; ++i) v[static_cast<std::size_t>(i)] = static_cast<T>((r + 1) * (i + 1) * 3);
    dist::allreduce(v.data(), 5, op);
    for (int i = 0; i < 5; ++i) {
      const T want = op == dist::ReduceOp::Sum ? expected_sum<T>(i) : static_cast<T>(expected_sum<T>(i) / static_cast<T>(dist::size()));
      EXPECT_EQ(v[static_cast<std::size_t>(i)], want) << name << " element " << i << " on rank " << r;
    }
  }
}

// The tensor form (float32, int32, int64 tensors).
template <class T> void check_allreduce_tensor(DType dt) {
  const int r = dist::rank();
  Tensor t = Tensor::empty({5}, dt);
  for (int i = 0; i < 5; ++i) t.data<T>()[i] = static_cast<T>((r + 1) * (i + 1) * 3);
  const Tensor sum = dist::allreduce(t, dist::ReduceOp::Sum);
  const Tensor avg = dist::allreduce(t, dist::ReduceOp::Average);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sum.data<T>()[i], expected_sum<T>(i)) << dtype_name(dt) << " element " << i << " on rank " << r;
    EXPECT_EQ(avg.data<T>()[i], static_cast<T>(expected_sum<T>(i) / static_cast<T>(dist::size()))) << dtype_name(dt) << " element " << i;
  }
  EXPECT_EQ(t.data<T>()[0], static_cast<T>((r + 1) * 3)) << "allreduce (not allreduce_) must leave its input alone";
}

nn::ModulePtr dense_model(int hidden = 16) {
  Generator gen(7);
  auto m = nn::Sequential({nn::Dense(nn::DenseOptions(hidden).activation(nn::Activation::ReLU)), nn::Dense(4)});
  m->set_generator(&gen);
  m->build_for({1, 8});
  m->set_generator(nullptr);
  return m;
}

nn::ModulePtr conv_model() {
  Generator gen(9);
  auto m = nn::Sequential({nn::Conv2D(nn::Conv2DOptions(4, {3, 3}).activation(nn::Activation::ReLU)), nn::MaxPool2D(),
                           nn::Flatten(), nn::Dense(3)});
  m->set_generator(&gen);
  m->build_for({1, 8, 8, 1});
  m->set_generator(nullptr);
  return m;
}

std::unique_ptr<optim::Optimizer> make_opt(const std::string& name, nn::Module& m) {
  if (name == "adam") return std::make_unique<optim::Adam>(m.named_trainable_parameters(), optim::AdamOptions{.learning_rate = 0.01});
  return std::make_unique<optim::SGD>(m.named_trainable_parameters(), optim::SGDOptions{.learning_rate = 0.1, .momentum = 0.9});
}

// Records every parameter after each step.
class Snapshots : public train::Callback {
 public:
  void on_batch_end(train::Trainer& t, std::int64_t, train::Logs&) override {
    std::vector<Tensor> s;
    for (const auto& [name, p] : t.model().named_parameters()) s.push_back(p.clone());
    steps.push_back(std::move(s));
  }
  std::vector<std::vector<Tensor>> steps;
};

Tensor rows(const Tensor& t, std::int64_t lo, std::int64_t hi) {
  std::vector<std::int64_t> begin(static_cast<std::size_t>(t.ndim()), 0), size(t.shape().begin(), t.shape().end());
  begin[0] = lo;
  size[0] = hi - lo;
  return slice(t, begin, size);
}

float max_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item<float>(); }

// N ranks with batch B against one process with batch N·B, step for step, over two epochs (so the
// second epoch's reshuffle is covered too).
void check_equivalence(const std::function<nn::ModulePtr()>& make, const Tensor& x, const Tensor& y,
                       const std::string& opt_name, const char* what) {
  const int B = 4;
  const std::int64_t steps = 2 * (x.dim(0) / dist::size()) / B;
  train::FitOptions fo;
  fo.epochs = 2;
  fo.batch_size = B * dist::size();
  fo.seed = 5;
  fo.verbose = 0;
  fo.distributed = false;
  auto snap_ref = std::make_shared<Snapshots>();
  fo.callbacks = {snap_ref};
  auto ref = make();
  auto ref_opt = make_opt(opt_name, *ref);
  train::fit(*ref, *ref_opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);

  fo.distributed = true;
  fo.batch_size = B;
  auto snap = std::make_shared<Snapshots>();
  fo.callbacks = {snap};
  auto model = make();
  auto opt = make_opt(opt_name, *model);
  train::fit(*model, *opt, train::losses::sparse_categorical_crossentropy(), x, y, fo);

  ASSERT_EQ(static_cast<std::int64_t>(snap->steps.size()), steps);
  ASSERT_EQ(snap_ref->steps.size(), snap->steps.size());
  const float tol = 2e-5f;
  float worst = 0;
  for (std::size_t s = 0; s < snap->steps.size(); ++s)
    for (std::size_t p = 0; p < snap->steps[s].size(); ++p) {
      const float d = max_diff(snap->steps[s][p], snap_ref->steps[s][p]);
      worst = std::max(worst, d);
      EXPECT_LE(d, tol) << what << " " << opt_name << ": step " << s + 1 << ", parameter " << p;
    }
  // The weights moved (the comparison is not between two untouched copies).
  EXPECT_GT(max_diff(snap->steps.back()[0], snap->steps.front()[0]), 1e-3f);
  std::printf("[rank %d of %d] %s/%s: %zu steps, batch %d per rank vs %d on one process: max |weight difference| "
              "%.3g (tolerance %.1g)\n",
              dist::rank(), dist::size(), what, opt_name.c_str(), snap->steps.size(), B, B * dist::size(),
              static_cast<double>(worst), static_cast<double>(tol));
}

Tensor labels(std::int64_t n, int classes) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int64_t>((i * 7 + i / 3) % classes);
  return from_vector(v);
}

}  // namespace

TEST(Dist, RankAndSize) {
  EXPECT_GE(dist::size(), 1);
  EXPECT_GE(dist::rank(), 0);
  EXPECT_LT(dist::rank(), dist::size());
  EXPECT_EQ(dist::initialized(), dist::launched_by_mpirun() && dist::available());
}

TEST(Dist, AllreduceEveryDtypeAgainstTheSum) {
  check_allreduce_tensor<float>(DType::Float32);
  check_allreduce_tensor<std::int32_t>(DType::Int32);
  check_allreduce_tensor<std::int64_t>(DType::Int64);
  check_allreduce_raw<float>("float32");
  check_allreduce_raw<double>("float64");
  check_allreduce_raw<std::int32_t>("int32");
  check_allreduce_raw<std::int64_t>("int64");
  const std::vector<double> v = dist::allreduce(std::vector<double>{1.0 + dist::rank(), 0.5});
  EXPECT_DOUBLE_EQ(v[0], dist::size() * (dist::size() + 1) / 2.0);
  EXPECT_DOUBLE_EQ(v[1], 0.5 * dist::size());
  Tensor bad = zeros({2}, DType::UInt8);
  EXPECT_THROW(dist::allreduce_(bad), Error);
}

TEST(Dist, BroadcastAndAllgather) {
  const int last = dist::size() - 1;
  Tensor t = full({3}, 7.0 + dist::rank());
  dist::broadcast_(t, last);
  EXPECT_FLOAT_EQ(t.data<float>()[2], static_cast<float>(7 + last));
  EXPECT_EQ(dist::broadcast(std::int64_t{100} + dist::rank()), 100);
  const auto all = dist::allgather(std::string(static_cast<std::size_t>(dist::rank() + 1), 'a' + static_cast<char>(dist::rank())));
  ASSERT_EQ(static_cast<int>(all.size()), dist::size());
  for (int r = 0; r < dist::size(); ++r)
    EXPECT_EQ(all[static_cast<std::size_t>(r)], std::string(static_cast<std::size_t>(r + 1), 'a' + static_cast<char>(r)));
  dist::barrier();
}

TEST(Dist, ShardTakesEveryNthPositionWithEqualCounts) {
  const Tensor rows = arange(0, 11, 1, DType::Int64);
  for (int shards : {1, 2, 3}) {
    for (int r = 0; r < shards; ++r) {
      data::Dataset s = dist::shard(data::Dataset::from_tensors({rows}), shards, r);
      EXPECT_EQ(s.size(), 11 / shards);
      std::vector<std::int64_t> got;
      for (const auto& e : s) got.push_back(e[0].item<std::int64_t>());
      ASSERT_EQ(static_cast<std::int64_t>(got.size()), 11 / shards);
      for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], r + static_cast<std::int64_t>(i) * shards);
    }
  }
  // Over a shuffled order: the shards are disjoint and together cover all but the remainder.
  data::Dataset shuffled = data::Dataset::from_tensors({rows}).shuffle(11, 3, false);
  std::vector<std::int64_t> all;
  for (int r = 0; r < 2; ++r)
    for (const auto& e : dist::shard(shuffled, 2, r)) all.push_back(e[0].item<std::int64_t>());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  EXPECT_EQ(all.size(), 10u);
  EXPECT_THROW(dist::shard(data::Dataset::from_tensors({rows}), 2, 2), Error);
}

TEST(Dist, GradReadyHookFiresOncePerLeafWithTheFinalGradient) {
  auto m = dense_model();
  const auto params = m->named_trainable_parameters();
  std::vector<std::string> order;
  std::vector<bool> had_grad;
  std::map<const void*, std::string> names;
  for (const auto& [n, p] : params) names[p.impl()] = n;
  const int id = autograd::add_grad_ready_hook([&](const Tensor& leaf) {
    order.push_back(names.count(leaf.impl()) ? names[leaf.impl()] : "?");
    had_grad.push_back(leaf.grad().defined());
  });
  manual_seed(3);
  mean(sparse_softmax_cross_entropy((*m)(random_normal({5, 8})), labels(5, 4))).backward();
  autograd::remove_grad_ready_hook(id);
  ASSERT_EQ(order.size(), params.size());
  for (bool g : had_grad) EXPECT_TRUE(g);
  // The last layer's gradients are final first.
  EXPECT_EQ(order.front().rfind("dense_1/", 0), 0u) << order.front();
  EXPECT_EQ(order.back().rfind("dense/", 0), 0u) << order.back();
  // Removed: a second backward calls nothing.
  order.clear();
  mean(sparse_softmax_cross_entropy((*m)(random_normal({5, 8})), labels(5, 4))).backward();
  EXPECT_TRUE(order.empty());
}

TEST(Dist, EquivalenceDenseSgdAndAdam) {
  manual_seed(11);
  const Tensor x = random_normal({64, 8});
  const Tensor y = labels(64, 4);
  check_equivalence([] { return dense_model(); }, x, y, "sgd", "dense");
  check_equivalence([] { return dense_model(); }, x, y, "adam", "dense");
}

TEST(Dist, EquivalenceConvSgdAndAdam) {
  manual_seed(12);
  const Tensor x = random_normal({32, 8, 8, 1});
  const Tensor y = labels(32, 3);
  check_equivalence(conv_model, x, y, "sgd", "conv");
  check_equivalence(conv_model, x, y, "adam", "conv");
}

TEST(Dist, OverlapAndSmallBucketsGiveTheSameAverage) {
  // Buckets of one parameter each, reduced during backward, against one bucket reduced at step.
  manual_seed(13);
  const Tensor x = random_normal({6, 8}) + static_cast<float>(dist::rank());  // different data per rank
  const Tensor y = labels(6, 4);
  std::vector<std::vector<Tensor>> grads;
  for (bool overlap : {true, false}) {
    auto m = dense_model();
    optim::SGD sgd(m->named_trainable_parameters(), {.learning_rate = 0.1});
    dist::DistributedOptimizer opt(sgd, {.bucket_bytes = overlap ? 4 : std::int64_t{1} << 30, .overlap = overlap});
    EXPECT_EQ(opt.num_buckets(), overlap ? 4 : 1);
    mean(sparse_softmax_cross_entropy((*m)(x), y)).backward();
    if (overlap && dist::size() > 1) {
      EXPECT_GT(opt.stats().bytes, 0) << "no bucket started during backward";
    }
    opt.synchronize();
    std::vector<Tensor> g;
    for (const auto& [n, p] : m->named_trainable_parameters()) g.push_back(p.grad().clone());
    grads.push_back(g);
    // Every rank holds the same averaged gradient.
    for (const Tensor& t : g) {
      const Tensor mean_over_ranks = dist::allreduce(t);
      EXPECT_LE(max_diff(mean_over_ranks, t), 1e-6f);
    }
  }
  for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_LE(max_diff(grads[0][i], grads[1][i]), 1e-6f);
}

TEST(Dist, GraphModeEquivalence) {
  // Graph mode: each rank runs its slice of the global batch through a Session; dist::minimize
  // averages the gradients. Against eager training on the whole global batch.
  const int B = 4, G = B * dist::size(), steps = 3;
  manual_seed(14);
  const Tensor xs = random_normal({steps * G, 8});
  const Tensor ys = labels(steps * G, 4);
  auto eager = dense_model();
  optim::Adam eopt(eager->named_trainable_parameters(), {.learning_rate = 0.01});
  auto traced = dense_model();
  graph::Graph g;
  Tensor x = g.placeholder("x", {-1, 8});
  Tensor y = g.placeholder("y", {-1}, DType::Int64);
  Tensor loss = mean(sparse_softmax_cross_entropy((*traced)(x), y));
  optim::Adam gopt(traced->named_trainable_parameters(), {.learning_rate = 0.01});
  dist::DistributedOptimizer dopt(gopt);
  graph::Op train = dist::minimize(dopt, loss);
  graph::Session s(g);
  for (int k = 0; k < steps; ++k) {
    eopt.zero_grad();
    mean(sparse_softmax_cross_entropy((*eager)(rows(xs, k * G, (k + 1) * G)), rows(ys, k * G, (k + 1) * G)))
        .backward();
    eopt.step();
    const std::int64_t lo = k * G + dist::rank() * B;
    s.run({loss}, {{x, rows(xs, lo, lo + B)}, {y, rows(ys, lo, lo + B)}}, {train});
  }
  const auto ep = eager->named_parameters(), tp = traced->named_parameters();
  float worst = 0;
  for (std::size_t i = 0; i < ep.size(); ++i) {
    const float d = max_diff(tp[i].second, ep[i].second);
    worst = std::max(worst, d);
    EXPECT_LE(d, 2e-5f) << ep[i].first;
  }
  std::printf("[rank %d of %d] graph mode: %d steps, max |weight difference| %.3g (tolerance 2e-05)\n", dist::rank(),
              dist::size(), steps, static_cast<double>(worst));
}

TEST(Dist, ModelMismatchIsAnErrorOnEveryRank) {
  if (dist::size() < 2) GTEST_SKIP() << "needs two ranks";
  // The last rank's hidden layer is wider.
  auto m = dense_model(dist::rank() == dist::size() - 1 ? 17 : 16);
  try {
    dist::broadcast_parameters(*m);
    ADD_FAILURE() << "no error on rank " << dist::rank();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("the ranks disagree on the model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'dense/bias' is float32 [16] on rank 0 but float32 [17] on rank"), std::string::npos) << msg;
  }
  // A missing parameter: the last rank has one layer fewer.
  auto small = dist::rank() == dist::size() - 1 ? nn::Sequential({nn::Dense(4)}) : nn::Sequential({nn::Dense(4), nn::Dense(4)});
  small->build_for({1, 8});
  optim::SGD sgd(small->named_trainable_parameters());
  try {
    dist::DistributedOptimizer opt(sgd);
    ADD_FAILURE() << "no error on rank " << dist::rank();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 has 4 entries, rank 1 has 2; rank 1 lacks 'dense_1/"),
              std::string::npos)
        << e.what();
  }
}

TEST(Dist, TimeoutVariableIsChecked) {
  ::setenv("SYNAPSE_DIST_TIMEOUT", "soon", 1);
  EXPECT_THROW(dist::timeout_seconds(), Error);
  ::setenv("SYNAPSE_DIST_TIMEOUT", "2.5", 1);
  EXPECT_DOUBLE_EQ(dist::timeout_seconds(), 2.5);
  ::unsetenv("SYNAPSE_DIST_TIMEOUT");
  EXPECT_DOUBLE_EQ(dist::timeout_seconds(), 60.0);
}

int main(int argc, char** argv) {
  dist::init(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  // Every rank's verdict counts: one failing rank fails the run.
  const int failed = static_cast<int>(dist::allreduce(std::vector<double>{rc != 0 ? 1.0 : 0.0})[0]);
  dist::finalize();
  return failed ? 1 : 0;
}
