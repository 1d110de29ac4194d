// CUDA implementation of ktorch::fused_batch_norm, ktorch::fused_batch_norm_inference and
// ktorch::fused_batch_norm_backward.
//
// x is read as (outer, channels, inner) (see fused_batch_norm.h). Per-channel reductions run in
// two launches: a 2D grid of blocks, each reducing a slice of one channel (inner > 1: threads
// along inner, then rows) or of 32 channels (inner == 1: threads along channels, coalesced,
// then rows), writes partial results; a per-channel kernel merges them and derives the
// coefficients; one elementwise kernel then writes the output. Statistics use Welford updates
// merged with Chan's formula, in opmath (float32 for 16-bit inputs).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <tuple>

#include "fused_batch_norm.h"

namespace ktorch {
namespace {

constexpr int kReduceThreads = 512;
constexpr int kElementwiseThreads = 256;
constexpr int kChannelThreads = 128;

// --------------------------------------------------------------------------- reductions

template <typename acc_t>
struct Moments {
  acc_t mean;
  acc_t m2;
  int64_t count;
};

template <typename acc_t>
__device__ __forceinline__ Moments<acc_t> merge_moments(const Moments<acc_t>& a,
                                                        const Moments<acc_t>& b) {
  const int64_t count = a.count + b.count;
  if (count == 0) {
    return a;
  }
  const acc_t weight_b = static_cast<acc_t>(b.count) / static_cast<acc_t>(count);
  const acc_t delta = b.mean - a.mean;
  return {a.mean + delta * weight_b,
          a.m2 + b.m2 + delta * delta * static_cast<acc_t>(a.count) * weight_b, count};
}

// Welford's running mean and sum of squared deviations of x.
template <typename scalar_t, typename acc_t>
struct MomentsOp {
  using State = Moments<acc_t>;
  __device__ static State init() { return {acc_t(0), acc_t(0), 0}; }
  __device__ static void update(State& s, const scalar_t* x, const scalar_t*, int64_t i, acc_t) {
    const acc_t v = static_cast<acc_t>(x[i]);
    s.count += 1;
    const acc_t delta = v - s.mean;
    s.mean += delta / static_cast<acc_t>(s.count);
    s.m2 += delta * (v - s.mean);
  }
  __device__ static State merge(const State& a, const State& b) { return merge_moments(a, b); }
};

template <typename acc_t>
struct GradSums {
  acc_t dy;
  acc_t dy_xmu;
};

// Sums of dy and of dy * (x - mean).
template <typename scalar_t, typename acc_t>
struct GradSumsOp {
  using State = GradSums<acc_t>;
  __device__ static State init() { return {acc_t(0), acc_t(0)}; }
  __device__ static void update(State& s, const scalar_t* x, const scalar_t* dy, int64_t i,
                                acc_t mean) {
    const acc_t g = static_cast<acc_t>(dy[i]);
    s.dy += g;
    s.dy_xmu += g * (static_cast<acc_t>(x[i]) - mean);
  }
  __device__ static State merge(const State& a, const State& b) {
    return {a.dy + b.dy, a.dy_xmu + b.dy_xmu};
  }
};

// inner > 1: block (blockIdx.x = channel, blockIdx.y = slice of rows); threads along inner
// (x) and rows (y). Writes partials[channel * gridDim.y + blockIdx.y].
template <typename Op, typename scalar_t, typename acc_t>
__global__ void reduce_channel_kernel(const scalar_t* __restrict__ x,
                                      const scalar_t* __restrict__ dy,
                                      const acc_t* __restrict__ mean, int64_t outer,
                                      int64_t channels, int64_t inner,
                                      typename Op::State* __restrict__ partials) {
  using State = typename Op::State;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  State* shared = reinterpret_cast<State*>(shared_raw);
  const int64_t c = blockIdx.x;
  const acc_t m = mean != nullptr ? mean[c] : acc_t(0);
  State s = Op::init();
  const int64_t row_step = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t o = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; o < outer;
       o += row_step) {
    const int64_t base = (o * channels + c) * inner;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      Op::update(s, x, dy, base + i, m);
    }
  }
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  shared[tid] = s;
  __syncthreads();
  for (int stride = (blockDim.x * blockDim.y) / 2; stride > 0; stride >>= 1) {
    if (tid < stride) {
      shared[tid] = Op::merge(shared[tid], shared[tid + stride]);
    }
    __syncthreads();
  }
  if (tid == 0) {
    partials[c * gridDim.y + blockIdx.y] = shared[0];
  }
}

