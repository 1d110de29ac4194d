// CPU implementation of ktorch::gru_sequence and ktorch::gru_sequence_backward: the fused
// pointwise passes of one step; the GEMMs and the step loop are in gru_sequence.h.
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/bit_cast.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <tuple>

#include "gru_sequence.h"

namespace ktorch {
namespace {

// Smallest number of elements of a step worth handing to a thread.
constexpr int64_t kGrainElements = 16384;

int64_t grain_rows(int64_t units) {
  return std::max<int64_t>(1, kGrainElements / units);
}

// float exp without a libm call, so that the loops below vectorize: Cephes's expf (range
// reduction by ln 2, degree-6 polynomial, about 1 ulp). The input is clamped to the range
// whose result is a finite normal float.
inline float exp_float(float x) {
  x = std::min(std::max(x, -87.33654f), 88.37626f);
  // Round to nearest by the 1.5 * 2^23 trick: no call to nearbyint, vectorizes on SSE2.
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * c10::bit_cast<float>((static_cast<int32_t>(k) + 127) << 23);
}

inline float sigmoid(float x) {
  return 1.0f / (1.0f + exp_float(-x));
}

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// float tanh, vectorizable: an odd polynomial below 0.625 (Cephes's tanhf), where
// 1 - 2 / (exp(2x) + 1) would lose digits to cancellation, that formula above.
inline float tanh_act(float x) {
  const float a = std::abs(x);
  const float s = x * x;
  const float small =
      ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
        1.33314422036e-1f) * s - 3.33332819422e-1f) * s * a + a;
  const float large = 1.0f - 2.0f / (exp_float(2.0f * a) + 1.0f);
  return std::copysign(a < 0.625f ? small : large, x);
}

inline double tanh_act(double x) {
  return std::tanh(x);
}

template <typename T>
inline const T* row_or_null(const T* base, int64_t b, int64_t stride, bool use) {
  return use && base != nullptr ? base + b * stride : nullptr;
}

inline bool row_flag(const bool* flags, int64_t b, int64_t stride) {
  return flags == nullptr || flags[b * stride];
}

// The output of step `s` for row `b`: the new state, or zeros where the output is masked.
template <typename T>
inline void write_output(const gru::ForwardStep<T>& s, int64_t b, const T* h) {
  if (s.out == nullptr) {
    return;
  }
  T* __restrict__ out = s.out + b * s.out_stride;
  const bool show = row_flag(s.out_keep, b, s.keep_stride);
  for (int64_t j = 0; j < s.units; ++j) {
    out[j] = show ? h[j] : T(0);
  }
}

