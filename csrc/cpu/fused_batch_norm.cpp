// CPU implementation of ktorch::fused_batch_norm, ktorch::fused_batch_norm_inference and
// ktorch::fused_batch_norm_backward.
//
// x is read as (outer, channels, inner) (see fused_batch_norm.h). Two loop structures:
//   - inner > 1 (channels-first data): one task per channel. Its statistics and its output are
//     computed back to back, so the second read of the channel's values comes from cache.
//   - inner == 1 (channels innermost): rows of `channels` values. Threads reduce blocks of rows
//     into per-channel partial statistics, combined once; then a parallel elementwise pass.
// Statistics are exact two-pass moments of cache-sized pieces (a row segment, or a chunk of
// rows), merged with Chan's parallel update: one read of x from memory, no cancellation.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <tuple>
#include <vector>

#include "fused_batch_norm.h"

// The innermost loops are compiled twice, for AVX2+FMA and for the baseline ISA, and picked
// when the library loads: the extension is built without -march flags, like torch itself.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define KTORCH_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KTORCH_CLONES
#endif

namespace ktorch {
namespace {

// Values reduced in one two-pass piece: 16 KiB of float32, so the second pass hits L1.
constexpr int64_t kPieceElems = 4096;
// Smallest amount of work (elements) worth handing to a thread.
constexpr int64_t kGrainElems = 32768;

// Independent partial sums: 128 bytes of accumulators (4 AVX registers), enough to hide the
// add latency; also the width of the channel groups kept in registers.
template <typename acc_t>
constexpr int64_t kLanes = 128 / sizeof(acc_t);

// Pairwise total of the lanes (vector adds, then a short tail), clobbering them.
template <typename acc_t>
inline acc_t lane_total(acc_t* acc) {
  for (int64_t width = kLanes<acc_t> / 2; width > 0; width /= 2) {
    for (int64_t j = 0; j < width; ++j) {
      acc[j] += acc[j + width];
    }
  }
  return acc[0];
}

// Adds f(i) for i in [0, n) into the lanes: full groups of lanes, then groups of 8, then
// single values, so short rows (7x7 images) stay mostly vectorized.
template <typename acc_t, typename F>
inline void accumulate(acc_t* acc, int64_t n, const F& f) {
  constexpr int64_t L = kLanes<acc_t>;
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    for (int64_t j = 0; j < L; ++j) {
      acc[j] += f(i + j);
    }
  }
  for (; i + 8 <= n; i += 8) {
    for (int64_t j = 0; j < 8; ++j) {
      acc[j] += f(i + j);
    }
  }
  for (int64_t j = 0; i + j < n; ++j) {
    acc[8 + j] += f(i + j);
  }
}

// ------------------------------------------ blocks of rows of one channel (inner > 1 layout)
// A block is `rows` runs of `n` contiguous values, `stride` values apart.

// Mean and sum of squared deviations of a block (two passes; the block fits in L1).
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void block_moments(const scalar_t* x, int64_t rows, int64_t stride, int64_t n,
                                 acc_t* mean_out, acc_t* m2_out) {
  acc_t acc[kLanes<acc_t>] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* p = x + r * stride;
    accumulate(acc, n, [&](int64_t i) { return static_cast<acc_t>(p[i]); });
  }
  const acc_t mean = lane_total(acc) / static_cast<acc_t>(rows * n);
  std::fill(acc, acc + kLanes<acc_t>, acc_t(0));
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* p = x + r * stride;
    accumulate(acc, n, [&](int64_t i) {
      const acc_t d = static_cast<acc_t>(p[i]) - mean;
      return d * d;
    });
  }
  *mean_out = mean;
  *m2_out = lane_total(acc);
}

// Sums of dy and of dy * (x - mean) over a block.
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void block_grad_sums(const scalar_t* dy, const scalar_t* x, int64_t rows,
                                   int64_t stride, int64_t n, acc_t mean, acc_t* sum_dy,
                                   acc_t* sum_dy_xmu) {
  acc_t a[kLanes<acc_t>] = {};
  acc_t b[kLanes<acc_t>] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* g = dy + r * stride;
    const scalar_t* p = x + r * stride;
    accumulate(a, n, [&](int64_t i) { return static_cast<acc_t>(g[i]); });
    accumulate(b, n, [&](int64_t i) {
      return static_cast<acc_t>(g[i]) * (static_cast<acc_t>(p[i]) - mean);
    });
  }
  *sum_dy = lane_total(a);
  *sum_dy_xmu = lane_total(b);
}