// inner == 1: block (blockIdx.x = group of blockDim.x channels, blockIdx.y = slice of rows);
// threads along channels (x, coalesced) and rows (y).
template <typename Op, typename scalar_t, typename acc_t>
__global__ void reduce_rows_kernel(const scalar_t* __restrict__ x,
                                   const scalar_t* __restrict__ dy,
                                   const acc_t* __restrict__ mean, int64_t rows,
                                   int64_t channels, typename Op::State* __restrict__ partials) {
  using State = typename Op::State;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  State* shared = reinterpret_cast<State*>(shared_raw);
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  State s = Op::init();
  if (c < channels) {
    const acc_t m = mean != nullptr ? mean[c] : acc_t(0);
    const int64_t row_step = static_cast<int64_t>(gridDim.y) * blockDim.y;
    for (int64_t r = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < rows;
         r += row_step) {
      Op::update(s, x, dy, r * channels + c, m);
    }
  }
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  shared[tid] = s;
  __syncthreads();
  for (int stride = blockDim.y / 2; stride > 0; stride >>= 1) {
    if (threadIdx.y < stride) {
      shared[tid] = Op::merge(shared[tid], shared[tid + stride * blockDim.x]);
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < channels) {
    partials[c * gridDim.y + blockIdx.y] = shared[threadIdx.x];
  }
}

struct ReducePlan {
  dim3 grid;
  dim3 block;
  int64_t splits;
};

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) {
    p <<= 1;
  }
  return p;
}

// About four blocks per SM in all, each slice of rows at least one block row deep.
ReducePlan reduce_plan(const BatchNormDims& d, int device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t target = 4 * static_cast<int64_t>(std::max(sms, 1));
  int64_t bx;
  int64_t groups;
  if (d.inner > 1) {
    bx = std::min<int64_t>(kReduceThreads, std::max<int64_t>(32, next_power_of_two(d.inner)));
    groups = d.channels;
  } else {
    bx = 32;
    groups = (d.channels + bx - 1) / bx;
  }
  const int64_t by = kReduceThreads / bx;
  const int64_t max_splits =
      std::min<int64_t>(65535, std::max<int64_t>(1, (d.outer + by - 1) / by));
  const int64_t splits = std::clamp<int64_t>((target + groups - 1) / groups, 1, max_splits);
  return {dim3(static_cast<unsigned>(groups), static_cast<unsigned>(splits)),
          dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by)), splits};
}

template <typename Op, typename scalar_t, typename acc_t>
void launch_reduce(const ReducePlan& plan, const BatchNormDims& d, const scalar_t* x,
                   const scalar_t* dy, const acc_t* mean, typename Op::State* partials,
                   cudaStream_t stream) {
  const size_t shared = sizeof(typename Op::State) * plan.block.x * plan.block.y;
  if (d.inner > 1) {
    reduce_channel_kernel<Op, scalar_t, acc_t><<<plan.grid, plan.block, shared, stream>>>(
        x, dy, mean, d.outer, d.channels, d.inner, partials);
  } else {
    reduce_rows_kernel<Op, scalar_t, acc_t><<<plan.grid, plan.block, shared, stream>>>(
        x, dy, mean, d.outer, d.channels, partials);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ------------------------------------------------------------------- per-channel kernels

// Merges the partial moments of each channel; writes the batch statistics, Keras's moving
// averages (moving * momentum + batch * (1 - momentum), biased variance) and the affine
// coefficients of the output, (x - mean) * scale + shift.
template <typename acc_t>
__global__ void finish_moments_kernel(const Moments<acc_t>* __restrict__ partials, int64_t splits,
                                      int64_t channels, acc_t eps, acc_t keep, acc_t take,
                                      const acc_t* __restrict__ weight,
                                      const acc_t* __restrict__ bias, acc_t* __restrict__ save_mean,
                                      acc_t* __restrict__ save_invstd,
                                      acc_t* __restrict__ running_mean,
                                      acc_t* __restrict__ running_var, acc_t* __restrict__ scale,
                                      acc_t* __restrict__ shift) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) {
    return;
  }
  Moments<acc_t> m = partials[c * splits];
  for (int64_t s = 1; s < splits; ++s) {
    m = merge_moments(m, partials[c * splits + s]);
  }
  const acc_t var = m.m2 / static_cast<acc_t>(m.count);
  const acc_t invstd = acc_t(1) / sqrt(var + eps);
  save_mean[c] = m.mean;
  save_invstd[c] = invstd;
  if (running_mean != nullptr) {
    running_mean[c] = running_mean[c] * keep + m.mean * take;
  }
  if (running_var != nullptr) {
    running_var[c] = running_var[c] * keep + var * take;
  }
  scale[c] = weight != nullptr ? weight[c] * invstd : invstd;
  shift[c] = bias != nullptr ? bias[c] : acc_t(0);
}

