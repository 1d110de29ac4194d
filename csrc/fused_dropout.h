// Argument checks and seed draws shared by the CPU and CUDA implementations of the ktorch
// dropout ops.
//
// Mask layout: one bit per element, element i in bit (i % 8) of byte (i / 8) of a uint8 tensor
// of ceil(numel / 8) bytes; the unused high bits of the last byte are zero. Elements are taken
// in the row-major order of the logical shape (a non-contiguous input is copied first).
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/all.h>

#include <cstdint>
#include <mutex>
#include <optional>

namespace ktorch {

// A key drawn from a CPU generator is what torch.randint(0, 2**63 - 1, (1,), generator=g)
// draws: one random64() reduced modulo the range, so Python can reproduce it.
constexpr uint64_t kDropoutSeedRange = (uint64_t{1} << 63) - 1;

// Offsets taken from a CUDA generator get this bit: PyTorch's own Philox kernels put a thread
// index (always below 2^63) in the same counter words, so the two streams never meet.
constexpr uint64_t kDropoutDeviceStream = uint64_t{1} << 63;

inline uint64_t draw_dropout_seed(at::CPUGeneratorImpl* generator) {
  // The generator is shared by every thread: ATen draws under its mutex.
  const std::lock_guard<std::mutex> lock(generator->mutex_);
  return generator->random64() % kDropoutSeedRange;
}

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
}

inline void check_dropout_generator(const char* op, const std::optional<at::Generator>& generator,
                                    const at::Tensor& x) {
  if (!generator.has_value() || !generator->defined()) {
    return;
  }
  const c10::DeviceType type = generator->device().type();
  TORCH_CHECK(type == at::kCPU || type == x.device().type(), op,
              ": argument generator must be a CPU generator or one on the device of x (",
              x.device(), "). Received: a generator on ", generator->device());
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
