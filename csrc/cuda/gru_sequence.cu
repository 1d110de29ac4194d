// CUDA implementation of ktorch::gru_sequence and ktorch::gru_sequence_backward: the fused
// pointwise kernels of one step (one thread per (row, unit)); the GEMMs (cuBLAS through ATen)
// and the step loop are in gru_sequence.h.
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <tuple>

#include "gru_sequence.h"

namespace ktorch {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;

__device__ inline float sigmoid_act(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__device__ inline double sigmoid_act(double x) {
  return 1.0 / (1.0 + exp(-x));
}

__device__ inline float tanh_act(float x) {
  return tanhf(x);
}

__device__ inline double tanh_act(double x) {
  return tanh(x);
}

__device__ inline bool row_flag(const bool* flags, int64_t b, int64_t stride) {
  return flags == nullptr || flags[b * stride];
}

// Grid-stride loop over the batch * units elements of a step.
#define KTORCH_STEP_LOOP(s)                                                                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;                 \
       i < (s).batch * (s).units; i += static_cast<int64_t>(blockDim.x) * gridDim.x)

template <typename T>
__global__ void forward_reset_after_kernel(const gru::ForwardStep<T> s) {
  using acc_t = at::opmath_type<T>;
  const int64_t u = s.units;
  KTORCH_STEP_LOOP(s) {
    const int64_t b = i / u;
    const int64_t j = i - b * u;
    const T* x = s.xp + b * s.xp_stride;
    const T* hr = s.hr + b * s.hr_stride;
    T* g = s.gates + b * 4 * u;
    const T* hb = s.hr_bias;
    const acc_t z = sigmoid_act(acc_t(x[j]) + acc_t(T(acc_t(hr[j]) + acc_t(hb[j]))));
    const acc_t r = sigmoid_act(acc_t(x[u + j]) + acc_t(T(acc_t(hr[u + j]) + acc_t(hb[u + j]))));
    const T hh = T(acc_t(hr[2 * u + j]) + acc_t(hb[2 * u + j]));
    const acc_t n = tanh_act(acc_t(x[2 * u + j]) + r * acc_t(hh));
    const T hp = s.h_prev[i];
    const T h = row_flag(s.keep, b, s.keep_stride) ? T(z * acc_t(hp) + (acc_t(1) - z) * n) : hp;
    g[j] = T(z);
    g[u + j] = T(r);
    g[2 * u + j] = T(n);
    g[3 * u + j] = hh;
    s.h_next[i] = h;
    if (s.out != nullptr) {
      s.out[b * s.out_stride + j] = row_flag(s.out_keep, b, s.keep_stride) ? h : T(0);
    }
  }
}

template <typename T>
__global__ void forward_reset_gate_kernel(const gru::ForwardStep<T> s) {
  using acc_t = at::opmath_type<T>;
  const int64_t u = s.units;
  KTORCH_STEP_LOOP(s) {
    const int64_t b = i / u;
    const int64_t j = i - b * u;
    const acc_t r = sigmoid_act(acc_t(s.xp[b * s.xp_stride + u + j]) +
                                acc_t(s.hr[b * s.hr_stride + u + j]));
    T* g = s.gates + b * 4 * u;
    g[u + j] = T(r);
    g[3 * u + j] = T(r * acc_t(s.h_prev[i]));
  }
}

template <typename T>
__global__ void forward_update_kernel(const gru::ForwardStep<T> s) {
  using acc_t = at::opmath_type<T>;
  const int64_t u = s.units;
  KTORCH_STEP_LOOP(s) {
    const int64_t b = i / u;
    const int64_t j = i - b * u;
    const T* x = s.xp + b * s.xp_stride;
    T* g = s.gates + b * 4 * u;
    const acc_t z = sigmoid_act(acc_t(x[j]) + acc_t(s.hr[b * s.hr_stride + j]));
    const acc_t n = tanh_act(acc_t(x[2 * u + j]) + acc_t(s.q[i]));
    const T hp = s.h_prev[i];
    const T h = row_flag(s.keep, b, s.keep_stride) ? T(z * acc_t(hp) + (acc_t(1) - z) * n) : hp;
    g[j] = T(z);
    g[2 * u + j] = T(n);
    s.h_next[i] = h;
    if (s.out != nullptr) {
      s.out[b * s.out_stride + j] = row_flag(s.out_keep, b, s.keep_stride) ? h : T(0);
    }
  }
}

// Gradient reaching the state leaving the step: from later steps and from this step's output.
template <typename T>
__device__ inline at::opmath_type<T> state_grad(const gru::BackwardStep<T>& s, int64_t i,
                                                int64_t b, int64_t j) {
  using acc_t = at::opmath_type<T>;
  acc_t grad = acc_t(s.dh[i]);
  if (s.dout != nullptr && row_flag(s.out_keep, b, s.keep_stride)) {
    grad += acc_t(s.dout[b * s.dout_stride + j]);
  }
  return grad;
}

template <typename T>
__global__ void backward_reset_after_kernel(const gru::BackwardStep<T> s) {
  using acc_t = at::opmath_type<T>;
  const int64_t u = s.units;
  KTORCH_STEP_LOOP(s) {
    const int64_t b = i / u;
    const int64_t j = i - b * u;
    const bool keep = row_flag(s.keep, b, s.keep_stride);
    const acc_t grad = state_grad(s, i, b, j);
    const acc_t gn = keep ? grad : acc_t(0);
    const T* g = s.gates + b * 4 * u;
    const acc_t z = acc_t(g[j]);
    const acc_t r = acc_t(g[u + j]);
    const acc_t n = acc_t(g[2 * u + j]);
    const acc_t hh = acc_t(g[3 * u + j]);
    const acc_t dz = gn * (acc_t(s.h_prev[i]) - n) * z * (acc_t(1) - z);
    const acc_t dn = gn * (acc_t(1) - z) * (acc_t(1) - n * n);
    const acc_t dr = dn * hh * r * (acc_t(1) - r);
    T* dxp = s.dxp + b * s.dxp_stride;
    T* dhr = s.dhr + b * 3 * u;
    dxp[j] = T(dz);
    dxp[u + j] = T(dr);
    dxp[2 * u + j] = T(dn);
    dhr[j] = T(dz);
    dhr[u + j] = T(dr);
    dhr[2 * u + j] = T(dn * r);
    s.dh[i] = T(keep ? gn * z : grad);
  }
}

template <typename T>
__global__ void backward_candidate_kernel(const gru::BackwardStep<T> s) {
  using acc_t = at::opmath_type<T>;
  const int64_t u = s.units;
  KTORCH_STEP_LOOP(s) {
    const int64_t b = i / u;
    const int64_t j = i - b * u;
    const bool keep = row_flag(s.keep, b, s.keep_stride);
    const acc_t grad = state_grad(s, i, b, j);
    const acc_t gn = keep ? grad : acc_t(0);
    const T* g = s.gates + b * 4 * u;
    const acc_t z = acc_t(g[j]);
    const acc_t n = acc_t(g[2 * u + j]);
    const acc_t dz = gn * (acc_t(s.h_prev[i]) - n) * z * (acc_t(1) - z);
    const acc_t dn = gn * (acc_t(1) - z) * (acc_t(1) - n * n);
    T* dxp = s.dxp + b * s.dxp_stride;
    T* dhr = s.dhr + b * 3 * u;
    dxp[j] = T(dz);
    dxp[2 * u + j] = T(dn);
    dhr[j] = T(dz);
    dhr[2 * u + j] = T(dn);
    s.dh[i] = T(keep ? gn * z : grad);
  }
}

template <typename T>
__global__ void backward_reset_gate_kernel(const gru::BackwardStep<T> s) {
  using acc_t = at::opmath_type<T>;
  const int64_t u = s.units;
  KTORCH_STEP_LOOP(s) {
    const int64_t b = i / u;
    const int64_t j = i - b * u;
    const acc_t r = acc_t(s.gates[b * 4 * u + u + j]);
    const acc_t d = acc_t(s.drh[i]);
    const acc_t dr = d * acc_t(s.h_prev[i]) * r * (acc_t(1) - r);
    s.dxp[b * s.dxp_stride + u + j] = T(dr);
    s.dhr[b * 3 * u + u + j] = T(dr);
    s.dh[i] = T(acc_t(s.dh[i]) + d * r);
  }
}

#undef KTORCH_STEP_LOOP

template <typename Step>
void launch(void (*kernel)(const Step), const Step& step) {
  const int64_t n = step.batch * step.units;
  if (n == 0) {
    return;
  }
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks);
  kernel<<<static_cast<int>(blocks), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(step);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

struct CudaKernels {
  template <typename T>
  static void forward_reset_after(const gru::ForwardStep<T>& s) {
    launch(forward_reset_after_kernel<T>, s);
  }
  template <typename T>
  static void forward_reset_gate(const gru::ForwardStep<T>& s) {
    launch(forward_reset_gate_kernel<T>, s);
  }
  template <typename T>
  static void forward_update(const gru::ForwardStep<T>& s) {
    launch(forward_update_kernel<T>, s);
  }
  template <typename T>
  static void backward_reset_after(const gru::BackwardStep<T>& s) {
    launch(backward_reset_after_kernel<T>, s);
  }
  template <typename T>
  static void backward_candidate(const gru::BackwardStep<T>& s) {
    launch(backward_candidate_kernel<T>, s);
  }
  template <typename T>
  static void backward_reset_gate(const gru::BackwardStep<T>& s) {
    launch(backward_reset_gate_kernel<T>, s);
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_sequence_cuda(
    const at::Tensor& inputs, const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
    const std::optional<at::Tensor>& bias, const at::Tensor& h0,
    const std::optional<at::Tensor>& mask, bool go_backwards, bool reset_after,
    bool return_sequences, bool zero_output_for_mask) {
  const c10::cuda::CUDAGuard guard(inputs.device());
  return gru::forward<CudaKernels>("ktorch::gru_sequence", inputs, kernel, recurrent_kernel,
                                   bias, h0, mask, go_backwards, reset_after, return_sequences,
                                   zero_output_for_mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gru_sequence_backward_cuda(const std::optional<at::Tensor>& grad_output,
                           const std::optional<at::Tensor>& grad_h, const at::Tensor& inputs,
                           const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
                           const std::optional<at::Tensor>& mask, const at::Tensor& states,
                           const at::Tensor& gates, bool go_backwards, bool reset_after,
                           bool return_sequences, bool zero_output_for_mask,
                           bool grad_inputs_needed) {
  const c10::cuda::CUDAGuard guard(inputs.device());
  return gru::backward<CudaKernels>("ktorch::gru_sequence_backward", grad_output, grad_h,
                                    inputs, kernel, recurrent_kernel, mask, states, gates,
                                    go_backwards, reset_after, return_sequences,
                                    zero_output_for_mask, grad_inputs_needed);
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CUDA, m) {
  m.impl("gru_sequence", &gru_sequence_cuda);
  m.impl("gru_sequence_backward", &gru_sequence_backward_cuda);
}

}  // namespace ktorch
