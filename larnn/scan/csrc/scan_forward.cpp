// The forward loop of LARNNScan (larnn/scan/function.py) for float32 on the CPU.
//
// It computes what the Python loop `python_scan_forward` computes, which is what the
// per-step reference (larnn/reference.py, reference_layer) computes in the transformed form
// described in scan_common.h, and writes the same buffers, which the backward
// (scan_backward.cpp, or the Python one) reads. Per step there are three products (input
// and hidden to gates and query, attended values to gates, new cell state to key and
// value), the attention over the window (scores, base-2 softmax, weighted sum of values)
// and the cell update (gates, c, h, norms, the activation on the new memory). Two loops:
// - by block (scan_block), where no step mixes batch columns: each block of kLanes columns
//   runs all steps on one thread, its products by block_product;
// - by step, where batch norm takes the batch's statistics at every step: three matmul
//   calls into ATen a step (for a single column, B = 1, matrix-vector products of its own)
//   and fused passes over batch-last data between them, spread over ATen's threads.

#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <vector>

#include "scan_common.h"

namespace larnn {
namespace {

// A norm's forward on x (H, B), in place: the reference's norm(x) on its (B, H); stats gets
// (mean, biased var) (2, H) under batch statistics.
void norm_forward(const NormSpec& norm, float* x, int64_t H, int64_t B, float* stats) {
  if (norm.kind == kLayerNorm) {  // statistics over the H features of each sample
    for_each_block(B, [&](int64_t b0, int64_t bw) {
      float mean[kLanes], rstd[kLanes];
      layer_norm_stats(x, H, B, b0, bw, norm.eps, mean, rstd);
      for (int64_t r = 0; r < H; ++r) {
        float* row = x + r * B + b0;
        const float w = norm.weight()[r], b = norm.bias()[r];
        #pragma omp simd
        for (int64_t l = 0; l < bw; ++l) row[l] = (row[l] - mean[l]) * rstd[l] * w + b;
      }
    });
  } else if (norm.kind == kBatchNorm || norm.kind == kBatchNormEval) {
    for_each_row(H, [&](int64_t r) {  // statistics over the batch, or the running ones
      float* row = x + r * B;
      float mean, var;
      if (norm.kind == kBatchNorm) {
        batch_stats(row, B, &mean, &var);
        stats[r] = mean;
        stats[H + r] = var;
      } else {
        mean = norm.running_mean()[r];
        var = norm.running_var()[r];
      }
      // (x - mean) / sqrt(var + eps) * weight + bias, as one multiply-add per value
      const float scale = norm.weight()[r] / std::sqrt(var + norm.eps);
      const float shift = norm.bias()[r] - mean * scale;
      #pragma omp simd
      for (int64_t b = 0; b < B; ++b) row[b] = row[b] * scale + shift;
    });
  }
}

// What one step's attention reads and writes. Window position p in [0, K) holds slot
// (t + p) % R of the history; the newest n positions (K - n .. K - 1) are filled.
struct Window {
  const float* kv;         // (blocks, R, 2H, kLanes): keys then values of every slot
  int64_t first_slot;      // slot of window position 0, t
  int64_t slots;           // R: K + T, or K + 1 where the history need not be kept
  int64_t n, K, H, NH, B;  // filled positions, window, hidden, heads, batch
  const float* q;          // (H, B), for attend(); null in scan_block, which has its rows
  const float* pos_k;      // (K, H) or null: positional part of the key per position
  const float* pos_v;      // (K, H) or null
  const float* head_mask;  // (NH,) or null
  StepVisibility visible;  // this step's slots not hidden; rows null where none is hidden
  const float* drops;      // (K, NH, B) dropout mask of this step, or null
  float* record;           // (K, NH, B) weights of this step, or null
  float* a;                // (H, B) attended values, for attend(); null in scan_block
  const float* slot(int64_t block, int64_t position) const {  // (2H, kLanes)
    return kv + (block * slots + (first_slot + position) % slots) * 2 * H * kLanes;
  }
};

// A thread's scratch for attend_block, allocated once per scan, all Lanes: scores of K * NH,
// best and total of NH; q and a of H for attend(), which runs one step of every block.
struct AttendScratch {
  std::vector<Lanes> scores, best, total, q, a;
  AttendScratch(int64_t H, int64_t K, int64_t NH)
      : scores(K * NH), best(NH), total(NH), q(H), a(H) {}
};

// Attention of every head for one block of kLanes batch columns, `bw` of them used: from
// the block's rows of q (H), its attended values a into acc (H). The history is stored by
// block of columns, so a block reads each filled slot as one contiguous
// run of 2H rows of kLanes values: its keys in a first pass, its values in a second, each
// sum over a head's HD features held in a register. In the reference: p, p times the head
// mask, and a = einsum(p, values), for its slots j = 0 .. n - 1 (oldest first), which are
// window positions K - n + j here; hidden slots are scored too but get p = 0, which leaves
// them out of a as the reference leaves them out of `slots`; dropout (not in the reference)
// scales the weights. The softmax's division comes last, on a: with e_j = 2^(s_j - max s),
// a = sum_j (e_j / sum e) m v_j = (sum_j e_j m v_j) / sum e, for head mask and dropout m.
template <bool kHidden>
void attend_block(const Window& w, int64_t block, int64_t bw, const Lanes* q, Lanes* acc,
                  AttendScratch& scratch) {
  const int64_t H = w.H, NH = w.NH, B = w.B, HD = H / NH, n = w.n, K = w.K;
  const int64_t first = K - n, b0 = block * kLanes;  // window position of the oldest filled slot
  Lanes *scores = scratch.scores.data(), *best = scratch.best.data();
  Lanes* total = scratch.total.data();
  std::fill(best, best + NH, Lanes{} - INFINITY);
  std::fill(total, total + NH, Lanes{});
  std::fill(acc, acc + H, Lanes{});
  // Where slots are hidden, shown(j) is 1 where column l may attend to slot j, else 0: the
  // reference's `slots`, the filled slots whose step is not in hidden_steps, per sample.
  const auto shown = [&](int64_t j) {
    Lanes v = {};
    const bool* row = w.visible.rows + (first + j) * w.visible.columns;
    for (int64_t l = 0; l < bw; ++l) v[l] = row[w.visible.columns == 1 ? 0 : b0 + l];
    return v;
  };
  // Scores: the reference's einsum(q, keys) / sqrt(HD), times log2(e) (the keys carry both
  // factors); its keys project [kv_norm(act(c_j)), pe(lag)] in one matmul, here the first
  // part's key, kept since c_j entered the queue, plus the lag's part pos_k.
  for (int64_t j = 0; j < n; ++j) {
    const float* key = w.slot(block, first + j);  // (H, kLanes)
    const float* pk = w.pos_k ? w.pos_k + (first + j) * H : nullptr;
    const Lanes visible = kHidden ? shown(j) : Lanes{};
    for (int64_t head = 0; head < NH; ++head) {
      Lanes dot = {};
      for (int64_t d = 0; d < HD; ++d) {
        const int64_t i = d * NH + head;
        dot += (pk ? load(key + i * kLanes) + pk[i] : load(key + i * kLanes)) * q[i];
      }
      scores[j * NH + head] = dot;
      const Lanes larger = dot > best[head] ? dot : best[head];
      best[head] = kHidden ? (visible != 0.0f ? larger : best[head]) : larger;
    }
  }
  // Base-2 softmax numerators e = 2^(s - max s) (0 on hidden slots), their sums, and the
  // values weighted by e times head mask and dropout: a's numerator.
  for (int64_t j = 0; j < n; ++j) {
    const float* value = w.slot(block, first + j) + H * kLanes;  // (H, kLanes)
    const float* pv = w.pos_v ? w.pos_v + (first + j) * H : nullptr;
    const Lanes visible = kHidden ? shown(j) : Lanes{};
    for (int64_t head = 0; head < NH; ++head) {
      Lanes e = exp2_approx(scores[j * NH + head] - best[head]);
      // Where no slot is shown, best is -inf and s - best +inf, which exp2_approx clamps:
      // finite, and not taken.
      if (kHidden) e = visible != 0.0f ? e : 0.0f;
      total[head] += e;
      if (w.head_mask) e *= w.head_mask[head];
      if (w.drops) e *= load_columns(w.drops + ((first + j) * NH + head) * B + b0, bw);
      scores[j * NH + head] = e;
      for (int64_t d = 0; d < HD; ++d) {
        const int64_t i = d * NH + head;
        acc[i] += e * (pv ? load(value + i * kLanes) + pv[i] : load(value + i * kLanes));
      }
    }
  }
  for (int64_t head = 0; head < NH; ++head)  // 1 / sum e; 0 where no slot is shown
    total[head] = kHidden ? (total[head] > 0.0f ? 1.0f / total[head] : 0.0f) : 1.0f / total[head];
  for (int64_t i = 0; i < H; ++i) acc[i] *= total[i % NH];
  if (w.record)  // the weights, as applied: w_t
    for (int64_t j = 0; j < n; ++j)
      for (int64_t head = 0; head < NH; ++head)
        store_columns(w.record + ((first + j) * NH + head) * B + b0,
                      scores[j * NH + head] * total[head], bw);
}

void attend(const Window& w, std::vector<AttendScratch>& scratch) {
  const int64_t blocks = (w.B + kLanes - 1) / kLanes;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    AttendScratch& mine = scratch[at::get_thread_num()];
    Lanes *q = mine.q.data(), *a = mine.a.data();
    for (int64_t block = begin; block < end; ++block) {
      const int64_t b0 = block * kLanes, bw = std::min(kLanes, w.B - b0);
      for (int64_t i = 0; i < w.H; ++i) q[i] = load_columns(w.q + i * w.B + b0, bw);
      if (w.visible.rows)
        attend_block<true>(w, block, bw, q, a, mine);
      else
        attend_block<false>(w, block, bw, q, a, mine);
      for (int64_t i = 0; i < w.H; ++i) store_columns(w.a + i * w.B + b0, a[i], bw);
    }
  });
}

