// CUDA implementation of ktorch::lstm_sequence and ktorch::lstm_sequence_backward.
//
// The same structure as the CPU kernels: one GEMM for the input projection of all timesteps;
// per step one recurrent GEMM (cuBLAS through ATen) accumulated into the step's gate slab and
// one fused elementwise kernel (one thread per batch row and unit); in the backward, per step
// one elementwise kernel producing the gate gradients and one GEMM for dh, then one GEMM each
// for the weight and input gradients over all timesteps.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "lstm_sequence.h"

namespace ktorch {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid_of(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ double sigmoid_of(double x) {
  return 1.0 / (1.0 + exp(-x));
}

__device__ __forceinline__ float tanh_of(float x) {
  return tanhf(x);
}

__device__ __forceinline__ double tanh_of(double x) {
  return tanh(x);
}

int grid_size(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 0x7FFFFFFF)));
}

// Layout of one step: rows of the time-major buffers at input step t, and the neighbouring
// steps in processing order (-1 where there is none).
struct StepIndex {
  int64_t batch;
  int64_t steps;
  int64_t units;
  int64_t p;       // processing step (index of the output)
  int64_t t;       // input step
  int64_t t_prev;  // input step processed before t
  int64_t t_next;  // input step processed after t
};

StepIndex step_index(const LstmSizes& s, int64_t p, bool go_backwards) {
  const int64_t T = s.steps;
  return {s.batch,
          T,
          s.units,
          p,
          lstm_step_index(p, T, go_backwards),
          p > 0 ? lstm_step_index(p - 1, T, go_backwards) : -1,
          p + 1 < T ? lstm_step_index(p + 1, T, go_backwards) : -1};
}

// One thread per (batch row, unit): gate activations, c and h updates, mask, output.
template <typename scalar_t>
__global__ void forward_step_kernel(scalar_t* __restrict__ gates, scalar_t* __restrict__ h_prev,
                                    scalar_t* __restrict__ c_seq, scalar_t* __restrict__ out,
                                    scalar_t* __restrict__ h_last,
                                    const scalar_t* __restrict__ c0,
                                    const bool* __restrict__ mask, const bool* __restrict__ keep,
                                    StepIndex s) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t n = s.batch * s.units;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += stride) {
    const int64_t b = idx / s.units;
    const int64_t j = idx - b * s.units;
    const int64_t U = s.units;
    const int64_t row = s.t * s.batch + b;
    const scalar_t c_before = s.t_prev < 0 ? c0[idx] : c_seq[s.t_prev * n + idx];
    scalar_t* h_after = s.t_next < 0 ? h_last + idx : h_prev + s.t_next * n + idx;
    scalar_t* out_at = out + (b * s.steps + s.p) * U + j;
    const int64_t bt = b * s.steps + s.t;
    if (mask == nullptr || mask[bt]) {
      scalar_t* z = gates + row * 4 * U + j;
      const opmath_t i = sigmoid_of(static_cast<opmath_t>(z[0]));
      const opmath_t f = sigmoid_of(static_cast<opmath_t>(z[U]));
      const opmath_t g = tanh_of(static_cast<opmath_t>(z[2 * U]));
      const opmath_t o = sigmoid_of(static_cast<opmath_t>(z[3 * U]));
      const opmath_t c = f * static_cast<opmath_t>(c_before) + i * g;
      const auto h = static_cast<scalar_t>(o * tanh_of(c));
      z[0] = static_cast<scalar_t>(i);
      z[U] = static_cast<scalar_t>(f);
      z[2 * U] = static_cast<scalar_t>(g);
      z[3 * U] = static_cast<scalar_t>(o);
      c_seq[row * U + j] = static_cast<scalar_t>(c);
      *h_after = h;
      *out_at = h;
    } else {
      // A masked step carries the state over; its output is the carried h or zero.
      const scalar_t h_before = h_prev[row * U + j];
      c_seq[row * U + j] = c_before;
      *h_after = h_before;
      *out_at = keep[bt] ? h_before : scalar_t(0);
    }
  }
}

