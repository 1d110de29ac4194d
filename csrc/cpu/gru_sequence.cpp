// CPU implementation of ktorch::gru_sequence and ktorch::gru_sequence_backward: the fused
// pointwise passes of one step; the GEMMs and the step loop are in gru_sequence.h.
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/bit_cast.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "gru_sequence.h"

namespace ktorch {
namespace {

// Smallest number of elements of a step worth handing to a thread.
constexpr int64_t kGrainElements = 16384;

int64_t grain_rows(int64_t units) {
  return std::max<int64_t>(1, kGrainElements / units);
}

// The float math below vectorizes at -O3 without -ffast-math: no libm calls, and every
// comparison is on the integer bits (a float comparison stops GCC from if-converting the loop
// under the default -ftrapping-math, and the loop then runs scalar).
inline int32_t bits_of(float x) {
  return c10::bit_cast<int32_t>(x);
}

inline float float_of(int32_t bits) {
  return c10::bit_cast<float>(bits);
}

constexpr int32_t kSignBit = INT32_MIN;
constexpr int32_t kAbsBits = 0x7FFFFFFF;
constexpr int32_t kInfBits = 0x7F800000;

// `y`, or `x` where `x` is NaN, so that NaN propagates through the clamped math.
inline float nan_or(float x, float y) {
  const int32_t nan = -static_cast<int32_t>((bits_of(x) & kAbsBits) > kInfBits);
  return float_of((bits_of(x) & nan) | (bits_of(y) & ~nan));
}

// exp: Cephes's expf (range reduction by ln 2, degree-6 polynomial, about 1 ulp), the input
// clamped to +-87.3365 where the result is a normal float.
inline float exp_float(float x) {
  const int32_t bits = bits_of(x);
  x = float_of(std::min(bits & kAbsBits, 0x42AEAC4F) | (bits & kSignBit));
  // Round x / ln 2 to an integer by adding 1.5 * 2^23: the integer sits in the low mantissa bits.
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float k = shifted - 12582912.0f;
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * float_of((bits_of(shifted) - 0x4B400000 + 127) << 23);
}

inline float sigmoid(float x) {
  return nan_or(x, 1.0f / (1.0f + exp_float(-x)));
}

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// tanh: an odd polynomial below 0.625 (Cephes's tanhf), where 1 - 2 / (exp(2x) + 1) would lose
// digits to cancellation, that formula above.
inline float tanh_act(float x) {
  const int32_t bits = bits_of(x);
  const int32_t abs_bits = bits & kAbsBits;
  const float a = float_of(abs_bits);
  const float s = x * x;
  const float small =
      ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
        1.33314422036e-1f) * s - 3.33332819422e-1f) * s * a + a;
  const float large = 1.0f - 2.0f / (exp_float(2.0f * a) + 1.0f);
  const int32_t use_small = -static_cast<int32_t>(abs_bits < 0x3F200000);  // 0.625f
  const int32_t magnitude = (bits_of(small) & use_small) | (bits_of(large) & ~use_small);
  return nan_or(x, float_of(magnitude | (bits & kSignBit)));
}

inline double tanh_act(double x) {
  return std::tanh(x);
}

inline bool row_flag(const bool* flags, int64_t b, int64_t stride) {
  return flags == nullptr || flags[b * stride];
}

#if defined(__GNUC__) && defined(__x86_64__)
#define KTORCH_GRU_AVX2 1
// Runs fn() compiled for AVX2 and FMA. `flatten` inlines everything it calls into it, so the
// row loops are vectorized 8 floats wide (measured 3x faster than the SSE2 build on the forward
// gates). Called only where the CPU has both.
template <typename Fn>
__attribute__((target("avx2,fma"), flatten)) void run_avx2(const Fn& fn) {
  fn();
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

// Runs rows(begin, end) over the batch, split across threads, on the AVX2 build of the loops
// where the CPU has it.
template <typename Rows>
void parallel_rows(int64_t batch, int64_t units, const Rows& rows) {
  at::parallel_for(0, batch, grain_rows(units), [&](int64_t begin, int64_t end) {
#ifdef KTORCH_GRU_AVX2
    if (cpu_has_avx2()) {
      run_avx2([&] { rows(begin, end); });
      return;
    }
#endif
    rows(begin, end);
  });
}

// Runs row(b, keep) for every row b of a forward step, rows split across threads; `keep` is
// std::true_type or std::false_type (the step mask of the row). The loops are compiled for
// each case rather than branching in the loop body, which would stop them from vectorizing.
template <typename T, typename Row>
void for_each_forward_row(const gru::ForwardStep<T>& s, const Row& row) {
  parallel_rows(s.batch, s.units, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      if (row_flag(s.keep, b, s.keep_stride)) {
        row(b, std::true_type{});
      } else {
        row(b, std::false_type{});
      }
    }
  });
}

