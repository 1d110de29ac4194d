// Argument checks and the memory-layout view shared by the CPU and CUDA implementations of
// ktorch::fused_batch_norm, ktorch::fused_batch_norm_inference and
// ktorch::fused_batch_norm_backward.
//
// Layout: the channel axis may be any axis of x. The kernels read x as a row-major
// (outer, channels, inner) array, which covers the two layouts that occur without a copy:
//   - x contiguous: outer = prod(sizes before axis), inner = prod(sizes after axis); this is
//     channels_first data (N, C, *spatial) and also channels_last data (N, *spatial, C)
//     with axis = -1 (then inner = 1);
//   - x "channels-contiguous": x.movedim(axis, -1) is contiguous, e.g. an NCHW tensor in
//     torch.channels_last memory; outer = numel / channels, inner = 1.
// Any other strides are rejected with an error that says to call .contiguous() first.
// Outputs shaped like x get x's strides, so they keep its memory format.
//
// Statistics (mean, invstd) and the affine/moving-statistic vectors are handled in the opmath
// type of x (float32 for float16/bfloat16/float32, float64 for float64); vectors of another
// floating dtype are converted on the way in, and the moving statistics written back.
#pragma once

#include <ATen/OpMathType.h>
#include <torch/all.h>

#include <array>
#include <optional>

namespace ktorch {

struct BatchNormDims {
  int64_t outer;
  int64_t channels;
  int64_t inner;
  // Number of values reduced per channel.
  int64_t count() const { return outer * inner; }
};

inline int64_t batch_norm_axis(const char* op, const at::Tensor& x, int64_t axis) {
  const int64_t ndim = x.dim();
  TORCH_CHECK(ndim >= 1, op, ": argument x must have at least one dimension. Received: shape=",
              x.sizes());
  TORCH_CHECK(axis >= -ndim && axis < ndim, op, ": invalid value for argument axis. Expected an ",
              "integer in [", -ndim, ", ", ndim, ") for an input of rank ", ndim,
              ". Received: axis=", axis);
  return axis < 0 ? axis + ndim : axis;
}

// Whether t.movedim(axis, -1) is contiguous, read from the strides (no view is made).
inline bool batch_norm_channels_contiguous(const at::Tensor& t, int64_t axis) {
  const auto sizes = t.sizes();
  const auto strides = t.strides();
  if (sizes[axis] != 1 && strides[axis] != 1) {
    return false;
  }
  int64_t expected = sizes[axis];
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    if (d == axis || sizes[d] == 1) {
      continue;
    }
    if (strides[d] != expected) {
      return false;
    }
    expected *= sizes[d];
  }
  return true;
}

// The (outer, channels, inner) view of x along `axis` (already made non-negative).
inline BatchNormDims batch_norm_dims(const char* op, const at::Tensor& x, int64_t axis) {
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                  dtype == at::kBFloat16,
              op, ": argument x must be float32, float64, float16 or bfloat16. Received: dtype=",
              dtype);
  const auto sizes = x.sizes();
  int64_t outer = 1;
  int64_t inner = 1;
  for (int64_t d = 0; d < axis; ++d) {
    outer *= sizes[d];
  }
  for (int64_t d = axis + 1; d < x.dim(); ++d) {
    inner *= sizes[d];
  }
  if (x.is_contiguous()) {
    return {outer, sizes[axis], inner};
  }
  TORCH_CHECK(batch_norm_channels_contiguous(x, axis), op,
              ": argument x must be contiguous or have its channel axis ", axis,
              " innermost in memory (channels_last); call .contiguous() on it first. Received: ",
              "shape=", x.sizes(), ", strides=", x.strides());
  return {outer * inner, sizes[axis], 1};
}

