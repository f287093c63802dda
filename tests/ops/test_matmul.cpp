#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/gemm.h"
#include "gradcheck.h"
#include "synapse/op.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::max_abs_diff;

namespace {

// a = [[1,2,3],[4,5,6]], b = [[7,8],[9,10],[11,12]]: a b = [[58,64],[139,154]].
const std::vector<float> kAB = {58, 64, 139, 154};

Tensor reference_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  return apply_reference(op_def("matmul"), {a, b}, Attrs().set("transpose_a", ta).set("transpose_b", tb))[0];
}

// cpu::gemm against cpu::gemm_reference for one row of C: x [k] times w [k, ld] (the first n columns),
// onto a random y with alpha and beta; the tolerance grows like sqrt(k) with the float sum's length.
// With `zeros`, that fraction of x's entries (drawn at random) is zero, half of them -0.
void expect_gemv_matches_reference(std::int64_t n, std::int64_t k, std::int64_t ld, float alpha, float beta,
                                   double zeros = 0.0) {
  Tensor x = random_normal({k}), w = random_normal({k, ld}), y0 = random_normal({n});
  if (zeros > 0.0) {
    const std::vector<float> u = random_uniform({k}).to_vector<float>();
    float* xs = x.data<float>();
    for (std::int64_t p = 0; p < k; ++p)
      if (u[static_cast<std::size_t>(p)] < zeros) xs[p] = p % 2 == 0 ? 0.0f : -0.0f;
  }
  Tensor fast = y0.clone(), ref = y0.clone();
  cpu::GemmArgs g{.m = 1, .n = n, .k = k, .alpha = alpha, .a = x.data<float>(), .b = w.data<float>(), .ldb = ld,
                  .beta = beta, .c = fast.data<float>()};
  cpu::gemm(g);
  g.c = ref.data<float>();
  cpu::gemm_reference(g);
  EXPECT_LT(max_abs_diff(fast, ref), 2e-4 * std::max(1.0, std::sqrt(static_cast<double>(k) / 100.0)))
      << "n=" << n << " k=" << k << " ld=" << ld << " beta=" << beta << " zeros=" << zeros;
}

}  // namespace

TEST(Matmul, TwoDimensionalHandComputed) {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor b = tensor({{7, 8}, {9, 10}, {11, 12}});
  Tensor y = matmul(a, b);
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(y.to_vector<float>(), kAB);
}

TEST(Matmul, AllTransposeCombinations) {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor at = tensor({{1, 4}, {2, 5}, {3, 6}});  // a stored transposed
  Tensor b = tensor({{7, 8}, {9, 10}, {11, 12}});
  Tensor bt = tensor({{7, 9, 11}, {8, 10, 12}});
  EXPECT_EQ(matmul(a, b, {false, false}).to_vector<float>(), kAB);
  EXPECT_EQ(matmul(at, b, {true, false}).to_vector<float>(), kAB);
  EXPECT_EQ(matmul(a, bt, {false, true}).to_vector<float>(), kAB);
  EXPECT_EQ(matmul(at, bt, {true, true}).to_vector<float>(), kAB);
  // [3,2]^T-less products have other shapes: a^T a is [3,3].
  Tensor ata = matmul(a, a, {true, false});
  EXPECT_EQ(ata.shape(), (Shape{3, 3}));
  EXPECT_EQ(ata.to_vector<float>(), (std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45}));
}

TEST(Matmul, BatchedHandComputed) {
  // a0 = [[1,2],[3,4]], a1 = [[5,6],[7,8]]; b0 = identity, b1 = swap columns.
  Tensor a = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  Tensor b = from_vector(std::vector<float>{1, 0, 0, 1, 0, 1, 1, 0}, {2, 2, 2});
  Tensor y = matmul(a, b);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 6, 5, 8, 7}));
}