// y = (x - mean) * scale + shift over a block.
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void block_normalize(const scalar_t* x, scalar_t* y, int64_t rows, int64_t stride,
                                   int64_t n, acc_t mean, acc_t scale, acc_t shift) {
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* xr = x + r * stride;
    scalar_t* yr = y + r * stride;
    for (int64_t i = 0; i < n; ++i) {
      yr[i] = static_cast<scalar_t>((static_cast<acc_t>(xr[i]) - mean) * scale + shift);
    }
  }
}

// dx = dy * a + (x - mean) * b + c over a block.
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void block_grad_input(const scalar_t* dy, const scalar_t* x, scalar_t* dx,
                                    int64_t rows, int64_t stride, int64_t n, acc_t mean, acc_t a,
                                    acc_t b, acc_t c) {
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* gr = dy + r * stride;
    const scalar_t* xr = x + r * stride;
    scalar_t* dr = dx + r * stride;
    for (int64_t i = 0; i < n; ++i) {
      const acc_t centered = static_cast<acc_t>(xr[i]) - mean;
      dr[i] = static_cast<scalar_t>(static_cast<acc_t>(gr[i]) * a + centered * b + c);
    }
  }
}

// y = x * scale[c] + shift[c] for the rows [begin, end) of n values, row r in channel
// r % channels (memory order of the (outer, channels, inner) layout).
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void rows_scale_shift(const scalar_t* x, scalar_t* y, int64_t begin, int64_t end,
                                    int64_t channels, int64_t n, const acc_t* scale,
                                    const acc_t* shift) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t c = r % channels;
    const acc_t a = scale[c];
    const acc_t b = shift[c];
    const scalar_t* xr = x + r * n;
    scalar_t* yr = y + r * n;
    for (int64_t i = 0; i < n; ++i) {
      yr[i] = static_cast<scalar_t>(static_cast<acc_t>(xr[i]) * a + b);
    }
  }
}

// --------------------------------------------------- rows of channels (inner == 1, C innermost)
// Passes that read memory go row by row (sequential, what the hardware prefetcher follows),
// accumulating per channel in L1; the second pass of the moments, over a piece already in L1,
// keeps groups of kLanes channels in registers.

// Per-channel mean and sum of squared deviations of `rows` rows of `channels` values.
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void moments_rows(const scalar_t* x, int64_t rows, int64_t channels, acc_t* mean,
                                acc_t* m2) {
  constexpr int64_t G = kLanes<acc_t>;
  std::fill(mean, mean + channels, acc_t(0));
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* row = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      mean[c] += static_cast<acc_t>(row[c]);
    }
  }
  const acc_t inv = acc_t(1) / static_cast<acc_t>(rows);
  for (int64_t c = 0; c < channels; ++c) {
    mean[c] *= inv;
  }
  int64_t c0 = 0;
  for (; c0 + G <= channels; c0 += G) {
    acc_t acc[G] = {};
    acc_t m[G];
    for (int64_t j = 0; j < G; ++j) {
      m[j] = mean[c0 + j];
    }
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* p = x + r * channels + c0;
      for (int64_t j = 0; j < G; ++j) {
        const acc_t d = static_cast<acc_t>(p[j]) - m[j];
        acc[j] += d * d;
      }
    }
    for (int64_t j = 0; j < G; ++j) {
      m2[c0 + j] = acc[j];
    }
  }
  std::fill(m2 + c0, m2 + channels, acc_t(0));
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* row = x + r * channels;
    for (int64_t c = c0; c < channels; ++c) {
      const acc_t d = static_cast<acc_t>(row[c]) - mean[c];
      m2[c] += d * d;
    }
  }
}

// Per-channel sums of dy and dy * (x - mean) over `rows` rows (overwrites the outputs).
template <typename scalar_t, typename acc_t>
KTORCH_CLONES void grad_sums_rows(const scalar_t* dy, const scalar_t* x, int64_t rows,
                                  int64_t channels, const acc_t* mean, acc_t* sum_dy,
                                  acc_t* sum_dy_xmu) {
  std::fill(sum_dy, sum_dy + channels, acc_t(0));
  std::fill(sum_dy_xmu, sum_dy_xmu + channels, acc_t(0));
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* gr = dy + r * channels;
    const scalar_t* xr = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const acc_t g = static_cast<acc_t>(gr[c]);
      sum_dy[c] += g;
      sum_dy_xmu[c] += g * (static_cast<acc_t>(xr[c]) - mean[c]);
    }
  }
}

