// CUDA implementation of ktorch::fused_dropout, fused_dropout_rng and fused_dropout_backward.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <tuple>

#include "fused_dropout.h"
#include "philox.h"

namespace ktorch {
namespace {

constexpr int kThreads = 256;

// The 8 elements of one mask byte, loaded and stored with vector instructions.
template <typename T>
struct alignas(sizeof(T) * 8) Pack8 {
  T val[8];
};

template <typename T>
bool pack_aligned(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % alignof(Pack8<T>) == 0;
}

// One thread per mask byte: measured faster than capping the grid at the resident thread
// count (the grid-stride loop then covers more than 2^31 - 1 blocks, never in practice).
int grid_size(int64_t n_bytes) {
  const int64_t blocks = (n_bytes + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 0x7FFFFFFF)));
}

// Each thread owns whole mask bytes: 8 elements, 2 Philox blocks, one byte written, so no two
// threads touch the same byte and no atomics are needed.
template <typename scalar_t, bool kVectorized>
__global__ void dropout_forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                       uint8_t* __restrict__ mask, int64_t n, uint32_t threshold,
                                       at::opmath_type<scalar_t> scale, at::PhiloxCudaState philox,
                                       uint64_t stream_bits) {
  using opmath_t = at::opmath_type<scalar_t>;
  // Read on the device: under CUDA graph capture the seed and offset live in device memory and
  // are advanced at each replay, so no host value is baked into the graph.
  const auto [seed, base_offset] = at::cuda::philox::unpack(philox);
  const uint64_t offset = base_offset | stream_bits;
  const int64_t n_bytes = (n + 7) / 8;
  const int64_t full_bytes = n / 8;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_bytes;
       b += stride) {
    const Philox4 lo = dropout_draws(seed, offset, static_cast<uint64_t>(2 * b));
    const Philox4 hi = dropout_draws(seed, offset, static_cast<uint64_t>(2 * b + 1));
    const uint32_t draws[8] = {lo.v[0], lo.v[1], lo.v[2], lo.v[3],
                               hi.v[0], hi.v[1], hi.v[2], hi.v[3]};
    const int64_t first = 8 * b;
    uint32_t bits = 0;
    if (kVectorized && b < full_bytes) {
      const Pack8<scalar_t> in = *reinterpret_cast<const Pack8<scalar_t>*>(x + first);
      Pack8<scalar_t> result;
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        const bool keep = draws[t] >= threshold;
        const opmath_t kept = static_cast<opmath_t>(in.val[t]) * scale;
        result.val[t] = keep ? static_cast<scalar_t>(kept) : scalar_t(0);
        bits |= static_cast<uint32_t>(keep) << t;
      }
      *reinterpret_cast<Pack8<scalar_t>*>(out + first) = result;
    } else {
      const int count = static_cast<int>(n - first < 8 ? n - first : 8);
      for (int t = 0; t < count; ++t) {
        const bool keep = draws[t] >= threshold;
        const opmath_t kept = static_cast<opmath_t>(x[first + t]) * scale;
        out[first + t] = keep ? static_cast<scalar_t>(kept) : scalar_t(0);
        bits |= static_cast<uint32_t>(keep) << t;
      }
    }
    mask[b] = static_cast<uint8_t>(bits);
  }
}