TEST(Matmul, BroadcastBatchHandComputed) {
  Tensor a = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  // Batched a times a shared 2-D b (one folded GEMM): row sums.
  Tensor ones_col = from_vector(std::vector<float>{1, 1}, {2, 1});
  Tensor rs = matmul(a, ones_col);
  EXPECT_EQ(rs.shape(), (Shape{2, 2, 1}));
  EXPECT_EQ(rs.to_vector<float>(), (std::vector<float>{3, 7, 11, 15}));
  // A shared 2-D a times batched b: column sums.
  Tensor ones_row = tensor({{1, 1}});
  Tensor cs = matmul(ones_row, a);
  EXPECT_EQ(cs.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(cs.to_vector<float>(), (std::vector<float>{4, 6, 12, 14}));
  // Batch dimensions [2,1] and [3] broadcast to [2,3]: a_i b_j.
  Tensor a2 = reshape(a, {2, 1, 2, 2});
  Tensor b3 = from_vector(std::vector<float>{1, 0, 0, 1, 2, 0, 0, 2, 0, 1, 1, 0}, {3, 2, 2});
  Tensor y = matmul(a2, b3);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 2, 4, 6, 8, 2, 1, 4, 3,  //
                                                      5, 6, 7, 8, 10, 12, 14, 16, 6, 5, 8, 7}));
}

TEST(Matmul, FastMatchesReference) {
  manual_seed(10);
  struct Case {
    Shape a, b;  // as stored (already transposed where the flag says so)
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{17, 33}, {33, 9}, false, false},       {{33, 17}, {33, 9}, true, false},
      {{17, 33}, {9, 33}, false, true},        {{33, 17}, {9, 33}, true, true},
      {{3, 5, 7}, {3, 7, 4}, false, false},    {{3, 7, 5}, {3, 4, 7}, true, true},
      {{2, 3, 5, 7}, {7, 4}, false, false},    {{2, 3, 5, 7}, {4, 7}, false, true},  // folded
      {{2, 3, 7, 5}, {7, 4}, true, false},     {{5, 7}, {3, 7, 4}, false, false},
      {{2, 1, 5, 7}, {3, 7, 4}, false, false}, {{1, 5, 7}, {2, 3, 4, 7}, false, true},
      {{4, 0}, {0, 3}, false, false},          {{2, 0, 3}, {3, 5}, false, false},
      {{64, 130}, {130, 70}, false, false},
      // Large enough to be split over threads: by rows of C, then (wide C) by columns.
      {{300, 257}, {257, 200}, false, false},  {{257, 300}, {200, 257}, true, true},
      {{50, 300}, {300, 1030}, false, false},  {{300, 50}, {1030, 300}, true, true},
      // One row or one column of C: matrix-vector products (threaded over the output when large).
      {{1, 33}, {33, 9}, false, false},        {{33, 1}, {9, 33}, true, true},
      {{1, 33}, {9, 33}, false, true},         {{33, 1}, {33, 9}, true, false},
      {{17, 33}, {33, 1}, false, false},       {{33, 17}, {1, 33}, true, true},
      {{17, 33}, {1, 33}, false, true},        {{33, 17}, {33, 1}, true, false},
      {{1, 3136}, {3136, 1024}, false, false}, {{1, 3136}, {1024, 3136}, false, true},
      {{1500, 800}, {800, 1}, false, false},   {{800, 1500}, {1, 800}, true, true},
      {{1, 7}, {7, 1}, false, false},
      // Few rows or a short sum, B not transposed: our small-GEMM kernel. The cnn's fc1 forward (k in
      // several blocks of 256) and weight gradient (k = 50, C of 3.2M floats: streaming stores), the
      // first convolution's columns (k = 25), a masked last vector of columns.
      {{50, 3136}, {3136, 1024}, false, false}, {{50, 3136}, {50, 1024}, true, false},
      {{9800, 25}, {25, 32}, false, false},     {{77, 40}, {40, 1030}, false, false},
      {{6, 5}, {5, 3}, false, false},
      // Few rows times a transposed B (a dense layer's input gradient): computed as (B A^T)^T.
      {{50, 1024}, {3136, 1024}, false, true},  {{2, 17, 100}, {1100, 100}, false, true},
  };
  for (const auto& c : cases) {
    Tensor a = random_normal(c.a), b = random_normal(c.b);
    Tensor fast = matmul(a, b, {c.ta, c.tb});
    Tensor ref = reference_matmul(a, b, c.ta, c.tb);
    EXPECT_EQ(fast.shape(), ref.shape()) << to_string(c.a) << " x " << to_string(c.b);
    // Sums of k products of N(0, 1) values: float rounding grows like sqrt(k).
    const std::int64_t k = c.ta ? c.a[c.a.size() - 2] : c.a.back();
    const double tol = 1e-4 * std::max(1.0, std::sqrt(static_cast<double>(k) / 300.0));
    EXPECT_LT(max_abs_diff(fast, ref), tol) << to_string(c.a) << " x " << to_string(c.b);
  }
}