// Chan et al.: merges (count_b, mean_b, m2_b) into (count_a, mean_a, m2_a), channel-wise.
template <typename acc_t>
KTORCH_CLONES void merge_moments(int64_t count_a, acc_t* mean_a, acc_t* m2_a, int64_t count_b,
                                 const acc_t* mean_b, const acc_t* m2_b, int64_t channels) {
  const double total = static_cast<double>(count_a) + static_cast<double>(count_b);
  const auto weight_b = static_cast<acc_t>(static_cast<double>(count_b) / total);
  const auto cross = static_cast<acc_t>(static_cast<double>(count_a) * count_b / total);
  for (int64_t c = 0; c < channels; ++c) {
    const acc_t delta = mean_b[c] - mean_a[c];
    mean_a[c] += delta * weight_b;
    m2_a[c] += m2_b[c] + delta * delta * cross;
  }
}

// The same merge for one channel.
template <typename acc_t>
inline void merge_moment(int64_t count_a, acc_t& mean_a, acc_t& m2_a, int64_t count_b,
                         acc_t mean_b, acc_t m2_b) {
  const double total = static_cast<double>(count_a) + static_cast<double>(count_b);
  const acc_t delta = mean_b - mean_a;
  mean_a += delta * static_cast<acc_t>(static_cast<double>(count_b) / total);
  m2_a += m2_b + delta * delta * static_cast<acc_t>(static_cast<double>(count_a) * count_b / total);
}

template <typename scalar_t, typename acc_t>
KTORCH_CLONES void normalize_rows(const scalar_t* x, scalar_t* y, int64_t rows, int64_t channels,
                                  const acc_t* mean, const acc_t* scale, const acc_t* shift) {
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* xr = x + r * channels;
    scalar_t* yr = y + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      yr[c] = static_cast<scalar_t>((static_cast<acc_t>(xr[c]) - mean[c]) * scale[c] + shift[c]);
    }
  }
}

template <typename scalar_t, typename acc_t>
KTORCH_CLONES void scale_shift_rows(const scalar_t* x, scalar_t* y, int64_t rows,
                                    int64_t channels, const acc_t* scale, const acc_t* shift) {
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* xr = x + r * channels;
    scalar_t* yr = y + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      yr[c] = static_cast<scalar_t>(static_cast<acc_t>(xr[c]) * scale[c] + shift[c]);
    }
  }
}

template <typename scalar_t, typename acc_t>
KTORCH_CLONES void grad_input_rows(const scalar_t* dy, const scalar_t* x, scalar_t* dx,
                                   int64_t rows, int64_t channels, const acc_t* mean,
                                   const acc_t* a, const acc_t* b, const acc_t* c) {
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* gr = dy + r * channels;
    const scalar_t* xr = x + r * channels;
    scalar_t* dr = dx + r * channels;
    for (int64_t k = 0; k < channels; ++k) {
      const acc_t g = static_cast<acc_t>(gr[k]);
      const acc_t centered = static_cast<acc_t>(xr[k]) - mean[k];
      dr[k] = static_cast<scalar_t>(g * a[k] + centered * b[k] + c[k]);
    }
  }
}

template <typename acc_t>
KTORCH_CLONES void add_into(acc_t* total, const acc_t* part, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    total[i] += part[i];
  }
}

// ------------------------------------------------------------------------------ scheduling

// Rows of `channels` values per piece, and per task of at least kGrainElems values.
inline int64_t piece_rows(int64_t channels) {
  return std::max<int64_t>(1, kPieceElems / std::max<int64_t>(channels, 1));
}

inline int64_t grain_rows(int64_t channels) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(channels, 1));
}

// Channels per task when each channel holds `count` values.
inline int64_t grain_channels(int64_t count) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(count, 1));
}

// Row blocks reduced independently (one per thread at most), each of block_rows rows.
struct RowBlocks {
  int64_t blocks;
  int64_t block_rows;
};