// Inference coefficients from the moving statistics: y = x * scale + shift with
// scale = weight / sqrt(moving_var + eps), shift = bias - moving_mean * scale.
template <typename acc_t>
__global__ void inference_coefficients_kernel(int64_t channels, acc_t eps,
                                              const acc_t* __restrict__ running_mean,
                                              const acc_t* __restrict__ running_var,
                                              const acc_t* __restrict__ weight,
                                              const acc_t* __restrict__ bias,
                                              acc_t* __restrict__ scale,
                                              acc_t* __restrict__ shift) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) {
    return;
  }
  const acc_t invstd = acc_t(1) / sqrt(running_var[c] + eps);
  const acc_t a = weight != nullptr ? weight[c] * invstd : invstd;
  scale[c] = a;
  shift[c] = (bias != nullptr ? bias[c] : acc_t(0)) - running_mean[c] * a;
}

// grad_x = dy * a + (x - mean) * b + k. Training: a = w * invstd,
// b = -a * invstd^2 * sum(dy * (x - mean)) / count, k = -a * sum(dy) / count; inference:
// b = k = 0. partials may be null when no sums were needed.
template <typename acc_t>
__global__ void finish_grad_kernel(const GradSums<acc_t>* __restrict__ partials, int64_t splits,
                                   int64_t channels, acc_t count, bool training,
                                   const acc_t* __restrict__ weight,
                                   const acc_t* __restrict__ invstd,
                                   acc_t* __restrict__ grad_weight, acc_t* __restrict__ grad_bias,
                                   acc_t* __restrict__ a, acc_t* __restrict__ b,
                                   acc_t* __restrict__ k) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) {
    return;
  }
  GradSums<acc_t> sums{acc_t(0), acc_t(0)};
  if (partials != nullptr) {
    for (int64_t s = 0; s < splits; ++s) {
      sums.dy += partials[c * splits + s].dy;
      sums.dy_xmu += partials[c * splits + s].dy_xmu;
    }
  }
  if (grad_weight != nullptr) {
    grad_weight[c] = sums.dy_xmu * invstd[c];
  }
  if (grad_bias != nullptr) {
    grad_bias[c] = sums.dy;
  }
  const acc_t ac = (weight != nullptr ? weight[c] : acc_t(1)) * invstd[c];
  a[c] = ac;
  b[c] = training ? -ac * invstd[c] * invstd[c] * (sums.dy_xmu / count) : acc_t(0);
  k[c] = training ? -ac * (sums.dy / count) : acc_t(0);
}

// ------------------------------------------------------------------- elementwise kernels

int elementwise_blocks(int64_t n, int device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t blocks = (n + kElementwiseThreads - 1) / kElementwiseThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 32LL * std::max(sms, 1))));
}

