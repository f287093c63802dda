// Recurrent layers: fused per-step gate kernels around one recurrent GEMM per step (see rnn.h).
#include "backend/cpu/rnn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/epilogue.h"
#include "backend/cpu/gemm.h"
#include "core/parallel.h"
#include "backend/cpu/vec.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace synapse::cpu {
namespace {

// ---- a vector of floats: 16 lanes with AVX-512, one lane otherwise ----
// The gate kernels below are written once over V; load/store take the number of floats left, so the
// last vector of a row is masked.
#ifdef __AVX512F__
// The zero-masked forms with all lanes set: the plain _mm512_min_ps & co. start from
// _mm512_undefined_ps(), which GCC 12 reports as maybe-uninitialized once inlined here.
constexpr __mmask16 kAll = 0xFFFF;
constexpr std::int64_t kLanes = 16;
struct V {
  __m512 v;
};
inline V splat(float f) { return {_mm512_set1_ps(f)}; }
inline V operator+(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V operator-(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline V operator*(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline V operator/(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
inline __mmask16 lanes(std::int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline V load(const float* p, std::int64_t n) {
  return {n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes(n), p)};
}
inline void store(float* p, V a, std::int64_t n) {
  if (n >= 16) {
    _mm512_storeu_ps(p, a.v);
  } else {
    _mm512_mask_storeu_ps(p, lanes(n), a.v);
  }
}
// Clamps with the constant first, so a NaN in x comes through.
inline V clamp(V x, float lo, float hi) {
  return {_mm512_maskz_max_ps(kAll, _mm512_set1_ps(lo), _mm512_maskz_min_ps(kAll, _mm512_set1_ps(hi), x.v))};
}
// a where 0 < y (< 1 when `below_one`), else 0.
inline V where_positive(V y, V a, bool below_one = false) {
  __mmask16 m = _mm512_cmp_ps_mask(y.v, _mm512_setzero_ps(), _CMP_GT_OQ);
  if (below_one) m &= _mm512_cmp_ps_mask(y.v, _mm512_set1_ps(1.0f), _CMP_LT_OQ);
  return {_mm512_maskz_mov_ps(m, a.v)};
}
// exp(x): Cephes' expf (x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial), 2^n by scalef.
inline V vexp(V x) {
  x = clamp(x, -87.3f, 88.7f);
  const __m512 n = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x.v, _mm512_set1_ps(1.44269504088896341f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x.v);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return {_mm512_maskz_scalef_ps(kAll, p, n)};
}
inline V vmax0(V x) { return {_mm512_maskz_max_ps(kAll, x.v, _mm512_setzero_ps())}; }
#else
constexpr std::int64_t kLanes = 1;
struct V {
  float v;
};
inline V splat(float f) { return {f}; }
inline V operator+(V a, V b) { return {a.v + b.v}; }
inline V operator-(V a, V b) { return {a.v - b.v}; }
inline V operator*(V a, V b) { return {a.v * b.v}; }
inline V operator/(V a, V b) { return {a.v / b.v}; }
inline V load(const float* p, std::int64_t /*n*/) { return {*p}; }
inline void store(float* p, V a, std::int64_t /*n*/) { *p = a.v; }
inline V clamp(V x, float lo, float hi) { return {std::isnan(x.v) ? x.v : std::min(std::max(x.v, lo), hi)}; }
inline V where_positive(V y, V a, bool below_one = false) {
  return {y.v > 0.0f && (!below_one || y.v < 1.0f) ? a.v : 0.0f};
}
inline V vexp(V x) { return {std::exp(x.v)}; }
inline V vmax0(V x) { return {x.v < 0.0f ? 0.0f : x.v}; }
#endif

inline V vsigmoid(V x) { return splat(1.0f) / (splat(1.0f) + vexp(splat(0.0f) - x)); }
inline V vtanh(V x) { return splat(2.0f) * vsigmoid(splat(2.0f) * x) - splat(1.0f); }

inline V activate(V z, RnnAct a) {
  switch (a) {
    case RnnAct::Tanh: return vtanh(z);
    case RnnAct::Relu: return vmax0(z);
    case RnnAct::Sigmoid: return vsigmoid(z);
    case RnnAct::HardSigmoid: return clamp(splat(0.2f) * z + splat(0.5f), 0.0f, 1.0f);
    case RnnAct::Linear: break;
  }
  return z;
}

// The derivative of the activation, from its output y.
inline V derivative(V y, RnnAct a) {
  switch (a) {
    case RnnAct::Tanh: return splat(1.0f) - y * y;
    case RnnAct::Relu: return where_positive(y, splat(1.0f));
    case RnnAct::Sigmoid: return y * (splat(1.0f) - y);
    case RnnAct::HardSigmoid: return where_positive(y, splat(0.2f), true);
    case RnnAct::Linear: break;
  }
  return splat(1.0f);
}

// Per-thread buffers kept between calls (the same sizes come back every step of training, and at
// batch 1 an allocation would cost more than the step).
float* buffer(int slot, std::int64_t n) {
  thread_local std::vector<float> bufs[8];
  auto& b = bufs[slot];
  if (static_cast<std::int64_t>(b.size()) < n) b.resize(static_cast<std::size_t>(n));
  return b.data();
}

// Zeroes steps [lengths[b], T) of every row of a [B,T,width] buffer.
void zero_padding(float* p, const RnnConfig& c, const std::int64_t* lengths, std::int64_t width) {
  if (p == nullptr) return;
  for (std::int64_t b = 0; b < c.B; ++b)
    zero_floats(p + (b * c.T + lengths[b]) * width, (c.T - lengths[b]) * width);
}

// The time index of processing step s of row b, or -1 when the row has no step s.
inline std::int64_t step_time(const RnnConfig& c, std::int64_t len, std::int64_t s) {
  if (s >= len) return -1;
  return c.reverse ? len - 1 - s : s;
}
// The time index the state of step t came from, or -1 for the initial state.
inline std::int64_t prev_time(const RnnConfig& c, std::int64_t len, std::int64_t t) {
  if (c.reverse) return t + 1 < len ? t + 1 : -1;
  return t - 1;
}

// Runs f(b, t) over the rows with a step s, spread over the threads when the rows are wide enough.
template <class F> void for_active_rows(const RnnConfig& c, const std::int64_t* lengths, std::int64_t s, F&& f) {
  const std::int64_t grain = std::max<std::int64_t>(1, 32768 / (c.gates() * c.H * 8));
  parallel_for(0, c.B, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t b = lo; b < hi; ++b) {
      const std::int64_t t = step_time(c, lengths[b], s);
      if (t >= 0) f(b, t);
    }
  });
}

// f(j, n) for each vector of a row of H floats: from column j, n = H - j floats left.
template <class F> inline void for_lanes(std::int64_t H, F&& f) {
  for (std::int64_t j = 0; j < H; j += kLanes) f(j, H - j);
}

// ---- forward gate passes over one row ----
// One gate's activation: columns [off, off + n) of the input projection plus the recurrent product.
inline V gate(const float* xw, const float* rec, std::int64_t off, std::int64_t n, RnnAct a) {
  return activate(load(xw + off, n) + load(rec + off, n), a);
}

void lstm_row(const RnnConfig& c, const float* xw, const float* rec, float* h, float* cs, float* gates, float* cell,
              float* y) {
  const std::int64_t H = c.H;
  for_lanes(H, [&](std::int64_t j, std::int64_t n) {
    const V i = gate(xw, rec, j, n, c.rec_act), f = gate(xw, rec, H + j, n, c.rec_act);
    const V g = gate(xw, rec, 2 * H + j, n, c.act), o = gate(xw, rec, 3 * H + j, n, c.rec_act);
    const V cn = f * load(cs + j, n) + i * g;
    const V hn = o * activate(cn, c.act);
    store(gates + j, i, n);
    store(gates + H + j, f, n);
    store(gates + 2 * H + j, g, n);
    store(gates + 3 * H + j, o, n);
    store(cs + j, cn, n);
    store(cell + j, cn, n);
    store(h + j, hn, n);
    store(y + j, hn, n);
  });
}

// GRU, first pass: z and r; with reset_after also the candidate and the new state (rec holds
// h U + b_r); otherwise r * h_prev, which the second recurrent product needs.
void gru_row(const RnnConfig& c, const float* xw, const float* rec, float* h, float* gates, float* extra, float* y,
             float* rh) {
  const std::int64_t H = c.H;
  for_lanes(H, [&](std::int64_t j, std::int64_t n) {
    const V z = gate(xw, rec, j, n, c.rec_act), r = gate(xw, rec, H + j, n, c.rec_act);
    const V hp = load(h + j, n);
    store(gates + j, z, n);
    store(gates + H + j, r, n);
    if (c.reset_after) {
      const V rech = load(rec + 2 * H + j, n);
      const V hh = activate(load(xw + 2 * H + j, n) + r * rech, c.act);
      const V hn = z * hp + (splat(1.0f) - z) * hh;
      store(gates + 2 * H + j, hh, n);
      store(extra + j, rech, n);
      store(h + j, hn, n);
      store(y + j, hn, n);
    } else {
      const V v = r * hp;
      store(extra + j, v, n);
      store(rh + j, v, n);
    }
  });
}

// GRU without reset_after, second pass: rec_h = (r * h_prev) U_h.
void gru_row_candidate(const RnnConfig& c, const float* xw, const float* rec_h, float* h, float* gates, float* y) {
  const std::int64_t H = c.H;
  for_lanes(H, [&](std::int64_t j, std::int64_t n) {
    const V z = load(gates + j, n);
    const V hh = activate(load(xw + 2 * H + j, n) + load(rec_h + j, n), c.act);
    const V hn = z * load(h + j, n) + (splat(1.0f) - z) * hh;
    store(gates + 2 * H + j, hh, n);
    store(h + j, hn, n);
    store(y + j, hn, n);
  });
}

void simple_row(const RnnConfig& c, const float* xw, const float* rec, float* h, float* y) {
  for_lanes(c.H, [&](std::int64_t j, std::int64_t n) {
    const V hn = gate(xw, rec, j, n, c.act);
    store(h + j, hn, n);
    store(y + j, hn, n);
  });
}

// ---- backward gate passes over one row: dh is the gradient reaching h_t from later steps ----
// Each writes the pre-activation gradients dz to `dz` (the [B,T,G*H] buffer) and to `dzs` (the
// step's compact [B,G*H] rows for the recurrent GEMM).
void lstm_row_backward(const RnnConfig& c, const float* gates, const float* cell, const float* cprev, const float* dy,
                       const float* dh, float* dc, float* dz, float* dzs) {
  const std::int64_t H = c.H;
  for_lanes(H, [&](std::int64_t j, std::int64_t n) {
    const V i = load(gates + j, n), f = load(gates + H + j, n), g = load(gates + 2 * H + j, n),
            o = load(gates + 3 * H + j, n);
    const V ac = activate(load(cell + j, n), c.act);
    const V dhv = load(dh + j, n) + load(dy + j, n);
    const V dcv = load(dc + j, n) + dhv * o * derivative(ac, c.act);
    const V dzi = dcv * g * derivative(i, c.rec_act);
    const V dzf = dcv * load(cprev + j, n) * derivative(f, c.rec_act);
    const V dzg = dcv * i * derivative(g, c.act);
    const V dzo = dhv * ac * derivative(o, c.rec_act);
    store(dc + j, dcv * f, n);
    for (float* p : {dz, dzs}) {
      store(p + j, dzi, n);
      store(p + H + j, dzf, n);
      store(p + 2 * H + j, dzg, n);
      store(p + 3 * H + j, dzo, n);
    }
  });
}

// GRU: dz gets z and the candidate (and r with reset_after); `direct` = dh_t * z, the gradient that
// reaches h_{t-1} without a product. With reset_after the recurrent rows get r * dz_h (dzr, dzs).
void gru_row_backward(const RnnConfig& c, const float* gates, const float* extra, const float* hp, const float* dy,
                      const float* dh, float* dz, float* dzr, float* dzs, float* direct) {
  const std::int64_t H = c.H;
  for_lanes(H, [&](std::int64_t j, std::int64_t n) {
    const V z = load(gates + j, n), r = load(gates + H + j, n), hh = load(gates + 2 * H + j, n);
    const V dhv = load(dh + j, n) + load(dy + j, n);
    const V dzz = dhv * (load(hp + j, n) - hh) * derivative(z, c.rec_act);
    const V dzh = dhv * (splat(1.0f) - z) * derivative(hh, c.act);
    store(direct + j, dhv * z, n);
    store(dz + j, dzz, n);
    store(dzs + j, dzz, n);
    store(dz + 2 * H + j, dzh, n);
    if (c.reset_after) {
      const V dzrr = dzh * load(extra + j, n) * derivative(r, c.rec_act);
      store(dz + H + j, dzrr, n);
      store(dzr + j, dzz, n);
      store(dzr + H + j, dzrr, n);
      store(dzs + H + j, dzrr, n);
      store(dzr + 2 * H + j, dzh * r, n);
      store(dzs + 2 * H + j, dzh * r, n);
    } else {
      store(dzs + 2 * H + j, dzh, n);
    }
  });
}

// GRU without reset_after, second pass: drh = dz_h U_h^T gives dr and adds drh * r to `direct`.
void gru_row_backward_reset(const RnnConfig& c, const float* gates, const float* hp, const float* drh, float* dz,
                            float* dzs, float* direct) {
  const std::int64_t H = c.H;
  for_lanes(H, [&](std::int64_t j, std::int64_t n) {
    const V r = load(gates + H + j, n), d = load(drh + j, n);
    const V dzrr = d * load(hp + j, n) * derivative(r, c.rec_act);
    store(dz + H + j, dzrr, n);
    store(dzs + H + j, dzrr, n);
    store(direct + j, load(direct + j, n) + d * r, n);
  });
}

void simple_row_backward(const RnnConfig& c, const float* y, const float* dy, const float* dh, float* dz, float* dzs) {
  for_lanes(c.H, [&](std::int64_t j, std::int64_t n) {
    const V d = (load(dh + j, n) + load(dy + j, n)) * derivative(load(y + j, n), c.act);
    store(dz + j, d, n);
    store(dzs + j, d, n);
  });
}

// Column sums of a [rows, n] matrix into out[n].
void column_sums(const float* m, std::int64_t rows, std::int64_t n, float* out) {
  zero_floats(out, n);
  for (std::int64_t r = 0; r < rows; ++r) add_floats(out, m + r * n, n);
}

}  // namespace

void rnn_forward(const RnnConfig& c, const RnnForwardArgs& a) {
  const std::int64_t B = c.B, T = c.T, I = c.I, H = c.H, GH = c.gates() * H;
  const bool lstm = c.cell == RnnCell::LSTM, gru = c.cell == RnnCell::GRU;
  const bool split = gru && !c.reset_after;  // the candidate's recurrent product comes after r
  if (B == 0) return;
  float* xw = buffer(0, B * T * GH);
  float* rec = buffer(1, B * GH);
  float* h = buffer(2, B * H);
  float* cs = buffer(3, B * H);
  float* rh = buffer(4, B * H);
  // The input projection of every step at once, onto the input bias.
  parallel_fill_rows(xw, a.bias, B * T, GH);
  gemm({.m = B * T, .n = GH, .k = I, .a = a.x, .b = a.w, .beta = 1.0f, .c = xw});
  copy_floats(h, a.h0, B * H);
  if (lstm) copy_floats(cs, a.c0, B * H);
  if (split) zero_floats(rh, B * H);
  zero_padding(a.y, c, a.lengths, H);
  zero_padding(a.gates, c, a.lengths, GH);
  zero_padding(a.extra, c, a.lengths, H);
  const float* rec_bias = gru && c.reset_after ? a.bias + GH : nullptr;
  const std::int64_t max_len = *std::max_element(a.lengths, a.lengths + B);
  for (std::int64_t s = 0; s < max_len; ++s) {
    if (rec_bias != nullptr) fill_rows(rec, rec_bias, B, GH);
    gemm({.m = B, .n = split ? 2 * H : GH, .k = H, .a = h, .b = a.u, .ldb = GH, .beta = rec_bias ? 1.0f : 0.0f, .c = rec,
          .ldc = GH});
    for_active_rows(c, a.lengths, s, [&](std::int64_t b, std::int64_t t) {
      const std::int64_t bt = b * T + t;
      if (lstm) {
        lstm_row(c, xw + bt * GH, rec + b * GH, h + b * H, cs + b * H, a.gates + bt * GH, a.extra + bt * H, a.y + bt * H);
      } else if (gru) {
        gru_row(c, xw + bt * GH, rec + b * GH, h + b * H, a.gates + bt * GH, a.extra + bt * H, a.y + bt * H, rh + b * H);
      } else {
        simple_row(c, xw + bt * GH, rec + b * GH, h + b * H, a.y + bt * H);
      }
    });
    if (split) {
      gemm({.m = B, .n = H, .k = H, .a = rh, .b = a.u + 2 * H, .ldb = GH, .c = rec + 2 * H, .ldc = GH});
      for_active_rows(c, a.lengths, s, [&](std::int64_t b, std::int64_t t) {
        const std::int64_t bt = b * T + t;
        gru_row_candidate(c, xw + bt * GH, rec + b * GH + 2 * H, h + b * H, a.gates + bt * GH, a.y + bt * H);
      });
    }
  }
  copy_floats(a.h_last, h, B * H);
  if (lstm) copy_floats(a.c_last, cs, B * H);
}

void rnn_backward(const RnnConfig& c, const RnnBackwardArgs& a) {
  const std::int64_t B = c.B, T = c.T, I = c.I, H = c.H, GH = c.gates() * H;
  const bool lstm = c.cell == RnnCell::LSTM, gru = c.cell == RnnCell::GRU;
  const bool split = gru && !c.reset_after;
  const bool two_dz = gru && c.reset_after;  // the recurrent rows' dz differs from the input rows'
  if (B == 0) return;
  float* dz = buffer(0, B * T * GH);
  float* dzr = two_dz ? buffer(1, B * T * GH) : dz;
  float* hprev = buffer(2, B * T * H);
  float* dzs = buffer(3, B * GH);
  float* tmp = buffer(4, B * H);
  float* direct = buffer(5, B * H);
  zero_padding(dz, c, a.lengths, GH);
  if (two_dz) zero_padding(dzr, c, a.lengths, GH);
  zero_padding(hprev, c, a.lengths, H);
  zero_floats(dzs, B * GH);
  zero_floats(direct, B * H);
  float* dh = a.dh0;  // the running gradient of the state, left as dh0 at the end
  float* dc = a.dc0;
  copy_floats(dh, a.dh_last, B * H);
  if (lstm) copy_floats(dc, a.dc_last, B * H);
  const std::int64_t max_len = *std::max_element(a.lengths, a.lengths + B);
  for (std::int64_t s = max_len - 1; s >= 0; --s) {
    for_active_rows(c, a.lengths, s, [&](std::int64_t b, std::int64_t t) {
      const std::int64_t bt = b * T + t, tp = prev_time(c, a.lengths[b], t);
      const float* hp = tp < 0 ? a.h0 + b * H : a.y + (b * T + tp) * H;
      copy_floats(hprev + bt * H, hp, H);
      if (lstm) {
        const float* cp = tp < 0 ? a.c0 + b * H : a.extra + (b * T + tp) * H;
        lstm_row_backward(c, a.gates + bt * GH, a.extra + bt * H, cp, a.dy + bt * H, dh + b * H, dc + b * H,
                          dz + bt * GH, dzs + b * GH);
      } else if (gru) {
        gru_row_backward(c, a.gates + bt * GH, a.extra + bt * H, hp, a.dy + bt * H, dh + b * H, dz + bt * GH,
                         dzr + bt * GH, dzs + b * GH, direct + b * H);
      } else {
        simple_row_backward(c, a.y + bt * H, a.dy + bt * H, dh + b * H, dz + bt * GH, dzs + b * GH);
      }
    });
    if (split) {  // drh = dz_h U_h^T, then dr
      gemm({.trans_b = true, .m = B, .n = H, .k = H, .a = dzs + 2 * H, .lda = GH, .b = a.u + 2 * H, .ldb = GH, .c = tmp});
      for_active_rows(c, a.lengths, s, [&](std::int64_t b, std::int64_t t) {
        const std::int64_t bt = b * T + t;
        gru_row_backward_reset(c, a.gates + bt * GH, hprev + bt * H, tmp + b * H, dz + bt * GH, dzs + b * GH,
                               direct + b * H);
      });
    }
    // dh_{t-1} = dz U^T (+ the direct part), for the rows that had a step.
    gemm({.trans_b = true, .m = B, .n = H, .k = split ? 2 * H : GH, .a = dzs, .lda = GH, .b = a.u, .ldb = GH, .c = tmp});
    for (std::int64_t b = 0; b < B; ++b) {
      if (step_time(c, a.lengths[b], s) < 0) continue;
      copy_floats(dh + b * H, tmp + b * H, H);
      if (gru) add_floats(dh + b * H, direct + b * H, H);
    }
  }
  // Weight gradients: one GEMM each over all steps.
  gemm({.trans_b = true, .m = B * T, .n = I, .k = GH, .a = dz, .b = a.w, .c = a.dx});
  gemm({.trans_a = true, .m = I, .n = GH, .k = B * T, .a = a.x, .b = dz, .c = a.dw});
  if (split) {
    gemm({.trans_a = true, .m = H, .n = 2 * H, .k = B * T, .a = hprev, .b = dz, .ldb = GH, .c = a.du, .ldc = GH});
    gemm({.trans_a = true, .m = H, .n = H, .k = B * T, .a = a.extra, .b = dz + 2 * H, .ldb = GH, .c = a.du + 2 * H,
          .ldc = GH});
  } else {
    gemm({.trans_a = true, .m = H, .n = GH, .k = B * T, .a = hprev, .b = dzr, .c = a.du});
  }
  column_sums(dz, B * T, GH, a.dbias);
  if (two_dz) column_sums(dzr, B * T, GH, a.dbias + GH);
}

// ---- references: one sequence at a time, plain loops ----
namespace {

float act_ref(float z, RnnAct a) {
  switch (a) {
    case RnnAct::Tanh: return std::tanh(z);
    case RnnAct::Relu: return z > 0.0f ? z : 0.0f;
    case RnnAct::Sigmoid: return 1.0f / (1.0f + std::exp(-z));
    case RnnAct::HardSigmoid: return std::min(1.0f, std::max(0.0f, 0.2f * z + 0.5f));
    case RnnAct::Linear: break;
  }
  return z;
}

// d act / dz, from the activation's output y.
float dact_ref(float y, RnnAct a) {
  switch (a) {
    case RnnAct::Tanh: return 1.0f - y * y;
    case RnnAct::Relu: return y > 0.0f ? 1.0f : 0.0f;
    case RnnAct::Sigmoid: return y * (1.0f - y);
    case RnnAct::HardSigmoid: return y > 0.0f && y < 1.0f ? 0.2f : 0.0f;
    case RnnAct::Linear: break;
  }
  return 1.0f;
}

// out[n] (+)= v[k] M[k, cols] restricted to columns [c0, c0 + n) of M (ld columns per row).
void vec_mat(const float* v, const float* m, std::int64_t k, std::int64_t ld, std::int64_t c0, std::int64_t n,
             float* out) {
  for (std::int64_t j = 0; j < n; ++j) {
    double acc = 0.0;
    for (std::int64_t p = 0; p < k; ++p) acc += static_cast<double>(v[p]) * m[p * ld + c0 + j];
    out[j] += static_cast<float>(acc);
  }
}

// The pre-activations of one step, recomputed from scratch: zx = x W + b_in (all G*H columns) and
// zh = h U (+ b_rec for GRU reset_after). For GRU without reset_after zh's candidate columns hold
// (r * h) U_h, which needs r: computed here too.
struct RefStep {
  std::vector<float> zx, zh;
};

RefStep ref_preactivations(const RnnConfig& c, const float* xt, const float* w, const float* u, const float* bias,
                           const float* hp) {
  const std::int64_t H = c.H, GH = c.gates() * H;
  RefStep st{std::vector<float>(bias, bias + GH), std::vector<float>(static_cast<std::size_t>(GH), 0.0f)};
  vec_mat(xt, w, c.I, GH, 0, GH, st.zx.data());
  const bool gru = c.cell == RnnCell::GRU;
  if (gru && c.reset_after)
    for (std::int64_t j = 0; j < GH; ++j) st.zh[static_cast<std::size_t>(j)] = bias[GH + j];
  if (gru && !c.reset_after) {
    vec_mat(hp, u, H, GH, 0, 2 * H, st.zh.data());
    std::vector<float> rh(static_cast<std::size_t>(H));
    for (std::int64_t j = 0; j < H; ++j)
      rh[static_cast<std::size_t>(j)] = act_ref(st.zx[static_cast<std::size_t>(H + j)] + st.zh[static_cast<std::size_t>(H + j)], c.rec_act) * hp[j];
    vec_mat(rh.data(), u, H, GH, 2 * H, H, st.zh.data() + 2 * H);
  } else {
    vec_mat(hp, u, H, GH, 0, GH, st.zh.data());
  }
  return st;
}

}  // namespace

void rnn_forward_reference(const RnnConfig& c, const RnnForwardArgs& a) {
  const std::int64_t T = c.T, I = c.I, H = c.H, GH = c.gates() * H;
  const bool lstm = c.cell == RnnCell::LSTM, gru = c.cell == RnnCell::GRU;
  for (std::int64_t b = 0; b < c.B; ++b) {
    std::vector<float> h(a.h0 + b * H, a.h0 + (b + 1) * H), cs(static_cast<std::size_t>(H), 0.0f);
    if (lstm) cs.assign(a.c0 + b * H, a.c0 + (b + 1) * H);
    for (std::int64_t t = 0; t < T; ++t) {
      std::fill(a.y + (b * T + t) * H, a.y + (b * T + t + 1) * H, 0.0f);
      if (a.gates != nullptr) std::fill(a.gates + (b * T + t) * GH, a.gates + (b * T + t + 1) * GH, 0.0f);
      if (a.extra != nullptr) std::fill(a.extra + (b * T + t) * H, a.extra + (b * T + t + 1) * H, 0.0f);
    }
    const std::int64_t len = a.lengths[b];
    for (std::int64_t s = 0; s < len; ++s) {
      const std::int64_t t = c.reverse ? len - 1 - s : s, bt = b * T + t;
      const RefStep st = ref_preactivations(c, a.x + bt * I, a.w, a.u, a.bias, h.data());
      float* g = a.gates != nullptr ? a.gates + bt * GH : nullptr;
      for (std::int64_t j = 0; j < H; ++j) {
        auto z = [&](std::int64_t k) { return st.zx[static_cast<std::size_t>(k * H + j)] + st.zh[static_cast<std::size_t>(k * H + j)]; };
        const auto uj = static_cast<std::size_t>(j);
        if (lstm) {
          const float i = act_ref(z(0), c.rec_act), f = act_ref(z(1), c.rec_act), gg = act_ref(z(2), c.act),
                      o = act_ref(z(3), c.rec_act);
          cs[uj] = f * cs[uj] + i * gg;
          const float hn = o * act_ref(cs[uj], c.act);
          g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
          a.extra[bt * H + j] = cs[uj];
          a.y[bt * H + j] = hn;
        } else if (gru) {
          const float zz = act_ref(z(0), c.rec_act), r = act_ref(z(1), c.rec_act);
          const float rec_h = st.zh[static_cast<std::size_t>(2 * H + j)];
          const float hh = act_ref(st.zx[static_cast<std::size_t>(2 * H + j)] + (c.reset_after ? r * rec_h : rec_h), c.act);
          g[j] = zz, g[H + j] = r, g[2 * H + j] = hh;
          a.extra[bt * H + j] = c.reset_after ? rec_h : r * h[uj];
          a.y[bt * H + j] = zz * h[uj] + (1.0f - zz) * hh;
        } else {
          a.y[bt * H + j] = act_ref(z(0), c.act);
        }
      }
      std::copy(a.y + bt * H, a.y + (bt + 1) * H, h.begin());
    }
    std::copy(h.begin(), h.end(), a.h_last + b * H);
    if (lstm) std::copy(cs.begin(), cs.end(), a.c_last + b * H);
  }
}

// The chain rule element by element for one sequence at a time, from the saved gates (and LSTM cell
// states); the recurrent products as plain loops.
void rnn_backward_reference(const RnnConfig& c, const RnnBackwardArgs& a) {
  const std::int64_t T = c.T, I = c.I, H = c.H, GH = c.gates() * H;
  const bool lstm = c.cell == RnnCell::LSTM, gru = c.cell == RnnCell::GRU;
  const std::int64_t nbias = gru && c.reset_after ? 2 * GH : GH;
  std::fill(a.dw, a.dw + I * GH, 0.0f);
  std::fill(a.du, a.du + H * GH, 0.0f);
  std::fill(a.dbias, a.dbias + nbias, 0.0f);
  std::fill(a.dx, a.dx + c.B * T * I, 0.0f);
  using Vec = std::vector<float>;
  for (std::int64_t b = 0; b < c.B; ++b) {
    Vec dh(a.dh_last + b * H, a.dh_last + (b + 1) * H), dc(static_cast<std::size_t>(H), 0.0f);
    if (lstm) dc.assign(a.dc_last + b * H, a.dc_last + (b + 1) * H);
    const std::int64_t len = a.lengths[b];
    for (std::int64_t s = len - 1; s >= 0; --s) {
      const std::int64_t t = c.reverse ? len - 1 - s : s, bt = b * T + t;
      const std::int64_t tp = c.reverse ? (t + 1 < len ? t + 1 : -1) : t - 1;
      const float* hp = tp < 0 ? a.h0 + b * H : a.y + (b * T + tp) * H;
      const float* g = a.gates != nullptr ? a.gates + bt * GH : nullptr;
      // dzx: gradient of the input-side pre-activations; dzh: of the recurrent side (they differ for
      // GRU's candidate); dhp: parts of dh_prev that bypass U; rh: GRU's r * h_prev.
      Vec dzx(static_cast<std::size_t>(GH)), dzh(static_cast<std::size_t>(GH)), dhp(static_cast<std::size_t>(H), 0.0f),
          rh(static_cast<std::size_t>(H), 0.0f);
      auto at = [](Vec& v, std::int64_t k) -> float& { return v[static_cast<std::size_t>(k)]; };
      for (std::int64_t j = 0; j < H; ++j) {
        const float d = at(dh, j) + a.dy[bt * H + j];
        if (lstm) {
          const float* cprev = tp < 0 ? a.c0 + b * H : a.extra + (b * T + tp) * H;
          const float i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
          const float ac = act_ref(a.extra[bt * H + j], c.act);
          const float dct = at(dc, j) + d * o * dact_ref(ac, c.act);
          at(dzx, j) = dct * gg * dact_ref(i, c.rec_act);
          at(dzx, H + j) = dct * cprev[j] * dact_ref(f, c.rec_act);
          at(dzx, 2 * H + j) = dct * i * dact_ref(gg, c.act);
          at(dzx, 3 * H + j) = d * ac * dact_ref(o, c.rec_act);
          at(dc, j) = dct * f;
        } else if (gru) {
          const float z = g[j], r = g[H + j], hh = g[2 * H + j];
          const float dzz = d * (hp[j] - hh) * dact_ref(z, c.rec_act), dzc = d * (1.0f - z) * dact_ref(hh, c.act);
          at(dzx, j) = at(dzh, j) = dzz;
          at(dzx, 2 * H + j) = dzc;
          at(dhp, j) += d * z;
          if (c.reset_after) {
            at(dzx, H + j) = at(dzh, H + j) = dzc * a.extra[bt * H + j] * dact_ref(r, c.rec_act);
            at(dzh, 2 * H + j) = dzc * r;
          } else {
            at(dzh, 2 * H + j) = dzc;
            at(rh, j) = r * hp[j];
          }
        } else {
          at(dzx, j) = d * dact_ref(a.y[bt * H + j], c.act);
        }
      }
      if (gru && !c.reset_after) {  // dr through (r * h_prev) U_h
        for (std::int64_t j = 0; j < H; ++j) {
          double drh = 0.0;
          for (std::int64_t k = 0; k < H; ++k) drh += static_cast<double>(at(dzx, 2 * H + k)) * a.u[j * GH + 2 * H + k];
          const float r = g[H + j];
          at(dzx, H + j) = at(dzh, H + j) = static_cast<float>(drh) * hp[j] * dact_ref(r, c.rec_act);
          at(dhp, j) += static_cast<float>(drh) * r;
        }
      }
      if (!gru) dzh = dzx;
      // dx_t = W dzx, dW += x_t^T dzx, dU += h_prev^T dzh ((r h_prev)^T for GRU's candidate without
      // reset_after), db += dz, dh_prev = U dzh + dhp.
      for (std::int64_t p = 0; p < I; ++p) {
        double acc = 0.0;
        for (std::int64_t k = 0; k < GH; ++k) {
          acc += static_cast<double>(a.w[p * GH + k]) * at(dzx, k);
          a.dw[p * GH + k] += a.x[bt * I + p] * at(dzx, k);
        }
        a.dx[bt * I + p] = static_cast<float>(acc);
      }
      for (std::int64_t p = 0; p < H; ++p) {
        double acc = 0.0;
        for (std::int64_t k = 0; k < GH; ++k) {
          const bool candidate_of_split = gru && !c.reset_after && k >= 2 * H;
          if (!candidate_of_split) acc += static_cast<double>(a.u[p * GH + k]) * at(dzh, k);
          a.du[p * GH + k] += (candidate_of_split ? at(rh, p) : hp[p]) * at(dzh, k);
        }
        at(dh, p) = static_cast<float>(acc) + at(dhp, p);
      }
      for (std::int64_t k = 0; k < GH; ++k) {
        a.dbias[k] += at(dzx, k);
        if (gru && c.reset_after) a.dbias[GH + k] += at(dzh, k);
      }
    }
    std::copy(dh.begin(), dh.end(), a.dh0 + b * H);
    if (lstm) std::copy(dc.begin(), dc.end(), a.dc0 + b * H);
  }
}

}  // namespace synapse::cpu
