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

// (batch, time, n) as a contiguous (time, batch, n) copy.
inline at::Tensor lstm_time_major(const at::Tensor& t) {
  return t.transpose(0, 1).contiguous();
}

using LstmResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// What the forward's per-step loop works on; the loop runs only when s.steps > 0.
struct LstmForward {
  LstmSizes s;
  at::Tensor gates;   // (T, B, 4U): the input projections, to which each step adds its own
  at::Tensor h_prev;  // (T, B, U), h0 already in the first processed step's slot
  at::Tensor c_seq;   // (T, B, U)
  at::Tensor out;     // (B, T, U)
  at::Tensor h_last;  // (B, U)
  at::Tensor keep;    // lstm_output_keep, undefined without a mask
  const bool* mask_ptr = nullptr;
  const bool* keep_ptr = nullptr;
};

// Checks the arguments and does the device-independent part of the forward: all timesteps'
// input projections (and the bias) in one GEMM, time-major so that each step works on
// contiguous (batch, n) slabs (measured faster than strided slabs of batch-first buffers, for
// the per-step GEMMs above all), and the output buffers.
inline LstmForward lstm_forward_begin(const char* op, const at::Tensor& inputs,
                                      const at::Tensor& kernel,
                                      const at::Tensor& recurrent_kernel,
                                      const c10::optional<at::Tensor>& bias, const at::Tensor& h0,
                                      const at::Tensor& c0, const c10::optional<at::Tensor>& mask,
                                      bool go_backwards, bool zero_output_for_mask) {
  LstmForward f;
  f.s = check_lstm_forward(op, inputs, kernel, recurrent_kernel, bias, h0, c0, mask);
  const int64_t B = f.s.batch, T = f.s.steps, U = f.s.units;
  const at::Tensor inputs_2d = lstm_time_major(inputs).view({T * B, f.s.features});
  f.gates = (bias.has_value() ? at::addmm(*bias, inputs_2d, kernel) : at::mm(inputs_2d, kernel))
                .view({T, B, 4 * U});
  f.h_prev = at::empty({T, B, U}, inputs.options());
  f.c_seq = at::empty({T, B, U}, inputs.options());
  f.out = at::empty({B, T, U}, inputs.options());
  f.h_last = at::empty({B, U}, inputs.options());
  if (T == 0) {
    f.h_last.copy_(h0);
    return f;
  }
  f.h_prev[lstm_step_index(0, T, go_backwards)].copy_(h0);
  f.keep = lstm_output_keep(mask, go_backwards, zero_output_for_mask);
  f.mask_ptr = mask.has_value() ? mask->const_data_ptr<bool>() : nullptr;
  f.keep_ptr = f.keep.defined() ? f.keep.const_data_ptr<bool>() : nullptr;
  return f;
}

// The forward op's results once its loop has run.
inline LstmResult lstm_forward_end(const LstmForward& f, const at::Tensor& c0, bool go_backwards) {
  const int64_t T = f.s.steps;
  at::Tensor c_last =
      T == 0 ? c0.clone() : f.c_seq[lstm_step_index(T - 1, T, go_backwards)].clone();
  return {f.out, f.h_last, c_last, f.gates, f.h_prev, f.c_seq};
}

// What the backward's per-step loop works on; the loop runs only when s.steps > 0.
struct LstmBackward {
  LstmSizes s;
  at::Tensor dout;  // (B, T, U), zeros where autograd passed no gradient
  at::Tensor dh;    // (B, U), updated in place through the steps
  at::Tensor dc;    // (B, U), likewise
  at::Tensor dz;    // (T, B, 4U): the gates' pre-activation gradients
  at::Tensor keep;
  const bool* mask_ptr = nullptr;
  const bool* keep_ptr = nullptr;
};

inline LstmBackward lstm_backward_begin(
    const char* op, const c10::optional<at::Tensor>& grad_output,
    const c10::optional<at::Tensor>& grad_h, const c10::optional<at::Tensor>& grad_c,
    const at::Tensor& inputs, const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
    const at::Tensor& c0, const c10::optional<at::Tensor>& mask, const at::Tensor& gates,
    const at::Tensor& h_prev, const at::Tensor& c_seq, bool go_backwards,
    bool zero_output_for_mask) {
  LstmBackward g;
  g.s = check_lstm_backward(op, inputs, kernel, recurrent_kernel, c0, mask, gates, h_prev, c_seq);
  const int64_t B = g.s.batch, T = g.s.steps, U = g.s.units;
  g.dout = lstm_grad_or_zeros(grad_output, op, "grad_output", inputs, {B, T, U});
  // dh and dc are updated in place through the steps: start from copies of the given grads.
  g.dh = lstm_grad_or_zeros(grad_h, op, "grad_h", inputs, {B, U});
  g.dc = lstm_grad_or_zeros(grad_c, op, "grad_c", inputs, {B, U});
  g.dh = grad_h.has_value() ? g.dh.clone() : g.dh;
  g.dc = grad_c.has_value() ? g.dc.clone() : g.dc;
  g.dz = at::empty({T, B, 4 * U}, inputs.options());
  if (T > 0) {
    g.keep = lstm_output_keep(mask, go_backwards, zero_output_for_mask);
    g.mask_ptr = mask.has_value() ? mask->const_data_ptr<bool>() : nullptr;
    g.keep_ptr = g.keep.defined() ? g.keep.const_data_ptr<bool>() : nullptr;
  }
  return g;
}

// The backward op's results once its loop has filled dz: the weight and input gradients over
// all timesteps at once.
inline LstmResult lstm_backward_end(const LstmBackward& g, const at::Tensor& inputs,
                                    const at::Tensor& kernel, const at::Tensor& h_prev,
                                    bool compute_grad_inputs) {
  const int64_t B = g.s.batch, T = g.s.steps, U = g.s.units;
  const at::Tensor dz_2d = g.dz.view({T * B, 4 * U});
  at::Tensor grad_kernel = at::mm(lstm_time_major(inputs).view({T * B, g.s.features}).t(), dz_2d);
  at::Tensor grad_recurrent_kernel = at::mm(h_prev.view({T * B, U}).t(), dz_2d);
  at::Tensor grad_bias = dz_2d.sum(0);
  at::Tensor grad_inputs =
      compute_grad_inputs
          ? at::mm(dz_2d, kernel.t()).view({T, B, g.s.features}).transpose(0, 1).contiguous()
          : at::empty({0}, inputs.options());
  return {grad_inputs, grad_kernel, grad_recurrent_kernel, grad_bias, g.dh, g.dc};
}

}  // namespace ktorch