// The same for a backward step: row(b, keep, dout, with_output), where `with_output` says
// whether this step's output has a gradient for the row (`dout` points to it).
template <typename T, typename Row>
void for_each_backward_row(const gru::BackwardStep<T>& s, const Row& row) {
  parallel_rows(s.batch, s.units, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const bool keep = row_flag(s.keep, b, s.keep_stride);
      const T* dout = s.dout != nullptr && row_flag(s.out_keep, b, s.keep_stride)
                          ? s.dout + b * s.dout_stride
                          : nullptr;
      if (keep && dout != nullptr) {
        row(b, std::true_type{}, dout, std::true_type{});
      } else if (keep) {
        row(b, std::true_type{}, dout, std::false_type{});
      } else if (dout != nullptr) {
        row(b, std::false_type{}, dout, std::true_type{});
      } else {
        row(b, std::false_type{}, dout, std::false_type{});
      }
    }
  });
}

// The output of step `s` for row `b`: the new state, or zeros where the output is masked.
template <typename T>
inline void write_output(const gru::ForwardStep<T>& s, int64_t b, const T* h) {
  if (s.out == nullptr) {
    return;
  }
  T* __restrict__ out = s.out + b * s.out_stride;
  if (row_flag(s.out_keep, b, s.keep_stride)) {
    std::copy(h, h + s.units, out);
  } else {
    std::fill(out, out + s.units, T(0));
  }
}

// The loops over the units of one row. They are functions of __restrict__ pointers (not
// lambdas over a struct) so that GCC vectorizes them without runtime aliasing checks.

// reset_after: z, r, candidate and the new state. A masked row (kKeep false) computes its gates
// too (the backward reads them) and keeps its state.
template <bool kKeep, typename T>
void forward_reset_after_row(const T* __restrict__ x, const T* __restrict__ hr,
                             const T* __restrict__ hr_bias, const T* __restrict__ hp,
                             T* __restrict__ hn, T* __restrict__ g, int64_t u) {
  using acc_t = at::opmath_type<T>;
  for (int64_t j = 0; j < u; ++j) {
    const acc_t z = sigmoid(acc_t(x[j]) + acc_t(T(acc_t(hr[j]) + acc_t(hr_bias[j]))));
    const acc_t r = sigmoid(acc_t(x[u + j]) + acc_t(T(acc_t(hr[u + j]) + acc_t(hr_bias[u + j]))));
    const T hh = T(acc_t(hr[2 * u + j]) + acc_t(hr_bias[2 * u + j]));
    const acc_t n = tanh_act(acc_t(x[2 * u + j]) + r * acc_t(hh));
    g[j] = T(z);
    g[u + j] = T(r);
    g[2 * u + j] = T(n);
    g[3 * u + j] = hh;
    if constexpr (kKeep) {
      hn[j] = T(z * acc_t(hp[j]) + (acc_t(1) - z) * n);
    } else {
      hn[j] = hp[j];
    }
  }
}

// reset_before, first pass: r and r * h, the input of the candidate's GEMM.
template <typename T>
void forward_reset_gate_row(const T* __restrict__ x, const T* __restrict__ hr,
                            const T* __restrict__ hp, T* __restrict__ g, int64_t u) {
  using acc_t = at::opmath_type<T>;
  for (int64_t j = 0; j < u; ++j) {
    const acc_t r = sigmoid(acc_t(x[u + j]) + acc_t(hr[u + j]));
    g[u + j] = T(r);
    g[3 * u + j] = T(r * acc_t(hp[j]));
  }
}

