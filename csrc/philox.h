// Counter-based Philox4x32-10 random numbers shared by the CPU and CUDA kernels.
//
// Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011). A draw is a pure
// function of (key, counter), so any thread can produce element i's number without a shared
// state, and the CPU and CUDA kernels produce the same stream. The Python reference in
// ktorch/ops/dropout.py implements the same function with torch integer ops.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KTORCH_HOST_DEVICE __host__ __device__ __forceinline__
#define KTORCH_UNROLL _Pragma("unroll")
#else
#define KTORCH_HOST_DEVICE inline
#define KTORCH_UNROLL _Pragma("GCC unroll 10")
#endif

namespace ktorch {

struct Philox4 {
  uint32_t v[4];
};

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

KTORCH_HOST_DEVICE void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// Ten Philox rounds on the 128-bit counter (c0, c1, c2, c3) under the 64-bit key (k0, k1).
KTORCH_HOST_DEVICE Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                         uint32_t k0, uint32_t k1) {
KTORCH_UNROLL
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(kPhiloxM0, c0, hi0, lo0);
    mulhilo32(kPhiloxM1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The four draws of counter block `block` (elements 4 * block ... 4 * block + 3) of the stream
// selected by (seed, offset): key = seed, counter = (block, offset), both split in 32-bit words.
KTORCH_HOST_DEVICE Philox4 dropout_draws(uint64_t seed, uint64_t offset, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// An element is kept when its draw is >= this threshold, so P(keep) = 1 - threshold / 2^32.
// p * 2^32 is exact in double and p < 1, so the truncation stays below 2^32.
KTORCH_HOST_DEVICE uint32_t dropout_threshold(double p) {
  return static_cast<uint32_t>(p * 4294967296.0);
}

}  // namespace ktorch
