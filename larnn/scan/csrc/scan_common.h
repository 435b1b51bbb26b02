// What the compiled forward and backward loops of LARNNScan share: elementwise math that
// vectorises, the per-feature norms' description, and block bookkeeping.
//
// The numbers are those of the per-step reference, larnn/reference.py, in a transformed form
// (the weights are transformed once, by larnn/scan/layer.py's scan_weights):
// - batch last: a (B, H) tensor of the reference is held as (H, B), row r column b;
// - head-dim major: feature i = d * NH + n of q, keys and values is the reference's feature
//   n * HD + d (head n, head dim d), so per-head sums over d run over rows NH apart;
// - gate rows are the reference's i, f, o, g, with the g rows doubled: their sigmoid is
//   sigmoid(2 g), and tanh(g) = 2 sigmoid(2 g) - 1, so one sigmoid serves all four gates;
// - keys carry log2(e) / sqrt(HD): with that scale, 2^(q . k) = e^(q . k / sqrt(HD)), so the
//   base-2 softmax (attend_block, attend_backward_block) is the reference's
//   softmax_j(q k_j / sqrt(HD));
// - the key/value history is kept in blocks of kLanes batch columns: value (slot s, feature
//   i, sample b) at [b / kLanes][s][i][b % kLanes] (see larnn/scan/compiled.py's history()).
// - hidden steps (InferenceKnobs.hidden_steps): the reference leaves the slots that hold them
//   out of the softmax; here every filled slot is scored and the softmax skips those whose
//   LayerKnobs.visible entry is false (`shown` in attend_block and attend_backward_block).
// Work on batch columns is split in blocks of kLanes, spread over ATen's threads.
//
// Structs of many fields are built with designated initializers (Window{.kv = ...}): C++20,
// which torch's extension build selects; GCC and Clang also take them in C++17.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

namespace larnn {

// The elementwise math below is called inside `omp simd` loops: a call the compiler does
// not inline leaves the loop scalar, so these are always inlined.
#define LARNN_INLINE [[gnu::always_inline]] inline

// Batch columns per block: one vector register (below), so 16 with AVX-512 and 8 without.
// GCC lowers a vector type wider than the target's registers through memory: with 16 lanes
// on AVX2 the forward by block ran 6.6x slower than on AVX-512 (benchmarks/README.md, issue
// 30 on AVX2). larnn/scan/compiled.py's LANES follows the same build flags.
#ifdef __AVX512F__
constexpr int64_t kLanes = 16;
#else
constexpr int64_t kLanes = 8;
#endif
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

enum Activation : int64_t { kElu = 0, kRelu = 1, kTanh = 2, kNone = 3 };
// No norm; nn.LayerNorm; nn.BatchNorm1d with batch statistics (training); with running ones.
enum Norm : int64_t { kNoNorm = 0, kLayerNorm = 1, kBatchNorm = 2, kBatchNormEval = 3 };

// One row of a block: kLanes batch columns as one vector value (GCC/Clang vector
// extensions): one register with AVX-512, two with AVX2. Loops over a block's rows written
// with it keep their partial sums in registers, where `omp simd` loops over kLanes would
// load and store them at every step.
using Lanes = float __attribute__((vector_size(kLanes * sizeof(float))));
using IntLanes = int32_t __attribute__((vector_size(kLanes * sizeof(float))));

LARNN_INLINE Lanes load(const float* from) {
  Lanes v;
  std::memcpy(&v, from, sizeof v);
  return v;
}

LARNN_INLINE void store(float* to, Lanes v) { std::memcpy(to, &v, sizeof v); }

// The first `count` columns of a row of (rows, B), zero beyond: a block's row of q or da.
LARNN_INLINE Lanes load_columns(const float* from, int64_t count) {
  if (count == kLanes) return load(from);
  Lanes v = {};
  for (int64_t l = 0; l < count; ++l) v[l] = from[l];
  return v;
}

LARNN_INLINE void store_columns(float* to, Lanes v, int64_t count) {
  if (count == kLanes) return store(to, v);
  for (int64_t l = 0; l < count; ++l) to[l] = v[l];
}

// 2^x with relative error below 2e-7 (the Cephes exp2f polynomial on [-1/2, 1/2]), in
// plain arithmetic, for a float or Lanes, so that loops calling it vectorise; x is clamped
// to [-126, 126].
template <typename T>
LARNN_INLINE T exp2_approx(T x) {
  x = x < -126.0f ? -126.0f : x;
  x = x > 126.0f ? 126.0f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding then subtracting it rounds x
  const T whole = (x + magic) - magic;
  const T f = x - whole;
  T p = 1.535336188319500e-4f * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  T scale;  // 2^whole, by its exponent bits
  if constexpr (std::is_same_v<T, float>) {
    const int32_t bits = (static_cast<int32_t>(whole) + 127) << 23;
    std::memcpy(&scale, &bits, sizeof scale);
  } else {
    const IntLanes bits = (__builtin_convertvector(whole, IntLanes) + 127) << 23;
    std::memcpy(&scale, &bits, sizeof scale);
  }
  return p * scale;
}

// 1 / (1 + e^-x), with e^-x = 2^(-x log2 e).
LARNN_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp2_approx(-kLog2e * x)); }