// Copies rows (rows, B) into slot `slot` of a history blocked as (blocks, R, rows, kLanes).
void scatter_slot(const float* from, float* history, int64_t slot, int64_t R, int64_t rows,
                  int64_t B) {
  for_each_block(B, [&](int64_t b0, int64_t bw) {
    float* to = history + ((b0 / kLanes) * R + slot) * rows * kLanes;
    for (int64_t r = 0; r < rows; ++r)
      std::copy(from + r * B + b0, from + r * B + b0 + bw, to + r * kLanes);
  });
}

// s = sigmoid(z) on n contiguous values.
inline void sigmoid_values(const float* z, float* s, int64_t n) {
  #pragma omp simd
  for (int64_t k = 0; k < n; ++k) s[k] = sigmoid(z[k]);
}

// The cell on n contiguous values of each gate's sigmoid: the reference's
// c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g), its h_t before norm_h, sigmoid(o) tanh(c_t),
// and act(c_t), the memory feature before kv_norm.
inline void cell_values(const float* i, const float* f, const float* o, const float* g,
                        const float* c_prev, float* c, float* h_raw, float* feature,
                        int64_t kv_activation, int64_t n) {
  #pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    c[k] = f[k] * c_prev[k] + i[k] * (2.0f * g[k] - 1.0f);
    h_raw[k] = o[k] * tanh_approx(c[k]);
    feature[k] = c[k];
  }
  activate(kv_activation, feature, n);
}