template <typename scalar_t, bool kVectorized>
__global__ void dropout_backward_kernel(const scalar_t* __restrict__ grad,
                                        const uint8_t* __restrict__ mask,
                                        scalar_t* __restrict__ out, int64_t n,
                                        at::opmath_type<scalar_t> scale) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t n_bytes = (n + 7) / 8;
  const int64_t full_bytes = n / 8;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n_bytes;
       b += stride) {
    const uint32_t bits = mask[b];
    const int64_t first = 8 * b;
    if (kVectorized && b < full_bytes) {
      const Pack8<scalar_t> in = *reinterpret_cast<const Pack8<scalar_t>*>(grad + first);
      Pack8<scalar_t> result;
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        const opmath_t kept = static_cast<opmath_t>(in.val[t]) * scale;
        result.val[t] = ((bits >> t) & 1u) ? static_cast<scalar_t>(kept) : scalar_t(0);
      }
      *reinterpret_cast<Pack8<scalar_t>*>(out + first) = result;
    } else {
      const int count = static_cast<int>(n - first < 8 ? n - first : 8);
      for (int t = 0; t < count; ++t) {
        const opmath_t kept = static_cast<opmath_t>(grad[first + t]) * scale;
        out[first + t] = ((bits >> t) & 1u) ? static_cast<scalar_t>(kept) : scalar_t(0);
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor> dropout_cuda(const at::Tensor& input, double p,
                                                at::PhiloxCudaState philox,
                                                uint64_t stream_bits) {
  // Named after the op whose work this is, for dispatch errors; fused_dropout_rng shares it.
  constexpr const char* op = "ktorch::fused_dropout";
  const at::Tensor x = input.contiguous();
  const int64_t n = x.numel();
  at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
  at::Tensor mask = at::empty({dropout_mask_bytes(n)}, x.options().dtype(at::kByte));
  if (n == 0) {
    return {out, mask};
  }
  const int64_t n_bytes = dropout_mask_bytes(n);
  const uint32_t threshold = dropout_threshold(p);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t scale = static_cast<opmath_t>(1.0 / (1.0 - p));
    const scalar_t* x_ptr = x.const_data_ptr<scalar_t>();
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    uint8_t* mask_ptr = mask.mutable_data_ptr<uint8_t>();
    if (pack_aligned<scalar_t>(x_ptr) && pack_aligned<scalar_t>(out_ptr)) {
      dropout_forward_kernel<scalar_t, true><<<grid_size(n_bytes), kThreads, 0, stream>>>(
          x_ptr, out_ptr, mask_ptr, n, threshold, scale, philox, stream_bits);
    } else {
      dropout_forward_kernel<scalar_t, false><<<grid_size(n_bytes), kThreads, 0, stream>>>(
          x_ptr, out_ptr, mask_ptr, n, threshold, scale, philox, stream_bits);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, mask};
}

std::tuple<at::Tensor, at::Tensor> fused_dropout_cuda(const at::Tensor& x, double p, int64_t seed,
                                                      int64_t offset) {
  constexpr const char* op = "ktorch::fused_dropout";
  check_dropout_p(op, p);
  check_dropout_tensor(op, "x", x);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::PhiloxCudaState philox(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
  return dropout_cuda(x, p, philox, 0);
}

std::tuple<at::Tensor, at::Tensor> fused_dropout_rng_cuda(const at::Tensor& x, double p,
                                                          std::optional<at::Generator> generator) {
  constexpr const char* op = "ktorch::fused_dropout_rng";
  check_dropout_p(op, p);
  check_dropout_tensor(op, "x", x);
  check_dropout_generator(op, generator, x);
  const c10::cuda::CUDAGuard guard(x.device());
  if (generator.has_value() && generator->defined() && generator->device().is_cpu()) {
    // A host draw: no device work, no sync. The stream is 0, as on the CPU.
    const uint64_t seed = draw_dropout_seed(at::check_generator<at::CPUGeneratorImpl>(generator));
    return dropout_cuda(x, p, at::PhiloxCudaState(seed, 0), 0);
  }
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
      generator, at::cuda::detail::getDefaultCUDAGenerator(x.device().index()));
  at::PhiloxCudaState philox;
  {
    // One stream per call: the generator's offset advances by 4, its smallest step. Under graph
    // capture philox_cuda_state hands out device pointers that each replay advances.
    const std::lock_guard<std::mutex> lock(gen->mutex_);
    philox = gen->philox_cuda_state(4);
  }
  return dropout_cuda(x, p, philox, kDropoutDeviceStream);
}

at::Tensor fused_dropout_backward_cuda(const at::Tensor& grad, const at::Tensor& mask, double p) {
  constexpr const char* op = "ktorch::fused_dropout_backward";
  check_dropout_p(op, p);
  check_dropout_tensor(op, "grad", grad);
  check_dropout_mask(op, mask, grad);
  const c10::cuda::CUDAGuard guard(grad.device());
  const at::Tensor g = grad.contiguous();
  const int64_t n = g.numel();
  at::Tensor out = at::empty_like(g, at::MemoryFormat::Contiguous);
  if (n == 0) {
    return out;
  }
  const int64_t n_bytes = dropout_mask_bytes(n);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t scale = static_cast<opmath_t>(1.0 / (1.0 - p));
    const scalar_t* grad_ptr = g.const_data_ptr<scalar_t>();
    const uint8_t* mask_ptr = mask.const_data_ptr<uint8_t>();
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    if (pack_aligned<scalar_t>(grad_ptr) && pack_aligned<scalar_t>(out_ptr)) {
      dropout_backward_kernel<scalar_t, true><<<grid_size(n_bytes), kThreads, 0, stream>>>(
          grad_ptr, mask_ptr, out_ptr, n, scale);
    } else {
      dropout_backward_kernel<scalar_t, false><<<grid_size(n_bytes), kThreads, 0, stream>>>(
          grad_ptr, mask_ptr, out_ptr, n, scale);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CUDA, m) {
  m.impl("fused_dropout", &fused_dropout_cuda);
  m.impl("fused_dropout_backward", &fused_dropout_backward_cuda);
  m.impl("fused_dropout_rng", &fused_dropout_rng_cuda);
}

}  // namespace ktorch
