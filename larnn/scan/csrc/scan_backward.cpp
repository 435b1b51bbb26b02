// The backward loop of LARNNScan (larnn/scan/function.py) for float32 on the CPU.
//
// It computes what the Python loop `python_scan_backward` computes, walking the steps in
// reverse and reading what the forward kept (kv, the gates' sigmoids, q, a, h and c): the
// gradients of the forward's transformed form (scan_common.h), which autograd through
// scan_weights (larnn/scan/layer.py) turns into those of the reference's weights.
// Per step: six matmul calls into ATen and fused passes of its own for the norms, the
// cell and the attention. Input and hidden enter through one matrix [w_x, w_h, bias]
// applied to [x_t; h_{t-1}; 1], so one matmul gives the gradients of x_t and h_{t-1} and
// one gives those of w_x, w_h and the bias; likewise [w_kv, b_kv] with [feature; 1].

#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <vector>

#include "scan_common.h"

namespace larnn {
namespace {

// A norm's backward on batch-last x (H, B), its input: dx from dy, the gradient of its
// output; y, its output, unless null; adds the gradients of weight and bias into d_params (2, H).
// sample_stats is scratch of 2B.
void norm_backward(const NormSpec& norm, const float* x, const float* dy, float* dx, float* y,
                   float* d_params, int64_t H, int64_t B, float* sample_stats) {
  const float* weight = norm.weight();
  const float* bias = norm.bias();
  if (norm.kind == kLayerNorm) {  // statistics over the H features of each sample
    float* means = sample_stats;
    float* rstds = sample_stats + B;
    for_each_block(B, [&](int64_t b0, int64_t bw) {
      float mean[kLanes], rstd[kLanes], s1[kLanes] = {}, s2[kLanes] = {};
      layer_norm_stats(x, H, B, b0, bw, norm.eps, mean, rstd);
      for (int64_t r = 0; r < H; ++r)  // sums over H of d_hat and d_hat * x_hat
        #pragma omp simd
        for (int64_t l = 0; l < bw; ++l) {
          const float d_hat = dy[r * B + b0 + l] * weight[r];
          s1[l] += d_hat;
          s2[l] += d_hat * (x[r * B + b0 + l] - mean[l]) * rstd[l];
        }
      for (int64_t r = 0; r < H; ++r) {
        const int64_t at = r * B + b0;
        #pragma omp simd
        for (int64_t l = 0; l < bw; ++l) {
          const float x_hat = (x[at + l] - mean[l]) * rstd[l];
          const float d_hat = dy[at + l] * weight[r];
          dx[at + l] = rstd[l] * (d_hat - s1[l] / H - x_hat * s2[l] / H);
          if (y) y[at + l] = x_hat * weight[r] + bias[r];
        }
      }
      std::copy(mean, mean + bw, means + b0);
      std::copy(rstd, rstd + bw, rstds + b0);
    });
    for_each_row(H, [&](int64_t r) {
      float d_weight = 0.0f, d_bias = 0.0f;
      for (int64_t b = 0; b < B; ++b) {
        d_weight += dy[r * B + b] * (x[r * B + b] - means[b]) * rstds[b];
        d_bias += dy[r * B + b];
      }
      d_params[r] += d_weight;
      d_params[H + r] += d_bias;
    });
    return;
  }
  for_each_row(H, [&](int64_t r) {  // batch norm: statistics over the batch, or running
    const float* xr = x + r * B;
    const float* dyr = dy + r * B;
    float mean, var;
    if (norm.kind == kBatchNorm) {
      batch_stats(xr, B, &mean, &var);  // as in the forward, to the last bit
    } else {
      mean = norm.running_mean()[r];
      var = norm.running_var()[r];
    }
    const float rstd = 1.0f / std::sqrt(var + norm.eps);
    float s1 = 0.0f, s2 = 0.0f;  // sums over the batch of dy and dy x_hat
    for (int64_t b = 0; b < B; ++b) {
      const float x_hat = (xr[b] - mean) * rstd;
      s1 += dyr[b];
      s2 += dyr[b] * x_hat;
      if (y) y[r * B + b] = x_hat * weight[r] + bias[r];
    }
    d_params[r] += s2;      // d weight
    d_params[H + r] += s1;  // d bias
    const float w = weight[r];
    if (norm.kind == kBatchNorm) {  // d_hat = w dy; its batch sums are w s1 and w s2
      for (int64_t b = 0; b < B; ++b) {
        const float x_hat = (xr[b] - mean) * rstd;
        dx[r * B + b] = rstd * w * (dyr[b] - s1 / B - x_hat * s2 / B);
      }
    } else {
      for (int64_t b = 0; b < B; ++b) dx[r * B + b] = rstd * w * dyr[b];
    }
  });
}

// What one step's attention backward reads and writes; positions as in the forward's Window.
struct WindowGrad {
  const float* kv;  // (blocks, K + T, 2H, kLanes): the history by block of batch columns
  float* d_kv;      // (blocks, K + T, 2H, kLanes): gradients of the slots, accumulated
  int64_t first_slot, slots, n, K, H, NH, B;  // as in the forward's Window
  const float* q;           // (H, B), after its activation
  const float* da;          // (H, B): gradient of the attended values
  const float* pos_k;       // (K, H) or null
  const float* pos_v;       // (K, H) or null
  const float* head_mask;   // (NH,) or null
  StepVisibility visible;   // this step's slots not hidden; rows null where none is hidden
  const float* drops;       // (K, NH, B) of this step, or null
  const float* d_recorded;  // (K, NH, B) of this step, or null
  int64_t query_activation;
  float* dq;     // (H, B): gradient of q's pre-activation, rows 4H.. of dz
  float* d_pos;  // (blocks, 2, K, H): positional gradients summed per block, or null
};

// A thread's scratch for attend_backward_block, all Lanes: q, da and acc of H rows; p and
// dp of K * NH; best and total of NH.
struct BackwardScratch {
  std::vector<Lanes> q, da, acc, p, dp, best, total;
  BackwardScratch(int64_t H, int64_t K, int64_t NH)
      : q(H), da(H), acc(H), p(K * NH), dp(K * NH), best(NH), total(NH) {}
};

// The sum of a block row's first `count` lanes (the others may hold anything).
LARNN_INLINE float lane_sum(Lanes v, int64_t count) {
  float sum = 0.0f;
  for (int64_t l = 0; l < count; ++l) sum += v[l];
  return sum;
}

// One step's attention backward for one block of kLanes batch columns, `bw` of them used,
// its sums over a head's HD features in registers as in the forward's attend_block.
template <bool kHidden>
void attend_backward_block(const WindowGrad& w, int64_t block, int64_t bw,
                           BackwardScratch& scratch) {
  const int64_t H = w.H, NH = w.NH, B = w.B, HD = H / NH, n = w.n, K = w.K;
  const int64_t b0 = block * kLanes, first = K - n;
  float* d_pos_k = w.d_pos ? w.d_pos + block * 2 * K * H : nullptr;  // (K, H)
  float* d_pos_v = w.d_pos ? d_pos_k + K * H : nullptr;              // (K, H)
  const int64_t oldest = (block * w.slots + w.first_slot + first) * 2 * H * kLanes;
  const float* slot0 = w.kv + oldest;  // slots j follow at 2H * kLanes apart
  float* d_slot0 = w.d_kv + oldest;
  Lanes *q = scratch.q.data(), *da = scratch.da.data(), *acc = scratch.acc.data();
  Lanes *p = scratch.p.data(), *dp = scratch.dp.data();
  Lanes *best = scratch.best.data(), *total = scratch.total.data();
  for (int64_t i = 0; i < H; ++i) {
    q[i] = load_columns(w.q + i * B + b0, bw);
    da[i] = load_columns(w.da + i * B + b0, bw);
  }
  const auto shown = [&](int64_t j) {  // 1 where column l may attend to slot j, else 0
    Lanes v = {};
    const bool* row = w.visible.rows + (first + j) * w.visible.columns;
    for (int64_t l = 0; l < bw; ++l) v[l] = row[w.visible.columns == 1 ? 0 : b0 + l];
    return v;
  };
  const auto key_or_value = [&](const float* row, const float* pos, int64_t i) {
    return pos ? load(row + i * kLanes) + pos[i] : load(row + i * kLanes);
  };
  // The softmax p, recomputed from q and the keys as the forward computed it. Where a slot
  // holds a hidden step, p = 0: every gradient below that goes through it is then 0 (its
  // value's, its key's and its part of q's), as in the reference, which leaves the slot out.
  std::fill(best, best + NH, Lanes{} - INFINITY);
  std::fill(total, total + NH, Lanes{});
  for (int64_t j = 0; j < n; ++j) {
    const float* key = slot0 + j * 2 * H * kLanes;
    const float* pk = w.pos_k ? w.pos_k + (first + j) * H : nullptr;
    const Lanes visible = kHidden ? shown(j) : Lanes{};
    for (int64_t head = 0; head < NH; ++head) {
      Lanes dot = {};
      for (int64_t d = 0; d < HD; ++d)
        dot += key_or_value(key, pk, d * NH + head) * q[d * NH + head];
      p[j * NH + head] = dot;
      const Lanes larger = dot > best[head] ? dot : best[head];
      best[head] = kHidden ? (visible != 0.0f ? larger : best[head]) : larger;
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    const Lanes visible = kHidden ? shown(j) : Lanes{};
    for (int64_t head = 0; head < NH; ++head) {
      Lanes e = exp2_approx(p[j * NH + head] - best[head]);
      if (kHidden) e = visible != 0.0f ? e : 0.0f;
      total[head] += e;
      p[j * NH + head] = e;
    }
  }
  for (int64_t head = 0; head < NH; ++head)
    total[head] = kHidden ? (total[head] > 0.0f ? 1.0f / total[head] : 0.0f) : 1.0f / total[head];
  for (int64_t j = 0; j < n; ++j)
    for (int64_t head = 0; head < NH; ++head) p[j * NH + head] *= total[head];
  // Values: w = p * drop * mask weighs them; dp gets d w = da . v per head.
  for (int64_t j = 0; j < n; ++j) {
    const float* value = slot0 + (j * 2 * H + H) * kLanes;
    float* d_value = d_slot0 + (j * 2 * H + H) * kLanes;
    const float* pv = w.pos_v ? w.pos_v + (first + j) * H : nullptr;
    for (int64_t head = 0; head < NH; ++head) {
      const int64_t at = ((first + j) * NH + head) * B + b0;
      Lanes scale = Lanes{} + (w.head_mask ? w.head_mask[head] : 1.0f);
      if (w.drops) scale *= load_columns(w.drops + at, bw);
      const Lanes weight = p[j * NH + head] * scale;
      Lanes ds = {};
      for (int64_t d = 0; d < HD; ++d) {
        const int64_t i = d * NH + head;
        ds += key_or_value(value, pv, i) * da[i];
        store(d_value + i * kLanes, load(d_value + i * kLanes) + weight * da[i]);
        if (d_pos_v) d_pos_v[(first + j) * H + i] += lane_sum(weight * da[i], bw);
      }
      if (w.d_recorded) ds += load_columns(w.d_recorded + at, bw);
      dp[j * NH + head] = ds * scale;  // the gradient of p
    }
  }
  for (int64_t head = 0; head < NH; ++head) {  // base-2 softmax: ds = p (dp - sum p dp)
    Lanes sum = {};
    for (int64_t j = 0; j < n; ++j) sum += p[j * NH + head] * dp[j * NH + head];
    for (int64_t j = 0; j < n; ++j)
      dp[j * NH + head] = (dp[j * NH + head] - sum) * p[j * NH + head];
  }
  // Keys and q, from the scores' gradient (times ln 2: 2^s = e^(s ln 2)).
  std::fill(acc, acc + H, Lanes{});
  for (int64_t j = 0; j < n; ++j) {
    const float* key = slot0 + j * 2 * H * kLanes;
    float* d_key = d_slot0 + j * 2 * H * kLanes;
    const float* pk = w.pos_k ? w.pos_k + (first + j) * H : nullptr;
    for (int64_t head = 0; head < NH; ++head) {
      const Lanes ds = dp[j * NH + head];
      for (int64_t d = 0; d < HD; ++d) {
        const int64_t i = d * NH + head;
        acc[i] += key_or_value(key, pk, i) * ds;
        store(d_key + i * kLanes, load(d_key + i * kLanes) + kLn2 * ds * q[i]);
        if (d_pos_k) d_pos_k[(first + j) * H + i] += kLn2 * lane_sum(ds * q[i], bw);
      }
    }
  }
  for (int64_t i = 0; i < H; ++i) {
    Lanes grad;
    activation_grad(w.query_activation, reinterpret_cast<const float*>(&q[i]),
                    reinterpret_cast<float*>(&grad), kLanes);
    store_columns(w.dq + i * B + b0, kLn2 * acc[i] * grad, bw);
  }
}

void attend_backward(const WindowGrad& w, std::vector<BackwardScratch>& scratch) {
  const int64_t blocks = (w.B + kLanes - 1) / kLanes;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    BackwardScratch& mine = scratch[at::get_thread_num()];
    for (int64_t block = begin; block < end; ++block) {
      const int64_t bw = std::min(kLanes, w.B - block * kLanes);
      if (w.visible.rows)
        attend_backward_block<true>(w, block, bw, mine);
      else
        attend_backward_block<false>(w, block, bw, mine);
    }
  });
}

// Copies slot `slot` of a history blocked as (blocks, R, rows, kLanes) into (rows, B).
void gather_slot(const float* history, float* to, int64_t slot, int64_t R, int64_t rows,
                 int64_t B) {
  for_each_block(B, [&](int64_t b0, int64_t bw) {
    const float* from = history + ((b0 / kLanes) * R + slot) * rows * kLanes;
    for (int64_t r = 0; r < rows; ++r)
      std::copy(from + r * kLanes, from + r * kLanes + bw, to + r * B + b0);
  });
}

// Inputs as scan_forward's (visible hides the same slots), plus what it wrote (hs, cs, acts,
// queries, attended, kv) and the gradients of its outputs, d_hs and d_cs (T, H, B) and
// d_recorded (T, K, NH, B). Writes dx (T, C, B), dh0 and dc0 (H, B); adds into d_kv
// (blocks, K + T, 2H, kLanes), d_w_xh (5H, C + H + 1), d_w_a (4H, H), d_w_kv (2H, H + 1),
// d_pos (2, K, H) and the norms' d_params (2, H), all zero on entry.
void scan_backward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                   const at::Tensor& kv, int64_t filled, const at::Tensor& w_xh,
                   const at::Tensor& w_a, const at::Tensor& w_kv,
                   const std::optional<at::Tensor>& pos_k,
                   const std::optional<at::Tensor>& pos_v,
                   const std::optional<at::Tensor>& head_mask,
                   const std::optional<at::Tensor>& visible,
                   const std::optional<at::Tensor>& drops, int64_t heads,
                   int64_t query_activation, int64_t kv_activation, int64_t kv_norm_kind,
                   const std::optional<at::Tensor>& kv_norm_params, double kv_norm_eps,
                   int64_t h_norm_kind, const std::optional<at::Tensor>& h_norm_params,
                   double h_norm_eps, const at::Tensor& hs, const at::Tensor& cs,
                   const at::Tensor& acts, const at::Tensor& queries,
                   const at::Tensor& attended, const at::Tensor& d_hs, const at::Tensor& d_cs,
                   const std::optional<at::Tensor>& d_recorded, at::Tensor& dx, at::Tensor& dh0,
                   at::Tensor& dc0, at::Tensor& d_kv, at::Tensor& d_w_xh, at::Tensor& d_w_a,
                   at::Tensor& d_w_kv, const std::optional<at::Tensor>& d_pos,
                   const std::optional<at::Tensor>& d_kv_norm,
                   const std::optional<at::Tensor>& d_h_norm) {
  // Its ATen calls work on raw buffers, below autograd: the op has no derivative of its own
  // (LARNNScan's backward is its autograd), and weights that require grad may come in.
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t T = x.size(0), C = x.size(1), H = h0.size(0), B = h0.size(1);
  const int64_t R = kv.size(1), K = R - T, NH = heads, HB = H * B;
  for (const at::Tensor& t : {x, h0, c0, kv, hs, cs, acts, queries, attended, d_hs, d_cs, dx,
                              dh0, dc0, d_kv, d_w_xh, d_w_a, d_w_kv})
    check_buffer(t);
  for (const auto& t : {pos_k, pos_v, head_mask, drops, kv_norm_params, h_norm_params,
                        d_recorded, d_pos, d_kv_norm, d_h_norm})
    if (t) check_buffer(*t);
  if (visible) check_visible(*visible, T, K, B);
  const int64_t blocks = (B + kLanes - 1) / kLanes;
  const NormSpec kv_norm = norm_spec(kv_norm_kind, kv_norm_params, kv_norm_eps, H);
  const NormSpec h_norm = norm_spec(h_norm_kind, h_norm_params, h_norm_eps, H);
  const auto options = x.options();
  auto [xh, memory] = with_ones(C, H, B, options);
  at::Tensor dz = at::empty({5 * H, B}, options);            // gates then query
  at::Tensor dz_gates = dz.narrow(0, 0, 4 * H);
  at::Tensor d_memory = at::empty({H + 1, B}, options);      // w_kv^T d_slot
  at::Tensor d_slot = at::empty({2 * H, B}, options);        // gradient of slot K + t
  at::Tensor d_xh = at::zeros({C + H + 1, B}, options);      // w_xh^T dz: dx_t, dh_{t-1}
  at::Tensor da = at::empty({H, B}, options);
  at::Tensor dc = at::zeros({H, B}, options);
  // Per step, (H, B) each: act(c), raw h, tanh(c), act'(c), d raw h, d act(c), d h.
  at::Tensor rows = at::empty({7, H, B}, options);
  float *u = rows[0].data_ptr<float>(), *h_raw = rows[1].data_ptr<float>();
  float *tanh_c = rows[2].data_ptr<float>(), *u_grad = rows[3].data_ptr<float>();
  float *d_h_raw = rows[4].data_ptr<float>(), *d_u = rows[5].data_ptr<float>();
  float* d_h = rows[6].data_ptr<float>();
  std::vector<float> sample_stats(2 * B);
  at::Tensor d_pos_blocks;  // (blocks, 2, K, H)
  if (d_pos) d_pos_blocks = at::zeros({blocks, 2, K, H}, options);
  std::vector<BackwardScratch> scratch(at::get_num_threads(), BackwardScratch(H, K, NH));
  float* const feature = memory.data_ptr<float>();
  float* const dzp = dz.data_ptr<float>();
  float* const dcp = dc.data_ptr<float>();

  for (int64_t t = T - 1; t >= 0; --t) {
    const float* sig = acts[t].data_ptr<float>();  // (4H, B)
    const float* c_t = cs[t].data_ptr<float>();
    const float* c_prev = t ? cs[t - 1].data_ptr<float>() : c0.data_ptr<float>();
    const float* dh_next = d_xh.data_ptr<float>() + C * B;  // w_h^T dz of step t + 1
    const float* d_hs_t = d_hs[t].data_ptr<float>();
    for_each_row(H, [&](int64_t r) {  // recomputed: act(c), o tanh(c); and d h
      const float* o = sig + (2 * H + r) * B;
      const int64_t at = r * B;
      #pragma omp simd
      for (int64_t b = 0; b < B; ++b) {
        tanh_c[at + b] = tanh_approx(c_t[at + b]);
        h_raw[at + b] = o[b] * tanh_c[at + b];
        u[at + b] = c_t[at + b];
        d_h[at + b] = dh_next[at + b] + d_hs_t[at + b];
      }
      activate(kv_activation, u + at, B);
      activation_grad(kv_activation, u + at, u_grad + at, B);
    });
    // Slot K + t is complete: only later steps, already done, read it.
    gather_slot(d_kv.data_ptr<float>(), d_slot.data_ptr<float>(), K + t, R, 2 * H, B);
    // (H + 1, B): the gradient of [kv_norm(act(c_t)); 1]; the last row is unused. (The
    // pe(lag) part of the reference's projection is pos_k, pos_v, whose gradients are d_pos.)
    at::mm_out(d_memory, w_kv.t(), d_slot);
    if (kv_norm.kind == kNoNorm) {
      std::memcpy(feature, u, HB * sizeof(float));
      std::memcpy(d_u, d_memory.data_ptr<float>(), HB * sizeof(float));
    } else {
      norm_backward(kv_norm, u, d_memory.data_ptr<float>(), d_u, feature,
                    d_kv_norm->data_ptr<float>(), H, B, sample_stats.data());
    }
    d_w_kv.addmm_(d_slot, memory.t());
    if (h_norm.kind == kNoNorm) {
      std::memcpy(d_h_raw, d_h, HB * sizeof(float));
    } else {  // its output is hs[t], kept by the forward
      norm_backward(h_norm, h_raw, d_h, d_h_raw, nullptr, d_h_norm->data_ptr<float>(), H, B,
                    sample_stats.data());
    }
    const float* d_cs_t = d_cs[t].data_ptr<float>();
    // c and the gates: dz_* are the gradients of the gates' pre-activations, the g rows' being
    // of 2 g (doubled rows): tanh(g) = 2 s - 1 with s = sigmoid(2 g), d/d(2g) = 2 s (1 - s).
    for_each_row(H, [&](int64_t r) {
      const float *i = sig + r * B, *f = sig + (H + r) * B;
      const float *o = sig + (2 * H + r) * B, *g = sig + (3 * H + r) * B;
      float *dz_i = dzp + r * B, *dz_f = dzp + (H + r) * B;
      float *dz_o = dzp + (2 * H + r) * B, *dz_g = dzp + (3 * H + r) * B;
      const int64_t at = r * B;
      #pragma omp simd
      for (int64_t b = 0; b < B; ++b) {
        const float tc = tanh_c[at + b];
        const float dct = dcp[at + b] + d_cs_t[at + b] + d_u[at + b] * u_grad[at + b] +
                          d_h_raw[at + b] * o[b] * (1.0f - tc * tc);
        dz_i[b] = dct * (2.0f * g[b] - 1.0f) * i[b] * (1.0f - i[b]);
        dz_f[b] = dct * c_prev[at + b] * f[b] * (1.0f - f[b]);
        dz_o[b] = d_h_raw[at + b] * tc * o[b] * (1.0f - o[b]);
        dz_g[b] = 2.0f * dct * i[b] * g[b] * (1.0f - g[b]);
        dcp[at + b] = dct * f[b];  // to c_{t-1}
      }
    });
    const int64_t n = std::min(K, filled + t);
    if (n) {
      at::mm_out(da, w_a.t(), dz_gates);  // (H, B)
      const int64_t step_offset = t * K * NH * B;
      attend_backward(WindowGrad{
          .kv = kv.data_ptr<float>(),
          .d_kv = d_kv.data_ptr<float>(),
          .first_slot = t,
          .slots = R,
          .n = n,
          .K = K,
          .H = H,
          .NH = NH,
          .B = B,
          .q = queries[t].data_ptr<float>(),
          .da = da.data_ptr<float>(),
          .pos_k = data_or_null(pos_k),
          .pos_v = data_or_null(pos_v),
          .head_mask = data_or_null(head_mask),
          .visible = step_visibility(visible, t),
          .drops = drops ? drops->data_ptr<float>() + step_offset : nullptr,
          .d_recorded = d_recorded ? d_recorded->data_ptr<float>() + step_offset : nullptr,
          .query_activation = query_activation,
          .dq = dzp + 4 * H * B,
          .d_pos = d_pos ? d_pos_blocks.data_ptr<float>() : nullptr},
                      scratch);
      d_w_a.addmm_(dz_gates, attended[t].t());
    } else {
      std::fill(dzp + 4 * H * B, dzp + 5 * H * B, 0.0f);
    }
    std::memcpy(xh.data_ptr<float>(), x.data_ptr<float>() + t * C * B, C * B * sizeof(float));
    std::memcpy(xh.data_ptr<float>() + C * B,
                t ? hs[t - 1].data_ptr<float>() : h0.data_ptr<float>(), HB * sizeof(float));
    d_w_xh.addmm_(dz, xh.t());
    at::mm_out(d_xh, w_xh.t(), dz);  // (C + H + 1, B): dx_t, dh_{t-1}, unused
    std::memcpy(dx.data_ptr<float>() + t * C * B, d_xh.data_ptr<float>(), C * B * sizeof(float));
  }
  std::memcpy(dh0.data_ptr<float>(), d_xh.data_ptr<float>() + C * B, HB * sizeof(float));
  std::memcpy(dc0.data_ptr<float>(), dcp, HB * sizeof(float));
  if (d_pos) d_pos->copy_(d_pos_blocks.sum(0));
}

}  // namespace
}  // namespace larnn