// Gates to the new c and raw h (before its norm), and the activation of c: the memory
// feature before its norm. sig gets the four sigmoids (4H, B): of the reference's i, f, o
// and of 2 g (its rows are doubled), so that tanh(g) = 2 sig_g - 1. The loops run along
// contiguous values: each row's B columns, or for one column (B = 1) all H rows at once.
void update_cell(const float* gates, const float* c_prev, float* sig, float* c, float* h_raw,
                 float* feature, int64_t kv_activation, int64_t H, int64_t B) {
  const int64_t runs = B == 1 ? 1 : H, width = B == 1 ? H : B, gate_size = H * B;
  for_each_row(runs, [&](int64_t r) {
    const int64_t at = r * width;
    for (int64_t gate = 0; gate < 4; ++gate)
      sigmoid_values(gates + gate * gate_size + at, sig + gate * gate_size + at, width);
    cell_values(sig + at, sig + gate_size + at, sig + 2 * gate_size + at,
                sig + 3 * gate_size + at, c_prev + at, c + at, h_raw + at, feature + at,
                kv_activation, width);
  });
}

// y (rows) = W x (cols), or y += W x, for a single batch column (B = 1, the app's one
// series), with W given transposed, Wt (cols, rows): a sum of Wt's rows scaled by x, each a
// contiguous vector operation. There ATen's matmul costs more in dispatch than in arithmetic
// (a 5H x (C + H + 1) product is ~20k multiply-adds).
void matvec(const float* Wt, const float* x, float* y, int64_t rows, int64_t cols,
            bool accumulate) {
  if (!accumulate) std::fill(y, y + rows, 0.0f);
  for (int64_t k = 0; k < cols; ++k) {
    const float* w = Wt + k * rows;
    const float scale = x[k];
    #pragma omp simd
    for (int64_t r = 0; r < rows; ++r) y[r] += w[r] * scale;
  }
}