inline RowBlocks row_blocks(int64_t rows, int64_t channels) {
  const int64_t by_work = (rows + grain_rows(channels) - 1) / grain_rows(channels);
  const int64_t wanted =
      std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), by_work));
  const int64_t block_rows = (rows + wanted - 1) / wanted;
  return {(rows + block_rows - 1) / block_rows, block_rows};
}

// Runs f(begin, end) over [0, rows) in pieces of piece_rows rows, in parallel.
template <typename F>
void for_row_pieces(int64_t rows, int64_t channels, const F& f) {
  const int64_t piece = piece_rows(channels);
  at::parallel_for(0, rows, std::max(piece, grain_rows(channels)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r += piece) {
      f(r, std::min(end, r + piece));
    }
  });
}

// Runs f(rows, offset, n) over the two-pass pieces of one channel in the inner > 1
// layout: runs of rows (at most kPieceElems values) or, for long rows, segments of a row.
template <typename F>
void for_channel_pieces(const BatchNormDims& d, int64_t c, const F& f) {
  const int64_t segment = std::min(d.inner, kPieceElems);
  const int64_t rows_per_piece = std::max<int64_t>(1, kPieceElems / d.inner);
  for (int64_t o = 0; o < d.outer; o += rows_per_piece) {
    const int64_t rows = std::min(rows_per_piece, d.outer - o);
    const int64_t base = (o * d.channels + c) * d.inner;
    for (int64_t s = 0; s < d.inner; s += segment) {
      f(rows, base + s, std::min(segment, d.inner - s));
    }
  }
}

template <typename acc_t>
inline acc_t inverse_std(acc_t variance, double eps) {
  return acc_t(1) / std::sqrt(variance + static_cast<acc_t>(eps));
}

// ------------------------------------------------------------------------- training forward

template <typename scalar_t>
void train_forward(const scalar_t* x, scalar_t* y, const BatchNormDims& d,
                   const at::opmath_type<scalar_t>* weight, const at::opmath_type<scalar_t>* bias,
                   at::opmath_type<scalar_t>* running_mean, at::opmath_type<scalar_t>* running_var,
                   double momentum, double eps, at::opmath_type<scalar_t>* save_mean,
                   at::opmath_type<scalar_t>* save_invstd) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = d.channels;
  const auto keep = static_cast<acc_t>(momentum);
  const auto take = static_cast<acc_t>(1.0 - momentum);
  const auto count = static_cast<acc_t>(d.count());
  // Keras's rule: moving = moving * momentum + batch * (1 - momentum), biased variance.
  auto finish_channel = [&](int64_t c, acc_t mean, acc_t m2) {
    const acc_t var = m2 / count;
    const acc_t invstd = inverse_std(var, eps);
    save_mean[c] = mean;
    save_invstd[c] = invstd;
    if (running_mean != nullptr) {
      running_mean[c] = running_mean[c] * keep + mean * take;
    }
    if (running_var != nullptr) {
      running_var[c] = running_var[c] * keep + var * take;
    }
    return std::array<acc_t, 2>{weight != nullptr ? weight[c] * invstd : invstd,
                                bias != nullptr ? bias[c] : acc_t(0)};
  };

  if (d.inner > 1) {
    const int64_t stride = C * d.inner;
    at::parallel_for(0, C, grain_channels(d.count()), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        int64_t n = 0;
        acc_t mean = 0;
        acc_t m2 = 0;
        for_channel_pieces(d, c, [&](int64_t rows, int64_t offset, int64_t len) {
          acc_t piece_mean;
          acc_t piece_m2;
          block_moments(x + offset, rows, stride, len, &piece_mean, &piece_m2);
          merge_moment(n, mean, m2, rows * len, piece_mean, piece_m2);
          n += rows * len;
        });
        const auto [scale, shift] = finish_channel(c, mean, m2);
        // The channel was just read: this second pass comes from cache.
        const int64_t offset = c * d.inner;
        block_normalize(x + offset, y + offset, d.outer, stride, d.inner, mean, scale, shift);
      }
    });
    return;
  }

  const int64_t rows = d.outer;
  const RowBlocks plan = row_blocks(rows, C);
  const int64_t piece = piece_rows(C);
  // Per block: mean and m2 of its rows, then scratch for one piece.
  std::vector<acc_t> work(static_cast<size_t>(plan.blocks * 4 * C));
  at::parallel_for(0, plan.blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      acc_t* mean = work.data() + b * 4 * C;
      acc_t* m2 = mean + C;
      acc_t* piece_mean = m2 + C;
      acc_t* piece_m2 = piece_mean + C;
      const int64_t first = b * plan.block_rows;
      const int64_t last = std::min(rows, first + plan.block_rows);
      for (int64_t r = first; r < last; r += piece) {
        const int64_t len = std::min(piece, last - r);
        if (r == first) {
          moments_rows(x + r * C, len, C, mean, m2);
        } else {
          moments_rows(x + r * C, len, C, piece_mean, piece_m2);
          merge_moments(r - first, mean, m2, len, piece_mean, piece_m2, C);
        }
      }
    }
  });
  acc_t* mean = work.data();
  acc_t* m2 = mean + C;
  for (int64_t b = 1; b < plan.blocks; ++b) {
    const int64_t block_count = std::min(plan.block_rows, rows - b * plan.block_rows);
    const acc_t* block = work.data() + b * 4 * C;
    merge_moments(b * plan.block_rows, mean, m2, block_count, block, block + C, C);
  }
  // The scratch of block 0 holds the per-channel scale and shift.
  acc_t* scale = mean + 2 * C;
  acc_t* shift = mean + 3 * C;
  for (int64_t c = 0; c < C; ++c) {
    const auto coefficients = finish_channel(c, mean[c], m2[c]);
    scale[c] = coefficients[0];
    shift[c] = coefficients[1];
  }
  for_row_pieces(rows, C, [&](int64_t begin, int64_t end) {
    normalize_rows(x + begin * C, y + begin * C, end - begin, C, mean, scale, shift);
  });
}