// tanh(x) = 2 sigmoid(2x) - 1 (an identity; the reference's torch.tanh).
LARNN_INLINE float tanh_approx(float x) { return 2.0f * sigmoid(2.0f * x) - 1.0f; }

// The activation on `count` contiguous values, in place: the reference's ACT[kind].
LARNN_INLINE void activate(int64_t kind, float* x, int64_t count) {
  switch (kind) {
    case kElu:  // F.elu: e^x - 1 for x <= 0, with e^x = 2^(x log2 e)
      #pragma omp simd
      for (int64_t l = 0; l < count; ++l)
        x[l] = x[l] > 0.0f ? x[l] : exp2_approx(kLog2e * x[l]) - 1.0f;
      break;
    case kRelu:
      #pragma omp simd
      for (int64_t l = 0; l < count; ++l) x[l] = std::max(x[l], 0.0f);
      break;
    case kTanh:
      #pragma omp simd
      for (int64_t l = 0; l < count; ++l) x[l] = tanh_approx(x[l]);
      break;
    default:  // kNone: the identity
      break;
  }
}

// d activation / d input from the activation's output y, for `count` values: out = grad.
LARNN_INLINE void activation_grad(int64_t kind, const float* y, float* out, int64_t count) {
  switch (kind) {
    case kElu:  // exp(x) = elu(x) + 1 for x <= 0, else 1
      #pragma omp simd
      for (int64_t l = 0; l < count; ++l) out[l] = std::min(y[l] + 1.0f, 1.0f);
      break;
    case kRelu:
      #pragma omp simd
      for (int64_t l = 0; l < count; ++l) out[l] = y[l] > 0.0f ? 1.0f : 0.0f;
      break;
    case kTanh:  // 1 - tanh(x)^2
      #pragma omp simd
      for (int64_t l = 0; l < count; ++l) out[l] = 1.0f - y[l] * y[l];
      break;
    default:
      std::fill(out, out + count, 1.0f);
      break;
  }
}

// A per-feature norm over H features, the reference's cell.kv_norm or cell.hidden_norm
// (nn.Identity, nn.LayerNorm or nn.BatchNorm1d on (B, H)): rows of params are weight, bias,
// running mean, running variance, (4, H); null for kNoNorm.
struct NormSpec {
  int64_t kind;  // enum Norm
  const float* params;
  float eps;
  int64_t size;  // H
  const float* weight() const { return params; }
  const float* bias() const { return params + size; }
  const float* running_mean() const { return params + 2 * size; }
  const float* running_var() const { return params + 3 * size; }
};

// The loops read and write raw float32 memory: anything else would be misread.
inline void check_buffer(const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous() && t.device().is_cpu(),
              "the compiled LARNN scan takes contiguous float32 CPU tensors, got ", t.dtype(),
              t.is_contiguous() ? "" : " (not contiguous)", " on ", t.device());
}