struct CpuKernels {
  // reset_after: z, r, candidate, new state, mask select and output in one pass.
  template <typename T>
  static void forward_reset_after(const gru::ForwardStep<T>& s) {
    using acc_t = at::opmath_type<T>;
    const int64_t u = s.units;
    at::parallel_for(0, s.batch, grain_rows(u), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* __restrict__ x = s.xp + b * s.xp_stride;
        const T* __restrict__ hr = s.hr + b * s.hr_stride;
        const T* __restrict__ hp = s.h_prev + b * u;
        T* __restrict__ hn = s.h_next + b * u;
        T* __restrict__ g = s.gates + b * 4 * u;
        const bool keep = row_flag(s.keep, b, s.keep_stride);
        for (int64_t j = 0; j < u; ++j) {
          const acc_t z = sigmoid(acc_t(x[j]) + acc_t(hr[j]));
          const acc_t r = sigmoid(acc_t(x[u + j]) + acc_t(hr[u + j]));
          const T hh = hr[2 * u + j];
          const acc_t n = tanh_act(acc_t(x[2 * u + j]) + r * acc_t(hh));
          const acc_t h = acc_t(hp[j]);
          g[j] = T(z);
          g[u + j] = T(r);
          g[2 * u + j] = T(n);
          g[3 * u + j] = hh;
          hn[j] = keep ? T(z * h + (acc_t(1) - z) * n) : hp[j];
        }
        write_output(s, b, hn);
      }
    });
  }

  // reset_before, first pass: r and r * h, the input of the candidate's GEMM.
  template <typename T>
  static void forward_reset_gate(const gru::ForwardStep<T>& s) {
    using acc_t = at::opmath_type<T>;
    const int64_t u = s.units;
    at::parallel_for(0, s.batch, grain_rows(u), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* __restrict__ x = s.xp + b * s.xp_stride;
        const T* __restrict__ hr = s.hr + b * s.hr_stride;
        const T* __restrict__ hp = s.h_prev + b * u;
        T* __restrict__ g = s.gates + b * 4 * u;
        for (int64_t j = 0; j < u; ++j) {
          const acc_t r = sigmoid(acc_t(x[u + j]) + acc_t(hr[u + j]));
          g[u + j] = T(r);
          g[3 * u + j] = T(r * acc_t(hp[j]));
        }
      }
    });
  }

  // reset_before, second pass: z, candidate, new state, mask select and output.
  template <typename T>
  static void forward_update(const gru::ForwardStep<T>& s) {
    using acc_t = at::opmath_type<T>;
    const int64_t u = s.units;
    at::parallel_for(0, s.batch, grain_rows(u), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* __restrict__ x = s.xp + b * s.xp_stride;
        const T* __restrict__ hr = s.hr + b * s.hr_stride;
        const T* __restrict__ q = s.q + b * u;
        const T* __restrict__ hp = s.h_prev + b * u;
        T* __restrict__ hn = s.h_next + b * u;
        T* __restrict__ g = s.gates + b * 4 * u;
        const bool keep = row_flag(s.keep, b, s.keep_stride);
        for (int64_t j = 0; j < u; ++j) {
          const acc_t z = sigmoid(acc_t(x[j]) + acc_t(hr[j]));
          const acc_t n = tanh_act(acc_t(x[2 * u + j]) + acc_t(q[j]));
          const acc_t h = acc_t(hp[j]);
          g[j] = T(z);
          g[2 * u + j] = T(n);
          hn[j] = keep ? T(z * h + (acc_t(1) - z) * n) : hp[j];
        }
        write_output(s, b, hn);
      }
    });
  }

  // reset_after: every gate gradient of the step and the direct part of dh in one pass.
  template <typename T>
  static void backward_reset_after(const gru::BackwardStep<T>& s) {
    using acc_t = at::opmath_type<T>;
    const int64_t u = s.units;
    at::parallel_for(0, s.batch, grain_rows(u), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const bool keep = row_flag(s.keep, b, s.keep_stride);
        const bool shown = row_flag(s.out_keep, b, s.keep_stride);
        const T* __restrict__ dout = row_or_null(s.dout, b, s.dout_stride, shown);
        const T* __restrict__ hp = s.h_prev + b * u;
        const T* __restrict__ g = s.gates + b * 4 * u;
        T* __restrict__ dh = s.dh + b * u;
        T* __restrict__ dxp = s.dxp + b * s.dxp_stride;
        T* __restrict__ dhr = s.dhr + b * 3 * u;
        for (int64_t j = 0; j < u; ++j) {
          const acc_t grad = acc_t(dh[j]) + (dout != nullptr ? acc_t(dout[j]) : acc_t(0));
          const acc_t gn = keep ? grad : acc_t(0);
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
          dh[j] = T(keep ? gn * z : grad);
        }
      }
    });
  }

  // reset_before, first pass: gradients of z and of the candidate (its GEMM's output).
  template <typename T>
  static void backward_candidate(const gru::BackwardStep<T>& s) {
    using acc_t = at::opmath_type<T>;
    const int64_t u = s.units;
    at::parallel_for(0, s.batch, grain_rows(u), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const bool keep = row_flag(s.keep, b, s.keep_stride);
        const bool shown = row_flag(s.out_keep, b, s.keep_stride);
        const T* __restrict__ dout = row_or_null(s.dout, b, s.dout_stride, shown);
        const T* __restrict__ hp = s.h_prev + b * u;
        const T* __restrict__ g = s.gates + b * 4 * u;
        T* __restrict__ dh = s.dh + b * u;
        T* __restrict__ dxp = s.dxp + b * s.dxp_stride;
        T* __restrict__ dhr = s.dhr + b * 3 * u;
        for (int64_t j = 0; j < u; ++j) {
          const acc_t grad = acc_t(dh[j]) + (dout != nullptr ? acc_t(dout[j]) : acc_t(0));
          const acc_t gn = keep ? grad : acc_t(0);
          const acc_t z = acc_t(g[j]);
          const acc_t n = acc_t(g[2 * u + j]);
          const acc_t dz = gn * (acc_t(hp[j]) - n) * z * (acc_t(1) - z);
          const acc_t dn = gn * (acc_t(1) - z) * (acc_t(1) - n * n);
          dxp[j] = T(dz);
          dxp[2 * u + j] = T(dn);
          dhr[j] = T(dz);
          dhr[2 * u + j] = T(dn);
          dh[j] = T(keep ? gn * z : grad);
        }
      }
    });
  }

  // reset_before, second pass: gradient of r from d(r * h), and r's share of dh.
  template <typename T>
  static void backward_reset_gate(const gru::BackwardStep<T>& s) {
    using acc_t = at::opmath_type<T>;
    const int64_t u = s.units;
    at::parallel_for(0, s.batch, grain_rows(u), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* __restrict__ hp = s.h_prev + b * u;
        const T* __restrict__ g = s.gates + b * 4 * u;
        const T* __restrict__ drh = s.drh + b * u;
        T* __restrict__ dh = s.dh + b * u;
        T* __restrict__ dxp = s.dxp + b * s.dxp_stride;
        T* __restrict__ dhr = s.dhr + b * 3 * u;
        for (int64_t j = 0; j < u; ++j) {
          const acc_t r = acc_t(g[u + j]);
          const acc_t d = acc_t(drh[j]);
          const acc_t dr = d * acc_t(hp[j]) * r * (acc_t(1) - r);
          dxp[u + j] = T(dr);
          dhr[u + j] = T(dr);
          dh[j] = T(acc_t(dh[j]) + d * r);
        }
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
    const at::Tensor& grad_output, const at::Tensor& grad_h, const at::Tensor& inputs,
    const at::Tensor& kernel, const at::Tensor& recurrent_kernel,
    const std::optional<at::Tensor>& mask, const at::Tensor& states, const at::Tensor& gates,
    bool go_backwards, bool reset_after, bool return_sequences, bool zero_output_for_mask) {
  return gru::backward<CpuKernels>("ktorch::gru_sequence_backward", grad_output, grad_h, inputs,
                                   kernel, recurrent_kernel, mask, states, gates, go_backwards,
                                   reset_after, return_sequences, zero_output_for_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CPU, m) {
  m.impl("gru_sequence", &gru_sequence_cpu);
  m.impl("gru_sequence_backward", &gru_sequence_backward_cpu);
}

}  // namespace ktorch