// ------------------------------------------------------------------------ inference forward

// y = x * a + b with a = weight / sqrt(moving_var + eps), b = bias - moving_mean * a: the
// statistics are constants, so one multiply-add per value (the formula of Keras and torch).
template <typename scalar_t>
void inference_forward(const scalar_t* x, scalar_t* y, const BatchNormDims& d,
                       const at::opmath_type<scalar_t>* weight,
                       const at::opmath_type<scalar_t>* bias,
                       const at::opmath_type<scalar_t>* running_mean,
                       const at::opmath_type<scalar_t>* running_var, double eps) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = d.channels;
  std::vector<acc_t> coefficients(static_cast<size_t>(2 * C));
  acc_t* scale = coefficients.data();
  acc_t* shift = scale + C;
  for (int64_t c = 0; c < C; ++c) {
    const acc_t invstd = inverse_std(running_var[c], eps);
    scale[c] = weight != nullptr ? weight[c] * invstd : invstd;
    shift[c] = (bias != nullptr ? bias[c] : acc_t(0)) - running_mean[c] * scale[c];
  }
  if (d.inner > 1) {
    at::parallel_for(0, d.outer * C, grain_channels(d.inner), [&](int64_t begin, int64_t end) {
      rows_scale_shift(x, y, begin, end, C, d.inner, scale, shift);
    });
    return;
  }
  for_row_pieces(d.outer, C, [&](int64_t begin, int64_t end) {
    scale_shift_rows(x + begin * C, y + begin * C, end - begin, C, scale, shift);
  });
}

// --------------------------------------------------------------------------------- backward

