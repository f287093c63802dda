// Matrix product: matmul(a, b, {transpose_a, transpose_b}).
//
//   a [..., m, k] (or [..., k, m] with transpose_a)  x  b [..., k, n] (or [..., n, k] with transpose_b)
//     -> [batch..., m, n], the leading (batch) dimensions broadcast as in NumPy.
//
// The transpose flags are attributes handed straight to sgemm (no transposed copies). The gradient
// is written with matmul itself, choosing transpose flags so that no operand is ever transposed in
// memory, and sum_to folds the gradient of a broadcast operand back to its shape.
#include <algorithm>

#include "backend/cpu/epilogue.h"
#include "backend/cpu/gemm.h"
#include "core/check.h"
#include "ops/dtype_dispatch.h"
#include "ops/families.h"
#include "synapse/op.h"
#include "synapse/ops.h"

namespace synapse {
namespace ops {
namespace {

// Everything the kernels need, derived from the two shapes and the flags.
struct MatmulGeometry {
  std::int64_t m = 0, n = 0, k = 0;
  Shape batch;  // broadcast batch dimensions of the output
  Shape a_batch, b_batch;
};

Shape leading(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

std::string flags_note(bool ta, bool tb) {
  if (ta && tb) return " (transpose_a, transpose_b)";
  if (ta) return " (transpose_a)";
  if (tb) return " (transpose_b)";
  return "";
}

MatmulGeometry matmul_geometry(const Shape& a, const Shape& b, bool ta, bool tb) {
  SYN_CHECK(a.size() >= 2 && b.size() >= 2, "operands must have at least 2 dimensions, got {} x {}", to_string(a),
            to_string(b));
  const std::size_t ra = a.size(), rb = b.size();
  MatmulGeometry g;
  g.m = ta ? a[ra - 1] : a[ra - 2];
  g.k = ta ? a[ra - 2] : a[ra - 1];
  const std::int64_t kb = tb ? b[rb - 1] : b[rb - 2];
  g.n = tb ? b[rb - 2] : b[rb - 1];
  SYN_CHECK(g.k == kb, "inner dimensions differ: {} x {}{}", to_string(a), to_string(b), flags_note(ta, tb));
  g.a_batch = leading(a);
  g.b_batch = leading(b);
  const std::size_t nb = std::max(g.a_batch.size(), g.b_batch.size());
  g.batch.assign(nb, 1);
  for (std::size_t i = 0; i < nb; ++i) {
    const std::int64_t da = i < nb - g.a_batch.size() ? 1 : g.a_batch[i - (nb - g.a_batch.size())];
    const std::int64_t db = i < nb - g.b_batch.size() ? 1 : g.b_batch[i - (nb - g.b_batch.size())];
    SYN_CHECK(da == db || da == 1 || db == 1, "batch dimensions do not broadcast: {} x {}", to_string(a), to_string(b));
    g.batch[i] = da == 1 ? db : da;
  }
  for (std::int64_t e : {g.m, g.n, g.k})
    SYN_CHECK(e <= cpu::kMaxGemmExtent, "matrix extent {} is too large for BLAS: {} x {}", e, to_string(a), to_string(b));
  return g;
}

MatmulGeometry geometry_of(const Shape& a, const Shape& b, const Attrs& at) {
  return matmul_geometry(a, b, at.b("transpose_a"), at.b("transpose_b"));
}

// Offsets (in matrices) into a batch of shape `own`, for each index of the broadcast batch `out`.
std::vector<std::int64_t> batch_offsets(const Shape& own, const Shape& out) {
  const std::size_t nd = out.size(), off = nd - own.size();
  std::vector<std::int64_t> stride(nd, 0);
  std::int64_t acc = 1;
  for (std::size_t i = own.size(); i-- > 0;) {
    stride[off + i] = own[i] == 1 ? 0 : acc;
    acc *= own[i];
  }
  std::vector<std::int64_t> result(static_cast<std::size_t>(numel(out)));
  std::vector<std::int64_t> idx(nd, 0);
  for (auto& r : result) {
    std::int64_t o = 0;
    for (std::size_t d = 0; d < nd; ++d) o += idx[d] * stride[d];
    r = o;
    for (std::size_t d = nd; d-- > 0;) {  // odometer increment
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  return result;
}

// Fast kernel: one sgemm when the batch folds into m, otherwise one sgemm per batch matrix.
void matmul_kernel(const KernelContext& c) {
  const bool ta = c.attrs.b("transpose_a"), tb = c.attrs.b("transpose_b");
  const MatmulGeometry g = geometry_of(c.in(0).shape(), c.in(1).shape(), c.attrs);
  const float* a = c.in(0).data<float>();
  const float* b = c.in(1).data<float>();
  float* y = c.out(0).data<float>();
  const std::int64_t nbatch = numel(g.batch);
  if (numel(g.b_batch) == 1 && !ta) {
    // b is one matrix shared by every batch and a's rows are contiguous: a is [batch*m, k].
    cpu::gemm({.trans_a = false, .trans_b = tb, .m = nbatch * g.m, .n = g.n, .k = g.k, .a = a, .b = b, .c = y});
    return;
  }
  const auto oa = batch_offsets(g.a_batch, g.batch);
  const auto ob = batch_offsets(g.b_batch, g.batch);
  const std::int64_t sa = g.m * g.k, sb = g.k * g.n, sy = g.m * g.n;
  for (std::int64_t i = 0; i < nbatch; ++i) {
    const auto u = static_cast<std::size_t>(i);
    cpu::gemm({.trans_a = ta, .trans_b = tb, .m = g.m, .n = g.n, .k = g.k, .a = a + oa[u] * sa, .b = b + ob[u] * sb,
               .c = y + i * sy});
  }
}

// Reference kernel: triple loop per output matrix, batch indices broadcast element by element.
void matmul_reference(const KernelContext& c) {
  const bool ta = c.attrs.b("transpose_a"), tb = c.attrs.b("transpose_b");
  const Shape& as = c.in(0).shape();
  const Shape& bs = c.in(1).shape();
  const MatmulGeometry g = geometry_of(as, bs, c.attrs);
  const float* a = c.in(0).data<float>();
  const float* b = c.in(1).data<float>();
  float* y = c.out(0).data<float>();
  const std::int64_t nbatch = numel(g.batch), nd = static_cast<std::int64_t>(g.batch.size());
  for (std::int64_t bi = 0; bi < nbatch; ++bi) {
    // Unravel bi over the output batch, then map onto each operand's batch (extent 1 = broadcast).
    std::int64_t ia = 0, ib = 0, mul_a = 1, mul_b = 1, rem = bi;
    for (std::int64_t d = nd - 1; d >= 0; --d) {
      const std::int64_t idx = rem % g.batch[static_cast<std::size_t>(d)];
      rem /= g.batch[static_cast<std::size_t>(d)];
      const std::int64_t da = d - (nd - static_cast<std::int64_t>(g.a_batch.size()));
      const std::int64_t db = d - (nd - static_cast<std::int64_t>(g.b_batch.size()));
      if (da >= 0) {
        const std::int64_t ext = g.a_batch[static_cast<std::size_t>(da)];
        ia += (ext == 1 ? 0 : idx) * mul_a;
        mul_a *= ext;
      }
      if (db >= 0) {
        const std::int64_t ext = g.b_batch[static_cast<std::size_t>(db)];
        ib += (ext == 1 ? 0 : idx) * mul_b;
        mul_b *= ext;
      }
    }
    const float* am = a + ia * g.m * g.k;
    const float* bm = b + ib * g.k * g.n;
    float* ym = y + bi * g.m * g.n;
    for (std::int64_t i = 0; i < g.m; ++i) {
      for (std::int64_t j = 0; j < g.n; ++j) {
        double acc = 0.0;
        for (std::int64_t p = 0; p < g.k; ++p) {
          const float av = ta ? am[p * g.m + i] : am[i * g.k + p];
          const float bv = tb ? bm[j * g.k + p] : bm[p * g.n + j];
          acc += static_cast<double>(av) * bv;
        }
        ym[i * g.n + j] = static_cast<float>(acc);
      }
    }
  }
}

Tensor mm(const Tensor& a, const Tensor& b, bool ta, bool tb) { return matmul(a, b, {ta, tb}); }

// Gradients of y = op(a) op(b) for 2-D or same-batch operands (before folding broadcast batches):
//   y = a b      : da = dy b^T,     db = a^T dy
//   y = a^T b    : da = b dy^T,     db = a dy
//   y = a b^T    : da = dy b,       db = dy^T a
//   y = a^T b^T  : da = b^T dy^T,   db = dy^T a^T
// Each product reads its operands through transpose flags; nothing is transposed in memory.
std::vector<Tensor> matmul_grads(const Tensor& a, const Tensor& b, const Tensor& dy, bool ta, bool tb, bool need_a,
                                 bool need_b) {
  Tensor da, db;
  if (need_a) da = ta ? (tb ? mm(b, dy, true, true) : mm(b, dy, false, true)) : mm(dy, b, false, !tb);
  if (need_b) db = tb ? (ta ? mm(dy, a, true, true) : mm(dy, a, true, false)) : mm(a, dy, !ta, false);
  return {da, db};
}

std::vector<Tensor> matmul_grad(const GradCtx& g) {
  const Tensor& a = g.x(0);
  const Tensor& b = g.x(1);
  const bool ta = g.attrs.b("transpose_a"), tb = g.attrs.b("transpose_b");
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  const MatmulGeometry geo = geometry_of(a.shape(), b.shape(), g.attrs);
  if (numel(geo.b_batch) == 1 && !ta && a.ndim() > 2) {
    // The forward folded the batch into m: so does the gradient, and b's gradient is one GEMM
    // over all batch rows instead of a batch of products summed afterwards.
    const std::int64_t rb = b.ndim();
    const std::int64_t rows = numel(geo.batch) * geo.m;  // explicit extents: -1 cannot resolve when k == 0
    const Tensor a2 = reshape(a, {rows, geo.k});
    const Tensor b2 = reshape(b, {b.dim(rb - 2), b.dim(rb - 1)});
    const Tensor dy2 = reshape(g.dy(), {rows, geo.n});
    auto d = matmul_grads(a2, b2, dy2, false, tb, need_a, need_b);
    return grads(need_a ? reshape(d[0], a.shape()) : Tensor(), need_b ? reshape(d[1], b.shape()) : Tensor());
  }
  auto d = matmul_grads(a, b, g.dy(), ta, tb, need_a, need_b);
  // Broadcast batch dimensions: sum the per-batch gradients back onto the operand's own shape.
  return grads(need_a ? sum_to(d[0], a.shape()) : Tensor(), need_b ? sum_to(d[1], b.shape()) : Tensor());
}

// ---- dense: y = act(x kernel + bias), a fully connected layer in one op ----
//
//   x [..., in]  kernel [in, units]  bias [units]  ->  y [..., units]; attribute "relu" (bool)
//
// TensorFlow's _FusedMatMul and PyTorch's linear + relu. One op instead of three: at batch 1 an eager
// op costs ~0.3 us of dispatch, more than the bias add and relu themselves (the 784-500-10 mlp at
// batch 1 ran 6 ops). The kernel writes the bias rows first and accumulates the product onto them
// (BLAS beta = 1, which also skips OpenBLAS's zeroing pass), then applies relu in place.

std::int64_t dense_rows(const Shape& x) {
  std::int64_t rows = 1;
  for (std::size_t d = 0; d + 1 < x.size(); ++d) rows *= x[d];
  return rows;
}

void dense_kernel(const KernelContext& c) {
  const Tensor& x = c.in(0);
  const std::int64_t in = c.in(1).dim(0), units = c.in(1).dim(1), rows = dense_rows(x.shape());
  const float* bias = c.in(2).data<float>();
  float* y = c.out(0).data<float>();
  cpu::parallel_fill_rows(y, bias, rows, units);
  cpu::gemm({.m = rows, .n = units, .k = in, .a = x.data<float>(), .b = c.in(1).data<float>(), .beta = 1.0f, .c = y});
  if (c.attrs.b("relu")) cpu::relu_in_place(y, rows * units);
}

void dense_reference(const KernelContext& c) {
  const float* x = c.in(0).data<float>();
  const float* w = c.in(1).data<float>();
  const float* bias = c.in(2).data<float>();
  float* y = c.out(0).data<float>();
  const std::int64_t in = c.in(1).dim(0), units = c.in(1).dim(1), rows = dense_rows(c.in(0).shape());
  const bool relu = c.attrs.b("relu");
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < units; ++j) {
      double acc = bias[j];
      for (std::int64_t p = 0; p < in; ++p) acc += static_cast<double>(x[r * in + p]) * w[p * units + j];
      y[r * units + j] = static_cast<float>(relu && acc < 0.0 ? 0.0 : acc);
    }
  }
}

// With z = x kernel + bias and y = act(z): dz = dy (masked where y = 0 for relu, as relu's own
// gradient), dx = dz kernel^T, dkernel = x^T dz (the leading dimensions folded into rows), dbias =
// dz summed over rows.
std::vector<Tensor> dense_grad(const GradCtx& g) {
  const Tensor& x = g.x(0);
  const Tensor& kernel = g.x(1);
  const Tensor dz = g.attrs.b("relu") ? relu_grad_from_output(g.y(), g.dy()) : g.dy();
  const std::int64_t in = kernel.dim(0), units = kernel.dim(1), rows = dense_rows(x.shape());
  const Tensor dz2 = reshape(dz, {rows, units});
  Tensor dx, dkernel, dbias;
  if (x.requires_grad()) dx = reshape(matmul(dz2, kernel, {.transpose_b = true}), x.shape());
  if (kernel.requires_grad()) dkernel = matmul(reshape(x, {rows, in}), dz2, {.transpose_a = true});
  if (g.x(2).requires_grad()) dbias = sum(dz2, {0});
  return grads(dx, dkernel, dbias);
}

}  // namespace

void register_matmul_ops() {
  define_op("dense")
      .inputs(3)
      .shape([](const std::vector<TensorMeta>& in, const Attrs&) {
        require_float(in[0].dtype, "x");
        require_float(in[1].dtype, "kernel");
        require_float(in[2].dtype, "bias");
        const Shape& x = in[0].shape;
        const Shape& w = in[1].shape;
        SYN_CHECK(w.size() == 2, "kernel must be [in, units], got {}", to_string(w));
        SYN_CHECK(x.size() >= 2 && x.back() == w[0], "expected x [..., {}] for kernel {}, got {}", w[0], to_string(w),
                  to_string(x));
        SYN_CHECK(in[2].shape.size() == 1 && in[2].shape[0] == w[1], "expected bias [{}] for kernel {}, got {}", w[1], to_string(w),
                  to_string(in[2].shape));
        for (std::int64_t e : {w[0], w[1], dense_rows(x)})
          SYN_CHECK(e <= cpu::kMaxGemmExtent, "matrix extent {} is too large for BLAS: {} x {}", e, to_string(x),
                    to_string(w));
        Shape out = x;
        out.back() = w[1];
        return one_output(std::move(out), DType::Float32);
      })
      .kernel(Device::CPU, dense_kernel)
      .reference(dense_reference)
      .flops([](const KernelContext& c) {
        return 2.0 * static_cast<double>(dense_rows(c.in(0).shape())) * static_cast<double>(c.in(1).numel());
      })
      .grad(dense_grad);

  define_op("matmul")
      .inputs(2)
      .shape([](const std::vector<TensorMeta>& in, const Attrs& at) {
        require_float(in[0].dtype, "a");
        require_float(in[1].dtype, "b");
        const MatmulGeometry g = geometry_of(in[0].shape, in[1].shape, at);
        Shape out = g.batch;
        out.push_back(g.m);
        out.push_back(g.n);
        return one_output(std::move(out), DType::Float32);
      })
      .kernel(Device::CPU, matmul_kernel)
      .reference(matmul_reference)
      .flops([](const KernelContext& c) {  // 2 k per output element
        const MatmulGeometry g = geometry_of(c.in(0).shape(), c.in(1).shape(), c.attrs);
        return 2.0 * static_cast<double>(c.out(0).numel()) * static_cast<double>(g.k);
      })
      .grad(matmul_grad);
}

}  // namespace ops

Tensor matmul(const Tensor& a, const Tensor& b, MatmulOptions opts) {
  static const OpDef& op = op_def("matmul");
  return apply1(op, {a, b}, Attrs().set("transpose_a", opts.transpose_a).set("transpose_b", opts.transpose_b));
}

Tensor dense(const Tensor& x, const Tensor& kernel, const Tensor& bias, DenseOpOptions opts) {
  static const OpDef& op = op_def("dense");
  return apply1(op, {x, kernel, bias}, Attrs().set("relu", opts.relu));
}

}  // namespace synapse
