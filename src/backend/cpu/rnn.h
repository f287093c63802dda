// Recurrent layers on the CPU: a whole sequence per call (as cuDNN, oneDNN and ONNX's LSTM node do),
// forward and back-propagation through time, on raw buffers.
//
// Shapes (row-major, batch-major as in Keras): x [B,T,I], kernel W [I,G*H], recurrent kernel U
// [H,G*H], with G gates in Keras' order: SimpleRNN 1; LSTM 4 (i, f, c, o); GRU 3 (z, r, h).
// lengths[b] in 1..T: steps t >= lengths[b] are padding (no state update, zero output). With
// `reverse` each sequence runs from step lengths[b]-1 down to 0; the output of step t is still at t.
//
// Forward, per step: one recurrent GEMM over the batch (the input projection of every step is one
// GEMM before the loop) and one fused pass over the gate pre-activations (AVX-512 exp, sigmoid and
// tanh). Backward, per step in reverse: one fused gate-backward pass and one GEMM dh_prev = dz U^T;
// then dx, dW and dU are one GEMM each over all steps and db the column sums.
#pragma once
#include <cstdint>

namespace synapse::cpu {

enum class RnnCell { Simple, LSTM, GRU };
enum class RnnAct { Tanh, Relu, Sigmoid, Linear, HardSigmoid };  // HardSigmoid: clip(0.2 x + 0.5, 0, 1)

struct RnnConfig {
  RnnCell cell = RnnCell::LSTM;
  RnnAct act = RnnAct::Tanh;          // candidate and output activation
  RnnAct rec_act = RnnAct::Sigmoid;   // gate activation (LSTM, GRU)
  bool reverse = false;
  bool reset_after = true;            // GRU: r applied after the recurrent product; bias [2, 3H]
  std::int64_t B = 0, T = 0, I = 0, H = 0;
  std::int64_t gates() const { return cell == RnnCell::LSTM ? 4 : cell == RnnCell::GRU ? 3 : 1; }
};

// What the forward writes besides y and the final state, for the backward ("saved"):
//   gates [B,T,G*H]: the activated gates of every step (LSTM i,f,g,o; GRU z,r,hh); not for SimpleRNN.
//   extra [B,T,H]:   LSTM: the cell state c_t; GRU reset_after: h_{t-1} U_h + b_rh (the recurrent part
//                    of the candidate before r); GRU otherwise: r * h_{t-1}. Not for SimpleRNN.
// All are zero at padded steps.
struct RnnForwardArgs {
  const float* x = nullptr;        // [B,T,I]
  const float* w = nullptr;        // [I,G*H]
  const float* u = nullptr;        // [H,G*H]
  const float* bias = nullptr;     // [G*H] ([2,3H] for GRU reset_after: input row, recurrent row)
  const float* h0 = nullptr;       // [B,H]
  const float* c0 = nullptr;       // [B,H], LSTM
  const std::int64_t* lengths = nullptr;  // [B], each in 1..T
  float* y = nullptr;              // [B,T,H]
  float* h_last = nullptr;         // [B,H]
  float* c_last = nullptr;         // [B,H], LSTM
  float* gates = nullptr;          // see above
  float* extra = nullptr;
};

struct RnnBackwardArgs {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* u = nullptr;
  const float* h0 = nullptr;
  const float* c0 = nullptr;
  const std::int64_t* lengths = nullptr;
  const float* y = nullptr;        // forward outputs
  const float* gates = nullptr;
  const float* extra = nullptr;
  const float* dy = nullptr;       // [B,T,H]
  const float* dh_last = nullptr;  // [B,H]
  const float* dc_last = nullptr;  // [B,H], LSTM
  float* dx = nullptr;             // [B,T,I]
  float* dw = nullptr;             // [I,G*H]
  float* du = nullptr;             // [H,G*H]
  float* dbias = nullptr;          // like bias
  float* dh0 = nullptr;            // [B,H]
  float* dc0 = nullptr;            // [B,H], LSTM
};

// Fast kernels. Inputs must be valid (lengths in 1..T); they never throw.
void rnn_forward(const RnnConfig& cfg, const RnnForwardArgs& a);
void rnn_backward(const RnnConfig& cfg, const RnnBackwardArgs& a);
// Naive references (plain loops, std::exp / std::tanh, one sequence at a time), for tests.
void rnn_forward_reference(const RnnConfig& cfg, const RnnForwardArgs& a);
void rnn_backward_reference(const RnnConfig& cfg, const RnnBackwardArgs& a);

}  // namespace synapse::cpu
