// CPU implementation of ktorch::lstm_sequence and ktorch::lstm_sequence_backward.
//
// Forward: one GEMM projects the inputs of all timesteps (plus the bias) into the time-major
// gates buffer; then each step adds h @ recurrent_kernel into its (batch, 4 * units) slab (one
// GEMM) and one pass over the batch rows applies the gate activations, updates c and h,
// applies the mask and writes the output. Backward: each step, in reverse, makes one pass that
// produces the gate gradients and carries dh and dc, and one GEMM adds
// dgates @ recurrent_kernel^T to dh; after the loop one GEMM each gives the kernel, recurrent
// kernel and input gradients.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>

#include "lstm_sequence.h"

// The pointwise loops below vectorize only when floating-point comparisons and divisions may
// be if-converted, which GCC's default -ftrapping-math forbids (torch builds with
// -fno-trapping-math too). The loops raise no floating-point exception anyone reads.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

// The row loops are compiled twice, for AVX2 + FMA and for the baseline ISA, and the loader
// picks one for the running CPU (8 floats per instruction instead of 4, without requiring AVX2).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KTORCH_ROW_LOOP __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KTORCH_ROW_LOOP
#endif

namespace ktorch {
namespace {

// Smallest number of state elements (batch rows x units) worth handing to a thread.
constexpr int64_t kGrainElements = 2048;

inline float float_from_bits(int32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// exp for float in straight-line code the compiler vectorizes: x = n ln2 + r with |r| <= ln2/2
// (Cody-Waite split of ln2), exp(r) by its Taylor series to r^7 (truncation below 1e-8
// relative), times 2^n built in the exponent bits. x is clamped so 2^n stays a normal float.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * float_from_bits((static_cast<int32_t>(n) + 127) << 23);
}

// Within 2e-7 (absolute) of the exact values; double keeps the C library functions.
inline float sigmoid_of(float x) {
  return 1.0f / (1.0f + exp_approx(-x));
}

inline float tanh_of(float x) {
  return 1.0f - 2.0f / (exp_approx(2.0f * x) + 1.0f);
}

inline double sigmoid_of(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

inline double tanh_of(double x) {
  return std::tanh(x);
}

// One unmasked batch row of a forward step. `z` holds the row's pre-activations [i | f | g | o]
// and receives the activated gates. The pointers never overlap.
template <typename scalar_t>
KTORCH_ROW_LOOP void forward_row(scalar_t* __restrict__ z, const scalar_t* __restrict__ c_prev,
                                 scalar_t* __restrict__ h_next, scalar_t* __restrict__ c_next,
                                 scalar_t* __restrict__ out, int64_t units) {
  using opmath_t = at::opmath_type<scalar_t>;
  for (int64_t j = 0; j < units; ++j) {
    const opmath_t i = sigmoid_of(static_cast<opmath_t>(z[j]));
    const opmath_t f = sigmoid_of(static_cast<opmath_t>(z[units + j]));
    const opmath_t g = tanh_of(static_cast<opmath_t>(z[2 * units + j]));
    const opmath_t o = sigmoid_of(static_cast<opmath_t>(z[3 * units + j]));
    const opmath_t c = f * static_cast<opmath_t>(c_prev[j]) + i * g;
    const auto h = static_cast<scalar_t>(o * tanh_of(c));
    z[j] = static_cast<scalar_t>(i);
    z[units + j] = static_cast<scalar_t>(f);
    z[2 * units + j] = static_cast<scalar_t>(g);
    z[3 * units + j] = static_cast<scalar_t>(o);
    c_next[j] = static_cast<scalar_t>(c);
    h_next[j] = h;
    out[j] = h;
  }
}

// One unmasked batch row of a backward step. On entry dh and dc are the gradients of the
// step's h and c (dh without this step's output gradient); on exit dc is the gradient of the
// previous c and dh is zero, ready for the GEMM that adds dz @ recurrent_kernel^T.
template <typename scalar_t>
KTORCH_ROW_LOOP void backward_row(const scalar_t* __restrict__ z,
                                  const scalar_t* __restrict__ c_prev,
                                  const scalar_t* __restrict__ c,
                                  const scalar_t* __restrict__ dout, scalar_t* __restrict__ dh,
                                  scalar_t* __restrict__ dc, scalar_t* __restrict__ dz,
                                  int64_t units) {
  using opmath_t = at::opmath_type<scalar_t>;
  for (int64_t j = 0; j < units; ++j) {
    const auto i = static_cast<opmath_t>(z[j]);
    const auto f = static_cast<opmath_t>(z[units + j]);
    const auto g = static_cast<opmath_t>(z[2 * units + j]);
    const auto o = static_cast<opmath_t>(z[3 * units + j]);
    const opmath_t tc = tanh_of(static_cast<opmath_t>(c[j]));
    const opmath_t dh_j = static_cast<opmath_t>(dh[j]) + static_cast<opmath_t>(dout[j]);
    const opmath_t dc_j = static_cast<opmath_t>(dc[j]) + dh_j * o * (opmath_t(1) - tc * tc);
    dz[j] = static_cast<scalar_t>(dc_j * g * i * (opmath_t(1) - i));
    dz[units + j] =
        static_cast<scalar_t>(dc_j * static_cast<opmath_t>(c_prev[j]) * f * (opmath_t(1) - f));
    dz[2 * units + j] = static_cast<scalar_t>(dc_j * i * (opmath_t(1) - g * g));
    dz[3 * units + j] = static_cast<scalar_t>(dh_j * tc * o * (opmath_t(1) - o));
    dc[j] = static_cast<scalar_t>(dc_j * f);
    dh[j] = scalar_t(0);
  }
}

int64_t row_grain(int64_t units) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, units));
}