// As scan_forward's: every tensor it writes is declared mutable, and the kernel is the CPU one.
TORCH_LIBRARY_FRAGMENT(larnn, m) {
  m.set_python_module("larnn.scan.compiled");
  m.def(
      "scan_backward(Tensor x, Tensor h0, Tensor c0, Tensor kv, int filled, Tensor w_xh, "
      "Tensor w_a, Tensor w_kv, Tensor? pos_k, Tensor? pos_v, Tensor? head_mask, "
      "Tensor? visible, Tensor? drops, int heads, int query_activation, int kv_activation, "
      "int kv_norm_kind, Tensor? kv_norm_params, float kv_norm_eps, int h_norm_kind, "
      "Tensor? h_norm_params, float h_norm_eps, Tensor hs, Tensor cs, Tensor acts, "
      "Tensor queries, Tensor attended, Tensor d_hs, Tensor d_cs, Tensor? d_recorded, "
      "Tensor(a!) dx, Tensor(b!) dh0, Tensor(c!) dc0, Tensor(d!) d_kv, Tensor(e!) d_w_xh, "
      "Tensor(f!) d_w_a, Tensor(g!) d_w_kv, Tensor(h!)? d_pos, Tensor(i!)? d_kv_norm, "
      "Tensor(j!)? d_h_norm) -> ()");
}

TORCH_LIBRARY_IMPL(larnn, CPU, m) { m.impl("scan_backward", &larnn::scan_backward); }
