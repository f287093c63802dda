#include <gtest/gtest.h>

#include "gradcheck.h"
#include "synapse/synapse.h"

using namespace synapse;
using synapse::testing::error_of;
using synapse::testing::max_abs_diff;

namespace {
using F = std::vector<float>;
using I64 = std::vector<std::int64_t>;


Tensor idx64(const I64& v, const Shape& s = {}) { return from_vector(v, s.empty() ? Shape{static_cast<std::int64_t>(v.size())} : s); }
}  // namespace

// ---- reshape family ----

TEST(Shape, ReshapeIsAViewOfTheSameData) {
  Tensor x = arange(12).reshape({3, 4});
  x.set_name("x");
  Tensor y = reshape(x, {2, -1});
  EXPECT_EQ(y.shape(), (Shape{2, 6}));
  EXPECT_EQ(y.raw_data(), x.raw_data());  // no copy
  EXPECT_EQ(y.name(), "");                // a new tensor, not x under another shape
  EXPECT_EQ(x.shape(), (Shape{3, 4}));
  x.data<float>()[7] = 70.0f;  // writes through x show in y
  EXPECT_EQ(y.at({1, 1}), 70.0f);
  // The values, by hand: row-major order is kept.
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 70, 8, 9, 10, 11}));
  EXPECT_EQ(reshape(x, {4, 3}).at({2, 1}), 70.0f);  // flat index 7
  // A view has no reference kernel to compare with: asking for one names the op and the reason.
  EXPECT_EQ(error_of([&] { apply_reference(op_def("reshape"), {x}, Attrs().set("shape", std::vector<std::int64_t>{4, 3})); }),
            "reshape: has no reference kernel (a view: the dispatcher shares the input's storage and no kernel moves "
            "data)");
}

TEST(Grad, Reshape) {
  manual_seed(4);
  Tensor x = random_normal({2, 6});
  EXPECT_GRAD_MATCHES([&] { return reshape(x, {3, -1}) * tensor({1, 2, 3, 4}); }, {x});
}