template <typename scalar_t>
void forward_loop(const LstmSizes& s, const at::Tensor& gates, const at::Tensor& h_prev,
                  const at::Tensor& c_seq, const at::Tensor& out, const at::Tensor& h_last,
                  const at::Tensor& c0, const at::Tensor& recurrent_kernel, const bool* mask,
                  const bool* keep, bool go_backwards) {
  const int64_t B = s.batch, T = s.steps, U = s.units;
  scalar_t* gates_ptr = gates.mutable_data_ptr<scalar_t>();
  scalar_t* h_prev_ptr = h_prev.mutable_data_ptr<scalar_t>();
  scalar_t* c_seq_ptr = c_seq.mutable_data_ptr<scalar_t>();
  scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
  scalar_t* h_last_ptr = h_last.mutable_data_ptr<scalar_t>();
  const scalar_t* c0_ptr = c0.const_data_ptr<scalar_t>();
  for (int64_t p = 0; p < T; ++p) {
    const int64_t t = lstm_step_index(p, T, go_backwards);
    const int64_t t_prev = p > 0 ? lstm_step_index(p - 1, T, go_backwards) : -1;
    const int64_t t_next = p + 1 < T ? lstm_step_index(p + 1, T, go_backwards) : -1;
    const scalar_t* c_before_ptr = t_prev < 0 ? c0_ptr : c_seq_ptr + t_prev * B * U;
    scalar_t* h_after_ptr = t_next < 0 ? h_last_ptr : h_prev_ptr + t_next * B * U;
    gates[t].addmm_(h_prev[t], recurrent_kernel);
    at::parallel_for(0, B, row_grain(U), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t tb = t * B + b;
        const int64_t bt = b * T + t;
        const scalar_t* c_before = c_before_ptr + b * U;
        scalar_t* h_after = h_after_ptr + b * U;
        scalar_t* c_after = c_seq_ptr + tb * U;
        scalar_t* out_row = out_ptr + (b * T + p) * U;
        if (mask == nullptr || mask[bt]) {
          forward_row<scalar_t>(gates_ptr + tb * 4 * U, c_before, h_after, c_after, out_row, U);
          continue;
        }
        // A masked step carries the state over; its output is the carried h or zero.
        const scalar_t* h_before = h_prev_ptr + tb * U;
        std::memcpy(h_after, h_before, U * sizeof(scalar_t));
        std::memcpy(c_after, c_before, U * sizeof(scalar_t));
        if (keep[bt]) {
          std::memcpy(out_row, h_before, U * sizeof(scalar_t));
        } else {
          std::fill(out_row, out_row + U, scalar_t(0));
        }
      }
    });
  }
}

