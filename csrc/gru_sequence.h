// ktorch::gru_sequence and ktorch::gru_sequence_backward: the device-independent driver.
//
// A GRU over a whole sequence, Keras's weight layout and gate order (z, r, h):
//   kernel (features, 3u), recurrent_kernel (u, 3u), bias (2, 3u) with reset_after (input
//   bias, recurrent bias), else (3u,).
// The driver runs the GEMMs through ATen (one for the input projection of every timestep, one
// recurrent GEMM per step, two with reset_after=false) and calls the device's fused pointwise
// kernels (the `Kernels` policy of csrc/cpu/gru_sequence.cpp and csrc/cuda/gru_sequence.cu)
// for all the gate math of a step.
//
// Saved for the backward:
//   states (T + 1, B, u): states[s] is the state entering processing step s (states[0] = h0).
//   gates  (T, B, 4u):    z, r, candidate, and hh = h @ U_h + b_h (reset_after) or r * h.
// Processing step s reads timestep t = T - 1 - s with go_backwards, else t = s; outputs are in
// processing order, as Keras returns them.
#pragma once

#include <ATen/Dispatch.h>
#include <torch/all.h>

#include <optional>
#include <tuple>

namespace ktorch {
namespace gru {

// One forward step. Rows are `batch`; every pointer addresses row 0 and rows are `*_stride`
// elements apart (`units`, `3 * units` or `4 * units` wide as noted).
template <typename T>
struct ForwardStep {
  int64_t batch;
  int64_t units;
  const T* xp;  // input projection (+ input bias) of this timestep, 3u wide
  int64_t xp_stride;
  const T* hr;  // h @ recurrent_kernel, 3u wide; reset_before: z, r only (2u)
  int64_t hr_stride;
  const T* hr_bias;  // reset_after: recurrent bias, 3u wide (zeros without a bias)
  const T* q;  // reset_before: (r * h) @ U_h, u wide, rows contiguous
  const T* h_prev;  // (B, u), rows contiguous
  T* h_next;        // (B, u), rows contiguous
  T* gates;         // (B, 4u), rows contiguous
  T* out;           // output of this step, u wide; nullptr: no output at this step
  int64_t out_stride;
  const bool* keep;      // step mask of row b at keep[b * keep_stride]; nullptr: no mask
  const bool* out_keep;  // whether row b outputs its state (else zeros), same layout
  int64_t keep_stride;
};

// One backward step, rows laid out as in ForwardStep.
template <typename T>
struct BackwardStep {
  int64_t batch;
  int64_t units;
  // In: gradient of the state leaving this step, from later steps. Out: the part of the
  // gradient of the entering state that does not go through the recurrent GEMMs.
  T* dh;
  const T* dout;  // gradient of this step's output; nullptr: none at this step
  int64_t dout_stride;
  const T* h_prev;
  const T* gates;
  T* dxp;  // gradient of the input projection of this timestep, 3u wide
  int64_t dxp_stride;
  T* dhr;  // gradient of the recurrent GEMM results (z, r, candidate), (B, 3u) contiguous
  const T* drh;  // reset_before: d(r * h) = dcandidate @ U_h^T, (B, u) contiguous
  const bool* keep;
  const bool* out_keep;
  int64_t keep_stride;
};

inline void check_float(const char* op, const char* name, const at::Tensor& t,
                        const at::Tensor& like) {
  const auto dtype = t.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                  dtype == at::kBFloat16,
              op, ": argument ", name,
              " must be float32, float64, float16 or bfloat16. Received: dtype=", dtype);
  TORCH_CHECK(dtype == like.scalar_type(), op, ": argument ", name,
              " must have the dtype of inputs (", like.scalar_type(), "). Received: dtype=", dtype);
  TORCH_CHECK(t.device() == like.device(), op, ": argument ", name,
              " must be on the device of inputs (", like.device(), "). Received: ", t.device());
}

inline void check_shape(const char* op, const char* name, const at::Tensor& t,
                        at::IntArrayRef expected) {
  TORCH_CHECK(t.sizes() == expected, op, ": argument ", name, " must have shape ", expected,
              ". Received: shape=", t.sizes());
}

inline void check_mask(const char* op, const std::optional<at::Tensor>& mask,
                       const at::Tensor& inputs) {
  if (!mask.has_value()) {
    return;
  }
  TORCH_CHECK(mask->scalar_type() == at::kBool, op,
              ": argument mask must be a bool tensor. Received: dtype=", mask->scalar_type());
  TORCH_CHECK(mask->device() == inputs.device(), op,
              ": argument mask must be on the device of inputs (", inputs.device(),
              "). Received: ", mask->device());
  check_shape(op, "mask", *mask, {inputs.size(0), inputs.size(1)});
}

// Checks the forward's arguments; returns the number of units.
inline int64_t check_forward(const char* op, const at::Tensor& inputs, const at::Tensor& kernel,
                             const at::Tensor& recurrent_kernel,
                             const std::optional<at::Tensor>& bias, const at::Tensor& h0,
                             const std::optional<at::Tensor>& mask, bool reset_after) {
  TORCH_CHECK(inputs.dim() == 3, op,
              ": argument inputs must have shape (batch, timesteps, features). Received: shape=",
              inputs.sizes());
  TORCH_CHECK(inputs.size(1) > 0, op,
              ": argument inputs must have at least one timestep. Received: shape=",
              inputs.sizes());
  check_float(op, "inputs", inputs, inputs);
  TORCH_CHECK(recurrent_kernel.dim() == 2 && recurrent_kernel.size(0) > 0, op,
              ": argument recurrent_kernel must have shape (units, 3 * units). Received: shape=",
              recurrent_kernel.sizes());
  const int64_t units = recurrent_kernel.size(0);
  check_float(op, "kernel", kernel, inputs);
  check_float(op, "recurrent_kernel", recurrent_kernel, inputs);
  check_float(op, "h0", h0, inputs);
  check_shape(op, "kernel", kernel, {inputs.size(2), 3 * units});
  check_shape(op, "recurrent_kernel", recurrent_kernel, {units, 3 * units});
  check_shape(op, "h0", h0, {inputs.size(0), units});
  if (bias.has_value()) {
    check_float(op, "bias", *bias, inputs);
    if (reset_after) {
      check_shape(op, "bias", *bias, {2, 3 * units});
    } else {
      check_shape(op, "bias", *bias, {3 * units});
    }
  }
  check_mask(op, mask, inputs);
  return units;
}

// Step mask and output mask, (B, T) bool in processing order; undefined without a mask.
// A masked step carries the state over; its output is the carried state, or zeros before the
// first unmasked step, or zeros at every masked step with zero_output_for_mask.
inline std::tuple<at::Tensor, at::Tensor> step_masks(const std::optional<at::Tensor>& mask,
                                                     bool go_backwards,
                                                     bool zero_output_for_mask) {
  if (!mask.has_value()) {
    return {};
  }
  at::Tensor keep = go_backwards ? mask->flip(1) : *mask;
  keep = keep.contiguous();
  if (zero_output_for_mask) {
    return {keep, keep};
  }
  return {keep, at::cumsum(keep, 1, at::kInt).gt(0).contiguous()};
}

inline const bool* bool_ptr(const at::Tensor& t, int64_t offset) {
  return t.defined() ? t.const_data_ptr<bool>() + offset : nullptr;
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward(
    const char* op, const at::Tensor& inputs_arg, const at::Tensor& kernel,
    const at::Tensor& recurrent_kernel_arg, const std::optional<at::Tensor>& bias,
    const at::Tensor& h0, const std::optional<at::Tensor>& mask, bool go_backwards,
    bool reset_after, bool return_sequences, bool zero_output_for_mask) {
  const int64_t units =
      check_forward(op, inputs_arg, kernel, recurrent_kernel_arg, bias, h0, mask, reset_after);
  const at::Tensor inputs = inputs_arg.contiguous();
  // Contiguous once, so that the per-step GEMMs read column blocks of it without copies.
  const at::Tensor recurrent_kernel = recurrent_kernel_arg.contiguous();
  const int64_t batch = inputs.size(0);
  const int64_t steps = inputs.size(1);
  const int64_t u = units;
  at::Tensor input_bias;
  if (bias.has_value()) {
    input_bias = reset_after ? bias->select(0, 0) : *bias;
  }
  // The recurrent bias is added in the pointwise pass: addmm with a broadcast bias would copy
  // it into the output at every step.
  at::Tensor recurrent_bias;
  if (reset_after) {
    recurrent_bias = bias.has_value() ? bias->select(0, 1).contiguous()
                                      : at::zeros({3 * units}, inputs.options());
  }
  // ONE GEMM projects every timestep, the input bias folded in; rows stay batch-major (b, t).
  const at::Tensor x2d = inputs.view({batch * steps, inputs.size(2)});
  const at::Tensor xp =
      input_bias.defined() ? at::addmm(input_bias, x2d, kernel) : at::mm(x2d, kernel);
  at::Tensor keep;
  at::Tensor out_keep;
  std::tie(keep, out_keep) = step_masks(mask, go_backwards, zero_output_for_mask);

  const auto options = inputs.options();
  at::Tensor states = at::empty({steps + 1, batch, u}, options);
  states.select(0, 0).copy_(h0);
  at::Tensor gates = at::empty({steps, batch, 4 * u}, options);
  at::Tensor output = return_sequences ? at::empty({batch, steps, u}, options)
                                       : at::empty({batch, u}, options);
  at::Tensor hr = at::empty({batch, (reset_after ? 3 : 2) * u}, options);
  at::Tensor q = reset_after ? at::Tensor() : at::empty({batch, u}, options);
  const at::Tensor gates_kernel = recurrent_kernel.narrow(1, 0, 2 * u);
  const at::Tensor candidate_kernel = recurrent_kernel.narrow(1, 2 * u, u);

  const auto dtype = inputs.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gru_sequence", [&] {
    ForwardStep<scalar_t> step{};
    step.batch = batch;
    step.units = u;
    step.xp_stride = steps * 3 * u;
    step.hr = hr.const_data_ptr<scalar_t>();
    step.hr_stride = hr.size(1);
    step.hr_bias = reset_after ? recurrent_bias.const_data_ptr<scalar_t>() : nullptr;
    step.q = reset_after ? nullptr : q.const_data_ptr<scalar_t>();
    step.keep_stride = steps;
    const scalar_t* xp_data = xp.const_data_ptr<scalar_t>();
    scalar_t* states_data = states.mutable_data_ptr<scalar_t>();
    scalar_t* gates_data = gates.mutable_data_ptr<scalar_t>();
    scalar_t* out_data = output.mutable_data_ptr<scalar_t>();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = go_backwards ? steps - 1 - s : s;
      const at::Tensor h_prev = states.select(0, s);
      step.xp = xp_data + t * 3 * u;
      step.h_prev = states_data + s * batch * u;
      step.h_next = states_data + (s + 1) * batch * u;
      step.gates = gates_data + s * batch * 4 * u;
      if (return_sequences) {
        step.out = out_data + s * u;
        step.out_stride = steps * u;
      } else {
        step.out = s == steps - 1 ? out_data : nullptr;
        step.out_stride = u;
      }
      step.keep = bool_ptr(keep, s);
      step.out_keep = bool_ptr(out_keep, s);
      if (reset_after) {
        at::mm_out(hr, h_prev, recurrent_kernel);
        Kernels::template forward_reset_after<scalar_t>(step);
      } else {
        at::mm_out(hr, h_prev, gates_kernel);
        Kernels::template forward_reset_gate<scalar_t>(step);
        // r * h was written to the 4th block of this step's gates: the candidate's GEMM input.
        at::mm_out(q, gates.select(0, s).narrow(1, 3 * u, u), candidate_kernel);
        Kernels::template forward_update<scalar_t>(step);
      }
    }
  });
  at::Tensor h = states.select(0, steps).clone();
  return {output, h, states, gates};
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
    const char* op, const std::optional<at::Tensor>& grad_output_arg,
    const std::optional<at::Tensor>& grad_h,
    const at::Tensor& inputs_arg, const at::Tensor& kernel,
    const at::Tensor& recurrent_kernel_arg, const std::optional<at::Tensor>& mask,
    const at::Tensor& states_arg, const at::Tensor& gates_arg, bool go_backwards,
    bool reset_after, bool return_sequences, bool zero_output_for_mask, bool grad_inputs_needed) {
  TORCH_CHECK(inputs_arg.dim() == 3 && recurrent_kernel_arg.dim() == 2, op,
              ": arguments inputs and recurrent_kernel must be 3-D and 2-D. Received: shapes ",
              inputs_arg.sizes(), " and ", recurrent_kernel_arg.sizes());
  const int64_t batch = inputs_arg.size(0);
  const int64_t steps = inputs_arg.size(1);
  const int64_t features = inputs_arg.size(2);
  const int64_t u = recurrent_kernel_arg.size(0);
  check_float(op, "inputs", inputs_arg, inputs_arg);
  check_float(op, "kernel", kernel, inputs_arg);
  check_float(op, "recurrent_kernel", recurrent_kernel_arg, inputs_arg);
  check_float(op, "states", states_arg, inputs_arg);
  check_float(op, "gates", gates_arg, inputs_arg);
  check_shape(op, "kernel", kernel, {features, 3 * u});
  check_shape(op, "recurrent_kernel", recurrent_kernel_arg, {u, 3 * u});
  if (grad_output_arg.has_value()) {
    check_float(op, "grad_output", *grad_output_arg, inputs_arg);
    if (return_sequences) {
      check_shape(op, "grad_output", *grad_output_arg, {batch, steps, u});
    } else {
      check_shape(op, "grad_output", *grad_output_arg, {batch, u});
    }
  }
  if (grad_h.has_value()) {
    check_float(op, "grad_h", *grad_h, inputs_arg);
    check_shape(op, "grad_h", *grad_h, {batch, u});
  }
  check_shape(op, "states", states_arg, {steps + 1, batch, u});
  check_shape(op, "gates", gates_arg, {steps, batch, 4 * u});
  check_mask(op, mask, inputs_arg);

  const at::Tensor inputs = inputs_arg.contiguous();
  const at::Tensor recurrent_kernel = recurrent_kernel_arg.contiguous();
  const at::Tensor states = states_arg.contiguous();
  const at::Tensor gates = gates_arg.contiguous();
  // Without a gradient for the outputs or the last state, that term is zero.
  const at::Tensor grad_output =
      grad_output_arg.has_value() ? grad_output_arg->contiguous() : at::Tensor();
  at::Tensor keep;
  at::Tensor out_keep;
  std::tie(keep, out_keep) = step_masks(mask, go_backwards, zero_output_for_mask);
  const auto options = inputs.options();
  at::Tensor dh = grad_h.has_value() ? grad_h->clone(at::MemoryFormat::Contiguous)
                                     : at::zeros({batch, u}, options);
  at::Tensor dxp = at::empty({batch * steps, 3 * u}, options);
  at::Tensor dhr = at::empty({steps, batch, 3 * u}, options);
  at::Tensor drh = reset_after ? at::Tensor() : at::empty({batch, u}, options);
  // Transposed views: the GEMMs read them in place.
  const at::Tensor recurrent_t = recurrent_kernel.t();
  const at::Tensor gates_kernel_t = recurrent_kernel.narrow(1, 0, 2 * u).t();
  const at::Tensor candidate_kernel_t = recurrent_kernel.narrow(1, 2 * u, u).t();

  const auto dtype = inputs.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gru_sequence_backward", [&] {
    BackwardStep<scalar_t> step{};
    step.batch = batch;
    step.units = u;
    step.dh = dh.mutable_data_ptr<scalar_t>();
    step.dxp_stride = steps * 3 * u;
    step.drh = reset_after ? nullptr : drh.const_data_ptr<scalar_t>();
    step.keep_stride = steps;
    const scalar_t* grad_out_data =
        grad_output.defined() ? grad_output.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* states_data = states.const_data_ptr<scalar_t>();
    const scalar_t* gates_data = gates.const_data_ptr<scalar_t>();
    scalar_t* dxp_data = dxp.mutable_data_ptr<scalar_t>();
    scalar_t* dhr_data = dhr.mutable_data_ptr<scalar_t>();
    for (int64_t s = steps - 1; s >= 0; --s) {
      const int64_t t = go_backwards ? steps - 1 - s : s;
      if (grad_out_data == nullptr) {
        step.dout = nullptr;
      } else if (return_sequences) {
        step.dout = grad_out_data + s * u;
        step.dout_stride = steps * u;
      } else {
        step.dout = s == steps - 1 ? grad_out_data : nullptr;
        step.dout_stride = u;
      }
      step.h_prev = states_data + s * batch * u;
      step.gates = gates_data + s * batch * 4 * u;
      step.dxp = dxp_data + t * 3 * u;
      step.dhr = dhr_data + s * batch * 3 * u;
      step.keep = bool_ptr(keep, s);
      step.out_keep = bool_ptr(out_keep, s);
      const at::Tensor dhr_step = dhr.select(0, s);
      if (reset_after) {
        Kernels::template backward_reset_after<scalar_t>(step);
        dh.addmm_(dhr_step, recurrent_t);
      } else {
        Kernels::template backward_candidate<scalar_t>(step);
        at::mm_out(drh, dhr_step.narrow(1, 2 * u, u), candidate_kernel_t);
        Kernels::template backward_reset_gate<scalar_t>(step);
        dh.addmm_(dhr_step.narrow(1, 0, 2 * u), gates_kernel_t);
      }
    }
  });

  // Weight gradients: one GEMM each over all timesteps, not one per step.
  const at::Tensor x2d = inputs.view({batch * steps, features});
  // Not computed for inputs that need no gradient (a first layer): an empty tensor instead.
  at::Tensor grad_inputs = grad_inputs_needed
                               ? at::mm(dxp, kernel.t()).view({batch, steps, features})
                               : at::empty({0}, options);
  at::Tensor grad_kernel = at::mm(x2d.t(), dxp);
  const at::Tensor h_prev = states.narrow(0, 0, steps).view({steps * batch, u});
  const at::Tensor dhr2d = dhr.view({steps * batch, 3 * u});
  at::Tensor grad_recurrent;
  at::Tensor grad_bias;
  if (reset_after) {
    grad_recurrent = at::mm(h_prev.t(), dhr2d);
    grad_bias = at::stack({dxp.sum(0), dhr2d.sum(0)});
  } else {
    const at::Tensor reset_h = gates.view({steps * batch, 4 * u}).narrow(1, 3 * u, u);
    grad_recurrent = at::cat({at::mm(h_prev.t(), dhr2d.narrow(1, 0, 2 * u)),
                              at::mm(reset_h.t(), dhr2d.narrow(1, 2 * u, u))},
                             1);
    grad_bias = dxp.sum(0);
  }
  return {grad_inputs, grad_kernel, grad_recurrent, grad_bias, dh};
}

}  // namespace gru
}  // namespace ktorch