// reset_before, second pass: z, candidate and the new state; q = (r * h) @ U_h.
template <bool kKeep, typename T>
void forward_update_row(const T* __restrict__ x, const T* __restrict__ hr,
                        const T* __restrict__ q, const T* __restrict__ hp, T* __restrict__ hn,
                        T* __restrict__ g, int64_t u) {
  using acc_t = at::opmath_type<T>;
  for (int64_t j = 0; j < u; ++j) {
    const acc_t z = sigmoid(acc_t(x[j]) + acc_t(hr[j]));
    const acc_t n = tanh_act(acc_t(x[2 * u + j]) + acc_t(q[j]));
    g[j] = T(z);
    g[2 * u + j] = T(n);
    if constexpr (kKeep) {
      hn[j] = T(z * acc_t(hp[j]) + (acc_t(1) - z) * n);
    } else {
      hn[j] = hp[j];
    }
  }
}

// reset_after: every gate gradient and the direct part of dh. dh holds the gradient of the
// state leaving the step (plus dout, this step's output gradient, when kWithOutput); a masked
// row passes it on to the entering state and gets zero gate gradients.
template <bool kKeep, bool kWithOutput, typename T>
void backward_reset_after_row(const T* __restrict__ dout, const T* __restrict__ hp,
                              const T* __restrict__ g, T* __restrict__ dh, T* __restrict__ dxp,
                              T* __restrict__ dhr, int64_t u) {
  using acc_t = at::opmath_type<T>;
  for (int64_t j = 0; j < u; ++j) {
    acc_t grad = acc_t(dh[j]);
    if constexpr (kWithOutput) {
      grad += acc_t(dout[j]);
    }
    const acc_t gn = kKeep ? grad : acc_t(0);
    const acc_t z = acc_t(g[j]);
    const acc_t r = acc_t(g[u + j]);
    const acc_t n = acc_t(g[2 * u + j]);
    const acc_t hh = acc_t(g[3 * u + j]);
    const acc_t dz = gn * (acc_t(hp[j]) - n) * z * (acc_t(1) - z);
    const acc_t dn = gn * (acc_t(1) - z) * (acc_t(1) - n * n);
    const acc_t dr = dn * hh * r * (acc_t(1) - r);
    dxp[j] = T(dz);
    dxp[u + j] = T(dr);
    dxp[2 * u + j] = T(dn);
    dhr[j] = T(dz);
    dhr[u + j] = T(dr);
    dhr[2 * u + j] = T(dn * r);
    dh[j] = T(kKeep ? gn * z : grad);
  }
}

// reset_before, first pass: gradients of z and of the candidate (its GEMM's output).
template <bool kKeep, bool kWithOutput, typename T>
void backward_candidate_row(const T* __restrict__ dout, const T* __restrict__ hp,
                            const T* __restrict__ g, T* __restrict__ dh, T* __restrict__ dxp,
                            T* __restrict__ dhr, int64_t u) {
  using acc_t = at::opmath_type<T>;
  for (int64_t j = 0; j < u; ++j) {
    acc_t grad = acc_t(dh[j]);
    if constexpr (kWithOutput) {
      grad += acc_t(dout[j]);
    }
    const acc_t gn = kKeep ? grad : acc_t(0);
    const acc_t z = acc_t(g[j]);
    const acc_t n = acc_t(g[2 * u + j]);
    const acc_t dz = gn * (acc_t(hp[j]) - n) * z * (acc_t(1) - z);
    const acc_t dn = gn * (acc_t(1) - z) * (acc_t(1) - n * n);
    dxp[j] = T(dz);
    dxp[2 * u + j] = T(dn);
    dhr[j] = T(dz);
    dhr[2 * u + j] = T(dn);
    dh[j] = T(kKeep ? gn * z : grad);
  }
}

// reset_before, second pass: gradient of r from drh = d(r * h), and r's share of dh.
template <typename T>
void backward_reset_gate_row(const T* __restrict__ hp, const T* __restrict__ g,
                             const T* __restrict__ drh, T* __restrict__ dh, T* __restrict__ dxp,
                             T* __restrict__ dhr, int64_t u) {
  using acc_t = at::opmath_type<T>;
  for (int64_t j = 0; j < u; ++j) {
    const acc_t r = acc_t(g[u + j]);
    const acc_t d = acc_t(drh[j]);
    const acc_t dr = d * acc_t(hp[j]) * r * (acc_t(1) - r);
    dxp[u + j] = T(dr);
    dhr[u + j] = T(dr);
    dh[j] = T(acc_t(dh[j]) + d * r);
  }
}