// Registers for the rows of a block product: each row's partial sum is one Lanes (one vector
// register), and a product's loop needs two more for the operands (16 vector registers with
// AVX2, 32 with AVX-512).
constexpr int64_t kProductRows = 12;

// Rows m0 .. m0 + kRows of y = W x for one block: y (M) and x (cols) are Lanes rows, W is
// given transposed, Wt (cols, M). The kRows partial sums stay in registers; each
// multiply-add takes one weight, broadcast, against a row of x.
template <int64_t kRows>
LARNN_INLINE void block_rows(const float* Wt, const Lanes* x, Lanes* y, int64_t M,
                             int64_t cols, int64_t m0, bool accumulate) {
  Lanes sum[kRows];
  for (int64_t r = 0; r < kRows; ++r) sum[r] = accumulate ? y[m0 + r] : Lanes{};
  for (int64_t k = 0; k < cols; ++k) {
    const Lanes column = x[k];
    const float* w = Wt + k * M + m0;
    for (int64_t r = 0; r < kRows; ++r) sum[r] += w[r] * column;
  }
  for (int64_t r = 0; r < kRows; ++r) y[m0 + r] = sum[r];
}

// y (M) = W x (cols), or y += W x, for one block of kLanes columns, Wt (cols, M): the
// matmuls of scan_forward's loop by block, on data its thread keeps in cache.
void block_product(const float* Wt, const Lanes* x, Lanes* y, int64_t M, int64_t cols,
                   bool accumulate) {
  int64_t m = 0;
  for (; m + kProductRows <= M; m += kProductRows)
    block_rows<kProductRows>(Wt, x, y, M, cols, m, accumulate);
  for (; m + 4 <= M; m += 4) block_rows<4>(Wt, x, y, M, cols, m, accumulate);
  for (; m < M; ++m) block_rows<1>(Wt, x, y, M, cols, m, accumulate);
}

// What the loop by block reads and writes: scan_forward's arguments as raw pointers, null
// where not given, and its weights transposed.
struct BlockScan {
  const float *x, *h0, *c0;                 // (T, C, B), (H, B), (H, B)
  float* kv;                                // (blocks, R, 2H, kLanes)
  int64_t T, C, H, NH, B, K, R, filled;
  const float *w_xh_t, *w_a_t, *w_kv_t;     // (C + H + 1, 5H), (H, 4H), (H + 1, 2H)
  const float *pos_k, *pos_v, *head_mask;   // as in Window
  const std::optional<at::Tensor>* visible;  // (T, K, B or 1) bool
  const float* drops;                       // (T, K, NH, B) or null
  int64_t query_activation, kv_activation;
  NormSpec kv_norm, h_norm;                 // neither takes batch statistics
  float *hs, *cs;                           // (T, H, B)
  float *acts, *queries, *attended, *recorded;  // or null
};

// A thread's rows for the loop by block, Lanes each: [x_t; h; 1] (C + H + 1), z (5H: gates
// then query), the gates' sigmoids (4H), c and the previous c (H each), [feature; 1]
// (H + 1), a (H), and the attention's scratch.
struct BlockScratch {
  std::vector<Lanes> xh, z, sig, c, c_prev, feature, a;
  AttendScratch attend;
  BlockScratch(int64_t C, int64_t H, int64_t K, int64_t NH)
      : xh(C + H + 1), z(5 * H), sig(4 * H), c(H), c_prev(H), feature(H + 1), a(H),
        attend(H, K, NH) {}
};

