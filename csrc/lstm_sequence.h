// Argument checks and layout shared by the CPU and CUDA implementations of
// ktorch::lstm_sequence and ktorch::lstm_sequence_backward.
//
// Shapes: inputs (B, T, F) batch-first, kernel (F, 4U), recurrent_kernel (U, 4U), bias (4U),
// h0 and c0 (B, U), mask (B, T) bool; gate order i, f, c (candidate), o as in Keras.
//
// Step p of the recurrence (p = 0 .. T-1) reads input step t = p, or t = T-1-p with
// go_backwards. `output` (B, T, U) is indexed by p (Keras returns the outputs in processing
// order). The saved tensors are time-major and indexed by the input step t, so that each step
// works on contiguous (B, n) slabs and the weight gradients are single GEMMs over all steps:
//   gates   (T, B, 4U)  activated gates of step t (their pre-activations where t is masked);
//   h_prev  (T, B, U)   the state h that step t started from (h0 for the first step);
//   c_seq   (T, B, U)   the carry state c after step t.
#pragma once

#include <torch/all.h>

#include <tuple>

namespace ktorch {

struct LstmSizes {
  int64_t batch;
  int64_t steps;
  int64_t features;
  int64_t units;
};

inline void check_lstm_tensor(const char* op, const char* name, const at::Tensor& t,
                              const at::Tensor& like, at::IntArrayRef shape) {
  TORCH_CHECK(t.sizes() == shape, op, ": argument ", name, " must have shape ", shape,
              ". Received: ", name, ".shape=", t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), op, ": argument ", name,
              " must have the dtype of inputs (", like.scalar_type(), "). Received: dtype=",
              t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), op, ": argument ", name,
              " must be on the device of inputs (", like.device(), "). Received: device=",
              t.device());
  TORCH_CHECK(t.is_contiguous(), op, ": argument ", name,
              " must be contiguous; call .contiguous() on it first. Received: strides=",
              t.strides());
}

inline void check_lstm_mask(const char* op, const c10::optional<at::Tensor>& mask,
                            const at::Tensor& inputs, int64_t batch, int64_t steps) {
  if (!mask.has_value()) {
    return;
  }
  TORCH_CHECK(mask->scalar_type() == at::kBool, op,
              ": argument mask must be a bool tensor. Received: dtype=", mask->scalar_type());
  TORCH_CHECK(mask->sizes() == at::IntArrayRef({batch, steps}), op,
              ": argument mask must have shape (batch, timesteps) = (", batch, ", ", steps,
              "). Received: mask.shape=", mask->sizes());
  TORCH_CHECK(mask->device() == inputs.device(), op,
              ": argument mask must be on the device of inputs (", inputs.device(),
              "). Received: device=", mask->device());
  TORCH_CHECK(mask->is_contiguous(), op,
              ": argument mask must be contiguous; call .contiguous() on it first.");
}

inline LstmSizes check_lstm_weights(const char* op, const at::Tensor& inputs,
                                    const at::Tensor& kernel,
                                    const at::Tensor& recurrent_kernel) {
  const auto dtype = inputs.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                  dtype == at::kBFloat16,
              op, ": argument inputs must be float32, float64, float16 or bfloat16. Received: "
              "dtype=", dtype);
  TORCH_CHECK(inputs.dim() == 3, op,
              ": argument inputs must have shape (batch, timesteps, features). Received: "
              "inputs.shape=", inputs.sizes());
  TORCH_CHECK(inputs.is_contiguous(), op,
              ": argument inputs must be contiguous; call .contiguous() on it first.");
  TORCH_CHECK(recurrent_kernel.dim() == 2, op,
              ": argument recurrent_kernel must have shape (units, 4 * units). Received: "
              "recurrent_kernel.shape=", recurrent_kernel.sizes());
  const LstmSizes s{inputs.size(0), inputs.size(1), inputs.size(2), recurrent_kernel.size(0)};
  check_lstm_tensor(op, "kernel", kernel, inputs, {s.features, 4 * s.units});
  check_lstm_tensor(op, "recurrent_kernel", recurrent_kernel, inputs, {s.units, 4 * s.units});
  return s;
}

inline LstmSizes check_lstm_forward(const char* op, const at::Tensor& inputs,
                                    const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
                                    const c10::optional<at::Tensor>& bias, const at::Tensor& h0,
                                    const at::Tensor& c0,
                                    const c10::optional<at::Tensor>& mask) {
  const LstmSizes s = check_lstm_weights(op, inputs, kernel, recurrent_kernel);
  if (bias.has_value()) {
    check_lstm_tensor(op, "bias", *bias, inputs, {4 * s.units});
  }
  check_lstm_tensor(op, "h0", h0, inputs, {s.batch, s.units});
  check_lstm_tensor(op, "c0", c0, inputs, {s.batch, s.units});
  check_lstm_mask(op, mask, inputs, s.batch, s.steps);
  return s;
}

inline LstmSizes check_lstm_backward(const char* op, const at::Tensor& inputs,
                                     const at::Tensor& kernel,
                                     const at::Tensor& recurrent_kernel, const at::Tensor& c0,
                                     const c10::optional<at::Tensor>& mask,
                                     const at::Tensor& gates, const at::Tensor& h_prev,
                                     const at::Tensor& c_seq) {
  const LstmSizes s = check_lstm_weights(op, inputs, kernel, recurrent_kernel);
  check_lstm_tensor(op, "c0", c0, inputs, {s.batch, s.units});
  check_lstm_mask(op, mask, inputs, s.batch, s.steps);
  check_lstm_tensor(op, "gates", gates, inputs, {s.steps, s.batch, 4 * s.units});
  check_lstm_tensor(op, "h_prev", h_prev, inputs, {s.steps, s.batch, s.units});
  check_lstm_tensor(op, "c_seq", c_seq, inputs, {s.steps, s.batch, s.units});
  return s;
}

// A gradient of an output, zeros where autograd passes none.
inline at::Tensor lstm_grad_or_zeros(const c10::optional<at::Tensor>& grad, const char* op,
                                     const char* name, const at::Tensor& like,
                                     at::IntArrayRef shape) {
  if (!grad.has_value()) {
    return at::zeros(shape, like.options());
  }
  check_lstm_tensor(op, name, *grad, like, shape);
  return *grad;
}

// Which outputs keep their value (the others are zero), as bool (B, T) indexed by input step:
// with zero_output_for_mask the unmasked steps; otherwise the steps at or after the first
// unmasked one in processing order (a masked step repeats the previous output, and there is
// none before the first step that ran). Undefined when there is no mask.
inline at::Tensor lstm_output_keep(const c10::optional<at::Tensor>& mask, bool go_backwards,
                                   bool zero_output_for_mask) {
  if (!mask.has_value()) {
    return at::Tensor();
  }
  if (zero_output_for_mask) {
    return *mask;
  }
  const at::Tensor ordered = go_backwards ? mask->flip({1}) : *mask;
  at::Tensor seen = ordered.cumsum(1, at::kInt).gt(0);
  return (go_backwards ? seen.flip({1}) : seen).contiguous();
}

// The input step that processing step p reads.
inline int64_t lstm_step_index(int64_t p, int64_t steps, bool go_backwards) {
  return go_backwards ? steps - 1 - p : p;
}

}  // namespace ktorch