// y = (x - mean[c]) * scale[c] + shift[c], c = (i / inner) % channels; mean may be null (0).
template <typename scalar_t, typename acc_t, typename index_t>
__global__ void affine_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, index_t n,
                              index_t channels, index_t inner, const acc_t* __restrict__ mean,
                              const acc_t* __restrict__ scale, const acc_t* __restrict__ shift) {
  const index_t step = static_cast<index_t>(blockDim.x) * gridDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const index_t c = (i / inner) % channels;
    const acc_t centered = static_cast<acc_t>(x[i]) - (mean != nullptr ? mean[c] : acc_t(0));
    y[i] = static_cast<scalar_t>(centered * scale[c] + shift[c]);
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void grad_input_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                                  scalar_t* __restrict__ dx, index_t n, index_t channels,
                                  index_t inner, const acc_t* __restrict__ mean,
                                  const acc_t* __restrict__ a, const acc_t* __restrict__ b,
                                  const acc_t* __restrict__ k) {
  const index_t step = static_cast<index_t>(blockDim.x) * gridDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const index_t c = (i / inner) % channels;
    const acc_t g = static_cast<acc_t>(dy[i]);
    dx[i] = static_cast<scalar_t>(g * a[c] + (static_cast<acc_t>(x[i]) - mean[c]) * b[c] + k[c]);
  }
}

// 32-bit indexing when the tensor allows it (integer division is much cheaper): the index of
// the grid-stride loop must not pass INT32_MAX either.
bool fits_int32(int64_t n, int blocks) {
  return n + static_cast<int64_t>(blocks) * kElementwiseThreads <=
         std::numeric_limits<int32_t>::max();
}