// Which slots each sample may attend to, LayerKnobs.visible (T, K, B or 1): bool, contiguous,
// with a column per sample or one for the whole batch.
inline void check_visible(const at::Tensor& visible, int64_t T, int64_t K, int64_t B) {
  TORCH_CHECK(visible.scalar_type() == at::kBool && visible.is_contiguous() &&
                  visible.device().is_cpu() && visible.dim() == 3 && visible.size(0) == T &&
                  visible.size(1) == K && (visible.size(2) == B || visible.size(2) == 1),
              "the compiled LARNN scan takes visible as a contiguous bool CPU tensor of (", T,
              ", ", K, ", ", B, " or 1), got ", visible.dtype(), " ", visible.sizes());
}

// One step's rows of LayerKnobs.visible, (K, columns) with columns B or 1, or null where no
// step is hidden.
struct StepVisibility {
  const bool* rows;
  int64_t columns;
};

inline StepVisibility step_visibility(const std::optional<at::Tensor>& visible, int64_t t) {
  if (!visible) return StepVisibility{.rows = nullptr, .columns = 0};
  const int64_t K = visible->size(1), columns = visible->size(2);
  return StepVisibility{.rows = visible->data_ptr<bool>() + t * K * columns, .columns = columns};
}

// The right-hand sides of the matmuls that carry a bias column: [x_t; h_{t-1}; 1]
// (C + H + 1, B) for [w_x, w_h, bias] and [feature of c_t; 1] (H + 1, B) for [w_kv, b_kv].
struct WithOnes {
  at::Tensor xh, memory;
};

inline WithOnes with_ones(int64_t C, int64_t H, int64_t B, const at::TensorOptions& options) {
  WithOnes buffers{.xh = at::empty({C + H + 1, B}, options),
                   .memory = at::empty({H + 1, B}, options)};
  buffers.xh[C + H].fill_(1.0);
  buffers.memory[H].fill_(1.0);
  return buffers;
}

inline float* data_or_null(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->data_ptr<float>() : nullptr;
}

inline NormSpec norm_spec(int64_t kind, const std::optional<at::Tensor>& params, double eps,
                          int64_t H) {
  return NormSpec{
      .kind = kind, .params = data_or_null(params), .eps = static_cast<float>(eps), .size = H};
}

// Layer norm's statistics for the columns [b0, b0 + bw) of x (H, B): the mean and 1 / std
// over the H features of each sample (nn.LayerNorm's, biased variance), into mean and rstd
// (kLanes).
inline void layer_norm_stats(const float* x, int64_t H, int64_t B, int64_t b0, int64_t bw,
                             float eps, float* mean, float* rstd) {
  std::fill(mean, mean + kLanes, 0.0f);
  std::fill(rstd, rstd + kLanes, 0.0f);
  for (int64_t r = 0; r < H; ++r)
    #pragma omp simd
    for (int64_t l = 0; l < bw; ++l) mean[l] += x[r * B + b0 + l];
  #pragma omp simd
  for (int64_t l = 0; l < bw; ++l) mean[l] /= H;
  for (int64_t r = 0; r < H; ++r)
    #pragma omp simd
    for (int64_t l = 0; l < bw; ++l) {
      const float centred = x[r * B + b0 + l] - mean[l];
      rstd[l] += centred * centred;
    }
  #pragma omp simd
  for (int64_t l = 0; l < bw; ++l) rstd[l] = 1.0f / std::sqrt(rstd[l] / H + eps);
}

// Batch norm's statistics of one feature's row of B values: mean and biased variance, summed
// in double.
inline void batch_stats(const float* row, int64_t B, float* mean, float* var) {
  double sum = 0.0, squares = 0.0;
  for (int64_t b = 0; b < B; ++b) sum += row[b];
  *mean = static_cast<float>(sum / B);
  for (int64_t b = 0; b < B; ++b) squares += (row[b] - *mean) * (row[b] - *mean);
  *var = static_cast<float>(squares / B);
}

// Calls body(b0, lanes) for each block of batch columns, spread over ATen's threads.
template <typename Body>
void for_each_block(int64_t B, const Body& body) {
  at::parallel_for(0, (B + kLanes - 1) / kLanes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t b0 = block * kLanes;
      body(b0, std::min(kLanes, B - b0));
    }
  });
}

// Calls body(r) for each row of H, spread over ATen's threads.
template <typename Body>
void for_each_row(int64_t H, const Body& body) {
  at::parallel_for(0, H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) body(r);
  });
}

}  // namespace larnn