template <typename scalar_t>
void backward_loop(const LstmSizes& s, const at::Tensor& gates, const at::Tensor& c_seq,
                   const at::Tensor& c0, const at::Tensor& grad_output, const at::Tensor& dh,
                   const at::Tensor& dc, const at::Tensor& dz,
                   const at::Tensor& recurrent_kernel_t, const bool* mask, const bool* keep,
                   bool go_backwards) {
  const int64_t B = s.batch, T = s.steps, U = s.units;
  const scalar_t* gates_ptr = gates.const_data_ptr<scalar_t>();
  const scalar_t* c_seq_ptr = c_seq.const_data_ptr<scalar_t>();
  const scalar_t* c0_ptr = c0.const_data_ptr<scalar_t>();
  const scalar_t* dout_ptr = grad_output.const_data_ptr<scalar_t>();
  scalar_t* dh_ptr = dh.mutable_data_ptr<scalar_t>();
  scalar_t* dc_ptr = dc.mutable_data_ptr<scalar_t>();
  scalar_t* dz_ptr = dz.mutable_data_ptr<scalar_t>();
  for (int64_t p = T - 1; p >= 0; --p) {
    const int64_t t = lstm_step_index(p, T, go_backwards);
    const int64_t t_prev = p > 0 ? lstm_step_index(p - 1, T, go_backwards) : -1;
    const scalar_t* c_before_ptr = t_prev < 0 ? c0_ptr : c_seq_ptr + t_prev * B * U;
    at::parallel_for(0, B, row_grain(U), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t tb = t * B + b;
        const int64_t bt = b * T + t;
        const scalar_t* dout_row = dout_ptr + (b * T + p) * U;
        scalar_t* dh_row = dh_ptr + b * U;
        scalar_t* dz_row = dz_ptr + tb * 4 * U;
        if (mask == nullptr || mask[bt]) {
          backward_row<scalar_t>(gates_ptr + tb * 4 * U, c_before_ptr + b * U,
                                 c_seq_ptr + tb * U, dout_row, dh_row, dc_ptr + b * U, dz_row, U);
          continue;
        }
        // A masked step passes dh and dc through to the previous state; its output (the
        // carried h, where kept) adds its gradient to dh.
        if (keep[bt]) {
          for (int64_t j = 0; j < U; ++j) {
            dh_row[j] = static_cast<scalar_t>(static_cast<at::opmath_type<scalar_t>>(dh_row[j]) +
                                              static_cast<at::opmath_type<scalar_t>>(dout_row[j]));
          }
        }
        std::fill(dz_row, dz_row + 4 * U, scalar_t(0));
      }
    });
    dh.addmm_(dz[t], recurrent_kernel_t);
  }
}

LstmResult lstm_sequence_cpu(const at::Tensor& inputs, const at::Tensor& kernel,
                             const at::Tensor& recurrent_kernel,
                             const c10::optional<at::Tensor>& bias, const at::Tensor& h0,
                             const at::Tensor& c0, const c10::optional<at::Tensor>& mask,
                             bool go_backwards, bool zero_output_for_mask) {
  constexpr const char* op = "ktorch::lstm_sequence";
  const LstmForward f = lstm_forward_begin(op, inputs, kernel, recurrent_kernel, bias, h0, c0,
                                           mask, go_backwards, zero_output_for_mask);
  if (f.s.steps > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, inputs.scalar_type(), op, [&] {
      forward_loop<scalar_t>(f.s, f.gates, f.h_prev, f.c_seq, f.out, f.h_last, c0,
                             recurrent_kernel, f.mask_ptr, f.keep_ptr, go_backwards);
    });
  }
  return lstm_forward_end(f, c0, go_backwards);
}

LstmResult lstm_sequence_backward_cpu(
    const c10::optional<at::Tensor>& grad_output, const c10::optional<at::Tensor>& grad_h,
    const c10::optional<at::Tensor>& grad_c, const at::Tensor& inputs, const at::Tensor& kernel,
    const at::Tensor& recurrent_kernel, const at::Tensor& c0,
    const c10::optional<at::Tensor>& mask, const at::Tensor& gates, const at::Tensor& h_prev,
    const at::Tensor& c_seq, bool go_backwards, bool zero_output_for_mask,
    bool compute_grad_inputs) {
  constexpr const char* op = "ktorch::lstm_sequence_backward";
  const LstmBackward g =
      lstm_backward_begin(op, grad_output, grad_h, grad_c, inputs, kernel, recurrent_kernel, c0,
                          mask, gates, h_prev, c_seq, go_backwards, zero_output_for_mask);
  if (g.s.steps > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, inputs.scalar_type(), op, [&] {
      backward_loop<scalar_t>(g.s, gates, c_seq, c0, g.dout, g.dh, g.dc, g.dz,
                              recurrent_kernel.t(), g.mask_ptr, g.keep_ptr, go_backwards);
    });
  }
  return lstm_backward_end(g, inputs, kernel, h_prev, compute_grad_inputs);
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CPU, m) {
  m.impl("lstm_sequence", &lstm_sequence_cpu);
  m.impl("lstm_sequence_backward", &lstm_sequence_backward_cpu);
}

}  // namespace ktorch

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