// grad_x = dy * a + (x - mean) * b + c per channel. Training:
//   a = w * invstd, b = -a * invstd^2 * sum(dy * (x - mean)) / M, c = -a * sum(dy) / M;
// inference (statistics are constants): a = w * invstd, b = c = 0.
template <typename scalar_t>
void backward(const scalar_t* dy, const scalar_t* x, scalar_t* dx, const BatchNormDims& d,
              const at::opmath_type<scalar_t>* weight, const at::opmath_type<scalar_t>* mean,
              const at::opmath_type<scalar_t>* invstd, bool training, bool need_sums,
              at::opmath_type<scalar_t>* grad_weight, at::opmath_type<scalar_t>* grad_bias) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = d.channels;
  const auto count = static_cast<acc_t>(d.count());
  auto coefficients = [&](int64_t c, acc_t sum_dy, acc_t sum_dy_xmu) {
    const acc_t a = (weight != nullptr ? weight[c] : acc_t(1)) * invstd[c];
    if (!training) {
      return std::array<acc_t, 3>{a, acc_t(0), acc_t(0)};
    }
    return std::array<acc_t, 3>{a, -a * invstd[c] * invstd[c] * (sum_dy_xmu / count),
                                -a * (sum_dy / count)};
  };
  auto store_sums = [&](int64_t c, acc_t sum_dy, acc_t sum_dy_xmu) {
    if (grad_weight != nullptr) {
      grad_weight[c] = sum_dy_xmu * invstd[c];
    }
    if (grad_bias != nullptr) {
      grad_bias[c] = sum_dy;
    }
  };

  if (d.inner > 1) {
    const int64_t stride = C * d.inner;
    at::parallel_for(0, C, grain_channels(d.count()), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        acc_t sum_dy = 0;
        acc_t sum_dy_xmu = 0;
        if (need_sums) {
          for_channel_pieces(d, c, [&](int64_t rows, int64_t offset, int64_t len) {
            acc_t piece_dy;
            acc_t piece_dy_xmu;
            block_grad_sums(dy + offset, x + offset, rows, stride, len, mean[c], &piece_dy,
                            &piece_dy_xmu);
            sum_dy += piece_dy;
            sum_dy_xmu += piece_dy_xmu;
          });
          store_sums(c, sum_dy, sum_dy_xmu);
        }
        if (dx == nullptr) {
          continue;
        }
        const auto [a, b, k] = coefficients(c, sum_dy, sum_dy_xmu);
        const int64_t offset = c * d.inner;
        if (training) {
          // The channel was just read: this second pass comes from cache.
          block_grad_input(dy + offset, x + offset, dx + offset, d.outer, stride, d.inner,
                           mean[c], a, b, k);
        } else {
          // b = k = 0: dx = dy * a, with no read of x.
          block_normalize(dy + offset, dx + offset, d.outer, stride, d.inner, acc_t(0), a,
                          acc_t(0));
        }
      }
    });
    return;
  }

  const int64_t rows = d.outer;
  // Per-channel sums, then the coefficients a, b, c; zeros for the inference pass.
  std::vector<acc_t> sums(static_cast<size_t>(2 * C), acc_t(0));
  if (need_sums) {
    const RowBlocks plan = row_blocks(rows, C);
    const int64_t piece = piece_rows(C);
    // Per block: its sums, then one piece's partial sums (added per piece to limit rounding).
    std::vector<acc_t> work(static_cast<size_t>(plan.blocks * 4 * C), acc_t(0));
    at::parallel_for(0, plan.blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        acc_t* total = work.data() + b * 4 * C;
        acc_t* part = total + 2 * C;
        const int64_t first = b * plan.block_rows;
        const int64_t last = std::min(rows, first + plan.block_rows);
        for (int64_t r = first; r < last; r += piece) {
          grad_sums_rows(dy + r * C, x + r * C, std::min(piece, last - r), C, mean, part,
                         part + C);
          add_into(total, part, 2 * C);
        }
      }
    });
    for (int64_t b = 0; b < plan.blocks; ++b) {
      add_into(sums.data(), work.data() + b * 4 * C, 2 * C);
    }
    for (int64_t c = 0; c < C; ++c) {
      store_sums(c, sums[c], sums[C + c]);
    }
  }
  if (dx == nullptr) {
    return;
  }
  // a, b, c per channel.
  std::vector<acc_t> coef(static_cast<size_t>(3 * C));
  for (int64_t c = 0; c < C; ++c) {
    const auto abc = coefficients(c, sums[c], sums[C + c]);
    coef[c] = abc[0];
    coef[C + c] = abc[1];
    coef[2 * C + c] = abc[2];
  }
  const acc_t* a = coef.data();
  for_row_pieces(rows, C, [&](int64_t begin, int64_t end) {
    if (training) {
      grad_input_rows(dy + begin * C, x + begin * C, dx + begin * C, end - begin, C, mean, a,
                      a + C, a + 2 * C);
    } else {
      // b = c = 0: dx = dy * a + 0, with no read of x.
      scale_shift_rows(dy + begin * C, dx + begin * C, end - begin, C, a, a + 2 * C);
    }
  });
}