// Rows (rows) of a block into a (rows, B) buffer at columns b0 .. b0 + bw.
inline void store_block(float* to, const Lanes* rows, int64_t count, int64_t B, int64_t b0,
                        int64_t bw) {
  for (int64_t r = 0; r < count; ++r) store_columns(to + r * B + b0, rows[r], bw);
}

// scan_forward's loop for one block of kLanes batch columns, through all T steps: the same
// steps as the loop by step below, on one thread, the block's window (K slots of 2H rows)
// and the weights in its cache, three block_product calls a step and no parallel region.
// It serves where no step mixes columns: neither norm takes batch statistics.
template <bool kHidden>
void scan_block(const BlockScan& s, int64_t block, BlockScratch& scratch) {
  const int64_t C = s.C, H = s.H, B = s.B, b0 = block * kLanes;
  const int64_t bw = std::min(kLanes, B - b0), HL = H * kLanes;
  Lanes *xh = scratch.xh.data(), *z = scratch.z.data(), *sig = scratch.sig.data();
  Lanes *c = scratch.c.data(), *c_prev = scratch.c_prev.data();
  Lanes *feature = scratch.feature.data(), *a = scratch.a.data();
  Lanes* const h = xh + C;  // h_{t-1}, as the product reads it
  Lanes* const q = z + 4 * H;
  for (int64_t i = 0; i < H; ++i) {
    h[i] = load_columns(s.h0 + i * B + b0, bw);
    c_prev[i] = load_columns(s.c0 + i * B + b0, bw);
  }
  xh[C + H] = Lanes{} + 1.0f;
  feature[H] = Lanes{} + 1.0f;
  for (int64_t t = 0; t < s.T; ++t) {
    for (int64_t k = 0; k < C; ++k) xh[k] = load_columns(s.x + (t * C + k) * B + b0, bw);
    block_product(s.w_xh_t, xh, z, 5 * H, C + H + 1, false);  // gates, query: as by step
    activate(s.query_activation, reinterpret_cast<float*>(q), HL);
    if (s.queries) store_block(s.queries + t * H * B, q, H, B, b0, bw);
    const int64_t n = std::min(s.K, s.filled + t);
    if (n) {
      const int64_t step_offset = t * s.K * s.NH * B;
      const Window w{.kv = s.kv,
                     .first_slot = t,
                     .slots = s.R,
                     .n = n,
                     .K = s.K,
                     .H = H,
                     .NH = s.NH,
                     .B = B,
                     .q = nullptr,
                     .pos_k = s.pos_k,
                     .pos_v = s.pos_v,
                     .head_mask = s.head_mask,
                     .visible = step_visibility(*s.visible, t),
                     .drops = s.drops ? s.drops + step_offset : nullptr,
                     .record = s.recorded ? s.recorded + step_offset : nullptr,
                     .a = nullptr};
      attend_block<kHidden>(w, block, bw, q, a, scratch.attend);
      if (s.attended) store_block(s.attended + t * H * B, a, H, B, b0, bw);
      block_product(s.w_a_t, a, z, 4 * H, H, true);  // + Wa a_t
    }
    float* const sig_rows = reinterpret_cast<float*>(sig);
    sigmoid_values(reinterpret_cast<const float*>(z), sig_rows, 4 * HL);
    cell_values(sig_rows, sig_rows + HL, sig_rows + 2 * HL, sig_rows + 3 * HL,
                reinterpret_cast<const float*>(c_prev), reinterpret_cast<float*>(c),
                reinterpret_cast<float*>(h), reinterpret_cast<float*>(feature), s.kv_activation,
                HL);
    norm_forward(s.h_norm, reinterpret_cast<float*>(h), H, kLanes, nullptr);
    norm_forward(s.kv_norm, reinterpret_cast<float*>(feature), H, kLanes, nullptr);
    if (s.acts) store_block(s.acts + t * 4 * H * B, sig, 4 * H, B, b0, bw);
    store_block(s.hs + t * H * B, h, H, B, b0, bw);
    store_block(s.cs + t * H * B, c, H, B, b0, bw);
    // The new cell state enters the queue, projected straight into its slot of the block.
    Lanes* slot = reinterpret_cast<Lanes*>(s.kv + (block * s.R + (s.K + t) % s.R) * 2 * HL);
    block_product(s.w_kv_t, feature, slot, 2 * H, H + 1, false);
    std::swap(c, c_prev);
  }
}