template <typename scalar_t, typename acc_t>
void launch_affine(const scalar_t* x, scalar_t* y, const BatchNormDims& d, const acc_t* mean,
                   const acc_t* scale, const acc_t* shift, int device, cudaStream_t stream) {
  const int64_t n = d.outer * d.channels * d.inner;
  const int blocks = elementwise_blocks(n, device);
  if (fits_int32(n, blocks)) {
    affine_kernel<scalar_t, acc_t, int32_t><<<blocks, kElementwiseThreads, 0, stream>>>(
        x, y, static_cast<int32_t>(n), static_cast<int32_t>(d.channels),
        static_cast<int32_t>(d.inner), mean, scale, shift);
  } else {
    affine_kernel<scalar_t, acc_t, int64_t><<<blocks, kElementwiseThreads, 0, stream>>>(
        x, y, n, d.channels, d.inner, mean, scale, shift);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename acc_t>
void launch_grad_input(const scalar_t* dy, const scalar_t* x, scalar_t* dx, const BatchNormDims& d,
                       const acc_t* mean, const acc_t* a, const acc_t* b, const acc_t* k,
                       int device, cudaStream_t stream) {
  const int64_t n = d.outer * d.channels * d.inner;
  const int blocks = elementwise_blocks(n, device);
  if (fits_int32(n, blocks)) {
    grad_input_kernel<scalar_t, acc_t, int32_t><<<blocks, kElementwiseThreads, 0, stream>>>(
        dy, x, dx, static_cast<int32_t>(n), static_cast<int32_t>(d.channels),
        static_cast<int32_t>(d.inner), mean, a, b, k);
  } else {
    grad_input_kernel<scalar_t, acc_t, int64_t><<<blocks, kElementwiseThreads, 0, stream>>>(
        dy, x, dx, n, d.channels, d.inner, mean, a, b, k);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

unsigned channel_blocks(int64_t channels) {
  const int64_t blocks = (channels + kChannelThreads - 1) / kChannelThreads;
  return static_cast<unsigned>(std::max<int64_t>(1, blocks));
}

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

// Scratch for `count` values of T on x's device.
template <typename T>
at::Tensor scratch(const at::Tensor& x, int64_t count) {
  return at::empty({static_cast<int64_t>(count * sizeof(T))}, x.options().dtype(at::kByte));
}

// ------------------------------------------------------------------------------ operators

std::tuple<at::Tensor, at::Tensor, at::Tensor> fused_batch_norm_cuda(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& running_mean,
    const std::optional<at::Tensor>& running_var, int64_t axis, double momentum, double eps) {
  constexpr const char* op = "ktorch::fused_batch_norm";
  axis = batch_norm_axis(op, x, axis);
  const BatchNormDims d = batch_norm_dims(op, x, axis);
  check_batch_norm_count(op, x, d);
  check_batch_norm_eps(op, eps);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor w = batch_norm_channel_vector(op, "weight", weight, x, d.channels);
  const at::Tensor b = batch_norm_channel_vector(op, "bias", bias, x, d.channels);
  const at::Tensor rm = batch_norm_stat_buffer(op, "running_mean", running_mean, x, d.channels);
  const at::Tensor rv = batch_norm_stat_buffer(op, "running_var", running_var, x, d.channels);
  const auto stat_options = x.options().dtype(batch_norm_opmath(x));
  at::Tensor out = batch_norm_empty_like(x);
  at::Tensor save_mean = at::empty({d.channels}, stat_options);
  at::Tensor save_invstd = at::empty({d.channels}, stat_options);
  if (x.numel() == 0) {
    return {out, save_mean, save_invstd};
  }
  const int device = x.get_device();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const ReducePlan plan = reduce_plan(d, device);
  at::Tensor coefficients = at::empty({2, d.channels}, stat_options);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    using State = Moments<acc_t>;
    at::Tensor partials = scratch<State>(x, d.channels * plan.splits);
    auto* partial_ptr = reinterpret_cast<State*>(partials.mutable_data_ptr<uint8_t>());
    const scalar_t* x_ptr = x.const_data_ptr<scalar_t>();
    launch_reduce<MomentsOp<scalar_t, acc_t>, scalar_t, acc_t>(plan, d, x_ptr, nullptr, nullptr,
                                                               partial_ptr, stream);
    acc_t* scale = coefficients.mutable_data_ptr<acc_t>();
    acc_t* shift = scale + d.channels;
    finish_moments_kernel<acc_t><<<channel_blocks(d.channels), kChannelThreads, 0, stream>>>(
        partial_ptr, plan.splits, d.channels, static_cast<acc_t>(eps),
        static_cast<acc_t>(momentum), static_cast<acc_t>(1.0 - momentum),
        data_or_null<acc_t>(w), data_or_null<acc_t>(b), save_mean.mutable_data_ptr<acc_t>(),
        save_invstd.mutable_data_ptr<acc_t>(), data_or_null<acc_t>(rm), data_or_null<acc_t>(rv),
        scale, shift);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    launch_affine<scalar_t, acc_t>(x_ptr, out.mutable_data_ptr<scalar_t>(), d,
                                   save_mean.const_data_ptr<acc_t>(), scale, shift, device,
                                   stream);
  });
  batch_norm_write_back(running_mean, rm);
  batch_norm_write_back(running_var, rv);
  return {out, save_mean, save_invstd};
}

at::Tensor fused_batch_norm_inference_cuda(const at::Tensor& x,
                                           const std::optional<at::Tensor>& weight,
                                           const std::optional<at::Tensor>& bias,
                                           const at::Tensor& running_mean,
                                           const at::Tensor& running_var, int64_t axis,
                                           double eps) {
  constexpr const char* op = "ktorch::fused_batch_norm_inference";
  axis = batch_norm_axis(op, x, axis);
  const BatchNormDims d = batch_norm_dims(op, x, axis);
  check_batch_norm_eps(op, eps);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor w = batch_norm_channel_vector(op, "weight", weight, x, d.channels);
  const at::Tensor b = batch_norm_channel_vector(op, "bias", bias, x, d.channels);
  const at::Tensor rm = batch_norm_channel_vector(op, "running_mean", running_mean, x, d.channels);
  const at::Tensor rv = batch_norm_channel_vector(op, "running_var", running_var, x, d.channels);
  at::Tensor out = batch_norm_empty_like(x);
  if (x.numel() == 0) {
    return out;
  }
  const int device = x.get_device();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor coefficients = at::empty({2, d.channels}, x.options().dtype(batch_norm_opmath(x)));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    acc_t* scale = coefficients.mutable_data_ptr<acc_t>();
    acc_t* shift = scale + d.channels;
    inference_coefficients_kernel<acc_t>
        <<<channel_blocks(d.channels), kChannelThreads, 0, stream>>>(
            d.channels, static_cast<acc_t>(eps), rm.const_data_ptr<acc_t>(),
            rv.const_data_ptr<acc_t>(), data_or_null<acc_t>(w), data_or_null<acc_t>(b), scale,
            shift);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    launch_affine<scalar_t, acc_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                                   d, nullptr, scale, shift, device, stream);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> fused_batch_norm_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const at::Tensor& mean, const at::Tensor& invstd, int64_t axis, bool training,
    std::array<bool, 3> output_mask) {
  constexpr const char* op = "ktorch::fused_batch_norm_backward";
  axis = batch_norm_axis(op, x, axis);
  const BatchNormDims d = batch_norm_dims(op, x, axis);
  check_batch_norm_like_x(op, "grad_out", grad_out, x, d, axis);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor w = batch_norm_channel_vector(op, "weight", weight, x, d.channels);
  const at::Tensor m = batch_norm_channel_vector(op, "mean", mean, x, d.channels);
  const at::Tensor s = batch_norm_channel_vector(op, "invstd", invstd, x, d.channels);
  const auto opmath = batch_norm_opmath(x);
  const auto stat_options = x.options().dtype(opmath);
  at::Tensor grad_x =
      output_mask[0] ? batch_norm_empty_like(x) : batch_norm_skipped(x, x.scalar_type());
  at::Tensor grad_weight =
      output_mask[1] ? at::zeros({d.channels}, stat_options) : batch_norm_skipped(x, opmath);
  at::Tensor grad_bias =
      output_mask[2] ? at::zeros({d.channels}, stat_options) : batch_norm_skipped(x, opmath);
  if (x.numel() == 0) {
    return {grad_x, grad_weight, grad_bias};
  }
  const bool need_sums = output_mask[1] || output_mask[2] || (training && output_mask[0]);
  const int device = x.get_device();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const ReducePlan plan = reduce_plan(d, device);
  at::Tensor coefficients = at::empty({3, d.channels}, stat_options);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    using State = GradSums<acc_t>;
    const scalar_t* x_ptr = x.const_data_ptr<scalar_t>();
    const scalar_t* dy_ptr = grad_out.const_data_ptr<scalar_t>();
    const acc_t* mean_ptr = m.const_data_ptr<acc_t>();
    at::Tensor partials;
    State* partial_ptr = nullptr;
    if (need_sums) {
      partials = scratch<State>(x, d.channels * plan.splits);
      partial_ptr = reinterpret_cast<State*>(partials.mutable_data_ptr<uint8_t>());
      launch_reduce<GradSumsOp<scalar_t, acc_t>, scalar_t, acc_t>(plan, d, x_ptr, dy_ptr,
                                                                  mean_ptr, partial_ptr, stream);
    }
    acc_t* a = coefficients.mutable_data_ptr<acc_t>();
    acc_t* b = a + d.channels;
    acc_t* k = b + d.channels;
    finish_grad_kernel<acc_t><<<channel_blocks(d.channels), kChannelThreads, 0, stream>>>(
        partial_ptr, plan.splits, d.channels, static_cast<acc_t>(d.count()), training,
        data_or_null<acc_t>(w), s.const_data_ptr<acc_t>(),
        output_mask[1] ? grad_weight.mutable_data_ptr<acc_t>() : nullptr,
        output_mask[2] ? grad_bias.mutable_data_ptr<acc_t>() : nullptr, a, b, k);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (!output_mask[0]) {
      return;
    }
    if (training) {
      launch_grad_input<scalar_t, acc_t>(dy_ptr, x_ptr, grad_x.mutable_data_ptr<scalar_t>(), d,
                                         mean_ptr, a, b, k, device, stream);
    } else {
      // b = k = 0: grad_x = dy * a, with no read of x.
      launch_affine<scalar_t, acc_t>(dy_ptr, grad_x.mutable_data_ptr<scalar_t>(), d, nullptr, a,
                                     k, device, stream);
    }
  });
  return {grad_x, grad_weight, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CUDA, m) {
  m.impl("fused_batch_norm", &fused_batch_norm_cuda);
  m.impl("fused_batch_norm_inference", &fused_batch_norm_inference_cuda);
  m.impl("fused_batch_norm_backward", &fused_batch_norm_backward_cuda);
}

}  // namespace ktorch