// Whether t can be read with the same (outer, channels, inner) view as x.
inline bool batch_norm_same_layout(const at::Tensor& t, const at::Tensor& x,
                                   const BatchNormDims& dims, int64_t axis) {
  if (!t.sizes().equals(x.sizes())) {
    return false;
  }
  return dims.inner > 1 ? t.is_contiguous() : batch_norm_channels_contiguous(t, axis);
}

inline void check_batch_norm_like_x(const char* op, const char* name, const at::Tensor& t,
                                    const at::Tensor& x, const BatchNormDims& dims, int64_t axis) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": argument ", name,
              " must have the dtype of x (", x.scalar_type(), "). Received: dtype=",
              t.scalar_type());
  TORCH_CHECK(t.device() == x.device(), op, ": argument ", name,
              " must be on the device of x (", x.device(), "). Received: ", t.device());
  TORCH_CHECK(batch_norm_same_layout(t, x, dims, axis), op, ": argument ", name,
              " must have the shape and memory layout of x (shape=", x.sizes(), ", strides=",
              x.strides(), "). Received: shape=", t.sizes(), ", strides=", t.strides());
}

inline at::ScalarType batch_norm_opmath(const at::Tensor& x) {
  return at::toOpMathType(x.scalar_type());
}

// A per-channel vector as a contiguous opmath tensor (converted when needed), or undefined.
inline at::Tensor batch_norm_channel_vector(const char* op, const char* name,
                                            const std::optional<at::Tensor>& t,
                                            const at::Tensor& x, int64_t channels) {
  if (!t.has_value() || !t->defined()) {
    return at::Tensor();
  }
  TORCH_CHECK(t->dim() == 1 && t->numel() == channels, op, ": argument ", name,
              " must be a vector of ", channels, " values (one per channel). Received: shape=",
              t->sizes());
  TORCH_CHECK(t->is_floating_point(), op, ": argument ", name,
              " must be a floating-point tensor. Received: dtype=", t->scalar_type());
  TORCH_CHECK(t->device() == x.device(), op, ": argument ", name,
              " must be on the device of x (", x.device(), "). Received: ", t->device());
  const auto opmath = batch_norm_opmath(x);
  // Checked first: each conversion call costs a dispatch even when it returns t itself.
  if (t->scalar_type() == opmath && t->is_contiguous()) {
    return *t;
  }
  return t->to(opmath).contiguous();
}

// A moving statistic the training kernel updates in place: the tensor itself when it is a
// contiguous opmath vector, else a converted copy that batch_norm_write_back copies into it.
inline at::Tensor batch_norm_stat_buffer(const char* op, const char* name,
                                         const std::optional<at::Tensor>& t, const at::Tensor& x,
                                         int64_t channels) {
  return batch_norm_channel_vector(op, name, t, x, channels);
}

inline void batch_norm_write_back(const std::optional<at::Tensor>& t, const at::Tensor& buffer) {
  if (buffer.defined() && !buffer.is_same(*t)) {
    t->copy_(buffer);
  }
}

// Outputs shaped like x, with x's strides (x is dense in both accepted layouts).
inline at::Tensor batch_norm_empty_like(const at::Tensor& x) {
  return at::empty_strided(x.sizes(), x.strides(), x.options());
}

// A gradient the caller did not ask for (output_mask false): an empty tensor.
inline at::Tensor batch_norm_skipped(const at::Tensor& x, at::ScalarType dtype) {
  return at::empty({0}, x.options().dtype(dtype));
}

// Training needs at least one value per channel.
inline void check_batch_norm_count(const char* op, const at::Tensor& x,
                                   const BatchNormDims& dims) {
  TORCH_CHECK(dims.channels == 0 || dims.count() > 0, op,
              ": training needs at least one value per channel to compute batch statistics. "
              "Received: x.shape=",
              x.sizes());
}

inline void check_batch_norm_eps(const char* op, double eps) {
  TORCH_CHECK(eps >= 0.0, op, ": invalid value for argument eps. Expected a float >= 0. ",
              "Received: eps=", eps);
}

}  // namespace ktorch