// Inputs and outputs as in LARNNScan.forward, all float32, contiguous, batch last:
// x (T, C, B); h0, c0 (H, B); w_xh (5H, C + H + 1) = [w_x, w_h, bias], so that one matmul
// with [x_t; h; 1] gives gates and query; w_a (4H, H); w_kv (2H, H + 1) = [w_kv, b_kv];
// kv (blocks, R, 2H, kLanes), the key/value history by block of batch columns, with the
// queue's keys and values in slots K - filled .. K - 1; R = K + T slots to keep every
// step's (backward reads them) or K + 1 for a ring that step t writes at (K + t) % R;
// pos_k, pos_v (K, H); visible (T, K, B or 1) bool, false where a window slot holds a hidden
// step, per sample or for the whole batch (LayerKnobs.visible); drops and recorded
// (T, K, NH, B); kv_stats, h_stats (T, 2, H) for batch norm's batch statistics. Writes
// hs, cs (T, H, B), kv's slots, and when given acts (T, 4H, B), queries (T, H, B),
// attended (T, H, B) (left untouched while the window is empty), recorded, kv_stats and
// h_stats.
void scan_forward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                  at::Tensor& kv, int64_t filled, int64_t window, const at::Tensor& w_xh,
                  const at::Tensor& w_a, const at::Tensor& w_kv,
                  const std::optional<at::Tensor>& pos_k, const std::optional<at::Tensor>& pos_v,
                  const std::optional<at::Tensor>& head_mask,
                  const std::optional<at::Tensor>& visible,
                  const std::optional<at::Tensor>& drops, int64_t heads,
                  int64_t query_activation, int64_t kv_activation, int64_t kv_norm_kind,
                  const std::optional<at::Tensor>& kv_norm_params, double kv_norm_eps,
                  int64_t h_norm_kind, const std::optional<at::Tensor>& h_norm_params,
                  double h_norm_eps, at::Tensor& hs, at::Tensor& cs,
                  const std::optional<at::Tensor>& acts, const std::optional<at::Tensor>& queries,
                  const std::optional<at::Tensor>& attended,
                  const std::optional<at::Tensor>& recorded,
                  const std::optional<at::Tensor>& kv_stats,
                  const std::optional<at::Tensor>& h_stats) {
  // Its ATen calls work on raw buffers, below autograd: the op has no derivative of its own
  // (LARNNScan's backward is its autograd), and weights that require grad may come in.
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t T = x.size(0), C = x.size(1), H = h0.size(0), B = h0.size(1);
  const int64_t K = window, R = kv.size(1), NH = heads;
  TORCH_CHECK(kv.size(3) == kLanes, "kv must be blocked by ", kLanes, " batch columns");
  for (const at::Tensor& t : {x, h0, c0, kv, hs, cs}) check_buffer(t);
  for (const auto& t : {pos_k, pos_v, head_mask, drops, kv_norm_params, h_norm_params, acts,
                        queries, attended, recorded, kv_stats, h_stats})
    if (t) check_buffer(*t);
  if (visible) check_visible(*visible, T, K, B);
  const NormSpec kv_norm = norm_spec(kv_norm_kind, kv_norm_params, kv_norm_eps, H);
  const NormSpec h_norm = norm_spec(h_norm_kind, h_norm_params, h_norm_eps, H);
  const auto options = x.options();
  auto [xh, memory] = with_ones(C, H, B, options);
  float* const x_rows = xh.data_ptr<float>();
  float* const h_rows = x_rows + C * B;
  float* const feature = memory.data_ptr<float>();
  at::Tensor z = at::empty({5 * H, B}, options);  // gates then query, per step
  at::Tensor gates = z.narrow(0, 0, 4 * H);
  const at::Tensor sig_scratch = at::empty({4 * H, B}, options);
  const at::Tensor q_scratch = at::empty({H, B}, options);
  const at::Tensor a_scratch = at::empty({H, B}, options);
  at::Tensor kv_new = at::empty({2 * H, B}, options);
  // One batch column: the three products by matvec, on transposed copies of the weights.
  const bool one_column = B == 1;
  // Where no step mixes batch columns, each block of them runs the whole loop on its own
  // (scan_block), also on transposed weights; batch statistics need every column each step.
  const bool by_block = !one_column && kv_norm.kind != kBatchNorm && h_norm.kind != kBatchNorm &&
                        reinterpret_cast<uintptr_t>(kv.data_ptr()) % alignof(Lanes) == 0;
  const at::Tensor w_xh_t = w_xh.t().contiguous();  // (C + H + 1, 5H)
  const at::Tensor w_a_t = w_a.t().contiguous();    // (H, 4H)
  const at::Tensor w_kv_t = w_kv.t().contiguous();  // (H + 1, 2H)
  if (by_block) {
    const BlockScan scan{.x = x.data_ptr<float>(),
                         .h0 = h0.data_ptr<float>(),
                         .c0 = c0.data_ptr<float>(),
                         .kv = kv.data_ptr<float>(),
                         .T = T,
                         .C = C,
                         .H = H,
                         .NH = NH,
                         .B = B,
                         .K = K,
                         .R = R,
                         .filled = filled,
                         .w_xh_t = w_xh_t.data_ptr<float>(),
                         .w_a_t = w_a_t.data_ptr<float>(),
                         .w_kv_t = w_kv_t.data_ptr<float>(),
                         .pos_k = data_or_null(pos_k),
                         .pos_v = data_or_null(pos_v),
                         .head_mask = data_or_null(head_mask),
                         .visible = &visible,
                         .drops = data_or_null(drops),
                         .query_activation = query_activation,
                         .kv_activation = kv_activation,
                         .kv_norm = kv_norm,
                         .h_norm = h_norm,
                         .hs = hs.data_ptr<float>(),
                         .cs = cs.data_ptr<float>(),
                         .acts = data_or_null(acts),
                         .queries = data_or_null(queries),
                         .attended = data_or_null(attended),
                         .recorded = data_or_null(recorded)};
    at::parallel_for(0, (B + kLanes - 1) / kLanes, 1, [&](int64_t begin, int64_t end) {
      BlockScratch scratch(C, H, K, NH);
      for (int64_t block = begin; block < end; ++block)
        if (visible)
          scan_block<true>(scan, block, scratch);
        else
          scan_block<false>(scan, block, scratch);
    });
    return;
  }
  std::vector<AttendScratch> scratch(at::get_num_threads(), AttendScratch(H, K, NH));
  // The query's rows (H, B) in contiguous runs, as in update_cell.
  const int64_t runs = one_column ? 1 : H, width = one_column ? H : B;
  // Row t of a (T, rows, B) output, or the scratch when the output is not asked for.
  const auto step_rows = [&](const std::optional<at::Tensor>& out, const at::Tensor& scratch,
                             int64_t rows, int64_t t) {
    return out ? out->data_ptr<float>() + t * rows * B : scratch.data_ptr<float>();
  };
  std::memcpy(h_rows, h0.data_ptr<float>(), H * B * sizeof(float));
  const float* c = c0.data_ptr<float>();

  for (int64_t t = 0; t < T; ++t) {
    std::memcpy(x_rows, x.data_ptr<float>() + t * C * B, C * B * sizeof(float));
    // (5H, B): rows 0..4H, Wx x_t + Wh h + b of the reference's gates (g rows doubled);
    // rows 4H..5H, Wq [x_t, h] + bq of its query, head-dim major.
    if (one_column)
      matvec(w_xh_t.data_ptr<float>(), x_rows, z.data_ptr<float>(), 5 * H, C + H + 1, false);
    else
      at::mm_out(z, w_xh, xh);
    float* const q_rows = step_rows(queries, q_scratch, H, t);  // (H, B)
    const float* const z_query = z.data_ptr<float>() + 4 * H * B;
    for_each_row(runs, [&](int64_t r) {
      std::memcpy(q_rows + r * width, z_query + r * width, width * sizeof(float));
      activate(query_activation, q_rows + r * width, width);
    });
    const int64_t n = std::min(K, filled + t);
    if (n) {
      float* const a_rows = step_rows(attended, a_scratch, H, t);  // (H, B)
      const int64_t step_offset = t * K * NH * B;
      attend(Window{.kv = kv.data_ptr<float>(),
                    .first_slot = t,
                    .slots = R,
                    .n = n,
                    .K = K,
                    .H = H,
                    .NH = NH,
                    .B = B,
                    .q = q_rows,
                    .pos_k = data_or_null(pos_k),
                    .pos_v = data_or_null(pos_v),
                    .head_mask = data_or_null(head_mask),
                    .visible = step_visibility(visible, t),
                    .drops = drops ? drops->data_ptr<float>() + step_offset : nullptr,
                    .record = recorded ? recorded->data_ptr<float>() + step_offset : nullptr,
                    .a = a_rows},
             scratch);
      // + Wa a_t (w_a's columns reordered as a's features)
      if (one_column)
        matvec(w_a_t.data_ptr<float>(), a_rows, gates.data_ptr<float>(), 4 * H, H, true);
      else
        gates.addmm_(w_a, attended ? (*attended)[t] : a_scratch);
    }
    float* const sig = step_rows(acts, sig_scratch, 4 * H, t);  // (4H, B)
    float* const c_new = cs.data_ptr<float>() + t * H * B;       // (H, B)
    float* const h_new = hs.data_ptr<float>() + t * H * B;       // (H, B)
    update_cell(gates.data_ptr<float>(), c, sig, c_new, h_new, feature, kv_activation, H, B);
    const int64_t stats_offset = t * 2 * H;
    norm_forward(h_norm, h_new, H, B,
                 h_stats ? h_stats->data_ptr<float>() + stats_offset : nullptr);
    norm_forward(kv_norm, feature, H, B,
                 kv_stats ? kv_stats->data_ptr<float>() + stats_offset : nullptr);
    // The new cell state enters the queue: projected once, into its own slot. (2H, B): the
    // reference's key and value of kv_norm(act(c_t)) without the pe(lag) part (pos_k and
    // pos_v, added per window position), head-dim major, the keys scaled by log2(e) / sqrt(HD).
    if (one_column)
      matvec(w_kv_t.data_ptr<float>(), feature, kv_new.data_ptr<float>(), 2 * H, H + 1, false);
    else
      at::mm_out(kv_new, w_kv, memory);
    scatter_slot(kv_new.data_ptr<float>(), kv.data_ptr<float>(), (K + t) % R, R, 2 * H, B);
    std::memcpy(h_rows, h_new, H * B * sizeof(float));
    c = c_new;
  }
}

}  // namespace
}  // namespace larnn