// The matrix-vector kernel (one row of C, the matrix stored [k, n]): every vector count and row
// unrolling it picks, the masked last vector, the split over threads, a leading dimension wider than
// n, and alpha / beta, against the reference GEMM.
TEST(Matmul, MatrixVectorKernelMatchesReference) {
  manual_seed(11);
  for (const std::int64_t n : {1, 5, 10, 16, 17, 33, 48, 64, 65, 100, 113, 128, 129, 200, 250, 256, 257, 300, 500, 1030}) {
    for (const std::int64_t k : {1, 3, 8, 9, 784}) {
      for (const float beta : {0.0f, 0.5f}) expect_gemv_matches_reference(n, k, n + 3, 1.5f, beta);
    }
  }
}

// A mostly-zero x (an MNIST image, a relu layer's output): the kernel reads only the rows whose x value
// is not zero, when at most 3/4 of them are. Densities on both sides of that switch, none and all
// zero, every vector count, row counts that leave the row unrolling a remainder.
TEST(Matmul, MatrixVectorKernelSkipsZeroInputs) {
  manual_seed(14);
  for (const std::int64_t n : {32, 33, 100, 128, 129, 500, 1030}) {
    for (const std::int64_t k : {1, 9, 17, 784, 3136}) {
      for (const double zeros : {0.1, 0.24, 0.3, 0.5, 0.81, 0.99, 1.0}) {
        expect_gemv_matches_reference(n, k, n + 3, 1.5f, 0.5f, zeros);
        expect_gemv_matches_reference(n, k, n, -1.0f, 0.0f, zeros);
      }
    }
  }
}

// All-zero x: y = beta * y exactly, and a NaN in an otherwise zero x reaches every output.
TEST(Matmul, MatrixVectorKernelWithZeroInputsKeepsNaN) {
  const std::int64_t n = 100, k = 784;
  Tensor x = zeros({k}), w = random_normal({k, n});
  std::vector<float> y(n, 2.0f);
  cpu::GemmArgs g{.m = 1, .n = n, .k = k, .a = x.data<float>(), .b = w.data<float>(), .beta = 0.25f, .c = y.data()};
  cpu::gemm(g);
  EXPECT_EQ(y, std::vector<float>(n, 0.5f));
  x.data<float>()[700] = std::nanf("");
  g.beta = 0.0f;
  cpu::gemm(g);
  for (std::int64_t j = 0; j < n; ++j) EXPECT_TRUE(std::isnan(y[static_cast<std::size_t>(j)])) << "column " << j;
}

// The transposed route for C = A B^T with few rows of A, with alpha, beta and a C wider than n: rows
// of A that fill whole vectors (16, 64), whole vectors and up to 4 left over as dot products (20, 50),
// or more left over, padded (37); n not a multiple of any row tile (1100), k not of the vector width.
TEST(Matmul, FewRowsTimesTransposedMatchesReference) {
  manual_seed(13);
  for (const std::int64_t m : {16, 20, 37, 50, 64}) {
    for (const std::int64_t k : {100, 1023}) {
      const std::int64_t n = 1100, ldc = n + 5;  // at least 1.76M multiply-adds: the own route
      Tensor a = random_normal({m, k}), b = random_normal({n, k}), c0 = random_normal({m, ldc});
      for (const float beta : {0.0f, 0.5f}) {
        Tensor fast = c0.clone(), ref = c0.clone();
        cpu::GemmArgs g{.trans_b = true, .m = m, .n = n, .k = k, .alpha = -1.5f, .a = a.data<float>(),
                        .b = b.data<float>(), .beta = beta, .c = fast.data<float>(), .ldc = ldc};
        cpu::gemm(g);
        g.c = ref.data<float>();
        cpu::gemm_reference(g);
        // The columns past n are untouched in both.
        EXPECT_LT(max_abs_diff(fast, ref), k > 500 ? 4e-4 : 1e-4) << "m=" << m << " k=" << k << " beta=" << beta;
      }
    }
  }
}

// Narrow matrices stored without gaps (ld == n < 16) are read flat, R whole rows per period of
// vectors: every n below 16, with k a multiple of the period, not one (rows left over), and shorter
// than one period.
TEST(Matmul, NarrowMatrixVectorKernelMatchesReference) {
  manual_seed(12);
  for (std::int64_t n = 1; n < 16; ++n) {
    for (const std::int64_t k : {1, 5, 16, 33, 784}) {
      for (const float beta : {0.0f, -0.5f}) expect_gemv_matches_reference(n, k, n, 0.75f, beta);
    }
  }
}

