// CPU implementation of ktorch::fused_dropout, fused_dropout_rng and fused_dropout_backward.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/util/bit_cast.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <type_traits>

#include "fused_dropout.h"
#include "philox.h"

namespace ktorch {
namespace {

// Mask bytes whose draws are generated together: 256 draws (1 KiB) stay in L1.
constexpr int64_t kChunkBytes = 32;
// Smallest number of mask bytes (8 elements each) worth handing to a thread.
constexpr int64_t kGrainBytes = 2048;

// `value` when `keep`, else +0: an AND with an all-ones or all-zeros word of the same width.
template <typename scalar_t>
inline scalar_t keep_or_zero(scalar_t value, bool keep) {
  using bits_t = std::conditional_t<
      sizeof(scalar_t) == 8, uint64_t,
      std::conditional_t<sizeof(scalar_t) == 4, uint32_t, uint16_t>>;
  const auto mask = static_cast<bits_t>(-static_cast<bits_t>(keep));
  return c10::bit_cast<scalar_t>(static_cast<bits_t>(c10::bit_cast<bits_t>(value) & mask));
}

template <typename scalar_t>
void dropout_forward(const scalar_t* x, scalar_t* out, uint8_t* mask, int64_t n, double p,
                     uint64_t seed, uint64_t offset) {
  using opmath_t = at::opmath_type<scalar_t>;
  const uint32_t threshold = dropout_threshold(p);
  const opmath_t scale = static_cast<opmath_t>(1.0 / (1.0 - p));
  // Draws are a function of the element index only, so the split across threads does not
  // change the result.
  at::parallel_for(0, dropout_mask_bytes(n), kGrainBytes, [&](int64_t begin, int64_t end) {
    uint32_t draws[kChunkBytes * 8];
    for (int64_t chunk = begin; chunk < end; chunk += kChunkBytes) {
      const int64_t bytes = std::min(kChunkBytes, end - chunk);
      // Independent iterations of straight-line integer code: the compiler vectorizes it.
      for (int64_t b = 0; b < 2 * bytes; ++b) {
        const Philox4 r = dropout_draws(seed, offset, static_cast<uint64_t>(2 * chunk + b));
        draws[4 * b + 0] = r.v[0];
        draws[4 * b + 1] = r.v[1];
        draws[4 * b + 2] = r.v[2];
        draws[4 * b + 3] = r.v[3];
      }
      const int64_t first = chunk * 8;
      const int64_t count = std::min(bytes * 8, n - first);
      const scalar_t* xc = x + first;
      scalar_t* oc = out + first;
      // Zeroing by a bit mask instead of a branch lets this loop vectorize (and gives +0).
      for (int64_t j = 0; j < count; ++j) {
        const auto kept = static_cast<scalar_t>(static_cast<opmath_t>(xc[j]) * scale);
        oc[j] = keep_or_zero(kept, draws[j] >= threshold);
      }
      for (int64_t b = 0; b < bytes; ++b) {
        uint32_t bits = 0;
        for (int64_t t = 0; t < 8; ++t) {
          const int64_t j = 8 * b + t;
          bits |= static_cast<uint32_t>((j < count) & (draws[j] >= threshold)) << t;
        }
        mask[chunk + b] = static_cast<uint8_t>(bits);
      }
    }
  });
}

template <typename scalar_t>
void dropout_backward(const scalar_t* grad, const uint8_t* mask, scalar_t* out, int64_t n,
                      double p) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t scale = static_cast<opmath_t>(1.0 / (1.0 - p));
  at::parallel_for(0, dropout_mask_bytes(n), kGrainBytes, [&](int64_t begin, int64_t end) {
    // Whole bytes first: a fixed 8-element inner loop over one mask byte vectorizes.
    const int64_t full_end = std::min(end, n / 8);
    for (int64_t b = begin; b < full_end; ++b) {
      const uint32_t bits = mask[b];
      const scalar_t* gb = grad + 8 * b;
      scalar_t* ob = out + 8 * b;
      for (int t = 0; t < 8; ++t) {
        const auto kept = static_cast<scalar_t>(static_cast<opmath_t>(gb[t]) * scale);
        ob[t] = keep_or_zero(kept, (bits >> t) & 1u);
      }
    }
    for (int64_t j = std::max(begin, full_end) * 8; j < std::min(end * 8, n); ++j) {
      const auto kept = static_cast<scalar_t>(static_cast<opmath_t>(grad[j]) * scale);
      out[j] = keep_or_zero(kept, (mask[j >> 3] >> (j & 7)) & 1);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> dropout_cpu(const at::Tensor& input, double p, uint64_t seed,
                                               uint64_t offset) {
  // Named after the op whose work this is, for dispatch errors; fused_dropout_rng shares it.
  constexpr const char* op = "ktorch::fused_dropout";
  const at::Tensor x = input.contiguous();
  const int64_t n = x.numel();
  at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
  at::Tensor mask = at::empty({dropout_mask_bytes(n)}, x.options().dtype(at::kByte));
  if (n == 0) {
    return {out, mask};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    dropout_forward<scalar_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                              mask.mutable_data_ptr<uint8_t>(), n, p, seed, offset);
  });
  return {out, mask};
}

std::tuple<at::Tensor, at::Tensor> fused_dropout_cpu(const at::Tensor& x, double p, int64_t seed,
                                                     int64_t offset) {
  constexpr const char* op = "ktorch::fused_dropout";
  check_dropout_p(op, p);
  check_dropout_tensor(op, "x", x);
  return dropout_cpu(x, p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
}

std::tuple<at::Tensor, at::Tensor> fused_dropout_rng_cpu(const at::Tensor& x, double p,
                                                         std::optional<at::Generator> generator) {
  constexpr const char* op = "ktorch::fused_dropout_rng";
  check_dropout_p(op, p);
  check_dropout_tensor(op, "x", x);
  check_dropout_generator(op, generator, x);
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(
      generator, at::detail::getDefaultCPUGenerator());
  return dropout_cpu(x, p, draw_dropout_seed(gen), 0);
}

at::Tensor fused_dropout_backward_cpu(const at::Tensor& grad, const at::Tensor& mask, double p) {
  constexpr const char* op = "ktorch::fused_dropout_backward";
  check_dropout_p(op, p);
  check_dropout_tensor(op, "grad", grad);
  check_dropout_mask(op, mask, grad);
  const at::Tensor g = grad.contiguous();
  const int64_t n = g.numel();
  at::Tensor out = at::empty_like(g, at::MemoryFormat::Contiguous);
  if (n == 0) {
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), op, [&] {
    dropout_backward<scalar_t>(g.const_data_ptr<scalar_t>(), mask.const_data_ptr<uint8_t>(),
                               out.mutable_data_ptr<scalar_t>(), n, p);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CPU, m) {
  m.impl("fused_dropout", &fused_dropout_cpu);
  m.impl("fused_dropout_backward", &fused_dropout_backward_cpu);
  m.impl("fused_dropout_rng", &fused_dropout_rng_cpu);
}

}  // namespace ktorch