// Every tensor the op writes is declared mutable, one alias set each (Tensor(a!)), so that
// the dispatcher, torch.compile's functionalization and torch.library.opcheck know it.
TORCH_LIBRARY(larnn, m) {
  m.set_python_module("larnn.scan.compiled");  // its fake (meta) kernels, for opcheck/compile
  m.def(
      "scan_forward(Tensor x, Tensor h0, Tensor c0, Tensor(a!) kv, int filled, int window, "
      "Tensor w_xh, Tensor w_a, Tensor w_kv, Tensor? pos_k, Tensor? pos_v, Tensor? head_mask, "
      "Tensor? visible, Tensor? drops, int heads, int query_activation, int kv_activation, "
      "int kv_norm_kind, Tensor? kv_norm_params, float kv_norm_eps, int h_norm_kind, "
      "Tensor? h_norm_params, float h_norm_eps, Tensor(b!) hs, Tensor(c!) cs, "
      "Tensor(d!)? acts, Tensor(e!)? queries, Tensor(f!)? attended, Tensor(g!)? recorded, "
      "Tensor(h!)? kv_stats, Tensor(i!)? h_stats) -> ()");
}

// A CPU kernel, not a catch-all one: a catch-all kernel counts as CompositeImplicitAutograd,
// which autograd, fake tensors and opcheck would look through to the ATen calls inside.
TORCH_LIBRARY_IMPL(larnn, CPU, m) { m.impl("scan_forward", &larnn::scan_forward); }