TEST(Matmul, ShapeErrorsNameBothShapes) {
  try {
    matmul(zeros({2, 3}), zeros({4, 5}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: inner dimensions differ: [2,3] x [4,5]");
  }
  try {
    matmul(zeros({2, 3}), zeros({2, 5}), {false, true});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: inner dimensions differ: [2,3] x [2,5] (transpose_b)");
  }
  try {
    matmul(zeros({2, 2, 3}), zeros({3, 3, 4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: batch dimensions do not broadcast: [2,2,3] x [3,3,4]");
  }
  try {
    matmul(zeros({3}), zeros({3, 4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: operands must have at least 2 dimensions, got [3] x [3,4]");
  }
  EXPECT_THROW(matmul(zeros({2, 3}, DType::Int32), zeros({3, 4}, DType::Int32)), Error);
}

TEST(Matmul, GradientSkipsInputsThatNeedNone) {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor b = tensor({{7, 8}, {9, 10}, {11, 12}}).requires_grad_();
  // d sum(a b) / db[p][j] = sum_i a[i][p] = column sums of a.
  auto g = grad(sum(matmul(a, b)), {b});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{5, 5, 7, 7, 9, 9}));
}

TEST(Grad, Matmul2DAllTransposes) {
  manual_seed(11);
  Tensor a = random_normal({3, 4}), at = random_normal({4, 3});
  Tensor b = random_normal({4, 5}), bt = random_normal({5, 4});
  EXPECT_GRAD_MATCHES([&] { return matmul(a, b); }, {a, b});
  EXPECT_GRAD_MATCHES([&] { return matmul(at, b, {true, false}); }, {at, b});
  EXPECT_GRAD_MATCHES([&] { return matmul(a, bt, {false, true}); }, {a, bt});
  EXPECT_GRAD_MATCHES([&] { return matmul(at, bt, {true, true}); }, {at, bt});
}

TEST(Grad, MatmulBatched) {
  manual_seed(12);
  Tensor a = random_normal({2, 3, 4}), b = random_normal({2, 4, 5});
  EXPECT_GRAD_MATCHES([&] { return matmul(a, b); }, {a, b});
  Tensor at = random_normal({2, 4, 3}), bt = random_normal({2, 5, 4});
  EXPECT_GRAD_MATCHES([&] { return matmul(at, bt, {true, true}); }, {at, bt});
  EXPECT_GRAD_MATCHES([&] { return matmul(a, bt, {false, true}); }, {a, bt});
  EXPECT_GRAD_MATCHES([&] { return matmul(at, b, {true, false}); }, {at, b});
}

TEST(Grad, MatmulBroadcastBatch) {
  manual_seed(13);
  // Batched a with a shared 2-D b: the folded single-GEMM path, with and without transpose_b.
  Tensor a = random_normal({2, 3, 4}), b = random_normal({4, 5}), bt = random_normal({5, 4});
  EXPECT_GRAD_MATCHES([&] { return matmul(a, b); }, {a, b});
  EXPECT_GRAD_MATCHES([&] { return matmul(a, bt, {false, true}); }, {a, bt});
  // transpose_a with a shared b cannot fold: per-batch products, b's gradient summed over the batch.
  Tensor at = random_normal({2, 4, 3});
  EXPECT_GRAD_MATCHES([&] { return matmul(at, b, {true, false}); }, {at, b});
  // A shared 2-D a with batched b, and batch dimensions [2,1] x [3] broadcasting to [2,3].
  Tensor a2 = random_normal({3, 4}), b3 = random_normal({2, 4, 5});
  EXPECT_GRAD_MATCHES([&] { return matmul(a2, b3); }, {a2, b3});
  Tensor a4 = random_normal({2, 1, 3, 4}), b4 = random_normal({3, 4, 2});
  EXPECT_GRAD_MATCHES([&] { return matmul(a4, b4); }, {a4, b4});
  Tensor b1 = random_normal({1, 4, 2});  // a batch of one folds like a 2-D operand
  EXPECT_GRAD_MATCHES([&] { return matmul(a4, b1); }, {a4, b1});
}

TEST(Dense, HandComputedWithBiasAndRelu) {
  // x = [[1, 2], [-3, 1]], kernel = [[1, -1, 0], [2, 1, 1]], bias = [0.5, 0, -4]:
  // x kernel + bias = [[5.5, 1, -2], [-0.5, 4, -3]]; relu zeroes the negatives.
  Tensor x = tensor({{1, 2}, {-3, 1}}), w = tensor({{1, -1, 0}, {2, 1, 1}}), b = tensor({0.5f, 0, -4});
  EXPECT_EQ(dense(x, w, b).to_vector<float>(), (std::vector<float>{5.5f, 1, -2, -0.5f, 4, -3}));
  EXPECT_EQ(dense(x, w, b, {.relu = true}).to_vector<float>(), (std::vector<float>{5.5f, 1, 0, 0, 4, 0}));
}

TEST(Dense, FastMatchesReferenceAndMatmulPlusBias) {
  manual_seed(14);
  struct Case {
    Shape x;
    std::int64_t units;
  };
  // Batch 1 (the matrix-vector kernel, threaded at 784x500), batches, leading dimensions, empty cases;
  // each also with 81% of x zero, like an MNIST image (at batch 1, only the other rows are read).
  for (const Case& c : std::vector<Case>{{{1, 784}, 10}, {{1, 784}, 500}, {{100, 784}, 500}, {{50, 33}, 17},
                                         {{2, 3, 7}, 5}, {{0, 4}, 3}, {{3, 0}, 4}}) {
    const std::int64_t in = c.x.back();
    Tensor x0 = random_normal(c.x), w = random_normal({in, c.units}), b = random_normal({c.units});
    Tensor sparse = x0.clone();
    const std::vector<float> u = random_uniform({sparse.numel()}).to_vector<float>();
    for (std::int64_t i = 0; i < sparse.numel(); ++i)
      if (u[static_cast<std::size_t>(i)] < 0.81f) sparse.data<float>()[i] = 0.0f;
    for (const auto& [x, relu] : std::vector<std::pair<Tensor, bool>>{{x0, false}, {x0, true}, {sparse, false}, {sparse, true}}) {
      const Attrs at = Attrs().set("relu", relu);
      Tensor fast = dense(x, w, b, {.relu = relu});
      Tensor ref = apply_reference(op_def("dense"), {x, w, b}, at)[0];
      Tensor unfused = matmul(x, w) + b;
      if (relu) unfused = synapse::relu(unfused);
      Shape expect = c.x;
      expect.back() = c.units;
      EXPECT_EQ(fast.shape(), expect);
      const double tol = 1e-4 * std::max(1.0, std::sqrt(static_cast<double>(in) / 300.0));
      const bool zeros = x.impl() == sparse.impl();
      EXPECT_LT(max_abs_diff(fast, ref), tol) << to_string(c.x) << " relu=" << relu << " sparse=" << zeros;
      EXPECT_LT(max_abs_diff(fast, unfused), tol) << to_string(c.x) << " relu=" << relu << " sparse=" << zeros;
    }
  }
}

TEST(Dense, ShapeErrorsNameTheShapes) {
  try {
    dense(zeros({2, 3}), zeros({4, 5}), zeros({5}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "dense: expected x [..., 4] for kernel [4,5], got [2,3]");
  }
  try {
    dense(zeros({2, 4}), zeros({4, 5}), zeros({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "dense: expected bias [5] for kernel [4,5], got [4]");
  }
  EXPECT_THROW(dense(zeros({2, 4}), zeros({4, 5, 1}), zeros({5})), Error);
  EXPECT_THROW(dense(zeros({2, 4}, DType::Int32), zeros({4, 5}), zeros({5})), Error);
}

TEST(Grad, DenseWithAndWithoutRelu) {
  manual_seed(15);
  Tensor x = random_normal({4, 3}), w = random_normal({3, 5}), b = random_normal({5});
  EXPECT_GRAD_MATCHES([&] { return dense(x, w, b); }, {x, w, b});
  EXPECT_GRAD_MATCHES([&] { return dense(x, w, b, {.relu = true}); }, {x, w, b});
  Tensor x3 = random_normal({2, 3, 3});  // leading dimensions fold into rows
  EXPECT_GRAD_MATCHES([&] { return dense(x3, w, b, {.relu = true}); }, {x3, w, b});
}

TEST(Dense, GradientSkipsInputsThatNeedNone) {
  Tensor x = tensor({{1, 2}, {3, 4}});
  Tensor w = tensor({{1, 0}, {0, 1}}).requires_grad_();
  Tensor b = tensor({0.0f, 0.0f});
  // d sum(x w + b) / dw[p][j] = sum_i x[i][p].
  auto g = grad(sum(dense(x, w, b)), {w});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{4, 4, 6, 6}));
}