struct CpuKernels {
  template <typename T>
  static void forward_reset_after(const gru::ForwardStep<T>& s) {
    const int64_t u = s.units;
    for_each_forward_row(s, [&](int64_t b, auto keep) {
      forward_reset_after_row<decltype(keep)::value>(s.xp + b * s.xp_stride,
                                                     s.hr + b * s.hr_stride, s.hr_bias,
                                                     s.h_prev + b * u, s.h_next + b * u,
                                                     s.gates + b * 4 * u, u);
      write_output(s, b, s.h_next + b * u);
    });
  }

  template <typename T>
  static void forward_reset_gate(const gru::ForwardStep<T>& s) {
    const int64_t u = s.units;
    parallel_rows(s.batch, u, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        forward_reset_gate_row(s.xp + b * s.xp_stride, s.hr + b * s.hr_stride, s.h_prev + b * u,
                               s.gates + b * 4 * u, u);
      }
    });
  }

  template <typename T>
  static void forward_update(const gru::ForwardStep<T>& s) {
    const int64_t u = s.units;
    for_each_forward_row(s, [&](int64_t b, auto keep) {
      forward_update_row<decltype(keep)::value>(s.xp + b * s.xp_stride, s.hr + b * s.hr_stride,
                                                s.q + b * u, s.h_prev + b * u, s.h_next + b * u,
                                                s.gates + b * 4 * u, u);
      write_output(s, b, s.h_next + b * u);
    });
  }

  template <typename T>
  static void backward_reset_after(const gru::BackwardStep<T>& s) {
    const int64_t u = s.units;
    for_each_backward_row(s, [&](int64_t b, auto keep, const T* dout, auto with_output) {
      backward_reset_after_row<decltype(keep)::value, decltype(with_output)::value>(
          dout, s.h_prev + b * u, s.gates + b * 4 * u, s.dh + b * u, s.dxp + b * s.dxp_stride,
          s.dhr + b * 3 * u, u);
    });
  }

  template <typename T>
  static void backward_candidate(const gru::BackwardStep<T>& s) {
    const int64_t u = s.units;
    for_each_backward_row(s, [&](int64_t b, auto keep, const T* dout, auto with_output) {
      backward_candidate_row<decltype(keep)::value, decltype(with_output)::value>(
          dout, s.h_prev + b * u, s.gates + b * 4 * u, s.dh + b * u, s.dxp + b * s.dxp_stride,
          s.dhr + b * 3 * u, u);
    });
  }

  template <typename T>
  static void backward_reset_gate(const gru::BackwardStep<T>& s) {
    const int64_t u = s.units;
    parallel_rows(s.batch, u, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        backward_reset_gate_row(s.h_prev + b * u, s.gates + b * 4 * u, s.drh + b * u,
                                s.dh + b * u, s.dxp + b * s.dxp_stride, s.dhr + b * 3 * u, u);
      }
    });
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_sequence_cpu(
    const at::Tensor& inputs, const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
    const std::optional<at::Tensor>& bias, const at::Tensor& h0,
    const std::optional<at::Tensor>& mask, bool go_backwards, bool reset_after,
    bool return_sequences, bool zero_output_for_mask) {
  return gru::forward<CpuKernels>("ktorch::gru_sequence", inputs, kernel, recurrent_kernel, bias,
                                  h0, mask, go_backwards, reset_after, return_sequences,
                                  zero_output_for_mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_sequence_backward_cpu(
    const std::optional<at::Tensor>& grad_output, const std::optional<at::Tensor>& grad_h,
    const at::Tensor& inputs,
    const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
    const std::optional<at::Tensor>& mask, const at::Tensor& states, const at::Tensor& gates,
    bool go_backwards, bool reset_after, bool return_sequences, bool zero_output_for_mask,
    bool grad_inputs_needed) {
  return gru::backward<CpuKernels>("ktorch::gru_sequence_backward", grad_output, grad_h, inputs,
                                   kernel, recurrent_kernel, mask, states, gates, go_backwards,
                                   reset_after, return_sequences, zero_output_for_mask,
                                   grad_inputs_needed);
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CPU, m) {
  m.impl("gru_sequence", &gru_sequence_cpu);
  m.impl("gru_sequence_backward", &gru_sequence_backward_cpu);
}

}  // namespace ktorch