// One thread per (batch row, unit). On entry dh and dc are the gradients of the step's h and c
// (dh without this step's output gradient); on exit dc is the gradient of the previous c and
// dh its carried part (zero where the step ran), before the GEMM adds dz @ recurrent_kernel^T.
template <typename scalar_t>
__global__ void backward_step_kernel(const scalar_t* __restrict__ gates,
                                     const scalar_t* __restrict__ c_seq,
                                     const scalar_t* __restrict__ c0,
                                     const scalar_t* __restrict__ dout,
                                     scalar_t* __restrict__ dh, scalar_t* __restrict__ dc,
                                     scalar_t* __restrict__ dz, const bool* __restrict__ mask,
                                     const bool* __restrict__ keep, StepIndex s) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t n = s.batch * s.units;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += stride) {
    const int64_t b = idx / s.units;
    const int64_t j = idx - b * s.units;
    const int64_t U = s.units;
    const int64_t row = s.t * s.batch + b;
    const int64_t bt = b * s.steps + s.t;
    const auto dout_j = static_cast<opmath_t>(dout[(b * s.steps + s.p) * U + j]);
    scalar_t* dz_row = dz + row * 4 * U + j;
    if (mask == nullptr || mask[bt]) {
      const scalar_t* z = gates + row * 4 * U + j;
      const auto i = static_cast<opmath_t>(z[0]);
      const auto f = static_cast<opmath_t>(z[U]);
      const auto g = static_cast<opmath_t>(z[2 * U]);
      const auto o = static_cast<opmath_t>(z[3 * U]);
      const auto c_before =
          static_cast<opmath_t>(s.t_prev < 0 ? c0[idx] : c_seq[s.t_prev * n + idx]);
      const opmath_t tc = tanh_of(static_cast<opmath_t>(c_seq[row * U + j]));
      const opmath_t dh_j = static_cast<opmath_t>(dh[idx]) + dout_j;
      const opmath_t dc_j = static_cast<opmath_t>(dc[idx]) + dh_j * o * (opmath_t(1) - tc * tc);
      dz_row[0] = static_cast<scalar_t>(dc_j * g * i * (opmath_t(1) - i));
      dz_row[U] = static_cast<scalar_t>(dc_j * c_before * f * (opmath_t(1) - f));
      dz_row[2 * U] = static_cast<scalar_t>(dc_j * i * (opmath_t(1) - g * g));
      dz_row[3 * U] = static_cast<scalar_t>(dh_j * tc * o * (opmath_t(1) - o));
      dc[idx] = static_cast<scalar_t>(dc_j * f);
      dh[idx] = scalar_t(0);
    } else {
      // A masked step passes dh and dc through; its output (where kept) adds to dh.
      if (keep[bt]) {
        dh[idx] = static_cast<scalar_t>(static_cast<opmath_t>(dh[idx]) + dout_j);
      }
      dz_row[0] = scalar_t(0);
      dz_row[U] = scalar_t(0);
      dz_row[2 * U] = scalar_t(0);
      dz_row[3 * U] = scalar_t(0);
    }
  }
}

LstmResult lstm_sequence_cuda(const at::Tensor& inputs, const at::Tensor& kernel,
                              const at::Tensor& recurrent_kernel,
                              const c10::optional<at::Tensor>& bias, const at::Tensor& h0,
                              const at::Tensor& c0, const c10::optional<at::Tensor>& mask,
                              bool go_backwards, bool zero_output_for_mask) {
  constexpr const char* op = "ktorch::lstm_sequence";
  const c10::cuda::CUDAGuard guard(inputs.device());
  const LstmForward f = lstm_forward_begin(op, inputs, kernel, recurrent_kernel, bias, h0, c0,
                                           mask, go_backwards, zero_output_for_mask);
  const int64_t B = f.s.batch, T = f.s.steps, U = f.s.units;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, inputs.scalar_type(), op, [&] {
    for (int64_t p = 0; p < T; ++p) {
      const StepIndex idx = step_index(f.s, p, go_backwards);
      f.gates[idx.t].addmm_(f.h_prev[idx.t], recurrent_kernel);
      forward_step_kernel<scalar_t><<<grid_size(B * U), kThreads, 0, stream>>>(
          f.gates.mutable_data_ptr<scalar_t>(), f.h_prev.mutable_data_ptr<scalar_t>(),
          f.c_seq.mutable_data_ptr<scalar_t>(), f.out.mutable_data_ptr<scalar_t>(),
          f.h_last.mutable_data_ptr<scalar_t>(), c0.const_data_ptr<scalar_t>(), f.mask_ptr,
          f.keep_ptr, idx);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return lstm_forward_end(f, c0, go_backwards);
}

LstmResult lstm_sequence_backward_cuda(
    const c10::optional<at::Tensor>& grad_output, const c10::optional<at::Tensor>& grad_h,
    const c10::optional<at::Tensor>& grad_c, const at::Tensor& inputs, const at::Tensor& kernel,
    const at::Tensor& recurrent_kernel, const at::Tensor& c0,
    const c10::optional<at::Tensor>& mask, const at::Tensor& gates, const at::Tensor& h_prev,
    const at::Tensor& c_seq, bool go_backwards, bool zero_output_for_mask,
    bool compute_grad_inputs) {
  constexpr const char* op = "ktorch::lstm_sequence_backward";
  const c10::cuda::CUDAGuard guard(inputs.device());
  const LstmBackward g =
      lstm_backward_begin(op, grad_output, grad_h, grad_c, inputs, kernel, recurrent_kernel, c0,
                          mask, gates, h_prev, c_seq, go_backwards, zero_output_for_mask);
  const int64_t B = g.s.batch, T = g.s.steps, U = g.s.units;
  const at::Tensor recurrent_kernel_t = recurrent_kernel.t();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, inputs.scalar_type(), op, [&] {
    for (int64_t p = T - 1; p >= 0; --p) {
      const StepIndex idx = step_index(g.s, p, go_backwards);
      backward_step_kernel<scalar_t><<<grid_size(B * U), kThreads, 0, stream>>>(
          gates.const_data_ptr<scalar_t>(), c_seq.const_data_ptr<scalar_t>(),
          c0.const_data_ptr<scalar_t>(), g.dout.const_data_ptr<scalar_t>(),
          g.dh.mutable_data_ptr<scalar_t>(), g.dc.mutable_data_ptr<scalar_t>(),
          g.dz.mutable_data_ptr<scalar_t>(), g.mask_ptr, g.keep_ptr, idx);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      g.dh.addmm_(g.dz[idx.t], recurrent_kernel_t);
    }
  });
  return lstm_backward_end(g, inputs, kernel, h_prev, compute_grad_inputs);
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CUDA, m) {
  m.impl("lstm_sequence", &lstm_sequence_cuda);
  m.impl("lstm_sequence_backward", &lstm_sequence_backward_cuda);
}

}  // namespace ktorch
