// Argument checks shared by the CPU and CUDA implementations of ktorch::fused_dropout.
//
// Mask layout: one bit per element, element i in bit (i % 8) of byte (i / 8) of a uint8 tensor
// of ceil(numel / 8) bytes; the unused high bits of the last byte are zero.
#pragma once

#include <torch/all.h>

namespace ktorch {

inline int64_t dropout_mask_bytes(int64_t numel) {
  return (numel + 7) / 8;
}

inline void check_dropout_p(const char* op, double p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, op,
              ": invalid value for argument p. Expected a float in [0, 1). Received: p=", p);
}

inline void check_dropout_tensor(const char* op, const char* name, const at::Tensor& t) {
  const auto dtype = t.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf ||
                  dtype == at::kBFloat16,
              op, ": argument ", name,
              " must be float32, float64, float16 or bfloat16. Received: dtype=", dtype);
  TORCH_CHECK(t.is_contiguous(), op, ": argument ", name,
              " must be contiguous; call .contiguous() on it first. Received: shape=", t.sizes(),
              ", strides=", t.strides());
}

inline void check_dropout_mask(const char* op, const at::Tensor& mask, const at::Tensor& grad) {
  TORCH_CHECK(mask.scalar_type() == at::kByte, op,
              ": argument mask must be the uint8 mask returned by fused_dropout. Received: dtype=",
              mask.scalar_type());
  TORCH_CHECK(mask.device() == grad.device(), op,
              ": arguments mask and grad must be on the same device. Received: mask on ",
              mask.device(), ", grad on ", grad.device());
  TORCH_CHECK(mask.is_contiguous(), op,
              ": argument mask must be contiguous; call .contiguous() on it first.");
  TORCH_CHECK(mask.numel() == dropout_mask_bytes(grad.numel()), op, ": argument mask must hold ",
              dropout_mask_bytes(grad.numel()), " bytes (one bit for each of the ", grad.numel(),
              " elements of grad). Received: mask.numel()=", mask.numel());
}

}  // namespace ktorch