TEST(Shape, FlattenSqueezeUnsqueeze) {
  Tensor x = arange(24).reshape({2, 3, 4});
  Tensor f = flatten(x);
  EXPECT_EQ(f.shape(), (Shape{2, 12}));
  EXPECT_EQ(f.at({1, 5}), 17.0f);
  EXPECT_EQ(flatten(zeros({5})).shape(), (Shape{5, 1}));
  EXPECT_EQ(flatten(zeros({0, 3, 2})).shape(), (Shape{0, 6}));
  Tensor u = unsqueeze(x, 1);
  EXPECT_EQ(u.shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(unsqueeze(x, -1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(unsqueeze(x, 3).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(unsqueeze(x, -4).shape(), (Shape{1, 2, 3, 4}));
  EXPECT_EQ(squeeze(u, 1).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(squeeze(unsqueeze(x, -1), -1).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(error_of([&] { squeeze(x, 1); }), "squeeze: dimension 1 of shape [2,3,4] has extent 3, not 1");
  EXPECT_EQ(error_of([&] { unsqueeze(x, 4); }), "unsqueeze: axis 4 is out of range [-4, 3] for a tensor of rank 3");
  EXPECT_EQ(error_of([] { flatten(scalar(1)); }), "flatten: needs a tensor of rank >= 1, got shape []");
}

TEST(Grad, FlattenSqueezeUnsqueeze) {
  manual_seed(14);
  Tensor x = random_normal({2, 1, 3, 2});
  EXPECT_GRAD_MATCHES([&] { return flatten(x) * tensor({1, 2, 3, 4, 5, 6}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return square(squeeze(x, -3)); }, {x});
  EXPECT_GRAD_MATCHES([&] { return unsqueeze(x, 0) * x; }, {x});
}

// ---- permute / transpose ----

TEST(Shape, Transpose) {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor t = transpose(a);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.to_vector<float>(), (F{1, 4, 2, 5, 3, 6}));
  // 3-D: dims reversed, out[k,j,i] = x[i,j,k] = 6i + 2j + k for x [2,3,2].
  Tensor x = arange(12).reshape({2, 3, 2});
  Tensor r = transpose(x);
  EXPECT_EQ(r.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(r.to_vector<float>(), (F{0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11}));
  EXPECT_EQ(transpose(tensor({1, 2})).to_vector<float>(), (F{1, 2}));
}

TEST(Shape, Permute3DAnd4D) {
  // x [2,3,2], perm {2,0,1}: out[k,i,j] = x[i,j,k] = 6i + 2j + k.
  Tensor x = arange(12).reshape({2, 3, 2});
  Tensor p = permute(x, {2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(p.to_vector<float>(), (F{0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(permute(x, {-3, -1, -2}).to_vector<float>(), (F{0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11}));
  // NCHW [2,3,2,2] -> NHWC: out[n,h,w,c] = x[n,c,h,w] = 12n + 4c + 2h + w.
  Tensor y = arange(24).reshape({2, 3, 2, 2});
  Tensor q = permute(y, {0, 2, 3, 1});
  EXPECT_EQ(q.shape(), (Shape{2, 2, 2, 3}));
  EXPECT_EQ(q.to_vector<float>(), (F{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, 12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23}));
  // Every element of a bigger 4-D permute against the index formula.
  Tensor z = arange(3 * 4 * 5 * 6).reshape({3, 4, 5, 6});
  Tensor w = permute(z, {3, 1, 0, 2});  // w[d,b,a,c] = z[a,b,c,d] = 120a + 30b + 6c + d
  ASSERT_EQ(w.shape(), (Shape{6, 4, 3, 5}));
  bool all = true;
  for (std::int64_t d = 0; d < 6; ++d)
    for (std::int64_t b = 0; b < 4; ++b)
      for (std::int64_t a = 0; a < 3; ++a)
        for (std::int64_t c = 0; c < 5; ++c)
          all = all && w.at({d, b, a, c}) == static_cast<float>(120 * a + 30 * b + 6 * c + d);
  EXPECT_TRUE(all);
  // Integer and byte-sized elements move the same way.
  Tensor n = from_vector(I64{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(transpose(n).to_vector<std::int64_t>(), (I64{1, 4, 2, 5, 3, 6}));
  Tensor u = from_vector(std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}, {3, 2});
  EXPECT_EQ(transpose(u).to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 3, 5, 2, 4, 6}));
}

TEST(Shape, PermuteErrors) {
  Tensor x = zeros({2, 3});
  EXPECT_EQ(error_of([&] { permute(x, {0, 0}); }), "permute: perm [0,0] is not a permutation of 0..1");
  EXPECT_EQ(error_of([&] { permute(x, {0, 2}); }), "permute: perm [0,2] is not a permutation of 0..1");
  EXPECT_EQ(error_of([&] { permute(x, {0}); }), "permute: perm [0] has 1 entries for a tensor of rank 2");
}

// The fast kernel's cases (row copies, tiled transposes with batch dims) against the naive one.
TEST(Shape, FastPermuteMatchesReference) {
  manual_seed(15);
  const std::vector<std::pair<Shape, I64>> cases = {
      {{300, 200}, {1, 0}},          {{8, 64, 96}, {0, 2, 1}},     {{16, 32, 32, 3}, {0, 3, 1, 2}},
      {{16, 3, 32, 32}, {0, 2, 3, 1}}, {{5, 6, 7, 8}, {3, 2, 1, 0}}, {{4, 50, 60, 2}, {2, 0, 3, 1}},
      {{1, 70, 1, 90}, {3, 2, 1, 0}}, {{40, 50, 60}, {1, 0, 2}}};
  for (const auto& [shape, perm] : cases) {
    Tensor x = random_normal(shape);
    const Attrs a = Attrs().set("perm", perm);
    EXPECT_EQ(max_abs_diff(permute(x, perm), apply_reference(op_def("permute"), {x}, a)[0]), 0.0) << to_string(shape);
  }
}

TEST(Grad, TransposePermute) {
  manual_seed(16);
  Tensor m = random_normal({3, 4});
  EXPECT_GRAD_MATCHES([&] { return transpose(m); }, {m});
  Tensor x = random_normal({2, 3, 4, 5});
  EXPECT_GRAD_MATCHES([&] { return permute(x, {0, 2, 3, 1}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return permute(x, {3, 1, 0, 2}) * tanh(permute(transpose(x), {0, 2, 3, 1})); }, {x});
}

// ---- concat ----

TEST(Shape, Concat) {
  Tensor a = tensor({{1, 2}, {3, 4}});
  Tensor b = tensor({{5, 6}});
  Tensor c = concat({a, b}, 0);
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  EXPECT_EQ(c.to_vector<float>(), (F{1, 2, 3, 4, 5, 6}));
  Tensor d = from_vector(F{7, 8}, {2, 1});
  Tensor e = concat({a, d, a}, -1);
  EXPECT_EQ(e.shape(), (Shape{2, 5}));
  EXPECT_EQ(e.to_vector<float>(), (F{1, 2, 7, 1, 2, 3, 4, 8, 3, 4}));
  // Middle axis of 3-D tensors, and an empty piece.
  Tensor x = arange(8).reshape({2, 2, 2}), y = full({2, 1, 2}, -1);
  EXPECT_EQ(concat({x, zeros({2, 0, 2}), y}, 1).to_vector<float>(), (F{0, 1, 2, 3, -1, -1, 4, 5, 6, 7, -1, -1}));
  EXPECT_EQ(concat({tensor({1, 2})}, 0).to_vector<float>(), (F{1, 2}));
  Tensor n = concat({idx64({1, 2}), idx64({3})}, 0);
  EXPECT_EQ(n.to_vector<std::int64_t>(), (I64{1, 2, 3}));
}

TEST(Shape, ConcatErrorsNameBothShapes) {
  EXPECT_EQ(error_of([] { concat({zeros({2, 3}), zeros({3, 4})}, 0); }),
            "concat: shapes must agree except on axis 0: input 0 is [2,3], input 1 is [3,4]");
  EXPECT_EQ(error_of([] { concat({zeros({2, 3}), zeros({2, 3, 1})}, 1); }),
            "concat: shapes must agree except on axis 1: input 0 is [2,3], input 1 is [2,3,1]");
  EXPECT_EQ(error_of([] { concat({zeros({2}), zeros({2}, DType::Int32)}, 0); }),
            "concat: dtypes differ: input 0 is float32, input 1 is int32");
  EXPECT_EQ(error_of([] { concat({}, 0); }), "concat: needs at least one tensor");
  EXPECT_EQ(error_of([] { concat({zeros({2})}, 1); }), "concat: axis 1 is out of range for a tensor of rank 1");
}

TEST(Grad, Concat) {
  manual_seed(17);
  Tensor a = random_normal({2, 3, 2}), b = random_normal({2, 1, 2}), c = random_normal({2, 4, 2});
  EXPECT_GRAD_MATCHES([&] { return concat({a, b, c}, 1); }, {a, b, c});
  EXPECT_GRAD_MATCHES([&] { return concat({a, a}, -1); }, {a});  // one input twice: gradients add
  Tensor k = tensor({1, 2});  // an input without gradient between two with
  EXPECT_GRAD_MATCHES([&] { return concat({flatten(a), reshape(k, {2, 1}), flatten(b)}, 1); }, {a, b});
}

// ---- slice and pad ----

TEST(Shape, Slice) {
  Tensor x = arange(12).reshape({3, 4});
  Tensor s = slice(x, {1, 1}, {2, 2});
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.to_vector<float>(), (F{5, 6, 9, 10}));
  EXPECT_EQ(slice(x, {0, 2}, {-1, -1}).to_vector<float>(), (F{2, 3, 6, 7, 10, 11}));
  EXPECT_EQ(slice(x, {2, 0}, {1, -1}).to_vector<float>(), (F{8, 9, 10, 11}));
  EXPECT_EQ(slice(x, {3, 0}, {-1, 4}).shape(), (Shape{0, 4}));
  Tensor y = arange(24).reshape({2, 3, 4});
  EXPECT_EQ(slice(y, {1, 0, 3}, {1, 3, 1}).to_vector<float>(), (F{15, 19, 23}));
  EXPECT_EQ(error_of([&] { slice(x, {2, 1}, {2, 1}); }),
            "slice: begin [2,1] size [2,1] is out of bounds for shape [3,4] (dimension 0)");
  EXPECT_EQ(error_of([&] { slice(x, {0, -1}, {1, 1}); }),
            "slice: begin [0,-1] size [1,1] is out of bounds for shape [3,4] (dimension 1)");
  EXPECT_EQ(error_of([&] { slice(x, {0}, {1}); }), "slice: begin [0] and size [1] need 2 entries for shape [3,4]");
}

TEST(Shape, Pad) {
  Tensor x = tensor({{1, 2}, {3, 4}});
  Tensor p = pad(x, {{1, 0}, {0, 2}}, 9.0f);
  EXPECT_EQ(p.shape(), (Shape{3, 4}));
  EXPECT_EQ(p.to_vector<float>(), (F{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9}));
  EXPECT_EQ(pad(tensor({5}), {{2, 1}}).to_vector<float>(), (F{0, 0, 5, 0}));
  Tensor n = pad(from_vector(std::vector<std::int32_t>{7}, {1, 1}), {{1, 1}, {0, 1}}, -1.0f);
  EXPECT_EQ(n.to_vector<std::int32_t>(), (std::vector<std::int32_t>{-1, -1, 7, -1, -1, -1}));
  EXPECT_EQ(pad(zeros({0, 2}), {{1, 0}, {0, 0}}, 3.0f).to_vector<float>(), (F{3, 3}));
  EXPECT_EQ(error_of([&] { pad(x, {{1, 1}}); }), "pad: 1 (before, after) pairs given for shape [2,2]");
  EXPECT_EQ(error_of([&] { pad(x, {{0, 0}, {-1, 0}}); }), "pad: negative padding (-1, 0) for dimension 1 of shape [2,2]");
}

TEST(Grad, SlicePad) {
  manual_seed(18);
  Tensor x = random_normal({3, 4, 5});
  EXPECT_GRAD_MATCHES([&] { return slice(x, {1, 0, 2}, {2, -1, 2}); }, {x});
  EXPECT_GRAD_MATCHES([&] { return pad(x, {{1, 0}, {0, 2}, {3, 1}}, 0.5f); }, {x});
  EXPECT_GRAD_MATCHES([&] { return slice(pad(square(x), {{0, 1}, {2, 2}, {1, 0}}), {1, 1, 1}, {3, 6, 4}); }, {x});
}

// ---- gather ----

TEST(Shape, Gather) {
  Tensor emb = tensor({{0, 1}, {10, 11}, {20, 21}});
  Tensor g = gather(emb, idx64({2, 0, 2}));
  EXPECT_EQ(g.shape(), (Shape{3, 2}));
  EXPECT_EQ(g.to_vector<float>(), (F{20, 21, 0, 1, 20, 21}));
  // 2-D int32 indices: out shape = indices.shape + [2].
  Tensor ids = from_vector(std::vector<std::int32_t>{1, 1, 0, 2}, {2, 2});
  Tensor g2 = gather(emb, ids);
  EXPECT_EQ(g2.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(g2.to_vector<float>(), (F{10, 11, 10, 11, 0, 1, 20, 21}));
  // axis 1 (and -1): columns picked per row.
  Tensor x = arange(12).reshape({3, 4});
  EXPECT_EQ(gather(x, idx64({3, 0}), 1).to_vector<float>(), (F{3, 0, 7, 4, 11, 8}));
  EXPECT_EQ(gather(x, idx64({1}), -1).shape(), (Shape{3, 1}));
  // Middle axis: [2,3,2] with indices [2] along axis 1 -> [2,2,2].
  Tensor y = arange(12).reshape({2, 3, 2});
  EXPECT_EQ(gather(y, idx64({2, 1}), 1).to_vector<float>(), (F{4, 5, 2, 3, 10, 11, 8, 9}));
  Tensor n = gather(idx64({5, 6, 7}), idx64({2, 2}));
  EXPECT_EQ(n.to_vector<std::int64_t>(), (I64{7, 7}));
}

TEST(Shape, GatherErrorsNameTheIndex) {
  Tensor emb = zeros({3, 2});
  EXPECT_EQ(error_of([&] { gather(emb, idx64({0, 5})); }),
            "gather: index 5 (at flat position 1 of indices) is out of range [0, 3) for axis 0 of params [3,2]");
  EXPECT_EQ(error_of([&] { gather(emb, idx64({-1}), 1); }),
            "gather: index -1 (at flat position 0 of indices) is out of range [0, 2) for axis 1 of params [3,2]");
  EXPECT_EQ(error_of([&] { gather(emb, tensor({1})); }), "gather: indices must be int32 or int64, got float32");
  EXPECT_EQ(error_of([&] { gather(emb, idx64({0}), 2); }), "gather: axis 2 is out of range for a tensor of rank 2");
}

TEST(Grad, GatherDuplicateIndicesAccumulate) {
  Tensor emb = zeros({4, 2}).requires_grad_();
  Tensor ids = from_vector(std::vector<std::int32_t>{0, 2, 0, 0, 3, 2}, {2, 3});
  Tensor w = from_vector(F{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
  sum(gather(emb, ids) * w).backward();
  // row 0 <- positions 0, 2, 3: (1+5+7, 2+6+8); row 2 <- positions 1, 5: (3+11, 4+12); row 3 <- 4.
  EXPECT_EQ(emb.grad().to_vector<float>(), (F{13, 16, 0, 0, 14, 16, 9, 10}));
  // Along axis 1.
  Tensor x = zeros({2, 3}).requires_grad_();
  sum(gather(x, idx64({2, 2, 0}), 1) * tensor({{1, 2, 3}, {4, 5, 6}})).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (F{3, 0, 3, 6, 0, 9}));
}

TEST(Grad, Gather) {
  manual_seed(19);
  Tensor p = random_normal({5, 3});
  Tensor ids = from_vector(I64{4, 0, 4, 1, 1, 1}, {2, 3});
  EXPECT_GRAD_MATCHES([&] { return gather(p, ids); }, {p});
  Tensor q = random_normal({2, 4, 3});
  EXPECT_GRAD_MATCHES([&] { return gather(q, idx64({3, 3, 0}), 1); }, {q});
  EXPECT_GRAD_MATCHES([&] { return gather(q, idx64({2, 0}), -1); }, {q});
  // The scatter-add helper's own gradient (a gather), for second derivatives.
  Tensor dy = random_normal({2, 3, 3});
  const Attrs a = Attrs().set("axis", std::int64_t{0}).set("shape", Shape{5, 3});
  EXPECT_GRAD_MATCHES([&] { return apply1(op_def("gather_grad"), {dy, ids}, a); }, {dy});
}

TEST(Shape, FastGatherGradMatchesReference) {
  manual_seed(20);
  struct Case {
    Shape params;
    Shape indices;
    std::int64_t axis;
  };
  for (const auto& c : std::vector<Case>{{{50, 256}, {4000}, 0}, {{64, 100, 8}, {300}, 1}, {{3, 7}, {20000}, 1}}) {
    Tensor ids = random_int(c.indices, 0, c.params[static_cast<std::size_t>(c.axis)]);
    Shape out = c.params;
    out.erase(out.begin() + c.axis);
    out.insert(out.begin() + c.axis, c.indices.begin(), c.indices.end());
    Tensor dy = random_normal(out);
    const Attrs a = Attrs().set("axis", c.axis).set("shape", c.params);
    const Tensor fast = apply1(op_def("gather_grad"), {dy, ids}, a);
    const Tensor ref = apply_reference(op_def("gather_grad"), {dy, ids}, a)[0];
    EXPECT_EQ(max_abs_diff(fast, ref), 0.0) << to_string(c.params);  // same order of additions
  }
}

// ---- one_hot ----

TEST(Shape, OneHot) {
  Tensor o = one_hot(idx64({2, 0, 3, -1}), 3);
  EXPECT_EQ(o.dtype(), DType::Float32);
  EXPECT_EQ(o.shape(), (Shape{4, 3}));
  // Out-of-range indices (3, -1) give all `off`, as in TensorFlow.
  EXPECT_EQ(o.to_vector<float>(), (F{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}));
  Tensor ids = from_vector(std::vector<std::int32_t>{1, 0, 0, 1}, {2, 2});
  Tensor t = one_hot(ids, 2, 5.0f, -1.0f);
  EXPECT_EQ(t.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(t.to_vector<float>(), (F{-1, 5, 5, -1, 5, -1, -1, 5}));
  EXPECT_EQ(error_of([] { one_hot(tensor({1}), 2); }), "one_hot: indices must be integers, got float32");
  EXPECT_EQ(error_of([] { one_hot(idx64({1}), -2); }), "one_hot: depth must be >= 0, got -2");
}