// ------------------------------------------------------------------------------- operators

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> fused_batch_norm_cpu(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& running_mean,
    const std::optional<at::Tensor>& running_var, int64_t axis, double momentum, double eps) {
  constexpr const char* op = "ktorch::fused_batch_norm";
  axis = batch_norm_axis(op, x, axis);
  const BatchNormDims d = batch_norm_dims(op, x, axis);
  check_batch_norm_count(op, x, d);
  check_batch_norm_eps(op, eps);
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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    train_forward<scalar_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), d,
                            data_or_null<acc_t>(w), data_or_null<acc_t>(b),
                            data_or_null<acc_t>(rm), data_or_null<acc_t>(rv), momentum, eps,
                            save_mean.mutable_data_ptr<acc_t>(),
                            save_invstd.mutable_data_ptr<acc_t>());
  });
  batch_norm_write_back(running_mean, rm);
  batch_norm_write_back(running_var, rv);
  return {out, save_mean, save_invstd};
}

at::Tensor fused_batch_norm_inference_cpu(const at::Tensor& x,
                                          const std::optional<at::Tensor>& weight,
                                          const std::optional<at::Tensor>& bias,
                                          const at::Tensor& running_mean,
                                          const at::Tensor& running_var, int64_t axis,
                                          double eps) {
  constexpr const char* op = "ktorch::fused_batch_norm_inference";
  axis = batch_norm_axis(op, x, axis);
  const BatchNormDims d = batch_norm_dims(op, x, axis);
  check_batch_norm_eps(op, eps);
  const at::Tensor w = batch_norm_channel_vector(op, "weight", weight, x, d.channels);
  const at::Tensor b = batch_norm_channel_vector(op, "bias", bias, x, d.channels);
  const at::Tensor rm = batch_norm_channel_vector(op, "running_mean", running_mean, x, d.channels);
  const at::Tensor rv = batch_norm_channel_vector(op, "running_var", running_var, x, d.channels);
  at::Tensor out = batch_norm_empty_like(x);
  if (x.numel() == 0) {
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    inference_forward<scalar_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                                d, data_or_null<acc_t>(w), data_or_null<acc_t>(b),
                                rm.const_data_ptr<acc_t>(), rv.const_data_ptr<acc_t>(), eps);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> fused_batch_norm_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const at::Tensor& mean, const at::Tensor& invstd, int64_t axis, bool training,
    std::array<bool, 3> output_mask) {
  constexpr const char* op = "ktorch::fused_batch_norm_backward";
  axis = batch_norm_axis(op, x, axis);
  const BatchNormDims d = batch_norm_dims(op, x, axis);
  check_batch_norm_like_x(op, "grad_out", grad_out, x, d, axis);
  const at::Tensor w = batch_norm_channel_vector(op, "weight", weight, x, d.channels);
  const at::Tensor m = batch_norm_channel_vector(op, "mean", mean, x, d.channels);
  const at::Tensor s = batch_norm_channel_vector(op, "invstd", invstd, x, d.channels);
  const auto opmath = batch_norm_opmath(x);
  at::Tensor grad_x =
      output_mask[0] ? batch_norm_empty_like(x) : batch_norm_skipped(x, x.scalar_type());
  at::Tensor grad_weight = output_mask[1] ? at::zeros({d.channels}, x.options().dtype(opmath))
                                          : batch_norm_skipped(x, opmath);
  at::Tensor grad_bias = output_mask[2] ? at::zeros({d.channels}, x.options().dtype(opmath))
                                        : batch_norm_skipped(x, opmath);
  if (x.numel() == 0) {
    return {grad_x, grad_weight, grad_bias};
  }
  const bool need_sums = output_mask[1] || output_mask[2] || (training && output_mask[0]);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    backward<scalar_t>(grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                       output_mask[0] ? grad_x.mutable_data_ptr<scalar_t>() : nullptr, d,
                       data_or_null<acc_t>(w), m.const_data_ptr<acc_t>(),
                       s.const_data_ptr<acc_t>(), training, need_sums,
                       output_mask[1] ? grad_weight.mutable_data_ptr<acc_t>() : nullptr,
                       output_mask[2] ? grad_bias.mutable_data_ptr<acc_t>() : nullptr);
  });
  return {grad_x, grad_weight, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, CPU, m) {
  m.impl("fused_batch_norm", &fused_batch_norm_cpu);
  m.impl("fused_batch_norm_inference", &fused_batch_norm_inference_cpu);
  m.impl("fused_batch_norm_backward", &fused_batch_norm_backward_cpu);
}

}  // namespace ktorch
